/*
 * ops.c — run-time dispatch for the ops in ops.h, and the oneDNN paths.
 *
 * Each sld_<op> picks the fastest implementation for this CPU once per call
 * from sld_cpu_isa() (cached cpuid; SLD_ISA=ref forces the scalar reference):
 *  - GEMM / linear: dnnl_sgemm (row-major), bias added by pre-filling C;
 *  - conv2d: 1x1 stride-1 as dnnl_sgemm on NCHW directly; others through a
 *    oneDNN convolution primitive with blocked activations and weights (NCHW
 *    in/out are reordered at the call boundary);
 *  - attention, norms, element-wise (GELU/GEGLU with a vector erf): our own
 *    AVX-512 kernels.
 * If oneDNN reports any failure the call falls back to the reference, so a
 * missing primitive only ever costs speed.
 *
 * The conv cache. Building a oneDNN primitive and reordering a weight tensor
 * into the primitive's blocked layout cost far more than one call, so both
 * are kept in a process-wide table protected by a mutex. It is a cache, not
 * state: dropping any entry (sld_ops_cache_clear) changes no result, only
 * time. Primitives are keyed by the full sld_conv2d_desc; reordered weights
 * by (weight pointer, desc, a sampled fingerprint of the values). Whoever
 * frees or rewrites a weight buffer in place must call sld_ops_cache_clear()
 * first (the fingerprint catches most, not all, such reuse).
 */
#include "ops/ops.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <string.h>

static bool use_fast(void) { return sld_cpu_isa() != SLD_ISA_REF; }
static bool use_avx512(void) { return sld_cpu_isa() >= SLD_ISA_AVX512; }

/* ---- GEMM ------------------------------------------------------------------ */

void sld_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (use_fast() && K > 0 &&
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                   beta, C, ldc) == dnnl_success)
        return;
    sld_gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sld_linear(const float *x, const float *W, const float *b, float *y, int M, int N, int K)
{
    if (M <= 0 || N <= 0)
        return;
    if (use_fast() && K > 0) {
        /* y = b (broadcast) then y = x W^T + 1*y: one pass over y instead of two. */
        if (b) {
#pragma omp parallel for schedule(static)
            for (int i = 0; i < M; i++)
                memcpy(y + (size_t)i * N, b, (size_t)N * sizeof(float));
        }
        if (dnnl_sgemm('N', 'T', M, N, K, 1.0f, x, K, W, K, b ? 1.0f : 0.0f, y, N) ==
            dnnl_success)
            return;
    }
    sld_linear_ref(x, W, b, y, M, N, K);
}

/* ---- convolution cache -------------------------------------------------------- */

typedef struct conv_prim {
    struct conv_prim *next;
    sld_conv2d_desc d;
    bool has_bias;
    pthread_mutex_t lock; /* held while executing: the memory objects and buffers are shared */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t conv, src_reorder, dst_reorder; /* reorders NULL when layouts match */
    dnnl_memory_t m_user_src, m_src, m_wei, m_bias, m_dst, m_user_dst;
    void *src_buf, *dst_buf; /* blocked activations (NULL when no reorder) */
    size_t wei_size;
} conv_prim;

typedef struct conv_wei {
    struct conv_wei *next;
    const float *w;
    sld_conv2d_desc d;
    uint64_t fp;
    void *buf; /* weights in the primitive's layout */
} conv_wei;

static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static conv_prim *g_prims;
static conv_wei *g_weis;
static bool g_dnnl_broken;

static bool desc_eq(const sld_conv2d_desc *a, const sld_conv2d_desc *b)
{
    return a->B == b->B && a->C_in == b->C_in && a->H == b->H && a->W == b->W &&
           a->C_out == b->C_out && a->kh == b->kh && a->kw == b->kw && a->stride == b->stride &&
           a->pad_t == b->pad_t && a->pad_l == b->pad_l && a->pad_b == b->pad_b &&
           a->pad_r == b->pad_r;
}

/* 64 values spread over the tensor, hashed: detects a freed-and-reused
 * pointer holding different weights in nearly every case, at no real cost. */
static uint64_t wei_fingerprint(const float *w, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 64; i++) {
        size_t k = (size_t)((n - 1) * (uint64_t)i / 63);
        uint32_t u;
        memcpy(&u, &w[k], 4);
        h = (h ^ u) * 1099511628211ull;
    }
    return h;
}

