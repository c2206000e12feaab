/* test_core.c — safetensors reader/writer validation, half conversions,
 * weight store, arena, JSON config errors. */
#include "core/core.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "test.h"

#include <unistd.h>

static void test_half_roundtrip(void)
{
    /* every finite f16 converts to f32 and back exactly */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue;
        float f = sld_f16_to_f32((uint16_t)h);
        if (sld_f32_to_f16(f) != h)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(sld_f16_to_f32(0x3c00) == 1.0f);
    CHECK(sld_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    CHECK(sld_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(sld_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);           /* tie to even */
    CHECK(sld_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);
    CHECK(sld_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(sld_bf16_to_f32(0x3f80) == 1.0f);
}

static const char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/sld_test_core_%ld_%s", (long)getpid(), name);
    return buf;
}

static void test_safetensors_roundtrip(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t ids[2] = {7, -8};
    uint16_t h[2] = {sld_f32_to_f16(0.5f), sld_f32_to_f16(-2.0f)};
    sld_st_out t[3] = {
        {"a", SLD_DT_F32, 2, {2, 3}, a},
        {"ids", SLD_DT_I64, 1, {2}, ids},
        {"h", SLD_DT_F16, 1, {2}, h},
    };
    const char *meta[2] = {"format", "pt"};
    sld_error err;
    char path[256];
    snprintf(path, sizeof path, "%s", tmp_path("rt.safetensors"));
    CHECK(sld_st_write(path, t, 3, meta, 1, &err) == SLD_OK);
    sld_st_file *f;
    CHECK(sld_st_open(&f, path, &err) == SLD_OK);
    if (!f)
        return;
    CHECK(sld_st_count(f) == 3);
    const sld_st_tensor *ta = sld_st_find(f, "a");
    CHECK(ta && ta->ndim == 2 && ta->shape[1] == 3 && ta->numel == 6);
    CHECK(sld_st_meta(f, "format") && !strcmp(sld_st_meta(f, "format"), "pt"));
    float *hv = sld_st_read_f32(f, "h", 1, (int64_t[]){2}, &err);
    CHECK(hv && hv[0] == 0.5f && hv[1] == -2.0f);
    sld_free(hv);
    CHECK(sld_st_read_f32(f, "a", 2, (int64_t[]){3, 2}, &err) == NULL);
    CHECK(err.code == SLD_ERR_SHAPE && strstr(err.msg, "'a' is [2,3], expected [3,2]"));
    CHECK(sld_st_read_f32(f, "nope", 1, (int64_t[]){1}, &err) == NULL && strstr(err.msg, "missing"));
    sld_st_close(f);

    /* truncation at every offset must fail cleanly, never crash */
    char *buf;
    size_t len;
    CHECK(sld_file_read(path, 1 << 20, &buf, &len, &err) == SLD_OK);
    int fails = 0;
    for (size_t cut = 0; cut < len; cut++) {
        sld_st_file *g;
        if (sld_st_open_mem(&g, buf, cut, "cut", &err) == SLD_OK) {
            sld_st_close(g);
        } else {
            fails++;
        }
    }
    CHECK(fails == (int)len); /* data is needed to the last byte */
    sld_free(buf);
    unlink(path);
}

static sld_status open_str(const char *hdr, size_t data_len, sld_error *err)
{
    size_t hl = strlen(hdr);
    static uint8_t buf[4096];
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    sld_st_file *f;
    sld_status st = sld_st_open_mem(&f, buf, 8 + hl + data_len, "mem", err);
    sld_st_close(f);
    return st;
}

static void test_safetensors_corrupt(void)
{
    sld_error err;
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &err) == SLD_OK);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "'a'") != NULL);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "overlap") != NULL);
    CHECK(open_str("[1,2]", 0, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":", 0, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, &err) == SLD_ERR_FORMAT);
    CHECK(open_str("{}", 0, &err) == SLD_OK);
    /* found by fuzz_safetensors: a repeated __metadata__ leaked the first */
    CHECK(open_str("{\"__metadata__\":{\"a\":\"b\"},\"__metadata__\":{\"c\":\"d\"}}", 0, &err) ==
          SLD_ERR_FORMAT);
    sld_st_file *f;
    uint8_t hdr8[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    CHECK(sld_st_open_mem(&f, hdr8, 8, "huge", &err) == SLD_ERR_FORMAT);
    CHECK(sld_st_open(&f, "/nonexistent/x.safetensors", &err) == SLD_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/x.safetensors") != NULL);
}

static void test_safetensors_oom(void)
{
    /* every allocation failing in turn gives NOMEM, never a crash or leak */
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}";
    int ok_seen = 0;
    for (long n = 1; n < 40 && !ok_seen; n++) {
        sld_error err;
        sld_alloc_fail_at(n);
        sld_status st = open_str(hdr, 12, &err);
        sld_alloc_fail_at(0);
        if (st == SLD_OK)
            ok_seen = 1;
        else
            CHECK(st == SLD_ERR_NOMEM || st == SLD_ERR_FORMAT);
    }
    CHECK(ok_seen);
}

