/*
 * inception.c — pytorch-fid's FID Inception v3 (inception.h).
 *
 * Network (torchvision Inception3 names; every conv is BasicConv2d = conv
 * without bias, BatchNorm eps 0.001, ReLU; BN is folded into the conv at load):
 *   block0: Conv2d_1a_3x3 (3→32, s2) 299→149, Conv2d_2a_3x3 (32→32) →147,
 *           Conv2d_2b_3x3 (32→64, p1), max pool 3 s2 →73
 *   block1: Conv2d_3b_1x1 (64→80), Conv2d_4a_3x3 (80→192) →71, max pool →35
 *   block2: Mixed_5b/5c/5d (FIDInceptionA, pool features 32/64/64) →256,288,288
 *           Mixed_6a (InceptionB) →768 at 17; Mixed_6b..6e (FIDInceptionC,
 *           c7 = 128,160,160,192)
 *   block3: Mixed_7a (InceptionD) →1280 at 8; Mixed_7b (FIDInceptionE_1),
 *           Mixed_7c (FIDInceptionE_2) →2048; global average pool = pool3.
 * The FID blocks differ from torchvision's: their 3x3 average pools skip the
 * padding (count_include_pad=False) and Mixed_7c's pool branch takes a 3x3
 * max pool. Branch outputs are concatenated in torchvision's order.
 *
 * Activations are float32 NCHW in five buffers per chunk of images: two
 * ping-pong block buffers (P, Q), two branch temporaries and a conv scratch
 * for outputs that land in a channel slice of a concatenation. Convolutions
 * run on oneDNN through ops/packed.h; pooling, ReLU and the concatenation
 * copies are OpenMP loops over independent outputs.
 */
#include "model/inception.h"

#include "io/safetensors.h"
#include "model/weights.h"
#include "ops/packed.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define CHUNK 8
#define BN_EPS 1e-3

typedef struct {
    sld_pconv *pc;
    float *w, *b; /* folded weights [cout,cin,kh,kw], bias [cout]; NULL once packed */
    int cin, cout, kh, kw, stride, ph, pw;
} bconv;

/* FIDInceptionA */
typedef struct {
    bconv b1, b5_1, b5_2, b3_1, b3_2, b3_3, pool;
} blk_a;
/* InceptionB (Mixed_6a) */
typedef struct {
    bconv b3, d1, d2, d3;
} blk_b;
/* FIDInceptionC */
typedef struct {
    bconv b1, b7_1, b7_2, b7_3, d1, d2, d3, d4, d5, pool;
} blk_c;
/* InceptionD (Mixed_7a) */
typedef struct {
    bconv b3_1, b3_2, b7_1, b7_2, b7_3, b7_4;
} blk_d;
/* FIDInceptionE_1 / _2 */
typedef struct {
    bconv b1, b3_1, b3_2a, b3_2b, d1, d2, d3a, d3b, pool;
    bool max_pool;
} blk_e;

struct sld_inception {
    bconv c1a, c2a, c2b, c3b, c4a;
    blk_a m5b, m5c, m5d;
    blk_b m6a;
    blk_c m6b, m6c, m6d, m6e;
    blk_d m7a;
    blk_e m7b, m7c;
    sld_pack_ws *ws;
    /* forward state */
    sld_status st;
    sld_error *err;
};

/* ---- loading ---------------------------------------------------------------- */

typedef struct {
    sld_weights *w;
    sld_error *err;
    sld_status st;
} binder;

static void bind(binder *B, bconv *c, int cin, int cout, int kh, int kw, int stride, int ph,
                 int pw, const char *fmt, ...) __attribute__((format(printf, 10, 11)));

