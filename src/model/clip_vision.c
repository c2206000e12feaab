/*
 * clip_vision.c — CLIP vision transformer + visual_projection
 * (transformers CLIPVisionModelWithProjection, CLIPVisionTransformer).
 *
 * Owns: config parsing (flat CLIPVisionConfig or nested CLIPConfig), weight
 * binding, folder opening, the forward pass.
 * Invariants: weights are bound once at load (float32 pointers owned by the
 * weight store); forward allocates only its own scratch.
 *
 * Forward, per image (S = image_size, P = patch_size, g = S/P, N = 1 + g^2):
 *   patches = conv(pixel_values, patch_embedding, stride P, no bias)  [C,g,g]
 *   x = [class_embedding ; patches^T] + position_embedding[0..N-1]    [N,C]
 *   x = pre_layrnorm(x)                                    (hidden_states[0])
 *   per layer: x += out_proj(attn(LN1 x)); x += fc2(act(fc1(LN2 x)))
 *   last_hidden_state = x; pooler = post_layernorm(x[0]);
 *   image_embeds = pooler . visual_projection^T
 * Attention is bidirectional with scale head_dim^-0.5.
 */
#include "model/clip_vision.h"

#include "io/safetensors.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const float *ln1_w, *ln1_b;   /* [C] */
    const float *q_w, *k_w, *v_w; /* [C,C] */
    const float *q_b, *k_b, *v_b; /* [C] */
    const float *o_w, *o_b;       /* [C,C], [C] */
    const float *ln2_w, *ln2_b;   /* [C] */
    const float *fc1_w, *fc1_b;   /* [I,C], [I] */
    const float *fc2_w, *fc2_b;   /* [C,I], [C] */
} layer;

struct sld_clip_vision {
    sld_clip_vision_config c;
    const float *patch_w;           /* [C,3,P,P] */
    const float *cls;               /* [C] */
    const float *pos;               /* [N,C] */
    const float *pre_w, *pre_b;     /* [C] */
    const float *post_w, *post_b;   /* [C] */
    const float *proj;              /* [proj_dim, C] */
    layer *L;                       /* [layers] */
    /* Only when opened from a folder: */
    char *dir;
    sld_st_file *file;
    sld_weights *w;
};

/* Images per forward chunk: bounds scratch memory (ViT-L/14: ~4 MiB of MLP
 * activations per image) while keeping GEMMs reasonably tall. */
#define CHUNK 8

sld_status sld_clip_vision_config_from_json(sld_clip_vision_config *c, const sld_json *j,
                                            sld_error *err)
{
    memset(c, 0, sizeof *c);
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(j->root, "vision_config");
    if (vc && cJSON_IsNull(vc))
        vc = NULL;
    if (vc && !cJSON_IsObject(vc))
        return sld_err(err, SLD_ERR_CONFIG, "%s: 'vision_config' is not an object", j->path);
    sld_status st;
    const char *act;
    double eps;
    /* Defaults: transformers CLIPVisionConfig / CLIPConfig.projection_dim. */
    if ((st = sld_json_int_opt(j, vc, "hidden_size", 768, &c->hidden, err)) ||
        (st = sld_json_int_opt(j, vc, "num_attention_heads", 12, &c->heads, err)) ||
        (st = sld_json_int_opt(j, vc, "intermediate_size", 3072, &c->intermediate, err)) ||
        (st = sld_json_int_opt(j, vc, "num_hidden_layers", 12, &c->layers, err)) ||
        (st = sld_json_int_opt(j, vc, "image_size", 224, &c->image_size, err)) ||
        (st = sld_json_int_opt(j, vc, "patch_size", 32, &c->patch_size, err)) ||
        (st = sld_json_int_opt(j, vc, "num_channels", 3, &c->channels, err)) ||
        (st = sld_json_str_opt(j, vc, "hidden_act", "quick_gelu", &act, err)) ||
        (st = sld_json_num_opt(j, vc, "layer_norm_eps", 1e-5, &eps, err)) ||
        /* Nested configs: the projection lives in CLIPModel, so its width is
         * the top-level projection_dim (vision_config's own is unused). */
        (st = sld_json_int_opt(j, NULL, "projection_dim", 512, &c->proj_dim, err)))
        return st;
    if (!strcmp(act, "quick_gelu"))
        c->gelu_erf = 0;
    else if (!strcmp(act, "gelu"))
        c->gelu_erf = 1;
    else
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: hidden_act '%s' is not supported (quick_gelu or gelu)", j->path, act);
    c->ln_eps = (float)eps;
    if (c->hidden <= 0 || c->heads <= 0 || c->hidden % c->heads || c->intermediate <= 0 ||
        c->layers <= 0 || c->layers > 1000 || c->patch_size <= 0 || c->image_size <= 0 ||
        c->image_size % c->patch_size || c->proj_dim <= 0 || c->hidden > 65536 ||
        c->intermediate > 1 << 20 || c->proj_dim > 65536 || c->image_size > 4096 ||
        !(eps > 0))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: inconsistent CLIP vision config (hidden %d, heads %d, intermediate "
                       "%d, layers %d, image_size %d, patch_size %d, projection_dim %d)",
                       j->path, c->hidden, c->heads, c->intermediate, c->layers, c->image_size,
                       c->patch_size, c->proj_dim);
    if (c->channels != 3)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: num_channels %d (only RGB, 3, supported)",
                       j->path, c->channels);
    return SLD_OK;
}

