/*
 * request.c — an A1111 txt2img JSON body to sld_gen_params, under the
 * operator's policy (limits, minimum safety, fixed concept, strict mode).
 *
 * Field names are A1111's (prompt, negative_prompt, steps, cfg_scale, seed,
 * width, height, sampler_name, batch_size, n_iter ...) plus sld's safety,
 * safety_concept and the five sld_* hyperparameters. JSON null means "not
 * given" (A1111 clients send nulls). Fields we do not know are listed back
 * in "info" and otherwise ignored; a known field with a wrong type or value
 * is a 400 naming it. Nothing here touches a file.
 */
#include "serve/serve.h"

#include "core/core.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const PRESET_NAMES[] = {"off", "weak", "medium", "strong", "max"};

const char *sld_serve_preset_name(sld_safety_preset p)
{
    return (unsigned)p < 5 ? PRESET_NAMES[p] : "?";
}

static const struct {
    const char *name; /* A1111 name first, then sld's names */
    sld_sampler s;
    int karras;
} SAMPLERS[] = {
    {"PLMS", SLD_SAMPLER_PNDM, 0},        {"DDIM", SLD_SAMPLER_DDIM, 0},
    {"Euler", SLD_SAMPLER_EULER, 0},      {"Euler a", SLD_SAMPLER_EULER_A, 0},
    {"LMS", SLD_SAMPLER_LMS, 0},          {"DPM++ 2M", SLD_SAMPLER_DPMPP_2M, 0},
    {"DPM++ 2M Karras", SLD_SAMPLER_DPMPP_2M, 1},
    {"pndm", SLD_SAMPLER_PNDM, 0},        {"plms", SLD_SAMPLER_PNDM, 0},
    {"euler_a", SLD_SAMPLER_EULER_A, 0},  {"k_euler_a", SLD_SAMPLER_EULER_A, 0},
    {"k_euler", SLD_SAMPLER_EULER, 0},    {"k_lms", SLD_SAMPLER_LMS, 0},
    {"dpmpp_2m", SLD_SAMPLER_DPMPP_2M, 0},
    {"dpmpp_2m_karras", SLD_SAMPLER_DPMPP_2M, 1},
};

int sld_serve_sampler_lookup(const char *name, sld_sampler *s, int *karras)
{
    for (size_t i = 0; i < sizeof SAMPLERS / sizeof *SAMPLERS; i++)
        if (!strcasecmp(name, SAMPLERS[i].name)) {
            *s = SAMPLERS[i].s;
            *karras = SAMPLERS[i].karras;
            return 0;
        }
    return -1;
}

const char *sld_serve_sampler_name(sld_sampler s, int karras)
{
    if (s == SLD_SAMPLER_DPMPP_2M && karras)
        return "DPM++ 2M Karras";
    for (size_t i = 0; i < sizeof SAMPLERS / sizeof *SAMPLERS; i++)
        if (SAMPLERS[i].s == s && !SAMPLERS[i].karras)
            return SAMPLERS[i].name;
    return "Default";
}

char *sld_serve_base64(const uint8_t *data, size_t n)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t olen = (n + 2) / 3 * 4;
    char *o = malloc(olen + 1), *w = o;
    if (!o)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *w++ = T[v >> 18];
        *w++ = T[(v >> 12) & 63];
        *w++ = T[(v >> 6) & 63];
        *w++ = T[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < n ? (uint32_t)data[i + 1] << 8 : 0);
        *w++ = T[v >> 18];
        *w++ = T[(v >> 12) & 63];
        *w++ = i + 1 < n ? T[(v >> 6) & 63] : '=';
        *w++ = '=';
    }
    *w = 0;
    return o;
}

