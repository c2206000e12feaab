/* test_nudenet.c — the ONNX reader and the NudeNet v3 detector against the
 * goldens in tests/fixtures/nudenet (copied from shared/fixtures/nudenet; see
 * the README there): OpenCV-exact preprocessing, raw network output vs the
 * float64 ONNX evaluation, exact decoding + NMS, end to end from the PNGs, and
 * the reader's error paths on a tiny model built here byte by byte. */
#include "core/core.h"
#include "io/onnx.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "model/nudenet.h"
#include "test.h"

#define A SLD_NUDENET_ANCHORS
#define NOUT (SLD_NUDENET_ROWS * SLD_NUDENET_ANCHORS)

static sld_nudenet *g_net; /* the tiny 320n stand-in, opened once */

static sld_st_file *golden(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "nudenet/goldens/%s.safetensors", name);
    sld_st_file *f = NULL;
    sld_error err;
    if (sld_st_open(&f, fixture(rel), &err) != SLD_OK)
        printf("  cannot open %s: %s\n", rel, err.msg);
    return f;
}

static const void *tdata(const sld_st_file *f, const char *key, sld_dtype dt, size_t numel)
{
    const sld_st_tensor *t = sld_st_find(f, key);
    if (!t || t->dtype != dt || t->numel != numel) {
        printf("  golden tensor %s missing or unexpected\n", key);
        return NULL;
    }
    return t->data;
}

static int meta_int(const sld_st_file *f, const char *key)
{
    const char *v = sld_st_meta(f, key);
    return v ? atoi(v) : -1;
}

/* ---- labels ---------------------------------------------------------------- */

static void test_labels(void)
{
    static const char *const exposed[] = {"ANUS_EXPOSED", "BUTTOCKS_EXPOSED",
                                          "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
                                          "MALE_GENITALIA_EXPOSED"};
    int n_exposed = 0;
    for (int i = 0; i < SLD_NUDENET_N_LABELS; i++) {
        const char *l = sld_nudenet_label(i);
        CHECK(l != NULL);
        int want = 0;
        for (int k = 0; k < 5; k++)
            want |= l && !strcmp(l, exposed[k]);
        CHECK_MSG(sld_nudenet_label_is_exposed_i2p(i) == want, "label %d %s", i, l);
        n_exposed += want;
    }
    CHECK(n_exposed == 5);
    CHECK(!strcmp(sld_nudenet_label(0), "FEMALE_GENITALIA_COVERED"));
    CHECK(!strcmp(sld_nudenet_label(17), "BUTTOCKS_COVERED"));
    CHECK(sld_nudenet_label(-1) == NULL && sld_nudenet_label(18) == NULL);
    CHECK(!sld_nudenet_label_is_exposed_i2p(-1) && !sld_nudenet_label_is_exposed_i2p(18));
    /* I2P rule: exposed class with score >= 0.6 */
    sld_nude_det d[2] = {{3, "FEMALE_BREAST_EXPOSED", 0.59f, 0, 0, 1, 1, 1},
                         {1, "FACE_FEMALE", 0.99f, 0, 0, 1, 1, 0}};
    CHECK(!sld_nudenet_is_nude_i2p(d, 2));
    d[0].score = 0.6f;
    CHECK(sld_nudenet_is_nude_i2p(d, 2));
    CHECK(!sld_nudenet_is_nude_i2p(d, 0));
}

/* ---- preprocessing ---------------------------------------------------------- */

static void check_preprocess(const char *name)
{
    sld_st_file *f = golden(name);
    CHECK(f != NULL);
    if (!f)
        return;
    int w = meta_int(f, "width"), h = meta_int(f, "height"), S = sld_nudenet_side(w, h);
    const uint8_t *rgb = tdata(f, "image_rgb", SLD_DT_U8, (size_t)w * h * 3);
    const uint8_t *resized = tdata(f, "resized", SLD_DT_U8, 320 * 320 * 3);
    const float *blob = tdata(f, "blob", SLD_DT_F32, 3 * 320 * 320);
    CHECK(rgb && resized && blob);
    uint8_t *sq = malloc((size_t)S * S * 3), *rs = malloc(320 * 320 * 3);
    float *b = malloc(3 * 320 * 320 * sizeof *b);
    sld_error err;
    if (rgb && resized && blob) {
        sld_nudenet_pad(rgb, w, h, sq);
        const sld_st_tensor *pt = sld_st_find(f, "padded");
        if (pt) {
            CHECK(pt->numel == (size_t)S * S * 3 && !memcmp(pt->data, sq, pt->numel));
        } else {
            CHECK(S == w && S == h && !memcmp(sq, rgb, (size_t)S * S * 3));
        }
        CHECK(sld_resize_linear_u8(sq, S, S, 3, rs, 320, 320, &err) == SLD_OK);
        size_t bad = 0;
        for (size_t i = 0; i < 320 * 320 * 3; i++)
            bad += rs[i] != resized[i];
        CHECK_MSG(bad == 0, "%zu resized bytes differ from OpenCV", bad);
        CHECK(sld_nudenet_blob(sq, S, b, &err) == SLD_OK);
        CHECK_MSG(!memcmp(b, blob, sizeof(float) * 3 * 320 * 320), "blob not bit-exact");
    }
    free(sq);
    free(rs);
    free(b);
    sld_st_close(f);
}

