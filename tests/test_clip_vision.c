/* test_clip_vision.c — CLIP vision tower (flat and CLIPModel folders),
 * CLIPImageProcessor preprocessing with PIL-exact resize, Q16, and the
 * clip_vision debug runner, against goldens/clip_vision. */
#include "core/core.h"
#include "eval/q16.h"
#include "io/json.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "model/clip_vision.h"
#include "model/image_prep.h"
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY "tests/fixtures/models/tiny-clip-vision"

static sld_st_file *gold;

static const char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/sld_test_clipv_%ld_%s", (long)getpid(), name);
    return buf;
}

static float *gold_f32(const char *name, size_t *n)
{
    const sld_st_tensor *t = sld_st_find(gold, name);
    if (!t)
        return NULL;
    float *v = malloc(t->numel * sizeof(float));
    if (sld_st_to_f32(t, v, NULL)) {
        free(v);
        return NULL;
    }
    if (n)
        *n = t->numel;
    return v;
}

static const uint8_t *gold_u8(const char *name, size_t *n)
{
    const sld_st_tensor *t = sld_st_find(gold, name);
    if (!t || t->dtype != SLD_DT_U8)
        return NULL;
    if (n)
        *n = t->numel;
    return t->data;
}

static double max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}

/* Runs m on the golden pixel_values and compares every output. */
static void check_forward(sld_clip_vision *m)
{
    size_t np, ne, npo, nl, nh;
    float *pix = gold_f32("pixel_values", &np), *emb = gold_f32("image_embeds", &ne),
          *pool = gold_f32("pooler_output", &npo), *lhs = gold_f32("last_hidden_state", &nl),
          *hs = gold_f32("hidden_states", &nh);
    CHECK(pix && emb && pool && lhs && hs);
    if (!pix || !emb || !pool || !lhs || !hs)
        return;
    CHECK(ne == 3 * 16 && npo == 3 * 32 && nl == 3 * 17 * 32 && nh == 3 * nl);
    float *e = calloc(ne, 4), *p = calloc(npo, 4), *l = calloc(nl, 4), *h = calloc(nh, 4);
    sld_clip_vision_out o = {e, p, l, h};
    sld_error err;
    CHECK(sld_clip_vision_forward(m, pix, 3, &o, &err) == SLD_OK);
    CHECK_CLOSE("image_embeds", e, emb, ne, 1e-4);
    CHECK_CLOSE("pooler_output", p, pool, npo, 1e-4);
    CHECK_CLOSE("last_hidden_state", l, lhs, nl, 1e-4);
    CHECK_CLOSE("hidden_states", h, hs, nh, 1e-4);
    printf("  max |d|: image_embeds %.3g, pooler %.3g, last_hidden_state %.3g, hidden_states "
           "%.3g\n",
           max_abs(e, emb, ne), max_abs(p, pool, npo), max_abs(l, lhs, nl), max_abs(h, hs, nh));
    /* Batch of one (different chunking) gives image 2's embedding too. */
    float e1[16];
    sld_clip_vision_out o1 = {.image_embeds = e1};
    CHECK(sld_clip_vision_forward(m, pix + 2 * 3 * 56 * 56, 1, &o1, &err) == SLD_OK);
    CHECK_CLOSE("image_embeds[2]", e1, emb + 32, 16, 1e-4);
    free(e), free(p), free(l), free(h);
    free(pix), free(emb), free(pool), free(lhs), free(hs);
}

static void test_forward_flat_folder(void)
{
    sld_clip_vision *m;
    sld_error err;
    CHECK(sld_clip_vision_open_dir(&m, TINY, &err) == SLD_OK);
    const sld_clip_vision_config *c = sld_clip_vision_cfg(m);
    CHECK(c->hidden == 32 && c->heads == 4 && c->layers == 2 && c->intermediate == 64);
    CHECK(c->image_size == 56 && c->patch_size == 14 && c->proj_dim == 16 && !c->gelu_erf);
    CHECK_NEAR(c->ln_eps, 1e-5, 1e-12);
    check_forward(m);
    sld_clip_vision_free(m);
}

/* Writes `dir` as a full CLIPModel folder: nested vision_config, the vision
 * weights plus text-tower tensors that must be ignored. */
