/*
 * png.c — PNG encode/decode with libpng (see png.h).
 *
 * libpng reports errors by longjmp; every entry point here installs its own
 * error handler that copies libpng's message into a per-call struct, so the
 * message that reaches sld_error names the file and what libpng saw. Buffers
 * that must be released after a longjmp are allocated before setjmp and kept
 * in that struct (no locals are modified between setjmp and longjmp).
 */
#include "io/png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char msg[200];
    int io_errno;    /* errno of the first failed fwrite/fflush, 0 if none */
    FILE *f;
} png_io;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    sld_log(SLD_LOG_DEBUG, "libpng: %s", msg);
}

static void on_png_write(png_structp png, png_bytep data, size_t n)
{
    png_io *io = png_get_io_ptr(png);
    errno = 0;
    if (fwrite(data, 1, n, io->f) != n) {
        if (!io->io_errno)
            io->io_errno = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void on_png_flush(png_structp png)
{
    png_io *io = png_get_io_ptr(png);
    if (fflush(io->f) != 0 && !io->io_errno)
        io->io_errno = errno ? errno : EIO;
}

static sld_status check_args(const char *name, const uint8_t *rgb, int width, int height,
                             const sld_png_text *text, int n_text, sld_error *err)
{
    if (!rgb || width <= 0 || height <= 0 || width > SLD_PNG_MAX_SIDE ||
        height > SLD_PNG_MAX_SIDE)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: cannot write a %dx%d image (1..%d a side)",
                       name, width, height, SLD_PNG_MAX_SIDE);
    if (n_text < 0 || (n_text > 0 && !text))
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: bad text chunk list", name);
    for (int i = 0; i < n_text; i++) {
        size_t kl = text[i].key ? strlen(text[i].key) : 0;
        if (kl < 1 || kl > 79 || !text[i].value)
            return sld_err(err, SLD_ERR_INVALID_ARG,
                           "%s: text chunk key must be 1..79 characters with a value", name);
    }
    return SLD_OK;
}

/* How a text value is stored, following PIL's PngInfo.add_text (which A1111
 * uses): text that Latin-1 can hold goes into tEXt as Latin-1 bytes; other
 * valid UTF-8 into an uncompressed iTXt chunk; bytes that are not UTF-8 are
 * taken as Latin-1 already and stored verbatim in tEXt. */
enum { TEXT_ASCII, TEXT_UTF8_LATIN1, TEXT_UTF8_WIDE, TEXT_BYTES };

/* Decodes one UTF-8 sequence at s (n bytes left): code point, or -1 when
 * malformed (overlong, surrogate, above U+10FFFF, truncated). *len = bytes. */
static long utf8_decode(const unsigned char *s, size_t n, int *len)
{
    unsigned c = s[0];
    int k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!k || (size_t)k > n)
        return -1;
    long cp = k == 1 ? (long)c : (long)(c & (0x7F >> k));
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const long min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = k;
    return cp;
}

static int text_kind(const char *v, size_t n)
{
    const unsigned char *s = (const unsigned char *)v;
    int kind = TEXT_ASCII;
    for (size_t i = 0; i < n;) {
        int len;
        long cp = utf8_decode(s + i, n - i, &len);
        if (cp < 0)
            return TEXT_BYTES;
        if (cp > 0xFF)
            kind = TEXT_UTF8_WIDE;
        else if (cp > 0x7F && kind == TEXT_ASCII)
            kind = TEXT_UTF8_LATIN1;
        i += (size_t)len;
    }
    return kind;
}

/* UTF-8 whose code points are all <= U+00FF to Latin-1 (new string). */
static char *utf8_to_latin1(const char *v, size_t n)
{
    char *out = sld_malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int len;
        long cp = utf8_decode((const unsigned char *)v + i, n - i, &len);
        out[o++] = (char)(unsigned char)cp;
        i += (size_t)len;
    }
    out[o] = 0;
    return out;
}

static void free_latin1(char **l, int n)
{
    if (!l)
        return;
    for (int i = 0; i < n; i++)
        sld_free(l[i]);
    sld_free(l);
}

