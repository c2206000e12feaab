/* test_load.c — model discovery (diffusers folders, single-file SD1/SD2
 * checkpoints with and without a config folder), the LDM name-conversion
 * layer (every mapped tensor equals the diffusers one, bit for bit), the
 * public text path against goldens/text_encoder, and the error paths: missing
 * files, truncated/corrupt safetensors, wrong shape/dtype, missing config
 * key, invalid UTF-8, unknown architecture, and the CLI's exit codes. */
#include "core/core.h"
#include "io/safetensors.h"
#include "model/ckpt_map.h"
#include "pipeline/model.h"
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOL 1e-4

static char g_tmp[256];

static const char *tmp(const char *rel)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, rel);
    return buf[k];
}

/* fixture() with 8 rotating buffers, so several paths fit in one call. */
static const char *fx(const char *rel)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s", fixture(rel));
    return buf[k];
}

static char *fixture_abs(const char *rel)
{
    return realpath(fx(rel), NULL);
}

/* ---- goldens ------------------------------------------------------------------- */

static const char *const PROMPTS[6] = {
    "",
    "a photo of a cat",
    "a photograph of a knight fighting a dragon, blood on the sword",
    NULL, /* the SLD concept (long) — checked through ids only */
    "blurry, low quality",
    NULL,
};

typedef struct {
    sld_st_file *f;
    int64_t ids[6 * 77];
    float *lhs;
    int H;
} golden;

static int golden_open(golden *g, const char *which, int H)
{
    char rel[64];
    sld_error err;
    snprintf(rel, sizeof rel, "text_encoder/%s.safetensors", which);
    if (sld_st_open(&g->f, fx(rel), &err))
        return -1;
    const sld_st_tensor *t = sld_st_find(g->f, "input_ids");
    memcpy(g->ids, t->data, sizeof g->ids);
    int64_t shape[3] = {6, 77, H};
    g->H = H;
    g->lhs = sld_st_read_f32(g->f, "last_hidden_state", 3, shape, &err);
    return g->lhs ? 0 : -1;
}

static void golden_free(golden *g)
{
    sld_free(g->lhs);
    sld_st_close(g->f);
}

/* Opens a model, tokenizes and encodes the short golden prompts. */
static void check_model(const char *path, const char *cfg, const char *which, int H,
                        sld_arch arch, sld_prediction pred)
{
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    sld_model *m = NULL;
    sld_error err;
    golden g;
    if (golden_open(&g, which, H)) {
        CHECK(!"golden");
        return;
    }
    sld_status st = sld_model_open(&m, path, &o, &err);
    CHECK_MSG(st == SLD_OK, "%s: %s", path, err.msg);
    if (st) {
        golden_free(&g);
        return;
    }
    CHECK(sld_model_arch(m) == arch);
    CHECK(sld_model_text_dim(m) == H);
    CHECK(m->prediction == pred);
    CHECK(m->text && m->unet && m->vae && m->tok);
    sld_ctx *c = NULL;
    CHECK(sld_ctx_new(&c, m, 1, &err) == SLD_OK);
    float *out = sld_malloc(sizeof(float) * 77 * H);
    for (int p = 0; p < 6; p++) {
        if (!PROMPTS[p])
            continue;
        int32_t ids[77];
        int trunc = -1;
        CHECK(sld_tokenize(m, PROMPTS[p], ids, &trunc, &err) == SLD_OK);
        CHECK(trunc == 0);
        int same = 1;
        for (int i = 0; i < 77; i++)
            same &= ids[i] == g.ids[p * 77 + i];
        CHECK_MSG(same, "ids of prompt %d", p);
        CHECK(sld_encode(c, PROMPTS[p], out, &err) == SLD_OK);
        CHECK_CLOSE("last_hidden_state", out, g.lhs + (size_t)p * 77 * H, (size_t)77 * H, TOL);
    }
    sld_free(out);
    sld_ctx_free(c);
    sld_model_close(m);
    golden_free(&g);
}

