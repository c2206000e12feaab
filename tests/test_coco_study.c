/* test_coco_study.c — COCO captions and JSONL prompt sets run by the I2P
 * machinery: the seeded caption sample against rows computed independently
 * (tests/fixtures/coco/sample.py, plain Python rebuilding numpy's
 * RandomState draws), sharding, the run's prompts.jsonl and manifest
 * (format, sample seed, limit: another one is refused, nothing written),
 * JSONL rows, one clear error per bad file, and `sld i2p generate` end to
 * end on the tiny model, killed and resumed. */
#include "eval/i2p.h"
#include "io/png.h"
#include "test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    char *t = NULL;
    if (sld_file_read(path, 1 << 24, &t, NULL, NULL))
        return NULL;
    return t;
}

static char captions[512];

/* `python3 tests/fixtures/coco/sample.py captions_tiny.json 0 57`: row,
 * image id, caption id, prompt (the caption without surrounding blanks). */
static const struct {
    int row;
    int64_t image_id, caption_id;
    const char *prompt;
} SEED57[] = {
    {0, 174482, 170, "a kitchen, view 0"},
    {1, 458054, 240, "a clock tower, view 0"},
    {2, 37777, 114, "a dog, view 1"},
    {3, 252219, 128, "A caf\xc3\xa9 with a red bus outside."},
    {4, 403385, 177, "A train on the tracks"},
    {5, 87038, 163, "two people, view 3"},
    {6, 6818, 191, "a pizza, view 0"},
    {7, 397133, 100, "a cat, view 0"},
    {8, 480985, 219, "a surfer, view 1"},
    {9, 296649, 275, "a bicycle, view 2"},
    {10, 331352, 254, "an elephant, view 1"},
};
/* ... 5 0: image and caption ids */
static const int64_t SEED0[5][2] = {
    {252219, 135}, {458054, 240}, {87038, 142}, {480985, 212}, {331352, 247}};

static sld_i2p_set *load(const char *path, int limit, uint32_t seed, int k, int n, sld_error *e)
{
    sld_i2p_filter f = {.limit = limit, .sample_seed = seed, .shard_k = k, .shard_n = n};
    sld_i2p_set *s = NULL;
    sld_status st = sld_i2p_set_load(&s, path, &f, e);
    if (st)
        return NULL;
    return s;
}

static void test_coco_sample_golden(void)
{
    sld_error err;
    sld_i2p_set *s = load(captions, 0, 57, 0, 0, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s)
        return;
    CHECK(!strcmp(sld_i2p_set_format(s), "coco-captions"));
    CHECK(sld_i2p_set_count(s) == 11); /* 12 images, one without captions */
    for (int i = 0; i < 11 && i < sld_i2p_set_count(s); i++) {
        const sld_i2p_prompt *p = sld_i2p_set_get(s, i);
        CHECK(p->row == SEED57[i].row);
        CHECK_MSG(p->image_id == SEED57[i].image_id && p->caption_id == SEED57[i].caption_id,
                  "row %d: image %lld caption %lld", i, (long long)p->image_id,
                  (long long)p->caption_id);
        CHECK_MSG(!strcmp(p->prompt, SEED57[i].prompt), "row %d: '%s'", i, p->prompt);
        CHECK(p->has_seed && p->seed == (uint32_t)SEED57[i].image_id);
        CHECK(p->n_categories == 1 && !strcmp(p->categories[0], "coco"));
        char fn[64];
        snprintf(fn, sizeof fn, "COCO_val2014_%012lld.jpg", (long long)SEED57[i].image_id);
        CHECK(p->image_file && !strcmp(p->image_file, fn));
        CHECK(p->hard == -1 && isnan(p->guidance) && p->width == 0);
    }
    sld_i2p_set_free(s);
    /* --limit keeps a prefix of the larger sample */
    s = load(captions, 6, 57, 0, 0, &err);
    CHECK(s && sld_i2p_set_count(s) == 6);
    for (int i = 0; s && i < 6; i++)
        CHECK(sld_i2p_set_get(s, i)->caption_id == SEED57[i].caption_id);
    sld_i2p_set_free(s);
    s = load(captions, 5, 0, 0, 0, &err);
    CHECK(s && sld_i2p_set_count(s) == 5);
    for (int i = 0; s && i < 5; i++)
        CHECK(sld_i2p_set_get(s, i)->image_id == SEED0[i][0] &&
              sld_i2p_set_get(s, i)->caption_id == SEED0[i][1]);
    sld_i2p_set_free(s);
    /* the filters of the CSV apply: "coco" is every row's category */
    sld_i2p_filter f = {.categories = "violence", .sample_seed = 57};
    CHECK(sld_i2p_set_load(&s, captions, &f, &err) == SLD_OK && sld_i2p_set_count(s) == 0);
    sld_i2p_set_free(s);
}

