/* test_serve.c — `sld serve` (sld_server_* and src/serve) driven over HTTP
 * with libcurl on a free loopback port: txt2img equals `sld generate` byte
 * for byte (SLD off and on), progress moves, interrupt stops a request, a
 * full queue answers 503 + Retry-After, each limit answers 413/400 naming
 * it, API keys (401), bad bodies and the fuzz seeds never hurt the server,
 * 200 requests from 8 clients finish or are refused cleanly with RSS flat;
 * plus the request parser's policy rules directly. Tiny model, 64x64. */
#include "io/png.h"
#include "serve/serve.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static sld_model *g_model;
static char g_sld[1100], g_tmp[256];

/* ---- HTTP client ------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t on_body(char *p, size_t sz, size_t n, void *user)
{
    buf *b = user;
    char *nd = realloc(b->data, b->len + sz * n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, sz * n);
    b->data = nd;
    b->len += sz * n;
    b->data[b->len] = 0;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *user)
{
    int *retry = user;
    if (!strncasecmp(p, "Retry-After:", 12))
        *retry = atoi(p + 12);
    return sz * n;
}

typedef struct {
    long status;   /* 0: transport failure */
    char *body;    /* NUL-terminated (free) */
    size_t len;
    int retry_after;
} reply;

/* method "GET" or "POST"; body NULL for none; key NULL for no header;
 * chunked: send the body with Transfer-Encoding: chunked. */
static reply http(int port, const char *method, const char *path, const char *body,
                  const char *key, int chunked)
{
    reply r = {0};
    CURL *c = curl_easy_init();
    if (!c)
        return r;
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    buf b = {0};
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    char auth[256];
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    if (chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.retry_after);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        if (!chunked)
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r.body = b.data ? b.data : calloc(1, 1);
    r.len = b.len;
    return r;
}

static cJSON *reply_json(const reply *r) { return cJSON_ParseWithLength(r->body, r->len); }

/* The "info" string of a txt2img reply, parsed. */
static cJSON *reply_info(const cJSON *j)
{
    const cJSON *i = cJSON_GetObjectItem(j, "info");
    return cJSON_IsString(i) ? cJSON_Parse(i->valuestring) : NULL;
}

