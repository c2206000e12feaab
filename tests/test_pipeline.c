/* test_pipeline.c — the whole SD / SLD pipeline against the 16 diffusers
 * runs in tests/fixtures/pipelines (fixtures README section 3):
 *   - every run: our text embeddings vs encoder_hidden_states (1e-4);
 *   - 64x64 runs (teacher-forced): UNet on unet_in[i] vs unet_out[i] (1e-4);
 *   - free-running (sld_generate): _128, DDIM and tiny-sd2 runs: final latents
 *     1e-3, float image 1e-4, 8-bit image +-1; 64x64 PNDM / Euler a runs: float
 *     image 5e-3 and 8-bit +-1 (the 1x1 bottleneck amplifies rounding);
 *   - the safety-checker run is flagged and blacked out;
 *   - parameter errors (size not a multiple of 8, zero steps) are refused. */
#include "io/json.h"
#include "io/safetensors.h"
#include "pipeline/model.h"
#include "sample/guidance.h"
#include "sample/sched.h"
#include "test.h"

#include <math.h>

typedef struct {
    sld_json run;
    sld_st_file *t;
    char name[128];
} golden;

static int golden_open(golden *g, const char *name)
{
    char path[512];
    sld_error err;
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(path, sizeof path, "%s", fixture("pipelines"));
    char rj[600], ts[600];
    snprintf(rj, sizeof rj, "%s/%s/run.json", path, name);
    snprintf(ts, sizeof ts, "%s/%s/tensors.safetensors", path, name);
    if (sld_json_load(&g->run, rj, &err) || sld_st_open(&g->t, ts, &err)) {
        printf("  %s\n", err.msg);
        return 0;
    }
    return 1;
}

static void golden_close(golden *g)
{
    sld_json_free(&g->run);
    sld_st_close(g->t);
}

static const float *tensor(const golden *g, const char *name, size_t *numel)
{
    const sld_st_tensor *t = sld_st_find(g->t, name);
    if (!t || t->dtype != SLD_DT_F32)
        return NULL;
    if (numel)
        *numel = t->numel;
    return t->data; /* F32 data; the format does not promise alignment, read via memcpy */
}

static float *copy_f32(const golden *g, const char *name, size_t *numel)
{
    size_t n;
    const float *src = tensor(g, name, &n);
    if (!src)
        return NULL;
    float *d = malloc(n * sizeof(float));
    memcpy(d, src, n * sizeof(float));
    if (numel)
        *numel = n;
    return d;
}

static sld_model *open_model(const char *which)
{
    char path[512];
    snprintf(path, sizeof path, "%s", fixture(which));
    sld_model *m = NULL;
    sld_error err;
    if (sld_model_open(&m, path, NULL, &err)) {
        printf("  %s: %s\n", path, err.msg);
        return NULL;
    }
    return m;
}

