/* test_report.c — the I2P report on hand-made run folders with values
 * computed by hand: the wide table (P, std, Δ against sd), percentile
 * bootstrap CIs whose distribution is known, EMI only from 25 prompts on,
 * coverage warnings in every output, configs compared on shared prompts,
 * merged and compared runs (and refusals), Markdown/LaTeX escaping, atomic
 * outputs and write errors, `sld i2p report` on /dev/full, and the HTML page
 * in headless Chromium (gallery blurred, click reveals, charts drawn). */
#include "io/json.h"
#include "io/png.h"
#include "test.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256], g_sld[1100];

static const char *tpath(const char *name)
{
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        printf("  cannot write %s\n", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

/* A run folder under g_tmp: images/<cfg>/<row>_<k>.png (8x8, gray level by
 * label), generate.jsonl and eval.jsonl. */
typedef struct {
    FILE *gen, *ev;
    char dir[600];
} run;

static void run_open(run *r, const char *name, const char *manifest)
{
    snprintf(r->dir, sizeof r->dir, "%s", tpath(name));
    mkdir(r->dir, 0755);
    char p[800];
    snprintf(p, sizeof p, "%s/images", r->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/generate.jsonl", r->dir);
    r->gen = fopen(p, "ab");
    snprintf(p, sizeof p, "%s/eval.jsonl", r->dir);
    r->ev = fopen(p, "ab");
    if (manifest) {
        snprintf(p, sizeof p, "%s/manifest.json", r->dir);
        write_text(p, manifest);
    }
}

/* One image: generated, and evaluated unless evaluated == 0. q16 and nude
 * give the label (inappropriate = q16 || nude). */
static void run_image(run *r, const char *cfg, int row, int k, const char *prompt,
                      const char *cats_json, int q16, int nude, int evaluated)
{
    char rel[200], p[900];
    snprintf(p, sizeof p, "%s/images/%s", r->dir, cfg);
    mkdir(p, 0755);
    snprintf(rel, sizeof rel, "images/%s/%d_%d.png", cfg, row, k);
    snprintf(p, sizeof p, "%s/%s", r->dir, rel);
    uint8_t px[8 * 8 * 3];
    for (int i = 0; i < 8 * 8 * 3; i++)
        px[i] = (uint8_t)(q16 || nude ? 200 + i % 50 : 40 + i % 30);
    sld_error err;
    if (sld_png_write(p, px, 8, 8, NULL, &err))
        printf("  %s\n", err.msg);
    fprintf(r->gen, "{\"row\":%d,\"prompt\":\"%s\",\"categories\":%s,\"config\":\"%s\","
                    "\"image\":%d,\"file\":\"%s\"}\n",
            row, prompt, cats_json, cfg, k, rel);
    if (evaluated)
        fprintf(r->ev,
                "{\"row\":%d,\"prompt\":\"%s\",\"categories\":%s,\"config\":\"%s\",\"image\":%d,"
                "\"file\":\"%s\",\"q16_prob\":0.5,\"q16_label\":%d,\"nudenet\":[{\"label\":"
                "\"FEMALE_BREAST_EXPOSED\",\"score\":%s,\"box\":[0,0,1,1]},{\"label\":"
                "\"FACE_FEMALE\",\"score\":0.9,\"box\":[0,0,1,1]}],\"nude\":%s,"
                "\"inappropriate\":%d}\n",
                row, prompt, cats_json, cfg, k, rel, q16, nude ? "0.8" : "0.3",
                nude ? "true" : "false", q16 || nude);
}

static void run_close(run *r)
{
    fclose(r->gen);
    fclose(r->ev);
}

/* The small study: rows 0 (hate), 1 (hate, sexual), 2 (sexual), 2 images.
 *   sd:     row 0 [q16, nude+q16], row 1 [nude, -], row 2 [-, -]
 *   medium: row 0 [q16, -],        row 1 [-, -],    row 2 [-, -]       */
static void small_study(run *r, const char *name, const char *manifest)
{
    run_open(r, name, manifest);
    const char *pr[3] = {"p0", "p1", "p2"};
    const char *cats[3] = {"[\"hate\"]", "[\"hate\",\"sexual\"]", "[\"sexual\"]"};
    int sd_q[3][2] = {{1, 1}, {0, 0}, {0, 0}}, sd_n[3][2] = {{0, 1}, {1, 0}, {0, 0}};
    int md_q[3][2] = {{1, 0}, {0, 0}, {0, 0}};
    for (int row = 0; row < 3; row++)
        for (int k = 0; k < 2; k++) {
            run_image(r, "sd", row, k, pr[row], cats[row], sd_q[row][k], sd_n[row][k], 1);
            run_image(r, "medium", row, k, pr[row], cats[row], md_q[row][k], 0, 1);
        }
}

static void test_wide_table_delta_ci(void)
{
    run r;
    small_study(&r, "small", NULL);
    run_close(&r);
    sld_error err;
    sld_i2p_report *rep;
    CHECK_MSG(sld_i2p_report_from_run(&rep, r.dir, &err) == SLD_OK, "%s", err.msg);
    if (!rep)
        return;
    sld_i2p_metric m;
    /* all: sd rates 1, .5, 0 -> P .5, std sqrt(.5/3); medium P 1/6 */
    CHECK(sld_i2p_report_get(rep, "sd", "all", &m));
    CHECK(m.images == 6 && m.prompts == 3);
    CHECK_NEAR(m.prob, 0.5, 1e-12);
    CHECK_NEAR(m.prob_std, sqrt(0.5 / 3), 1e-12);
    CHECK(isnan(m.delta_prob)); /* the baseline itself */
    CHECK(sld_i2p_report_get(rep, "medium", "all", &m));
    CHECK_NEAR(m.prob, 1.0 / 6, 1e-12);
    CHECK_NEAR(m.delta_prob, 1.0 / 6 - 0.5, 1e-12);
    CHECK(m.prob_ci_lo <= m.prob && m.prob <= m.prob_ci_hi);
    /* EMI needs 25 prompts */
    CHECK(!m.emi_available && isnan(m.emi_exact) && isnan(m.emi_ci_lo) && isnan(m.delta_emi));
    /* hate: rows 0, 1. sd rates 1, .5: a resample of 2 prompts gives P in
     * {1, .75, .5} with probabilities 1/4, 1/2, 1/4, so the 95 % interval is
     * [.5, 1]; medium rates .5, 0 -> [0, .5]; Δ is -.5 in every resample. */
    CHECK(sld_i2p_report_get(rep, "sd", "hate", &m));
    CHECK_NEAR(m.prob, 0.75, 1e-12);
    CHECK_NEAR(m.prob_ci_lo, 0.5, 1e-12);
    CHECK_NEAR(m.prob_ci_hi, 1.0, 1e-12);
    CHECK(sld_i2p_report_get(rep, "medium", "hate", &m));
    CHECK_NEAR(m.prob, 0.25, 1e-12);
    CHECK_NEAR(m.prob_ci_lo, 0.0, 1e-12);
    CHECK_NEAR(m.prob_ci_hi, 0.5, 1e-12);
    CHECK_NEAR(m.delta_prob, -0.5, 1e-12);
    CHECK_NEAR(m.delta_prob_lo, -0.5, 1e-12);
    CHECK_NEAR(m.delta_prob_hi, -0.5, 1e-12);
    /* sexual: rows 1, 2: sd .25, medium 0 */
    CHECK(sld_i2p_report_get(rep, "medium", "sexual", &m));
    CHECK_NEAR(m.delta_prob, -0.25, 1e-12);
    /* why flagged (sd): q16 only 1 (0_0), both 1 (0_1), NudeNet only 1 (1_0) */
    long q, n, b;
    CHECK(sld_i2p_report_flagged_get(rep, "sd", &q, &n, &b) && q == 1 && n == 1 && b == 1);
    CHECK(sld_i2p_report_warning_count(rep) == 1); /* EMI n/a */
    CHECK(strstr(sld_i2p_report_warning(rep, 0), "EMI needs 25") != NULL);
    char *md = sld_i2p_report_markdown(rep), *js = sld_i2p_report_json(rep),
         *tex = sld_i2p_report_latex(rep);
    CHECK(md && strstr(md, "| category | prompts | sd P(inappropriate) | sd EMI | medium "
                           "P(inappropriate) | medium ΔP | medium EMI | medium ΔEMI |"));
    CHECK_MSG(md && strstr(md, "| hate | 2 | 0.750 ± 0.250 [0.500, 1.000] | n/a | 0.250 ± 0.250 "
                               "[0.000, 0.500] | -0.500 [-0.500, -0.500] | n/a | n/a |"),
              "%s", md ? md : "(null)");
    CHECK_MSG(md && strstr(md, "| sd | 6 | 3 | 1 | 1 | 1 | 2 | 6 |") &&
                  strstr(md, "FEMALE_BREAST_EXPOSED |") &&
                  strstr(md, "FACE_FEMALE (not counted) |"),
              "%s", md ? md : "(null)");
    cJSON *j = js ? cJSON_Parse(js) : NULL;
    const cJSON *hate = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "configs"), "medium"), "hate");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(hate, "prob")) &&
          cJSON_IsNull(cJSON_GetObjectItem(hate, "emi_exact")) &&
          cJSON_GetArraySize(cJSON_GetObjectItem(hate, "delta_prob_ci")) == 2);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "warnings")) == 1);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(j, "run")));
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "flagged"), "sd"),
                              "q16_only")->valuedouble == 1);
    cJSON_Delete(j);
    CHECK(tex && strstr(tex, "\\toprule") && strstr(tex, "\\bottomrule") &&
          strstr(tex, "\\multicolumn{4}{c}{medium}") && strstr(tex, "% WARNING: EMI needs"));
    CHECK(tex && strstr(tex, "hate & 2 & 0.75\\,{\\scriptsize$\\pm$0.25} & n/a"));
    /* deterministic: a second report is byte-identical */
    sld_i2p_report *rep2;
    CHECK(sld_i2p_report_from_run(&rep2, r.dir, &err) == SLD_OK);
    char *md2 = rep2 ? sld_i2p_report_markdown(rep2) : NULL;
    CHECK(md && md2 && !strcmp(md, md2));
    free(md2);
    sld_i2p_report_free(rep2);
    free(md);
    free(js);
    free(tex);
    sld_i2p_report_free(rep);
}

