/*
 * unet.c — UNet2DConditionModel (diffusers 0.31 numerics) for SD 1.x / 2.x.
 *
 * Owns: the config (from unet/config.json or inferred from weight shapes),
 * binding every parameter by its diffusers name with an exact shape, and the
 * forward pass. Layout is NCHW between blocks; the transformer blocks work
 * on token-major [B, HW, C] rows, which makes proj_in/proj_out the same
 * Linear for SD1 (1x1 conv) and SD2 (Linear): only the stored rank differs.
 *
 * Memory: convolution and linear weights are packed at load into sld_pconv /
 * sld_plin objects owned here (ops/packed.h), in the compute precision
 * (sld_unet_config.precision: fp32, or bf16 with fp32 accumulation; the
 * time-embedding linears, applied to B rows only, stay fp32); the store's
 * converted float32 copies are released after packing, so each weight is
 * held once. Norm parameters stay float32 views owned by the sld_weights
 * store. Activations come from one arena per sld_unet, sized by a planning
 * pass that runs the forward code with allocation bookkeeping only; it is
 * re-planned only when a larger (B, h, w, n_ctx) arrives, so repeated calls
 * at one size never allocate (the packed ops build a primitive per new input
 * shape, once). In bf16 the attention products are bf16 too
 * (sld_attention_bf16); norms, softmax and residual adds stay fp32.
 *
 * SLD_PROFILE=1 (read at load) times each op class per forward (ops/profile.h:
 * convolutions direct and Winograd, linears, attention, layout reorders, norms,
 * element-wise) and logs one INFO line; sld_unet_profile gives the figures.
 */
#include "model/unet.h"

#include "ops/ops.h"
#include "ops/packed.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===================================================================== */
/* Scratch: arena with a planning mode                                   */
/* ===================================================================== */

/* The activation arena (core sld_arena), with its planning mode. */
typedef sld_arena scratch;

/* ===================================================================== */
/* Parameters                                                            */
/* ===================================================================== */

typedef struct {
    const float *w, *b; /* w: [cout,cin,k,k], b: [cout] (NULL once packed) */
    int cin, cout, k;
    sld_pconv *pc;      /* prepared weights; runs the conv */
} conv_p;

typedef struct {
    const float *g, *b; /* [C] */
} norm_p;

typedef struct {
    const float *w, *b; /* w: [out,in], b: [out] or NULL (NULL once packed) */
    sld_plin *pl;       /* prepared weights; runs the layer */
    int in, out;
} lin_p;

typedef struct {
    int cin, cout;
    norm_p n1, n2;
    conv_p c1, c2, sc; /* sc.k == 0: identity shortcut */
    lin_p temb;        /* [cout, temb_dim] */
} resnet_p;

typedef struct {
    norm_p n1, n2, n3;
    lin_p qkv1, o1;       /* self-attention: to_q|to_k|to_v fused [3C,C]; o1 [C,C] + bias */
    lin_p q2, kv2, o2;    /* cross: q2 [C,C]; to_k|to_v fused [2C, cross_dim] */
    float *qkv1_w, *kv2_w; /* the fused weights, owned, while qkv1/kv2 read them (plain mode) */
    lin_p ff1, ff2;       /* ff1 [8C, C] (GEGLU h | gate), ff2 [C, 4C] */
} tblock_p;

typedef struct {
    int C, heads, n_layers;
    norm_p norm;     /* GroupNorm eps 1e-6 */
    lin_p pin, pout; /* [C,C] (SD1 stored [C,C,1,1]) */
    tblock_p *tb;    /* [n_layers] */
} xformer_p;

typedef struct {
    int n_res, cout;
    resnet_p *res;   /* [n_res] */
    xformer_p *attn; /* [n_res] or NULL */
    conv_p sample;   /* down: stride-2 conv; up: conv after nearest x2; w NULL if none */
} block_p;

struct sld_unet {
    sld_unet_config cfg;
    int temb_dim;
    conv_p conv_in, conv_out;
    lin_p t1, t2;
    norm_p norm_out;
    block_p down[SLD_UNET_MAX_BLOCKS], up[SLD_UNET_MAX_BLOCKS];
    resnet_p mid_res[2];
    xformer_p mid_attn;
    scratch s;
    sld_pack_ws *ws;      /* shared workspace of the packed convs / linears */
    sld_precision prec;   /* resolved compute precision (never AUTO) */
    sld_status run_st;    /* first failure of the current forward (sticky) */
    bool profile;         /* SLD_PROFILE set at load: time op classes, log per forward */
    sld_prof prof;        /* the last forward's split (when profile is set) */
    sld_error *run_err;
    int plan_B, plan_h, plan_w, plan_ctx; /* the size the arena was planned for */
    sld_unet_tap_fn tap;
    void *tap_user;
};

/* ===================================================================== */
/* Config                                                                */
/* ===================================================================== */

static sld_status cfg_check(const sld_unet_config *c, const char *src, sld_error *err)
{
    if (c->n_blocks < 1 || c->n_blocks > SLD_UNET_MAX_BLOCKS)
        return sld_err(err, SLD_ERR_CONFIG, "%s: %d UNet blocks, expected 1..%d", src,
                       c->n_blocks, SLD_UNET_MAX_BLOCKS);
    if (c->layers_per_block > 32 || c->transformer_layers > 64)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: layers_per_block %d / transformer layers %d "
                       "above the supported 32 / 64", src, c->layers_per_block,
                       c->transformer_layers);
    if (c->in_channels < 1 || c->out_channels < 1 || c->layers_per_block < 1 ||
        c->transformer_layers < 1 || c->cross_attention_dim < 1 || c->norm_num_groups < 1)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: in/out channels, layers_per_block, transformer layers, "
                       "cross_attention_dim and norm_num_groups must be positive",
                       src);
    /* bounds far above SD's (320..1280 wide, 64 latent pixels, eps 1e-5) keep
     * every size product in range: 1e9-wide blocks overflowed int math */
    if (c->in_channels > 1024 || c->out_channels > 1024 || c->cross_attention_dim > 65536 ||
        c->norm_num_groups > 65536)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: in/out channels %d/%d (<= 1024), cross_attention_dim %d (<= 65536) or "
                       "norm_num_groups %d (<= 65536) out of range",
                       src, c->in_channels, c->out_channels, c->cross_attention_dim,
                       c->norm_num_groups);
    if (c->sample_size < 0 || c->sample_size > 1024)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: sample_size %d out of range [0, 1024] latent pixels (SD 1.5: 64)", src,
                       c->sample_size);
    if (!(c->norm_eps > 0 && c->norm_eps < 1) || !isfinite(c->freq_shift))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: norm_eps %g must lie in (0, 1) and freq_shift %g be finite (SD: 1e-5, "
                       "0)",
                       src, (double)c->norm_eps, (double)c->freq_shift);
    for (int i = 0; i < c->n_blocks; i++) {
        int ch = c->block_out_channels[i];
        if (ch > 65536)
            return sld_err(err, SLD_ERR_CONFIG,
                           "%s: block_out_channels[%d] = %d is above the supported 65536", src,
                           i, ch);
        if (ch < 1 || ch % c->norm_num_groups)
            return sld_err(err, SLD_ERR_CONFIG,
                           "%s: block_out_channels[%d] = %d is not a positive multiple of "
                           "norm_num_groups %d",
                           src, i, ch, c->norm_num_groups);
        if (c->heads[i] < 1 || ch % c->heads[i])
            return sld_err(err, SLD_ERR_CONFIG,
                           "%s: %d attention heads do not divide block width %d (block %d)", src,
                           c->heads[i], ch, i);
    }
    return SLD_OK;
}

