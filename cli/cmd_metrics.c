/* cmd_metrics.c — `sld metrics features|fid|clip-score`: the image-quality
 * and text-alignment building blocks (FID, KID, CLIP score; docs/QUALITY.md).
 * Numbers go to stdout (JSON lines for clip-score), --json writes a file. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: sld metrics <features|fid|clip-score> [options]\n"
    "  features   --inception PTH --images DIR -o OUT.safetensors [--stats OUT.npz]\n"
    "             pool3 features (a [2048] tensor per image, named by file stem)\n"
    "  fid A B    [--inception PTH] [--kid] [--kid-subsets N] [--kid-subset-size N]\n"
    "             [--kid-seed N] [--json FILE]\n"
    "             A, B: image folder | pytorch-fid .npz | .safetensors 'features' [N,D]\n"
    "  clip-score --clip DIR --pairs PAIRS.jsonl [--json FILE]\n"
    "             PAIRS: one {\"image\": PATH, \"prompt\": TEXT} per line (paths relative\n"
    "             to the file); prints each pair with \"score\" and \"clip_distance\"\n"
    "common:      [--threads N] [--quiet]\n";

static int progress_line(long done, long total, void *user)
{
    (void)user;
    fprintf(stderr, "\rsld: features %ld/%ld", done, total);
    if (done == total)
        fputc('\n', stderr);
    return 0;
}

static int features(int argc, char **argv)
{
    sld_features_opts o = {0};
    long long threads = 0;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (i + 1 >= argc)
            return cli_usage_error("metrics features", "'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--inception"))
            o.inception = v;
        else if (!strcmp(a, "--images"))
            o.images = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            o.out = v;
        else if (!strcmp(a, "--stats"))
            o.stats = v;
        else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &threads))
                return cli_usage_error("metrics features", "--threads wants 0..4096, not '%s'", v);
        } else
            return cli_usage_error("metrics features", "unknown option '%s'", a);
    }
    if (!o.inception || !o.images || (!o.out && !o.stats))
        return cli_usage_error("metrics features",
                               "--inception, --images and -o (or --stats) are required");
    o.n_threads = (int)threads;
    if (!quiet)
        o.progress = progress_line;
    sld_error err;
    long n;
    if (sld_metrics_features(&o, &n, &err))
        return cli_fail(&err);
    printf("{\"images\": %ld}\n", n);
    return 0;
}

static void json_num(char *buf, size_t cap, double v)
{
    if (isfinite(v))
        snprintf(buf, cap, "%.17g", v);
    else
        snprintf(buf, cap, "null");
}

static int fid(int argc, char **argv)
{
    sld_fid_opts o;
    sld_fid_opts_default(&o);
    const char *paths[2] = {NULL, NULL}, *json = NULL;
    int np = 0, quiet = 0;
    long long v64, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--kid")) {
            o.kid = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (np == 2)
                return cli_usage_error("metrics fid", "more than two inputs ('%s')", a);
            paths[np++] = a;
            continue;
        }
        if (i + 1 >= argc)
            return cli_usage_error("metrics fid", "'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--inception"))
            o.inception = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--kid-subsets")) {
            if (cli_parse_int(v, 1, 1000000, &v64))
                return cli_usage_error("metrics fid", "--kid-subsets wants 1..1000000, not '%s'", v);
            o.kid_subsets = (int)v64;
        } else if (!strcmp(a, "--kid-subset-size")) {
            if (cli_parse_int(v, 2, 100000, &v64))
                return cli_usage_error("metrics fid", "--kid-subset-size wants 2..100000, not '%s'", v);
            o.kid_subset_size = (long)v64;
        } else if (!strcmp(a, "--kid-seed")) {
            if (cli_parse_int(v, 0, 4294967295LL, &v64))
                return cli_usage_error("metrics fid", "--kid-seed wants 0..2^32-1, not '%s'", v);
            o.kid_seed = (uint32_t)v64;
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &threads))
                return cli_usage_error("metrics fid", "--threads wants 0..4096, not '%s'", v);
        } else
            return cli_usage_error("metrics fid", "unknown option '%s'", a);
    }
    if (np != 2)
        return cli_usage_error("metrics fid", "needs two inputs A and B");
    o.n_threads = (int)threads;
    if (!quiet)
        o.progress = progress_line;
    sld_error err;
    sld_fid_result r;
    if (sld_metrics_fid(paths[0], paths[1], &o, &r, &err))
        return cli_fail(&err);
    char f[32], km[32], ks[32];
    json_num(f, sizeof f, r.fid);
    json_num(km, sizeof km, r.kid_mean);
    json_num(ks, sizeof ks, r.kid_std);
    printf("FID %.6f\n", r.fid);
    if (o.kid)
        printf("KID %.6g +- %.6g (%d subsets of %ld)\n", r.kid_mean, r.kid_std, o.kid_subsets,
               o.kid_subset_size);
    printf("samples %ld %ld, dims %d\n", r.n_a, r.n_b, r.dims);
    if (json) {
        char na[32], nb[32], buf[512];
        snprintf(na, sizeof na, r.n_a ? "%ld" : "null", r.n_a);
        snprintf(nb, sizeof nb, r.n_b ? "%ld" : "null", r.n_b);
        snprintf(buf, sizeof buf,
                 "{\"fid\": %s, \"kid_mean\": %s, \"kid_std\": %s, \"n_a\": %s, \"n_b\": %s, "
                 "\"dims\": %d}\n",
                 f, km, ks, na, nb, r.dims);
        if (sld_text_write(json, buf, &err))
            return cli_fail(&err);
    }
    return 0;
}

static int clip_score(int argc, char **argv)
{
    const char *clip = NULL, *pairs = NULL, *json = NULL;
    long long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet"))
            continue;
        if (i + 1 >= argc)
            return cli_usage_error("metrics clip-score", "'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--clip"))
            clip = v;
        else if (!strcmp(a, "--pairs"))
            pairs = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &threads))
                return cli_usage_error("metrics clip-score", "--threads wants 0..4096, not '%s'", v);
        } else
            return cli_usage_error("metrics clip-score", "unknown option '%s'", a);
    }
    if (!clip || !pairs)
        return cli_usage_error("metrics clip-score", "--clip and --pairs are required");
    sld_error err;
    sld_clip_score_result r;
    if (sld_metrics_clip_score(clip, pairs, (int)threads, &r, &err))
        return cli_fail(&err);
    for (int i = 0; i < r.n; i++)
        printf("%s\n", r.records[i]);
    printf("{\"score\": %.17g, \"score_std\": %.17g, \"clip_distance\": %.17g, \"n\": %d, "
           "\"truncated\": %d}\n",
           r.score, r.score_std, r.distance, r.n, r.n_truncated);
    int rc = 0;
    if (json) {
        char *s = sld_clip_score_result_json(&r);
        if (!s) {
            fprintf(stderr, "sld: out of memory\n");
            rc = 1;
        } else if (sld_text_write(json, s, &err)) {
            rc = cli_fail(&err);
        }
        free(s);
    }
    sld_clip_score_result_free(&r);
    return rc;
}

int cmd_metrics(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
    if (!strcmp(argv[1], "features"))
        return features(argc - 1, argv + 1);
    if (!strcmp(argv[1], "fid"))
        return fid(argc - 1, argv + 1);
    if (!strcmp(argv[1], "clip-score"))
        return clip_score(argc - 1, argv + 1);
    fprintf(stderr, "sld metrics: unknown subcommand '%s'\n%s", argv[1], USAGE);
    return 2;
}
