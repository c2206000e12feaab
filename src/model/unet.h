/*
 * unet.h — UNet2DConditionModel (diffusers) for SD 1.x / 2.x, built from
 * unet/config.json or inferred from a checkpoint's shapes.
 */
#ifndef SLD_UNET_H
#define SLD_UNET_H

#include "io/json.h"
#include "model/weights.h"
#include "ops/profile.h"

#define SLD_UNET_MAX_BLOCKS 8

#ifndef SLD_TENSOR_LIST_FN_DEFINED
#define SLD_TENSOR_LIST_FN_DEFINED
/* Receives one parameter name and its shape (ndim dims) when a network lists
 * what a config needs. */
typedef void (*sld_tensor_list_fn)(void *user, const char *name, int ndim, const int64_t *shape);
#endif

typedef struct {
    int in_channels, out_channels;
    int n_blocks;                                  /* len(block_out_channels) */
    int block_out_channels[SLD_UNET_MAX_BLOCKS];
    int down_has_attn[SLD_UNET_MAX_BLOCKS];        /* CrossAttnDownBlock2D vs DownBlock2D */
    int up_has_attn[SLD_UNET_MAX_BLOCKS];          /* in up-block order */
    int heads[SLD_UNET_MAX_BLOCKS];                /* per down block (attention_head_dim) */
    int heads_is_list;                             /* attention_head_dim given as a list */
    int layers_per_block;
    int transformer_layers;                        /* transformer_layers_per_block (1) */
    int norm_num_groups;
    float norm_eps;
    int cross_attention_dim;
    int use_linear_projection;
    int upcast_attention;
    int flip_sin_to_cos;
    float freq_shift;
    int sample_size;
    int precision; /* sld_precision of convs and token linears; 0 = fp32 (set by the loader) */
    int conv_algo; /* sld_conv_algo: 0 = auto (Winograd where it pays), 1 = direct only */
} sld_unet_config;

typedef struct sld_unet sld_unet;

sld_status sld_unet_config_from_json(sld_unet_config *c, const sld_json *j, sld_error *err);
/* For single files: infer widths, blocks, attention, linear projection and
 * cross-attention width from the (already renamed, diffusers-named) weights;
 * arch gives the head convention (SD1: 8 heads; SD2: 64-wide heads). */
sld_status sld_unet_config_infer(sld_unet_config *c, const sld_weights *w, int arch,
                                 sld_error *err);
sld_status sld_unet_load(sld_unet **out, const sld_unet_config *c, sld_weights *w,
                         sld_error *err);
void sld_unet_free(sld_unet *u);
const sld_unet_config *sld_unet_cfg(const sld_unet *u);

/* sample [B,4,h,w], timesteps [B] (float), ctx [B,77,cross_attention_dim]
 * -> out [B,4,h,w]. Any h, w >= 1. Scratch comes from an internal arena
 * sized for the largest (B,h,w) seen so far. */
sld_status sld_unet_forward(sld_unet *u, const float *sample, int B, int h, int w,
                            const float *timesteps, const float *ctx, int n_ctx, float *out,
                            sld_error *err);

/* Debug/test hook: when set, called with each module output diffusers'
 * goldens name (time_proj [B,C0], time_embedding [B,4*C0], conv_in,
 * down_blocks.i, mid_block, up_blocks.i, conv_norm_out before SiLU) as
 * x [B,C,H,W] (H = W = 1 for the embeddings). NULL clears it. */
typedef void (*sld_unet_tap_fn)(void *user, const char *name, const float *x, int B, int C,
                                int H, int W);
void sld_unet_set_tap(sld_unet *u, sld_unet_tap_fn fn, void *user);
/* The last forward's time and work per op class (ops/profile.h), or NULL
 * when SLD_PROFILE was not set at load. Valid until the next forward. */
const sld_prof *sld_unet_profile(const sld_unet *u);
/* Lists every parameter a config needs (diffusers name, rank, shape) in
 * binding order; used by sld_make_random and tests. */
sld_status sld_unet_tensors(const sld_unet_config *c, sld_tensor_list_fn fn, void *user,
                            sld_error *err);
/* Bytes of the activation arena currently reserved. */
size_t sld_unet_arena_bytes(const sld_unet *u);
/* Frees the activation arena and the packed ops' workspace, Winograd
 * scratchpad included (the next forward plans and grows them again): lets
 * the VAE decode run without the UNet's scratch resident. */
void sld_unet_trim(sld_unet *u);

#endif /* SLD_UNET_H */