static void test_weights_store(void)
{
    float a[12];
    for (int i = 0; i < 12; i++)
        a[i] = (float)i;
    uint16_t h[4];
    for (int i = 0; i < 4; i++)
        h[i] = sld_f32_to_f16((float)i / 4);
    sld_st_out t[2] = {{"m.fused", SLD_DT_F32, 2, {6, 2}, a}, {"m.h", SLD_DT_F16, 2, {2, 2}, h}};
    sld_error err;
    char path[256];
    snprintf(path, sizeof path, "%s", tmp_path("w.safetensors"));
    CHECK(sld_st_write(path, t, 2, NULL, 0, &err) == SLD_OK);
    sld_st_file *f;
    CHECK(sld_st_open(&f, path, &err) == SLD_OK);
    sld_weights *w;
    CHECK(sld_weights_new(&w, "test", &err) == SLD_OK);
    CHECK(sld_weights_add_file(w, f, "m.", &err) == SLD_OK);
    CHECK(sld_weights_add_view(w, "k", sld_st_find(f, "m.fused"), 4, 2, (int64_t[]){2, 2}, &err) == SLD_OK);
    CHECK(sld_weights_add_view(w, "k", sld_st_find(f, "m.fused"), 4, 2, (int64_t[]){2, 2}, &err) != SLD_OK);
    CHECK(sld_weights_add_view(w, "z", sld_st_find(f, "m.fused"), 10, 2, (int64_t[]){2, 2}, &err) == SLD_ERR_SHAPE);
    const float *k = sld_weights_get(w, &err, "k", 2, 2, -1);
    CHECK(k && k[0] == 4 && k[3] == 7);
    const float *hv = sld_weights_get(w, &err, "h", 2, 2, -1);
    CHECK(hv && hv[3] == 0.75f);
    CHECK(sld_weights_get(w, &err, "h", 4, -1) == NULL && err.code == SLD_ERR_SHAPE);
    CHECK(strstr(err.msg, "test: 'h' is [2,2], expected [4]") != NULL);
    CHECK(sld_weights_get(w, &err, "missing", 4, -1) == NULL && strstr(err.msg, "missing"));
    CHECK(sld_weights_count(w) == 3 && sld_weights_used_count(w) == 2);
    sld_weights_free(w);
    sld_st_close(f);
    unlink(path);
}

static void test_json_errors(void)
{
    sld_json j;
    sld_error err;
    CHECK(sld_json_parse(&j, "{\"a\": 3, \"l\": [1,2], \"s\": \"x\", \"f\": 1.5, \"n\": null}", "cfg.json", &err) == SLD_OK);
    int v, n, vals[4];
    double d;
    const char *s;
    CHECK(sld_json_int_req(&j, NULL, "a", &v, &err) == SLD_OK && v == 3);
    CHECK(sld_json_int_req(&j, NULL, "b", &v, &err) == SLD_ERR_CONFIG);
    CHECK(strstr(err.msg, "cfg.json: missing required key \"b\"") != NULL);
    CHECK(sld_json_int_req(&j, NULL, "f", &v, &err) == SLD_ERR_CONFIG);
    CHECK(sld_json_int_opt(&j, NULL, "n", 9, &v, &err) == SLD_OK && v == 9);
    CHECK(sld_json_ints_opt(&j, NULL, "l", vals, 4, &n, &err) == SLD_OK && n == 2 && vals[1] == 2);
    CHECK(sld_json_ints_opt(&j, NULL, "a", vals, 4, &n, &err) == SLD_OK && n == 1 && vals[0] == 3);
    CHECK(sld_json_num_opt(&j, NULL, "f", 0, &d, &err) == SLD_OK && d == 1.5);
    CHECK(sld_json_str_req(&j, NULL, "s", &s, &err) == SLD_OK && !strcmp(s, "x"));
    CHECK(sld_json_str_req(&j, NULL, "a", &s, &err) == SLD_ERR_CONFIG);
    sld_json_free(&j);
    CHECK(sld_json_parse(&j, "{\"a\": ", "bad.json", &err) == SLD_ERR_FORMAT);
}

static void test_arena(void)
{
    sld_arena a;
    sld_error err;
    CHECK(sld_arena_init(&a, 1000, &err) == SLD_OK);
    void *p = sld_arena_alloc(&a, 10);
    CHECK(p && ((uintptr_t)p & 63) == 0);
    size_t m = sld_arena_mark(&a);
    CHECK(sld_arena_alloc(&a, 900) != NULL);
    CHECK(sld_arena_alloc(&a, 100) == NULL);
    CHECK(a.overflow);
    sld_arena_reset(&a, m);
    CHECK(sld_arena_alloc(&a, 100) != NULL);
    sld_arena_free(&a);
    /* planning mode counts 64-byte-rounded bytes into peak, returns NULL */
    sld_arena pl = {.plan = true};
    CHECK(sld_arena_floats(&pl, 10) == NULL && sld_arena_alloc(&pl, 65) == NULL);
    size_t pm = sld_arena_mark(&pl);
    CHECK(sld_arena_alloc(&pl, 1) == NULL);
    sld_arena_reset(&pl, pm);
    CHECK(pl.peak == 64 + 128 + 64 && pl.used == 192 && !pl.overflow);
}

int main(void)
{
    RUN(test_half_roundtrip);
    RUN(test_safetensors_roundtrip);
    RUN(test_safetensors_corrupt);
    RUN(test_safetensors_oom);
    RUN(test_weights_store);
    RUN(test_json_errors);
    RUN(test_arena);
    TEST_END();
}
