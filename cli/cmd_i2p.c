/* cmd_i2p.c — `sld i2p generate|eval|report`: the I2P test bed (docs/I2P.md). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *USAGE_GEN =
    "usage: sld i2p generate --prompts FILE --model PATH --out RUN_DIR [options]\n"
    "       sld i2p plan ...     the same as generate --dry-run\n"
    "  --prompts FILE           the I2P CSV, COCO captions (captions_val2014.json) or JSONL\n"
    "                           (one {\"prompt\": ...} per line); by extension, else content\n"
    "  --sample-seed S          COCO: seed of the caption sample (0); --limit N images\n"
    "  --configs LIST           configs to run: sd, neg (SLD off, the safety concept as\n"
    "                           negative prompt: the paper's baseline), weak, medium,\n"
    "                           strong, max, or defined ones (sd,weak,medium,strong,max)\n"
    "  --define NAME=PRESET[:key=value]...  a named config, e.g. strong3k=strong:guidance_scale=3000\n"
    "                           or viol=medium:concept=violence; keys guidance_scale,\n"
    "                           warmup_steps, threshold, momentum_scale, mom_beta, concept,\n"
    "                           negative (negative=concept: the concept as negative prompt)\n"
    "  --configs-file FILE      named configs as JSON {NAME: {\"preset\": ..., key: value}}\n"
    "  --images N               images per prompt and config (10)\n"
    "  --batch N                images per generation call (5)\n"
    "  --shard K/N              rows with row % N == K (for job arrays)\n"
    "  --categories LIST        only rows with one of these categories\n"
    "  --hard                   only rows marked hard\n"
    "  --limit N                only the first N matching rows (COCO: a sample of N images,\n"
    "                           one caption each; 0 = all)\n"
    "  --skip-bad-rows          leave out CSV rows that do not validate (recorded in the run)\n"
    "  --dry-run                print the plan and an estimated time, write nothing\n"
    "  --seed N                 one seed for every row (default: each row's sd_seed;\n"
    "                           JSONL: \"seed\"; COCO: the image id; else the row number)\n"
    "  --steps N (50)  --sampler pndm|ddim|euler|euler_a|lms|dpmpp_2m (pndm)\n"
    "  --karras  --eta F        sampler options, as in sld generate\n"
    "  --cfg F|csv (7.5)        csv: each row's sd_guidance_scale\n"
    "  --width W|csv --height H|csv (512)  csv: each row's sd_image_width/height\n"
    "  --rng avx2|default       torch CPU randn kernel to match (avx2)\n"
    "  --negative-prompt TEXT   negative prompt of every config (neg: the concept)\n"
    "  --safety-concept TEXT    the concept SLD steers away from (the paper's)\n"
    "  --precision fp32|bf16|auto  --prediction epsilon|v  --config DIR   model options\n"
    "  --conv-algo auto|direct  fp32 3x3 convs: Winograd where it pays, or direct only\n"
    "  --sld-guidance-scale F --sld-warmup-steps N --sld-threshold F\n"
    "  --sld-momentum-scale F --sld-mom-beta F   override the presets' values\n"
    "  --sld-maps               also write each image's SLD map, images/CONFIG/ROW_K.map.png\n"
    "                           (an output option: a run may be resumed with or without it)\n"
    "  --threads N  --quiet\n"
    "A run folder keeps a manifest.json of all of these; rerunning on it continues only when\n"
    "they match (adding configs is allowed). docs/I2P.md.\n";
static const char *USAGE_EVAL =
    "usage: sld i2p eval --run RUN_DIR --clip PATH --nudenet FILE.onnx [options]\n"
    "  --q16 FILE               Q16 prompt embeddings (default: the shipped ViT-L/14 ones)\n"
    "  --safety-checker MODEL   also run an SD folder's safety_checker/\n"
    "  --shard K/N  --threads N  --quiet\n";
static const char *USAGE_REPORT =
    "usage: sld i2p report (--run [LABEL=]RUN_DIR ... | --from-annotations CSV) [options]\n"
    "  --run [LABEL=]DIR        a run folder; repeat to merge several (shards, added configs)\n"
    "  --compare                keep the runs apart: configs become LABEL:CONFIG\n"
    "  --baseline NAME          the config the change (delta) is taken against (sd; none)\n"
    "  --json FILE --html FILE --latex FILE   also write these (atomically)\n"
    "  --gallery-prompts ROWS   CSV rows for the HTML gallery, e.g. 0,17,42 (default: sampled)\n"
    "  --gallery N              how many rows to sample for the gallery (6)\n"
    "  --embed-images           embed the gallery PNGs in the HTML (default: relative links)\n"
    "  --ci-draws N             bootstrap resamples for the 95 % intervals (1000)\n"
    "The Markdown report goes to stdout; warnings go to stderr and into every output.\n";

/* Flushes stdout; 1 with a message when anything written to it was lost
 * (a full disk, a closed pipe, /dev/full). */