static void test_folder_sd1(void)
{
    check_model(fx("models/tiny-sd1"), NULL, "sd1", 32, SLD_ARCH_SD1, SLD_PRED_EPSILON);
    sld_model *m;
    sld_error err;
    /* trailing slash, name, scheduler config kept */
    if (sld_model_open(&m, "tests/fixtures/models/tiny-sd1/", NULL, &err) == SLD_OK) {
        CHECK(!strcmp(sld_model_name(m), "tiny-sd1"));
        const char *cls = NULL;
        sld_json_str_req(&m->sched_cfg, NULL, "_class_name", &cls, &err);
        CHECK(cls && !strcmp(cls, "PNDMScheduler"));
        CHECK(m->default_size == 64);
        sld_model_close(m);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
}

static void test_folder_sd2(void)
{
    check_model(fx("models/tiny-sd2"), NULL, "sd2", 16, SLD_ARCH_SD2, SLD_PRED_V);
}

static void test_single_sd1(void)
{
    char *cfg = fixture_abs("models/tiny-sd1");
    check_model(fx("models/tiny-sd1.safetensors"), cfg, "sd1", 32, SLD_ARCH_SD1,
                SLD_PRED_EPSILON);
    sld_model *m;
    sld_error err;
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    if (sld_model_open(&m, fx("models/tiny-sd1.safetensors"), &o, &err) == SLD_OK) {
        CHECK(!strcmp(sld_model_name(m), "tiny-sd1"));
        CHECK(sld_weights_used_count(m->w_text) == sld_weights_count(m->w_text));
        CHECK(sld_weights_used_count(m->w_unet) == 684);
        sld_model_close(m);
    }
    free(cfg);
}

static void test_single_sd2(void)
{
    char *cfg = fixture_abs("models/tiny-sd2");
    check_model(fx("models/tiny-sd2.safetensors"), cfg, "sd2", 16, SLD_ARCH_SD2, SLD_PRED_V);
    /* the user's prediction type wins over the scheduler config */
    sld_model *m;
    sld_error err;
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    o.prediction = SLD_PRED_EPSILON;
    if (sld_model_open(&m, fx("models/tiny-sd2.safetensors"), &o, &err) == SLD_OK) {
        CHECK(m->prediction == SLD_PRED_EPSILON);
        /* only blocks 0 and 1 of the 3 OpenCLIP blocks are used */
        CHECK(sld_clip_text_cfg(m->text)->layers == 2);
        CHECK(sld_weights_count(m->w_text) - sld_weights_used_count(m->w_text) == 16);
        sld_model_close(m);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    free(cfg);
}

/* A config folder without tokenizer/: the shipped CLIP vocabulary is found
 * through SLD_DATA_DIR, with "!" padding for SD2. */
static void test_single_data_dir_tokenizer(void)
{
    static const char *const parts[] = {"text_encoder", "unet", "vae", "scheduler"};
    char *src = fixture_abs("models/tiny-sd2"), *tokdir = fixture_abs("models/tiny-sd2/tokenizer");
    CHECK(mkdir(tmp("cfg2"), 0700) == 0);
    for (size_t i = 0; i < 4; i++) {
        char s[1024];
        snprintf(s, sizeof s, "%s/%s", src, parts[i]);
        char d[64];
        snprintf(d, sizeof d, "cfg2/%s", parts[i]);
        CHECK(symlink(s, tmp(d)) == 0);
    }
    CHECK(mkdir(tmp("data"), 0700) == 0 && mkdir(tmp("data/clip"), 0700) == 0);
    char s[1024];
    snprintf(s, sizeof s, "%s/vocab.json", tokdir);
    CHECK(symlink(s, tmp("data/clip/vocab.json")) == 0);
    snprintf(s, sizeof s, "%s/merges.txt", tokdir);
    CHECK(symlink(s, tmp("data/clip/merges.txt")) == 0);
    setenv("SLD_DATA_DIR", tmp("data"), 1);
    check_model(fx("models/tiny-sd2.safetensors"), tmp("cfg2"), "sd2", 16, SLD_ARCH_SD2,
                SLD_PRED_V);
    unsetenv("SLD_DATA_DIR");
    free(src);
    free(tokdir);
}

/* Without configs the tiny text towers' head counts cannot be inferred. */
static void test_single_without_config(void)
{
    sld_model *m = NULL;
    sld_error err;
    CHECK(sld_model_open(&m, fx("models/tiny-sd1.safetensors"), NULL, &err) ==
          SLD_ERR_CONFIG);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.msg, "config_dir") != NULL, "%s", err.msg);
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = "/nonexistent/cfg";
    CHECK(sld_model_open(&m, fx("models/tiny-sd1.safetensors"), &o, &err) == SLD_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/cfg") != NULL);
}

/* ---- name conversion ------------------------------------------------------------ */

/* Every tensor of the diffusers folder's component is present in the mapped
 * single file under the same name and shape, with identical float values,
 * and nothing else is. */
static void compare_component(const char *folder_file, const char *single, int which)
{
    sld_st_file *a = NULL, *b = NULL;
    sld_weights *wa = NULL, *wb = NULL;
    sld_error err;
    char p1[512];
    snprintf(p1, sizeof p1, "%s", fx(folder_file));
    if (sld_st_open(&a, p1, &err) || sld_st_open(&b, fx(single), &err) ||
        sld_weights_new(&wa, "diffusers", &err) || sld_weights_new(&wb, "single", &err) ||
        sld_weights_add_file(wa, a, NULL, &err) ||
        (which ? sld_ckpt_map_vae(wb, b, &err) : sld_ckpt_map_unet(wb, b, &err))) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    CHECK_MSG(sld_weights_count(wa) == sld_weights_count(wb), "%d vs %d", sld_weights_count(wa),
              sld_weights_count(wb));
    int bad = 0;
    for (int i = 0; i < sld_weights_count(wa); i++) {
        const char *n = sld_weights_name(wa, i, NULL);
        int64_t s[SLD_ST_MAX_DIMS];
        int nd = sld_weights_shape(wa, n, s);
        const float *x = sld_weights_f32(wa, n, nd, s, &err);
        const float *y = sld_weights_f32(wb, n, nd, s, &err);
        size_t cnt = 1;
        for (int d = 0; d < nd; d++)
            cnt *= (size_t)s[d];
        if (!x || !y || memcmp(x, y, cnt * sizeof(float))) {
            if (bad++ < 5)
                printf("  %s: %s\n", n, y ? "values differ" : err.msg);
        }
    }
    CHECK(bad == 0);
    CHECK(sld_weights_used_count(wb) == sld_weights_count(wb));
done:
    sld_weights_free(wa);
    sld_weights_free(wb);
    sld_st_close(a);
    sld_st_close(b);
}

static void test_map_unet_vae(void)
{
    compare_component("models/tiny-sd1/unet/diffusion_pytorch_model.safetensors",
                      "models/tiny-sd1.safetensors", 0);
    compare_component("models/tiny-sd1/vae/diffusion_pytorch_model.safetensors",
                      "models/tiny-sd1.safetensors", 1);
    compare_component("models/tiny-sd2/unet/diffusion_pytorch_model.safetensors",
                      "models/tiny-sd2.safetensors", 0);
    compare_component("models/tiny-sd2/vae/diffusion_pytorch_model.safetensors",
                      "models/tiny-sd2.safetensors", 1);
}

static void test_map_names(void)
{
    static const struct {
        const char *ldm, *want;
    } unet[] = {
        {"input_blocks.0.0.weight", "conv_in.weight"},
        {"time_embed.2.bias", "time_embedding.linear_2.bias"},
        {"input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight"},
        {"input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight",
         "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight"},
        {"input_blocks.9.0.op.bias", "down_blocks.2.downsamplers.0.conv.bias"},
        {"middle_block.2.emb_layers.1.weight", "mid_block.resnets.1.time_emb_proj.weight"},
        {"middle_block.1.proj_in.weight", "mid_block.attentions.0.proj_in.weight"},
        {"output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"},
        {"output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"},
        {"output_blocks.5.1.norm.weight", "up_blocks.1.attentions.2.norm.weight"},
        {"output_blocks.11.0.out_layers.3.weight", "up_blocks.3.resnets.2.conv2.weight"},
        {"out.0.weight", "conv_norm_out.weight"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof unet / sizeof unet[0]; i++) {
        bool ok = sld_ckpt_unet_name(unet[i].ldm, 2, out, sizeof out);
        CHECK_MSG(ok && !strcmp(out, unet[i].want), "%s -> %s", unet[i].ldm, ok ? out : "-");
    }
    static const char *const bad[] = {"input_blocks.3.1.norm.weight", "label_emb.0.0.weight",
                                      "middle_block.3.x", "input_blocks.x.0.w",
                                      "output_blocks.1.2.conv.weight",
                                      "input_blocks.1.0.foo.weight"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!sld_ckpt_unet_name(bad[i], 2, out, sizeof out), "%s", bad[i]);
    CHECK(sld_ckpt_vae_name("decoder.up.0.block.2.norm1.weight", 4, out, sizeof out) &&
          !strcmp(out, "decoder.up_blocks.3.resnets.2.norm1.weight"));
    CHECK(sld_ckpt_vae_name("encoder.mid.attn_1.proj_out.bias", 4, out, sizeof out) &&
          !strcmp(out, "encoder.mid_block.attentions.0.to_out.0.bias"));
    CHECK(sld_ckpt_vae_name("decoder.up.3.upsample.conv.weight", 4, out, sizeof out) &&
          !strcmp(out, "decoder.up_blocks.0.upsamplers.0.conv.weight"));
    CHECK(!sld_ckpt_vae_name("decoder.up.4.block.0.norm1.weight", 4, out, sizeof out));
    CHECK(!sld_ckpt_vae_name("loss.discriminator.main.0.weight", 4, out, sizeof out));
    CHECK(!sld_ckpt_unet_name("input_blocks.1.0.in_layers.0.weight", 2, out, 8)); /* too small */
}

/* ---- error paths ---------------------------------------------------------------- */

/* A temp diffusers folder: symlinks to src's entries except `own`, created
 * empty for the caller to fill. */
static const char *make_folder(const char *name, const char *src_rel, const char *own)
{
    static const char *const parts[] = {"model_index.json", "tokenizer", "text_encoder", "unet",
                                        "vae", "scheduler"};
    char *src = fixture_abs(src_rel);
    const char *dir = tmp(name);
    mkdir(dir, 0700);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char s[1024], d[512];
        snprintf(d, sizeof d, "%s/%s", dir, parts[i]);
        if (own && !strcmp(parts[i], own)) {
            mkdir(d, 0700);
            continue;
        }
        snprintf(s, sizeof s, "%s/%s", src, parts[i]);
        if (symlink(s, d))
            printf("  symlink %s failed\n", d);
    }
    free(src);
    return dir;
}

static int copy_file(const char *from, const char *to, size_t max_len)
{
    char *buf;
    size_t len;
    sld_error err;
    if (sld_file_read(from, (size_t)64 << 20, &buf, &len, &err))
        return -1;
    if (len > max_len)
        len = max_len;
    int r = sld_file_write_atomic(to, buf, len, &err) ? -1 : 0;
    sld_free(buf);
    return r;
}

/* Writes src's tensors with one changed (shape or dtype) to dst. */
static int rewrite_one(const char *src, const char *dst, const char *name, int ndim,
                       const int64_t *shape, sld_dtype dt)
{
    sld_st_file *f;
    sld_error err;
    if (sld_st_open(&f, src, &err))
        return -1;
    int n = sld_st_count(f);
    sld_st_out *o = sld_calloc((size_t)n, sizeof *o);
    for (int i = 0; i < n; i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        o[i].name = t->name;
        o[i].dtype = t->dtype;
        o[i].ndim = t->ndim;
        memcpy(o[i].shape, t->shape, sizeof o[i].shape);
        o[i].data = t->data;
        if (!strcmp(t->name, name)) {
            o[i].ndim = ndim;
            memcpy(o[i].shape, shape, (size_t)ndim * sizeof *shape);
            o[i].dtype = dt;
        }
    }
    int r = sld_st_write(dst, o, n, NULL, 0, &err) ? -1 : 0;
    if (r)
        printf("  %s\n", err.msg);
    sld_free(o);
    sld_st_close(f);
    return r;
}

static void expect_fail(const char *path, const char *cfg, sld_status code, const char *needle,
                        const char *needle2)
{
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    sld_model *m = (sld_model *)1;
    sld_error err;
    err.msg[0] = 0;
    sld_status st = sld_model_open(&m, path, &o, &err);
    CHECK_MSG(st == code && m == NULL, "%s: got %d (%s), want %d", path, st, err.msg, code);
    CHECK_MSG(strstr(err.msg, needle) && (!needle2 || strstr(err.msg, needle2)),
              "'%s' lacks '%s' / '%s'", err.msg, needle, needle2 ? needle2 : "");
    CHECK(!strchr(err.msg, '\n'));
    if (!st)
        sld_model_close(m);
}

static void test_missing(void)
{
    expect_fail("/nonexistent/model", NULL, SLD_ERR_IO, "/nonexistent/model", "no such");
    expect_fail(fx("models/tiny-clip-vision"), NULL, SLD_ERR_IO, "model_index.json", NULL);
    const char *d = make_folder("no_unet", "models/tiny-sd1", "unet");
    expect_fail(d, NULL, SLD_ERR_IO, "unet/diffusion_pytorch_model.safetensors", "missing");
    d = make_folder("no_tok", "models/tiny-sd1", "tokenizer");
    expect_fail(d, NULL, SLD_ERR_IO, "tokenizer", NULL);
}

/* The fp16 variant file name is accepted too. */
static void test_fp16_variant_name(void)
{
    const char *d = make_folder("fp16", "models/tiny-sd1", "unet");
    char *src = fixture_abs("models/tiny-sd1/unet");
    char s[1024], t[512];
    snprintf(s, sizeof s, "%s/config.json", src);
    snprintf(t, sizeof t, "%s/unet/config.json", d);
    CHECK(symlink(s, t) == 0);
    snprintf(s, sizeof s, "%s/diffusion_pytorch_model.safetensors", src);
    snprintf(t, sizeof t, "%s/unet/diffusion_pytorch_model.fp16.safetensors", d);
    CHECK(symlink(s, t) == 0);
    free(src);
    check_model(d, NULL, "sd1", 32, SLD_ARCH_SD1, SLD_PRED_EPSILON);
}

static void test_truncated(void)
{
    /* a diffusers folder whose text encoder file is cut at many offsets */
    const char *d = make_folder("trunc", "models/tiny-sd2", "text_encoder");
    char cfg_to[512], st_to[512];
    snprintf(cfg_to, sizeof cfg_to, "%s/text_encoder/config.json", d);
    snprintf(st_to, sizeof st_to, "%s/text_encoder/model.safetensors", d);
    CHECK(copy_file(fx("models/tiny-sd2/text_encoder/config.json"), cfg_to, SIZE_MAX) == 0);
    const char *src = fx("models/tiny-sd2/text_encoder/model.safetensors");
    struct stat sb;
    CHECK(stat(src, &sb) == 0);
    size_t size = (size_t)sb.st_size;
    size_t offs[] = {0, 1, 7, 8, 9, 20, 100, 1000, 4000, 4096, 5000, size / 3, size / 2,
                     size - 100, size - 4, size - 1};
    char src_copy[512];
    snprintf(src_copy, sizeof src_copy, "%s", src);
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        CHECK(copy_file(src_copy, st_to, offs[i]) == 0);
        expect_fail(d, NULL, SLD_ERR_FORMAT, "text_encoder/model.safetensors", NULL);
    }
    /* the single file too (cut inside the header, the data and at the end) */
    char *single = fixture_abs("models/tiny-sd1.safetensors");
    CHECK(stat(single, &sb) == 0);
    size = (size_t)sb.st_size;
    size_t offs2[] = {3, 8, 50, 30000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof offs2 / sizeof offs2[0]; i++) {
        CHECK(copy_file(single, tmp("cut.safetensors"), offs2[i]) == 0);
        expect_fail(tmp("cut.safetensors"), NULL, SLD_ERR_FORMAT, "cut.safetensors", NULL);
    }
    /* a corrupt header: a JSON brace replaced */
    char *buf;
    size_t len;
    sld_error err;
    if (sld_file_read(single, (size_t)64 << 20, &buf, &len, &err) == SLD_OK) {
        buf[8] = '[';
        CHECK(sld_file_write_atomic(tmp("bad.safetensors"), buf, len, &err) == SLD_OK);
        expect_fail(tmp("bad.safetensors"), NULL, SLD_ERR_FORMAT, "bad.safetensors", NULL);
        sld_free(buf);
    }
    free(single);
}

