/*
 * sched.c — diffusers 0.31 schedulers (PNDM/PLMS, DDIM, LMS, Euler, Euler
 * ancestral, DPM++ 2M) in float32, see sched.h.
 *
 * Invariants: the training schedule (betas, alphas_cumprod) and the timestep
 * and sigma tables are built with the precision mix diffusers uses (float32
 * torch tensors, float64 numpy for timesteps and interpolation), so they come
 * out bit-identical; per-element step arithmetic is float32 in the order of
 * the torch expressions, with FMA contraction off (torch's element-wise
 * kernels round every operation).
 */
#include "sample/sched.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

typedef enum { SPACING_LEADING = 0, SPACING_LINSPACE, SPACING_TRAILING } spacing;

struct sld_sched {
    sld_sampler kind;
    /* config */
    int n_train;
    int steps_offset;
    spacing spc;
    int vpred;
    int set_alpha_to_one;
    int clip_sample;
    float clip_range;
    float eta;
    int karras;
    int lower_order_final, euler_at_final, final_sigma_zero;
    float *betas;          /* [n_train] */
    float *alphas_cumprod; /* [n_train] */
    float final_alpha_cumprod;
    /* set_timesteps */
    int n_steps, n_iters;
    double *timesteps; /* [n_iters] as the UNet gets them */
    float *sigmas;     /* [n_iters + 1] (sigma samplers) */
    float init_sigma;
    /* loop state */
    int next_i;
    size_t n;      /* tensor size of the current loop (0 = not yet known) */
    float *hist;   /* [4][n]: PNDM ets, LMS derivatives, DPM model outputs */
    float *cur;    /* [n] PNDM cur_sample */
    float *tmp;    /* [n] scratch */
    int n_hist;
    int counter;   /* PNDM */
    int lower_order_nums; /* DPM */
};

static const struct {
    sld_sampler k;
    const char *name, *cls;
} samplers[] = {
    {SLD_SAMPLER_PNDM, "pndm", "PNDMScheduler"},
    {SLD_SAMPLER_DDIM, "ddim", "DDIMScheduler"},
    {SLD_SAMPLER_EULER, "euler", "EulerDiscreteScheduler"},
    {SLD_SAMPLER_EULER_A, "euler_a", "EulerAncestralDiscreteScheduler"},
    {SLD_SAMPLER_LMS, "lms", "LMSDiscreteScheduler"},
    {SLD_SAMPLER_DPMPP_2M, "dpmpp_2m", "DPMSolverMultistepScheduler"},
};
#define N_SAMPLERS (int)(sizeof samplers / sizeof samplers[0])

const char *sld_sampler_name(sld_sampler k)
{
    for (int i = 0; i < N_SAMPLERS; i++)
        if (samplers[i].k == k)
            return samplers[i].name;
    return "default";
}

const char *sld_sampler_class(sld_sampler k)
{
    for (int i = 0; i < N_SAMPLERS; i++)
        if (samplers[i].k == k)
            return samplers[i].cls;
    return "";
}

int sld_sampler_parse(const char *name, sld_sampler *out)
{
    static const struct {
        const char *alias;
        sld_sampler k;
    } aliases[] = {{"dpm++_2m", SLD_SAMPLER_DPMPP_2M}, {"dpmpp2m", SLD_SAMPLER_DPMPP_2M},
                   {"k_euler", SLD_SAMPLER_EULER},     {"k_euler_a", SLD_SAMPLER_EULER_A},
                   {"euler_ancestral", SLD_SAMPLER_EULER_A}, {"k_lms", SLD_SAMPLER_LMS},
                   {"default", SLD_SAMPLER_DEFAULT}};
    for (int i = 0; i < N_SAMPLERS; i++)
        if (!strcmp(name, samplers[i].name)) {
            *out = samplers[i].k;
            return 0;
        }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(name, aliases[i].alias)) {
            *out = aliases[i].k;
            return 0;
        }
    return -1;
}

void sld_sched_opts_default(sld_sched_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prediction = SLD_PRED_DEFAULT;
}

/* ---- training schedule ------------------------------------------------ */

/* torch.linspace(start, end, steps, dtype=float32) on CPU (AVX2 build): the
 * first half counts up from start, the second half down from end; the
 * vectorised body builds 8 lanes as base + k*step (GCC fuses those into
 * FMAs), 16 elements per iteration, the rest scalar. */
static void torch_linspace_f32(float *out, double start_d, double end_d, int steps)
{
    const float start = (float)start_d, end = (float)end_d;
    if (steps == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(steps - 1);
    const int64_t halfway = steps / 2;
    int64_t i = 0;
    for (; i + 16 <= steps; i += 16) {
        for (int64_t idx = i; idx < i + 16; idx += 8) {
            float base = idx < halfway ? fmaf(step, (float)idx, start)
                                       : fmaf(-step, (float)(steps - idx - 1), end);
            out[idx] = base;
            for (int k = 1; k < 8; k++)
                out[idx + k] = fmaf((float)k, step, base);
        }
    }
    for (; i < steps; i++)
        out[i] = i < halfway ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - i - 1), end);
}

static double alpha_bar_cos(double t)
{
    double c = cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
}