sld_status sld_unet_config_from_json(sld_unet_config *c, const sld_json *j, sld_error *err)
{
    sld_status st;
    memset(c, 0, sizeof *c);
    const char *src = j->path ? j->path : "unet config";
#define TRY(x)                                                                                 \
    do {                                                                                       \
        if ((st = (x)))                                                                        \
            return st;                                                                         \
    } while (0)
    TRY(sld_json_int_opt(j, NULL, "in_channels", 4, &c->in_channels, err));
    TRY(sld_json_int_opt(j, NULL, "out_channels", 4, &c->out_channels, err));
    int n = 0;
    TRY(sld_json_ints_opt(j, NULL, "block_out_channels", c->block_out_channels,
                          SLD_UNET_MAX_BLOCKS, &n, err));
    if (n == 0) {
        static const int def[4] = {320, 640, 1280, 1280};
        memcpy(c->block_out_channels, def, sizeof def);
        n = 4;
    }
    c->n_blocks = n;
    const char *types[SLD_UNET_MAX_BLOCKS];
    int nt = 0;
    TRY(sld_json_strs_req(j, NULL, "down_block_types", types, SLD_UNET_MAX_BLOCKS, &nt, err));
    if (nt != n)
        return sld_err(err, SLD_ERR_CONFIG, "%s: %d down_block_types for %d block_out_channels",
                       src, nt, n);
    for (int i = 0; i < n; i++) {
        if (!strcmp(types[i], "CrossAttnDownBlock2D"))
            c->down_has_attn[i] = 1;
        else if (strcmp(types[i], "DownBlock2D"))
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: down block type '%s' (expected CrossAttnDownBlock2D or "
                           "DownBlock2D)",
                           src, types[i]);
    }
    TRY(sld_json_strs_req(j, NULL, "up_block_types", types, SLD_UNET_MAX_BLOCKS, &nt, err));
    if (nt != n)
        return sld_err(err, SLD_ERR_CONFIG, "%s: %d up_block_types for %d block_out_channels",
                       src, nt, n);
    for (int i = 0; i < n; i++) {
        if (!strcmp(types[i], "CrossAttnUpBlock2D"))
            c->up_has_attn[i] = 1;
        else if (strcmp(types[i], "UpBlock2D"))
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: up block type '%s' (expected CrossAttnUpBlock2D or UpBlock2D)",
                           src, types[i]);
    }
    const char *mid = NULL;
    TRY(sld_json_str_opt(j, NULL, "mid_block_type", "UNetMidBlock2DCrossAttn", &mid, err));
    if (strcmp(mid, "UNetMidBlock2DCrossAttn"))
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: mid_block_type '%s' (expected UNetMidBlock2DCrossAttn)", src, mid);
    TRY(sld_json_int_opt(j, NULL, "layers_per_block", 2, &c->layers_per_block, err));
    int tl[SLD_UNET_MAX_BLOCKS], ntl = 0;
    TRY(sld_json_ints_opt(j, NULL, "transformer_layers_per_block", tl, SLD_UNET_MAX_BLOCKS,
                          &ntl, err));
    c->transformer_layers = ntl ? tl[0] : 1;
    for (int i = 1; i < ntl; i++)
        if (tl[i] != tl[0])
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: transformer_layers_per_block differs between blocks", src);
    TRY(sld_json_int_opt(j, NULL, "norm_num_groups", 32, &c->norm_num_groups, err));
    double d;
    TRY(sld_json_num_opt(j, NULL, "norm_eps", 1e-5, &d, err));
    c->norm_eps = (float)d;
    TRY(sld_json_int_opt(j, NULL, "cross_attention_dim", 1280, &c->cross_attention_dim, err));
    TRY(sld_json_bool_opt(j, NULL, "use_linear_projection", 0, &c->use_linear_projection, err));
    TRY(sld_json_bool_opt(j, NULL, "upcast_attention", 0, &c->upcast_attention, err));
    TRY(sld_json_bool_opt(j, NULL, "flip_sin_to_cos", 1, &c->flip_sin_to_cos, err));
    TRY(sld_json_num_opt(j, NULL, "freq_shift", 0, &d, err));
    c->freq_shift = (float)d;
    TRY(sld_json_int_opt(j, NULL, "sample_size", 64, &c->sample_size, err));

    /* Heads: diffusers' num_attention_heads falls back to attention_head_dim,
     * which for SD 1.x/2.x really is a head count (an old naming slip). An
     * int applies to every block; a list is per down block. */
    int h[SLD_UNET_MAX_BLOCKS], nh = 0;
    TRY(sld_json_ints_opt(j, NULL, "num_attention_heads", h, SLD_UNET_MAX_BLOCKS, &nh, err));
    if (nh == 0)
        TRY(sld_json_ints_opt(j, NULL, "attention_head_dim", h, SLD_UNET_MAX_BLOCKS, &nh, err));
    if (nh == 0) {
        h[0] = 8;
        nh = 1;
    }
    cJSON *ahd = cJSON_GetObjectItemCaseSensitive(j->root, "num_attention_heads");
    if (!ahd || cJSON_IsNull(ahd))
        ahd = cJSON_GetObjectItemCaseSensitive(j->root, "attention_head_dim");
    c->heads_is_list = ahd && cJSON_IsArray(ahd);
    if (c->heads_is_list && nh != n)
        return sld_err(err, SLD_ERR_CONFIG, "%s: %d attention heads entries for %d blocks", src,
                       nh, n);
    for (int i = 0; i < n; i++)
        c->heads[i] = c->heads_is_list ? h[i] : h[0];

    /* Options we do not implement must not be silently ignored. */
    int b = 0;
    TRY(sld_json_bool_opt(j, NULL, "center_input_sample", 0, &b, err));
    if (b)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: center_input_sample is not supported", src);
    TRY(sld_json_bool_opt(j, NULL, "only_cross_attention", 0, &b, err));
    if (b)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: only_cross_attention is not supported",
                       src);
    TRY(sld_json_bool_opt(j, NULL, "dual_cross_attention", 0, &b, err));
    if (b)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: dual_cross_attention is not supported",
                       src);
    const char *s = NULL;
    TRY(sld_json_str_opt(j, NULL, "resnet_time_scale_shift", "default", &s, err));
    if (strcmp(s, "default"))
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: resnet_time_scale_shift '%s'", src, s);
    TRY(sld_json_str_opt(j, NULL, "class_embed_type", "", &s, err));
    if (*s)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: class_embed_type '%s'", src, s);
    TRY(sld_json_str_opt(j, NULL, "addition_embed_type", "", &s, err));
    if (*s)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: addition_embed_type '%s'", src, s);
    int nce = 0;
    TRY(sld_json_int_opt(j, NULL, "num_class_embeds", 0, &nce, err));
    if (nce)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: num_class_embeds is not supported", src);