static void test_preprocess_png_200x120(void) { check_preprocess("png_200x120"); }
static void test_preprocess_png_512x512(void) { check_preprocess("png_512x512"); }

static void test_resize_small(void)
{
    sld_error err;
    /* identity size: exact copy; 1 pixel: constant; 2x upscale of a ramp
     * against OpenCV's numbers worked by hand (weights 0.75/0.25 -> 1536/512) */
    uint8_t src[4 * 3], dst[16 * 3];
    for (int i = 0; i < 12; i++)
        src[i] = (uint8_t)(i * 20);
    CHECK(sld_resize_linear_u8(src, 2, 2, 3, dst, 2, 2, &err) == SLD_OK && !memcmp(src, dst, 12));
    uint8_t one[3] = {7, 8, 9}, big[5 * 4 * 3];
    CHECK(sld_resize_linear_u8(one, 1, 1, 3, big, 5, 4, &err) == SLD_OK);
    for (int i = 0; i < 60; i++)
        CHECK(big[i] == one[i % 3]);
    uint8_t ramp[2] = {0, 100}, up[4];
    CHECK(sld_resize_linear_u8(ramp, 2, 1, 1, up, 4, 1, &err) == SLD_OK);
    CHECK(up[0] == 0 && up[1] == 25 && up[2] == 75 && up[3] == 100);
    CHECK(sld_resize_linear_u8(ramp, 0, 1, 1, up, 4, 1, &err) == SLD_ERR_INVALID_ARG);
}

/* ---- network ------------------------------------------------------------------ */

/* Raw output vs the float64 ONNX evaluation at the fixture README's tolerance:
 * rows 0-3 (pixels) 1e-3 + 1e-5|ref|, rows 4-21 (probabilities) 2e-5. */
static void check_forward(const char *name)
{
    sld_st_file *f = golden(name);
    CHECK(f != NULL && g_net != NULL);
    if (!f || !g_net) {
        sld_st_close(f);
        return;
    }
    const float *blob = tdata(f, "blob", SLD_DT_F32, 3 * 320 * 320);
    const double *ref = tdata(f, "output_f64", SLD_DT_F64, NOUT);
    float *out = malloc(NOUT * sizeof *out), *in = malloc(3 * 320 * 320 * sizeof *in);
    sld_error err;
    if (blob && ref) {
        memcpy(in, blob, 3 * 320 * 320 * sizeof *in); /* safetensors data may be unaligned */
        sld_status s = sld_nudenet_forward(g_net, in, out, &err);
        CHECK_MSG(s == SLD_OK, "%s", err.msg);
        double dbox = 0, dprob = 0;
        int bad = 0;
        for (int i = 0; s == SLD_OK && i < NOUT; i++) {
            double d = fabs((double)out[i] - ref[i]);
            bool box = i < 4 * A;
            double tol = box ? 1e-3 + 1e-5 * fabs(ref[i]) : 2e-5;
            if (box && d > dbox)
                dbox = d;
            if (!box && d > dprob)
                dprob = d;
            if (!(d <= tol) && bad++ < 5)
                printf("  %s out[%d][%d] = %.9g, want %.9g\n", name, i / A, i % A, out[i], ref[i]);
        }
        CHECK_MSG(bad == 0, "%d values beyond tolerance", bad);
        printf("  %s: max |d| boxes %.3g px (tol 1e-3+), probabilities %.3g (tol 2e-5)\n", name,
               dbox, dprob);
    }
    free(out);
    free(in);
    sld_st_close(f);
}

static void test_forward_random(void) { check_forward("random"); }
static void test_forward_png_200x120(void) { check_forward("png_200x120"); }
static void test_forward_png_512x512(void) { check_forward("png_512x512"); }

/* ---- decoding ------------------------------------------------------------------ */