static const char *json_str(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double json_num(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static uint8_t *unbase64(const char *s, size_t *n)
{
    size_t len = strlen(s);
    uint8_t *o = malloc(len / 4 * 3 + 3);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *T = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(T, s[i]);
        if (!p)
            break;
        acc = acc << 6 | (uint32_t)(p - T);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *n = k;
    return o;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(d, 1, (size_t)sz, f);
    fclose(f);
    return d;
}

/* ---- server ------------------------------------------------------------ */

static sld_server *start(sld_server_opts *o)
{
    o->listen = "127.0.0.1:0";
    o->safety_checker = 0;
    sld_error err;
    sld_server *s = NULL;
    if (sld_server_start(&s, g_model, o, &err)) {
        printf("  server: %s\n", err.msg);
        return NULL;
    }
    return s;
}

static sld_server *start_default(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    return start(&o);
}

/* ---- tests ------------------------------------------------------------- */

/* txt2img must give the bytes `sld generate` writes for the same settings:
 * the binary when it is built, and the library path it uses (sld_generate,
 * sld_gen_params_text, sld_png_write) always. */
/* info.sld_activity of a reply equals the library's summary of the same
 * generation; "sld_map": true adds sld_maps, the library's map rendered
 * (black for SLD off), and leaves the image as it was. */
static void check_activity_and_map(int port, const char *body, const cJSON *info,
                                   const cJSON *j, const sld_gen_result *res, const char *safety)
{
    const cJSON *acts = cJSON_GetObjectItem(info, "sld_activity");
    const cJSON *a = cJSON_GetArrayItem(acts, 0);
    CHECK(cJSON_GetArraySize(acts) == 1 && cJSON_IsObject(a) && res->summary);
    if (!res->summary || !a)
        return;
    const sld_safety_summary *sm = &res->summary[0];
    CHECK_MSG(fabs(json_num(a, "steered_share") - sm->steered_share) < 1e-12 &&
                  fabs(json_num(a, "mean_scale") - sm->mean_scale) < 1e-12 &&
                  fabs(json_num(a, "safety_total") - sm->safety_total) < 1e-9 &&
                  json_num(a, "peak_step") == sm->peak_step &&
                  json_num(a, "steps_steered") == sm->steps_steered,
              "%s: steered_share %g vs %g", safety, json_num(a, "steered_share"),
              sm->steered_share);
    if (!strcmp(safety, "off"))
        CHECK(json_num(a, "steered_share") == 0 && json_num(a, "peak_step") == -1);
    else
        CHECK(json_num(a, "steered_share") > 0);
    CHECK(!cJSON_GetObjectItem(j, "sld_maps")); /* only when asked */

    char with_map[600];
    snprintf(with_map, sizeof with_map, "%.*s,\"sld_map\":true}", (int)strlen(body) - 1, body);
    reply r = http(port, "POST", "/sdapi/v1/txt2img", with_map, NULL, 0);
    CHECK_MSG(r.status == 200, "status %ld: %s", r.status, r.body);
    cJSON *j2 = reply_json(&r);
    const cJSON *maps = cJSON_GetObjectItem(j2, "sld_maps");
    const cJSON *img1 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images"), 0);
    const cJSON *img2 = cJSON_GetArrayItem(cJSON_GetObjectItem(j2, "images"), 0);
    CHECK(img1 && img2 && !strcmp(img1->valuestring, img2->valuestring));
    CHECK(cJSON_GetArraySize(maps) == 1);
    size_t n = 0;
    uint8_t *png = cJSON_GetArraySize(maps) == 1
                       ? unbase64(cJSON_GetArrayItem(maps, 0)->valuestring, &n)
                       : NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/map-%s.png", g_tmp, safety);
    FILE *f = fopen(path, "wb");
    if (f && png) {
        fwrite(png, 1, n, f);
        fclose(f);
    } else if (f) {
        fclose(f);
    }
    free(png);
    uint8_t *px = NULL, *want = malloc((size_t)64 * 64 * 3);
    int w = 0, h = 0;
    sld_error err;
    CHECK(sld_png_read(path, &px, &w, &h, &err) == SLD_OK && w == 64 && h == 64);
    CHECK(want && sld_safety_map_render(res->safety_map, 8, 8, 0, NULL, 64, 64, want, &err) ==
                      SLD_OK);
    CHECK_MSG(px && want && !memcmp(px, want, (size_t)64 * 64 * 3), "%s: map pixels", safety);
    int black = 1;
    for (int i = 0; px && i < 64 * 64 * 3; i++)
        black &= px[i] == 0;
    CHECK(black == !strcmp(safety, "off"));
    char *text = NULL;
    CHECK(sld_png_read_text(path, "parameters", &text, &err) == SLD_OK && text &&
          strstr(text, "SLD map max: "));
    sld_free(text);
    sld_free(px);
    free(want);
    cJSON_Delete(j2);
    free(r.body);
}

static void check_same_as_generate(int port, const char *safety)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"prompt\":\"a red apple\",\"negative_prompt\":\"blurry\",\"steps\":2,"
             "\"width\":64,\"height\":64,\"seed\":42,\"safety\":\"%s\",\"sampler_name\":\"DDIM\"}",
             safety);
    reply r = http(port, "POST", "/sdapi/v1/txt2img", body, NULL, 0);
    CHECK_MSG(r.status == 200, "status %ld: %s", r.status, r.body);
    cJSON *j = reply_json(&r), *info = reply_info(j);
    const cJSON *imgs = cJSON_GetObjectItem(j, "images");
    CHECK(cJSON_GetArraySize(imgs) == 1);
    CHECK(json_num(info, "seed") == 42);
    CHECK(!strcmp(json_str(info, "safety"), safety));
    size_t n = 0;
    uint8_t *png = cJSON_GetArraySize(imgs) == 1
                       ? unbase64(cJSON_GetArrayItem(imgs, 0)->valuestring, &n)
                       : NULL;

    /* the library path of cmd_generate */
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = "a red apple";
    p.negative_prompt = "blurry";
    p.steps = 2;
    p.width = p.height = 64;
    p.seed = 42;
    p.sampler = SLD_SAMPLER_DDIM;
    p.safety_checker = 0;
    p.sld = sld_safety_preset_get(!strcmp(safety, "off") ? SLD_SAFETY_OFF : SLD_SAFETY_MAX);
    sld_ctx *c = NULL;
    sld_gen_result res = {0};
    sld_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/lib-%s.png", g_tmp, safety);
    CHECK(sld_ctx_new(&c, g_model, 0, &err) == SLD_OK);
    CHECK(sld_generate(c, &p, &res, &err) == SLD_OK);
    char *text = sld_gen_params_text(&p, g_model, 42);
    CHECK(sld_png_write(path, res.pixels, res.width, res.height, text, &err) == SLD_OK);
    free(text);
    check_activity_and_map(port, body, info, j, &res, safety);
    sld_gen_result_free(&res);
    sld_ctx_free(c);
    size_t n2 = 0;
    uint8_t *want = read_file(path, &n2);
    CHECK_MSG(png && want && n == n2 && !memcmp(png, want, n), "library PNG: %zu vs %zu bytes", n,
              n2);
    free(want);

    /* the binary */
    if (!access(g_sld, X_OK)) {
        char cmd[2048];
        snprintf(path, sizeof path, "%s/cli-%s.png", g_tmp, safety);
        snprintf(cmd, sizeof cmd,
                 "%s generate --model %s --prompt 'a red apple' --negative-prompt blurry "
                 "--steps 2 --width 64 --height 64 --seed 42 --sampler ddim --safety %s "
                 "--no-safety-checker --quiet -o %s",
                 g_sld, fixture("models/tiny-sd1"), safety, path);
        CHECK(system(cmd) == 0);
        want = read_file(path, &n2);
        CHECK_MSG(png && want && n == n2 && !memcmp(png, want, n), "sld generate PNG: %zu vs %zu",
                  n, n2);
        free(want);
    } else {
        printf("  (sld generate comparison skipped: %s not built)\n", g_sld);
    }
    free(png);
    cJSON_Delete(info);
    cJSON_Delete(j);
    free(r.body);
}