static double num_or(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Fills generation parameters from run.json. */
static void params_from_run(const golden *g, sld_gen_params *p)
{
    sld_gen_params_default(p);
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(g->run.root, "call_kwargs");
    const cJSON *v;
    p->prompt = cJSON_GetObjectItemCaseSensitive(kw, "prompt")->valuestring;
    if ((v = cJSON_GetObjectItemCaseSensitive(kw, "negative_prompt")) && cJSON_IsString(v))
        p->negative_prompt = v->valuestring;
    p->steps = cJSON_GetObjectItemCaseSensitive(kw, "num_inference_steps")->valueint;
    p->cfg = (float)cJSON_GetObjectItemCaseSensitive(kw, "guidance_scale")->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(kw, "height")))
        p->height = v->valueint;
    if ((v = cJSON_GetObjectItemCaseSensitive(kw, "width")))
        p->width = v->valueint;
    if ((v = cJSON_GetObjectItemCaseSensitive(kw, "eta")))
        p->eta = (float)v->valuedouble;
    p->seed = 42;
    p->safety_checker = 0;
    const char *pipe = cJSON_GetObjectItemCaseSensitive(g->run.root, "pipeline_class")->valuestring;
    if (!strcmp(pipe, "StableDiffusionPipelineSafe")) {
        /* absent keys take the pipeline's defaults (MEDIUM) */
        p->sld = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
        p->sld.guidance_scale = (float)num_or(kw, "sld_guidance_scale", p->sld.guidance_scale);
        p->sld.warmup_steps = (int)num_or(kw, "sld_warmup_steps", p->sld.warmup_steps);
        p->sld.threshold = (float)num_or(kw, "sld_threshold", p->sld.threshold);
        p->sld.momentum_scale = (float)num_or(kw, "sld_momentum_scale", p->sld.momentum_scale);
        p->sld.mom_beta = (float)num_or(kw, "sld_mom_beta", p->sld.mom_beta);
        if ((v = cJSON_GetObjectItemCaseSensitive(g->run.root, "safety_concept")) && cJSON_IsString(v))
            p->safety_concept = v->valuestring;
    } else {
        p->sld.guidance_scale = 0;
    }
    const char *sc = cJSON_GetObjectItemCaseSensitive(g->run.root, "scheduler_class")->valuestring;
    p->sampler = !strcmp(sc, "DDIMScheduler")                     ? SLD_SAMPLER_DDIM
                 : !strcmp(sc, "EulerAncestralDiscreteScheduler") ? SLD_SAMPLER_EULER_A
                                                                  : SLD_SAMPLER_PNDM;
}

static const char *model_dir(const golden *g)
{
    const char *m = cJSON_GetObjectItemCaseSensitive(g->run.root, "model")->valuestring;
    return !strcmp(m, "tiny-sd2") ? "models/tiny-sd2" : "models/tiny-sd1";
}

/* Text embeddings of every run's batch match what diffusers fed the UNet. */
static void check_embeddings(sld_ctx *c, const golden *g, const sld_gen_params *p)
{
    size_t n;
    const float *want = tensor(g, "encoder_hidden_states", &n);
    CHECK(want != NULL);
    if (!want)
        return;
    int D = sld_model_text_dim(c->m);
    size_t emb = (size_t)77 * D;
    int chunks = (int)(n / emb);
    const char *texts[3];
    int k = 0;
    if (chunks >= 2)
        texts[k++] = p->negative_prompt ? p->negative_prompt : "";
    texts[k++] = p->prompt;
    if (chunks == 3)
        texts[k++] = p->safety_concept ? p->safety_concept : SLD_DEFAULT_SAFETY_CONCEPT;
    float *got = malloc(emb * sizeof(float)), *w = malloc(n * sizeof(float));
    memcpy(w, want, n * sizeof(float));
    sld_error err;
    for (int i = 0; i < chunks; i++) {
        CHECK(sld_encode(c, texts[i], got, &err) == SLD_OK);
        CHECK_CLOSE("encoder_hidden_states", got, w + (size_t)i * emb, emb, 1e-4);
    }
    free(got);
    free(w);
}

/* UNet on the recorded inputs reproduces the recorded outputs. */
static void check_teacher_forced(sld_ctx *c, const golden *g)
{
    const sld_st_tensor *ti = sld_st_find(g->t, "unet_in");
    if (!ti)
        return;
    size_t n_in, n_t, n_c;
    float *in = copy_f32(g, "unet_in", &n_in), *outw = copy_f32(g, "unet_out", NULL);
    float *ts = copy_f32(g, "timesteps", &n_t), *ctx = copy_f32(g, "encoder_hidden_states", &n_c);
    int N = (int)ti->shape[0], B = (int)ti->shape[1], C = (int)ti->shape[2],
        h = (int)ti->shape[3], w = (int)ti->shape[4];
    size_t per = (size_t)B * C * h * w;
    float *out = malloc(per * sizeof(float));
    float tb[8];
    sld_error err;
    double worst = 0;
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
        for (int b = 0; b < B; b++)
            tb[b] = ts[i];
        CHECK(sld_unet_forward(c->m->unet, in + i * per, B, h, w, tb, ctx, 77, out, &err) == SLD_OK);
        for (size_t k = 0; k < per; k++) {
            double d = fabs((double)out[k] - outw[i * per + k]);
            if (d > worst)
                worst = d;
        }
        char what[64];
        snprintf(what, sizeof what, "unet_out[%d]", i);
        ok = CHECK_CLOSE(what, out, outw + i * per, per, 1e-4);
    }
    printf("  %s: teacher-forced UNet max |d| %.2e over %d evaluations\n", g->name, worst, N);
    free(in);
    free(outw);
    free(ts);
    free(ctx);
    free(out);
}

