/* test_coco_quality_e2e.c — the quality half of the paper's claim end to
 * end, through the `sld` command on the tiny models: a COCO captions file ->
 * `i2p generate` of two configs (sd and max) -> `i2p quality` (FID and KID
 * against a folder of "real" COCO images named as prompts.jsonl names them,
 * JPEG like COCO's; CLIP score of each image and its caption) ->
 * `i2p quality-report`. One run folder is killed (SIGKILL, mid-generate and
 * again mid-eval) and resumed by the command; the other is generated and
 * evaluated in two shards. Checked: every image and feature record exactly
 * once, the same pixels in both runs, the same report numbers in both
 * (byte-identical JSON results), and those numbers equal to the building
 * blocks run independently on the image folders (`sld metrics fid --kid`,
 * `sld metrics clip-score`). */
#include "eval/i2p.h"
#include "eval/study_quality.h"
#include "fid_fixture.h"
#include "io/json.h"
#include "io/png.h"
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIP_DIR "tests/fixtures/models/tiny-clip"
#define ROWS 4
#define IMAGES 2

static char tmpdir[256], g_sld[1100], captions[512], model[512], refdir[512];
static char run_killed[512], run_sharded[512];
static const char *CFGS[2] = {"sd", "max"};

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static cJSON *read_json(const char *path)
{
    char *t = NULL;
    if (sld_file_read(path, 1 << 24, &t, NULL, NULL))
        return NULL;
    cJSON *j = cJSON_Parse(t);
    sld_free(t);
    return j;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The generate options the command's flags below also give. */
static const char *GEN_FLAGS = "--configs sd,max --images 2 --batch 1 --width 64 --height 64 "
                               "--steps 2 --limit 4 --sample-seed 3 --quiet";

static void gen_opts(sld_i2p_gen_opts *o, const char *out)
{
    sld_i2p_gen_opts_default(o);
    o->prompts = captions;
    o->configs = "sd,max";
    o->n_images = IMAGES;
    o->batch = 1;
    o->gen.width = o->gen.height = 64;
    o->gen.steps = 2;
    o->model_label = model;
    o->filter.limit = ROWS;
    o->filter.sample_seed = 3;
    o->out_dir = out;
}

static long kill_after;
static int kill_cb(const sld_i2p_progress *p, void *user)
{
    (void)user;
    if (p->done >= kill_after)
        raise(SIGKILL); /* no cleanup, no flush: as a killed job */
    return 0;
}

/* Runs fn in a child that kills itself after n images; 1 when it was killed. */
static int killed_child(void (*fn)(void), long n)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        kill_after = n;
        fn();
        _exit(0); /* not reached when it was killed */
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
}

static void child_generate(void)
{
    sld_error err;
    sld_model *m;
    sld_ctx *c;
    if (sld_model_open(&m, model, NULL, &err) || sld_ctx_new(&c, m, 1, &err))
        _exit(3);
    sld_i2p_gen_opts o;
    gen_opts(&o, run_killed);
    o.progress = kill_cb;
    sld_i2p_generate(c, &o, &err);
    _exit(4);
}

static void child_quality(void)
{
    sld_error err;
    sld_quality_eval_opts o;
    sld_quality_eval_opts_default(&o);
    o.run_dir = run_killed;
    o.inception = fid_inception_weights();
    o.clip = CLIP_DIR;
    o.reference = refdir;
    o.n_threads = 1;
    o.progress = kill_cb;
    sld_quality_eval(&o, &err);
    _exit(4);
}

/* Counts the records of a run's logs per "config/row/image" key: n = all
 * records, dup = keys seen twice, bad = keys outside the plan. */
typedef struct {
    int n, dup, bad;
    int seen[2][ROWS][IMAGES];
} tally;

static int tally_record(const cJSON *obj, int line, void *user)
{
    (void)line;
    tally *t = user;
    char key[128];
    const char *cfg;
    t->n++;
    if (!sld_quality_record_key(obj, key, sizeof key, &cfg)) {
        t->bad++;
        return 0;
    }
    int ci = !strcmp(cfg, "sd") ? 0 : !strcmp(cfg, "max") ? 1 : -1;
    int row = cJSON_GetObjectItemCaseSensitive(obj, "row")->valueint;
    int img = cJSON_GetObjectItemCaseSensitive(obj, "image")->valueint;
    if (ci < 0 || row >= ROWS || img >= IMAGES) {
        t->bad++;
        return 0;
    }
    if (t->seen[ci][row][img]++)
        t->dup++;
    return 0;
}