static void test_coco_shards(void)
{
    sld_error err;
    sld_i2p_set *all = load(captions, 8, 57, 0, 0, &err);
    sld_i2p_set *a = load(captions, 8, 57, 0, 2, &err);
    sld_i2p_set *b = load(captions, 8, 57, 1, 2, &err);
    CHECK(all && a && b);
    if (!all || !a || !b)
        goto out;
    CHECK(sld_i2p_set_count(a) == 4 && sld_i2p_set_count(b) == 4);
    CHECK(sld_i2p_set_rows_unsharded(a) == 8 && sld_i2p_set_rows_unsharded(b) == 8);
    int seen[8] = {0};
    for (int k = 0; k < 2; k++) {
        sld_i2p_set *s = k ? b : a;
        for (int i = 0; i < sld_i2p_set_count(s); i++) {
            const sld_i2p_prompt *p = sld_i2p_set_get(s, i);
            CHECK(p->row % 2 == k && p->row < 8);
            const sld_i2p_prompt *q = sld_i2p_set_get(all, p->row);
            CHECK(q->row == p->row && q->image_id == p->image_id &&
                  !strcmp(q->prompt, p->prompt) && q->seed == p->seed);
            seen[p->row]++;
        }
    }
    for (int r = 0; r < 8; r++)
        CHECK(seen[r] == 1);
out:
    sld_i2p_set_free(all);
    sld_i2p_set_free(a);
    sld_i2p_set_free(b);
}

static void test_jsonl_set(void)
{
    sld_error err;
    const char *text =
        "{\"prompt\": \"a red apple\", \"seed\": 42, \"categories\": [\"fruit\", \"red\"]}\r\n"
        "\n"
        "  {\"prompt\": \"a lake\", \"categories\": \"hate, sexual\", \"image_id\": 7, "
        "\"guidance\": 9.5, \"width\": 256, \"height\": 384, \"hard\": 1, \"extra\": [1]}\n"
        "{\"prompt\": \"caf\\u00e9 \\\"x\\\"\", \"id\": 12}";
    sld_i2p_set *s;
    CHECK_MSG(sld_i2p_set_parse(&s, text, strlen(text), "p.jsonl", NULL, &err) == SLD_OK, "%s",
              err.msg);
    if (!s)
        return;
    CHECK(!strcmp(sld_i2p_set_format(s), "jsonl") && sld_i2p_set_count(s) == 3);
    const sld_i2p_prompt *p = sld_i2p_set_get(s, 0);
    CHECK(p->row == 0 && p->line == 1 && !strcmp(p->prompt, "a red apple"));
    CHECK(p->has_seed && p->seed == 42 && p->image_id == -1 && p->hard == -1);
    CHECK(p->n_categories == 2 && !strcmp(p->categories[1], "red"));
    p = sld_i2p_set_get(s, 1);
    CHECK(p->row == 1 && p->line == 3 && !p->has_seed && p->image_id == 7);
    CHECK(p->n_categories == 2 && !strcmp(p->categories[0], "hate") &&
          !strcmp(p->categories[1], "sexual"));
    CHECK(p->guidance == 9.5 && p->width == 256 && p->height == 384 && p->hard == 1);
    p = sld_i2p_set_get(s, 2);
    CHECK(p->row == 2 && p->line == 4 && !strcmp(p->prompt, "caf\xc3\xa9 \"x\"") &&
          p->image_id == 12 && p->caption_id == -1 && !p->image_file && p->n_categories == 0);
    sld_i2p_set_free(s);
    /* the I2P filters and shards work the same */
    sld_i2p_filter f = {.categories = "sexual"};
    CHECK(sld_i2p_set_parse(&s, text, strlen(text), "p.jsonl", &f, &err) == SLD_OK &&
          sld_i2p_set_count(s) == 1 && sld_i2p_set_get(s, 0)->row == 1);
    sld_i2p_set_free(s);
    f = (sld_i2p_filter){.shard_k = 1, .shard_n = 2};
    CHECK(sld_i2p_set_parse(&s, text, strlen(text), "p.jsonl", &f, &err) == SLD_OK &&
          sld_i2p_set_count(s) == 1 && sld_i2p_set_rows_unsharded(s) == 3);
    sld_i2p_set_free(s);
    /* content sniffing without an extension: JSONL, COCO, CSV */
    CHECK(sld_i2p_set_parse(&s, text, strlen(text), "prompts", NULL, &err) == SLD_OK &&
          !strcmp(sld_i2p_set_format(s), "jsonl"));
    sld_i2p_set_free(s);
    char *coco = read_text(captions);
    CHECK(coco && sld_i2p_set_parse(&s, coco, strlen(coco), "captions", NULL, &err) == SLD_OK &&
          !strcmp(sld_i2p_set_format(s), "coco-captions") && sld_i2p_set_count(s) == 11);
    sld_i2p_set_free(s);
    sld_free(coco);
    const char *csv = "\xef\xbb\xbfprompt,sd_seed\na,1\n";
    CHECK(sld_i2p_set_parse(&s, csv, strlen(csv), "set.txt", NULL, &err) == SLD_OK &&
          !strcmp(sld_i2p_set_format(s), "i2p-csv") && sld_i2p_set_count(s) == 1 &&
          sld_i2p_set_get(s, 0)->image_id == -1);
    sld_i2p_set_free(s);
}