static void prim_free(conv_prim *p)
{
    if (!p)
        return;
    dnnl_primitive_destroy(p->conv);
    dnnl_primitive_destroy(p->src_reorder);
    dnnl_primitive_destroy(p->dst_reorder);
    dnnl_primitive_desc_destroy(p->pd);
    dnnl_memory_destroy(p->m_user_src);
    dnnl_memory_destroy(p->m_src);
    dnnl_memory_destroy(p->m_wei);
    dnnl_memory_destroy(p->m_bias);
    dnnl_memory_destroy(p->m_dst);
    dnnl_memory_destroy(p->m_user_dst);
    sld_free(p->src_buf);
    sld_free(p->dst_buf);
    pthread_mutex_destroy(&p->lock);
    sld_free(p);
}

void sld_ops_cache_clear(void)
{
    pthread_mutex_lock(&g_cache_lock);
    while (g_prims) {
        conv_prim *p = g_prims;
        g_prims = p->next;
        prim_free(p);
    }
    while (g_weis) {
        conv_wei *w = g_weis;
        g_weis = w->next;
        sld_free(w->buf);
        sld_free(w);
    }
    pthread_mutex_unlock(&g_cache_lock);
}

/* Makes a reorder primitive from a to b, or leaves *out NULL when equal. */
static bool make_reorder(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b,
                         dnnl_primitive_t *out)
{
    *out = NULL;
    if (dnnl_memory_desc_equal(a, b))
        return true;
    dnnl_primitive_desc_t rpd;
    if (dnnl_reorder_primitive_desc_create(&rpd, a, g_engine, b, g_engine, NULL) != dnnl_success)
        return false;
    bool ok = dnnl_primitive_create(out, rpd) == dnnl_success;
    dnnl_primitive_desc_destroy(rpd);
    return ok;
}

