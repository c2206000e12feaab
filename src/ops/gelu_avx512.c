/*
 * gelu_avx512.c — exact-GELU chains (GELU, GEGLU) with a vector erf.
 *
 * erf(|x|) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2), with
 * t = 1 / (1 + p |x|) (Abramowitz & Stegun 7.1.26): absolute error <= 1.5e-7
 * over the whole line, so GELU(x) = 0.5 x (1 + erf(x / sqrt 2)) stays within
 * ~1.5e-7 |x| of the libm-based reference (checked by test_ops). The sign is
 * copied back from x, NaN stays NaN, and exp(-x^2) underflowing to 0 gives
 * erf = +-1 exactly for large |x|. Element-wise only: results do not depend
 * on the thread count.
 */
#include "ops/avx512_math.h"
#include "ops/ops.h"

static inline __m512 erf512(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, one));
    __m512 y = _mm512_set1_ps(1.061405429f);
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(-1.453152027f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(1.421413741f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(-0.284496736f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(0.254829592f));
    y = _mm512_mul_ps(y, t);
    __m512 e = sld_exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), ax), ax));
    __m512 r = _mm512_fnmadd_ps(y, e, one);
    /* copysign(r, x) */
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512i ri = _mm512_or_si512(_mm512_castps_si512(r),
                                 _mm512_and_si512(_mm512_castps_si512(x), sign));
    return _mm512_castsi512_ps(ri);
}

static inline __m512 gelu512(__m512 x)
{
    __m512 e = erf512(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
    __m512 h = _mm512_mul_ps(_mm512_set1_ps(0.5f), x);
    return _mm512_fmadd_ps(h, e, h);
}

void sld_gelu_erf_avx512(float *x, size_t n)
{
    const size_t blk = 4096;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < n; b += blk) {
        size_t end = b + blk < n ? b + blk : n;
        for (size_t i = b; i < end; i += 16) {
            __mmask16 m = sld_tail_mask(end - i);
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);
            _mm512_mask_storeu_ps(x + i, m, gelu512(v));
        }
    }
}

void sld_geglu_avx512(const float *in, float *out, int rows, int F)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * F > 65536)
    for (int r = 0; r < rows; r++) {
        const float *h = in + (size_t)r * 2 * F, *g = h + F;
        float *o = out + (size_t)r * F;
        for (int i = 0; i < F; i += 16) {
            __mmask16 m = sld_tail_mask((size_t)(F - i));
            __m512 hv = _mm512_maskz_loadu_ps(m, h + i), gv = _mm512_maskz_loadu_ps(m, g + i);
            _mm512_mask_storeu_ps(o + i, m, _mm512_mul_ps(hv, gelu512(gv)));
        }
    }
}
