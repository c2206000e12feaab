/* test_sched.c — schedulers vs goldens/schedulers: training schedule bits,
 * timesteps/sigmas/init sigma/input scales exact (20 and 50 steps), and the
 * 20-step fake-model trajectories within abs 1e-5 (rel 1e-5 above 1) for all
 * ten cases; config handling and error paths. */
#include "io/json.h"
#include "io/safetensors.h"
#include "sample/sched.h"
#include "test.h"

static const char *base_cfg_path = "models/tiny-sd1/scheduler/scheduler_config.json";

static sld_json load_base(void)
{
    sld_json j;
    sld_error err;
    sld_status st = sld_json_load(&j, fixture(base_cfg_path), &err);
    if (st)
        printf("  %s\n", err.msg);
    return j;
}

/* Builds the scheduler of a golden case from the raw SD1.5 file, as
 * XScheduler.from_config(json, **overrides). */
static sld_sched *case_sched(const sld_json *base, const cJSON *c, sld_error *err)
{
    const char *cls = cJSON_GetObjectItem(c, "class")->valuestring;
    const cJSON *ov = cJSON_GetObjectItem(c, "overrides");
    const cJSON *kw = cJSON_GetObjectItem(c, "step_kwargs");
    sld_sampler k = SLD_SAMPLER_DEFAULT;
    for (int i = 0; i < SLD_SAMPLER_DEFAULT; i++)
        if (!strcmp(cls, sld_sampler_class((sld_sampler)i)))
            k = (sld_sampler)i;
    sld_sched_opts o;
    sld_sched_opts_default(&o);
    const cJSON *v;
    if ((v = cJSON_GetObjectItem(ov, "prediction_type")))
        o.prediction = !strcmp(v->valuestring, "v_prediction") ? SLD_PRED_V : SLD_PRED_EPSILON;
    if ((v = cJSON_GetObjectItem(ov, "use_karras_sigmas")))
        o.karras = cJSON_IsTrue(v);
    if ((v = cJSON_GetObjectItem(kw, "eta")))
        o.eta = (float)v->valuedouble;
    sld_sched *s = NULL;
    if (sld_sched_new(&s, base, k, &o, err))
        printf("  %s\n", err->msg);
    return s;
}

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

static void test_training_schedule(void)
{
    sld_json j = load_base();
    sld_error err;
    sld_sched *s;
    CHECK(sld_sched_new(&s, &j, SLD_SAMPLER_DEFAULT, NULL, &err) == SLD_OK);
    if (!s)
        return;
    CHECK(sld_sched_sampler(s) == SLD_SAMPLER_PNDM);
    sld_st_file *f;
    CHECK(sld_st_open(&f, fixture("schedulers/common.safetensors"), &err) == SLD_OK);
    size_t n = 0;
    float *ac = read_t(f, "alphas_cumprod", &n), *b = read_t(f, "betas", &n);
    int len;
    const float *mac = sld_sched_alphas_cumprod(s, &len);
    const float *mb = sld_sched_betas(s, &len);
    CHECK(len == 1000 && n == 1000);
    int bad_b = 0, bad_a = 0;
    for (int i = 0; i < 1000; i++) {
        bad_b += mb[i] != b[i];
        bad_a += mac[i] != ac[i];
    }
    CHECK_MSG(bad_b == 0 && bad_a == 0, "%d betas, %d alphas_cumprod differ", bad_b, bad_a);
    free(ac);
    free(b);
    sld_st_close(f);
    sld_sched_free(s);
    sld_json_free(&j);
}