int sld_serve_key_equal(const char *given, size_t given_len, const char *expected)
{
    size_t n = strlen(expected);
    /* Walk the expected key's length whatever was given; a shorter or longer
     * key differs in the length term, never in the time taken. */
    volatile unsigned char diff = (unsigned char)(given_len != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

/* ---- parsing helpers --------------------------------------------------- */

typedef struct {
    char *msg;
    size_t msg_len;
    char *limit;
    size_t limit_len;
} fail_out;

static int fail(const fail_out *f, int code, const char *limit, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(const fail_out *f, int code, const char *limit, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (f->msg && f->msg_len)
        vsnprintf(f->msg, f->msg_len, fmt, ap);
    va_end(ap);
    if (f->limit && f->limit_len)
        snprintf(f->limit, f->limit_len, "%s", limit ? limit : "");
    return code;
}

/* The field, or NULL when absent or JSON null. */
static const cJSON *field(const cJSON *root, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, name);
    return j && !cJSON_IsNull(j) ? j : NULL;
}

static int get_int(const fail_out *f, const cJSON *root, const char *name, long long lo,
                   long long hi, const char *limit, long long *out)
{
    const cJSON *j = field(root, name);
    if (!j)
        return 0;
    if (!cJSON_IsNumber(j))
        return fail(f, 400, "", "'%s' must be an integer", name);
    double d = j->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return fail(f, 400, "", "'%s' must be an integer, got %g", name, d);
    if (d > (double)hi && *limit)
        return fail(f, 400, limit, "'%s' is %.17g, above the operator limit %s = %lld", name, d,
                    limit, hi);
    if (d < (double)lo || d > (double)hi)
        return fail(f, 400, "", "'%s' must be between %lld and %lld, got %.17g", name, lo, hi, d);
    *out = (long long)d;
    return 0;
}

static int get_float(const fail_out *f, const cJSON *root, const char *name, double lo, double hi,
                     float *out, int *given)
{
    const cJSON *j = field(root, name);
    if (!j)
        return 0;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return fail(f, 400, "", "'%s' must be a number", name);
    if (j->valuedouble < lo || j->valuedouble > hi)
        return fail(f, 400, "", "'%s' must be in [%g, %g], got %g", name, lo, hi, j->valuedouble);
    *out = (float)j->valuedouble;
    if (given)
        *given = 1;
    return 0;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2
                          : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xC2))
            return 0;
        for (int k = 1; k <= n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        p += n + 1;
    }
    return 1;
}

/* A string field copied into *out (NULL when absent). */
static int get_str(const fail_out *f, const cJSON *root, const char *name, int max_len,
                   char **out)
{
    const cJSON *j = field(root, name);
    if (!j)
        return 0;
    if (!cJSON_IsString(j) || !j->valuestring)
        return fail(f, 400, "", "'%s' must be a string", name);
    size_t n = strlen(j->valuestring);
    if (n > (size_t)max_len)
        return fail(f, 400, "max_prompt", "'%s' is %zu bytes, above the operator limit max_prompt = %d",
                    name, n, max_len);
    if (!utf8_valid(j->valuestring))
        return fail(f, 400, "", "'%s' is not valid UTF-8", name);
    *out = sld_strdup(j->valuestring);
    if (!*out)
        return fail(f, 500, "", "out of memory");
    return 0;
}