sld_status sld_png_write_stream(FILE *f, const char *name, const uint8_t *rgb, int width,
                                int height, const sld_png_text *text, int n_text,
                                sld_error *err)
{
    sld_status st = check_args(name, rgb, width, height, text, n_text, err);
    if (st)
        return st;
    png_io io = {.f = f};
    png_textp chunks = NULL;
    char **latin1 = NULL; /* [n_text]: tEXt bodies transcoded from UTF-8 */
    if (n_text > 0) {
        chunks = sld_calloc((size_t)n_text, sizeof *chunks);
        latin1 = sld_calloc((size_t)n_text, sizeof *latin1);
        if (!chunks || !latin1) {
            sld_free(chunks);
            sld_free(latin1);
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for text chunks", name);
        }
        for (int i = 0; i < n_text; i++) {
            const char *v = text[i].value;
            size_t vl = strlen(v);
            chunks[i].key = (png_charp)text[i].key;
            int kind = text_kind(v, vl);
            if (kind == TEXT_UTF8_WIDE) {
                /* iTXt, uncompressed, no language: what PIL writes for text
                 * that Latin-1 cannot hold. */
                chunks[i].compression = PNG_ITXT_COMPRESSION_NONE;
                chunks[i].text = (png_charp)v;
                chunks[i].itxt_length = vl;
                chunks[i].lang = (png_charp) "";
                chunks[i].lang_key = (png_charp) "";
            } else {
                chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
                if (kind == TEXT_UTF8_LATIN1) {
                    latin1[i] = utf8_to_latin1(v, vl);
                    if (!latin1[i]) {
                        free_latin1(latin1, n_text);
                        sld_free(chunks);
                        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for text chunks",
                                       name);
                    }
                    v = latin1[i];
                }
                chunks[i].text = (png_charp)v;
                chunks[i].text_length = strlen(v);
            }
        }
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, on_png_error,
                                              on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        sld_free(chunks);
        free_latin1(latin1, n_text);
        return sld_err(err, SLD_ERR_NOMEM, "%s: cannot create a PNG encoder", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        sld_free(chunks);
        free_latin1(latin1, n_text);
        if (io.io_errno)
            return sld_err(err, SLD_ERR_IO, "%s: write failed: %s", name, strerror(io.io_errno));
        return sld_err(err, SLD_ERR_IO, "%s: PNG encoding failed: %s", name, io.msg);
    }
    png_set_write_fn(png, &io, on_png_write, on_png_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (n_text > 0)
        png_set_text(png, info, chunks, n_text);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)width * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    sld_free(chunks);
    free_latin1(latin1, n_text);
    /* Buffered bytes may only fail here (e.g. ENOSPC on the final flush). */
    errno = 0;
    if (fflush(f) != 0 || ferror(f) || io.io_errno) {
        int e = io.io_errno ? io.io_errno : (errno ? errno : EIO);
        return sld_err(err, SLD_ERR_IO, "%s: write failed: %s", name, strerror(e));
    }
    return SLD_OK;
}

sld_status sld_png_write_text(const char *path, const uint8_t *rgb, int width, int height,
                              const sld_png_text *text, int n_text, sld_error *err)
{
    if (!path || !*path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "PNG write: empty path");
    sld_status st = check_args(path, rgb, width, height, text, n_text, err);
    if (st)
        return st;
    sld_atomic_file a;
    if ((st = sld_atomic_open(&a, path, err)))
        return st;
    st = sld_png_write_stream(a.f, path, rgb, width, height, text, n_text, err);
    return sld_atomic_commit(&a, st, err);
}

sld_status sld_png_write(const char *path, const uint8_t *rgb, int width, int height,
                         const char *parameters, sld_error *err)
{
    sld_png_text t = {"parameters", parameters};
    return sld_png_write_text(path, rgb, width, height, &t, parameters ? 1 : 0, err);
}

/* ---- reading ----------------------------------------------------------- */

typedef struct {
    png_io io;
    png_structp png;
    png_infop info, end_info;
    uint8_t *pixels;
    uint8_t *row;
    png_bytep *rows;
} png_reader;

static void reader_free(png_reader *r)
{
    if (r->png)
        png_destroy_read_struct(&r->png, &r->info, &r->end_info);
    if (r->io.f)
        fclose(r->io.f);
    sld_free(r->rows);
    sld_free(r->row);
    sld_free(r->pixels);
    memset(r, 0, sizeof *r);
}

