/*
 * bench_pipeline.c — whole-pipeline figures: SLD steps, `sld generate`,
 * VAE decode, model load, peak RSS, and memory growth over many images.
 *
 * Validation first: a 64x64 SLD-medium image on the tiny SD1 fixture (and,
 * with SLD_BENCH_FULL=1, a 64x64 two-step image on the full-size random SD
 * 1.5 model) is generated here and in a child process with SLD_ISA=ref; the
 * float images must agree within 2e-3 and the latents within 1e-2 (random
 * weights amplify rounding differences a little over the steps), else exit 1.
 *
 * Timing: every case runs in its own child process (/proc/self/exe --case
 * NAME --threads T), so its peak RSS is its own. Cases (SD 1.5 = the random
 * model in $SLD_BENCH_MODEL, default /tmp/sld-bench-sd15, written with
 * sld_make_random when missing):
 *   quick (default):
 *     tiny_generate_64      tiny SD1 fixture, 64x64, 4 steps, SLD medium
 *     model_open_sd15       sld_model_open of the SD 1.5 folder (fp16 -> fp32)
 *     sld_step_128          one SLD iteration (3 conditionings batched) at
 *                           128x128, from the progress callback of a
 *                           3-step generate; also generate_128_3steps
 *     vae_decode_256        sld_vae_decode of 32x32 latents
 *     guidance_{plain,telemetry}_512_b{1,5}_x1000: 1000 x one CFG + SLD pass at
 *                           512x512 (64x64 latents) for 1 and 5 images, past
 *                           the warm-up: the formula alone (a copy here,
 *                           validated bit for bit against the library) and
 *                           sld_guidance_apply_traced with stats and step map;
 *                           the extra time is also given as a share of the
 *                           sld_step_512 baseline of the same isa, threads and
 *                           precision (no model needed, milliseconds)
 *   SLD_BENCH_FULL=1 adds:
 *     sld_step_512, generate_512_3steps, vae_decode_512_in_generate
 *     vae_decode_512
 *     generate_512_50steps  the real run when the 3-step figures predict it
 *                           takes at most $SLD_BENCH_MAX_SECONDS (1200);
 *                           otherwise generate_512_50steps_extrapolated
 *                           = encode + n_iters(50) x step + decode
 *     mem_growth_img{1,10,50,100}: $SLD_BENCH_GROWTH_N (100) images of
 *                           $SLD_BENCH_GROWTH_SIZE (64) px, 2 steps, one
 *                           sld_ctx; rss_mib is the current RSS after image k
 *                           (SLD_BENCH_GROWTH_N=0 skips it)
 * GFLOP (2 per MAC, SD 1.5): UNet 803 per image at 64x64 latents (scaled by
 * area below that: attention is a few % there), VAE decode 2515 at 512x512
 * and 622 at 256x256, text encoder 13.3 per prompt.
 *
 * Usage: bench_pipeline [--threads 1,2] [--case NAME] [--validate-only]
 * Env: SLD_BENCH_FULL, SLD_BENCH_MODEL, SLD_BENCH_PRECISION (fp32|bf16|auto),
 * SLD_BENCH_CONV_ALGO (auto|direct: fp32 3x3 convs Winograd where it pays, or not),
 * SLD_BENCH_REPS, SLD_BENCH_MAX_SECONDS, SLD_BENCH_GROWTH_N/_SIZE/_STEPS.
 */
#include "common.h"
#include "pipeline/model.h"
#include "sample/guidance.h"
#include "sample/sched.h"

#define TINY_DIR "tests/fixtures/models/tiny-sd1"
#define IMG_TOL 2e-3
#define LAT_TOL 1e-2
#define UNET_GFLOP_64 803.0
#define TEXT_GFLOP 13.3
#define MAX_ITERS 128

static const char *PROMPT = "a photograph of an astronaut riding a horse on the moon";

/* ---- helpers ----------------------------------------------------------- */

