/* test_ops.c — kernel layer: hand-computed values for the _ref ops, every
 * dispatching op cross-checked against its _ref on odd shapes, and
 * thread-count independence of our own fast kernels. */
#include "ops/ops.h"
#include "ops/packed.h"
#include "test.h"

#include <omp.h>

static uint64_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *rand_buf(size_t n, float amp)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * amp;
    return p;
}

static float *copy_buf(const float *x, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    memcpy(p, x, n * sizeof(float));
    return p;
}

static bool fast_available(void) { return sld_cpu_isa() != SLD_ISA_REF; }

/* ---- reference values ----------------------------------------------------------- */

static void test_ref_known_values(void)
{
    /* gemm: [1 2; 3 4] . [5 6; 7 8] = [19 22; 43 50] */
    float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8}, C[4] = {1, 1, 1, 1};
    sld_gemm_ref(false, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 19 && C[1] == 22 && C[2] == 43 && C[3] == 50);
    /* A^T B^T with alpha 2, beta 1: A^T = [1 3; 2 4], B^T = [5 7; 6 8] */
    float C2[4] = {1, 1, 1, 1};
    sld_gemm_ref(true, true, 2, 2, 2, 2.0f, A, 2, B, 2, 1.0f, C2, 2);
    CHECK(C2[0] == 2 * 23 + 1 && C2[1] == 2 * 31 + 1 && C2[2] == 2 * 34 + 1 &&
          C2[3] == 2 * 46 + 1);
    /* linear: y = x W^T + b */
    float x[3] = {1, 2, 3}, W[6] = {1, 0, 0, 0, 1, 1}, b[2] = {0.5f, -1};
    float y[2];
    sld_linear_ref(x, W, b, y, 1, 2, 3);
    CHECK(y[0] == 1.5f && y[1] == 4.0f);

    /* 2x2 conv, 3x3 input, no padding: output [[w.patch]] */
    float xi[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wk[4] = {1, 0, 0, -1}, bias = 10;
    sld_conv2d_desc d = {1, 1, 3, 3, 1, 2, 2, 1, 0, 0, 0, 0};
    float yo[4];
    sld_conv2d_ref(&d, xi, wk, &bias, yo);
    for (int i = 0; i < 4; i++)
        CHECK(yo[i] == 10 - 4);
    /* pad (0,1,0,1) stride 2 like the VAE encoder: 3x3 kernel of ones on a 4x4 of ones */
    float x4[16], w9[9], y4[4];
    for (int i = 0; i < 16; i++)
        x4[i] = 1;
    for (int i = 0; i < 9; i++)
        w9[i] = 1;
    sld_conv2d_desc d2 = {1, 1, 4, 4, 1, 3, 3, 2, 0, 0, 1, 1};
    int Ho, Wo;
    sld_conv2d_out_hw(&d2, &Ho, &Wo);
    CHECK(Ho == 2 && Wo == 2);
    sld_conv2d_ref(&d2, x4, w9, NULL, y4);
    CHECK(y4[0] == 9 && y4[1] == 6 && y4[2] == 6 && y4[3] == 4);

    /* attention with one query and keys giving scores ln1, ln2, ln3 -> softmax 1/6,2/6,3/6 */
    float q[1] = {1}, k[3] = {0, logf(2), logf(3)}, v[3] = {6, 12, 18}, o[1];
    sld_attention_ref(q, 1, k, 1, v, 1, o, 1, 1, 1, 3, 1, 1, 1.0f, false);
    CHECK_NEAR(o[0], (6 * 1 + 12 * 2 + 18 * 3) / 6.0, 1e-5);
    /* causal: query 0 sees only key 0 */
    float q2[2] = {1, 1}, o2[2];
    sld_attention_ref(q2, 1, k, 1, v, 1, o2, 1, 1, 2, 3, 1, 1, 1.0f, true);
    CHECK_NEAR(o2[0], 6, 1e-6);
    CHECK_NEAR(o2[1], (6 * 1 + 12 * 2) / 3.0, 1e-5);

    /* group norm of {1,3} -> {-1,1} * 1/sqrt(1+eps) */
    float g[2] = {1, 3}, gy[2];
    sld_group_norm_ref(g, gy, 1, 1, 2, 1, 0.0f, NULL, NULL, false);
    CHECK_NEAR(gy[0], -1, 1e-7);
    CHECK_NEAR(gy[1], 1, 1e-7);
    float ga = 2, be = 0.5f;
    sld_group_norm_ref(g, gy, 1, 1, 2, 1, 0.0f, &ga, &be, true);
    CHECK_NEAR(gy[0], -1.5 / (1 + exp(1.5)), 1e-7);
    CHECK_NEAR(gy[1], 2.5 / (1 + exp(-2.5)), 1e-6);
    /* layer norm, and precision with a large offset (two-pass variance) */
    float ln[4] = {10000.5f, 10001.5f, 10000.5f, 10001.5f}, lo[4];
    sld_layer_norm_ref(ln, lo, 1, 4, 0.0f, NULL, NULL);
    CHECK_NEAR(lo[0], -1, 1e-6);
    CHECK_NEAR(lo[1], 1, 1e-6);

    float e[4] = {0, 1, -1, 3};
    sld_gelu_erf_ref(e, 4);
    CHECK(e[0] == 0);
    CHECK_NEAR(e[1], 0.8413447460685429, 1e-7);
    CHECK_NEAR(e[2], -0.15865525393145707, 1e-7);
    CHECK_NEAR(e[3], 2.9959502, 1e-6);
    float s[2] = {0, 2};
    sld_silu_ref(s, 2);
    CHECK(s[0] == 0);
    CHECK_NEAR(s[1], 2 / (1 + exp(-2.0)), 1e-7);
    float qg[1] = {1};
    sld_quick_gelu_ref(qg, 1);
    CHECK_NEAR(qg[0], 1 / (1 + exp(-1.702)), 1e-7);
    float gi[4] = {2, 3, 1, 0}, go[2];
    sld_geglu_ref(gi, go, 1, 2);
    CHECK_NEAR(go[0], 2 * 0.8413447460685429, 1e-6);
    CHECK(go[1] == 0);

    /* nearest 2 -> 3 picks 0,0,1 (torch) */
    float u[2] = {5, 7}, uo[3];
    sld_upsample_nearest_ref(u, uo, 1, 1, 1, 2, 1, 3);
    CHECK(uo[0] == 5 && uo[1] == 5 && uo[2] == 7);
    float t[6] = {1, 2, 3, 4, 5, 6}, tt[6], tb[6];
    sld_nchw_to_nhwc_ref(t, tt, 1, 2, 3);
    CHECK(tt[0] == 1 && tt[1] == 4 && tt[2] == 2 && tt[5] == 6);
    sld_nhwc_to_nchw_ref(tt, tb, 1, 2, 3);
    CHECK(!memcmp(t, tb, sizeof t));
}

