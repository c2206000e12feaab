/*
 * norm_avx512.c — AVX-512 GroupNorm (+fused SiLU), LayerNorm, SiLU and
 * quick GELU.
 *
 * Determinism: each group/row is reduced by one thread with 4x16 partial sums
 * combined in a fixed order, so results are identical for any thread count
 * (they differ from the sequential _ref sums by rounding only). Mean and
 * variance are two-pass like the reference: with only 2 values per group in
 * the tiny UNet's 1x1 level, E[x^2]-E[x]^2 would cancel catastrophically.
 */
#include "ops/avx512_math.h"
#include "ops/ops.h"

#include <math.h>

/* Sum of n floats, or of (x-mean)^2 when sq; fixed association order. */
static float sum_block(const float *x, size_t n, bool sq, float mean)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 m = _mm512_set1_ps(mean);
    size_t i = 0;
    if (sq) {
        for (; i + 64 <= n; i += 64) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), m);
            __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), m);
            __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), m);
            a0 = _mm512_fmadd_ps(d0, d0, a0);
            a1 = _mm512_fmadd_ps(d1, d1, a1);
            a2 = _mm512_fmadd_ps(d2, d2, a2);
            a3 = _mm512_fmadd_ps(d3, d3, a3);
        }
        for (; i < n; i += 16) {
            __mmask16 k = sld_tail_mask(n - i);
            __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), m);
            a0 = _mm512_fmadd_ps(d, d, a0);
        }
    } else {
        for (; i + 64 <= n; i += 64) {
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
            a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
            a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
        }
        for (; i < n; i += 16)
            a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(sld_tail_mask(n - i), x + i));
    }
    return sld_hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* y = (x - mean) * a + b over n values, then SiLU when silu. */
static void affine(const float *x, float *y, size_t n, float mean, float a, float b, bool silu)
{
    __m512 vm = _mm512_set1_ps(mean), va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = sld_tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), va, vb);
        if (silu)
            v = sld_xsigmoid512(v, 1.0f);
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}

void sld_group_norm_avx512(const float *x, float *y, int B, int C, int HW, int G, float eps,
                           const float *gamma, const float *beta, bool silu)
{
    int cpg = C / G;
    size_t n = (size_t)cpg * HW;
#pragma omp parallel for schedule(static)
    for (int bg = 0; bg < B * G; bg++) {
        int b = bg / G, g = bg % G;
        size_t off = ((size_t)b * C + (size_t)g * cpg) * HW;
        float mean = sum_block(x + off, n, false, 0.0f) / (float)n;
        float var = sum_block(x + off, n, true, mean) / (float)n;
        float rstd = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < cpg; c++) {
            int ch = g * cpg + c;
            float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
            size_t o = off + (size_t)c * HW;
            affine(x + o, y + o, (size_t)HW, mean, rstd * ga, be, silu);
        }
    }
}

void sld_layer_norm_avx512(const float *x, float *y, int rows, int C, float eps,
                           const float *gamma, const float *beta)
{
#pragma omp parallel for schedule(static) if (rows * C > 16384)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *yr = y + (size_t)r * C;
        float mean = sum_block(xr, (size_t)C, false, 0.0f) / (float)C;
        float var = sum_block(xr, (size_t)C, true, mean) / (float)C;
        __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(1.0f / sqrtf(var + eps));
        for (int i = 0; i < C; i += 16) {
            __mmask16 k = sld_tail_mask((size_t)(C - i));
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), vm), vr);
            __m512 ga = gamma ? _mm512_maskz_loadu_ps(k, gamma + i) : _mm512_set1_ps(1.0f);
            __m512 be = beta ? _mm512_maskz_loadu_ps(k, beta + i) : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(yr + i, k, _mm512_fmadd_ps(v, ga, be));
        }
    }
}

static void xsigmoid_inplace(float *x, size_t n, float a)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = sld_tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, k, sld_xsigmoid512(_mm512_maskz_loadu_ps(k, x + i), a));
    }
}

void sld_silu_avx512(float *x, size_t n) { xsigmoid_inplace(x, n, 1.0f); }
void sld_quick_gelu_avx512(float *x, size_t n) { xsigmoid_inplace(x, n, 1.702f); }