static const float *get(sld_weights *w, sld_error *err, const char *prefix, const char *name,
                        int ndim, const int64_t *shape)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return sld_weights_f32(w, full, ndim, shape, err);
}

sld_status sld_clip_vision_load(sld_clip_vision **out, const sld_clip_vision_config *c,
                                sld_weights *w, const char *prefix, const char *proj_name,
                                sld_error *err)
{
    *out = NULL;
    sld_clip_vision *m = sld_calloc(1, sizeof *m);
    if (!m)
        return sld_err(err, SLD_ERR_NOMEM, "clip_vision: out of memory");
    m->c = *c;
    m->L = sld_calloc((size_t)c->layers, sizeof *m->L);
    if (!m->L) {
        sld_free(m);
        return sld_err(err, SLD_ERR_NOMEM, "clip_vision: out of memory");
    }
    const int64_t C = c->hidden, I = c->intermediate, P = c->patch_size;
    const int64_t g = c->image_size / c->patch_size, N = 1 + g * g;
    const int64_t sC[1] = {C}, sI[1] = {I}, sCC[2] = {C, C}, sIC[2] = {I, C}, sCI[2] = {C, I};
    const int64_t sPatch[4] = {C, 3, P, P}, sPos[2] = {N, C}, sProj[2] = {c->proj_dim, C};
    bool ok = (m->patch_w = get(w, err, prefix, "embeddings.patch_embedding.weight", 4, sPatch)) &&
              (m->cls = get(w, err, prefix, "embeddings.class_embedding", 1, sC)) &&
              (m->pos = get(w, err, prefix, "embeddings.position_embedding.weight", 2, sPos)) &&
              (m->pre_w = get(w, err, prefix, "pre_layrnorm.weight", 1, sC)) &&
              (m->pre_b = get(w, err, prefix, "pre_layrnorm.bias", 1, sC)) &&
              (m->post_w = get(w, err, prefix, "post_layernorm.weight", 1, sC)) &&
              (m->post_b = get(w, err, prefix, "post_layernorm.bias", 1, sC)) &&
              (m->proj = sld_weights_f32(w, proj_name, 2, sProj, err));
    for (int l = 0; ok && l < c->layers; l++) {
        layer *L = &m->L[l];
        char p[200];
        snprintf(p, sizeof p, "%sencoder.layers.%d.", prefix, l);
        ok = (L->ln1_w = get(w, err, p, "layer_norm1.weight", 1, sC)) &&
             (L->ln1_b = get(w, err, p, "layer_norm1.bias", 1, sC)) &&
             (L->q_w = get(w, err, p, "self_attn.q_proj.weight", 2, sCC)) &&
             (L->q_b = get(w, err, p, "self_attn.q_proj.bias", 1, sC)) &&
             (L->k_w = get(w, err, p, "self_attn.k_proj.weight", 2, sCC)) &&
             (L->k_b = get(w, err, p, "self_attn.k_proj.bias", 1, sC)) &&
             (L->v_w = get(w, err, p, "self_attn.v_proj.weight", 2, sCC)) &&
             (L->v_b = get(w, err, p, "self_attn.v_proj.bias", 1, sC)) &&
             (L->o_w = get(w, err, p, "self_attn.out_proj.weight", 2, sCC)) &&
             (L->o_b = get(w, err, p, "self_attn.out_proj.bias", 1, sC)) &&
             (L->ln2_w = get(w, err, p, "layer_norm2.weight", 1, sC)) &&
             (L->ln2_b = get(w, err, p, "layer_norm2.bias", 1, sC)) &&
             (L->fc1_w = get(w, err, p, "mlp.fc1.weight", 2, sIC)) &&
             (L->fc1_b = get(w, err, p, "mlp.fc1.bias", 1, sI)) &&
             (L->fc2_w = get(w, err, p, "mlp.fc2.weight", 2, sCI)) &&
             (L->fc2_b = get(w, err, p, "mlp.fc2.bias", 1, sC));
    }
    if (!ok) {
        sld_clip_vision_free(m);
        return err ? err->code : SLD_ERR_SHAPE;
    }
    *out = m;
    return SLD_OK;
}