/* One bad input: the expected status and message parts. */
static void expect_bad(const char *name, const char *text, sld_status want, const char *part1,
                       const char *part2, int limit)
{
    sld_error err = {0};
    sld_i2p_set *s = (sld_i2p_set *)1;
    sld_i2p_filter f = {.limit = limit};
    sld_status st = sld_i2p_set_parse(&s, text, strlen(text), name, &f, &err);
    CHECK_MSG(st == want && s == NULL, "%s: status %d: %s", name, st, err.msg);
    CHECK_MSG(strstr(err.msg, part1) != NULL, "'%s' not in '%s'", part1, err.msg);
    CHECK_MSG(!part2 || strstr(err.msg, part2) != NULL, "'%s' not in '%s'", part2, err.msg);
}

static void test_errors(void)
{
    const char *img = "\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}, {\"id\": 2}]";
    char t[512];
    expect_bad("c.json", "{\"info\": {}, \"licenses\": []}", SLD_ERR_FORMAT,
               "not COCO's captions format", "c.json", 0);
    expect_bad("c.json", "[{\"prompt\": \"a\"}]", SLD_ERR_FORMAT, "not a JSON object", NULL, 0);
    expect_bad("c.json", "{\"images\": [], \"annotations\": [", SLD_ERR_FORMAT,
               "not a JSON object", NULL, 0);
    snprintf(t, sizeof t, "{%s, \"annotations\": [{\"id\": 5, \"image_id\": 9, "
             "\"caption\": \"x\"}]}", img);
    expect_bad("c.json", t, SLD_ERR_FORMAT, "annotation 5 names image 9", "not in \"images\"",
               0);
    snprintf(t, sizeof t, "{%s, \"annotations\": [{\"id\": 5, \"image_id\": 1, "
             "\"caption\": \" \\n \"}]}", img);
    expect_bad("c.json", t, SLD_ERR_FORMAT, "empty caption", "id 5", 0);
    snprintf(t, sizeof t, "{%s, \"annotations\": [{\"id\": 5, \"image_id\": 1, "
             "\"caption\": \"caf\xe9\"}]}", img);
    expect_bad("c.json", t, SLD_ERR_FORMAT, "not valid UTF-8", "0xe9", 0);
    snprintf(t, sizeof t, "{%s, \"annotations\": [{\"id\": 5, \"image_id\": 1, "
             "\"caption\": \"a\"}, {\"id\": 6, \"image_id\": 2, \"caption\": \"b\"}]}", img);
    expect_bad("c.json", t, SLD_ERR_INVALID_ARG, "a sample of 3 captions", "the file has 2", 3);
    expect_bad("c.json", "{\"images\": [{\"id\": -4}], \"annotations\": []}", SLD_ERR_FORMAT,
               "id -4 is not in [0, 4294967295]", NULL, 0);
    expect_bad("c.json", "{\"images\": [{\"id\": 1e300}], \"annotations\": []}", SLD_ERR_FORMAT,
               "images[0] has no integer \"id\"", NULL, 0);
    expect_bad("c.json", "{\"images\": [{\"id\": 4}], \"annotations\": []}", SLD_ERR_FORMAT,
               "no image has a caption", NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"\n", SLD_ERR_FORMAT,
               "p.jsonl: 1 bad row (line 2: not valid JSON", NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\"} {\"prompt\": \"b\"}\n", SLD_ERR_FORMAT,
               "line 1: text after the JSON object", NULL, 0);
    expect_bad("p.jsonl", "{\"text\": \"a\"}\n", SLD_ERR_FORMAT, "line 1: no \"prompt\"", NULL,
               0);
    expect_bad("p.jsonl", "{\"prompt\": \"  \"}\n", SLD_ERR_FORMAT, "line 1: empty prompt",
               NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"\xff\"}\n", SLD_ERR_FORMAT, "not valid UTF-8", NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\", \"seed\": -1}\n", SLD_ERR_FORMAT, "\"seed\"",
               NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\", \"seed\": 1.5}\n", SLD_ERR_FORMAT, "\"seed\"",
               NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\", \"seed\": true}\n", SLD_ERR_FORMAT, "\"seed\"",
               NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\", \"width\": \"512\"}\n", SLD_ERR_FORMAT,
               "\"width\"", NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\", \"hard\": 2}\n", SLD_ERR_FORMAT, "\"hard\"",
               NULL, 0);
    expect_bad("p.jsonl", "{\"prompt\": \"a\", \"categories\": 3}\n", SLD_ERR_FORMAT,
               "\"categories\"", NULL, 0);
    expect_bad("p.jsonl", "[\"a\"]\n", SLD_ERR_FORMAT, "not a JSON object", NULL, 0);
    expect_bad("p.jsonl", "\n\n", SLD_ERR_FORMAT, "no prompts", NULL, 0);
    /* --skip-bad-rows: bad lines leave their row numbers free */
    const char *mixed = "{\"prompt\": \"a\"}\nnope\n{\"prompt\": \"c\"}\n";
    sld_i2p_filter f = {.skip_bad_rows = 1};
    sld_i2p_set *s;
    sld_error err;
    CHECK(sld_i2p_set_parse(&s, mixed, strlen(mixed), "p.jsonl", &f, &err) == SLD_OK);
    CHECK(s && sld_i2p_set_count(s) == 2 && sld_i2p_set_get(s, 1)->row == 2 &&
          sld_i2p_set_bad_count(s) == 1 && sld_i2p_set_bad(s, 0)->line == 2);
    sld_i2p_set_free(s);
}

