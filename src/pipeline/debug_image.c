/*
 * debug_image.c — `sld debug run` for the image networks, on tensors named as
 * the diffusers arguments:
 *   unet:        sample [B,C,h,w], timestep float [] / [1] / [B],
 *                encoder_hidden_states [B,N,D]          -> sample [B,C_out,h,w]
 *   vae_decode:  latents [B,L,h,w] (decoded as given, no scaling) -> sample
 *   vae_encode:  sample [B,3,H,W]                       -> mean, logvar
 * Inputs may be any float dtype; outputs are float32.
 */
#include "pipeline/debug.h"

#include <string.h>

/* A float tensor of the input file as float32 (caller frees), checking rank. */
static float *input_f32(const sld_st_file *in, const char *name, int ndim_min, int ndim_max,
                        const sld_st_tensor **t, sld_error *err)
{
    *t = sld_st_find(in, name);
    if (!*t) {
        sld_err(err, SLD_ERR_INVALID_ARG, "%s: input tensor '%s' is missing", sld_st_path(in),
                name);
        return NULL;
    }
    if ((*t)->ndim < ndim_min || (*t)->ndim > ndim_max) {
        sld_err(err, SLD_ERR_SHAPE, "%s: '%s' has rank %d, expected %d..%d", sld_st_path(in),
                name, (*t)->ndim, ndim_min, ndim_max);
        return NULL;
    }
    float *d = sld_malloc(((*t)->numel ? (*t)->numel : 1) * sizeof *d);
    if (!d) {
        sld_err(err, SLD_ERR_NOMEM, "out of memory reading '%s'", name);
        return NULL;
    }
    if (sld_st_to_f32(*t, d, err)) {
        sld_free(d);
        sld_err_prefix(err, "%s", sld_st_path(in));
        return NULL;
    }
    return d;
}

static sld_status need_model(sld_ctx *c, const void *net, const char *what, sld_error *err)
{
    if (!c || !c->m || !net)
        return sld_err(err, SLD_ERR_INVALID_ARG, "debug run: the model has no %s", what);
    sld_threads_set(c->n_threads);
    return SLD_OK;
}

sld_status sld_debug_run_unet(sld_ctx *c, const sld_st_file *in, const char *out_path,
                              sld_error *err)
{
    sld_status st = need_model(c, c && c->m ? c->m->unet : NULL, "unet", err);
    if (st)
        return st;
    sld_unet *u = c->m->unet;
    const sld_unet_config *cfg = sld_unet_cfg(u);
    const sld_st_tensor *ts, *tt, *tc;
    float *x = NULL, *t = NULL, *ctx = NULL, *y = NULL, *tb = NULL;
    if (!(x = input_f32(in, "sample", 4, 4, &ts, err)) ||
        !(t = input_f32(in, "timestep", 0, 1, &tt, err)) ||
        !(ctx = input_f32(in, "encoder_hidden_states", 3, 3, &tc, err))) {
        st = err ? err->code : SLD_ERR_INVALID_ARG;
        goto out;
    }
    const int B = (int)ts->shape[0], h = (int)ts->shape[2], w = (int)ts->shape[3];
    if (ts->shape[1] != cfg->in_channels || tc->shape[0] != B ||
        tc->shape[2] != cfg->cross_attention_dim || (tt->numel != 1 && (int)tt->numel != B)) {
        st = sld_err(err, SLD_ERR_SHAPE,
                     "%s: sample [B,%d,h,w], timestep [] / [1] / [B] and "
                     "encoder_hidden_states [B,N,%d] expected",
                     sld_st_path(in), cfg->in_channels, cfg->cross_attention_dim);
        goto out;
    }
    tb = sld_malloc((size_t)B * sizeof *tb);
    y = sld_malloc((size_t)B * cfg->out_channels * h * w * sizeof *y);
    if (!tb || !y) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int b = 0; b < B; b++)
        tb[b] = t[tt->numel == 1 ? 0 : b];
    if ((st = sld_unet_forward(u, x, B, h, w, tb, ctx, (int)tc->shape[1], y, err)))
        goto out;
    sld_st_out o = {"sample", SLD_DT_F32, 4, {B, cfg->out_channels, h, w}, y};
    st = sld_st_write(out_path, &o, 1, NULL, 0, err);
