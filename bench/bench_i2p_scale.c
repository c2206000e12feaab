/*
 * bench_i2p_scale.c — the I2P bookkeeping at the paper's size, without the
 * images: 4703 prompts x 5 configs x 10 images = 235,150 generate records and
 * (almost) as many eval records, as a 16-shard job array leaves them.
 *
 * The run folder is fabricated once into $SLD_BENCH_I2P_DIR (default
 * /tmp/sld-bench-i2p, about 270 MB of logs; the images are hard links to 50
 * tiny PNGs, so they cost directory entries only) and reused while its
 * format version matches. Everything about the fabricated files lives in the
 * "fabricator" section below, so a change of the record format is one place
 * to adapt.
 *
 * Cases (each in its own child process so that rss_mib is its own peak;
 * threads = 1, precision "-"):
 *   i2p_plan_235k        sld_i2p_plan_get: resume planning, what
 *                        `sld i2p generate --dry-run` does before its estimate
 *   i2p_generate_resume_235k  sld_i2p_generate_with on the finished folder: the
 *                        real run's resume scan (nothing left to make)
 *   i2p_eval_decide_235k sld_i2p_eval_with on the folder where eval shard 15
 *                        lacks its last FAB_EVAL_MISSING records: reads every
 *                        generate and eval log, decides what is left, labels
 *                        one image with a fake classifier and stops
 *   i2p_report_235k      sld_i2p_report_from_run (EMI exact + the 10,000-draw
 *                        bootstrap per config and category) and the Markdown,
 *                        JSON and HTML renderings
 *   cli_dry_run_235k     `sld i2p generate --dry-run` as a process (wait4)
 *   cli_report_235k      `sld i2p report --run ... --json ...` as a process
 * Targets (issue 13): each <= 10 s and <= 500 MiB.
 *
 * Validation before timing: the plan counts, the eval runner's done/left
 * counts and the report's per-config image counts and P(inappropriate) must
 * equal what the fabricator wrote; a mismatch exits 1.
 *
 * The run's manifest.json is written through the library for the tiny test
 * model (tests/fixtures/models/tiny-sd1 beside the build folder, or
 * $SLD_BENCH_I2P_MODEL), as `sld i2p generate` writes it: without one, plan,
 * resume and the CLI refuse the folder.
 *
 * Usage: bench_i2p_scale [--case NAME] [--refab]   (from any folder)
 */
#include "common.h"
#include "eval/i2p.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

/* ===================================================================== */
/* Fabricator: the run folder's files. Adapt here when formats change.   */
/* ===================================================================== */

#define FAB_VERSION "sld-bench-i2p v2" /* v2: manifest.json */
#define FAB_ROWS 4703
#define FAB_IMAGES 10
#define FAB_BATCH 5
#define FAB_SHARDS 16
#define FAB_EVAL_MISSING 1000 /* eval shard FAB_SHARDS-1 stops this short */
/* The model the run names: the tiny test model (the bench makes no image,
 * but the run manifest records a real model's identity and the CLI case
 * opens it). $SLD_BENCH_I2P_MODEL overrides it. */
static char g_model[4096];
#define FAB_MODEL g_model

static const char *const FAB_CONFIGS[5] = {"sd", "weak", "medium", "strong", "max"};
static const double FAB_SLD[5][5] = {
    /* guidance_scale, warmup_steps, threshold, momentum_scale, mom_beta */
    {0, 0, 0, 0, 0},        {200, 15, 0.0, 0, 0},      {1000, 10, 0.01, 0.3, 0.4},
    {2000, 7, 0.025, 0.5, 0.7}, {5000, 0, 1.0, 0.5, 0.7}};
static const char *const FAB_CATS[7] = {"hate",   "harassment", "violence",        "self-harm",
                                        "sexual", "shocking",   "illegal activity"};
static const char *const FAB_WORDS[16] = {
    "portrait", "dark",  "city",   "oil painting", "crowd", "trending on artstation", "blood",
    "night",    "storm", "ruined", "detailed",     "man",   "woman",                  "cinematic",
    "knife",    "fire"};

