/*
 * peak.h — this machine's measured arithmetic peaks, for every "% of peak"
 * the benches print (header only, included by bench/common.h).
 *
 * A peak is measured, never assumed: the CPU under the project changes
 * between sessions (Zen 4 runs a 512-bit FMA as two halves, Zen 5 does not;
 * some Intel parts add AMX), so a nominal "lanes x pipes x GHz" figure is
 * wrong on one machine or the other. Each loop runs independent chains on
 * registers only, so it measures the execution units and nothing else:
 *
 *   fp32 zmm   12 chains of vfmadd (16 lanes x 2 flop)
 *   fp32 ymm   12 chains of vfmadd (8 lanes x 2 flop)
 *   bf16 zmm   12 chains of vdpbf16ps (32 bf16 pairs -> 16 fp32 lanes: 64 flop)
 *   bf16 amx   4 accumulator tiles of tdpbf16ps, 16x16 fp32 += 16x32 bf16 x
 *              32x16 bf16 (16384 flop each); only where the CPU has AMX-BF16
 *              and Linux grants the tile state (ARCH_REQ_XCOMP_PERM)
 *
 * The peak of a precision is the best of its forms at that thread count
 * (fp32: zmm or ymm; bf16: AMX, else vdpbf16ps, else the fp32 peak, which is
 * what oneDNN falls back to). Each figure is the best of reps short runs: a
 * peak is an upper bound, and on a shared machine the best run is the least
 * disturbed one. Measured once per process and thread count, on first use.
 */
#ifndef SLD_BENCH_PEAK_H
#define SLD_BENCH_PEAK_H

#include "core/core.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PEAK_CHAINS 12

typedef enum { PEAK_FP32_ZMM = 0, PEAK_FP32_YMM, PEAK_BF16_ZMM, PEAK_BF16_AMX, PEAK_KINDS } peak_kind;

static const char *const peak_kind_name[PEAK_KINDS] = {"fp32_zmm", "fp32_ymm", "bf16_zmm",
                                                        "bf16_amx"};
/* floating-point operations of one loop iteration, per thread */
static const double peak_kind_flop[PEAK_KINDS] = {PEAK_CHAINS * 16 * 2.0, PEAK_CHAINS * 8 * 2.0,
                                                  PEAK_CHAINS * 32 * 2.0, 4 * 16384.0};

/* Twelve named accumulators rather than an array: an array indexed in a loop
 * may live on the stack, and then the loop measures store forwarding. */
#define PEAK_OP12(F, a, b)                                                                  \
    do {                                                                                    \
        c0 = F(c0, a, b); c1 = F(c1, a, b); c2 = F(c2, a, b); c3 = F(c3, a, b);               \
        c4 = F(c4, a, b); c5 = F(c5, a, b); c6 = F(c6, a, b); c7 = F(c7, a, b);               \
        c8 = F(c8, a, b); c9 = F(c9, a, b); c10 = F(c10, a, b); c11 = F(c11, a, b);           \
    } while (0)

#define PEAK_INIT12(SET)                                                                    \
    c0 = SET(1.00f), c1 = SET(1.01f), c2 = SET(1.02f), c3 = SET(1.03f), c4 = SET(1.04f),    \
    c5 = SET(1.05f), c6 = SET(1.06f), c7 = SET(1.07f), c8 = SET(1.08f), c9 = SET(1.09f),    \
    c10 = SET(1.10f), c11 = SET(1.11f)

/* acc = acc * a + b converges to b / (1 - a) = 1: no overflow, no denormals.
 * Each loop returns a value derived from every chain so nothing is removed. */
__attribute__((target("avx512f,fma"))) static inline float peak_loop_fp32_zmm(long iters)
{
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    __m512 PEAK_INIT12(_mm512_set1_ps);
    for (long i = 0; i < iters; i++)
        PEAK_OP12(_mm512_fmadd_ps, a, b);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static inline float peak_loop_fp32_ymm(long iters)
{
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    __m256 PEAK_INIT12(_mm256_set1_ps);
    for (long i = 0; i < iters; i++)
        PEAK_OP12(_mm256_fmadd_ps, a, b);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/* vdpbf16ps: acc += a.even*b.even + a.odd*b.odd per fp32 lane. With a and b
 * tiny the accumulators stay near their start: no overflow, no denormals. */
#define PEAK_DPBF16(c, a, b) _mm512_dpbf16_ps(c, a, b)
__attribute__((target("avx512f,avx512bf16"))) static inline float peak_loop_bf16_zmm(long iters)
{
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3380); /* bf16 6e-8 */
    const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3380);
    __m512 PEAK_INIT12(_mm512_set1_ps);
    for (long i = 0; i < iters; i++)
        PEAK_OP12(PEAK_DPBF16, a, b);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}

