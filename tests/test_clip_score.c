/* test_clip_score.c — CLIP score against torchmetrics CLIPScore goldens
 * (tests/fixtures/clip_score with the full tiny CLIPModel
 * tests/fixtures/models/tiny-clip): token ids exact, text and image
 * embeddings within 1e-4, scores within 1e-3, the dataset score's clamp, and
 * folders that are not a full CLIPModel. */
#include "eval/clip_score.h"
#include "io/json.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "test.h"

#define CLIP "tests/fixtures/models/tiny-clip"
#define FIX "tests/fixtures/clip_score/"

static void test_goldens(void)
{
    sld_error e;
    sld_clip_scorer *s;
    CHECK(sld_clip_scorer_open(&s, CLIP, &e) == SLD_OK);
    if (!s) {
        printf("  %s\n", e.msg);
        return;
    }
    const int P = sld_clip_scorer_dim(s);
    CHECK(P == 16);
    sld_json j;
    CHECK(sld_json_load(&j, FIX "clip_score.json", NULL) == SLD_OK);
    sld_st_file *g;
    CHECK(sld_st_open(&g, FIX "clip_score.safetensors", NULL) == SLD_OK);
    const cJSON *pr = cJSON_GetObjectItem(j.root, "prompts");
    int n = cJSON_GetArraySize(pr);
    CHECK(n == 6);
    const char *texts[6];
    for (int i = 0; i < n; i++)
        texts[i] = cJSON_GetArrayItem(pr, i)->valuestring;
    float temb[6 * 16], iemb[16];
    int32_t ids[6 * 77];
    int ntr = -1;
    CHECK(sld_clip_scorer_text(s, texts, n, temb, ids, &ntr, &e) == SLD_OK);
    CHECK(ntr == 1); /* the long city prompt */
    const sld_st_tensor *ti = sld_st_find(g, "input_ids");
    CHECK(ti && ti->dtype == SLD_DT_I64);
    for (int i = 0; ti && i < 6 * 77; i++) {
        int64_t v;
        memcpy(&v, (const char *)ti->data + i * 8, 8);
        CHECK_MSG(ids[i] == v, "id %d: %d vs %lld", i, ids[i], (long long)v);
    }
    const int64_t st[2] = {6, 16}, si[2] = {1, 16};
    float *want_t = sld_st_read_f32(g, "text_embeds", 2, st, NULL);
    float *want_i = sld_st_read_f32(g, "image_embeds", 2, si, NULL);
    CHECK(want_t && want_i);
    if (want_t)
        CHECK_CLOSE("text_embeds", temb, want_t, 6 * 16, 1e-4);
    uint8_t *rgb;
    int w, h;
    CHECK(sld_png_read(FIX "clip_score_image.png", &rgb, &w, &h, NULL) == SLD_OK);
    CHECK(sld_clip_scorer_image(s, rgb, w, h, iemb, &e) == SLD_OK);
    sld_free(rgb);
    if (want_i)
        CHECK_CLOSE("image_embeds", iemb, want_i, 16, 1e-4);
    const cJSON *sc = cJSON_GetObjectItem(j.root, "scores");
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double c = sld_clip_cos(iemb, temb + i * P, P);
        CHECK_NEAR(100 * c, cJSON_GetArrayItem(sc, i)->valuedouble, 1e-3);
        sum += 100 * c;
    }
    double ds = fmax(sum / n, 0);
    CHECK_NEAR(ds, cJSON_GetObjectItem(j.root, "dataset_score")->valuedouble, 1e-3);
    float zero[16] = {0};
    CHECK(isnan(sld_clip_cos(zero, iemb, 16)));
    sld_free(want_t);
    sld_free(want_i);
    sld_st_close(g);
    sld_json_free(&j);
    sld_clip_scorer_free(s);
}

static void test_bad_folders(void)
{
    sld_error e;
    sld_clip_scorer *s;
    /* a vision-only or text-only folder is not enough */
    CHECK(sld_clip_scorer_open(&s, "tests/fixtures/models/tiny-sd1/text_encoder", &e) != SLD_OK);
    CHECK(s == NULL);
    CHECK(sld_clip_scorer_open(&s, "tests/fixtures/no-such-folder", &e) == SLD_ERR_IO);
}

int main(void)
{
    RUN(test_goldens);
    RUN(test_bad_folders);
    TEST_END();
}