/* betas and alphas_cumprod (torch.cumprod accumulates in double on CPU). */
static sld_status make_schedule(sld_sched *s, const sld_json *j, const char *schedule,
                                double beta_start, double beta_end, sld_error *err)
{
    int N = s->n_train;
    s->betas = sld_malloc((size_t)N * sizeof(float));
    s->alphas_cumprod = sld_malloc((size_t)N * sizeof(float));
    if (!s->betas || !s->alphas_cumprod)
        return sld_err(err, SLD_ERR_NOMEM, "scheduler: out of memory");
    const cJSON *tb = cJSON_GetObjectItemCaseSensitive(j->root, "trained_betas");
    if (tb && cJSON_IsArray(tb)) {
        if (cJSON_GetArraySize(tb) != N)
            return sld_err(err, SLD_ERR_CONFIG, "%s: \"trained_betas\" has %d values, expected %d",
                           j->path, cJSON_GetArraySize(tb), N);
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, tb)
        {
            if (!cJSON_IsNumber(it))
                return sld_err(err, SLD_ERR_CONFIG, "%s: \"trained_betas\" must be numbers",
                               j->path);
            if (!(it->valuedouble > 0 && it->valuedouble < 1))
                return sld_err(err, SLD_ERR_CONFIG,
                               "%s: \"trained_betas\"[%d] = %g; every beta must lie in (0, 1)",
                               j->path, k, it->valuedouble);
            s->betas[k++] = (float)it->valuedouble;
        }
    } else if (!strcmp(schedule, "scaled_linear")) {
        torch_linspace_f32(s->betas, sqrt(beta_start), sqrt(beta_end), N);
        for (int i = 0; i < N; i++)
            s->betas[i] = s->betas[i] * s->betas[i];
    } else if (!strcmp(schedule, "linear")) {
        torch_linspace_f32(s->betas, beta_start, beta_end, N);
    } else if (!strcmp(schedule, "squaredcos_cap_v2")) {
        for (int i = 0; i < N; i++) {
            double b = 1 - alpha_bar_cos((double)(i + 1) / N) / alpha_bar_cos((double)i / N);
            s->betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    } else {
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: beta_schedule \"%s\" is not supported (expected scaled_linear, "
                       "linear or squaredcos_cap_v2)",
                       j->path, schedule);
    }
    double acc = 1.0;
    for (int i = 0; i < N; i++) {
        acc *= (double)(1.0f - s->betas[i]);
        s->alphas_cumprod[i] = (float)acc;
    }
    if (!(s->alphas_cumprod[N - 1] > 0))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: the betas drive alphas_cumprod to 0 before timestep %d (sigma "
                       "would be infinite); use smaller betas or fewer num_train_timesteps",
                       j->path, N - 1);
    s->final_alpha_cumprod = s->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return SLD_OK;
}

/* ---- construction ------------------------------------------------------ */

/* Every number a scheduler config gives must be in the range the formulas
 * need: a steps_offset past the table indexed alphas_cumprod out of bounds,
 * beta_start > beta_end or a negative beta gave NaN latents and a black
 * image. (num_train_timesteps is checked by the caller.) */
static sld_status check_ranges(const sld_sched *s, const sld_json *cfg, double beta_start,
                               double beta_end, double clip_range, sld_error *err)
{
    if (s->steps_offset < 0 || s->steps_offset >= s->n_train)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: steps_offset %d out of range [0, %d] (num_train_timesteps %d; SD "
                       "uses 1)",
                       cfg->path, s->steps_offset, s->n_train - 1, s->n_train);
    if (!(beta_start > 0 && beta_start < 1) || !(beta_end > 0 && beta_end < 1))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: beta_start %g and beta_end %g must lie in (0, 1) (SD: 0.00085, "
                       "0.012)",
                       cfg->path, beta_start, beta_end);
    if (beta_start > beta_end)
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: beta_start %g is larger than beta_end %g; noise must grow with "
                       "the timestep",
                       cfg->path, beta_start, beta_end);
    if (!(clip_range > 0 && clip_range < 1e30))
        return sld_err(err, SLD_ERR_CONFIG, "%s: clip_sample_range %g must be positive",
                       cfg->path, clip_range);
    return SLD_OK;
}

static sld_status get_bool_key(const sld_json *j, const char *key, int def, int *out,
                               sld_error *err)
{
    return sld_json_bool_opt(j, NULL, key, def, out, err);
}