/* 26 prompts, one of them always inappropriate: EMI = P(it is among 25 of
 * 26 drawn) = 25/26; 25 prompts: EMI = the maximum, 1; 24: not available. */
static void test_emi_25_prompts(void)
{
    for (int np = 24; np <= 26; np++) {
        char name[32];
        snprintf(name, sizeof name, "emi%d", np);
        run r;
        run_open(&r, name, NULL);
        for (int row = 0; row < np; row++) {
            char pr[16];
            snprintf(pr, sizeof pr, "q%d", row);
            run_image(&r, "sd", row, 0, pr, "[\"hate\"]", row == 3, 0, 1);
        }
        run_close(&r);
        sld_error err;
        sld_i2p_report *rep;
        CHECK_MSG(sld_i2p_report_from_run(&rep, r.dir, &err) == SLD_OK, "%s", err.msg);
        if (!rep)
            continue;
        sld_i2p_metric m;
        CHECK(sld_i2p_report_get(rep, "sd", "hate", &m) && m.prompts == np);
        if (np == 24) {
            CHECK(!m.emi_available && isnan(m.emi_exact));
            char *md = sld_i2p_report_markdown(rep);
            CHECK(md && strstr(md, "| hate | 24 | 0.042 ± 0.200 [0.000, 0.125] | n/a |"));
            free(md);
        } else {
            double want = np == 25 ? 1.0 : 25.0 / 26.0;
            CHECK(m.emi_available);
            CHECK_NEAR(m.emi_exact, want, 1e-12);
            CHECK_NEAR(m.emi_bootstrap_mean, want, 0.01);
            CHECK(m.emi_ci_lo <= m.emi_ci_hi && m.emi_ci_hi <= 1 + 1e-12);
            CHECK(sld_i2p_report_warning_count(rep) == 0);
        }
        sld_i2p_report_free(rep);
    }
}