static void bind(binder *B, bconv *c, int cin, int cout, int kh, int kw, int stride, int ph,
                 int pw, const char *fmt, ...)
{
    if (B->st)
        return;
    char base[96], n[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(base, sizeof base, fmt, ap);
    va_end(ap);
    *c = (bconv){.cin = cin, .cout = cout, .kh = kh, .kw = kw, .stride = stride, .ph = ph,
                 .pw = pw};
    snprintf(n, sizeof n, "%s.conv.weight", base);
    const float *w = sld_weights_get(B->w, B->err, n, cout, cin, kh, kw, -1);
    const float *bn[4];
    static const char *const bnn[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; w && i < 4; i++) {
        snprintf(n, sizeof n, "%s.bn.%s", base, bnn[i]);
        if (!(bn[i] = sld_weights_get(B->w, B->err, n, cout, -1)))
            w = NULL;
    }
    if (!w) {
        B->st = B->err ? B->err->code : SLD_ERR_SHAPE;
        return;
    }
    size_t per = (size_t)cin * kh * kw;
    c->w = sld_malloc_aligned((size_t)cout * per * sizeof(float));
    c->b = sld_malloc_aligned((size_t)cout * sizeof(float));
    if (!c->w || !c->b) {
        B->st = sld_err(B->err, SLD_ERR_NOMEM, "inception: out of memory for %s", base);
        return;
    }
    /* BN(conv(x)) = conv(x)·s + (beta − mean·s), s = gamma / sqrt(var + eps) */
    for (int o = 0; o < cout; o++) {
        double s = (double)bn[0][o] / sqrt((double)bn[3][o] + BN_EPS);
        for (size_t i = 0; i < per; i++)
            c->w[o * per + i] = (float)(w[o * per + i] * s);
        c->b[o] = (float)((double)bn[1][o] - (double)bn[2][o] * s);
    }
    sld_conv2d_desc d = {.B = 1, .C_in = cin, .H = 1, .W = 1, .C_out = cout, .kh = kh,
                         .kw = kw, .stride = stride, .pad_t = ph, .pad_b = ph, .pad_l = pw,
                         .pad_r = pw};
    if ((B->st = sld_pconv_new_ex(&c->pc, &d, c->w, c->b, SLD_PREC_FP32, true, B->err)))
        return;
    if (sld_pconv_packed(c->pc)) {
        sld_free(c->w);
        sld_free(c->b);
        c->w = c->b = NULL;
    }
    snprintf(n, sizeof n, "%s.conv.weight", base);
    sld_weights_release(B->w, n);
}

static void bconv_free(bconv *c)
{
    sld_pconv_free(c->pc);
    sld_free(c->w);
    sld_free(c->b);
}

static void bind_a(binder *B, blk_a *a, int cin, int pool, const char *n)
{
    bind(B, &a->b1, cin, 64, 1, 1, 1, 0, 0, "%s.branch1x1", n);
    bind(B, &a->b5_1, cin, 48, 1, 1, 1, 0, 0, "%s.branch5x5_1", n);
    bind(B, &a->b5_2, 48, 64, 5, 5, 1, 2, 2, "%s.branch5x5_2", n);
    bind(B, &a->b3_1, cin, 64, 1, 1, 1, 0, 0, "%s.branch3x3dbl_1", n);
    bind(B, &a->b3_2, 64, 96, 3, 3, 1, 1, 1, "%s.branch3x3dbl_2", n);
    bind(B, &a->b3_3, 96, 96, 3, 3, 1, 1, 1, "%s.branch3x3dbl_3", n);
    bind(B, &a->pool, cin, pool, 1, 1, 1, 0, 0, "%s.branch_pool", n);
}

static void bind_b(binder *B, blk_b *b, int cin, const char *n)
{
    bind(B, &b->b3, cin, 384, 3, 3, 2, 0, 0, "%s.branch3x3", n);
    bind(B, &b->d1, cin, 64, 1, 1, 1, 0, 0, "%s.branch3x3dbl_1", n);
    bind(B, &b->d2, 64, 96, 3, 3, 1, 1, 1, "%s.branch3x3dbl_2", n);
    bind(B, &b->d3, 96, 96, 3, 3, 2, 0, 0, "%s.branch3x3dbl_3", n);
}

static void bind_c(binder *B, blk_c *c, int c7, const char *n)
{
    bind(B, &c->b1, 768, 192, 1, 1, 1, 0, 0, "%s.branch1x1", n);
    bind(B, &c->b7_1, 768, c7, 1, 1, 1, 0, 0, "%s.branch7x7_1", n);
    bind(B, &c->b7_2, c7, c7, 1, 7, 1, 0, 3, "%s.branch7x7_2", n);
    bind(B, &c->b7_3, c7, 192, 7, 1, 1, 3, 0, "%s.branch7x7_3", n);
    bind(B, &c->d1, 768, c7, 1, 1, 1, 0, 0, "%s.branch7x7dbl_1", n);
    bind(B, &c->d2, c7, c7, 7, 1, 1, 3, 0, "%s.branch7x7dbl_2", n);
    bind(B, &c->d3, c7, c7, 1, 7, 1, 0, 3, "%s.branch7x7dbl_3", n);
    bind(B, &c->d4, c7, c7, 7, 1, 1, 3, 0, "%s.branch7x7dbl_4", n);
    bind(B, &c->d5, c7, 192, 1, 7, 1, 0, 3, "%s.branch7x7dbl_5", n);
    bind(B, &c->pool, 768, 192, 1, 1, 1, 0, 0, "%s.branch_pool", n);
}

static void bind_d(binder *B, blk_d *d, const char *n)
{
    bind(B, &d->b3_1, 768, 192, 1, 1, 1, 0, 0, "%s.branch3x3_1", n);
    bind(B, &d->b3_2, 192, 320, 3, 3, 2, 0, 0, "%s.branch3x3_2", n);
    bind(B, &d->b7_1, 768, 192, 1, 1, 1, 0, 0, "%s.branch7x7x3_1", n);
    bind(B, &d->b7_2, 192, 192, 1, 7, 1, 0, 3, "%s.branch7x7x3_2", n);
    bind(B, &d->b7_3, 192, 192, 7, 1, 1, 3, 0, "%s.branch7x7x3_3", n);
    bind(B, &d->b7_4, 192, 192, 3, 3, 2, 0, 0, "%s.branch7x7x3_4", n);
}

static void bind_e(binder *B, blk_e *e, int cin, bool max_pool, const char *n)
{
    e->max_pool = max_pool;
    bind(B, &e->b1, cin, 320, 1, 1, 1, 0, 0, "%s.branch1x1", n);
    bind(B, &e->b3_1, cin, 384, 1, 1, 1, 0, 0, "%s.branch3x3_1", n);
    bind(B, &e->b3_2a, 384, 384, 1, 3, 1, 0, 1, "%s.branch3x3_2a", n);
    bind(B, &e->b3_2b, 384, 384, 3, 1, 1, 1, 0, "%s.branch3x3_2b", n);
    bind(B, &e->d1, cin, 448, 1, 1, 1, 0, 0, "%s.branch3x3dbl_1", n);
    bind(B, &e->d2, 448, 384, 3, 3, 1, 1, 1, "%s.branch3x3dbl_2", n);
    bind(B, &e->d3a, 384, 384, 1, 3, 1, 0, 1, "%s.branch3x3dbl_3a", n);
    bind(B, &e->d3b, 384, 384, 3, 1, 1, 1, 0, "%s.branch3x3dbl_3b", n);
    bind(B, &e->pool, cin, 192, 1, 1, 1, 0, 0, "%s.branch_pool", n);
}

/* Calls fn on every bconv of the model. */
static void for_each_conv(sld_inception *m, void (*fn)(bconv *))
{
    bconv *stem[5] = {&m->c1a, &m->c2a, &m->c2b, &m->c3b, &m->c4a};
    for (int i = 0; i < 5; i++)
        fn(stem[i]);
    blk_a *as[3] = {&m->m5b, &m->m5c, &m->m5d};
    for (int i = 0; i < 3; i++) {
        bconv *l[7] = {&as[i]->b1, &as[i]->b5_1, &as[i]->b5_2, &as[i]->b3_1,
                       &as[i]->b3_2, &as[i]->b3_3, &as[i]->pool};
        for (int k = 0; k < 7; k++)
            fn(l[k]);
    }
    bconv *lb[4] = {&m->m6a.b3, &m->m6a.d1, &m->m6a.d2, &m->m6a.d3};
    for (int k = 0; k < 4; k++)
        fn(lb[k]);
    blk_c *cs[4] = {&m->m6b, &m->m6c, &m->m6d, &m->m6e};
    for (int i = 0; i < 4; i++) {
        blk_c *c = cs[i];
        bconv *l[10] = {&c->b1, &c->b7_1, &c->b7_2, &c->b7_3, &c->d1,
                        &c->d2, &c->d3,   &c->d4,   &c->d5,   &c->pool};
        for (int k = 0; k < 10; k++)
            fn(l[k]);
    }
    bconv *ld[6] = {&m->m7a.b3_1, &m->m7a.b3_2, &m->m7a.b7_1,
                    &m->m7a.b7_2, &m->m7a.b7_3, &m->m7a.b7_4};
    for (int k = 0; k < 6; k++)
        fn(ld[k]);
    blk_e *es[2] = {&m->m7b, &m->m7c};
    for (int i = 0; i < 2; i++) {
        blk_e *e = es[i];
        bconv *l[9] = {&e->b1, &e->b3_1, &e->b3_2a, &e->b3_2b, &e->d1,
                       &e->d2, &e->d3a,  &e->d3b,   &e->pool};
        for (int k = 0; k < 9; k++)
            fn(l[k]);
    }
}

void sld_inception_free(sld_inception *m)
{
    if (!m)
        return;
    for_each_conv(m, bconv_free);
    sld_pack_ws_free(m->ws);
    sld_free(m);
}

sld_status sld_inception_open(sld_inception **out, const char *path, sld_error *err)
{
    *out = NULL;
    sld_st_file *f = NULL;
    sld_weights *w = NULL;
    sld_inception *m = NULL;
    /* The one place the weights file is read. */
    sld_status st = sld_st_open(&f, path, err);
    if (st)
        return st;
    if ((st = sld_weights_new(&w, path, err)) || (st = sld_weights_add_file(w, f, NULL, err)))
        goto done;
    if (!sld_weights_has(w, "Mixed_7c.branch_pool.conv.weight") ||
        !sld_weights_has(w, "Conv2d_1a_3x3.conv.weight")) {
        st = sld_err(err, SLD_ERR_FORMAT,
                     "%s: not an Inception v3 state dict (no 'Conv2d_1a_3x3.conv.weight' / "
                     "'Mixed_7c.branch_pool.conv.weight'); FID needs pytorch-fid's "
                     "pt_inception-2015-12-05-6726825d.pth",
                     path);
        goto done;
    }
    m = sld_calloc(1, sizeof *m);
    if (!m || !(m->ws = sld_pack_ws_new())) {
        st = sld_err(err, SLD_ERR_NOMEM, "inception: out of memory");
        goto done;
    }
    binder B = {.w = w, .err = err};
    bind(&B, &m->c1a, 3, 32, 3, 3, 2, 0, 0, "Conv2d_1a_3x3");
    bind(&B, &m->c2a, 32, 32, 3, 3, 1, 0, 0, "Conv2d_2a_3x3");
    bind(&B, &m->c2b, 32, 64, 3, 3, 1, 1, 1, "Conv2d_2b_3x3");
    bind(&B, &m->c3b, 64, 80, 1, 1, 1, 0, 0, "Conv2d_3b_1x1");
    bind(&B, &m->c4a, 80, 192, 3, 3, 1, 0, 0, "Conv2d_4a_3x3");
    bind_a(&B, &m->m5b, 192, 32, "Mixed_5b");
    bind_a(&B, &m->m5c, 256, 64, "Mixed_5c");
    bind_a(&B, &m->m5d, 288, 64, "Mixed_5d");
    bind_b(&B, &m->m6a, 288, "Mixed_6a");
    bind_c(&B, &m->m6b, 128, "Mixed_6b");
    bind_c(&B, &m->m6c, 160, "Mixed_6c");
    bind_c(&B, &m->m6d, 160, "Mixed_6d");
    bind_c(&B, &m->m6e, 192, "Mixed_6e");
    bind_d(&B, &m->m7a, "Mixed_7a");
    bind_e(&B, &m->m7b, 1280, false, "Mixed_7b");
    bind_e(&B, &m->m7c, 2048, true, "Mixed_7c");
    if ((st = B.st))
        goto done;
    *out = m;
    m = NULL;
done:
    sld_inception_free(m);
    sld_weights_free(w);
    sld_st_close(f);
    return st;
}

/* ---- preprocessing ------------------------------------------------------------- */

/* torch's linear source index (align_corners=False): scale = in/out in
 * float, src = max(scale·(i + 0.5) − 0.5, 0), i0 = floor, i1 = i0 + 1 unless
 * at the edge, lambda = src − i0. */
static void lin_index(int in, int out, int i, int *i0, int *i1, float *l1)
{
    float scale = (float)in / (float)out;
    float src = scale * ((float)i + 0.5f) - 0.5f;
    if (src < 0)
        src = 0;
    int a = (int)floorf(src);
    if (a > in - 1)
        a = in - 1;
    float l = src - (float)a;
    *l1 = l < 0 ? 0 : l > 1 ? 1 : l;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
}

void sld_inception_prep(const uint8_t *rgb, int w, int h, float *out)
{
    const int S = SLD_INCEPTION_SIZE;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < S; y++) {
        int y0, y1;
        float ly;
        lin_index(h, S, y, &y0, &y1, &ly);
        for (int x = 0; x < S; x++) {
            int x0, x1;
            float lx;
            lin_index(w, S, x, &x0, &x1, &lx);
            for (int c = 0; c < 3; c++) {
                float p00 = rgb[((size_t)y0 * w + x0) * 3 + c] / 255.0f;
                float p01 = rgb[((size_t)y0 * w + x1) * 3 + c] / 255.0f;
                float p10 = rgb[((size_t)y1 * w + x0) * 3 + c] / 255.0f;
                float p11 = rgb[((size_t)y1 * w + x1) * 3 + c] / 255.0f;
                float v = (1 - ly) * ((1 - lx) * p00 + lx * p01) + ly * ((1 - lx) * p10 + lx * p11);
                out[((size_t)c * S + y) * S + x] = 2 * v - 1;
            }
        }
    }
}