/* A layer index beyond the configured count means config.json and the
 * weights disagree (a truncated config would silently drop layers). */
static sld_status check_extra_layers(sld_weights *w, const char *prefix, int layers,
                                     const char *label, sld_error *err)
{
    char name[256];
    snprintf(name, sizeof name, "%sencoder.layers.%d.layer_norm1.weight", prefix, layers);
    if (sld_weights_has(w, name))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: has '%s' but config.json says num_hidden_layers = %d", label, name,
                       layers);
    return SLD_OK;
}

sld_status sld_clip_vision_open_dir(sld_clip_vision **out, const char *dir, sld_error *err)
{
    *out = NULL;
    sld_status st;
    sld_json j = {0};
    sld_clip_vision_config c;
    sld_st_file *f = NULL;
    sld_weights *w = NULL;
    sld_clip_vision *m = NULL;
    char *cfg_path = sld_path_join(dir, "config.json");
    char *st_path = sld_st_pick(dir, sld_st_names_transformers);
    if (!cfg_path || !st_path) {
        st = sld_err(err, SLD_ERR_NOMEM, "clip_vision: out of memory");
        goto done;
    }
    if ((st = sld_json_load(&j, cfg_path, err)) ||
        (st = sld_clip_vision_config_from_json(&c, &j, err)))
        goto done;
    if ((st = sld_st_open(&f, st_path, err)) || (st = sld_weights_new(&w, st_path, err)) ||
        (st = sld_weights_add_file(w, f, NULL, err)))
        goto done;
    /* A CLIPModel file also holds text_model.*, text_projection and
     * logit_scale: left unbound on purpose. */
    if ((st = sld_clip_vision_load(&m, &c, w, "vision_model.", "visual_projection.weight", err)) ||
        (st = check_extra_layers(w, "vision_model.", c.layers, st_path, err)))
        goto done;
    m->dir = sld_strdup(dir);
    if (!m->dir) {
        st = sld_err(err, SLD_ERR_NOMEM, "clip_vision: out of memory");
        goto done;
    }
    m->file = f;
    m->w = w;
    *out = m;
    f = NULL;
    w = NULL;
    m = NULL;
done:
    sld_clip_vision_free(m);
    sld_weights_free(w);
    sld_st_close(f);
    sld_json_free(&j);
    sld_free(cfg_path);
    sld_free(st_path);
    return st;
}

void sld_clip_vision_free(sld_clip_vision *m)
{
    if (!m)
        return;
    sld_free(m->L);
    sld_weights_free(m->w);
    sld_st_close(m->file);
    sld_free(m->dir);
    sld_free(m);
}

const sld_clip_vision_config *sld_clip_vision_cfg(const sld_clip_vision *m) { return &m->c; }
const char *sld_clip_vision_dir(const sld_clip_vision *m) { return m->dir; }

