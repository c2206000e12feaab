/*
 * fid.c — statistics, Fréchet distance, KID and numpy's RandomState.choice
 * (fid.h). Dense linear algebra goes to BLAS/LAPACK from Debian (Fortran
 * symbols: dsyrk_, dgemm_, dsyevd_), everything in float64.
 */
#include "eval/fid.h"

#include "sample/rng.h"

#include <math.h>
#include <string.h>

/* Fortran BLAS / LAPACK (column-major; our row-major symmetric matrices are
 * their own transposes, and row-major products are computed as the
 * transposed column-major ones). */
extern void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k,
                   const double *alpha, const double *a, const int *lda, const double *beta,
                   double *c, const int *ldc);
extern void dgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k,
                   const double *alpha, const double *a, const int *lda, const double *b,
                   const int *ldb, const double *beta, double *c, const int *ldc);
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info);

void sld_fid_stats_free(sld_fid_stats *s)
{
    if (!s)
        return;
    sld_free(s->mu);
    sld_free(s->sigma);
    s->mu = s->sigma = NULL;
}

sld_status sld_features_check(const float *x, long N, int D, const char *label, sld_error *err)
{
    for (long i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            if (!isfinite(x[(size_t)i * D + j]))
                return sld_err(err, SLD_ERR_INVALID_ARG,
                               "%s: feature %d of sample %ld is %s: the features are broken "
                               "(recompute them)",
                               label, j, i, isnan(x[(size_t)i * D + j]) ? "NaN" : "infinite");
    return SLD_OK;
}

sld_status sld_fid_stats_compute(const float *x, long N, int D, sld_fid_stats *out,
                                 sld_error *err)
{
    memset(out, 0, sizeof *out);
    if (N < 2 || D < 1 || N > 2147483647L)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "statistics need at least 2 samples of width >= 1 (got %ld of %d)", N, D);
    size_t nd = (size_t)N * D;
    double *xc = sld_malloc(nd * sizeof *xc);
    out->mu = sld_calloc((size_t)D, sizeof *out->mu);
    out->sigma = sld_malloc((size_t)D * D * sizeof *out->sigma);
    if (!xc || !out->mu || !out->sigma) {
        sld_free(xc);
        sld_fid_stats_free(out);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory for the statistics of %ld x %d", N,
                       D);
    }
    out->D = D;
    out->N = N;
    for (long i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            out->mu[j] += x[(size_t)i * D + j];
    for (int j = 0; j < D; j++)
        out->mu[j] /= (double)N;
    for (long i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            xc[(size_t)i * D + j] = x[(size_t)i * D + j] - out->mu[j];
    /* Row-major xc [N,D] is column-major xc^T [D,N]: sigma = xc^T xc / (N-1)
     * is C = A A^T with A = that [D,N] matrix. */
    int n = D, k = (int)N;
    double alpha = 1.0 / (double)(N - 1), beta = 0;
    dsyrk_("U", "N", &n, &k, &alpha, xc, &n, &beta, out->sigma, &n);
    /* fill the other triangle (column-major upper = row-major lower) */
    for (int i = 0; i < D; i++)
        for (int j = 0; j < i; j++)
            out->sigma[(size_t)j * D + i] = out->sigma[(size_t)i * D + j];
    sld_free(xc);
    return SLD_OK;
}

/* Eigen-decomposition of the symmetric a [n,n] in place: w receives the
 * ascending eigenvalues and, with vectors, a the eigenvectors (columns,
 * column-major); without, a is destroyed. */
static sld_status syevd(double *a, int n, double *w, bool vectors, sld_error *err)
{
    int lwork = -1, liwork = -1, info = 0, iw;
    double wq;
    const char *jobz = vectors ? "V" : "N";
    dsyevd_(jobz, "U", &n, a, &n, w, &wq, &lwork, &iw, &liwork, &info);
    if (info)
        return sld_err(err, SLD_ERR_INTERNAL, "LAPACK dsyevd workspace query failed (%d)", info);
    lwork = (int)wq;
    liwork = iw;
    double *work = sld_malloc((size_t)lwork * sizeof *work);
    int *iwork = sld_malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        sld_free(work);
        sld_free(iwork);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory for an eigen-decomposition of %d", n);
    }
    dsyevd_(jobz, "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info);
    sld_free(work);
    sld_free(iwork);
    if (info)
        return sld_err(err, SLD_ERR_INTERNAL,
                       "LAPACK dsyevd did not converge (info %d) on a %dx%d covariance", info,
                       n, n);
    return SLD_OK;
}

sld_status sld_frechet_distance(const sld_fid_stats *a, const sld_fid_stats *b, double *out,
                                sld_error *err)
{
    *out = NAN;
    if (a->D != b->D)
        return sld_err(err, SLD_ERR_SHAPE,
                       "the two feature sets have different widths (%d and %d): compare "
                       "features of the same network layer",
                       a->D, b->D);
    const int D = a->D;
    const size_t DD = (size_t)D * D;
    for (size_t i = 0; i < DD; i++)
        if (!isfinite(a->sigma[i]) || !isfinite(b->sigma[i]))
            return sld_err(err, SLD_ERR_INVALID_ARG, "a covariance holds NaN or Inf");
    for (int i = 0; i < D; i++)
        if (!isfinite(a->mu[i]) || !isfinite(b->mu[i]))
            return sld_err(err, SLD_ERR_INVALID_ARG, "a mean holds NaN or Inf");
    double *v = sld_malloc(DD * sizeof *v), *t = sld_malloc(DD * sizeof *t),
           *s = sld_malloc(DD * sizeof *s), *w = sld_malloc((size_t)D * sizeof *w);
    sld_status st = SLD_OK;
    if (!v || !t || !s || !w) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory for the Fréchet distance (D = %d)", D);
        goto done;
    }
    /* sqrt(S1) = V diag(sqrt(max(l, 0))) V^T */
    memcpy(v, a->sigma, DD * sizeof *v);
    if ((st = syevd(v, D, w, true, err)))
        goto done;
    /* t = V diag(l^1/4) (column j scaled; column-major V: column j at v + j*D),
     * so that t t^T = V diag(sqrt l) V^T */
    for (int j = 0; j < D; j++) {
        double r = w[j] > 0 ? sqrt(sqrt(w[j])) : 0;
        for (int i = 0; i < D; i++)
            t[(size_t)j * D + i] = v[(size_t)j * D + i] * r;
    }
    double one = 1, zero = 0;
    /* s = t t^T = sqrt(S1) (symmetric: layout does not matter) */
    dsyrk_("U", "N", &D, &D, &one, t, &D, &zero, s, &D);
    for (int j = 0; j < D; j++)
        for (int i = 0; i < j; i++)
            s[(size_t)i * D + j] = s[(size_t)j * D + i]; /* lower from upper */
    /* m = s S2 s: t = s S2, then v = t s */
    dgemm_("N", "N", &D, &D, &D, &one, s, &D, b->sigma, &D, &zero, t, &D);
    dgemm_("N", "N", &D, &D, &D, &one, t, &D, s, &D, &zero, v, &D);
    /* symmetrise round-off before the symmetric solver */
    for (int j = 0; j < D; j++)
        for (int i = 0; i < j; i++) {
            double m = 0.5 * (v[(size_t)j * D + i] + v[(size_t)i * D + j]);
            v[(size_t)j * D + i] = v[(size_t)i * D + j] = m;
        }
    if ((st = syevd(v, D, w, false, err)))
        goto done;
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dmu = 0;
    for (int i = 0; i < D; i++) {
        tr_sqrt += w[i] > 0 ? sqrt(w[i]) : 0;
        tr1 += a->sigma[(size_t)i * D + i];
        tr2 += b->sigma[(size_t)i * D + i];
        dmu += (a->mu[i] - b->mu[i]) * (a->mu[i] - b->mu[i]);
    }
    *out = dmu + tr1 + tr2 - 2 * tr_sqrt;
done:
    sld_free(v);
    sld_free(t);
    sld_free(s);
    sld_free(w);
    return st;
}