static sld_status tally_file(const char *path, void *user, sld_error *err)
{
    return sld_jsonl_read(path, 1, tally_record, user, NULL, err);
}

static int complete(const tally *t)
{
    for (int c = 0; c < 2; c++)
        for (int r = 0; r < ROWS; r++)
            for (int k = 0; k < IMAGES; k++)
                if (t->seen[c][r][k] != 1)
                    return 0;
    return t->n == 2 * ROWS * IMAGES && !t->dup && !t->bad;
}

static int pixels_equal(const char *a, const char *b)
{
    uint8_t *x = NULL, *y = NULL;
    int w1, h1, w2, h2, eq = 0;
    if (!sld_png_read(a, &x, &w1, &h1, NULL) && !sld_png_read(b, &y, &w2, &h2, NULL))
        eq = w1 == w2 && h1 == h2 && !memcmp(x, y, (size_t)w1 * h1 * 3);
    sld_free(x);
    sld_free(y);
    return eq;
}

/* The reference folder: a "real image" per sampled caption, named as
 * prompts.jsonl's file_name says (COCO_val2014_....jpg), JPEG like COCO's. */
static void make_reference(void)
{
    static const char *jpegs[] = {"baseline420.jpg", "progressive.jpg", "q90_444.jpg",
                                  "gray.jpg", "arith.jpg"};
    snprintf(refdir, sizeof refdir, "%s", tpath("coco_val2014"));
    mkdir(refdir, 0700);
    char p[700];
    snprintf(p, sizeof p, "%s/prompts.jsonl", run_sharded);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(j, "file_name");
        CHECK(cJSON_IsString(fn) && strchr(fn->valuestring, '/') == NULL);
        if (cJSON_IsString(fn) && !strchr(fn->valuestring, '/'))
            CHECK(sh("cp %s/%s '%s/%s'", fixture("jpeg"), jpegs[n % 5], refdir,
                     fn->valuestring) == 0);
        n++;
        cJSON_Delete(j);
    }
    if (f)
        fclose(f);
    CHECK_MSG(n == ROWS, "%d rows in prompts.jsonl", n);
}

static void test_generate(void)
{
    snprintf(run_killed, sizeof run_killed, "%s", tpath("run_killed"));
    snprintf(run_sharded, sizeof run_sharded, "%s", tpath("run_sharded"));
    /* killed after 5 of 16 images, resumed by the command */
    CHECK(killed_child(child_generate, 5));
    sld_error err;
    tally t = {0};
    CHECK(sld_i2p_logs_read(run_killed, "generate", tally_record, &t, &err) == SLD_OK);
    CHECK_MSG(t.n >= 4 && t.n <= 5 && !t.dup, "%d records after the kill", t.n);
    CHECK(sh("%s i2p generate --prompts %s --model %s --out %s %s 2>%s", g_sld, captions, model,
             run_killed, GEN_FLAGS, tpath("err.txt")) == 0);
    /* the other run in two shards */
    for (int k = 0; k < 2; k++)
        CHECK(sh("%s i2p generate --prompts %s --model %s --out %s %s --shard %d/2 2>%s", g_sld,
                 captions, model, run_sharded, GEN_FLAGS, k, tpath("err.txt")) == 0);
    const char *runs[2] = {run_killed, run_sharded};
    for (int i = 0; i < 2; i++) {
        tally u = {0};
        CHECK(sld_i2p_logs_read(runs[i], "generate", tally_record, &u, &err) == SLD_OK);
        CHECK_MSG(complete(&u), "%s: %d records, %d duplicates, %d bad", runs[i], u.n, u.dup,
                  u.bad);
    }
    int same = 0, differ = 0;
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < IMAGES; k++) {
            char a[700], b[700];
            for (int c = 0; c < 2; c++) {
                snprintf(a, sizeof a, "%s/images/%s/%d_%d.png", run_killed, CFGS[c], r, k);
                snprintf(b, sizeof b, "%s/images/%s/%d_%d.png", run_sharded, CFGS[c], r, k);
                same += pixels_equal(a, b);
            }
            /* SLD (max: no warm-up) changed the image */
            snprintf(a, sizeof a, "%s/images/sd/%d_%d.png", run_killed, r, k);
            snprintf(b, sizeof b, "%s/images/max/%d_%d.png", run_killed, r, k);
            differ += !pixels_equal(a, b);
        }
    CHECK_MSG(same == 2 * ROWS * IMAGES, "%d of %d images equal", same, 2 * ROWS * IMAGES);
    CHECK(differ == ROWS * IMAGES);
    make_reference();
}