static int add_note(sld_serve_request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_note(sld_serve_request *r, const char *fmt, ...)
{
    if (r->n_notes >= SLD_SERVE_MAX_NOTES)
        return 0;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = sld_strdup(buf);
    if (!s)
        return -1;
    r->notes[r->n_notes++] = s;
    return 0;
}

static const char *const KNOWN[] = {
    "prompt", "negative_prompt", "steps", "cfg_scale", "seed", "width", "height",
    "sampler_name", "sampler_index", "scheduler", "batch_size", "n_iter", "eta",
    "safety", "safety_concept", "sld_guidance_scale", "sld_warmup_steps", "sld_threshold",
    "sld_momentum_scale", "sld_mom_beta", "send_images", "save_images", "sld_map",
};

void sld_serve_request_free(sld_serve_request *r)
{
    if (!r)
        return;
    sld_free(r->prompt);
    sld_free(r->negative_prompt);
    sld_free(r->safety_concept);
    for (int i = 0; i < r->n_notes; i++)
        sld_free(r->notes[i]);
    for (int i = 0; i < r->n_ignored; i++)
        sld_free(r->ignored[i]);
    memset(r, 0, sizeof *r);
}

static int parse(const cJSON *root, const sld_server_opts *o, int default_size,
                 uint64_t random_seed, sld_serve_request *r, const fail_out *f)
{
    int rc;
    sld_gen_params *p = &r->p;
    if (!cJSON_IsObject(root))
        return fail(f, 400, "", "the body must be a JSON object");

    /* Unknown fields: listed, not fatal (A1111 has many we do not use). */
    for (const cJSON *c = root->child; c; c = c->next) {
        int known = 0;
        for (size_t k = 0; k < sizeof KNOWN / sizeof *KNOWN && !known; k++)
            known = c->string && !strcmp(c->string, KNOWN[k]);
        if (!known && c->string && r->n_ignored < SLD_SERVE_MAX_IGNORED) {
            char name[64];
            snprintf(name, sizeof name, "%s", c->string);
            if (!utf8_valid(name))
                snprintf(name, sizeof name, "(non-UTF-8 name)");
            if (!(r->ignored[r->n_ignored] = sld_strdup(name)))
                return fail(f, 500, "", "out of memory");
            r->n_ignored++;
        }
    }

    if ((rc = get_str(f, root, "prompt", o->max_prompt, &r->prompt)) ||
        (rc = get_str(f, root, "negative_prompt", o->max_prompt, &r->negative_prompt)) ||
        (rc = get_str(f, root, "safety_concept", o->max_prompt, &r->safety_concept)))
        return rc;
    if (!r->prompt && !(r->prompt = sld_strdup("")))
        return fail(f, 500, "", "out of memory");
    p->prompt = r->prompt;
    p->negative_prompt = r->negative_prompt;

    long long v;
    v = p->steps < o->max_steps ? p->steps : o->max_steps; /* the default obeys the limit */
    if ((rc = get_int(f, root, "steps", 1, o->max_steps, "max_steps", &v)))
        return rc;
    p->steps = (int)v;
    if ((rc = get_float(f, root, "cfg_scale", 0, 1000, &p->cfg, NULL)) ||
        (rc = get_float(f, root, "eta", 0, 100, &p->eta, NULL)))
        return rc;

    /* seed: -1 (or absent) = random; A1111 seeds are integers */
    long long seed = -1;
    if ((rc = get_int(f, root, "seed", -1, 9007199254740991LL, "", &seed)))
        return rc;
    r->seed_random = seed < 0;
    p->seed = seed < 0 ? random_seed : (uint64_t)seed;

    long long w = 0, h = 0;
    if ((rc = get_int(f, root, "width", 0, 16384, "", &w)) ||
        (rc = get_int(f, root, "height", 0, 16384, "", &h)))
        return rc;
    if (w % 8 || h % 8)
        return fail(f, 400, "", "'width' and 'height' must be multiples of 8, got %lldx%lld", w, h);
    long long ew = w ? w : default_size, eh = h ? h : default_size;
    if (ew * eh > o->max_pixels)
        return fail(f, 400, "max_pixels",
                    "%lldx%lld is %lld pixels, above the operator limit max_pixels = %d", ew, eh,
                    ew * eh, o->max_pixels);
    p->width = (int)w;
    p->height = (int)h;

    long long batch = 1, iters = 1;
    if ((rc = get_int(f, root, "batch_size", 1, o->max_images, "max_images", &batch)) ||
        (rc = get_int(f, root, "n_iter", 1, o->max_images, "max_images", &iters)))
        return rc;
    if (batch * iters > o->max_images)
        return fail(f, 400, "max_images",
                    "batch_size x n_iter = %lld images, above the operator limit max_images = %d",
                    batch * iters, o->max_images);
    p->n_images = (int)batch;
    r->n_iter = (int)iters;

    const cJSON *js = field(root, "sampler_name");
    if (!js)
        js = field(root, "sampler_index");
    if (js) {
        if (!cJSON_IsString(js))
            return fail(f, 400, "", "'sampler_name' must be a string");
        if (sld_serve_sampler_lookup(js->valuestring, &p->sampler, &p->karras))
            return fail(f, 400, "",
                        "unknown sampler '%.64s' (PLMS, DDIM, Euler, Euler a, LMS, DPM++ 2M, "
                        "DPM++ 2M Karras; GET /sdapi/v1/samplers)",
                        js->valuestring);
    }
    const cJSON *jsch = field(root, "scheduler");
    if (jsch) {
        if (!cJSON_IsString(jsch))
            return fail(f, 400, "", "'scheduler' must be a string");
        if (!strcasecmp(jsch->valuestring, "karras"))
            p->karras = 1;
        else if (strcasecmp(jsch->valuestring, "automatic"))
            return fail(f, 400, "", "unknown scheduler '%.64s' (Automatic, Karras)",
                        jsch->valuestring);
    }
    if (p->karras && p->sampler != SLD_SAMPLER_DPMPP_2M)
        return fail(f, 400, "", "Karras sigmas are supported with DPM++ 2M only");

    const cJSON *jb = field(root, "send_images");
    r->send_images = 1;
    if (jb) {
        if (!cJSON_IsBool(jb))
            return fail(f, 400, "", "'send_images' must be true or false");
        r->send_images = cJSON_IsTrue(jb);
    }
    jb = field(root, "sld_map");
    if (jb && !cJSON_IsBool(jb))
        return fail(f, 400, "", "'sld_map' must be true or false");
    r->sld_map = jb && cJSON_IsTrue(jb);
    jb = field(root, "save_images");
    if (jb && !cJSON_IsBool(jb))
        return fail(f, 400, "", "'save_images' must be true or false");
    if (jb && cJSON_IsTrue(jb) && add_note(r, "save_images ignored: the server never writes files"))
        return fail(f, 500, "", "out of memory");

    /* ---- safety and the operator's policy ---- */
    sld_safety_preset asked = o->default_safety;
    const cJSON *jp = field(root, "safety");
    if (jp) {
        int found = 0;
        if (cJSON_IsString(jp))
            for (int k = 0; k < 5 && !found; k++)
                if (!strcasecmp(jp->valuestring, PRESET_NAMES[k])) {
                    asked = (sld_safety_preset)k;
                    found = 1;
                }
        if (!found)
            return fail(f, 400, "", "'safety' must be one of off, weak, medium, strong, max");
    }
    r->preset_asked = asked;
    r->preset = asked;
    if (asked < o->min_safety) {
        if (o->strict)
            return fail(f, 400, "min_safety",
                        "safety '%s' is below the operator's minimum '%s' (min_safety)",
                        PRESET_NAMES[asked], PRESET_NAMES[o->min_safety]);
        r->preset = o->min_safety;
        if (add_note(r, "safety raised from %s to %s (operator minimum)", PRESET_NAMES[asked],
                     PRESET_NAMES[o->min_safety]))
            return fail(f, 500, "", "out of memory");
    }
    p->sld = sld_safety_preset_get(r->preset);

    sld_safety ov = p->sld;
    int given = 0;
    long long wu = ov.warmup_steps;
    if ((rc = get_float(f, root, "sld_guidance_scale", 0, 1e9, &ov.guidance_scale, &given)) ||
        (rc = get_float(f, root, "sld_threshold", -1e9, 1e9, &ov.threshold, &given)) ||
        (rc = get_float(f, root, "sld_momentum_scale", -1e9, 1e9, &ov.momentum_scale, &given)) ||
        (rc = get_float(f, root, "sld_mom_beta", 0, 1, &ov.mom_beta, &given)) ||
        (rc = get_int(f, root, "sld_warmup_steps", 0, 100000, "", &wu)))
        return rc;
    if (field(root, "sld_warmup_steps"))
        given = 1;
    ov.warmup_steps = (int)wu;
    if (given) {
        if (o->min_safety > SLD_SAFETY_OFF) {
            /* Any override could weaken what the operator requires. */
            if (o->strict)
                return fail(f, 400, "min_safety",
                            "SLD hyperparameters cannot be set while the operator requires "
                            "safety '%s' (min_safety)",
                            PRESET_NAMES[o->min_safety]);
            if (add_note(r, "sld_* hyperparameters ignored (operator minimum safety %s)",
                         PRESET_NAMES[o->min_safety]))
                return fail(f, 500, "", "out of memory");
        } else {
            p->sld = ov;
            r->sld_custom = 1;
        }
    }
    /* SLD acts only with classifier-free guidance: cfg <= 1 would turn it off. */
    if (o->min_safety > SLD_SAFETY_OFF && p->cfg <= 1.0f)
        return fail(f, 400, "min_safety",
                    "cfg_scale must be above 1 while the operator requires safety '%s' (safe "
                    "latent diffusion needs classifier-free guidance), got %g",
                    PRESET_NAMES[o->min_safety], (double)p->cfg);

    if (o->safety_concept) {
        if (r->safety_concept && strcmp(r->safety_concept, o->safety_concept)) {
            if (o->strict)
                return fail(f, 400, "safety_concept",
                            "'safety_concept' is fixed by the operator and cannot be changed");
            if (add_note(r, "safety_concept ignored (fixed by the operator)"))
                return fail(f, 500, "", "out of memory");
        }
        sld_free(r->safety_concept);
        if (!(r->safety_concept = sld_strdup(o->safety_concept)))
            return fail(f, 500, "", "out of memory");
    }
    p->safety_concept = r->safety_concept;
    p->safety_checker = o->safety_checker;
    return 0;
}

int sld_serve_parse_txt2img(const char *body, size_t len, const sld_server_opts *o,
                            int default_size, uint64_t random_seed, sld_serve_request *out,
                            char *msg, size_t msg_len, char *limit, size_t limit_len)
{
    fail_out f = {msg, msg_len, limit, limit_len};
    memset(out, 0, sizeof *out);
    sld_gen_params_default(&out->p);
    out->n_iter = 1;
    if (msg && msg_len)
        msg[0] = 0;
    if (limit && limit_len)
        limit[0] = 0;
    if ((size_t)o->max_body < len)
        return fail(&f, 413, "max_body", "the body is %zu bytes, above the operator limit max_body = %d",
                    len, o->max_body);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    /* (cJSON's error pointer is process-global: not used across threads) */
    if (!root)
        return fail(&f, 400, "", "the body is not valid JSON");
    while (end && end < body + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (!end || end != body + len) {
        cJSON_Delete(root);
        return fail(&f, 400, "", "the body has bytes after the JSON value");
    }
    int rc = parse(root, o, default_size, random_seed, out, &f);
    cJSON_Delete(root);
    if (rc)
        sld_serve_request_free(out);
    return rc;
}