static void test_wrong_shape_dtype(void)
{
    const char *src = fx("models/tiny-sd2/text_encoder/model.safetensors");
    char s[512];
    snprintf(s, sizeof s, "%s", src);
    const char *d = make_folder("shape", "models/tiny-sd2", "text_encoder");
    char cfg_to[512], st_to[512];
    snprintf(cfg_to, sizeof cfg_to, "%s/text_encoder/config.json", d);
    snprintf(st_to, sizeof st_to, "%s/text_encoder/model.safetensors", d);
    CHECK(copy_file(fx("models/tiny-sd2/text_encoder/config.json"), cfg_to, SIZE_MAX) == 0);
    int64_t sh[2] = {32, 32};
    CHECK(rewrite_one(s, st_to, "text_model.encoder.layers.1.mlp.fc1.weight", 2, sh,
                      SLD_DT_F32) == 0);
    expect_fail(d, NULL, SLD_ERR_SHAPE,
                "text_encoder/model.safetensors: 'text_model.encoder.layers.1.mlp.fc1.weight' is "
                "[32,32], expected [64,16]",
                NULL);
    int64_t sh1[1] = {16};
    CHECK(rewrite_one(s, st_to, "text_model.final_layer_norm.bias", 1, sh1, SLD_DT_I32) == 0);
    expect_fail(d, NULL, SLD_ERR_SHAPE, "text_encoder/model.safetensors", "I32");
}