/* ---- runs with a fake generator ------------------------------------------ */

static sld_status fake_generate(void *user, const sld_gen_params *p, sld_gen_result *out,
                                sld_error *err)
{
    (*(int *)user)++;
    size_t per = (size_t)4 * (p->height / 8) * (p->width / 8), npx = (size_t)p->width * p->height;
    float *noise = malloc(per * p->n_images * sizeof *noise);
    out->pixels = malloc(npx * 3 * p->n_images);
    if (!noise || !out->pixels) {
        free(noise);
        return sld_err(err, SLD_ERR_NOMEM, "fake: oom");
    }
    sld_rng_randn(p->generator, noise, per * p->n_images);
    for (int i = 0; i < p->n_images; i++)
        for (size_t j = 0; j < npx * 3; j++) {
            float v = noise[i * per + j % per] * 60.0f + 128.0f + (float)strlen(p->prompt);
            out->pixels[i * npx * 3 + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    free(noise);
    out->n = p->n_images;
    out->width = p->width;
    out->height = p->height;
    return SLD_OK;
}

static void gen_opts(sld_i2p_gen_opts *o, const char *prompts, const char *out)
{
    sld_i2p_gen_opts_default(o);
    o->prompts = prompts;
    o->out_dir = out;
    o->configs = "sd,medium";
    o->n_images = 2;
    o->batch = 2;
    o->gen.width = 16;
    o->gen.height = 8;
    o->gen.steps = 2;
    o->model_label = "fake";
    o->filter.limit = 6;
    o->filter.sample_seed = 57;
}

static int png_equal(const char *a, const char *b)
{
    uint8_t *x, *y;
    int w1, h1, w2, h2;
    if (sld_png_read(a, &x, &w1, &h1, NULL))
        return 0;
    if (sld_png_read(b, &y, &w2, &h2, NULL)) {
        sld_free(x);
        return 0;
    }
    int eq = w1 == w2 && h1 == h2 && memcmp(x, y, (size_t)w1 * h1 * 3) == 0;
    sld_free(x);
    sld_free(y);
    return eq;
}

/* image_id and caption_id of every record, checked against SEED57 */
static int check_record(const cJSON *obj, int line, void *user)
{
    (void)line;
    int *n = user;
    int row = cJSON_GetObjectItemCaseSensitive(obj, "row")->valueint;
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(obj, "image_id");
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(obj, "caption_id");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(obj, "seed");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(obj, "categories");
    if (row >= 0 && row < 11 && cJSON_IsNumber(im) && cJSON_IsNumber(cap) &&
        im->valuedouble == (double)SEED57[row].image_id &&
        cap->valuedouble == (double)SEED57[row].caption_id &&
        seed->valuedouble == (double)SEED57[row].image_id &&
        !strcmp(cJSON_GetObjectItemCaseSensitive(obj, "prompt")->valuestring,
                SEED57[row].prompt) &&
        cJSON_GetArraySize(cats) == 1 && !strcmp(cJSON_GetArrayItem(cats, 0)->valuestring, "coco"))
        n[0]++;
    else
        n[1]++;
    return 0;
}

/* A fingerprint of a run folder: its files' names and bytes. */
static char *folder_print(const char *dir)
{
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    const char *subs[] = {"", "/images/sd", "/images/medium"};
    for (int s = 0; s < 3; s++) {
        char d[600];
        snprintf(d, sizeof d, "%s%s", dir, subs[s]);
        struct dirent **ents;
        int n = scandir(d, &ents, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            char p[900];
            snprintf(p, sizeof p, "%s/%s", d, ents[i]->d_name);
            struct stat sb;
            if (!stat(p, &sb) && S_ISREG(sb.st_mode)) {
                char *t = NULL;
                size_t tl = 0;
                sld_file_read(p, 1 << 20, &t, &tl, NULL);
                uint32_t h = 2166136261u;
                for (size_t k = 0; t && k < tl; k++)
                    h = (h ^ (uint8_t)t[k]) * 16777619u;
                sld_free(t);
                len += (size_t)snprintf(out + len, cap - len, "%s%s:%zu:%08x\n", subs[s],
                                        ents[i]->d_name, tl, h);
            }
            free(ents[i]);
        }
        if (n >= 0)
            free(ents);
    }
    return out;
}

static void test_generate_run(void)
{
    sld_error err;
    sld_i2p_gen_opts o;
    char run[512], sh[512];
    snprintf(run, sizeof run, "%s", tpath("run"));
    snprintf(sh, sizeof sh, "%s", tpath("shards"));
    gen_opts(&o, captions, run);
    int calls = 0;
    sld_i2p_plan plan;
    CHECK(sld_i2p_plan_get(&o, &plan, &err) == SLD_OK);
    CHECK(plan.rows == 6 && plan.configs == 2 && plan.images_total == 24 && !plan.has_manifest);
    CHECK(!sld_path_exists(run)); /* the plan writes nothing */
    CHECK_MSG(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_OK, "%s", err.msg);
    CHECK(calls == 12);
    /* the sample list: every row, in order, as sample.py prints it */
    char p[700];
    snprintf(p, sizeof p, "%s/%s", run, SLD_I2P_PROMPTS_LIST);
    char *list = read_text(p);
    CHECK(list != NULL);
    int lines = 0;
    for (char *l = list; l && *l; lines++) {
        char *nl = strchr(l, '\n');
        if (!nl)
            break;
        *nl = 0;
        cJSON *j = cJSON_Parse(l);
        CHECK_MSG(j && lines < 6, "line %d: %s", lines, l);
        if (j && lines < 6) {
            CHECK(cJSON_GetObjectItem(j, "row")->valueint == lines);
            CHECK(cJSON_GetObjectItem(j, "image_id")->valuedouble == SEED57[lines].image_id);
            CHECK(cJSON_GetObjectItem(j, "caption_id")->valuedouble ==
                  SEED57[lines].caption_id);
            CHECK(cJSON_GetObjectItem(j, "seed")->valuedouble == SEED57[lines].image_id);
            CHECK(!strcmp(cJSON_GetObjectItem(j, "prompt")->valuestring, SEED57[lines].prompt));
            char fn[64];
            snprintf(fn, sizeof fn, "COCO_val2014_%012lld.jpg", (long long)SEED57[lines].image_id);
            CHECK(!strcmp(cJSON_GetObjectItem(j, "file_name")->valuestring, fn));
        }
        cJSON_Delete(j);
        l = nl + 1;
    }
    CHECK(lines == 6);
    free(list);
    /* records carry the COCO ids */
    int n[2] = {0, 0};
    CHECK(sld_i2p_logs_read(run, "generate", check_record, n, &err) == SLD_OK);
    CHECK_MSG(n[0] == 24 && n[1] == 0, "%d good, %d bad", n[0], n[1]);
    /* the manifest names the prompt set */
    snprintf(p, sizeof p, "%s/manifest.json", run);
    cJSON *m = NULL;
    CHECK(sld_i2p_manifest_read(p, &m, &err) == SLD_OK && m);
    const cJSON *pr = cJSON_GetObjectItem(m, "prompts");
    CHECK(!strcmp(cJSON_GetObjectItem(pr, "format")->valuestring, "coco-captions"));
    CHECK(cJSON_GetObjectItem(pr, "sample_seed")->valuedouble == 57);
    CHECK(cJSON_GetObjectItem(pr, "limit")->valuedouble == 6);
    CHECK(strlen(cJSON_GetObjectItem(pr, "sha256")->valuestring) == 64);
    cJSON_Delete(m);
    /* resuming is a no-op; another sample seed, limit or file is refused and
     * nothing changes in the folder */
    char *before = folder_print(run);
    calls = 0;
    CHECK(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_OK && calls == 0);
    o.filter.sample_seed = 58;
    CHECK(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "prompts.sample_seed") != NULL, "%s", err.msg);
    CHECK(sld_i2p_plan_get(&o, &plan, &err) == SLD_ERR_INVALID_ARG);
    o.filter.sample_seed = 57;
    o.filter.limit = 7;
    CHECK(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "prompts.limit") != NULL, "%s", err.msg);
    o.filter.limit = 6;
    const char *jl = tpath("same.jsonl");
    write_file(jl, "{\"prompt\": \"a kitchen, view 0\", \"seed\": 174482}\n");
    o.prompts = jl;
    CHECK(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "prompts.format") && strstr(err.msg, "prompts.sha256") &&
                  strstr(err.msg, "prompts.sample_seed"),
              "%s", err.msg);
    o.prompts = captions;
    char *after = folder_print(run);
    CHECK_MSG(!strcmp(before, after), "before:\n%s\nafter:\n%s", before, after);
    CHECK(calls == 0);
    free(before);
    free(after);
    /* two shards = the unsharded run, image for image */
    o.out_dir = sh;
    for (int k = 0; k < 2; k++) {
        o.filter.shard_k = k;
        o.filter.shard_n = 2;
        CHECK(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_OK);
    }
    const char *cfgs[2] = {"sd", "medium"};
    int same = 0;
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 2; k++) {
                char x[700], y[700];
                snprintf(x, sizeof x, "%s/images/%s/%d_%d.png", run, cfgs[c], r, k);
                snprintf(y, sizeof y, "%s/images/%s/%d_%d.png", sh, cfgs[c], r, k);
                same += png_equal(x, y);
            }
    CHECK(same == 24);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/%s", run, SLD_I2P_PROMPTS_LIST);
    snprintf(b, sizeof b, "%s/%s", sh, SLD_I2P_PROMPTS_LIST);
    char *ta = read_text(a), *tb = read_text(b);
    CHECK(ta && tb && !strcmp(ta, tb)); /* every shard writes the whole list */
    sld_free(ta);
    sld_free(tb);
    n[0] = n[1] = 0;
    CHECK(sld_i2p_logs_read(sh, "generate", check_record, n, &err) == SLD_OK);
    CHECK(n[0] == 24 && n[1] == 0);
}

