/*
 * txt2img.c — text to image with classifier-free guidance and Safe Latent
 * Diffusion: sld_generate and its parameter helpers.
 *
 * Mirrors diffusers' StableDiffusionPipelineSafe (and StableDiffusionPipeline
 * when safety guidance is off):
 *   1. encode [negative-or-empty, prompt, safety concept], each repeated per
 *      image: the UNet batch is [uncond x N | prompt x N | safety x N] (the
 *      safety chunk only when SLD is active, the uncond chunk only with CFG);
 *   2. latents = randn([N,4,h,w], generator) * init_noise_sigma;
 *   3. per loop iteration i (UNet evaluations; PNDM makes steps+1): scale the
 *      input, one batched UNet call, CFG + SLD (sample/guidance.c), scheduler
 *      step (noise for ancestral samplers from the same generator); the
 *      guidance pass also measures SLD telemetry (out->steps, safety_map,
 *      summary; the optional telemetry callback sees each iteration);
 *   4. decode latents * (1/scaling) (Safe) or latents / scaling (plain), clamp
 *      x/2+0.5 to [0,1], 8-bit with round-half-to-even like numpy;
 *   5. optional safety checker; flagged images are blacked out unless kept.
 * All buffers are allocated once before the loop.
 */
#include "model/safety_checker.h"
#include "pipeline/model.h"
#include "sample/guidance.h"
#include "sample/rng.h"
#include "sample/sched.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Conditionings per UNet call: a batch of 3N is split into chunks of at most
 * this many samples to bound activation memory (results are per-sample). */
#define UNET_MAX_BATCH 6
#define MAX_IMAGES 64

void sld_gen_params_default(sld_gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->steps = 50;
    p->cfg = 7.5f;
    p->sampler = SLD_SAMPLER_DEFAULT;
    p->rng_variant = SLD_RNG_AVX2;
    p->n_images = 1;
    p->sld = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
    p->safety_checker = 1;
}

void sld_gen_result_free(sld_gen_result *r)
{
    if (!r)
        return;
    sld_free(r->pixels);
    sld_free(r->image_float);
    sld_free(r->latents);
    sld_free(r->nsfw);
    sld_free(r->steps);
    sld_free(r->safety_map);
    sld_free(r->summary);
    memset(r, 0, sizeof *r);
}

/* A1111's sampler names (modules/sd_samplers_*.py, v1.10): diffusers' PNDM
 * with skip_prk_steps is A1111's "PLMS"; Karras sigmas are written in the
 * pre-1.9 combined form ("DPM++ 2M Karras"), which v1.10 still splits into
 * sampler and schedule type on paste, so every version reads it. */
static const char *a1111_sampler(sld_sampler s, int karras)
{
    switch (s) {
    case SLD_SAMPLER_PNDM: return "PLMS";
    case SLD_SAMPLER_DDIM: return "DDIM";
    case SLD_SAMPLER_EULER: return "Euler";
    case SLD_SAMPLER_EULER_A: return "Euler a";
    case SLD_SAMPLER_LMS: return "LMS";
    case SLD_SAMPLER_DPMPP_2M: return karras ? "DPM++ 2M Karras" : "DPM++ 2M";
    case SLD_SAMPLER_DEFAULT: break;
    }
    return "default";
}

/* The sampler a model's scheduler config names, for metadata. */
static sld_sampler resolve_sampler(const sld_model *m, sld_sampler s)
{
    if (s != SLD_SAMPLER_DEFAULT || !m || !m->sched_cfg.root)
        return s;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m->sched_cfg.root, "_class_name");
    if (cJSON_IsString(c)) {
        for (int k = SLD_SAMPLER_PNDM; k < SLD_SAMPLER_DEFAULT; k++)
            if (!strcmp(c->valuestring, sld_sampler_class((sld_sampler)k)))
                return (sld_sampler)k;
    }
    return s;
}

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} tbuf;

