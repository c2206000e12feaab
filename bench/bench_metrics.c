/*
 * bench_metrics.c — throughput of the image-quality metrics: the FID
 * Inception v3 and the two CLIP towers of a CLIP score, in images per second
 * at 1 and 2 threads.
 *
 * Validation first (the numbers must be right before they are timed):
 *   - Inception: pool3 of the fixture image rgb512 against pytorch-fid's
 *     (tests/fixtures/fid, 1e-4 x max|pool3|), with the fixture's random
 *     weights — the real architecture, so the timing holds for the real
 *     pt_inception file. Skipped (with a message) when the .pth cannot be
 *     read and python3 cannot convert it (tests/fid_fixture.h).
 *   - CLIP score: the six torchmetrics goldens of tests/fixtures/clip_score
 *     on the tiny CLIPModel, within 1e-3.
 * Cases:
 *   inception_prep_512:  pytorch-fid preprocessing of one 512x512 RGB image
 *                        (bilinear to 299, 2x-1); 0 GFLOP
 *   inception_b8:        one forward of 8 prepared images; 11.4 GFLOP per
 *                        image (5.7 G multiply-adds, torchvision's count)
 *   clip_vit_l14_image:  one CLIP ViT-L/14 image embedding at 224x224 (24
 *                        layers, 257 tokens, visual_projection); 162 GFLOP
 *   clip_vit_l14_text:   one CLIP ViT-L/14 text embedding (12 layers, 77
 *                        tokens, pooled + text_projection); 13.3 GFLOP
 * The ViT-L/14 towers get seeded random weights built in memory (every
 * tensor a view of one shared random buffer: no 1.7 GB file to write; the
 * shared buffer makes caches slightly kinder than distinct weights). Images
 * per second = 8 / inception_b8 and 1 / (image + text) for a CLIP-score
 * pair; docs/BENCH.md turns them into the FID-30k estimate.
 *
 * Usage: bench_metrics [--threads 1,2] [--reps R]
 */
#include "../tests/fid_fixture.h"
#include "common.h"
#include "eval/clip_score.h"
#include "io/json.h"
#include "io/png.h"
#include "model/clip_text.h"
#include "model/clip_vision.h"
#include "model/inception.h"
#include "model/weights.h"
#include "ops/ops.h"

#define INCEPTION_GFLOP 11.4
#define VIT_IMAGE_GFLOP 162.0
#define VIT_TEXT_GFLOP 13.3

/* Process CPU seconds (user + system): on a shared machine the wall time
 * of a case grows with the load, its CPU time much less, so both are shown
 * (CPU time on stderr). */
