/*
 * debug.h — `sld debug run`: one network on tensors named as the diffusers
 * arguments. sld_debug_run (debug.c) dispatches on the module name to these
 * per-module runners, each in the file of the module it runs.
 */
#ifndef SLD_PIPELINE_DEBUG_H
#define SLD_PIPELINE_DEBUG_H

#include "io/safetensors.h"
#include "pipeline/model.h"

/* Each reads its inputs from in, writes outputs to out_path. */
sld_status sld_debug_run_text_encoder(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                      sld_error *err);
sld_status sld_debug_run_unet(sld_ctx *c, const sld_st_file *in, const char *out_path,
                              sld_error *err);
sld_status sld_debug_run_vae_decode(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                    sld_error *err);
sld_status sld_debug_run_vae_encode(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                    sld_error *err);
sld_status sld_debug_run_clip_vision(sld_ctx *c, const sld_st_file *in, const char *out_path,
                                     sld_error *err);

#endif /* SLD_PIPELINE_DEBUG_H */
