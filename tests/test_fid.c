/* test_fid.c — FID statistics, Fréchet distance and KID against pytorch-fid /
 * torch-fidelity goldens (tests/fixtures/fid: frechet.safetensors, kid.json,
 * stats_a64.npz), numpy's RandomState.choice, .npy/.npz reading and writing,
 * and the bad-input errors. The Inception network is tested in
 * test_inception.c. */
#include "eval/fid.h"
#include "io/json.h"
#include "io/npz.h"
#include "io/safetensors.h"
#include "test.h"

#include <unistd.h>

#define FIX "tests/fixtures/fid/"

static sld_st_file *open_frechet(void)
{
    sld_st_file *f = NULL;
    sld_error e;
    if (sld_st_open(&f, FIX "frechet.safetensors", &e))
        printf("  %s\n", e.msg);
    return f;
}

static float *feats(sld_st_file *f, const char *name, long *N, int *D)
{
    const sld_st_tensor *t = sld_st_find(f, name);
    if (!t || t->ndim != 2)
        return NULL;
    *N = (long)t->shape[0];
    *D = (int)t->shape[1];
    return sld_st_read_f32(f, name, 2, t->shape, NULL);
}

static double f64(sld_st_file *f, const char *name, size_t i)
{
    const sld_st_tensor *t = sld_st_find(f, name);
    double v;
    memcpy(&v, (const char *)t->data + i * 8, 8);
    return v;
}

static void test_stats_and_frechet(void)
{
    sld_st_file *f = open_frechet();
    CHECK(f);
    if (!f)
        return;
    const char *sets[2][2] = {{"a64", "b64"}, {"a2048", "b2048"}};
    const char *want[2] = {"fid64", "fid2048"};
    const double tol[2] = {1e-6, 1e-5};
    for (int c = 0; c < 2; c++) {
        long Na = 0, Nb = 0;
        int Da = 0, Db = 0;
        float *a = feats(f, sets[c][0], &Na, &Da), *b = feats(f, sets[c][1], &Nb, &Db);
        CHECK(a && b);
        sld_fid_stats sa, sb;
        CHECK(sld_fid_stats_compute(a, Na, Da, &sa, NULL) == SLD_OK);
        CHECK(sld_fid_stats_compute(b, Nb, Db, &sb, NULL) == SLD_OK);
        char mu[32];
        snprintf(mu, sizeof mu, "mu_%s", sets[c][0]);
        double md = 0;
        for (int i = 0; i < Da; i++)
            md = fmax(md, fabs(sa.mu[i] - f64(f, mu, (size_t)i)));
        CHECK_NEAR(md, 0, 1e-12);
        if (c == 0) {
            double sd = 0;
            for (int i = 0; i < Da * Da; i++)
                sd = fmax(sd, fabs(sa.sigma[i] - f64(f, "sigma_a64", (size_t)i)) +
                                  fabs(sb.sigma[i] - f64(f, "sigma_b64", (size_t)i)));
            CHECK_NEAR(sd, 0, 1e-12);
        }
        double d, ref = f64(f, want[c], 0);
        CHECK(sld_frechet_distance(&sa, &sb, &d, NULL) == SLD_OK);
        printf("  %s: %.12g (pytorch-fid %.12g, rel %.2g)\n", want[c], d, ref,
               fabs(d - ref) / ref);
        CHECK_NEAR(d / ref, 1, tol[c]);
        /* the same from the sample b itself (thin route when Nb < D) */
        double ds;
        CHECK(sld_frechet_distance_sample(&sa, b, Nb, Db, &ds, NULL) == SLD_OK);
        printf("  %s from the sample (%ld x %d): %.12g\n", want[c], Nb, Db, ds);
        CHECK_NEAR(ds / ref, 1, tol[c]);
        /* FID of a set against itself is 0 up to rounding */
        if (c == 0) {
            CHECK(sld_frechet_distance(&sa, &sa, &d, NULL) == SLD_OK);
            CHECK(fabs(d) < 1e-9 * ref);
        }
        sld_fid_stats_free(&sa);
        sld_fid_stats_free(&sb);
        sld_free(a);
        sld_free(b);
    }
    sld_st_close(f);
}

