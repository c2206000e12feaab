/*
 * common.h — helpers shared by the bench/bench_*.c programs (header only;
 * every function is static inline so a bench that skips one still builds
 * under -Werror).
 *
 * One CSV line per case, columns (docs/BENCH.md says what each means):
 *   commit,isa,threads,precision,case,seconds,gflops,pct_peak,
 *   ratio_to_baseline,checksum,rss_mib
 * - commit: $SLD_COMMIT, else `git rev-parse --short HEAD`, else "unknown".
 * - pct_peak: gflops against this machine's peak for the case's precision
 *   and thread count, measured in the same run by bench/peak.h (fp32: the
 *   better of zmm/ymm FMA; bf16: AMX, else vdpbf16ps). Never a nominal figure:
 *   the CPU changes between sessions.
 * - peak_gflops (last column): that measured peak.
 * - ratio_to_baseline: baseline seconds / seconds (> 1: faster than the
 *   baseline) for the same isa, threads, precision and case in
 *   bench/baselines/<cpu>.csv, <cpu> = vendor, family and model from cpuid
 *   (e.g. amd-f26-m2), so one CPU never compares against another's file;
 *   empty when there is none.
 * - rss_mib: peak resident set (VmHWM) at the end of the case; for the
 *   memory-growth cases the current resident set instead.
 */
#ifndef SLD_BENCH_COMMON_H
#define SLD_BENCH_COMMON_H

#include "core/core.h"
#include "sld.h"
#include "peak.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_MAX_REPS 64

static inline const char *bench_commit(void)
{
    static char id[64];
    if (id[0])
        return id;
    const char *e = getenv("SLD_COMMIT");
    if (e && *e) {
        snprintf(id, sizeof id, "%s", e);
        return id;
    }
    snprintf(id, sizeof id, "unknown");
    FILE *p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
    if (p) {
        char line[64];
        if (fgets(line, sizeof line, p)) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0])
                snprintf(id, sizeof id, "%s", line);
        }
        pclose(p);
    }
    return id;
}

static inline const char *bench_isa(void) { return sld_isa_name(sld_cpu_isa()); }

/* Peak resident set of this process image: VmHWM from /proc/self/status,
 * which starts afresh at exec. getrusage's ru_maxrss is the fallback only:
 * Linux carries it across fork and exec, so a case run as a child of a
 * large parent would report the parent's size. */
static inline double bench_peak_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kib = -1;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) {
                kib = atol(line + 6);
                break;
            }
        fclose(f);
        if (kib >= 0)
            return kib / 1024.0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* Current resident set from /proc/self/statm (0 when unreadable). */
static inline double bench_rss_now_mib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0.0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1048576.0);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (sorts v in place). */
static inline double bench_median(double *v, int n)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Repeats from $SLD_BENCH_REPS (default def), clamped to [1, 64]. */
static inline int bench_reps(int def)
{
    const char *e = getenv("SLD_BENCH_REPS");
    int r = e && *e ? atoi(e) : def;
    return r < 1 ? 1 : r > BENCH_MAX_REPS ? BENCH_MAX_REPS : r;
}

/* Sum of x weighted by (i % 7 + 1): catches silent changes between commits
 * and permutations a plain sum would miss. *finite is 0 on NaN/Inf. */
static inline double bench_checksum(const float *x, size_t n, int *finite)
{
    double s = 0.0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            ok = 0;
        s += x[i] * (double)((i % 7) + 1);
    }
    if (finite)
        *finite = ok;
    return s;
}

/* The key of this CPU's baseline file: vendor, family and model as cpuid
 * reports them ("amd-f26-m2", "intel-f6-m143"; /proc/cpuinfo's decimal
 * fields). A VM's model string is often just "AMD EPYC", and one family
 * spans generations (AMD family 25 is Zen 3 and Zen 4), so the name is not
 * used. $SLD_BENCH_CPU overrides. */
static inline const char *bench_cpu_name(void)
{
    static char name[128];
    if (name[0])
        return name;
    const char *e = getenv("SLD_BENCH_CPU");
    if (e && *e) {
        snprintf(name, sizeof name, "%s", e);
        return name;
    }
    int family = -1, model = -1;
    const char *vendor = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            if (!strncmp(line, "vendor_id", 9))
                vendor = strstr(colon, "AuthenticAMD")   ? "amd"
                         : strstr(colon, "GenuineIntel") ? "intel"
                                                         : "other";
            else if (family < 0 && !strncmp(line, "cpu family", 10))
                family = atoi(colon + 1);
            else if (model < 0 && !strncmp(line, "model", 5) && isspace((unsigned char)line[5]))
                model = atoi(colon + 1);
            else if (!strncmp(line, "flags", 5))
                break; /* the first processor's block is enough */
        }
        fclose(f);
    }
    snprintf(name, sizeof name, "%s-f%d-m%d", vendor, family, model);
    return name;
}

/* Seconds of (isa, threads, precision, case) in bench/baselines/<cpu>.csv
 * (same columns as the output; '#' lines are comments), or 0 when absent.
 * $SLD_BENCH_BASELINE names another file. */
