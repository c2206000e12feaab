/*
 * image.h — one entry point for images read from outside (image folders of
 * `sld metrics`, CLIP-score pairs, I2P run images): the format is told by
 * the file's first bytes, not its name, and the pixels come back as 8-bit
 * RGB with Pillow's Image.open(path).convert("RGB") semantics (png.h,
 * jpeg.h). Anything else is refused with a message that names the file and
 * says what it looks like (GIF, WebP, HTML, an empty file, ...).
 */
#ifndef SLD_IO_IMAGE_H
#define SLD_IO_IMAGE_H

#include "core/core.h"

typedef enum { SLD_IMAGE_UNKNOWN = 0, SLD_IMAGE_PNG, SLD_IMAGE_JPEG } sld_image_kind;

/* The kind of the n bytes at head (the start of a file; 12 bytes suffice).
 * When it is neither PNG nor JPEG and what is non-NULL, *what is a short
 * description of what the bytes look like ("a GIF image", "text", ...). */
sld_image_kind sld_image_sniff(const uint8_t *head, size_t n, const char **what);

/* Reads a PNG or JPEG file as 8-bit RGB [h, w, 3] (sld_free *rgb).
 * Errors: SLD_ERR_IO (open/read), SLD_ERR_FORMAT (another format, corrupt,
 * truncated, above the size limits), SLD_ERR_UNSUPPORTED (a PNG layout),
 * SLD_ERR_NOMEM. */
sld_status sld_image_read(const char *path, uint8_t **rgb, int *width, int *height,
                          sld_error *err);

/* True when name ends in .png, .jpg or .jpeg (any case): the files an image
 * folder is made of. */
bool sld_image_name_ok(const char *name);

#endif /* SLD_IO_IMAGE_H */
