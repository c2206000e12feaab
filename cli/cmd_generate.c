/* cmd_generate.c — `sld generate`: text to image with Safe Latent Diffusion.
 * Parses the flags of DESIGN.md, draws a progress bar on a terminal, writes
 * PNGs with an A1111-style "parameters" chunk and optional latents. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *GEN_USAGE =
    "usage: sld generate --model PATH --prompt TEXT -o OUT.png [options]\n"
    "  --model PATH             diffusers folder or single-file .safetensors checkpoint\n"
    "  --config DIR             diffusers folder to take configs from (single files)\n"
    "  --prompt TEXT            what to draw\n"
    "  --negative-prompt TEXT   what to steer away from (replaces the unconditional)\n"
    "  --steps N                denoising steps (50)\n"
    "  --cfg F                  classifier-free guidance scale (7.5)\n"
    "  --sampler NAME           pndm|ddim|euler|euler_a|lms|dpmpp_2m (model default)\n"
    "  --karras                 Karras sigmas (dpmpp_2m)\n"
    "  --eta F                  DDIM eta (0)\n"
    "  --seed N                 torch-compatible seed (0)\n"
    "  --rng avx2|default       torch CPU randn kernel to match (avx2 = x86 torch)\n"
    "  --width W --height H     image size, multiples of 8 (model default)\n"
    "  --images N               images of the prompt in one batch (1)\n"
    "  --safety off|weak|medium|strong|max   SLD preset (medium)\n"
    "  --safety-concept TEXT    what SLD steers away from (the paper's default)\n"
    "  --sld-guidance-scale F   s_S     --sld-warmup-steps N   delta\n"
    "  --sld-threshold F        lambda  --sld-momentum-scale F s_m\n"
    "  --sld-mom-beta F         beta_m\n"
    "  --prediction epsilon|v   override the scheduler's prediction type\n"
    "  --no-safety-checker      skip the model's safety checker\n"
    "  --keep-flagged           keep images the safety checker flags (default: black)\n"
    "  --threads N              CPU threads (all cores)\n"
    "  --precision fp32|bf16|auto  compute precision of convolutions and linears\n"
    "                           (auto: bf16 where the CPU has AMX, else fp32)\n"
    "  --conv-algo auto|direct  fp32 3x3 convolutions: Winograd where it pays (auto,\n"
    "                           rounding-level differences) or direct only (bit-for-bit\n"
    "                           reference runs)\n"
    "  --save-latents FILE      write final latents [N,4,H/8,W/8] as safetensors\n"
    "  -o, --output OUT.png     output; with --images N: OUT-0.png ... OUT-(N-1).png;\n"
    "                           - for standard output (one image)\n"
    "  --trace FILE.jsonl       SLD telemetry: one JSON record per step and image\n"
    "  --sld-map MAP.png        heatmap of where SLD acted (MAP-K.png with --images N)\n"
    "  --sld-map-overlay        draw the map over the image\n"
    "  --sld-map-steps          also one frame per step: MAP-step-NNN.png (MAP-K-step-NNN.png)\n"
    "  --sld-map-max F          value drawn at the top of the colormap (default: each map's max)\n"
    "  --quiet                  no progress bar\n";

typedef struct {
    int quiet;
    int tty;
    int sld, applied; /* from the latest telemetry call */
    double share;     /* mean mask share over the batch, latest iteration */
    int n_images;
} progress_state;

/* What the telemetry callback feeds: the progress line, --trace, and the
 * per-step frames of --sld-map-steps (kept until the images exist). */
typedef struct {
    progress_state *ps;
    FILE *trace;
    int trace_failed;
    int keep_frames;
    float *frames; /* [n_steps, n_images, map_h, map_w] */
    int n_frames;
    size_t frame_len; /* n_images * map_h * map_w */
    int oom;
} telemetry_state;

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.9g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