/* ---- fast vs ref ------------------------------------------------------------------ */

static void check_gemm(bool ta, bool tb, int M, int N, int K, float beta)
{
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    float *A = rand_buf((size_t)(ta ? K : M) * lda, 1);
    float *B = rand_buf((size_t)(tb ? N : K) * ldb, 1);
    float *C0 = rand_buf((size_t)M * ldc, 1), *C1 = copy_buf(C0, (size_t)M * ldc);
    sld_gemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, beta, C0, ldc);
    sld_gemm_ref(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, beta, C1, ldc);
    CHECK_CLOSE("gemm", C0, C1, (size_t)M * ldc, 1e-5 * K);
    free(A), free(B), free(C0), free(C1);
}

static void test_gemm_vs_ref(void)
{
    for (int t = 0; t < 4; t++) {
        check_gemm(t & 1, t & 2, 7, 13, 5, 0.0f);
        check_gemm(t & 1, t & 2, 33, 17, 70, 1.0f);
    }
    check_gemm(false, true, 1, 1, 1, 0.5f);
    int M = 37, N = 29, K = 67;
    float *x = rand_buf((size_t)M * K, 1), *W = rand_buf((size_t)N * K, 1), *b = rand_buf(N, 1);
    float *y0 = malloc(sizeof(float) * M * N), *y1 = malloc(sizeof(float) * M * N);
    sld_linear(x, W, b, y0, M, N, K);
    sld_linear_ref(x, W, b, y1, M, N, K);
    CHECK_CLOSE("linear", y0, y1, (size_t)M * N, 1e-5 * K);
    sld_linear(x, W, NULL, y0, M, N, K);
    sld_linear_ref(x, W, NULL, y1, M, N, K);
    CHECK_CLOSE("linear_nobias", y0, y1, (size_t)M * N, 1e-5 * K);
    free(x), free(W), free(b), free(y0), free(y1);
}

