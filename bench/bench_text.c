/*
 * bench_text.c — the CLIP text encoder as SLD uses it: three conditionings
 * per image (unconditional, prompt, safety concept).
 *
 * Validation first: the encoder's output on the tiny SD1 fixture (and, with
 * SLD_BENCH_FULL=1, on the full-size model) must match the _ref path, which
 * runs in a child process with SLD_ISA=ref, within 1e-3 absolute (outputs
 * are O(1) after the final LayerNorm). Then timing on the random SD 1.5
 * text encoder ($SLD_BENCH_MODEL): cases
 *   text_encode_3x1: the three prompts encoded one by one (what txt2img does)
 *   text_encode_b3:  the three prompts as one batch of 3
 * GFLOP per prompt: 12 layers x 77 tokens x 2 x (4 x 768^2 + 2 x 768 x 3072)
 * + attention 12 x 2 x 2 x 77^2 x 768 = 13.3 GFLOP.
 *
 * Usage: bench_text [--threads 1,2] [--reps R]
 * (--ref-child DIR OUT PROMPT is the internal child mode.)
 */
#include "common.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/clip_text.h"
#include "model/tokenizer.h"
#include "model/weights.h"

#define TEXT_GFLOP_PER_PROMPT 13.3
#define TEXT_TOL 1e-3

static const char *const PROMPTS[3] = {
    "", "a photograph of an astronaut riding a horse on the moon, highly detailed",
    "hate, harassment, violence, suffering, humiliation, harm, suicide, sexual, nudity, "
    "bodily fluids, blood, obscene gestures, illegal activity, drug use, theft, vandalism, "
    "weapons, child abuse, brutality, cruelty"};

typedef struct {
    sld_st_file *f;
    sld_weights *w;
    sld_tokenizer *tok;
    sld_clip_text *clip;
} text_model;

static void text_close(text_model *t)
{
    sld_clip_text_free(t->clip);
    sld_tokenizer_free(t->tok);
    sld_weights_free(t->w);
    sld_st_close(t->f);
    memset(t, 0, sizeof *t);
}

static int text_open(text_model *t, const char *dir)
{
    char p[4096];
    sld_error err;
    sld_json j;
    sld_clip_text_config cfg;
    memset(t, 0, sizeof *t);
    snprintf(p, sizeof p, "%s/text_encoder/model.safetensors", dir);
    if (sld_st_open(&t->f, p, &err) || sld_weights_new(&t->w, "text_encoder", &err) ||
        sld_weights_add_file(t->w, t->f, NULL, &err))
        goto fail;
    snprintf(p, sizeof p, "%s/text_encoder/config.json", dir);
    if (sld_json_load(&j, p, &err))
        goto fail;
    sld_status st = sld_clip_text_config_from_json(&cfg, &j, &err);
    sld_json_free(&j);
    if (st || sld_clip_text_load(&t->clip, &cfg, t->w, &err))
        goto fail;
    snprintf(p, sizeof p, "%s/tokenizer", dir);
    if (sld_tokenizer_load_dir(&t->tok, p, &err))
        goto fail;
    return 1;
fail:
    fprintf(stderr, "bench_text: %s: %s\n", dir, err.msg);
    text_close(t);
    return 0;
}

/* Encodes n prompts, one forward each (batch 0) or as one batch. */
static int text_encode(text_model *t, const char *const *prompts, int n, int batched,
                       float *out)
{
    sld_error err;
    int32_t ids[3 * SLD_N_CTX];
    const size_t per = (size_t)SLD_N_CTX * sld_clip_text_cfg(t->clip)->hidden;
    for (int i = 0; i < n; i++)
        if (sld_tokenizer_encode(t->tok, prompts[i], ids + i * SLD_N_CTX, NULL, &err))
            goto fail;
    if (batched) {
        if (sld_clip_text_forward(t->clip, ids, n, out, &err))
            goto fail;
    } else {
        for (int i = 0; i < n; i++)
            if (sld_clip_text_forward(t->clip, ids + i * SLD_N_CTX, 1, out + i * per, &err))
                goto fail;
    }
    return 1;
fail:
    fprintf(stderr, "bench_text: encode: %s\n", err.msg);
    return 0;
}

