/*
 * fid.h — feature statistics, the Fréchet distance (FID) and the kernel
 * inception distance (KID), all in float64.
 *
 * FID (pytorch-fid's calculate_frechet_distance, Heusel et al. 2017):
 *   d² = |μ1 − μ2|² + Tr Σ1 + Tr Σ2 − 2 Tr sqrtm(Σ1 Σ2)
 * with Tr sqrtm(Σ1 Σ2) = Σ_i sqrt(λ_i(Σ1^½ Σ2 Σ1^½)): Σ1^½ from one
 * symmetric eigen-decomposition (LAPACK dsyevd), the eigenvalues of the
 * symmetric product from another; negative round-off eigenvalues are clamped
 * to 0. This stays real and stable when N < D makes both covariances
 * singular, where scipy's sqrtm needs pytorch-fid's ε·I retry.
 *
 * KID (torch-fidelity's kid_features_to_metric, Bińkowski et al. 2018):
 * polynomial kernel k(x,y) = (x·y/D + 1)³, unbiased MMD²
 *   (ΣK_XX − tr)/(m(m−1)) + (ΣK_YY − tr)/(n(n−1)) − 2 ΣK_XY/(mn),
 * averaged over subsets: subset s draws `size` rows of X, then `size` rows
 * of Y, each as numpy.random.RandomState(seed).choice(N, size,
 * replace=False) on one generator — the legacy algorithm, reproduced here:
 * MT19937 seeded like RandomState(int), permutation(N) by the backwards
 * Fisher-Yates shuffle with masked rejection sampling (random_interval),
 * keep the first `size`. Result: mean and population std over subsets. As in
 * torch-fidelity, a subset larger than either set is an error.
 */
#ifndef SLD_EVAL_FID_H
#define SLD_EVAL_FID_H

#include "core/core.h"

/* torch-fidelity's defaults. */
#define SLD_KID_SUBSETS 100
#define SLD_KID_SUBSET_SIZE 1000
#define SLD_KID_SEED 2020

/* Statistics of a feature set: mu [D], sigma [D,D] (covariance, N − 1). */
typedef struct {
    int D;
    long N;     /* samples the statistics came from (0 when unknown, e.g. .npz) */
    double *mu, *sigma;
} sld_fid_stats;

void sld_fid_stats_free(sld_fid_stats *s); /* frees the arrays, keeps the struct */

/* Checks every value is finite: SLD_ERR_INVALID_ARG naming what (label),
 * the row and column of the first NaN/Inf. */
sld_status sld_features_check(const float *x, long N, int D, const char *label, sld_error *err);

/* Mean and covariance (np.cov: rows are samples, N − 1) of x [N,D] in
 * float64. Needs N >= 2. */
sld_status sld_fid_stats_compute(const float *x, long N, int D, sld_fid_stats *out,
                                 sld_error *err);

/* The Fréchet distance between two statistics of equal width. */
sld_status sld_frechet_distance(const sld_fid_stats *a, const sld_fid_stats *b, double *out,
                                sld_error *err);

/* The Fréchet distance between statistics a and the sample x [n,D] (np.cov
 * statistics, as sld_fid_stats_compute). For n < D it never forms the
 * D x D covariance of x: with A = (x − mean)/sqrt(n−1), Σ2 = AᵀA and the
 * nonzero eigenvalues of Σ1^½ Σ2 Σ1^½ are those of the n x n matrix
 * A Σ1 Aᵀ, so Tr sqrtm(Σ1 Σ2) = Σ sqrt(λ(A Σ1 Aᵀ)) exactly — two thin
 * products and an n x n eigenvalue problem instead of two D x D ones. For
 * n >= D: sld_fid_stats_compute + sld_frechet_distance. */
sld_status sld_frechet_distance_sample(const sld_fid_stats *a, const float *x, long n, int D,
                                       double *out, sld_error *err);

/* Unbiased polynomial-kernel MMD² of x [m,D] against y [n,D] (m, n >= 2). */
sld_status sld_kid_mmd2(const float *x, long m, const float *y, long n, int D, double *out,
                        sld_error *err);

/* KID over `subsets` subsets of `size` rows drawn as described above; values
 * (may be NULL) receives the per-subset MMD² [subsets]. */
sld_status sld_kid_subsets(const float *x, long m, const float *y, long n, int D, int subsets,
                           long size, uint32_t seed, double *mean, double *std, double *values,
                           sld_error *err);

/* numpy.random.RandomState(seed): successive choice(N, size, replace=False)
 * draws on one generator. */
typedef struct sld_np_rng sld_np_rng;
sld_status sld_np_rng_new(sld_np_rng **out, uint32_t seed, sld_error *err);
void sld_np_rng_free(sld_np_rng *r);
/* idx [size] = RandomState.choice(N, size, replace=False) (0 < size <= N). */
sld_status sld_np_rng_choice(sld_np_rng *r, long N, long size, long *idx, sld_error *err);
/* *out = RandomState.randint(n) (0 <= *out < n; n = 1 draws nothing). */
sld_status sld_np_rng_randint(sld_np_rng *r, long n, long *out, sld_error *err);

/* A feature set read from a file (quality.c): a pytorch-fid .npz (statistics
 * only: feats NULL, N 0) or a .safetensors file (sld_metrics_features'
 * layout or a 2-D "features" [N,D]: feats [N,D] and their statistics).
 * Values are checked finite. Errors: SLD_ERR_FORMAT (.npz without mu/sigma,
 * malformed files), SLD_ERR_SHAPE (features of different widths),
 * SLD_ERR_INVALID_ARG (NaN/Inf, a folder, an unknown kind), SLD_ERR_IO. */
typedef struct {
    float *feats;
    long N;
    int D;
    sld_fid_stats stats;
} sld_feature_set;
sld_status sld_feature_set_load(const char *path, sld_feature_set *out, sld_error *err);
void sld_feature_set_free(sld_feature_set *s); /* NULL is a no-op */

#endif /* SLD_EVAL_FID_H */