/* Appends n bytes. */
static void tb_put(tbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 256) + n;
        char *ns = sld_realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void tb_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(tbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    tb_put(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is malformed. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!k)
        return 0;
    unsigned long cp = k == 1 ? c : (c & (0x7Fu >> k));
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    static const unsigned long min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

/* A prompt as one line: every control character (line breaks, tabs, ...)
 * becomes a space and malformed UTF-8 becomes U+FFFD, so no prompt can add a
 * line that a reader would take for the settings line or a "Negative
 * prompt:" line. */
static void tb_prompt(tbuf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        int k = utf8_len(u);
        if (!k) {
            tb_put(b, "\xEF\xBF\xBD", 3);
            u++;
        } else if (k == 1 && (*u < 0x20 || *u == 0x7F)) {
            tb_put(b, " ", 1);
            u++;
        } else {
            tb_put(b, (const char *)u, (size_t)k);
            u += k;
        }
    }
}

/* A settings value as A1111's infotext_utils.quote writes it: as is, unless
 * it holds ',', ':' or a line break, then as a JSON string (non-ASCII kept,
 * json.dumps(ensure_ascii=False)). Other control characters and malformed
 * UTF-8 are also quoted, so the settings line stays one line. */
static void tb_value(tbuf *b, const char *v)
{
    int quote = 0;
    for (const unsigned char *u = (const unsigned char *)v; *u && !quote; u++)
        quote = *u == ',' || *u == ':' || *u < 0x20 || *u == 0x7F || *u == '"';
    for (const unsigned char *u = (const unsigned char *)v; *u && !quote;) {
        int k = utf8_len(u);
        quote = !k;
        u += k ? k : 1;
    }
    if (!quote) {
        tb_put(b, v, strlen(v));
        return;
    }
    tb_put(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)v;
    while (*u) {
        int k = utf8_len(u);
        if (!k) {
            tb_put(b, "\xEF\xBF\xBD", 3);
            u++;
            continue;
        }
        switch (*u) {
        case '"': tb_put(b, "\\\"", 2); break;
        case '\\': tb_put(b, "\\\\", 2); break;
        case '\n': tb_put(b, "\\n", 2); break;
        case '\r': tb_put(b, "\\r", 2); break;
        case '\t': tb_put(b, "\\t", 2); break;
        case '\b': tb_put(b, "\\b", 2); break;
        case '\f': tb_put(b, "\\f", 2); break;
        default:
            if (*u < 0x20)
                tb_printf(b, "\\u%04x", *u);
            else
                tb_put(b, (const char *)u, (size_t)k);
        }
        u += k;
    }
    tb_put(b, "\"", 1);
}

/* ", Key: value" (the first field without the comma). */
static void tb_field(tbuf *b, const char *key, const char *value)
{
    if (b->len && b->s[b->len - 1] != '\n')
        tb_put(b, ", ", 2);
    tb_put(b, key, strlen(key));
    tb_put(b, ": ", 2);
    tb_value(b, value);
}