sld_status sld_frechet_distance_sample(const sld_fid_stats *a, const float *x, long n, int D,
                                       double *out, sld_error *err)
{
    *out = NAN;
    if (a->D != D)
        return sld_err(err, SLD_ERR_SHAPE,
                       "the two feature sets have different widths (%d and %d): compare "
                       "features of the same network layer",
                       a->D, D);
    if (n >= D) {
        sld_fid_stats b;
        sld_status st = sld_fid_stats_compute(x, n, D, &b, err);
        if (!st)
            st = sld_frechet_distance(a, &b, out, err);
        sld_fid_stats_free(&b);
        return st;
    }
    if (n < 2)
        return sld_err(err, SLD_ERR_INVALID_ARG, "FID needs at least 2 samples (got %ld)", n);
    const size_t DD = (size_t)D * D;
    for (size_t i = 0; i < DD; i++)
        if (!isfinite(a->sigma[i]))
            return sld_err(err, SLD_ERR_INVALID_ARG, "a covariance holds NaN or Inf");
    const int m = (int)n;
    double *mu = sld_calloc((size_t)D, sizeof *mu);
    double *xc = sld_malloc((size_t)m * D * sizeof *xc);
    double *t = sld_malloc((size_t)m * D * sizeof *t);
    double *g = sld_malloc((size_t)m * m * sizeof *g), *w = sld_malloc((size_t)m * sizeof *w);
    sld_status st = SLD_OK;
    if (!mu || !xc || !t || !g || !w) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory for the Fréchet distance (n = %ld)", n);
        goto done;
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < D; j++)
            mu[j] += x[(size_t)i * D + j];
    for (int j = 0; j < D; j++)
        mu[j] /= (double)n;
    /* A = xc / sqrt(n-1), so Σ2 = A^T A */
    const double sc = 1.0 / sqrt((double)(n - 1));
    double tr2 = 0, tr1 = 0, dmu = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < D; j++) {
            double v = (x[(size_t)i * D + j] - mu[j]) * sc;
            xc[(size_t)i * D + j] = v;
            tr2 += v * v;
        }
    /* row-major A [m,D] is column-major A^T [D,m]; t^T = Σ1 A^T (Σ1 symmetric),
     * then g = A Σ1 A^T = (A^T)^T t^T [m,m] */
    double one = 1, zero = 0;
    dgemm_("N", "N", &D, &m, &D, &one, a->sigma, &D, xc, &D, &zero, t, &D);
    dgemm_("T", "N", &m, &m, &D, &one, xc, &D, t, &D, &zero, g, &m);
    for (int j = 0; j < m; j++)
        for (int i = 0; i < j; i++) {
            double v = 0.5 * (g[(size_t)j * m + i] + g[(size_t)i * m + j]);
            g[(size_t)j * m + i] = g[(size_t)i * m + j] = v;
        }
    if ((st = syevd(g, m, w, false, err)))
        goto done;
    double tr_sqrt = 0;
    for (int i = 0; i < m; i++)
        tr_sqrt += w[i] > 0 ? sqrt(w[i]) : 0;
    for (int i = 0; i < D; i++) {
        tr1 += a->sigma[(size_t)i * D + i];
        dmu += (a->mu[i] - mu[i]) * (a->mu[i] - mu[i]);
    }
    *out = dmu + tr1 + tr2 - 2 * tr_sqrt;
