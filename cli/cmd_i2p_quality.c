/* cmd_i2p_quality.c — `sld i2p quality` and `sld i2p quality-report`: the
 * image-quality side of a study run (FID, KID, CLIP score; docs/QUALITY.md). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE_QUALITY =
    "usage: sld i2p quality --run RUN_DIR --inception PTH --clip DIR --reference DIR|NPZ "
    "[options]\n"
    "  --run RUN_DIR            a run folder made by 'sld i2p generate'\n"
    "  --inception PTH          pytorch-fid's pt_inception-2015-12-05-6726825d.pth\n"
    "  --clip DIR               a full CLIP model folder (openai/clip-vit-large-patch14)\n"
    "  --reference DIR|NPZ      real images (PNG, JPEG; features computed once, cached in\n"
    "                           the run) or pytorch-fid statistics (.npz: FID only, no KID)\n"
    "  --shard K/N              images of rows with row % N == K (own file)\n"
    "  --threads N  --quiet\n"
    "Caches, per image, the Inception pool3 features and the CLIP image and prompt\n"
    "embeddings in RUN_DIR/quality/; rerunning computes only the missing images. The files\n"
    "used are kept in RUN_DIR/quality-manifest.json; other files are refused.\n";

static const char *USAGE_REPORT =
    "usage: sld i2p quality-report --run RUN_DIR [options]\n"
    "  --i2p RUN_DIR            take P(inappropriate) and EMI from this I2P run\n"
    "                           (default: RUN_DIR itself when 'sld i2p eval' labelled it)\n"
    "  --json FILE --html FILE --markdown FILE   also write these (atomically)\n"
    "  --kid-subset-size N      largest KID subset (1000; min(N, images) is used)\n"
    "  --threads N\n"
    "Per config: FID against the reference, KID mean +- std, CLIP score mean +- std and CLIP\n"
    "distance, next to P(inappropriate) and EMI. The Markdown report goes to stdout;\n"
    "warnings go to stderr and into every output; the HTML has the trade-off charts.\n";

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
    const char *slash = strchr(v, '/');
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

static int progress_line(const sld_i2p_progress *p, void *user)
{
    progress_state *ps = user;
    int end = p->done == p->todo;
    if (!ps->tty && !end && p->seconds - ps->last < 30)
        return 0;
    ps->last = p->seconds;
    double per = p->done ? p->seconds / p->done : 0;
    fprintf(stderr, "%s%ld/%ld images (%ld done before)  %s  %.2f s/image  ~%.0f min left%s",
            ps->tty ? "\r" : "", p->done, p->todo, p->skipped, p->config ? p->config : "", per,
            per * (p->todo - p->done) / 60, ps->tty ? "   " : "\n");
    if (ps->tty && end)
        fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

int cmd_i2p_quality(int argc, char **argv)
{
    sld_quality_eval_opts o;
    sld_quality_eval_opts_default(&o);
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_QUALITY, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (i + 1 >= argc)
            return cli_missing_value("i2p quality", a, USAGE_QUALITY, NULL);
        const char *v = argv[++i];
        long long n;
        if (!strcmp(a, "--run"))
            o.run_dir = v;
        else if (!strcmp(a, "--inception"))
            o.inception = v;
        else if (!strcmp(a, "--clip"))
            o.clip = v;
        else if (!strcmp(a, "--reference"))
            o.reference = v;
        else if (!strcmp(a, "--shard")) {
            if (parse_shard(v, &o.shard_k, &o.shard_n))
                return cli_usage_error("i2p quality", "--shard wants K/N with 0 <= K < N");
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &n))
                return cli_usage_error("i2p quality", "--threads wants 0..4096");
            o.n_threads = (int)n;
        } else
            return cli_usage_error("i2p quality", "unknown option '%s'", a);
    }
    if (!o.run_dir || !o.inception || !o.clip || !o.reference)
        return cli_usage_error("i2p quality",
                               "--run, --inception, --clip and --reference are required");
    progress_state ps = {.tty = isatty(2)};
    if (!quiet) {
        o.progress = progress_line;
        o.progress_user = &ps;
    }
    sld_error err;
    if (sld_quality_eval(&o, &err))
        return cli_fail(&err);
    return 0;
}

int cmd_i2p_quality_report(int argc, char **argv)
{
    sld_quality_report_opts o;
    sld_quality_report_opts_default(&o);
    const char *json = NULL, *html = NULL, *md = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_REPORT, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return cli_missing_value("i2p quality-report", a, USAGE_REPORT, NULL);
        const char *v = argv[++i];
        long long n;
        if (!strcmp(a, "--run"))
            o.run_dir = v;
        else if (!strcmp(a, "--i2p"))
            o.i2p_run = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--html"))
            html = v;
        else if (!strcmp(a, "--markdown"))
            md = v;
        else if (!strcmp(a, "--kid-subset-size")) {
            if (cli_parse_int(v, 2, 1000000, &n))
                return cli_usage_error("i2p quality-report", "--kid-subset-size wants 2..1000000");
            o.kid_subset_size = (long)n;
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &n))
                return cli_usage_error("i2p quality-report", "--threads wants 0..4096");
            o.n_threads = (int)n;
        } else
            return cli_usage_error("i2p quality-report", "unknown option '%s'", a);
    }
    if (!o.run_dir)
        return cli_usage_error("i2p quality-report", "--run is required");
    sld_error err;
    sld_quality_report *r = NULL;
    if (sld_quality_report_from_run(&r, &o, &err))
        return cli_fail(&err);
    int rc = 0;
    for (int i = 0; i < sld_quality_report_warning_count(r); i++)
        fprintf(stderr, "sld i2p quality-report: warning: %s\n", sld_quality_report_warning(r, i));
    char *text = sld_quality_report_markdown(r);
    if (text) {
        fputs(text, stdout);
        free(text);
        rc |= stdout_failed();
    } else {
        fprintf(stderr, "sld: out of memory rendering the report\n");
        rc = 1;
    }
    const struct {
        const char *path;
        sld_i2p_format fmt;
    } outs[] = {{json, SLD_I2P_FORMAT_JSON},
                {html, SLD_I2P_FORMAT_HTML},
                {md, SLD_I2P_FORMAT_MARKDOWN}};
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++)
        if (outs[k].path && sld_quality_report_save(r, outs[k].fmt, outs[k].path, &err))
            rc |= cli_fail(&err);
    sld_quality_report_free(r);
    return rc;
}
