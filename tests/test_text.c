/* test_text.c — CLIP text encoder against goldens/text_encoder (abs 1e-4,
 * fixtures README section 3) for the tiny-sd1/tiny-sd2 folders and both
 * single-file checkpoints (through the name-conversion layer), thread-count
 * independence, and the encoder's error paths. Independent of the tokenizer,
 * UNet and VAE: ids come from the goldens. */
#include "core/core.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/ckpt_map.h"
#include "model/clip_text.h"
#include "test.h"

#define TOL 1e-4

typedef struct {
    sld_st_file *f;
    sld_weights *w;
    sld_clip_text *te;
    sld_clip_text_config cfg;
    int n_blocks;
} enc;

static void enc_free(enc *e)
{
    sld_clip_text_free(e->te);
    sld_weights_free(e->w);
    sld_st_close(e->f);
    memset(e, 0, sizeof *e);
}

static int load_cfg(const char *folder, sld_clip_text_config *c)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s/text_encoder/config.json", folder);
    sld_json j;
    sld_error err;
    if (sld_json_load(&j, fixture(rel), &err)) {
        printf("  %s\n", err.msg);
        return -1;
    }
    sld_status st = sld_clip_text_config_from_json(c, &j, &err);
    if (st)
        printf("  %s\n", err.msg);
    sld_json_free(&j);
    return st ? -1 : 0;
}

/* folder: tiny-sd1 / tiny-sd2; single: NULL for the folder's own weights,
 * else the single file whose text tower to map. */
static int enc_open(enc *e, const char *folder, const char *single)
{
    sld_error err;
    char rel[256];
    memset(e, 0, sizeof *e);
    if (load_cfg(folder, &e->cfg))
        return -1;
    if (single)
        snprintf(rel, sizeof rel, "models/%s", single);
    else
        snprintf(rel, sizeof rel, "models/%s/text_encoder/model.safetensors", folder);
    if (sld_st_open(&e->f, fixture(rel), &err) || sld_weights_new(&e->w, rel, &err))
        goto fail;
    if (single) {
        int arch = sld_ckpt_detect(e->f);
        if (sld_ckpt_map_text(e->w, e->f, arch, &e->n_blocks, &err))
            goto fail;
    } else if (sld_weights_add_file(e->w, e->f, NULL, &err)) {
        goto fail;
    }
    if (sld_clip_text_load(&e->te, &e->cfg, e->w, &err))
        goto fail;
    return 0;
fail:
    printf("  %s\n", err.msg);
    enc_free(e);
    return -1;
}

typedef struct {
    sld_st_file *f;
    int32_t ids[6 * 77];
    float *want; /* [6,77,H] */
    int H;
} golden;

static int golden_open(golden *g, const char *which, int H)
{
    char rel[64];
    sld_error err;
    snprintf(rel, sizeof rel, "text_encoder/%s.safetensors", which);
    if (sld_st_open(&g->f, fixture(rel), &err)) {
        printf("  %s\n", err.msg);
        return -1;
    }
    const sld_st_tensor *t = sld_st_find(g->f, "input_ids");
    if (!t || t->dtype != SLD_DT_I64 || t->numel != 6 * 77) {
        sld_st_close(g->f);
        return -1;
    }
    for (int i = 0; i < 6 * 77; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * i, 8);
        g->ids[i] = (int32_t)v;
    }
    int64_t shape[3] = {6, 77, H};
    g->want = sld_st_read_f32(g->f, "last_hidden_state", 3, shape, &err);
    g->H = H;
    if (!g->want) {
        printf("  %s\n", err.msg);
        sld_st_close(g->f);
        return -1;
    }
    return 0;
}

static void golden_free(golden *g)
{
    sld_free(g->want);
    sld_st_close(g->f);
}

/* Runs the encoder on the 6 golden prompts and compares. */
static void check_against(const char *folder, const char *single, const char *which, int H)
{
    enc e;
    golden g;
    if (golden_open(&g, which, H)) {
        CHECK(!"golden");
        return;
    }
    if (enc_open(&e, folder, single)) {
        CHECK(!"open");
        golden_free(&g);
        return;
    }
    CHECK(e.cfg.hidden == H);
    float *out = sld_malloc(sizeof(float) * 6 * 77 * H);
    sld_error err;
    CHECK(sld_clip_text_forward(e.te, g.ids, 6, out, &err) == SLD_OK);
    double maxd = 0;
    for (int i = 0; i < 6 * 77 * H; i++)
        maxd = fmax(maxd, fabs((double)out[i] - g.want[i]));
    printf("  %s %s: max |d| = %.3g (tol %g)\n", which, single ? single : folder, maxd, TOL);
    CHECK_CLOSE("last_hidden_state", out, g.want, (size_t)6 * 77 * H, TOL);
    /* one prompt at a time gives the same bits as the batch */
    float *one = sld_malloc(sizeof(float) * 77 * H);
    CHECK(sld_clip_text_forward(e.te, g.ids + 3 * 77, 1, one, &err) == SLD_OK);
    CHECK(!memcmp(one, out + 3 * 77 * H, sizeof(float) * 77 * H));
    sld_free(one);
    sld_free(out);
    enc_free(&e);
    golden_free(&g);
}