static void check_conv(sld_conv2d_desc d, bool bias)
{
    int Ho, Wo;
    sld_conv2d_out_hw(&d, &Ho, &Wo);
    size_t nx = (size_t)d.B * d.C_in * d.H * d.W, nw = (size_t)d.C_out * d.C_in * d.kh * d.kw,
           ny = (size_t)d.B * d.C_out * Ho * Wo;
    float *x = rand_buf(nx, 1), *w = rand_buf(nw, 0.5f), *b = rand_buf(d.C_out, 1);
    float *y0 = malloc(ny * sizeof(float)), *y1 = malloc(ny * sizeof(float));
    sld_conv2d(&d, x, w, bias ? b : NULL, y0);
    sld_conv2d_ref(&d, x, w, bias ? b : NULL, y1);
    char what[96];
    snprintf(what, sizeof what, "conv B%d C%d->%d %dx%d k%d s%d", d.B, d.C_in, d.C_out, d.H,
             d.W, d.kh, d.stride);
    CHECK_CLOSE(what, y0, y1, ny, 1e-5 * d.C_in * d.kh * d.kw);
    /* second call hits the cache; changing the weights in the same buffer
     * must be noticed (after sld_ops_cache_clear at the latest) */
    for (size_t i = 0; i < nw; i++)
        w[i] = -w[i];
    sld_ops_cache_clear();
    sld_conv2d(&d, x, w, bias ? b : NULL, y0);
    sld_conv2d_ref(&d, x, w, bias ? b : NULL, y1);
    CHECK_CLOSE(what, y0, y1, ny, 1e-5 * d.C_in * d.kh * d.kw);
    free(x), free(w), free(b), free(y0), free(y1);
}

static void test_conv_vs_ref(void)
{
    check_conv((sld_conv2d_desc){2, 5, 9, 11, 7, 3, 3, 1, 1, 1, 1, 1}, true);
    check_conv((sld_conv2d_desc){1, 16, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1}, true);
    check_conv((sld_conv2d_desc){2, 6, 9, 8, 4, 3, 3, 2, 0, 0, 1, 1}, true); /* VAE down */
    check_conv((sld_conv2d_desc){1, 32, 8, 8, 32, 3, 3, 2, 1, 1, 1, 1}, false);
    check_conv((sld_conv2d_desc){3, 13, 5, 7, 6, 1, 1, 1, 0, 0, 0, 0}, true); /* 1x1 */
    check_conv((sld_conv2d_desc){1, 4, 1, 1, 8, 3, 3, 1, 1, 1, 1, 1}, true); /* 1x1 image */
}

static void check_gn(int B, int C, int HW, int G, bool silu, bool affine)
{
    size_t n = (size_t)B * C * HW;
    float *x = rand_buf(n, 3), *g = rand_buf(C, 1), *b = rand_buf(C, 1);
    for (size_t i = 0; i < n; i++)
        x[i] += 5.0f; /* offset: the two-pass variance must not lose it */
    float *y0 = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float));
    sld_group_norm(x, y0, B, C, HW, G, 1e-5f, affine ? g : NULL, affine ? b : NULL, silu);
    sld_group_norm_ref(x, y1, B, C, HW, G, 1e-5f, affine ? g : NULL, affine ? b : NULL, silu);
    CHECK_CLOSE("group_norm", y0, y1, n, 1e-5);
    /* in place */
    float *xi = copy_buf(x, n);
    sld_group_norm(xi, xi, B, C, HW, G, 1e-5f, g, b, silu);
    sld_group_norm_ref(x, y1, B, C, HW, G, 1e-5f, g, b, silu);
    CHECK_CLOSE("group_norm_inplace", xi, y1, n, 1e-5);
    free(x), free(g), free(b), free(y0), free(y1), free(xi);
}