static void test_txt2img_equals_generate(void)
{
    sld_server *s = start_default();
    CHECK(s != NULL);
    if (!s)
        return;
    int port = sld_server_port(s);
    CHECK(port > 0);
    check_same_as_generate(port, "off");
    check_same_as_generate(port, "max");
    /* SLD changed the image (same seed): the two PNGs differ */
    size_t a = 0, b = 0;
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/lib-off.png", g_tmp);
    snprintf(pb, sizeof pb, "%s/lib-max.png", g_tmp);
    uint8_t *x = read_file(pa, &a), *y = read_file(pb, &b);
    CHECK(x && y && (a != b || memcmp(x, y, a)));
    free(x);
    free(y);

    /* seed -1: a random seed, returned; batch and n_iter seeds */
    reply r = http(port, "POST", "/sdapi/v1/txt2img",
                   "{\"prompt\":\"x\",\"steps\":2,\"seed\":-1,\"batch_size\":2,\"n_iter\":2,"
                   "\"safety\":\"off\",\"restore_faces\":false}",
                   NULL, 0);
    CHECK(r.status == 200);
    cJSON *j = reply_json(&r), *info = reply_info(j);
    double seed = json_num(info, "seed");
    CHECK(seed >= 0 && seed == floor(seed));
    const cJSON *seeds = cJSON_GetObjectItem(info, "all_seeds");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "images")) == 4);
    CHECK(cJSON_GetArraySize(seeds) == 4);
    CHECK(cJSON_GetArrayItem(seeds, 2) && cJSON_GetArrayItem(seeds, 2)->valuedouble == seed + 2);
    const cJSON *ign = cJSON_GetObjectItem(info, "ignored_fields");
    CHECK(cJSON_GetArraySize(ign) == 1 && !strcmp(cJSON_GetArrayItem(ign, 0)->valuestring,
                                                  "restore_faces"));
    cJSON_Delete(info);
    cJSON_Delete(j);
    free(r.body);

    /* the other endpoints */
    r = http(port, "GET", "/sdapi/v1/sd-models", NULL, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "tiny-sd1") && !strstr(r.body, "fixtures"));
    free(r.body);
    r = http(port, "GET", "/sdapi/v1/samplers", NULL, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "\"Euler a\""));
    free(r.body);
    r = http(port, "GET", "/sdapi/v1/options", NULL, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "sd_model_checkpoint"));
    free(r.body);
    r = http(port, "GET", "/metrics", NULL, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "sld_images_total 8\n") &&
          strstr(r.body, "sld_queue_length 0"));
    free(r.body);
    r = http(port, "GET", "/", NULL, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "<html") && strstr(r.body, "compare"));
    free(r.body);
    r = http(port, "GET", "/nothing", NULL, NULL, 0);
    CHECK(r.status == 404);
    free(r.body);
    r = http(port, "GET", "/sdapi/v1/txt2img", NULL, NULL, 0);
    CHECK(r.status == 405);
    free(r.body);
    sld_server_stop(s);
}