done:
    sld_free(mu);
    sld_free(xc);
    sld_free(t);
    sld_free(g);
    sld_free(w);
    return st;
}

/* ---- KID ------------------------------------------------------------------- */

/* Kernel block K = (X Y^T / D + 1)^3 for row-major x [m,D], y [n,D] (as
 * double); returns the sum of its entries (and of its diagonal in *diag
 * when same). k is scratch [m,n]. */
static double kernel_sum(const double *x, int m, const double *y, int n, int D, double *k,
                         bool same, double *diag)
{
    double g = 1.0 / D, zero = 0;
    /* row-major K [m,n] = column-major K^T [n,m] = Y X^T (col-major Y^T [D,n]) */
    dgemm_("T", "N", &n, &m, &D, &g, y, &D, x, &D, &zero, k, &n);
    double sum = 0, dg = 0;
    for (int i = 0; i < m; i++) {
        double rs = 0;
        for (int j = 0; j < n; j++) {
            double e = k[(size_t)i * n + j] + 1;
            rs += e * e * e;
        }
        sum += rs;
        if (same) {
            double e = k[(size_t)i * n + i] + 1;
            dg += e * e * e;
        }
    }
    if (diag)
        *diag = dg;
    return sum;
}

static double *to_double(const float *x, size_t n)
{
    double *d = sld_malloc((n ? n : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++)
            d[i] = x[i];
    return d;
}

/* MMD² of double row sets; k scratch of max(m,n)^2. */
static double mmd2(const double *x, int m, const double *y, int n, int D, double *k)
{
    double dx, dy;
    double sxx = kernel_sum(x, m, x, m, D, k, true, &dx);
    double syy = kernel_sum(y, n, y, n, D, k, true, &dy);
    double sxy = kernel_sum(x, m, y, n, D, k, false, NULL);
    return (sxx - dx) / ((double)m * (m - 1)) + (syy - dy) / ((double)n * (n - 1)) -
           2 * sxy / ((double)m * n);
}

sld_status sld_kid_mmd2(const float *x, long m, const float *y, long n, int D, double *out,
                        sld_error *err)
{
    *out = NAN;
    if (m < 2 || n < 2 || D < 1 || m > 100000 || n > 100000)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "KID needs 2..100000 samples per set (got %ld and %ld); use subsets",
                       m, n);
    size_t mx = (size_t)(m > n ? m : n);
    double *xd = to_double(x, (size_t)m * D), *yd = to_double(y, (size_t)n * D),
           *k = sld_malloc(mx * mx * sizeof *k);
    sld_status st = SLD_OK;
    if (!xd || !yd || !k)
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory for KID of %ld x %ld samples", m, n);
    else
        *out = mmd2(xd, (int)m, yd, (int)n, D, k);
    sld_free(xd);
    sld_free(yd);
    sld_free(k);
    return st;
}