/* SLD_BENCH_CONV_ALGO=direct turns Winograd off (sld_model_opts.conv_algo);
 * the CSV's precision column then reads fp32-direct. */
static bool conv_direct(void)
{
    const char *e = getenv("SLD_BENCH_CONV_ALGO");
    return e && !strcmp(e, "direct");
}

static sld_precision precision_get(const char **name)
{
    const char *e = getenv("SLD_BENCH_PRECISION");
    if (e && !strcmp(e, "bf16")) {
        *name = "bf16";
        return SLD_PREC_BF16;
    }
    if (e && !strcmp(e, "auto")) {
        *name = "auto";
        return SLD_PREC_AUTO;
    }
    *name = conv_direct() ? "fp32-direct" : "fp32";
    return SLD_PREC_FP32;
}

static long env_long(const char *name, long def)
{
    const char *e = getenv(name);
    long v = e && *e ? atol(e) : def;
    return v > 0 ? v : def;
}

static double unet_gflop(int W, int H) { return UNET_GFLOP_64 * (W / 512.0) * (H / 512.0); }
static double vae_gflop(int W, int H)
{
    /* convs scale with area; the mid-block attention (4096 tokens at 512^2,
     * 512 channels, 34 GFLOP) with its square */
    double a = (W / 512.0) * (H / 512.0);
    return (2515.0 - 34.4) * a + 34.4 * a * a;
}

static sld_model *model_open(const char *dir, double *seconds)
{
    const char *pn;
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.precision = precision_get(&pn);
    o.conv_algo = conv_direct() ? SLD_CONV_DIRECT : SLD_CONV_AUTO;
    o.no_safety_checker = 1;
    sld_model *m = NULL;
    sld_error err;
    double t0 = sld_time_now();
    if (sld_model_open(&m, dir, &o, &err)) {
        fprintf(stderr, "bench_pipeline: open %s: %s\n", dir, err.msg);
        return NULL;
    }
    if (seconds)
        *seconds = sld_time_now() - t0;
    return m;
}

typedef struct {
    int n;
    double at[MAX_ITERS]; /* seconds since the call started, after iteration k */
} step_log;

static int on_step(int step, int n_steps, double seconds, void *user)
{
    step_log *l = user;
    (void)n_steps;
    if (step >= 1 && step <= MAX_ITERS) {
        l->at[step - 1] = seconds;
        l->n = step;
    }
    return 0;
}

static int generate(sld_ctx *c, int W, int steps, uint64_t seed, step_log *log,
                    sld_gen_result *r)
{
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = PROMPT;
    p.seed = seed;
    p.steps = steps;
    p.width = p.height = W;
    p.sld = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
    p.progress = log ? on_step : NULL;
    p.progress_user = log;
    sld_error err;
    if (log)
        memset(log, 0, sizeof *log);
    if (sld_generate(c, &p, r, &err)) {
        fprintf(stderr, "bench_pipeline: generate %dx%d, %d steps: %s\n", W, W, steps, err.msg);
        return 0;
    }
    return 1;
}

/* Iterations the default sampler makes for n steps (PNDM makes one more). */
static int n_iters_for(sld_model *m, int steps)
{
    sld_sched *s = NULL;
    sld_sched_opts so;
    sld_sched_opts_default(&so);
    so.prediction = m->prediction;
    int n = steps;
    if (!sld_sched_new(&s, &m->sched_cfg, SLD_SAMPLER_DEFAULT, &so, NULL) &&
        !sld_sched_set_timesteps(s, steps, NULL))
        n = sld_sched_n_iters(s);
    sld_sched_free(s);
    return n;
}

/* ---- validation -------------------------------------------------------- */

