/*
 * ckpt_map.h — the one name-conversion layer: original LDM / CompVis
 * single-file checkpoints (SD 1.x and SD 2.x) -> the diffusers and
 * transformers tensor names the networks bind.
 *
 *   cond_stage_model.transformer.text_model.*  (SD1, HF CLIP)  -> text_model.*
 *   cond_stage_model.model.*                   (SD2, OpenCLIP) -> text_model.*
 *       (fused attn.in_proj_{weight,bias} split into q/k/v views by rows)
 *   model.diffusion_model.*                    (UNet)          -> conv_in, down_blocks...
 *   first_stage_model.*                        (VAE)           -> encoder/decoder...
 *
 * Every entry is a view into the mmap'd file (no copies here); the weight
 * store converts F16/BF16 once when a network asks for it.
 */
#ifndef SLD_CKPT_MAP_H
#define SLD_CKPT_MAP_H

#include "model/clip_text.h"
#include "model/weights.h"

/* SLD_ARCH_SD1 / SLD_ARCH_SD2 from the text-encoder tensor names, or 0 when
 * the file is neither. */
int sld_ckpt_detect(const sld_st_file *f);

/* Adds the text encoder under transformers names. *n_blocks receives the
 * number of transformer blocks in the file (SD2 uses n_blocks - 1; the last
 * block is added too, so the loader can report it unused as diffusers does). */
sld_status sld_ckpt_map_text(sld_weights *w, const sld_st_file *f, int arch, int *n_blocks,
                             sld_error *err);
/* Text config from mapped weights: hidden/vocab/positions/intermediate from
 * shapes, heads = hidden / 64 (CLIP ViT-L/14 and OpenCLIP ViT-H both use
 * 64-wide heads), SD1 quick_gelu with all blocks, SD2 exact GELU with
 * n_blocks - 1 blocks. */
sld_status sld_ckpt_text_config_infer(sld_clip_text_config *c, const sld_weights *w, int arch,
                                      int n_blocks, sld_error *err);

/* Adds model.diffusion_model.* under UNet2DConditionModel names
 * (layers_per_block found from the position of the first downsampler). */
sld_status sld_ckpt_map_unet(sld_weights *w, const sld_st_file *f, sld_error *err);
/* Adds first_stage_model.* under AutoencoderKL names (mid-block attention
 * 1x1 conv weights registered as [C,C] linear views). */
sld_status sld_ckpt_map_vae(sld_weights *w, const sld_st_file *f, sld_error *err);

/* Pure name conversions (exposed for tests). ldm is the name without the
 * model.diffusion_model. / first_stage_model. prefix; lpb = layers_per_block,
 * n_up = number of decoder levels. Return false when the name has no
 * diffusers counterpart. */
bool sld_ckpt_unet_name(const char *ldm, int lpb, char *out, size_t cap);
bool sld_ckpt_vae_name(const char *ldm, int n_up, char *out, size_t cap);

#endif /* SLD_CKPT_MAP_H */
