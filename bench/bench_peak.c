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
 * Usage: bench_peak [--threads N] [--seconds S per run, default 0.1]
 * CSV as in common.h; gflops is the best of $SLD_BENCH_REPS (15) runs,
 * seconds that run's time, pct_peak the rate against the nominal peak.
 */
#include "common.h"

#include <immintrin.h>
#include <omp.h>

#define CHAINS 12

/* Returns a value derived from every chain so nothing is optimised away.
 * acc = acc * a + b converges to b / (1 - a) = 1: no overflow, no denormals. */
/* Twelve named accumulators rather than an array: an array indexed in a loop
 * may live on the stack, and then the loop measures store forwarding. */
#define FMA12(F, a, b)                                                                     \
    do {                                                                                   \
        c0 = F(c0, a, b); c1 = F(c1, a, b); c2 = F(c2, a, b); c3 = F(c3, a, b);              \
        c4 = F(c4, a, b); c5 = F(c5, a, b); c6 = F(c6, a, b); c7 = F(c7, a, b);              \
        c8 = F(c8, a, b); c9 = F(c9, a, b); c10 = F(c10, a, b); c11 = F(c11, a, b);          \
    } while (0)

__attribute__((target("avx512f,fma"))) static float fma_loop_zmm(long iters)
{
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    __m512 c0 = _mm512_set1_ps(1.00f), c1 = _mm512_set1_ps(1.01f), c2 = _mm512_set1_ps(1.02f),
           c3 = _mm512_set1_ps(1.03f), c4 = _mm512_set1_ps(1.04f), c5 = _mm512_set1_ps(1.05f),
           c6 = _mm512_set1_ps(1.06f), c7 = _mm512_set1_ps(1.07f), c8 = _mm512_set1_ps(1.08f),
           c9 = _mm512_set1_ps(1.09f), c10 = _mm512_set1_ps(1.10f), c11 = _mm512_set1_ps(1.11f);
    for (long i = 0; i < iters; i++)
        FMA12(_mm512_fmadd_ps, a, b);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_loop_ymm(long iters)
{
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    __m256 c0 = _mm256_set1_ps(1.00f), c1 = _mm256_set1_ps(1.01f), c2 = _mm256_set1_ps(1.02f),
           c3 = _mm256_set1_ps(1.03f), c4 = _mm256_set1_ps(1.04f), c5 = _mm256_set1_ps(1.05f),
           c6 = _mm256_set1_ps(1.06f), c7 = _mm256_set1_ps(1.07f), c8 = _mm256_set1_ps(1.08f),
           c9 = _mm256_set1_ps(1.09f), c10 = _mm256_set1_ps(1.10f), c11 = _mm256_set1_ps(1.11f);
    for (long i = 0; i < iters; i++)
        FMA12(_mm256_fmadd_ps, a, b);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/* Runs the loop on `threads` threads at once; returns the best total GFLOP/s
 * over reps (a peak is an upper bound: on a shared machine the best short
 * run is the one least disturbed by other processes), and the checksum of
 * the last run. */
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
    double best = 0.0;
    for (int r = 0; r < reps; r++)
        best = v[r] > best ? v[r] : best;
    return best;
}

int main(int argc, char **argv)
{
    int threads = 2;
    double seconds = 0.1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
    }
    if (threads < 1)
        threads = 1;
    if (!(seconds > 0.0 && seconds < 60.0))
        seconds = 0.1;
    const int reps = bench_reps(15);
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
