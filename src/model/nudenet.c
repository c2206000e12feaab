/*
 * nudenet.c — NudeNet v3 (YOLOv8n export, `320n.onnx`) in C: the network
 * runs on the ONNX graph interpreter (model/onnx_run.c); this file owns
 * NudeNet 3.4.2's preprocessing, decoding and NMS and the checks that a file
 * is such a detector (input [1,3,320,320], output [1,22,2100], class names).
 * Written from shared/fixtures/nudenet/README.md and the ONNX operator
 * specification (NudeNet and ultralytics are AGPL; none of their code is used).
 */
#include "model/nudenet.h"

#include "io/onnx.h"
#include "model/onnx_run.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- labels ------------------------------------------------------------- */

/* Output-channel order of the v3 detectors (data/nudenet/v3_labels.json). */
static const char *const labels[SLD_NUDENET_N_LABELS] = {
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE",          "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",             "FEET_EXPOSED",         "BELLY_COVERED",
    "FEET_COVERED",             "ARMPITS_COVERED",      "ARMPITS_EXPOSED",
    "FACE_MALE",                "BELLY_EXPOSED",        "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",             "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
};

const char *sld_nudenet_label(int i)
{
    return i >= 0 && i < SLD_NUDENET_N_LABELS ? labels[i] : NULL;
}

int sld_nudenet_label_is_exposed_i2p(int i)
{
    /* I2P's five classes (v2 names EXPOSED_ANUS, EXPOSED_BUTTOCKS,
     * EXPOSED_BREAST_F, EXPOSED_GENITALIA_F, EXPOSED_GENITALIA_M) */
    return i == 2 || i == 3 || i == 4 || i == 6 || i == 14;
}

int sld_nudenet_is_nude_i2p(const sld_nude_det *dets, int n_dets)
{
    for (int i = 0; i < n_dets; i++)
        if (sld_nudenet_label_is_exposed_i2p(dets[i].label) &&
            dets[i].score >= SLD_NUDENET_I2P_MIN_SCORE)
            return 1;
    return 0;
}

/* ---- the detector --------------------------------------------------------- */

struct sld_nudenet {
    sld_onnx_run *run;
};

void sld_nudenet_free(sld_nudenet *n)
{
    if (!n)
        return;
    sld_onnx_run_free(n->run);
    sld_free(n);
}

/* Warns when the model's class names (metadata "names") differ from ours. */
static void check_names(const sld_onnx_model *m)
{
    for (int i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta[i].key, "names"))
            continue;
        char want[64];
        for (int k = 0; k < SLD_NUDENET_N_LABELS; k++) {
            snprintf(want, sizeof want, "%d: '%s'", k, labels[k]);
            if (!strstr(m->meta[i].value, want)) {
                sld_log(SLD_LOG_WARN, "nudenet: model metadata names lack \"%s\"; labels may differ",
                        want);
                return;
            }
        }
    }
}

sld_status sld_nudenet_open_mem(sld_nudenet **out, const uint8_t *buf, size_t len,
                                const char *name, sld_error *err)
{
    if (!out)
        return sld_err(err, SLD_ERR_INVALID_ARG, "nudenet: NULL out");
    *out = NULL;
    if (!name)
        name = "nudenet.onnx";
    sld_nudenet *nn = sld_calloc(1, sizeof *nn);
    if (!nn)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
    sld_onnx_model *m = NULL;
    static const int64_t in_shape[4] = {1, 3, SLD_NUDENET_SIZE, SLD_NUDENET_SIZE};
    sld_status st = sld_onnx_parse(buf, len, name, &m, err);
    if (!st)
        st = sld_onnx_run_new(&nn->run, m, name, in_shape, 4, err); /* owns m now */
    if (!st) {
        int64_t d[SLD_ONNX_MAX_DIMS];
        const char *oname;
        int nd = sld_onnx_run_output(nn->run, d, &oname);
        if (nd != 3 || d[0] != 1 || d[1] != SLD_NUDENET_ROWS || d[2] != SLD_NUDENET_ANCHORS) {
            char sh[96] = "[";
            for (int k = 0; k < nd; k++)
                snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", k ? "," : "",
                         (long long)d[k]);
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "]");
            st = sld_err(err, SLD_ERR_SHAPE, "%s: output '%s' is %s %s, expected FLOAT [1,%d,%d]",
                         name, oname, nd < 0 ? "not FLOAT" : "FLOAT", nd < 0 ? "" : sh,
                         SLD_NUDENET_ROWS, SLD_NUDENET_ANCHORS);
            sld_err_prefix(err, "%s: checking shapes", name);
        }
    }
    if (st) {
        sld_nudenet_free(nn);
        return st;
    }
    check_names(sld_onnx_run_model(nn->run));
    *out = nn;
    return SLD_OK;
}

