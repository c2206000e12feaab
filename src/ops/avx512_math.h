/*
 * avx512_math.h — vector math shared by the *_avx512.c kernels (included only
 * from files built with AVX-512 flags).
 */
#ifndef SLD_AVX512_MATH_H
#define SLD_AVX512_MATH_H

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

/* True when every v value the attention reads ([B*Nk rows] x [cols], row
 * stride ld) is finite. A causal kernel multiplies masked keys' zero weights
 * into V, so 0 * NaN would reach queries the reference never lets see that
 * key; with a non-finite V the kernels hand causal calls to the reference
 * (a scan of V, small next to the attention itself). */
static inline bool sld_rows_finite(const float *v, int ld, long rows, int cols)
{
    for (long r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (!isfinite(v[(size_t)r * ld + c]))
                return false;
    return true;
}

/* exp(x) for 16 floats, within ~2 ulp of expf over the float range (Cephes
 * expf polynomial; 2^n applied with scalef so huge/tiny results saturate to
 * inf/0 without integer tricks). The clamps take x as the second operand so a
 * NaN input stays NaN. */
static inline __m512 sld_exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* 2^x for 16 floats, within ~1-2 ulp (relative error <= 2.5e-7, checked by
 * test_attention over a sweep). x = n + r with n = round(x), r in
 * [-0.5, 0.5] exact; 2^r by a degree-6 polynomial fitted for minimax
 * relative error (1.9e-9 in exact arithmetic); 2^n applied with scalef, so
 * results below 2^-149 flush to 0 and above 2^128 to inf. The clamp to -160
 * keeps -inf inputs (masked scores) from producing inf - inf = NaN; -inf and
 * anything below -150 give exactly 0. Cheaper than sld_exp512 by the
 * two-step ln2 reduction, which the attention kernels avoid by folding
 * log2(e) into the query scale. */
static inline __m512 sld_exp2_512(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-160.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(129.0f), x);
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5345799444e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3399931185e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.6184890059e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5503287771e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022646890e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9314720574e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* 2^x for x <= 0 (softmax: score minus its running maximum), same
 * polynomial as sld_exp2_512 without the clamps, so x must not be -inf or
 * NaN-producing: masked scores use a large finite negative (-2^120), which
 * gives exactly 0. */
static inline __m512 sld_exp2_neg512(__m512 x)
{
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5345799444e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3399931185e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.6184890059e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5503287771e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022646890e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9314720574e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* sld_exp2_neg512 with a degree-4 polynomial (relative error 2.6e-6), for
 * values that are rounded to bf16 (2^-9) right after. */
static inline __m512 sld_exp2_neg512_bf16(__m512 x)
{
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(9.5700966725e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5917859908e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4024744957e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9312181481e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.9999926141e-1f));
    return _mm512_scalef_ps(p, n);
}

/* In-place transpose of a 16x16 block of 32-bit elements held as 16 rows:
 * afterwards r[j] lane i = old r[i] lane j. 64 shuffles: 32-bit and 64-bit
 * interleaves inside 128-bit lanes, then a 4x4 transpose of the lanes. */
static inline void sld_transpose16x16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int g = 0; g < 8; g++) {
        t[2 * g] = _mm512_unpacklo_ps(r[2 * g], r[2 * g + 1]);
        t[2 * g + 1] = _mm512_unpackhi_ps(r[2 * g], r[2 * g + 1]);
    }
    /* u[4g + c] lane L = column 4L + c of rows 4g..4g+3 */
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 e = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 f = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 g = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 h = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(e, g, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(e, g, 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(f, h, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(f, h, 0xdd);
    }
}

/* x * sigmoid(a*x) = x / (1 + exp(-a*x)), exact division like the reference. */
static inline __m512 sld_xsigmoid512(__m512 x, float a)
{
    __m512 e = sld_exp512(_mm512_mul_ps(x, _mm512_set1_ps(-a)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* Sum of 16 lanes in a fixed order (halving tree), so the result does not
 * depend on anything but the input. */
static inline float sld_hsum512(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

static inline __mmask16 sld_tail_mask(size_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

#endif /* SLD_AVX512_MATH_H */
