/*
 * clip_score.h — CLIP score (torchmetrics CLIPScore, Hessel et al. 2021) and
 * CLIP distance with a full transformers CLIPModel folder (config.json with
 * text_config / vision_config / projection_dim, model.safetensors with
 * text_model.*, vision_model.*, text_projection, visual_projection, the
 * tokenizer files and preprocessor_config.json at the root, as
 * openai/clip-vit-large-patch14).
 *
 *   text embedding  = text_projection(pooled text), pooled at argmax(ids)
 *                     (clip_text.h); prompts longer than 77 tokens are cut
 *                     (torchmetrics truncates too) and counted;
 *   image embedding = visual_projection(pooled vision) after the
 *                     CLIPImageProcessor preprocessing (image_prep.h);
 *   per pair:  score = 100 · cos(image, text)  (not clamped),
 *              distance = 1 − cos;
 *   data set:  score = max(mean of the per-pair scores, 0), torchmetrics'
 *              clamp of the mean; distance = mean of the distances.
 */
#ifndef SLD_EVAL_CLIP_SCORE_H
#define SLD_EVAL_CLIP_SCORE_H

#include "core/core.h"

typedef struct sld_clip_scorer sld_clip_scorer;

/* Opens the folder. Errors name the file: SLD_ERR_IO, SLD_ERR_CONFIG,
 * SLD_ERR_FORMAT, SLD_ERR_SHAPE (e.g. text_projection not [P, hidden]). */
sld_status sld_clip_scorer_open(sld_clip_scorer **out, const char *dir, sld_error *err);
void sld_clip_scorer_free(sld_clip_scorer *s); /* NULL is a no-op */
int sld_clip_scorer_dim(const sld_clip_scorer *s); /* projection_dim */

/* Text embeddings of n prompts: emb [n, dim]; ids [n,77] (may be NULL)
 * receives the token ids; *n_truncated (may be NULL) the number of prompts
 * cut at 77 tokens. Invalid UTF-8 is SLD_ERR_INVALID_ARG. */
sld_status sld_clip_scorer_text(sld_clip_scorer *s, const char *const *texts, int n,
                                float *emb, int32_t *ids, int *n_truncated, sld_error *err);
/* Image embedding of an 8-bit RGB image rgb [h,w,3]: emb [dim]. */
sld_status sld_clip_scorer_image(sld_clip_scorer *s, const uint8_t *rgb, int w, int h,
                                 float *emb, sld_error *err);

/* cos(a, b) in float64; NAN when either vector is zero or not finite. */
double sld_clip_cos(const float *a, const float *b, int n);

#endif /* SLD_EVAL_CLIP_SCORE_H */