sld_status sld_nudenet_open(sld_nudenet **out, const char *onnx_path, sld_error *err)
{
    if (!out || !onnx_path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "nudenet: NULL argument");
    *out = NULL;
    char *buf;
    size_t len;
    sld_status st = sld_file_read(onnx_path, (size_t)1 << 31, &buf, &len, err);
    if (st)
        return st;
    st = sld_nudenet_open_mem(out, (const uint8_t *)buf, len, onnx_path, err);
    sld_free(buf);
    return st;
}

sld_status sld_nudenet_forward(const sld_nudenet *n, const float *blob, float *out, sld_error *err)
{
    if (!n || !blob || !out)
        return sld_err(err, SLD_ERR_INVALID_ARG, "nudenet forward: NULL argument");
    return sld_onnx_run_forward(n->run, blob, out,
                                (size_t)SLD_NUDENET_ROWS * SLD_NUDENET_ANCHORS, err);
}

/* ---- preprocessing ------------------------------------------------------------------- */

void sld_nudenet_pad(const uint8_t *rgb, int w, int h, uint8_t *out)
{
    int S = sld_nudenet_side(w, h);
    memset(out, 0, (size_t)S * (size_t)S * 3);
    for (int y = 0; y < h; y++)
        memcpy(out + (size_t)y * S * 3, rgb + (size_t)y * w * 3, (size_t)w * 3);
}

/* OpenCV's INTER_LINEAR for 8-bit data: 11-bit fixed-point weights, a
 * horizontal pass into int32 rows, then the vertical pass with the rounding
 * of its 16-bit SIMD kernel (shift 4, multiply, >>16, +2, >>2).
 * The source is sw x sh, of which only the top-left cw x chh pixels are stored
 * (row stride cw*ch); the rest reads as 0. That is NudeNet's pad-to-square
 * without materialising the square (a 30000x100 image would need 2.7 GB). */
