/*
 * bench_peak.c — this machine's measured arithmetic peaks (bench/peak.h):
 * fp32 FMA on zmm and ymm, bf16 dot products (vdpbf16ps) and AMX tiles where
 * the CPU has them, each on 1 thread and on --threads N (default 2).
 *
 * Every other bench states "% of peak" against these same loops, measured in
 * its own run (bench_peak_measured in peak.h), so a figure is never compared
 * with another machine's peak. This program prints them all for the record.
 *
 * Usage: bench_peak [--threads N] [--seconds S per run, default 0.1]
 * CSV as in common.h; gflops is the best of $SLD_BENCH_REPS (15) runs,
 * seconds that run's time; pct_peak is 100 for the best form of each
 * precision and less for the others (e.g. ymm against zmm).
 */
#include "common.h"

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
    fprintf(stderr, "bench_peak: cpu %s (baselines key)\n", bench_cpu_name());
    int tl[2] = {1, threads};
    int nt = threads > 1 ? 2 : 1;
    for (int ti = 0; ti < nt; ti++) {
        int t = tl[ti];
        double g[PEAK_KINDS] = {0}, cs[PEAK_KINDS] = {0};
        for (int k = 0; k < PEAK_KINDS; k++) {
            g[k] = peak_measure((peak_kind)k, t, seconds, reps, &cs[k]);
            if (g[k] <= 0.0)
                fprintf(stderr, "bench_peak: %s: not available on this CPU\n",
                        peak_kind_name[k]);
        }
        double fp32 = g[PEAK_FP32_ZMM] > g[PEAK_FP32_YMM] ? g[PEAK_FP32_ZMM] : g[PEAK_FP32_YMM];
        double bf16 = g[PEAK_BF16_AMX] > g[PEAK_BF16_ZMM] ? g[PEAK_BF16_AMX] : g[PEAK_BF16_ZMM];
        for (int k = 0; k < PEAK_KINDS; k++) {
            if (g[k] <= 0.0)
                continue;
            int bf = k == PEAK_BF16_ZMM || k == PEAK_BF16_AMX;
            char name[64];
            snprintf(name, sizeof name, "peak_%s", peak_kind_name[k]);
            /* seconds: one run's time at the best rate; gflop: that run's work */
            long iters = (long)(seconds * (k == PEAK_BF16_AMX ? 1500e9 : 150e9) /
                                peak_kind_flop[k]);
            if (iters < 1000)
                iters = 1000;
            double gflop = (double)iters * peak_kind_flop[k] * t * 1e-9;
            bench_csv_line_peak(t, bf ? "bf16" : "fp32", name, gflop / g[k], gflop, cs[k], -1.0,
                                bf ? bf16 : fp32);
            fprintf(stderr, "bench_peak: %-9s %d thread(s): %7.1f GFLOP/s = %6.1f per core\n",
                    peak_kind_name[k], t, g[k], g[k] / t);
        }
        if (fp32 > 0.0 && bf16 > 0.0)
            fprintf(stderr, "bench_peak: %d thread(s): bf16 peak / fp32 peak = %.2f\n", t,
                    bf16 / fp32);
    }
    return 0;
}
