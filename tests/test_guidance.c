/* test_guidance.c — CFG + SLD and the scheduler step, teacher-forced on the
 * goldens/pipelines runs: initial latents from the seeded generator
 * (bit-exact), unet_in = scale_model_input(latents[i]) (1e-6), own CFG/SLD
 * on unet_out[i] vs guided_noise_pred[i] (abs 1e-6), and
 * scheduler.step(guided[i], latents[i]) vs latents[i+1] in sequence (abs
 * 1e-5), with each run's explicit hyperparameters from run.json (the
 * fixtures ran diffusers' WEAK with s_S = 20). Plus presets and errors. */
#include "io/json.h"
#include "io/safetensors.h"
#include "sample/guidance.h"
#include "sample/sched.h"
#include "test.h"

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

static void run_case(const char *run)
{
    char path[512];
    sld_error err;
    sld_json rj;
    snprintf(path, sizeof path, "pipelines/%s/run.json", run);
    CHECK(sld_json_load(&rj, fixture(path), &err) == SLD_OK);
    if (!rj.root)
        return;
    /* scheduler from the run's own config */
    char *sc = cJSON_PrintUnformatted(cJSON_GetObjectItem(rj.root, "scheduler_config"));
    sld_json sj;
    CHECK(sld_json_parse(&sj, sc, "scheduler_config", &err) == SLD_OK);
    free(sc);
    sld_sched *s = NULL;
    CHECK(sld_sched_new(&s, &sj, SLD_SAMPLER_DEFAULT, NULL, &err) == SLD_OK);
    const cJSON *kw = cJSON_GetObjectItem(rj.root, "call_kwargs");
    int steps = (int)num_or(kw, "num_inference_steps", 50);
    float cfg = (float)num_or(kw, "guidance_scale", 7.5);
    sld_safety sp = {(float)num_or(kw, "sld_guidance_scale", 0),
                     (int)num_or(kw, "sld_warmup_steps", 0),
                     (float)num_or(kw, "sld_threshold", 0),
                     (float)num_or(kw, "sld_momentum_scale", 0),
                     (float)num_or(kw, "sld_mom_beta", 0)};
    if (!strstr(run, "_sd_") && !cJSON_GetObjectItem(kw, "sld_guidance_scale"))
        sp = (sld_safety){1000, 10, 0.01f, 0.3f, 0.4f}; /* Safe pipeline defaults */
    int sld_on = sld_guidance_sld_active(cfg, &sp);
    CHECK(sld_on == cJSON_IsTrue(cJSON_GetObjectItem(rj.root, "sld_enabled")));
    if (!s) {
        sld_json_free(&sj);
        sld_json_free(&rj);
        return;
    }
    CHECK(sld_sched_set_timesteps(s, steps, &err) == SLD_OK);
    int it = sld_sched_n_iters(s);
    CHECK(it == (int)num_or(rj.root, "n_unet_evaluations", -1));

    snprintf(path, sizeof path, "pipelines/%s/tensors.safetensors", run);
    sld_st_file *f;
    CHECK(sld_st_open(&f, fixture(path), &err) == SLD_OK);
    if (!f) {
        sld_sched_free(s);
        sld_json_free(&sj);
        sld_json_free(&rj);
        return;
    }
    size_t n_ts, n_in, n_out, n_g, n_lat;
    float *ts = read_t(f, "timesteps", &n_ts), *uin = read_t(f, "unet_in", &n_in);
    float *uout = read_t(f, "unet_out", &n_out), *guided = read_t(f, "guided_noise_pred", &n_g);
    float *lat = read_t(f, "latents", &n_lat);
    const size_t n = n_g / (size_t)it; /* latent size of one image */
    const int B = sld_on ? 3 : 2;
    CHECK((int)n_ts == it && n_lat == (size_t)(it + 1) * n && n_out == (size_t)it * B * n &&
          n_in == n_out);

    /* initial latents: randn(seed 42) * init_noise_sigma, bit for bit */
    sld_rng g;
    sld_rng_seed(&g, 42, SLD_RNG_AVX2);
    float *x = malloc(n * sizeof(float)), *xin = malloc(n * sizeof(float));
    float *eps = malloc(n * sizeof(float));
    sld_rng_randn(&g, x, n);
    float init = sld_sched_init_noise_sigma(s);
    int bad0 = 0;
    for (size_t k = 0; k < n; k++)
        bad0 += x[k] * init != lat[k];
    CHECK_MSG(bad0 == 0, "%s: initial latents differ in %d values", run, bad0);

    sld_guidance_state st = {0};
    CHECK(sld_guidance_state_init(&st, n, &err) == SLD_OK);
    double worst_g = 0, worst_x = 0;
    int bad = 0;
    for (int i = 0; i < it; i++) {
        if ((float)sld_sched_timestep(s, i) != ts[i] && bad++ < 3)
            printf("  %s: timestep[%d] %.9g vs %.9g\n", run, i, sld_sched_timestep(s, i), ts[i]);
        const float *lat_i = lat + (size_t)i * n;
        sld_sched_scale_input(s, i, lat_i, xin, n);
        for (int b = 0; b < B; b++)
            for (size_t k = 0; k < n; k++)
                if (!(fabs(xin[k] - uin[((size_t)i * B + b) * n + k]) <= 1e-6) && bad++ < 3)
                    printf("  %s: unet_in[%d][%d][%zu] %.9g vs %.9g\n", run, i, b, k, xin[k],
                           uin[((size_t)i * B + b) * n + k]);
        const float *o = uout + (size_t)i * B * n;
        CHECK(sld_guidance_apply(o, o + n, sld_on ? o + 2 * n : NULL, n, i, cfg, &sp,
                                 sld_on ? &st : NULL, eps, &err) == SLD_OK);
        const float *gw = guided + (size_t)i * n;
        for (size_t k = 0; k < n; k++) {
            double d = fabs(eps[k] - gw[k]);
            worst_g = fmax(worst_g, d);
            if (!(d <= 1e-6) && bad++ < 3)
                printf("  %s: guided[%d][%zu] %.9g vs %.9g\n", run, i, k, eps[k], gw[k]);
        }
        /* step on the golden inputs, in sequence */
        memcpy(x, lat_i, n * sizeof(float));
        CHECK(sld_sched_step(s, i, gw, x, n, &g, NULL, &err) == SLD_OK);
        const float *want = lat + (size_t)(i + 1) * n;
        for (size_t k = 0; k < n; k++) {
            double d = fabs(x[k] - want[k]);
            worst_x = fmax(worst_x, d);
            if (!(d <= 1e-5) && bad++ < 3)
                printf("  %s: latents[%d][%zu] %.9g vs %.9g\n", run, i + 1, k, x[k], want[k]);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d mismatches", run, bad);
    printf("  %-46s %s B=%d: guided max %.2g, step max %.2g\n", run,
           sld_sampler_name(sld_sched_sampler(s)), B, worst_g, worst_x);
    sld_guidance_state_free(&st);
    free(x);
    free(xin);
    free(eps);
    free(ts);
    free(uin);
    free(uout);
    free(guided);
    free(lat);
    sld_st_close(f);
    sld_sched_free(s);
    sld_json_free(&sj);
    sld_json_free(&rj);
}

static void test_pipelines_teacher_forced(void)
{
    static const char *runs[] = {
        "sd1_sd_pndm",          "sd1_safe_sld_off_pndm",
        "sd1_safe_weak_pndm",   "sd1_safe_medium_pndm",
        "sd1_safe_strong_pndm", "sd1_safe_max_pndm",
        "sd1_safe_medium_custom_concept_negative_pndm",
        "sd1_safe_medium_ddim", "sd1_safe_medium_euler_a",
        "sd1_sd_ddim",          "sd1_sd_euler_a",
        "sd2_safe_medium_ddim_vpred",
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++)
        run_case(runs[r]);
}

static void test_presets(void)
{
    sld_safety w = sld_safety_preset_get(SLD_SAFETY_WEAK);
    CHECK(w.warmup_steps == 15 && w.guidance_scale == 200 && w.threshold == 0 &&
          w.momentum_scale == 0 && w.mom_beta == 0);
    sld_safety m = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
    CHECK(m.warmup_steps == 10 && m.guidance_scale == 1000 && m.threshold == 0.01f &&
          m.momentum_scale == 0.3f && m.mom_beta == 0.4f);
    sld_safety s = sld_safety_preset_get(SLD_SAFETY_STRONG);
    CHECK(s.warmup_steps == 7 && s.guidance_scale == 2000 && s.threshold == 0.025f &&
          s.momentum_scale == 0.5f && s.mom_beta == 0.7f);
    sld_safety x = sld_safety_preset_get(SLD_SAFETY_MAX);
    CHECK(x.warmup_steps == 0 && x.guidance_scale == 5000 && x.threshold == 1.0f &&
          x.momentum_scale == 0.5f && x.mom_beta == 0.7f);
    sld_safety o = sld_safety_preset_get(SLD_SAFETY_OFF);
    CHECK(!sld_guidance_sld_active(7.5f, &o));
    CHECK(sld_guidance_sld_active(7.5f, &m) && !sld_guidance_sld_active(1.0f, &m));
    CHECK(!strncmp(SLD_DEFAULT_SAFETY_CONCEPT, "an image showing hate, harassment", 33));
    CHECK(strstr(SLD_DEFAULT_SAFETY_CONCEPT, "brutality, cruelty") != NULL);
}

static void test_formula(void)
{
    /* hand-checked values: one element where d < lambda, one at/above */
    float u[2] = {0.0f, 0.0f}, p[2] = {1.0f, 1.0f}, c[2] = {1.0005f, 0.5f}, out[2];
    sld_safety sp = {1000, 1, 0.01f, 0.5f, 0.5f};
    sld_guidance_state st;
    sld_error err;
    CHECK(sld_guidance_state_init(&st, 2, &err) == SLD_OK);
    /* i = 0: warm-up, plain CFG out, momentum builds */
    CHECK(sld_guidance_apply(u, p, c, 2, 0, 2.0f, &sp, &st, out, &err) == SLD_OK);
    CHECK(out[0] == 2.0f && out[1] == 2.0f);
    /* element 0: d = -0.0005, mu = min(1, 0.5) -> gs = 1.0005*0.5; nu = 0.5*gs */
    float gs0 = 1.0005f * (fabsf(1.0f - 1.0005f) * 1000.0f);
    CHECK(st.mom[0] == 0.5f * gs0 && st.mom[1] == 0.0f);
    /* i = 1: guidance applies, momentum adds */
    float nu = st.mom[0];
    CHECK(sld_guidance_apply(u, p, c, 2, 1, 2.0f, &sp, &st, out, &err) == SLD_OK);
    float gs1 = gs0 + 0.5f * nu;
    CHECK(out[0] == 0.0f + 2.0f * (1.0f - gs1));
    CHECK(out[1] == 2.0f);
    /* no CFG: the prompt prediction as is; CFG only without SLD */
    CHECK(sld_guidance_apply(u, p, c, 2, 1, 1.0f, &sp, &st, out, &err) == SLD_OK && out[0] == 1.0f);
    sld_safety off = sld_safety_preset_get(SLD_SAFETY_OFF);
    CHECK(sld_guidance_apply(u, p, NULL, 2, 1, 7.5f, &off, NULL, out, &err) == SLD_OK &&
          out[0] == 7.5f);
    /* SLD without its inputs is an error */
    CHECK(sld_guidance_apply(u, p, NULL, 2, 1, 7.5f, &sp, &st, out, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_guidance_apply(u, p, c, 3, 1, 7.5f, &sp, &st, out, &err) == SLD_ERR_INVALID_ARG);
    sld_guidance_state_reset(&st);
    CHECK(st.mom[0] == 0.0f);
    sld_guidance_state_free(&st);
    sld_guidance_state_free(&st);
    sld_alloc_fail_at(1);
    CHECK(sld_guidance_state_init(&st, 4, &err) == SLD_ERR_NOMEM);
    sld_alloc_fail_at(0);
}

int main(void)
{
    RUN(test_pipelines_teacher_forced);
    RUN(test_presets);
    RUN(test_formula);
    TEST_END();
}
