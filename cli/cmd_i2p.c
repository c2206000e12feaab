/* cmd_i2p.c — `sld i2p generate|eval|report`: the I2P test bed (docs/I2P.md). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE_GEN =
    "usage: sld i2p generate --prompts CSV --model PATH --out RUN_DIR [options]\n"
    "  --configs LIST           any of sd,weak,medium,strong,max (all)\n"
    "  --images N               images per prompt and config (10)\n"
    "  --batch N                images per generation call (5)\n"
    "  --shard K/N              rows with row %% N == K (for job arrays)\n"
    "  --categories LIST        only rows with one of these categories\n"
    "  --hard                   only rows marked hard\n"
    "  --limit N                only the first N matching rows\n"
    "  --dry-run                print the plan and an estimated time, write nothing\n"
    "  --seed N                 one seed for every row (default: each row's sd_seed)\n"
    "  --steps N (50) --cfg F (7.5) --sampler NAME (pndm) --width W --height H (512)\n"
    "  --safety-concept TEXT    --threads N\n"
    "  --sld-guidance-scale F --sld-warmup-steps N --sld-threshold F\n"
    "  --sld-momentum-scale F --sld-mom-beta F   override the presets' values\n"
    "  --quiet                  no progress lines\n";
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

static int progress_line(const sld_i2p_progress *p, void *user)
{
    (void)user;
    double rate = p->seconds > 0 ? p->done / p->seconds : 0;
    double left = rate > 0 ? (p->todo - p->done) / rate : 0;
    fprintf(stderr, "\r%ld/%ld images (%ld done before)  %s  %.1f s/image  ~%.0f min left   ",
            p->done, p->todo, p->skipped, p->config ? p->config : "",
            p->done ? p->seconds / p->done : 0.0, left / 60);
    if (p->done == p->todo)
        fputc('\n', stderr);
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

static int cmd_generate_i2p(int argc, char **argv)
{
    sld_i2p_gen_opts o;
    sld_i2p_gen_opts_default(&o);
    const char *model = NULL;
    int threads = 0, dry = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_GEN, stdout);
            return 0;
        }
        if (!strcmp(a, "--hard")) {
            o.filter.hard_only = 1;
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
        if (i + 1 >= argc)
            return cli_usage_error("i2p generate", "%s needs a value", a);
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
        else if (!strcmp(a, "--categories"))
            o.filter.categories = v;
        else if (!strcmp(a, "--safety-concept"))
            o.gen.safety_concept = v;
        else if (!strcmp(a, "--shard")) {
            if (parse_shard(v, &o.filter.shard_k, &o.filter.shard_n))
                return cli_usage_error("i2p generate", "--shard wants K/N with 0 <= K < N, not "
                                       "'%s'", v);
        } else if (!strcmp(a, "--sampler")) {
            int found = 0;
            for (size_t k = 0; k < sizeof SAMPLERS / sizeof SAMPLERS[0]; k++)
                if (!strcmp(v, SAMPLERS[k].name)) {
                    o.gen.sampler = SAMPLERS[k].s;
                    found = 1;
                }
            if (!found)
                return cli_usage_error("i2p generate", "unknown sampler '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            unsigned long long s;
            if (cli_parse_u64(v, &s) || s > 0xffffffffull)
                return cli_usage_error("i2p generate", "--seed wants 0..4294967295");
            o.seed = (int64_t)s;
        } else if (!strcmp(a, "--images") || !strcmp(a, "--batch") || !strcmp(a, "--limit") ||
                   !strcmp(a, "--steps") || !strcmp(a, "--width") || !strcmp(a, "--height") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--sld-warmup-steps")) {
            if (cli_parse_int(v, 0, 100000, &n))
                return cli_usage_error("i2p generate", "%s wants a whole number, not '%s'", a, v);
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
        } else if (!strcmp(a, "--cfg") || !strcmp(a, "--sld-guidance-scale") ||
                   !strcmp(a, "--sld-threshold") || !strcmp(a, "--sld-momentum-scale") ||
                   !strcmp(a, "--sld-mom-beta")) {
            if (cli_parse_float(v, &f))
                return cli_usage_error("i2p generate", "%s wants a number, not '%s'", a, v);
            if (!strcmp(a, "--cfg"))
                o.gen.cfg = (float)f;
            else if (!strcmp(a, "--sld-guidance-scale"))
                o.sld_override.guidance_scale = (float)f;
            else if (!strcmp(a, "--sld-threshold"))
                o.sld_override.threshold = (float)f;
            else if (!strcmp(a, "--sld-momentum-scale"))
                o.sld_override.momentum_scale = (float)f;
            else
                o.sld_override.mom_beta = (float)f;
        } else
            return cli_usage_error("i2p generate", "unknown option '%s'", a);
    }
    if (!o.prompts || !model || !o.out_dir)
        return cli_usage_error("i2p generate", "--prompts, --model and --out are required");
    o.model_label = model;
    sld_error err;
    sld_i2p_plan plan;
    if (sld_i2p_plan_get(&o, &plan, &err))
        return cli_fail(&err);
    if (dry)
        printf("plan: %d rows x %d configs x %d images = %ld images; %ld already done, %ld to "
               "make in %ld batches of up to %d\n",
               plan.rows, plan.configs, o.n_images, plan.images_total, plan.images_done,
               plan.images_todo, plan.batches_todo, o.batch);
    if (plan.images_todo == 0) {
        if (dry)
            return stdout_failed();
        if (!dry)
            fprintf(stderr, "sld i2p generate: nothing to do (%ld images already made)\n",
                    plan.images_done);
        return 0;
    }
    sld_model *m;
    if (sld_model_open(&m, model, NULL, &err))
        return cli_fail(&err);
    sld_ctx *c;
    if (sld_ctx_new(&c, m, threads, &err)) {
        sld_model_close(m);
        return cli_fail(&err);
    }
    int rc = 0;
    if (dry) {
        rc = estimate(c, &o, &plan);
        rc |= stdout_failed();
    } else {
        if (!quiet)
            o.progress = progress_line;
        if (sld_i2p_generate(c, &o, &err))
            rc = cli_fail(&err);
    }
    sld_ctx_free(c);
    sld_model_close(m);
    return rc;
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
            return cli_usage_error("i2p eval", "%s needs a value", a);
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
    if (!quiet)
        o.progress = progress_line;
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
            return cli_usage_error("i2p report", "%s needs a value", a);
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
    const char *usage = "usage: sld i2p generate|eval|report [options] (--help on each)\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "generate"))
        return cmd_generate_i2p(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval"))
        return cmd_eval_i2p(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report"))
        return cmd_report_i2p(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "sld i2p: unknown subcommand '%s'\n%s", argv[1], usage);
    return 2;
}