typedef struct {
    int port;
    const char *body;
    reply r;
} bg_req;

static void *bg_main(void *arg)
{
    bg_req *b = arg;
    b->r = http(b->port, "POST", "/sdapi/v1/txt2img", b->body, NULL, 0);
    return NULL;
}

/* Polls /progress until a job is running; returns its JSON (or NULL). */
static cJSON *wait_busy(int port)
{
    for (int i = 0; i < 20000; i++) {
        reply r = http(port, "GET", "/sdapi/v1/progress", NULL, NULL, 0);
        cJSON *j = reply_json(&r);
        free(r.body);
        const cJSON *st = cJSON_GetObjectItem(j, "state");
        if (json_num(st, "sampling_step") >= 1)
            return j;
        cJSON_Delete(j);
        usleep(1000);
    }
    return NULL;
}

static void test_progress_and_interrupt(void)
{
    sld_server *s = start_default();
    if (!s) {
        CHECK(0);
        return;
    }
    int port = sld_server_port(s);
    /* progress moves during a request */
    bg_req b = {port, "{\"prompt\":\"x\",\"steps\":30,\"seed\":1,\"safety\":\"off\"}", {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_main, &b);
    double first = -1, last = -1;
    int moves = 0, steps_seen = 0;
    for (int i = 0; i < 100000; i++) {
        reply r = http(port, "GET", "/sdapi/v1/progress", NULL, NULL, 0);
        cJSON *j = reply_json(&r);
        free(r.body);
        double p = json_num(j, "progress");
        const cJSON *st = cJSON_GetObjectItem(j, "state");
        if (p > 0 && p < 1) {
            if (first < 0)
                first = p;
            if (last >= 0 && p > last)
                moves++;
            last = p;
            steps_seen = (int)json_num(st, "sampling_steps");
        }
        int busy = json_num(st, "job_count") > 0;
        cJSON_Delete(j);
        if (first >= 0 && !busy)
            break;
        usleep(2000);
    }
    pthread_join(t, NULL);
    CHECK(b.r.status == 200);
    free(b.r.body);
    CHECK_MSG(first > 0 && last > first && moves >= 1, "progress first %g last %g moves %d", first,
              last, moves);
    CHECK(steps_seen == 31); /* PNDM: steps + 1 UNet evaluations */

    /* interrupt stops the running request: empty images, interrupted */
    bg_req b2 = {port, "{\"prompt\":\"x\",\"steps\":150,\"seed\":1,\"safety\":\"off\"}", {0}};
    pthread_create(&t, NULL, bg_main, &b2);
    cJSON *pj = wait_busy(port);
    CHECK(pj != NULL);
    cJSON_Delete(pj);
    reply r = http(port, "POST", "/sdapi/v1/interrupt", "", NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "true"));
    free(r.body);
    pthread_join(t, NULL);
    CHECK(b2.r.status == 200);
    cJSON *j = reply_json(&b2.r), *info = reply_info(j);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(info, "interrupted")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "images")) == 0);
    cJSON_Delete(info);
    cJSON_Delete(j);
    free(b2.r.body);
    /* the server still works */
    r = http(port, "POST", "/sdapi/v1/txt2img", "{\"prompt\":\"y\",\"steps\":2,\"safety\":\"off\"}",
             NULL, 0);
    CHECK(r.status == 200);
    free(r.body);
    sld_server_stop(s);
}