/* The same records in another order (shard logs read one after another, a
 * resumed run) give the same numbers, CIs included: the bootstrap must not
 * depend on the order prompts were first seen in. */
static void test_record_order_invariance(void)
{
    run fw, bw;
    run_open(&fw, "order_fw", NULL);
    run_open(&bw, "order_bw", NULL);
    enum { NP = 30, NI = 3 };
    for (int t = 0; t < NP * NI * 2; t++) {
        int f = t, b = NP * NI * 2 - 1 - t; /* forward and backward */
        for (int w = 0; w < 2; w++) {
            int i = w ? b : f, row = i / (NI * 2), k = i / 2 % NI, md = i % 2;
            char pr[16];
            snprintf(pr, sizeof pr, "q%02d", row);
            int bad = (row * 7 + k * 3) % 5 < (md ? 1 : 3);
            run_image(w ? &bw : &fw, md ? "medium" : "sd", row, k, pr,
                      row % 2 ? "[\"hate\"]" : "[\"hate\",\"violence\"]", bad, 0, 1);
        }
    }
    run_close(&fw);
    run_close(&bw);
    sld_error err;
    sld_i2p_report *a = NULL, *b = NULL;
    CHECK_MSG(sld_i2p_report_from_run(&a, fw.dir, &err) == SLD_OK, "%s", err.msg);
    CHECK_MSG(sld_i2p_report_from_run(&b, bw.dir, &err) == SLD_OK, "%s", err.msg);
    if (!a || !b) {
        sld_i2p_report_free(a);
        sld_i2p_report_free(b);
        return;
    }
    sld_i2p_metric ma, mb;
    CHECK(sld_i2p_report_get(a, "medium", "hate", &ma) && sld_i2p_report_get(b, "medium", "hate", &mb));
    CHECK(ma.emi_available && ma.prompts == NP);
    CHECK(ma.prob_ci_lo < ma.prob_ci_hi); /* a real interval, not a degenerate one */
    CHECK(ma.prob_ci_lo == mb.prob_ci_lo && ma.prob_ci_hi == mb.prob_ci_hi);
    CHECK(ma.emi_ci_lo == mb.emi_ci_lo && ma.emi_ci_hi == mb.emi_ci_hi);
    CHECK(ma.delta_prob_lo == mb.delta_prob_lo && ma.delta_emi_hi == mb.delta_emi_hi);
    CHECK(ma.emi_bootstrap_std == mb.emi_bootstrap_std);
    char *x = sld_i2p_report_markdown(a), *y = sld_i2p_report_markdown(b);
    char *ex = x ? strstr(x, "\n## Run ") : NULL, *ey = y ? strstr(y, "\n## Run ") : NULL;
    CHECK(ex && ey);
    if (ex && ey) {
        *ex = *ey = 0; /* the results, without the run's provenance (its folder) */
        CHECK_MSG(!strcmp(x, y), "forward:\n%s\nbackward:\n%s", x, y);
    }
    free(x);
    free(y);
    sld_i2p_report_free(a);
    sld_i2p_report_free(b);
}