static void test_missing_config_key(void)
{
    const char *d = make_folder("cfgkey", "models/tiny-sd1", "text_encoder");
    char *src = fixture_abs("models/tiny-sd1/text_encoder/model.safetensors");
    char t[512];
    snprintf(t, sizeof t, "%s/text_encoder/model.safetensors", d);
    CHECK(symlink(src, t) == 0);
    free(src);
    snprintf(t, sizeof t, "%s/text_encoder/config.json", d);
    static const char cfg[] = "{\"hidden_size\":32,\"num_attention_heads\":4,"
                              "\"intermediate_size\":128,\"hidden_act\":\"quick_gelu\"}";
    sld_error err;
    CHECK(sld_file_write_atomic(t, cfg, sizeof cfg - 1, &err) == SLD_OK);
    expect_fail(d, NULL, SLD_ERR_CONFIG, "text_encoder/config.json", "num_hidden_layers");
    static const char broken[] = "{\"hidden_size\":32,";
    CHECK(sld_file_write_atomic(t, broken, sizeof broken - 1, &err) == SLD_OK);
    expect_fail(d, NULL, SLD_ERR_FORMAT, "text_encoder/config.json", "JSON");
}

static void test_unknown_arch(void)
{
    float x[4] = {1, 2, 3, 4};
    sld_st_out o[2] = {{"model.layers.0.weight", SLD_DT_F32, 2, {2, 2}, x},
                       {"lm_head.weight", SLD_DT_F32, 1, {4}, x}};
    sld_error err;
    CHECK(sld_st_write(tmp("llm.safetensors"), o, 2, NULL, 0, &err) == SLD_OK);
    expect_fail(tmp("llm.safetensors"), NULL, SLD_ERR_UNSUPPORTED, "llm.safetensors",
                "unknown architecture");
    /* a text encoder alone is not a Stable Diffusion checkpoint either */
    expect_fail(fx("models/tiny-sd1/text_encoder/model.safetensors"), NULL,
                SLD_ERR_UNSUPPORTED, "unknown architecture", NULL);
}