static int write_clipmodel_folder(const char *dir, const char *vision_extra)
{
    sld_error err;
    sld_st_file *f;
    if (sld_st_open(&f, TINY "/model.safetensors", &err))
        return 0;
    int n = sld_st_count(f);
    sld_st_out *o = calloc((size_t)n + 3, sizeof *o);
    for (int i = 0; i < n; i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        o[i].name = t->name;
        o[i].dtype = t->dtype;
        o[i].ndim = t->ndim;
        memcpy(o[i].shape, t->shape, sizeof t->shape);
        o[i].data = t->data;
    }
    static const float junk[4] = {1, 2, 3, 4};
    o[n] = (sld_st_out){"text_model.embeddings.token_embedding.weight", SLD_DT_F32, 2, {2, 2},
                        junk};
    o[n + 1] = (sld_st_out){"logit_scale", SLD_DT_F32, 1, {1}, junk};
    /* older transformers saves carry the position_ids buffer (int64) */
    static int64_t ids[17];
    for (int i = 0; i < 17; i++)
        ids[i] = i;
    o[n + 2] = (sld_st_out){"vision_model.embeddings.position_ids", SLD_DT_I64, 2, {1, 17}, ids};
    mkdir(dir, 0755);
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int ok = sld_st_write(p, o, n + 3, NULL, 0, &err) == SLD_OK;
    free(o);
    sld_st_close(f);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *fp = fopen(p, "w");
    fprintf(fp,
            "{\"architectures\": [\"CLIPModel\"], \"model_type\": \"clip\", \"projection_dim\": 16,"
            " \"text_config\": {\"hidden_size\": 2},"
            " \"vision_config\": {\"hidden_size\": 32, \"image_size\": 56, "
            "\"intermediate_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, "
            "\"patch_size\": 14, \"projection_dim\": 768%s}}",
            vision_extra);
    fclose(fp);
    return ok;
}

static void rm_folder(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

static void test_forward_clipmodel_folder(void)
{
    const char *dir = tmp_path("clipmodel");
    CHECK(write_clipmodel_folder(dir, ""));
    sld_clip_vision *m;
    sld_error err;
    CHECK_MSG(sld_clip_vision_open_dir(&m, dir, &err) == SLD_OK, "%s", err.msg);
    if (m) {
        /* top-level projection_dim (16) wins over vision_config's (768) */
        CHECK(sld_clip_vision_cfg(m)->proj_dim == 16);
        check_forward(m);
        sld_clip_vision_free(m);
    }
    rm_folder(dir);
    /* an unsupported activation is refused with the key named */
    CHECK(write_clipmodel_folder(dir, ", \"hidden_act\": \"relu\""));
    CHECK(sld_clip_vision_open_dir(&m, dir, &err) == SLD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "relu") != NULL);
    rm_folder(dir);
    /* exact GELU is accepted */
    CHECK(write_clipmodel_folder(dir, ", \"hidden_act\": \"gelu\""));
    CHECK(sld_clip_vision_open_dir(&m, dir, &err) == SLD_OK);
    if (m)
        CHECK(sld_clip_vision_cfg(m)->gelu_erf == 1);
    sld_clip_vision_free(m);
    rm_folder(dir);
}