static inline double bench_baseline_seconds(const char *isa, int threads, const char *prec,
                                            const char *name)
{
    char path[512];
    const char *e = getenv("SLD_BENCH_BASELINE");
    if (e && *e)
        snprintf(path, sizeof path, "%s", e);
    else
        snprintf(path, sizeof path, "bench/baselines/%s.csv", bench_cpu_name());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0.0;
    char line[1024];
    double best = 0.0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strncmp(line, "commit,", 7))
            continue;
        char *col[11] = {0};
        int n = 0;
        for (char *s = line; n < 11;) {
            col[n++] = s;
            char *c = strchr(s, ',');
            if (!c)
                break;
            *c = 0;
            s = c + 1;
        }
        if (n < 6)
            continue;
        if (!strcmp(col[1], isa) && atoi(col[2]) == threads && !strcmp(col[3], prec) &&
            !strcmp(col[4], name)) {
            best = atof(col[5]); /* the last matching line wins */
        }
    }
    fclose(f);
    return best;
}

static inline void bench_csv_header(void)
{
    printf("commit,isa,threads,precision,case,seconds,gflops,pct_peak,ratio_to_baseline,"
           "checksum,rss_mib,peak_gflops\n");
    fflush(stdout);
}

/* One CSV line against an explicit peak (GFLOP/s at this thread count and
 * precision; bench_peak passes the figures it just measured). gflop: work of
 * one run (0 = not a compute case: gflops and pct_peak are left empty).
 * rss_mib < 0: the peak RSS now. */
static inline void bench_csv_line_peak(int threads, const char *prec, const char *name,
                                       double seconds, double gflop, double checksum,
                                       double rss_mib, double peak)
{
    const char *isa = bench_isa();
    char gf[32] = "", pct[32] = "", ratio[32] = "", pk[32] = "";
    if (gflop > 0.0 && seconds > 0.0) {
        snprintf(gf, sizeof gf, "%.1f", gflop / seconds);
        if (peak > 0.0) {
            snprintf(pct, sizeof pct, "%.1f", 100.0 * gflop / seconds / peak);
            snprintf(pk, sizeof pk, "%.1f", peak);
        }
    }
    double base = bench_baseline_seconds(isa, threads, prec, name);
    if (base > 0.0 && seconds > 0.0)
        snprintf(ratio, sizeof ratio, "%.3f", base / seconds);
    printf("%s,%s,%d,%s,%s,%.4f,%s,%s,%s,%.6e,%.0f,%s\n", bench_commit(), isa, threads, prec,
           name, seconds, gf, pct, ratio, checksum,
           rss_mib < 0.0 ? bench_peak_rss_mib() : rss_mib, pk);
    fflush(stdout);
}

/* One CSV line; pct_peak against the peak measured in this process for prec
 * and threads (the measurement runs on first use, before the case's line). */
static inline void bench_csv_line(int threads, const char *prec, const char *name,
                                  double seconds, double gflop, double checksum, double rss_mib)
{
    double peak = gflop > 0.0 ? bench_peak_measured(prec, threads) : 0.0;
    bench_csv_line_peak(threads, prec, name, seconds, gflop, checksum, rss_mib, peak);
}

/* Runs this program again (/proc/self/exe) with argv, waits, returns its exit
 * status (-1 when it could not run or died on a signal). ref != 0 sets
 * SLD_ISA=ref in the child: the ISA is chosen once per process, so the _ref
 * path of a case is computed in a child. stdout is flushed first so lines
 * keep their order. */
static inline int bench_spawn(char *const argv[], int ref)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (ref)
            setenv("SLD_ISA", "ref", 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int stw = 0;
    if (waitpid(pid, &stw, 0) < 0 || !WIFEXITED(stw))
        return -1;
    return WEXITSTATUS(stw);
}

/* Writes n floats to path (raw, native order); 0 on success. */
static inline int bench_floats_write(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t k = fwrite(x, sizeof *x, n, f);
    return (fclose(f) == 0 && k == n) ? 0 : -1;
}

/* Reads exactly n floats from path into x; 0 on success. */
static inline int bench_floats_read(const char *path, float *x, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t k = fread(x, sizeof *x, n, f);
    fclose(f);
    return k == n ? 0 : -1;
}

/* Largest |a - b|; NaN anywhere gives +inf so a tolerance check fails. */
static inline double bench_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* $SLD_BENCH_MODEL (default /tmp/sld-bench-sd15): the random SD 1.5 folder,
 * written with sld_make_random (about 35 s, 2 GB) when missing. NULL on
 * failure (message on stderr). */
static inline const char *bench_sd15_dir(void)
{
    const char *dir = getenv("SLD_BENCH_MODEL");
    if (!dir || !*dir)
        dir = "/tmp/sld-bench-sd15";
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    if (sld_path_exists(probe))
        return dir;
    fprintf(stderr, "bench: writing a random SD 1.5 model to %s (about 35 s, 2 GB)\n", dir);
    sld_error err;
    if (sld_make_random("sd15", dir, 1, &err)) {
        fprintf(stderr, "bench: make-random %s: %s\n", dir, err.msg);
        return NULL;
    }
    return dir;
}

/* Parses "1,2" into up to max thread counts; returns how many. */
static inline int bench_thread_list(const char *s, int *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        int t = atoi(s);
        if (t > 0)
            out[n++] = t;
        const char *c = strchr(s, ',');
        s = c ? c + 1 : NULL;
    }
    return n;
}

static inline int bench_full(void)
{
    const char *e = getenv("SLD_BENCH_FULL");
    return e && *e && strcmp(e, "0");
}

#endif /* SLD_BENCH_COMMON_H */