static void test_sd1_folder(void) { check_against("tiny-sd1", NULL, "sd1", 32); }
static void test_sd2_folder(void) { check_against("tiny-sd2", NULL, "sd2", 16); }
static void test_sd1_single(void) { check_against("tiny-sd1", "tiny-sd1.safetensors", "sd1", 32); }
static void test_sd2_single(void) { check_against("tiny-sd2", "tiny-sd2.safetensors", "sd2", 16); }

/* The SD2 file has 3 OpenCLIP blocks; SD2 conditions on the penultimate, so
 * only blocks 0 and 1 (+ embeddings, ln_final) are used: 36 tensors, as in
 * tiny-sd2/text_encoder. The fused in_proj rows are split into q/k/v views. */
static void test_sd2_single_penultimate(void)
{
    enc e, ref;
    if (enc_open(&e, "tiny-sd2", "tiny-sd2.safetensors")) {
        CHECK(!"open");
        return;
    }
    CHECK(sld_ckpt_detect(e.f) == SLD_ARCH_SD2);
    CHECK(e.n_blocks == 3);
    CHECK(e.cfg.layers == 2);
    CHECK(sld_weights_used_count(e.w) == 36);
    CHECK(sld_weights_count(e.w) == 36 + 16); /* block 2 mapped, never bound */
    bool used = true;
    for (int i = 0; i < sld_weights_count(e.w); i++) {
        const char *n = sld_weights_name(e.w, i, &used);
        CHECK_MSG(used == (strncmp(n, "text_model.encoder.layers.2.", 28) != 0), "%s", n);
    }
    /* the views equal the diffusers folder's tensors exactly */
    if (!enc_open(&ref, "tiny-sd2", NULL)) {
        CHECK(sld_weights_count(ref.w) == 36);
        for (int i = 0; i < sld_weights_count(ref.w); i++) {
            const char *n = sld_weights_name(ref.w, i, NULL);
            int64_t s[SLD_ST_MAX_DIMS];
            int nd = sld_weights_shape(ref.w, n, s);
            sld_error err;
            const float *a = sld_weights_f32(ref.w, n, nd, s, &err);
            const float *b = sld_weights_f32(e.w, n, nd, s, &err);
            size_t cnt = 1;
            for (int d = 0; d < nd; d++)
                cnt *= (size_t)s[d];
            CHECK_MSG(a && b && !memcmp(a, b, cnt * sizeof(float)), "%s", n);
        }
        enc_free(&ref);
    }
    enc_free(&e);
}

/* Without configs, the head count of these tiny towers cannot be inferred
 * (real CLIP uses 64-wide heads); everything else can. */
static void test_single_config_infer(void)
{
    sld_error err;
    for (int k = 0; k < 2; k++) {
        enc e;
        const char *folder = k ? "tiny-sd2" : "tiny-sd1";
        if (enc_open(&e, folder, k ? "tiny-sd2.safetensors" : "tiny-sd1.safetensors")) {
            CHECK(!"open");
            continue;
        }
        sld_clip_text_config c;
        int arch = k ? SLD_ARCH_SD2 : SLD_ARCH_SD1;
        CHECK(sld_ckpt_text_config_infer(&c, e.w, arch, e.n_blocks, &err) == SLD_ERR_CONFIG);
        CHECK(strstr(err.msg, "config_dir") != NULL);
        CHECK(c.hidden == e.cfg.hidden);
        CHECK(c.intermediate == e.cfg.intermediate);
        CHECK(c.layers == e.cfg.layers);
        CHECK(c.gelu_erf == e.cfg.gelu_erf);
        CHECK(c.vocab_size == 49408 && c.max_pos == 77);
        enc_free(&e);
    }
}

static void test_threads_bit_identical(void)
{
    enc e;
    golden g;
    if (golden_open(&g, "sd1", 32) || enc_open(&e, "tiny-sd1", NULL)) {
        CHECK(!"open");
        return;
    }
    size_t n = (size_t)6 * 77 * 32;
    float *a = sld_malloc(n * sizeof *a), *b = sld_malloc(n * sizeof *b);
    sld_error err;
    sld_threads_set(1);
    CHECK(sld_clip_text_forward(e.te, g.ids, 6, a, &err) == SLD_OK);
    sld_threads_set(3);
    CHECK(sld_clip_text_forward(e.te, g.ids, 6, b, &err) == SLD_OK);
    sld_threads_set(0);
    CHECK(!memcmp(a, b, n * sizeof *a));
    sld_free(a);
    sld_free(b);
    enc_free(&e);
    golden_free(&g);
}