static void test_config_errors(void)
{
    sld_json j;
    sld_clip_vision_config c;
    sld_error err;
    /* wrong width: binding fails naming the tensor and both shapes */
    CHECK(sld_json_parse(&j, "{\"hidden_size\": 64, \"num_attention_heads\": 4, "
                             "\"intermediate_size\": 64, \"num_hidden_layers\": 2, "
                             "\"image_size\": 56, \"patch_size\": 14, \"projection_dim\": 16}",
                         "cfg", &err) == SLD_OK);
    CHECK(sld_clip_vision_config_from_json(&c, &j, &err) == SLD_OK);
    sld_json_free(&j);
    sld_st_file *f;
    sld_weights *w;
    sld_clip_vision *m = NULL;
    CHECK(sld_st_open(&f, TINY "/model.safetensors", &err) == SLD_OK);
    CHECK(sld_weights_new(&w, "tiny", &err) == SLD_OK);
    CHECK(sld_weights_add_file(w, f, NULL, &err) == SLD_OK);
    CHECK(sld_clip_vision_load(&m, &c, w, "vision_model.", "visual_projection.weight", &err) ==
          SLD_ERR_SHAPE);
    CHECK(m == NULL && strstr(err.msg, "patch_embedding") != NULL);
    /* wrong prefix: missing tensor */
    c.hidden = 32;
    CHECK(sld_clip_vision_load(&m, &c, w, "vision_model.vision_model.",
                               "visual_projection.weight", &err) != SLD_OK);
    CHECK(strstr(err.msg, "vision_model.vision_model.embeddings") != NULL);
    /* a config claiming one layer while the file has two */
    c.layers = 1;
    CHECK(sld_clip_vision_load(&m, &c, w, "vision_model.", "visual_projection.weight", &err) ==
          SLD_OK);
    sld_clip_vision_free(m);
    sld_weights_free(w);
    sld_st_close(f);
    /* inconsistent numbers */
    CHECK(sld_json_parse(&j, "{\"hidden_size\": 30, \"num_attention_heads\": 4}", "cfg",
                         &err) == SLD_OK);
    CHECK(sld_clip_vision_config_from_json(&c, &j, &err) == SLD_ERR_CONFIG);
    sld_json_free(&j);
    CHECK(sld_json_parse(&j, "{\"vision_config\": 3}", "cfg", &err) == SLD_OK);
    CHECK(sld_clip_vision_config_from_json(&c, &j, &err) == SLD_ERR_CONFIG);
    sld_json_free(&j);
    /* defaults are transformers' (ViT-B/32 shapes) */
    CHECK(sld_json_parse(&j, "{}", "cfg", &err) == SLD_OK);
    CHECK(sld_clip_vision_config_from_json(&c, &j, &err) == SLD_OK);
    CHECK(c.hidden == 768 && c.patch_size == 32 && c.image_size == 224 && c.proj_dim == 512);
    sld_json_free(&j);
    CHECK(sld_clip_vision_open_dir(&m, "tests/fixtures/no-such-clip", &err) == SLD_ERR_IO);
    CHECK(strstr(err.msg, "no-such-clip") != NULL);
}

static void test_preprocess(void)
{
    sld_image_prep p;
    sld_error err;
    CHECK(sld_image_prep_load(&p, TINY "/preprocessor_config.json", &err) == SLD_OK);
    CHECK(p.shortest_edge == 56 && p.crop_h == 56 && p.crop_w == 56 &&
          p.resample == SLD_PIL_BICUBIC);
    /* the model's preprocessor_config.json parses to what the oracle ran */
    sld_json oj;
    CHECK(sld_json_load(&oj, fixture("clip_vision/clip_vision.json"), &err) == SLD_OK);
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(oj.root, "processor_config");
    if (pc) {
        const cJSON *mean = cJSON_GetObjectItemCaseSensitive(pc, "image_mean");
        const cJSON *std = cJSON_GetObjectItemCaseSensitive(pc, "image_std");
        for (int c = 0; c < 3; c++) {
            CHECK(p.mean[c] == (float)cJSON_GetArrayItem(mean, c)->valuedouble);
            CHECK(p.std[c] == (float)cJSON_GetArrayItem(std, c)->valuedouble);
        }
        CHECK(p.rescale_factor ==
              cJSON_GetObjectItemCaseSensitive(pc, "rescale_factor")->valuedouble);
        CHECK(p.resample == cJSON_GetObjectItemCaseSensitive(pc, "resample")->valueint);
    }
    CHECK(pc != NULL);
    sld_json_free(&oj);
    size_t n_png, n_res, n_crop, n_pix;
    const uint8_t *png = gold_u8("png_uint8_hwc", &n_png);
    const uint8_t *res = gold_u8("preprocess_resized_uint8_hwc", &n_res);
    const uint8_t *crop = gold_u8("preprocess_cropped_uint8_hwc", &n_crop);
    float *pix = gold_f32("preprocess_pixel_values", &n_pix);
    CHECK(png && res && crop && pix && n_png == 60 * 80 * 3 && n_res == 56 * 74 * 3);
    if (!png || !res || !crop || !pix)
        return;
    int rw, rh;
    sld_image_prep_resized_size(&p, 80, 60, &rw, &rh);
    CHECK(rw == 74 && rh == 56);

    /* our PNG reader gives the same pixels as PIL */
    uint8_t *dec = NULL;
    int w = 0, h = 0;
    CHECK(sld_png_read(fixture("clip_vision/preprocess_input.png"), &dec, &w, &h, &err) ==
          SLD_OK);
    CHECK(w == 80 && h == 60 && dec && !memcmp(dec, png, n_png));

    /* the resize stage is bit-exact (Pillow's fixed-point bicubic) */
    uint8_t *mine = malloc(n_res);
    float *out = malloc(n_pix * sizeof(float));
    CHECK(sld_image_prep_run(&p, dec ? dec : png, 80, 60, out, mine, &err) == SLD_OK);
    int maxd = 0;
    for (size_t i = 0; i < n_res; i++) {
        int d = abs((int)mine[i] - (int)res[i]);
        maxd = d > maxd ? d : maxd;
    }
    CHECK_MSG(maxd == 0, "resize max level difference %d", maxd);
    CHECK_CLOSE("preprocess_pixel_values", out, pix, n_pix, 1e-5);
    printf("  resize max level diff %d, pixel_values max |d| %.3g\n", maxd,
           max_abs(out, pix, n_pix));
    /* normalisation alone from the golden crop */
    float *out2 = malloc(n_pix * sizeof(float));
    sld_image_prep_normalize(&p, crop, 56, 56, out2);
    CHECK_CLOSE("pixel_values from crop", out2, pix, n_pix, 1e-5);

    /* end to end: image embedding of the PNG */
    sld_clip_vision *m;
    size_t ne;
    float *want = gold_f32("preprocess_image_embeds", &ne);
    CHECK(sld_clip_vision_open_dir(&m, TINY, &err) == SLD_OK);
    float e[16];
    sld_clip_vision_out o = {.image_embeds = e};
    CHECK(sld_clip_vision_forward(m, out, 1, &o, &err) == SLD_OK);
    CHECK(ne == 16 && want);
    if (want)
    {
        CHECK_CLOSE("preprocess_image_embeds", e, want, 16, 1e-4);
        printf("  preprocess_image_embeds max |d| %.3g\n", max_abs(e, want, 16));
    }
    sld_clip_vision_free(m);
    free(want), free(out2), free(out), free(mine), free(pix);
    sld_free(dec);
}

