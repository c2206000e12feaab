/*
 * inception.h — the FID feature extractor: pytorch-fid's Inception v3
 * (InceptionV3([3]) with use_fid_inception=True, the port of the TensorFlow
 * FID graph), pool3 features [2048] per image.
 *
 * Usage:
 *   sld_inception *m;
 *   sld_inception_open(&m, "pt_inception-2015-12-05-6726825d.pth", &err);
 *   float x[3*299*299], f[2048];
 *   sld_inception_prep(rgb, w, h, x);             // PIL RGB uint8 -> network input
 *   sld_inception_forward(m, x, 1, f, NULL, &err);
 *   sld_inception_free(m);
 */
#ifndef SLD_INCEPTION_H
#define SLD_INCEPTION_H

#include "core/core.h"

#define SLD_INCEPTION_SIZE 299
#define SLD_INCEPTION_DIM 2048

typedef struct sld_inception sld_inception;

/* Opens the weights (a state dict with torchvision Inception3 names:
 * "Conv2d_1a_3x3.conv.weight", "….bn.{weight,bias,running_mean,running_var}",
 * "Mixed_5b.branch1x1.conv.weight", …; fc.* and num_batches_tracked are
 * ignored) through sld_st_open, any float dtype; folds each BatchNorm (eps
 * 0.001) into its convolution and packs the convolutions for oneDNN (fp32).
 * Errors name the file and the tensor: SLD_ERR_IO, SLD_ERR_FORMAT,
 * SLD_ERR_SHAPE (missing or wrong-shape tensor), SLD_ERR_NOMEM. */
sld_status sld_inception_open(sld_inception **out, const char *path, sld_error *err);
void sld_inception_free(sld_inception *m); /* NULL is a no-op */

/* pytorch-fid's preprocessing of an image already converted to 8-bit RGB
 * (PIL convert("RGB"): png.h does that): to [0,1] (/255), bilinear resize to
 * 299x299 as torch F.interpolate(mode="bilinear", align_corners=False)
 * without antialias (also when shrinking), then 2x − 1.
 * rgb [h,w,3] -> out [3,299,299]. */
void sld_inception_prep(const uint8_t *rgb, int w, int h, float *out);

/* Intermediate outputs for tests (any pointer may be NULL): pytorch-fid's
 * block outputs, after the first max pool [B,64,73,73], after the second
 * [B,192,71→35,35] and after Mixed_6e [B,768,17,17]. */
typedef struct {
    float *block0, *block1, *block2;
} sld_inception_taps;

/* x [B,3,299,299] (prepared) -> pool3 [B,2048]. Runs in chunks of at most 8
 * images on all threads of the caller's OpenMP setting; not reentrant (one
 * forward at a time per model). Errors: SLD_ERR_INVALID_ARG (B < 1),
 * SLD_ERR_NOMEM, SLD_ERR_INTERNAL (oneDNN). */
sld_status sld_inception_forward(sld_inception *m, const float *x, int B, float *pool3,
                                 const sld_inception_taps *taps, sld_error *err);

#endif /* SLD_INCEPTION_H */