static void test_np_choice(void)
{
    /* kid.json: the first subset's first indices of each case */
    sld_json j;
    CHECK(sld_json_load(&j, FIX "kid.json", NULL) == SLD_OK);
    const cJSON *cases = cJSON_GetObjectItem(j.root, "cases");
    const char *sub[2] = {"subsets10_size200_seed2020", "subsets5_size250_seed7"};
    const long size[2] = {200, 250};
    const uint32_t seed[2] = {2020, 7};
    const long Ns[2][2] = {{500, 600}, {300, 400}};
    const char *cs[2] = {"a64_b64", "a2048_b2048"};
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 2; s++) {
            const cJSON *h = cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cases, cs[c]),
                                                        sub[s]),
                                    "first_subset_indices_head"),
                "a");
            const cJSON *hb = cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cases, cs[c]),
                                                        sub[s]),
                                    "first_subset_indices_head"),
                "b");
            CHECK(h && hb);
            if (!h || !hb)
                continue;
            sld_np_rng *r;
            CHECK(sld_np_rng_new(&r, seed[s], NULL) == SLD_OK);
            long idx[250];
            CHECK(sld_np_rng_choice(r, Ns[c][0], size[s], idx, NULL) == SLD_OK);
            for (int i = 0; i < cJSON_GetArraySize(h); i++)
                CHECK_MSG(idx[i] == (long)cJSON_GetArrayItem(h, i)->valuedouble,
                          "%s %s a[%d] = %ld", cs[c], sub[s], i, idx[i]);
            CHECK(sld_np_rng_choice(r, Ns[c][1], size[s], idx, NULL) == SLD_OK);
            for (int i = 0; i < cJSON_GetArraySize(hb); i++)
                CHECK_MSG(idx[i] == (long)cJSON_GetArrayItem(hb, i)->valuedouble,
                          "%s %s b[%d] = %ld", cs[c], sub[s], i, idx[i]);
            sld_np_rng_free(r);
        }
    sld_json_free(&j);
}

static void test_kid(void)
{
    sld_st_file *f = open_frechet();
    sld_json j;
    CHECK(sld_json_load(&j, FIX "kid.json", NULL) == SLD_OK);
    if (!f)
        return;
    const cJSON *cases = cJSON_GetObjectItem(j.root, "cases");
    const char *cs[2] = {"a64_b64", "a2048_b2048"};
    const char *sets[2][2] = {{"a64", "b64"}, {"a2048", "b2048"}};
    const char *sub[2] = {"subsets10_size200_seed2020", "subsets5_size250_seed7"};
    const int nsub[2] = {10, 5};
    const long size[2] = {200, 250};
    const uint32_t seed[2] = {2020, 7};
    for (int c = 0; c < 2; c++) {
        long Na = 0, Nb = 0;
        int Da = 0, Db = 0;
        float *a = feats(f, sets[c][0], &Na, &Da), *b = feats(f, sets[c][1], &Nb, &Db);
        const cJSON *cj = cJSON_GetObjectItem(cases, cs[c]);
        double full, ref = cJSON_GetObjectItem(cj, "full_unbiased_mmd2")->valuedouble;
        CHECK(sld_kid_mmd2(a, Na, b, Nb, Da, &full, NULL) == SLD_OK);
        CHECK_NEAR(full / ref, 1, 1e-6);
        for (int s = 0; s < 2; s++) {
            const cJSON *sj = cJSON_GetObjectItem(cj, sub[s]);
            double mean, std, vals[10];
            CHECK(sld_kid_subsets(a, Na, b, Nb, Da, nsub[s], size[s], seed[s], &mean, &std, vals,
                                  NULL) == SLD_OK);
            CHECK_NEAR(mean / cJSON_GetObjectItem(sj, "mean")->valuedouble, 1, 1e-6);
            CHECK_NEAR(std / cJSON_GetObjectItem(sj, "std")->valuedouble, 1, 1e-6);
            const cJSON *v = cJSON_GetObjectItem(sj, "values");
            for (int i = 0; i < nsub[s]; i++)
                CHECK_NEAR(vals[i] / cJSON_GetArrayItem(v, i)->valuedouble, 1, 1e-6);
        }
        /* torch-fidelity refuses a subset larger than a set */
        double m, sd;
        sld_error e;
        CHECK(sld_kid_subsets(a, Na, b, Nb, Da, 2, Na + 1, 1, &m, &sd, NULL, &e) ==
              SLD_ERR_INVALID_ARG);
        CHECK(strstr(e.msg, "--kid-subset-size") != NULL);
        sld_free(a);
        sld_free(b);
    }
    sld_json_free(&j);
    sld_st_close(f);
}

