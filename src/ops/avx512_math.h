/*
 * avx512_math.h — vector math shared by the *_avx512.c kernels (included only
 * from files built with AVX-512 flags).
 */
#ifndef SLD_AVX512_MATH_H
#define SLD_AVX512_MATH_H

#include <immintrin.h>

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