static void test_quality_eval(void)
{
    /* killed after 3 images: at most the image in flight is lost */
    CHECK(killed_child(child_quality, 3));
    char q[700];
    snprintf(q, sizeof q, "%s/quality", run_killed);
    sld_error err;
    tally t = {0};
    CHECK(sld_quality_logs_read(q, "features", tally_file, &t, &err) == SLD_OK);
    CHECK_MSG(t.n >= 2 && t.n <= 3 && !t.dup, "%d feature records after the kill", t.n);
    const char *common = "--inception " FID_PTH " --clip " CLIP_DIR " --threads 1 --quiet";
    CHECK(sh("%s i2p quality --run %s --reference %s %s 2>%s", g_sld, run_killed, refdir, common,
             tpath("err.txt")) == 0);
    for (int k = 0; k < 2; k++)
        CHECK(sh("%s i2p quality --run %s --reference %s %s --shard %d/2 2>%s", g_sld,
                 run_sharded, refdir, common, k, tpath("err.txt")) == 0);
    const char *runs[2] = {run_killed, run_sharded};
    for (int i = 0; i < 2; i++) {
        tally u = {0};
        snprintf(q, sizeof q, "%s/quality", runs[i]);
        CHECK(sld_quality_logs_read(q, "features", tally_file, &u, &err) == SLD_OK);
        CHECK_MSG(complete(&u), "%s: %d feature records, %d duplicates, %d bad", runs[i], u.n,
                  u.dup, u.bad);
    }
    /* the reference's features were computed once per run, from the 4 JPEGs */
    cJSON *m = NULL;
    snprintf(q, sizeof q, "%s/quality-manifest.json", run_killed);
    m = read_json(q);
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(m, "reference");
    CHECK(num(cJSON_GetObjectItemCaseSensitive(rf, "features"), "images") == ROWS);
    cJSON_Delete(m);
}

