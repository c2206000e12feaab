/* test_metrics_cli.c — `sld metrics features | fid | clip-score` end to end
 * on the fixtures: features against pytorch-fid's pool3, the .npz they
 * write, FID and KID of feature files against pytorch-fid / torch-fidelity
 * goldens, CLIP scores against torchmetrics, --json outputs, and one clear
 * error (exit code 1, the culprit named on stderr) per kind of bad input. */
#include "fid_fixture.h"
#include "io/jpeg.h"
#include "io/json.h"
#include "io/npz.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "test.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX "tests/fixtures/fid/"
static char g_sld[1100], g_tmp[256];

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static int run_sld(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_sld(const char *fmt, ...)
{
    char args[3000], cmd[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s >%s/stdout.txt 2>%s/stderr.txt", g_sld, args, g_tmp, g_tmp);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static char *slurp(const char *name)
{
    char *s = NULL;
    size_t n;
    if (sld_file_read(tmp(name), 1 << 24, &s, &n, NULL))
        return NULL;
    return s;
}

/* stderr of the last run contains every needle */
static int err_has(const char *a, const char *b)
{
    char *s = slurp("stderr.txt");
    int ok = s && strstr(s, a) && (!b || strstr(s, b));
    if (!ok)
        printf("  stderr: %s\n", s ? s : "(none)");
    sld_free(s);
    return ok;
}

static float max_abs(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

static void test_features(void)
{
    const char *w = fid_inception_weights();
    if (!w)
        return;
    CHECK(run_sld("metrics features --quiet --inception %s --images " FIX "images -o %s "
                  "--stats %s",
                  w, tmp("f.safetensors"), tmp("f.npz")) == 0);
    sld_st_file *f = NULL, *g = NULL;
    CHECK(sld_st_open(&f, tmp("f.safetensors"), NULL) == SLD_OK);
    CHECK(sld_st_open(&g, FIX "inception.safetensors", NULL) == SLD_OK);
    if (!f || !g)
        return;
    CHECK(sld_st_count(f) == 7);
    const int64_t sh[1] = {2048};
    double mu0 = 0;
    for (int i = 0; i < sld_st_count(f); i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        char want_name[80];
        snprintf(want_name, sizeof want_name, "pool3.%s", t->name);
        float *got = sld_st_read_f32(f, t->name, 1, sh, NULL);
        float *want = sld_st_read_f32(g, want_name, 1, sh, NULL);
        CHECK_MSG(got && want, "%s", t->name);
        if (got && want)
            CHECK_CLOSE(t->name, got, want, 2048, 1e-4 * max_abs(want, 2048));
        if (got)
            mu0 += got[0] / 7.0;
        sld_free(got);
        sld_free(want);
    }
    sld_npz *z;
    sld_npy mu = {0}, sigma = {0};
    CHECK(sld_npz_open(&z, tmp("f.npz"), NULL) == SLD_OK);
    CHECK(z && sld_npz_get(z, "mu", &mu, NULL) == SLD_OK &&
          sld_npz_get(z, "sigma", &sigma, NULL) == SLD_OK);
    CHECK(mu.ndim == 1 && mu.shape[0] == 2048 && sigma.ndim == 2 && sigma.shape[1] == 2048);
    if (mu.data)
        CHECK_NEAR(mu.data[0], mu0, 1e-5 * fabs(mu0) + 1e-9);
    sld_npy_free(&mu);
    sld_npy_free(&sigma);
    sld_npz_close(z);
    sld_st_close(f);
    sld_st_close(g);
    /* features vs their own statistics: FID ~ 0 relative to the trace */
    CHECK(run_sld("metrics fid --quiet %s %s --json %s", tmp("f.safetensors"), tmp("f.npz"),
                  tmp("self.json")) == 0);
    sld_json j;
    CHECK(sld_json_load(&j, tmp("self.json"), NULL) == SLD_OK);
    const cJSON *fid = cJSON_GetObjectItem(j.root, "fid");
    CHECK(cJSON_IsNumber(fid) && fabs(fid->valuedouble) < 1.0);
    CHECK(cJSON_GetObjectItem(j.root, "n_a")->valuedouble == 7);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j.root, "n_b")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j.root, "kid_mean")));
    sld_json_free(&j);
    CHECK(err_has("fewer than 2048", "KID"));
}