static int on_telemetry(const sld_step_stats *s, int n_images, const float *map, int map_w,
                        int map_h, void *user)
{
    telemetry_state *ts = user;
    double share = 0;
    for (int b = 0; b < n_images; b++)
        share += s[b].mask_share;
    ts->ps->share = share / n_images;
    ts->ps->sld = s[0].sld;
    ts->ps->applied = s[0].applied;
    if (ts->trace && !ts->trace_failed) {
        for (int b = 0; b < n_images; b++) {
            const sld_step_stats *r = &s[b];
            fprintf(ts->trace, "{\"step\":%d,\"n_steps\":%d,\"image\":%d", r->step, r->n_steps,
                    r->image);
            json_num(ts->trace, "timestep", r->timestep);
            fprintf(ts->trace, ",\"sld\":%s,\"applied\":%s", r->sld ? "true" : "false",
                    r->applied ? "true" : "false");
            json_num(ts->trace, "mask_share", r->mask_share);
            json_num(ts->trace, "scale_mean", r->scale_mean);
            json_num(ts->trace, "scale_max", r->scale_max);
            json_num(ts->trace, "cfg_norm", r->cfg_norm);
            json_num(ts->trace, "safety_norm", r->safety_norm);
            json_num(ts->trace, "momentum_norm", r->momentum_norm);
            if (r->sld)
                json_num(ts->trace, "cos_prompt_concept", r->cos_prompt_concept);
            else
                fputs(",\"cos_prompt_concept\":null", ts->trace);
            fputs("}\n", ts->trace);
        }
        if (fflush(ts->trace))
            ts->trace_failed = 1;
    }
    if (ts->keep_frames && !ts->oom) {
        size_t len = (size_t)n_images * map_w * map_h;
        if (!ts->frames) {
            ts->frames = malloc((size_t)s[0].n_steps * len * sizeof(float));
            ts->frame_len = len;
            if (!ts->frames) {
                ts->oom = 1;
                return 1;
            }
        }
        if (ts->n_frames < s[0].n_steps && len == ts->frame_len)
            memcpy(ts->frames + (size_t)ts->n_frames++ * len, map, len * sizeof(float));
    }
    return 0;
}

static int on_progress(int step, int n_steps, double secs, void *user)
{
    progress_state *ps = user;
    if (ps->quiet || !ps->tty)
        return 0;
    double per = secs / step, eta = per * (n_steps - step);
    int width = 30, filled = (int)((double)width * step / n_steps);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] step %d/%d  %.2f s/step  ETA %.0f s ", bar, step, n_steps, per, eta);
    if (ps->sld && ps->applied)
        fprintf(stderr, " SLD %2.0f %% of latents ", 100.0 * ps->share);
    else if (ps->sld)
        fprintf(stderr, " SLD warm-up ");
    if (step == n_steps) /* the VAE decode (and safety checker) come next */
        fprintf(stderr, "\n  decoding the image%s ...", ps->n_images > 1 ? "s" : "");
    fflush(stderr);
    return 0;
}

static int parse_float_arg(const char *flag, const char *v, double lo, double hi, float *out)
{
    double d;
    if (cli_parse_float(v, &d) || d < lo || d > hi)
        return cli_usage_error("generate", "%s wants a number in [%g, %g], not '%s'", flag, lo,
                               hi, v);
    *out = (float)d;
    return 0;
}

static int parse_int_arg(const char *flag, const char *v, long long lo, long long hi, int *out)
{
    long long x;
    if (cli_parse_int(v, lo, hi, &x))
        return cli_usage_error("generate", "%s wants an integer in [%lld, %lld], not '%s'", flag,
                               lo, hi, v);
    *out = (int)x;
    return 0;
}

static const struct {
    const char *name;
    sld_sampler s;
} SAMPLERS[] = {
    {"pndm", SLD_SAMPLER_PNDM},     {"plms", SLD_SAMPLER_PNDM},       {"ddim", SLD_SAMPLER_DDIM},
    {"euler", SLD_SAMPLER_EULER},   {"euler_a", SLD_SAMPLER_EULER_A}, {"lms", SLD_SAMPLER_LMS},
    {"dpmpp_2m", SLD_SAMPLER_DPMPP_2M},
};

static const char *const PRESETS[] = {"off", "weak", "medium", "strong", "max"};