/* Properties of the resampler that hold for any Pillow filter. */
static void test_resize_properties(void)
{
    sld_error err;
    enum { W = 23, H = 17 };
    uint8_t src[W * H * 3], dst[40 * 31 * 3];
    for (int i = 0; i < W * H * 3; i++)
        src[i] = 77;
    static const int filters[] = {SLD_PIL_BICUBIC, SLD_PIL_BILINEAR, SLD_PIL_LANCZOS,
                                  SLD_PIL_BOX, SLD_PIL_HAMMING};
    for (int f = 0; f < 5; f++) {
        /* a constant image stays constant, up and down */
        CHECK(sld_resize_pil_u8(src, W, H, 3, dst, 40, 31, filters[f], &err) == SLD_OK);
        int same = 1;
        for (int i = 0; i < 40 * 31 * 3; i++)
            same &= dst[i] == 77;
        CHECK(same);
        CHECK(sld_resize_pil_u8(src, W, H, 3, dst, 7, 5, filters[f], &err) == SLD_OK);
        for (int i = 0; i < 7 * 5 * 3; i++)
            same &= dst[i] == 77;
        CHECK(same);
    }
    /* identity size copies; one axis only */
    for (int i = 0; i < W * H * 3; i++)
        src[i] = (uint8_t)(i * 37);
    CHECK(sld_resize_pil_u8(src, W, H, 3, dst, W, H, SLD_PIL_BICUBIC, &err) == SLD_OK);
    CHECK(!memcmp(src, dst, sizeof src));
    CHECK(sld_resize_pil_u8(src, W, H, 3, dst, 11, H, SLD_PIL_BICUBIC, &err) == SLD_OK);
    CHECK(sld_resize_pil_u8(src, W, H, 3, dst, W, 9, SLD_PIL_BICUBIC, &err) == SLD_OK);
    /* a 2x box downscale averages pairs horizontally, rounds half up to
     * uint8, then does the same vertically (Pillow's two passes): block
     * {10,10;10,11} -> {10, 10.5->11} -> 10.5 -> 11, not round(10.25) */
    uint8_t g[4 * 4] = {0, 2, 10, 10, 4, 5, 10, 11, 255, 255, 0, 0, 254, 255, 1, 0}, gd[4];
    CHECK(sld_resize_pil_u8(g, 4, 4, 1, gd, 2, 2, SLD_PIL_BOX, &err) == SLD_OK);
    CHECK(gd[0] == 3 && gd[1] == 11 && gd[2] == 255 && gd[3] == 1);
    CHECK(sld_resize_pil_u8(src, W, H, 3, dst, 7, 5, SLD_PIL_NEAREST, &err) ==
          SLD_ERR_UNSUPPORTED);
    CHECK(sld_resize_pil_u8(src, 0, H, 3, dst, 7, 5, SLD_PIL_BICUBIC, &err) ==
          SLD_ERR_INVALID_ARG);
}