/* ---- forward ----------------------------------------------------------------------- */

typedef struct {
    sld_inception *m;
    int B;
    float *s; /* conv scratch */
} fwd;

static void relu(float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0 ? x[i] : 0;
}

/* y[:, c0:c0+cout] = ReLU(conv(x)) where y has C channels; returns the
 * output size. When y is exactly the conv output (c0 0, C cout) the conv
 * writes it directly. */
static void conv(fwd *F, const bconv *c, const float *x, int H, int W, float *y, int C, int c0,
                 int *Ho, int *Wo)
{
    int ho = (H + 2 * c->ph - c->kh) / c->stride + 1, wo = (W + 2 * c->pw - c->kw) / c->stride + 1;
    if (Ho)
        *Ho = ho;
    if (Wo)
        *Wo = wo;
    if (F->m->st)
        return;
    const size_t plane = (size_t)ho * wo, B = (size_t)F->B;
    float *dst = c0 == 0 && C == c->cout ? y : F->s;
    if ((F->m->st = sld_pconv_run(c->pc, F->m->ws, x, dst, F->B, H, W, NULL, F->m->err)))
        return;
    if (dst == y) {
        relu(y, B * c->cout * plane);
        return;
    }
    const int cout = c->cout;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (int k = 0; k < cout; k++) {
            const float *s = F->s + (b * cout + k) * plane;
            float *d = y + (b * C + c0 + k) * plane;
            for (size_t i = 0; i < plane; i++)
                d[i] = s[i] > 0 ? s[i] : 0;
        }
}

