/*
 * ops_ref.c — scalar reference kernels: the definition of correct for every op
 * in ops.h. Plain C, single-threaded, no intrinsics. Kept forever; the fast
 * paths are tested against these.
 *
 * Numerical conventions (fast paths follow them where they can):
 *  - dot products accumulate in float, in natural index order;
 *  - mean/variance are two-pass (mean, then sum of squared deviations), biased
 *    variance like torch;
 *  - softmax subtracts the row maximum before exp;
 *  - GELU uses erff from libm (torch's exact GELU).
 */
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- GEMM ------------------------------------------------------------------ */

void sld_gemm_ref(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int p = 0; p < K; p++) {
                float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            /* beta == 0 must ignore C entirely (it may hold NaN garbage). */
            *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
        }
    }
}

void sld_linear_ref(const float *x, const float *W, const float *b, float *y, int M, int N,
                    int K)
{
    for (int i = 0; i < M; i++) {
        const float *xr = x + (size_t)i * K;
        for (int j = 0; j < N; j++) {
            const float *wr = W + (size_t)j * K;
            float acc = 0.0f;
            for (int p = 0; p < K; p++)
                acc += xr[p] * wr[p];
            y[(size_t)i * N + j] = b ? acc + b[j] : acc;
        }
    }
}

/* ---- convolution --------------------------------------------------------------- */

void sld_conv2d_out_hw(const sld_conv2d_desc *d, int *H_out, int *W_out)
{
    *H_out = (d->H + d->pad_t + d->pad_b - d->kh) / d->stride + 1;
    *W_out = (d->W + d->pad_l + d->pad_r - d->kw) / d->stride + 1;
}

void sld_conv2d_ref(const sld_conv2d_desc *d, const float *x, const float *w, const float *bias,
                    float *y)
{
    int Ho, Wo;
    sld_conv2d_out_hw(d, &Ho, &Wo);
    for (int b = 0; b < d->B; b++) {
        for (int co = 0; co < d->C_out; co++) {
            for (int oy = 0; oy < Ho; oy++) {
                for (int ox = 0; ox < Wo; ox++) {
                    float acc = 0.0f;
                    for (int ci = 0; ci < d->C_in; ci++) {
                        const float *xp = x + ((size_t)b * d->C_in + ci) * d->H * d->W;
                        const float *wp = w + ((size_t)co * d->C_in + ci) * d->kh * d->kw;
                        for (int ky = 0; ky < d->kh; ky++) {
                            int iy = oy * d->stride + ky - d->pad_t;
                            if (iy < 0 || iy >= d->H)
                                continue;
                            for (int kx = 0; kx < d->kw; kx++) {
                                int ix = ox * d->stride + kx - d->pad_l;
                                if (ix < 0 || ix >= d->W)
                                    continue;
                                acc += xp[(size_t)iy * d->W + ix] * wp[ky * d->kw + kx];
                            }
                        }
                    }
                    if (bias)
                        acc += bias[co];
                    y[(((size_t)b * d->C_out + co) * Ho + oy) * Wo + ox] = acc;
                }
            }
        }
    }
}

/* ---- normalisation ------------------------------------------------------------ */

static inline float silu1(float v) { return v / (1.0f + expf(-v)); }

void sld_group_norm_ref(const float *x, float *y, int B, int C, int HW, int G, float eps,
                        const float *gamma, const float *beta, bool silu)
{
    int cpg = C / G;
    size_t n = (size_t)cpg * HW;
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < G; g++) {
            size_t off = ((size_t)b * C + (size_t)g * cpg) * HW;
            const float *xg = x + off;
            float *yg = y + off;
            float sum = 0.0f;
            for (size_t i = 0; i < n; i++)
                sum += xg[i];
            float mean = sum / (float)n;
            float ss = 0.0f;
            for (size_t i = 0; i < n; i++) {
                float dv = xg[i] - mean;
                ss += dv * dv;
            }
            float rstd = 1.0f / sqrtf(ss / (float)n + eps);
            for (int c = 0; c < cpg; c++) {
                int ch = g * cpg + c;
                float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
                for (int i = 0; i < HW; i++) {
                    size_t k = (size_t)c * HW + i;
                    float v = (xg[k] - mean) * rstd * ga + be;
                    yg[k] = silu ? silu1(v) : v;
                }
            }
        }
    }
}

void sld_layer_norm_ref(const float *x, float *y, int rows, int C, float eps,
                        const float *gamma, const float *beta)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *yr = y + (size_t)r * C;
        float sum = 0.0f;
        for (int i = 0; i < C; i++)
            sum += xr[i];
        float mean = sum / (float)C;
        float ss = 0.0f;
        for (int i = 0; i < C; i++) {
            float dv = xr[i] - mean;
            ss += dv * dv;
        }
        float rstd = 1.0f / sqrtf(ss / (float)C + eps);
        for (int i = 0; i < C; i++) {
            float v = (xr[i] - mean) * rstd;
            yr[i] = v * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
        }
    }
}

/* ---- attention ------------------------------------------------------------------- */

