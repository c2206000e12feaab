/* test_telemetry.c — SLD telemetry (docs/TELEMETRY.md):
 *   - teacher-forced on the goldens/pipelines runs: the stats and step map of
 *     sld_guidance_apply_traced on the recorded UNet outputs equal values this
 *     test computes on its own (its own SLD recursion, double sums; mask
 *     counts exact, the rest 1e-9 relative), the applied safety term also
 *     agrees with the one implied by the recorded guided prediction
 *     (g - (guided - eps_u) / s_g), the guided output is unchanged, the mask
 *     share is 0 before the warm-up and in SLD-off runs, and a batch of two
 *     images gives each image its own stats;
 *   - sld_generate on tiny-sd1: one record per iteration and image, the
 *     callback sees the same records, SLD off gives an all-zero map and zero
 *     shares, the map is the sum of the step maps, the summary agrees;
 *   - sld_safety_summary_get and sld_safety_map_render on hand-made input;
 *   - `sld generate --trace/--sld-map`: one JSON record per step and image
 *     (parsed with cJSON), map files named like -o, a blank map with
 *     --safety off, per-step frames, and the usage errors. */
#include "io/json.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "sample/guidance.h"
#include "sample/sched.h"
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_sld[1100], g_tmp[256];

static float *read_t(const sld_st_file *f, const char *name, size_t *n)
{
    const sld_st_tensor *t = sld_st_find(f, name);
    if (!t)
        return NULL;
    float *v = malloc(t->numel * sizeof(float));
    sld_error err;
    if (sld_st_to_f32(t, v, &err)) {
        free(v);
        return NULL;
    }
    *n = t->numel;
    return v;
}

static double num_or(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return v && cJSON_IsNumber(v) ? v->valuedouble : def;
}

static int rel_close(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fmax(1.0, fabs(want));
}

/* The test's own SLD step on one image of n = C x hw elements: updates nu
 * (float32, torch's order) and returns the expected stats and map. */
static void expect_step(const float *u, const float *p, const float *c, size_t n, int C, int i,
                        const sld_safety *s, int sld_on, float *nu, sld_step_stats *e,
                        double *map)
{
    const size_t hw = n / (size_t)C;
    memset(e, 0, sizeof *e);
    for (size_t q = 0; q < hw; q++)
        map[q] = 0;
    int warm = sld_on && i >= s->warmup_steps;
    double gg = 0, cc = 0, gc = 0, gam = 0, mm = 0, mus = 0, mumax = 0;
    long masked = 0;
    for (size_t k = 0; k < n; k++) {
        double g = (float)(p[k] - u[k]);
        gg += g * g;
        if (!sld_on)
            continue;
        float d = p[k] - c[k];
        float mu = d < s->threshold ? fminf(1.0f, fabsf(d) * s->guidance_scale) : 0.0f;
        float cu = c[k] - u[k];
        float gamma = cu * mu + s->momentum_scale * nu[k];
        nu[k] = s->mom_beta * nu[k] + (float)(1.0 - (double)s->mom_beta) * gamma;
        cc += (double)cu * cu;
        gc += g * cu;
        mm += (double)nu[k] * nu[k];
        if (warm) {
            gam += (double)gamma * gamma;
            map[k % hw] += (double)gamma * gamma;
            if (mu > 0) {
                masked++;
                mus += mu;
                mumax = fmax(mumax, mu);
            }
        }
    }
    for (size_t q = 0; q < hw; q++)
        map[q] = sqrt(map[q]);
    e->sld = sld_on;
    e->applied = warm;
    e->step = i;
    e->cfg_norm = sqrt(gg);
    e->safety_norm = sqrt(gam);
    e->momentum_norm = sqrt(mm);
    e->mask_share = (double)masked / (double)n;
    e->scale_mean = mus / (double)n;
    e->scale_max = mumax;
    e->cos_prompt_concept = sld_on && gg > 0 && cc > 0 ? gc / sqrt(gg * cc) : 0;
}