/* 3x3 pools. max with stride 2 and no padding; or stride 1, padding 1: avg
 * over the valid taps only (count_include_pad=False) or max (padding never
 * wins). y [B,C,Ho,Wo] written at channel offset c0 of Cy channels. */
enum { POOL_MAX_S2, POOL_AVG_S1, POOL_MAX_S1 };

static void pool3(int kind, const float *x, int B, int C, int H, int W, float *y, int Cy, int c0)
{
    int s = kind == POOL_MAX_S2 ? 2 : 1, p = kind == POOL_MAX_S2 ? 0 : 1;
    int Ho = (H + 2 * p - 3) / s + 1, Wo = (W + 2 * p - 3) / s + 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *xi = x + ((size_t)b * C + c) * H * W;
            float *yo = y + ((size_t)b * Cy + c0 + c) * Ho * Wo;
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    float acc = kind == POOL_AVG_S1 ? 0 : -INFINITY;
                    int n = 0;
                    for (int di = 0; di < 3; di++) {
                        int r = i * s - p + di;
                        if (r < 0 || r >= H)
                            continue;
                        for (int dj = 0; dj < 3; dj++) {
                            int q = j * s - p + dj;
                            if (q < 0 || q >= W)
                                continue;
                            float v = xi[(size_t)r * W + q];
                            if (kind == POOL_AVG_S1)
                                acc += v;
                            else if (v > acc)
                                acc = v;
                            n++;
                        }
                    }
                    yo[(size_t)i * Wo + j] = kind == POOL_AVG_S1 ? acc / (float)n : acc;
                }
        }
}

