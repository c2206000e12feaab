/*
 * vae.c — AutoencoderKL (diffusers 0.31 numerics): decoder and encoder.
 *
 * Owns: the VAE config (JSON or inferred from shapes), binding by diffusers
 * names (attention as to_q/to_k/to_v/to_out.0, or the pre-0.14 names
 * query/key/value/proj_attn; linear [C,C] or 1x1-conv [C,C,1,1] weights),
 * and both passes. Every GroupNorm uses eps 1e-6; the mid-block attention is
 * single-head with scale C^-0.5 and a residual.
 *
 * Memory: activations live in one arena per sld_vae, planned by running the
 * pass in counting mode; re-planned only when a larger size arrives.
 * Convolution weights are packed at load (ops/packed.h) in the compute
 * precision (sld_vae_config.precision) and the store's float32 copies of
 * them released, so each is held once.
 *
 * SLD_PROFILE=1 (read at load) times each op class of a pass (ops/profile.h)
 * and logs one INFO line per pass; sld_vae_profile gives the figures.
 */
#include "model/vae.h"

#include "ops/ops.h"
#include "ops/packed.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAE_EPS 1e-6f

struct sld_vae;

/* The activation arena (core sld_arena, with its planning mode) and the
 * VAE whose pass is running (for its packed convs). */
typedef struct {
    sld_arena a;
    struct sld_vae *vae;
} scratch;

#define LIVE(s) (!(s)->a.plan && !(s)->a.overflow)

typedef struct {
    const float *w, *b; /* NULL once packed */
    int cin, cout, k;
    sld_pconv *pc;
} conv_p;

typedef struct {
    const float *g, *b;
} norm_p;

typedef struct {
    const float *w, *b;
} lin_p;

typedef struct {
    int cin, cout;
    norm_p n1, n2;
    conv_p c1, c2, sc; /* sc.k 0: identity */
} resnet_p;

typedef struct {
    int C;
    norm_p gn;
    lin_p q, k, v, o; /* [C,C] + bias */
} attn_p;

typedef struct {
    int n_res, cout;
    resnet_p *res;
    conv_p sample; /* k 0: none */
} block_p;

typedef struct {
    resnet_p r0, r1;
    attn_p a;
} mid_p;

struct sld_vae {
    sld_vae_config cfg;
    /* encoder */
    conv_p e_in, e_out, quant;
    block_p down[SLD_VAE_MAX_BLOCKS];
    mid_p e_mid;
    norm_p e_norm;
    /* decoder */
    conv_p post_quant, d_in, d_out;
    block_p up[SLD_VAE_MAX_BLOCKS];
    mid_p d_mid;
    norm_p d_norm;
    bool have_enc;
    scratch s;
    sld_pack_ws *ws;
    sld_precision prec;
    sld_status run_st; /* first failure of the current pass (sticky) */
    sld_error *run_err;
    int plan_dec[3], plan_enc[3]; /* B, h, w the arena covers, per pass */
    sld_vae_tap_fn tap;
    void *tap_user;
    bool profile;  /* SLD_PROFILE set at load */
    sld_prof prof; /* the last pass's split, when profile is set */
};

/* ===================================================================== */
/* Config                                                                */
/* ===================================================================== */

static sld_status cfg_check(const sld_vae_config *c, const char *src, sld_error *err)
{
    if (c->n_blocks < 1 || c->n_blocks > SLD_VAE_MAX_BLOCKS)
        return sld_err(err, SLD_ERR_CONFIG, "%s: %d VAE blocks, expected 1..%d", src,
                       c->n_blocks, SLD_VAE_MAX_BLOCKS);
    if (c->in_channels < 1 || c->out_channels < 1 || c->latent_channels < 1 ||
        c->layers_per_block < 1 || c->layers_per_block > 32 || c->norm_num_groups < 1)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: channels, layers_per_block (1..32) and norm_num_groups must be "
                       "positive",
                       src);
    if (c->in_channels > 1024 || c->out_channels > 1024 || c->latent_channels > 1024 ||
        c->norm_num_groups > 65536 || c->sample_size < 0 || c->sample_size > 65536)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: channels %d/%d/%d (<= 1024), norm_num_groups %d (<= 65536) or "
                       "sample_size %d (<= 65536) out of range",
                       src, c->in_channels, c->out_channels, c->latent_channels,
                       c->norm_num_groups, c->sample_size);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->block_out_channels[i] > 65536)
            return sld_err(err, SLD_ERR_CONFIG,
                           "%s: block_out_channels[%d] = %d is above the supported 65536", src,
                           i, c->block_out_channels[i]);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->block_out_channels[i] < 1 || c->block_out_channels[i] % c->norm_num_groups)
            return sld_err(err, SLD_ERR_CONFIG,
                           "%s: block_out_channels[%d] = %d is not a positive multiple of "
                           "norm_num_groups %d",
                           src, i, c->block_out_channels[i], c->norm_num_groups);
    if (!(c->scaling_factor > 0) || !isfinite(c->scaling_factor))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: scaling_factor %g must be positive and finite (SD: 0.18215)", src,
                       (double)c->scaling_factor);
    return SLD_OK;
}