/* AMX: tiles 0-3 accumulate (16 rows x 16 fp32), 4-5 hold A (16 rows x 32
 * bf16), 6-7 hold B (16 rows x 32 bf16 = 32x16 in VNNI pairs). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} peak_tilecfg;

__attribute__((target("amx-tile,amx-bf16"))) static inline float peak_loop_bf16_amx(long iters)
{
    peak_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    static const uint16_t ab[16 * 32] = {0}; /* zeros: the sums stay exactly 0 */
    float out[16 * 16];
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ab, 64);
    _tile_loadd(5, ab, 64);
    _tile_loadd(6, ab, 64);
    _tile_loadd(7, ab, 64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    float s = out[0];
    _tile_stored(3, out, 64);
    s += out[255];
    _tile_release();
    return s;
}

/* 1 when this process may run kind (CPU support and, for AMX, the kernel's
 * permission for the tile state). */
static inline int peak_kind_available(peak_kind k)
{
    static int amx_ok = -1;
    __builtin_cpu_init();
    switch (k) {
    case PEAK_FP32_ZMM: return __builtin_cpu_supports("avx512f");
    case PEAK_FP32_YMM: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case PEAK_BF16_ZMM: return sld_cpu_has_avx512_bf16();
    case PEAK_BF16_AMX:
        if (amx_ok < 0)
            amx_ok = sld_cpu_has_amx_bf16() &&
                     syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                             18 /* XFEATURE_XTILEDATA */) == 0;
        return amx_ok;
    default: return 0;
    }
}

static inline float peak_run(peak_kind k, long iters)
{
    switch (k) {
    case PEAK_FP32_ZMM: return peak_loop_fp32_zmm(iters);
    case PEAK_FP32_YMM: return peak_loop_fp32_ymm(iters);
    case PEAK_BF16_ZMM: return peak_loop_bf16_zmm(iters);
    case PEAK_BF16_AMX: return peak_loop_bf16_amx(iters);
    default: return 0.0f;
    }
}

/* Best GFLOP/s of kind on `threads` threads running at once, over reps runs of
 * about `seconds` each; *checksum gets the last run's sum. 0 when the CPU
 * lacks the kind. */
static inline double peak_measure(peak_kind k, int threads, double seconds, int reps,
                                  double *checksum)
{
    if (!peak_kind_available(k))
        return 0.0;
    /* sized at a guessed 150 GFLOP/s per thread (AMX: 1500) */
    long iters = (long)(seconds * (k == PEAK_BF16_AMX ? 1500e9 : 150e9) / peak_kind_flop[k]);
    if (iters < 1000)
        iters = 1000;
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double sum = 0.0;
        double t0 = sld_time_now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        {
            if (k == PEAK_BF16_AMX)
                peak_kind_available(k); /* the tile permission is per thread */
            sum += peak_run(k, iters);
        }
        double dt = sld_time_now() - t0;
        double g = (double)iters * peak_kind_flop[k] * threads / dt * 1e-9;
        best = g > best ? g : best;
        if (checksum)
            *checksum = sum;
    }
    return best;
}

/* The measured peak in GFLOP/s for precision prec ("fp32", "bf16"; "auto"
 * is bf16 where AMX exists and fp32 elsewhere; anything else counts as fp32) on `threads` threads; measured on first
 * use for each (precision, thread count) and cached for the process
 * (about 0.3 s). Never 0 on an x86-64 CPU with AVX2. */
static inline double bench_peak_measured(const char *prec, int threads)
{
    enum { MAX_T = 256 };
    static double cache[2][MAX_T + 1];
    /* "auto" computes in bf16 only where AMX exists (ops/packed.c) */
    int bf = prec && (!strcmp(prec, "bf16") ||
                      (!strcmp(prec, "auto") && peak_kind_available(PEAK_BF16_AMX)));
    if (threads < 1)
        threads = 1;
    if (threads <= MAX_T && cache[bf][threads] > 0.0)
        return cache[bf][threads];
    double p = 0.0;
    if (bf) {
        p = peak_measure(PEAK_BF16_AMX, threads, 0.02, 5, NULL);
        if (p <= 0.0)
            p = peak_measure(PEAK_BF16_ZMM, threads, 0.02, 5, NULL);
    }
    if (p <= 0.0) {
        double z = peak_measure(PEAK_FP32_ZMM, threads, 0.02, 5, NULL);
        double y = peak_measure(PEAK_FP32_YMM, threads, 0.02, 5, NULL);
        p = z > y ? z : y;
    }
    if (threads <= MAX_T)
        cache[bf][threads] = p;
    return p;
}

#endif /* SLD_BENCH_PEAK_H */