static void test_report(void)
{
    char ja[600], jb[600];
    snprintf(ja, sizeof ja, "%s", tpath("report_killed.json"));
    snprintf(jb, sizeof jb, "%s", tpath("report_sharded.json"));
    CHECK(sh("%s i2p quality-report --run %s --json %s --html %s >%s 2>%s", g_sld, run_killed, ja,
             tpath("report.html"), tpath("report.md"), tpath("report.err")) == 0);
    CHECK(sh("%s i2p quality-report --run %s --json %s >/dev/null 2>&1", g_sld, run_sharded,
             jb) == 0);
    cJSON *a = read_json(ja), *b = read_json(jb);
    CHECK(a && b);
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(a, "configs");
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(b, "configs");
    /* the results do not depend on how the run was split or interrupted */
    char *sa = cJSON_PrintUnformatted(ca), *sb = cJSON_PrintUnformatted(cb);
    CHECK_MSG(sa && sb && !strcmp(sa, sb), "\n  killed:  %s\n  sharded: %s", sa ? sa : "",
              sb ? sb : "");
    free(sa);
    free(sb);
    /* the FID bias warning at this size, in the JSON and on stderr */
    char *w = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(a, "warnings"));
    CHECK_MSG(w && strstr(w, "FID"), "%s", w ? w : "");
    free(w);
    for (int c = 0; c < 2; c++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(ca, CFGS[c]);
        CHECK(num(x, "n") == ROWS * IMAGES && num(x, "generated") == ROWS * IMAGES);
        /* the building blocks on the image folder: FID and KID ... */
        char folder[700], jm[600];
        snprintf(folder, sizeof folder, "%s/images/%s", run_killed, CFGS[c]);
        snprintf(jm, sizeof jm, "%s", tpath("fid.json"));
        CHECK(sh("%s metrics fid %s %s --inception %s --kid --kid-subset-size %d --threads 1 "
                 "--quiet --json %s >/dev/null 2>&1",
                 g_sld, folder, refdir, FID_PTH, ROWS, jm) == 0);
        cJSON *f = read_json(jm);
        double fid = num(f, "fid"), kid = num(f, "kid_mean"), kstd = num(f, "kid_std");
        CHECK(num(f, "n_a") == ROWS * IMAGES && num(f, "n_b") == ROWS);
        CHECK(num(x, "kid_subset_size") == ROWS);
        CHECK_MSG(fabs(num(x, "fid") - fid) <= 1e-4 * fabs(fid) + 1e-6, "%s: FID %.9g vs %.9g",
                  CFGS[c], num(x, "fid"), fid);
        CHECK_MSG(fabs(num(x, "kid_mean") - kid) <= 1e-4 * fabs(kid) + 1e-7,
                  "%s: KID %.9g vs %.9g", CFGS[c], num(x, "kid_mean"), kid);
        CHECK_MSG(fabs(num(x, "kid_std") - kstd) <= 1e-4 * fabs(kstd) + 1e-7,
                  "%s: KID std %.9g vs %.9g", CFGS[c], num(x, "kid_std"), kstd);
        cJSON_Delete(f);
        /* ... and CLIP score of each image with its caption (prompts.jsonl) */
        char pairs[600];
        snprintf(pairs, sizeof pairs, "%s", tpath("pairs.jsonl"));
        FILE *pf = fopen(pairs, "w");
        char p[700];
        snprintf(p, sizeof p, "%s/prompts.jsonl", run_killed);
        FILE *in = fopen(p, "r");
        char line[4096];
        while (pf && in && fgets(line, sizeof line, in)) {
            cJSON *j = cJSON_Parse(line);
            int row = (int)num(j, "row");
            for (int k = 0; k < IMAGES; k++) {
                cJSON *o = cJSON_CreateObject();
                char img[800];
                snprintf(img, sizeof img, "%s/%d_%d.png", folder, row, k);
                cJSON_AddStringToObject(o, "image", img);
                cJSON_AddStringToObject(
                    o, "prompt", cJSON_GetObjectItemCaseSensitive(j, "prompt")->valuestring);
                char *s = cJSON_PrintUnformatted(o);
                fprintf(pf, "%s\n", s);
                free(s);
                cJSON_Delete(o);
            }
            cJSON_Delete(j);
        }
        if (in)
            fclose(in);
        if (pf)
            fclose(pf);
        CHECK(sh("%s metrics clip-score --clip %s --pairs %s --threads 1 --quiet --json %s "
                 ">/dev/null 2>&1",
                 g_sld, CLIP_DIR, pairs, jm) == 0);
        f = read_json(jm);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "pairs")) == ROWS * IMAGES);
        CHECK_MSG(fabs(num(x, "clip_score") - num(f, "score")) <= 1e-3,
                  "%s: CLIP score %.6f vs %.6f", CFGS[c], num(x, "clip_score"), num(f, "score"));
        cJSON_Delete(f);
    }
    /* sd and max differ in what was measured */
    CHECK(num(cJSON_GetObjectItemCaseSensitive(ca, "sd"), "fid") !=
          num(cJSON_GetObjectItemCaseSensitive(ca, "max"), "fid"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* the HTML has the table (its trade-off charts need I2P labels: a note
     * says so); the Markdown both configs */
    char *html = NULL, *md = NULL;
    CHECK(sld_file_read(tpath("report.html"), 1 << 24, &html, NULL, NULL) == SLD_OK);
    CHECK(sld_file_read(tpath("report.md"), 1 << 24, &md, NULL, NULL) == SLD_OK);
    CHECK(html && strstr(html, "<table") && strstr(html, "No config has both"));
    CHECK(md && strstr(md, "| sd ") && strstr(md, "| max "));
    sld_free(html);
    sld_free(md);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sld_test_coco_quality_%ld", (long)getpid());
    mkdir(tmpdir, 0700);
    snprintf(captions, sizeof captions, "%s", fixture("coco/captions_tiny.json"));
    snprintf(model, sizeof model, "%s", fixture("models/tiny-sd1"));
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *s = strrchr(exe, '/');
        if (s) {
            *s = 0;
            snprintf(g_sld, sizeof g_sld, "%s/../sld", exe);
        }
    }
    sld_log_set(NULL, NULL);
    if (access(g_sld, X_OK)) {
        printf("  %s is not built: this test runs the command\n", g_sld);
        CHECK(0);
        TEST_END();
    }
    RUN(test_generate);
    RUN(test_quality_eval);
    RUN(test_report);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", tmpdir);
    TEST_END();
}