/* FIDInceptionA: x [B,cin,35,35] -> y [B,224+pool,35,35] */
static void run_a(fwd *F, const blk_a *a, const float *x, int H, int W, float *y, float *t1,
                  float *t2)
{
    int C = 224 + a->pool.cout;
    conv(F, &a->b1, x, H, W, y, C, 0, NULL, NULL);
    conv(F, &a->b5_1, x, H, W, t1, 48, 0, NULL, NULL);
    conv(F, &a->b5_2, t1, H, W, y, C, 64, NULL, NULL);
    conv(F, &a->b3_1, x, H, W, t1, 64, 0, NULL, NULL);
    conv(F, &a->b3_2, t1, H, W, t2, 96, 0, NULL, NULL);
    conv(F, &a->b3_3, t2, H, W, y, C, 128, NULL, NULL);
    pool3(POOL_AVG_S1, x, F->B, a->b1.cin, H, W, t1, a->b1.cin, 0);
    conv(F, &a->pool, t1, H, W, y, C, 224, NULL, NULL);
}

/* InceptionB: [B,288,35,35] -> [B,768,17,17] */
static void run_b(fwd *F, const blk_b *b, const float *x, int H, int W, float *y, float *t1,
                  float *t2)
{
    const int C = 384 + 96 + b->b3.cin;
    conv(F, &b->b3, x, H, W, y, C, 0, NULL, NULL);
    conv(F, &b->d1, x, H, W, t1, 64, 0, NULL, NULL);
    conv(F, &b->d2, t1, H, W, t2, 96, 0, NULL, NULL);
    conv(F, &b->d3, t2, H, W, y, C, 384, NULL, NULL);
    pool3(POOL_MAX_S2, x, F->B, b->b3.cin, H, W, y, C, 480);
}

