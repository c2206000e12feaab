/*
 * clip_vision.h — CLIP vision tower with projection (transformers
 * CLIPVisionModelWithProjection / the vision half of CLIPModel), used by Q16
 * and the SD safety checker.
 *
 * Usage:
 *   sld_clip_vision *cv;
 *   sld_clip_vision_open_dir(&cv, "clip-vit-large-patch14", &err);
 *   const sld_clip_vision_config *c = sld_clip_vision_cfg(cv);
 *   float emb[c->proj_dim];
 *   sld_clip_vision_out o = {.image_embeds = emb};
 *   sld_clip_vision_forward(cv, pixel_values, 1, &o, &err);   // [1,3,S,S]
 *   sld_clip_vision_free(cv);
 */
#ifndef SLD_CLIP_VISION_H
#define SLD_CLIP_VISION_H

#include "io/json.h"
#include "model/weights.h"

typedef struct {
    int hidden, heads, intermediate, layers;
    int image_size, patch_size, channels;
    int proj_dim;     /* visual_projection output width */
    int gelu_erf;     /* 0: quick_gelu (OpenAI CLIP), 1: exact GELU */
    float ln_eps;
} sld_clip_vision_config;

typedef struct sld_clip_vision sld_clip_vision;

/* Reads a transformers config.json: either a CLIPVisionConfig at the top
 * level (model_type "clip_vision_model") or a CLIPConfig with a nested
 * "vision_config" (CLIPModel, StableDiffusionSafetyChecker), where the
 * projection width is the top-level "projection_dim". Missing keys take
 * transformers' CLIPVisionConfig defaults, as transformers does. */
sld_status sld_clip_vision_config_from_json(sld_clip_vision_config *c, const sld_json *j,
                                            sld_error *err);

/* Binds weights from w: prefix + "embeddings.*", "pre_layrnorm.*",
 * "encoder.layers.N.*", "post_layernorm.*" (prefix is "vision_model." for
 * CLIPModel folders, "vision_model.vision_model." for the safety checker),
 * and proj_name ("visual_projection.weight"). w must outlive the model. */
sld_status sld_clip_vision_load(sld_clip_vision **out, const sld_clip_vision_config *c,
                                sld_weights *w, const char *prefix, const char *proj_name,
                                sld_error *err);

/* Opens a transformers folder (config.json + model.safetensors): a
 * CLIPVisionModelWithProjection or a full CLIPModel (only vision_model.* and
 * visual_projection.weight are used). The model owns the files. */
sld_status sld_clip_vision_open_dir(sld_clip_vision **out, const char *dir, sld_error *err);

void sld_clip_vision_free(sld_clip_vision *m); /* NULL is a no-op */
const sld_clip_vision_config *sld_clip_vision_cfg(const sld_clip_vision *m);
/* Folder the model was opened from (NULL for sld_clip_vision_load). */
const char *sld_clip_vision_dir(const sld_clip_vision *m);

/* Where a forward pass writes; any pointer may be NULL. N = 1 + (S/P)^2
 * tokens, C = hidden, L = layers. */
typedef struct {
    float *image_embeds;      /* [B, proj_dim] = visual_projection(pooler_output) */
    float *pooler_output;     /* [B, C] = post_layernorm(last_hidden_state[:,0]) */
    float *last_hidden_state; /* [B, N, C] (no final LayerNorm, as transformers) */
    float *hidden_states;     /* [L+1, B, N, C]; 0 = pre_layrnorm(embeddings) */
} sld_clip_vision_out;

/* pixel_values [B,3,S,S] (S = image_size, already normalised). Allocates its
 * own scratch; the model is not modified, so one model can serve several
 * threads. Errors: SLD_ERR_NOMEM, SLD_ERR_INVALID_ARG (B < 1). */
sld_status sld_clip_vision_forward(const sld_clip_vision *m, const float *pixel_values, int B,
                                   sld_clip_vision_out *o, sld_error *err);

#endif /* SLD_CLIP_VISION_H */