static int ref_child(const char *dir, const char *out, int W, int steps)
{
    sld_model *m = model_open(dir, NULL);
    sld_ctx *c = NULL;
    sld_gen_result r;
    int ok = m && !sld_ctx_new(&c, m, 0, NULL) && generate(c, W, steps, 7, NULL, &r);
    if (ok) {
        size_t ni = (size_t)W * W * 3, nl = (size_t)4 * (W / 8) * (W / 8);
        float *buf = sld_malloc((ni + nl) * sizeof *buf);
        ok = buf != NULL;
        if (ok) {
            memcpy(buf, r.image_float, ni * sizeof *buf);
            memcpy(buf + ni, r.latents, nl * sizeof *buf);
            ok = !bench_floats_write(out, buf, ni + nl);
        }
        sld_free(buf);
        sld_gen_result_free(&r);
    }
    sld_ctx_free(c);
    sld_model_close(m);
    return ok ? 0 : 1;
}

static int validate(const char *dir, int W, int steps, int threads)
{
    char tmp[256], ws[16], ss[16];
    snprintf(tmp, sizeof tmp, "/tmp/sld-bench-pipe-ref-%d.bin", (int)getpid());
    snprintf(ws, sizeof ws, "%d", W);
    snprintf(ss, sizeof ss, "%d", steps);
    size_t ni = (size_t)W * W * 3, nl = (size_t)4 * (W / 8) * (W / 8);
    float *ref = sld_malloc((ni + nl) * sizeof *ref);
    if (!ref)
        return 0;
    /* the _ref child first, so two copies of a large model never coexist */
    char *argv[] = {"bench_pipeline", "--ref-child", (char *)dir, tmp, ws, ss, NULL};
    double t0 = sld_time_now();
    int ok = bench_spawn(argv, 1) == 0 && !bench_floats_read(tmp, ref, ni + nl);
    double tref = sld_time_now() - t0;
    remove(tmp);
    sld_model *m = ok ? model_open(dir, NULL) : NULL;
    sld_ctx *c = NULL;
    sld_gen_result r;
    ok = ok && m && !sld_ctx_new(&c, m, threads, NULL) && generate(c, W, steps, 7, NULL, &r);
    double di = ok ? bench_max_abs_diff(r.image_float, ref, ni) : INFINITY;
    double dl = ok ? bench_max_abs_diff(r.latents, ref + ni, nl) : INFINITY;
    fprintf(stderr,
            "bench_pipeline: validate %s %dx%d %d steps: max |fast - ref| image %.3g (tol %.0e), "
            "latents %.3g (tol %.0e); ref child %.1f s\n",
            dir, W, W, steps, di, IMG_TOL, dl, LAT_TOL, tref);
    if (ok)
        sld_gen_result_free(&r);
    ok = ok && di <= IMG_TOL && dl <= LAT_TOL;
    sld_free(ref);
    sld_ctx_free(c);
    sld_model_close(m);
    return ok;
}

/* ---- cases (each in its own process) ------------------------------------ */

/* A 3-step generate at W: per-iteration seconds from the progress callback
 * (median of iterations 2..n; the first also encodes the prompts), decode =
 * the rest of the call. full50: also the 50-step whole image. */