/* FIDInceptionC: [B,768,17,17] -> same */
static void run_c(fwd *F, const blk_c *c, const float *x, int H, int W, float *y, float *t1,
                  float *t2)
{
    const int C = 768, c7 = c->b7_1.cout;
    conv(F, &c->b1, x, H, W, y, C, 0, NULL, NULL);
    conv(F, &c->b7_1, x, H, W, t1, c7, 0, NULL, NULL);
    conv(F, &c->b7_2, t1, H, W, t2, c7, 0, NULL, NULL);
    conv(F, &c->b7_3, t2, H, W, y, C, 192, NULL, NULL);
    conv(F, &c->d1, x, H, W, t1, c7, 0, NULL, NULL);
    conv(F, &c->d2, t1, H, W, t2, c7, 0, NULL, NULL);
    conv(F, &c->d3, t2, H, W, t1, c7, 0, NULL, NULL);
    conv(F, &c->d4, t1, H, W, t2, c7, 0, NULL, NULL);
    conv(F, &c->d5, t2, H, W, y, C, 384, NULL, NULL);
    pool3(POOL_AVG_S1, x, F->B, 768, H, W, t1, 768, 0);
    conv(F, &c->pool, t1, H, W, y, C, 576, NULL, NULL);
}

/* InceptionD: [B,768,17,17] -> [B,1280,8,8] */
static void run_d(fwd *F, const blk_d *d, const float *x, int H, int W, float *y, float *t1,
                  float *t2)
{
    const int C = 1280;
    conv(F, &d->b3_1, x, H, W, t1, 192, 0, NULL, NULL);
    conv(F, &d->b3_2, t1, H, W, y, C, 0, NULL, NULL);
    conv(F, &d->b7_1, x, H, W, t1, 192, 0, NULL, NULL);
    conv(F, &d->b7_2, t1, H, W, t2, 192, 0, NULL, NULL);
    conv(F, &d->b7_3, t2, H, W, t1, 192, 0, NULL, NULL);
    conv(F, &d->b7_4, t1, H, W, y, C, 320, NULL, NULL);
    pool3(POOL_MAX_S2, x, F->B, 768, H, W, y, C, 512);
}

