/*
 * clip_text.c — CLIP text transformer (transformers CLIPTextModel) as the SD
 * pipelines use it.
 *
 * Owns: config parsing, weight binding (names as "text_model.*", which the
 * single-file loader produces through model/ckpt_map.c), the forward pass.
 * Invariants: weights are bound once at load (float32 pointers owned by the
 * weight store); the forward allocates only its own scratch and never
 * touches the model, so one model can serve several threads.
 *
 * Forward (pre-LN transformer, causal self-attention):
 *   x = token_embedding[ids] + position_embedding[0..76]
 *   per layer: x += out_proj(attn(LN1(x))); x += fc2(act(fc1(LN2(x))))
 *   last_hidden_state = final_layer_norm(x)
 * act is quick_gelu for SD1 (OpenAI CLIP) and exact GELU for SD2 (OpenCLIP).
 */
#include "model/clip_text.h"

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

struct sld_clip_text {
    sld_clip_text_config c;
    const float *tok;            /* [vocab, C] */
    const float *pos;            /* [max_pos, C] */
    const float *lnf_w, *lnf_b;  /* [C] */
    layer *L;                    /* [layers] */
};

sld_status sld_clip_text_config_from_json(sld_clip_text_config *c, const sld_json *j,
                                          sld_error *err)
{
    memset(c, 0, sizeof *c);
    sld_status st;
    const char *act;
    double eps;
    /* A CLIPModel config nests the text tower in "text_config", where keys
     * equal to transformers' CLIPTextConfig defaults may be left out; a
     * CLIPTextModel config (SD's text_encoder/) is flat and must be complete. */
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(j->root, "text_config");
    if (tc && cJSON_IsNull(tc))
        tc = NULL;
    if (tc && !cJSON_IsObject(tc))
        return sld_err(err, SLD_ERR_CONFIG, "%s: 'text_config' is not an object", j->path);
    if (tc) {
        if ((st = sld_json_int_opt(j, tc, "hidden_size", 512, &c->hidden, err)) ||
            (st = sld_json_int_opt(j, tc, "num_attention_heads", 8, &c->heads, err)) ||
            (st = sld_json_int_opt(j, tc, "intermediate_size", 2048, &c->intermediate, err)) ||
            (st = sld_json_int_opt(j, tc, "num_hidden_layers", 12, &c->layers, err)))
            return st;
    } else if ((st = sld_json_int_req(j, NULL, "hidden_size", &c->hidden, err)) ||
               (st = sld_json_int_req(j, NULL, "num_attention_heads", &c->heads, err)) ||
               (st = sld_json_int_req(j, NULL, "intermediate_size", &c->intermediate, err)) ||
               (st = sld_json_int_req(j, NULL, "num_hidden_layers", &c->layers, err))) {
        return st;
    }
    if ((st = sld_json_int_opt(j, tc, "vocab_size", 49408, &c->vocab_size, err)) ||
        (st = sld_json_int_opt(j, tc, "max_position_embeddings", 77, &c->max_pos, err)) ||
        (st = sld_json_str_opt(j, tc, "hidden_act", "quick_gelu", &act, err)) ||
        (st = sld_json_num_opt(j, tc, "layer_norm_eps", 1e-5, &eps, err)))
        return st;
    if (!strcmp(act, "quick_gelu"))
        c->gelu_erf = 0;
    else if (!strcmp(act, "gelu"))
        c->gelu_erf = 1;
    else
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: hidden_act \"%s\" is not supported (quick_gelu or gelu)", j->path, act);
    c->ln_eps = (float)eps;
    if (c->hidden <= 0 || c->heads <= 0 || c->hidden % c->heads || c->intermediate <= 0 ||
        c->layers <= 0 || c->vocab_size <= 0 || c->max_pos < 77 || !(eps > 0))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: inconsistent text encoder config (hidden %d, heads %d, intermediate "
                       "%d, layers %d, vocab %d, positions %d)",
                       j->path, c->hidden, c->heads, c->intermediate, c->layers, c->vocab_size,
                       c->max_pos);
    /* bounds far above any CLIP keep every size product inside int64 */
    if (c->hidden > 65536 || c->intermediate > (1 << 20) || c->layers > 256 ||
        c->vocab_size > (1 << 24) || c->max_pos > 65536 || !(eps < 1))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: text encoder config out of range (hidden %d <= 65536, intermediate "
                       "%d <= 1048576, layers %d <= 256, vocab %d <= 16777216, positions %d <= "
                       "65536, layer_norm_eps %g in (0, 1))",
                       j->path, c->hidden, c->intermediate, c->layers, c->vocab_size, c->max_pos,
                       eps);
    return SLD_OK;
}

