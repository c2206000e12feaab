/*
 * debug_clip.c — `sld debug run --module clip_vision`: the CLIP vision
 * tower on given pixel_values, outputs named as transformers'
 * CLIPVisionModelWithProjection (image_embeds, last_hidden_state) and
 * CLIPVisionModel (pooler_output, hidden_states stacked [L+1,B,N,C]).
 *
 * Two ways in: sld_debug_run_clip_vision_dir on a CLIP folder (what users
 * pass as --clip), and the sld_debug_run dispatch with an opened SD model,
 * which runs the vision tower of the model's safety_checker/.
 */
#include "model/clip_vision.h"
#include "pipeline/debug.h"

#include <string.h>

/* Runs cv on in's pixel_values and writes the outputs. */
static sld_status run(const sld_clip_vision *cv, const sld_st_file *in, const char *out_path,
                      sld_error *err)
{
    const sld_clip_vision_config *c = sld_clip_vision_cfg(cv);
    const sld_st_tensor *t = sld_st_find(in, "pixel_values");
    const int S = c->image_size;
    if (!t)
        return sld_err(err, SLD_ERR_FORMAT, "%s: tensor 'pixel_values' [B,3,%d,%d] is missing",
                       sld_st_path(in), S, S);
    if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 4096 || t->shape[1] != 3 ||
        t->shape[2] != S || t->shape[3] != S)
        return sld_err(err, SLD_ERR_SHAPE,
                       "%s: 'pixel_values' must be [B,3,%d,%d] with 1 <= B <= 4096 (%d dims)",
                       sld_st_path(in), S, S, t->ndim);
    const int B = (int)t->shape[0], C = c->hidden, D = c->proj_dim, L = c->layers;
    const int N = 1 + (S / c->patch_size) * (S / c->patch_size);
    float *pix = sld_malloc(t->numel * sizeof(float));
    float *emb = sld_malloc((size_t)B * D * sizeof(float));
    float *pool = sld_malloc((size_t)B * C * sizeof(float));
    float *lhs = sld_malloc((size_t)B * N * C * sizeof(float));
    float *hs = sld_malloc((size_t)(L + 1) * B * N * C * sizeof(float));
    sld_status st;
    if (!pix || !emb || !pool || !lhs || !hs) {
        st = sld_err(err, SLD_ERR_NOMEM, "debug clip_vision: out of memory");
        goto done;
    }
    if ((st = sld_st_to_f32(t, pix, err))) {
        sld_err_prefix(err, "%s: pixel_values", sld_st_path(in));
        goto done;
    }
    sld_clip_vision_out o = {emb, pool, lhs, hs};
    if ((st = sld_clip_vision_forward(cv, pix, B, &o, err)))
        goto done;
    sld_st_out outs[4] = {
        {"image_embeds", SLD_DT_F32, 2, {B, D}, emb},
        {"pooler_output", SLD_DT_F32, 2, {B, C}, pool},
        {"last_hidden_state", SLD_DT_F32, 3, {B, N, C}, lhs},
        {"hidden_states", SLD_DT_F32, 4, {L + 1, B, N, C}, hs},
    };
    st = sld_st_write(out_path, outs, 4, NULL, 0, err);
done:
    sld_free(pix);
    sld_free(emb);
    sld_free(pool);
    sld_free(lhs);
    sld_free(hs);
    return st;
}

sld_status sld_debug_run_clip_vision_dir(const char *model_dir, const char *inputs_path,
                                         const char *out_path, int n_threads, sld_error *err)
{
    if (!model_dir || !inputs_path || !out_path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "debug clip_vision: missing argument");
    sld_clip_vision *cv;
    sld_status st = sld_clip_vision_open_dir(&cv, model_dir, err);
    if (st)
        return st;
    sld_st_file *in;
    if (!(st = sld_st_open(&in, inputs_path, err))) {
        sld_threads_set(n_threads);
        st = run(cv, in, out_path, err);
        sld_st_close(in);
    }
    sld_clip_vision_free(cv);
    return st;
}

/* With an SD model: the safety checker's vision tower (the same CLIP
 * ViT-L/14 tower Q16 uses, in SD 1.x). */
sld_status sld_debug_run_clip_vision(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                     sld_error *err)
{
    if (!c || !c->m || !c->m->path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "debug clip_vision: no model");
    sld_status st;
    sld_json j = {0};
    sld_clip_vision_config cfg;
    sld_st_file *f = NULL;
    sld_weights *w = NULL;
    sld_clip_vision *cv = NULL;
    char *dir = sld_path_join(c->m->path, "safety_checker");
    char *cp = dir ? sld_path_join(dir, "config.json") : NULL;
    char *wp = dir ? sld_st_pick(dir, sld_st_names_transformers) : NULL;
    if (!dir || !cp || !wp) {
        st = sld_err(err, SLD_ERR_NOMEM, "debug clip_vision: out of memory");
        goto done;
    }
    if (!sld_path_is_dir(dir)) {
        st = sld_err(err, SLD_ERR_UNSUPPORTED,
                     "%s: clip_vision needs a CLIP folder (config.json + model.safetensors) or "
                     "an SD folder with safety_checker/",
                     c->m->path);
        goto done;
    }
    if ((st = sld_json_load(&j, cp, err)) ||
        (st = sld_clip_vision_config_from_json(&cfg, &j, err)) ||
        (st = sld_st_open(&f, wp, err)) || (st = sld_weights_new(&w, wp, err)) ||
        (st = sld_weights_add_file(w, f, NULL, err)) ||
        (st = sld_clip_vision_load(&cv, &cfg, w, "vision_model.vision_model.",
                                   "visual_projection.weight", err)))
        goto done;
    sld_threads_set(c->n_threads);
    st = run(cv, in, out_path, err);
done:
    sld_clip_vision_free(cv);
    sld_weights_free(w);
    sld_st_close(f);
    sld_json_free(&j);
    sld_free(dir);
    sld_free(cp);
    sld_free(wp);
    return st;
}