#undef TRY
    return cfg_check(c, src, err);
}

/* First dimension of an entry, or -1. */
static int64_t dim_of(const sld_weights *w, const char *name, int i, int *ndim)
{
    int64_t sh[SLD_ST_MAX_DIMS];
    int nd = sld_weights_shape(w, name, sh);
    if (ndim)
        *ndim = nd;
    return nd > i ? sh[i] : -1;
}

sld_status sld_unet_config_infer(sld_unet_config *c, const sld_weights *w, int arch,
                                 sld_error *err)
{
    char name[256];
    memset(c, 0, sizeof *c);
    const char *src = sld_weights_label(w);
    if (arch != SLD_ARCH_SD1 && arch != SLD_ARCH_SD2)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: unknown architecture %d", src, arch);
    c->in_channels = (int)dim_of(w, "conv_in.weight", 1, NULL);
    c->out_channels = (int)dim_of(w, "conv_out.weight", 0, NULL);
    if (c->in_channels < 1 || c->out_channels < 1)
        return sld_err(err, SLD_ERR_FORMAT, "%s: 'conv_in.weight'/'conv_out.weight' missing",
                       src);
    int n = 0;
    for (; n < SLD_UNET_MAX_BLOCKS; n++) {
        snprintf(name, sizeof name, "down_blocks.%d.resnets.0.conv1.weight", n);
        int64_t ch = dim_of(w, name, 0, NULL);
        if (ch < 1)
            break;
        c->block_out_channels[n] = (int)ch;
    }
    if (n == 0)
        return sld_err(err, SLD_ERR_FORMAT, "%s: no 'down_blocks.0.resnets.0.conv1.weight'", src);
    c->n_blocks = n;
    int lpb = 0;
    for (;; lpb++) {
        snprintf(name, sizeof name, "down_blocks.0.resnets.%d.conv1.weight", lpb);
        if (!sld_weights_has(w, name))
            break;
    }
    c->layers_per_block = lpb;
    c->transformer_layers = 0;
    c->cross_attention_dim = 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "down_blocks.%d.attentions.0.proj_in.weight", i);
        c->down_has_attn[i] = sld_weights_has(w, name);
        snprintf(name, sizeof name, "up_blocks.%d.attentions.0.proj_in.weight", i);
        c->up_has_attn[i] = sld_weights_has(w, name);
    }
    int nd = 0;
    dim_of(w, "mid_block.attentions.0.proj_in.weight", 0, &nd);
    if (nd < 0)
        return sld_err(err, SLD_ERR_FORMAT, "%s: 'mid_block.attentions.0.proj_in.weight' missing",
                       src);
    c->use_linear_projection = nd == 2;
    c->cross_attention_dim =
        (int)dim_of(w, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, NULL);
    for (;; c->transformer_layers++) {
        snprintf(name, sizeof name, "mid_block.attentions.0.transformer_blocks.%d.norm1.weight",
                 c->transformer_layers);
        if (!sld_weights_has(w, name))
            break;
    }
    c->norm_num_groups = 32;
    c->norm_eps = 1e-5f;
    c->flip_sin_to_cos = 1;
    c->freq_shift = 0;
    c->upcast_attention = arch == SLD_ARCH_SD2;
    c->sample_size = arch == SLD_ARCH_SD2 ? 96 : 64;
    c->heads_is_list = arch == SLD_ARCH_SD2;
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        c->heads[i] = arch == SLD_ARCH_SD1 ? 8 : (ch >= 64 ? ch / 64 : 1);
    }
    return cfg_check(c, src, err);
}

/* ===================================================================== */
/* Binding                                                               */
/* ===================================================================== */

typedef struct {
    sld_weights *w;
    sld_error *err;
    sld_status st; /* first error, sticky */
    char prefix[200];
    sld_tensor_list_fn list; /* listing mode: report names/shapes, bind nothing */
    void *list_user;
    sld_precision prec; /* compute precision of convs and large linears */
    bool wino;          /* 3x3 convs may use Winograd (sld_conv_algo auto) */
} binder;