/* Decodes the stored float32 output: candidates, NMS and detections exact. */
static void check_decode(const char *name)
{
    sld_st_file *f = golden(name);
    CHECK(f != NULL);
    if (!f)
        return;
    int w = meta_int(f, "width"), h = meta_int(f, "height");
    const sld_st_tensor *tr = sld_st_find(f, "cand_row"), *tk = sld_st_find(f, "nms_keep");
    CHECK(tr && tk);
    if (!tr || !tk) {
        sld_st_close(f);
        return;
    }
    size_t K = tr->numel, M = tk->numel;
    float *out = malloc(NOUT * sizeof *out);
    const float *o = tdata(f, "output", SLD_DT_F32, NOUT);
    const int32_t *row = tr->data, *keepw = tk->data;
    const int32_t *cls = tdata(f, "cand_class", SLD_DT_I32, K);
    const float *score = tdata(f, "cand_score", SLD_DT_F32, K);
    const double *box = tdata(f, "cand_box", SLD_DT_F64, K * 4);
    const int32_t *dbox = tdata(f, "det_box", SLD_DT_I32, M * 4);
    const int32_t *dcls = tdata(f, "det_class", SLD_DT_I32, M);
    const float *dscore = tdata(f, "det_score", SLD_DT_F32, M);
    CHECK(o && cls && score && box && dbox && dcls && dscore);
    if (o && cls && score && box && dbox && dcls && dscore) {
        memcpy(out, o, NOUT * sizeof *out);
        sld_nude_cand *c = malloc(A * sizeof *c);
        int *keep = malloc(A * sizeof *keep);
        int nc = sld_nudenet_candidates(out, w, h, c);
        CHECK_MSG((size_t)nc == K, "%s: %d candidates, want %zu", name, nc, K);
        int bad = 0;
        for (int i = 0; i < nc && (size_t)i < K; i++) {
            double db = 0;
            for (int k = 0; k < 4; k++) {
                double v = k == 0 ? c[i].x : k == 1 ? c[i].y : k == 2 ? c[i].w : c[i].h;
                db = fmax(db, fabs(v - box[4 * i + k]));
            }
            if ((c[i].row != row[i] || c[i].label != cls[i] || c[i].score != score[i] || db > 1e-9) &&
                bad++ < 5)
                printf("  %s cand %d: row %d/%d class %d/%d score %.9g/%.9g box |d| %.3g\n", name, i,
                       c[i].row, row[i], c[i].label, cls[i], c[i].score, score[i], db);
        }
        CHECK(bad == 0);
        int nk = sld_nudenet_nms(c, nc, keep);
        CHECK_MSG((size_t)nk == M, "%s: %d kept, want %zu", name, nk, M);
        for (int i = 0; i < nk && (size_t)i < M; i++) {
            const sld_nude_cand *k = &c[keep[i]];
            bool ok = keep[i] == keepw[i] && k->label == dcls[i] && k->score == dscore[i] &&
                      (int)k->x == dbox[4 * i] && (int)k->y == dbox[4 * i + 1] &&
                      (int)k->w == dbox[4 * i + 2] && (int)k->h == dbox[4 * i + 3];
            CHECK_MSG(ok, "%s det %d: keep %d/%d class %d/%d box %d,%d,%d,%d / %d,%d,%d,%d", name, i,
                      keep[i], keepw[i], k->label, dcls[i], (int)k->x, (int)k->y, (int)k->w,
                      (int)k->h, dbox[4 * i], dbox[4 * i + 1], dbox[4 * i + 2], dbox[4 * i + 3]);
        }
        free(c);
        free(keep);
    }
    free(out);
    sld_st_close(f);
}

static void test_decode_goldens(void)
{
    check_decode("random");
    check_decode("png_200x120");
    check_decode("png_512x512");
    check_decode("random_iid_decode"); /* 2100 candidates, 277 detections */
}

static void test_nms_edges(void)
{
    /* equal scores keep candidate order; zero-area boxes never suppress;
     * scores at exactly 0.25 are dropped; IoU 0.45 boundary */
    sld_nude_cand c[5] = {
        {0, 1, 0.5f, 0, 0, 10, 10}, {1, 2, 0.5f, 100, 0, 10, 10}, {2, 3, 0.9f, 0, 0, 10, 0},
        {3, 4, 0.25f, 200, 0, 5, 5}, {4, 5, 0.4f, 1, 0, 10, 10}, /* IoU 90/110 with #0 */
    };
    int keep[5];
    int n = sld_nudenet_nms(c, 5, keep);
    CHECK(n == 3);
    CHECK(keep[0] == 2 && keep[1] == 0 && keep[2] == 1);
}

/* ---- end to end ------------------------------------------------------------------ */