static void test_prep_config_forms(void)
{
    sld_json j;
    sld_image_prep p;
    sld_error err;
    /* SD's legacy feature_extractor form */
    CHECK(sld_image_prep_load(&p, "tests/fixtures/models/tiny-sd1/feature_extractor/"
                                  "preprocessor_config.json",
                              &err) == SLD_OK);
    CHECK(p.shortest_edge == 56 && p.crop_h == 56 && p.crop_w == 56);
    CHECK_NEAR(p.rescale_factor, 1.0 / 255, 1e-15);
    CHECK(sld_json_parse(&j, "{\"size\": {\"height\": 3, \"width\": 4}}", "pp", &err) == SLD_OK);
    CHECK(sld_image_prep_from_json(&p, &j, &err) == SLD_ERR_UNSUPPORTED);
    sld_json_free(&j);
    CHECK(sld_json_parse(&j, "{\"image_mean\": [1, 2]}", "pp", &err) == SLD_OK);
    CHECK(sld_image_prep_from_json(&p, &j, &err) == SLD_ERR_CONFIG);
    CHECK(strstr(err.msg, "image_mean") != NULL);
    sld_json_free(&j);
    /* a crop larger than the resized image pads with zeros (transformers) */
    CHECK(sld_json_parse(&j, "{\"size\": 4, \"crop_size\": {\"height\": 6, \"width\": 4},"
                             " \"do_normalize\": false, \"do_rescale\": false}",
                         "pp", &err) == SLD_OK);
    CHECK(sld_image_prep_from_json(&p, &j, &err) == SLD_OK);
    sld_json_free(&j);
    uint8_t img[4 * 4 * 3];
    memset(img, 200, sizeof img);
    float out[3 * 6 * 4];
    CHECK(sld_image_prep_run(&p, img, 4, 4, out, NULL, &err) == SLD_OK);
    CHECK(out[0] == 0 && out[4] == 200 && out[4 * 4] == 200 && out[5 * 4] == 0);
}

/* Writes a prompts file of dtype dt from float values [2,D]. */
static int write_prompts(const char *path, const float *v, int D, sld_dtype dt)
{
    uint16_t h[64];
    const void *data = v;
    if (dt == SLD_DT_BF16) {
        for (int i = 0; i < 2 * D; i++)
            h[i] = sld_f32_to_bf16(v[i]);
        data = h;
    }
    sld_st_out o = {"prompts", dt, 2, {2, D}, data};
    return sld_st_write(path, &o, 1, NULL, 0, NULL) == SLD_OK;
}