sld_status sld_sched_new(sld_sched **out, const sld_json *cfg, sld_sampler sampler,
                         const sld_sched_opts *o, sld_error *err)
{
    *out = NULL;
    sld_sched_opts def;
    if (!o) {
        sld_sched_opts_default(&def);
        o = &def;
    }
    const char *cls = NULL;
    sld_status st = sld_json_str_opt(cfg, NULL, "_class_name", NULL, &cls, err);
    if (st)
        return st;
    if (sampler == SLD_SAMPLER_DEFAULT) {
        if (!cls)
            return sld_err(err, SLD_ERR_CONFIG, "%s: missing \"_class_name\" (needed to pick the "
                           "default sampler)", cfg->path);
        for (int i = 0; i < N_SAMPLERS; i++)
            if (!strcmp(cls, samplers[i].cls))
                sampler = samplers[i].k;
        if (sampler == SLD_SAMPLER_DEFAULT)
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: scheduler class \"%s\" is not supported (use pndm, ddim, euler, "
                           "euler_a, lms or dpmpp_2m)",
                           cfg->path, cls);
    } else if ((int)sampler < 0 || (int)sampler > SLD_SAMPLER_DEFAULT) {
        return sld_err(err, SLD_ERR_INVALID_ARG, "scheduler: unknown sampler %d", (int)sampler);
    }
    if (o->eta < 0 || o->eta != o->eta)
        return sld_err(err, SLD_ERR_INVALID_ARG, "scheduler: eta must be >= 0, got %g",
                       (double)o->eta);
    int cfg_karras = 0;
    if ((st = get_bool_key(cfg, "use_karras_sigmas", 0, &cfg_karras, err)))
        return st;
    if (o->karras && sampler != SLD_SAMPLER_DPMPP_2M)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "scheduler: Karras sigmas are supported with dpmpp_2m only, not %s",
                       sld_sampler_name(sampler));

    sld_sched *s = sld_calloc(1, sizeof *s);
    if (!s)
        return sld_err(err, SLD_ERR_NOMEM, "scheduler: out of memory");
    s->kind = sampler;
    s->eta = sampler == SLD_SAMPLER_DDIM ? o->eta : 0.0f;
    int same_class = cls && !strcmp(cls, sld_sampler_class(sampler));

    double beta_start, beta_end, clip_range;
    const char *schedule, *pred, *spacing_s, *def_spacing;
    int is_ddpm_like = sampler == SLD_SAMPLER_PNDM || sampler == SLD_SAMPLER_DDIM;
    def_spacing = is_ddpm_like ? "leading" : "linspace";
    if ((st = sld_json_int_opt(cfg, NULL, "num_train_timesteps", 1000, &s->n_train, err)) ||
        (st = sld_json_num_opt(cfg, NULL, "beta_start", 0.0001, &beta_start, err)) ||
        (st = sld_json_num_opt(cfg, NULL, "beta_end", 0.02, &beta_end, err)) ||
        (st = sld_json_str_opt(cfg, NULL, "beta_schedule", "linear", &schedule, err)) ||
        (st = sld_json_str_opt(cfg, NULL, "prediction_type", "epsilon", &pred, err)) ||
        (st = sld_json_str_opt(cfg, NULL, "timestep_spacing", def_spacing, &spacing_s, err)) ||
        (st = sld_json_int_opt(cfg, NULL, "steps_offset", 0, &s->steps_offset, err)) ||
        (st = get_bool_key(cfg, "set_alpha_to_one", sampler == SLD_SAMPLER_DDIM,
                           &s->set_alpha_to_one, err)) ||
        (st = get_bool_key(cfg, "clip_sample", sampler == SLD_SAMPLER_DDIM, &s->clip_sample,
                           err)) ||
        (st = sld_json_num_opt(cfg, NULL, "clip_sample_range", 1.0, &clip_range, err)) ||
        (st = get_bool_key(cfg, "lower_order_final", 1, &s->lower_order_final, err)) ||
        (st = get_bool_key(cfg, "euler_at_final", 0, &s->euler_at_final, err)))
        goto fail;
    s->clip_range = (float)clip_range;
    if (sampler != SLD_SAMPLER_DDIM)
        s->clip_sample = 0;
    if (s->n_train < 2 || s->n_train > 100000) {
        st = sld_err(err, SLD_ERR_CONFIG, "%s: num_train_timesteps %d out of range [2, 100000]",
                     cfg->path, s->n_train);
        goto fail;
    }
    if ((st = check_ranges(s, cfg, beta_start, beta_end, clip_range, err)))
        goto fail;
    if (!strcmp(spacing_s, "leading"))
        s->spc = SPACING_LEADING;
    else if (!strcmp(spacing_s, "linspace"))
        s->spc = SPACING_LINSPACE;
    else if (!strcmp(spacing_s, "trailing"))
        s->spc = SPACING_TRAILING;
    else {
        st = sld_err(err, SLD_ERR_CONFIG,
                     "%s: timestep_spacing \"%s\" (expected leading, linspace or trailing)",
                     cfg->path, spacing_s);
        goto fail;
    }
    if (o->prediction == SLD_PRED_EPSILON || o->prediction == SLD_PRED_V) {
        s->vpred = o->prediction == SLD_PRED_V;
    } else if (!strcmp(pred, "epsilon")) {
        s->vpred = 0;
    } else if (!strcmp(pred, "v_prediction")) {
        s->vpred = 1;
    } else {
        st = sld_err(err, SLD_ERR_UNSUPPORTED,
                     "%s: prediction_type \"%s\" is not supported (expected epsilon or "
                     "v_prediction)",
                     cfg->path, pred);
        goto fail;
    }
    /* features we do not implement must not be silently ignored */
    static const char *const off_keys[] = {"thresholding", "rescale_betas_zero_snr",
                                           "use_exponential_sigmas", "use_beta_sigmas",
                                           "use_lu_lambdas"};
    for (size_t k = 0; k < sizeof off_keys / sizeof off_keys[0]; k++) {
        int v;
        if ((st = get_bool_key(cfg, off_keys[k], 0, &v, err)))
            goto fail;
        if (v) {
            st = sld_err(err, SLD_ERR_UNSUPPORTED, "%s: \"%s\": true is not supported",
                         cfg->path, off_keys[k]);
            goto fail;
        }
    }
    if (sampler == SLD_SAMPLER_PNDM) {
        int skip_prk;
        if ((st = get_bool_key(cfg, "skip_prk_steps", 0, &skip_prk, err)))
            goto fail;
        if (!skip_prk) {
            st = sld_err(err, SLD_ERR_UNSUPPORTED,
                         "%s: PNDM with skip_prk_steps false (Runge-Kutta warm-up) is not "
                         "supported; set \"skip_prk_steps\": true or pick another sampler",
                         cfg->path);
            goto fail;
        }
    }
    if (sampler == SLD_SAMPLER_EULER) {
        const char *interp, *ttype;
        if ((st = sld_json_str_opt(cfg, NULL, "interpolation_type", "linear", &interp, err)) ||
            (st = sld_json_str_opt(cfg, NULL, "timestep_type", "discrete", &ttype, err)))
            goto fail;
        if (strcmp(interp, "linear") || strcmp(ttype, "discrete")) {
            st = sld_err(err, SLD_ERR_UNSUPPORTED,
                         "%s: Euler with interpolation_type \"%s\" / timestep_type \"%s\" is not "
                         "supported (expected linear / discrete)",
                         cfg->path, interp, ttype);
            goto fail;
        }
    }
    if ((sampler == SLD_SAMPLER_EULER || sampler == SLD_SAMPLER_LMS) && cfg_karras && same_class) {
        st = sld_err(err, SLD_ERR_UNSUPPORTED,
                     "%s: use_karras_sigmas is supported with dpmpp_2m only", cfg->path);
        goto fail;
    }
    s->final_sigma_zero = 1;
    if (sampler == SLD_SAMPLER_DPMPP_2M) {
        s->karras = o->karras || cfg_karras;
        const char *fst, *alg, *solver;
        int order;
        if ((st = sld_json_str_opt(cfg, NULL, "final_sigmas_type", "zero", &fst, err)) ||
            (st = sld_json_str_opt(cfg, NULL, "algorithm_type", "dpmsolver++", &alg, err)) ||
            (st = sld_json_str_opt(cfg, NULL, "solver_type", "midpoint", &solver, err)) ||
            (st = sld_json_int_opt(cfg, NULL, "solver_order", 2, &order, err)))
            goto fail;
        if (strcmp(fst, "zero") && strcmp(fst, "sigma_min")) {
            st = sld_err(err, SLD_ERR_CONFIG,
                         "%s: final_sigmas_type \"%s\" (expected zero or sigma_min)", cfg->path,
                         fst);
            goto fail;
        }
        s->final_sigma_zero = !strcmp(fst, "zero");
        /* only DPM++ 2M is implemented: a DPM config of another flavour
         * (order 3, dpmsolver, heun) runs as 2M, with a warning */
        if (same_class && (strcmp(alg, "dpmsolver++") || strcmp(solver, "midpoint") || order != 2)) {
            sld_log(SLD_LOG_WARN,
                    "%s: DPMSolverMultistep %s/%s order %d requested; running DPM++ 2M",
                    cfg->path, alg, solver, order);
        }
    }
    if ((st = make_schedule(s, cfg, schedule, beta_start, beta_end, err)))
        goto fail;
    *out = s;
    return SLD_OK;
