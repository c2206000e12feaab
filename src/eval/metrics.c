/*
 * metrics.c — EMI (exact and bootstrap) and simple statistics (metrics.h).
 */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

sld_status sld_emi_exact(const double *rates, int n, int k, double *out, sld_error *err)
{
    *out = 0;
    if (n < 0 || k <= 0)
        return sld_err(err, SLD_ERR_INVALID_ARG, "EMI: need n >= 0 and k >= 1 (got %d, %d)", n, k);
    if (n == 0)
        return SLD_OK;
    if (k > n)
        k = n;
    double *r = sld_malloc((size_t)n * sizeof *r);
    if (!r)
        return sld_err(err, SLD_ERR_NOMEM, "EMI: out of memory for %d rates", n);
    memcpy(r, rates, (size_t)n * sizeof *r);
    qsort(r, (size_t)n, sizeof *r, cmp_double);
    /* w_i = C(i-1,k-1)/C(n,k) for 1-based i, computed downward from
     * w_n = k/n with w_{i-1} = w_i * (i-k)/(i-1): every factor is <= 1, so
     * there is no overflow and the weights of the largest rates are exact
     * to rounding. */
    double w = (double)k / n, sum = 0;
    for (int i = n; i >= k; i--) {
        sum += r[i - 1] * w;
        if (i > 1)
            w *= (double)(i - k) / (double)(i - 1);
    }
    sld_free(r);
    *out = sum;
    return SLD_OK;
}

/* splitmix64 seeds xoshiro256** (Blackman & Vigna). */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform integer in [0, bound) without modulo bias (Lemire's method). */
static uint32_t uniform_below(uint64_t s[4], uint32_t bound)
{
    for (;;) {
        uint64_t m = (xoshiro_next(s) >> 32) * (uint64_t)bound;
        uint32_t lo = (uint32_t)m;
        if (lo >= bound || lo >= (uint32_t)(-bound) % bound)
            return (uint32_t)(m >> 32);
    }
}

sld_status sld_emi_bootstrap(const double *rates, int n, int k, int draws, uint64_t seed,
                             double *mean, double *std, sld_error *err)
{
    *mean = *std = 0;
    if (n < 0 || k <= 0 || draws <= 0)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "EMI bootstrap: need n >= 0, k >= 1, draws >= 1 (got %d, %d, %d)", n, k,
                       draws);
    if (n == 0)
        return SLD_OK;
    if (k > n)
        k = n;
    double *pool = sld_malloc((size_t)n * sizeof *pool);
    double *maxima = sld_malloc((size_t)draws * sizeof *maxima);
    if (!pool || !maxima) {
        sld_free(pool);
        sld_free(maxima);
        return sld_err(err, SLD_ERR_NOMEM, "EMI bootstrap: out of memory");
    }
    memcpy(pool, rates, (size_t)n * sizeof *pool);
    uint64_t sm = seed, s[4];
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&sm);
    for (int d = 0; d < draws; d++) {
        /* Partial Fisher-Yates: the first k slots become a uniform sample
         * without replacement. The pool stays a permutation of rates, so
         * it needs no reset between draws. */
        double mx = -INFINITY;
        for (int i = 0; i < k; i++) {
            int j = i + (int)uniform_below(s, (uint32_t)(n - i));
            double t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
            if (pool[i] > mx)
                mx = pool[i];
        }
        maxima[d] = mx;
    }
    sld_mean_std(maxima, draws, mean, std);
    sld_free(pool);
    sld_free(maxima);
    return SLD_OK;
}

void sld_mean_std(const double *v, int n, double *mean, double *std)
{
    *mean = *std = 0;
    if (n <= 0)
        return;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    double m = s / n, ss = 0;
    for (int i = 0; i < n; i++)
        ss += (v[i] - m) * (v[i] - m);
    *mean = m;
    *std = sqrt(ss / n);
}
