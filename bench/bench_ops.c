/*
 * bench_ops.c — timing of the dispatching kernels at Stable Diffusion 1.5
 * UNet shapes. Each case first validates the fast path against _ref on a
 * smaller instance of the same kind (exits 1 on mismatch), then times the
 * full shape: fixed-seed inputs, one warm-up, median of up to 5 repeats
 * (fewer when one run is long, to keep each case under ~2 s on a shared
 * machine).
 *
 * Output: one CSV line per case on stdout:
 *   commit,isa,threads,precision,case,seconds,gflops,pct_peak,checksum
 * commit from $SLD_COMMIT, else `git rev-parse --short HEAD`, else "unknown".
 * pct_peak: against this machine's fp32 FMA peak measured in the same run
 * (bench/peak.h), at the same thread count.
 * checksum: sum of the output, to spot silent changes between commits.
 */
#include "ops/ops.h"
#include "peak.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 42;
static char g_commit[64] = "unknown";
static double g_peak_gflops;
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
        fprintf(stderr, "bench_ops: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * amp;
    return p;
}

static void validate(const char *name, const float *got, const float *want, size_t n,
                     double tol)
{
    double maxd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxd))
            maxd = d;
    }
    if (!(maxd <= tol)) {
        fprintf(stderr, "bench_ops: %s: fast path differs from _ref by %.3g (tol %.3g)\n", name,
                maxd, tol);
        exit(1);
    }
}