static void test_q16(void)
{
    sld_error err;
    /* random-ish prompts, exactly representable in bf16 */
    float pr[32];
    for (int i = 0; i < 32; i++)
        pr[i] = sld_bf16_to_f32(sld_f32_to_bf16((float)sin(i * 1.7 + 0.3)));
    const char *qp = tmp_path("q16.safetensors");
    CHECK(write_prompts(qp, pr, 16, SLD_DT_BF16));
    sld_q16 *q = NULL;
    CHECK_MSG(sld_q16_open(&q, TINY, qp, &err) == SLD_OK, "%s", err.msg);
    if (!q)
        return;
    CHECK(sld_q16_dim(q) == 16);
    size_t n;
    const uint8_t *png = gold_u8("png_uint8_hwc", &n);
    float p = -1;
    int label = -1;
    CHECK(sld_q16_classify(q, png, 80, 60, &p, &label, &err) == SLD_OK);
    /* by hand from the golden embedding of the same image */
    float *e = gold_f32("preprocess_image_embeds", NULL);
    double ne = 0, n0 = 0, n1 = 0, d0 = 0, d1 = 0;
    for (int i = 0; i < 16; i++) {
        ne += (double)e[i] * e[i];
        n0 += (double)pr[i] * pr[i];
        n1 += (double)pr[16 + i] * pr[16 + i];
        d0 += (double)e[i] * pr[i];
        d1 += (double)e[i] * pr[16 + i];
    }
    double l0 = 100 * d0 / sqrt(ne * n0), l1 = 100 * d1 / sqrt(ne * n1);
    double m = l0 > l1 ? l0 : l1, p1 = exp(l1 - m) / (exp(l0 - m) + exp(l1 - m));
    CHECK_NEAR(p, p1, 1e-4);
    CHECK(label == (l1 > l0));
    CHECK(p > 0.0f && p < 1.0f); /* these prompts give a non-saturated case */
    printf("  q16 tiny: p=%.6f (hand %.6f), label %d\n", p, p1, label);
    /* swapping the rows gives 1 - p */
    float sw[32];
    memcpy(sw, pr + 16, 64);
    memcpy(sw + 16, pr, 64);
    const char *qs = tmp_path("q16s.safetensors");
    CHECK(write_prompts(qs, sw, 16, SLD_DT_F32));
    sld_q16 *q2 = NULL;
    CHECK(sld_q16_open(&q2, TINY, qs, &err) == SLD_OK);
    float p2 = -1;
    int l2 = -1;
    CHECK(q2 && sld_q16_classify(q2, png, 80, 60, &p2, &l2, &err) == SLD_OK);
    CHECK_NEAR(p2, 1 - p, 1e-5);
    CHECK(l2 == 1 - label);
    sld_q16_free(q2);
    free(e);
    sld_q16_free(q);
    unlink(qs);
    /* wrong width */
    CHECK(write_prompts(qs, pr, 8, SLD_DT_F32));
    CHECK(sld_q16_open(&q, TINY, qs, &err) == SLD_ERR_SHAPE);
    CHECK(strstr(err.msg, "[2,8]") && strstr(err.msg, "expected [2,16]"));
    unlink(qs);
    unlink(qp);
    /* the shipped ViT-L/14 default is found (./data from the repo root)
     * and refused for the tiny 16-wide model with a clear message */
    CHECK(sld_q16_open(&q, TINY, NULL, &err) == SLD_ERR_SHAPE);
    CHECK(strstr(err.msg, "prompts_ViT-L-14") && strstr(err.msg, "[2,768]"));
    setenv("SLD_DATA_DIR", "tests/fixtures/no-such-data", 1);
    CHECK(sld_q16_open(&q, TINY, NULL, &err) == SLD_ERR_SHAPE); /* falls back to ./data */
    unsetenv("SLD_DATA_DIR");
}

static void test_q16_oom(void)
{
    sld_error err;
    float pr[32];
    for (int i = 0; i < 32; i++)
        pr[i] = (float)cos(i * 0.9);
    const char *qp = tmp_path("q16oom.safetensors");
    CHECK(write_prompts(qp, pr, 16, SLD_DT_F32));
    size_t n;
    const uint8_t *png = gold_u8("png_uint8_hwc", &n);
    int opened = 0;
    for (long k = 1; k < 2000 && !opened; k++) {
        sld_q16 *q = NULL;
        sld_alloc_fail_at(k);
        sld_status st = sld_q16_open(&q, TINY, qp, &err);
        if (st == SLD_OK) {
            /* classification under the same failing allocator */
            float p;
            int l;
            st = sld_q16_classify(q, png, 80, 60, &p, &l, &err);
            CHECK(st == SLD_OK || st == SLD_ERR_NOMEM);
            opened = st == SLD_OK;
        } else {
            CHECK_MSG(q == NULL && st == SLD_ERR_NOMEM, "k=%ld st=%d %s", k, st, err.msg);
        }
        sld_alloc_fail_at(0);
        sld_q16_free(q);
    }
    CHECK(opened);
    unlink(qp);
}

