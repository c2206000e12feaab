/*
 * jpeg.h — JPEG files read through libjpeg-turbo into 8-bit RGB, pixel for
 * pixel what Pillow's Image.open(path).convert("RGB") gives with the same
 * libjpeg (so FID features of real photographs, e.g. COCO, match
 * pytorch-fid's).
 *
 * Decoding follows Pillow's defaults: the accurate integer DCT (JDCT_ISLOW),
 * fancy (smooth) chroma upsampling, no scaling, no EXIF orientation. One
 * component is gray and replicated to R=G=B; three components are converted
 * to RGB by libjpeg (YCbCr, or RGB when the file says so); four components
 * are decoded as CMYK (libjpeg turns YCCK into CMYK), taken as Adobe's
 * inverted CMYK as Pillow does for every 4-component JPEG, and converted to
 * RGB with Pillow's formula. Baseline, extended, progressive and arithmetic
 * coded files and restart markers are read; 12-bit and lossless files are
 * refused, as Pillow refuses them.
 *
 * Hostile or damaged input:
 *   - sides above SLD_PNG_MAX_SIDE or more than SLD_PNG_MAX_PIXELS pixels
 *     (the PNG reader's limits) are refused before any pixel memory is taken;
 *     libjpeg's own working memory is capped at SLD_JPEG_MAX_MEMORY;
 *   - a progressive file with more than SLD_JPEG_MAX_SCANS scans is refused
 *     (a few hundred bytes can otherwise cost minutes of CPU);
 *   - a file that ends before libjpeg has all the data it needs (cut off
 *     mid-scan, or without its end marker) is an error, not a gray-padded
 *     image: Pillow also raises "image file is truncated" by default, and a
 *     study must not score half an image;
 *   - corrupt entropy data that libjpeg can step over (a warning, such as
 *     "extraneous bytes before marker") is decoded as Pillow decodes it, and
 *     logged once as a warning that names the file;
 *   - every libjpeg error comes back as SLD_ERR_FORMAT with libjpeg's message
 *     and the file name; nothing exits.
 */
#ifndef SLD_IO_JPEG_H
#define SLD_IO_JPEG_H

#include "core/core.h"

#define SLD_JPEG_MAX_FILE ((size_t)256 << 20)
#define SLD_JPEG_MAX_MEMORY ((long)1 << 30)
#define SLD_JPEG_MAX_SCANS 500

/* Reads the JPEG file at path as 8-bit RGB [h, w, 3] (caller frees *rgb with
 * sld_free). Errors: SLD_ERR_IO (open/read), SLD_ERR_FORMAT (not a JPEG,
 * corrupt, truncated, above the limits), SLD_ERR_NOMEM. */
sld_status sld_jpeg_read(const char *path, uint8_t **rgb, int *width, int *height,
                         sld_error *err);

/* The same from memory; name is used in messages. max_pixels (0: the
 * default SLD_PNG_MAX_PIXELS) lowers the pixel limit (the fuzzer uses it). */
sld_status sld_jpeg_decode(const uint8_t *data, size_t len, const char *name,
                           size_t max_pixels, uint8_t **rgb, int *width, int *height,
                           sld_error *err);

#endif /* SLD_IO_JPEG_H */