static int stats_match(const char *run, int i, const sld_step_stats *g, const sld_step_stats *e)
{
    int ok = g->sld == e->sld && g->applied == e->applied && g->step == e->step &&
             g->mask_share == e->mask_share && rel_close(g->scale_mean, e->scale_mean, 1e-9) &&
             g->scale_max == e->scale_max && rel_close(g->cfg_norm, e->cfg_norm, 1e-9) &&
             rel_close(g->safety_norm, e->safety_norm, 1e-9) &&
             rel_close(g->momentum_norm, e->momentum_norm, 1e-9) &&
             rel_close(g->cos_prompt_concept, e->cos_prompt_concept, 1e-9);
    if (!ok)
        printf("  %s step %d: got share %.9g scale %.9g/%.9g norms %.9g %.9g %.9g cos %.9g; "
               "want %.9g %.9g/%.9g %.9g %.9g %.9g %.9g\n",
               run, i, g->mask_share, g->scale_mean, g->scale_max, g->cfg_norm, g->safety_norm,
               g->momentum_norm, g->cos_prompt_concept, e->mask_share, e->scale_mean,
               e->scale_max, e->cfg_norm, e->safety_norm, e->momentum_norm,
               e->cos_prompt_concept);
    return ok;
}

static void run_case(const char *run)
{
    char path[512];
    sld_error err;
    sld_json rj;
    snprintf(path, sizeof path, "pipelines/%s/run.json", run);
    CHECK(sld_json_load(&rj, fixture(path), &err) == SLD_OK);
    if (!rj.root)
        return;
    const cJSON *kw = cJSON_GetObjectItem(rj.root, "call_kwargs");
    float cfg = (float)num_or(kw, "guidance_scale", 7.5);
    sld_safety sp = {(float)num_or(kw, "sld_guidance_scale", 0),
                     (int)num_or(kw, "sld_warmup_steps", 0),
                     (float)num_or(kw, "sld_threshold", 0),
                     (float)num_or(kw, "sld_momentum_scale", 0),
                     (float)num_or(kw, "sld_mom_beta", 0)};
    if (!strstr(run, "_sd_") && !cJSON_GetObjectItem(kw, "sld_guidance_scale"))
        sp = (sld_safety){1000, 10, 0.01f, 0.3f, 0.4f}; /* Safe pipeline defaults */
    const int sld_on = sld_guidance_sld_active(cfg, &sp);
    CHECK(sld_on == cJSON_IsTrue(cJSON_GetObjectItem(rj.root, "sld_enabled")));
    const int it = (int)num_or(rj.root, "n_unet_evaluations", 0);

    snprintf(path, sizeof path, "pipelines/%s/tensors.safetensors", run);
    sld_st_file *f = NULL;
    CHECK(sld_st_open(&f, fixture(path), &err) == SLD_OK);
    size_t n_out = 0, n_g = 0;
    float *uout = f ? read_t(f, "unet_out", &n_out) : NULL;
    float *guided = f ? read_t(f, "guided_noise_pred", &n_g) : NULL;
    CHECK(uout && guided && it > 0);
    if (!uout || !guided || it <= 0) {
        free(uout);
        free(guided);
        sld_st_close(f);
        sld_json_free(&rj);
        return;
    }
    const size_t n = n_g / (size_t)it; /* one image: C x h x w */
    const int C = 4, B = sld_on ? 3 : 2;
    const size_t hw = n / C;
    CHECK(n_out == (size_t)it * B * n);

    sld_guidance_state st = {0}, st2 = {0};
    CHECK(sld_guidance_state_init(&st, n, &err) == SLD_OK);
    CHECK(sld_guidance_state_init(&st2, 2 * n, &err) == SLD_OK);
    float *nu = calloc(n, sizeof(float)), *out = malloc(n * sizeof(float));
    float *map = malloc(hw * sizeof(float)), *map2 = malloc(2 * hw * sizeof(float));
    double *emap = malloc(hw * sizeof(double));
    /* two-image batch: image 0 = this run's step i, image 1 = step it-1-i */
    float *bu = malloc(2 * n * sizeof(float)), *bp = malloc(2 * n * sizeof(float));
    float *bs = malloc(2 * n * sizeof(float)), *bout = malloc(2 * n * sizeof(float));
    float *nu_rev = calloc(n, sizeof(float));
    int bad = 0, applied_steps = 0;
    double worst_implied = 0;
    sld_step_stats *rev_want = calloc((size_t)it, sizeof *rev_want);
    /* expected stats of the reversed sequence (image 1) first */
    for (int i = 0; i < it; i++) {
        const float *o = uout + (size_t)(it - 1 - i) * B * n;
        expect_step(o, o + n, sld_on ? o + 2 * n : NULL, n, C, i, &sp, sld_on, nu_rev,
                    &rev_want[i], emap);
    }
    for (int i = 0; i < it; i++) {
        const float *o = uout + (size_t)i * B * n;
        const float *eu = o, *ep = o + n, *es = sld_on ? o + 2 * n : NULL;
        sld_step_stats got, want;
        CHECK(sld_guidance_apply_traced(eu, ep, es, n, 1, C, i, cfg, &sp, sld_on ? &st : NULL,
                                        out, &got, map, &err) == SLD_OK);
        expect_step(eu, ep, es, n, C, i, &sp, sld_on, nu, &want, emap);
        bad += !stats_match(run, i, &got, &want);
        for (size_t q = 0; q < hw; q++)
            if (!rel_close(map[q], emap[q], 1e-5) && bad++ < 3)
                printf("  %s step %d map[%zu] %.9g vs %.9g\n", run, i, q, map[q], emap[q]);
        /* the guided output is the golden one (the telemetry changes nothing) */
        const float *gw = guided + (size_t)i * n;
        for (size_t k = 0; k < n; k++)
            if (!(fabs(out[k] - gw[k]) <= 1e-6) && bad++ < 3)
                printf("  %s guided[%d][%zu] %.9g vs %.9g\n", run, i, k, out[k], gw[k]);
        /* mask share 0 before the warm-up and without SLD */
        if (!sld_on || i < sp.warmup_steps)
            CHECK(got.mask_share == 0 && got.safety_norm == 0 && !got.applied);
        if (!sld_on)
            CHECK(got.momentum_norm == 0 && got.cos_prompt_concept == 0 && !got.sld);
        /* the applied term implied by the recorded guided prediction */
        if (got.applied) {
            applied_steps++;
            double s2 = 0;
            for (size_t k = 0; k < n; k++) {
                double gamma = ((double)ep[k] - eu[k]) - ((double)gw[k] - eu[k]) / cfg;
                s2 += gamma * gamma;
            }
            double d = fabs(sqrt(s2) - got.safety_norm) / fmax(1.0, got.safety_norm);
            worst_implied = fmax(worst_implied, d);
            if (!(d <= 1e-5) && bad++ < 3)
                printf("  %s step %d: safety norm %.9g, implied by guided %.9g\n", run, i,
                       got.safety_norm, sqrt(s2));
        }
        /* batch of two: each image gets its own stats */
        const float *r = uout + (size_t)(it - 1 - i) * B * n;
        memcpy(bu, eu, n * sizeof(float));
        memcpy(bu + n, r, n * sizeof(float));
        memcpy(bp, ep, n * sizeof(float));
        memcpy(bp + n, r + n, n * sizeof(float));
        if (sld_on) {
            memcpy(bs, es, n * sizeof(float));
            memcpy(bs + n, r + 2 * n, n * sizeof(float));
        }
        sld_step_stats two[2];
        CHECK(sld_guidance_apply_traced(bu, bp, sld_on ? bs : NULL, 2 * n, 2, C, i, cfg, &sp,
                                        sld_on ? &st2 : NULL, bout, two, map2, &err) == SLD_OK);
        CHECK(two[0].image == 0 && two[1].image == 1);
        bad += !stats_match(run, i, &two[0], &want);
        rev_want[i].image = 1;
        bad += !stats_match(run, i, &two[1], &rev_want[i]);
        CHECK(!memcmp(map2, map, hw * sizeof(float)));
        CHECK(!memcmp(bout, out, n * sizeof(float)));
    }
    CHECK_MSG(bad == 0, "%s: %d mismatches", run, bad);
    if (sld_on)
        CHECK(applied_steps == it - (sp.warmup_steps < it ? sp.warmup_steps : it));
    printf("  %-46s SLD %s, %d applied iterations, implied-gamma norm rel %.2g\n", run,
           sld_on ? "on " : "off", applied_steps, worst_implied);
    /* a batch that does not split is refused */
    CHECK(sld_guidance_apply_traced(bu, bp, bs, n + 1, 2, C, 0, cfg, &sp, NULL, bout, NULL, NULL,
                                    &err) == SLD_ERR_INVALID_ARG);
    sld_guidance_state_free(&st);
    sld_guidance_state_free(&st2);
    free(rev_want);
    free(nu);
    free(nu_rev);
    free(out);
    free(map);
    free(map2);
    free(emap);
    free(bu);
    free(bp);
    free(bs);
    free(bout);
    free(uout);
    free(guided);
    sld_st_close(f);
    sld_json_free(&rj);
}