/* out path for image i of n: "a.png" -> "a-3.png" */
static char *image_path(const char *out, int i, int n)
{
    size_t len = strlen(out) + 16;
    char *p = malloc(len);
    if (!p)
        return NULL;
    if (n == 1) {
        snprintf(p, len, "%s", out);
        return p;
    }
    const char *dot = strrchr(out, '.');
    const char *slash = strrchr(out, '/');
    if (!dot || (slash && dot < slash))
        dot = out + strlen(out);
    snprintf(p, len, "%.*s-%d%s", (int)(dot - out), out, i, dot);
    return p;
}

/* path with a suffix before its extension: ("m.png", "-step-007") -> "m-step-007.png" */
static char *path_suffixed(const char *path, const char *suffix)
{
    size_t len = strlen(path) + strlen(suffix) + 1;
    char *p = malloc(len);
    if (!p)
        return NULL;
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        dot = path + strlen(path);
    snprintf(p, len, "%.*s%s%s", (int)(dot - path), path, suffix, dot);
    return p;
}

/* Writes one rendered map (over the image when overlay) with the run's
 * parameters plus how the map was scaled. Returns 0 or prints and returns 1. */
static int write_map(const char *path, const float *map, int mw, int mh, float vmax,
                     const uint8_t *under, int W, int H, const char *params, const char *what)
{
    sld_error err;
    float shown = vmax;
    if (shown <= 0) {
        shown = 0;
        for (size_t k = 0; k < (size_t)mw * mh; k++)
            shown = map[k] > shown ? map[k] : shown;
    }
    uint8_t *rgb = malloc((size_t)W * H * 3);
    size_t tl = strlen(params ? params : "") + strlen(what) + 128;
    char *text = malloc(tl);
    if (!rgb || !text) {
        free(rgb);
        free(text);
        fprintf(stderr, "sld: out of memory for %s\n", path);
        return 1;
    }
    snprintf(text, tl, "%s, SLD map: %s, SLD map max: %g", params ? params : "", what,
             (double)shown);
    int rc = 0;
    if (sld_safety_map_render(map, mw, mh, vmax, under, W, H, rgb, &err) ||
        sld_png_write(path, rgb, W, H, text, &err))
        rc = cli_fail(&err);
    free(rgb);
    free(text);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    sld_gen_params p;
    sld_gen_params_default(&p);
    sld_model_opts mo;
    sld_model_opts_default(&mo);
    const char *model = NULL, *out = NULL, *latents_path = NULL;
    const char *trace_path = NULL, *map_path = NULL;
    int map_overlay = 0, map_steps = 0;
    float map_max = 0;
    int threads = 0, quiet = 0, prompt_set = 0;
    sld_safety_preset preset = SLD_SAFETY_MEDIUM;
    /* individual SLD overrides, applied after the preset */
    float o_gs = NAN, o_th = NAN, o_ms = NAN, o_mb = NAN;
    int o_wu = -1;
    unsigned long long seed = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(GEN_USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--karras")) {
            p.karras = 1;
            continue;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--no-safety-checker")) {
            p.safety_checker = 0;
            mo.no_safety_checker = 1;
            continue;
        }
        if (!strcmp(a, "--keep-flagged")) {
            p.keep_flagged = 1;
            continue;
        }
        if (!strcmp(a, "--sld-map-overlay")) {
            map_overlay = 1;
            continue;
        }
        if (!strcmp(a, "--sld-map-steps")) {
            map_steps = 1;
            continue;
        }
        if (a[0] != '-')
            return cli_usage_error("generate", "unexpected argument '%s'", a);
        if (i + 1 >= argc)
            return cli_missing_value("generate", a, GEN_USAGE, "--guidance-scale");
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--config"))
            mo.config_dir = v;
        else if (!strcmp(a, "--prompt")) {
            p.prompt = v;
            prompt_set = 1;
        } else if (!strcmp(a, "--negative-prompt"))
            p.negative_prompt = v;
        else if (!strcmp(a, "--steps"))
            rc = parse_int_arg(a, v, 1, 1000, &p.steps);
        else if (!strcmp(a, "--cfg") || !strcmp(a, "--guidance-scale"))
            rc = parse_float_arg(a, v, 0, 1000, &p.cfg);
        else if (!strcmp(a, "--sampler")) {
            int found = 0;
            for (size_t k = 0; k < sizeof SAMPLERS / sizeof *SAMPLERS; k++)
                if (!strcmp(v, SAMPLERS[k].name)) {
                    p.sampler = SAMPLERS[k].s;
                    found = 1;
                }
            if (!found)
                return cli_usage_error("generate",
                                       "unknown sampler '%s' (pndm, ddim, euler, euler_a, lms, "
                                       "dpmpp_2m)",
                                       v);
        } else if (!strcmp(a, "--eta"))
            rc = parse_float_arg(a, v, 0, 100, &p.eta);
        else if (!strcmp(a, "--seed")) {
            if (cli_parse_u64(v, &seed))
                return cli_usage_error("generate", "--seed wants a non-negative integer, not '%s'",
                                       v);
        } else if (!strcmp(a, "--rng")) {
            if (!strcmp(v, "avx2"))
                p.rng_variant = SLD_RNG_AVX2;
            else if (!strcmp(v, "default"))
                p.rng_variant = SLD_RNG_DEFAULT;
            else
                return cli_usage_error("generate", "--rng wants avx2 or default, not '%s'", v);
        } else if (!strcmp(a, "--width"))
            rc = parse_int_arg(a, v, 8, 4096, &p.width);
        else if (!strcmp(a, "--height"))
            rc = parse_int_arg(a, v, 8, 4096, &p.height);
        else if (!strcmp(a, "--images"))
            rc = parse_int_arg(a, v, 1, 64, &p.n_images);
        else if (!strcmp(a, "--safety")) {
            int found = 0;
            for (int k = 0; k < 5; k++)
                if (!strcmp(v, PRESETS[k])) {
                    preset = (sld_safety_preset)k;
                    found = 1;
                }
            if (!found)
                return cli_usage_error("generate",
                                       "--safety wants off, weak, medium, strong or max, not '%s'",
                                       v);
        } else if (!strcmp(a, "--safety-concept"))
            p.safety_concept = v;
        else if (!strcmp(a, "--sld-guidance-scale"))
            rc = parse_float_arg(a, v, 0, 1e9, &o_gs);
        else if (!strcmp(a, "--sld-warmup-steps"))
            rc = parse_int_arg(a, v, 0, 100000, &o_wu);
        else if (!strcmp(a, "--sld-threshold"))
            rc = parse_float_arg(a, v, -1e9, 1e9, &o_th);
        else if (!strcmp(a, "--sld-momentum-scale"))
            rc = parse_float_arg(a, v, -1e9, 1e9, &o_ms);
        else if (!strcmp(a, "--sld-mom-beta"))
            rc = parse_float_arg(a, v, 0, 1, &o_mb);
        else if (!strcmp(a, "--prediction")) {
            if (!strcmp(v, "epsilon"))
                mo.prediction = SLD_PRED_EPSILON;
            else if (!strcmp(v, "v") || !strcmp(v, "v_prediction"))
                mo.prediction = SLD_PRED_V;
            else
                return cli_usage_error("generate", "--prediction wants epsilon or v, not '%s'", v);
        } else if (!strcmp(a, "--conv-algo")) {
            if (!strcmp(v, "auto"))
                mo.conv_algo = SLD_CONV_AUTO;
            else if (!strcmp(v, "direct"))
                mo.conv_algo = SLD_CONV_DIRECT;
            else
                return cli_usage_error("generate", "--conv-algo wants auto or direct, not '%s'",
                                       v);
        } else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "fp32"))
                mo.precision = SLD_PREC_FP32;
            else if (!strcmp(v, "bf16"))
                mo.precision = SLD_PREC_BF16;
            else if (!strcmp(v, "auto"))
                mo.precision = SLD_PREC_AUTO;
            else
                return cli_usage_error("generate",
                                       "--precision wants fp32, bf16 or auto, not '%s'", v);
        } else if (!strcmp(a, "--threads"))
            rc = parse_int_arg(a, v, 0, 4096, &threads);
        else if (!strcmp(a, "--save-latents"))
            latents_path = v;
        else if (!strcmp(a, "--trace"))
            trace_path = v;
        else if (!strcmp(a, "--sld-map"))
            map_path = v;
        else if (!strcmp(a, "--sld-map-max"))
            rc = parse_float_arg(a, v, 0, 1e30, &map_max);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else
            return cli_usage_error("generate", "unknown option '%s'", a);
        if (rc)
            return rc;
    }
    if (!model)
        return cli_usage_error("generate", "--model is required");
    if (!prompt_set)
        return cli_usage_error("generate", "--prompt is required");
    if (!out)
        return cli_usage_error("generate", "-o OUT.png is required");
    if ((map_overlay || map_steps || map_max > 0) && !map_path)
        return cli_usage_error("generate",
                               "--sld-map-overlay, --sld-map-steps and --sld-map-max need "
                               "--sld-map MAP.png");
    if (!strcmp(out, "-") && p.n_images > 1)
        return cli_usage_error("generate", "-o - writes one image to standard output; with "
                                           "--images %d give a file name (OUT-0.png ...)",
                               p.n_images);
    if (latents_path && !strcmp(latents_path, "-") && !strcmp(out, "-"))
        return cli_usage_error("generate", "-o - and --save-latents - cannot share standard "
                                           "output");
    if ((p.width && p.width % 8) || (p.height && p.height % 8))
        return cli_usage_error("generate", "--width and --height must be multiples of 8 (got %dx%d)",
                               p.width, p.height);

    p.sld = sld_safety_preset_get(preset);
    if (!isnan(o_gs))
        p.sld.guidance_scale = o_gs;
    if (o_wu >= 0)
        p.sld.warmup_steps = o_wu;
    if (!isnan(o_th))
        p.sld.threshold = o_th;
    if (!isnan(o_ms))
        p.sld.momentum_scale = o_ms;
    if (!isnan(o_mb))
        p.sld.mom_beta = o_mb;
    p.seed = seed;

    progress_state ps = {quiet, isatty(2), 0, 0, 0.0, p.n_images};
    p.progress = on_progress;
    p.progress_user = &ps;
    int show = ps.tty && !quiet;
    telemetry_state ts = {&ps, NULL, 0, map_steps, NULL, 0, 0, 0};
    p.telemetry = on_telemetry;
    p.telemetry_user = &ts;

    sld_error err;
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    sld_gen_result r = {0};
    int rc = 1;
    char *params = NULL, **created = NULL;
    int n_created = 0;
    if (trace_path && !(ts.trace = fopen(trace_path, "w"))) {
        fprintf(stderr, "sld: cannot write the trace %s: %s\n", trace_path, strerror(errno));
        return 1;
    }
    if (show)
        fprintf(stderr, "loading %s ...", model);
    if (sld_model_open(&m, model, &mo, &err) || sld_ctx_new(&c, m, threads, &err)) {
        if (show)
            fputc('\n', stderr);
        cli_fail(&err);
        goto done;
    }
    if (show)
        fprintf(stderr, " done\n");
    if (sld_generate(c, &p, &r, &err)) {
        if (show)
            fputc('\n', stderr);
        if (ts.oom)
            fprintf(stderr, "sld: out of memory for the --sld-map-steps frames\n");
        else
            cli_fail(&err);
        goto done;
    }
    if (show)
        fprintf(stderr, " done\n");
    if (ts.trace) {
        int bad = ts.trace_failed | ferror(ts.trace);
        bad |= fclose(ts.trace) != 0;
        ts.trace = NULL;
        if (bad) {
            fprintf(stderr, "sld: writing the trace %s failed: %s\n", trace_path,
                    strerror(errno));
            goto done;
        }
        if (!quiet)
            fprintf(stderr, "sld: wrote %s (%d steps x %d image(s))\n", trace_path, r.n_steps,
                    r.n);
    }
    params = sld_gen_params_text(&p, m, seed);
    /* images this run created, removed again if a later write fails: a
     * failed run leaves no a-0.png behind */
    created = calloc((size_t)r.n * (map_path ? 2 + (size_t)ts.n_frames : 1) + 1,
                     sizeof *created); /* images, maps, map frames */
    if (!created) {
        fprintf(stderr, "sld: out of memory\n");
        goto done;
    }
    for (int i = 0; i < r.n; i++) {
        char *path = image_path(out, i, r.n);
        if (!path) {
            fprintf(stderr, "sld: out of memory\n");
            goto done;
        }
        struct stat sb;
        int existed = !strcmp(path, "-") || lstat(path, &sb) == 0;
        sld_status st = sld_png_write(path, r.pixels + (size_t)i * r.width * r.height * 3,
                                      r.width, r.height, params, &err);
        if (!st && !quiet)
            fprintf(stderr, "sld: wrote %s%s\n", strcmp(path, "-") ? path : "standard output",
                    r.nsfw && r.nsfw[i] ? " (flagged)" : "");
        if (!st && !existed)
            created[n_created++] = path;
        else
            free(path);
        if (st) {
            cli_fail(&err);
            goto done;
        }
    }
    if (map_path) {
        const int mw = r.width / 8, mh = r.height / 8;
        const size_t plane = (size_t)mw * mh, npx = (size_t)r.width * r.height * 3;
        for (int i = 0; i < r.n; i++) {
            char *path = image_path(map_path, i, r.n);
            const uint8_t *under = map_overlay ? r.pixels + (size_t)i * npx : NULL;
            struct stat sb;
            int existed = path && lstat(path, &sb) == 0;
            if (!path || write_map(path, r.safety_map + (size_t)i * plane, mw, mh, map_max, under,
                                   r.width, r.height, params,
                                   "sum over steps of the applied safety term's norm")) {
                if (!path)
                    fprintf(stderr, "sld: out of memory\n");
                free(path);
                goto done;
            }
            if (!existed && (created[n_created] = strdup(path)))
                n_created++;
            if (!quiet)
                fprintf(stderr, "sld: wrote %s\n", path);
            /* frames share one scale per image: the largest of its frames */
            float fmax = map_max;
            for (int f = 0; map_steps && fmax <= 0 && f < ts.n_frames; f++)
                for (size_t k = 0; k < plane; k++) {
                    float v = ts.frames[(size_t)f * ts.frame_len + (size_t)i * plane + k];
                    fmax = v > fmax ? v : fmax;
                }
            for (int f = 0; map_steps && f < ts.n_frames; f++) {
                char suf[32];
                snprintf(suf, sizeof suf, "-step-%03d", f);
                char *fp = path_suffixed(path, suf);
                int fexisted = fp && lstat(fp, &sb) == 0;
                if (!fp || write_map(fp, ts.frames + (size_t)f * ts.frame_len + (size_t)i * plane,
                                     mw, mh, fmax > 0 ? fmax : 1.0f, under, r.width, r.height,
                                     params, "applied safety term's norm at this step")) {
                    if (!fp)
                        fprintf(stderr, "sld: out of memory\n");
                    free(fp);
                    free(path);
                    goto done;
                }
                if (!fexisted)
                    created[n_created++] = fp;
                else
                    free(fp);
            }
            if (map_steps && !quiet)
                fprintf(stderr, "sld: wrote %d step frames beside %s\n", ts.n_frames, path);
            free(path);
        }
    }
    if (latents_path) {
        const char *names[1] = {"latents"};
        int nd[1] = {4};
        int64_t shape[4] = {r.n, 4, r.height / 8, r.width / 8};
        const int64_t *shapes[1] = {shape};
        const float *data[1] = {r.latents};
        if (sld_tensors_write_f32(latents_path, 1, names, nd, shapes, data, &err)) {
            cli_fail(&err);
            goto done;
        }
    }
    if (!quiet)
        fprintf(stderr, "sld: %d image(s) in %.1f s\n", r.n, r.seconds);
    rc = 0;
done:
    if (ts.trace)
        fclose(ts.trace);
    free(ts.frames);
    for (int i = 0; i < n_created; i++) {
        if (rc)
            unlink(created[i]);
        free(created[i]);
    }
    free(created);
    free(params);
    sld_gen_result_free(&r);
    sld_ctx_free(c);
    sld_model_close(m);
    return rc;
}