static void test_full_queue_503(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.queue = 0; /* only the running request */
    sld_server *s = start(&o);
    if (!s) {
        CHECK(0);
        return;
    }
    int port = sld_server_port(s);
    bg_req b = {port, "{\"prompt\":\"x\",\"steps\":150,\"seed\":1,\"safety\":\"off\"}", {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_main, &b);
    cJSON *pj = wait_busy(port);
    CHECK(pj != NULL);
    cJSON_Delete(pj);
    reply r = http(port, "POST", "/sdapi/v1/txt2img", "{\"prompt\":\"y\",\"steps\":1}", NULL, 0);
    CHECK_MSG(r.status == 503, "status %ld", r.status);
    CHECK(r.retry_after >= 1);
    cJSON *j = reply_json(&r);
    CHECK(!strcmp(json_str(j, "limit"), "queue") && strstr(json_str(j, "detail"), "queue"));
    cJSON_Delete(j);
    free(r.body);
    r = http(port, "GET", "/metrics", NULL, NULL, 0);
    CHECK(strstr(r.body, "sld_requests_total{code=\"503\"} 1"));
    free(r.body);
    /* stop while a request runs: it is interrupted and its connection
     * answered or closed; nothing hangs */
    sld_server_stop(s);
    pthread_join(t, NULL);
    CHECK_MSG(b.r.status == 200 || b.r.status == 0, "status %ld", b.r.status);
    free(b.r.body);
}

static void expect_limit(int port, const char *body, int chunked, long status, const char *limit)
{
    reply r = http(port, "POST", "/sdapi/v1/txt2img", body, NULL, chunked);
    cJSON *j = reply_json(&r);
    CHECK_MSG(r.status == status && !strcmp(json_str(j, "limit"), limit) &&
                  strlen(json_str(j, "detail")) > 10,
              "%s: status %ld body %.200s", limit, r.status, r.body);
    cJSON_Delete(j);
    free(r.body);
}

static void test_limits(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.max_pixels = 64 * 128;
    o.max_steps = 10;
    o.max_images = 3;
    o.max_prompt = 100;
    o.max_body = 2000;
    sld_server *s = start(&o);
    if (!s) {
        CHECK(0);
        return;
    }
    int port = sld_server_port(s);
    expect_limit(port, "{\"prompt\":\"x\",\"steps\":11}", 0, 400, "max_steps");
    expect_limit(port, "{\"prompt\":\"x\",\"width\":128,\"height\":128}", 0, 400, "max_pixels");
    expect_limit(port, "{\"prompt\":\"x\",\"batch_size\":2,\"n_iter\":2}", 0, 400, "max_images");
    char big[3000];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"prompt\":\"", 11);
    strcpy(big + 150, "\"}");
    expect_limit(port, big, 0, 400, "max_prompt");
    memset(big + 150, 'a', 2750);
    strcpy(big + 2900, "\"}");
    expect_limit(port, big, 0, 413, "max_body"); /* Content-Length */
    expect_limit(port, big, 1, 413, "max_body"); /* chunked: counted while reading */
    /* the default steps (50) obey max_steps: a request without steps runs 10 */
    reply r = http(port, "POST", "/sdapi/v1/txt2img", "{\"prompt\":\"x\",\"safety\":\"off\"}",
                   NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "Steps: 10,"));
    free(r.body);
    sld_server_stop(s);
}

static void test_api_key(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.api_key = "k3y-0123456789";
    sld_server *s = start(&o);
    if (!s) {
        CHECK(0);
        return;
    }
    int port = sld_server_port(s);
    const char *paths[] = {"/sdapi/v1/progress", "/sdapi/v1/options", "/sdapi/v1/sd-models",
                           "/metrics"};
    for (int i = 0; i < 4; i++) {
        reply r = http(port, "GET", paths[i], NULL, NULL, 0);
        CHECK_MSG(r.status == 401, "%s without key: %ld", paths[i], r.status);
        free(r.body);
        r = http(port, "GET", paths[i], NULL, "k3y-0123456788", 0);
        CHECK_MSG(r.status == 401, "%s wrong key: %ld", paths[i], r.status);
        free(r.body);
        r = http(port, "GET", paths[i], NULL, "k3y-012345678", 0);
        CHECK(r.status == 401); /* a prefix */
        free(r.body);
        r = http(port, "GET", paths[i], NULL, "k3y-0123456789", 0);
        CHECK_MSG(r.status == 200, "%s right key: %ld", paths[i], r.status);
        free(r.body);
    }
    reply r = http(port, "POST", "/sdapi/v1/txt2img", "{\"steps\":1}", NULL, 0);
    CHECK(r.status == 401);
    free(r.body);
    r = http(port, "POST", "/sdapi/v1/interrupt", "", "wrong", 0);
    CHECK(r.status == 401);
    free(r.body);
    r = http(port, "GET", "/health", NULL, NULL, 0);
    CHECK(r.status == 200);
    free(r.body);
    sld_server_stop(s);
    CHECK(sld_serve_key_equal("abc", 3, "abc"));
    CHECK(!sld_serve_key_equal("abd", 3, "abc"));
    CHECK(!sld_serve_key_equal("abcd", 4, "abc"));
    CHECK(!sld_serve_key_equal("", 0, "abc"));
}