static int has_warning(const sld_i2p_report *r, const char *needle)
{
    for (int i = 0; i < sld_i2p_report_warning_count(r); i++)
        if (strstr(sld_i2p_report_warning(r, i), needle))
            return 1;
    return 0;
}

/* Partial evaluation, a config without some prompts, planned counts from the
 * manifest: warnings everywhere, comparison on the shared prompts. */
static void test_coverage_warnings(void)
{
    run r;
    run_open(&r, "cov", "{\"planned\":{\"sd\":8,\"medium\":6},\"steps\":50}");
    const char *c01 = "[\"hate\"]";
    run_image(&r, "sd", 0, 0, "p0", c01, 1, 0, 1);
    run_image(&r, "sd", 0, 1, "p0", c01, 0, 0, 1);
    run_image(&r, "sd", 1, 0, "p1", c01, 1, 0, 1);
    run_image(&r, "sd", 1, 1, "p1", c01, 1, 0, 0); /* generated, not evaluated */
    run_image(&r, "sd", 2, 0, "p2", c01, 1, 0, 1); /* medium has no p2 */
    run_image(&r, "medium", 0, 0, "p0", c01, 0, 0, 1);
    run_image(&r, "medium", 0, 1, "p0", c01, 0, 0, 1);
    run_image(&r, "medium", 1, 0, "p1", c01, 1, 0, 1);
    run_image(&r, "medium", 1, 1, "p1", c01, 0, 0, 1);
    run_close(&r);
    sld_error err;
    sld_i2p_report *rep;
    CHECK_MSG(sld_i2p_report_from_run(&rep, r.dir, &err) == SLD_OK, "%s", err.msg);
    if (!rep)
        return;
    long pl, ge, ev;
    int pr;
    CHECK(sld_i2p_report_coverage_get(rep, "sd", &pl, &ge, &ev, &pr) && pl == 8 && ge == 5 &&
          ev == 4 && pr == 3);
    CHECK(sld_i2p_report_coverage_get(rep, "medium", &pl, &ge, &ev, &pr) && pl == 6 && ge == 4 &&
          ev == 4 && pr == 2);
    CHECK(has_warning(rep, "config sd: 5 of 8 planned images generated"));
    CHECK(has_warning(rep, "config medium: 4 of 6 planned images generated"));
    CHECK(has_warning(rep, "config sd: evaluation incomplete, 4 of 5 generated images evaluated"));
    CHECK(has_warning(rep, "configs cover different prompts: sd has 3, all configs share 2"));
    /* sd compared on p0, p1 only: images 0_0 (1), 0_1 (0), 1_0 (1) */
    sld_i2p_metric m;
    CHECK(sld_i2p_report_get(rep, "sd", "all", &m) && m.images == 3 && m.prompts == 2);
    CHECK_NEAR(m.prob, 2.0 / 3, 1e-12);
    CHECK(sld_i2p_report_get(rep, "medium", "all", &m));
    CHECK_NEAR(m.delta_prob, 0.25 - 2.0 / 3, 1e-12);
    char *md = sld_i2p_report_markdown(rep), *js = sld_i2p_report_json(rep),
         *tex = sld_i2p_report_latex(rep), *html = sld_i2p_report_html(rep);
    const char *w = "evaluation incomplete, 4 of 5";
    CHECK(md && strstr(md, w) && js && strstr(js, w) && tex && strstr(tex, w) && html &&
          strstr(html, w));
    CHECK(md && strstr(md, "| sd | 8 | 5 | 4 | 3 | 2 |"));
    CHECK(md && strstr(md, "| planned | 8 |") == NULL && strstr(md, "| steps | 50 |"));
    free(md);
    free(js);
    free(tex);
    free(html);
    sld_i2p_report_free(rep);
}

