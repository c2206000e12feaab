/*
 * clip_score.c — the CLIPModel pieces a CLIP score needs (clip_score.h): the
 * tokenizer, the text tower + text_projection, the vision tower +
 * visual_projection (clip_vision.h opens its half of the folder) and the
 * image preprocessing.
 */
#include "eval/clip_score.h"

#include "io/json.h"
#include "io/safetensors.h"
#include "model/clip_text.h"
#include "model/clip_vision.h"
#include "model/image_prep.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "ops/ops.h"

#include <math.h>
#include <string.h>

#define TEXT_CHUNK 16

struct sld_clip_scorer {
    sld_tokenizer *tok;
    sld_clip_text *text;
    sld_st_file *file;    /* model.safetensors, for the text half */
    sld_weights *w;
    const float *tproj;   /* [P, C_text] */
    sld_clip_vision *vision;
    sld_image_prep prep;
    int dim, C, S;        /* projection width, text width, image size */
    float *pix;           /* [3,S,S] */
};

void sld_clip_scorer_free(sld_clip_scorer *s)
{
    if (!s)
        return;
    sld_tokenizer_free(s->tok);
    sld_clip_text_free(s->text);
    sld_weights_free(s->w);
    sld_st_close(s->file);
    sld_clip_vision_free(s->vision);
    sld_free(s->pix);
    sld_free(s);
}

sld_status sld_clip_scorer_open(sld_clip_scorer **out, const char *dir, sld_error *err)
{
    *out = NULL;
    sld_status st;
    sld_json j = {0};
    sld_clip_text_config tc;
    char *cfg = sld_path_join(dir, "config.json"), *mp = sld_path_join(dir, "model.safetensors"),
         *pp = sld_path_join(dir, "preprocessor_config.json");
    sld_clip_scorer *s = sld_calloc(1, sizeof *s);
    if (!cfg || !mp || !pp || !s) {
        st = sld_err(err, SLD_ERR_NOMEM, "clip score: out of memory");
        goto done;
    }
    if ((st = sld_json_load(&j, cfg, err)))
        goto done;
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j.root, "text_config")) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j.root, "vision_config"))) {
        st = sld_err(err, SLD_ERR_CONFIG,
                     "%s: not a full CLIPModel config (needs text_config and vision_config; "
                     "a CLIP score needs both towers, e.g. openai/clip-vit-large-patch14)",
                     cfg);
        goto done;
    }
    if ((st = sld_clip_text_config_from_json(&tc, &j, err)) ||
        (st = sld_tokenizer_load_dir(&s->tok, dir, err)) ||
        (st = sld_clip_vision_open_dir(&s->vision, dir, err)) ||
        (st = sld_st_open(&s->file, mp, err)) || (st = sld_weights_new(&s->w, mp, err)) ||
        (st = sld_weights_add_file(s->w, s->file, NULL, err)) ||
        (st = sld_clip_text_load(&s->text, &tc, s->w, err)))
        goto done;
    s->dim = sld_clip_vision_cfg(s->vision)->proj_dim;
    s->C = tc.hidden;
    s->tproj = sld_weights_get(s->w, err, "text_projection.weight", s->dim, s->C, -1);
    if (!s->tproj) {
        st = err ? err->code : SLD_ERR_SHAPE;
        goto done;
    }
    s->S = sld_clip_vision_cfg(s->vision)->image_size;
    if (sld_path_exists(pp)) {
        if ((st = sld_image_prep_load(&s->prep, pp, err)))
            goto done;
    } else {
        sld_image_prep_default(&s->prep, s->S);
    }
    int ow, oh;
    sld_image_prep_out_size(&s->prep, s->S, s->S, &ow, &oh);
    if (!s->prep.do_center_crop || ow != s->S || oh != s->S) {
        st = sld_err(err, SLD_ERR_CONFIG,
                     "%s: the preprocessing must centre-crop to the model's %dx%d input", pp,
                     s->S, s->S);
        goto done;
    }
    if (!(s->pix = sld_malloc((size_t)3 * s->S * s->S * sizeof(float)))) {
        st = sld_err(err, SLD_ERR_NOMEM, "clip score: out of memory");
        goto done;
    }
    *out = s;
    s = NULL;
done:
    sld_clip_scorer_free(s);
    sld_json_free(&j);
    sld_free(cfg);
    sld_free(mp);
    sld_free(pp);
    return st;
}

int sld_clip_scorer_dim(const sld_clip_scorer *s) { return s->dim; }

sld_status sld_clip_scorer_text(sld_clip_scorer *s, const char *const *texts, int n,
                                float *emb, int32_t *ids_out, int *n_truncated, sld_error *err)
{
    if (n_truncated)
        *n_truncated = 0;
    const size_t N = SLD_N_CTX, C = (size_t)s->C;
    int32_t *ids = sld_malloc(TEXT_CHUNK * N * sizeof *ids);
    float *hid = sld_malloc(TEXT_CHUNK * N * C * sizeof *hid),
          *pool = sld_malloc(TEXT_CHUNK * C * sizeof *pool);
    sld_status st = SLD_OK;
    if (!ids || !hid || !pool) {
        st = sld_err(err, SLD_ERR_NOMEM, "clip score: out of memory for text");
        goto done;
    }
    for (int i0 = 0; i0 < n; i0 += TEXT_CHUNK) {
        int b = n - i0 < TEXT_CHUNK ? n - i0 : TEXT_CHUNK;
        for (int i = 0; i < b; i++) {
            int tr = 0;
            if ((st = sld_tokenizer_encode(s->tok, texts[i0 + i], ids + i * N, &tr, err)))
                goto done;
            if (tr && n_truncated)
                (*n_truncated)++;
        }
        if (ids_out)
            memcpy(ids_out + (size_t)i0 * N, ids, (size_t)b * N * sizeof *ids);
        if ((st = sld_clip_text_forward(s->text, ids, b, hid, err)))
            goto done;
        sld_clip_text_pool(ids, b, hid, (int)C, pool);
        sld_linear(pool, s->tproj, NULL, emb + (size_t)i0 * s->dim, b, s->dim, (int)C);
    }
done:
    sld_free(ids);
    sld_free(hid);
    sld_free(pool);
    return st;
}

sld_status sld_clip_scorer_image(sld_clip_scorer *s, const uint8_t *rgb, int w, int h,
                                 float *emb, sld_error *err)
{
    sld_status st = sld_image_prep_run(&s->prep, rgb, w, h, s->pix, NULL, err);
    if (st)
        return st;
    sld_clip_vision_out o = {.image_embeds = emb};
    return sld_clip_vision_forward(s->vision, s->pix, 1, &o, err);
}

double sld_clip_cos(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (!(aa > 0) || !(bb > 0) || !isfinite(aa) || !isfinite(bb))
        return NAN;
    return ab / (sqrt(aa) * sqrt(bb));
}