out:
    sld_free(x);
    sld_free(t);
    sld_free(ctx);
    sld_free(tb);
    sld_free(y);
    return st;
}

sld_status sld_debug_run_vae_decode(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                    sld_error *err)
{
    sld_status st = need_model(c, c && c->m ? c->m->vae : NULL, "vae", err);
    if (st)
        return st;
    sld_vae *v = c->m->vae;
    const sld_vae_config *cfg = sld_vae_cfg(v);
    const sld_st_tensor *tz;
    float *z = input_f32(in, "latents", 4, 4, &tz, err), *y = NULL;
    if (!z)
        return err ? err->code : SLD_ERR_INVALID_ARG;
    const int B = (int)tz->shape[0], h = (int)tz->shape[2], w = (int)tz->shape[3];
    const int up = 1 << (cfg->n_blocks - 1);
    if (tz->shape[1] != cfg->latent_channels) {
        st = sld_err(err, SLD_ERR_SHAPE, "%s: latents must be [B,%d,h,w]", sld_st_path(in),
                     cfg->latent_channels);
        goto out;
    }
    y = sld_malloc((size_t)B * cfg->out_channels * h * up * w * up * sizeof *y);
    if (!y) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = sld_vae_decode(v, z, B, h, w, y, err)))
        goto out;
    sld_st_out o = {"sample", SLD_DT_F32, 4, {B, cfg->out_channels, h * up, w * up}, y};
    st = sld_st_write(out_path, &o, 1, NULL, 0, err);
out:
    sld_free(z);
    sld_free(y);
    return st;
}

sld_status sld_debug_run_vae_encode(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                    sld_error *err)
{
    sld_status st = need_model(c, c && c->m ? c->m->vae : NULL, "vae", err);
    if (st)
        return st;
    sld_vae *v = c->m->vae;
    const sld_vae_config *cfg = sld_vae_cfg(v);
    const sld_st_tensor *tx;
    float *x = input_f32(in, "sample", 4, 4, &tx, err), *mean = NULL, *lv = NULL;
    if (!x)
        return err ? err->code : SLD_ERR_INVALID_ARG;
    const int B = (int)tx->shape[0], H = (int)tx->shape[2], W = (int)tx->shape[3];
    /* Each stride-2 level maps n to floor((n - 2) / 2) + 1 (pad right/bottom by 1). */
    int h = H, w = W;
    for (int i = 1; i < cfg->n_blocks; i++) {
        h = (h - 2) / 2 + 1;
        w = (w - 2) / 2 + 1;
    }
    if (tx->shape[1] != cfg->in_channels || H < 2 || W < 2) {
        st = sld_err(err, SLD_ERR_SHAPE, "%s: sample must be [B,%d,H,W] with H, W >= 2",
                     sld_st_path(in), cfg->in_channels);
        goto out;
    }
    size_t n = (size_t)B * cfg->latent_channels * h * w;
    mean = sld_malloc(n * sizeof *mean);
    lv = sld_malloc(n * sizeof *lv);
    if (!mean || !lv) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = sld_vae_encode(v, x, B, H, W, mean, lv, err)))
        goto out;
    sld_st_out o[2] = {{"mean", SLD_DT_F32, 4, {B, cfg->latent_channels, h, w}, mean},
                       {"logvar", SLD_DT_F32, 4, {B, cfg->latent_channels, h, w}, lv}};
    st = sld_st_write(out_path, o, 2, NULL, 0, err);
out:
    sld_free(x);
    sld_free(mean);
    sld_free(lv);
    return st;
}