static void test_teacher_forced(void)
{
    static const char *runs[] = {
        "sd1_sd_pndm",          "sd1_safe_sld_off_pndm",
        "sd1_safe_weak_pndm",   "sd1_safe_medium_pndm",
        "sd1_safe_strong_pndm", "sd1_safe_max_pndm",
        "sd1_safe_medium_custom_concept_negative_pndm",
        "sd1_safe_medium_ddim", "sd1_safe_medium_euler_a",
        "sd2_safe_medium_ddim_vpred",
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++)
        run_case(runs[r]);
}

/* ---- sld_generate ------------------------------------------------------ */

static int on_tele_cancel(const sld_step_stats *s, int n_images, const float *map, int map_w,
                          int map_h, void *user)
{
    (void)s, (void)n_images, (void)map, (void)map_w, (void)map_h, (void)user;
    return 1;
}

typedef struct {
    int calls, n_images, map_w, map_h;
    sld_step_stats seen[64 * 2];
    float map_sum[2 * 8 * 8];
} tele_log;

static int on_tele(const sld_step_stats *s, int n_images, const float *map, int map_w, int map_h,
                   void *user)
{
    tele_log *l = user;
    l->n_images = n_images;
    l->map_w = map_w;
    l->map_h = map_h;
    for (int b = 0; b < n_images && l->calls * n_images + b < 128; b++)
        l->seen[l->calls * n_images + b] = s[b];
    for (int k = 0; k < n_images * map_w * map_h && k < 128; k++)
        l->map_sum[k] += map[k];
    l->calls++;
    return 0;
}