static void test_norms_vs_ref(void)
{
    check_gn(2, 64, 49, 32, true, true);
    check_gn(2, 64, 49, 32, false, true);
    check_gn(1, 6, 1, 3, false, false); /* 2 values per group, like the 1x1 level */
    check_gn(3, 32, 100, 8, true, true);
    int rows = 9, C = 77;
    float *x = rand_buf((size_t)rows * C, 2), *g = rand_buf(C, 1), *b = rand_buf(C, 1);
    float *y0 = malloc(sizeof(float) * rows * C), *y1 = malloc(sizeof(float) * rows * C);
    sld_layer_norm(x, y0, rows, C, 1e-5f, g, b);
    sld_layer_norm_ref(x, y1, rows, C, 1e-5f, g, b);
    CHECK_CLOSE("layer_norm", y0, y1, (size_t)rows * C, 2e-6);
    free(x), free(g), free(b), free(y0), free(y1);
}

static void test_elementwise_vs_ref(void)
{
    size_t n = 1000 + 13;
    float *x = rand_buf(n, 12);
    x[0] = 0, x[1] = -100, x[2] = 100, x[3] = 88, x[4] = -88;
    float *a = copy_buf(x, n), *b = copy_buf(x, n);
    sld_silu(a, n), sld_silu_ref(b, n);
    CHECK_CLOSE("silu", a, b, n, 2e-6);
    memcpy(a, x, n * 4), memcpy(b, x, n * 4);
    sld_quick_gelu(a, n), sld_quick_gelu_ref(b, n);
    CHECK_CLOSE("quick_gelu", a, b, n, 2e-6);
    memcpy(a, x, n * 4), memcpy(b, x, n * 4);
    sld_gelu_erf(a, n), sld_gelu_erf_ref(b, n);
    /* the AVX-512 erf is within 1.5e-7 absolute: |x| <= 100 here */
    CHECK_CLOSE("gelu_erf", a, b, n, 2e-5);
    for (size_t i = 0; i < n; i++) /* relative to |x|: 0.5 |x| 1.5e-7 plus rounding */
        CHECK_MSG(fabsf(a[i] - b[i]) <= 2e-7f * fabsf(x[i]) + 1e-7f, "gelu(%g)", x[i]);
    float nanv = NAN;
    sld_silu(&nanv, 1);
    CHECK(isnan(nanv));
    int rows = 5, F = 19;
    float *in = rand_buf((size_t)rows * 2 * F, 3), *o0 = malloc(sizeof(float) * rows * F),
          *o1 = malloc(sizeof(float) * rows * F);
    sld_geglu(in, o0, rows, F), sld_geglu_ref(in, o1, rows, F);
    CHECK_CLOSE("geglu", o0, o1, (size_t)rows * F, 5e-6);
    memcpy(a, x, n * 4), memcpy(b, x, n * 4);
    sld_add(a, x, n), sld_add_ref(b, x, n);
    CHECK_CLOSE("add", a, b, n, 0);
    int B = 2, C = 37, HW = 45;
    float *t = rand_buf((size_t)B * C * HW, 1), *t0 = malloc(sizeof(float) * B * C * HW),
          *t1 = malloc(sizeof(float) * B * C * HW);
    sld_nchw_to_nhwc(t, t0, B, C, HW), sld_nchw_to_nhwc_ref(t, t1, B, C, HW);
    CHECK_CLOSE("nchw_to_nhwc", t0, t1, (size_t)B * C * HW, 0);
    sld_nhwc_to_nchw(t, t0, B, C, HW), sld_nhwc_to_nchw_ref(t, t1, B, C, HW);
    CHECK_CLOSE("nhwc_to_nchw", t0, t1, (size_t)B * C * HW, 0);
    float *u0 = malloc(sizeof(float) * B * C * 10 * 18), *u1 = malloc(sizeof(float) * B * C * 10 * 18);
    sld_upsample_nearest(t, u0, B, C, 5, 9, 10, 18);
    sld_upsample_nearest_ref(t, u1, B, C, 5, 9, 10, 18);
    CHECK_CLOSE("upsample", u0, u1, (size_t)B * C * 180, 0);
    CHECK(u1[0] == t[0] && u1[1] == t[0] && u1[2] == t[1] && u1[18] == t[0] && u1[36] == t[9]);
    free(x), free(a), free(b), free(in), free(o0), free(o1), free(t), free(t0), free(t1);
    free(u0), free(u1);
}

/* q/k/v strided inside one fused [B,N,3C] buffer; with Nq != Nk, k and v come
 * from a separate fused [B,Nk,2C] buffer instead. */