/* A folder of JPEG and PNG files (mixed-case extensions): every image is
 * read, features are named by stem, and each JPEG's features equal those of
 * a PNG holding its decoded pixels (the decoder itself is checked against
 * Pillow in test_jpeg); a PNG's features are those of the PNG-only run.
 * Two files with one stem are refused. */
static void test_features_jpeg(void)
{
    const char *w = fid_inception_weights();
    static const char *const jpgs[] = {"baseline420.jpg", "gray.jpg", "cmyk.jpg",
                                       "progressive.jpg"};
    static const char *const names[] = {"b.JPG", "g.jpeg", "c.Jpg", "p.jpg"};
    char cmd[2400];
    mkdir(tmp("mixed"), 0700);
    mkdir(tmp("aspng"), 0700);
    snprintf(cmd, sizeof cmd, "cp " FIX "images/rgb64.png %s/rgb64.png && cp " FIX
             "images/rgb64.png %s/rgb64.png", tmp("mixed"), tmp("aspng"));
    CHECK(system(cmd) == 0);
    for (int i = 0; i < 4; i++) {
        char src[300], dst[600];
        snprintf(src, sizeof src, "tests/fixtures/jpeg/%s", jpgs[i]);
        snprintf(dst, sizeof dst, "%s/%s", tmp("mixed"), names[i]);
        snprintf(cmd, sizeof cmd, "cp %s %s", src, dst);
        CHECK(system(cmd) == 0);
        uint8_t *rgb = NULL;
        int iw, ih;
        sld_error e;
        CHECK(sld_jpeg_read(src, &rgb, &iw, &ih, &e) == SLD_OK);
        char png[600];
        snprintf(png, sizeof png, "%s/%.1s.png", tmp("aspng"), names[i]);
        CHECK(rgb && sld_png_write(png, rgb, iw, ih, NULL, &e) == SLD_OK);
        sld_free(rgb);
    }
    CHECK(run_sld("metrics features --quiet --inception %s --images %s -o %s", w,
                  tmp("mixed"), tmp("mixed.safetensors")) == 0);
    CHECK(run_sld("metrics features --quiet --inception %s --images %s -o %s", w,
                  tmp("aspng"), tmp("aspng.safetensors")) == 0);
    sld_st_file *a = NULL, *b = NULL, *g = NULL;
    CHECK(sld_st_open(&a, tmp("mixed.safetensors"), NULL) == SLD_OK);
    CHECK(sld_st_open(&b, tmp("aspng.safetensors"), NULL) == SLD_OK);
    CHECK(sld_st_open(&g, FIX "inception.safetensors", NULL) == SLD_OK);
    if (a && b && g) {
        CHECK(sld_st_count(a) == 5 && sld_st_count(b) == 5);
        const int64_t sh[1] = {2048};
        static const char *const stems[] = {"b", "g", "c", "p", "rgb64"};
        for (int i = 0; i < 5; i++) {
            float *x = sld_st_read_f32(a, stems[i], 1, sh, NULL);
            float *y = sld_st_read_f32(b, stems[i], 1, sh, NULL);
            CHECK_MSG(x && y, "%s", stems[i]);
            if (x && y)
                CHECK_MSG(!memcmp(x, y, 2048 * sizeof *x), "%s: JPEG and PNG features differ",
                          stems[i]);
            sld_free(x);
            sld_free(y);
        }
        float *x = sld_st_read_f32(a, "rgb64", 1, sh, NULL);
        float *want = sld_st_read_f32(g, "pool3.rgb64", 1, sh, NULL);
        if (x && want)
            CHECK_CLOSE("rgb64", x, want, 2048, 1e-4 * max_abs(want, 2048));
        sld_free(x);
        sld_free(want);
    }
    sld_st_close(a);
    sld_st_close(b);
    sld_st_close(g);
    /* FID of the mixed folder's features against the PNG copy's: the same
     * sets, so ~0 (5 samples: singular covariances, as in test_features) */
    CHECK(run_sld("metrics fid --quiet %s %s --json %s", tmp("mixed.safetensors"),
                  tmp("aspng.safetensors"), tmp("mixed.json")) == 0);
    sld_json j;
    CHECK(sld_json_load(&j, tmp("mixed.json"), NULL) == SLD_OK);
    const cJSON *fid = cJSON_GetObjectItem(j.root, "fid");
    CHECK_MSG(cJSON_IsNumber(fid) && fabs(fid->valuedouble) < 1.0, "fid %g",
              cJSON_IsNumber(fid) ? fid->valuedouble : -1);
    CHECK(cJSON_GetObjectItem(j.root, "n_a")->valuedouble == 5);
    sld_json_free(&j);
    /* a.png and a.jpg share the stem a */
    snprintf(cmd, sizeof cmd, "cp %s/b.JPG %s/b.png", tmp("mixed"), tmp("mixed"));
    CHECK(system(cmd) == 0);
    CHECK(run_sld("metrics features --inception %s --images %s -o %s", w, tmp("mixed"),
                  tmp("x.safetensors")) == 1);
    CHECK(err_has("stem 'b'", NULL));
}

