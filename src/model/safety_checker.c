/*
 * safety_checker.c — diffusers StableDiffusionSafetyChecker (v0.31
 * safety_checker.py, the numpy `forward`, not `forward_onnx`).
 *
 * Owns: loading safety_checker/ (CLIP vision tower stored as
 * "vision_model.vision_model.*", visual_projection, concept and special-care
 * embeddings with their thresholds) and feature_extractor/, the
 * preprocessing diffusers applies, and the decision rule.
 *
 * Numerics of the rule, matching the reference environment (numpy 1.24):
 * cos values are float32 (torch mm of F.normalize'd rows), thresholds are
 * Python floats (.item()), so `cos - threshold` promotes to float64 (pre-NEP
 * 50 scalar promotion), and round(x, 3) is numpy's rint(x * 1000) / 1000,
 * i.e. half-to-even on the scaled double. A score counts when it is > 0.
 */
#include "model/safety_checker.h"

#include "io/json.h"
#include "io/safetensors.h"
#include "model/clip_vision.h"
#include "model/image_prep.h"
#include "model/weights.h"

#include <math.h>
#include <string.h>

struct sld_safety_checker {
    sld_st_file *file;
    sld_weights *w;
    sld_clip_vision *cv;
    sld_image_prep prep;
    int S, D, nc, ns;
    float *concept;     /* [nc, D] L2-normalised */
    float *special;     /* [ns, D] L2-normalised */
    double *concept_thr; /* [nc] */
    double *special_thr; /* [ns] */
};

/* torch F.normalize (x / max(||x||, 1e-12)) of rows, in float32 output. */
static void normalize_rows(const float *x, float *y, int rows, int D)
{
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)x[(size_t)r * D + i] * x[(size_t)r * D + i];
        float n = (float)sqrt(ss);
        if (n < 1e-12f)
            n = 1e-12f;
        for (int i = 0; i < D; i++)
            y[(size_t)r * D + i] = x[(size_t)r * D + i] / n;
    }
}

static sld_status bind_embeds(struct sld_safety_checker *s, const char *emb_name,
                              const char *thr_name, int *count, float **emb, double **thr,
                              sld_error *err)
{
    int64_t shape[SLD_ST_MAX_DIMS];
    int nd = sld_weights_shape(s->w, emb_name, shape);
    if (nd < 0)
        return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s' is missing",
                       sld_weights_label(s->w), emb_name);
    if (nd != 2 || shape[1] != s->D || shape[0] < 1 || shape[0] > 4096)
        return sld_err(err, SLD_ERR_SHAPE, "%s: '%s' must be [N,%d] (N concepts x projection)",
                       sld_weights_label(s->w), emb_name, s->D);
    *count = (int)shape[0];
    const float *e = sld_weights_f32(s->w, emb_name, 2, shape, err);
    const int64_t tshape[1] = {shape[0]};
    const float *t = e ? sld_weights_f32(s->w, thr_name, 1, tshape, err) : NULL;
    if (!t)
        return err ? err->code : SLD_ERR_FORMAT;
    *emb = sld_malloc((size_t)*count * s->D * sizeof(float));
    *thr = sld_malloc((size_t)*count * sizeof(double));
    if (!*emb || !*thr)
        return sld_err(err, SLD_ERR_NOMEM, "safety checker: out of memory");
    normalize_rows(e, *emb, *count, s->D);
    for (int i = 0; i < *count; i++)
        (*thr)[i] = t[i];
    /* a NaN concept or threshold compares false: every image would pass */
    for (size_t i = 0; i < (size_t)*count * s->D; i++)
        if (!isfinite((*emb)[i]) || (i < (size_t)*count && !isfinite((*thr)[i])))
            return sld_err(err, SLD_ERR_FORMAT,
                           "%s: '%s' or '%s' holds NaN/Inf; the safety checker would pass "
                           "every image",
                           sld_weights_label(s->w), emb_name, thr_name);
    return SLD_OK;
}