static void check_attn(int B, int Nq, int Nk, int heads, int dh, bool causal, bool fused)
{
    int C = heads * dh;
    float *qkv = NULL, *q, *k, *v, *kv = NULL, *qs = NULL;
    int ldq, ldk, ldv;
    if (fused) {
        qkv = rand_buf((size_t)B * Nq * 3 * C, 1.5f);
        q = qkv, k = qkv + C, v = qkv + 2 * C;
        ldq = ldk = ldv = 3 * C;
        Nk = Nq;
    } else {
        qs = rand_buf((size_t)B * Nq * C, 1.5f);
        kv = rand_buf((size_t)B * Nk * 2 * C, 1.5f);
        q = qs, k = kv, v = kv + C;
        ldq = C, ldk = ldv = 2 * C;
    }
    int ldo = C + 5;
    size_t no = (size_t)B * Nq * ldo;
    float *o0 = malloc(no * sizeof(float)), *o1 = malloc(no * sizeof(float));
    for (size_t i = 0; i < no; i++)
        o0[i] = o1[i] = -7.0f; /* padding columns must stay untouched */
    float scale = 1.0f / sqrtf((float)dh);
    sld_attention(q, ldq, k, ldk, v, ldv, o0, ldo, B, Nq, Nk, heads, dh, scale, causal);
    sld_attention_ref(q, ldq, k, ldk, v, ldv, o1, ldo, B, Nq, Nk, heads, dh, scale, causal);
    char what[96];
    snprintf(what, sizeof what, "attn B%d Nq%d Nk%d h%d dh%d%s", B, Nq, Nk, heads, dh,
             causal ? " causal" : "");
    CHECK_CLOSE(what, o0, o1, no, 2e-5);
    if (fast_available()) {
        /* same bits with 1 and 2 threads */
        int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        sld_attention(q, ldq, k, ldk, v, ldv, o1, ldo, B, Nq, Nk, heads, dh, scale, causal);
        omp_set_num_threads(2);
        sld_attention(q, ldq, k, ldk, v, ldv, o0, ldo, B, Nq, Nk, heads, dh, scale, causal);
        omp_set_num_threads(nt);
        CHECK_MSG(!memcmp(o0, o1, no * sizeof(float)), "%s: thread count changed bits", what);
    }
    free(qkv), free(qs), free(kv), free(o0), free(o1);
}

static void test_attention_vs_ref(void)
{
    int dhs[] = {4, 8, 40, 64, 80, 160};
    for (int i = 0; i < 6; i++) {
        check_attn(2, 70, 0, 2, dhs[i], false, true);
        check_attn(1, 19, 77, 3, dhs[i], false, false);
    }
    check_attn(2, 77, 0, 4, 16, true, true); /* CLIP text: causal, 77 tokens */
    check_attn(1, 130, 0, 1, 40, true, true);
    check_attn(1, 5, 200, 1, 8, true, false); /* causal with Nk > Nq */
    check_attn(1, 1, 1, 1, 3, false, false);
    check_attn(1, 129, 3, 2, 20, false, false);
}

static void test_threads_deterministic(void)
{
    if (!fast_available())
        return;
    int nt = omp_get_max_threads();
    int B = 2, C = 64, HW = 300, G = 32;
    size_t n = (size_t)B * C * HW;
    float *x = rand_buf(n, 2), *g = rand_buf(C, 1), *b = rand_buf(C, 1);
    float *y1 = malloc(n * 4), *y2 = malloc(n * 4);
    omp_set_num_threads(1);
    sld_group_norm(x, y1, B, C, HW, G, 1e-6f, g, b, true);
    omp_set_num_threads(2);
    sld_group_norm(x, y2, B, C, HW, G, 1e-6f, g, b, true);
    CHECK(!memcmp(y1, y2, n * 4));
    omp_set_num_threads(1);
    sld_layer_norm(x, y1, 300, 128, 1e-5f, g, b);
    omp_set_num_threads(2);
    sld_layer_norm(x, y2, 300, 128, 1e-5f, g, b);
    CHECK(!memcmp(y1, y2, n * 4));
    memcpy(y1, x, n * 4), memcpy(y2, x, n * 4);
    omp_set_num_threads(1);
    sld_silu(y1, n);
    omp_set_num_threads(2);
    sld_silu(y2, n);
    CHECK(!memcmp(y1, y2, n * 4));
    omp_set_num_threads(nt);
    free(x), free(g), free(b), free(y1), free(y2);
}