/* timesteps, sigmas, init sigma and scale factors of one case at n steps */
static void check_tables(const char *name, sld_sched *s, const cJSON *tab, int steps)
{
    sld_error err;
    CHECK(sld_sched_set_timesteps(s, steps, &err) == SLD_OK);
    const cJSON *ts = cJSON_GetObjectItem(tab, "timesteps");
    int it = sld_sched_n_iters(s);
    CHECK_MSG(cJSON_GetArraySize(ts) == it, "%s/%d: %d iterations, golden %d", name, steps, it,
              cJSON_GetArraySize(ts));
    int bad = 0;
    for (int i = 0; i < it && i < cJSON_GetArraySize(ts); i++) {
        double want = cJSON_GetArrayItem(ts, i)->valuedouble;
        if (sld_sched_timestep(s, i) != want) {
            if (bad++ < 3)
                printf("  %s/%d: timestep[%d] = %.9g, golden %.9g\n", name, steps, i,
                       sld_sched_timestep(s, i), want);
        }
    }
    const cJSON *sg = cJSON_GetObjectItem(tab, "sigmas");
    if (sg) {
        for (int i = 0; i < cJSON_GetArraySize(sg); i++) {
            float want = (float)cJSON_GetArrayItem(sg, i)->valuedouble;
            if (sld_sched_sigma(s, i) != want && bad++ < 3)
                printf("  %s/%d: sigma[%d] = %.9g, golden %.9g\n", name, steps, i,
                       sld_sched_sigma(s, i), want);
        }
    }
    float init = (float)cJSON_GetObjectItem(tab, "init_noise_sigma")->valuedouble;
    if (sld_sched_init_noise_sigma(s) != init && bad++ < 3)
        printf("  %s/%d: init_noise_sigma %.9g, golden %.9g\n", name, steps,
               sld_sched_init_noise_sigma(s), init);
    const cJSON *fac = cJSON_GetObjectItem(tab, "scale_model_input_factors");
    for (int i = 0; fac && i < cJSON_GetArraySize(fac) && i < it; i++) {
        double want = cJSON_GetArrayItem(fac, i)->valuedouble;
        /* the golden factor is scale_model_input(ones)[0] = 1 / sqrt(sigma^2+1) */
        float x = 1.0f, y;
        sld_sched_scale_input(s, i, &x, &y, 1);
        if (fabs(y - want) > 1e-7 && bad++ < 3)
            printf("  %s/%d: input scale[%d] = %.9g, golden %.9g\n", name, steps, i, y, want);
    }
    CHECK_MSG(bad == 0, "%s/%d: %d table mismatches", name, steps, bad);
}