static void test_generate(void)
{
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    sld_error err;
    CHECK(sld_model_open(&m, fixture("models/tiny-sd1"), NULL, &err) == SLD_OK);
    if (!m)
        return;
    CHECK(sld_ctx_new(&c, m, 1, &err) == SLD_OK);
    for (int pass = 0; pass < 2; pass++) {
        const int safe = pass == 1;
        sld_gen_params p;
        sld_gen_params_default(&p);
        p.prompt = "a photograph of a knight fighting a dragon, blood on the sword";
        p.steps = 6;
        p.width = p.height = 64;
        p.n_images = 2;
        p.seed = 42;
        p.safety_checker = 0;
        p.sld = sld_safety_preset_get(safe ? SLD_SAFETY_STRONG : SLD_SAFETY_OFF);
        p.sld.warmup_steps = 3;
        tele_log *log = calloc(1, sizeof *log);
        p.telemetry = on_tele;
        p.telemetry_user = log;
        sld_gen_result r;
        CHECK(sld_generate(c, &p, &r, &err) == SLD_OK);
        if (!r.steps) {
            free(log);
            continue;
        }
        const int it = r.n_steps, N = r.n;
        CHECK(it == 7 && N == 2); /* PNDM: steps + 1 */
        CHECK(log->calls == it && log->n_images == N && log->map_w == 8 && log->map_h == 8);
        CHECK(!memcmp(log->seen, r.steps, (size_t)it * N * sizeof *r.steps));
        double any = 0;
        for (int i = 0; i < it; i++)
            for (int b = 0; b < N; b++) {
                const sld_step_stats *s = &r.steps[(size_t)i * N + b];
                CHECK(s->step == i && s->image == b && s->n_steps == it);
                CHECK(s->sld == safe && s->applied == (safe && i >= 3));
                CHECK(s->cfg_norm > 0 && isfinite(s->cfg_norm));
                if (!s->applied)
                    CHECK(s->mask_share == 0 && s->safety_norm == 0 && s->scale_max == 0);
                any += s->mask_share;
            }
        double map_max = 0;
        for (int k = 0; k < N * 64; k++) {
            CHECK_NEAR(r.safety_map[k], log->map_sum[k], 1e-6);
            map_max = fmax(map_max, r.safety_map[k]);
        }
        for (int b = 0; b < N; b++) {
            sld_safety_summary want;
            sld_safety_summary_get(r.steps, it, N, b, &want);
            CHECK(!memcmp(&want, &r.summary[b], sizeof want));
        }
        if (safe) {
            CHECK(any > 0 && map_max > 0);
            CHECK(r.summary[0].peak_step >= 3 && r.summary[0].steps_steered > 0);
            CHECK(r.summary[0].mean_scale > 0 && r.summary[0].mean_scale <= 1);
        } else {
            CHECK(any == 0 && map_max == 0); /* SLD off: all-zero map */
            CHECK(r.summary[0].peak_step == -1 && r.summary[1].steered_share == 0);
        }
        sld_gen_result_free(&r);
        free(log);
    }
    /* the telemetry callback can cancel */
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = "x";
    p.steps = 3;
    p.width = p.height = 64;
    p.safety_checker = 0;
    p.telemetry = on_tele_cancel;
    sld_gen_result r;
    CHECK(sld_generate(c, &p, &r, &err) == SLD_ERR_CANCELLED);
    CHECK(r.steps == NULL && r.safety_map == NULL && r.summary == NULL);
    sld_ctx_free(c);
    sld_model_close(m);
}