static uint64_t fab_hash(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Every 20th row repeats the previous row's prompt (I2P has duplicates). */
static int fab_prompt_row(int row) { return row % 20 == 19 ? row - 1 : row; }

static void fab_prompt(int row, char *buf, size_t cap)
{
    int r = fab_prompt_row(row);
    int n = snprintf(buf, cap, "fabricated prompt %d", r);
    uint64_t h = fab_hash((uint64_t)r);
    for (int i = 0; i < 8 && n > 0 && (size_t)n < cap; i++, h >>= 4)
        n += snprintf(buf + n, cap - (size_t)n, ", %s", FAB_WORDS[h & 15]);
}

/* 1-3 categories of the row, as indices into FAB_CATS; returns the count. */
static int fab_cats(int row, int *out)
{
    uint64_t h = fab_hash((uint64_t)fab_prompt_row(row) * 31 + 7);
    int n = 1 + (int)(h % 3), k = 0;
    for (int i = 0; i < 7 && k < n; i++)
        if ((h >> (8 + i)) & 1 || 7 - i <= n - k)
            out[k++] = i;
    return k;
}

/* The image's label: configs become safer from sd to max. */
static int fab_inappropriate(int row, int cfg, int image)
{
    static const int pct[5] = {39, 27, 20, 14, 9};
    return (int)(fab_hash(((uint64_t)row * 5 + (uint64_t)cfg) * 16 + (uint64_t)image) % 100) <
           pct[cfg];
}

/* Is (row, cfg, image) in the eval logs? All but the last FAB_EVAL_MISSING
 * records of the last shard. */
static int fab_last_shard_kept(void)
{
    int rows = 0;
    for (int r = FAB_SHARDS - 1; r < FAB_ROWS; r += FAB_SHARDS)
        rows++;
    return rows * 5 * FAB_IMAGES - FAB_EVAL_MISSING;
}

static void fab_categories_json(FILE *f, int row)
{
    int c[7], n = fab_cats(row, c);
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\"%s\"", i ? "," : "", FAB_CATS[c[i]]);
    fputc(']', f);
}

static uint32_t fab_seed(int row) { return (uint32_t)(fab_hash((uint64_t)row) % 4294967295u); }

/* One generate record, the keys and order of src/eval/i2p.c's gen_record. */
static void fab_generate_record(FILE *f, int row, int cfg, int image)
{
    char prompt[512];
    fab_prompt(row, prompt, sizeof prompt);
    fprintf(f, "{\"row\":%d,\"prompt\":\"%s\",\"categories\":", row, prompt);
    fab_categories_json(f, row);
    const double *s = FAB_SLD[cfg];
    fprintf(f,
            ",\"hard\":%d,\"config\":\"%s\",\"image\":%d,\"seed\":%u,\"steps\":50,\"cfg\":7.5,"
            "\"sampler\":\"pndm\",\"width\":512,\"height\":512,\"batch_size\":%d,\"sld\":{"
            "\"guidance_scale\":%g,\"warmup_steps\":%g,\"threshold\":%g,\"momentum_scale\":%g,"
            "\"mom_beta\":%g},\"safety_concept\":\"%s\",\"file\":\"images/%s/%d_%d.png\","
            "\"model\":\"%s\"}\n",
            row % 3 == 0, FAB_CONFIGS[cfg], image, fab_seed(row), FAB_BATCH, s[0], s[1], s[2],
            s[3], s[4], SLD_DEFAULT_SAFETY_CONCEPT, FAB_CONFIGS[cfg], row, image, FAB_MODEL);
}

/* One eval record, the keys and order of src/eval/i2p.c's eval_record. */
static void fab_eval_record(FILE *f, int row, int cfg, int image)
{
    char prompt[512];
    fab_prompt(row, prompt, sizeof prompt);
    int u = fab_inappropriate(row, cfg, image);
    fprintf(f, "{\"row\":%d,\"prompt\":\"%s\",\"categories\":", row, prompt);
    fab_categories_json(f, row);
    fprintf(f,
            ",\"hard\":%d,\"config\":\"%s\",\"image\":%d,\"seed\":%u,\"file\":"
            "\"images/%s/%d_%d.png\",\"q16_prob\":%.4f,\"q16_label\":%d,\"nudenet\":[%s],"
            "\"nude\":false,\"inappropriate\":%d}\n",
            row % 3 == 0, FAB_CONFIGS[cfg], image, fab_seed(row), FAB_CONFIGS[cfg], row, image,
            u ? 0.8 : 0.1, u,
            image % 4 == 0 ? "{\"label\":\"FACE_FEMALE\",\"score\":0.71,\"box\":[10,20,30,40]}"
                           : "",
            u);
}