static void run_case(const char *name, const cJSON *c, const sld_json *base)
{
    sld_error err;
    sld_sched *s = case_sched(base, c, &err);
    CHECK_MSG(s != NULL, "%s", name);
    if (!s)
        return;
    check_tables(name, s, cJSON_GetObjectItem(c, "steps50"), 50);
    check_tables(name, s, cJSON_GetObjectItem(c, "steps20_from_json"), 20);
    check_tables(name, s, cJSON_GetObjectItem(c, "steps20"), 20);

    char path[256];
    snprintf(path, sizeof path, "schedulers/%s.safetensors", name);
    sld_st_file *f;
    CHECK(sld_st_open(&f, fixture(path), &err) == SLD_OK);
    if (!f) {
        sld_sched_free(s);
        return;
    }
    size_t ns, nm, np, nt;
    float *samples = read_t(f, "samples", &ns), *mos = read_t(f, "model_outputs", &nm);
    float *po = read_t(f, "pred_original", &np), *ts = read_t(f, "timesteps", &nt);
    const int n = 256, it = sld_sched_n_iters(s);
    CHECK((int)nt == it && (int)ns == (it + 1) * n && (int)nm == it * n);
    sld_rng g;
    sld_rng_seed(&g, 31337, SLD_RNG_AVX2);
    float x[256], xin[256], eps[256], x0[256];
    sld_rng_randn(&g, x, n);
    float init = sld_sched_init_noise_sigma(s);
    for (int k = 0; k < n; k++)
        x[k] = x[k] * init;
    double worst = 0;
    int bad = 0;
    for (int k = 0; k < n; k++)
        bad += x[k] != samples[k];
    CHECK_MSG(bad == 0, "%s: start sample differs in %d values", name, bad);
    for (int i = 0; i < it && !bad; i++) {
        double t = sld_sched_timestep(s, i);
        CHECK((float)t == ts[i]);
        sld_sched_scale_input(s, i, x, xin, n);
        float add = (float)(0.01 * t / 1000);
        for (int k = 0; k < n; k++)
            eps[k] = 0.1f * xin[k] + add;
        CHECK(sld_sched_step(s, i, eps, x, n, &g, x0, &err) == SLD_OK);
        for (int k = 0; k < n; k++) {
            double tol_m = 1e-5 * fmax(1.0, fabs(mos[i * n + k]));
            if (!(fabs(eps[k] - mos[i * n + k]) <= tol_m) && bad++ < 3)
                printf("  %s: model_out[%d][%d] %.9g vs %.9g\n", name, i, k, eps[k],
                       mos[i * n + k]);
            const float want = samples[(i + 1) * n + k];
            double d = fabs(x[k] - want), tol = 1e-5 * fmax(1.0, fabs(want));
            worst = fmax(worst, d / fmax(1.0, fabs(want)));
            if (!(d <= tol) && bad++ < 3)
                printf("  %s: step %d sample[%d] = %.9g, golden %.9g\n", name, i, k, x[k], want);
            float wp = po[i * n + k];
            if (wp == wp) {
                double tp = 1e-5 * fmax(1.0, fabs(wp));
                if (!(fabs(x0[k] - wp) <= tp) && bad++ < 3)
                    printf("  %s: step %d pred_original[%d] = %.9g, golden %.9g\n", name, i, k,
                           x0[k], wp);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: trajectory mismatches", name);
    printf("  %-16s %d iterations, max error %.2g (scaled)\n", name, it, worst);
    free(samples);
    free(mos);
    free(po);
    free(ts);
    sld_st_close(f);
    sld_sched_free(s);
}

static void test_goldens(void)
{
    sld_json gj, base = load_base();
    sld_error err;
    CHECK(sld_json_load(&gj, fixture("schedulers/schedulers.json"), &err) == SLD_OK);
    const cJSON *cases = cJSON_GetObjectItem(gj.root, "cases");
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        run_case(c->string, c, &base);
        n++;
    }
    CHECK(n == 10);
    sld_json_free(&gj);
    sld_json_free(&base);
}

/* Issue 11: out-of-range numbers in scheduler_config.json are refused at
 * load with the key and value (steps_offset 1000 read alphas_cumprod out of
 * bounds; beta_start > beta_end, negative or zero betas gave NaN). */
static void test_config_ranges(void)
{
    static const char *const bad[][2] = {
        {"{\"_class_name\": \"PNDMScheduler\", \"skip_prk_steps\": true, \"steps_offset\": 1000}",
         "steps_offset 1000"},
        {"{\"_class_name\": \"DDIMScheduler\", \"steps_offset\": 2147483647}", "steps_offset"},
        {"{\"_class_name\": \"DDIMScheduler\", \"steps_offset\": -1}", "steps_offset -1"},
        {"{\"_class_name\": \"DDIMScheduler\", \"beta_start\": 0.02, \"beta_end\": 0.001}",
         "larger than beta_end"},
        {"{\"_class_name\": \"DDIMScheduler\", \"beta_start\": -0.001}", "beta_start -0.001"},
        {"{\"_class_name\": \"DDIMScheduler\", \"beta_end\": 1.5}", "beta_end 1.5"},
        {"{\"_class_name\": \"DDIMScheduler\", \"beta_start\": 0, \"beta_end\": 0}", "(0, 1)"},
        {"{\"_class_name\": \"DDIMScheduler\", \"clip_sample_range\": -1}", "clip_sample_range"},
        {"{\"_class_name\": \"DDIMScheduler\", \"num_train_timesteps\": 2147483647}",
         "num_train_timesteps"},
        {"{\"_class_name\": \"DDIMScheduler\", \"num_train_timesteps\": 2, \"trained_betas\": [0.1, -0.2]}",
         "trained_betas"},
        {"{\"_class_name\": \"DDIMScheduler\", \"num_train_timesteps\": 100000, \"beta_start\": 0.5, "
         "\"beta_end\": 0.9}",
         "alphas_cumprod"},
    };
    sld_error err;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        sld_json j;
        sld_sched *s = NULL;
        CHECK(sld_json_parse(&j, bad[k][0], "scheduler_config.json", &err) == SLD_OK);
        sld_status st = sld_sched_new(&s, &j, SLD_SAMPLER_DEFAULT, NULL, &err);
        CHECK_MSG(st == SLD_ERR_CONFIG && !s && strstr(err.msg, "scheduler_config.json") &&
                      strstr(err.msg, bad[k][1]),
                  "%s -> %d %s", bad[k][0], st, err.msg);
        sld_sched_free(s);
        sld_json_free(&j);
    }
    /* In range at load, but steps and offset together leave the table:
     * diffusers' leading spacing with 1000 steps and steps_offset 1 asks
     * for timestep 1000. Every sampler either stays inside or refuses. */
    const sld_sampler smp[] = {SLD_SAMPLER_PNDM, SLD_SAMPLER_DDIM, SLD_SAMPLER_EULER,
                               SLD_SAMPLER_EULER_A, SLD_SAMPLER_LMS, SLD_SAMPLER_DPMPP_2M};
    for (size_t k = 0; k < sizeof smp / sizeof smp[0]; k++) {
        sld_json j;
        sld_sched *s = NULL;
        CHECK(sld_json_parse(&j,
                             "{\"skip_prk_steps\": true, \"steps_offset\": 999, "
                             "\"timestep_spacing\": \"leading\"}",
                             "s.json", &err) == SLD_OK);
        CHECK(sld_sched_new(&s, &j, smp[k], NULL, &err) == SLD_OK);
        sld_status st = s ? sld_sched_set_timesteps(s, 50, &err) : SLD_ERR_INTERNAL;
        if (smp[k] == SLD_SAMPLER_PNDM || smp[k] == SLD_SAMPLER_DDIM ||
            smp[k] == SLD_SAMPLER_DPMPP_2M)
            CHECK_MSG(st == SLD_ERR_CONFIG && strstr(err.msg, "steps_offset 999"), "%zu: %s", k,
                      err.msg);
        else
            CHECK(st == SLD_OK); /* sigmas interpolate, clamped like np.interp */
        sld_sched_free(s);
        sld_json_free(&j);
    }
}

static void test_config_errors(void)
{
    sld_json j;
    sld_error err;
    sld_sched *s = NULL;
    CHECK(sld_json_parse(&j, "{\"_class_name\": \"HeunDiscreteScheduler\"}", "h.json", &err) == 0);
    CHECK(sld_sched_new(&s, &j, SLD_SAMPLER_DEFAULT, NULL, &err) == SLD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "HeunDiscreteScheduler") != NULL && s == NULL);
    /* an explicit sampler works from any class's file */
    CHECK(sld_sched_new(&s, &j, SLD_SAMPLER_EULER, NULL, &err) == SLD_OK);
    CHECK(sld_sched_set_timesteps(s, 0, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_sched_set_timesteps(s, 1001, &err) == SLD_ERR_INVALID_ARG);
    float x[4] = {1, 2, 3, 4};
    CHECK(sld_sched_step(s, 0, x, x, 4, NULL, NULL, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_sched_set_timesteps(s, 5, &err) == SLD_OK);
    CHECK(sld_sched_step(s, 1, x, x, 4, NULL, NULL, &err) == SLD_ERR_INVALID_ARG); /* order */
    CHECK(sld_sched_step(s, 0, x, x, 4, NULL, NULL, &err) == SLD_OK);
    CHECK(sld_sched_step(s, 1, x, x, 3, NULL, NULL, &err) == SLD_ERR_INVALID_ARG); /* size */
    sld_sched_free(s);
    s = NULL;
    sld_json_free(&j);

    const char *bad[] = {
        "{\"_class_name\": \"DDIMScheduler\", \"prediction_type\": \"sample\"}",
        "{\"_class_name\": \"DDIMScheduler\", \"thresholding\": true}",
        "{\"_class_name\": \"DDIMScheduler\", \"beta_schedule\": \"sigmoid\"}",
        "{\"_class_name\": \"PNDMScheduler\"}", /* skip_prk_steps defaults to false */
        "{\"_class_name\": \"DDIMScheduler\", \"timestep_spacing\": \"middle\"}",
        "{\"_class_name\": \"DDIMScheduler\", \"steps_offset\": \"one\"}",
        "{}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK(sld_json_parse(&j, bad[k], "bad.json", &err) == SLD_OK);
        sld_status st = sld_sched_new(&s, &j, SLD_SAMPLER_DEFAULT, NULL, &err);
        CHECK_MSG(st != SLD_OK && s == NULL && strstr(err.msg, "bad.json"), "%s", bad[k]);
        sld_json_free(&j);
    }
    CHECK(sld_json_parse(&j, "{}", "e.json", &err) == SLD_OK);
    sld_sched_opts o;
    sld_sched_opts_default(&o);
    o.karras = 1;
    CHECK(sld_sched_new(&s, &j, SLD_SAMPLER_EULER, &o, &err) == SLD_ERR_INVALID_ARG);
    o.karras = 0;
    o.eta = -1;
    CHECK(sld_sched_new(&s, &j, SLD_SAMPLER_DDIM, &o, &err) == SLD_ERR_INVALID_ARG);
    sld_json_free(&j);

    sld_sampler k;
    CHECK(sld_sampler_parse("euler_a", &k) == 0 && k == SLD_SAMPLER_EULER_A);
    CHECK(sld_sampler_parse("dpmpp_2m", &k) == 0 && k == SLD_SAMPLER_DPMPP_2M);
    CHECK(sld_sampler_parse("heun", &k) == -1);
    CHECK(!strcmp(sld_sampler_name(SLD_SAMPLER_LMS), "lms"));
}

static void test_oom(void)
{
    sld_json j = load_base();
    int ok_seen = 0;
    for (long n = 1; n < 30 && !ok_seen; n++) {
        sld_error err;
        sld_sched *s = NULL;
        sld_alloc_fail_at(n);
        sld_status st = sld_sched_new(&s, &j, SLD_SAMPLER_DPMPP_2M, NULL, &err);
        if (st == SLD_OK)
            st = sld_sched_set_timesteps(s, 10, &err);
        float x[8] = {0};
        if (st == SLD_OK)
            st = sld_sched_step(s, 0, x, x, 8, NULL, NULL, &err);
        sld_alloc_fail_at(0);
        CHECK(st == SLD_OK || st == SLD_ERR_NOMEM);
        ok_seen = st == SLD_OK;
        sld_sched_free(s);
    }
    CHECK(ok_seen);
    sld_json_free(&j);
}

int main(void)
{
    RUN(test_training_schedule);
    RUN(test_goldens);
    RUN(test_config_errors);
    RUN(test_config_ranges);
    RUN(test_oom);
    TEST_END();
}
