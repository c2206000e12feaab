/*
 * ckpt_map.c — LDM single-file names -> diffusers/transformers names (see
 * ckpt_map.h and tests/fixtures/README section 1 for the block formulas).
 *
 * Invariant: the mapping is purely by name (plus reshaping 1x1 convs to
 * linears and slicing OpenCLIP's fused in_proj); shapes are checked later
 * by the networks when they bind, so a bad file fails with the diffusers
 * name and both shapes.
 */
#include "model/ckpt_map.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNET_PFX "model.diffusion_model."
#define VAE_PFX "first_stage_model."
#define SD1_PFX "cond_stage_model.transformer."
#define SD2_PFX "cond_stage_model.model."

/* ---- small parsing helpers -------------------------------------------------- */

/* If *p starts with lit, advances past it and returns true. */
static bool eat(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n))
        return false;
    *p += n;
    return true;
}

/* Reads a decimal index followed by '.', advancing *p. */
static bool eat_index(const char **p, int *v)
{
    const char *s = *p;
    long x = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (*s++ - '0');
        if (x > 1000000)
            return false;
    }
    if (*s != '.')
        return false;
    *v = (int)x;
    *p = s + 1;
    return true;
}

static bool put(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool put(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* LDM ResBlock parts -> diffusers ResnetBlock2D parts ("in_layers.0.weight"
 * -> "norm1.weight"). NULL when unknown. */
static const char *unet_resnet_part(const char *s, const char **rest)
{
    static const char *const map[][2] = {
        {"in_layers.0.", "norm1."},         {"in_layers.2.", "conv1."},
        {"emb_layers.1.", "time_emb_proj."}, {"out_layers.0.", "norm2."},
        {"out_layers.3.", "conv2."},        {"skip_connection.", "conv_shortcut."},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *p = s;
        if (eat(&p, map[i][0])) {
            *rest = p;
            return map[i][1];
        }
    }
    return NULL;
}

static bool unet_resnet(const char *head, const char *s, char *out, size_t cap)
{
    const char *rest;
    const char *part = unet_resnet_part(s, &rest);
    return part && put(out, cap, "%s%s%s", head, part, rest);
}

bool sld_ckpt_unet_name(const char *ldm, int lpb, char *out, size_t cap)
{
    const char *p = ldm;
    char head[96];
    int n, l;
    if (lpb < 1)
        return false;
    if (eat(&p, "time_embed.0."))
        return put(out, cap, "time_embedding.linear_1.%s", p);
    if (eat(&p, "time_embed.2."))
        return put(out, cap, "time_embedding.linear_2.%s", p);
    if (eat(&p, "out.0."))
        return put(out, cap, "conv_norm_out.%s", p);
    if (eat(&p, "out.2."))
        return put(out, cap, "conv_out.%s", p);
    if (eat(&p, "middle_block.")) {
        if (!eat_index(&p, &n))
            return false;
        if (n == 1)
            return put(out, cap, "mid_block.attentions.0.%s", p);
        if (n != 0 && n != 2)
            return false;
        snprintf(head, sizeof head, "mid_block.resnets.%d.", n / 2);
        return unet_resnet(head, p, out, cap);
    }
    if (eat(&p, "input_blocks.")) {
        if (!eat_index(&p, &n) || !eat_index(&p, &l))
            return false;
        if (n == 0)
            return l == 0 && put(out, cap, "conv_in.%s", p);
        int b = (n - 1) / (lpb + 1), j = (n - 1) % (lpb + 1);
        if (j == lpb) /* the level's downsampler */
            return l == 0 && eat(&p, "op.") &&
                   put(out, cap, "down_blocks.%d.downsamplers.0.conv.%s", b, p);
        if (l == 1)
            return put(out, cap, "down_blocks.%d.attentions.%d.%s", b, j, p);
        if (l != 0)
            return false;
        snprintf(head, sizeof head, "down_blocks.%d.resnets.%d.", b, j);
        return unet_resnet(head, p, out, cap);
    }
    if (eat(&p, "output_blocks.")) {
        if (!eat_index(&p, &n) || !eat_index(&p, &l))
            return false;
        int b = n / (lpb + 1), j = n % (lpb + 1);
        if (l == 0) {
            snprintf(head, sizeof head, "up_blocks.%d.resnets.%d.", b, j);
            return unet_resnet(head, p, out, cap);
        }
        /* the upsampler sits after the attention when the level has one */
        if ((l == 1 || l == 2) && j == lpb && eat(&p, "conv."))
            return put(out, cap, "up_blocks.%d.upsamplers.0.conv.%s", b, p);
        if (l == 1)
            return put(out, cap, "up_blocks.%d.attentions.%d.%s", b, j, p);
        return false;
    }
    return false;
}

static bool vae_resnet(const char *head, const char *s, char *out, size_t cap)
{
    const char *p = s;
    if (eat(&p, "nin_shortcut."))
        return put(out, cap, "%sconv_shortcut.%s", head, p);
    if (eat(&p, "norm1.") || eat(&p, "norm2.") || eat(&p, "conv1.") || eat(&p, "conv2."))
        return put(out, cap, "%s%s", head, s);
    return false;
}

bool sld_ckpt_vae_name(const char *ldm, int n_up, char *out, size_t cap)
{
    const char *p = ldm;
    char head[96];
    int i, j;
    if (eat(&p, "quant_conv.") || eat(&p, "post_quant_conv."))
        return put(out, cap, "%s", ldm);
    const char *side;
    if (eat(&p, "encoder."))
        side = "encoder";
    else if (eat(&p, "decoder."))
        side = "decoder";
    else
        return false;
    const char *q = p;
    if (eat(&q, "conv_in.") || eat(&q, "conv_out."))
        return put(out, cap, "%s.%s", side, p);
    if (eat(&p, "norm_out."))
        return put(out, cap, "%s.conv_norm_out.%s", side, p);
    int k = eat(&p, "mid.block_1.") ? 0 : eat(&p, "mid.block_2.") ? 1 : -1;
    if (k >= 0) {
        snprintf(head, sizeof head, "%s.mid_block.resnets.%d.", side, k);
        return vae_resnet(head, p, out, cap);
    }
    if (eat(&p, "mid.attn_1.")) {
        static const char *const map[][2] = {
            {"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."},
            {"v.", "to_v."},          {"proj_out.", "to_out.0."},
        };
        for (size_t t = 0; t < sizeof map / sizeof map[0]; t++) {
            q = p;
            if (eat(&q, map[t][0]))
                return put(out, cap, "%s.mid_block.attentions.0.%s%s", side, map[t][1], q);
        }
        return false;
    }
    bool enc = side[0] == 'e';
    if (!eat(&p, enc ? "down." : "up.") || !eat_index(&p, &i))
        return false;
    int lvl = enc ? i : n_up - 1 - i; /* LDM numbers decoder levels from the bottom */
    if (lvl < 0)
        return false;
    const char *blk = enc ? "down_blocks" : "up_blocks";
    if (eat(&p, "block.")) {
        if (!eat_index(&p, &j))
            return false;
        snprintf(head, sizeof head, "%s.%s.%d.resnets.%d.", side, blk, lvl, j);
        return vae_resnet(head, p, out, cap);
    }
    if (eat(&p, enc ? "downsample.conv." : "upsample.conv."))
        return put(out, cap, "%s.%s.%d.%s.0.conv.%s", side, blk, lvl,
                   enc ? "downsamplers" : "upsamplers", p);
    return false;
}

/* ---- detection -------------------------------------------------------------- */

int sld_ckpt_detect(const sld_st_file *f)
{
    if (sld_st_find(f, SD1_PFX "text_model.embeddings.token_embedding.weight") ||
        sld_st_find(f, SD1_PFX "embeddings.token_embedding.weight"))
        return SLD_ARCH_SD1;
    if (sld_st_find(f, SD2_PFX "token_embedding.weight"))
        return SLD_ARCH_SD2;
    return 0;
}

/* ---- text encoder ----------------------------------------------------------- */

static sld_status add_same_shape(sld_weights *w, const char *name, const sld_st_tensor *t,
                                 sld_error *err)
{
    return sld_weights_add_view(w, name, t, 0, t->ndim, t->shape, err);
}

/* One OpenCLIP resblock tensor (name after "transformer.resblocks.K."). */
static sld_status map_openclip_block(sld_weights *w, const sld_st_tensor *t, int k,
                                     const char *s, int *unmapped, sld_error *err)
{
    static const char *const map[][2] = {
        {"ln_1.", "layer_norm1."},         {"ln_2.", "layer_norm2."},
        {"attn.out_proj.", "self_attn.out_proj."}, {"mlp.c_fc.", "mlp.fc1."},
        {"mlp.c_proj.", "mlp.fc2."},
    };
    char name[256];
    const char *p = s;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        p = s;
        if (eat(&p, map[i][0])) {
            snprintf(name, sizeof name, "text_model.encoder.layers.%d.%s%s", k, map[i][1], p);
            return add_same_shape(w, name, t, err);
        }
    }
    bool is_w = !strcmp(s, "attn.in_proj_weight"), is_b = !strcmp(s, "attn.in_proj_bias");
    if (!is_w && !is_b) {
        (*unmapped)++;
        return SLD_OK;
    }
    /* fused [3C,C] / [3C]: rows q, then k, then v */
    int64_t rows = t->ndim >= 1 ? t->shape[0] : 0;
    if ((is_w && (t->ndim != 2 || rows % 3 || rows / 3 != t->shape[1])) ||
        (is_b && (t->ndim != 1 || rows % 3)) || rows == 0)
        return sld_err(err, SLD_ERR_SHAPE, "%s: '%s' has a shape that is not %s",
                       sld_weights_label(w), t->name, is_w ? "[3C,C]" : "[3C]");
    const int64_t C = rows / 3;
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.self_attn.%s.%s", k, qkv[i],
                 is_w ? "weight" : "bias");
        int64_t shape[2] = {C, C};
        size_t off = (size_t)i * (size_t)C * (is_w ? (size_t)C : 1);
        sld_status st = sld_weights_add_view(w, name, t, off, is_w ? 2 : 1, shape, err);
        if (st)
            return st;
    }
    return SLD_OK;
}

