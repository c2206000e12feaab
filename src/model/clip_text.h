/*
 * clip_text.h — CLIP text encoder (transformers CLIPTextModel) as Stable
 * Diffusion uses it: SD1 (quick_gelu, all layers) and SD2 (gelu, the
 * penultimate layer diffusers keeps), output last_hidden_state.
 */
#ifndef SLD_CLIP_TEXT_H
#define SLD_CLIP_TEXT_H

#include "io/json.h"
#include "model/weights.h"

typedef struct {
    int vocab_size, max_pos, hidden, heads, intermediate, layers;
    int gelu_erf; /* 0: quick_gelu (SD1), 1: exact GELU (SD2) */
    float ln_eps;
} sld_clip_text_config;

typedef struct sld_clip_text sld_clip_text;

/* Reads a CLIPTextModel config.json (flat; the four sizes required) or a
 * CLIPModel one (nested "text_config"; missing keys take transformers'
 * CLIPTextConfig defaults). */
sld_status sld_clip_text_config_from_json(sld_clip_text_config *c, const sld_json *j,
                                          sld_error *err);
/* Binds weights named as transformers' CLIPTextModel ("text_model.*"). */
sld_status sld_clip_text_load(sld_clip_text **out, const sld_clip_text_config *c, sld_weights *w,
                              sld_error *err);
void sld_clip_text_free(sld_clip_text *m);
const sld_clip_text_config *sld_clip_text_cfg(const sld_clip_text *m);
/* ids [B,77] -> out [B,77,hidden]. Allocates its own scratch. */
sld_status sld_clip_text_forward(const sld_clip_text *m, const int32_t *ids, int B, float *out,
                                 sld_error *err);

/* transformers' pooler_output: per prompt, the row of last_hidden_state at
 * argmax(ids) — the first EOS, since <|endoftext|> has the largest id in
 * OpenAI CLIP's vocabulary (the rule CLIPTextTransformer applies when the
 * config's eos_token_id is the legacy 2). ids [B,77], hidden [B,77,C] ->
 * pooled [B,C]. */
void sld_clip_text_pool(const int32_t *ids, int B, const float *hidden, int C, float *pooled);

#endif /* SLD_CLIP_TEXT_H */