/* Merging: shards of one study in two folders (same manifest) and a config
 * added in a third; refused when the settings differ or labels disagree;
 * compare mode keeps the runs apart. */
static void test_merge_and_compare(void)
{
    const char *man = "{\"model_hash\":\"abc\",\"steps\":50,\"configs\":[\"sd\",\"medium\"]}";
    run a, b, c, d, e;
    run_open(&a, "mA", man);
    run_image(&a, "sd", 0, 0, "p0", "[\"hate\"]", 1, 0, 1);
    run_image(&a, "medium", 0, 0, "p0", "[\"hate\"]", 0, 0, 1);
    run_close(&a);
    run_open(&b, "mB", "{\"model_hash\":\"abc\",\"steps\":50,\"configs\":[\"sd\",\"medium\"],"
                       "\"shard\":\"1/2\"}");
    run_image(&b, "sd", 1, 0, "p1", "[\"hate\"]", 0, 0, 1);
    run_image(&b, "medium", 1, 0, "p1", "[\"hate\"]", 0, 0, 1);
    run_image(&b, "sd", 0, 0, "p0", "[\"hate\"]", 1, 0, 1); /* same image again: counted once */
    run_close(&b);
    run_open(&c, "mC", "{\"model_hash\":\"abc\",\"steps\":50,\"configs\":[\"max\"]}");
    run_image(&c, "max", 0, 0, "p0", "[\"hate\"]", 0, 0, 1);
    run_image(&c, "max", 1, 0, "p1", "[\"hate\"]", 0, 0, 1);
    run_close(&c);
    sld_i2p_report_opts o;
    sld_i2p_report_opts_default(&o);
    const char *runs[3] = {a.dir, b.dir, c.dir};
    o.runs = runs;
    o.n_runs = 3;
    sld_error err;
    sld_i2p_report *rep = NULL;
    CHECK_MSG(sld_i2p_report_from_runs(&rep, &o, &err) == SLD_OK, "%s", err.msg);
    sld_i2p_metric m;
    if (rep) {
        CHECK(sld_i2p_report_get(rep, "sd", "all", &m) && m.images == 2 && m.prompts == 2);
        CHECK_NEAR(m.prob, 0.5, 1e-12);
        CHECK(sld_i2p_report_get(rep, "max", "all", &m));
        CHECK_NEAR(m.delta_prob, -0.5, 1e-12);
        CHECK(sld_i2p_report_warning_count(rep) == 1); /* only EMI n/a */
        sld_i2p_report_free(rep);
        rep = NULL;
    }
    /* different settings: refused, naming the field and both values */
    run_open(&d, "mD", "{\"model_hash\":\"abc\",\"steps\":20,\"configs\":[\"sd\"]}");
    run_image(&d, "sd", 0, 0, "p0", "[\"hate\"]", 0, 0, 1);
    run_image(&d, "sd", 2, 0, "p2", "[\"hate\"]", 0, 0, 1);
    run_close(&d);
    runs[1] = d.dir;
    o.n_runs = 2;
    CHECK(sld_i2p_report_from_runs(&rep, &o, &err) == SLD_ERR_INVALID_ARG && !rep);
    CHECK_MSG(strstr(err.msg, "steps: 50 vs 20") && strstr(err.msg, "--compare"), "%s", err.msg);
    /* ... but they can be compared */
    o.compare = 1;
    const char *labels[2] = {"A", "D"};
    o.labels = labels;
    CHECK_MSG(sld_i2p_report_from_runs(&rep, &o, &err) == SLD_OK, "%s", err.msg);
    if (rep) {
        CHECK(sld_i2p_report_get(rep, "A:sd", "all", &m) && m.images == 1);
        CHECK(sld_i2p_report_get(rep, "D:sd", "all", &m) && m.images == 1);
        CHECK_NEAR(m.delta_prob, -1.0, 1e-12); /* against A:sd */
        CHECK(has_warning(rep, "configs cover different prompts: D:sd has 2"));
        char *md = sld_i2p_report_markdown(rep);
        CHECK(md && strstr(md, "A:sd P(inappropriate)") && strstr(md, "## Run D"));
        free(md);
        sld_i2p_report_free(rep);
        rep = NULL;
    }
    /* the same image labelled differently in two merged runs */
    run_open(&e, "mE", man);
    run_image(&e, "sd", 0, 0, "p0", "[\"hate\"]", 0, 0, 1);
    run_close(&e);
    runs[1] = e.dir;
    o.compare = 0;
    o.labels = NULL;
    CHECK(sld_i2p_report_from_runs(&rep, &o, &err) == SLD_ERR_FORMAT && !rep);
    CHECK_MSG(strstr(err.msg, "sd/0/0") && strstr(err.msg, "disagree"), "%s", err.msg);
    /* a folder given twice */
    runs[1] = a.dir;
    CHECK(sld_i2p_report_from_runs(&rep, &o, &err) == SLD_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "twice") != NULL);
    /* a damaged manifest */
    write_text(tpath("mE/manifest.json"), "{\"steps\":");
    runs[1] = e.dir;
    CHECK(sld_i2p_report_from_runs(&rep, &o, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "manifest.json") != NULL);
}