/* Builds the primitive for d; called with g_cache_lock held. */
static conv_prim *prim_build(const sld_conv2d_desc *d, bool has_bias)
{
    int Ho, Wo;
    sld_conv2d_out_hw(d, &Ho, &Wo);
    conv_prim *p = sld_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->d = *d;
    p->has_bias = has_bias;
    pthread_mutex_init(&p->lock, NULL);
    dnnl_dims_t sd = {d->B, d->C_in, d->H, d->W}, wd = {d->C_out, d->C_in, d->kh, d->kw},
                bd = {d->C_out}, dd = {d->B, d->C_out, Ho, Wo};
    dnnl_dims_t strides = {d->stride, d->stride}, pl = {d->pad_t, d->pad_l},
                pr = {d->pad_b, d->pad_r};
    dnnl_memory_desc_t src_user, dst_user, src_any, wei_any, dst_any, bias_md, wei_user;
    dnnl_convolution_desc_t cd;
    bool ok = dnnl_memory_desc_init_by_tag(&src_user, 4, sd, dnnl_f32, dnnl_nchw) == 0 &&
              dnnl_memory_desc_init_by_tag(&dst_user, 4, dd, dnnl_f32, dnnl_nchw) == 0 &&
              dnnl_memory_desc_init_by_tag(&wei_user, 4, wd, dnnl_f32, dnnl_oihw) == 0 &&
              dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any) == 0 &&
              dnnl_memory_desc_init_by_tag(&wei_any, 4, wd, dnnl_f32, dnnl_format_tag_any) == 0 &&
              dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any) == 0 &&
              dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_x) == 0 &&
              dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                 dnnl_convolution_direct, &src_any, &wei_any,
                                                 has_bias ? &bias_md : NULL, &dst_any, strides,
                                                 pl, pr) == 0 &&
              dnnl_primitive_desc_create(&p->pd, &cd, NULL, g_engine, NULL) == 0 &&
              dnnl_primitive_create(&p->conv, p->pd) == 0;
    if (!ok) {
        prim_free(p);
        return NULL;
    }
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(p->pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *wei_md =
        dnnl_primitive_desc_query_md(p->pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(p->pd, dnnl_query_dst_md, 0);
    p->wei_size = dnnl_memory_desc_get_size(wei_md);
    ok = make_reorder(&src_user, src_md, &p->src_reorder) &&
         make_reorder(dst_md, &dst_user, &p->dst_reorder) &&
         dnnl_memory_create(&p->m_user_src, &src_user, g_engine, DNNL_MEMORY_NONE) == 0 &&
         dnnl_memory_create(&p->m_user_dst, &dst_user, g_engine, DNNL_MEMORY_NONE) == 0 &&
         dnnl_memory_create(&p->m_src, src_md, g_engine, DNNL_MEMORY_NONE) == 0 &&
         dnnl_memory_create(&p->m_dst, dst_md, g_engine, DNNL_MEMORY_NONE) == 0 &&
         dnnl_memory_create(&p->m_wei, wei_md, g_engine, DNNL_MEMORY_NONE) == 0 &&
         (!has_bias || dnnl_memory_create(&p->m_bias, &bias_md, g_engine, DNNL_MEMORY_NONE) == 0);
    if (ok && p->src_reorder) {
        p->src_buf = sld_malloc_aligned(dnnl_memory_desc_get_size(src_md));
        ok = p->src_buf != NULL;
    }
    if (ok && p->dst_reorder) {
        p->dst_buf = sld_malloc_aligned(dnnl_memory_desc_get_size(dst_md));
        ok = p->dst_buf != NULL;
    }
    if (!ok) {
        prim_free(p);
        return NULL;
    }
    return p;
}

static bool exec(dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args)
{
    return dnnl_primitive_execute(prim, g_stream, n, args) == dnnl_success;
}

/* Weights for primitive p in its layout; called with g_cache_lock held. */
static void *wei_get(conv_prim *p, const float *w)
{
    const sld_conv2d_desc *d = &p->d;
    size_t n = (size_t)d->C_out * d->C_in * d->kh * d->kw;
    uint64_t fp = wei_fingerprint(w, n);
    for (conv_wei *e = g_weis; e; e = e->next)
        if (e->w == w && e->fp == fp && desc_eq(&e->d, d))
            return e->buf;
    /* Same desc but another primitive layout cannot happen: layouts depend on the desc. */
    conv_wei *e = sld_calloc(1, sizeof *e);
    void *buf = sld_malloc_aligned(p->wei_size);
    dnnl_memory_desc_t wei_user;
    dnnl_dims_t wd = {d->C_out, d->C_in, d->kh, d->kw};
    dnnl_memory_t mu = NULL, mw = NULL;
    dnnl_primitive_t r = NULL;
    const dnnl_memory_desc_t *wei_md =
        dnnl_primitive_desc_query_md(p->pd, dnnl_query_weights_md, 0);
    bool ok = e && buf &&
              dnnl_memory_desc_init_by_tag(&wei_user, 4, wd, dnnl_f32, dnnl_oihw) == 0 &&
              make_reorder(&wei_user, wei_md, &r);
    if (ok && !r) {
        memcpy(buf, w, n * sizeof(float));
    } else if (ok) {
        ok = dnnl_memory_create(&mu, &wei_user, g_engine, (void *)w) == 0 &&
             dnnl_memory_create(&mw, wei_md, g_engine, buf) == 0;
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, mu}, {DNNL_ARG_TO, mw}};
        ok = ok && exec(r, 2, a) && dnnl_stream_wait(g_stream) == dnnl_success;
    }
    dnnl_primitive_destroy(r);
    dnnl_memory_destroy(mu);
    dnnl_memory_destroy(mw);
    if (!ok) {
        sld_free(buf);
        sld_free(e);
        return NULL;
    }
    e->w = w;
    e->d = *d;
    e->fp = fp;
    e->buf = buf;
    e->next = g_weis;
    g_weis = e;
    return buf;
}

