/*
 * vae.h — AutoencoderKL (diffusers): decoder and encoder.
 */
#ifndef SLD_VAE_H
#define SLD_VAE_H

#include "io/json.h"
#include "model/weights.h"
#include "ops/profile.h"

#define SLD_VAE_MAX_BLOCKS 8

#ifndef SLD_TENSOR_LIST_FN_DEFINED
#define SLD_TENSOR_LIST_FN_DEFINED
/* Receives one parameter name and its shape (ndim dims) when a network lists
 * what a config needs. */
typedef void (*sld_tensor_list_fn)(void *user, const char *name, int ndim, const int64_t *shape);
#endif

typedef struct {
    int in_channels, out_channels, latent_channels;
    int n_blocks;
    int block_out_channels[SLD_VAE_MAX_BLOCKS];
    int layers_per_block;
    int norm_num_groups;
    float scaling_factor; /* 0.18215 when the config has none */
    int sample_size;
    int precision; /* sld_precision of the convolutions; 0 = fp32 (set by the loader) */
    int conv_algo; /* sld_conv_algo: 0 = auto (Winograd where it pays), 1 = direct only */
} sld_vae_config;

typedef struct sld_vae sld_vae;

sld_status sld_vae_config_from_json(sld_vae_config *c, const sld_json *j, sld_error *err);
sld_status sld_vae_config_infer(sld_vae_config *c, const sld_weights *w, sld_error *err);
sld_status sld_vae_load(sld_vae **out, const sld_vae_config *c, sld_weights *w, sld_error *err);
void sld_vae_free(sld_vae *v);
const sld_vae_config *sld_vae_cfg(const sld_vae *v);

/* latents [B,4,h,w] (already divided by scaling_factor) -> image [B,3,8h,8w]
 * in about [-1,1]. */
sld_status sld_vae_decode(sld_vae *v, const float *latents, int B, int h, int w, float *image,
                          sld_error *err);
/* image [B,3,H,W] -> mean, logvar [B,4,H/8,W/8] (logvar clamped to [-30,20]). */
sld_status sld_vae_encode(sld_vae *v, const float *image, int B, int H, int W, float *mean,
                          float *logvar, sld_error *err);

/* Debug/test hook: called with module outputs named as diffusers' goldens
 * (post_quant_conv, decoder.conv_in, decoder.mid_block, decoder.up_blocks.i)
 * as x [B,C,H,W]. NULL clears it. */
typedef void (*sld_vae_tap_fn)(void *user, const char *name, const float *x, int B, int C,
                               int H, int W);
void sld_vae_set_tap(sld_vae *v, sld_vae_tap_fn fn, void *user);
/* The last pass's (decode or encode) time and work per op class
 * (ops/profile.h), or NULL when SLD_PROFILE was not set at load. */
const sld_prof *sld_vae_profile(const sld_vae *v);
/* Lists every parameter (encoder then decoder) a config needs. */
sld_status sld_vae_tensors(const sld_vae_config *c, sld_tensor_list_fn fn, void *user,
                           sld_error *err);
/* Bytes of the activation arena currently reserved. */
size_t sld_vae_arena_bytes(const sld_vae *v);

/* Frees the activation arena (the next call plans a new one). */
void sld_vae_trim(sld_vae *v);

#endif /* SLD_VAE_H */