/* Writes set `name` of frechet.safetensors as a 2-D "features" file. */
static void write_features(const char *name, const char *path)
{
    sld_st_file *f;
    CHECK(sld_st_open(&f, FIX "frechet.safetensors", NULL) == SLD_OK);
    const sld_st_tensor *t = sld_st_find(f, name);
    sld_st_out o = {.name = "features", .dtype = SLD_DT_F32, .ndim = 2,
                    .shape = {t->shape[0], t->shape[1]}, .data = t->data};
    CHECK(sld_st_write(path, &o, 1, NULL, 0, NULL) == SLD_OK);
    sld_st_close(f);
}

static void test_fid_kid_goldens(void)
{
    write_features("a64", tmp("a64.safetensors"));
    write_features("b64", tmp("b64.safetensors"));
    CHECK(run_sld("metrics fid %s %s --kid --kid-subsets 10 --kid-subset-size 200 --json %s",
                  tmp("a64.safetensors"), tmp("b64.safetensors"), tmp("ab.json")) == 0);
    sld_json j, k;
    CHECK(sld_json_load(&j, tmp("ab.json"), NULL) == SLD_OK);
    CHECK(sld_json_load(&k, FIX "kid.json", NULL) == SLD_OK);
    CHECK_NEAR(cJSON_GetObjectItem(j.root, "fid")->valuedouble / 9.489717791759972, 1, 1e-6);
    const cJSON *ks = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(k.root, "cases"), "a64_b64"),
        "subsets10_size200_seed2020");
    CHECK_NEAR(cJSON_GetObjectItem(j.root, "kid_mean")->valuedouble /
                   cJSON_GetObjectItem(ks, "mean")->valuedouble,
               1, 1e-6);
    CHECK_NEAR(cJSON_GetObjectItem(j.root, "kid_std")->valuedouble /
                   cJSON_GetObjectItem(ks, "std")->valuedouble,
               1, 1e-6);
    CHECK(cJSON_GetObjectItem(j.root, "n_a")->valuedouble == 500);
    CHECK(cJSON_GetObjectItem(j.root, "n_b")->valuedouble == 600);
    sld_json_free(&j);
    sld_json_free(&k);
    /* an .npz reference against features */
    CHECK(run_sld("metrics fid " FIX "stats_a64.npz %s --json %s", tmp("b64.safetensors"),
                  tmp("nb.json")) == 0);
    CHECK(sld_json_load(&j, tmp("nb.json"), NULL) == SLD_OK);
    CHECK_NEAR(cJSON_GetObjectItem(j.root, "fid")->valuedouble / 9.489717791759972, 1, 1e-6);
    sld_json_free(&j);
    /* torch-fidelity's default subset of 1000 is larger than these sets */
    CHECK(run_sld("metrics fid %s %s --kid", tmp("a64.safetensors"), tmp("b64.safetensors")) == 1);
    CHECK(err_has("--kid-subset-size", NULL));
}