static void test_q16_shipped_file(void)
{
    sld_st_file *f;
    sld_error err;
    CHECK(sld_st_open(&f, "data/q16/prompts_ViT-L-14.safetensors", &err) == SLD_OK);
    if (!f)
        return;
    const sld_st_tensor *t = sld_st_find(f, "prompts");
    CHECK(t && t->dtype == SLD_DT_F16 && t->ndim == 2 && t->shape[0] == 2 &&
          t->shape[1] == 768);
    CHECK(sld_st_count(f) == 1);
    float v[1536];
    CHECK(t && sld_st_to_f32(t, v, &err) == SLD_OK);
    static const float r0[6] = {0.46289f, 0.26514f, 0.32422f, 0.89258f, 0.29028f, -0.40308f};
    static const float r1[6] = {-0.25049f, -0.01089f, 0.17847f, 0.75244f, 0.41895f, -0.34839f};
    CHECK_CLOSE("row0", v, r0, 6, 6e-6);
    CHECK_CLOSE("row1", v + 768, r1, 6, 6e-6);
    double n0 = 0, n1 = 0, d = 0;
    for (int i = 0; i < 768; i++) {
        n0 += (double)v[i] * v[i];
        n1 += (double)v[768 + i] * v[768 + i];
        d += (double)v[i] * v[768 + i];
    }
    CHECK_NEAR(sqrt(n0), 22.175, 1e-3);
    CHECK_NEAR(sqrt(n1), 21.346, 1e-3);
    CHECK_NEAR(d / sqrt(n0 * n1), 0.887, 1e-3);
    sld_st_close(f);
}

static void test_debug_run(void)
{
    sld_error err;
    const char *out = tmp_path("dbg_out.safetensors");
    CHECK_MSG(sld_debug_run_clip_vision_dir(TINY, fixture("clip_vision/clip_vision.safetensors"),
                                            out, 1, &err) == SLD_OK,
              "%s", err.msg);
    sld_st_file *f;
    CHECK(sld_st_open(&f, out, &err) == SLD_OK);
    if (f) {
        static const char *const names[] = {"image_embeds", "pooler_output",
                                            "last_hidden_state", "hidden_states"};
        for (int i = 0; i < 4; i++) {
            const sld_st_tensor *a = sld_st_find(f, names[i]), *b = sld_st_find(gold, names[i]);
            CHECK(a && b && a->numel == b->numel && a->ndim == b->ndim);
            if (!a || !b || a->numel != b->numel)
                continue;
            CHECK(!memcmp(a->shape, b->shape, sizeof a->shape));
            float *x = malloc(a->numel * 4), *y = malloc(b->numel * 4);
            sld_st_to_f32(a, x, NULL);
            sld_st_to_f32(b, y, NULL);
            CHECK_CLOSE(names[i], x, y, a->numel, 1e-4);
            free(x), free(y);
        }
        sld_st_close(f);
    }
    unlink(out);
    /* inputs without pixel_values */
    CHECK(sld_debug_run_clip_vision_dir(TINY, TINY "/model.safetensors", out, 1, &err) ==
          SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "pixel_values") != NULL);
}

/* With an SD folder, `debug run --module clip_vision` runs the safety
 * checker's vision tower: tiny-sd1's is tiny-clip-vision's (float16-exact). */
static void test_debug_run_sd_folder(void)
{
    sld_error err;
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    const char *out = tmp_path("dbg_sd.safetensors");
    CHECK_MSG(sld_model_open(&m, "tests/fixtures/models/tiny-sd1", NULL, &err) == SLD_OK &&
                  sld_ctx_new(&c, m, 1, &err) == SLD_OK &&
                  sld_debug_run(c, "clip_vision", fixture("clip_vision/clip_vision.safetensors"),
                                out, &err) == SLD_OK,
              "%s", err.msg);
    sld_st_file *f = NULL;
    if (c && sld_st_open(&f, out, &err) == SLD_OK) {
        const sld_st_tensor *a = sld_st_find(f, "image_embeds");
        float *want = gold_f32("image_embeds", NULL), got[48];
        CHECK(a && a->numel == 48 && sld_st_to_f32(a, got, &err) == SLD_OK);
        CHECK_CLOSE("image_embeds (sd folder)", got, want, 48, 1e-4);
        free(want);
        sld_st_close(f);
    }
    unlink(out);
    sld_ctx_free(c);
    sld_model_close(m);
}

int main(void)
{
    sld_error err;
    if (sld_st_open(&gold, fixture("clip_vision/clip_vision.safetensors"), &err)) {
        printf("cannot open goldens: %s\n", err.msg);
        return 1;
    }
    RUN(test_forward_flat_folder);
    RUN(test_forward_clipmodel_folder);
    RUN(test_config_errors);
    RUN(test_preprocess);
    RUN(test_resize_properties);
    RUN(test_prep_config_forms);
    RUN(test_q16);
    RUN(test_q16_oom);
    RUN(test_q16_shipped_file);
    RUN(test_debug_run);
    RUN(test_debug_run_sd_folder);
    sld_st_close(gold);
    TEST_END();
}