/* Binds "<pfx>.weight" [rows(,cols)] and "<pfx>.bias" [rows]. */
static sld_status bind_wb(sld_weights *w, const char *pfx, int rows, int cols, const float **W,
                          const float **b, sld_error *err)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", pfx);
    *W = cols ? sld_weights_get(w, err, name, rows, cols, -1)
              : sld_weights_get(w, err, name, rows, -1);
    if (!*W)
        return err ? err->code : SLD_ERR_SHAPE;
    snprintf(name, sizeof name, "%s.bias", pfx);
    *b = sld_weights_get(w, err, name, rows, -1);
    if (!*b)
        return err ? err->code : SLD_ERR_SHAPE;
    return SLD_OK;
}

sld_status sld_clip_text_load(sld_clip_text **out, const sld_clip_text_config *c, sld_weights *w,
                              sld_error *err)
{
    *out = NULL;
    if (c->hidden <= 0 || c->heads <= 0 || c->hidden % c->heads || c->layers <= 0 ||
        c->intermediate <= 0 || c->vocab_size <= 0 || c->max_pos < 77)
        return sld_err(err, SLD_ERR_CONFIG, "%s: inconsistent text encoder config",
                       sld_weights_label(w));
    sld_clip_text *m = sld_calloc(1, sizeof *m);
    if (!m || !(m->L = sld_calloc((size_t)c->layers, sizeof *m->L))) {
        sld_free(m);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    m->c = *c;
    const int C = c->hidden, I = c->intermediate;
    sld_status st = SLD_OK;
    char p[160];
    m->tok = sld_weights_get(w, err, "text_model.embeddings.token_embedding.weight",
                             c->vocab_size, C, -1);
    if (!m->tok)
        goto fail;
    m->pos = sld_weights_get(w, err, "text_model.embeddings.position_embedding.weight",
                             c->max_pos, C, -1);
    if (!m->pos)
        goto fail;
    for (int l = 0; l < c->layers; l++) {
        layer *L = &m->L[l];
#define BIND(suffix, rows, cols, Wp, bp)                                                  \
    do {                                                                                  \
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.%s", l, suffix);              \
        if ((st = bind_wb(w, p, rows, cols, Wp, bp, err)))                                \
            goto fail;                                                                    \
    } while (0)
        BIND("layer_norm1", C, 0, &L->ln1_w, &L->ln1_b);
        BIND("self_attn.q_proj", C, C, &L->q_w, &L->q_b);
        BIND("self_attn.k_proj", C, C, &L->k_w, &L->k_b);
        BIND("self_attn.v_proj", C, C, &L->v_w, &L->v_b);
        BIND("self_attn.out_proj", C, C, &L->o_w, &L->o_b);
        BIND("layer_norm2", C, 0, &L->ln2_w, &L->ln2_b);
        BIND("mlp.fc1", I, C, &L->fc1_w, &L->fc1_b);
        BIND("mlp.fc2", C, I, &L->fc2_w, &L->fc2_b);
#undef BIND
    }
    if ((st = bind_wb(w, "text_model.final_layer_norm", C, 0, &m->lnf_w, &m->lnf_b, err)))
        goto fail;
    *out = m;
    return SLD_OK;
fail:
    sld_clip_text_free(m);
    return st ? st : (err ? err->code : SLD_ERR_SHAPE);
}

void sld_clip_text_free(sld_clip_text *m)
{
    if (!m)
        return;
    sld_free(m->L);
    sld_free(m);
}

const sld_clip_text_config *sld_clip_text_cfg(const sld_clip_text *m) { return &m->c; }

sld_status sld_clip_text_forward(const sld_clip_text *m, const int32_t *ids, int B, float *out,
                                 sld_error *err)
{
    const sld_clip_text_config *c = &m->c;
    const int N = SLD_N_CTX, C = c->hidden, I = c->intermediate, H = c->heads, dh = C / H;
    if (B <= 0)
        return sld_err(err, SLD_ERR_INVALID_ARG, "text encoder: batch size %d", B);
    for (int i = 0; i < B * N; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return sld_err(err, SLD_ERR_INVALID_ARG,
                           "text encoder: token id %d at [%d,%d] is outside the vocabulary "
                           "(0..%d)",
                           (int)ids[i], i / N, i % N, c->vocab_size - 1);
    const size_t rows = (size_t)B * N, nC = rows * C;
    /* scratch: x (residual stream) in out; h, q, k, v, a [rows,C]; f [rows,I] */
    float *buf = sld_malloc_aligned((5 * nC + rows * (size_t)I) * sizeof(float));
    if (!buf)
        return sld_err(err, SLD_ERR_NOMEM, "text encoder: out of memory for activations");
    float *x = out, *h = buf, *q = h + nC, *k = q + nC, *v = k + nC, *a = v + nC, *f = a + nC;

    for (size_t r = 0; r < rows; r++) {
        const float *te = m->tok + (size_t)ids[r] * C, *pe = m->pos + (r % N) * C;
        for (int i = 0; i < C; i++)
            x[r * C + i] = te[i] + pe[i];
    }
    /* CLIPAttention scales q by head_dim^-0.5 after the projection. */
    const float scale = 1.0f / sqrtf((float)dh);
    for (int l = 0; l < c->layers; l++) {
        const layer *L = &m->L[l];
        sld_layer_norm(x, h, (int)rows, C, c->ln_eps, L->ln1_w, L->ln1_b);
        sld_linear(h, L->q_w, L->q_b, q, (int)rows, C, C);
        sld_linear(h, L->k_w, L->k_b, k, (int)rows, C, C);
        sld_linear(h, L->v_w, L->v_b, v, (int)rows, C, C);
        sld_attention(q, C, k, C, v, C, a, C, B, N, N, H, dh, scale, true);
        sld_linear(a, L->o_w, L->o_b, h, (int)rows, C, C);
        sld_add(x, h, nC);
        sld_layer_norm(x, h, (int)rows, C, c->ln_eps, L->ln2_w, L->ln2_b);
        sld_linear(h, L->fc1_w, L->fc1_b, f, (int)rows, I, C);
        if (c->gelu_erf)
            sld_gelu_erf(f, rows * (size_t)I);
        else
            sld_quick_gelu(f, rows * (size_t)I);
        sld_linear(f, L->fc2_w, L->fc2_b, h, (int)rows, C, I);
        sld_add(x, h, nC);
    }
    sld_layer_norm(x, x, (int)rows, C, c->ln_eps, m->lnf_w, m->lnf_b);
    sld_free(buf);
    return SLD_OK;
}

void sld_clip_text_pool(const int32_t *ids, int B, const float *hidden, int C, float *pooled)
{
    for (int b = 0; b < B; b++) {
        const int32_t *r = ids + (size_t)b * SLD_N_CTX;
        int at = 0;
        for (int t = 1; t < SLD_N_CTX; t++)
            if (r[t] > r[at]) /* strict: the first maximum, as torch.argmax */
                at = t;
        memcpy(pooled + (size_t)b * C, hidden + ((size_t)b * SLD_N_CTX + at) * C,
               (size_t)C * sizeof(float));
    }
}