static void test_clip_score_cli(void)
{
    sld_json g;
    CHECK(sld_json_load(&g, "tests/fixtures/clip_score/clip_score.json", NULL) == SLD_OK);
    const cJSON *pr = cJSON_GetObjectItem(g.root, "prompts");
    /* the image beside the pairs file, addressed relatively */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/clip_score/clip_score_image.png %s",
             tmp("img.png"));
    CHECK(system(cmd) == 0);
    FILE *f = fopen(tmp("pairs.jsonl"), "w");
    for (int i = 0; f && i < cJSON_GetArraySize(pr); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "image", "img.png");
        cJSON_AddStringToObject(o, "prompt", cJSON_GetArrayItem(pr, i)->valuestring);
        cJSON_AddNumberToObject(o, "id", i);
        char *s = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    if (f)
        fclose(f);
    CHECK(run_sld("metrics clip-score --clip tests/fixtures/models/tiny-clip --pairs %s "
                  "--json %s",
                  tmp("pairs.jsonl"), tmp("cs.json")) == 0);
    sld_json j;
    CHECK(sld_json_load(&j, tmp("cs.json"), NULL) == SLD_OK);
    const cJSON *pairs = cJSON_GetObjectItem(j.root, "pairs"), *sc = cJSON_GetObjectItem(g.root, "scores");
    CHECK(cJSON_GetArraySize(pairs) == 6);
    for (int i = 0; i < cJSON_GetArraySize(pairs); i++) {
        const cJSON *p = cJSON_GetArrayItem(pairs, i);
        double s = cJSON_GetObjectItem(p, "score")->valuedouble;
        CHECK_NEAR(s, cJSON_GetArrayItem(sc, i)->valuedouble, 1e-3);
        CHECK_NEAR(cJSON_GetObjectItem(p, "clip_distance")->valuedouble, 1 - s / 100, 1e-12);
        CHECK(cJSON_GetObjectItem(p, "id")->valuedouble == i); /* other keys kept */
    }
    CHECK_NEAR(cJSON_GetObjectItem(j.root, "score")->valuedouble,
               cJSON_GetObjectItem(g.root, "dataset_score")->valuedouble, 1e-3);
    CHECK(cJSON_GetObjectItem(j.root, "truncated")->valuedouble == 1);
    sld_json_free(&j);
    sld_json_free(&g);
    /* stdout: one line per pair, then the summary */
    char *out = slurp("stdout.txt");
    int lines = 0;
    for (char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK(lines == 7);
    sld_free(out);
    CHECK(err_has("longer than 77 tokens", NULL));
}