static void tb_fieldf(tbuf *b, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tb_fieldf(tbuf *b, const char *key, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    tb_field(b, key, tmp);
}

/* The preset whose values s has exactly, or "custom"; "off" when safety
 * guidance does not act (s_S <= 1 or CFG <= 1). */
static const char *preset_name(float cfg, const sld_safety *s)
{
    if (!sld_guidance_sld_active(cfg, s))
        return "off";
    static const char *const names[] = {"weak", "medium", "strong", "max"};
    for (int k = SLD_SAFETY_WEAK; k <= SLD_SAFETY_MAX; k++) {
        sld_safety q = sld_safety_preset_get((sld_safety_preset)k);
        if (q.guidance_scale == s->guidance_scale && q.warmup_steps == s->warmup_steps &&
            q.threshold == s->threshold && q.momentum_scale == s->momentum_scale &&
            q.mom_beta == s->mom_beta)
            return names[k - SLD_SAFETY_WEAK];
    }
    return "custom";
}

void sld_gen_params_text_extra_default(sld_gen_params_text_extra *x)
{
    memset(x, 0, sizeof *x);
    x->i2p_row = -1;
    x->i2p_image = -1;
}

char *sld_gen_params_text_ex(const sld_gen_params *p, const sld_model *m, uint64_t seed,
                             const sld_gen_params_text_extra *x)
{
    sld_gen_params_text_extra none;
    if (!x) {
        sld_gen_params_text_extra_default(&none);
        x = &none;
    }
    tbuf b = {0};
    sld_sampler s = resolve_sampler(m, p->sampler);
    int w = p->width, h = p->height;
    if (m && !w)
        w = m->default_size;
    if (m && !h)
        h = m->default_size;
    tb_prompt(&b, p->prompt ? p->prompt : "");
    tb_put(&b, "\n", 1);
    if (p->negative_prompt && *p->negative_prompt) {
        tb_put(&b, "Negative prompt: ", 17);
        tb_prompt(&b, p->negative_prompt);
        tb_put(&b, "\n", 1);
    }
    /* A1111's own fields, in its order (processing.create_infotext). */
    tb_fieldf(&b, "Steps", "%d", p->steps);
    tb_field(&b, "Sampler", a1111_sampler(s, p->karras));
    tb_fieldf(&b, "CFG scale", "%g", (double)p->cfg);
    tb_fieldf(&b, "Seed", "%llu", (unsigned long long)seed);
    tb_fieldf(&b, "Size", "%dx%d", w, h);
    const char *hash = x->model_hash;
    if (!hash && m)
        hash = sld_model_hash(m);
    if (hash && *hash)
        tb_field(&b, "Model hash", hash);
    const char *name = x->model_name ? x->model_name : m ? m->name : NULL;
    if (name && *name)
        tb_field(&b, "Model", name);
    /* sld's own: what the numbers were computed in */
    if (m) {
        tb_field(&b, "Precision", sld_model_precision_name(m));
        tb_field(&b, "Conv", sld_model_conv_algo_name(m));
    }
    if (s == SLD_SAMPLER_DDIM && p->eta > 0)
        tb_fieldf(&b, "Eta DDIM", "%g", (double)p->eta);
    if (p->n_images > 1)
        tb_fieldf(&b, "Batch size", "%d", p->n_images);
    /* Safe Latent Diffusion: the preset and its five hyperparameters under
     * diffusers' argument names, and the concept. */
    const char *preset = preset_name(p->cfg, &p->sld);
    tb_field(&b, "SLD", preset);
    if (x->config && *x->config)
        tb_field(&b, "SLD config", x->config);
    if (strcmp(preset, "off") != 0) {
        tb_fieldf(&b, "SLD guidance scale", "%g", (double)p->sld.guidance_scale);
        tb_fieldf(&b, "SLD warmup steps", "%d", p->sld.warmup_steps);
        tb_fieldf(&b, "SLD threshold", "%g", (double)p->sld.threshold);
        tb_fieldf(&b, "SLD momentum scale", "%g", (double)p->sld.momentum_scale);
        tb_fieldf(&b, "SLD mom beta", "%g", (double)p->sld.mom_beta);
        tb_field(&b, "Safety concept",
                 p->safety_concept ? p->safety_concept : SLD_DEFAULT_SAFETY_CONCEPT);
    }
    if (x->i2p_row >= 0)
        tb_fieldf(&b, "I2P row", "%d", x->i2p_row);
    if (x->i2p_image >= 0)
        tb_fieldf(&b, "I2P image", "%d", x->i2p_image);
    char version[160];
    snprintf(version, sizeof version, "sld %s", sld_version());
    tb_field(&b, "Version", version);
    if (b.oom) {
        sld_free(b.s);
        return NULL;
    }
    return b.s;
}

char *sld_gen_params_text(const sld_gen_params *p, const sld_model *m, uint64_t seed)
{
    return sld_gen_params_text_ex(p, m, seed, NULL);
}

static sld_status check_params(const sld_model *m, const sld_gen_params *p, int *W, int *H,
                               sld_error *err)
{
    if (!p->prompt)
        return sld_err(err, SLD_ERR_INVALID_ARG, "no prompt given");
    if (p->steps < 1 || p->steps > 1000)
        return sld_err(err, SLD_ERR_INVALID_ARG, "steps must be between 1 and 1000, got %d",
                       p->steps);
    if (!isfinite(p->cfg) || p->cfg < 0 || p->cfg > 1000)
        return sld_err(err, SLD_ERR_INVALID_ARG, "guidance scale must be in [0, 1000], got %g",
                       (double)p->cfg);
    if (p->n_images < 1 || p->n_images > MAX_IMAGES)
        return sld_err(err, SLD_ERR_INVALID_ARG, "images must be between 1 and %d, got %d",
                       MAX_IMAGES, p->n_images);
    const sld_safety *s = &p->sld;
    if (!isfinite(s->guidance_scale) || !isfinite(s->threshold) ||
        !isfinite(s->momentum_scale) || !isfinite(s->mom_beta) || s->guidance_scale < 0 ||
        s->warmup_steps < 0 || s->mom_beta < 0 || s->mom_beta > 1)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "bad SLD parameters (need s_S >= 0, warm-up >= 0, 0 <= beta_m <= 1)");
    if (!isfinite(p->eta) || p->eta < 0)
        return sld_err(err, SLD_ERR_INVALID_ARG, "eta must be >= 0");
    int w = p->width ? p->width : m->default_size, h = p->height ? p->height : m->default_size;
    if (w <= 0 || h <= 0 || w % 8 || h % 8)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "width and height must be positive multiples of 8, got %dx%d", w, h);
    if (w > 4096 || h > 4096)
        return sld_err(err, SLD_ERR_INVALID_ARG, "size %dx%d is too large (at most 4096x4096)",
                       w, h);
    *W = w;
    *H = h;
    return SLD_OK;
}