static void test_bad_bodies(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.max_steps = 2;
    o.max_pixels = 64 * 64;
    sld_server *s = start(&o);
    if (!s) {
        CHECK(0);
        return;
    }
    int port = sld_server_port(s);
    static const char *const bad[] = {
        "", "{", "[]", "null", "42", "\"x\"", "{\"prompt\":5}", "{\"steps\":\"2\"}",
        "{\"steps\":2.5}", "{\"steps\":-1}", "{\"seed\":-2}", "{\"seed\":1e300}",
        "{\"width\":63}", "{\"cfg_scale\":\"high\"}", "{\"sampler_name\":\"Heun\"}",
        "{\"sampler_name\":7}", "{\"safety\":\"none\"}", "{\"batch_size\":0}",
        "{\"prompt\":\"\\ud800\"}", "{\"prompt\":\"\xff\xfe\"}", "{\"send_images\":1}",
        "{\"sld_mom_beta\":2}", "{\"prompt\":\"a\"} trailing", "{\"a\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}",
        "{\"prompt\":\"x\",\"scheduler\":\"Karras\",\"sampler_name\":\"Euler\"}",
        "{\"prompt\":\"x\",\"sld_map\":\"yes\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        reply r = http(port, "POST", "/sdapi/v1/txt2img", bad[i], NULL, 0);
        cJSON *j = reply_json(&r);
        /* 200 is fine for bodies that turn out valid (the deep array is an
         * ignored field); everything else is a 400 with a message */
        CHECK_MSG(r.status == 400 || (r.status == 200 && i == 23), "body %zu '%s': %ld %s", i,
                  bad[i], r.status, r.body);
        if (r.status == 400)
            CHECK(strlen(json_str(j, "detail")) > 5);
        cJSON_Delete(j);
        free(r.body);
    }
    /* the fuzz corpus seeds */
    DIR *d = opendir("fuzz/seeds/fuzz_serve_request");
    int n = 0;
    CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[600];
        snprintf(path, sizeof path, "fuzz/seeds/fuzz_serve_request/%s", e->d_name);
        size_t len = 0;
        uint8_t *data = read_file(path, &len);
        char *body = malloc(len + 1);
        memcpy(body, data, len);
        body[len] = 0;
        free(data);
        reply r = http(port, "POST", "/sdapi/v1/txt2img", body, NULL, 0);
        CHECK_MSG(r.status == 200 || r.status == 400 || r.status == 413, "%s: %ld", e->d_name,
                  r.status);
        free(r.body);
        free(body);
        n++;
    }
    if (d)
        closedir(d);
    CHECK(n >= 5);
    reply r = http(port, "GET", "/health", NULL, NULL, 0);
    CHECK(r.status == 200);
    free(r.body);
    sld_server_stop(s);
}

/* ---- many clients ------------------------------------------------------ */

typedef struct {
    int port, id, ok, refused, other;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    for (int i = 0; i < 25; i++) {
        reply r;
        if (i % 2 == 0) {
            char body[128];
            snprintf(body, sizeof body,
                     "{\"prompt\":\"client %d\",\"steps\":2,\"seed\":%d,\"safety\":\"%s\"}", c->id,
                     i, i % 4 ? "off" : "medium");
            r = http(c->port, "POST", "/sdapi/v1/txt2img", body, NULL, 0);
        } else {
            r = http(c->port, "GET", i % 3 ? "/sdapi/v1/progress" : "/metrics", NULL, NULL, 0);
        }
        if (r.status == 200)
            c->ok++;
        else if (r.status == 503 && r.retry_after >= 1)
            c->refused++;
        else
            c->other++;
        free(r.body);
    }
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static void round_of_200(int port, int *ok, int *refused, int *other)
{
    client cl[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        cl[i] = (client){port, i, 0, 0, 0};
        pthread_create(&t[i], NULL, client_main, &cl[i]);
    }
    *ok = *refused = *other = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        *ok += cl[i].ok;
        *refused += cl[i].refused;
        *other += cl[i].other;
    }
}