/* Teacher-forced guidance on every run: our UNet + CFG/SLD on the recorded
 * latents[i] vs guided_noise_pred[i] within 1e-3 (the UNet's 1e-4 times CFG). SLD's "d >= lambda" test
 * can flip where the prompt/safety difference lies within float32 noise of
 * lambda (the _128 medium run has d = 0.01000 +- 6e-8 at one element); such
 * near-tie elements, and their momentum afterwards, are reported and excluded
 * (at most a handful may exist). Returns the number of near ties. */
static int check_guided_teacher_forced(sld_ctx *c, const golden *g, const sld_gen_params *p)
{
    size_t n_lat, n_gd, n_ctx;
    float *lats = copy_f32(g, "latents", &n_lat), *gd = copy_f32(g, "guided_noise_pred", &n_gd);
    float *ctx = copy_f32(g, "encoder_hidden_states", &n_ctx);
    const sld_st_tensor *L = sld_st_find(g->t, "latents");
    int h = (int)L->shape[3], w = (int)L->shape[4];
    size_t lat = (size_t)4 * h * w;
    int emb = 77 * sld_model_text_dim(c->m), chunks = (int)(n_ctx / (size_t)emb);
    sld_error err;
    sld_sched *s = NULL;
    sld_sched_opts so;
    sld_sched_opts_default(&so);
    so.eta = p->eta;
    CHECK(sld_sched_new(&s, &c->m->sched_cfg, p->sampler, &so, &err) == SLD_OK);
    CHECK(s && sld_sched_set_timesteps(s, p->steps, &err) == SLD_OK);
    int iters = s ? sld_sched_n_iters(s) : 0;
    CHECK((size_t)iters * lat == n_gd);
    sld_guidance_state st = {0};
    int sld_on = sld_guidance_sld_active(p->cfg, &p->sld);
    if (sld_on)
        CHECK(sld_guidance_state_init(&st, lat, &err) == SLD_OK);
    float *in = malloc(lat * chunks * sizeof(float)), *out = malloc(lat * chunks * sizeof(float));
    float *guided = malloc(lat * sizeof(float));
    unsigned char *tainted = calloc(lat, 1);
    int ties = 0;
    double worst = 0;
    for (int i = 0; i < iters && (size_t)(i + 1) * lat <= n_gd; i++) {
        sld_sched_scale_input(s, i, lats + (size_t)i * lat, in, lat);
        for (int k = 1; k < chunks; k++)
            memcpy(in + k * lat, in, lat * sizeof(float));
        float tb[3];
        for (int k = 0; k < chunks; k++)
            tb[k] = (float)sld_sched_timestep(s, i);
        CHECK(sld_unet_forward(c->m->unet, in, chunks, h, w, tb, ctx, 77, out, &err) == SLD_OK);
        const float *eu = chunks >= 2 ? out : NULL, *ep = out + (chunks >= 2 ? lat : 0);
        const float *es = chunks == 3 ? out + 2 * lat : NULL;
        CHECK(sld_guidance_apply(eu, ep, es, lat, i, p->cfg, &p->sld, sld_on ? &st : NULL, guided,
                                 &err) == SLD_OK);
        for (size_t k = 0; k < lat; k++) {
            double d = fabs((double)guided[k] - gd[(size_t)i * lat + k]);
            if (d > 1e-4 && sld_on && !tainted[k] &&
                fabs((double)(ep[k] - es[k]) - p->sld.threshold) < 2e-6) {
                tainted[k] = 1;
                ties++;
                printf("  %s: step %d element %zu: near tie d-lambda = %.2e (excluded)\n",
                       g->name, i, k, (double)(ep[k] - es[k]) - p->sld.threshold);
            }
            if (!tainted[k] && d > worst)
                worst = d;
        }
    }
    printf("  %s: teacher-forced guided noise max |d| %.2e (%d near ties)\n", g->name, worst, ties);
    /* the UNet's 1e-4 is amplified by CFG (x7.5 on a difference) */
    CHECK_NEAR(worst, 0, 1e-3);
    CHECK(ties <= 2);
    sld_guidance_state_free(&st);
    sld_sched_free(s);
    free(in);
    free(out);
    free(guided);
    free(tainted);
    free(lats);
    free(gd);
    free(ctx);
    return ties;
}