static const float *bind(binder *B, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                         const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static const float *bind(binder *B, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                         const char *fmt, ...)
{
    if (B->st)
        return NULL;
    char name[320];
    size_t pl = (size_t)snprintf(name, sizeof name, "%s", B->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + pl, sizeof name - pl, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {d0, d1, d2, d3};
    if (B->list) {
        B->list(B->list_user, name, nd, shape);
        return NULL;
    }
    const float *p = sld_weights_f32(B->w, name, nd, shape, B->err);
    if (!p)
        B->st = B->err && B->err->code ? B->err->code : SLD_ERR_SHAPE;
    return p;
}

/* Releases the store's converted copies of name.weight / name.bias once a
 * packed object no longer reads them. */
static void release_pair(binder *B, const char *name, bool bias)
{
    char n[320];
    snprintf(n, sizeof n, "%s%s.weight", B->prefix, name);
    sld_weights_release(B->w, n);
    if (bias) {
        snprintf(n, sizeof n, "%s%s.bias", B->prefix, name);
        sld_weights_release(B->w, n);
    }
}

/* stride 2 for the downsamplers, padding k/2 (every UNet conv). */
static void bind_conv_s(binder *B, conv_p *c, int cin, int cout, int k, int stride,
                        const char *name)
{
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->w = bind(B, 4, cout, cin, k, k, "%s.weight", name);
    c->b = bind(B, 1, cout, 0, 0, 0, "%s.bias", name);
    if (B->st || B->list)
        return;
    int pad = k / 2;
    sld_conv2d_desc d = {.B = 1, .C_in = cin, .H = 1, .W = 1, .C_out = cout, .kh = k, .kw = k,
                         .stride = stride, .pad_t = pad, .pad_l = pad, .pad_b = pad,
                         .pad_r = pad};
    if ((B->st = sld_pconv_new(&c->pc, &d, c->w, c->b, B->prec, B->err)))
        return;
    sld_pconv_set_winograd(c->pc, B->wino);
    if (sld_pconv_packed(c->pc)) {
        release_pair(B, name, true);
        c->w = c->b = NULL;
    }
}

static void bind_conv(binder *B, conv_p *c, int cin, int cout, int k, const char *name)
{
    bind_conv_s(B, c, cin, cout, k, 1, name);
}

static void bind_norm(binder *B, norm_p *n, int C, const char *name)
{
    n->g = bind(B, 1, C, 0, 0, 0, "%s.weight", name);
    n->b = bind(B, 1, C, 0, 0, 0, "%s.bias", name);
}

/* Packs the bound weights of l in precision prec (fp32 stays a plain view). */
static void pack_lin(binder *B, lin_p *l, int in, int out, sld_precision prec, const char *name)
{
    l->in = in;
    l->out = out;
    if (B->st || B->list)
        return;
    bool bias = l->b != NULL;
    if ((B->st = sld_plin_new(&l->pl, l->w, l->b, out, in, prec, B->err)))
        return;
    if (sld_plin_packed(l->pl)) {
        release_pair(B, name, bias);
        l->w = l->b = NULL;
    }
}

/* A linear whose rows are tokens: packed in the network's precision. */
static void bind_lin(binder *B, lin_p *l, int in, int out, bool bias, const char *name)
{
    l->w = bind(B, 2, out, in, 0, 0, "%s.weight", name);
    l->b = bias ? bind(B, 1, out, 0, 0, 0, "%s.bias", name) : NULL;
    pack_lin(B, l, in, out, B->prec, name);
}

/* A linear applied to B rows only (time embedding): bf16 would save nothing. */
static void bind_lin_f32(binder *B, lin_p *l, int in, int out, const char *name)
{
    l->w = bind(B, 2, out, in, 0, 0, "%s.weight", name);
    l->b = bind(B, 1, out, 0, 0, 0, "%s.bias", name);
    pack_lin(B, l, in, out, SLD_PREC_FP32, name);
}

static void bind_resnet(binder *B, resnet_p *r, int cin, int cout, int temb_dim,
                        const char *name)
{
    char n[200];
    r->cin = cin;
    r->cout = cout;
    snprintf(n, sizeof n, "%s.norm1", name);
    bind_norm(B, &r->n1, cin, n);
    snprintf(n, sizeof n, "%s.conv1", name);
    bind_conv(B, &r->c1, cin, cout, 3, n);
    snprintf(n, sizeof n, "%s.time_emb_proj", name);
    bind_lin_f32(B, &r->temb, temb_dim, cout, n);
    snprintf(n, sizeof n, "%s.norm2", name);
    bind_norm(B, &r->n2, cout, n);
    snprintf(n, sizeof n, "%s.conv2", name);
    bind_conv(B, &r->c2, cout, cout, 3, n);
    memset(&r->sc, 0, sizeof r->sc);
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.conv_shortcut", name);
        bind_conv(B, &r->sc, cin, cout, 1, n);
    }
}

static void bind_attn_lin(binder *B, lin_p *l, int in, int out, bool bias, const char *blk,
                          const char *what)
{
    char n[240];
    snprintf(n, sizeof n, "%s.%s", blk, what);
    bind_lin(B, l, in, out, bias, n);
}

/* Binds n bias-free [out, in] projections blk.what[i] and packs them as one
 * [n*out, in] linear (rows stacked in order), so they share one pass over the
 * input: y[:, i*out:(i+1)*out] is projection i. The store's copies are
 * released; *own keeps the stacked weights only while l reads them (plain
 * mode). Every output element is the same dot product as unfused. */
static void bind_fused(binder *B, lin_p *l, float **own, int in, int out, int n,
                       const char *blk, const char *const *what)
{
    const float *w[3] = {0};
    char names[3][240];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s.%s", blk, what[i]);
        w[i] = bind(B, 2, out, in, 0, 0, "%s.weight", names[i]);
    }
    l->in = in;
    l->out = n * out;
    l->b = NULL;
    if (B->st || B->list)
        return;
    size_t each = (size_t)out * in;
    float *cat = sld_malloc_aligned((size_t)n * each * sizeof(float));
    if (!cat) {
        B->st = sld_err(B->err, SLD_ERR_NOMEM, "out of memory fusing %s projections", blk);
        return;
    }
    for (int i = 0; i < n; i++)
        memcpy(cat + (size_t)i * each, w[i], each * sizeof(float));
    for (int i = 0; i < n; i++)
        release_pair(B, names[i], false);
    l->w = cat;
    if ((B->st = sld_plin_new(&l->pl, cat, NULL, n * out, in, B->prec, B->err)) ||
        sld_plin_packed(l->pl)) {
        sld_free(cat);
        l->w = NULL;
        return;
    }
    *own = cat;
}

static sld_status bind_xformer(binder *B, xformer_p *x, int C, int heads, int n_layers,
                               int cross, bool linear_proj, const char *name)
{
    char n[240];
    x->C = C;
    x->heads = heads;
    x->n_layers = n_layers;
    snprintf(n, sizeof n, "%s.norm", name);
    bind_norm(B, &x->norm, C, n);
    int nd = linear_proj ? 2 : 4;
    x->pin.w = bind(B, nd, C, C, 1, 1, "%s.proj_in.weight", name);
    x->pin.b = bind(B, 1, C, 0, 0, 0, "%s.proj_in.bias", name);
    snprintf(n, sizeof n, "%s.proj_in", name);
    pack_lin(B, &x->pin, C, C, B->prec, n);
    x->pout.w = bind(B, nd, C, C, 1, 1, "%s.proj_out.weight", name);
    x->pout.b = bind(B, 1, C, 0, 0, 0, "%s.proj_out.bias", name);
    snprintf(n, sizeof n, "%s.proj_out", name);
    pack_lin(B, &x->pout, C, C, B->prec, n);
    x->tb = sld_calloc((size_t)n_layers, sizeof *x->tb);
    if (!x->tb)
        return sld_err(B->err, SLD_ERR_NOMEM, "out of memory");
    for (int l = 0; l < n_layers; l++) {
        tblock_p *t = &x->tb[l];
        char tb[220];
        snprintf(tb, sizeof tb, "%s.transformer_blocks.%d", name, l);
        snprintf(n, sizeof n, "%s.norm1", tb);
        bind_norm(B, &t->n1, C, n);
        snprintf(n, sizeof n, "%s.norm2", tb);
        bind_norm(B, &t->n2, C, n);
        snprintf(n, sizeof n, "%s.norm3", tb);
        bind_norm(B, &t->n3, C, n);
        static const char *const qkv[3] = {"attn1.to_q", "attn1.to_k", "attn1.to_v"};
        static const char *const kv[2] = {"attn2.to_k", "attn2.to_v"};
        bind_fused(B, &t->qkv1, &t->qkv1_w, C, C, 3, tb, qkv);
        bind_attn_lin(B, &t->o1, C, C, true, tb, "attn1.to_out.0");
        bind_attn_lin(B, &t->q2, C, C, false, tb, "attn2.to_q");
        bind_fused(B, &t->kv2, &t->kv2_w, cross, C, 2, tb, kv);
        bind_attn_lin(B, &t->o2, C, C, true, tb, "attn2.to_out.0");
        bind_attn_lin(B, &t->ff1, C, 8 * C, true, tb, "ff.net.0.proj");
        bind_attn_lin(B, &t->ff2, 4 * C, C, true, tb, "ff.net.2");
    }
    return B->st;
}

static void free_lin(lin_p *l) { sld_plin_free(l->pl); }

static void free_resnet(resnet_p *r)
{
    sld_pconv_free(r->c1.pc);
    sld_pconv_free(r->c2.pc);
    sld_pconv_free(r->sc.pc);
    free_lin(&r->temb);
}