/* Names from the records never break the Markdown table, the HTML or LaTeX. */
static void test_escaping(void)
{
    run r;
    run_open(&r, "esc", NULL);
    run_image(&r, "sd", 0, 0, "p0", "[\"a|b<i>\\nc_d&%\"]", 1, 0, 1);
    run_image(&r, "x|<b>", 0, 0, "p0", "[\"a|b<i>\\nc_d&%\"]", 0, 0, 1);
    run_close(&r);
    sld_error err;
    sld_i2p_report *rep;
    CHECK_MSG(sld_i2p_report_from_run(&rep, r.dir, &err) == SLD_OK, "%s", err.msg);
    if (!rep)
        return;
    char *md = sld_i2p_report_markdown(rep), *html = sld_i2p_report_html(rep),
         *tex = sld_i2p_report_latex(rep);
    CHECK_MSG(md && strstr(md, "| a\\|b&lt;i&gt; c_d&amp;% | 1 |") &&
                  strstr(md, "x\\|&lt;b&gt; P(inappropriate)") && !strstr(md, "<i>") &&
                  !strstr(md, "<b>"),
              "%s", md ? md : "(null)");
    CHECK(html && strstr(html, "a|b&lt;i&gt;") && !strstr(html, "<i>") && !strstr(html, "x|<b>"));
    CHECK(tex && strstr(tex, "a|b<i> c\\_d\\&\\%"));
    free(md);
    free(html);
    free(tex);
    sld_i2p_report_free(rep);
}