static void run_case(const char *name, int free_tight, int free_loose)
{
    golden g;
    if (!golden_open(&g, name)) {
        CHECK_MSG(0, "cannot open golden %s", name);
        return;
    }
    sld_gen_params p;
    params_from_run(&g, &p);
    sld_model *m = open_model(model_dir(&g));
    CHECK(m != NULL);
    if (!m) {
        golden_close(&g);
        return;
    }
    sld_ctx *c = NULL;
    sld_error err;
    CHECK(sld_ctx_new(&c, m, 0, &err) == SLD_OK);
    check_embeddings(c, &g, &p);
    check_teacher_forced(c, &g);
    /* runs without recorded UNet I/O (the _128 ones): check guidance per step */
    int ties = sld_st_find(g.t, "unet_in") ? 0 : check_guided_teacher_forced(c, &g, &p);
    if (ties) { /* a threshold flip makes the free run legitimately drift */
        free_loose = 1;
        free_tight = 0;
    }
    if (free_tight || free_loose) {
        sld_gen_result r;
        sld_status st = sld_generate(c, &p, &r, &err);
        CHECK_MSG(st == SLD_OK, "%s", err.msg);
        if (st == SLD_OK) {
            size_t n_l, n_i;
            float *lat = copy_f32(&g, "final_latents", &n_l);
            float *img = copy_f32(&g, "image_float_nhwc", &n_i);
            const sld_st_tensor *u8 = sld_st_find(g.t, "image_uint8_hwc");
            CHECK(r.n == 1 && (size_t)r.width * r.height * 3 == n_i);
            double dl = 0, di = 0;
            int du = 0;
            for (size_t k = 0; k < n_l; k++)
                dl = fmax(dl, fabs((double)r.latents[k] - lat[k]));
            for (size_t k = 0; k < n_i; k++) {
                di = fmax(di, fabs((double)r.image_float[k] - img[k]));
                int d = abs((int)r.pixels[k] - (int)((const uint8_t *)u8->data)[k]);
                du = d > du ? d : du;
            }
            printf("  %s: free-running max |d| latents %.2e, image %.2e, uint8 %d\n", name, dl, di,
                   du);
            if (free_tight) {
                CHECK_NEAR(dl, 0, 1e-3);
                CHECK_NEAR(di, 0, 1e-4);
            } else {
                CHECK_NEAR(di, 0, 5e-3);
            }
            CHECK(du <= 1);
            free(lat);
            free(img);
            sld_gen_result_free(&r);
        }
    }
    sld_ctx_free(c);
    sld_model_close(m);
    golden_close(&g);
}