/* ---- packed (prepared-weight) convs and linears ------------------------------------ */

/* max |got - want| / max |want|: bf16 products carry ~2^-9 relative error per
 * term, so a sum of many terms stays near 1e-3 of the output scale. */
static double rel_err(const float *got, const float *want, size_t n)
{
    double md = 0, mw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= md))
            md = d; /* NaN propagates as a failure */
        if (fabs(want[i]) > mw)
            mw = fabs(want[i]);
    }
    return mw > 0 ? md / mw : md;
}

static bool g_wino; /* check_pconv: let the object use Winograd */

static void check_pconv(sld_conv2d_desc d, bool bias, sld_precision prec, double tol)
{
    int Ho, Wo;
    sld_conv2d_out_hw(&d, &Ho, &Wo);
    size_t nx = (size_t)d.B * d.C_in * d.H * d.W, ny = (size_t)d.B * d.C_out * Ho * Wo;
    float *x = rand_buf(nx, 1.0f), *w = rand_buf((size_t)d.C_out * d.C_in * d.kh * d.kw, 0.2f);
    float *b = bias ? rand_buf((size_t)d.C_out, 0.5f) : NULL, *res = rand_buf(ny, 1.0f);
    float *want = malloc(ny * 4), *got = malloc(ny * 4), *got2 = malloc(ny * 4);
    sld_conv2d_ref(&d, x, w, b, want);
    sld_pack_ws *ws = sld_pack_ws_new();
    sld_pconv *p = NULL;
    sld_error err;
    sld_conv2d_desc proto = d;
    proto.B = 1; /* the object must accept any B, H, W */
    proto.H = proto.W = 1;
    CHECK(ws && sld_pconv_new(&p, &proto, w, b, prec, &err) == SLD_OK);
    if (!p || !ws)
        goto out;
    sld_pconv_set_winograd(p, g_wino);
    bool want_packed = fast_available() && d.C_in >= 16 && d.C_out >= 16;
    CHECK(sld_pconv_packed(p) == want_packed);
    if (want_packed) /* the object must not read the caller's weights any more */
        memset(w, 0xff, (size_t)d.C_out * d.C_in * d.kh * d.kw * 4);
    CHECK(sld_pconv_run(p, ws, x, got, d.B, d.H, d.W, NULL, &err) == SLD_OK);
    double e = rel_err(got, want, ny);
    CHECK_MSG(e <= tol, "conv %d->%d k%d s%d %dx%d prec %d: rel err %.3g > %.3g", d.C_in,
              d.C_out, d.kh, d.stride, d.H, d.W, (int)prec, e, tol);
    /* same bits on a second run */
    CHECK(sld_pconv_run(p, ws, x, got2, d.B, d.H, d.W, NULL, &err) == SLD_OK);
    CHECK(!memcmp(got, got2, ny * 4));
    /* residual added from another buffer, and onto y itself */
    for (size_t i = 0; i < ny; i++)
        want[i] += res[i];
    CHECK(sld_pconv_run(p, ws, x, got, d.B, d.H, d.W, res, &err) == SLD_OK);
    CHECK(rel_err(got, want, ny) <= tol);
    memcpy(got2, res, ny * 4);
    CHECK(sld_pconv_run(p, ws, x, got2, d.B, d.H, d.W, got2, &err) == SLD_OK);
    CHECK(rel_err(got2, want, ny) <= tol);
out:
    sld_pconv_free(p);
    sld_pack_ws_free(ws);
    free(x), free(w), free(b), free(res), free(want), free(got), free(got2);
}

static void check_plin(int M, int N, int K, bool bias, sld_precision prec, double tol)
{
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 0.2f);
    float *b = bias ? rand_buf((size_t)N, 0.5f) : NULL;
    float *want = malloc((size_t)M * N * 4), *got = malloc((size_t)M * N * 4);
    sld_linear_ref(x, w, b, want, M, N, K);
    sld_pack_ws *ws = sld_pack_ws_new();
    sld_plin *p = NULL;
    sld_error err;
    CHECK(ws && sld_plin_new(&p, w, b, N, K, prec, &err) == SLD_OK);
    if (p && ws) {
        if (sld_plin_packed(p))
            memset(w, 0xff, (size_t)N * K * 4);
        CHECK(sld_plin_run(p, ws, x, got, M, &err) == SLD_OK);
        double e = rel_err(got, want, (size_t)M * N);
        CHECK_MSG(e <= tol, "linear M%d N%d K%d prec %d: rel err %.3g > %.3g", M, N, K,
                  (int)prec, e, tol);
        /* a smaller M afterwards reuses the packed weights */
        CHECK(sld_plin_run(p, ws, x, got, 1, &err) == SLD_OK);
        CHECK(rel_err(got, want, (size_t)N) <= tol);
    }
    sld_plin_free(p);
    sld_pack_ws_free(ws);
    free(x), free(w), free(b), free(want), free(got);
}