static void check_detect(const char *name, const char *png)
{
    sld_st_file *f = golden(name);
    CHECK(f != NULL && g_net != NULL);
    if (!f || !g_net) {
        sld_st_close(f);
        return;
    }
    int w = meta_int(f, "width"), h = meta_int(f, "height");
    const sld_st_tensor *tk = sld_st_find(f, "det_class");
    size_t M = tk ? tk->numel : 0;
    const uint8_t *rgb = tdata(f, "image_rgb", SLD_DT_U8, (size_t)w * h * 3);
    const int32_t *dbox = tdata(f, "det_box", SLD_DT_I32, M * 4);
    const float *dscore = tdata(f, "det_score", SLD_DT_F32, M);
    sld_error err;
    uint8_t *img = NULL;
    if (png) { /* decode with the PNG reader: must give exactly image_rgb */
        char rel[128];
        int pw = 0, ph = 0;
        snprintf(rel, sizeof rel, "nudenet/%s", png);
        sld_status s = sld_png_read(fixture(rel), &img, &pw, &ph, &err);
        CHECK_MSG(s == SLD_OK, "%s", err.msg);
        CHECK(s || (pw == w && ph == h && rgb && !memcmp(img, rgb, (size_t)w * h * 3)));
    }
    if (tk && rgb && dbox && dscore) {
        sld_nude_det d[64];
        int nd = -1;
        sld_status s = sld_nudenet_detect(g_net, img ? img : rgb, w, h, d, 64, &nd, &err);
        CHECK_MSG(s == SLD_OK, "%s", err.msg);
        CHECK_MSG((size_t)nd == M, "%s: %d detections, want %zu", name, nd, M);
        for (int i = 0; i < nd && (size_t)i < M; i++) {
            const int32_t *b = dbox + 4 * i;
            CHECK_MSG(d[i].label == ((const int32_t *)tk->data)[i] && d[i].x == b[0] &&
                          d[i].y == b[1] && d[i].w == b[2] && d[i].h == b[3] &&
                          fabs(d[i].score - dscore[i]) <= 2e-5 &&
                          !strcmp(d[i].name, sld_nudenet_label(d[i].label)) &&
                          d[i].exposed == sld_nudenet_label_is_exposed_i2p(d[i].label),
                      "%s det %d: %s %.6f [%d,%d,%d,%d]", name, i, d[i].name, d[i].score, d[i].x,
                      d[i].y, d[i].w, d[i].h);
        }
        /* detect pads virtually (no S x S copy): its blob must equal the golden
         * blob bit for bit, so scores match forward(blob) + decode exactly */
        const float *blob = tdata(f, "blob", SLD_DT_F32, 3 * 320 * 320);
        float *in = malloc(3 * 320 * 320 * sizeof *in), *out = malloc(NOUT * sizeof *out);
        sld_nude_cand *c = malloc(A * sizeof *c);
        int *keep = malloc(A * sizeof *keep);
        if (blob) {
            memcpy(in, blob, 3 * 320 * 320 * sizeof *in);
            CHECK(sld_nudenet_forward(g_net, in, out, &err) == SLD_OK);
            int nk = sld_nudenet_nms(c, sld_nudenet_candidates(out, w, h, c), keep);
            CHECK(nk == nd);
            for (int i = 0; i < nk && i < nd; i++)
                CHECK(c[keep[i]].score == d[i].score && (int)c[keep[i]].y == d[i].y);
        }
        free(in);
        free(out);
        free(c);
        free(keep);
        /* max_dets truncates to the best-scored ones */
        sld_nude_det d2[2];
        CHECK(sld_nudenet_detect(g_net, rgb, w, h, d2, 2, &nd, &err) == SLD_OK);
        CHECK(nd == (M < 2 ? (int)M : 2) && (nd < 1 || d2[0].score == d[0].score));
        CHECK(sld_nudenet_detect(g_net, rgb, w, h, NULL, 0, &nd, &err) == SLD_OK && nd == 0);
    }
    sld_free(img);
    sld_st_close(f);
}

static void test_detect_png_200x120(void) { check_detect("png_200x120", "synthetic-200x120.png"); }
static void test_detect_png_512x512(void) { check_detect("png_512x512", "synthetic-512x512.png"); }

