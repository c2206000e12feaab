/*
 * test.h — a tiny test harness. Each tests/test_<module>.c defines test
 * functions, lists them in main with RUN(), and ends with TEST_END(), which
 * prints "N passed, N failed" (read by tests/run.sh and CI).
 *
 *     static void test_x(void) { CHECK(1 + 1 == 2); CHECK_NEAR(a, b, 1e-6); }
 *     int main(void) { RUN(test_x); TEST_END(); }
 *
 * Fixture paths are relative to the repository root (tests run from there);
 * TEST_FIXTURES overrides the folder.
 */
#ifndef SLD_TEST_H
#define SLD_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail, t_cur_fail;
static const char *t_cur;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("FAIL %s: %s:%d: %s\n", t_cur, __FILE__, __LINE__, #cond);          \
            t_cur_fail++;                                                              \
        }                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                           \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("FAIL %s: %s:%d: %s: ", t_cur, __FILE__, __LINE__, #cond);          \
            printf(__VA_ARGS__);                                                       \
            printf("\n");                                                              \
            t_cur_fail++;                                                              \
        }                                                                              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double t_a = (a), t_b = (b);                                                   \
        if (!(fabs(t_a - t_b) <= (tol))) {                                             \
            printf("FAIL %s: %s:%d: %s = %.9g, %s = %.9g (tol %g)\n", t_cur, __FILE__,   \
                   __LINE__, #a, t_a, #b, t_b, (double)(tol));                         \
            t_cur_fail++;                                                              \
        }                                                                              \
    } while (0)

/* Compares n floats; prints max-abs error, NMSE and the first mismatches. */
static inline int t_check_close(const char *what, const float *got, const float *want, size_t n,
                                double tol, const char *file, int line)
{
    double maxd = 0, se = 0, ss = 0;
    size_t bad = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol)) {
            if (bad < 5)
                printf("  %s[%zu]: got %.9g want %.9g\n", what, i, got[i], want[i]);
            bad++;
        }
        if (d > maxd || d != d) {
            maxd = d;
            worst = i;
        }
        se += d * d;
        ss += (double)want[i] * want[i];
    }
    if (bad) {
        printf("FAIL %s: %s:%d: %s: %zu of %zu beyond %g, max |d| %.3g at %zu, nmse %.3g\n",
               t_cur, file, line, what, bad, n, tol, maxd, worst, ss > 0 ? se / ss : se);
        t_cur_fail++;
        return 0;
    }
    return 1;
}
#define CHECK_CLOSE(what, got, want, n, tol) t_check_close(what, got, want, n, tol, __FILE__, __LINE__)

#define RUN(fn)                                                                        \
    do {                                                                               \
        t_cur = #fn;                                                                   \
        t_cur_fail = 0;                                                                \
        fn();                                                                          \
        if (t_cur_fail) {                                                              \
            t_fail++;                                                                  \
        } else {                                                                       \
            t_pass++;                                                                  \
            printf("ok   %s\n", #fn);                                                  \
        }                                                                              \
        fflush(stdout);                                                                \
    } while (0)

#define TEST_END()                                                                     \
    do {                                                                               \
        printf("%d passed, %d failed\n", t_pass, t_fail);                              \
        return t_fail ? 1 : 0;                                                         \
    } while (0)

/* Path of a fixture file under tests/fixtures (or $TEST_FIXTURES). Returns a
 * static buffer (not reentrant: copy before the next call). */
static inline const char *fixture(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("TEST_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "tests/fixtures", rel);
    return buf;
}

#endif /* SLD_TEST_H */