static void test_packed_vs_ref(void)
{
    const sld_precision precs[2] = {SLD_PREC_FP32, SLD_PREC_BF16};
    const double tols[2] = {1e-5, 1e-2};
    for (int pi = 0; pi < 2; pi++) {
        sld_precision pr = precs[pi];
        double t = tols[pi];
        check_pconv((sld_conv2d_desc){2, 32, 9, 7, 48, 3, 3, 1, 1, 1, 1, 1}, true, pr, t);
        check_pconv((sld_conv2d_desc){1, 16, 8, 8, 16, 3, 3, 2, 1, 1, 1, 1}, true, pr, t);
        /* VAE encoder downsample: pad right/bottom only */
        check_pconv((sld_conv2d_desc){1, 16, 9, 9, 32, 3, 3, 2, 0, 0, 1, 1}, true, pr, t);
        check_pconv((sld_conv2d_desc){2, 40, 5, 6, 16, 1, 1, 1, 0, 0, 0, 0}, true, pr, t);
        check_pconv((sld_conv2d_desc){1, 24, 6, 5, 32, 3, 3, 1, 1, 1, 1, 1}, false, pr, t);
        /* tiny channel count: plain path */
        check_pconv((sld_conv2d_desc){2, 4, 7, 7, 20, 3, 3, 1, 1, 1, 1, 1}, true, pr, t);
        check_plin(37, 48, 80, true, pr, t);
        check_plin(5, 64, 16, false, pr, t);
        check_plin(3, 8, 20, true, pr, t); /* below the packing size: plain */
    }
    /* precision resolution: bf16 only where the CPU can; auto only with AMX */
    CHECK(sld_pack_precision(SLD_PREC_FP32) == SLD_PREC_FP32);
    sld_precision a = sld_pack_precision(SLD_PREC_AUTO);
    CHECK(a == SLD_PREC_FP32 || (a == SLD_PREC_BF16 && sld_cpu_isa() >= SLD_ISA_AMX));
    if (!fast_available())
        CHECK(sld_pack_precision(SLD_PREC_BF16) == SLD_PREC_FP32);
}

/* Winograd F(4,3) (packed fp32 3x3 stride-1 convs with >= 32x32 pixels and
 * no more channels than pixels) against the _ref conv and the direct packed
 * conv on odd shapes, and every case where it must fall back to direct. */
