/* test_safety_checker.c — diffusers StableDiffusionSafetyChecker on the tiny
 * SD1 model vs goldens/safety_checker: preprocessing (numpy_to_pil +
 * CLIPImageProcessor), embeddings, cosines, the decision rule. */
#include "core/core.h"
#include "model/safety_checker.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "test.h"

#define SD1 "tests/fixtures/models/tiny-sd1"

static sld_st_file *gold;

static float *gold_f32(const char *name, size_t *n)
{
    const sld_st_tensor *t = sld_st_find(gold, name);
    if (!t)
        return NULL;
    float *v = malloc(t->numel * sizeof(float));
    if (sld_st_to_f32(t, v, NULL)) {
        free(v);
        return NULL;
    }
    if (n)
        *n = t->numel;
    return v;
}

static double max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}

static void test_golden(void)
{
    struct sld_safety_checker *s = NULL;
    sld_error err;
    CHECK_MSG(sld_safety_checker_open(&s, SD1, &err) == SLD_OK, "%s", err.msg);
    if (!s)
        return;
    sld_safety_checker_dims d = sld_safety_checker_get_dims(s);
    CHECK(d.image_size == 56 && d.proj_dim == 16 && d.n_concepts == 17 && d.n_special == 3);
    size_t ni, nc, ne, ncos, nsp;
    float *img = gold_f32("images_nhwc", &ni), *clip = gold_f32("clip_input", &nc),
          *emb = gold_f32("image_embeds", &ne), *cos = gold_f32("cos_dist", &ncos),
          *sp = gold_f32("special_cos_dist", &nsp);
    const sld_st_tensor *hn = sld_st_find(gold, "has_nsfw_concepts");
    CHECK(img && clip && emb && cos && sp && hn && hn->numel == 6);
    if (!img || !clip || !emb || !cos || !sp || !hn)
        return;
    CHECK(ni == 6 * 64 * 64 * 3 && nc == 6 * 3 * 56 * 56 && ne == 6 * 16 && ncos == 6 * 17 &&
          nsp == 6 * 3);
    float *c2 = calloc(nc, 4), *e2 = calloc(ne, 4), *cos2 = calloc(ncos, 4), *sp2 = calloc(nsp, 4);
    sld_safety_checker_detail det = {c2, e2, cos2, sp2};
    int flags[6] = {-1, -1, -1, -1, -1, -1};
    CHECK(sld_safety_checker_run_detail(s, img, 6, 64, 64, flags, &det, &err) == SLD_OK);
    CHECK_CLOSE("clip_input", c2, clip, nc, 1e-5);
    CHECK_CLOSE("image_embeds", e2, emb, ne, 1e-4);
    CHECK_CLOSE("cos_dist", cos2, cos, ncos, 1e-4);
    CHECK_CLOSE("special_cos_dist", sp2, sp, nsp, 1e-4);
    printf("  max |d|: clip_input %.3g, image_embeds %.3g, cos %.3g, special %.3g\n",
           max_abs(c2, clip, nc), max_abs(e2, emb, ne), max_abs(cos2, cos, ncos),
           max_abs(sp2, sp, nsp));
    const uint8_t *want = hn->data;
    for (int i = 0; i < 6; i++)
        CHECK_MSG(flags[i] == want[i], "image %d: flag %d, want %d", i, flags[i], want[i]);
    static const int expect[6] = {1, 1, 1, 1, 0, 0};
    for (int i = 0; i < 6; i++)
        CHECK(flags[i] == expect[i]);
    /* the rule alone on the golden similarities */
    for (int i = 0; i < 6; i++)
        CHECK(sld_safety_checker_decide(s, cos + i * 17, sp + i * 3) == expect[i]);
    /* plain entry point, one image at a time */
    for (int i = 0; i < 6; i++) {
        int f = -1;
        CHECK(sld_safety_checker_run(s, img + (size_t)i * 64 * 64 * 3, 1, 64, 64, &f, &err) ==
              SLD_OK);
        CHECK(f == expect[i]);
    }
    free(c2), free(e2), free(cos2), free(sp2);
    free(img), free(clip), free(emb), free(cos), free(sp);
    sld_safety_checker_free(s);
}