static void test_concurrent_clients(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.queue = 3;
    sld_server *s = start(&o);
    if (!s) {
        CHECK(0);
        return;
    }
    int port = sld_server_port(s);
    long rss[3];
    int ok = 0, refused = 0, other = 0;
    for (int k = 0; k < 3; k++) {
        round_of_200(port, &ok, &refused, &other);
        rss[k] = rss_kb();
        CHECK_MSG(ok + refused == 200 && other == 0, "round %d: %d ok, %d refused, %d other", k,
                  ok, refused, other);
        CHECK(ok >= 100); /* every GET answers */
    }
    printf("  last round: %d ok, %d refused (503); RSS %ld, %ld, %ld kB\n", ok, refused, rss[0],
           rss[1], rss[2]);
#if defined(__SANITIZE_ADDRESS__)
    printf("  (RSS bound not checked under ASan: its quarantine holds freed memory)\n");
#else
    /* after a warm-up round, memory stays flat (allocator noise aside) */
    CHECK_MSG(rss[2] - rss[1] < 16384, "RSS grew %ld kB", rss[2] - rss[1]);
#endif
    reply r = http(port, "GET", "/health", NULL, NULL, 0);
    CHECK(r.status == 200);
    free(r.body);
    sld_server_stop(s);
}

/* ---- the parser's policy rules ----------------------------------------- */

static int parse(const sld_server_opts *o, const char *body, sld_serve_request *q, char *limit)
{
    char msg[256];
    return sld_serve_parse_txt2img(body, strlen(body), o, 64, 7, q, msg, sizeof msg, limit, 32);
}

static void test_policy(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    sld_serve_request q;
    char limit[32];
    /* defaults: medium, random seed given by the caller */
    CHECK(parse(&o, "{\"prompt\":\"p\"}", &q, limit) == 0);
    CHECK(q.preset == SLD_SAFETY_MEDIUM && q.seed_random && q.p.seed == 7 && q.p.steps == 50);
    sld_serve_request_free(&q);
    /* A1111 names and nulls */
    CHECK(parse(&o, "{\"prompt\":null,\"sampler_name\":\"DPM++ 2M Karras\",\"seed\":null}", &q,
                limit) == 0);
    CHECK(q.p.sampler == SLD_SAMPLER_DPMPP_2M && q.p.karras && !strcmp(q.p.prompt, ""));
    sld_serve_request_free(&q);
    CHECK(parse(&o, "{\"sampler_name\":\"euler a\",\"scheduler\":\"Automatic\"}", &q, limit) == 0);
    CHECK(q.p.sampler == SLD_SAMPLER_EULER_A && !q.p.karras);
    sld_serve_request_free(&q);
    /* hyperparameters apply when the operator sets no minimum */
    CHECK(parse(&o, "{\"safety\":\"off\",\"sld_guidance_scale\":5,\"sld_warmup_steps\":2}", &q,
                limit) == 0);
    CHECK(q.sld_custom && q.p.sld.guidance_scale == 5 && q.p.sld.warmup_steps == 2);
    sld_serve_request_free(&q);

    /* --min-safety medium: raised, with a note; overrides ignored */
    o.min_safety = SLD_SAFETY_MEDIUM;
    CHECK(parse(&o, "{\"safety\":\"off\",\"sld_guidance_scale\":0}", &q, limit) == 0);
    CHECK(q.preset == SLD_SAFETY_MEDIUM && q.preset_asked == SLD_SAFETY_OFF && q.n_notes == 2);
    CHECK(q.p.sld.guidance_scale == 1000 && !q.sld_custom);
    sld_serve_request_free(&q);
    CHECK(parse(&o, "{\"safety\":\"strong\"}", &q, limit) == 0);
    CHECK(q.preset == SLD_SAFETY_STRONG && q.n_notes == 0);
    sld_serve_request_free(&q);
    /* cfg <= 1 would switch SLD off: refused */
    CHECK(parse(&o, "{\"cfg_scale\":1}", &q, limit) == 400 && !strcmp(limit, "min_safety"));
    /* --strict: refused instead */
    o.strict = 1;
    CHECK(parse(&o, "{\"safety\":\"weak\"}", &q, limit) == 400 && !strcmp(limit, "min_safety"));
    CHECK(parse(&o, "{\"sld_threshold\":0.5}", &q, limit) == 400);
    CHECK(parse(&o, "{\"safety\":\"max\"}", &q, limit) == 0);
    sld_serve_request_free(&q);
    /* a concept fixed by the operator */
    o.strict = 0;
    o.safety_concept = "violence";
    CHECK(parse(&o, "{\"safety_concept\":\"nothing\"}", &q, limit) == 0);
    CHECK(!strcmp(q.p.safety_concept, "violence") && q.n_notes == 1);
    sld_serve_request_free(&q);
    o.strict = 1;
    CHECK(parse(&o, "{\"safety_concept\":\"nothing\"}", &q, limit) == 400 &&
          !strcmp(limit, "safety_concept"));
    CHECK(parse(&o, "{\"safety_concept\":\"violence\"}", &q, limit) == 0);
    sld_serve_request_free(&q);
    /* default size counts against max_pixels */
    sld_server_opts_default(&o);
    o.max_pixels = 32 * 32;
    CHECK(parse(&o, "{}", &q, limit) == 400 && !strcmp(limit, "max_pixels"));
    /* base64 */
    char *b = sld_serve_base64((const uint8_t *)"hello!?", 7);
    CHECK(b && !strcmp(b, "aGVsbG8hPw=="));
    free(b);
}