static int stdout_failed(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "sld: cannot write to standard output: %s\n",
            errno ? strerror(errno) : "write error");
    return 1;
}

static int parse_shard(const char *v, int *k, int *n)
{
    char *slash = v ? strchr(v, '/') : NULL;
    if (!slash)
        return -1;
    char a[32];
    size_t la = (size_t)(slash - v);
    if (la == 0 || la >= sizeof a)
        return -1;
    memcpy(a, v, la);
    a[la] = 0;
    long long kk, nn;
    if (cli_parse_int(a, 0, 1 << 20, &kk) || cli_parse_int(slash + 1, 1, 1 << 20, &nn) ||
        kk >= nn)
        return -1;
    *k = (int)kk;
    *n = (int)nn;
    return 0;
}

typedef struct {
    int tty;
    double last;
} progress_state;

/* On a terminal one line redrawn in place; in a redirected log a plain line
 * at most every 30 s (and at the end), never carriage returns. */
static int progress_line(const sld_i2p_progress *p, void *user)
{
    progress_state *ps = user;
    double rate = p->seconds > 0 ? p->done / p->seconds : 0;
    double left = rate > 0 ? (p->todo - p->done) / rate : 0;
    int end = p->done == p->todo;
    if (!ps->tty && !end && p->seconds - ps->last < 30)
        return 0;
    ps->last = p->seconds;
    fprintf(stderr, "%s%ld/%ld images (%ld done before)  %s  %.1f s/image  ~%.0f min left%s",
            ps->tty ? "\r" : "", p->done, p->todo, p->skipped, p->config ? p->config : "",
            p->done ? p->seconds / p->done : 0.0, left / 60, ps->tty ? "   " : "\n");
    if (ps->tty && end)
        fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

static const struct {
    const char *name;
    sld_sampler s;
} SAMPLERS[] = {{"pndm", SLD_SAMPLER_PNDM},   {"ddim", SLD_SAMPLER_DDIM},
                {"euler", SLD_SAMPLER_EULER}, {"euler_a", SLD_SAMPLER_EULER_A},
                {"lms", SLD_SAMPLER_LMS},     {"dpmpp_2m", SLD_SAMPLER_DPMPP_2M}};

/* Times a 1-step and a 2-step generation of one image (after an untimed
 * warm-up: the first call pays for kernel set-up): the difference is one
 * denoising step, the rest is text encoding and VAE decoding. */
static int estimate(sld_ctx *c, const sld_i2p_gen_opts *o, const sld_i2p_plan *plan)
{
    sld_error err;
    double t[3];
    for (int i = 0; i < 3; i++) {
        sld_gen_params p = o->gen;
        p.prompt = "a photo";
        p.steps = i < 2 ? 1 : 2;
        p.n_images = 1;
        p.sampler = SLD_SAMPLER_DDIM; /* one UNet evaluation per step */
        p.sld = sld_safety_preset_get(SLD_SAFETY_MEDIUM);
        p.safety_checker = 0;
        sld_gen_result r;
        if (sld_generate(c, &p, &r, &err))
            return cli_fail(&err);
        t[i] = r.seconds;
        sld_gen_result_free(&r);
    }
    double step = t[2] - t[1] > 0 ? t[2] - t[1] : t[2] / 2, base = t[1] - step;
    if (base < 0)
        base = 0;
    int evals = o->gen.steps + (o->gen.sampler == SLD_SAMPLER_PNDM);
    double per_image = base + evals * step;
    double total = per_image * (double)plan->images_todo;
    printf("estimate: %.2f s per image (%.2f s per step incl. SLD, %.2f s fixed), "
           "%.1f hours for %ld images on this machine\n",
           per_image, step, base, total / 3600, plan->images_todo);
    return 0;
}

/* Appends "line\n" to a growing buffer of --define lines. */
static int defs_add(char **defs, const char *line)
{
    size_t old = *defs ? strlen(*defs) : 0, n = strlen(line);
    char *d = realloc(*defs, old + n + 2);
    if (!d)
        return -1;
    memcpy(d + old, line, n);
    d[old + n] = '\n';
    d[old + n + 1] = 0;
    *defs = d;
    return 0;
}

static int cmd_generate_i2p(int argc, char **argv, int plan_only)
{
    sld_i2p_gen_opts o;
    sld_i2p_gen_opts_default(&o);
    sld_model_opts mo;
    sld_model_opts_default(&mo);
    const char *model = NULL;
    char *defs = NULL;
    int threads = 0, dry = plan_only, quiet = 0, rc = 0;
#define USAGE_FAIL(...) do { rc = cli_usage_error("i2p generate", __VA_ARGS__); goto out; } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_GEN, stdout);
            goto out;
        }
        if (!strcmp(a, "--hard")) {
            o.filter.hard_only = 1;
            continue;
        }
        if (!strcmp(a, "--skip-bad-rows")) {
            o.filter.skip_bad_rows = 1;
            continue;
        }
        if (!strcmp(a, "--karras")) {
            o.gen.karras = 1;
            continue;
        }
        if (!strcmp(a, "--sld-maps")) {
            o.sld_maps = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            dry = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (a[0] != '-')
            USAGE_FAIL("unexpected argument '%s'", a);
        if (i + 1 >= argc)
        {
            rc = cli_missing_value("i2p generate", a, USAGE_GEN, NULL);
            goto out;
        }
        const char *v = argv[++i];
        long long n;
        double f;
        if (!strcmp(a, "--prompts"))
            o.prompts = v;
        else if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--out"))
            o.out_dir = v;
        else if (!strcmp(a, "--configs"))
            o.configs = v;
        else if (!strcmp(a, "--define")) {
            if (strchr(v, '\n') || defs_add(&defs, v))
                USAGE_FAIL("--define wants one NAME=PRESET[:key=value]... per flag");
        } else if (!strcmp(a, "--configs-file"))
            o.config_file = v;
        else if (!strcmp(a, "--categories"))
            o.filter.categories = v;
        else if (!strcmp(a, "--safety-concept"))
            o.gen.safety_concept = v;
        else if (!strcmp(a, "--negative-prompt"))
            o.gen.negative_prompt = v;
        else if (!strcmp(a, "--config"))
            mo.config_dir = v;
        else if (!strcmp(a, "--shard")) {
            if (parse_shard(v, &o.filter.shard_k, &o.filter.shard_n))
                USAGE_FAIL("--shard wants K/N with 0 <= K < N, not '%s'", v);
        } else if (!strcmp(a, "--sampler")) {
            int found = 0;
            for (size_t k = 0; k < sizeof SAMPLERS / sizeof SAMPLERS[0]; k++)
                if (!strcmp(v, SAMPLERS[k].name)) {
                    o.gen.sampler = SAMPLERS[k].s;
                    found = 1;
                }
            if (!found)
                USAGE_FAIL("unknown sampler '%s' (pndm, ddim, euler, euler_a, lms, dpmpp_2m)", v);
        } else if (!strcmp(a, "--rng")) {
            if (!strcmp(v, "avx2"))
                o.gen.rng_variant = SLD_RNG_AVX2;
            else if (!strcmp(v, "default"))
                o.gen.rng_variant = SLD_RNG_DEFAULT;
            else
                USAGE_FAIL("--rng wants avx2 or default, not '%s'", v);
        } else if (!strcmp(a, "--conv-algo")) {
            if (!strcmp(v, "auto"))
                mo.conv_algo = SLD_CONV_AUTO;
            else if (!strcmp(v, "direct"))
                mo.conv_algo = SLD_CONV_DIRECT;
            else
                USAGE_FAIL("--conv-algo wants auto or direct, not '%s'", v);
        } else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "fp32"))
                mo.precision = SLD_PREC_FP32;
            else if (!strcmp(v, "bf16"))
                mo.precision = SLD_PREC_BF16;
            else if (!strcmp(v, "auto"))
                mo.precision = SLD_PREC_AUTO;
            else
                USAGE_FAIL("--precision wants fp32, bf16 or auto, not '%s'", v);
        } else if (!strcmp(a, "--prediction")) {
            if (!strcmp(v, "epsilon"))
                mo.prediction = SLD_PRED_EPSILON;
            else if (!strcmp(v, "v") || !strcmp(v, "v_prediction"))
                mo.prediction = SLD_PRED_V;
            else
                USAGE_FAIL("--prediction wants epsilon or v, not '%s'", v);
        } else if (!strcmp(a, "--sample-seed")) {
            unsigned long long s;
            if (cli_parse_u64(v, &s) || s > 0xffffffffull)
                USAGE_FAIL("--sample-seed wants 0..4294967295, not '%s'", v);
            o.filter.sample_seed = (uint32_t)s;
        } else if (!strcmp(a, "--seed")) {
            unsigned long long s;
            if (cli_parse_u64(v, &s) || s > 0xffffffffull)
                USAGE_FAIL("--seed wants 0..4294967295, not '%s'", v);
            o.seed = (int64_t)s;
        } else if ((!strcmp(a, "--width") || !strcmp(a, "--height")) && !strcmp(v, "csv")) {
            o.size_from_csv = 1;
        } else if (!strcmp(a, "--cfg") && !strcmp(v, "csv")) {
            o.cfg_from_csv = 1;
        } else if (!strcmp(a, "--images") || !strcmp(a, "--batch") || !strcmp(a, "--limit") ||
                   !strcmp(a, "--steps") || !strcmp(a, "--width") || !strcmp(a, "--height") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--sld-warmup-steps")) {
            if (cli_parse_int(v, 0, 100000, &n))
                USAGE_FAIL("%s wants a whole number in [0, 100000], not '%s'", a, v);
            if (!strcmp(a, "--images"))
                o.n_images = (int)n;
            else if (!strcmp(a, "--batch"))
                o.batch = (int)n;
            else if (!strcmp(a, "--limit"))
                o.filter.limit = (int)n;
            else if (!strcmp(a, "--steps"))
                o.gen.steps = (int)n;
            else if (!strcmp(a, "--width"))
                o.gen.width = (int)n;
            else if (!strcmp(a, "--height"))
                o.gen.height = (int)n;
            else if (!strcmp(a, "--threads"))
                threads = (int)n;
            else
                o.sld_override.warmup_steps = (int)n;
        } else if (!strcmp(a, "--cfg") || !strcmp(a, "--eta") ||
                   !strcmp(a, "--sld-guidance-scale") || !strcmp(a, "--sld-threshold") ||
                   !strcmp(a, "--sld-momentum-scale") || !strcmp(a, "--sld-mom-beta")) {
            if (cli_parse_float(v, &f))
                USAGE_FAIL("%s wants a number, not '%s'", a, v);
            if (!strcmp(a, "--cfg"))
                o.gen.cfg = (float)f;
            else if (!strcmp(a, "--eta"))
                o.gen.eta = (float)f;
            else if (!strcmp(a, "--sld-guidance-scale"))
                o.sld_override.guidance_scale = (float)f;
            else if (!strcmp(a, "--sld-threshold"))
                o.sld_override.threshold = (float)f;
            else if (!strcmp(a, "--sld-momentum-scale"))
                o.sld_override.momentum_scale = (float)f;
            else
                o.sld_override.mom_beta = (float)f;
        } else
            USAGE_FAIL("unknown option '%s'", a);
    }
    if (!o.prompts || !model || !o.out_dir)
        USAGE_FAIL("--prompts, --model and --out are required");
    o.model_label = model;
    o.config_defs = defs;
    sld_error err;
    /* Values first (exit 2, nothing read or created), then the CSV (exit 1
     * before a long load); the folder's manifest is compared once the model
     * is open, so that every difference, the model's included, is listed. */
    if (sld_i2p_gen_opts_check(&o, &err))
        USAGE_FAIL("%s", strncmp(err.msg, "i2p generate: ", 14) ? err.msg : err.msg + 14);
    sld_i2p_plan plan;
    sld_i2p_set *set0;
    if (sld_i2p_set_load(&set0, o.prompts, &o.filter, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    sld_i2p_set_free(set0);
    int tty = isatty(2);
    if (!quiet && tty)
        fprintf(stderr, "sld: loading %s ...", model);
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    double t0 = cli_now();
    if (sld_model_open(&m, model, &mo, &err) || sld_ctx_new(&c, m, threads, &err)) {
        if (!quiet && tty)
            fputc('\n', stderr);
        rc = cli_fail(&err);
        goto done;
    }
    if (!quiet && tty)
        fprintf(stderr, " %.1f s\n", cli_now() - t0);
    o.model = m;
    if (sld_i2p_plan_get(&o, &plan, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if (dry) {
        printf("plan: %d rows x %d configs x %d images = %ld images; %ld already done, %ld to "
               "make in %ld batches of up to %d\n",
               plan.rows, plan.configs, o.n_images, plan.images_total, plan.images_done,
               plan.images_todo, plan.batches_todo, o.batch);
        if (plan.configs_added)
            printf("adds %d config%s to the run\n", plan.configs_added,
                   plan.configs_added > 1 ? "s" : "");
        if (plan.bad_rows) {
            sld_i2p_set *set;
            if (sld_i2p_set_load(&set, o.prompts, &o.filter, &err) == SLD_OK) {
                printf("skipping %d bad row%s of %s:\n", plan.bad_rows,
                       plan.bad_rows > 1 ? "s" : "", o.prompts);
                for (int i = 0; i < sld_i2p_set_bad_count(set); i++)
                    printf("  line %d (row %d): %s\n", sld_i2p_set_bad(set, i)->line,
                           sld_i2p_set_bad(set, i)->row, sld_i2p_set_bad(set, i)->reason);
                sld_i2p_set_free(set);
            }
        }
        if (plan.images_todo > 0)
            rc = estimate(c, &o, &plan);
        rc |= stdout_failed();
    } else if (plan.images_todo == 0 && !plan.configs_added) {
        fprintf(stderr, "sld i2p generate: nothing to do (%ld images already made)\n",
                plan.images_done);
    } else {
        progress_state ps = {.tty = tty};
        if (!quiet) {
            o.progress = progress_line;
            o.progress_user = &ps;
        }
        if (sld_i2p_generate(c, &o, &err))
            rc = cli_fail(&err);
    }
done:
    sld_ctx_free(c);
    sld_model_close(m);
out:
    free(defs);
    return rc;
#undef USAGE_FAIL
}

static int cmd_eval_i2p(int argc, char **argv)
{
    sld_i2p_eval_opts o;
    sld_i2p_eval_opts_default(&o);
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_EVAL, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (i + 1 >= argc)
            return cli_missing_value("i2p eval", a, USAGE_EVAL, NULL);
        const char *v = argv[++i];
        long long n;
        if (!strcmp(a, "--run"))
            o.run_dir = v;
        else if (!strcmp(a, "--clip"))
            o.clip = v;
        else if (!strcmp(a, "--q16"))
            o.q16 = v;
        else if (!strcmp(a, "--nudenet"))
            o.nudenet = v;
        else if (!strcmp(a, "--safety-checker"))
            o.safety_checker = v;
        else if (!strcmp(a, "--shard")) {
            if (parse_shard(v, &o.shard_k, &o.shard_n))
                return cli_usage_error("i2p eval", "--shard wants K/N with 0 <= K < N");
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &n))
                return cli_usage_error("i2p eval", "--threads wants 0..4096");
            o.n_threads = (int)n;
        } else
            return cli_usage_error("i2p eval", "unknown option '%s'", a);
    }
    if (!o.run_dir || !o.clip || !o.nudenet)
        return cli_usage_error("i2p eval", "--run, --clip and --nudenet are required");
    progress_state ps = {.tty = isatty(2)};
    if (!quiet) {
        o.progress = progress_line;
        o.progress_user = &ps;
    }
    sld_error err;
    if (sld_i2p_eval(&o, &err))
        return cli_fail(&err);
    return 0;
}