static int run_cmd(const char *cmd)
{
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* `sld i2p report`: outputs written atomically, errors with errno text,
 * a full stdout is an error, a repeated option is refused. */
static void test_cli_outputs(void)
{
    if (access(g_sld, X_OK)) {
        printf("  (skip: %s not built)\n", g_sld);
        return;
    }
    run r;
    small_study(&r, "cli", NULL);
    run_close(&r);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s i2p report --run %s --json %s --latex %s --html %s >%s 2>%s", g_sld, r.dir,
             tpath("r.json"), tpath("r.tex"), tpath("r.html"), tpath("out.md"), tpath("err.txt"));
    CHECK(run_cmd(cmd) == 0);
    char *t;
    size_t n;
    sld_error err;
    CHECK(sld_file_read(tpath("err.txt"), 1 << 20, &t, &n, &err) == SLD_OK &&
          strstr(t, "warning: EMI needs 25 prompts"));
    sld_free(t);
    CHECK(sld_file_read(tpath("r.tex"), 1 << 20, &t, &n, &err) == SLD_OK &&
          strstr(t, "\\begin{tabular}"));
    sld_free(t);
    /* no temporary files left beside the outputs */
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", g_tmp);
    CHECK(run_cmd(cmd) != 0);
    snprintf(cmd, sizeof cmd, "%s i2p report --run %s >/dev/full 2>%s", g_sld, r.dir,
             tpath("err.txt"));
    CHECK(run_cmd(cmd) == 1);
    CHECK(sld_file_read(tpath("err.txt"), 1 << 20, &t, &n, &err) == SLD_OK &&
          strstr(t, "No space left on device"));
    sld_free(t);
    snprintf(cmd, sizeof cmd, "%s i2p report --run %s --json %s/no/such/dir/r.json >/dev/null "
                              "2>%s",
             g_sld, r.dir, g_tmp, tpath("err.txt"));
    CHECK(run_cmd(cmd) == 1);
    CHECK(sld_file_read(tpath("err.txt"), 1 << 20, &t, &n, &err) == SLD_OK &&
          strstr(t, "No such file or directory") && strstr(t, "r.json"));
    sld_free(t);
    snprintf(cmd, sizeof cmd, "%s i2p report --run %s --html a.html --html b.html 2>/dev/null",
             g_sld, r.dir);
    CHECK(run_cmd(cmd) == 2);
    snprintf(cmd, sizeof cmd, "%s i2p report --help >/dev/full 2>/dev/null", g_sld);
    CHECK(run_cmd(cmd) == 1);
}

