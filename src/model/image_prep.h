/*
 * image_prep.h — transformers CLIPImageProcessor preprocessing, with
 * Pillow's resampling reproduced bit-exactly for 8-bit images:
 *   RGB uint8 HWC -> resize shortest edge to `size` (long edge
 *   int(size*long/short)) with PIL's filter (bicubic by default,
 *   antialiased: the kernel widens by the scale when downscaling; 8-bit
 *   fixed-point coefficients, horizontal pass then vertical, each rounded to
 *   uint8) -> centre crop -> x * rescale_factor -> (x - mean) / std ->
 *   float CHW.
 */
#ifndef SLD_IMAGE_PREP_H
#define SLD_IMAGE_PREP_H

#include "io/json.h"
#include <stdint.h>

/* Pillow's filter ids (Image.Resampling), as preprocessor configs store. */
enum {
    SLD_PIL_NEAREST = 0,
    SLD_PIL_LANCZOS = 1,
    SLD_PIL_BILINEAR = 2,
    SLD_PIL_BICUBIC = 3,
    SLD_PIL_BOX = 4,
    SLD_PIL_HAMMING = 5
};

typedef struct {
    int do_resize, shortest_edge, resample;
    int do_center_crop, crop_h, crop_w;
    int do_rescale;
    double rescale_factor;
    int do_normalize;
    float mean[3], std[3];
} sld_image_prep;

/* OpenAI CLIP's defaults at a given size (224 for ViT-L/14): bicubic,
 * crop size x size, 1/255, CLIP mean/std. */
void sld_image_prep_default(sld_image_prep *p, int size);

/* Reads a preprocessor_config.json: the current format
 * (size {"shortest_edge": n}, crop_size {"height","width"}) and the legacy
 * CLIPFeatureExtractor one (size n, crop_size n) of SD's feature_extractor/.
 * Missing keys take CLIPImageProcessor defaults. Only shortest_edge resizes
 * are supported (SLD_ERR_UNSUPPORTED otherwise), and the crop must fit in
 * the resized image. */
sld_status sld_image_prep_from_json(sld_image_prep *p, const sld_json *j, sld_error *err);
sld_status sld_image_prep_load(sld_image_prep *p, const char *path, sld_error *err);

/* Size after the shortest-edge resize (w, h unchanged when !do_resize). */
void sld_image_prep_resized_size(const sld_image_prep *p, int w, int h, int *ow, int *oh);
/* Output image size: crop size, or the resized size without centre crop. */
void sld_image_prep_out_size(const sld_image_prep *p, int w, int h, int *ow, int *oh);

/* Pillow Image.resize(size, filter) of an 8-bit image with ch interleaved
 * channels (1..4), bit-exact (Resample.c, 8bpc path). dst is [oh,ow,ch].
 * NEAREST is not supported. Errors: SLD_ERR_INVALID_ARG, SLD_ERR_NOMEM. */
sld_status sld_resize_pil_u8(const uint8_t *src, int w, int h, int ch, uint8_t *dst, int ow,
                             int oh, int filter, sld_error *err);

/* The whole pipeline on an RGB uint8 HWC image: out is float [3,oh,ow]
 * (sld_image_prep_out_size). When resized_out is not NULL it receives the
 * resized uint8 image [rh,rw,3] (sld_image_prep_resized_size), for tests. */
sld_status sld_image_prep_run(const sld_image_prep *p, const uint8_t *rgb, int w, int h,
                              float *out, uint8_t *resized_out, sld_error *err);

/* Rescale + normalise only (after crop): rgb [h,w,3] uint8 -> out [3,h,w]. */
void sld_image_prep_normalize(const sld_image_prep *p, const uint8_t *rgb, int w, int h,
                              float *out);

#endif /* SLD_IMAGE_PREP_H */