static void test_sd1_sd_pndm(void) { run_case("sd1_sd_pndm", 0, 1); }
static void test_sd1_safe_sld_off_pndm(void) { run_case("sd1_safe_sld_off_pndm", 0, 1); }
static void test_sd1_safe_weak_pndm(void) { run_case("sd1_safe_weak_pndm", 0, 1); }
static void test_sd1_safe_medium_pndm(void) { run_case("sd1_safe_medium_pndm", 0, 1); }
static void test_sd1_safe_strong_pndm(void) { run_case("sd1_safe_strong_pndm", 0, 1); }
static void test_sd1_safe_max_pndm(void) { run_case("sd1_safe_max_pndm", 0, 1); }
static void test_sd1_custom_concept_negative(void)
{
    run_case("sd1_safe_medium_custom_concept_negative_pndm", 0, 1);
}
static void test_sd1_safe_medium_ddim(void) { run_case("sd1_safe_medium_ddim", 1, 0); }
static void test_sd1_sd_ddim(void) { run_case("sd1_sd_ddim", 1, 0); }
static void test_sd1_safe_medium_euler_a(void) { run_case("sd1_safe_medium_euler_a", 0, 1); }
static void test_sd1_sd_euler_a(void) { run_case("sd1_sd_euler_a", 0, 1); }
static void test_sd1_sd_pndm_128(void) { run_case("sd1_sd_pndm_128", 1, 0); }
static void test_sd1_safe_medium_pndm_128(void) { run_case("sd1_safe_medium_pndm_128", 1, 0); }
static void test_sd2_sd_ddim_vpred(void) { run_case("sd2_sd_ddim_vpred", 1, 0); }
static void test_sd2_safe_medium_ddim_vpred(void) { run_case("sd2_safe_medium_ddim_vpred", 1, 0); }

/* The safety checker flags this run's image: diffusers returns zeros. */
static void test_safety_checker_blackout(void)
{
    golden g;
    CHECK(golden_open(&g, "sd1_sd_pndm_safety_checker"));
    sld_gen_params p;
    params_from_run(&g, &p);
    p.safety_checker = 1;
    sld_model *m = open_model("models/tiny-sd1");
    sld_ctx *c = NULL;
    sld_error err;
    CHECK(m && sld_ctx_new(&c, m, 0, &err) == SLD_OK);
    if (c) {
        sld_gen_result r;
        CHECK(sld_generate(c, &p, &r, &err) == SLD_OK);
        CHECK(r.nsfw != NULL && r.nsfw[0] == 1);
        int nz = 0;
        for (size_t k = 0; r.pixels && k < (size_t)r.width * r.height * 3; k++)
            nz += r.pixels[k] != 0;
        CHECK(nz == 0);
        sld_gen_result_free(&r);
        p.keep_flagged = 1;
        CHECK(sld_generate(c, &p, &r, &err) == SLD_OK);
        nz = 0;
        for (size_t k = 0; r.pixels && k < (size_t)r.width * r.height * 3; k++)
            nz += r.pixels[k] != 0;
        CHECK(r.nsfw && r.nsfw[0] == 1 && nz > 0);
        sld_gen_result_free(&r);
    }
    sld_ctx_free(c);
    sld_model_close(m);
    golden_close(&g);
}

/* Several images per prompt: image 0 of a batch of 2 differs from a batch of
 * 1 (the noise is drawn as one [2,4,h,w] tensor), but each image is finite,
 * and a second call with the same seed reproduces the batch exactly. */
static void test_batch_and_errors(void)
{
    sld_model *m = open_model("models/tiny-sd1");
    sld_ctx *c = NULL;
    sld_error err;
    CHECK(m && sld_ctx_new(&c, m, 1, &err) == SLD_OK);
    if (!c) {
        sld_model_close(m);
        return;
    }
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = "a cat";
    p.steps = 3;
    p.n_images = 2;
    p.seed = 7;
    p.safety_checker = 0;
    sld_gen_result a, b;
    CHECK(sld_generate(c, &p, &a, &err) == SLD_OK);
    CHECK(sld_generate(c, &p, &b, &err) == SLD_OK);
    CHECK(a.n == 2 && a.width == 64 && a.height == 64);
    CHECK(a.latents && b.latents &&
          !memcmp(a.latents, b.latents, (size_t)2 * 4 * 8 * 8 * sizeof(float)));
    int differ = memcmp(a.latents, a.latents + 4 * 8 * 8, 4 * 8 * 8 * sizeof(float)) != 0;
    CHECK(differ);
    sld_gen_result_free(&a);
    sld_gen_result_free(&b);
    /* the UNet's and VAE's scratch are released after use (peak memory) */
    CHECK(sld_unet_arena_bytes(c->m->unet) == 0 && sld_vae_arena_bytes(c->m->vae) == 0);

    p.width = 60;
    CHECK(sld_generate(c, &p, &a, &err) == SLD_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "multiples of 8") != NULL);
    p.width = 64;
    p.steps = 0;
    CHECK(sld_generate(c, &p, &a, &err) == SLD_ERR_INVALID_ARG);
    p.steps = 2;
    p.sld.mom_beta = 2;
    CHECK(sld_generate(c, &p, &a, &err) == SLD_ERR_INVALID_ARG);
    sld_ctx_free(c);
    sld_model_close(m);
}