static void free_xformer(xformer_p *x)
{
    free_lin(&x->pin);
    free_lin(&x->pout);
    for (int l = 0; x->tb && l < x->n_layers; l++) {
        tblock_p *t = &x->tb[l];
        lin_p *ls[7] = {&t->qkv1, &t->o1, &t->q2, &t->kv2, &t->o2, &t->ff1, &t->ff2};
        for (int i = 0; i < 7; i++)
            free_lin(ls[i]);
        sld_free(t->qkv1_w);
        sld_free(t->kv2_w);
    }
    sld_free(x->tb);
    x->tb = NULL;
}

static void free_block(block_p *b)
{
    for (int j = 0; b->res && j < b->n_res; j++)
        free_resnet(&b->res[j]);
    if (b->attn)
        for (int j = 0; j < b->n_res; j++)
            free_xformer(&b->attn[j]);
    sld_pconv_free(b->sample.pc);
    sld_free(b->attn);
    sld_free(b->res);
    memset(b, 0, sizeof *b);
}

void sld_unet_free(sld_unet *u)
{
    if (!u)
        return;
    for (int i = 0; i < SLD_UNET_MAX_BLOCKS; i++) {
        free_block(&u->down[i]);
        free_block(&u->up[i]);
    }
    free_xformer(&u->mid_attn);
    free_resnet(&u->mid_res[0]);
    free_resnet(&u->mid_res[1]);
    sld_pconv_free(u->conv_in.pc);
    sld_pconv_free(u->conv_out.pc);
    free_lin(&u->t1);
    free_lin(&u->t2);
    sld_pack_ws_free(u->ws);
    sld_free(u->s.base);
    sld_free(u);
}

const sld_unet_config *sld_unet_cfg(const sld_unet *u) { return &u->cfg; }

void sld_unet_set_tap(sld_unet *u, sld_unet_tap_fn fn, void *user)
{
    u->tap = fn;
    u->tap_user = user;
}

static sld_status alloc_block(block_p *b, int n_res, bool attn, sld_error *err)
{
    b->n_res = n_res;
    b->res = sld_calloc((size_t)n_res, sizeof *b->res);
    if (attn)
        b->attn = sld_calloc((size_t)n_res, sizeof *b->attn);
    if (!b->res || (attn && !b->attn))
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    return SLD_OK;
}

/* Binds (or lists) every parameter of u->cfg. */
static sld_status unet_build(sld_unet *u, binder *Bp, sld_error *err)
{
    binder B = *Bp;
    const sld_unet_config *c = &u->cfg;
    sld_status st;
    const int n = c->n_blocks, lpb = c->layers_per_block, *ch = c->block_out_channels;
    const int c0 = ch[0];
    u->temb_dim = 4 * c0;
    char name[200];

    bind_conv(&B, &u->conv_in, c->in_channels, c0, 3, "conv_in");
    bind_lin_f32(&B, &u->t1, c0, u->temb_dim, "time_embedding.linear_1");
    bind_lin_f32(&B, &u->t2, u->temb_dim, u->temb_dim, "time_embedding.linear_2");

    int prev = c0;
    for (int i = 0; i < n && !B.st; i++) {
        block_p *b = &u->down[i];
        b->cout = ch[i];
        if ((st = alloc_block(b, lpb, c->down_has_attn[i], err)))
            return st;
        for (int j = 0; j < lpb; j++) {
            snprintf(name, sizeof name, "down_blocks.%d.resnets.%d", i, j);
            bind_resnet(&B, &b->res[j], j ? ch[i] : prev, ch[i], u->temb_dim, name);
            if (b->attn) {
                snprintf(name, sizeof name, "down_blocks.%d.attentions.%d", i, j);
                bind_xformer(&B, &b->attn[j], ch[i], c->heads[i], c->transformer_layers,
                             c->cross_attention_dim, c->use_linear_projection, name);
            }
        }
        if (i < n - 1) {
            snprintf(name, sizeof name, "down_blocks.%d.downsamplers.0.conv", i);
            bind_conv_s(&B, &b->sample, ch[i], ch[i], 3, 2, name);
        }
        prev = ch[i];
    }

    const int cm = ch[n - 1];
    bind_resnet(&B, &u->mid_res[0], cm, cm, u->temb_dim, "mid_block.resnets.0");
    bind_xformer(&B, &u->mid_attn, cm, c->heads[n - 1], c->transformer_layers,
                 c->cross_attention_dim, c->use_linear_projection, "mid_block.attentions.0");
    bind_resnet(&B, &u->mid_res[1], cm, cm, u->temb_dim, "mid_block.resnets.1");

    /* Up block i mirrors down block n-1-i; resnet j takes the running width
     * (prev) plus the skip it concatenates: the down block's width for the
     * first lpb skips, the next lower block's width for the last one. */
    prev = cm;
    for (int i = 0; i < n && !B.st; i++) {
        block_p *b = &u->up[i];
        int co = ch[n - 1 - i], cin_blk = ch[n - 2 - i >= 0 ? n - 2 - i : 0];
        b->cout = co;
        if ((st = alloc_block(b, lpb + 1, c->up_has_attn[i], err)))
            return st;
        for (int j = 0; j <= lpb; j++) {
            int skip = j == lpb ? cin_blk : co;
            int rin = (j ? co : prev) + skip;
            snprintf(name, sizeof name, "up_blocks.%d.resnets.%d", i, j);
            bind_resnet(&B, &b->res[j], rin, co, u->temb_dim, name);
            if (b->attn) {
                snprintf(name, sizeof name, "up_blocks.%d.attentions.%d", i, j);
                bind_xformer(&B, &b->attn[j], co, c->heads[n - 1 - i], c->transformer_layers,
                             c->cross_attention_dim, c->use_linear_projection, name);
            }
        }
        if (i < n - 1) {
            snprintf(name, sizeof name, "up_blocks.%d.upsamplers.0.conv", i);
            bind_conv(&B, &b->sample, co, co, 3, name);
        }
        prev = co;
    }
    bind_norm(&B, &u->norm_out, c0, "conv_norm_out");
    bind_conv(&B, &u->conv_out, c0, c->out_channels, 3, "conv_out");
    return B.st;
}