static void test_npz_read(void)
{
    sld_st_file *f = open_frechet();
    sld_npz *z;
    CHECK(sld_npz_open(&z, FIX "stats_a64.npz", NULL) == SLD_OK);
    if (!f || !z)
        return;
    sld_npy mu, sigma;
    CHECK(sld_npz_get(z, "mu", &mu, NULL) == SLD_OK);
    CHECK(sld_npz_get(z, "sigma", &sigma, NULL) == SLD_OK);
    CHECK(mu.ndim == 1 && mu.shape[0] == 64);
    CHECK(sigma.ndim == 2 && sigma.shape[0] == 64 && sigma.shape[1] == 64);
    for (int i = 0; i < 64; i++)
        CHECK(mu.data[i] == f64(f, "mu_a64", (size_t)i));
    for (int i = 0; i < 64 * 64; i++)
        CHECK(sigma.data[i] == f64(f, "sigma_a64", (size_t)i));
    sld_error e;
    sld_npy x;
    CHECK(sld_npz_get(z, "nothing", &x, &e) == SLD_ERR_FORMAT);
    CHECK(strstr(e.msg, "mu.npy") != NULL);
    sld_npy_free(&mu);
    sld_npy_free(&sigma);
    sld_npz_close(z);
    sld_st_close(f);
}

static void test_npz_write(void)
{
    double mu[3] = {1.5, -2, 3.25}, sig[6] = {1, 2, 3, 4, 5, 6};
    int64_t s1[1] = {3}, s2[2] = {2, 3};
    const char *keys[2] = {"mu", "sigma"};
    const double *data[2] = {mu, sig};
    const int nd[2] = {1, 2};
    const int64_t *shapes[2] = {s1, s2};
    char path[64];
    snprintf(path, sizeof path, "/tmp/sld-test-fid-%d.npz", (int)getpid());
    CHECK(sld_npz_write(path, 2, keys, data, nd, shapes, NULL) == SLD_OK);
    sld_npz *z;
    CHECK(sld_npz_open(&z, path, NULL) == SLD_OK);
    sld_npy a, b;
    CHECK(z && sld_npz_get(z, "mu", &a, NULL) == SLD_OK && sld_npz_get(z, "sigma", &b, NULL) == SLD_OK);
    CHECK(a.ndim == 1 && a.shape[0] == 3 && !memcmp(a.data, mu, sizeof mu));
    CHECK(b.ndim == 2 && b.shape[0] == 2 && b.shape[1] == 3 && !memcmp(b.data, sig, sizeof sig));
    sld_npy_free(&a);
    sld_npy_free(&b);
    sld_npz_close(z);
    unlink(path);
    /* The exact bytes numpy expects of an .npy 1.0 header. */
    uint8_t *npy;
    size_t len;
    CHECK(sld_npy_serialize(mu, 1, s1, &npy, &len, NULL) == SLD_OK);
    const char *hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
    CHECK(len == 128 + 24); /* 10 + 58 + '\n' padded to 128 */
    CHECK(!memcmp(npy, "\x93NUMPY\x01\x00\x76\x00", 10)); /* header length 118 */
    CHECK(!memcmp(npy + 10, hdr, strlen(hdr)));
    CHECK(npy[127] == '\n' && npy[126] == ' ' && npy[68] == ' ');
    CHECK(!memcmp(npy + 128, mu, sizeof mu));
    sld_free(npy);
    CHECK(sld_npy_serialize(sig, 2, s2, &npy, &len, NULL) == SLD_OK);
    CHECK(!memcmp(npy + 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 58));
    sld_free(npy);
}