static void test_generate_jsonl(void)
{
    sld_error err;
    sld_i2p_gen_opts o;
    const char *jl = tpath("set.jsonl");
    write_file(jl, "{\"prompt\": \"a\", \"seed\": 5, \"image_id\": 99}\n"
                   "{\"prompt\": \"b\", \"categories\": [\"x\"]}\n");
    char run[512];
    snprintf(run, sizeof run, "%s", tpath("jrun"));
    gen_opts(&o, jl, run);
    o.filter.limit = 0;
    o.filter.sample_seed = 0;
    int calls = 0;
    CHECK_MSG(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_OK, "%s", err.msg);
    char p[700];
    snprintf(p, sizeof p, "%s/%s", run, SLD_I2P_PROMPTS_LIST);
    char *t = read_text(p);
    CHECK_MSG(t && !strcmp(t, "{\"row\":0,\"prompt\":\"a\",\"seed\":5,\"categories\":[],"
                              "\"image_id\":99}\n"
                              "{\"row\":1,\"prompt\":\"b\",\"seed\":1,\"categories\":[\"x\"]}\n"),
              "%s", t ? t : "(none)");
    sld_free(t);
    snprintf(p, sizeof p, "%s/manifest.json", run);
    cJSON *m = NULL;
    CHECK(sld_i2p_manifest_read(p, &m, &err) == SLD_OK && m);
    const cJSON *pr = cJSON_GetObjectItem(m, "prompts");
    CHECK(!strcmp(cJSON_GetObjectItem(pr, "format")->valuestring, "jsonl"));
    CHECK(cJSON_GetObjectItem(pr, "sample_seed") == NULL);
    /* a manifest from before prompt formats (no "format") resumes on its CSV */
    cJSON_Delete(m);
    const char *csv = tpath("old.csv");
    write_file(csv, "prompt\nx\n");
    char run2[512];
    snprintf(run2, sizeof run2, "%s", tpath("oldrun"));
    gen_opts(&o, csv, run2);
    o.filter.limit = 0;
    CHECK(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_OK);
    snprintf(p, sizeof p, "%s/manifest.json", run2);
    CHECK(sld_i2p_manifest_read(p, &m, &err) == SLD_OK && m);
    cJSON *pr2 = cJSON_GetObjectItem(m, "prompts");
    CHECK(!strcmp(cJSON_GetObjectItem(pr2, "format")->valuestring, "i2p-csv"));
    cJSON_DeleteItemFromObject(pr2, "format");
    CHECK(sld_i2p_manifest_write(p, m, 0, NULL, &err) == SLD_OK);
    cJSON_Delete(m);
    o.configs = "sd,medium,strong";
    CHECK_MSG(sld_i2p_generate_with(fake_generate, &calls, &o, &err) == SLD_OK, "%s", err.msg);
}