/* Runs the conv through oneDNN; false (nothing trustworthy written) on any failure. */
static bool conv_dnnl(const sld_conv2d_desc *d, const float *x, const float *w, const float *bias,
                      float *y)
{
    pthread_mutex_lock(&g_cache_lock);
    if (!g_engine && !g_dnnl_broken) {
        if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success ||
            dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success)
            g_dnnl_broken = true; /* never retried: every later call uses the reference */
    }
    conv_prim *p = NULL;
    if (!g_dnnl_broken) {
        for (p = g_prims; p; p = p->next)
            if (p->has_bias == (bias != NULL) && desc_eq(&p->d, d))
                break;
        if (!p && (p = prim_build(d, bias != NULL)) != NULL) {
            p->next = g_prims;
            g_prims = p;
        }
    }
    void *wbuf = p ? wei_get(p, w) : NULL;
    pthread_mutex_unlock(&g_cache_lock);
    if (!wbuf)
        return false;

    /* Entries are only freed by sld_ops_cache_clear, which callers must not
     * run concurrently with ops. */
    pthread_mutex_lock(&p->lock);
    bool ok = dnnl_memory_set_data_handle(p->m_user_src, (void *)x) == 0 &&
              dnnl_memory_set_data_handle(p->m_user_dst, y) == 0 &&
              dnnl_memory_set_data_handle(p->m_src, p->src_reorder ? p->src_buf : (void *)x) ==
                  0 &&
              dnnl_memory_set_data_handle(p->m_dst, p->dst_reorder ? p->dst_buf : y) == 0 &&
              dnnl_memory_set_data_handle(p->m_wei, wbuf) == 0 &&
              (!bias || dnnl_memory_set_data_handle(p->m_bias, (void *)bias) == 0);
    if (ok && p->src_reorder) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, p->m_user_src}, {DNNL_ARG_TO, p->m_src}};
        ok = exec(p->src_reorder, 2, a);
    }
    if (ok) {
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, p->m_src},
                                {DNNL_ARG_WEIGHTS, p->m_wei},
                                {DNNL_ARG_DST, p->m_dst},
                                {DNNL_ARG_BIAS, p->m_bias}};
        ok = exec(p->conv, bias ? 4 : 3, a);
    }
    if (ok && p->dst_reorder) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, p->m_dst}, {DNNL_ARG_TO, p->m_user_dst}};
        ok = exec(p->dst_reorder, 2, a);
    }
    ok = ok && dnnl_stream_wait(g_stream) == dnnl_success;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* 1x1, stride 1, unpadded: per image y[Cout,HW] = W[Cout,Cin] . x[Cin,HW]
 * (+bias pre-filled), straight on NCHW with no layout reorders. */
static bool conv1x1_gemm(const sld_conv2d_desc *d, const float *x, const float *w,
                         const float *bias, float *y)
{
    size_t HW = (size_t)d->H * d->W;
    if (HW > 0x7fffffff)
        return false;
    for (int b = 0; b < d->B; b++) {
        float *yb = y + (size_t)b * d->C_out * HW;
        if (bias) {
#pragma omp parallel for schedule(static)
            for (int c = 0; c < d->C_out; c++)
                for (size_t i = 0; i < HW; i++)
                    yb[(size_t)c * HW + i] = bias[c];
        }
        if (dnnl_sgemm('N', 'N', d->C_out, (dnnl_dim_t)HW, d->C_in, 1.0f, w, d->C_in,
                       x + (size_t)b * d->C_in * HW, (dnnl_dim_t)HW, bias ? 1.0f : 0.0f, yb,
                       (dnnl_dim_t)HW) != dnnl_success)
            return false;
    }
    return true;
}

void sld_conv2d(const sld_conv2d_desc *d, const float *x, const float *w, const float *bias,
                float *y)
{
    bool pointwise = d->kh == 1 && d->kw == 1 && d->stride == 1 && !d->pad_t && !d->pad_l &&
                     !d->pad_b && !d->pad_r;
    if (use_fast() && pointwise && d->C_in > 0 && conv1x1_gemm(d, x, w, bias, y))
        return;
    if (use_fast() && conv_dnnl(d, x, w, bias, y))
        return;
    sld_conv2d_ref(d, x, w, bias, y);
}

/* ---- normalisation ------------------------------------------------------------ */

void sld_group_norm(const float *x, float *y, int B, int C, int HW, int G, float eps,
                    const float *gamma, const float *beta, bool silu)
{
    if (use_avx512()) {
        sld_group_norm_avx512(x, y, B, C, HW, G, eps, gamma, beta, silu);
        return;
    }
    sld_group_norm_ref(x, y, B, C, HW, G, eps, gamma, beta, silu);
}

void sld_layer_norm(const float *x, float *y, int rows, int C, float eps, const float *gamma,
                    const float *beta)
{
    if (use_avx512()) {
        sld_layer_norm_avx512(x, y, rows, C, eps, gamma, beta);
        return;
    }
    sld_layer_norm_ref(x, y, rows, C, eps, gamma, beta);
}

/* ---- attention ------------------------------------------------------------------- */