sld_status sld_unet_load(sld_unet **out, const sld_unet_config *c, sld_weights *w,
                         sld_error *err)
{
    *out = NULL;
    sld_status st = cfg_check(c, sld_weights_label(w), err);
    if (st)
        return st;
    sld_unet *u = sld_calloc(1, sizeof *u);
    if (!u)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    u->cfg = *c;
    u->prec = sld_pack_precision((sld_precision)c->precision);
    const char *pe = getenv("SLD_PROFILE");
    u->profile = pe && *pe && strcmp(pe, "0");
    binder B = {.w = w, .err = err, .prec = u->prec, .wino = c->conv_algo == 0};
    u->ws = sld_pack_ws_new();
    if (!u->ws) {
        sld_unet_free(u);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    if (u->profile)
        sld_pack_ws_set_profile(u->ws, &u->prof);
    if ((st = unet_build(u, &B, err))) {
        sld_unet_free(u);
        return st;
    }
    *out = u;
    return SLD_OK;
}

sld_status sld_unet_tensors(const sld_unet_config *c, sld_tensor_list_fn fn, void *user,
                            sld_error *err)
{
    sld_status st = cfg_check(c, "unet config", err);
    if (st)
        return st;
    sld_unet *u = sld_calloc(1, sizeof *u);
    if (!u)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    u->cfg = *c;
    binder B = {.err = err, .list = fn, .list_user = user};
    st = unet_build(u, &B, err);
    sld_unet_free(u);
    return st;
}

/* ===================================================================== */
/* Forward pieces                                                        */
/* ===================================================================== */

typedef struct {
    sld_unet *u;
    scratch *s;
    int B;
    const float *temb; /* SiLU(time embedding) [B, temb_dim] */
    const float *ctx;  /* [B, n_ctx, cross] */
    int n_ctx;
} fwd;

/* Op classes timed when SLD_PROFILE is set (opt-in: it adds a clock read
 * per op). The packed convs and linears time themselves through the
 * workspace (their reorders apart); these time the rest. */
static double prof_t0(const sld_unet *u) { return u->profile ? sld_time_now() : 0.0; }
static void prof_add(sld_unet *u, sld_prof_class cls, double t0, double gflop)
{
    if (u->profile)
        sld_prof_add(&u->prof, cls, t0, gflop);
}

#define TIMED(u, cls, stmt)                                                                    \
    do {                                                                                       \
        double t0_ = prof_t0(u);                                                               \
        stmt;                                                                                  \
        prof_add(u, cls, t0_, 0.0);                                                            \
    } while (0)

/* y = conv(x) [+ residual]; failures are recorded in u->run_st (sticky) and
 * skip every later layer. */
static void conv(fwd *F, const conv_p *c, const float *x, float *y, int H, int W,
                 const float *residual)
{
    sld_unet *u = F->u;
    if (!u->run_st)
        u->run_st = sld_pconv_run(c->pc, u->ws, x, y, F->B, H, W, residual, u->run_err);
}

static void linear(fwd *F, const lin_p *l, const float *x, float *y, int M)
{
    sld_unet *u = F->u;
    if (!u->run_st)
        u->run_st = sld_plin_run(l->pl, u->ws, x, y, M, u->run_err);
}

/* ResnetBlock2D: out = shortcut(x) + conv2(SiLU(GN2(conv1(SiLU(GN1 x)) + Lin(SiLU temb)))).
 * x [B,cin,H,W] -> out [B,cout,H,W]. */
static void resnet_fwd(fwd *F, const resnet_p *r, const float *x, float *out, int H, int W)
{
    const sld_unet_config *c = &F->u->cfg;
    scratch *s = F->s;
    const int B = F->B, HW = H * W;
    size_t mark = s->used;
    float *t1 = sld_arena_floats(s, (size_t)B * r->cin * HW);
    float *t2 = sld_arena_floats(s, (size_t)B * r->cout * HW);
    float *tp = sld_arena_floats(s, (size_t)B * r->cout);
    if (s->plan || s->overflow)
        goto done;
    TIMED(F->u, SLD_PROF_NORM,
          sld_group_norm(x, t1, B, r->cin, HW, c->norm_num_groups, c->norm_eps, r->n1.g,
                         r->n1.b, true));
    conv(F, &r->c1, t1, t2, H, W, NULL);
    linear(F, &r->temb, F->temb, tp, B);
    const int BC = B * r->cout;
    double t0 = prof_t0(F->u);
#pragma omp parallel for schedule(static) if ((size_t)BC * HW > 65536)
    for (int bc = 0; bc < BC; bc++) {
        float v = tp[bc], *p = t2 + (size_t)bc * HW;
        for (int i = 0; i < HW; i++)
            p[i] += v;
    }
    prof_add(F->u, SLD_PROF_ELT, t0, 0.0);
    TIMED(F->u, SLD_PROF_NORM,
          sld_group_norm(t2, t2, B, r->cout, HW, c->norm_num_groups, c->norm_eps, r->n2.g,
                         r->n2.b, true));
    /* out = shortcut(x) + conv2(t2): the shortcut lands in out first so the
     * conv adds onto it while leaving its blocked layout. */
    if (r->sc.pc) {
        conv(F, &r->sc, x, out, H, W, NULL);
        conv(F, &r->c2, t2, out, H, W, out);
    } else {
        conv(F, &r->c2, t2, out, H, W, x);
    }
done:
    s->used = mark;
}

/* Attention in the network's precision (bf16 products, fp32 softmax). */
static void attend(fwd *F, const float *q, int ldq, const float *k, const float *v, int ldkv,
                   float *a, int Nq, int Nk, int heads, int dh, float scale, int C)
{
    double t0 = prof_t0(F->u);
    if (F->u->prec == SLD_PREC_BF16)
        sld_attention_bf16(q, ldq, k, ldkv, v, ldkv, a, C, F->B, Nq, Nk, heads, dh, scale,
                           false);
    else
        sld_attention(q, ldq, k, ldkv, v, ldkv, a, C, F->B, Nq, Nk, heads, dh, scale, false);
    /* QK^T and PV: 2 x (Nq x Nk x dh) multiply-adds per head */
    prof_add(F->u, SLD_PROF_ATTN, t0, 4e-9 * F->B * heads * (double)Nq * Nk * dh);
}

/* Rows per chunk of the feed-forward: bounds its [rows, 8C] scratch. */
#define FF_CHUNK 1024

/* Transformer2DModel in place on x [B,C,H,W]. */
static void xformer_fwd(fwd *F, const xformer_p *X, float *x, int H, int W)
{
    const sld_unet_config *c = &F->u->cfg;
    scratch *s = F->s;
    const int B = F->B, C = X->C, N = H * W, M = B * N, nc = F->n_ctx;
    const int dh = C / X->heads;
    const float scale = 1.0f / sqrtf((float)dh);
    const int chunk = M < FF_CHUNK ? M : FF_CHUNK;
    size_t mark = s->used;
    size_t MC = (size_t)M * C;
    float *g = sld_arena_floats(s, MC), *h = sld_arena_floats(s, MC), *ln = sld_arena_floats(s, MC);
    /* qkv [M,3C] (self-attention projections); its first MC floats double as
     * the [M,C] output of o1/o2/ff2 once the attention has read them. */
    float *qkv = sld_arena_floats(s, 3 * MC), *q = qkv, *a = sld_arena_floats(s, MC);
    float *kv = sld_arena_floats(s, (size_t)B * nc * 2 * C); /* [B*nc, 2C] */
    float *ff = sld_arena_floats(s, (size_t)chunk * 8 * C), *gg = sld_arena_floats(s, (size_t)chunk * 4 * C);
    if (s->plan || s->overflow)
        goto done;
    /* GroupNorm (eps 1e-6 in diffusers' Transformer2DModel) then tokens. */
    TIMED(F->u, SLD_PROF_NORM,
          sld_group_norm(x, g, B, C, N, c->norm_num_groups, 1e-6f, X->norm.g, X->norm.b, false));
    TIMED(F->u, SLD_PROF_ELT, sld_nchw_to_nhwc(g, ln, B, C, N));
    linear(F, &X->pin, ln, h, M);
    for (int l = 0; l < X->n_layers; l++) {
        const tblock_p *t = &X->tb[l];
        /* self-attention */
        TIMED(F->u, SLD_PROF_NORM, sld_layer_norm(h, ln, M, C, 1e-5f, t->n1.g, t->n1.b));
        linear(F, &t->qkv1, ln, qkv, M);
        attend(F, qkv, 3 * C, qkv + C, qkv + 2 * C, 3 * C, a, N, N, X->heads, dh, scale, C);
        linear(F, &t->o1, a, q, M);
        TIMED(F->u, SLD_PROF_ELT, sld_add(h, q, MC));
        /* cross-attention over the text tokens */
        TIMED(F->u, SLD_PROF_NORM, sld_layer_norm(h, ln, M, C, 1e-5f, t->n2.g, t->n2.b));
        linear(F, &t->q2, ln, q, M);
        linear(F, &t->kv2, F->ctx, kv, B * nc);
        attend(F, q, C, kv, kv + C, 2 * C, a, N, nc, X->heads, dh, scale, C);
        linear(F, &t->o2, a, q, M);
        TIMED(F->u, SLD_PROF_ELT, sld_add(h, q, MC));
        /* GEGLU feed-forward, row chunks (rows are independent) */
        TIMED(F->u, SLD_PROF_NORM, sld_layer_norm(h, ln, M, C, 1e-5f, t->n3.g, t->n3.b));
        for (int r0 = 0; r0 < M; r0 += chunk) {
            int rows = M - r0 < chunk ? M - r0 : chunk;
            linear(F, &t->ff1, ln + (size_t)r0 * C, ff, rows);
            TIMED(F->u, SLD_PROF_ELT, sld_geglu(ff, gg, rows, 4 * C));
            linear(F, &t->ff2, gg, q + (size_t)r0 * C, rows);
        }
        TIMED(F->u, SLD_PROF_ELT, sld_add(h, q, MC));
    }
    linear(F, &X->pout, h, ln, M);
    TIMED(F->u, SLD_PROF_ELT, sld_nhwc_to_nchw(ln, g, B, C, N));
    TIMED(F->u, SLD_PROF_ELT, sld_add(x, g, MC));
done:
    s->used = mark;
}

static void tap(fwd *F, const char *name, const float *x, int C, int H, int W)
{
    if (F->u->tap && !F->s->plan && !F->s->overflow)
        F->u->tap(F->u->tap_user, name, x, F->B, C, H, W);
}

typedef struct {
    float *p;
    int C, H, W;
} act;

static sld_status forward(sld_unet *u, scratch *s, const float *sample, int B, int h, int w,
                          const float *timesteps, const float *ctx, int n_ctx, float *out)
{
    const sld_unet_config *c = &u->cfg;
    const int n = c->n_blocks, c0 = c->block_out_channels[0];
    fwd F = {.u = u, .s = s, .B = B, .ctx = ctx, .n_ctx = n_ctx};
    char name[64];

    /* Time embedding: Timesteps(flip_sin_to_cos, freq_shift) in float32, then
     * TimestepEmbedding (linear, SiLU, linear). Resnets use SiLU of it. */
    const int half = c0 / 2;
    float *tproj = sld_arena_floats(s, (size_t)B * c0);
    float *temb = sld_arena_floats(s, (size_t)B * u->temb_dim);
    float *th = sld_arena_floats(s, (size_t)B * u->temb_dim);
    if (!s->plan && !s->overflow) {
        const float nl = (float)-log(10000.0);
        for (int b = 0; b < B; b++) {
            float *e = tproj + (size_t)b * c0;
            for (int k = 0; k < half; k++) {
                float ex = nl * (float)k / ((float)half - c->freq_shift);
                float arg = timesteps[b] * expf(ex);
                float sv = sinf(arg), cv = cosf(arg);
                e[k] = c->flip_sin_to_cos ? cv : sv;
                e[half + k] = c->flip_sin_to_cos ? sv : cv;
            }
            for (int k = 2 * half; k < c0; k++)
                e[k] = 0.0f; /* odd width: diffusers zero-pads */
        }
        tap(&F, "time_proj", tproj, c0, 1, 1);
        linear(&F, &u->t1, tproj, th, B);
        sld_silu(th, (size_t)B * u->temb_dim);
        linear(&F, &u->t2, th, temb, B);
        tap(&F, "time_embedding", temb, u->temb_dim, 1, 1);
        sld_silu(temb, (size_t)B * u->temb_dim);
    }
    F.temb = temb;

    /* Down path: every output is a skip, kept until the up path pops it. */
    act skips[1 + SLD_UNET_MAX_BLOCKS * 34];
    int ns = 0;
    int H = h, W = w;
    act cur = {sld_arena_floats(s, (size_t)B * c0 * H * W), c0, H, W};
    if (!s->plan && !s->overflow) {
        conv(&F, &u->conv_in, sample, cur.p, H, W, NULL);
        tap(&F, "conv_in", cur.p, c0, H, W);
    }
    skips[ns++] = cur;
    for (int i = 0; i < n; i++) {
        const block_p *b = &u->down[i];
        for (int j = 0; j < b->n_res; j++) {
            act nx = {sld_arena_floats(s, (size_t)B * b->cout * H * W), b->cout, H, W};
            resnet_fwd(&F, &b->res[j], cur.p, nx.p, H, W);
            if (b->attn)
                xformer_fwd(&F, &b->attn[j], nx.p, H, W);
            skips[ns++] = cur = nx;
        }
        if (b->sample.k) {
            sld_conv2d_desc d = {.B = B, .C_in = b->cout, .H = H, .W = W, .C_out = b->cout,
                                 .kh = 3, .kw = 3, .stride = 2, .pad_t = 1, .pad_l = 1,
                                 .pad_b = 1, .pad_r = 1};
            int Ho, Wo;
            sld_conv2d_out_hw(&d, &Ho, &Wo);
            act nx = {sld_arena_floats(s, (size_t)B * b->cout * Ho * Wo), b->cout, Ho, Wo};
            if (!s->plan && !s->overflow)
                conv(&F, &b->sample, cur.p, nx.p, H, W, NULL);
            H = Ho;
            W = Wo;
            skips[ns++] = cur = nx;
        }
        snprintf(name, sizeof name, "down_blocks.%d", i);
        tap(&F, name, cur.p, cur.C, H, W);
    }

    /* Two ping-pong buffers for the running state and one for concat /
     * upsampled inputs, sized from the shapes the up path will see. */
    size_t hmax = (size_t)cur.C * H * W, cmax = 0;
    {
        int C = cur.C, hh = H, ww = W, k = ns;
        for (int i = 0; i < n; i++) {
            const block_p *b = &u->up[i];
            for (int j = 0; j < b->n_res; j++) {
                const act *sk = &skips[--k];
                size_t cs = (size_t)(C + sk->C) * hh * ww;
                if (cs > cmax)
                    cmax = cs;
                C = b->cout;
                if ((size_t)C * hh * ww > hmax)
                    hmax = (size_t)C * hh * ww;
            }
            if (b->sample.k) {
                hh = skips[k - 1].H;
                ww = skips[k - 1].W;
                size_t us = (size_t)C * hh * ww;
                if (us > cmax)
                    cmax = us;
                if (us > hmax)
                    hmax = us;
            }
        }
    }
    float *pa = sld_arena_floats(s, (size_t)B * hmax), *pb = sld_arena_floats(s, (size_t)B * hmax);
    float *cat = sld_arena_floats(s, (size_t)B * cmax);
    const int cm = cur.C;

    /* Mid block */
    resnet_fwd(&F, &u->mid_res[0], cur.p, pa, H, W);
    xformer_fwd(&F, &u->mid_attn, pa, H, W);
    resnet_fwd(&F, &u->mid_res[1], pa, pb, H, W);
    tap(&F, "mid_block", pb, cm, H, W);
    cur = (act){pb, cm, H, W};
    float *spare = pa;

    /* Up path: cat([h, skip]) with skips popped from the end; upsample to the
     * next skip's size (== x2 whenever the size divides evenly, and what
     * diffusers does via upsample_size otherwise). */
    for (int i = 0; i < n; i++) {
        const block_p *b = &u->up[i];
        for (int j = 0; j < b->n_res; j++) {
            const act *sk = &skips[--ns];
            const int HW = H * W;
            if (!s->plan && !s->overflow) {
                for (int bb = 0; bb < B; bb++) {
                    float *dst = cat + (size_t)bb * (cur.C + sk->C) * HW;
                    memcpy(dst, cur.p + (size_t)bb * cur.C * HW, (size_t)cur.C * HW * sizeof *dst);
                    memcpy(dst + (size_t)cur.C * HW, sk->p + (size_t)bb * sk->C * HW,
                           (size_t)sk->C * HW * sizeof *dst);
                }
            }
            resnet_fwd(&F, &b->res[j], cat, spare, H, W);
            if (b->attn)
                xformer_fwd(&F, &b->attn[j], spare, H, W);
            float *t = cur.p;
            cur = (act){spare, b->cout, H, W};
            spare = t;
        }
        if (b->sample.k) {
            int Ho = skips[ns - 1].H, Wo = skips[ns - 1].W;
            if (!s->plan && !s->overflow) {
                sld_upsample_nearest(cur.p, cat, B, cur.C, H, W, Ho, Wo);
                conv(&F, &b->sample, cat, spare, Ho, Wo, NULL);
            }
            H = Ho;
            W = Wo;
            float *t = cur.p;
            cur = (act){spare, b->cout, H, W};
            spare = t;
        }
        snprintf(name, sizeof name, "up_blocks.%d", i);
        tap(&F, name, cur.p, cur.C, H, W);
    }

    /* conv_norm_out, SiLU, conv_out */
    if (!s->plan && !s->overflow) {
        if (u->tap) {
            sld_group_norm(cur.p, spare, B, c0, H * W, c->norm_num_groups, c->norm_eps,
                           u->norm_out.g, u->norm_out.b, false);
            tap(&F, "conv_norm_out", spare, c0, H, W);
            sld_silu(spare, (size_t)B * c0 * H * W);
        } else {
            sld_group_norm(cur.p, spare, B, c0, H * W, c->norm_num_groups, c->norm_eps,
                           u->norm_out.g, u->norm_out.b, true);
        }
        conv(&F, &u->conv_out, spare, out, H, W, NULL);
    }
    return SLD_OK;
}

sld_status sld_unet_forward(sld_unet *u, const float *sample, int B, int h, int w,
                            const float *timesteps, const float *ctx, int n_ctx, float *out,
                            sld_error *err)
{
    if (B < 1 || h < 1 || w < 1 || n_ctx < 1 || !sample || !timesteps || !ctx || !out)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "unet: bad arguments (B=%d, h=%d, w=%d, n_ctx=%d)", B, h, w, n_ctx);
    /* Re-plan when any dimension grows. Every scratch size is monotone in
     * B, h, w and n_ctx (odd sizes halve as ceil(x/2)), so the plan for the
     * element-wise largest size seen covers all smaller ones. */
    if (!u->s.base || B > u->plan_B || h > u->plan_h || w > u->plan_w || n_ctx > u->plan_ctx) {
        int pB = B > u->plan_B ? B : u->plan_B, ph = h > u->plan_h ? h : u->plan_h;
        int pw = w > u->plan_w ? w : u->plan_w, pc = n_ctx > u->plan_ctx ? n_ctx : u->plan_ctx;
        scratch plan = {.plan = true};
        forward(u, &plan, NULL, pB, ph, pw, NULL, NULL, pc, NULL);
        sld_free(u->s.base);
        memset(&u->s, 0, sizeof u->s);
        u->plan_B = u->plan_h = u->plan_w = u->plan_ctx = 0;
        u->s.base = sld_malloc_aligned(plan.peak);
        if (!u->s.base)
            return sld_err(err, SLD_ERR_NOMEM, "unet: out of memory for %zu MiB of activations",
                           plan.peak >> 20);
        u->s.cap = plan.peak;
        u->plan_B = pB;
        u->plan_h = ph;
        u->plan_w = pw;
        u->plan_ctx = pc;
    }
    u->s.used = 0;
    u->s.overflow = false;
    u->run_st = SLD_OK;
    u->run_err = err;
    memset(&u->prof, 0, sizeof u->prof);
    double t0 = prof_t0(u);
    forward(u, &u->s, sample, B, h, w, timesteps, ctx, n_ctx, out);
    u->run_err = NULL;
    if (u->profile) {
        u->prof.total = sld_time_now() - t0;
        u->prof.forwards = 1;
        char line[640];
        sld_prof_format(&u->prof, line, sizeof line);
        sld_log(SLD_LOG_INFO, "unet profile B=%d %dx%d: %s", B, h, w, line);
    }
    if (u->s.overflow)
        return sld_err(err, SLD_ERR_INTERNAL, "unet: activation plan too small");
    if (u->run_st) {
        sld_err_prefix(err, "unet");
        return u->run_st;
    }
    return SLD_OK;
}

size_t sld_unet_arena_bytes(const sld_unet *u) { return u->s.cap; }

void sld_unet_trim(sld_unet *u)
{
    sld_pack_ws_trim(u->ws); /* the packed ops' copies and the Winograd scratchpad */
    sld_free(u->s.base);
    memset(&u->s, 0, sizeof u->s);
    u->plan_B = u->plan_h = u->plan_w = u->plan_ctx = 0;
}

const sld_prof *sld_unet_profile(const sld_unet *u) { return u->profile ? &u->prof : NULL; }