fail:
    sld_sched_free(s);
    return st;
}

void sld_sched_free(sld_sched *s)
{
    if (!s)
        return;
    sld_free(s->betas);
    sld_free(s->alphas_cumprod);
    sld_free(s->timesteps);
    sld_free(s->sigmas);
    sld_free(s->hist);
    sld_free(s->cur);
    sld_free(s->tmp);
    sld_free(s);
}

sld_sampler sld_sched_sampler(const sld_sched *s) { return s->kind; }
int sld_sched_is_vpred(const sld_sched *s) { return s->vpred; }

int sld_sched_needs_noise(const sld_sched *s)
{
    return s->kind == SLD_SAMPLER_EULER_A || (s->kind == SLD_SAMPLER_DDIM && s->eta > 0);
}

static int uses_sigmas(sld_sampler k)
{
    return k == SLD_SAMPLER_EULER || k == SLD_SAMPLER_EULER_A || k == SLD_SAMPLER_LMS ||
           k == SLD_SAMPLER_DPMPP_2M;
}

/* ---- timesteps ---------------------------------------------------------- */

/* numpy: np.linspace(0, stop, num)[k] (float64; the last one is stop). */
static double np_linspace(double stop, int num, int k)
{
    if (num == 1)
        return 0.0;
    if (k == num - 1)
        return stop;
    return (double)k * (stop / (num - 1)) + 0.0;
}

/* numpy: np.arange(start, 0, -ratio)[k] = start + k*delta (numpy fills from
 * the first two values). */
static double np_arange_down(double start, double ratio, int k)
{
    double delta = (start + -ratio) - start;
    return k == 0 ? start : start + k * delta;
}

/* np.interp(x, arange(N), fp) for x in [0, N-1]. */
static double np_interp(double x, const float *fp, int N)
{
    if (x <= 0)
        return fp[0];
    if (x >= N - 1)
        return fp[N - 1];
    int j = (int)floor(x);
    if ((double)j == x)
        return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - (double)j) + (double)fp[j];
}

/* diffusers _sigma_to_t: log_sigmas is float32 (np.log of float32). */
static double sigma_to_t(double sigma, const float *log_sigmas, int N)
{
    double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int i = 0; i < N; i++)
        if (ls - (double)log_sigmas[i] >= 0)
            low = i;
    if (low > N - 2)
        low = N - 2;
    int high = low + 1;
    float lo = log_sigmas[low], hi = log_sigmas[high];
    float den = lo - hi; /* float32 scalar arithmetic in numpy */
    double w = ((double)lo - ls) / (double)den;
    if (w < 0)
        w = 0;
    if (w > 1)
        w = 1;
    return (1 - w) * low + w * high;
}

static sld_status timestep_range_error(const sld_sched *s, int n_steps, int64_t t,
                                       sld_error *err)
{
    return sld_err(err, SLD_ERR_CONFIG,
                   "scheduler: %d steps with steps_offset %d give timestep %lld, outside the "
                   "%d training timesteps [0, %d]; use fewer steps or a smaller steps_offset",
                   n_steps, s->steps_offset, (long long)t, s->n_train, s->n_train - 1);
}

