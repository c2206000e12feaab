/* test_metrics.c — EMI exact vs hand-computed values and brute-force
 * enumeration; bootstrap vs exact within its standard error; statistics. */
#include "eval/metrics.h"
#include "test.h"

static void test_emi_hand_computed(void)
{
    double r3[3] = {1.0, 0.0, 0.5}, e;
    /* pairs {0,.5} {0,1} {.5,1}: maxima .5, 1, 1 -> 2.5/3 */
    CHECK(sld_emi_exact(r3, 3, 2, &e, NULL) == SLD_OK);
    CHECK_NEAR(e, 2.5 / 3.0, 1e-15);
    CHECK(r3[0] == 1.0 && r3[1] == 0.0); /* input untouched */
    double r4[4] = {0.4, 0.1, 0.3, 0.2};
    /* six pairs, maxima .2 .3 .4 .3 .4 .4 -> 2.0/6 */
    CHECK(sld_emi_exact(r4, 4, 2, &e, NULL) == SLD_OK);
    CHECK_NEAR(e, 2.0 / 6.0, 1e-15);
    /* k = 1: the mean; k >= n: the maximum. */
    CHECK(sld_emi_exact(r4, 4, 1, &e, NULL) == SLD_OK);
    CHECK_NEAR(e, 0.25, 1e-15);
    CHECK(sld_emi_exact(r4, 4, 25, &e, NULL) == SLD_OK);
    CHECK_NEAR(e, 0.4, 1e-15);
    CHECK(sld_emi_exact(r4, 0, 25, &e, NULL) == SLD_OK && e == 0);
    CHECK(sld_emi_exact(r4, 4, 0, &e, NULL) == SLD_ERR_INVALID_ARG);
}

/* Sum of max over all k-subsets of v[start..n), recursively. */
static double subset_max_sum(const double *v, int n, int start, int k, double cur, long *count)
{
    if (k == 0) {
        (*count)++;
        return cur;
    }
    double s = 0;
    for (int i = start; i <= n - k; i++)
        s += subset_max_sum(v, n, i + 1, k - 1, v[i] > cur ? v[i] : cur, count);
    return s;
}

static void test_emi_vs_enumeration(void)
{
    double v[12];
    uint32_t x = 12345;
    for (int i = 0; i < 12; i++) {
        x = x * 1664525u + 1013904223u;
        v[i] = (x >> 8) % 11 / 10.0; /* rates in tenths, with ties */
    }
    for (int k = 1; k <= 12; k++) {
        long count = 0;
        double want = subset_max_sum(v, 12, 0, k, -1, &count) / (double)count, e;
        CHECK(sld_emi_exact(v, 12, k, &e, NULL) == SLD_OK);
        CHECK_NEAR(e, want, 1e-12);
    }
}

static void test_emi_bootstrap(void)
{
    enum { N = 300 };
    double v[N];
    for (int i = 0; i < N; i++)
        v[i] = (i % 17 == 0) ? 0.9 : (i % 5) / 10.0;
    double exact, mean, std;
    CHECK(sld_emi_exact(v, N, 25, &exact, NULL) == SLD_OK);
    CHECK(sld_emi_bootstrap(v, N, 25, 10000, 7, &mean, &std, NULL) == SLD_OK);
    /* The bootstrap mean estimates the exact expectation: within 5 standard
     * errors (std/sqrt(draws)). */
    CHECK_MSG(fabs(mean - exact) <= 5 * std / 100.0 + 1e-12, "exact %.6f boot %.6f std %.6f",
              exact, mean, std);
    CHECK(std > 0);
    /* Seeded: identical when repeated, different for another seed. */
    double m2, s2;
    CHECK(sld_emi_bootstrap(v, N, 25, 10000, 7, &m2, &s2, NULL) == SLD_OK);
    CHECK(m2 == mean && s2 == std);
    CHECK(sld_emi_bootstrap(v, N, 25, 10000, 8, &m2, &s2, NULL) == SLD_OK);
    CHECK(m2 != mean);
    /* k >= n: every draw is the whole set. */
    double r3[3] = {0, 0.5, 1};
    CHECK(sld_emi_bootstrap(r3, 3, 25, 100, 1, &mean, &std, NULL) == SLD_OK);
    CHECK(mean == 1.0 && std == 0.0);
    /* The small example: maxima are .5 w.p. 1/3 and 1 w.p. 2/3. */
    CHECK(sld_emi_bootstrap(r3, 3, 2, 30000, 3, &mean, &std, NULL) == SLD_OK);
    double sd = sqrt(2.0 / 9.0 * 0.25);
    CHECK_NEAR(mean, 2.5 / 3.0, 5 * sd / sqrt(30000.0));
    CHECK_NEAR(std, sd, 0.01);
}

static void test_mean_std(void)
{
    double v[4] = {0, 0.5, 1, 0.5}, m, s;
    sld_mean_std(v, 4, &m, &s);
    CHECK_NEAR(m, 0.5, 1e-15);
    CHECK_NEAR(s, sqrt(0.125), 1e-15); /* population std, as numpy's np.std */
    sld_mean_std(v, 0, &m, &s);
    CHECK(m == 0 && s == 0);
}

int main(void)
{
    RUN(test_emi_hand_computed);
    RUN(test_emi_vs_enumeration);
    RUN(test_emi_bootstrap);
    RUN(test_mean_std);
    TEST_END();
}
