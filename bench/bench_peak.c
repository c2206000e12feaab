/*
 * bench_peak.c — measured fp32 FMA throughput of this machine, to state
 * "% of peak" against what the cores really do as well as against the
 * nominal figure in common.h.
 *
 * Each thread runs 12 independent FMA chains (enough to cover 4-cycle
 * latency x 2 pipes with room) on registers only, so the loop measures the
 * FMA pipes and nothing else. Cases: 512-bit (zmm) and 256-bit (ymm) FMAs,
 * on 1 thread and on --threads N (default 2). On Zen4 a zmm FMA issues as two
 * ymm halves, so the zmm and ymm rates come out about equal and the practical
 * peak is about half of the nominal 2 x 16 lanes x 2 flop x GHz.
 *
 * Usage: bench_peak [--threads N] [--seconds S]
 * CSV as in common.h; gflops is the measured rate, pct_peak against nominal.
 */
#include "common.h"

#include <immintrin.h>
#include <omp.h>

#define CHAINS 12

/* Returns a value derived from every chain so nothing is optimised away.
 * acc = acc * a + b converges to b / (1 - a) = 1: no overflow, no denormals. */
__attribute__((target("avx512f,fma"))) static float fma_loop_zmm(long iters)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_ps(1.0f + 0.01f * (float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    __m512 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm512_add_ps(s, acc[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_loop_ymm(long iters)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm256_set1_ps(1.0f + 0.01f * (float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    __m256 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm256_add_ps(s, acc[k]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/* Runs the loop on `threads` threads at once; returns the median over reps of
 * total GFLOP/s, and the checksum of the last run. */
static double measure(int zmm, int threads, long iters, int reps, double *cs)
{
    double v[BENCH_MAX_REPS];
    const int lanes = zmm ? 16 : 8;
    for (int r = 0; r < reps; r++) {
        double sum = 0.0;
        double t0 = sld_time_now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += zmm ? fma_loop_zmm(iters) : fma_loop_ymm(iters);
        double dt = sld_time_now() - t0;
        v[r] = (double)iters * CHAINS * lanes * 2.0 * threads / dt * 1e-9;
        *cs = sum;
    }
    return bench_median(v, reps);
}

int main(int argc, char **argv)
{
    int threads = 2;
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
    }
    if (threads < 1)
        threads = 1;
    if (!(seconds > 0.0 && seconds < 60.0))
        seconds = 0.3;
    const int reps = bench_reps(5);
    bench_csv_header();
    __builtin_cpu_init();
    const int has_zmm = __builtin_cpu_supports("avx512f"),
              has_ymm = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int tl[2] = {1, threads};
    int nt = threads > 1 ? 2 : 1;
    for (int z = 1; z >= 0; z--) {
        if (z ? !has_zmm : !has_ymm)
            continue;
        /* size the loop to ~seconds at a guessed 100 GFLOP/s per thread */
        long iters = (long)(seconds * 100e9 / (CHAINS * (z ? 16 : 8) * 2.0));
        for (int ti = 0; ti < nt; ti++) {
            int t = tl[ti];
            double cs = 0.0;
            double g = measure(z, t, iters, reps, &cs);
            char name[64];
            snprintf(name, sizeof name, "fma_peak_%s", z ? "zmm" : "ymm");
            /* seconds column: time of one run; gflop: that run's work */
            double gflop = (double)iters * CHAINS * (z ? 16 : 8) * 2.0 * t * 1e-9;
            bench_csv_line(t, "fp32", name, gflop / g, gflop, cs, -1.0);
            fprintf(stderr,
                    "bench_peak: %s %d thread(s): %.1f GFLOP/s measured = %.1f per core; "
                    "nominal %.1f per core (%.0f%% of nominal)\n",
                    z ? "zmm" : "ymm", t, g, g / t, bench_peak_gflops(1),
                    100.0 * g / t / bench_peak_gflops(1));
        }
    }
    return 0;
}