static double cpu_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
           (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

static void cpu_note(const char *name, int threads, double cpu, double wall)
{
    fprintf(stderr, "bench_metrics: %s at %d thread(s): %.3f s wall, %.3f CPU s (median rep)\n",
            name, threads, wall, cpu);
}

static int validate_inception(sld_inception *m)
{
    sld_error err;
    sld_st_file *g = NULL;
    uint8_t *rgb = NULL;
    int w, h, ok = 0;
    const size_t n = (size_t)3 * SLD_INCEPTION_SIZE * SLD_INCEPTION_SIZE;
    float *x = sld_malloc(n * sizeof *x), f[SLD_INCEPTION_DIM], *want = NULL;
    const int64_t s1[1] = {SLD_INCEPTION_DIM};
    if (!x || sld_png_read("tests/fixtures/fid/images/rgb512.png", &rgb, &w, &h, &err) ||
        sld_st_open(&g, "tests/fixtures/fid/inception.safetensors", &err))
        goto done;
    sld_inception_prep(rgb, w, h, x);
    if (sld_inception_forward(m, x, 1, f, NULL, &err) ||
        !(want = sld_st_read_f32(g, "pool3.rgb512", 1, s1, &err)))
        goto done;
    double mx = 0, d = bench_max_abs_diff(f, want, SLD_INCEPTION_DIM);
    for (int i = 0; i < SLD_INCEPTION_DIM; i++)
        mx = fmax(mx, fabs(want[i]));
    fprintf(stderr, "bench_metrics: validate inception: max |pool3 - pytorch-fid| = %.3g (tol %.3g)\n",
            d, 1e-4 * mx);
    ok = d <= 1e-4 * mx;
done:
    if (!ok && err.msg[0])
        fprintf(stderr, "bench_metrics: inception: %s\n", err.msg);
    sld_free(want);
    sld_free(rgb);
    sld_free(x);
    sld_st_close(g);
    return ok;
}

static int validate_clip_score(void)
{
    sld_error err;
    sld_clip_scorer *s = NULL;
    sld_json j = {0};
    uint8_t *rgb = NULL;
    int w, h, ok = 0;
    float temb[6 * 16], iemb[16];
    const char *texts[6];
    if (sld_clip_scorer_open(&s, "tests/fixtures/models/tiny-clip", &err) ||
        sld_json_load(&j, "tests/fixtures/clip_score/clip_score.json", &err) ||
        sld_png_read("tests/fixtures/clip_score/clip_score_image.png", &rgb, &w, &h, &err))
        goto done;
    const cJSON *pr = cJSON_GetObjectItem(j.root, "prompts"), *sc = cJSON_GetObjectItem(j.root, "scores");
    for (int i = 0; i < 6; i++)
        texts[i] = cJSON_GetArrayItem(pr, i)->valuestring;
    if (sld_clip_scorer_text(s, texts, 6, temb, NULL, NULL, &err) ||
        sld_clip_scorer_image(s, rgb, w, h, iemb, &err))
        goto done;
    double d = 0;
    for (int i = 0; i < 6; i++)
        d = fmax(d, fabs(100 * sld_clip_cos(iemb, temb + 16 * i, 16) -
                         cJSON_GetArrayItem(sc, i)->valuedouble));
    fprintf(stderr, "bench_metrics: validate clip score: max |score - torchmetrics| = %.3g (tol 1e-3)\n", d);
    ok = d <= 1e-3;
done:
    if (!ok && err.msg[0])
        fprintf(stderr, "bench_metrics: clip score: %s\n", err.msg);
    sld_free(rgb);
    sld_json_free(&j);
    sld_clip_scorer_free(s);
    return ok;
}

/* ---- random ViT-L/14 towers ------------------------------------------------------- */

typedef struct {
    float *buf;
    size_t n;
    sld_st_tensor src;
    sld_weights *w;
    int ok;
} rnd_store;

static void add(rnd_store *r, const char *name, int ndim, int64_t a, int64_t b, int64_t c,
                int64_t d)
{
    int64_t shape[4] = {a, b, c, d};
    sld_error err;
    if (r->ok && sld_weights_add_view(r->w, name, &r->src, 0, ndim, shape, &err)) {
        fprintf(stderr, "bench_metrics: %s\n", err.msg);
        r->ok = 0;
    }
}

static void add_layers(rnd_store *r, const char *pfx, int L, int C, int I)
{
    static const char *const cc[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    char n[200];
    for (int l = 0; l < L; l++) {
        for (int k = 1; k <= 2; k++) {
            snprintf(n, sizeof n, "%sencoder.layers.%d.layer_norm%d.weight", pfx, l, k);
            add(r, n, 1, C, 0, 0, 0);
            snprintf(n, sizeof n, "%sencoder.layers.%d.layer_norm%d.bias", pfx, l, k);
            add(r, n, 1, C, 0, 0, 0);
        }
        for (int k = 0; k < 4; k++) {
            snprintf(n, sizeof n, "%sencoder.layers.%d.self_attn.%s.weight", pfx, l, cc[k]);
            add(r, n, 2, C, C, 0, 0);
            snprintf(n, sizeof n, "%sencoder.layers.%d.self_attn.%s.bias", pfx, l, cc[k]);
            add(r, n, 1, C, 0, 0, 0);
        }
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc1.weight", pfx, l);
        add(r, n, 2, I, C, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc1.bias", pfx, l);
        add(r, n, 1, I, 0, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc2.weight", pfx, l);
        add(r, n, 2, C, I, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc2.bias", pfx, l);
        add(r, n, 1, C, 0, 0, 0);
    }
}

static int rnd_init(rnd_store *r)
{
    memset(r, 0, sizeof *r);
    r->n = (size_t)49408 * 768; /* the largest tensor: the token embedding */
    r->buf = sld_malloc_aligned(r->n * sizeof(float));
    sld_error err;
    if (!r->buf || sld_weights_new(&r->w, "random ViT-L/14", &err))
        return 0;
    uint64_t s = 42;
    for (size_t i = 0; i < r->n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        r->buf[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 0.04f;
    }
    r->src = (sld_st_tensor){.name = "random", .dtype = SLD_DT_F32, .ndim = 1,
                             .shape = {(int64_t)r->n}, .numel = r->n,
                             .nbytes = r->n * sizeof(float), .data = r->buf};
    r->ok = 1;
    return 1;
}

static void rnd_free(rnd_store *r)
{
    sld_weights_free(r->w);
    sld_free(r->buf);
}

int main(int argc, char **argv)
{
    const char *threads_s = "1,2";
    int reps = bench_reps(3);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads_s = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
    }
    if (reps < 1 || reps > BENCH_MAX_REPS)
        reps = 3;
    int tl[8];
    int nt = bench_thread_list(threads_s, tl, 8);
    if (nt == 0)
        tl[nt++] = 2;
    sld_threads_set(tl[nt - 1]);
    sld_error err;

    /* Inception */
    const char *wpath = fid_inception_weights();
    sld_inception *inc = NULL;
    if (wpath && sld_inception_open(&inc, wpath, &err))
        fprintf(stderr, "bench_metrics: %s\n", err.msg);
    if (inc && !validate_inception(inc))
        return 1;
    if (!validate_clip_score())
        return 1;

    /* ViT-L/14 vision (openai/clip-vit-large-patch14) and text towers */
    rnd_store r;
    if (!rnd_init(&r))
        return 1;
    const int Cv = 1024, Iv = 4096, Lv = 24, P = 14, S = 224, N = 1 + (S / P) * (S / P), D = 768;
    add(&r, "vision_model.embeddings.patch_embedding.weight", 4, Cv, 3, P, P);
    add(&r, "vision_model.embeddings.class_embedding", 1, Cv, 0, 0, 0);
    add(&r, "vision_model.embeddings.position_embedding.weight", 2, N, Cv, 0, 0);
    add(&r, "vision_model.pre_layrnorm.weight", 1, Cv, 0, 0, 0);
    add(&r, "vision_model.pre_layrnorm.bias", 1, Cv, 0, 0, 0);
    add(&r, "vision_model.post_layernorm.weight", 1, Cv, 0, 0, 0);
    add(&r, "vision_model.post_layernorm.bias", 1, Cv, 0, 0, 0);
    add(&r, "visual_projection.weight", 2, D, Cv, 0, 0);
    add_layers(&r, "vision_model.", Lv, Cv, Iv);
    const int Ct = 768, It = 3072, Lt = 12;
    add(&r, "text_model.embeddings.token_embedding.weight", 2, 49408, Ct, 0, 0);
    add(&r, "text_model.embeddings.position_embedding.weight", 2, 77, Ct, 0, 0);
    add(&r, "text_model.final_layer_norm.weight", 1, Ct, 0, 0, 0);
    add(&r, "text_model.final_layer_norm.bias", 1, Ct, 0, 0, 0);
    add(&r, "text_projection.weight", 2, D, Ct, 0, 0);
    add_layers(&r, "text_model.", Lt, Ct, It);
    sld_clip_vision_config vc = {.hidden = Cv, .heads = 16, .intermediate = Iv, .layers = Lv,
                                 .image_size = S, .patch_size = P, .channels = 3,
                                 .proj_dim = D, .ln_eps = 1e-5f};
    sld_clip_text_config tc = {.vocab_size = 49408, .max_pos = 77, .hidden = Ct, .heads = 12,
                               .intermediate = It, .layers = Lt, .ln_eps = 1e-5f};
    sld_clip_vision *cv = NULL;
    sld_clip_text *ct = NULL;
    const float *tproj = r.ok ? sld_weights_get(r.w, &err, "text_projection.weight", D, Ct, -1) : NULL;
    if (!r.ok || !tproj ||
        sld_clip_vision_load(&cv, &vc, r.w, "vision_model.", "visual_projection.weight", &err) ||
        sld_clip_text_load(&ct, &tc, r.w, &err)) {
        fprintf(stderr, "bench_metrics: ViT-L/14: %s\n", err.msg);
        return 1;
    }

    const size_t in_sz = (size_t)3 * SLD_INCEPTION_SIZE * SLD_INCEPTION_SIZE;
    float *x = sld_malloc(8 * in_sz * sizeof *x), *feat = sld_malloc(8 * 2048 * sizeof *feat);
    float *pix = sld_malloc((size_t)3 * S * S * sizeof *pix), emb[768];
    float *hid = sld_malloc((size_t)77 * Ct * sizeof *hid), pooled[768];
    uint8_t *img = sld_malloc((size_t)512 * 512 * 3);
    if (!x || !feat || !pix || !hid || !img)
        return 1;
    for (size_t i = 0; i < (size_t)512 * 512 * 3; i++)
        img[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (size_t i = 0; i < (size_t)3 * S * S; i++)
        pix[i] = (float)((i * 2654435761u) >> 24) / 128.0f - 1.0f;
    int32_t ids[77];
    for (int i = 0; i < 77; i++)
        ids[i] = i == 0 ? 49406 : i < 20 ? 320 + 7 * i : 49407;

    bench_csv_header();
    for (int ti = 0; ti < nt; ti++) {
        sld_threads_set(tl[ti]);
        double v[BENCH_MAX_REPS], c[BENCH_MAX_REPS];
        int fin;
        if (inc) {
            for (int rp = 0; rp < reps; rp++) {
                double t0 = sld_time_now();
                for (int k = 0; k < 8; k++)
                    sld_inception_prep(img, 512, 512, x + k * in_sz);
                v[rp] = (sld_time_now() - t0) / 8;
            }
            bench_csv_line(tl[ti], "fp32", "inception_prep_512", bench_median(v, reps), 0,
                           bench_checksum(x, in_sz, &fin), -1.0);
            if (sld_inception_forward(inc, x, 8, feat, NULL, &err)) /* warm-up */
                return fprintf(stderr, "bench_metrics: %s\n", err.msg), 1;
            for (int rp = 0; rp < reps; rp++) {
                double t0 = sld_time_now(), c0 = cpu_now();
                sld_inception_forward(inc, x, 8, feat, NULL, &err);
                v[rp] = sld_time_now() - t0;
                c[rp] = cpu_now() - c0;
            }
            cpu_note("inception_b8", tl[ti], bench_median(c, reps), bench_median(v, reps));
            bench_csv_line(tl[ti], "fp32", "inception_b8", bench_median(v, reps),
                           8 * INCEPTION_GFLOP, bench_checksum(feat, 8 * 2048, &fin), -1.0);
        }
        sld_clip_vision_out o = {.image_embeds = emb};
        sld_clip_vision_forward(cv, pix, 1, &o, &err); /* warm-up */
        for (int rp = 0; rp < reps; rp++) {
            double t0 = sld_time_now(), c0 = cpu_now();
            sld_clip_vision_forward(cv, pix, 1, &o, &err);
            v[rp] = sld_time_now() - t0;
            c[rp] = cpu_now() - c0;
        }
        cpu_note("clip_vit_l14_image", tl[ti], bench_median(c, reps), bench_median(v, reps));
        bench_csv_line(tl[ti], "fp32", "clip_vit_l14_image", bench_median(v, reps),
                       VIT_IMAGE_GFLOP, bench_checksum(emb, D, &fin), -1.0);
        for (int rp = 0; rp < reps; rp++) {
            double t0 = sld_time_now(), c0 = cpu_now();
            sld_clip_text_forward(ct, ids, 1, hid, &err);
            sld_clip_text_pool(ids, 1, hid, Ct, pooled);
            sld_linear(pooled, tproj, NULL, emb, 1, D, Ct);
            v[rp] = sld_time_now() - t0;
            c[rp] = cpu_now() - c0;
        }
        cpu_note("clip_vit_l14_text", tl[ti], bench_median(c, reps), bench_median(v, reps));
        bench_csv_line(tl[ti], "fp32", "clip_vit_l14_text", bench_median(v, reps),
                       VIT_TEXT_GFLOP, bench_checksum(emb, D, &fin), -1.0);
    }
    sld_free(x);
    sld_free(feat);
    sld_free(pix);
    sld_free(hid);
    sld_free(img);
    sld_clip_vision_free(cv);
    sld_clip_text_free(ct);
    rnd_free(&r);
    sld_inception_free(inc);
    return 0;
}