void sld_attention(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   float *out, int ldo, int B, int Nq, int Nk, int heads, int dh, float scale,
                   bool causal)
{
    if (use_avx512() &&
        sld_attention_avx512(q, ldq, k, ldk, v, ldv, out, ldo, B, Nq, Nk, heads, dh, scale,
                             causal))
        return;
    sld_attention_ref(q, ldq, k, ldk, v, ldv, out, ldo, B, Nq, Nk, heads, dh, scale, causal);
}

void sld_attention_bf16(const float *q, int ldq, const float *k, int ldk, const float *v,
                        int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                        float scale, bool causal)
{
    if (use_avx512() && sld_cpu_has_avx512_bf16() &&
        sld_attention_bf16_avx512(q, ldq, k, ldk, v, ldv, out, ldo, B, Nq, Nk, heads, dh, scale,
                                  causal))
        return;
    sld_attention(q, ldq, k, ldk, v, ldv, out, ldo, B, Nq, Nk, heads, dh, scale, causal);
}

/* ---- element-wise ------------------------------------------------------------------ */

void sld_silu(float *x, size_t n)
{
    if (use_avx512())
        sld_silu_avx512(x, n);
    else
        sld_silu_ref(x, n);
}

void sld_gelu_erf(float *x, size_t n)
{
    if (use_avx512()) {
        sld_gelu_erf_avx512(x, n);
        return;
    }
    if (use_fast()) {
        /* erff is the accuracy-critical part; parallelise the libm loop. */
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i += 4096)
            sld_gelu_erf_ref(x + i, n - i < 4096 ? n - i : 4096);
        return;
    }
    sld_gelu_erf_ref(x, n);
}

void sld_quick_gelu(float *x, size_t n)
{
    if (use_avx512())
        sld_quick_gelu_avx512(x, n);
    else
        sld_quick_gelu_ref(x, n);
}

void sld_geglu(const float *in, float *out, int rows, int F)
{
    if (use_avx512()) {
        sld_geglu_avx512(in, out, rows, F);
        return;
    }
    if (use_fast()) {
#pragma omp parallel for schedule(static) if ((size_t)rows * F > 65536)
        for (int r = 0; r < rows; r++)
            sld_geglu_ref(in + (size_t)r * 2 * F, out + (size_t)r * F, 1, F);
        return;
    }
    sld_geglu_ref(in, out, rows, F);
}

void sld_add(float *y, const float *x, size_t n)
{
    if (use_fast()) {
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            y[i] += x[i];
        return;
    }
    sld_add_ref(y, x, n);
}

void sld_nchw_to_nhwc(const float *x, float *y, int B, int C, int HW)
{
    if (use_fast()) {
        /* 32x32 tiles keep both the reads and the writes in cache lines. */
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int c0 = 0; c0 < C; c0 += 32)
                for (int i0 = 0; i0 < HW; i0 += 32)
                    for (int c = c0; c < C && c < c0 + 32; c++)
                        for (int i = i0; i < HW && i < i0 + 32; i++)
                            y[((size_t)b * HW + i) * C + c] = x[((size_t)b * C + c) * HW + i];
        return;
    }
    sld_nchw_to_nhwc_ref(x, y, B, C, HW);
}

void sld_nhwc_to_nchw(const float *x, float *y, int B, int C, int HW)
{
    if (use_fast()) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int c0 = 0; c0 < C; c0 += 32)
                for (int i0 = 0; i0 < HW; i0 += 32)
                    for (int c = c0; c < C && c < c0 + 32; c++)
                        for (int i = i0; i < HW && i < i0 + 32; i++)
                            y[((size_t)b * C + c) * HW + i] = x[((size_t)b * HW + i) * C + c];
        return;
    }
    sld_nhwc_to_nchw_ref(x, y, B, C, HW);
}

void sld_upsample_nearest(const float *x, float *y, int B, int C, int H, int W, int Ho, int Wo)
{
    if (use_fast()) {
#pragma omp parallel for schedule(static)
        for (int bc = 0; bc < B * C; bc++)
            sld_upsample_nearest_ref(x + (size_t)bc * H * W, y + (size_t)bc * Ho * Wo, 1, 1, H,
                                     W, Ho, Wo);
        return;
    }
    sld_upsample_nearest_ref(x, y, B, C, H, W, Ho, Wo);
}