sld_status sld_sched_set_timesteps(sld_sched *s, int n_steps, sld_error *err)
{
    const int N = s->n_train;
    if (n_steps < 1 || n_steps > N)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "scheduler: %d inference steps (expected 1..%d, the training steps)",
                       n_steps, N);
    if (s->kind == SLD_SAMPLER_PNDM && n_steps < 2)
        return sld_err(err, SLD_ERR_INVALID_ARG, "scheduler: PNDM needs at least 2 steps");
    int iters = n_steps + (s->kind == SLD_SAMPLER_PNDM);
    double *ts = sld_malloc((size_t)iters * sizeof(double));
    float *sig = sld_malloc((size_t)(iters + 1) * sizeof(float));
    float *sig_train = sld_malloc((size_t)N * sizeof(float));
    float *log_sig = sld_malloc((size_t)N * sizeof(float));
    double *karr = sld_malloc((size_t)n_steps * sizeof(double));
    if (!ts || !sig || !sig_train || !log_sig || !karr) {
        sld_free(ts);
        sld_free(sig);
        sld_free(sig_train);
        sld_free(log_sig);
        sld_free(karr);
        return sld_err(err, SLD_ERR_NOMEM, "scheduler: out of memory");
    }
    for (int t = 0; t < N; t++) {
        float a = s->alphas_cumprod[t];
        sig_train[t] = sqrtf((1.0f - a) / a);
        log_sig[t] = logf(sig_train[t]);
    }
    memset(sig, 0, (size_t)(iters + 1) * sizeof(float));
    const int ratio = N / n_steps;
    switch (s->kind) {
    case SLD_SAMPLER_PNDM:
    case SLD_SAMPLER_DDIM: {
        /* ascending integer timesteps, then reversed (PNDM repeats the second) */
        int64_t *asc = (int64_t *)karr; /* n_steps slots of 8 bytes */
        for (int k = 0; k < n_steps; k++) {
            if (s->spc == SPACING_LEADING)
                asc[k] = (int64_t)k * ratio + s->steps_offset;
            else if (s->spc == SPACING_LINSPACE)
                asc[k] = (int64_t)rint(np_linspace(N - 1, n_steps, k));
            else
                asc[k] = (int64_t)rint(np_arange_down(N, (double)N / n_steps, n_steps - 1 - k)) - 1;
        }
        for (int k = 0; k < n_steps; k++)
            if (asc[k] < 0 || asc[k] > N - 1) {
                sld_status e = timestep_range_error(s, n_steps, asc[k], err);
                sld_free(ts), sld_free(sig), sld_free(sig_train), sld_free(log_sig),
                    sld_free(karr);
                return e;
            }
        int o = 0;
        if (s->kind == SLD_SAMPLER_PNDM) {
            ts[o++] = (double)asc[n_steps - 1];
            ts[o++] = (double)asc[n_steps - 2];
            for (int k = n_steps - 2; k >= 0; k--)
                ts[o++] = (double)asc[k];
        } else {
            for (int k = n_steps - 1; k >= 0; k--)
                ts[o++] = (double)asc[k];
        }
        break;
    }
    case SLD_SAMPLER_EULER:
    case SLD_SAMPLER_EULER_A:
    case SLD_SAMPLER_LMS: {
        for (int k = 0; k < n_steps; k++) {
            float t;
            if (s->spc == SPACING_LINSPACE)
                t = (float)np_linspace(N - 1, n_steps, n_steps - 1 - k);
            else if (s->spc == SPACING_LEADING)
                t = (float)(rint((double)(n_steps - 1 - k) * ratio)) + (float)s->steps_offset;
            else
                t = (float)rint(np_arange_down(N, (double)N / n_steps, k)) - 1.0f;
            ts[k] = t;
            sig[k] = (float)np_interp(t, sig_train, N);
        }
        sig[n_steps] = 0.0f;
        break;
    }
    case SLD_SAMPLER_DPMPP_2M:
    default: {
        for (int k = 0; k < n_steps; k++) {
            int64_t t;
            if (s->spc == SPACING_LINSPACE)
                t = (int64_t)rint(np_linspace(N - 1, n_steps + 1, n_steps - k));
            else if (s->spc == SPACING_LEADING)
                t = (int64_t)rint((double)(n_steps - k) * (double)(N / (n_steps + 1))) +
                    s->steps_offset;
            else
                t = (int64_t)rint(np_arange_down(N, (double)N / n_steps, k)) - 1;
            ts[k] = (double)t;
            if (!s->karras && (t < 0 || t > N - 1)) {
                sld_status e = timestep_range_error(s, n_steps, t, err);
                sld_free(ts), sld_free(sig), sld_free(sig_train), sld_free(log_sig),
                    sld_free(karr);
                return e;
            }
        }
        if (s->karras) {
            /* Karras et al. rho = 7 between the training extremes */
            double smin = sig_train[0], smax = sig_train[N - 1];
            double min_inv = pow(smin, 1.0 / 7.0), max_inv = pow(smax, 1.0 / 7.0);
            for (int k = 0; k < n_steps; k++) {
                double ramp = np_linspace(1.0, n_steps, k);
                karr[k] = pow(max_inv + ramp * (min_inv - max_inv), 7.0);
                ts[k] = rint(sigma_to_t(karr[k], log_sig, N));
                sig[k] = (float)karr[k];
            }
        } else {
            for (int k = 0; k < n_steps; k++)
                sig[k] = sig_train[(int)ts[k]];
        }
        if (s->final_sigma_zero) {
            sig[n_steps] = 0.0f;
        } else {
            float a = s->alphas_cumprod[0];
            sig[n_steps] = sqrtf((1.0f - a) / a);
        }
        break;
    }
    }
    sld_free(sig_train);
    sld_free(log_sig);
    sld_free(karr);
    sld_free(s->timesteps);
    sld_free(s->sigmas);
    s->timesteps = ts;
    s->sigmas = sig;
    s->n_steps = n_steps;
    s->n_iters = iters;
    s->init_sigma = 1.0f;
    if (s->kind == SLD_SAMPLER_EULER || s->kind == SLD_SAMPLER_EULER_A ||
        s->kind == SLD_SAMPLER_LMS) {
        float mx = 0;
        for (int k = 0; k <= n_steps; k++)
            mx = sig[k] > mx ? sig[k] : mx;
        s->init_sigma = s->spc == SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
    }
    s->next_i = 0;
    s->n_hist = 0;
    s->counter = 0;
    s->lower_order_nums = 0;
    return SLD_OK;
}