static int case_steps(const char *dir, int W, int threads, const char *prec, int full50)
{
    double topen;
    sld_model *m = model_open(dir, &topen);
    sld_ctx *c = NULL;
    if (!m || sld_ctx_new(&c, m, threads, NULL))
        return 1;
    if (W == 128)
        bench_csv_line(threads, prec, "model_open_sd15", topen, 0.0, 0.0, -1.0);
    const int steps = 3;
    step_log log;
    sld_gen_result r;
    if (!generate(c, W, steps, 42, &log, &r))
        return 1;
    if (log.n < 2) {
        fprintf(stderr, "bench_pipeline: progress callback called %d times\n", log.n);
        return 1;
    }
    double v[MAX_ITERS];
    for (int k = 1; k < log.n; k++)
        v[k - 1] = log.at[k] - log.at[k - 1];
    double step = bench_median(v, log.n - 1);
    double encode = log.at[0] - step; /* first iteration = encode + one step */
    double decode = r.seconds - log.at[log.n - 1];
    int fin;
    double cs = bench_checksum(r.image_float, (size_t)W * W * 3, &fin);
    if (!fin) {
        fprintf(stderr, "bench_pipeline: non-finite image\n");
        return 1;
    }
    char name[64];
    double ug = 3 * unet_gflop(W, W), vg = vae_gflop(W, W);
    snprintf(name, sizeof name, "sld_step_%d", W);
    bench_csv_line(threads, prec, name, step, ug, cs, -1.0);
    snprintf(name, sizeof name, "generate_%d_%dsteps", W, steps);
    bench_csv_line(threads, prec, name, r.seconds, 3 * TEXT_GFLOP + log.n * ug + vg, cs, -1.0);
    snprintf(name, sizeof name, "vae_decode_%d_in_generate", W);
    bench_csv_line(threads, prec, name, decode, vg, cs, -1.0);
    const double whole = r.seconds;
    sld_gen_result_free(&r);
    fprintf(stderr,
            "bench_pipeline: %dx%d, %d thread(s): %d iterations, step %.2f s (median), "
            "encode ~%.2f s, decode %.2f s, whole call %.2f s\n",
            W, W, threads, log.n, step, encode, decode, whole);

    if (full50) {
        const int n50 = n_iters_for(m, 50);
        const double gflop50 = 3 * TEXT_GFLOP + n50 * ug + vg;
        double predict = (encode > 0 ? encode : 0) + n50 * step + decode;
        double max_s = (double)env_long("SLD_BENCH_MAX_SECONDS", 1200);
        if (predict > max_s) {
            fprintf(stderr,
                    "bench_pipeline: 50 steps (%d iterations) predicted %.0f s > %.0f s: "
                    "extrapolated from the 3-step run, not run\n",
                    n50, predict, max_s);
            bench_csv_line(threads, prec, "generate_512_50steps_extrapolated", predict, gflop50,
                           0.0, -1.0);
        } else {
            if (!generate(c, W, 50, 42, &log, &r))
                return 1;
            cs = bench_checksum(r.image_float, (size_t)W * W * 3, &fin);
            bench_csv_line(threads, prec, "generate_512_50steps", r.seconds, gflop50, cs, -1.0);
            sld_gen_result_free(&r);
        }
    }
    sld_ctx_free(c);
    sld_model_close(m);
    return 0;
}

