/* convert.c — sld_checkpoint_convert and sld_checkpoint_list (sld.h): any
 * readable checkpoint (safetensors, PyTorch zip or legacy) to safetensors or
 * a torch.save zip file, with an optional float cast. */
#include "io/safetensors.h"
#include "io/torch_ckpt.h"

#include <stdlib.h>
#include <string.h>

static bool is_float(sld_dtype t)
{
    return t == SLD_DT_F32 || t == SLD_DT_F16 || t == SLD_DT_BF16 || t == SLD_DT_F64;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

typedef struct {
    const sld_st_file *f;
    sld_dtype to;
} cast_ctx;

/* Writes tensor i of the file, cast to c->to when it is a float tensor. */
static sld_status cast_fill(void *user, int i, void *dst, sld_error *err)
{
    const cast_ctx *c = user;
    const sld_st_tensor *t = sld_st_at(c->f, i);
    if (!is_float(t->dtype) || t->dtype == c->to) {
        if (t->nbytes)
            memcpy(dst, t->data, t->nbytes);
        return SLD_OK;
    }
    /* through float32 in blocks, so no tensor-sized temporary is needed */
    enum { BLK = 4096 };
    float tmp[BLK];
    uint8_t *o = dst;
    for (size_t b = 0; b < t->numel; b += BLK) {
        size_t k = t->numel - b < BLK ? t->numel - b : BLK;
        sld_st_tensor part = *t;
        part.numel = k;
        part.data = (const uint8_t *)t->data + b * sld_dtype_size(t->dtype);
        sld_status st = sld_st_to_f32(&part, tmp, err);
        if (st)
            return st;
        for (size_t j = 0; j < k; j++) {
            if (c->to == SLD_DT_F32) {
                memcpy(o + 4 * (b + j), &tmp[j], 4);
            } else {
                uint16_t h = c->to == SLD_DT_F16 ? sld_f32_to_f16(tmp[j]) : sld_f32_to_bf16(tmp[j]);
                memcpy(o + 2 * (b + j), &h, 2);
            }
        }
    }
    return SLD_OK;
}

sld_status sld_checkpoint_convert(const char *in, const char *out, const sld_convert_opts *o,
                                  sld_error *err)
{
    if (!in || !out)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_checkpoint_convert: missing path");
    sld_convert_opts def = {SLD_CONVERT_KEEP, 0};
    if (!o)
        o = &def;
    sld_dtype to = SLD_DT_COUNT;
    switch (o->dtype) {
    case SLD_CONVERT_KEEP: break;
    case SLD_CONVERT_F32: to = SLD_DT_F32; break;
    case SLD_CONVERT_F16: to = SLD_DT_F16; break;
    case SLD_CONVERT_BF16: to = SLD_DT_BF16; break;
    default: return sld_err(err, SLD_ERR_INVALID_ARG, "sld_checkpoint_convert: bad dtype");
    }
    sld_st_file *f;
    sld_status st = sld_st_open_ex(&f, in, o->all_objects ? SLD_ST_ALL_OBJECTS : 0, err);
    if (st)
        return st;
    int n = sld_st_count(f), nm = sld_st_meta_count(f);
    sld_st_out *t = sld_calloc((size_t)n + 1, sizeof *t);
    const char **meta = sld_calloc(2 * (size_t)nm + 2, sizeof *meta);
    void **bufs = sld_calloc((size_t)n + 1, sizeof *bufs);
    if (!t || !meta || !bufs) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const sld_st_tensor *s = sld_st_at(f, i);
        t[i].name = s->name;
        t[i].dtype = to != SLD_DT_COUNT && is_float(s->dtype) ? to : s->dtype;
        t[i].ndim = s->ndim;
        memcpy(t[i].shape, s->shape, sizeof s->shape);
        t[i].data = s->data;
    }
    cast_ctx cc = {f, to};
    bool torch_out = ends_with(out, ".ckpt") || ends_with(out, ".pth") || ends_with(out, ".pt") ||
                     ends_with(out, ".bin");
    if (torch_out) {
        /* the torch writer takes data pointers: cast copies are made up front */
        for (int i = 0; i < n && to != SLD_DT_COUNT; i++) {
            const sld_st_tensor *s = sld_st_at(f, i);
            if (t[i].dtype == s->dtype)
                continue;
            size_t nb = s->numel * sld_dtype_size(t[i].dtype);
            if (!(bufs[i] = sld_malloc(nb))) {
                st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory casting '%s'", in, s->name);
                goto done;
            }
            if ((st = cast_fill(&cc, i, bufs[i], err)))
                goto done;
            t[i].data = bufs[i];
        }
        st = sld_torch_write(out, t, n, ends_with(out, ".ckpt") ? "state_dict" : NULL, err);
    } else {
        int k = 0;
        meta[k++] = "format";
        meta[k++] = "pt";
        for (int i = 0; i < nm; i++) {
            const char *v, *key = sld_st_meta_at(f, i, &v);
            if (!strcmp(key, "format"))
                continue;
            meta[k++] = key;
            meta[k++] = v;
        }
        st = sld_st_write_fill(out, t, n, meta, k / 2, to != SLD_DT_COUNT ? cast_fill : NULL, &cc,
                               err);
    }
done:
    for (int i = 0; bufs && i < n; i++)
        sld_free(bufs[i]);
    sld_free(bufs);
    sld_free(meta);
    sld_free(t);
    sld_st_close(f);
    return st;
}

sld_status sld_checkpoint_list(const char *in, int all_objects, sld_checkpoint_list_fn fn,
                               void *user, sld_error *err)
{
    if (!in || !fn)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_checkpoint_list: missing argument");
    sld_st_file *f;
    sld_status st = sld_st_open_ex(&f, in, all_objects ? SLD_ST_ALL_OBJECTS : 0, err);
    if (st)
        return st;
    sld_checkpoint_entry e = {.format = sld_st_format(f), .root = sld_st_root(f)};
    bool stop = false;
    for (int i = 0; i < sld_st_count(f) && !stop; i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        e.name = t->name;
        e.dtype = sld_dtype_name(t->dtype);
        e.ndim = t->ndim;
        e.shape = t->shape;
        e.value = NULL;
        stop = fn(&e, user) != 0;
    }
    for (int i = 0; i < sld_st_meta_count(f) && !stop; i++) {
        e.name = sld_st_meta_at(f, i, &e.value);
        e.dtype = NULL;
        e.ndim = 0;
        e.shape = NULL;
        stop = fn(&e, user) != 0;
    }
    sld_st_close(f);
    return SLD_OK;
}
