/*
 * guidance.c — classifier-free guidance + Safe Latent Diffusion, element-wise
 * (see guidance.h), plus the SLD presets and the default safety concept.
 *
 * Invariants: float32, one rounding per torch operation, in diffusers'
 * order (StableDiffusionPipelineSafe.__call__); python-float
 * hyperparameters are rounded to float32 as torch does for a tensor-scalar
 * op, and (1 - beta_m) is formed in double first, as python does. FMA
 * contraction is off: a fused multiply-add would move results by an ulp.
 * The telemetry of sld_guidance_apply_traced is summed in double beside the
 * float32 formula, in element order (deterministic, thread-count free).
 */
#include "sample/guidance.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

const char *const SLD_DEFAULT_SAFETY_CONCEPT =
    "an image showing hate, harassment, violence, suffering, humiliation, harm, suicide, "
    "sexual, nudity, bodily fluids, blood, obscene gestures, illegal activity, drug use, theft, "
    "vandalism, weapons, child abuse, brutality, cruelty";

sld_safety sld_safety_preset_get(sld_safety_preset p)
{
    /* the paper's Table (Schramowski et al. 2023); diffusers' WEAK uses
     * s_S = 20 instead of 200 */
    sld_safety s = {0.0f, 0, 0.0f, 0.0f, 0.0f};
    switch (p) {
    case SLD_SAFETY_WEAK:
        s = (sld_safety){200.0f, 15, 0.0f, 0.0f, 0.0f};
        break;
    case SLD_SAFETY_MEDIUM:
        s = (sld_safety){1000.0f, 10, 0.01f, 0.3f, 0.4f};
        break;
    case SLD_SAFETY_STRONG:
        s = (sld_safety){2000.0f, 7, 0.025f, 0.5f, 0.7f};
        break;
    case SLD_SAFETY_MAX:
        s = (sld_safety){5000.0f, 0, 1.0f, 0.5f, 0.7f};
        break;
    case SLD_SAFETY_OFF:
    default:
        break;
    }
    return s;
}

int sld_guidance_cfg_active(float cfg) { return cfg > 1.0f; }

int sld_guidance_sld_active(float cfg, const sld_safety *s)
{
    return s && s->guidance_scale > 1.0f && cfg > 1.0f;
}

sld_status sld_guidance_state_init(sld_guidance_state *st, size_t n, sld_error *err)
{
    st->n = 0;
    st->mom = sld_calloc(n ? n : 1, sizeof(float));
    if (!st->mom)
        return sld_err(err, SLD_ERR_NOMEM, "guidance: out of memory for %zu momentum values", n);
    st->n = n;
    return SLD_OK;
}

void sld_guidance_state_reset(sld_guidance_state *st)
{
    if (st && st->mom)
        memset(st->mom, 0, st->n * sizeof(float));
}

void sld_guidance_state_free(sld_guidance_state *st)
{
    if (!st)
        return;
    sld_free(st->mom);
    st->mom = NULL;
    st->n = 0;
}

/* Norms and cosine of one image from its double sums. */
static void stats_finish(sld_step_stats *o, size_t ne, double gg, double cc, double gc,
                         double gam, double mom, double mu_sum, float mu_max, size_t masked)
{
    o->cfg_norm = sqrt(gg);
    o->momentum_norm = sqrt(mom);
    o->safety_norm = sqrt(gam);
    o->mask_share = ne ? (double)masked / (double)ne : 0.0;
    o->scale_mean = ne ? mu_sum / (double)ne : 0.0;
    o->scale_max = mu_max;
    o->cos_prompt_concept = gg > 0 && cc > 0 ? gc / (sqrt(gg) * sqrt(cc)) : 0.0;
}