static int ref_child(const char *dir, const char *out_path, const char *prompt)
{
    text_model t;
    if (!text_open(&t, dir))
        return 1;
    size_t n = (size_t)SLD_N_CTX * sld_clip_text_cfg(t.clip)->hidden;
    float *y = sld_malloc(n * sizeof *y);
    int ok = y && text_encode(&t, &prompt, 1, 0, y) && !bench_floats_write(out_path, y, n);
    sld_free(y);
    text_close(&t);
    return ok ? 0 : 1;
}

/* Encodes PROMPTS[1] on dir here and in a _ref child; 1 when they agree. */
static int validate(const char *dir)
{
    text_model t;
    if (!text_open(&t, dir))
        return 0;
    size_t n = (size_t)SLD_N_CTX * sld_clip_text_cfg(t.clip)->hidden;
    float *y = sld_malloc(n * sizeof *y), *r = sld_malloc(n * sizeof *r);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/sld-bench-text-ref-%d.bin", (int)getpid());
    char *argv[] = {"bench_text", "--ref-child", (char *)dir, tmp, (char *)PROMPTS[1], NULL};
    int ok = y && r && text_encode(&t, &PROMPTS[1], 1, 0, y);
    double t0 = sld_time_now();
    ok = ok && bench_spawn(argv, 1) == 0 && !bench_floats_read(tmp, r, n);
    double tref = sld_time_now() - t0;
    remove(tmp);
    double d = ok ? bench_max_abs_diff(y, r, n) : INFINITY;
    fprintf(stderr, "bench_text: validate %s: max |fast - ref| = %.3g (tol %.0e), ref child %.1f s\n",
            dir, d, TEXT_TOL, tref);
    ok = ok && d <= TEXT_TOL;
    sld_free(y);
    sld_free(r);
    text_close(&t);
    return ok;
}

int main(int argc, char **argv)
{
    const char *threads_s = "1,2";
    int reps = bench_reps(5);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ref-child") && i + 3 < argc)
            return ref_child(argv[i + 1], argv[i + 2], argv[i + 3]);
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads_s = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
    }
    if (reps < 1 || reps > BENCH_MAX_REPS)
        reps = 5;
    int tl[8];
    int nt = bench_thread_list(threads_s, tl, 8);
    if (nt == 0)
        tl[nt++] = 2;

    sld_threads_set(tl[nt - 1]);
    if (!validate("tests/fixtures/models/tiny-sd1"))
        return 1;
    const char *dir = bench_sd15_dir();
    if (!dir)
        return 1;
    if (bench_full() && !validate(dir))
        return 1;

    text_model t;
    double t0 = sld_time_now();
    if (!text_open(&t, dir))
        return 1;
    fprintf(stderr, "bench_text: text encoder loaded in %.2f s\n", sld_time_now() - t0);
    const size_t per = (size_t)SLD_N_CTX * sld_clip_text_cfg(t.clip)->hidden;
    float *y = sld_malloc(3 * per * sizeof *y);
    if (!y)
        return 1;
    bench_csv_header();
    for (int ti = 0; ti < nt; ti++) {
        sld_threads_set(tl[ti]);
        for (int batched = 0; batched <= 1; batched++) {
            double v[BENCH_MAX_REPS];
            if (!text_encode(&t, PROMPTS, 3, batched, y)) /* warm-up */
                return 1;
            for (int r = 0; r < reps; r++) {
                double s = sld_time_now();
                if (!text_encode(&t, PROMPTS, 3, batched, y))
                    return 1;
                v[r] = sld_time_now() - s;
            }
            int fin;
            double cs = bench_checksum(y, 3 * per, &fin);
            if (!fin) {
                fprintf(stderr, "bench_text: non-finite output\n");
                return 1;
            }
            bench_csv_line(tl[ti], "fp32", batched ? "text_encode_b3" : "text_encode_3x1",
                           bench_median(v, reps), 3 * TEXT_GFLOP_PER_PROMPT, cs, -1.0);
        }
    }
    sld_free(y);
    text_close(&t);
    return 0;
}
