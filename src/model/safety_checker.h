/*
 * safety_checker.h — diffusers' StableDiffusionSafetyChecker: the CLIP
 * vision tower + visual_projection of the SD folder's safety_checker/, and
 * cosine similarities of the image embedding to 17 "concept" and 3 "special
 * care" embeddings, each with its own threshold (all read from the
 * checkpoint). An image is flagged (has_nsfw_concept) when any concept score
 *   round(cos - threshold + adjustment, 3) > 0
 * where adjustment becomes 0.01 once any special-care score is > 0.
 *
 * Preprocessing mirrors the diffusers pipeline: float image in [0,1] ->
 * numpy_to_pil ((x*255).round() to uint8) -> CLIPImageProcessor configured by
 * feature_extractor/preprocessor_config.json.
 *
 * Not thread-safe per object (one run at a time).
 */
#ifndef SLD_SAFETY_CHECKER_H
#define SLD_SAFETY_CHECKER_H

#include "core/core.h"

struct sld_safety_checker;

/* model_dir is the SD diffusers folder holding safety_checker/ (config.json,
 * model.safetensors) and feature_extractor/preprocessor_config.json. On
 * success *out is owned by the caller (sld_safety_checker_free). */
sld_status sld_safety_checker_open(struct sld_safety_checker **out, const char *model_dir,
                                   sld_error *err);
void sld_safety_checker_free(struct sld_safety_checker *s); /* NULL is a no-op */

/* images_nhwc01: n images [n, h, w, 3] float in [0,1] (values are clamped
 * by the uint8 conversion). flags[i] = 1 when image i has an NSFW concept. */
sld_status sld_safety_checker_run(struct sld_safety_checker *s, const float *images_nhwc01,
                                  int n, int h, int w, int *flags, sld_error *err);

/* ---- details, for tests and `sld debug` -------------------------------- */

typedef struct {
    int image_size;  /* S: the CLIP input is [3,S,S] */
    int proj_dim;    /* D: image_embeds width */
    int n_concepts;  /* 17 in SD's checker */
    int n_special;   /* 3 */
} sld_safety_checker_dims;

sld_safety_checker_dims sld_safety_checker_get_dims(const struct sld_safety_checker *s);

/* Intermediate values of one run; any pointer may be NULL. */
typedef struct {
    float *clip_input;       /* [n,3,S,S] preprocessed pixels */
    float *image_embeds;     /* [n,D] */
    float *cos_dist;         /* [n,n_concepts] cosine similarities (float32, as torch) */
    float *special_cos_dist; /* [n,n_special] */
} sld_safety_checker_detail;

/* sld_safety_checker_run that also fills d (may be NULL). */
sld_status sld_safety_checker_run_detail(struct sld_safety_checker *s,
                                         const float *images_nhwc01, int n, int h, int w,
                                         int *flags, const sld_safety_checker_detail *d,
                                         sld_error *err);

/* The decision rule alone on one image's similarities (cos [n_concepts],
 * special_cos [n_special]): returns 1 when flagged. */
int sld_safety_checker_decide(const struct sld_safety_checker *s, const float *cos,
                              const float *special_cos);

#endif /* SLD_SAFETY_CHECKER_H */
