/*
 * rng.c — torch-compatible CPU generator: mt19937, uniforms, and
 * torch.randn's two float32 kernels (see rng.h and the fixtures README,
 * section 4).
 *
 * Invariants: every float operation here must round exactly as torch's
 * compiled kernel does. The AVX2 kernel's polynomials were compiled by GCC
 * with FMA contraction, so those spots call fmaf() explicitly; everywhere
 * else contraction is switched off (a fused a*b+c would change the last bit).
 */
#include "sample/rng.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- mt19937 --------------------------------------------------------- */

void sld_rng_seed(sld_rng *r, uint64_t seed, sld_rng_variant v)
{
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < SLD_MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->idx = SLD_MT_N;
    r->variant = v;
    r->has_spare = 0;
    r->spare = 0;
}

static void mt_twist(sld_rng *r)
{
    uint32_t *mt = r->mt;
    for (int i = 0; i < SLD_MT_N; i++) {
        uint32_t y = (mt[i] & 0x80000000u) | (mt[(i + 1) % SLD_MT_N] & 0x7fffffffu);
        uint32_t v = mt[(i + 397) % SLD_MT_N] ^ (y >> 1);
        if (y & 1)
            v ^= 0x9908b0dfu;
        mt[i] = v;
    }
    r->idx = 0;
}

