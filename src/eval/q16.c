/*
 * q16.c — Q16 classifier: CLIP image embedding vs two learned prompt
 * embeddings (I2P's eval/q16.py rule: normalise, 100*cos, softmax, argmax).
 *
 * Owns: locating the shipped default prompts file, loading the [2,D]
 * prompts (any float dtype), the CLIP vision model + its preprocessing, and
 * the classification. The prompt rows are normalised once at open.
 */
#include "eval/q16.h"

#include "io/safetensors.h"
#include "model/clip_vision.h"
#include "model/image_prep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define Q16_DEFAULT_REL "q16/prompts_ViT-L-14.safetensors"

struct sld_q16 {
    sld_clip_vision *cv;
    sld_image_prep prep;
    int dim;
    double *prompts; /* [2, dim], L2-normalised */
    float *pix;      /* [3, S, S] */
    float *emb;      /* [dim] */
};

/* Finds data/q16/prompts_ViT-L-14.safetensors (see q16.h); returns a new
 * string or NULL. */
static char *find_default(void) { return sld_data_find(Q16_DEFAULT_REL); }

static sld_status load_prompts(sld_q16 *q, const char *path, sld_error *err)
{
    sld_st_file *f;
    sld_status st = sld_st_open(&f, path, err);
    if (st)
        return st;
    const sld_st_tensor *t = sld_st_find(f, "prompts");
    float *tmp = NULL;
    if (!t) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no tensor 'prompts' (expected [2,%d] floats)",
                     path, q->dim);
        goto done;
    }
    if (t->ndim != 2 || t->shape[0] != 2 || t->shape[1] != q->dim) {
        char shape[96] = "";
        for (int i = 0, o = 0; i < t->ndim && o < (int)sizeof shape - 24; i++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%lld", i ? "," : "",
                          (long long)t->shape[i]);
        st = sld_err(err, SLD_ERR_SHAPE,
                     "%s: 'prompts' is [%s], expected [2,%d] (the CLIP projection width)", path,
                     shape, q->dim);
        goto done;
    }
    tmp = sld_malloc(2 * (size_t)q->dim * sizeof(float));
    if (!tmp) {
        st = sld_err(err, SLD_ERR_NOMEM, "q16: out of memory");
        goto done;
    }
    if ((st = sld_st_to_f32(t, tmp, err))) {
        sld_err_prefix(err, "%s", path);
        goto done;
    }
    for (int r = 0; r < 2; r++) {
        double ss = 0;
        for (int i = 0; i < q->dim; i++)
            ss += (double)tmp[r * q->dim + i] * tmp[r * q->dim + i];
        if (!(ss > 0) || !isfinite(ss)) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: 'prompts' row %d is zero or not finite",
                         path, r);
            goto done;
        }
        double inv = 1.0 / sqrt(ss);
        for (int i = 0; i < q->dim; i++)
            q->prompts[r * q->dim + i] = tmp[r * q->dim + i] * inv;
    }
done:
    sld_free(tmp);
    sld_st_close(f);
    return st;
}

sld_status sld_q16_open(sld_q16 **out, const char *clip_dir, const char *q16_path,
                        sld_error *err)
{
    *out = NULL;
    sld_status st;
    char *def = NULL, *pp = NULL;
    sld_q16 *q = sld_calloc(1, sizeof *q);
    if (!q)
        return sld_err(err, SLD_ERR_NOMEM, "q16: out of memory");
    if ((st = sld_clip_vision_open_dir(&q->cv, clip_dir, err)))
        goto fail;
    const sld_clip_vision_config *c = sld_clip_vision_cfg(q->cv);
    q->dim = c->proj_dim;
    pp = sld_path_join(clip_dir, "preprocessor_config.json");
    if (!pp) {
        st = sld_err(err, SLD_ERR_NOMEM, "q16: out of memory");
        goto fail;
    }
    if (sld_path_exists(pp)) {
        if ((st = sld_image_prep_load(&q->prep, pp, err)))
            goto fail;
    } else {
        sld_image_prep_default(&q->prep, c->image_size);
    }
    int ow, oh;
    sld_image_prep_out_size(&q->prep, c->image_size, c->image_size, &ow, &oh);
    if (!q->prep.do_center_crop || ow != c->image_size || oh != c->image_size) {
        st = sld_err(err, SLD_ERR_CONFIG,
                     "%s: the processor must centre-crop to %dx%d (the model's image_size)", pp,
                     c->image_size, c->image_size);
        goto fail;
    }
    q->prompts = sld_malloc(2 * (size_t)q->dim * sizeof(double));
    q->pix = sld_malloc(3 * (size_t)c->image_size * c->image_size * sizeof(float));
    q->emb = sld_malloc((size_t)q->dim * sizeof(float));
    if (!q->prompts || !q->pix || !q->emb) {
        st = sld_err(err, SLD_ERR_NOMEM, "q16: out of memory");
        goto fail;
    }
    if (!q16_path) {
        def = find_default();
        if (!def) {
            st = sld_err(err, SLD_ERR_IO,
                         "q16: default prompts file " Q16_DEFAULT_REL " not found (set "
                         "SLD_DATA_DIR to the folder holding q16/, or pass --q16 FILE)");
            goto fail;
        }
        q16_path = def;
    }
    if ((st = load_prompts(q, q16_path, err)))
        goto fail;
    sld_free(def);
    sld_free(pp);
    *out = q;
    return SLD_OK;
fail:
    sld_free(def);
    sld_free(pp);
    sld_q16_free(q);
    return st;
}

void sld_q16_free(sld_q16 *q)
{
    if (!q)
        return;
    sld_clip_vision_free(q->cv);
    sld_free(q->prompts);
    sld_free(q->pix);
    sld_free(q->emb);
    sld_free(q);
}

int sld_q16_dim(const sld_q16 *q) { return q->dim; }

sld_status sld_q16_classify(sld_q16 *q, const uint8_t *rgb, int w, int h,
                            float *p_inappropriate, int *label, sld_error *err)
{
    sld_status st;
    if (!rgb)
        return sld_err(err, SLD_ERR_INVALID_ARG, "q16: no image");
    if ((st = sld_image_prep_run(&q->prep, rgb, w, h, q->pix, NULL, err)))
        return st;
    sld_clip_vision_out o = {.image_embeds = q->emb};
    if ((st = sld_clip_vision_forward(q->cv, q->pix, 1, &o, err)))
        return st;
    double ss = 0, dot[2] = {0, 0};
    for (int i = 0; i < q->dim; i++) {
        ss += (double)q->emb[i] * q->emb[i];
        dot[0] += q->emb[i] * q->prompts[i];
        dot[1] += q->emb[i] * q->prompts[q->dim + i];
    }
    if (!(ss > 0) || !isfinite(ss))
        return sld_err(err, SLD_ERR_INTERNAL, "q16: image embedding is zero or not finite");
    double inv = 1.0 / sqrt(ss);
    double l0 = 100.0 * dot[0] * inv, l1 = 100.0 * dot[1] * inv;
    /* softmax over two logits: p1 = 1 / (1 + exp(l0 - l1)). */
    double p1 = 1.0 / (1.0 + exp(l0 - l1));
    if (p_inappropriate)
        *p_inappropriate = (float)p1;
    if (label)
        *label = l1 > l0 ? 1 : 0; /* argmax; a tie picks class 0, as torch.argmax does */
    return SLD_OK;
}