sld_status sld_kid_subsets(const float *x, long m, const float *y, long n, int D, int subsets,
                           long size, uint32_t seed, double *mean, double *std, double *values,
                           sld_error *err)
{
    *mean = *std = NAN;
    if (subsets < 1 || size < 2)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "KID needs >= 1 subset of >= 2 samples (got %d of %ld)", subsets, size);
    if (m < size || n < size)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "KID subset size %ld is larger than a feature set (%ld and %ld samples): "
                       "lower it (--kid-subset-size) or add samples",
                       size, m, n);
    sld_np_rng *r = NULL;
    sld_status st = sld_np_rng_new(&r, seed, err);
    if (st)
        return st;
    size_t sz = (size_t)size;
    long *idx = sld_malloc(sz * sizeof *idx);
    double *xs = sld_malloc(sz * D * sizeof *xs), *ys = sld_malloc(sz * D * sizeof *ys),
           *k = sld_malloc(sz * sz * sizeof *k), *vals = sld_malloc((size_t)subsets * sizeof *vals);
    if (!idx || !xs || !ys || !k || !vals) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory for KID subsets of %ld", size);
        goto done;
    }
    for (int s = 0; s < subsets; s++) {
        if ((st = sld_np_rng_choice(r, m, size, idx, err)))
            goto done;
        for (size_t i = 0; i < sz; i++)
            for (int j = 0; j < D; j++)
                xs[i * D + j] = x[(size_t)idx[i] * D + j];
        if ((st = sld_np_rng_choice(r, n, size, idx, err)))
            goto done;
        for (size_t i = 0; i < sz; i++)
            for (int j = 0; j < D; j++)
                ys[i * D + j] = y[(size_t)idx[i] * D + j];
        vals[s] = mmd2(xs, (int)size, ys, (int)size, D, k);
    }
    double sum = 0, ss = 0;
    for (int s = 0; s < subsets; s++)
        sum += vals[s];
    *mean = sum / subsets;
    for (int s = 0; s < subsets; s++)
        ss += (vals[s] - *mean) * (vals[s] - *mean);
    *std = sqrt(ss / subsets);
    if (values)
        memcpy(values, vals, (size_t)subsets * sizeof *vals);