static int parse_rows(const char *v, int **rows, int *n)
{
    int cap = 0;
    *rows = NULL;
    *n = 0;
    for (const char *p = v; *p;) {
        char buf[32];
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof buf)
            return -1;
        memcpy(buf, p, l);
        buf[l] = 0;
        long long x;
        if (cli_parse_int(buf, 0, 100000000, &x))
            return -1;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int *nr = realloc(*rows, (size_t)cap * sizeof *nr);
            if (!nr)
                return -1;
            *rows = nr;
        }
        (*rows)[(*n)++] = (int)x;
        p += l;
        if (*p == ',')
            p++;
    }
    return *n ? 0 : -1;
}

#define MAX_RUNS 64

static int cmd_report_i2p(int argc, char **argv)
{
    const char *runs[MAX_RUNS], *labels[MAX_RUNS];
    char *label_buf[MAX_RUNS];
    int n_runs = 0;
    const char *ann = NULL, *json = NULL, *html = NULL, *latex = NULL, *baseline = NULL,
               *gallery_rows = NULL, *gallery_n = NULL, *draws = NULL;
    int compare = 0, embed = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_REPORT, stdout);
            return stdout_failed();
        }
        if (!strcmp(a, "--compare") || !strcmp(a, "--embed-images")) {
            int *flag = !strcmp(a, "--compare") ? &compare : &embed;
            if (*flag)
                return cli_usage_error("i2p report", "%s is given twice", a);
            *flag = 1;
            continue;
        }
        struct {
            const char *name;
            const char **dst;
        } vals[] = {{"--from-annotations", &ann},  {"--json", &json},
                    {"--html", &html},              {"--latex", &latex},
                    {"--baseline", &baseline},      {"--gallery-prompts", &gallery_rows},
                    {"--gallery", &gallery_n},      {"--ci-draws", &draws}};
        int known = !strcmp(a, "--run");
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
            known |= !strcmp(a, vals[k].name);
        if (!known)
            return cli_usage_error("i2p report", "unknown option '%s'", a);
        if (i + 1 >= argc)
            return cli_missing_value("i2p report", a, USAGE_REPORT, NULL);
        const char *v = argv[++i];
        if (!strcmp(a, "--run")) {
            if (n_runs == MAX_RUNS)
                return cli_usage_error("i2p report", "at most %d --run folders", MAX_RUNS);
            const char *eq = strchr(v, '=');
            labels[n_runs] = NULL;
            runs[n_runs] = v;
            if (eq && eq != v && !strchr(eq + 1, '=') && memchr(v, '/', (size_t)(eq - v)) == NULL) {
                labels[n_runs] = v; /* cut below */
                runs[n_runs] = eq + 1;
            }
            n_runs++;
            continue;
        }
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
            if (!strcmp(a, vals[k].name)) {
                if (*vals[k].dst)
                    return cli_usage_error("i2p report", "%s is given twice ('%s' and '%s')", a,
                                           *vals[k].dst, v);
                *vals[k].dst = v;
            }
    }
    if (!n_runs == !ann)
        return cli_usage_error("i2p report", "give --run (one or more) or --from-annotations");
    if (ann && compare)
        return cli_usage_error("i2p report", "--compare needs --run folders");
    sld_i2p_html_opts ho;
    sld_i2p_html_opts_default(&ho);
    ho.embed_images = embed;
    int *rows = NULL;
    if (gallery_rows && parse_rows(gallery_rows, &rows, &ho.n_gallery_rows))
        return cli_usage_error("i2p report", "--gallery-prompts wants CSV row numbers like "
                               "0,17,42, not '%s'", gallery_rows);
    ho.gallery_rows = rows;
    long long n;
    if (gallery_n) {
        if (cli_parse_int(gallery_n, 1, 1000, &n)) {
            free(rows);
            return cli_usage_error("i2p report", "--gallery wants 1..1000, not '%s'", gallery_n);
        }
        ho.gallery_n = (int)n;
    }
    sld_i2p_report_opts o;
    sld_i2p_report_opts_default(&o);
    if (draws) {
        if (cli_parse_int(draws, 10, 1000000, &n)) {
            free(rows);
            return cli_usage_error("i2p report", "--ci-draws wants 10..1000000, not '%s'", draws);
        }
        o.ci_draws = (int)n;
    }
    if (baseline)
        o.baseline = !strcmp(baseline, "none") ? NULL : baseline;
    for (int i = 0; i < n_runs; i++) {
        label_buf[i] = NULL;
        if (labels[i]) {
            size_t l = (size_t)(strchr(labels[i], '=') - labels[i]);
            label_buf[i] = malloc(l + 1);
            if (!label_buf[i]) {
                fprintf(stderr, "sld: out of memory\n");
                rc = 1;
                n_runs = i;
                goto out;
            }
            memcpy(label_buf[i], labels[i], l);
            label_buf[i][l] = 0;
            labels[i] = label_buf[i];
        }
    }
    o.runs = runs;
    o.labels = labels;
    o.n_runs = n_runs;
    o.compare = compare;
    sld_error err;
    sld_i2p_report *r = NULL;
    if (n_runs ? sld_i2p_report_from_runs(&r, &o, &err)
               : sld_i2p_report_from_annotations(&r, ann, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    for (int i = 0; i < sld_i2p_report_warning_count(r); i++)
        fprintf(stderr, "sld i2p report: warning: %s\n", sld_i2p_report_warning(r, i));
    char *md = sld_i2p_report_markdown(r);
    if (md) {
        fputs(md, stdout);
        free(md);
        rc |= stdout_failed();
    } else {
        fprintf(stderr, "sld: out of memory rendering the report\n");
        rc = 1;
    }
    const struct {
        const char *path;
        sld_i2p_format fmt;
    } outs[] = {{json, SLD_I2P_FORMAT_JSON}, {html, SLD_I2P_FORMAT_HTML},
                {latex, SLD_I2P_FORMAT_LATEX}};
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++)
        if (outs[k].path && sld_i2p_report_save(r, outs[k].fmt, outs[k].path, &ho, &err))
            rc |= cli_fail(&err);
    sld_i2p_report_free(r);
out:
    for (int i = 0; i < n_runs; i++)
        free(label_buf[i]);
    free(rows);
    return rc;
}

int cmd_i2p(int argc, char **argv)
{
    const char *usage =
        "usage: sld i2p generate|plan|eval|report|quality|quality-report [options] (--help on each)\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "generate"))
        return cmd_generate_i2p(argc - 1, argv + 1, 0);
    if (!strcmp(argv[1], "plan"))
        return cmd_generate_i2p(argc - 1, argv + 1, 1);
    if (!strcmp(argv[1], "eval"))
        return cmd_eval_i2p(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report"))
        return cmd_report_i2p(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quality"))
        return cmd_i2p_quality(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quality-report"))
        return cmd_i2p_quality_report(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "sld i2p: unknown subcommand '%s'\n%s", argv[1], usage);
    return 2;
}
