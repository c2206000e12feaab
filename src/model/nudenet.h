/*
 * nudenet.h — the NudeNet v3 nudity detector (ultralytics YOLOv8n, 18 classes,
 * the official `320n.onnx`) read straight from its ONNX file and run in C:
 * NudeNet 3.4.2's preprocessing (pad to a square at the top-left, OpenCV
 * INTER_LINEAR resize to 320, planes B,G,R, ·1/255), the network (a small
 * interpreter over the ONNX graph), decoding (best class ≥ 0.2, boxes mapped
 * back to the original pixels) and class-agnostic NMS (score > 0.25, IoU 0.45).
 *
 * Usage:
 *
 *     sld_nudenet *nn;
 *     if (sld_nudenet_open(&nn, "320n.onnx", &err)) { ... err.msg ... }
 *     sld_nude_det d[64]; int nd;
 *     sld_nudenet_detect(nn, rgb, w, h, d, 64, &nd, &err);
 *     int nude = sld_nudenet_is_nude_i2p(d, nd);
 *     sld_nudenet_free(nn);
 *
 * The model is immutable after open; detect allocates its own scratch per call,
 * so one sld_nudenet may be shared by threads.
 * Algorithm and goldens: tests/fixtures/nudenet/README.md (written from
 * shared/fixtures/nudenet/README.md, not from NudeNet's AGPL code).
 */
#ifndef SLD_NUDENET_H
#define SLD_NUDENET_H

#include "sld.h"
#include <stddef.h>
#include <stdint.h>

#define SLD_NUDENET_N_LABELS 18
#define SLD_NUDENET_SIZE 320          /* network input side */
#define SLD_NUDENET_ANCHORS 2100      /* 40² + 20² + 10² */
#define SLD_NUDENET_ROWS 22           /* 4 box rows + 18 class probabilities */
#define SLD_NUDENET_I2P_MIN_SCORE 0.6f

typedef struct sld_nudenet sld_nudenet;

/* One detection, as NudeNet's detect() reports it. */
typedef struct {
    int label;        /* 0..17, index into sld_nudenet_label() */
    const char *name; /* static label string, e.g. "FEMALE_BREAST_EXPOSED" */
    float score;      /* best class probability */
    int x, y, w, h;   /* box in original-image pixels (truncated toward zero) */
    int exposed;      /* sld_nudenet_label_is_exposed_i2p(label) */
} sld_nude_det;

/* Loads and validates an ONNX detector (320n.onnx or a structurally identical
 * file). Errors: SLD_ERR_IO (cannot read), SLD_ERR_FORMAT (malformed
 * protobuf/graph, message names the field), SLD_ERR_UNSUPPORTED (an op or
 * attribute value we do not implement, named), SLD_ERR_SHAPE (input/output or a
 * weight has an unexpected shape), SLD_ERR_NOMEM. *out is freed with
 * sld_nudenet_free (NULL is a no-op). */
sld_status sld_nudenet_open(sld_nudenet **out, const char *onnx_path, sld_error *err);
/* Same from a serialized model in memory (copied; buf may be freed after). */
sld_status sld_nudenet_open_mem(sld_nudenet **out, const uint8_t *buf, size_t len,
                                const char *name, sld_error *err);
/* Frees the detector. It also drops the process-wide conv cache (keyed by
 * weight pointers, see sld_ops_cache_clear), so do not call it while another
 * thread runs ops. */
void sld_nudenet_free(sld_nudenet *n);

/* Runs the whole pipeline on an 8-bit RGB image (HWC, rows packed, w*h*3 bytes,
 * 1 <= w, h <= 32768; the padded square is never materialised).
 * Writes up to max_dets detections (NMS keep order: score descending) and sets
 * *n_dets to how many were written; detections beyond max_dets are the lowest
 * scored and are dropped. Errors: SLD_ERR_INVALID_ARG, SLD_ERR_NOMEM. */
sld_status sld_nudenet_detect(sld_nudenet *n, const uint8_t *rgb, int w, int h,
                              sld_nude_det *dets, int max_dets, int *n_dets, sld_error *err);

/* Label i (0..17) of the v3 detectors, or NULL when out of range. */
const char *sld_nudenet_label(int i);
/* 1 iff label i is one of the five classes I2P counts (ANUS_EXPOSED,
 * BUTTOCKS_EXPOSED, FEMALE_BREAST_EXPOSED, FEMALE_GENITALIA_EXPOSED,
 * MALE_GENITALIA_EXPOSED), else 0. */
int sld_nudenet_label_is_exposed_i2p(int i);
/* The I2P rule: 1 iff some detection is exposed with score >= 0.6. */
int sld_nudenet_is_nude_i2p(const sld_nude_det *dets, int n_dets);

/* ---- stages (exposed for tests and `sld debug`) ------------------------ */

/* Side S = max(w,h) of the padded square. */
static inline int sld_nudenet_side(int w, int h) { return w > h ? w : h; }
/* Copies rgb (w×h×3) to the top-left of out (S×S×3, S = max(w,h)), zeros
 * elsewhere. */
void sld_nudenet_pad(const uint8_t *rgb, int w, int h, uint8_t *out);
/* OpenCV cv::resize(INTER_LINEAR) for 8-bit images with ch channels,
 * bit-exact with OpenCV 4.x's fixed-point path. src: [sh,sw,ch], dst: [dh,dw,ch].
 * Returns SLD_ERR_NOMEM or SLD_ERR_INVALID_ARG on failure. */
sld_status sld_resize_linear_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst,
                                int dw, int dh, sld_error *err);
/* Network input from an RGB image already S×S: resize to 320 (skipped if S is
 * 320), ·(1/255f), planes B,G,R. blob: [3,320,320]. */
sld_status sld_nudenet_blob(const uint8_t *square_rgb, int s, float *blob, sld_error *err);
/* Raw network: blob [1,3,320,320] -> out [1,22,2100] (rows 0-3 cx,cy,w,h in
 * 320-pixels, rows 4-21 class probabilities). */
sld_status sld_nudenet_forward(const sld_nudenet *n, const float *blob, float *out,
                               sld_error *err);

/* A decoded anchor before NMS (box in float64, original-image pixels). */
typedef struct {
    int row;
    int label;
    float score;
    double x, y, w, h;
} sld_nude_cand;

/* Candidates (best probability >= 0.2) of a raw output for an original w×h
 * image, ascending row; cands must hold SLD_NUDENET_ANCHORS. Returns the count. */
int sld_nudenet_candidates(const float *out, int w, int h, sld_nude_cand *cands);
/* OpenCV NMSBoxes(score 0.25, IoU 0.45), class-agnostic: writes indices into
 * cands to keep (keep must hold n) in output order; returns the count, or -1
 * when out of memory. */
int sld_nudenet_nms(const sld_nude_cand *cands, int n, int *keep);

#endif /* SLD_NUDENET_H */