static int cancel_at_3(int step, int n, double s, void *u)
{
    (void)n;
    (void)s;
    (void)u;
    return step >= 3;
}

static void test_cancel(void)
{
    sld_model *m = open_model("models/tiny-sd1");
    sld_ctx *c = NULL;
    sld_error err;
    CHECK(m && sld_ctx_new(&c, m, 1, &err) == SLD_OK);
    if (c) {
        sld_gen_params p;
        sld_gen_params_default(&p);
        p.prompt = "x";
        p.steps = 10;
        p.safety_checker = 0;
        p.progress = cancel_at_3;
        sld_gen_result r;
        CHECK(sld_generate(c, &p, &r, &err) == SLD_ERR_CANCELLED);
        CHECK(r.pixels == NULL && r.n == 0);
    }
    sld_ctx_free(c);
    sld_model_close(m);
}

static void test_presets(void)
{
    sld_safety s = sld_safety_preset_get(SLD_SAFETY_WEAK);
    CHECK(s.warmup_steps == 15 && s.guidance_scale == 200 && s.threshold == 0 &&
          s.momentum_scale == 0 && s.mom_beta == 0);
    s = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
    CHECK(s.warmup_steps == 10 && s.guidance_scale == 1000 && s.threshold == 0.01f &&
          s.momentum_scale == 0.3f && s.mom_beta == 0.4f);
    s = sld_safety_preset_get(SLD_SAFETY_STRONG);
    CHECK(s.warmup_steps == 7 && s.guidance_scale == 2000 && s.threshold == 0.025f &&
          s.momentum_scale == 0.5f && s.mom_beta == 0.7f);
    s = sld_safety_preset_get(SLD_SAFETY_MAX);
    CHECK(s.warmup_steps == 0 && s.guidance_scale == 5000 && s.threshold == 1.0f &&
          s.momentum_scale == 0.5f && s.mom_beta == 0.7f);
    s = sld_safety_preset_get(SLD_SAFETY_OFF);
    CHECK(!sld_guidance_sld_active(7.5f, &s));
}

int main(void)
{
    RUN(test_presets);
    RUN(test_sd1_sd_pndm);
    RUN(test_sd1_safe_sld_off_pndm);
    RUN(test_sd1_safe_weak_pndm);
    RUN(test_sd1_safe_medium_pndm);
    RUN(test_sd1_safe_strong_pndm);
    RUN(test_sd1_safe_max_pndm);
    RUN(test_sd1_custom_concept_negative);
    RUN(test_sd1_safe_medium_ddim);
    RUN(test_sd1_sd_ddim);
    RUN(test_sd1_safe_medium_euler_a);
    RUN(test_sd1_sd_euler_a);
    RUN(test_sd1_sd_pndm_128);
    RUN(test_sd1_safe_medium_pndm_128);
    RUN(test_sd2_sd_ddim_vpred);
    RUN(test_sd2_safe_medium_ddim_vpred);
    RUN(test_safety_checker_blackout);
    RUN(test_batch_and_errors);
    RUN(test_cancel);
    TEST_END();
}