/* FIDInceptionE_1 / E_2: [B,cin,8,8] -> [B,2048,8,8] */
static void run_e(fwd *F, const blk_e *e, const float *x, int H, int W, float *y, float *t1,
                  float *t2)
{
    const int C = 2048, cin = e->b1.cin;
    conv(F, &e->b1, x, H, W, y, C, 0, NULL, NULL);
    conv(F, &e->b3_1, x, H, W, t1, 384, 0, NULL, NULL);
    conv(F, &e->b3_2a, t1, H, W, y, C, 320, NULL, NULL);
    conv(F, &e->b3_2b, t1, H, W, y, C, 704, NULL, NULL);
    conv(F, &e->d1, x, H, W, t1, 448, 0, NULL, NULL);
    conv(F, &e->d2, t1, H, W, t2, 384, 0, NULL, NULL);
    conv(F, &e->d3a, t2, H, W, y, C, 1088, NULL, NULL);
    conv(F, &e->d3b, t2, H, W, y, C, 1472, NULL, NULL);
    pool3(e->max_pool ? POOL_MAX_S1 : POOL_AVG_S1, x, F->B, cin, H, W, t1, cin, 0);
    conv(F, &e->pool, t1, H, W, y, C, 1856, NULL, NULL);
}

/* Largest per-image activation: Conv2d_2b's output, 64 x 147 x 147; the
 * branch temporaries and the scratch never exceed Mixed_5d's 288 x 35 x 35. */
#define BIG ((size_t)64 * 147 * 147)
#define SMALL ((size_t)288 * 35 * 35)

static void copy_tap(float *dst, const float *src, size_t n)
{
    if (dst)
        memcpy(dst, src, n * sizeof(float));
}