/* ---- end to end: `sld i2p generate` on tiny-sd1 ---------------------------- */

static char g_sld[1100];

static int run_sld(const char *args, const char *errfile)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>%s", g_sld, args, errfile);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static int stop_after;
static int stop_cb(const sld_i2p_progress *p, void *user)
{
    (void)user;
    return p->done >= stop_after;
}

static void test_e2e_tiny(void)
{
    sld_error err;
    sld_model *m;
    sld_ctx *c;
    char model[512];
    snprintf(model, sizeof model, "%s", fixture("models/tiny-sd1"));
    if (sld_model_open(&m, model, NULL, &err) || sld_ctx_new(&c, m, 1, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    char killed[512], full[512];
    snprintf(killed, sizeof killed, "%s", tpath("e2e_killed"));
    snprintf(full, sizeof full, "%s", tpath("e2e_full"));
    sld_i2p_gen_opts o;
    sld_i2p_gen_opts_default(&o);
    o.prompts = captions;
    o.configs = "sd,max";
    o.n_images = 2;
    o.batch = 1;
    o.gen.width = o.gen.height = 64;
    o.gen.steps = 2;
    o.model_label = model;
    o.filter.limit = 3;
    o.filter.sample_seed = 57;
    o.out_dir = killed;
    o.progress = stop_cb;
    stop_after = 5;
    CHECK(sld_i2p_generate(c, &o, &err) == SLD_ERR_CANCELLED);
    sld_ctx_free(c);
    sld_model_close(m);
    /* resumed by the command, and a whole run by the command */
    if (access(g_sld, X_OK)) {
        printf("  (skip: %s not built)\n", g_sld);
        return;
    }
    char args[3000], ef[600];
    snprintf(ef, sizeof ef, "%s", tpath("stderr.txt"));
    const char *common = "--configs sd,max --images 2 --batch 1 --width 64 --height 64 "
                         "--steps 2 --limit 3 --quiet";
    snprintf(args, sizeof args, "i2p generate --prompts %s --model %s --out %s %s "
             "--sample-seed 57", captions, model, killed, common);
    CHECK(run_sld(args, ef) == 0);
    snprintf(args, sizeof args, "i2p generate --prompts %s --model %s --out %s %s "
             "--sample-seed 57", captions, model, full, common);
    CHECK(run_sld(args, ef) == 0);
    int same = 0;
    const char *cfgs[2] = {"sd", "max"};
    for (int r = 0; r < 3; r++)
        for (int ci = 0; ci < 2; ci++)
            for (int k = 0; k < 2; k++) {
                char x[700], y[700];
                snprintf(x, sizeof x, "%s/images/%s/%d_%d.png", killed, cfgs[ci], r, k);
                snprintf(y, sizeof y, "%s/images/%s/%d_%d.png", full, cfgs[ci], r, k);
                same += png_equal(x, y);
            }
    CHECK(same == 12);
    int n[2] = {0, 0};
    CHECK(sld_i2p_logs_read(killed, "generate", check_record, n, &err) == SLD_OK);
    CHECK_MSG(n[0] == 12 && n[1] == 0, "%d %d", n[0], n[1]);
    /* another sample seed: exit 1, the difference named, nothing written */
    char *before = folder_print(killed);
    snprintf(args, sizeof args, "i2p generate --prompts %s --model %s --out %s %s "
             "--sample-seed 1", captions, model, killed, common);
    CHECK(run_sld(args, ef) == 1);
    char *e = read_text(ef);
    CHECK_MSG(e && strstr(e, "prompts.sample_seed: the run has 57, this command 1"), "%s",
              e ? e : "");
    sld_free(e);
    char *after = folder_print(killed);
    CHECK(!strcmp(before, after));
    free(before);
    free(after);
    /* plan and a --limit above the images: a clear error, exit 1 */
    snprintf(args, sizeof args, "i2p plan --prompts %s --model %s --out %s --configs sd "
             "--limit 12", captions, model, tpath("none"));
    CHECK(run_sld(args, ef) == 1);
    e = read_text(ef);
    CHECK_MSG(e && strstr(e, "a sample of 12 captions needs 12 captioned images; the file has 11"),
              "%s", e ? e : "");
    sld_free(e);
    CHECK(!sld_path_exists(tpath("none")));
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sld_test_coco_study_%ld", (long)getpid());
    mkdir(tmpdir, 0700);
    snprintf(captions, sizeof captions, "%s", fixture("coco/captions_tiny.json"));
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
    RUN(test_coco_sample_golden);
    RUN(test_coco_shards);
    RUN(test_jsonl_set);
    RUN(test_errors);
    RUN(test_generate_run);
    RUN(test_generate_jsonl);
    RUN(test_e2e_tiny);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", tmpdir);
    TEST_END();
}