static sld_status resize_core(const uint8_t *src, int cw, int chh, int sw, int sh, int ch,
                              uint8_t *dst, int dw, int dh, sld_error *err)
{
    int *xs = sld_malloc((size_t)dw * sizeof *xs);
    int *xa = sld_malloc((size_t)dw * 2 * sizeof *xa);
    int *t0 = sld_malloc((size_t)dw * ch * sizeof *t0);
    int *t1 = sld_malloc((size_t)dw * ch * sizeof *t1);
    if (!xs || !xa || !t0 || !t1) {
        sld_free(xs);
        sld_free(xa);
        sld_free(t0);
        sld_free(t1);
        return sld_err(err, SLD_ERR_NOMEM, "resize: out of memory");
    }
    double sx_scale = 1.0 / ((double)dw / sw), sy_scale = 1.0 / ((double)dh / sh);
    for (int dx = 0; dx < dw; dx++) {
        float f = (float)((dx + 0.5) * sx_scale - 0.5);
        int sx = (int)floorf(f);
        f -= (float)sx;
        if (sx < 0) {
            sx = 0;
            f = 0;
        }
        if (sx >= sw - 1) {
            sx = sw - 1;
            f = 0;
        }
        xs[dx] = sx;
        xa[2 * dx] = (int)lrintf((1.0f - f) * 2048.0f);
        xa[2 * dx + 1] = (int)lrintf(f * 2048.0f);
    }
    int held[2] = {-1, -1}; /* source rows whose horizontal pass is in t0, t1 */
    int *ts[2] = {t0, t1};
    for (int dy = 0; dy < dh; dy++) {
        float f = (float)((dy + 0.5) * sy_scale - 0.5);
        int sy = (int)floorf(f);
        f -= (float)sy;
        int b0 = (int)lrintf((1.0f - f) * 2048.0f), b1 = (int)lrintf(f * 2048.0f);
        int ys[2] = {sy < 0 ? 0 : sy > sh - 1 ? sh - 1 : sy,
                     sy + 1 < 0 ? 0 : sy + 1 > sh - 1 ? sh - 1 : sy + 1};
        for (int r = 0; r < 2; r++) {
            if (held[r] == ys[r])
                continue;
            int *t = ts[r];
            if (r == 1 && ys[1] == held[0]) {
                memcpy(t, t0, (size_t)dw * ch * sizeof *t);
            } else if (ys[r] >= chh) { /* padding rows */
                memset(t, 0, (size_t)dw * ch * sizeof *t);
            } else {
                const uint8_t *p = src + (size_t)ys[r] * cw * ch;
                for (int dx = 0; dx < dw; dx++) {
                    int x0 = xs[dx], w0 = xa[2 * dx], w1 = xa[2 * dx + 1];
                    for (int c = 0; c < ch; c++) {
                        int v = x0 < cw ? p[(size_t)x0 * ch + c] * w0 : 0;
                        if (w1 && x0 + 1 < cw)
                            v += p[(size_t)(x0 + 1) * ch + c] * w1;
                        t[dx * ch + c] = v;
                    }
                }
            }
            held[r] = ys[r];
        }
        uint8_t *o = dst + (size_t)dy * dw * ch;
        for (int i = 0; i < dw * ch; i++) {
            int v = (((t0[i] >> 4) * b0) >> 16) + (((t1[i] >> 4) * b1) >> 16);
            v = (v + 2) >> 2;
            o[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    sld_free(xs);
    sld_free(xa);
    sld_free(t0);
    sld_free(t1);
    return SLD_OK;
}

sld_status sld_resize_linear_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst,
                                int dw, int dh, sld_error *err)
{
    if (!src || !dst || sw < 1 || sh < 1 || dw < 1 || dh < 1 || ch < 1 || ch > 4 ||
        sw > 1 << 16 || sh > 1 << 16 || dw > 1 << 16 || dh > 1 << 16)
        return sld_err(err, SLD_ERR_INVALID_ARG, "resize: bad sizes %dx%d -> %dx%d (%d channels)", sw,
                       sh, dw, dh, ch);
    return resize_core(src, sw, sh, sw, sh, ch, dst, dw, dh, err);
}

/* blobFromImage's conversion: multiply by the float constant 1/255 (not a
 * division) and swap R and B of an image NudeNet already swapped, so the
 * planes are B, G, R. img: [320,320,3] RGB -> blob [3,320,320]. */
static void blob_from_rgb(const uint8_t *img, float *blob)
{
    const size_t N = SLD_NUDENET_SIZE;
    const float k = (float)(1.0 / 255.0);
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < N * N; i++)
            blob[c * N * N + i] = (float)img[i * 3 + (2 - c)] * k;
}

sld_status sld_nudenet_blob(const uint8_t *square_rgb, int s, float *blob, sld_error *err)
{
    const int N = SLD_NUDENET_SIZE;
    if (!square_rgb || !blob || s < 1 || s > 1 << 16)
        return sld_err(err, SLD_ERR_INVALID_ARG, "nudenet blob: bad arguments (side %d)", s);
    uint8_t *img = sld_malloc((size_t)N * N * 3);
    if (!img)
        return sld_err(err, SLD_ERR_NOMEM, "nudenet: out of memory");
    /* resizing to the same size is the identity (weights 2048/0), as OpenCV skips it */
    sld_status st = resize_core(square_rgb, s, s, s, s, 3, img, N, N, err);
    if (!st)
        blob_from_rgb(img, blob);
    sld_free(img);
    return st;
}

/* ---- decoding and NMS ------------------------------------------------------------------- */

int sld_nudenet_candidates(const float *out, int w, int h, sld_nude_cand *cands)
{
    const int A = SLD_NUDENET_ANCHORS;
    double S = (double)sld_nudenet_side(w, h);
    int n = 0;
    for (int r = 0; r < A; r++) {
        float best = out[4 * A + r];
        int c = 0;
        for (int k = 1; k < SLD_NUDENET_N_LABELS; k++)
            if (out[(4 + k) * A + r] > best) {
                best = out[(4 + k) * A + r];
                c = k;
            }
        if (!(best >= 0.2f))
            continue;
        /* float64 from the float32 values, in NudeNet's order */
        double cx = out[r], cy = out[A + r], bw = out[2 * A + r], bh = out[3 * A + r];
        double x = cx - bw / 2, y = cy - bh / 2;
        x = x * S / SLD_NUDENET_SIZE;
        y = y * S / SLD_NUDENET_SIZE;
        bw = bw * S / SLD_NUDENET_SIZE;
        bh = bh * S / SLD_NUDENET_SIZE;
        x = fmax(0, fmin(x, (double)w));
        y = fmax(0, fmin(y, (double)h));
        bw = fmin(bw, (double)w - x);
        bh = fmin(bh, (double)h - y);
        sld_nude_cand *o = &cands[n++];
        o->row = r;
        o->label = c;
        o->score = best;
        o->x = x;
        o->y = y;
        o->w = bw;
        o->h = bh;
    }
    return n;
}

/* OpenCV Rect2d intersection-over-union as NMSBoxes computes it. */
static float rect_overlap(const sld_nude_cand *a, const sld_nude_cand *b)
{
    double Aa = a->w * a->h, Ab = b->w * b->h;
    if (Aa + Ab <= DBL_EPSILON)
        return 1.0f;
    double I = 0;
    if (a->w > 0 && a->h > 0 && b->w > 0 && b->h > 0) {
        double x1 = fmax(a->x, b->x), y1 = fmax(a->y, b->y);
        double iw = fmin(a->x + a->w, b->x + b->w) - x1;
        double ih = fmin(a->y + a->h, b->y + b->h) - y1;
        if (iw > 0 && ih > 0)
            I = iw * ih;
    }
    return 1.0f - (float)(1.0 - I / (Aa + Ab - I));
}

int sld_nudenet_nms(const sld_nude_cand *cands, int n, int *keep)
{
    int *order = sld_malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order)
        return -1;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (cands[i].score > 0.25f) {
            /* insertion keeps equal scores in candidate order (a stable sort) */
            int j = m++;
            while (j > 0 && cands[order[j - 1]].score < cands[i].score) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = i;
        }
    int nk = 0;
    for (int i = 0; i < m; i++) {
        bool ok = true;
        for (int k = 0; k < nk && ok; k++)
            ok = rect_overlap(&cands[order[i]], &cands[keep[k]]) <= 0.45f;
        if (ok)
            keep[nk++] = order[i];
    }
    sld_free(order);
    return nk;
}

