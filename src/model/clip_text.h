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

#endif /* SLD_CLIP_TEXT_H */
