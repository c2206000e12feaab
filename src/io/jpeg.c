/*
 * jpeg.c — JPEG decoding with libjpeg-turbo (see jpeg.h).
 *
 * libjpeg reports errors through error_exit, which must not return: ours
 * formats libjpeg's message into the per-call decoder struct and longjmps
 * back to the entry point, which destroys the decompressor and returns
 * SLD_ERR_FORMAT naming the file. Warnings go through emit_message: the
 * end-of-data warning (the file is truncated) is turned into an error there;
 * other warnings are remembered and logged once. Everything that must be
 * released after a longjmp lives in the struct, never in locals changed
 * between setjmp and longjmp.
 */
#include "io/jpeg.h"
#include "io/png.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX + 64];
    char warning[JMSG_LENGTH_MAX]; /* the first warning, "" if none */
    long n_warnings;
    struct jpeg_decompress_struct cinfo;
    int created;
    uint8_t *pixels;
    uint8_t *row; /* CMYK scanline */
} jpeg_dec;

static void on_error_exit(j_common_ptr c)
{
    jpeg_dec *d = (jpeg_dec *)c->err;
    (*c->err->format_message)(c, d->msg);
    longjmp(d->jump, 1);
}

static void on_emit_message(j_common_ptr c, int level)
{
    jpeg_dec *d = (jpeg_dec *)c->err;
    if (level >= 0)
        return; /* trace messages */
    if (c->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(d->msg, sizeof d->msg, "truncated file (the data ends before the image does)");
        longjmp(d->jump, 1);
    }
    if (!d->n_warnings++)
        (*c->err->format_message)(c, d->warning);
}

static void on_progress(j_common_ptr c)
{
    jpeg_dec *d = (jpeg_dec *)c->err;
    const j_decompress_ptr di = (j_decompress_ptr)c;
    if (di->input_scan_number > SLD_JPEG_MAX_SCANS) {
        snprintf(d->msg, sizeof d->msg, "more than %d scans (refused as hostile)",
                 SLD_JPEG_MAX_SCANS);
        longjmp(d->jump, 1);
    }
}

static void dec_free(jpeg_dec *d)
{
    if (d->created)
        jpeg_destroy_decompress(&d->cinfo);
    sld_free(d->pixels);
    sld_free(d->row);
}

/* Pillow's CMYK -> RGB (Convert.c cmyk2rgb) on inverted (Adobe) CMYK input,
 * which Pillow first un-inverts (its "CMYK;I" raw mode). */