sld_status sld_nudenet_detect(sld_nudenet *n, const uint8_t *rgb, int w, int h,
                              sld_nude_det *dets, int max_dets, int *n_dets, sld_error *err)
{
    if (n_dets)
        *n_dets = 0;
    if (!n || !rgb || !n_dets || (max_dets > 0 && !dets) || max_dets < 0)
        return sld_err(err, SLD_ERR_INVALID_ARG, "nudenet detect: NULL argument or max_dets < 0");
    if (w < 1 || h < 1 || w > 1 << 15 || h > 1 << 15)
        return sld_err(err, SLD_ERR_INVALID_ARG, "nudenet detect: image %dx%d out of range", w, h);
    const size_t N = SLD_NUDENET_SIZE;
    int S = sld_nudenet_side(w, h);
    uint8_t *sq = sld_malloc(N * N * 3); /* the padded image resized to 320 */
    float *blob = sld_malloc_aligned(3 * N * N * sizeof *blob);
    float *out = sld_malloc_aligned((size_t)SLD_NUDENET_ROWS * SLD_NUDENET_ANCHORS * sizeof *out);
    sld_nude_cand *cands = sld_malloc(SLD_NUDENET_ANCHORS * sizeof *cands);
    int *keep = sld_malloc(SLD_NUDENET_ANCHORS * sizeof *keep);
    sld_status st = SLD_OK;
    if (!sq || !blob || !out || !cands || !keep) {
        st = sld_err(err, SLD_ERR_NOMEM, "nudenet detect: out of memory");
        goto done;
    }
    if ((st = resize_core(rgb, w, h, S, S, 3, sq, (int)N, (int)N, err)))
        goto done;
    blob_from_rgb(sq, blob);
    if ((st = sld_nudenet_forward(n, blob, out, err)))
        goto done;
    /* NaN scores compare false against every threshold: NaN weights once
     * labelled every image safe */
    for (size_t i = 0; i < (size_t)SLD_NUDENET_ROWS * SLD_NUDENET_ANCHORS; i++)
        if (!isfinite(out[i])) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "nudenet: the detector's output holds %s (row %zu, anchor %zu); the "
                         "ONNX weights hold non-finite values",
                         isnan(out[i]) ? "NaN" : "Inf", i / SLD_NUDENET_ANCHORS,
                         i % SLD_NUDENET_ANCHORS);
            goto done;
        }
    int nc = sld_nudenet_candidates(out, w, h, cands);
    int nk = sld_nudenet_nms(cands, nc, keep);
    if (nk < 0) {
        st = sld_err(err, SLD_ERR_NOMEM, "nudenet detect: out of memory");
        goto done;
    }
    int m = nk < max_dets ? nk : max_dets;
    for (int i = 0; i < m; i++) {
        const sld_nude_cand *c = &cands[keep[i]];
        sld_nude_det *d = &dets[i];
        d->label = c->label;
        d->name = labels[c->label];
        d->score = c->score;
        d->x = (int)c->x; /* values are >= 0: truncation = floor, like Python int() */
        d->y = (int)c->y;
        d->w = (int)c->w;
        d->h = (int)c->h;
        d->exposed = sld_nudenet_label_is_exposed_i2p(c->label);
    }
    *n_dets = m;
done:
    sld_free(sq);
    sld_free(blob);
    sld_free(out);
    sld_free(cands);
    sld_free(keep);
    return st;
}