sld_status sld_ckpt_map_text(sld_weights *w, const sld_st_file *f, int arch, int *n_blocks,
                             sld_error *err)
{
    const char *pfx = arch == SLD_ARCH_SD2 ? SD2_PFX : SD1_PFX;
    const size_t pl = strlen(pfx);
    int max_block = -1, unmapped = 0;
    char name[256];
    for (int i = 0; i < sld_st_count(f); i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        if (strncmp(t->name, pfx, pl))
            continue;
        const char *p = t->name + pl;
        sld_status st = SLD_OK;
        int k;
        if (arch == SLD_ARCH_SD1) {
            if (strstr(p, "position_ids")) /* an int64 buffer, not a weight */
                continue;
            const char *q = p;
            bool has_tm = eat(&q, "text_model.");
            if (eat(&q, "encoder.layers.") && eat_index(&q, &k) && k > max_block)
                max_block = k;
            snprintf(name, sizeof name, "%s%s", has_tm ? "" : "text_model.", p);
            st = add_same_shape(w, name, t, err);
        } else if (eat(&p, "transformer.resblocks.")) {
            if (!eat_index(&p, &k))
                unmapped++;
            else {
                if (k > max_block)
                    max_block = k;
                st = map_openclip_block(w, t, k, p, &unmapped, err);
            }
        } else if (!strcmp(p, "token_embedding.weight")) {
            st = add_same_shape(w, "text_model.embeddings.token_embedding.weight", t, err);
        } else if (!strcmp(p, "positional_embedding")) {
            st = add_same_shape(w, "text_model.embeddings.position_embedding.weight", t, err);
        } else if (eat(&p, "ln_final.")) {
            snprintf(name, sizeof name, "text_model.final_layer_norm.%s", p);
            st = add_same_shape(w, name, t, err);
        } else {
            unmapped++; /* text_projection, logit_scale, attn_mask: unused by SD */
        }
        if (st)
            return st;
    }
    if (max_block < 0)
        return sld_err(err, SLD_ERR_FORMAT, "%s: no text encoder blocks under '%s'",
                       sld_st_path(f), pfx);
    if (unmapped)
        sld_log(SLD_LOG_INFO, "%s: %d text encoder tensors not used by Stable Diffusion",
                sld_st_path(f), unmapped);
    *n_blocks = max_block + 1;
    return SLD_OK;
}

