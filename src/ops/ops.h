/*
 * ops.h — the kernels every network is built from.
 *
 * All tensors are float32, dense, row-major; images are NCHW. Each op has a
 * scalar reference `sld_<op>_ref` (ops_ref.c, kept forever, the definition of
 * correct) and the dispatching entry point `sld_<op>` that picks the fastest
 * implementation for this CPU at run time (oneDNN for GEMM/convolution, our
 * own AVX-512 kernels for attention, norms and element-wise chains; SLD_ISA=ref
 * forces the reference). Fast paths parallelise with OpenMP over independent
 * outputs only, so results do not depend on the thread count.
 * Inputs and outputs never alias unless a function says so.
 */
#ifndef SLD_OPS_H
#define SLD_OPS_H

#include "core/core.h"

/* ---- GEMM ------------------------------------------------------------------ */

/* C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C, where op(A) = A [M,K]
 * (lda) or A^T for A stored [K,M] when trans_a, and op(B) = B [K,N] (ldb) or
 * B^T for B stored [N,K] when trans_b. Leading dimensions in elements. */
void sld_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);
void sld_gemm_ref(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Linear layer (torch.nn.Linear): y[M,N] = x[M,K] . W[N,K]^T + b[N]
 * (b may be NULL). */
void sld_linear(const float *x, const float *W, const float *b, float *y, int M, int N, int K);
void sld_linear_ref(const float *x, const float *W, const float *b, float *y, int M, int N,
                    int K);

/* ---- convolution --------------------------------------------------------------- */

typedef struct {
    int B, C_in, H, W;        /* input  x: [B,C_in,H,W] */
    int C_out, kh, kw;        /* weight w: [C_out,C_in,kh,kw], bias [C_out] or NULL */
    int stride;
    int pad_t, pad_l, pad_b, pad_r; /* zero padding */
} sld_conv2d_desc;

/* Output size: H_out = (H + pad_t + pad_b - kh) / stride + 1, same for W. */
void sld_conv2d_out_hw(const sld_conv2d_desc *d, int *H_out, int *W_out);
/* y: [B,C_out,H_out,W_out]. */
void sld_conv2d(const sld_conv2d_desc *d, const float *x, const float *w, const float *bias,
                float *y);
void sld_conv2d_ref(const sld_conv2d_desc *d, const float *x, const float *w, const float *bias,
                    float *y);

/* ---- normalisation ------------------------------------------------------------ */

/* GroupNorm over x: [B,C,HW] with G groups (torch.nn.GroupNorm), affine
 * gamma/beta [C]; when silu, y = SiLU(norm) (fused). y may alias x. */
void sld_group_norm(const float *x, float *y, int B, int C, int HW, int G, float eps,
                    const float *gamma, const float *beta, bool silu);
void sld_group_norm_ref(const float *x, float *y, int B, int C, int HW, int G, float eps,
                        const float *gamma, const float *beta, bool silu);

/* LayerNorm over the last dim: x [rows, C]. y may alias x. */
void sld_layer_norm(const float *x, float *y, int rows, int C, float eps, const float *gamma,
                    const float *beta);
void sld_layer_norm_ref(const float *x, float *y, int rows, int C, float eps,
                        const float *gamma, const float *beta);

/* ---- attention ------------------------------------------------------------------- */

/* Multi-head scaled dot-product attention, token-major layout:
 *   q: [B, Nq, heads*dh] with row stride ldq (elements between tokens),
 *   k, v: [B, Nk, heads*dh] with row strides ldk, ldv,
 *   out: [B, Nq, heads*dh] with row stride ldo.
 * Batch strides are Nq*ldq, Nk*ldk, Nk*ldv, Nq*ldo. Head h uses columns
 * [h*dh, (h+1)*dh). out = softmax(scale * q k^T [+ causal mask]) v, softmax
 * in float32. causal masks key j > query i (CLIP text). This lets a fused
 * QKV projection output [B,N,3C] be passed as q=p, k=p+C, v=p+2C, ld=3C. */
void sld_attention(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   float *out, int ldo, int B, int Nq, int Nk, int heads, int dh, float scale,
                   bool causal);
void sld_attention_ref(const float *q, int ldq, const float *k, int ldk, const float *v,
                       int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                       float scale, bool causal);
/* Same contract, with QK^T and PV computed from bf16-rounded q, k, v and
 * probabilities (fp32 accumulation, fp32 softmax): about 2-3 significant
 * digits, roughly twice the fp32 speed where AVX512-BF16 exists. Falls back
 * to sld_attention (fp32) on CPUs without it and under SLD_ISA=ref. */
void sld_attention_bf16(const float *q, int ldq, const float *k, int ldk, const float *v,
                        int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                        float scale, bool causal);

/* ---- element-wise ------------------------------------------------------------------ */

/* In place over n values. */
void sld_silu(float *x, size_t n);
void sld_gelu_erf(float *x, size_t n);    /* exact GELU: 0.5x(1+erf(x/sqrt2)) */
void sld_quick_gelu(float *x, size_t n);  /* x * sigmoid(1.702x) */
/* GEGLU (diffusers GEGLU): in [rows, 2F] = (h | gate) -> out [rows, F] =
 * h * gelu_erf(gate). */
void sld_geglu(const float *in, float *out, int rows, int F);
/* y[i] += x[i] */
void sld_add(float *y, const float *x, size_t n);
/* NCHW <-> token-major: x [B,C,HW] -> y [B,HW,C] and back. */
void sld_nchw_to_nhwc(const float *x, float *y, int B, int C, int HW);
void sld_nhwc_to_nchw(const float *x, float *y, int B, int C, int HW);
/* Nearest-neighbour resize like torch F.interpolate(mode="nearest"):
 * src = floor(dst * in / out). x [B,C,H,W] -> y [B,C,Ho,Wo]. */
void sld_upsample_nearest(const float *x, float *y, int B, int C, int H, int W, int Ho, int Wo);

/* Scalar references of the element-wise ops above (same contracts). */
void sld_silu_ref(float *x, size_t n);
void sld_gelu_erf_ref(float *x, size_t n);
void sld_quick_gelu_ref(float *x, size_t n);
void sld_geglu_ref(const float *in, float *out, int rows, int F);
void sld_add_ref(float *y, const float *x, size_t n);
void sld_nchw_to_nhwc_ref(const float *x, float *y, int B, int C, int HW);
void sld_nhwc_to_nchw_ref(const float *x, float *y, int B, int C, int HW);
void sld_upsample_nearest_ref(const float *x, float *y, int B, int C, int H, int W, int Ho,
                              int Wo);

/* ---- caches and per-ISA kernels ----------------------------------------------------- */

/* Drops the process-wide conv cache (oneDNN primitives and weights reordered
 * into their blocked layout, keyed by weight pointer). Call it before freeing
 * or rewriting in place any weight buffer passed to sld_conv2d (e.g. in model
 * close), and never concurrently with running ops. Results never depend on it. */
void sld_ops_cache_clear(void);

/* AVX-512 kernels (*_avx512.c); call only when sld_cpu_isa() >= SLD_ISA_AVX512.
 * Same contracts as the ops above. sld_attention_avx512 returns false (writing
 * nothing) when it cannot run (e.g. out of memory) so the caller falls back. */
bool sld_attention_avx512(const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                          float scale, bool causal);
/* Call only when sld_cpu_has_avx512_bf16(); false (writing nothing) when it
 * cannot run. */
bool sld_attention_bf16_avx512(const float *q, int ldq, const float *k, int ldk, const float *v,
                               int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads,
                               int dh, float scale, bool causal);
/* y[i] = 2^x[i] with the attention kernels' exp (exposed for its accuracy test). */
void sld_exp2_avx512(const float *x, float *y, size_t n);
void sld_group_norm_avx512(const float *x, float *y, int B, int C, int HW, int G, float eps,
                           const float *gamma, const float *beta, bool silu);
void sld_layer_norm_avx512(const float *x, float *y, int rows, int C, float eps,
                           const float *gamma, const float *beta);
void sld_silu_avx512(float *x, size_t n);
void sld_gelu_erf_avx512(float *x, size_t n);
void sld_geglu_avx512(const float *in, float *out, int rows, int F);
void sld_quick_gelu_avx512(float *x, size_t n);

#endif /* SLD_OPS_H */