typedef void (*run_fn)(void *ctx);

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void timeit(const char *name, double flops, run_fn fn, void *ctx, const float *out,
                   size_t nout)
{
    double t0 = sld_time_now();
    fn(ctx); /* warm-up: primitive creation, weight reorder, page faults */
    double first = sld_time_now() - t0;
    int reps = first > 0.4 ? 1 : first > 0.2 ? 3 : 5;
    double t[5];
    for (int r = 0; r < reps; r++) {
        t0 = sld_time_now();
        fn(ctx);
        t[r] = sld_time_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    double med = t[reps / 2];
    double sum = 0;
    for (size_t i = 0; i < nout; i++)
        sum += out[i];
    double gf = flops / med * 1e-9;
    printf("%s,%s,%d,fp32,%s,%.6f,%.1f,%.1f,%.6e\n", g_commit, g_isa, g_threads, name, med, gf,
           100.0 * gf / g_peak_gflops, sum);
    fflush(stdout);
}

/* ---- GEMM (linear) --------------------------------------------------------------- */

typedef struct {
    int M, N, K;
    float *x, *W, *b, *y;
} lin_ctx;

static void lin_run(void *p)
{
    lin_ctx *c = p;
    sld_linear(c->x, c->W, c->b, c->y, c->M, c->N, c->K);
}

static void bench_linear(int M, int N, int K)
{
    char name[64];
    snprintf(name, sizeof name, "linear_M%d_N%d_K%d", M, N, K);
    {
        int m = 67, n = N < 80 ? N : 80, k = K;
        float *x = buf((size_t)m * k, 1), *W = buf((size_t)n * k, 1), *b = buf(n, 1);
        float *y0 = buf((size_t)m * n, 0), *y1 = buf((size_t)m * n, 0);
        sld_linear(x, W, b, y0, m, n, k);
        sld_linear_ref(x, W, b, y1, m, n, k);
        validate(name, y0, y1, (size_t)m * n, 1e-5 * k);
        sld_free(x), sld_free(W), sld_free(b), sld_free(y0), sld_free(y1);
    }
    lin_ctx c = {M, N, K, buf((size_t)M * K, 1), buf((size_t)N * K, 0.05f), buf(N, 1),
                 buf((size_t)M * N, 0)};
    timeit(name, 2.0 * M * N * K, lin_run, &c, c.y, (size_t)M * N);
    sld_free(c.x), sld_free(c.W), sld_free(c.b), sld_free(c.y);
}

/* ---- conv ----------------------------------------------------------------------- */

typedef struct {
    sld_conv2d_desc d;
    float *x, *w, *b, *y;
} conv_ctx;

static void conv_run(void *p)
{
    conv_ctx *c = p;
    sld_conv2d(&c->d, c->x, c->w, c->b, c->y);
}

static void bench_conv(int B, int C, int H, int k)
{
    char name[64];
    snprintf(name, sizeof name, "conv%dx%d_B%d_C%d_%dx%d", k, k, B, C, H, H);
    int p = k / 2;
    {
        sld_conv2d_desc d = {1, C, 6, 5, 48, k, k, 1, p, p, p, p};
        size_t nx = (size_t)C * 30, nw = (size_t)48 * C * k * k, ny = 48 * 30;
        float *x = buf(nx, 1), *w = buf(nw, 0.05f), *b = buf(48, 1);
        float *y0 = buf(ny, 0), *y1 = buf(ny, 0);
        sld_conv2d(&d, x, w, b, y0);
        sld_conv2d_ref(&d, x, w, b, y1);
        validate(name, y0, y1, ny, 1e-6 * C * k * k);
        sld_free(x), sld_free(w), sld_free(b), sld_free(y0), sld_free(y1);
    }
    conv_ctx c;
    c.d = (sld_conv2d_desc){B, C, H, H, C, k, k, 1, p, p, p, p};
    size_t nx = (size_t)B * C * H * H;
    c.x = buf(nx, 1), c.w = buf((size_t)C * C * k * k, 0.02f), c.b = buf(C, 1);
    c.y = buf(nx, 0);
    timeit(name, 2.0 * B * C * H * H * (double)C * k * k, conv_run, &c, c.y, nx);
    sld_free(c.x), sld_free(c.w), sld_free(c.b), sld_free(c.y);
    sld_ops_cache_clear();
}

/* ---- attention ------------------------------------------------------------------ */

typedef struct {
    int B, Nq, Nk, heads, dh;
    bool ref;
    float *q, *kv, *o;
} attn_ctx;

static void attn_run(void *p)
{
    attn_ctx *c = p;
    int C = c->heads * c->dh;
    float s = 1.0f / sqrtf((float)c->dh);
    (c->ref ? sld_attention_ref : sld_attention)(c->q, C, c->kv, 2 * C, c->kv + C, 2 * C, c->o,
                                                 C, c->B, c->Nq, c->Nk, c->heads, c->dh, s,
                                                 false);
}

static void bench_attn(const char *label, int B, int Nq, int Nk, int heads, int dh, bool ref)
{
    char name[96];
    snprintf(name, sizeof name, "%s_B%d_Nq%d_Nk%d_h%d_dh%d%s", label, B, Nq, Nk, heads, dh,
             ref ? "_ref" : "");
    int C = heads * dh;
    if (!ref) {
        attn_ctx v = {1, 100, Nk < 150 ? Nk : 150, 2, dh, false, NULL, NULL, NULL};
        v.q = buf((size_t)v.Nq * C, 1), v.kv = buf((size_t)v.Nk * 2 * C, 1);
        v.o = buf((size_t)v.Nq * C, 0);
        float *o1 = buf((size_t)v.Nq * C, 0);
        attn_run(&v);
        v.ref = true;
        float *o0 = v.o;
        v.o = o1;
        attn_run(&v);
        /* only heads 0..1 of C columns were computed; compare those */
        for (int i = 0; i < v.Nq; i++)
            validate(name, o0 + (size_t)i * C, o1 + (size_t)i * C, (size_t)2 * dh, 2e-5);
        sld_free(v.q), sld_free(v.kv), sld_free(o0), sld_free(o1);
    }
    attn_ctx c = {B, Nq, Nk, heads, dh, ref, buf((size_t)B * Nq * C, 1),
                  buf((size_t)B * Nk * 2 * C, 1), buf((size_t)B * Nq * C, 0)};
    timeit(name, 4.0 * B * heads * (double)Nq * Nk * dh, attn_run, &c, c.o, (size_t)B * Nq * C);
    sld_free(c.q), sld_free(c.kv), sld_free(c.o);
}

/* ---- group norm ----------------------------------------------------------------- */

typedef struct {
    int B, C, HW;
    float *x, *g, *b, *y;
} gn_ctx;

static void gn_run(void *p)
{
    gn_ctx *c = p;
    sld_group_norm(c->x, c->y, c->B, c->C, c->HW, 32, 1e-5f, c->g, c->b, true);
}

static void bench_gn(int B, int C, int HW)
{
    char name[64];
    snprintf(name, sizeof name, "groupnorm_silu_B%d_C%d_HW%d", B, C, HW);
    {
        gn_ctx v = {1, 64, 99, buf(64 * 99, 2), buf(64, 1), buf(64, 1), buf(64 * 99, 0)};
        float *y1 = buf(64 * 99, 0);
        gn_run(&v);
        sld_group_norm_ref(v.x, y1, 1, 64, 99, 32, 1e-5f, v.g, v.b, true);
        validate(name, v.y, y1, 64 * 99, 1e-5);
        sld_free(v.x), sld_free(v.g), sld_free(v.b), sld_free(v.y), sld_free(y1);
    }
    size_t n = (size_t)B * C * HW;
    gn_ctx c = {B, C, HW, buf(n, 2), buf(C, 1), buf(C, 1), buf(n, 0)};
    /* ~10 flop per element (2 reduction passes, affine, SiLU) */
    timeit(name, 10.0 * n, gn_run, &c, c.y, n);
    sld_free(c.x), sld_free(c.g), sld_free(c.b), sld_free(c.y);
}

int main(void)
{
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
    g_threads = omp_get_max_threads();
    g_peak_gflops = bench_peak_measured("fp32", g_threads);
    g_isa = sld_isa_name(sld_cpu_isa());
    fprintf(stderr, "bench_ops: measured fp32 peak %.1f GFLOP/s at %d threads\n", g_peak_gflops,
            g_threads);
    printf("commit,isa,threads,precision,case,seconds,gflops,pct_peak,checksum\n");

    bench_linear(3 * 4096, 320, 320);
    bench_linear(3 * 4096, 2560, 320);
    bench_linear(3 * 1024, 640, 640);
    bench_linear(3 * 256, 1280, 1280);
    bench_conv(3, 320, 64, 3);
    bench_conv(3, 640, 32, 3);
    bench_conv(3, 1280, 16, 3);
    bench_conv(3, 1280, 8, 3);
    bench_conv(3, 320, 64, 1);
    bench_attn("attn_self", 3, 4096, 4096, 8, 40, false);
    bench_attn("attn_cross", 3, 4096, 77, 8, 40, false);
    bench_attn("attn_self", 1, 512, 4096, 1, 40, true); /* naive, 1/48 of the work */
    bench_gn(3, 320, 4096);
    return 0;
}