/* One (query, head) row without a score buffer: recomputes q.k per use.
 * O(Nk*dh*dh), used only when the score buffer cannot be allocated. */
static void attention_row_nobuf(const float *qi, const float *kb, int ldk, const float *vb,
                                int ldv, float *oi, int nk, int h, int dh, float scale)
{
    float mx = -INFINITY;
    for (int j = 0; j < nk; j++) {
        const float *kj = kb + (size_t)j * ldk + (size_t)h * dh;
        float acc = 0.0f;
        for (int t = 0; t < dh; t++)
            acc += qi[t] * kj[t];
        if (acc * scale > mx)
            mx = acc * scale;
    }
    float den = 0.0f;
    for (int pass = 0; pass <= dh; pass++) {
        float acc_v = 0.0f;
        for (int j = 0; j < nk; j++) {
            const float *kj = kb + (size_t)j * ldk + (size_t)h * dh;
            float acc = 0.0f;
            for (int t = 0; t < dh; t++)
                acc += qi[t] * kj[t];
            float e = expf(acc * scale - mx);
            if (pass == 0)
                den += e;
            else
                acc_v += e * vb[(size_t)j * ldv + (size_t)h * dh + pass - 1];
        }
        if (pass > 0)
            oi[pass - 1] = acc_v * (den > 0.0f ? 1.0f / den : 0.0f);
    }
}

void sld_attention_ref(const float *q, int ldq, const float *k, int ldk, const float *v,
                       int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                       float scale, bool causal)
{
    /* plain malloc: the reference must not fail under allocation fault
     * injection, and a real failure takes the buffer-free path */
    float *s = malloc((size_t)(Nk > 0 ? Nk : 1) * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *qb = q + (size_t)b * Nq * ldq;
        const float *kb = k + (size_t)b * Nk * ldk;
        const float *vb = v + (size_t)b * Nk * ldv;
        float *ob = out + (size_t)b * Nq * ldo;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < Nq; i++) {
                const float *qi = qb + (size_t)i * ldq + (size_t)h * dh;
                int nk = causal ? (i + 1 < Nk ? i + 1 : Nk) : Nk;
                float *oi = ob + (size_t)i * ldo + (size_t)h * dh;
                if (!s) {
                    attention_row_nobuf(qi, kb, ldk, vb, ldv, oi, nk, h, dh, scale);
                    continue;
                }
                float mx = -INFINITY;
                for (int j = 0; j < nk; j++) {
                    const float *kj = kb + (size_t)j * ldk + (size_t)h * dh;
                    float acc = 0.0f;
                    for (int t = 0; t < dh; t++)
                        acc += qi[t] * kj[t];
                    s[j] = acc * scale;
                    if (s[j] > mx)
                        mx = s[j];
                }
                float den = 0.0f;
                for (int j = 0; j < nk; j++) {
                    s[j] = expf(s[j] - mx);
                    den += s[j];
                }
                float inv = den > 0.0f ? 1.0f / den : 0.0f;
                for (int t = 0; t < dh; t++) {
                    float acc = 0.0f;
                    for (int j = 0; j < nk; j++)
                        acc += s[j] * vb[(size_t)j * ldv + (size_t)h * dh + t];
                    oi[t] = acc * inv;
                }
            }
        }
    }
    free(s);
}

/* ---- element-wise ------------------------------------------------------------------ */

void sld_silu_ref(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = silu1(x[i]);
}

static inline float gelu1(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

void sld_gelu_erf_ref(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = gelu1(x[i]);
}

void sld_quick_gelu_ref(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void sld_geglu_ref(const float *in, float *out, int rows, int F)
{
    for (int r = 0; r < rows; r++) {
        const float *h = in + (size_t)r * 2 * F;
        const float *gate = h + F;
        float *o = out + (size_t)r * F;
        for (int i = 0; i < F; i++)
            o[i] = h[i] * gelu1(gate[i]);
    }
}

void sld_add_ref(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

void sld_nchw_to_nhwc_ref(const float *x, float *y, int B, int C, int HW)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                y[((size_t)b * HW + i) * C + c] = x[((size_t)b * C + c) * HW + i];
}

void sld_nhwc_to_nchw_ref(const float *x, float *y, int B, int C, int HW)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                y[((size_t)b * C + c) * HW + i] = x[((size_t)b * HW + i) * C + c];
}

void sld_upsample_nearest_ref(const float *x, float *y, int B, int C, int H, int W, int Ho,
                              int Wo)
{
    /* torch computes the source index in float: floor(dst * (float)in/out),
     * clamped to in-1; matching that (not exact integer division) keeps odd
     * ratios identical to the goldens. */
    float sy = (float)H / (float)Ho, sx = (float)W / (float)Wo;
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        const float *xp = x + bc * H * W;
        float *yp = y + bc * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int iy = (int)floorf((float)oy * sy);
            iy = iy < H - 1 ? iy : H - 1;
            for (int ox = 0; ox < Wo; ox++) {
                int ix = (int)floorf((float)ox * sx);
                ix = ix < W - 1 ? ix : W - 1;
                yp[(size_t)oy * Wo + ox] = xp[(size_t)iy * W + ix];
            }
        }
    }
}
