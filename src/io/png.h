/*
 * png.h — PNG files through libpng: atomic 8-bit RGB writes with text chunks
 * (sld_png_write in sld.h is the public form) and reads of any common PNG
 * into 8-bit RGB, plus its text chunks.
 *
 * Writes never leave a partial file at the destination: the image goes to
 * "<path>.tmp.<pid>", is flushed and fsync'd, then renamed over path. A full
 * disk (ENOSPC) or any other write error removes the temporary file and
 * reports SLD_ERR_IO naming the path and the OS reason.
 */
#ifndef SLD_IO_PNG_H
#define SLD_IO_PNG_H

#include "core/core.h"
#include <stdio.h>

/* Images larger than this on a side, or above SLD_PNG_MAX_PIXELS in total,
 * are refused on read (a hostile header must not make us allocate GiBs). */
#define SLD_PNG_MAX_SIDE 16384
#define SLD_PNG_MAX_PIXELS ((size_t)1 << 27)

typedef struct {
    const char *key;   /* 1..79 Latin-1 characters, as the PNG spec requires */
    const char *value; /* UTF-8; see sld_png_write_text for the chunk type */
} sld_png_text;

/* Writes rgb [height, width, 3] with n_text text chunks to path atomically.
 * Chunk type as PIL's PngInfo.add_text (and so A1111) chooses it: a value
 * Latin-1 can hold is transcoded to Latin-1 into tEXt; other valid UTF-8
 * goes into an uncompressed iTXt chunk; bytes that are not valid UTF-8 are
 * stored verbatim in tEXt (read back as Latin-1).
 * Errors: SLD_ERR_INVALID_ARG (sizes, key), SLD_ERR_IO (create/write/fsync/
 * rename, e.g. "No space left on device"), SLD_ERR_NOMEM. */
sld_status sld_png_write_text(const char *path, const uint8_t *rgb, int width, int height,
                              const sld_png_text *text, int n_text, sld_error *err);

/* The same encoder onto an open stream (no temp file, no rename): flushes
 * and reports write errors. name is used in messages. For tests (/dev/full)
 * and for callers that manage their own files. */
sld_status sld_png_write_stream(FILE *f, const char *name, const uint8_t *rgb, int width,
                                int height, const sld_png_text *text, int n_text,
                                sld_error *err);

/* Reads a PNG (8 or 16 bit; gray, gray+alpha, RGB, RGBA or palette;
 * interlaced or not) as 8-bit RGB: 16-bit samples keep their high byte,
 * alpha is dropped (like PIL's convert("RGB")). *rgb [h, w, 3] is owned by
 * the caller (sld_free). Errors: SLD_ERR_IO, SLD_ERR_FORMAT (not a PNG,
 * corrupt data, size above the limits), SLD_ERR_NOMEM. */
sld_status sld_png_read(const char *path, uint8_t **rgb, int *width, int *height,
                        sld_error *err);

/* Reads the text chunk (tEXt, zTXt or iTXt) named key as UTF-8 (tEXt and
 * zTXt are decoded as Latin-1, as the PNG spec and PIL do). *value is a new
 * NUL-terminated string (sld_free), or NULL when the file has no such chunk
 * (not an error). */
sld_status sld_png_read_text(const char *path, const char *key, char **value, sld_error *err);

#endif /* SLD_IO_PNG_H */