/* ---- summary and rendering --------------------------------------------- */

static void test_summary(void)
{
    sld_step_stats s[3 * 2] = {0};
    /* image 1: shares 0, 0.5, 0.25; mean mu over masked 0.8, 0.4 */
    s[1 * 2 + 1].mask_share = 0.5;
    s[1 * 2 + 1].scale_mean = 0.4;
    s[1 * 2 + 1].safety_norm = 2;
    s[2 * 2 + 1].mask_share = 0.25;
    s[2 * 2 + 1].scale_mean = 0.1;
    s[2 * 2 + 1].safety_norm = 1;
    sld_safety_summary a;
    sld_safety_summary_get(s, 3, 2, 1, &a);
    CHECK_NEAR(a.steered_share, 0.25, 1e-15);
    CHECK(a.peak_step == 1 && a.peak_share == 0.5 && a.steps_steered == 2);
    CHECK_NEAR(a.mean_scale, 0.5 / 0.75, 1e-15);
    CHECK(a.safety_total == 3);
    sld_safety_summary_get(s, 3, 2, 0, &a);
    CHECK(a.peak_step == -1 && a.steered_share == 0 && a.mean_scale == 0);
    sld_safety_summary_get(s, 3, 2, 2, &a); /* out of range: empty */
    CHECK(a.peak_step == -1 && a.steps_steered == 0);
}