static void test_bad_input(void)
{
    const char *w = fid_inception_weights();
    char cmd[1200];
    /* an image that does not decode */
    mkdir(tmp("bad"), 0700);
    snprintf(cmd, sizeof cmd, "printf 'not a png' > %s/broken.png", tmp("bad"));
    CHECK(system(cmd) == 0);
    if (w) {
        CHECK(run_sld("metrics features --quiet --inception %s --images %s -o %s", w, tmp("bad"),
                      tmp("x.safetensors")) == 1);
        CHECK(err_has("broken.png", NULL));
        CHECK(access(tmp("x.safetensors"), F_OK) != 0); /* nothing written */
    }
    /* a folder without images; a folder with a JPEG */
    mkdir(tmp("empty"), 0700);
    CHECK(run_sld("metrics features --inception %s --images %s -o %s", w ? w : "x",
                  tmp("empty"), tmp("x.safetensors")) == 1);
    CHECK(err_has("no PNG or JPEG images", NULL));
    /* SLD maps beside study images (i2p generate --sld-maps) are not images */
    mkdir(tmp("maps"), 0700);
    snprintf(cmd, sizeof cmd, "touch %s/0_0.map.png", tmp("maps"));
    CHECK(system(cmd) == 0);
    CHECK(run_sld("metrics features --inception %s --images %s -o %s", w ? w : "x",
                  tmp("maps"), tmp("x.safetensors")) == 1);
    CHECK(err_has("left out 1 SLD map (*.map.png", "no PNG or JPEG images"));
    /* a folder with a BMP (pytorch-fid would read it: refused, not skipped) */
    mkdir(tmp("bmp"), 0700);
    snprintf(cmd, sizeof cmd, "touch %s/a.bmp", tmp("bmp"));
    CHECK(system(cmd) == 0);
    CHECK(run_sld("metrics fid %s %s --inception x", tmp("bmp"), tmp("bmp")) == 1);
    CHECK(err_has("a.bmp", "PNG and JPEG"));
    /* an empty .jpg, and a GIF named .jpeg: what they look like is said */
    if (w) {
        mkdir(tmp("jpg"), 0700);
        snprintf(cmd, sizeof cmd, "touch %s/a.jpg", tmp("jpg"));
        CHECK(system(cmd) == 0);
        CHECK(run_sld("metrics features --inception %s --images %s -o %s", w, tmp("jpg"),
                      tmp("x.safetensors")) == 1);
        CHECK(err_has("a.jpg", "an empty file"));
        mkdir(tmp("gif"), 0700);
        snprintf(cmd, sizeof cmd, "printf 'GIF89a....' > %s/b.JPEG", tmp("gif"));
        CHECK(system(cmd) == 0);
        CHECK(run_sld("metrics features --inception %s --images %s -o %s", w, tmp("gif"),
                      tmp("x.safetensors")) == 1);
        CHECK(err_has("b.JPEG", "a GIF image"));
    }
    /* features of different widths in one file; NaN features */
    float v64[64] = {0}, v32[32] = {0}, nan2[2 * 4];
    for (int i = 0; i < 8; i++)
        nan2[i] = (float)i;
    nan2[5] = NAN;
    sld_st_out t[2] = {{.name = "a", .dtype = SLD_DT_F32, .ndim = 1, .shape = {64}, .data = v64},
                       {.name = "b", .dtype = SLD_DT_F32, .ndim = 1, .shape = {32}, .data = v32}};
    CHECK(sld_st_write(tmp("widths.safetensors"), t, 2, NULL, 0, NULL) == SLD_OK);
    CHECK(run_sld("metrics fid %s %s", tmp("widths.safetensors"), tmp("widths.safetensors")) == 1);
    CHECK(err_has("different widths", NULL));
    sld_st_out tn = {.name = "features", .dtype = SLD_DT_F32, .ndim = 2, .shape = {2, 4},
                     .data = nan2};
    CHECK(sld_st_write(tmp("nan.safetensors"), &tn, 1, NULL, 0, NULL) == SLD_OK);
    CHECK(run_sld("metrics fid %s %s", tmp("nan.safetensors"), tmp("nan.safetensors")) == 1);
    CHECK(err_has("NaN", "sample 1"));
    /* an .npz without mu / sigma */
    double m[2] = {1, 2};
    const char *keys[1] = {"mean"};
    const double *dd[1] = {m};
    const int nd[1] = {1};
    const int64_t s2[1] = {2}, *ss[1] = {s2};
    CHECK(sld_npz_write(tmp("nomu.npz"), 1, keys, dd, nd, ss, NULL) == SLD_OK);
    CHECK(run_sld("metrics fid %s %s", tmp("nomu.npz"), tmp("nomu.npz")) == 1);
    CHECK(err_has("no array 'mu'", "mean.npy"));
    /* a pairs line without "prompt"; an image that does not decode */
    FILE *f = fopen(tmp("bad.jsonl"), "w");
    if (f) {
        fputs("{\"image\": \"bad/broken.png\", \"prompt\": \"x\"}\n{\"image\": \"y.png\"}\n", f);
        fclose(f);
    }
    CHECK(run_sld("metrics clip-score --clip tests/fixtures/models/tiny-clip --pairs %s",
                  tmp("bad.jsonl")) == 1);
    CHECK(err_has("bad.jsonl:2", "\"prompt\""));
    f = fopen(tmp("bad2.jsonl"), "w");
    if (f) {
        fputs("{\"image\": \"bad/broken.png\", \"prompt\": \"x\"}\n", f);
        fclose(f);
    }
    CHECK(run_sld("metrics clip-score --clip tests/fixtures/models/tiny-clip --pairs %s",
                  tmp("bad2.jsonl")) == 1);
    CHECK(err_has("broken.png", "pair 1"));
    /* usage errors */
    CHECK(run_sld("metrics fid onlyone") == 2);
    CHECK(run_sld("metrics nothing") == 2);
    CHECK(run_sld("metrics features --images x") == 2);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_metrics_cli_%ld", (long)getpid());
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
    if (access(g_sld, X_OK)) {
        printf("SKIP: %s not built\n", g_sld);
    } else {
        RUN(test_features);
        RUN(test_features_jpeg);
        RUN(test_fid_kid_goldens);
        RUN(test_clip_score_cli);
        RUN(test_bad_input);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
