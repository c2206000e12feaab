/*
 * bench_attention.c — timing of sld_attention (fp32) and sld_attention_bf16
 * at every attention shape of Stable Diffusion 1.5 at 512x512: UNet self- and
 * cross-attention (77 keys) at 64x64, 32x32, 16x16 and 8x8 latents with the
 * SLD batch of 3, and the VAE mid-block (one head, dh 512, 4096 tokens).
 *
 * Each case first checks the fast path against sld_attention_ref on a small
 * instance with the same dh and layout (exit 1 on mismatch), then times the
 * full shape: fixed-seed inputs, one warm-up, median of up to 5 repeats
 * (3 when a run takes over 0.5 s, to keep a case under ~10 s on a shared
 * machine). Self-attention reads q/k/v from one fused [B,N,3C] projection
 * (row stride 3C), cross-attention reads q [B,N,C] and k/v from [B,77,2C].
 *
 * Usage: bench_attention [filter]  — runs the cases whose name contains
 * filter (e.g. "self64", "bf16"). Threads from OMP_NUM_THREADS.
 * SLD_BENCH_CPUTIME=1 times with process CPU time instead of wall time: on a
 * machine shared with other jobs and OMP_NUM_THREADS=1 it drops the time
 * spent descheduled, which wall-clock medians cannot (the CSV then reports
 * CPU seconds).
 *
 * Output: one CSV line per case on stdout:
 *   commit,isa,threads,precision,case,seconds,gflops,pct_peak,max_abs_err,checksum
 * flops = 4 B heads Nq Nk dh (QK^T and PV; softmax not counted).
 * pct_peak: against the peak of the case's precision measured in this run
 * (bench/peak.h: fp32 FMA, or bf16 dot products / AMX).
 * max_abs_err: of the validation instance vs _ref. checksum: sum of the timed
 * output, to spot silent changes between commits.
 */
#include "ops/ops.h"
#include "peak.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t g_rng = 7;
static char g_commit[64] = "unknown";
static const char *g_isa;
static int g_threads;

static float frand(void)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *buf(size_t n, float amp)
{
    float *p = sld_malloc_aligned(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_attention: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * amp;
    return p;
}

typedef struct {
    int B, Nq, Nk, heads, dh;
    bool cross, bf16, ref;
    float *q, *kv, *o; /* self: q = [B,N,3C] fused; cross: q [B,Nq,C], kv [B,Nk,2C] */
} acase;

static void run(const acase *c)
{
    int C = c->heads * c->dh;
    float s = 1.0f / sqrtf((float)c->dh);
    const float *q = c->q, *k, *v;
    int ldq, ldkv;
    if (c->cross) {
        ldq = C, ldkv = 2 * C, k = c->kv, v = c->kv + C;
    } else {
        ldq = ldkv = 3 * C, k = c->q + C, v = c->q + 2 * C;
    }
    if (c->ref)
        sld_attention_ref(q, ldq, k, ldkv, v, ldkv, c->o, C, c->B, c->Nq, c->Nk, c->heads, c->dh,
                          s, false);
    else if (c->bf16)
        sld_attention_bf16(q, ldq, k, ldkv, v, ldkv, c->o, C, c->B, c->Nq, c->Nk, c->heads,
                           c->dh, s, false);
    else
        sld_attention(q, ldq, k, ldkv, v, ldkv, c->o, C, c->B, c->Nq, c->Nk, c->heads, c->dh, s,
                      false);
}

static void alloc_case(acase *c, float amp)
{
    int C = c->heads * c->dh;
    c->q = buf((size_t)c->B * c->Nq * (c->cross ? C : 3 * C), amp);
    c->kv = c->cross ? buf((size_t)c->B * c->Nk * 2 * C, amp) : NULL;
    c->o = buf((size_t)c->B * c->Nq * C, 0);
}

static void free_case(acase *c)
{
    sld_free(c->q), sld_free(c->kv), sld_free(c->o);
}

static bool g_cpu_time;

static double now(void)
{
    if (!g_cpu_time)
        return sld_time_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fast path vs _ref on a small instance of the same kind; returns max |d|. */
static double validate(const char *name, const acase *full)
{
    acase v = *full;
    v.B = 2, v.heads = 2, v.Nq = 97, v.Nk = full->cross ? full->Nk : 97;
    if (v.cross)
        v.Nq = 97;
    else
        v.Nk = v.Nq;
    alloc_case(&v, 1.0f);
    float *want = buf((size_t)v.B * v.Nq * v.heads * v.dh, 0);
    run(&v);
    float *got = v.o;
    v.o = want, v.ref = true;
    run(&v);
    v.o = got;
    double maxd = 0;
    for (size_t i = 0; i < (size_t)v.B * v.Nq * v.heads * v.dh; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxd))
            maxd = d;
    }
    double tol = full->bf16 ? 3e-2 : 1e-5;
    free_case(&v);
    sld_free(want);
    if (!(maxd <= tol)) {
        fprintf(stderr, "bench_attention: %s: fast path differs from _ref by %.3g (tol %.3g)\n",
                name, maxd, tol);
        exit(1);
    }
    return maxd;
}