static void test_winograd_vs_ref(void)
{
    g_wino = true;
    /* channels not multiples of 16, odd H and W, bias or not, residuals */
    check_pconv((sld_conv2d_desc){2, 20, 37, 41, 24, 3, 3, 1, 1, 1, 1, 1}, true, SLD_PREC_FP32,
                1e-5);
    check_pconv((sld_conv2d_desc){1, 48, 33, 35, 17, 3, 3, 1, 1, 1, 1, 1}, false, SLD_PREC_FP32,
                1e-5);
    /* fallbacks: thin (plain), stride 2, too few pixels, bf16 */
    check_pconv((sld_conv2d_desc){1, 4, 40, 40, 20, 3, 3, 1, 1, 1, 1, 1}, true, SLD_PREC_FP32,
                1e-5);
    check_pconv((sld_conv2d_desc){1, 16, 65, 64, 32, 3, 3, 2, 0, 0, 1, 1}, true, SLD_PREC_FP32,
                1e-5);
    check_pconv((sld_conv2d_desc){2, 32, 9, 7, 48, 3, 3, 1, 1, 1, 1, 1}, true, SLD_PREC_FP32,
                1e-5);
    check_pconv((sld_conv2d_desc){1, 32, 36, 36, 32, 3, 3, 1, 1, 1, 1, 1}, true, SLD_PREC_BF16,
                1e-2);
    g_wino = false;

    /* which kernel runs, the extra weight bytes, and Winograd vs direct */
    int Ci = 20, Co = 24, H = 37, W = 41, B = 2;
    sld_conv2d_desc d = {B, Ci, H, W, Co, 3, 3, 1, 1, 1, 1, 1};
    size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
    float *x = rand_buf(nx, 1.0f), *w = rand_buf(nw, 0.2f), *bias = rand_buf((size_t)Co, 0.5f);
    float *want = malloc(ny * 4), *yd = malloc(ny * 4), *yw = malloc(ny * 4);
    sld_conv2d_ref(&d, x, w, bias, want);
    sld_pack_ws *ws = sld_pack_ws_new();
    sld_pconv *pd = NULL, *pw = NULL, *p16 = NULL, *pb = NULL;
    sld_error err;
    CHECK(sld_pconv_new(&pd, &d, w, bias, SLD_PREC_FP32, &err) == SLD_OK);
    CHECK(sld_pconv_new(&pw, &d, w, bias, SLD_PREC_FP32, &err) == SLD_OK);
    CHECK(sld_pconv_new(&pb, &d, w, bias, SLD_PREC_BF16, &err) == SLD_OK);
    d.C_out = 8; /* thin */
    CHECK(sld_pconv_new(&p16, &d, w, bias, SLD_PREC_FP32, &err) == SLD_OK);
    d.C_out = Co;
    if (!ws || !pd || !pw || !p16 || !pb)
        goto out;
    sld_pconv_set_winograd(pw, true);
    sld_pconv_set_winograd(p16, true);
    sld_pconv_set_winograd(pb, true);
    CHECK(!sld_pconv_winograd_used(pd, B, H, W)); /* off unless asked */
    CHECK(!sld_pconv_winograd_used(p16, B, H, W));
    CHECK(!sld_pconv_winograd_used(pb, B, H, W));
    CHECK(!sld_pconv_winograd_used(pw, B, 16, 16)); /* < 32x32 pixels */
    CHECK(!sld_pconv_winograd_used(pw, 1, 5, 200)); /* 1000 pixels */
    /* oneDNN 2.x has Winograd kernels for AVX-512 machines only */
    bool fast = sld_pconv_winograd_used(pw, B, H, W);
    CHECK(fast || sld_cpu_isa() < SLD_ISA_AVX512);
    CHECK(sld_pconv_winograd_bytes(pd) == 0);
    CHECK(sld_pconv_winograd_bytes(pw) == (fast ? (size_t)32 * 32 * 9 * 4 : 0));
    CHECK(sld_pconv_run(pd, ws, x, yd, B, H, W, NULL, &err) == SLD_OK);
    CHECK(sld_pconv_run(pw, ws, x, yw, B, H, W, NULL, &err) == SLD_OK);
    double ed = rel_err(yd, want, ny), ew = rel_err(yw, want, ny), edw = rel_err(yw, yd, ny);
    printf("  winograd vs ref %.3g, direct vs ref %.3g, winograd vs direct %.3g\n", ew, ed,
           edw);
    CHECK(ed <= 1e-5 && ew <= 1e-5 && edw <= 1e-5);
    CHECK(!fast || edw > 0); /* it did take another path */
    /* a direct shape on the same object, then the Winograd one again */
    CHECK(sld_pconv_run(pw, ws, x, yd, B, 12, 13, NULL, &err) == SLD_OK);
    CHECK(sld_pconv_run(pw, ws, x, yd, B, H, W, NULL, &err) == SLD_OK);
    CHECK(!memcmp(yd, yw, ny * 4));
out:
    sld_pconv_free(pd);
    sld_pconv_free(pw);
    sld_pconv_free(p16);
    sld_pconv_free(pb);
    sld_pack_ws_free(ws);
    free(x), free(w), free(bias), free(want), free(yd), free(yw);
}

int main(void)
{
    printf("isa %s\n", sld_isa_name(sld_cpu_isa()));
    RUN(test_ref_known_values);
    RUN(test_gemm_vs_ref);
    RUN(test_conv_vs_ref);
    RUN(test_norms_vs_ref);
    RUN(test_elementwise_vs_ref);
    RUN(test_attention_vs_ref);
    RUN(test_threads_deterministic);
    RUN(test_packed_vs_ref);
    RUN(test_winograd_vs_ref);
    sld_ops_cache_clear();
    TEST_END();
}