static char *fab_path(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *fab_path(const char *dir, const char *fmt, ...)
{
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    int n = snprintf(b, sizeof buf[0], "%s/", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, sizeof buf[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

/* Writes eval-K-of-N.jsonl for shard k afresh (the eval case appends to the
 * last one, so it is rewritten before each run). */
static int fab_write_eval_shard(const char *run, int k)
{
    FILE *f = fopen(fab_path(run, "eval-%d-of-%d.jsonl", k, FAB_SHARDS), "w");
    if (!f)
        return -1;
    int limit = k == FAB_SHARDS - 1 ? fab_last_shard_kept() : -1, n = 0;
    for (int r = k; r < FAB_ROWS; r += FAB_SHARDS)
        for (int c = 0; c < 5; c++)
            for (int i = 0; i < FAB_IMAGES; i++, n++)
                if (limit < 0 || n < limit)
                    fab_eval_record(f, r, c, i);
    return fclose(f) == 0 ? 0 : -1;
}

static int fab_mkdir(const char *p) { return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1; }

/* The options every case (and the fabricated manifest) uses. */
static void gen_opts(sld_i2p_gen_opts *o, const char *dir)
{
    static char prompts[4096], out[4096];
    snprintf(prompts, sizeof prompts, "%s/prompts.csv", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    sld_i2p_gen_opts_default(o);
    o->prompts = prompts;
    o->out_dir = out;
    o->model_label = FAB_MODEL;
}

/* DIR/run/manifest.json as `sld i2p generate` writes it for these options,
 * built by the library with the model open (so the CLI case, which opens
 * the model too, finds every field equal). */
static int fab_manifest(const char *dir)
{
    sld_i2p_gen_opts o;
    gen_opts(&o, dir);
    sld_error err;
    sld_model *m = NULL;
    sld_i2p_set *set = NULL;
    sld_i2p_config cfg[SLD_I2P_MAX_CONFIGS];
    int n_cfg = 0;
    cJSON *man = NULL;
    sld_status st = sld_model_open(&m, g_model, NULL, &err);
    if (!st)
        st = sld_i2p_set_load(&set, o.prompts, &o.filter, &err);
    if (!st && (n_cfg = sld_i2p_configs_resolve(&o, cfg, &err)) < 0) {
        n_cfg = 0;
        st = err.code ? err.code : SLD_ERR_INVALID_ARG;
    }
    o.model = m;
    if (!st)
        st = sld_i2p_manifest_build(&o, set, cfg, n_cfg, NULL, &man, &err);
    int existed = 0;
    if (!st)
        st = sld_i2p_manifest_write(fab_path(o.out_dir, SLD_I2P_MANIFEST), man, 1, &existed,
                                    &err);
    if (!st && n_cfg != 5)
        st = sld_err(&err, SLD_ERR_INTERNAL, "the default configs are not the 5 fabricated");
    for (int c = 0; !st && c < n_cfg; c++)
        if (strcmp(cfg[c].name, FAB_CONFIGS[c]))
            st = sld_err(&err, SLD_ERR_INTERNAL, "default config %d is %s, fabricated %s", c,
                         cfg[c].name, FAB_CONFIGS[c]);
    if (st)
        fprintf(stderr, "bench_i2p_scale: manifest: %s\n", err.msg);
    cJSON_Delete(man);
    sld_i2p_configs_free(cfg, n_cfg);
    sld_i2p_set_free(set);
    sld_model_close(m);
    return st ? -1 : 0;
}

/* Fabricates DIR/prompts.csv and DIR/run/ unless DIR/fab-version says it is
 * there already. */
static int fabricate(const char *dir, int force)
{
    char ver[64] = "";
    FILE *vf = fopen(fab_path(dir, "fab-version"), "r");
    if (vf) {
        if (!fgets(ver, sizeof ver, vf))
            ver[0] = 0;
        fclose(vf);
    }
    ver[strcspn(ver, "\n")] = 0;
    char run[4096];
    snprintf(run, sizeof run, "%s/run", dir);
    if (!force && !strcmp(ver, FAB_VERSION))
        return 0;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0 || fab_mkdir(dir) || fab_mkdir(run) ||
        fab_mkdir(fab_path(run, "images")))
        return -1;
    double t0 = sld_time_now();
    fprintf(stderr, "bench_i2p_scale: fabricating %d x 5 x %d records in %s\n", FAB_ROWS,
            FAB_IMAGES, dir);
    /* The prompt set: the I2P CSV's columns that sld reads. */
    FILE *f = fopen(fab_path(dir, "prompts.csv"), "w");
    if (!f)
        return -1;
    fprintf(f, "prompt,categories,hard,inappropriate_percentage,sd_seed,sd_guidance_scale,"
               "sd_image_width,sd_image_height\n");
    for (int r = 0; r < FAB_ROWS; r++) {
        char prompt[512];
        fab_prompt(r, prompt, sizeof prompt);
        int c[7], n = fab_cats(r, c);
        fprintf(f, "\"%s\",\"", prompt);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? ", " : "", FAB_CATS[c[i]]);
        fprintf(f, "\",%d,%d,%u,7,512,512\n", r % 3 == 0, (int)(fab_hash((uint64_t)r) % 11) * 10,
                fab_seed(r));
    }
    if (fclose(f))
        return -1;
    if (fab_manifest(dir))
        return -1;
    /* Images: one tiny PNG per (config, image index), hard-linked for every
     * row (ext4 allows 65,000 links per file; this needs 4703). */
    uint8_t px[8 * 8 * 3];
    for (int i = 0; i < (int)sizeof px; i++)
        px[i] = (uint8_t)(i * 37);
    sld_error err;
    for (int c = 0; c < 5; c++) {
        if (fab_mkdir(fab_path(run, "images/%s", FAB_CONFIGS[c])))
            return -1;
        for (int i = 0; i < FAB_IMAGES; i++) {
            char src[4096];
            snprintf(src, sizeof src, "%s", fab_path(dir, "tiny-%s-%d.png", FAB_CONFIGS[c], i));
            if (sld_png_write(src, px, 8, 8, NULL, &err)) {
                fprintf(stderr, "bench_i2p_scale: %s\n", err.msg);
                return -1;
            }
            for (int r = 0; r < FAB_ROWS; r++)
                if (link(src, fab_path(run, "images/%s/%d_%d.png", FAB_CONFIGS[c], r, i))) {
                    fprintf(stderr, "bench_i2p_scale: link: %s\n", strerror(errno));
                    return -1;
                }
        }
    }
    /* Logs: one generate and one eval log per shard, records in the order a
     * shard writes them (row, config, image). */
    for (int k = 0; k < FAB_SHARDS; k++) {
        f = fopen(fab_path(run, "generate-%d-of-%d.jsonl", k, FAB_SHARDS), "w");
        if (!f)
            return -1;
        for (int r = k; r < FAB_ROWS; r += FAB_SHARDS)
            for (int c = 0; c < 5; c++)
                for (int i = 0; i < FAB_IMAGES; i++)
                    fab_generate_record(f, r, c, i);
        if (fclose(f) || fab_write_eval_shard(run, k))
            return -1;
    }
    vf = fopen(fab_path(dir, "fab-version"), "w");
    if (!vf || fprintf(vf, "%s\n", FAB_VERSION) < 0 || fclose(vf))
        return -1;
    fprintf(stderr, "bench_i2p_scale: fabricated in %.1f s\n", sld_time_now() - t0);
    return 0;
}

/* What the fabricated eval logs hold, per config: images, inappropriate. */
static void fab_expected(long *images, long *inap)
{
    for (int c = 0; c < 5; c++)
        images[c] = inap[c] = 0;
    for (int k = 0; k < FAB_SHARDS; k++) {
        int limit = k == FAB_SHARDS - 1 ? fab_last_shard_kept() : -1, n = 0;
        for (int r = k; r < FAB_ROWS; r += FAB_SHARDS)
            for (int c = 0; c < 5; c++)
                for (int i = 0; i < FAB_IMAGES; i++, n++)
                    if (limit < 0 || n < limit) {
                        images[c]++;
                        inap[c] += fab_inappropriate(r, c, i);
                    }
    }
}

/* ===================================================================== */
/* Cases                                                                 */
/* ===================================================================== */

#define TOTAL_IMAGES ((long)FAB_ROWS * 5 * FAB_IMAGES)
#define TARGET_SECONDS 10.0
#define TARGET_MIB 500.0

static int g_bad;

/* CPU seconds (user + system) of this process, or of its waited-for
 * children when children != 0: on a loaded machine the wall time mostly
 * measures the queue for a core, the CPU time the work. */
static double cpu_seconds(int children)
{
    struct rusage ru;
    getrusage(children ? RUSAGE_CHILDREN : RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void verdict(const char *name, double s, double cpu, double mib)
{
    int ok = s <= TARGET_SECONDS && mib <= TARGET_MIB;
    fprintf(stderr,
            "bench_i2p_scale: %s: %.2f s wall, %.2f s CPU, %.0f MiB: %s (targets %.0f s, "
            "%.0f MiB)\n",
            name, s, cpu, mib, ok ? "meets the targets" : "MISSES a target", TARGET_SECONDS,
            TARGET_MIB);
}


static int case_plan(const char *dir)
{
    sld_i2p_gen_opts o;
    gen_opts(&o, dir);
    sld_i2p_plan p;
    sld_error err;
    double t0 = sld_time_now(), c0 = cpu_seconds(0);
    sld_status st = sld_i2p_plan_get(&o, &p, &err);
    double s = sld_time_now() - t0;
    if (st) {
        fprintf(stderr, "i2p_plan: %s\n", err.msg);
        return 1;
    }
    if (p.rows != FAB_ROWS || p.images_total != TOTAL_IMAGES || p.images_done != TOTAL_IMAGES ||
        p.images_todo != 0) {
        fprintf(stderr, "i2p_plan: rows %d, total %ld, done %ld, todo %ld; expected %d, %ld, %ld, 0\n",
                p.rows, p.images_total, p.images_done, p.images_todo, FAB_ROWS, TOTAL_IMAGES,
                TOTAL_IMAGES);
        return 1;
    }
    double mib = bench_peak_rss_mib();
    bench_csv_line(1, "-", "i2p_plan_235k", s, 0, (double)p.images_done, mib);
    verdict("i2p_plan_235k", s, cpu_seconds(0) - c0, mib);
    return 0;
}

static sld_status fake_generate(void *user, const sld_gen_params *p, sld_gen_result *out,
                                sld_error *err)
{
    (void)p;
    (void)out;
    ++*(int *)user;
    return sld_err(err, SLD_ERR_INTERNAL, "bench: nothing should be generated");
}

/* The real run's resume: sld_i2p_generate_with on the finished folder
 * scans the logs and finds nothing to make. */
static int case_resume(const char *dir)
{
    sld_i2p_gen_opts o;
    gen_opts(&o, dir);
    sld_error err;
    int calls = 0;
    double t0 = sld_time_now(), c0 = cpu_seconds(0);
    sld_status st = sld_i2p_generate_with(fake_generate, &calls, &o, &err);
    double s = sld_time_now() - t0, cpu = cpu_seconds(0) - c0;
    if (st || calls) {
        fprintf(stderr, "i2p_generate_resume: %s, %d generator calls; expected none\n",
                st ? err.msg : "ok", calls);
        return 1;
    }
    double mib = bench_peak_rss_mib();
    bench_csv_line(1, "-", "i2p_generate_resume_235k", s, 0, 0, mib);
    verdict("i2p_generate_resume_235k", s, cpu, mib);
    return 0;
}

typedef struct {
    long todo, skipped;
    int calls;
} eval_probe;

static sld_status fake_classify(void *user, const uint8_t *rgb, int w, int h,
                                sld_i2p_labels *out, sld_error *err)
{
    (void)rgb;
    (void)err;
    eval_probe *p = user;
    p->calls++;
    out->q16_prob = (float)(w * h) / 1000.0f;
    out->q16_label = 0;
    return SLD_OK;
}

static int stop_after_one(const sld_i2p_progress *p, void *user)
{
    eval_probe *e = user;
    e->todo = p->todo;
    e->skipped = p->skipped;
    return 1;
}

static int case_eval(const char *dir)
{
    char run[4096];
    snprintf(run, sizeof run, "%s/run", dir);
    sld_i2p_eval_opts o;
    sld_i2p_eval_opts_default(&o);
    o.run_dir = run;
    eval_probe probe = {0};
    o.progress = stop_after_one;
    o.progress_user = &probe;
    sld_error err;
    double t0 = sld_time_now(), c0 = cpu_seconds(0);
    sld_status st = sld_i2p_eval_with(&o, fake_classify, &probe, &err);
    double s = sld_time_now() - t0;
    if (st != SLD_ERR_CANCELLED || probe.calls != 1 || probe.todo != FAB_EVAL_MISSING ||
        probe.skipped != TOTAL_IMAGES - FAB_EVAL_MISSING) {
        fprintf(stderr, "i2p_eval: status %d (%s), %d classifier calls, %ld to do, %ld done; "
                "expected a stop after 1 call, %d to do, %ld done\n",
                (int)st, st ? err.msg : "", probe.calls, probe.todo, probe.skipped,
                FAB_EVAL_MISSING, TOTAL_IMAGES - FAB_EVAL_MISSING);
        return 1;
    }
    double mib = bench_peak_rss_mib();
    bench_csv_line(1, "-", "i2p_eval_decide_235k", s, 0, (double)probe.skipped, mib);
    verdict("i2p_eval_decide_235k", s, cpu_seconds(0) - c0, mib);
    return 0;
}

static int case_report(const char *dir)
{
    char run[4096];
    snprintf(run, sizeof run, "%s/run", dir);
    sld_i2p_report *r;
    sld_error err;
    double t0 = sld_time_now(), c0 = cpu_seconds(0);
    sld_status st = sld_i2p_report_from_run(&r, run, &err);
    char *md = st ? NULL : sld_i2p_report_markdown(r);
    char *js = st ? NULL : sld_i2p_report_json(r);
    char *html = st ? NULL : sld_i2p_report_html(r);
    double s = sld_time_now() - t0, cpu = cpu_seconds(0) - c0;
    if (st || !md || !js || !html) {
        fprintf(stderr, "i2p_report: %s\n", st ? err.msg : "a rendering failed");
        free(md);
        free(js);
        free(html);
        if (!st)
            sld_i2p_report_free(r);
        return 1;
    }
    long images[5], inap[5];
    fab_expected(images, inap);
    int bad = 0;
    double check = 0;
    for (int c = 0; c < 5; c++) {
        sld_i2p_metric m;
        double want = (double)inap[c] / (double)images[c];
        if (!sld_i2p_report_get(r, FAB_CONFIGS[c], "all", &m) || m.images != images[c] ||
            fabs(m.prob - want) > 1e-12 || !(m.emi_exact > 0 && m.emi_exact <= 1)) {
            fprintf(stderr, "i2p_report: %s/all: %ld images, P %.6f; expected %ld, %.6f\n",
                    FAB_CONFIGS[c], m.images, m.prob, images[c], want);
            bad = 1;
        }
        check += m.prob + m.emi_exact + m.emi_bootstrap_mean;
    }
    free(md);
    free(js);
    free(html);
    sld_i2p_report_free(r);
    if (bad)
        return 1;
    double mib = bench_peak_rss_mib();
    bench_csv_line(1, "-", "i2p_report_235k", s, 0, check, mib);
    verdict("i2p_report_235k", s, cpu, mib);
    return 0;
}

/* Runs build/sld with args, times it and reads its peak RSS from wait4. */
static int case_cli(const char *name, char *const argv[])
{
    fflush(stdout);
    fflush(stderr);
    double t0 = sld_time_now(), c0 = cpu_seconds(1);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int stw = 0;
    struct rusage ru;
    if (wait4(pid, &stw, 0, &ru) < 0 || !WIFEXITED(stw) || WEXITSTATUS(stw) != 0) {
        fprintf(stderr, "%s: %s failed (status %d)\n", name, argv[0], stw);
        return 1;
    }
    double s = sld_time_now() - t0, mib = ru.ru_maxrss / 1024.0;
    bench_csv_line(1, "-", name, s, 0, 0, mib);
    verdict(name, s, cpu_seconds(1) - c0, mib);
    return 0;
}

static int run_case(const char *name, const char *dir)
{
    /* The eval case appends a record to eval.jsonl: restore the folder. */
    char run0[4096];
    snprintf(run0, sizeof run0, "%s/run", dir);
    if (fab_write_eval_shard(run0, FAB_SHARDS - 1) ||
        (unlink(fab_path(run0, "eval.jsonl")) != 0 && errno != ENOENT))
        return 1;
    if (!strcmp(name, "i2p_plan_235k"))
        return case_plan(dir);
    if (!strcmp(name, "i2p_generate_resume_235k"))
        return case_resume(dir);
    if (!strcmp(name, "i2p_eval_decide_235k"))
        return case_eval(dir);
    if (!strcmp(name, "i2p_report_235k"))
        return case_report(dir);
    char sld[4096], csv[4200], run[4200], json[4200];
    ssize_t k = readlink("/proc/self/exe", sld, sizeof sld - 16);
    if (k <= 0)
        return 1;
    sld[k] = 0;
    char *slash = strrchr(sld, '/');
    if (!slash)
        return 1;
    strcpy(slash, "/../sld"); /* build/bench/.. */
    snprintf(csv, sizeof csv, "%s/prompts.csv", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(json, sizeof json, "%s/report.json", dir);
    if (!strcmp(name, "cli_dry_run_235k")) {
        char *argv[] = {sld,    "i2p",   "generate", "--prompts", csv,        "--model",
                        FAB_MODEL, "--out", run,        "--dry-run", "--quiet", NULL};
        return case_cli(name, argv);
    }
    if (!strcmp(name, "cli_report_235k")) {
        char *argv[] = {sld, "i2p", "report", "--run", run, "--json", json, NULL};
        return case_cli(name, argv);
    }
    fprintf(stderr, "bench_i2p_scale: unknown case '%s'\n", name);
    return 2;
}

static const char *const CASES[] = {"i2p_plan_235k",   "i2p_generate_resume_235k",
                                    "i2p_eval_decide_235k", "i2p_report_235k",
                                    "cli_dry_run_235k", "cli_report_235k"};

int main(int argc, char **argv)
{
    const char *one = NULL, *child = NULL;
    int refab = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--case") && i + 1 < argc)
            one = argv[++i];
        else if (!strcmp(argv[i], "--child") && i + 1 < argc)
            child = argv[++i];
        else if (!strcmp(argv[i], "--refab"))
            refab = 1;
        else {
            fprintf(stderr, "usage: bench_i2p_scale [--case NAME] [--refab]\n");
            return 2;
        }
    }
    const char *model = getenv("SLD_BENCH_I2P_MODEL");
    if (model && *model) {
        snprintf(g_model, sizeof g_model, "%s", model);
    } else {
        char exe[4096];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 64);
        char *slash = k > 0 ? (exe[k] = 0, strrchr(exe, '/')) : NULL;
        if (slash) /* build/bench/.. /.. */
            strcpy(slash, "/../../tests/fixtures/models/tiny-sd1");
        if (!slash || !realpath(exe, g_model)) {
            fprintf(stderr, "bench_i2p_scale: no tiny model next to the build folder; set "
                            "SLD_BENCH_I2P_MODEL\n");
            return 1;
        }
    }
    const char *dir = getenv("SLD_BENCH_I2P_DIR");
    if (!dir || !*dir)
        dir = "/tmp/sld-bench-i2p";
    if (child)
        return run_case(child, dir);
    if (fabricate(dir, refab)) {
        fprintf(stderr, "bench_i2p_scale: cannot fabricate the run folder in %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    bench_csv_header();
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        if (one && strcmp(one, CASES[i]))
            continue;
        char *cargv[] = {argv[0], "--child", (char *)CASES[i], NULL};
        if (bench_spawn(cargv, 0) != 0) {
            fprintf(stderr, "bench_i2p_scale: case %s failed\n", CASES[i]);
            g_bad = 1;
        }
    }
    return g_bad;
}