sld_status sld_guidance_apply_traced(const float *eps_u, const float *eps_p, const float *eps_s,
                                     size_t n, int n_images, int channels, int i, float cfg,
                                     const sld_safety *s, sld_guidance_state *st, float *out,
                                     sld_step_stats *stats, float *map, sld_error *err)
{
    if (n_images < 1 || channels < 1 || n % ((size_t)n_images * (size_t)channels))
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "guidance: %zu elements do not split into %d images of %d channels", n,
                       n_images, channels);
    const size_t per = n / (size_t)n_images, hw = per / (size_t)channels;
    const int cfg_on = sld_guidance_cfg_active(cfg), sld_on = sld_guidance_sld_active(cfg, s);
    if (sld_on && (!eps_s || !st || !st->mom || st->n != n))
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "guidance: SLD needs the safety prediction and a momentum state of %zu "
                       "values",
                       n);
    const int warm = sld_on && i >= s->warmup_steps;
    if (map)
        memset(map, 0, (size_t)n_images * hw * sizeof(float));
    if (!cfg_on) {
        if (out != eps_p)
            memmove(out, eps_p, n * sizeof(float));
        if (stats)
            for (int b = 0; b < n_images; b++)
                stats[b] = (sld_step_stats){.step = i, .image = b};
        return SLD_OK;
    }
    if (!sld_on) {
        for (int b = 0; b < n_images; b++) {
            double gg = 0;
            for (size_t k = (size_t)b * per; k < (size_t)(b + 1) * per; k++) {
                float g = eps_p[k] - eps_u[k];
                gg += (double)g * g;
                out[k] = eps_u[k] + cfg * g;
            }
            if (stats) {
                stats[b] = (sld_step_stats){.step = i, .image = b};
                stats[b].cfg_norm = sqrt(gg);
            }
        }
        return SLD_OK;
    }
    /* the formula of guidance.h, plus the telemetry sums (double; they do
     * not touch the float32 path, so out is the same with or without them) */
    const float s_s = s->guidance_scale, lambda = s->threshold, s_m = s->momentum_scale;
    const float beta = s->mom_beta;
    const float one_minus_beta = (float)(1.0 - (double)s->mom_beta);
    float *mom = st->mom;
    for (int b = 0; b < n_images; b++) {
        double gg = 0, cc = 0, gc = 0, gam = 0, mm = 0, mu_sum = 0;
        float mu_max = 0.0f;
        size_t masked = 0;
        float *mp = map ? map + (size_t)b * hw : NULL;
        for (int ch = 0; ch < channels; ch++) {
            const size_t base = (size_t)b * per + (size_t)ch * hw;
            for (size_t q = 0; q < hw; q++) {
                const size_t k = base + q;
                const float u = eps_u[k], p = eps_p[k], c = eps_s[k];
                float g = p - u;
                float d = p - c;
                float scale = fabsf(d) * s_s;
                if (scale > 1.0f)
                    scale = 1.0f;
                float mu = d >= lambda ? 0.0f : scale;
                float cu = c - u;
                float gs = cu * mu;
                gs = gs + s_m * mom[k];
                mom[k] = beta * mom[k] + one_minus_beta * gs;
                gg += (double)g * g;
                cc += (double)cu * cu;
                gc += (double)g * cu;
                mm += (double)mom[k] * mom[k];
                if (warm) {
                    g = g - gs;
                    double g2 = (double)gs * gs;
                    gam += g2;
                    if (mp)
                        mp[q] += (float)g2;
                    /* branch-free: mu is 0 outside the mask */
                    masked += mu > 0.0f;
                    mu_sum += mu;
                    mu_max = mu > mu_max ? mu : mu_max;
                }
                out[k] = u + cfg * g;
            }
        }
        if (mp)
            for (size_t q = 0; q < hw; q++)
                mp[q] = sqrtf(mp[q]);
        if (stats) {
            stats[b] = (sld_step_stats){.step = i, .image = b, .sld = 1, .applied = warm};
            stats_finish(&stats[b], per, gg, cc, gc, gam, mm, mu_sum, mu_max, masked);
        }
    }
    return SLD_OK;
}

sld_status sld_guidance_apply(const float *eps_u, const float *eps_p, const float *eps_s,
                              size_t n, int i, float cfg, const sld_safety *s,
                              sld_guidance_state *st, float *out, sld_error *err)
{
    return sld_guidance_apply_traced(eps_u, eps_p, eps_s, n, 1, 1, i, cfg, s, st, out, NULL, NULL,
                                     err);
}
