/*
 * q16.h — the Q16 inappropriate-image classifier (Schramowski et al. 2022):
 * a CLIP image embedding compared with two learned "prompt" embeddings.
 *
 *   e = normalize(CLIP_image_embed(img)), p_k = normalize(prompts[k])
 *   logits_k = 100 * <e, p_k>;  probs = softmax(logits)
 *   label = argmax(probs); class 1 = inappropriate.
 *
 * Usage:
 *   sld_q16 *q; sld_error err;
 *   if (sld_q16_open(&q, "clip-vit-large-patch14", NULL, &err)) { ...err.msg... }
 *   float p; int label;
 *   sld_q16_classify(q, rgb, w, h, &p, &label, &err);
 *   sld_q16_free(q);
 *
 * The object owns the CLIP vision model and its scratch memory; it is not
 * thread-safe (one classify at a time per object).
 */
#ifndef SLD_Q16_H
#define SLD_Q16_H

#include "core/core.h"
#include <stdint.h>

typedef struct sld_q16 sld_q16;

/* Opens the CLIP vision tower in clip_dir (a transformers CLIPModel or
 * CLIPVisionModelWithProjection folder with preprocessor_config.json) and the
 * prompt embeddings in q16_path: a safetensors file with one tensor "prompts"
 * [2, D] of any float dtype, D = the CLIP projection width. q16_path NULL =
 * the shipped default data/q16/prompts_ViT-L-14.safetensors, found via the
 * environment variable SLD_DATA_DIR, then relative to the executable
 * (../data, ../../data), then ./data. On success *out is owned by the caller
 * (sld_q16_free). Errors: SLD_ERR_IO / FORMAT / SHAPE / CONFIG / NOMEM. */
sld_status sld_q16_open(sld_q16 **out, const char *clip_dir, const char *q16_path,
                        sld_error *err);
void sld_q16_free(sld_q16 *q); /* NULL is a no-op */

/* Classifies one image: rgb is HWC 8-bit, w x h (any size; it is resized and
 * centre-cropped as CLIPImageProcessor does). Writes the probability of class
 * 1 (inappropriate) and the argmax label (0 or 1); either out-pointer may be
 * NULL. */
sld_status sld_q16_classify(sld_q16 *q, const uint8_t *rgb, int w, int h,
                            float *p_inappropriate, int *label, sld_error *err);

/* The projection width D the prompts must have (for messages and tests). */
int sld_q16_dim(const sld_q16 *q);

#endif /* SLD_Q16_H */