sld_status sld_safety_checker_open(struct sld_safety_checker **out, const char *model_dir,
                                   sld_error *err)
{
    *out = NULL;
    sld_status st;
    sld_json j = {0};
    sld_clip_vision_config c;
    struct sld_safety_checker *s = sld_calloc(1, sizeof *s);
    char *sc = sld_path_join(model_dir, "safety_checker/config.json");
    char *sd = sld_path_join(model_dir, "safety_checker");
    char *sw = sd ? sld_st_pick(sd, sld_st_names_transformers) : NULL;
    sld_free(sd);
    char *fe = sld_path_join(model_dir, "feature_extractor/preprocessor_config.json");
    if (!s || !sc || !sw || !fe) {
        st = sld_err(err, SLD_ERR_NOMEM, "safety checker: out of memory");
        goto fail;
    }
    if ((st = sld_json_load(&j, sc, err)) || (st = sld_clip_vision_config_from_json(&c, &j, err)))
        goto fail;
    if ((st = sld_st_open(&s->file, sw, err)) || (st = sld_weights_new(&s->w, sw, err)) ||
        (st = sld_weights_add_file(s->w, s->file, NULL, err)) ||
        (st = sld_clip_vision_load(&s->cv, &c, s->w, "vision_model.vision_model.",
                                   "visual_projection.weight", err)))
        goto fail;
    s->S = c.image_size;
    s->D = c.proj_dim;
    if ((st = bind_embeds(s, "concept_embeds", "concept_embeds_weights", &s->nc, &s->concept,
                          &s->concept_thr, err)) ||
        (st = bind_embeds(s, "special_care_embeds", "special_care_embeds_weights", &s->ns,
                          &s->special, &s->special_thr, err)))
        goto fail;
    if ((st = sld_image_prep_load(&s->prep, fe, err)))
        goto fail;
    if (!s->prep.do_center_crop || s->prep.crop_h != s->S || s->prep.crop_w != s->S) {
        st = sld_err(err, SLD_ERR_CONFIG,
                     "%s: the feature extractor must centre-crop to %dx%d (the checker's "
                     "image_size)",
                     fe, s->S, s->S);
        goto fail;
    }
    sld_json_free(&j);
    sld_free(sc);
    sld_free(sw);
    sld_free(fe);
    *out = s;
    return SLD_OK;
fail:
    sld_json_free(&j);
    sld_free(sc);
    sld_free(sw);
    sld_free(fe);
    sld_safety_checker_free(s);
    return st;
}

void sld_safety_checker_free(struct sld_safety_checker *s)
{
    if (!s)
        return;
    sld_clip_vision_free(s->cv);
    sld_weights_free(s->w);
    sld_st_close(s->file);
    sld_free(s->concept);
    sld_free(s->special);
    sld_free(s->concept_thr);
    sld_free(s->special_thr);
    sld_free(s);
}

sld_safety_checker_dims sld_safety_checker_get_dims(const struct sld_safety_checker *s)
{
    return (sld_safety_checker_dims){s->S, s->D, s->nc, s->ns};
}

/* Python round(np.float64(x), 3) > 0. */
static int score_positive(double x)
{
    return nearbyint(x * 1000.0) / 1000.0 > 0;
}

int sld_safety_checker_decide(const struct sld_safety_checker *s, const float *cos,
                              const float *special_cos)
{
    double adjustment = 0.0;
    for (int k = 0; k < s->ns; k++)
        if (score_positive((double)special_cos[k] - s->special_thr[k]))
            adjustment = 0.01;
    for (int k = 0; k < s->nc; k++)
        if (score_positive((double)cos[k] - s->concept_thr[k] + adjustment))
            return 1;
    return 0;
}