sld_status sld_sched_reserve(sld_sched *s, size_t n, sld_error *err)
{
    if (s->n == n && s->hist)
        return SLD_OK;
    size_t bytes;
    if (!sld_mul_ok(n, 4 * sizeof(float), &bytes))
        return sld_err(err, SLD_ERR_INVALID_ARG, "scheduler: tensor of %zu floats is too large", n);
    float *h = sld_malloc(bytes);
    float *c = sld_malloc(n * sizeof(float));
    float *t = sld_malloc(n * sizeof(float));
    if (!h || !c || !t) {
        sld_free(h);
        sld_free(c);
        sld_free(t);
        return sld_err(err, SLD_ERR_NOMEM, "scheduler: out of memory for %zu-float history", n);
    }
    sld_free(s->hist);
    sld_free(s->cur);
    sld_free(s->tmp);
    s->hist = h;
    s->cur = c;
    s->tmp = t;
    s->n = n;
    return SLD_OK;
}

int sld_sched_n_iters(const sld_sched *s) { return s->n_iters; }

double sld_sched_timestep(const sld_sched *s, int i)
{
    return i >= 0 && i < s->n_iters ? s->timesteps[i] : 0.0;
}

float sld_sched_sigma(const sld_sched *s, int i)
{
    return uses_sigmas(s->kind) && i >= 0 && i <= s->n_iters && s->sigmas ? s->sigmas[i] : 0.0f;
}

float sld_sched_init_noise_sigma(const sld_sched *s) { return s->init_sigma; }

static int scales_input(const sld_sched *s)
{
    return s->kind == SLD_SAMPLER_EULER || s->kind == SLD_SAMPLER_EULER_A ||
           s->kind == SLD_SAMPLER_LMS;
}

float sld_sched_input_factor(const sld_sched *s, int i)
{
    if (!scales_input(s) || i < 0 || i >= s->n_iters)
        return 1.0f;
    float sg = s->sigmas[i];
    return 1.0f / sqrtf(sg * sg + 1.0f);
}

void sld_sched_scale_input(const sld_sched *s, int i, const float *x, float *out, size_t n)
{
    if (!scales_input(s) || i < 0 || i >= s->n_iters) {
        if (out != x)
            memmove(out, x, n * sizeof(float));
        return;
    }
    float sg = s->sigmas[i];
    float den = sqrtf(sg * sg + 1.0f);
    for (size_t k = 0; k < n; k++)
        out[k] = x[k] / den;
}

const float *sld_sched_alphas_cumprod(const sld_sched *s, int *len)
{
    *len = s->n_train;
    return s->alphas_cumprod;
}

const float *sld_sched_betas(const sld_sched *s, int *len)
{
    *len = s->n_train;
    return s->betas;
}

/* ---- steps -------------------------------------------------------------- */

static float alpha_at(const sld_sched *s, int t)
{
    return t >= 0 ? s->alphas_cumprod[t] : s->final_alpha_cumprod;
}

static void fill_nan(float *p, size_t n)
{
    if (p)
        for (size_t k = 0; k < n; k++)
            p[k] = NAN;
}

/* PNDM _get_prev_sample (formula (9) of the PNDM paper). mo is overwritten
 * when v-prediction converts it. */
static void pndm_prev(const sld_sched *s, const float *x, float *mo, int t, int t_prev, float *out,
                      size_t n)
{
    float at = alpha_at(s, t), ap = alpha_at(s, t_prev);
    float bt = 1.0f - at, bp = 1.0f - ap;
    if (s->vpred) {
        float sa = sqrtf(at), sb = sqrtf(bt);
        for (size_t k = 0; k < n; k++)
            mo[k] = sa * mo[k] + sb * x[k];
    }
    float sample_coeff = sqrtf(ap / at);
    float denom = at * sqrtf(bp) + sqrtf(at * bt * ap);
    float c = ap - at;
    for (size_t k = 0; k < n; k++)
        out[k] = sample_coeff * x[k] - c * mo[k] / denom;
}