sld_status sld_inception_forward(sld_inception *m, const float *x, int B, float *pool3out,
                                 const sld_inception_taps *taps, sld_error *err)
{
    if (B < 1)
        return sld_err(err, SLD_ERR_INVALID_ARG, "inception: batch size %d", B);
    const int bc = B < CHUNK ? B : CHUNK;
    float *buf = sld_malloc_aligned((2 * BIG + 3 * SMALL) * (size_t)bc * sizeof(float));
    if (!buf)
        return sld_err(err, SLD_ERR_NOMEM, "inception: out of memory for a batch of %d", bc);
    float *P = buf, *Q = P + BIG * bc, *t1 = Q + BIG * bc, *t2 = t1 + SMALL * bc,
          *s = t2 + SMALL * bc;
    m->st = SLD_OK;
    m->err = err;
    const sld_inception_taps none = {0};
    if (!taps)
        taps = &none;
    const size_t in_sz = (size_t)3 * SLD_INCEPTION_SIZE * SLD_INCEPTION_SIZE;
    for (int b0 = 0; b0 < B && !m->st; b0 += bc) {
        const int b = B - b0 < bc ? B - b0 : bc;
        fwd F = {.m = m, .B = b, .s = s};
        int H = SLD_INCEPTION_SIZE, W = H;
        const float *xi = x + (size_t)b0 * in_sz;
        conv(&F, &m->c1a, xi, H, W, P, 32, 0, &H, &W);  /* 149 */
        conv(&F, &m->c2a, P, H, W, Q, 32, 0, &H, &W);   /* 147 */
        conv(&F, &m->c2b, Q, H, W, P, 64, 0, &H, &W);   /* 147 */
        pool3(POOL_MAX_S2, P, b, 64, H, W, Q, 64, 0);
        H = W = (H - 3) / 2 + 1; /* 73 */
        if (taps->block0 && !m->st)
            copy_tap(taps->block0 + (size_t)b0 * 64 * H * W, Q, (size_t)b * 64 * H * W);
        conv(&F, &m->c3b, Q, H, W, P, 80, 0, &H, &W);   /* 73 */
        conv(&F, &m->c4a, P, H, W, Q, 192, 0, &H, &W);  /* 71 */
        pool3(POOL_MAX_S2, Q, b, 192, H, W, P, 192, 0);
        H = W = (H - 3) / 2 + 1; /* 35 */
        if (taps->block1 && !m->st)
            copy_tap(taps->block1 + (size_t)b0 * 192 * H * W, P, (size_t)b * 192 * H * W);
        run_a(&F, &m->m5b, P, H, W, Q, t1, t2);
        run_a(&F, &m->m5c, Q, H, W, P, t1, t2);
        run_a(&F, &m->m5d, P, H, W, Q, t1, t2);
        run_b(&F, &m->m6a, Q, H, W, P, t1, t2);
        H = W = (H - 3) / 2 + 1; /* 17 */
        run_c(&F, &m->m6b, P, H, W, Q, t1, t2);
        run_c(&F, &m->m6c, Q, H, W, P, t1, t2);
        run_c(&F, &m->m6d, P, H, W, Q, t1, t2);
        run_c(&F, &m->m6e, Q, H, W, P, t1, t2);
        if (taps->block2 && !m->st)
            copy_tap(taps->block2 + (size_t)b0 * 768 * H * W, P, (size_t)b * 768 * H * W);
        run_d(&F, &m->m7a, P, H, W, Q, t1, t2);
        H = W = (H - 3) / 2 + 1; /* 8 */
        run_e(&F, &m->m7b, Q, H, W, P, t1, t2);
        run_e(&F, &m->m7c, P, H, W, Q, t1, t2);
        if (m->st)
            break;
        const int HW = H * W;
        float *po = pool3out + (size_t)b0 * SLD_INCEPTION_DIM;
#pragma omp parallel for schedule(static)
        for (int k = 0; k < b * SLD_INCEPTION_DIM; k++) {
            const float *q = Q + (size_t)k * HW;
            double acc = 0;
            for (int i = 0; i < HW; i++)
                acc += q[i];
            po[k] = (float)(acc / HW);
        }
    }
    sld_free(buf);
    m->err = NULL;
    return m->st;
}