static void test_detect_args(void)
{
    sld_error err;
    uint8_t px[3] = {1, 2, 3};
    sld_nude_det d[4];
    int nd;
    CHECK(sld_nudenet_detect(g_net, px, 0, 1, d, 4, &nd, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_nudenet_detect(g_net, NULL, 1, 1, d, 4, &nd, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_nudenet_detect(NULL, px, 1, 1, d, 4, &nd, &err) == SLD_ERR_INVALID_ARG);
    /* a 1x1 image goes through every stage */
    CHECK(sld_nudenet_detect(g_net, px, 1, 1, d, 4, &nd, &err) == SLD_OK && nd >= 0 && nd <= 4);
    /* a 20000x3 strip: the padded square (1.2 GB) is never materialised */
    uint8_t *strip = calloc(40000 * 3 * 3, 1);
    CHECK(sld_nudenet_detect(g_net, strip, 40000, 1, d, 4, &nd, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_nudenet_detect(g_net, strip, 20000, 3, d, 4, &nd, &err) == SLD_OK);
    for (int i = 0; i < nd; i++)
        CHECK(d[i].x >= 0 && d[i].y >= 0 && d[i].x + d[i].w <= 20000 && d[i].y + d[i].h <= 3);
    free(strip);
    /* explicit padding, and the blob of a square that needs resizing */
    uint8_t img[37 * 11 * 3], sq[37 * 37 * 3], r1[50 * 50 * 3];
    for (int i = 0; i < (int)sizeof img; i++)
        img[i] = (uint8_t)(i * 37 + (i >> 3));
    sld_nudenet_pad(img, 37, 11, sq);
    for (int i = 0; i < 37 * 3; i++)
        CHECK(sq[36 * 37 * 3 + i] == 0 && sq[10 * 37 * 3 + i] == img[10 * 37 * 3 + i]);
    CHECK(sld_resize_linear_u8(sq, 37, 37, 3, r1, 50, 50, &err) == SLD_OK);
    float *b1 = malloc(3 * 320 * 320 * sizeof *b1);
    CHECK(sld_nudenet_blob(sq, 37, b1, &err) == SLD_OK);
    CHECK(b1[0] == (float)sq[2] * (float)(1.0 / 255.0)); /* plane 0 = blue */
    free(b1);
}

/* ---- a tiny model written by hand (protobuf writer) ------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pb;

static void pb_raw(pb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void pb_varint(pb *b, uint64_t v)
{
    uint8_t t[10];
    int k = 0;
    do {
        t[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(b, t, (size_t)k);
}
static void pb_tag(pb *b, int field, int wt) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wt); }
static void pb_int(pb *b, int field, int64_t v)
{
    pb_tag(b, field, 0);
    pb_varint(b, (uint64_t)v);
}
static void pb_bytes(pb *b, int field, const void *d, size_t n)
{
    pb_tag(b, field, 2);
    pb_varint(b, n);
    pb_raw(b, d, n);
}
static void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pb *b, int field, pb *sub)
{
    pb_bytes(b, field, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

/* TensorProto: raw_data (mode 0), packed float_data/int64_data (mode 1). */
static void pb_tensor(pb *t, const char *name, int dtype, int ndim, const int64_t *dims,
                      const void *data, size_t n, int mode)
{
    for (int i = 0; i < ndim; i++) /* dims unpacked, one tag each */
        pb_int(t, 1, dims[i]);
    pb_int(t, 2, dtype);
    if (name)
        pb_str(t, 8, name);
    size_t es = dtype == SLD_ONNX_FLOAT ? 4 : 8;
    if (mode == 0) {
        pb_bytes(t, 9, data, n * es);
    } else if (dtype == SLD_ONNX_FLOAT) {
        pb_bytes(t, 4, data, n * 4);
    } else {
        pb pk = {0};
        for (size_t i = 0; i < n; i++)
            pb_varint(&pk, (uint64_t)((const int64_t *)data)[i]);
        pb_msg(t, 7, &pk);
    }
}

static void pb_attr_ints(pb *node, const char *name, int n, const int64_t *v)
{
    pb a = {0}, pk = {0};
    pb_str(&a, 1, name);
    for (int i = 0; i < n; i++)
        pb_varint(&pk, (uint64_t)v[i]);
    pb_msg(&a, 8, &pk);
    pb_int(&a, 20, SLD_ONNX_ATTR_INTS);
    pb_msg(node, 5, &a);
}
static void pb_attr_int(pb *node, const char *name, int64_t v)
{
    pb a = {0};
    pb_str(&a, 1, name);
    pb_int(&a, 3, v);
    pb_int(&a, 20, SLD_ONNX_ATTR_INT);
    pb_msg(node, 5, &a);
}

static void pb_node(pb *g, const char *op, const char *name, const char *const *in, int n_in,
                    const char *out, pb *attrs)
{
    pb n = {0};
    for (int i = 0; i < n_in; i++)
        pb_str(&n, 1, in[i]);
    pb_str(&n, 2, out);
    pb_str(&n, 3, name);
    pb_str(&n, 4, op);
    if (attrs) {
        pb_raw(&n, attrs->p, attrs->n);
        free(attrs->p);
        memset(attrs, 0, sizeof *attrs);
    }
    pb_msg(g, 1, &n);
}

static void pb_value_info(pb *g, int field, const char *name, int ndim, const int64_t *dims)
{
    pb vi = {0}, type = {0}, tt = {0}, shape = {0};
    for (int i = 0; i < ndim; i++) {
        pb dim = {0};
        pb_int(&dim, 1, dims[i]);
        pb_msg(&shape, 1, &dim);
    }
    pb_int(&tt, 1, SLD_ONNX_FLOAT);
    pb_msg(&tt, 2, &shape);
    pb_msg(&type, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    pb_msg(g, field, &vi);
}

/* Weights of the tiny model: conv 1x1 stride 8, 3 -> 22 channels. */
static int g_nan_weights; /* tiny_weights: a NaN bias (test_nan_weights) */

static void tiny_weights(float *w, float *b)
{
    for (int o = 0; o < 22; o++) {
        for (int c = 0; c < 3; c++)
            w[o * 3 + c] = 0.05f * (float)((o * 7 + c * 3) % 11) - 0.25f;
        b[o] = 0.1f * (float)(o % 5) - 0.2f;
    }
    if (g_nan_weights)
        b[4 + 3] = NAN; /* one class row */
}

/* images [1,3,320,320] -> Conv(1x1, s8) [1,22,40,40] -> x*sigmoid(x) ->
 * MaxPool 2/2 twice ([20,20], [10,10]); each Reshape [1,22,-1], Concat axis 2
 * -> [1,22,2100] -> Sigmoid -> output0. op_override replaces the op of the
 * first MaxPool (to test unknown ops). */
static pb tiny_model(const char *op_override)
{
    pb m = {0}, g = {0}, t = {0}, a = {0}, op = {0};
    float w[66], b[22];
    tiny_weights(w, b);
    int64_t wd[4] = {22, 3, 1, 1}, bd[1] = {22}, sd[1] = {3}, shp[3] = {1, 22, -1};
    pb_tensor(&t, "conv.weight", SLD_ONNX_FLOAT, 4, wd, w, 66, 1);
    pb_msg(&g, 5, &t);
    pb_tensor(&t, "conv.bias", SLD_ONNX_FLOAT, 1, bd, b, 22, 0);
    pb_msg(&g, 5, &t);
    int64_t k1[2] = {1, 1}, s8[2] = {8, 8}, p0[4] = {0, 0, 0, 0}, k2[2] = {2, 2};
    pb_attr_ints(&a, "kernel_shape", 2, k1);
    pb_attr_ints(&a, "strides", 2, s8);
    pb_attr_ints(&a, "pads", 4, p0);
    pb_attr_int(&a, "group", 1);
    pb_node(&g, "Conv", "conv", (const char *[]){"images", "conv.weight", "conv.bias"}, 3, "c", &a);
    pb_node(&g, "Sigmoid", "sig", (const char *[]){"c"}, 1, "cs", NULL);
    pb_node(&g, "Mul", "silu", (const char *[]){"c", "cs"}, 2, "p3", NULL);
    if (!op_override) {
        pb_attr_ints(&a, "kernel_shape", 2, k2);
        pb_attr_ints(&a, "strides", 2, k2);
    }
    pb_node(&g, op_override ? op_override : "MaxPool", "pool1", (const char *[]){"p3"}, 1, "p4",
            op_override ? NULL : &a);
    pb_attr_ints(&a, "kernel_shape", 2, k2);
    pb_attr_ints(&a, "strides", 2, k2);
    pb_node(&g, "MaxPool", "pool2", (const char *[]){"p4"}, 1, "p5", &a);
    /* the shape constant as a Constant node with packed int64_data */
    pb av = {0};
    pb_str(&av, 1, "value");
    pb_tensor(&t, NULL, SLD_ONNX_INT64, 1, sd, shp, 3, 1);
    pb_msg(&av, 5, &t);
    pb_int(&av, 20, SLD_ONNX_ATTR_TENSOR);
    pb_msg(&op, 5, &av);
    pb_node(&g, "Constant", "shape", NULL, 0, "shape", &op);
    pb_node(&g, "Reshape", "r3", (const char *[]){"p3", "shape"}, 2, "r3", NULL);
    pb_node(&g, "Reshape", "r4", (const char *[]){"p4", "shape"}, 2, "r4", NULL);
    pb_node(&g, "Reshape", "r5", (const char *[]){"p5", "shape"}, 2, "r5", NULL);
    pb_attr_int(&a, "axis", 2);
    pb_node(&g, "Concat", "cat", (const char *[]){"r3", "r4", "r5"}, 3, "cat", &a);
    pb_node(&g, "Sigmoid", "prob", (const char *[]){"cat"}, 1, "output0", NULL);
    pb_str(&g, 2, "tiny");
    int64_t ind[4] = {1, 3, 320, 320}, outd[3] = {1, 22, 2100};
    pb_value_info(&g, 11, "images", 4, ind);
    pb_value_info(&g, 12, "output0", 3, outd);
    pb_int(&m, 1, 8);
    pb_str(&m, 2, "sld test");
    pb_msg(&m, 7, &g);
    pb os = {0};
    pb_str(&os, 1, "");
    pb_int(&os, 2, 17);
    pb_msg(&m, 8, &os);
    return m;
}

static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static void test_tiny_model(void)
{
    pb m = tiny_model(NULL);
    const char *seed = getenv("SLD_WRITE_ONNX_SEED"); /* regenerates fuzz/seeds/fuzz_onnx */
    if (seed) {
        FILE *fp = fopen(seed, "wb");
        if (fp) {
            fwrite(m.p, 1, m.n, fp);
            fclose(fp);
        }
    }
    sld_error err;
    sld_onnx_model *om = NULL;
    CHECK_MSG(sld_onnx_parse(m.p, m.n, "tiny", &om, &err) == SLD_OK, "%s", err.msg);
    if (om) {
        CHECK(om->ir_version == 8 && om->opset == 17 && om->n_nodes == 11 && om->n_inits == 2);
        CHECK(!strcmp(om->producer_name, "sld test") && !strcmp(om->graph_name, "tiny"));
        CHECK(om->n_inputs == 1 && om->inputs[0].ndim == 4 && om->inputs[0].dims[3] == 320);
        const sld_onnx_attr *ks = sld_onnx_node_attr(&om->nodes[0], "strides");
        CHECK(ks && ks->type == SLD_ONNX_ATTR_INTS && ks->n_ints == 2 && ks->ints[1] == 8);
        CHECK(om->inits[0].dtype == SLD_ONNX_FLOAT && om->inits[0].numel == 66);
        float w[66], b[22];
        tiny_weights(w, b);
        CHECK(!memcmp(om->inits[0].data, w, sizeof w) && !memcmp(om->inits[1].data, b, sizeof b));
        sld_onnx_free(om);
    }
    /* run it and compare with the same network written out as loops */
    sld_nudenet *nn = NULL;
    CHECK_MSG(sld_nudenet_open_mem(&nn, m.p, m.n, "tiny", &err) == SLD_OK, "%s", err.msg);
    if (nn) {
        float *in = malloc(3 * 320 * 320 * sizeof *in), *out = malloc(NOUT * sizeof *out);
        float *p3 = malloc(22 * 1600 * sizeof *p3), w[66], b[22];
        tiny_weights(w, b);
        for (int i = 0; i < 3 * 320 * 320; i++)
            in[i] = (float)((i * 2654435761u) >> 24) / 255.0f;
        CHECK_MSG(sld_nudenet_forward(nn, in, out, &err) == SLD_OK, "%s", err.msg);
        for (int o = 0; o < 22; o++)
            for (int y = 0; y < 40; y++)
                for (int x = 0; x < 40; x++) {
                    float v = b[o];
                    for (int c = 0; c < 3; c++)
                        v += w[o * 3 + c] * in[(c * 320 + y * 8) * 320 + x * 8];
                    p3[o * 1600 + y * 40 + x] = v * sigm(v);
                }
        double maxd = 0;
        for (int o = 0; o < 22; o++)
            for (int a = 0; a < A; a++) {
                float v;
                if (a < 1600) {
                    v = p3[o * 1600 + a];
                } else {
                    int lvl = a < 2000 ? 1 : 2, k = a < 2000 ? a - 1600 : a - 2000;
                    int side = lvl == 1 ? 20 : 10, f = lvl == 1 ? 2 : 4;
                    int y = k / side, x = k % side;
                    v = -INFINITY;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++)
                            v = fmaxf(v, p3[o * 1600 + (y * f + dy) * 40 + x * f + dx]);
                }
                maxd = fmax(maxd, fabs(sigm(v) - out[o * A + a]));
            }
        CHECK_MSG(maxd < 1e-6, "tiny model max |d| %g", maxd);
        free(in);
        free(out);
        free(p3);
        sld_nudenet_free(nn);
    }
    free(m.p);
}

/* Issue 11: NaN weights made every score NaN, which no threshold passes:
 * every image came out "safe". Detection now fails and says why. */
static void test_nan_weights(void)
{
    g_nan_weights = 1;
    pb m = tiny_model(NULL);
    g_nan_weights = 0;
    sld_error err;
    sld_nudenet *nn = NULL;
    CHECK_MSG(sld_nudenet_open_mem(&nn, m.p, m.n, "nan", &err) == SLD_OK, "%s", err.msg);
    if (nn) {
        uint8_t img[32 * 24 * 3];
        for (size_t i = 0; i < sizeof img; i++)
            img[i] = (uint8_t)(i * 31);
        sld_nude_det d[8];
        int nd = -1;
        sld_status st = sld_nudenet_detect(nn, img, 32, 24, d, 8, &nd, &err);
        CHECK_MSG(st == SLD_ERR_FORMAT && strstr(err.msg, "NaN") && nd == 0, "%d %s", st,
                  err.msg);
        sld_nudenet_free(nn);
    }
    free(m.p);
}

static void test_onnx_errors(void)
{
    sld_error err;
    sld_onnx_model *om;
    sld_nudenet *nn;
    pb m = tiny_model(NULL);
    /* truncation at every offset: the graph is one length-delimited field that
     * ends just before opset_import, so every cut fails cleanly */
    int fails = 0;
    for (size_t k = 0; k < m.n; k++) {
        uint8_t *cut = malloc(k + 1);
        memcpy(cut, m.p, k);
        sld_status s = sld_onnx_parse(cut, k, "cut", &om, &err);
        if (s == SLD_ERR_FORMAT && om == NULL)
            fails++;
        else
            printf("  cut at %zu: status %d\n", k, s);
        sld_onnx_free(om);
        free(cut);
    }
    CHECK(fails == (int)m.n);
    /* corrupt varints and tags */
    uint8_t bad1[12];
    memset(bad1, 0xff, sizeof bad1);
    CHECK(sld_onnx_parse(bad1, sizeof bad1, "ff", &om, &err) == SLD_ERR_FORMAT && !om);
    CHECK(strstr(err.msg, "varint") != NULL);
    uint8_t bad2[] = {0x08, 0x80}; /* ir_version, varint cut */
    CHECK(sld_onnx_parse(bad2, sizeof bad2, "v", &om, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "truncated varint") != NULL);
    uint8_t bad3[] = {0x3a, 0x7f, 0x00}; /* graph length 127 with 1 byte left */
    CHECK(sld_onnx_parse(bad3, sizeof bad3, "g", &om, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "model.graph") != NULL);
    uint8_t bad4[] = {0x0b, 0x00}; /* field 1, wire type 3 (group) */
    CHECK(sld_onnx_parse(bad4, sizeof bad4, "grp", &om, &err) == SLD_ERR_FORMAT);
    uint8_t bad5[] = {0x00, 0x01}; /* field number 0 */
    CHECK(sld_onnx_parse(bad5, sizeof bad5, "f0", &om, &err) == SLD_ERR_FORMAT);
    CHECK(sld_onnx_parse(NULL, 0, "empty", &om, &err) == SLD_ERR_FORMAT); /* no graph */
    /* flipping every byte in turn: never crashes, never leaks (ASan) */
    for (size_t k = 0; k < m.n; k++) {
        m.p[k] ^= 0x5a;
        if (sld_nudenet_open_mem(&nn, m.p, m.n, "flip", &err) == SLD_OK)
            sld_nudenet_free(nn);
        m.p[k] ^= 0x5a;
    }
    free(m.p);
    /* unknown op: SLD_ERR_UNSUPPORTED naming it */
    m = tiny_model("FancyPool");
    CHECK(sld_onnx_parse(m.p, m.n, "u", &om, &err) == SLD_OK); /* the reader does not care */
    sld_onnx_free(om);
    CHECK(sld_nudenet_open_mem(&nn, m.p, m.n, "u", &err) == SLD_ERR_UNSUPPORTED && !nn);
    CHECK_MSG(strstr(err.msg, "FancyPool") && strstr(err.msg, "pool1"), "%s", err.msg);
    free(m.p);
    /* an op we know reading a value nobody defines */
    m = tiny_model("Sigmoid"); /* pool1 becomes Sigmoid: output shape changes */
    CHECK(sld_nudenet_open_mem(&nn, m.p, m.n, "s", &err) == SLD_ERR_SHAPE && !nn);
    CHECK_MSG(strstr(err.msg, "output") != NULL, "%s", err.msg);
    free(m.p);
    /* allocation failure at every index while opening the tiny model */
    m = tiny_model(NULL);
    int ok_at = 0;
    for (long i = 1; i < 400 && !ok_at; i++) {
        sld_alloc_fail_at(i);
        sld_status s = sld_nudenet_open_mem(&nn, m.p, m.n, "oom", &err);
        sld_alloc_fail_at(0);
        if (s == SLD_OK) {
            ok_at = (int)i;
            sld_nudenet_free(nn);
        } else if (s != SLD_ERR_NOMEM || nn) {
            CHECK_MSG(0, "alloc %ld: %d %s", i, s, err.msg);
            break;
        }
    }
    CHECK(ok_at > 10);
    free(m.p);
    /* missing file */
    CHECK(sld_nudenet_open(&nn, "/nonexistent/320n.onnx", &err) == SLD_ERR_IO && !nn);
}

/* Truncations of the real-size model at a spread of offsets. */
static void test_truncated_320n(void)
{
    sld_error err;
    char *buf = NULL;
    size_t len = 0;
    CHECK(sld_file_read(fixture("nudenet/tiny-320n.onnx"), (size_t)1 << 26, &buf, &len, &err) ==
          SLD_OK);
    if (!buf)
        return;
    sld_onnx_model *om = NULL;
    CHECK_MSG(sld_onnx_parse((uint8_t *)buf, len, "320n", &om, &err) == SLD_OK, "%s", err.msg);
    if (om) {
        CHECK(om->opset == 16 && om->ir_version == 8 && om->n_nodes == 261 && om->n_inits == 127);
        int nconst = 0;
        for (int i = 0; i < om->n_nodes; i++)
            nconst += !strcmp(om->nodes[i].op_type, "Constant");
        CHECK(nconst == 22);
        sld_onnx_free(om);
    }
    size_t offs[] = {0, 1, 2, 7, 100, 1000, 5000, 20000, 60000, 100000, 500000, 4000000, 12000000,
                     len - 3000, len - 600, len - 200, len - 1};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        sld_status s = sld_onnx_parse((uint8_t *)buf, offs[i], "320n", &om, &err);
        if (s == SLD_OK) { /* a cut inside the trailing metadata can be a valid message */
            sld_nudenet *nn = NULL;
            CHECK_MSG(offs[i] > len - 3000, "cut at %zu parsed", offs[i]);
            sld_onnx_free(om);
            if (sld_nudenet_open_mem(&nn, (uint8_t *)buf, offs[i], "320n", &err) == SLD_OK)
                sld_nudenet_free(nn);
        } else {
            CHECK_MSG(s == SLD_ERR_FORMAT && !om, "cut at %zu: %s", offs[i], err.msg);
        }
    }
    sld_free(buf);
}

int main(void)
{
    sld_error err;
    if (sld_nudenet_open(&g_net, fixture("nudenet/tiny-320n.onnx"), &err) != SLD_OK)
        printf("cannot open tiny-320n.onnx: %s\n", err.msg);
    RUN(test_labels);
    RUN(test_resize_small);
    RUN(test_preprocess_png_200x120);
    RUN(test_preprocess_png_512x512);
    RUN(test_decode_goldens);
    RUN(test_nms_edges);
    RUN(test_forward_random);
    RUN(test_forward_png_200x120);
    RUN(test_forward_png_512x512);
    RUN(test_detect_png_200x120);
    RUN(test_detect_png_512x512);
    RUN(test_detect_args);
    RUN(test_tiny_model);
    RUN(test_nan_weights);
    RUN(test_onnx_errors);
    RUN(test_truncated_320n);
    sld_nudenet_free(g_net);
    TEST_END();
}
