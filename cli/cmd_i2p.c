/* cmd_i2p.c — `sld i2p generate|eval|report`: the I2P test bed (docs/I2P.md). */
#include "cli.h"

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
    "usage: sld i2p report (--run RUN_DIR | --from-annotations CSV) [--json FILE] "
    "[--html FILE]\n";

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
            return cli_missing_value("i2p generate", a, USAGE_GEN, NULL);
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
    if (!quiet)
        o.progress = progress_line;
    sld_error err;
    if (sld_i2p_eval(&o, &err))
        return cli_fail(&err);
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "sld: %s: cannot write\n", path);
        return 1;
    }
    return 0;
}

static int cmd_report_i2p(int argc, char **argv)
{
    const char *run = NULL, *ann = NULL, *json = NULL, *html = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_REPORT, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return cli_missing_value("i2p report", a, USAGE_REPORT, NULL);
        const char *v = argv[++i];
        if (!strcmp(a, "--run"))
            run = v;
        else if (!strcmp(a, "--from-annotations"))
            ann = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--html"))
            html = v;
        else
            return cli_usage_error("i2p report", "unknown option '%s'", a);
    }
    if (!run == !ann)
        return cli_usage_error("i2p report", "give one of --run or --from-annotations");
    sld_error err;
    sld_i2p_report *r;
    if (run ? sld_i2p_report_from_run(&r, run, &err)
            : sld_i2p_report_from_annotations(&r, ann, &err))
        return cli_fail(&err);
    int rc = 0;
    char *md = sld_i2p_report_markdown(r);
    if (md)
        fputs(md, stdout);
    else
        rc = 1;
    free(md);
    if (json) {
        char *s = sld_i2p_report_json(r);
        rc |= s ? write_text(json, s) : 1;
        free(s);
    }
    if (html) {
        char *s = sld_i2p_report_html(r);
        rc |= s ? write_text(html, s) : 1;
        free(s);
    }
    sld_i2p_report_free(r);
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