/* NaN/Inf weights or configs used to end as an all-black PNG with exit 0:
 * the latents are checked after every step (a scan of a few thousand
 * floats) and the decoded image once. where < 0 is step -where, else image
 * number where. */
static sld_status check_finite(const float *x, size_t n, const char *what, int where,
                               sld_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            if (where < 0)
                return sld_err(err, SLD_ERR_FORMAT,
                               "denoising step %d: %s hold %s (element %zu); the UNet or text "
                               "encoder weights or the scheduler config give non-finite "
                               "values",
                               -where, what, isnan(x[i]) ? "NaN" : "Inf", i);
            return sld_err(err, SLD_ERR_FORMAT,
                           "image %d: %s holds %s (element %zu); the VAE weights give "
                           "non-finite values",
                           where, what, isnan(x[i]) ? "NaN" : "Inf", i);
        }
    return SLD_OK;
}

/* Encodes text into dst [77, D]. */
static sld_status encode(sld_ctx *c, const char *text, float *dst, sld_error *err)
{
    return sld_encode(c, text, dst, err);
}

sld_status sld_generate(sld_ctx *c, const sld_gen_params *p, sld_gen_result *out, sld_error *err)
{
    memset(out, 0, sizeof *out);
    if (!c || !c->m || !p)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_generate: NULL argument");
    sld_model *m = c->m;
    double t0 = sld_time_now();
    int W = 0, H = 0;
    sld_status st = check_params(m, p, &W, &H, err);
    if (st)
        return st;
    sld_threads_set(c->n_threads);

    const int N = p->n_images, h = H / 8, w = W / 8;
    const int lat_c = sld_unet_cfg(m->unet)->in_channels;
    const size_t lat1 = (size_t)lat_c * h * w, lat = lat1 * (size_t)N;
    const int D = sld_model_text_dim(m);
    const size_t emb = (size_t)SLD_N_CTX * D;
    const int cfg_on = sld_guidance_cfg_active(p->cfg);
    const int sld_on = sld_guidance_sld_active(p->cfg, &p->sld);
    const int chunks = sld_on ? 3 : cfg_on ? 2 : 1; /* [uncond | prompt | safety] */
    const int B = chunks * N;

    sld_sched *sched = NULL;
    sld_rng *own_rng = NULL;
    sld_guidance_state gst = {0};
    float *ctx = NULL, *x = NULL, *x_in = NULL, *unet_in = NULL, *unet_out = NULL,
          *guided = NULL, *tsteps = NULL, *img = NULL;
    float *step_map = NULL; /* [N, h, w] this iteration's applied ||gamma|| (telemetry) */

    sld_sched_opts so;
    sld_sched_opts_default(&so);
    so.karras = p->karras;
    so.eta = p->eta;
    so.prediction = m->prediction;
    if ((st = sld_sched_new(&sched, &m->sched_cfg, p->sampler, &so, err)) ||
        (st = sld_sched_set_timesteps(sched, p->steps, err)) ||
        (st = sld_sched_reserve(sched, lat, err)))
        goto done;

    ctx = sld_malloc_aligned(emb * (size_t)B * sizeof(float));
    x = sld_malloc_aligned(lat * sizeof(float));
    x_in = sld_malloc_aligned(lat * sizeof(float));
    unet_in = sld_malloc_aligned(lat * (size_t)chunks * sizeof(float));
    unet_out = sld_malloc_aligned(lat * (size_t)chunks * sizeof(float));
    guided = sld_malloc_aligned(lat * sizeof(float));
    tsteps = sld_malloc((size_t)B * sizeof(float));
    out->latents = sld_malloc(lat * sizeof(float));
    out->image_float = sld_malloc((size_t)N * H * W * 3 * sizeof(float));
    out->pixels = sld_malloc((size_t)N * H * W * 3);
    img = sld_malloc_aligned((size_t)3 * H * W * sizeof(float));
    /* telemetry: small (iterations x N records, two N x h x w maps) */
    const int n_iters = sld_sched_n_iters(sched);
    out->steps = sld_calloc((size_t)n_iters * N, sizeof *out->steps);
    out->safety_map = sld_calloc((size_t)N * h * w, sizeof(float));
    out->summary = sld_calloc((size_t)N, sizeof *out->summary);
    step_map = sld_malloc((size_t)N * h * w * sizeof(float));
    if (!ctx || !x || !x_in || !unet_in || !unet_out || !guided || !tsteps || !out->latents ||
        !out->image_float || !out->pixels || !img || !out->steps || !out->safety_map ||
        !out->summary || !step_map) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory for a %dx%d batch of %d", W, H, N);
        goto done;
    }
    if (sld_on && (st = sld_guidance_state_init(&gst, lat, err)))
        goto done;

    /* 1. conditionings: chunk order [uncond, prompt, safety], N copies each */
    {
        int k = 0;
        const char *texts[3];
        if (cfg_on)
            texts[k++] = p->negative_prompt ? p->negative_prompt : "";
        texts[k++] = p->prompt;
        if (sld_on)
            texts[k++] = p->safety_concept ? p->safety_concept : SLD_DEFAULT_SAFETY_CONCEPT;
        for (int ch = 0; ch < chunks; ch++) {
            float *dst = ctx + (size_t)ch * N * emb;
            if ((st = encode(c, texts[ch], dst, err)))
                goto done;
            for (int i = 1; i < N; i++)
                memcpy(dst + (size_t)i * emb, dst, emb * sizeof(float));
        }
    }

    /* 2. initial latents from the torch-compatible generator */
    sld_rng *rng = p->generator;
    if (!rng) {
        if ((st = sld_rng_new(&own_rng, p->seed, p->rng_variant, err)))
            goto done;
        rng = own_rng;
    }
    sld_rng_randn(rng, x, lat);
    {
        float s0 = sld_sched_init_noise_sigma(sched);
        for (size_t i = 0; i < lat; i++)
            x[i] *= s0;
    }

    /* 3. the denoising loop */
    const int iters = sld_sched_n_iters(sched);
    for (int it = 0; it < iters; it++) {
        sld_sched_scale_input(sched, it, x, x_in, lat);
        for (int ch = 0; ch < chunks; ch++)
            memcpy(unet_in + (size_t)ch * lat, x_in, lat * sizeof(float));
        float t = (float)sld_sched_timestep(sched, it);
        for (int b = 0; b < B; b++)
            tsteps[b] = t;
        for (int b0 = 0; b0 < B; b0 += UNET_MAX_BATCH) {
            int nb = B - b0 < UNET_MAX_BATCH ? B - b0 : UNET_MAX_BATCH;
            st = sld_unet_forward(m->unet, unet_in + (size_t)b0 * lat1, nb, h, w, tsteps + b0,
                                  ctx + (size_t)b0 * emb, SLD_N_CTX, unet_out + (size_t)b0 * lat1,
                                  err);
            if (st)
                goto done;
        }
        const float *eu = cfg_on ? unet_out : NULL;
        const float *ep = unet_out + (size_t)(cfg_on ? 1 : 0) * lat;
        const float *es = sld_on ? unet_out + 2 * lat : NULL;
        sld_step_stats *ss = out->steps + (size_t)it * N;
        if ((st = sld_guidance_apply_traced(eu, ep, es, lat, N, lat_c, it, p->cfg, &p->sld,
                                            sld_on ? &gst : NULL, guided, ss, step_map, err)))
            goto done;
        for (int b = 0; b < N; b++) {
            ss[b].n_steps = iters;
            ss[b].timestep = sld_sched_timestep(sched, it);
        }
        for (size_t k = 0; k < (size_t)N * h * w; k++)
            out->safety_map[k] += step_map[k];
        if (p->telemetry && p->telemetry(ss, N, step_map, w, h, p->telemetry_user)) {
            st = sld_err(err, SLD_ERR_CANCELLED, "generation cancelled at step %d of %d", it + 1,
                         iters);
            goto done;
        }
        if ((st = sld_sched_step(sched, it, guided, x, lat, rng, NULL, err)) ||
            (st = check_finite(x, lat, "the latents", -(it + 1), err)))
            goto done;
        if (p->progress && p->progress(it + 1, iters, sld_time_now() - t0, p->progress_user)) {
            st = sld_err(err, SLD_ERR_CANCELLED, "generation cancelled at step %d of %d", it + 1,
                         iters);
            goto done;
        }
    }
    memcpy(out->latents, x, lat * sizeof(float));
    out->n_steps = iters;
    for (int b = 0; b < N; b++)
        sld_safety_summary_get(out->steps, iters, N, b, &out->summary[b]);
    /* peak memory: the UNet's and the VAE's activations are never resident together */
    sld_unet_trim(m->unet);

    /* 4. decode one image at a time (bounded memory; images are independent) */
    {
        const sld_vae_config *vc = sld_vae_cfg(m->vae);
        float sf = vc->scaling_factor;
        float inv = 1.0f / sf;
        for (size_t i = 0; i < lat; i++)
            x[i] = sld_on ? inv * x[i] : x[i] / sf;
        for (int n = 0; n < N; n++) {
            if ((st = sld_vae_decode(m->vae, x + (size_t)n * lat1, 1, h, w, img, err)) ||
                (st = check_finite(img, (size_t)3 * H * W, "the VAE decoder's image", n, err)))
                goto done;
            float *dst = out->image_float + (size_t)n * H * W * 3;
            uint8_t *px = out->pixels + (size_t)n * H * W * 3;
            for (int ch = 0; ch < 3; ch++)
                for (size_t k = 0; k < (size_t)H * W; k++) {
                    float v = sld_unit_clamp(img[(size_t)ch * H * W + k] / 2.0f + 0.5f);
                    dst[k * 3 + ch] = v;
                    /* numpy (image * 255).round(): float32 product, half to even */
                    px[k * 3 + ch] = (uint8_t)nearbyintf(v * 255.0f);
                }
        }
        sld_vae_trim(m->vae);
    }

    /* 5. safety checker (diffusers runs it when the folder has one) */
    if (p->safety_checker && m->safety) {
        out->nsfw = sld_calloc((size_t)N, sizeof(int));
        if (!out->nsfw) {
            st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = sld_safety_checker_run(m->safety, out->image_float, N, H, W, out->nsfw, err)))
            goto done;
        for (int n = 0; n < N; n++)
            if (out->nsfw[n]) {
                sld_log(SLD_LOG_WARN,
                        "image %d was flagged by the safety checker%s", n,
                        p->keep_flagged ? " (kept: --keep-flagged)" : " and blacked out");
                if (!p->keep_flagged) {
                    memset(out->image_float + (size_t)n * H * W * 3, 0,
                           (size_t)H * W * 3 * sizeof(float));
                    memset(out->pixels + (size_t)n * H * W * 3, 0, (size_t)H * W * 3);
                }
            }
    }
    out->n = N;
    out->width = W;
    out->height = H;
    out->seconds = sld_time_now() - t0;

done:
    if (st)
        sld_gen_result_free(out);
    sld_guidance_state_free(&gst);
    sld_rng_free(own_rng);
    sld_sched_free(sched);
    sld_free(ctx);
    sld_free(x);
    sld_free(x_in);
    sld_free(unet_in);
    sld_free(unet_out);
    sld_free(guided);
    sld_free(tsteps);
    sld_free(img);
    sld_free(step_map);
    return st;
}
