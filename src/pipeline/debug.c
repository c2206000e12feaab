/*
 * debug.c — `sld debug run`: reads the inputs file, dispatches on the module
 * name to the per-module runner (pipeline/debug.h), and holds the
 * text_encoder runner.
 */
#include "pipeline/debug.h"

#include <stdint.h>
#include <string.h>

sld_status sld_debug_run(sld_ctx *c, const char *module, const char *inputs_path,
                         const char *out_path, sld_error *err)
{
    typedef sld_status (*runner)(sld_ctx *, const sld_st_file *, const char *, sld_error *);
    static const struct {
        const char *name;
        runner fn;
    } mods[] = {
        {"text_encoder", sld_debug_run_text_encoder}, {"unet", sld_debug_run_unet},
        {"vae_decode", sld_debug_run_vae_decode},     {"vae_encode", sld_debug_run_vae_encode},
        {"clip_vision", sld_debug_run_clip_vision},
    };
    if (!c || !module || !inputs_path || !out_path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_debug_run: missing argument");
    runner fn = NULL;
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++)
        if (!strcmp(module, mods[i].name))
            fn = mods[i].fn;
    if (!fn)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "unknown module '%s' (text_encoder, unet, vae_decode, vae_encode, "
                       "clip_vision)",
                       module);
    sld_st_file *in;
    sld_status st = sld_st_open(&in, inputs_path, err);
    if (st)
        return st;
    st = fn(c, in, out_path, err);
    sld_st_close(in);
    return st;
}

/* ---- debug runner ------------------------------------------------------------ */

/* input_ids int64 (or int32) [B,77] -> last_hidden_state [B,77,H] and
 * pooler_output [B,H] (the row at argmax(input_ids), transformers' rule for
 * configs with the legacy eos_token_id 2, which all SD text encoders have). */
sld_status sld_debug_run_text_encoder(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                      sld_error *err)
{
    if (!c->m->text)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: the model has no text encoder",
                       c->m->name);
    const sld_st_tensor *t = sld_st_find(in, "input_ids");
    if (!t)
        return sld_err(err, SLD_ERR_FORMAT, "%s: tensor 'input_ids' [B,77] is missing",
                       sld_st_path(in));
    if ((t->dtype != SLD_DT_I64 && t->dtype != SLD_DT_I32) || t->ndim != 2 ||
        t->shape[1] != SLD_N_CTX || t->shape[0] < 1 || t->shape[0] > 4096)
        return sld_err(err, SLD_ERR_SHAPE,
                       "%s: 'input_ids' must be int64 [B,77] with 1 <= B <= 4096 (got %s "
                       "with %d dims)",
                       sld_st_path(in), sld_dtype_name(t->dtype), t->ndim);
    const int B = (int)t->shape[0], C = sld_clip_text_cfg(c->m->text)->hidden;
    int32_t *ids = sld_malloc((size_t)B * SLD_N_CTX * sizeof *ids);
    float *lhs = sld_malloc((size_t)B * SLD_N_CTX * C * sizeof *lhs);
    float *pool = sld_malloc((size_t)B * C * sizeof *pool);
    sld_status st = SLD_OK;
    if (!ids || !lhs || !pool) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)B * SLD_N_CTX; i++) {
        int64_t v;
        if (t->dtype == SLD_DT_I64)
            memcpy(&v, (const uint8_t *)t->data + i * 8, 8);
        else {
            int32_t v32;
            memcpy(&v32, (const uint8_t *)t->data + i * 4, 4);
            v = v32;
        }
        if (v < 0 || v > INT32_MAX) {
            st = sld_err(err, SLD_ERR_INVALID_ARG,
                         "%s: input_ids[%zu][%zu] = %lld is not a token id", sld_st_path(in),
                         i / SLD_N_CTX, i % SLD_N_CTX, (long long)v);
            goto done;
        }
        ids[i] = (int32_t)v;
    }
    sld_threads_set(c->n_threads);
    if ((st = sld_clip_text_forward(c->m->text, ids, B, lhs, err)))
        goto done;
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int i = 1; i < SLD_N_CTX; i++)
            if (ids[b * SLD_N_CTX + i] > ids[b * SLD_N_CTX + best])
                best = i;
        memcpy(pool + (size_t)b * C, lhs + ((size_t)b * SLD_N_CTX + best) * C, C * sizeof(float));
    }
    sld_st_out o[2] = {
        {"last_hidden_state", SLD_DT_F32, 3, {B, SLD_N_CTX, C}, lhs},
        {"pooler_output", SLD_DT_F32, 2, {B, C}, pool},
    };
    st = sld_st_write(out_path, o, 2, NULL, 0, err);
done:
    sld_free(ids);
    sld_free(lhs);
    sld_free(pool);
    return st;
}