static void step_pndm(sld_sched *s, int i, const float *model_out, float *x, size_t n)
{
    const int T = s->n_train / s->n_steps;
    int t = (int)s->timesteps[i], t_prev = t - T;
    float *e = s->hist; /* ets ring: e + k*n, oldest first, n_hist <= 4 */
    if (s->counter != 1) {
        if (s->n_hist == 4) {
            memmove(e, e + n, 3 * n * sizeof(float));
            s->n_hist = 3;
        }
        memcpy(e + (size_t)s->n_hist * n, model_out, n * sizeof(float));
        s->n_hist++;
    } else {
        t_prev = t;
        t = t + T;
    }
    float *mo = s->tmp;
    const float *e1 = e + (size_t)(s->n_hist - 1) * n;
    const float *e2 = e1 - n, *e3 = e1 - 2 * n, *e4 = e1 - 3 * n;
    const float *xs = x;
    if (s->n_hist == 1 && s->counter == 0) {
        memcpy(mo, model_out, n * sizeof(float));
        memcpy(s->cur, x, n * sizeof(float));
    } else if (s->n_hist == 1 && s->counter == 1) {
        for (size_t k = 0; k < n; k++)
            mo[k] = (model_out[k] + e1[k]) / 2.0f;
        xs = s->cur;
    } else if (s->n_hist == 2) {
        for (size_t k = 0; k < n; k++)
            mo[k] = (3.0f * e1[k] - e2[k]) / 2.0f;
    } else if (s->n_hist == 3) {
        for (size_t k = 0; k < n; k++)
            mo[k] = (23.0f * e1[k] - 16.0f * e2[k] + 5.0f * e3[k]) / 12.0f;
    } else {
        const float c = (float)(1.0 / 24.0);
        for (size_t k = 0; k < n; k++)
            mo[k] = c * (55.0f * e1[k] - 59.0f * e2[k] + 37.0f * e3[k] - 9.0f * e4[k]);
    }
    pndm_prev(s, xs, mo, t, t_prev, x, n);
    s->counter++;
}

static void step_ddim(sld_sched *s, int i, const float *mo, float *x, size_t n, sld_rng *rng,
                      float *x0)
{
    const int T = s->n_train / s->n_steps;
    int t = (int)s->timesteps[i], t_prev = t - T;
    float at = alpha_at(s, t), ap = alpha_at(s, t_prev);
    float bt = 1.0f - at, bp = 1.0f - ap;
    float sa = sqrtf(at), sb = sqrtf(bt);
    float variance = (bp / bt) * (1.0f - at / ap);
    float std_dev = s->eta * sqrtf(variance);
    float dir_c = sqrtf(1.0f - ap - std_dev * std_dev);
    float sap = sqrtf(ap);
    float *noise = NULL;
    if (s->eta > 0) {
        noise = s->tmp;
        sld_rng_randn(rng, noise, n);
    }
    for (size_t k = 0; k < n; k++) {
        float p0, pe;
        if (s->vpred) {
            p0 = sa * x[k] - sb * mo[k];
            pe = sa * mo[k] + sb * x[k];
        } else {
            p0 = (x[k] - sb * mo[k]) / sa;
            pe = mo[k];
        }
        if (s->clip_sample)
            p0 = p0 < -s->clip_range ? -s->clip_range : p0 > s->clip_range ? s->clip_range : p0;
        if (x0)
            x0[k] = p0;
        float prev = sap * p0 + dir_c * pe;
        if (noise)
            prev = prev + std_dev * noise[k];
        x[k] = prev;
    }
}

/* Euler / Euler ancestral / LMS share the x0 prediction from sigma. */
static float pred_x0_sigma(int vpred, float sigma, float c_out, float s2p1, float x, float mo)
{
    if (vpred)
        return mo * c_out + x / s2p1;
    return x - sigma * mo;
}

static void step_euler(sld_sched *s, int i, const float *mo, float *x, size_t n, sld_rng *rng,
                       float *x0)
{
    float sigma = s->sigmas[i], sigma_next = s->sigmas[i + 1];
    float s2p1 = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(s2p1);
    if (s->kind == SLD_SAMPLER_EULER) {
        float sigma_hat = sigma * 1.0f; /* s_churn = 0: gamma = 0 */
        float dt = sigma_next - sigma_hat;
        for (size_t k = 0; k < n; k++) {
            float p0 = s->vpred ? mo[k] * c_out + x[k] / s2p1 : x[k] - sigma_hat * mo[k];
            if (x0)
                x0[k] = p0;
            float d = (x[k] - p0) / sigma_hat;
            x[k] = x[k] + d * dt;
        }
        return;
    }
    float sf2 = sigma * sigma, st2 = sigma_next * sigma_next;
    float sigma_up = sqrtf(st2 * (sf2 - st2) / sf2);
    float sigma_down = sqrtf(st2 - sigma_up * sigma_up);
    float dt = sigma_down - sigma;
    float *noise = s->tmp;
    sld_rng_randn(rng, noise, n);
    for (size_t k = 0; k < n; k++) {
        float p0 = pred_x0_sigma(s->vpred, sigma, c_out, s2p1, x[k], mo[k]);
        if (x0)
            x0[k] = p0;
        float d = (x[k] - p0) / sigma;
        float prev = x[k] + d * dt;
        x[k] = prev + noise[k] * sigma_up;
    }
}

/* LMS coefficient: integral over [sigma_i, sigma_{i+1}] of the Lagrange basis
 * polynomial for history entry cur (degree <= 3, so 4-point Gauss-Legendre
 * is exact; diffusers uses scipy quad on the same polynomial). */
static double lms_coeff(const float *sig, int order, int t, int cur)
{
    static const double gx[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                 0.8611363115940526};
    static const double gw[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                 0.3478548451374538};
    double a = sig[t], b = sig[t + 1];
    double sum = 0;
    for (int q = 0; q < 4; q++) {
        double tau = 0.5 * (b - a) * gx[q] + 0.5 * (a + b);
        double prod = 1.0;
        for (int k = 0; k < order; k++) {
            if (k == cur)
                continue;
            prod *= (tau - sig[t - k]) / ((double)sig[t - cur] - sig[t - k]);
        }
        sum += gw[q] * prod;
    }
    return 0.5 * (b - a) * sum;
}