static void test_bad_listen(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    sld_error err;
    sld_server *s = NULL;
    o.listen = "localhost";
    CHECK(sld_server_start(&s, g_model, &o, &err) == SLD_ERR_INVALID_ARG && !s);
    o.listen = "127.0.0.1:99999";
    CHECK(sld_server_start(&s, g_model, &o, &err) == SLD_ERR_INVALID_ARG);
    /* a port in use */
    sld_server *a = start_default();
    CHECK(a != NULL);
    char l[64];
    snprintf(l, sizeof l, "127.0.0.1:%d", sld_server_port(a));
    o.listen = l;
    CHECK(sld_server_start(&s, g_model, &o, &err) == SLD_ERR_IO && strstr(err.msg, l));
    sld_server_stop(a);
}

/* A client that connects and then sends half a request and nothing more is
 * dropped after timeout_s (the read below sees the close, not its own
 * 20-second guard). */
static void test_slow_client(void)
{
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.timeout_s = 1;
    sld_server *s = start(&o);
    if (!s) {
        CHECK(0);
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sld_server_port(s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *part = "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    CHECK(write(fd, part, strlen(part)) == (ssize_t)strlen(part));
    char b[256];
    ssize_t n = read(fd, b, sizeof b);
    CHECK_MSG(n == 0 || (n < 0 && errno == ECONNRESET), "read %zd (errno %d)", n, errno);
    close(fd);
    reply r = http(sld_server_port(s), "GET", "/health", NULL, NULL, 0);
    CHECK(r.status == 200);
    free(r.body);
    sld_server_stop(s);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_serve_%ld", (long)getpid());
    mkdir(g_tmp, 0700);
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *sl = strrchr(exe, '/');
        if (sl) {
            *sl = 0;
            snprintf(g_sld, sizeof g_sld, "%s/../sld", exe);
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sld_model_opts mo;
    sld_model_opts_default(&mo);
    mo.no_safety_checker = 1;
    sld_error err;
    if (sld_model_open(&g_model, fixture("models/tiny-sd1"), &mo, &err)) {
        printf("FAIL open tiny-sd1: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    RUN(test_policy);
    RUN(test_txt2img_equals_generate);
    RUN(test_progress_and_interrupt);
    RUN(test_full_queue_503);
    RUN(test_limits);
    RUN(test_api_key);
    RUN(test_bad_bodies);
    RUN(test_concurrent_clients);
    RUN(test_bad_listen);
    RUN(test_slow_client);
    sld_model_close(g_model);
    curl_global_cleanup();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