static void test_render(void)
{
    sld_error err;
    uint8_t rgb[4 * 2 * 3], under[4 * 2 * 3];
    for (int k = 0; k < 24; k++)
        under[k] = (uint8_t)(10 * k);
    /* all zero: black; over an image: the image */
    float zero[2] = {0, 0};
    CHECK(sld_safety_map_render(zero, 2, 1, 0, NULL, 4, 2, rgb, &err) == SLD_OK);
    int black = 1;
    for (int k = 0; k < 24; k++)
        black &= rgb[k] == 0;
    CHECK(black);
    CHECK(sld_safety_map_render(zero, 2, 1, 0, under, 4, 2, rgb, &err) == SLD_OK);
    CHECK(!memcmp(rgb, under, sizeof rgb));
    /* [0, 1] to 4 wide, half-pixel centres: v = 0, 0.25, 0.75, 1 */
    float ramp[2] = {0, 3};
    CHECK(sld_safety_map_render(ramp, 2, 1, 0, NULL, 4, 2, rgb, &err) == SLD_OK);
    const uint8_t want[4][3] = {{0, 0, 0}, {90, 20, 130}, {250, 150, 30}, {255, 250, 200}};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++)
            for (int ch = 0; ch < 3; ch++)
                CHECK(rgb[(y * 4 + x) * 3 + ch] == want[x][ch]);
    /* a fixed scale: 3 / 6 = 0.5 -> red, and values above it saturate */
    CHECK(sld_safety_map_render(ramp, 2, 1, 6, NULL, 4, 2, rgb, &err) == SLD_OK);
    CHECK(rgb[3 * 3] == 200 && rgb[3 * 3 + 1] == 40 && rgb[3 * 3 + 2] == 60);
    CHECK(sld_safety_map_render(ramp, 2, 1, 1, NULL, 4, 2, rgb, &err) == SLD_OK);
    CHECK(rgb[3 * 3] == 255 && rgb[3 * 3 + 1] == 250);
    /* overlay at v = 1: 25 % image, 75 % colour */
    CHECK(sld_safety_map_render(ramp, 2, 1, 0, under, 4, 2, rgb, &err) == SLD_OK);
    CHECK(rgb[9] == (uint8_t)lrintf(0.25f * under[9] + 0.75f * 255));
    CHECK(sld_safety_map_render(ramp, 0, 1, 0, NULL, 4, 2, rgb, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_safety_map_render(NULL, 2, 1, 0, NULL, 4, 2, rgb, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_safety_map_render(ramp, 2, 1, NAN, NULL, 4, 2, rgb, &err) == SLD_ERR_INVALID_ARG);
}

/* ---- the command line -------------------------------------------------- */

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static int run_sld(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >%s/stdout.txt 2>%s/stderr.txt", g_sld, args, g_tmp, g_tmp);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* Reads a JSONL trace: number of records that parse and carry every field. */
static int trace_records(const char *path, int *n_lines, int *max_step, int *max_image)
{
    FILE *f = fopen(path, "r");
    *n_lines = 0;
    *max_step = *max_image = -1;
    if (!f)
        return 0;
    static const char *keys[] = {"step",          "n_steps",     "image",
                                 "timestep",      "sld",         "applied",
                                 "mask_share",    "scale_mean",  "scale_max",
                                 "cfg_norm",      "safety_norm", "momentum_norm",
                                 "cos_prompt_concept"};
    char line[4096];
    int good = 0;
    while (fgets(line, sizeof line, f)) {
        (*n_lines)++;
        cJSON *j = cJSON_Parse(line);
        int ok = cJSON_IsObject(j);
        for (size_t k = 0; ok && k < sizeof keys / sizeof *keys; k++)
            ok = cJSON_GetObjectItemCaseSensitive(j, keys[k]) != NULL;
        if (ok) {
            good++;
            int st = cJSON_GetObjectItem(j, "step")->valueint;
            int im = cJSON_GetObjectItem(j, "image")->valueint;
            *max_step = st > *max_step ? st : *max_step;
            *max_image = im > *max_image ? im : *max_image;
        }
        cJSON_Delete(j);
    }
    fclose(f);
    return good;
}

/* 1 when every pixel of a PNG is the same colour; *r0 gets it. */
static int png_constant(const char *path, int *r0, int *w, int *h)
{
    uint8_t *px = NULL;
    sld_error err;
    if (sld_png_read(path, &px, w, h, &err)) {
        printf("  %s\n", err.msg);
        return -1;
    }
    int same = 1;
    for (size_t k = 0; k < (size_t)*w * *h * 3; k++)
        same &= px[k] == px[k % 3];
    *r0 = px[0];
    sld_free(px);
    return same;
}

static void test_cli(void)
{
    if (access(g_sld, X_OK)) {
        printf("  (skip: %s not built)\n", g_sld);
        return;
    }
    char args[4096];
    const char *base = "generate --model %s --prompt 'a knight, blood on the sword' --steps 4 "
                       "--width 64 --height 64 --seed 7 --no-safety-checker --quiet --threads 1";
    char common[1024];
    snprintf(common, sizeof common, base, fixture("models/tiny-sd1"));
    /* SLD on, two images: trace, maps, frames */
    snprintf(args, sizeof args,
             "%s --images 2 --safety max --trace %s --sld-map %s --sld-map-steps -o %s", common,
             tmp("t.jsonl"), tmp("map.png"), tmp("img.png"));
    CHECK(run_sld(args) == 0);
    int lines, ms, mi;
    int good = trace_records(tmp("t.jsonl"), &lines, &ms, &mi);
    CHECK(lines == 5 * 2 && good == lines && ms == 4 && mi == 1); /* PNDM: 4 + 1 iterations */
    int col, w, h;
    struct stat sb;
    CHECK(png_constant(tmp("map-0.png"), &col, &w, &h) == 0 && w == 64 && h == 64);
    CHECK(stat(tmp("map-1.png"), &sb) == 0 && stat(tmp("map.png"), &sb) != 0);
    CHECK(stat(tmp("map-1-step-004.png"), &sb) == 0 && stat(tmp("map-1-step-005.png"), &sb) != 0);
    char *text = NULL;
    sld_error err;
    CHECK(sld_png_read_text(tmp("map-0.png"), "parameters", &text, &err) == SLD_OK && text &&
          strstr(text, "SLD map max: ") && strstr(text, "SLD: max"));
    sld_free(text);
    /* SLD off, same seed: a blank (black) map; over the image it is the image */
    snprintf(args, sizeof args, "%s --safety off --trace %s --sld-map %s -o %s", common,
             tmp("off.jsonl"), tmp("off-map.png"), tmp("off.png"));
    CHECK(run_sld(args) == 0);
    good = trace_records(tmp("off.jsonl"), &lines, &ms, &mi);
    CHECK(lines == 5 && good == 5 && mi == 0);
    CHECK(png_constant(tmp("off-map.png"), &col, &w, &h) == 1 && col == 0);
    snprintf(args, sizeof args, "%s --safety off --sld-map %s --sld-map-overlay -o %s", common,
             tmp("ov-map.png"), tmp("ov.png"));
    CHECK(run_sld(args) == 0);
    uint8_t *a = NULL, *b = NULL;
    int wa, ha, wb, hb;
    CHECK(sld_png_read(tmp("ov-map.png"), &a, &wa, &ha, &err) == SLD_OK &&
          sld_png_read(tmp("ov.png"), &b, &wb, &hb, &err) == SLD_OK && wa == wb && ha == hb &&
          !memcmp(a, b, (size_t)wa * ha * 3));
    sld_free(a);
    sld_free(b);
    /* usage errors */
    snprintf(args, sizeof args, "%s --sld-map-overlay -o %s", common, tmp("x.png"));
    CHECK(run_sld(args) == 2);
    snprintf(args, sizeof args, "%s --sld-map %s --sld-map-max -1 -o %s", common, tmp("y.png"),
             tmp("x.png"));
    CHECK(run_sld(args) == 2);
    snprintf(args, sizeof args, "%s --trace /nonexistent-dir/t.jsonl -o %s", common, tmp("x.png"));
    CHECK(run_sld(args) == 1);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_telemetry_%ld", (long)getpid());
    mkdir(g_tmp, 0700);
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *s = strrchr(exe, '/');
        if (s) {
            *s = 0;
            snprintf(g_sld, sizeof g_sld, "%s/../sld", exe);
        }
    }
    RUN(test_teacher_forced);
    RUN(test_generate);
    RUN(test_summary);
    RUN(test_render);
    RUN(test_cli);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