sld_status sld_vae_config_from_json(sld_vae_config *c, const sld_json *j, sld_error *err)
{
    sld_status st;
    memset(c, 0, sizeof *c);
    const char *src = j->path ? j->path : "vae config";
#define TRY(x)                                                                                 \
    do {                                                                                       \
        if ((st = (x)))                                                                        \
            return st;                                                                         \
    } while (0)
    TRY(sld_json_int_opt(j, NULL, "in_channels", 3, &c->in_channels, err));
    TRY(sld_json_int_opt(j, NULL, "out_channels", 3, &c->out_channels, err));
    TRY(sld_json_int_opt(j, NULL, "latent_channels", 4, &c->latent_channels, err));
    int n = 0;
    TRY(sld_json_ints_opt(j, NULL, "block_out_channels", c->block_out_channels,
                          SLD_VAE_MAX_BLOCKS, &n, err));
    if (n == 0) {
        c->block_out_channels[0] = 64;
        n = 1;
    }
    c->n_blocks = n;
    const char *types[SLD_VAE_MAX_BLOCKS];
    int nt = 0;
    static const char *const keys[2] = {"down_block_types", "up_block_types"};
    static const char *const want[2] = {"DownEncoderBlock2D", "UpDecoderBlock2D"};
    for (int k = 0; k < 2; k++) {
        cJSON *it = cJSON_GetObjectItemCaseSensitive(j->root, keys[k]);
        if (!it || cJSON_IsNull(it))
            continue;
        TRY(sld_json_strs_req(j, NULL, keys[k], types, SLD_VAE_MAX_BLOCKS, &nt, err));
        if (nt != n)
            return sld_err(err, SLD_ERR_CONFIG, "%s: %d %s for %d block_out_channels", src, nt,
                           keys[k], n);
        for (int i = 0; i < nt; i++)
            if (strcmp(types[i], want[k]))
                return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: %s entry '%s' (expected %s)",
                               src, keys[k], types[i], want[k]);
    }
    TRY(sld_json_int_opt(j, NULL, "layers_per_block", 1, &c->layers_per_block, err));
    TRY(sld_json_int_opt(j, NULL, "norm_num_groups", 32, &c->norm_num_groups, err));
    double d;
    TRY(sld_json_num_opt(j, NULL, "scaling_factor", 0.18215, &d, err));
    c->scaling_factor = (float)d;
    TRY(sld_json_int_opt(j, NULL, "sample_size", 32, &c->sample_size, err));
    const char *act = NULL;
    TRY(sld_json_str_opt(j, NULL, "act_fn", "silu", &act, err));
    if (strcmp(act, "silu"))
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: act_fn '%s' (only silu)", src, act);
    int b = 1;
    static const char *const must[3] = {"use_quant_conv", "use_post_quant_conv",
                                        "mid_block_add_attention"};
    for (int k = 0; k < 3; k++) {
        TRY(sld_json_bool_opt(j, NULL, must[k], 1, &b, err));
        if (!b)
            return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: %s false is not supported", src,
                           must[k]);
    }
    TRY(sld_json_num_opt(j, NULL, "shift_factor", 0, &d, err));
    if (d != 0)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: shift_factor is not supported", src);
#undef TRY
    return cfg_check(c, src, err);
}

static int64_t dim_of(const sld_weights *w, const char *name, int i)
{
    int64_t sh[SLD_ST_MAX_DIMS];
    int nd = sld_weights_shape(w, name, sh);
    return nd > i ? sh[i] : -1;
}

sld_status sld_vae_config_infer(sld_vae_config *c, const sld_weights *w, sld_error *err)
{
    char name[128];
    const char *src = sld_weights_label(w);
    memset(c, 0, sizeof *c);
    c->in_channels = (int)dim_of(w, "encoder.conv_in.weight", 1);
    c->out_channels = (int)dim_of(w, "decoder.conv_out.weight", 0);
    c->latent_channels = (int)dim_of(w, "post_quant_conv.weight", 0);
    int n = 0;
    for (; n < SLD_VAE_MAX_BLOCKS; n++) {
        snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.0.conv1.weight", n);
        int64_t ch = dim_of(w, name, 0);
        if (ch < 1)
            break;
        c->block_out_channels[n] = (int)ch;
    }
    c->n_blocks = n;
    int lpb = 0;
    for (;; lpb++) {
        snprintf(name, sizeof name, "encoder.down_blocks.0.resnets.%d.conv1.weight", lpb);
        if (!sld_weights_has(w, name))
            break;
    }
    c->layers_per_block = lpb;
    c->norm_num_groups = 32;
    c->scaling_factor = 0.18215f;
    c->sample_size = 512;
    if (n == 0 || c->in_channels < 1 || c->out_channels < 1 || c->latent_channels < 1)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: VAE tensors missing (encoder.conv_in, decoder.conv_out, "
                       "post_quant_conv, encoder.down_blocks.0.resnets.0)",
                       src);
    return cfg_check(c, src, err);
}