/* The thresholds we load are the ones the oracle recorded. */
static void test_thresholds_match_oracle(void)
{
    sld_json j;
    sld_error err;
    struct sld_safety_checker *s = NULL;
    CHECK(sld_json_load(&j, fixture("safety_checker/safety_checker.json"), &err) == SLD_OK);
    CHECK(sld_safety_checker_open(&s, SD1, &err) == SLD_OK);
    if (!s || !j.root)
        return;
    const cJSON *cw = cJSON_GetObjectItemCaseSensitive(j.root, "concept_embeds_weights");
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(j.root, "special_care_embeds_weights");
    CHECK(cJSON_GetArraySize(cw) == 17 && cJSON_GetArraySize(sw) == 3);
    /* A similarity exactly at a threshold is not flagged; 0.001 above is. */
    float cos[17], sp[3] = {-1, -1, -1};
    for (int k = 0; k < 17; k++) {
        for (int i = 0; i < 17; i++)
            cos[i] = -1;
        double t = cJSON_GetArrayItem(cw, k)->valuedouble;
        cos[k] = (float)t;
        CHECK(sld_safety_checker_decide(s, cos, sp) == 0);
        cos[k] = (float)(t + 0.001);
        CHECK(sld_safety_checker_decide(s, cos, sp) == 1);
    }
    sld_json_free(&j);
    sld_safety_checker_free(s);
}

/* Thresholds of tiny-sd1's checker (safety_checker.json): concept 0 =
 * 0.33349609375, special 1 = 0.1400146484375. */
static void test_rule(void)
{
    struct sld_safety_checker *s = NULL;
    sld_error err;
    CHECK(sld_safety_checker_open(&s, SD1, &err) == SLD_OK);
    if (!s)
        return;
    float cos[17], sp[3];
    for (int k = 0; k < 17; k++)
        cos[k] = -1;
    for (int k = 0; k < 3; k++)
        sp[k] = -1;
    CHECK(sld_safety_checker_decide(s, cos, sp) == 0);
    /* round(x, 3) > 0 needs x >= 0.0005 (up to the half-even tie) */
    cos[0] = (float)(0.33349609375 + 0.0006);
    CHECK(sld_safety_checker_decide(s, cos, sp) == 1);
    cos[0] = (float)(0.33349609375 + 0.0004);
    CHECK(sld_safety_checker_decide(s, cos, sp) == 0);
    /* a special-care hit lowers every concept threshold by 0.01 */
    cos[0] = (float)(0.33349609375 - 0.009);
    CHECK(sld_safety_checker_decide(s, cos, sp) == 0);
    sp[1] = (float)(0.1400146484375 + 0.0006);
    CHECK(sld_safety_checker_decide(s, cos, sp) == 1);
    /* ... but only when the special score itself rounds above 0 */
    sp[1] = (float)(0.1400146484375 + 0.0004);
    CHECK(sld_safety_checker_decide(s, cos, sp) == 0);
    /* NaN images: clamped to black by the uint8 conversion, no crash */
    float *nan_img = malloc(64 * 64 * 3 * sizeof(float));
    for (int i = 0; i < 64 * 64 * 3; i++)
        nan_img[i] = i % 2 ? NAN : 2.0f;
    int f = -1;
    CHECK(sld_safety_checker_run(s, nan_img, 1, 64, 64, &f, &err) == SLD_OK);
    CHECK(f == 0 || f == 1);
    /* a non-square image goes through the shortest-edge resize + crop */
    CHECK(sld_safety_checker_run(s, nan_img, 1, 32, 96, &f, &err) == SLD_OK);
    CHECK(sld_safety_checker_run(s, nan_img, 0, 64, 64, &f, &err) == SLD_ERR_INVALID_ARG);
    free(nan_img);
    sld_safety_checker_free(s);
}

static void test_errors(void)
{
    struct sld_safety_checker *s = NULL;
    sld_error err;
    CHECK(sld_safety_checker_open(&s, "tests/fixtures/models/tiny-sd2", &err) != SLD_OK);
    CHECK(s == NULL && strstr(err.msg, "safety_checker") != NULL);
    CHECK(sld_safety_checker_open(&s, "tests/fixtures/models/tiny-clip-vision", &err) ==
          SLD_ERR_IO);
    sld_safety_checker_free(NULL);
    /* out of memory at every allocation of open: clean failure, no leak */
    int opened = 0;
    for (long k = 1; k < 1000 && !opened; k++) {
        sld_alloc_fail_at(k);
        sld_status st = sld_safety_checker_open(&s, SD1, &err);
        sld_alloc_fail_at(0);
        if (st == SLD_OK) {
            sld_safety_checker_free(s);
            opened = 1;
        } else {
            CHECK(s == NULL && st == SLD_ERR_NOMEM);
        }
    }
    CHECK(opened);
}

int main(void)
{
    sld_error err;
    if (sld_st_open(&gold, fixture("safety_checker/safety_checker.safetensors"), &err)) {
        printf("cannot open goldens: %s\n", err.msg);
        return 1;
    }
    RUN(test_golden);
    RUN(test_thresholds_match_oracle);
    RUN(test_rule);
    RUN(test_errors);
    sld_st_close(gold);
    TEST_END();
}