/* Opens path, checks the signature and creates the libpng structs. */
static sld_status reader_open(png_reader *r, const char *path, sld_error *err)
{
    memset(r, 0, sizeof *r);
    int fd;
    struct stat st;
    sld_status ost = sld_open_read(path, &fd, &st, err);
    if (ost)
        return ost;
    if (!(r->io.f = fdopen(fd, "rb"))) {
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    uint8_t sig[8];
    if (fread(sig, 1, 8, r->io.f) != 8 || png_sig_cmp(sig, 0, 8)) {
        reader_free(r);
        return sld_err(err, SLD_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    }
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r->io, on_png_error,
                                    on_png_warning);
    if (r->png)
        r->info = png_create_info_struct(r->png);
    if (r->info)
        r->end_info = png_create_info_struct(r->png);
    if (!r->end_info) {
        reader_free(r);
        return sld_err(err, SLD_ERR_NOMEM, "%s: cannot create a PNG decoder", path);
    }
    png_init_io(r->png, r->io.f);
    png_set_sig_bytes(r->png, 8);
    png_set_user_limits(r->png, SLD_PNG_MAX_SIDE, SLD_PNG_MAX_SIDE);
    png_set_chunk_malloc_max(r->png, 64u << 20);
    return SLD_OK;
}

sld_status sld_png_read(const char *path, uint8_t **rgb, int *width, int *height,
                        sld_error *err)
{
    *rgb = NULL;
    *width = *height = 0;
    png_reader r;
    sld_status st = reader_open(&r, path, err);
    if (st)
        return st;
    if (setjmp(png_jmpbuf(r.png))) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: corrupt PNG: %s", path, r.io.msg);
        reader_free(&r);
        return st;
    }
    png_read_info(r.png, r.info);
    png_uint_32 w = png_get_image_width(r.png, r.info), h = png_get_image_height(r.png, r.info);
    if ((size_t)w * h > SLD_PNG_MAX_PIXELS) {
        reader_free(&r);
        return sld_err(err, SLD_ERR_FORMAT, "%s: %ux%u pixels is more than the %zu allowed",
                       path, (unsigned)w, (unsigned)h, SLD_PNG_MAX_PIXELS);
    }
    int ct = png_get_color_type(r.png, r.info);
    int depth = png_get_bit_depth(r.png, r.info);
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(r.png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(r.png);
    if (depth == 16)
        png_set_strip_16(r.png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(r.png);
    png_set_strip_alpha(r.png);
    png_set_interlace_handling(r.png);
    png_read_update_info(r.png, r.info);
    if (png_get_channels(r.png, r.info) != 3 || png_get_bit_depth(r.png, r.info) != 8 ||
        png_get_rowbytes(r.png, r.info) != (size_t)w * 3) {
        reader_free(&r);
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: cannot convert this PNG layout to RGB",
                       path);
    }
    r.pixels = sld_malloc((size_t)w * h * 3);
    r.rows = sld_malloc((size_t)h * sizeof *r.rows);
    if (!r.pixels || !r.rows) {
        reader_free(&r);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for %ux%u pixels", path,
                       (unsigned)w, (unsigned)h);
    }
    for (png_uint_32 y = 0; y < h; y++)
        r.rows[y] = r.pixels + (size_t)y * w * 3;
    png_read_image(r.png, r.rows);
    png_read_end(r.png, NULL);
    *rgb = r.pixels;
    *width = (int)w;
    *height = (int)h;
    r.pixels = NULL;
    reader_free(&r);
    return SLD_OK;
}

static int find_text(png_structp png, png_infop info, const char *key, char **value)
{
    png_textp t;
    int n = 0;
    if (!png_get_text(png, info, &t, &n))
        return 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(t[i].key, key) == 0) {
            int itxt = t[i].compression >= PNG_ITXT_COMPRESSION_NONE;
            size_t len = itxt ? t[i].itxt_length : t[i].text_length;
            const char *src = t[i].text;
            /* iTXt is UTF-8; tEXt/zTXt are Latin-1 (as PIL reads them), so
             * their bytes >= 0x80 become two-byte UTF-8. */
            int widen = !itxt;
            char *s = sld_malloc((widen ? 2 * len : len) + 1);
            if (!s)
                return -1;
            size_t o = 0;
            for (size_t j = 0; j < len; j++) {
                unsigned char c = (unsigned char)src[j];
                if (widen && c >= 0x80) {
                    s[o++] = (char)(0xC0 | (c >> 6));
                    s[o++] = (char)(0x80 | (c & 0x3F));
                } else {
                    s[o++] = (char)c;
                }
            }
            s[o] = 0;
            *value = s;
            return 1;
        }
    }
    return 0;
}

sld_status sld_png_read_text(const char *path, const char *key, char **value, sld_error *err)
{
    *value = NULL;
    png_reader r;
    sld_status st = reader_open(&r, path, err);
    if (st)
        return st;
    if (setjmp(png_jmpbuf(r.png))) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: corrupt PNG: %s", path, r.io.msg);
        reader_free(&r);
        return st;
    }
    png_read_info(r.png, r.info);
    int found = find_text(r.png, r.info, key, value);
    if (found == 0) {
        /* Text after the image data: decode rows one by one to reach it. */
        int passes = png_set_interlace_handling(r.png);
        png_read_update_info(r.png, r.info);
        r.row = sld_malloc(png_get_rowbytes(r.png, r.info) + 1);
        if (!r.row) {
            reader_free(&r);
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
        }
        png_uint_32 h = png_get_image_height(r.png, r.info);
        for (int p = 0; p < passes; p++)
            for (png_uint_32 y = 0; y < h; y++)
                png_read_row(r.png, r.row, NULL);
        png_read_end(r.png, r.end_info);
        found = find_text(r.png, r.end_info, key, value);
    }
    reader_free(&r);
    if (found < 0)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for text '%s'", path, key);
    return SLD_OK;
}
