/*
 * guidance.c — classifier-free guidance + Safe Latent Diffusion, element-wise
 * (see guidance.h), plus the SLD presets and the default safety concept.
 *
 * Invariants: float32, one rounding per torch operation, in diffusers'
 * order (StableDiffusionPipelineSafe.__call__); python-float
 * hyperparameters are rounded to float32 as torch does for a tensor-scalar
 * op, and (1 - beta_m) is formed in double first, as python does. FMA
 * contraction is off: a fused multiply-add would move results by an ulp.
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

sld_status sld_guidance_apply(const float *eps_u, const float *eps_p, const float *eps_s,
                              size_t n, int i, float cfg, const sld_safety *s,
                              sld_guidance_state *st, float *out, sld_error *err)
{
    if (!sld_guidance_cfg_active(cfg)) {
        if (out != eps_p)
            memmove(out, eps_p, n * sizeof(float));
        return SLD_OK;
    }
    if (!sld_guidance_sld_active(cfg, s)) {
        for (size_t k = 0; k < n; k++) {
            float g = eps_p[k] - eps_u[k];
            out[k] = eps_u[k] + cfg * g;
        }
        return SLD_OK;
    }
    if (!eps_s || !st || !st->mom || st->n != n)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "guidance: SLD needs the safety prediction and a momentum state of %zu "
                       "values",
                       n);
    const float s_s = s->guidance_scale, lambda = s->threshold, s_m = s->momentum_scale;
    const float beta = s->mom_beta;
    const float one_minus_beta = (float)(1.0 - (double)s->mom_beta);
    const int warm = i >= s->warmup_steps;
    float *mom = st->mom;
    for (size_t k = 0; k < n; k++) {
        const float u = eps_u[k], p = eps_p[k], c = eps_s[k];
        float g = p - u;
        float d = p - c;
        float scale = fabsf(d) * s_s;
        if (scale > 1.0f)
            scale = 1.0f;
        float mu = d >= lambda ? 0.0f : scale;
        float gs = (c - u) * mu;
        gs = gs + s_m * mom[k];
        mom[k] = beta * mom[k] + one_minus_beta * gs;
        if (warm)
            g = g - gs;
        out[k] = u + cfg * g;
    }
    return SLD_OK;
}