static void test_bad_prompt(void)
{
    sld_model *m;
    sld_ctx *c;
    sld_error err;
    if (sld_model_open(&m, fx("models/tiny-sd1"), NULL, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    CHECK(sld_ctx_new(&c, m, -1, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_ctx_new(&c, m, 0, &err) == SLD_OK);
    float out[77 * 32];
    CHECK(sld_encode(c, "bad \xff\xfe utf-8", out, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_encode(c, "truncated \xe2\x82", out, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_encode(c, NULL, out, &err) == SLD_ERR_INVALID_ARG);
    /* a long prompt is truncated, and says so */
    char longp[2000] = "";
    for (int i = 0; i < 120; i++)
        strcat(longp, "cat ");
    int32_t ids[77];
    int trunc = 0;
    CHECK(sld_tokenize(m, longp, ids, &trunc, &err) == SLD_OK);
    CHECK(trunc == 1);
    CHECK(sld_encode(c, longp, out, &err) == SLD_OK);
    sld_ctx_free(c);
    sld_model_close(m);
}

/* Allocation failure during a folder open — every index early on, then 24
 * points spread over the whole open: a clean error, never a crash or leak. */
static void test_open_oom(void)
{
    sld_model *m = NULL;
    sld_error err;
    sld_alloc_fail_at(0);
    CHECK(sld_model_open(&m, fx("models/tiny-sd2"), NULL, &err) == SLD_OK);
    long total = sld_alloc_fail_at(0);
    sld_model_close(m);
    CHECK(total > 100);
    for (long k = 1; k <= 48; k++) {
        long n = k <= 24 ? k : 24 + (total - 24) * (k - 24) / 25;
        m = NULL;
        err.msg[0] = 0;
        sld_alloc_fail_at(n);
        sld_status st = sld_model_open(&m, fx("models/tiny-sd2"), NULL, &err);
        sld_alloc_fail_at(0);
        CHECK_MSG(st != SLD_OK && m == NULL && err.msg[0], "n=%ld of %ld: %d", n, total, st);
        sld_model_close(m);
    }
}

static void test_debug_run_errors(void)
{
    sld_model *m;
    sld_ctx *c;
    sld_error err;
    if (sld_model_open(&m, fx("models/tiny-sd1"), NULL, &err) || sld_ctx_new(&c, m, 1, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    float f[77] = {0};
    int64_t ids[77] = {0};
    ids[3] = 49408;
    sld_st_out o1 = {"input_ids", SLD_DT_F32, 2, {1, 77}, f};
    sld_st_out o2 = {"ids", SLD_DT_I64, 2, {1, 77}, ids};
    sld_st_out o3 = {"input_ids", SLD_DT_I64, 2, {1, 77}, ids};
    CHECK(sld_st_write(tmp("in1.safetensors"), &o1, 1, NULL, 0, &err) == SLD_OK);
    CHECK(sld_st_write(tmp("in2.safetensors"), &o2, 1, NULL, 0, &err) == SLD_OK);
    CHECK(sld_st_write(tmp("in3.safetensors"), &o3, 1, NULL, 0, &err) == SLD_OK);
    char out[512];
    snprintf(out, sizeof out, "%s", tmp("out.safetensors"));
    CHECK(sld_debug_run(c, "text_encoder", tmp("in1.safetensors"), out, &err) == SLD_ERR_SHAPE);
    CHECK(strstr(err.msg, "input_ids") && strstr(err.msg, "in1.safetensors"));
    CHECK(sld_debug_run(c, "text_encoder", tmp("in2.safetensors"), out, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "input_ids") != NULL);
    CHECK(sld_debug_run(c, "text_encoder", tmp("in3.safetensors"), out, &err) ==
          SLD_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "49408") != NULL);
    CHECK(sld_debug_run(c, "decoder", tmp("in3.safetensors"), out, &err) == SLD_ERR_INVALID_ARG);
    CHECK(sld_debug_run(c, "text_encoder", tmp("none.safetensors"), out, &err) == SLD_ERR_IO);
    CHECK(!sld_path_exists(out));
    sld_ctx_free(c);
    sld_model_close(m);
}

/* ---- command line --------------------------------------------------------------- */

static char g_sld[1100], g_dir[1024];

static int run_sld(const char *args, const char *stderr_file)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>%s", g_sld, args, stderr_file);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* stderr must be exactly one line containing needle. */
static void check_one_line(const char *file, const char *needle)
{
    char *buf;
    size_t len;
    sld_error err;
    if (sld_file_read(file, 1 << 20, &buf, &len, &err)) {
        CHECK(!"stderr");
        return;
    }
    char *nl = strchr(buf, '\n');
    CHECK_MSG(len > 0 && nl == buf + len - 1, "stderr: %s", buf);
    CHECK_MSG(strstr(buf, needle) != NULL, "'%s' lacks '%s'", buf, needle);
    sld_free(buf);
}

static void test_cli(void)
{
    /* the command of this build; `make san-one` builds no command, so an
     * older one (from before the library) is skipped, not tested */
    struct stat bin, lib;
    char libpath[1200];
    snprintf(libpath, sizeof libpath, "%s/../libsld.a", g_dir);
    if (!g_sld[0] || access(g_sld, X_OK) || stat(g_sld, &bin) || stat(libpath, &lib) ||
        bin.st_mtime < lib.st_mtime) {
        printf("  (skip: no up-to-date sld binary next to the test)\n");
        return;
    }
    char e[512];
    snprintf(e, sizeof e, "%s", tmp("stderr.txt"));
    char args[2048];
    /* success: encode, compared with the golden */
    snprintf(args, sizeof args, "encode --model %s --prompt 'a photo of a cat' -o %s --threads 1",
             fx("models/tiny-sd1"), tmp("enc.safetensors"));
    CHECK(run_sld(args, e) == 0);
    golden g;
    sld_st_file *f;
    sld_error err;
    if (golden_open(&g, "sd1", 32) == 0) {
        if (sld_st_open(&f, tmp("enc.safetensors"), &err) == SLD_OK) {
            int64_t sh[3] = {1, 77, 32};
            float *x = sld_st_read_f32(f, "last_hidden_state", 3, sh, &err);
            CHECK(x != NULL);
            if (x)
                CHECK_CLOSE("cli encode", x, g.lhs + 77 * 32, 77 * 32, TOL);
            sld_free(x);
            sld_st_close(f);
        } else {
            CHECK_MSG(0, "%s", err.msg);
        }
        golden_free(&g);
    }
    /* debug run text_encoder on the golden input_ids, single file + config */
    char *cfg = fixture_abs("models/tiny-sd2");
    snprintf(args, sizeof args,
             "debug run --model %s --config %s --module text_encoder --inputs %s -o %s",
             fx("models/tiny-sd2.safetensors"), cfg, fx("text_encoder/sd2.safetensors"),
             tmp("dbg.safetensors"));
    free(cfg);
    CHECK(run_sld(args, e) == 0);
    if (golden_open(&g, "sd2", 16) == 0) {
        if (sld_st_open(&f, tmp("dbg.safetensors"), &err) == SLD_OK) {
            int64_t sh[3] = {6, 77, 16};
            float *x = sld_st_read_f32(f, "last_hidden_state", 3, sh, &err);
            int64_t shp[2] = {6, 16};
            float *pool = sld_st_read_f32(f, "pooler_output", 2, shp, &err);
            float *want = sld_st_read_f32(g.f, "pooler_output", 2, shp, &err);
            if (x && pool && want) {
                CHECK_CLOSE("debug run", x, g.lhs, 6 * 77 * 16, TOL);
                CHECK_CLOSE("pooler_output", pool, want, 6 * 16, TOL);
            } else {
                CHECK(!"outputs");
            }
            sld_free(x);
            sld_free(pool);
            sld_free(want);
            sld_st_close(f);
        } else {
            CHECK_MSG(0, "%s", err.msg);
        }
        golden_free(&g);
    }
    /* errors: one line, exit 1; usage: exit 2 */
    snprintf(args, sizeof args, "encode --model /nonexistent --prompt x -o %s", tmp("x"));
    CHECK(run_sld(args, e) == 1);
    check_one_line(e, "/nonexistent");
    snprintf(args, sizeof args, "encode --model %s --prompt \"$(printf '\\377')\" -o %s",
             fx("models/tiny-sd1"), tmp("x"));
    CHECK(run_sld(args, e) == 1);
    check_one_line(e, "UTF-8");
    snprintf(args, sizeof args, "encode --model %s --prompt x -o %s", tmp("llm.safetensors"),
             tmp("x"));
    CHECK(run_sld(args, e) == 1);
    check_one_line(e, "unknown architecture");
    snprintf(args, sizeof args, "debug run --model %s --module text_encoder --inputs %s -o %s",
             fx("models/tiny-sd1"), fx("models/tiny-sd1/vae/config.json"), tmp("x"));
    CHECK(run_sld(args, e) == 1);
    check_one_line(e, "config.json");
    snprintf(args, sizeof args, "debug run --model %s --module text_encoder --inputs %s -o %s",
             fx("models/tiny-sd1"), fx("text_encoder/sd2.safetensors"), tmp("x"));
    CHECK(run_sld(args, e) == 0); /* sd2 ids are valid sd1 ids too */
    CHECK(run_sld("encode --model x", e) == 2);
    CHECK(run_sld("encode --bogus 1 --model x --prompt y -o z", e) == 2);
    CHECK(run_sld("encode --model x --prompt y -o z --threads many", e) == 2);
    CHECK(run_sld("debug", e) == 2);
    CHECK(run_sld("debug frobnicate", e) == 2);
    CHECK(run_sld("debug run --model x --module fancy --inputs y -o z", e) == 2);
    CHECK(run_sld("debug make-random --arch sdxl -o z", e) == 2);
    CHECK(run_sld("encode --help", e) == 0);
}

/* SHA-256 test vectors (FIPS 180-4 examples) and the model identity: a
 * single file's hash is `sha256sum FILE`; a folder's is
 * `sha256sum <files> | sort -k2 | sha256sum` (values computed with
 * coreutils when the test was written). */
static void test_model_hash(void)
{
    char hex[65];
    sld_sha256_str("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    sld_sha256_str("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sld_sha256_str(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* One million 'a' fed in odd-sized pieces. */
    sld_sha256 s;
    sld_sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t n = left < 997 ? left : (left % 61) + 1;
        sld_sha256_update(&s, a, n);
        left -= n;
    }
    uint8_t d[32];
    sld_sha256_final(&s, d);
    sld_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));

    /* The tiny single file needs a config folder: its files join the listing
     * as config/<rel>. (Alone, a file's identity is its own sha256sum.) */
    sld_error err;
    sld_model *m;
    sld_model_opts o;
    sld_model_opts_default(&o);
    char *cfg = fixture_abs("models/tiny-sd1");
    o.config_dir = cfg;
    CHECK(sld_model_open(&m, fx("models/tiny-sd1.safetensors"), &o, &err) == SLD_OK);
    CHECK_MSG(!strcmp(sld_model_sha256(m),
                      "f1f1f61e31e1fa16d01f98dcf704bd0d2fb31b0af7a8b485f15b39cebbcb4104"),
              "%s", sld_model_sha256(m));
    CHECK(!strcmp(sld_model_hash(m), "f1f1f61e31"));
    sld_model_file one = {.rel = "x", .path = "y"};
    sld_sha256_file(fx("models/tiny-sd1.safetensors"), one.sha256, &err);
    sld_model_identity_of(&one, 1, hex);
    CHECK(!strcmp(hex, "aba8cb94bbd203813f6a9b70a9f7bb0355e76e0c8f553ab7f7e78bf959f3d503"));
    sld_model_close(m);
    free(cfg);
    CHECK(sld_model_open(&m, fx("models/tiny-sd1"), NULL, &err) == SLD_OK);
    CHECK_MSG(!strcmp(sld_model_sha256(m),
                      "8f65c4640951bf504561c565ea7e0a3d0718bc0016d89aee2e1bda4ca34dab5b"),
              "%s", sld_model_sha256(m));
    CHECK(!strcmp(sld_model_hash(m), "8f65c46409"));
    sld_model_close(m);
    CHECK(strncmp(sld_version(), SLD_VERSION, strlen(SLD_VERSION)) == 0);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_load_%ld", (long)getpid());
    mkdir(g_tmp, 0700);
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *s = strrchr(exe, '/');
        if (s) {
            *s = 0;
            snprintf(g_dir, sizeof g_dir, "%s", exe);
            snprintf(g_sld, sizeof g_sld, "%s/../sld", exe);
        }
    }
    RUN(test_model_hash);
    RUN(test_folder_sd1);
    RUN(test_folder_sd2);
    RUN(test_single_sd1);
    RUN(test_single_sd2);
    RUN(test_single_data_dir_tokenizer);
    RUN(test_single_without_config);
    RUN(test_map_unet_vae);
    RUN(test_map_names);
    RUN(test_missing);
    RUN(test_fp16_variant_name);
    RUN(test_truncated);
    RUN(test_wrong_shape_dtype);
    RUN(test_missing_config_key);
    RUN(test_unknown_arch);
    RUN(test_bad_prompt);
    RUN(test_open_oom);
    RUN(test_debug_run_errors);
    RUN(test_cli);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", g_tmp);
    TEST_END();
}
