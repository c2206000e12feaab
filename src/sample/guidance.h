/*
 * guidance.h — classifier-free guidance and Safe Latent Diffusion (Schramowski
 * et al. 2023, eqs. 3-8), element-wise, exactly as diffusers'
 * StableDiffusionPipelineSafe computes it in float32:
 *
 *     g   = eps_p - eps_u
 *     d   = eps_p - eps_s
 *     mu  = d >= lambda ? 0 : min(1, s_S * |d|)
 *     gs  = (eps_s - eps_u) * mu + s_m * nu            (nu: momentum, starts at 0)
 *     nu  = beta_m * nu + (1 - beta_m) * gs            (updated in warm-up too)
 *     if i >= delta: g = g - gs
 *     out = eps_u + s_g * g
 *
 * eps_u is the unconditional (or negative-prompt) prediction, eps_p the
 * prompt's, eps_s the safety concept's; i counts UNet evaluations of the loop
 * (PNDM's repeated first timestep counts). With N images per prompt the UNet
 * batch is [uncond x N, prompt x N, safety x N]: pass the three chunks with
 * n = N * latent size; the momentum is element-wise, hence per image.
 */
#ifndef SLD_GUIDANCE_H
#define SLD_GUIDANCE_H

#include "core/core.h"

/* 1 when safety guidance runs: s_S > 1 and cfg > 1 (diffusers'
 * enable_safety_guidance); the UNet batch then has 3 chunks, else 2 (or 1
 * without CFG: cfg <= 1 uses the prompt prediction alone). */
int sld_guidance_sld_active(float cfg, const sld_safety *s);
/* 1 when classifier-free guidance runs (cfg > 1). */
int sld_guidance_cfg_active(float cfg);

/* Momentum state of one loop: nu [n] (n = N images x latent size). */
typedef struct {
    float *mom;
    size_t n;
} sld_guidance_state;

/* Allocates a zeroed momentum buffer of n floats. */
sld_status sld_guidance_state_init(sld_guidance_state *st, size_t n, sld_error *err);
void sld_guidance_state_reset(sld_guidance_state *st); /* back to zero */
void sld_guidance_state_free(sld_guidance_state *st);  /* NULL-safe, idempotent */

/* Guided prediction out [n] for loop iteration i (out may alias an input).
 *   - cfg <= 1: out = eps_p (eps_u, eps_s unused).
 *   - CFG only (SLD inactive): out = eps_u + cfg * (eps_p - eps_u).
 *   - SLD active: eps_s and st (n floats) are required; st->mom is updated.
 * Returns SLD_ERR_INVALID_ARG when SLD is active and eps_s/st are missing or
 * st->n != n. */
sld_status sld_guidance_apply(const float *eps_u, const float *eps_p, const float *eps_s,
                              size_t n, int i, float cfg, const sld_safety *s,
                              sld_guidance_state *st, float *out, sld_error *err);

/* sld_guidance_apply plus its telemetry, in the same pass (same bits in out).
 * The n elements are n_images images of channels planes each (layout [N, C,
 * h, w]: hw = n / (n_images * channels)). When stats is not NULL it receives
 * stats[n_images] (step, image, sld, applied and the measured fields; step,
 * n_steps and timestep are left for the caller except step = i); when map is
 * not NULL it receives map[n_images, hw], the applied ||gamma|| at each
 * position (L2 over channels), 0 where gamma was not applied. Errors as
 * sld_guidance_apply, plus SLD_ERR_INVALID_ARG when n does not split. */
sld_status sld_guidance_apply_traced(const float *eps_u, const float *eps_p, const float *eps_s,
                                     size_t n, int n_images, int channels, int i, float cfg,
                                     const sld_safety *s, sld_guidance_state *st, float *out,
                                     sld_step_stats *stats, float *map, sld_error *err);

#endif /* SLD_GUIDANCE_H */
