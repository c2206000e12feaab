/*
 * ops.c — run-time dispatch for the ops in ops.h. Each sld_<op> picks the
 * fastest available implementation for this CPU (sld_cpu_isa(); SLD_ISA=ref
 * forces the scalar reference).
 */
#include "ops/ops.h"

void sld_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    sld_gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sld_linear(const float *x, const float *W, const float *b, float *y, int M, int N, int K)
{
    sld_linear_ref(x, W, b, y, M, N, K);
}

void sld_conv2d(const sld_conv2d_desc *d, const float *x, const float *w, const float *bias,
                float *y)
{
    sld_conv2d_ref(d, x, w, bias, y);
}

void sld_group_norm(const float *x, float *y, int B, int C, int HW, int G, float eps,
                    const float *gamma, const float *beta, bool silu)
{
    sld_group_norm_ref(x, y, B, C, HW, G, eps, gamma, beta, silu);
}

void sld_layer_norm(const float *x, float *y, int rows, int C, float eps, const float *gamma,
                    const float *beta)
{
    sld_layer_norm_ref(x, y, rows, C, eps, gamma, beta);
}

void sld_attention(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   float *out, int ldo, int B, int Nq, int Nk, int heads, int dh, float scale,
                   bool causal)
{
    sld_attention_ref(q, ldq, k, ldk, v, ldv, out, ldo, B, Nq, Nk, heads, dh, scale, causal);
}

void sld_silu(float *x, size_t n) { sld_silu_ref(x, n); }
void sld_gelu_erf(float *x, size_t n) { sld_gelu_erf_ref(x, n); }
void sld_quick_gelu(float *x, size_t n) { sld_quick_gelu_ref(x, n); }
void sld_geglu(const float *in, float *out, int rows, int F) { sld_geglu_ref(in, out, rows, F); }
void sld_add(float *y, const float *x, size_t n) { sld_add_ref(y, x, n); }

void sld_nchw_to_nhwc(const float *x, float *y, int B, int C, int HW)
{
    sld_nchw_to_nhwc_ref(x, y, B, C, HW);
}

void sld_nhwc_to_nchw(const float *x, float *y, int B, int C, int HW)
{
    sld_nhwc_to_nchw_ref(x, y, B, C, HW);
}

void sld_upsample_nearest(const float *x, float *y, int B, int C, int H, int W, int Ho, int Wo)
{
    sld_upsample_nearest_ref(x, y, B, C, H, W, Ho, Wo);
}