uint32_t sld_rng_u32(sld_rng *r)
{
    if (r->idx >= SLD_MT_N)
        mt_twist(r);
    uint32_t y = r->mt[r->idx++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

float sld_rng_uniform_f32(sld_rng *r)
{
    return (float)(sld_rng_u32(r) & 0xffffffu) * 0x1p-24f; /* exact */
}

double sld_rng_uniform_f64(sld_rng *r)
{
    uint64_t hi = sld_rng_u32(r);
    uint64_t lo = sld_rng_u32(r);
    uint64_t x = (hi << 32) | lo;
    return (double)(x & ((UINT64_C(1) << 53) - 1)) * 0x1p-53; /* exact */
}

/* torch's scalar normal_distribution<double>: one Box-Muller pair per two
 * calls, the sine half cached in the generator. */
static double normal_f64(sld_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = sld_rng_uniform_f64(r);
    double u2 = sld_rng_uniform_f64(r);
    double rad = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * M_PI * u1;
    r->spare = rad * sin(theta);
    r->has_spare = 1;
    return rad * cos(theta);
}

/* ---- AVX2 kernel: avx_mathfun (Cephes) log256_ps / sincos256_ps, lane by lane */

static float bits_to_f(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static uint32_t f_to_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float avx2_logf(float x)
{
    static const float p[9] = {7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f,
                               -1.2420140846E-1f, 1.4249322787E-1f, -1.6668057665E-1f,
                               2.0000714765E-1f, -2.4999993993E-1f, 3.3333331174E-1f};
    const float q1 = -2.12194440e-4f, q2 = 0.693359375f;
    if (!(x >= 1.17549435e-38f)) /* _mm256_max_ps(x, min_norm_pos) */
        x = 1.17549435e-38f;
    uint32_t b = f_to_bits(x);
    int ei = (int)(b >> 23) - 0x7f;
    x = bits_to_f((b & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5, 1) */
    float e = (float)ei + 1.0f;
    int small = x < 0.707106781186547524f;
    float tmp = small ? x : 0.0f;
    x = x - 1.0f;
    e = e - (small ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = p[0];
    for (int k = 1; k < 9; k++)
        y = fmaf(y, x, p[k]);
    float yx = y * x;
    float eq1 = e * q1;
    y = fmaf(yx, z, eq1);
    y = fmaf(z, -0.5f, y);
    x = x + y;
    return fmaf(e, q2, x);
}

static void avx2_sincosf(float x, float *s_out, float *c_out)
{
    const float dp1 = -0.78515625f, dp2 = -2.4187564849853515625e-4f,
                dp3 = -3.77489497744594108e-8f, fopi = 1.27323954473516f;
    int sign_sin = signbit(x) != 0;
    x = fabsf(x);
    float y = x * fopi;
    int32_t j = (int32_t)y; /* cvttps: truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    int swap_sin = (j & 4) != 0;
    int poly_sel = (j & 2) == 0;
    x = fmaf(y, dp1, x);
    x = fmaf(y, dp2, x);
    x = fmaf(y, dp3, x);
    int sign_cos = ((~(j - 2)) & 4) != 0;
    sign_sin ^= swap_sin;
    float z = x * x;

    float yc = 2.443315711809948E-005f;
    yc = fmaf(yc, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    float hz = z * 0.5f;
    yc = fmaf(yc, z, -hz);
    yc = yc + 1.0f;

    float ys = -1.9515295891E-4f;
    ys = fmaf(ys, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);

    float s = poly_sel ? ys : yc;
    float c = poly_sel ? yc : ys;
    *s_out = sign_sin ? -s : s;
    *c_out = sign_cos ? -c : c;
}

void sld_rng_fill16(float d[16], sld_rng_variant v)
{
    float u[16];
    memcpy(u, d, sizeof u);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - u[j];
        float u2 = u[j + 8];
        float s, c, rad;
        if (v == SLD_RNG_AVX2) {
            rad = sqrtf(-2.0f * avx2_logf(u1));
            float theta = (float)(2.0 * M_PI) * u2;
            avx2_sincosf(theta, &s, &c);
        } else {
            rad = sqrtf(-2.0f * logf(u1));
            float theta = (float)(2.0 * M_PI * (double)u2);
            c = cosf(theta);
            s = sinf(theta);
        }
        d[j] = rad * c;
        d[j + 8] = rad * s;
    }
}

/* ---- public draws ------------------------------------------------------ */

void sld_rng_randn(sld_rng *r, float *out, size_t n)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)normal_f64(r);
        return;
    }
    /* all uniforms first, then Box-Muller per full block of 16; a ragged
     * tail redraws 16 fresh uniforms into the last 16 slots */
    for (size_t i = 0; i < n; i++)
        out[i] = sld_rng_uniform_f32(r);
    for (size_t i = 0; i + 16 <= n; i += 16)
        sld_rng_fill16(out + i, r->variant);
    if (n % 16) {
        float *t = out + n - 16;
        for (int k = 0; k < 16; k++)
            t[k] = sld_rng_uniform_f32(r);
        sld_rng_fill16(t, r->variant);
    }
}

void sld_rng_rand(sld_rng *r, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = sld_rng_uniform_f32(r);
}

void sld_rng_rand64(sld_rng *r, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = sld_rng_uniform_f64(r);
}

static void fill16_f64(double d[16])
{
    double u[16];
    memcpy(u, d, sizeof u);
    for (int j = 0; j < 8; j++) {
        double rad = sqrt(-2.0 * log(1.0 - u[j]));
        double theta = 2.0 * M_PI * u[j + 8];
        d[j] = rad * cos(theta);
        d[j + 8] = rad * sin(theta);
    }
}

void sld_rng_randn64(sld_rng *r, double *out, size_t n)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = normal_f64(r);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = sld_rng_uniform_f64(r);
    for (size_t i = 0; i + 16 <= n; i += 16)
        fill16_f64(out + i);
    if (n % 16) {
        double *t = out + n - 16;
        for (int k = 0; k < 16; k++)
            t[k] = sld_rng_uniform_f64(r);
        fill16_f64(t);
    }
}

sld_status sld_rng_new(sld_rng **out, uint64_t seed, sld_rng_variant v, sld_error *err)
{
    *out = NULL;
    if (v != SLD_RNG_AVX2 && v != SLD_RNG_DEFAULT)
        return sld_err(err, SLD_ERR_INVALID_ARG, "rng: unknown variant %d (expected avx2 or default)",
                       (int)v);
    sld_rng *r = sld_malloc(sizeof *r);
    if (!r)
        return sld_err(err, SLD_ERR_NOMEM, "rng: out of memory");
    sld_rng_seed(r, seed, v);
    *out = r;
    return SLD_OK;
}

void sld_rng_free(sld_rng *r)
{
    sld_free(r);
}