static int case_vae(const char *dir, int W, int threads, const char *prec)
{
    sld_model *m = model_open(dir, NULL);
    if (!m)
        return 1;
    sld_threads_set(threads);
    const int h = W / 8;
    size_t nz = (size_t)4 * h * h, ni = (size_t)3 * W * W;
    float *z = sld_malloc_aligned(nz * sizeof *z), *img = sld_malloc_aligned(ni * sizeof *img);
    if (!z || !img)
        return 1;
    uint64_t s = 11;
    for (size_t i = 0; i < nz; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        z[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    /* one run at 512 (a long case on a shared machine), else the median */
    int reps = bench_reps(W >= 512 ? 1 : 3);
    double v[BENCH_MAX_REPS];
    sld_error err;
    for (int r = 0; r < reps; r++) {
        double t0 = sld_time_now();
        if (sld_vae_decode(m->vae, z, 1, h, h, img, &err)) {
            fprintf(stderr, "bench_pipeline: vae decode: %s\n", err.msg);
            return 1;
        }
        v[r] = sld_time_now() - t0;
    }
    int fin;
    double cs = bench_checksum(img, ni, &fin);
    if (!fin) {
        fprintf(stderr, "bench_pipeline: non-finite VAE output\n");
        return 1;
    }
    char name[64];
    snprintf(name, sizeof name, "vae_decode_%d", W);
    bench_csv_line(threads, prec, name, bench_median(v, reps), vae_gflop(W, W), cs, -1.0);
    sld_free(z);
    sld_free(img);
    sld_model_close(m);
    return 0;
}

/* The guidance formula without telemetry: the loop the library ran before
 * it measured anything, kept here as the cost reference. */
static void guidance_plain(const float *eu, const float *ep, const float *es, size_t n, int i,
                           float cfg, const sld_safety *s, float *mom, float *out)
{
    const float one_minus_beta = (float)(1.0 - (double)s->mom_beta);
    const int warm = i >= s->warmup_steps;
    for (size_t k = 0; k < n; k++) {
        const float u = eu[k], p = ep[k], c = es[k];
        float g = p - u;
        float d = p - c;
        float scale = fabsf(d) * s->guidance_scale;
        if (scale > 1.0f)
            scale = 1.0f;
        float mu = d >= s->threshold ? 0.0f : scale;
        float gs = (c - u) * mu;
        gs = gs + s->momentum_scale * mom[k];
        mom[k] = s->mom_beta * mom[k] + one_minus_beta * gs;
        if (warm)
            g = g - gs;
        out[k] = u + cfg * g;
    }
}

static int case_telemetry(int threads, const char *prec)
{
    const float cfg = 7.5f;
    const sld_safety sp = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
    const int it = sp.warmup_steps + 5, C = 4;
    const double step512 = bench_baseline_seconds(bench_isa(), threads, prec, "sld_step_512");
    static const int batches[2] = {1, 5};
    for (int bi = 0; bi < 2; bi++) {
        const int N = batches[bi];
        const size_t n = (size_t)N * C * 64 * 64;
        float *e = sld_malloc_aligned(3 * n * sizeof *e);
        float *o1 = sld_malloc_aligned(n * sizeof *o1), *o2 = sld_malloc_aligned(n * sizeof *o2);
        float *mom = sld_malloc_aligned(n * sizeof *mom), *map = sld_malloc(n / C * sizeof *map);
        sld_step_stats *stats = sld_malloc((size_t)N * sizeof *stats);
        sld_guidance_state st;
        if (!e || !o1 || !o2 || !mom || !map || !stats || sld_guidance_state_init(&st, n, NULL))
            return 1;
        /* eps_S close to eps_p in places, so the mask is mixed (~half) */
        uint64_t r = 5;
        for (size_t k = 0; k < 3 * n; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            e[k] = (float)((r >> 40) & 0xffff) / 32768.0f - 1.0f;
        }
        for (size_t k = 0; k < n; k++)
            e[2 * n + k] = e[n + k] + 0.02f * e[2 * n + k];
        /* validate: same output and momentum as the library's traced pass */
        memset(mom, 0, n * sizeof *mom);
        guidance_plain(e, e + n, e + 2 * n, n, it, cfg, &sp, mom, o1);
        if (sld_guidance_apply_traced(e, e + n, e + 2 * n, n, N, C, it, cfg, &sp, &st, o2, stats,
                                      map, NULL) ||
            memcmp(o1, o2, n * sizeof *o1) || memcmp(mom, st.mom, n * sizeof *mom)) {
            fprintf(stderr, "bench_pipeline: guidance with telemetry differs from the formula\n");
            return 1;
        }
        /* repeats restart from the momentum of one pass (calling the same pass
         * again and again would decay the unmasked momentum into subnormal
         * floats, which no real run of <= 1000 steps reaches) */
        int reps = bench_reps(BENCH_MAX_REPS);
        double vp[BENCH_MAX_REPS], vt[BENCH_MAX_REPS];
        float *mom0 = sld_malloc_aligned(n * sizeof *mom0);
        if (!mom0)
            return 1;
        memcpy(mom0, mom, n * sizeof *mom0);
        for (int k = 0; k < reps; k++) {
            memcpy(mom, mom0, n * sizeof *mom);
            memcpy(st.mom, mom0, n * sizeof *mom);
            double t0 = sld_time_now();
            guidance_plain(e, e + n, e + 2 * n, n, it, cfg, &sp, mom, o1);
            double t1 = sld_time_now();
            sld_guidance_apply_traced(e, e + n, e + 2 * n, n, N, C, it, cfg, &sp, &st, o2, stats,
                                      map, NULL);
            double t2 = sld_time_now();
            vp[k] = t1 - t0;
            vt[k] = t2 - t1;
        }
        sld_free(mom0);
        double tp = bench_median(vp, reps), tt = bench_median(vt, reps);
        double cs = bench_checksum(o2, n, NULL);
        char name[64];
        /* seconds per 1000 passes: one pass is below the CSV's 0.1 ms resolution */
        snprintf(name, sizeof name, "guidance_plain_512_b%d_x1000", N);
        bench_csv_line(threads, prec, name, 1000 * tp, 0.0, cs, -1.0);
        snprintf(name, sizeof name, "guidance_telemetry_512_b%d_x1000", N);
        bench_csv_line(threads, prec, name, 1000 * tt, 0.0, cs + stats[0].mask_share, -1.0);
        fprintf(stderr,
                "bench_pipeline: guidance pass 512x512 x %d image(s): %.3f ms plain, %.3f ms with "
                "telemetry (+%.3f ms, mask share %.2f)",
                N, tp * 1e3, tt * 1e3, (tt - tp) * 1e3, stats[0].mask_share);
        if (step512 > 0)
            fprintf(stderr, "; +%.4f %% of the baseline SLD step (%.2f s for 1 image) x %d", 
                    100.0 * (tt - tp) / (step512 * N), step512, N);
        fputc('\n', stderr);
        sld_guidance_state_free(&st);
        sld_free(e);
        sld_free(o1);
        sld_free(o2);
        sld_free(mom);
        sld_free(map);
        sld_free(stats);
    }
    return 0;
}

static int case_tiny(int threads, const char *prec)
{
    sld_model *m = model_open(TINY_DIR, NULL);
    sld_ctx *c = NULL;
    if (!m || sld_ctx_new(&c, m, threads, NULL))
        return 1;
    int reps = bench_reps(5);
    double v[BENCH_MAX_REPS], cs = 0;
    for (int r = 0; r < reps; r++) {
        sld_gen_result res;
        if (!generate(c, 64, 4, 7, NULL, &res))
            return 1;
        v[r] = res.seconds;
        cs = bench_checksum(res.image_float, (size_t)64 * 64 * 3, NULL);
        sld_gen_result_free(&res);
    }
    bench_csv_line(threads, prec, "tiny_generate_64", bench_median(v, reps), 0.0, cs, -1.0);
    sld_ctx_free(c);
    sld_model_close(m);
    return 0;
}

/* N images through one context; current RSS after image 1, 10, 50, N. */
static int case_growth(const char *dir, int threads, const char *prec)
{
    const int n = (int)env_long("SLD_BENCH_GROWTH_N", 100);
    const int W = (int)env_long("SLD_BENCH_GROWTH_SIZE", 64) / 8 * 8;
    const int steps = (int)env_long("SLD_BENCH_GROWTH_STEPS", 2);
    sld_model *m = model_open(dir, NULL);
    sld_ctx *c = NULL;
    if (!m || sld_ctx_new(&c, m, threads, NULL))
        return 1;
    double first = 0;
    for (int i = 1; i <= n; i++) {
        sld_gen_result r;
        if (!generate(c, W, steps, (uint64_t)i, NULL, &r))
            return 1;
        double cs = bench_checksum(r.image_float, (size_t)W * W * 3, NULL), sec = r.seconds;
        sld_gen_result_free(&r);
        if (i == 1 || i == 10 || i == 50 || i == n) {
            double rss = bench_rss_now_mib();
            char name[64];
            snprintf(name, sizeof name, "mem_growth_%d_img%d", W, i);
            bench_csv_line(threads, prec, name, sec, 0.0, cs, rss);
            if (i == 1)
                first = rss;
            else
                fprintf(stderr, "bench_pipeline: RSS after image %d: %.1f MiB (%+.1f since image 1)\n",
                        i, rss, rss - first);
        }
    }
    sld_ctx_free(c);
    sld_model_close(m);
    return 0;
}

static int run_case(const char *name, int threads)
{
    const char *prec;
    precision_get(&prec);
    if (!strcmp(name, "tiny"))
        return case_tiny(threads, prec);
    if (!strcmp(name, "telemetry"))
        return case_telemetry(threads, prec);
    const char *dir = bench_sd15_dir();
    if (!dir)
        return 1;
    if (!strcmp(name, "step128"))
        return case_steps(dir, 128, threads, prec, 0);
    if (!strcmp(name, "step512"))
        return case_steps(dir, 512, threads, prec, 0);
    if (!strcmp(name, "step512_50"))
        return case_steps(dir, 512, threads, prec, 1);
    if (!strcmp(name, "vae256"))
        return case_vae(dir, 256, threads, prec);
    if (!strcmp(name, "vae512"))
        return case_vae(dir, 512, threads, prec);
    if (!strcmp(name, "growth"))
        return case_growth(dir, threads, prec);
    fprintf(stderr, "bench_pipeline: unknown case '%s' (tiny telemetry step128 step512 "
                    "step512_50 vae256 vae512 growth)\n", name);
    return 2;
}

/* ---- driver ------------------------------------------------------------ */

static int spawn_case(const char *name, int threads)
{
    char ts[16];
    snprintf(ts, sizeof ts, "%d", threads);
    char *argv[] = {"bench_pipeline", "--case", (char *)name, "--threads", ts, NULL};
    int rc = bench_spawn(argv, 0);
    if (rc)
        fprintf(stderr, "bench_pipeline: case %s at %d thread(s) failed (%d)\n", name, threads, rc);
    return rc;
}

int main(int argc, char **argv)
{
    const char *threads_s = NULL, *one = NULL;
    int validate_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ref-child") && i + 4 < argc)
            return ref_child(argv[i + 1], argv[i + 2], atoi(argv[i + 3]), atoi(argv[i + 4]));
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads_s = argv[++i];
        else if (!strcmp(argv[i], "--case") && i + 1 < argc)
            one = argv[++i];
        else if (!strcmp(argv[i], "--validate-only"))
            validate_only = 1;
    }
    const int full = bench_full();
    int tl[8];
    int nt = bench_thread_list(threads_s ? threads_s : full ? "2,1" : "2", tl, 8);
    if (nt == 0)
        tl[nt++] = 2;
    if (one)
        return run_case(one, tl[0]);

    if (!validate(TINY_DIR, 64, 4, tl[0]))
        return 1;
    const char *dir = bench_sd15_dir();
    if (!dir)
        return 1;
    if (full && !validate(dir, 64, 2, tl[0]))
        return 1;
    if (validate_only)
        return 0;
    bench_csv_header();
    int bad = 0;
    for (int ti = 0; ti < nt; ti++) {
        bad |= spawn_case("tiny", tl[ti]);
        bad |= spawn_case("telemetry", tl[ti]);
        bad |= spawn_case("step128", tl[ti]);
        bad |= spawn_case("vae256", tl[ti]);
    }
    if (full) {
        for (int ti = 0; ti < nt; ti++) {
            bad |= spawn_case("vae512", tl[ti]);
            /* the 50-step image only at the first (largest) thread count */
            bad |= spawn_case(ti == 0 ? "step512_50" : "step512", tl[ti]);
        }
        const char *g = getenv("SLD_BENCH_GROWTH_N");
        if (!(g && !strcmp(g, "0"))) /* 0 skips the long memory-growth case */
            bad |= spawn_case("growth", tl[0]);
    }
    return bad ? 1 : 0;
}