static void test_npy_variants(void)
{
    /* float32, Fortran order, version 2.0 */
    uint8_t b[256];
    const char *h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
    size_t hl = 128 - 12;
    memset(b, ' ', sizeof b);
    memcpy(b, "\x93NUMPY\x02\x00", 8);
    b[8] = (uint8_t)hl;
    b[9] = b[10] = b[11] = 0;
    memcpy(b + 12, h, strlen(h));
    b[12 + hl - 1] = '\n';
    float col[6] = {1, 4, 2, 5, 3, 6}; /* column-major [[1,2,3],[4,5,6]] */
    memcpy(b + 128, col, sizeof col);
    sld_npy a;
    CHECK(sld_npy_parse(&a, b, 128 + sizeof col, "t", NULL) == SLD_OK);
    for (int i = 0; i < 6; i++)
        CHECK(a.data[i] == i + 1);
    sld_npy_free(&a);
    sld_error e;
    CHECK(sld_npy_parse(&a, b, 128 + sizeof col - 1, "t", &e) == SLD_ERR_FORMAT);
    memcpy(b + 12, "{'descr': '>f4'", 15); /* big-endian: refused */
    CHECK(sld_npy_parse(&a, b, 128 + sizeof col, "t", &e) == SLD_ERR_FORMAT);
    CHECK(strstr(e.msg, "'>f4'") != NULL);
    for (size_t cut = 0; cut < 128; cut += 7)
        CHECK(sld_npy_parse(&a, b, cut, "t", NULL) == SLD_ERR_FORMAT);
}

static void test_bad_inputs(void)
{
    sld_error e;
    float x[6] = {1, 2, 3, NAN, 5, 6};
    CHECK(sld_features_check(x, 3, 2, "set A", &e) == SLD_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "NaN") && strstr(e.msg, "set A") && strstr(e.msg, "sample 1"));
    sld_fid_stats a = {0}, b = {0};
    float y[6] = {1, 2, 3, 4, 5, 7};
    CHECK(sld_fid_stats_compute(y, 3, 2, &a, NULL) == SLD_OK);
    CHECK(sld_fid_stats_compute(y, 2, 3, &b, NULL) == SLD_OK);
    double d;
    CHECK(sld_frechet_distance(&a, &b, &d, &e) == SLD_ERR_SHAPE);
    CHECK(strstr(e.msg, "different widths") != NULL);
    sld_fid_stats_free(&b);
    CHECK(sld_fid_stats_compute(y, 1, 6, &b, &e) == SLD_ERR_INVALID_ARG);
    sld_fid_stats_free(&a);
    sld_fid_stats_free(&b);
    /* an .npz without mu: the error names what it has */
    char path[64];
    snprintf(path, sizeof path, "/tmp/sld-test-fid-bad-%d.npz", (int)getpid());
    double v[2] = {1, 2};
    int64_t s[1] = {2};
    const char *k[1] = {"mean"};
    const double *dd[1] = {v};
    const int nd[1] = {1};
    const int64_t *ss[1] = {s};
    CHECK(sld_npz_write(path, 1, k, dd, nd, ss, NULL) == SLD_OK);
    sld_npz *z;
    sld_npy m;
    CHECK(sld_npz_open(&z, path, NULL) == SLD_OK);
    CHECK(sld_npz_get(z, "mu", &m, &e) == SLD_ERR_FORMAT && strstr(e.msg, "mean.npy"));
    sld_npz_close(z);
    unlink(path);
    CHECK(sld_npz_open_mem(&z, "PK\x03\x04junk", 8, "junk.npz", &e) == SLD_ERR_FORMAT);
}

int main(void)
{
    RUN(test_stats_and_frechet);
    RUN(test_np_choice);
    RUN(test_kid);
    RUN(test_npz_read);
    RUN(test_npz_write);
    RUN(test_npy_variants);
    RUN(test_bad_inputs);
    TEST_END();
}