/* One chunk of b images: pix [b,3,S,S]; outputs offset to the chunk. */
static void forward_chunk(const sld_clip_vision *m, const float *pix, int b, float *x,
                          float *h, float *q, float *k, float *v, float *a, float *f,
                          float *patches, int B_total, int b0, const sld_clip_vision_out *o)
{
    const sld_clip_vision_config *c = &m->c;
    const int C = c->hidden, I = c->intermediate, P = c->patch_size, S = c->image_size;
    const int g = S / P, G = g * g, N = 1 + G, M = b * N, dh = C / c->heads;

    sld_conv2d_desc d = {.B = b, .C_in = 3, .H = S, .W = S, .C_out = C, .kh = P, .kw = P,
                         .stride = P};
    sld_conv2d(&d, pix, m->patch_w, NULL, patches); /* [b,C,g,g] */
    for (int i = 0; i < b; i++) {
        float *xi = x + (size_t)i * N * C;
        for (int ch = 0; ch < C; ch++)
            xi[ch] = m->cls[ch] + m->pos[ch];
        const float *pi = patches + (size_t)i * C * G;
        for (int t = 0; t < G; t++)
            for (int ch = 0; ch < C; ch++)
                xi[(size_t)(1 + t) * C + ch] = pi[(size_t)ch * G + t] + m->pos[(size_t)(1 + t) * C + ch];
    }
    sld_layer_norm(x, x, M, C, c->ln_eps, m->pre_w, m->pre_b);

    const size_t plane = (size_t)B_total * N * C; /* one hidden_states entry */
    if (o->hidden_states)
        memcpy(o->hidden_states + (size_t)b0 * N * C, x, (size_t)M * C * sizeof(float));
    const float scale = 1.0f / sqrtf((float)dh);
    for (int l = 0; l < c->layers; l++) {
        const layer *L = &m->L[l];
        sld_layer_norm(x, h, M, C, c->ln_eps, L->ln1_w, L->ln1_b);
        sld_linear(h, L->q_w, L->q_b, q, M, C, C);
        sld_linear(h, L->k_w, L->k_b, k, M, C, C);
        sld_linear(h, L->v_w, L->v_b, v, M, C, C);
        sld_attention(q, C, k, C, v, C, a, C, b, N, N, c->heads, dh, scale, false);
        sld_linear(a, L->o_w, L->o_b, h, M, C, C);
        sld_add(x, h, (size_t)M * C);
        sld_layer_norm(x, h, M, C, c->ln_eps, L->ln2_w, L->ln2_b);
        sld_linear(h, L->fc1_w, L->fc1_b, f, M, I, C);
        if (c->gelu_erf)
            sld_gelu_erf(f, (size_t)M * I);
        else
            sld_quick_gelu(f, (size_t)M * I);
        sld_linear(f, L->fc2_w, L->fc2_b, h, M, C, I);
        sld_add(x, h, (size_t)M * C);
        if (o->hidden_states)
            memcpy(o->hidden_states + (size_t)(l + 1) * plane + (size_t)b0 * N * C, x,
                   (size_t)M * C * sizeof(float));
    }
    if (o->last_hidden_state)
        memcpy(o->last_hidden_state + (size_t)b0 * N * C, x, (size_t)M * C * sizeof(float));
    /* CLS rows -> pooler (h reused as [b,C]). */
    for (int i = 0; i < b; i++)
        memcpy(h + (size_t)i * C, x + (size_t)i * N * C, (size_t)C * sizeof(float));
    sld_layer_norm(h, h, b, C, c->ln_eps, m->post_w, m->post_b);
    if (o->pooler_output)
        memcpy(o->pooler_output + (size_t)b0 * C, h, (size_t)b * C * sizeof(float));
    if (o->image_embeds)
        sld_linear(h, m->proj, NULL, o->image_embeds + (size_t)b0 * c->proj_dim, b, c->proj_dim,
                   C);
}

sld_status sld_clip_vision_forward(const sld_clip_vision *m, const float *pixel_values, int B,
                                   sld_clip_vision_out *o, sld_error *err)
{
    if (B < 1)
        return sld_err(err, SLD_ERR_INVALID_ARG, "clip_vision: batch size %d", B);
    const sld_clip_vision_config *c = &m->c;
    const size_t C = (size_t)c->hidden, I = (size_t)c->intermediate, S = (size_t)c->image_size;
    const size_t g = S / (size_t)c->patch_size, N = 1 + g * g;
    const size_t bc = (size_t)(B < CHUNK ? B : CHUNK), M = bc * N;
    /* x, h, q, k, v, a: [M,C]; f: [M,I]; patches: [bc,C,g*g]. */
    size_t n = 6 * M * C + M * I + bc * C * g * g;
    float *buf = sld_malloc_aligned(n * sizeof(float));
    if (!buf)
        return sld_err(err, SLD_ERR_NOMEM, "clip_vision: out of memory for %zu activations", n);
    float *x = buf, *h = x + M * C, *q = h + M * C, *k = q + M * C, *v = k + M * C,
          *a = v + M * C, *f = a + M * C, *patches = f + M * I;
    for (int b0 = 0; b0 < B; b0 += (int)bc) {
        int b = B - b0 < (int)bc ? B - b0 : (int)bc;
        forward_chunk(m, pixel_values + (size_t)b0 * 3 * S * S, b, x, h, q, k, v, a, f, patches,
                      B, b0, o);
    }
    sld_free(buf);
    return SLD_OK;
}