/* ===================================================================== */
/* Binding                                                               */
/* ===================================================================== */

typedef struct {
    sld_weights *w;
    sld_error *err;
    sld_status st;
    sld_tensor_list_fn list;
    void *list_user;
    sld_precision prec;
    bool wino; /* 3x3 convs may use Winograd (sld_conv_algo auto) */
} binder;

static const float *bindv(binder *B, int nd, const int64_t *shape, const char *name)
{
    if (B->st)
        return NULL;
    if (B->list) {
        B->list(B->list_user, name, nd, shape);
        return NULL;
    }
    const float *p = sld_weights_f32(B->w, name, nd, shape, B->err);
    if (!p)
        B->st = B->err && B->err->code ? B->err->code : SLD_ERR_SHAPE;
    return p;
}

static const float *bind(binder *B, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                         const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static const float *bind(binder *B, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                         const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {d0, d1, d2, d3};
    return bindv(B, nd, shape, name);
}

/* Binds and packs a conv; down: the encoder's Downsample2D (stride 2, zero
 * pad right/bottom only), else stride 1 with k/2 padding. */
static void bind_conv_g(binder *B, conv_p *c, int cin, int cout, int k, bool down,
                        const char *name)
{
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->w = bind(B, 4, cout, cin, k, k, "%s.weight", name);
    c->b = bind(B, 1, cout, 0, 0, 0, "%s.bias", name);
    if (B->st || B->list)
        return;
    int p = k / 2;
    sld_conv2d_desc d = {.B = 1, .C_in = cin, .H = 1, .W = 1, .C_out = cout, .kh = k, .kw = k,
                         .stride = down ? 2 : 1, .pad_t = down ? 0 : p, .pad_l = down ? 0 : p,
                         .pad_b = down ? 1 : p, .pad_r = down ? 1 : p};
    if ((B->st = sld_pconv_new_ex(&c->pc, &d, c->w, c->b, B->prec, true, B->err)))
        return;
    sld_pconv_set_winograd(c->pc, B->wino);
    if (sld_pconv_packed(c->pc)) {
        char n[256];
        snprintf(n, sizeof n, "%s.weight", name);
        sld_weights_release(B->w, n);
        snprintf(n, sizeof n, "%s.bias", name);
        sld_weights_release(B->w, n);
        c->w = c->b = NULL;
    }
}

static void bind_conv(binder *B, conv_p *c, int cin, int cout, int k, const char *name)
{
    bind_conv_g(B, c, cin, cout, k, false, name);
}

static void bind_norm(binder *B, norm_p *n, int C, const char *name)
{
    n->g = bind(B, 1, C, 0, 0, 0, "%s.weight", name);
    n->b = bind(B, 1, C, 0, 0, 0, "%s.bias", name);
}

static void bind_resnet(binder *B, resnet_p *r, int cin, int cout, const char *name)
{
    char n[200];
    r->cin = cin;
    r->cout = cout;
    snprintf(n, sizeof n, "%s.norm1", name);
    bind_norm(B, &r->n1, cin, n);
    snprintf(n, sizeof n, "%s.conv1", name);
    bind_conv(B, &r->c1, cin, cout, 3, n);
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

/* An attention projection [C,C] (+bias) under its current name or the
 * pre-0.14 one; stored as Linear or as 1x1 conv. */
static void bind_attn_lin(binder *B, lin_p *l, int C, const char *blk, const char *now,
                          const char *old)
{
    char n[240];
    snprintf(n, sizeof n, "%s.%s.weight", blk, now);
    if (!B->list && B->w && !sld_weights_has(B->w, n)) {
        char o[240];
        snprintf(o, sizeof o, "%s.%s.weight", blk, old);
        if (sld_weights_has(B->w, o))
            now = old;
    }
    snprintf(n, sizeof n, "%s.%s.weight", blk, now);
    int64_t sh[SLD_ST_MAX_DIMS] = {0};
    int nd = B->list ? -1 : sld_weights_shape(B->w, n, sh);
    int64_t want[4] = {C, C, 1, 1};
    l->w = bindv(B, nd == 4 ? 4 : 2, want, n);
    snprintf(n, sizeof n, "%s.%s.bias", blk, now);
    l->b = bindv(B, 1, want, n);
}

static void bind_mid(binder *B, mid_p *m, int C, const char *side)
{
    char n[200];
    snprintf(n, sizeof n, "%s.mid_block.resnets.0", side);
    bind_resnet(B, &m->r0, C, C, n);
    snprintf(n, sizeof n, "%s.mid_block.resnets.1", side);
    bind_resnet(B, &m->r1, C, C, n);
    snprintf(n, sizeof n, "%s.mid_block.attentions.0", side);
    m->a.C = C;
    char g[240];
    snprintf(g, sizeof g, "%s.group_norm", n);
    bind_norm(B, &m->a.gn, C, g);
    bind_attn_lin(B, &m->a.q, C, n, "to_q", "query");
    bind_attn_lin(B, &m->a.k, C, n, "to_k", "key");
    bind_attn_lin(B, &m->a.v, C, n, "to_v", "value");
    bind_attn_lin(B, &m->a.o, C, n, "to_out.0", "proj_attn");
}

void sld_vae_free(sld_vae *v)
{
    if (!v)
        return;
    block_p *bl[2] = {v->down, v->up};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < SLD_VAE_MAX_BLOCKS; i++) {
            for (int j = 0; bl[s][i].res && j < bl[s][i].n_res; j++) {
                sld_pconv_free(bl[s][i].res[j].c1.pc);
                sld_pconv_free(bl[s][i].res[j].c2.pc);
                sld_pconv_free(bl[s][i].res[j].sc.pc);
            }
            sld_pconv_free(bl[s][i].sample.pc);
            sld_free(bl[s][i].res);
        }
    mid_p *mids[2] = {&v->e_mid, &v->d_mid};
    for (int m = 0; m < 2; m++) {
        resnet_p *rs[2] = {&mids[m]->r0, &mids[m]->r1};
        for (int r = 0; r < 2; r++) {
            sld_pconv_free(rs[r]->c1.pc);
            sld_pconv_free(rs[r]->c2.pc);
            sld_pconv_free(rs[r]->sc.pc);
        }
    }
    conv_p *cs[6] = {&v->e_in, &v->e_out, &v->quant, &v->post_quant, &v->d_in, &v->d_out};
    for (int i = 0; i < 6; i++)
        sld_pconv_free(cs[i]->pc);
    sld_pack_ws_free(v->ws);
    sld_free(v->s.a.base);
    sld_free(v);
}

const sld_vae_config *sld_vae_cfg(const sld_vae *v) { return &v->cfg; }

void sld_vae_set_tap(sld_vae *v, sld_vae_tap_fn fn, void *user)
{
    v->tap = fn;
    v->tap_user = user;
}

static sld_status vae_build(sld_vae *v, binder *B, bool encoder, sld_error *err)
{
    const sld_vae_config *c = &v->cfg;
    const int n = c->n_blocks, lpb = c->layers_per_block, *ch = c->block_out_channels;
    const int L = c->latent_channels, top = ch[n - 1];
    char name[200];

    if (encoder) {
        bind_conv(B, &v->e_in, c->in_channels, ch[0], 3, "encoder.conv_in");
        int prev = ch[0];
        for (int i = 0; i < n; i++) {
            block_p *b = &v->down[i];
            b->n_res = lpb;
            b->cout = ch[i];
            if (!b->res && !(b->res = sld_calloc((size_t)lpb, sizeof *b->res)))
                return sld_err(err, SLD_ERR_NOMEM, "out of memory");
            for (int j = 0; j < lpb; j++) {
                snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.%d", i, j);
                bind_resnet(B, &b->res[j], j ? ch[i] : prev, ch[i], name);
            }
            if (i < n - 1) {
                snprintf(name, sizeof name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
                bind_conv_g(B, &b->sample, ch[i], ch[i], 3, true, name);
            }
            prev = ch[i];
        }
        bind_mid(B, &v->e_mid, top, "encoder");
        bind_norm(B, &v->e_norm, top, "encoder.conv_norm_out");
        bind_conv(B, &v->e_out, top, 2 * L, 3, "encoder.conv_out");
        bind_conv(B, &v->quant, 2 * L, 2 * L, 1, "quant_conv");
        return B->st;
    }
    bind_conv(B, &v->post_quant, L, L, 1, "post_quant_conv");
    bind_conv(B, &v->d_in, L, top, 3, "decoder.conv_in");
    bind_mid(B, &v->d_mid, top, "decoder");
    int prev = top;
    for (int i = 0; i < n; i++) {
        block_p *b = &v->up[i];
        int co = ch[n - 1 - i];
        b->n_res = lpb + 1;
        b->cout = co;
        if (!b->res && !(b->res = sld_calloc((size_t)lpb + 1, sizeof *b->res)))
            return sld_err(err, SLD_ERR_NOMEM, "out of memory");
        for (int j = 0; j <= lpb; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            bind_resnet(B, &b->res[j], j ? co : prev, co, name);
        }
        if (i < n - 1) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            bind_conv(B, &b->sample, co, co, 3, name);
        }
        prev = co;
    }
    bind_norm(B, &v->d_norm, ch[0], "decoder.conv_norm_out");
    bind_conv(B, &v->d_out, ch[0], c->out_channels, 3, "decoder.conv_out");
    return B->st;
}

sld_status sld_vae_load(sld_vae **out, const sld_vae_config *c, sld_weights *w, sld_error *err)
{
    *out = NULL;
    sld_status st = cfg_check(c, sld_weights_label(w), err);
    if (st)
        return st;
    sld_vae *v = sld_calloc(1, sizeof *v);
    if (!v)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    v->cfg = *c;
    v->prec = sld_pack_precision((sld_precision)c->precision);
    v->ws = sld_pack_ws_new();
    if (!v->ws) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *pe = getenv("SLD_PROFILE");
    v->profile = pe && *pe && strcmp(pe, "0");
    if (v->profile)
        sld_pack_ws_set_profile(v->ws, &v->prof);
    binder B = {.w = w, .err = err, .prec = v->prec, .wino = c->conv_algo == 0};
    if ((st = vae_build(v, &B, false, err)))
        goto fail;
    /* The encoder is optional (inference-only files may drop it). */
    if (sld_weights_has(w, "encoder.conv_in.weight")) {
        if ((st = vae_build(v, &B, true, err)))
            goto fail;
        v->have_enc = true;
    }
    *out = v;
    return SLD_OK;
fail:
    sld_vae_free(v);
    return st;
}

sld_status sld_vae_tensors(const sld_vae_config *c, sld_tensor_list_fn fn, void *user,
                           sld_error *err)
{
    sld_status st = cfg_check(c, "vae config", err);
    if (st)
        return st;
    sld_vae *v = sld_calloc(1, sizeof *v);
    if (!v)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    v->cfg = *c;
    binder B = {.err = err, .list = fn, .list_user = user};
    st = vae_build(v, &B, true, err);
    if (!st)
        st = vae_build(v, &B, false, err);
    sld_vae_free(v);
    return st;
}

/* ===================================================================== */
/* Forward                                                               */
/* ===================================================================== */

/* y = conv(x) [+ residual] through the packed weights; sb/db (capacities
 * sbn/dbn bytes, aliasing as sld_pconv_run_buf allows) hold the oneDNN-layout
 * copies when large enough. A failure is kept in the owner's run_st and
 * skips every later conv. */
static void conv_b(scratch *s, const conv_p *c, const float *x, float *y, int B, int H, int W,
                   const float *residual, void *sb, size_t sbn, void *db, size_t dbn)
{
    struct sld_vae *v = s->vae;
    if (!v->run_st)
        v->run_st = sld_pconv_run_buf(c->pc, v->ws, x, y, B, H, W, residual, sb, sbn, db, dbn,
                                      v->run_err);
}

static void conv(scratch *s, const conv_p *c, const float *x, float *y, int B, int H, int W,
                 const float *residual)
{
    conv_b(s, c, x, y, B, H, W, residual, NULL, 0, NULL, 0);
}

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

/* Profile of the ops that are not packed convs (those time themselves). */
static double vt0(const scratch *s) { return s->vae->profile ? sld_time_now() : 0.0; }
static void vadd(scratch *s, sld_prof_class c, double t0, double gflop)
{
    if (s->vae->profile)
        sld_prof_add(&s->vae->prof, c, t0, gflop);
}

#define VTIMED(s, cls, gflop, stmt)                                                            \
    do {                                                                                       \
        double t0_ = vt0(s);                                                                   \
        stmt;                                                                                  \
        vadd(s, cls, t0_, gflop);                                                              \
    } while (0)

/* ResnetBlock2D without time embedding on x [B,cin,H,W] (capacity xcap
 * bytes; clobbered), with out (capacity ocap) as the second buffer. Returns
 * true when the result [B,cout,H,W] ends in x, false when in out.
 *
 * Memory: besides x and out, one temporary T (the GroupNorm output) and
 * nothing else at full resolution; each conv's oneDNN-layout copies go to
 * whichever of x, out, T is dead at that moment:
 *   with shortcut:    T = gn1(x); out = sc(x) [src in out, dst in x];
 *                     x = c1(T) [src in x, dst in T]; gn2 on x;
 *                     out += c2(x) [src in T, dst in x]          -> out
 *   without:          T = gn1(x); out = c1(T) [src in out, dst in T];
 *                     gn2 on out; x += c2(out) [src in T, dst in out] -> x
 * (a + b is the same float as b + a, so the sums match the plain order.) */
static bool resnet_fwd(scratch *s, int G, const resnet_p *r, float *x, size_t xcap, float *out,
                       size_t ocap, int B, int H, int W)
{
    const size_t HW = (size_t)H * W;
    const bool has_sc = r->sc.k != 0;
    size_t mark = s->a.used;
    size_t s1 = 0, d1 = 0, s2 = 0, d2 = 0, ss = 0, ds = 0;
    sld_pconv_scratch(r->c1.pc, B, H, W, &s1, &d1);
    sld_pconv_scratch(r->c2.pc, B, H, W, &s2, &d2);
    if (has_sc)
        sld_pconv_scratch(r->sc.pc, B, H, W, &ss, &ds);
    size_t tb = zmax((size_t)B * r->cin * HW * sizeof(float), zmax(d1, s2));
    float *t = sld_arena_floats(&s->a, (tb + sizeof(float) - 1) / sizeof(float));
    if (LIVE(s)) {
        VTIMED(s, SLD_PROF_NORM, 0.0,
               sld_group_norm(x, t, B, r->cin, (int)HW, G, VAE_EPS, r->n1.g, r->n1.b, true));
        if (has_sc) {
            conv_b(s, &r->sc, x, out, B, H, W, NULL, out, ocap, x, xcap);
            conv_b(s, &r->c1, t, x, B, H, W, NULL, x, xcap, t, tb);
            VTIMED(s, SLD_PROF_NORM, 0.0,
                   sld_group_norm(x, x, B, r->cout, (int)HW, G, VAE_EPS, r->n2.g, r->n2.b,
                                  true));
            conv_b(s, &r->c2, x, out, B, H, W, out, t, tb, x, xcap);
        } else {
            conv_b(s, &r->c1, t, out, B, H, W, NULL, out, ocap, t, tb);
            VTIMED(s, SLD_PROF_NORM, 0.0,
                   sld_group_norm(out, out, B, r->cout, (int)HW, G, VAE_EPS, r->n2.g, r->n2.b,
                                  true));
            conv_b(s, &r->c2, out, x, B, H, W, x, t, tb, out, ocap);
        }
    }
    s->a.used = mark;
    return !has_sc;
}

/* Single-head spatial self-attention with residual, in place on x. */
static void attn_fwd(scratch *s, int G, const attn_p *a, float *x, int B, int H, int W)
{
    const int C = a->C, N = H * W, M = B * N;
    const size_t MC = (size_t)M * C;
    size_t mark = s->a.used;
    float *g = sld_arena_floats(&s->a, MC), *t = sld_arena_floats(&s->a, MC), *q = sld_arena_floats(&s->a, MC),
          *k = sld_arena_floats(&s->a, MC), *v = sld_arena_floats(&s->a, MC);
    if (LIVE(s)) {
        const double lin = 2e-9 * M * (double)C * C, att = 4e-9 * B * (double)N * N * C;
        VTIMED(s, SLD_PROF_NORM, 0.0,
               sld_group_norm(x, g, B, C, N, G, VAE_EPS, a->gn.g, a->gn.b, false));
        VTIMED(s, SLD_PROF_ELT, 0.0, sld_nchw_to_nhwc(g, t, B, C, N));
        VTIMED(s, SLD_PROF_LINEAR, 3 * lin, sld_linear(t, a->q.w, a->q.b, q, M, C, C);
               sld_linear(t, a->k.w, a->k.b, k, M, C, C);
               sld_linear(t, a->v.w, a->v.b, v, M, C, C));
        VTIMED(s, SLD_PROF_ATTN, att,
               sld_attention(q, C, k, C, v, C, t, C, B, N, N, 1, C, 1.0f / sqrtf((float)C),
                             false));
        VTIMED(s, SLD_PROF_LINEAR, lin, sld_linear(t, a->o.w, a->o.b, q, M, C, C));
        VTIMED(s, SLD_PROF_ELT, 0.0, sld_nhwc_to_nchw(q, g, B, C, N); sld_add(x, g, MC));
    }
    s->a.used = mark;
}

static void tap(sld_vae *v, scratch *s, const char *name, const float *x, int B, int C, int H,
                int W)
{
    if (v->tap && LIVE(s))
        v->tap(v->tap_user, name, x, B, C, H, W);
}

/* latents [B,L,h,w] -> image [B,out,h*2^(n-1),...]. */
static void decode(sld_vae *v, scratch *s, const float *z, int B, int h, int w, float *img)
{
    s->vae = v;
    const sld_vae_config *c = &v->cfg;
    const int n = c->n_blocks, G = c->norm_num_groups, L = c->latent_channels;
    const int top = c->block_out_channels[n - 1];
    /* Largest activation: every level's input and output, and the upsampled
     * output, at its resolution. */
    size_t amax = (size_t)top * h * w;
    {
        int H = h, W = w, prev = top;
        for (int i = 0; i < n; i++) {
            int co = v->up[i].cout;
            size_t a = (size_t)(prev > co ? prev : co) * H * W;
            if (a > amax)
                amax = a;
            if (v->up[i].sample.k) {
                H *= 2;
                W *= 2;
                if ((size_t)co * H * W > amax)
                    amax = (size_t)co * H * W;
            }
            prev = co;
        }
    }
    const size_t cap = (size_t)B * amax * sizeof(float);
    float *pa = sld_arena_floats(&s->a, (size_t)B * amax), *pb = sld_arena_floats(&s->a, (size_t)B * amax);
    float *zq = sld_arena_floats(&s->a, (size_t)B * L * h * w);
    int H = h, W = w;
    if (LIVE(s)) {
        conv(s, &v->post_quant, z, zq, B, H, W, NULL);
        tap(v, s, "post_quant_conv", zq, B, L, H, W);
        conv(s, &v->d_in, zq, pa, B, H, W, NULL);
        tap(v, s, "decoder.conv_in", pa, B, top, H, W);
    }
    float *cur = pa, *spare = pb, *t;
#define RESNET(r)                                                                              \
    do {                                                                                       \
        if (!resnet_fwd(s, G, (r), cur, cap, spare, cap, B, H, W)) {                           \
            t = cur;                                                                           \
            cur = spare;                                                                       \
            spare = t;                                                                         \
        }                                                                                      \
    } while (0)
    RESNET(&v->d_mid.r0);
    attn_fwd(s, G, &v->d_mid.a, cur, B, H, W);
    RESNET(&v->d_mid.r1);
    tap(v, s, "decoder.mid_block", cur, B, top, H, W);
    int C = top;
    char name[64];
    for (int i = 0; i < n; i++) {
        const block_p *b = &v->up[i];
        for (int j = 0; j < b->n_res; j++)
            RESNET(&b->res[j]);
        C = b->cout;
        if (b->sample.k) {
            /* the upsampled input's copy goes over cur (read already), the
             * output's over the upsampled input (read by then) */
            if (LIVE(s)) {
                VTIMED(s, SLD_PROF_ELT, 0.0,
                       sld_upsample_nearest(cur, spare, B, C, H, W, 2 * H, 2 * W));
                conv_b(s, &b->sample, spare, cur, B, 2 * H, 2 * W, NULL, cur, cap, spare, cap);
            }
            H *= 2;
            W *= 2;
        }
        snprintf(name, sizeof name, "decoder.up_blocks.%d", i);
        tap(v, s, name, cur, B, C, H, W);
    }
    if (LIVE(s)) {
        VTIMED(s, SLD_PROF_NORM, 0.0,
               sld_group_norm(cur, spare, B, C, H * W, G, VAE_EPS, v->d_norm.g, v->d_norm.b,
                              true));
        conv_b(s, &v->d_out, spare, img, B, H, W, NULL, cur, cap, spare, cap);
    }
}

/* image [B,in,H,W] -> *mom (arena) [B,2L,h,w]. */
static void encode(sld_vae *v, scratch *s, const float *x, int B, int H0, int W0, float **mom,
                   int *ho, int *wo)
{
    s->vae = v;
    const sld_vae_config *c = &v->cfg;
    const int n = c->n_blocks, G = c->norm_num_groups, L = c->latent_channels;
    size_t amax = 0;
    {
        int H = H0, W = W0, prev = c->block_out_channels[0];
        for (int i = 0; i < n; i++) {
            int co = v->down[i].cout;
            size_t a = (size_t)(prev > co ? prev : co) * H * W;
            if (a > amax)
                amax = a;
            if (v->down[i].sample.k) {
                H = (H - 2) / 2 + 1;
                W = (W - 2) / 2 + 1;
            }
            prev = co;
        }
    }
    const size_t cap = (size_t)B * amax * sizeof(float);
    float *pa = sld_arena_floats(&s->a, (size_t)B * amax), *pb = sld_arena_floats(&s->a, (size_t)B * amax);
    int H = H0, W = W0;
    if (LIVE(s))
        conv_b(s, &v->e_in, x, pa, B, H, W, NULL, pa, cap, pb, cap);
    float *cur = pa, *spare = pb, *t;
    int C = c->block_out_channels[0];
    for (int i = 0; i < n; i++) {
        const block_p *b = &v->down[i];
        for (int j = 0; j < b->n_res; j++)
            RESNET(&b->res[j]);
        C = b->cout;
        if (b->sample.k) {
            /* diffusers Downsample2D(padding=0): pad right/bottom by one, then
             * a 3x3 stride-2 conv. */
            sld_conv2d_desc d = {.B = B, .C_in = C, .H = H, .W = W, .C_out = C, .kh = 3,
                                 .kw = 3, .stride = 2, .pad_b = 1, .pad_r = 1};
            int Ho, Wo;
            sld_conv2d_out_hw(&d, &Ho, &Wo);
            if (LIVE(s))
                conv_b(s, &b->sample, cur, spare, B, H, W, NULL, spare, cap, cur, cap);
            t = cur;
            cur = spare;
            spare = t;
            H = Ho;
            W = Wo;
        }
    }
    RESNET(&v->e_mid.r0);
    attn_fwd(s, G, &v->e_mid.a, cur, B, H, W);
    RESNET(&v->e_mid.r1);
#undef RESNET
    float *t2 = sld_arena_floats(&s->a, (size_t)B * 2 * L * H * W);
    float *m = sld_arena_floats(&s->a, (size_t)B * 2 * L * H * W);
    if (LIVE(s)) {
        VTIMED(s, SLD_PROF_NORM, 0.0,
               sld_group_norm(cur, spare, B, C, H * W, G, VAE_EPS, v->e_norm.g, v->e_norm.b,
                              true));
        conv(s, &v->e_out, spare, t2, B, H, W, NULL);
        conv(s, &v->quant, t2, m, B, H, W, NULL);
    }
    *mom = m;
    *ho = H;
    *wo = W;
}

/* Makes the arena cover (B,h,w) for one pass; dims[3] remembers the largest. */
static sld_status ensure(sld_vae *v, bool enc, int B, int h, int w, sld_error *err)
{
    int *d = enc ? v->plan_enc : v->plan_dec;
    if (v->s.a.base && B <= d[0] && h <= d[1] && w <= d[2])
        return SLD_OK;
    int nB = B > d[0] ? B : d[0], nh = h > d[1] ? h : d[1], nw = w > d[2] ? w : d[2];
    scratch p = {.a = {.plan = true}};
    int ho, wo;
    float *m;
    if (enc)
        encode(v, &p, NULL, nB, nh, nw, &m, &ho, &wo);
    else
        decode(v, &p, NULL, nB, nh, nw, NULL);
    d[0] = nB;
    d[1] = nh;
    d[2] = nw;
    if (p.a.peak <= v->s.a.cap)
        return SLD_OK;
    sld_free(v->s.a.base);
    memset(&v->s, 0, sizeof v->s);
    v->s.a.base = sld_malloc_aligned(p.a.peak);
    if (!v->s.a.base) {
        memset(v->plan_enc, 0, sizeof v->plan_enc);
        memset(v->plan_dec, 0, sizeof v->plan_dec);
        return sld_err(err, SLD_ERR_NOMEM, "vae: out of memory for %zu MiB of activations",
                       p.a.peak >> 20);
    }
    v->s.a.cap = p.a.peak;
    /* The other pass's plan still fits: the arena only grew. */
    return SLD_OK;
}

/* With a profile: closes the pass's figures and logs them. */
static void prof_log(sld_vae *v, const char *pass, double t0, int B, int h, int w)
{
    if (!v->profile)
        return;
    v->prof.total = sld_time_now() - t0;
    v->prof.forwards = 1;
    char line[640];
    sld_prof_format(&v->prof, line, sizeof line);
    sld_log(SLD_LOG_INFO, "vae %s profile B=%d %dx%d: %s", pass, B, h, w, line);
}

const sld_prof *sld_vae_profile(const sld_vae *v) { return v->profile ? &v->prof : NULL; }

sld_status sld_vae_decode(sld_vae *v, const float *latents, int B, int h, int w, float *image,
                          sld_error *err)
{
    if (B < 1 || h < 1 || w < 1 || !latents || !image)
        return sld_err(err, SLD_ERR_INVALID_ARG, "vae decode: bad arguments (B=%d, %dx%d)", B,
                       h, w);
    sld_status st = ensure(v, false, B, h, w, err);
    if (st)
        return st;
    v->s.a.used = 0;
    v->s.a.overflow = false;
    v->run_st = SLD_OK;
    v->run_err = err;
    memset(&v->prof, 0, sizeof v->prof);
    double t0 = v->profile ? sld_time_now() : 0.0;
    decode(v, &v->s, latents, B, h, w, image);
    v->run_err = NULL;
    prof_log(v, "decode", t0, B, h, w);
    if (v->s.a.overflow)
        return sld_err(err, SLD_ERR_INTERNAL, "vae decode: activation plan too small");
    if (v->run_st) {
        sld_err_prefix(err, "vae decode");
        return v->run_st;
    }
    return SLD_OK;
}

sld_status sld_vae_encode(sld_vae *v, const float *image, int B, int H, int W, float *mean,
                          float *logvar, sld_error *err)
{
    if (!v->have_enc)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "vae encode: the model has no encoder weights");
    if (B < 1 || H < 1 || W < 1 || !image || !mean || !logvar)
        return sld_err(err, SLD_ERR_INVALID_ARG, "vae encode: bad arguments (B=%d, %dx%d)", B,
                       H, W);
    sld_status st = ensure(v, true, B, H, W, err);
    if (st)
        return st;
    const int L = v->cfg.latent_channels;
    v->s.a.used = 0;
    v->s.a.overflow = false;
    int ho = 0, wo = 0;
    float *mom = NULL;
    v->run_st = SLD_OK;
    v->run_err = err;
    memset(&v->prof, 0, sizeof v->prof);
    double t0 = v->profile ? sld_time_now() : 0.0;
    encode(v, &v->s, image, B, H, W, &mom, &ho, &wo);
    v->run_err = NULL;
    prof_log(v, "encode", t0, B, H, W);
    if (v->s.a.overflow || !mom)
        return sld_err(err, SLD_ERR_INTERNAL, "vae encode: activation plan too small");
    if (v->run_st) {
        sld_err_prefix(err, "vae encode");
        return v->run_st;
    }
    size_t per = (size_t)L * ho * wo;
    for (int b = 0; b < B; b++) {
        memcpy(mean + b * per, mom + (size_t)b * 2 * per, per * sizeof *mean);
        const float *lv = mom + (size_t)b * 2 * per + per;
        for (size_t i = 0; i < per; i++)
            logvar[b * per + i] = fminf(fmaxf(lv[i], -30.0f), 20.0f);
    }
    return SLD_OK;
}

size_t sld_vae_arena_bytes(const sld_vae *v) { return v->s.a.cap; }

void sld_vae_trim(sld_vae *v)
{
    sld_pack_ws_trim(v->ws);
    sld_free(v->s.a.base);
    memset(&v->s, 0, sizeof v->s);
    memset(v->plan_enc, 0, sizeof v->plan_enc);
    memset(v->plan_dec, 0, sizeof v->plan_dec);
}