static void bench(const char *filter, const char *label, int B, int Nq, int Nk, int heads, int dh,
                  bool cross, bool bf16)
{
    char name[96];
    snprintf(name, sizeof name, "%s_%s_B%d_Nq%d_Nk%d_h%d_dh%d", label, bf16 ? "bf16" : "fp32",
             B, Nq, Nk, heads, dh);
    if (filter && !strstr(name, filter))
        return;
    /* inputs depend on the shape only, so fp32 and bf16 checksums compare */
    g_rng = 7 + (uint64_t)B * 1000003u + (uint64_t)Nq * 10007u + (uint64_t)Nk * 101u +
            (uint64_t)heads * 13u + (uint64_t)dh + (cross ? 5u : 0u);
    acase c = {B, Nq, Nk, heads, dh, cross, bf16, false, NULL, NULL, NULL};
    double err = validate(name, &c);
    alloc_case(&c, 1.0f);
    double t0 = now();
    run(&c); /* warm-up: page faults, caches */
    double first = now() - t0;
    int reps = first > 0.5 ? 3 : 5;
    double t[5];
    for (int r = 0; r < reps; r++) {
        t0 = now();
        run(&c);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    double med = t[reps / 2], sum = 0;
    for (size_t i = 0; i < (size_t)B * Nq * heads * dh; i++)
        sum += c.o[i];
    double gf = 4.0 * B * heads * Nq * (double)Nk * dh / med * 1e-9;
    printf("%s,%s,%d,%s,%s,%.6f,%.1f,%.1f,%.2e,%.6e\n", g_commit, g_isa, g_threads,
           bf16 ? "bf16" : "fp32", name, med, gf, 100.0 * gf / bench_peak_measured(bf16 ? "bf16" : "fp32", g_threads), err, sum);
    fflush(stdout);
    free_case(&c);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *env = getenv("SLD_COMMIT");
    if (env && *env) {
        snprintf(g_commit, sizeof g_commit, "%s", env);
    } else {
        FILE *f = popen("git rev-parse --short HEAD 2>/dev/null", "r");
        if (f) {
            if (fgets(g_commit, sizeof g_commit, f))
                g_commit[strcspn(g_commit, "\r\n")] = 0;
            if (pclose(f) != 0 || !g_commit[0])
                snprintf(g_commit, sizeof g_commit, "unknown");
        }
    }
    const char *cpu_s = getenv("SLD_BENCH_CPUTIME");
    g_cpu_time = cpu_s && *cpu_s && *cpu_s != '0';
    g_threads = omp_get_max_threads();
    g_isa = sld_isa_name(sld_cpu_isa());
    fprintf(stderr, "bench_attention: measured peak at %d threads: fp32 %.1f, bf16 %.1f GFLOP/s\n",
            g_threads, bench_peak_measured("fp32", g_threads), bench_peak_measured("bf16", g_threads));
    printf("commit,isa,threads,precision,case,seconds,gflops,pct_peak,max_abs_err,checksum\n");
    for (int p = 0; p < 2; p++) {
        bool bf = p == 1;
        bench(filter, "self64", 3, 4096, 4096, 8, 40, false, bf);
        bench(filter, "cross64", 3, 4096, 77, 8, 40, true, bf);
        bench(filter, "self32", 3, 1024, 1024, 8, 80, false, bf);
        bench(filter, "cross32", 3, 1024, 77, 8, 80, true, bf);
        bench(filter, "self16", 3, 256, 256, 8, 160, false, bf);
        bench(filter, "cross16", 3, 256, 77, 8, 160, true, bf);
        bench(filter, "self8", 3, 64, 64, 8, 160, false, bf);
        bench(filter, "cross8", 3, 64, 77, 8, 160, true, bf);
        bench(filter, "vae_mid", 1, 4096, 4096, 1, 512, false, bf);
    }
    return 0;
}