sld_status sld_ckpt_text_config_infer(sld_clip_text_config *c, const sld_weights *w, int arch,
                                      int n_blocks, sld_error *err)
{
    int64_t s[SLD_ST_MAX_DIMS];
    memset(c, 0, sizeof *c);
    if (sld_weights_shape(w, "text_model.embeddings.token_embedding.weight", s) != 2)
        return sld_err(err, SLD_ERR_SHAPE, "%s: token embedding is missing or not 2-D",
                       sld_weights_label(w));
    c->vocab_size = (int)s[0];
    c->hidden = (int)s[1];
    if (sld_weights_shape(w, "text_model.embeddings.position_embedding.weight", s) != 2)
        return sld_err(err, SLD_ERR_SHAPE, "%s: position embedding is missing or not 2-D",
                       sld_weights_label(w));
    c->max_pos = (int)s[0];
    if (sld_weights_shape(w, "text_model.encoder.layers.0.mlp.fc1.weight", s) != 2)
        return sld_err(err, SLD_ERR_SHAPE, "%s: 'text_model.encoder.layers.0.mlp.fc1.weight' "
                       "is missing or not 2-D", sld_weights_label(w));
    c->intermediate = (int)s[0];
    c->layers = arch == SLD_ARCH_SD2 ? n_blocks - 1 : n_blocks;
    c->gelu_erf = arch == SLD_ARCH_SD2;
    c->ln_eps = 1e-5f;
    if (c->hidden < 64 || c->hidden % 64)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: cannot infer the head count of a %d-wide text encoder (not a "
                       "multiple of 64); pass a diffusers folder with matching configs as "
                       "config_dir (--config DIR on the command line)",
                       sld_weights_label(w), c->hidden);
    c->heads = c->hidden / 64;
    if (c->layers < 1)
        return sld_err(err, SLD_ERR_FORMAT, "%s: the text encoder has too few blocks (%d)",
                       sld_weights_label(w), n_blocks);
    return SLD_OK;
}