done:
    sld_np_rng_free(r);
    sld_free(idx);
    sld_free(xs);
    sld_free(ys);
    sld_free(k);
    sld_free(vals);
    return st;
}

/* ---- numpy RandomState ----------------------------------------------------- */

struct sld_np_rng {
    sld_rng mt; /* the same MT19937 and init_genrand seeding as torch's */
    long cap;
    long *perm;
};

sld_status sld_np_rng_new(sld_np_rng **out, uint32_t seed, sld_error *err)
{
    *out = sld_calloc(1, sizeof **out);
    if (!*out)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    sld_rng_seed(&(*out)->mt, seed, SLD_RNG_DEFAULT);
    return SLD_OK;
}

void sld_np_rng_free(sld_np_rng *r)
{
    if (!r)
        return;
    sld_free(r->perm);
    sld_free(r);
}

/* numpy's random_interval: uniform in [0, max] by masked rejection. */
static uint64_t random_interval(sld_np_rng *r, uint64_t max)
{
    if (max == 0)
        return 0;
    uint64_t mask = max, v;
    for (int s = 1; s <= 32; s *= 2)
        mask |= mask >> s;
    if (max <= 0xffffffffu) {
        while ((v = (sld_rng_u32(&r->mt) & mask)) > max) {
        }
    } else {
        do {
            uint64_t hi = sld_rng_u32(&r->mt);
            v = ((hi << 32) | sld_rng_u32(&r->mt)) & mask;
        } while (v > max);
    }
    return v;
}

sld_status sld_np_rng_choice(sld_np_rng *r, long N, long size, long *idx, sld_error *err)
{
    if (N < 1 || size < 0 || size > N)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "cannot take a sample of %ld without replacement from %ld", size, N);
    if (N > r->cap) {
        long *p = sld_realloc(r->perm, (size_t)N * sizeof *p);
        if (!p)
            return sld_err(err, SLD_ERR_NOMEM, "out of memory for a permutation of %ld", N);
        r->perm = p;
        r->cap = N;
    }
    /* permutation(N): arange shuffled from the back, j uniform in [0, i] */
    for (long i = 0; i < N; i++)
        r->perm[i] = i;
    for (long i = N - 1; i >= 1; i--) {
        long j = (long)random_interval(r, (uint64_t)i);
        long t = r->perm[i];
        r->perm[i] = r->perm[j];
        r->perm[j] = t;
    }
    memcpy(idx, r->perm, (size_t)size * sizeof *idx);
    return SLD_OK;
}

sld_status sld_np_rng_randint(sld_np_rng *r, long n, long *out, sld_error *err)
{
    if (n < 1)
        return sld_err(err, SLD_ERR_INVALID_ARG, "randint(%ld): need n >= 1", n);
    /* legacy randint: masked rejection on [0, n-1], the same as random_interval */
    *out = (long)random_interval(r, (uint64_t)(n - 1));
    return SLD_OK;
}