static void test_bad_ids(void)
{
    enc e;
    if (enc_open(&e, "tiny-sd1", NULL)) {
        CHECK(!"open");
        return;
    }
    int32_t ids[77];
    for (int i = 0; i < 77; i++)
        ids[i] = 49407;
    ids[5] = 49408;
    float *out = sld_malloc(sizeof(float) * 77 * 32);
    sld_error err;
    CHECK(sld_clip_text_forward(e.te, ids, 1, out, &err) == SLD_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "49408") != NULL);
    ids[5] = -1;
    CHECK(sld_clip_text_forward(e.te, ids, 1, out, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_clip_text_forward(e.te, ids, 0, out, &err) == SLD_ERR_INVALID_ARG);
    sld_free(out);
    enc_free(&e);
}

/* A config that disagrees with the weights fails naming tensor and shapes. */
static void test_wrong_shape(void)
{
    enc e;
    if (enc_open(&e, "tiny-sd1", NULL)) {
        CHECK(!"open");
        return;
    }
    sld_clip_text_config c = e.cfg;
    c.intermediate = 64;
    sld_clip_text *te = NULL;
    sld_error err;
    CHECK(sld_clip_text_load(&te, &c, e.w, &err) == SLD_ERR_SHAPE);
    CHECK(te == NULL);
    CHECK_MSG(strstr(err.msg, "'text_model.encoder.layers.0.mlp.fc1.weight' is [128,32], "
                              "expected [64,32]") != NULL,
              "%s", err.msg);
    c = e.cfg;
    c.layers = 4;
    CHECK(sld_clip_text_load(&te, &c, e.w, &err) == SLD_ERR_SHAPE);
    CHECK_MSG(strstr(err.msg, "text_model.encoder.layers.3.") && strstr(err.msg, "missing"), "%s",
              err.msg);
    enc_free(&e);
}

static void test_config_errors(void)
{
    static const struct {
        const char *json;
        sld_status code;
        const char *needle;
    } cases[] = {
        {"{\"num_attention_heads\":4,\"intermediate_size\":128,\"num_hidden_layers\":3}",
         SLD_ERR_CONFIG, "hidden_size"},
        {"{\"hidden_size\":\"32\",\"num_attention_heads\":4,\"intermediate_size\":128,"
         "\"num_hidden_layers\":3}",
         SLD_ERR_CONFIG, "hidden_size"},
        {"{\"hidden_size\":32,\"num_attention_heads\":5,\"intermediate_size\":128,"
         "\"num_hidden_layers\":3}",
         SLD_ERR_CONFIG, "heads 5"},
        {"{\"hidden_size\":32,\"num_attention_heads\":4,\"intermediate_size\":128,"
         "\"num_hidden_layers\":3,\"hidden_act\":\"relu\"}",
         SLD_ERR_UNSUPPORTED, "relu"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sld_json j;
        sld_error err;
        sld_clip_text_config c;
        CHECK(sld_json_parse(&j, cases[i].json, "text_encoder/config.json", &err) == SLD_OK);
        sld_status st = sld_clip_text_config_from_json(&c, &j, &err);
        CHECK_MSG(st == cases[i].code && strstr(err.msg, cases[i].needle) &&
                      strstr(err.msg, "text_encoder/config.json"),
                  "case %zu: %s", i, err.msg);
        sld_json_free(&j);
    }
}

/* Allocation failure at every index of load, and of the forward's own
 * scratch: a clean NOMEM, no leak (ASan checks the latter). The kernels'
 * internal allocations are the ops tests' business. */
static void test_oom(void)
{
    enc e;
    golden g;
    if (golden_open(&g, "sd2", 16) || enc_open(&e, "tiny-sd2", NULL)) {
        CHECK(!"open");
        return;
    }
    int ok_at = 0;
    sld_error err;
    for (long n = 1; n < 200 && !ok_at; n++) {
        sld_clip_text *te = NULL;
        sld_alloc_fail_at(n);
        sld_status st = sld_clip_text_load(&te, &e.cfg, e.w, &err);
        sld_alloc_fail_at(0);
        if (st)
            CHECK_MSG(st == SLD_ERR_NOMEM && !te, "n=%ld: %s", n, err.msg);
        else
            ok_at = (int)n;
        sld_clip_text_free(te);
    }
    CHECK(ok_at > 1);
    float *out = sld_malloc(sizeof(float) * 77 * 16);
    sld_alloc_fail_at(1);
    sld_status st = sld_clip_text_forward(e.te, g.ids, 1, out, &err);
    sld_alloc_fail_at(0);
    CHECK(st == SLD_ERR_NOMEM);
    CHECK(sld_clip_text_forward(e.te, g.ids, 1, out, &err) == SLD_OK);
    CHECK_CLOSE("after-oom", out, g.want, 77 * 16, TOL);
    sld_free(out);
    enc_free(&e);
    golden_free(&g);
}

int main(void)
{
    RUN(test_sd1_folder);
    RUN(test_sd2_folder);
    RUN(test_sd1_single);
    RUN(test_sd2_single);
    RUN(test_sd2_single_penultimate);
    RUN(test_single_config_infer);
    RUN(test_threads_bit_identical);
    RUN(test_bad_ids);
    RUN(test_wrong_shape);
    RUN(test_config_errors);
    RUN(test_oom);
    TEST_END();
}