static void step_lms(sld_sched *s, int i, const float *mo, float *x, size_t n, float *x0)
{
    const int max_order = 4;
    float sigma = s->sigmas[i];
    float s2p1 = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(s2p1);
    float *d = s->hist; /* derivatives, oldest first */
    if (s->n_hist == max_order) {
        memmove(d, d + n, (size_t)(max_order - 1) * n * sizeof(float));
        s->n_hist--;
    }
    float *dn = d + (size_t)s->n_hist * n;
    for (size_t k = 0; k < n; k++) {
        float p0 = pred_x0_sigma(s->vpred, sigma, c_out, s2p1, x[k], mo[k]);
        if (x0)
            x0[k] = p0;
        dn[k] = (x[k] - p0) / sigma;
    }
    s->n_hist++;
    int order = i + 1 < max_order ? i + 1 : max_order;
    float c[4];
    for (int q = 0; q < order; q++)
        c[q] = (float)lms_coeff(s->sigmas, order, i, q);
    for (size_t k = 0; k < n; k++) {
        /* python sum(): 0 + c0*d_newest + c1*d_prev + ... */
        float acc = c[0] * d[(size_t)(s->n_hist - 1) * n + k];
        for (int q = 1; q < order; q++)
            acc = acc + c[q] * d[(size_t)(s->n_hist - 1 - q) * n + k];
        x[k] = x[k] + acc;
    }
}

static void alpha_sigma_t(float sigma, float *alpha, float *sig_t)
{
    *alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sig_t = sigma * *alpha;
}

static void step_dpm(sld_sched *s, int i, const float *mo, float *x, size_t n)
{
    int last = s->n_steps - 1;
    int lower_final = i == last && (s->euler_at_final || (s->lower_order_final && s->n_steps < 15) ||
                                    s->final_sigma_zero);
    float a_s0, s_s0;
    alpha_sigma_t(s->sigmas[i], &a_s0, &s_s0);
    /* model_outputs[0] <- [1]; [1] <- x0 prediction */
    float *m1 = s->hist, *m0 = s->hist + n;
    if (s->n_hist >= 1)
        memcpy(m1, m0, n * sizeof(float));
    for (size_t k = 0; k < n; k++)
        m0[k] = s->vpred ? a_s0 * x[k] - s_s0 * mo[k] : (x[k] - s_s0 * mo[k]) / a_s0;
    s->n_hist = s->n_hist < 2 ? s->n_hist + 1 : 2;

    float a_t, s_t;
    alpha_sigma_t(s->sigmas[i + 1], &a_t, &s_t);
    float lam_t = logf(a_t) - logf(s_t);
    float lam_s0 = logf(a_s0) - logf(s_s0);
    float h = lam_t - lam_s0;
    float ratio = s_t / s_s0;
    float c0 = a_t * (expf(-h) - 1.0f);
    if (s->lower_order_nums < 1 || lower_final) {
        for (size_t k = 0; k < n; k++)
            x[k] = ratio * x[k] - c0 * m0[k];
    } else {
        float a_s1, s_s1;
        alpha_sigma_t(s->sigmas[i - 1], &a_s1, &s_s1);
        float lam_s1 = logf(a_s1) - logf(s_s1);
        float h0 = lam_s0 - lam_s1;
        float r0 = h0 / h;
        float inv_r0 = 1.0f / r0;
        float c1 = 0.5f * c0;
        for (size_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = ratio * x[k] - c0 * m0[k] - c1 * d1;
        }
    }
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
}

sld_status sld_sched_step(sld_sched *s, int i, const float *model_out, float *sample, size_t n,
                          sld_rng *rng, float *pred_original, sld_error *err)
{
    if (!s->timesteps)
        return sld_err(err, SLD_ERR_INVALID_ARG, "scheduler: set_timesteps was not called");
    if (i != s->next_i || i >= s->n_iters)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "scheduler: step %d out of order (expected %d of %d iterations)", i,
                       s->next_i, s->n_iters);
    if (sld_sched_needs_noise(s) && !rng)
        return sld_err(err, SLD_ERR_INVALID_ARG, "scheduler: %s needs a generator for its noise",
                       sld_sampler_name(s->kind));
    if (i == 0 && s->n != n) {
        sld_status st = sld_sched_reserve(s, n, err);
        if (st)
            return st;
    }
    if (n != s->n || !s->hist)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "scheduler: tensor size changed mid-loop (%zu floats, loop uses %zu)", n,
                       s->n);
    switch (s->kind) {
    case SLD_SAMPLER_PNDM:
        fill_nan(pred_original, n);
        step_pndm(s, i, model_out, sample, n);
        break;
    case SLD_SAMPLER_DDIM:
        step_ddim(s, i, model_out, sample, n, rng, pred_original);
        break;
    case SLD_SAMPLER_EULER:
    case SLD_SAMPLER_EULER_A:
        step_euler(s, i, model_out, sample, n, rng, pred_original);
        break;
    case SLD_SAMPLER_LMS:
        step_lms(s, i, model_out, sample, n, pred_original);
        break;
    default:
        fill_nan(pred_original, n);
        step_dpm(s, i, model_out, sample, n);
        break;
    }
    s->next_i++;
    return SLD_OK;
}
