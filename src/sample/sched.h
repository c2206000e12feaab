/*
 * sched.h — the noise schedulers of diffusers 0.31, configured from a
 * scheduler_config.json: PNDM (PLMS, skip_prk_steps), DDIM (eta), LMS
 * (order 4), Euler, Euler ancestral and DPM++ 2M (optionally Karras sigmas),
 * each with epsilon or v_prediction.
 *
 * Configuration follows XScheduler.from_config(json): keys present in the
 * file win, absent keys take the *chosen class's* defaults (timestep_spacing
 * "leading" for PNDM/DDIM, "linspace" for LMS/Euler/EulerA/DPM++).
 *
 * Loop (what a pipeline does; i counts UNet evaluations, so PNDM with N steps
 * makes N+1):
 *
 *     sld_sched *s;
 *     sld_sched_new(&s, &json, SLD_SAMPLER_DEFAULT, NULL, &err);
 *     sld_sched_set_timesteps(s, 50, &err);
 *     x = randn(n) * sld_sched_init_noise_sigma(s);
 *     for (int i = 0; i < sld_sched_n_iters(s); i++) {
 *         sld_sched_scale_input(s, i, x, x_in, n);
 *         eps = unet(x_in, sld_sched_timestep(s, i));      // + guidance
 *         sld_sched_step(s, i, eps, x, n, rng, NULL, &err);  // x updated in place
 *     }
 *     sld_sched_free(s);
 *
 * All tensor arithmetic is float32 in the order diffusers' torch code uses;
 * steps are called with i = 0, 1, 2, ... in order (multistep samplers keep
 * history; set_timesteps resets it). Multistep history buffers are allocated
 * on the first step (or by sld_sched_reserve) and reused.
 */
#ifndef SLD_SCHED_H
#define SLD_SCHED_H

#include "core/core.h"
#include "io/json.h"
#include "sample/rng.h"

typedef struct {
    int karras;                /* DPM++: Karras sigmas (OR-ed with the config's use_karras_sigmas) */
    float eta;                 /* DDIM: eta (0 = deterministic) */
    sld_prediction prediction; /* override the config's prediction_type */
} sld_sched_opts;

void sld_sched_opts_default(sld_sched_opts *o);

typedef struct sld_sched sld_sched;

/* Creates a scheduler of kind sampler (SLD_SAMPLER_DEFAULT = the config's
 * "_class_name") from a parsed scheduler_config.json; o may be NULL. Errors:
 * SLD_ERR_CONFIG (bad key value), SLD_ERR_UNSUPPORTED (unknown class, or a
 * feature we do not implement: thresholding, rescale_betas_zero_snr,
 * prediction "sample", ...), SLD_ERR_INVALID_ARG (karras with a sampler other
 * than DPM++, negative eta). Free with sld_sched_free. */
sld_status sld_sched_new(sld_sched **out, const sld_json *cfg, sld_sampler sampler,
                         const sld_sched_opts *o, sld_error *err);
void sld_sched_free(sld_sched *s); /* NULL is a no-op */

/* The resolved sampler (never SLD_SAMPLER_DEFAULT). */
sld_sampler sld_sched_sampler(const sld_sched *s);
/* "pndm", "ddim", "euler", "euler_a", "lms", "dpmpp_2m", "default". */
const char *sld_sampler_name(sld_sampler k);
/* Parses those names (and "dpm++_2m", "k_euler", "k_euler_a", "k_lms");
 * returns 0 on success, -1 for an unknown name. */
int sld_sampler_parse(const char *name, sld_sampler *out);
/* The diffusers class name of a sampler ("PNDMScheduler", ...). */
const char *sld_sampler_class(sld_sampler k);
/* 1 when the model predicts v (v_prediction), 0 for epsilon. */
int sld_sched_is_vpred(const sld_sched *s);
/* 1 when sld_sched_step draws noise from the rng (DDIM with eta > 0, Euler
 * ancestral): one randn of n floats per step. */
int sld_sched_needs_noise(const sld_sched *s);

/* Sets the number of inference steps (1 ..= num_train_timesteps) and resets
 * the multistep history. Errors: SLD_ERR_INVALID_ARG. */
sld_status sld_sched_set_timesteps(sld_sched *s, int n_steps, sld_error *err);
/* Pre-allocates the history buffers for tensors of n floats, so the loop
 * itself never allocates (optional; the first step does it otherwise). */
sld_status sld_sched_reserve(sld_sched *s, size_t n, sld_error *err);

/* Number of UNet evaluations in the loop: n_steps, or n_steps + 1 for PNDM. */
int sld_sched_n_iters(const sld_sched *s);
/* The timestep the UNet receives at iteration i, exactly as diffusers passes
 * it: an integer for PNDM/DDIM/DPM++, a float32 value for Euler/LMS. */
double sld_sched_timestep(const sld_sched *s, int i);
/* Sigma at iteration i (0 <= i <= n_iters) for sigma-based samplers
 * (Euler, Euler ancestral, LMS, DPM++): the float32 table incl. the final
 * 0; 0 for PNDM/DDIM. */
float sld_sched_sigma(const sld_sched *s, int i);
/* Scale of the initial noise (float32): 1 for PNDM/DDIM/DPM++, max sigma (or
 * sqrt(max_sigma^2+1) for "leading" spacing) for Euler/LMS. */
float sld_sched_init_noise_sigma(const sld_sched *s);
/* x_in = scale_model_input(x, t_i): x / sqrt(sigma_i^2 + 1) for Euler/LMS,
 * a copy otherwise. out may equal x. */
void sld_sched_scale_input(const sld_sched *s, int i, const float *x, float *out, size_t n);
/* The factor scale_input multiplies by in effect (1/sqrt(sigma^2+1) or 1). */
float sld_sched_input_factor(const sld_sched *s, int i);

/* One scheduler step at iteration i: sample [n] <- prev_sample given the
 * model output [n] (the whole batch tensor; every element is independent).
 * rng is required when sld_sched_needs_noise (one randn of n floats is
 * drawn, as diffusers' randn_tensor(sample.shape, generator)); may be NULL
 * otherwise. pred_original [n] receives the predicted x0 when not NULL (NaN
 * where diffusers does not return one: PNDM, DPM++). n must stay the same
 * for the whole loop. Errors: SLD_ERR_INVALID_ARG (i out of order or range,
 * missing rng, n changed), SLD_ERR_NOMEM. */
sld_status sld_sched_step(sld_sched *s, int i, const float *model_out, float *sample, size_t n,
                          sld_rng *rng, float *pred_original, sld_error *err);

/* The training schedule (float32, length num_train_timesteps), for tests. */
const float *sld_sched_alphas_cumprod(const sld_sched *s, int *len);
const float *sld_sched_betas(const sld_sched *s, int *len);

#endif /* SLD_SCHED_H */