static inline uint8_t muldiv255(int a, int b)
{
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_inverted_to_rgb(uint8_t *out, const uint8_t *in, int w)
{
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - k, with k = 255 - in[3] */
        for (int ch = 0; ch < 3; ch++) {
            int v = nk - muldiv255(255 - in[ch], nk);
            out[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Decodes into d->pixels. The arguments are not changed after setjmp. */
static sld_status decode(jpeg_dec *d, const uint8_t *data, size_t len, const char *name,
                         size_t max_pixels, sld_error *err)
{
    struct jpeg_decompress_struct *ci = &d->cinfo;
    ci->err = jpeg_std_error(&d->pub);
    d->pub.error_exit = on_error_exit;
    d->pub.emit_message = on_emit_message;
    if (setjmp(d->jump))
        return sld_err(err, SLD_ERR_FORMAT, "%s: corrupt JPEG: %s", name, d->msg);
    jpeg_create_decompress(ci);
    d->created = 1;
    d->progress.progress_monitor = on_progress;
    ci->progress = &d->progress;
    ci->mem->max_memory_to_use = SLD_JPEG_MAX_MEMORY;
    jpeg_mem_src(ci, data, (unsigned long)len);
    jpeg_read_header(ci, TRUE);
    const JDIMENSION w = ci->image_width, h = ci->image_height;
    if (w > SLD_PNG_MAX_SIDE || h > SLD_PNG_MAX_SIDE || (size_t)w * h > max_pixels)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: a %ux%u JPEG is larger than allowed (%d a side, %zu pixels)", name,
                       (unsigned)w, (unsigned)h, SLD_PNG_MAX_SIDE, max_pixels);
    const int nc = ci->num_components;
    if (nc == 1) {
        ci->out_color_space = JCS_GRAYSCALE;
    } else if (nc == 3) {
        ci->out_color_space = JCS_RGB;
    } else if (nc == 4) {
        ci->out_color_space = JCS_CMYK;
    } else {
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: a JPEG with %d color components (1, 3 or 4 are read)", name, nc);
    }
    /* Pillow's defaults (it changes them only in draft mode). */
    ci->dct_method = JDCT_ISLOW;
    ci->do_fancy_upsampling = TRUE;
    ci->scale_num = ci->scale_denom = 1;
    d->pixels = sld_malloc((size_t)w * h * 3);
    if (nc == 4)
        d->row = sld_malloc((size_t)w * 4);
    if (!d->pixels || (nc == 4 && !d->row))
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for %ux%u pixels", name,
                       (unsigned)w, (unsigned)h);
    jpeg_start_decompress(ci);
    if (ci->output_width != w || ci->output_height != h ||
        ci->output_components != (nc == 4 ? 4 : nc == 1 ? 1 : 3))
        return sld_err(err, SLD_ERR_INTERNAL, "%s: libjpeg output layout is not the expected one",
                       name);
    while (ci->output_scanline < h) {
        const JDIMENSION y = ci->output_scanline;
        uint8_t *dst = d->pixels + (size_t)y * w * 3;
        JSAMPROW r = nc == 4 ? d->row : dst;
        if (jpeg_read_scanlines(ci, &r, 1) != 1)
            return sld_err(err, SLD_ERR_FORMAT, "%s: corrupt JPEG: no data for row %u", name,
                           (unsigned)y);
        if (nc == 4) {
            cmyk_inverted_to_rgb(dst, d->row, (int)w);
        } else if (nc == 1) {
            for (JDIMENSION x = w; x-- > 0;) { /* backwards: in place */
                const uint8_t v = dst[x];
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = v;
            }
        }
    }
    /* No jpeg_finish_decompress: the pixels are complete, and Pillow does
     * not check what follows them either. */
    if (d->n_warnings)
        sld_log(SLD_LOG_WARN, "%s: damaged JPEG data, decoded as Pillow would (%ld warning%s: %s)",
                name, d->n_warnings, d->n_warnings == 1 ? "" : "s", d->warning);
    return SLD_OK;
}

sld_status sld_jpeg_decode(const uint8_t *data, size_t len, const char *name,
                           size_t max_pixels, uint8_t **rgb, int *width, int *height,
                           sld_error *err)
{
    *rgb = NULL;
    *width = *height = 0;
    if (!name)
        name = "JPEG";
    if (!max_pixels || max_pixels > SLD_PNG_MAX_PIXELS)
        max_pixels = SLD_PNG_MAX_PIXELS;
    if (!data || len < 4 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF)
        return sld_err(err, SLD_ERR_FORMAT, "%s: not a JPEG file (bad signature)", name);
    if (len > SLD_JPEG_MAX_FILE)
        return sld_err(err, SLD_ERR_FORMAT, "%s: %zu bytes is more than the %zu allowed", name,
                       len, SLD_JPEG_MAX_FILE);
    jpeg_dec *d = sld_calloc(1, sizeof *d);
    if (!d)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
    sld_status st = decode(d, data, len, name, max_pixels, err);
    if (!st) {
        *rgb = d->pixels;
        d->pixels = NULL;
        *width = (int)d->cinfo.output_width;
        *height = (int)d->cinfo.output_height;
    }
    dec_free(d);
    sld_free(d);
    return st;
}

sld_status sld_jpeg_read(const char *path, uint8_t **rgb, int *width, int *height,
                         sld_error *err)
{
    *rgb = NULL;
    *width = *height = 0;
    char *buf = NULL;
    size_t len = 0;
    sld_status st = sld_file_read(path, SLD_JPEG_MAX_FILE, &buf, &len, err);
    if (st)
        return st;
    st = sld_jpeg_decode((const uint8_t *)buf, len, path, 0, rgb, width, height, err);
    sld_free(buf);
    return st;
}