/* cos[r, k] = <a_r, b_k> of already-normalised rows, rounded to float32. */
static void cosines(const float *a, const float *b, float *out, int nb, int D)
{
    for (int k = 0; k < nb; k++) {
        double d = 0;
        for (int i = 0; i < D; i++)
            d += (double)a[i] * b[(size_t)k * D + i];
        out[k] = (float)d;
    }
}

sld_status sld_safety_checker_run_detail(struct sld_safety_checker *s,
                                         const float *images_nhwc01, int n, int h, int w,
                                         int *flags, const sld_safety_checker_detail *d,
                                         sld_error *err)
{
    if (n < 1 || h < 1 || w < 1 || h > 1 << 14 || w > 1 << 14)
        return sld_err(err, SLD_ERR_INVALID_ARG, "safety checker: %d images of %dx%d", n, w, h);
    const size_t px = (size_t)h * w, in_sz = 3 * (size_t)s->S * s->S;
    uint8_t *u8 = sld_malloc(px * 3);
    float *pix = sld_malloc((size_t)n * in_sz * sizeof(float));
    float *emb = sld_malloc((size_t)n * s->D * sizeof(float));
    float *nemb = sld_malloc((size_t)s->D * sizeof(float));
    float *cos = sld_malloc((size_t)s->nc * sizeof(float));
    float *scos = sld_malloc((size_t)s->ns * sizeof(float));
    sld_status st = SLD_OK;
    if (!u8 || !pix || !emb || !nemb || !cos || !scos) {
        st = sld_err(err, SLD_ERR_NOMEM, "safety checker: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        /* diffusers numpy_to_pil: (x * 255).round().astype(uint8), float32. */
        const float *img = images_nhwc01 + (size_t)i * px * 3;
        for (size_t p = 0; p < px * 3; p++) {
            float v = rintf(img[p] * 255.0f);
            u8[p] = (uint8_t)(v >= 255.0f ? 255 : v > 0.0f ? (int)v : 0);
        }
        if ((st = sld_image_prep_run(&s->prep, u8, w, h, pix + (size_t)i * in_sz, NULL, err)))
            goto done;
    }
    sld_clip_vision_out o = {.image_embeds = emb};
    if ((st = sld_clip_vision_forward(s->cv, pix, n, &o, err)))
        goto done;
    for (size_t k = 0; k < (size_t)n * s->D; k++)
        if (!isfinite(emb[k])) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "safety checker: the image embedding of image %zu holds NaN/Inf; its "
                         "vision weights hold non-finite values",
                         k / (size_t)s->D);
            goto done;
        }
    for (int i = 0; i < n; i++) {
        normalize_rows(emb + (size_t)i * s->D, nemb, 1, s->D);
        cosines(nemb, s->concept, cos, s->nc, s->D);
        cosines(nemb, s->special, scos, s->ns, s->D);
        if (flags)
            flags[i] = sld_safety_checker_decide(s, cos, scos);
        if (d && d->cos_dist)
            memcpy(d->cos_dist + (size_t)i * s->nc, cos, (size_t)s->nc * sizeof(float));
        if (d && d->special_cos_dist)
            memcpy(d->special_cos_dist + (size_t)i * s->ns, scos, (size_t)s->ns * sizeof(float));
    }
    if (d && d->clip_input)
        memcpy(d->clip_input, pix, (size_t)n * in_sz * sizeof(float));
    if (d && d->image_embeds)
        memcpy(d->image_embeds, emb, (size_t)n * s->D * sizeof(float));
done:
    sld_free(u8);
    sld_free(pix);
    sld_free(emb);
    sld_free(nemb);
    sld_free(cos);
    sld_free(scos);
    return st;
}

sld_status sld_safety_checker_run(struct sld_safety_checker *s, const float *images_nhwc01, int n,
                                  int h, int w, int *flags, sld_error *err)
{
    return sld_safety_checker_run_detail(s, images_nhwc01, n, h, w, flags, NULL, err);
}