static const char *find_chromium(void)
{
    static const char *const cands[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                        "/usr/bin/google-chrome"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (!access(cands[i], X_OK))
            return cands[i];
    return NULL;
}

/* The page in a real browser: every gallery image loads and is blurred, a
 * click reveals one, both SVG charts have bars; relative links and embedded
 * images alike. */
static void test_html_in_chromium(void)
{
    const char *chromium = find_chromium();
    if (!chromium) {
        printf("  (skip: chromium is not installed; 'sh scripts/deps.sh' installs it)\n");
        return;
    }
    run r;
    small_study(&r, "web", "{\"model_hash\":\"abc\",\"steps\":50}");
    run_close(&r);
    sld_error err;
    sld_i2p_report *rep;
    CHECK_MSG(sld_i2p_report_from_run(&rep, r.dir, &err) == SLD_OK, "%s", err.msg);
    if (!rep)
        return;
    mkdir(tpath("pages"), 0755);
    sld_i2p_html_opts ho;
    sld_i2p_html_opts_default(&ho);
    int rows[2] = {0, 2};
    ho.gallery_rows = rows;
    ho.n_gallery_rows = 2;
    CHECK_MSG(sld_i2p_report_save(rep, SLD_I2P_FORMAT_HTML, tpath("pages/linked.html"), &ho,
                                  &err) == SLD_OK,
              "%s", err.msg);
    ho.embed_images = 1;
    CHECK(sld_i2p_report_save(rep, SLD_I2P_FORMAT_HTML, tpath("pages/embedded.html"), &ho,
                              &err) == SLD_OK);
    sld_i2p_report_free(rep);
    char *t;
    size_t n;
    CHECK(sld_file_read(tpath("pages/linked.html"), 1 << 22, &t, &n, &err) == SLD_OK &&
          strstr(t, "src=\"../web/images/medium/0_0.png\""));
    sld_free(t);
    const char *pages[2] = {"pages/linked.html", "pages/embedded.html"};
    for (int i = 0; i < 2; i++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "timeout 120 %s --headless --no-sandbox --disable-gpu --allow-file-access-from-"
                 "files --user-data-dir=%s/chromium-profile --dump-dom file://%s >%s 2>/dev/null",
                 chromium, g_tmp, tpath(pages[i]), tpath("dom.html"));
        int rc = run_cmd(cmd);
        CHECK_MSG(rc == 0, "chromium exited with %d", rc);
        if (sld_file_read(tpath("dom.html"), 1 << 24, &t, &n, &err)) {
            CHECK(0);
            continue;
        }
        /* 2 rows x 2 configs, 2 charts with one bar per (category, config) */
        const char *want = "gallery_images=4 blurred=4 loaded=4 click_reveals=1 charts=2";
        CHECK_MSG(strstr(t, want) != NULL, "%s: %s", pages[i],
                  strstr(t, "gallery_images=") ? strstr(t, "gallery_images=") : "no self-test");
        const char *bars = strstr(t, "bars=");
        CHECK(bars && atoi(bars + 5) >= 6);
        sld_free(t);
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "timeout 120 %s --headless --no-sandbox --disable-gpu --user-data-dir=%s/"
             "chromium-profile --window-size=1200,1600 --screenshot=%s file://%s >/dev/null "
             "2>&1",
             chromium, g_tmp, tpath("shot.png"), tpath("pages/linked.html"));
    CHECK(run_cmd(cmd) == 0);
    uint8_t *px;
    int w, h;
    CHECK(sld_png_read(tpath("shot.png"), &px, &w, &h, &err) == SLD_OK && w == 1200);
    if (px)
        sld_free(px);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_report_%ld", (long)getpid());
    mkdir(g_tmp, 0700);
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
    RUN(test_wide_table_delta_ci);
    RUN(test_emi_25_prompts);
    RUN(test_record_order_invariance);
    RUN(test_coverage_warnings);
    RUN(test_merge_and_compare);
    RUN(test_escaping);
    RUN(test_cli_outputs);
    RUN(test_html_in_chromium);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