/* ---- UNet and VAE ----------------------------------------------------------- */

static void log_unmapped(const sld_st_file *f, const char *what, int n, const char *first)
{
    if (n)
        sld_log(SLD_LOG_WARN, "%s: %d %s tensors have no diffusers name (first: '%s')",
                sld_st_path(f), n, what, first);
}

sld_status sld_ckpt_map_unet(sld_weights *w, const sld_st_file *f, sld_error *err)
{
    const size_t pl = strlen(UNET_PFX);
    /* layers_per_block: the first downsampler is input_blocks.{lpb+1}.0.op */
    int lpb = -1;
    for (int n = 2; n < 64 && lpb < 0; n++) {
        char name[96];
        snprintf(name, sizeof name, UNET_PFX "input_blocks.%d.0.op.weight", n);
        if (sld_st_find(f, name))
            lpb = n - 1;
    }
    if (lpb < 0)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: no UNet downsampler ('" UNET_PFX "input_blocks.N.0.op.weight'); "
                       "not an SD 1.x/2.x checkpoint",
                       sld_st_path(f));
    int unmapped = 0;
    const char *first = "";
    char name[256];
    for (int i = 0; i < sld_st_count(f); i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        if (strncmp(t->name, UNET_PFX, pl))
            continue;
        if (!sld_ckpt_unet_name(t->name + pl, lpb, name, sizeof name)) {
            if (!unmapped++)
                first = t->name;
            continue;
        }
        sld_status st = add_same_shape(w, name, t, err);
        if (st)
            return st;
    }
    log_unmapped(f, "UNet", unmapped, first);
    return SLD_OK;
}

sld_status sld_ckpt_map_vae(sld_weights *w, const sld_st_file *f, sld_error *err)
{
    const size_t pl = strlen(VAE_PFX);
    int n_up = 0;
    for (int i = 0; i < sld_st_count(f); i++) {
        const char *p = sld_st_at(f, i)->name;
        int k;
        if (eat(&p, VAE_PFX "decoder.up.") && eat_index(&p, &k) && k + 1 > n_up)
            n_up = k + 1;
    }
    if (!n_up)
        return sld_err(err, SLD_ERR_FORMAT, "%s: no VAE decoder ('" VAE_PFX "decoder.up.*')",
                       sld_st_path(f));
    int unmapped = 0;
    const char *first = "";
    char name[256];
    for (int i = 0; i < sld_st_count(f); i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        if (strncmp(t->name, VAE_PFX, pl))
            continue;
        if (!sld_ckpt_vae_name(t->name + pl, n_up, name, sizeof name)) {
            if (!unmapped++)
                first = t->name;
            continue;
        }
        sld_status st;
        /* LDM's mid attention uses 1x1 convs; diffusers uses Linear [C,C] */
        if (strstr(name, ".mid_block.attentions.0.to_") && strstr(name, ".weight") &&
            t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1) {
            int64_t shape[2] = {t->shape[0], t->shape[1]};
            st = sld_weights_add_view(w, name, t, 0, 2, shape, err);
        } else {
            st = add_same_shape(w, name, t, err);
        }
        if (st)
            return st;
    }
    log_unmapped(f, "VAE", unmapped, first);
    return SLD_OK;
}
