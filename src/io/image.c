/*
 * image.c — format sniffing and the PNG/JPEG dispatch of image.h.
 */
#include "io/image.h"
#include "io/jpeg.h"
#include "io/png.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static bool starts(const uint8_t *h, size_t n, const char *magic, size_t m)
{
    return n >= m && !memcmp(h, magic, m);
}

sld_image_kind sld_image_sniff(const uint8_t *h, size_t n, const char **what)
{
    static const char png_sig[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
    if (starts(h, n, png_sig, 8))
        return SLD_IMAGE_PNG;
    if (n >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF)
        return SLD_IMAGE_JPEG;
    if (!what)
        return SLD_IMAGE_UNKNOWN;
    const char *w = "an unknown format";
    if (n == 0)
        w = "an empty file";
    else if (starts(h, n, "GIF87a", 6) || starts(h, n, "GIF89a", 6))
        w = "a GIF image";
    else if (starts(h, n, "RIFF", 4) && n >= 12 && !memcmp(h + 8, "WEBP", 4))
        w = "a WebP image";
    else if (starts(h, n, "BM", 2))
        w = "a BMP image";
    else if (starts(h, n, "II*\0", 4) || starts(h, n, "MM\0*", 4))
        w = "a TIFF image";
    else if (n >= 12 && !memcmp(h + 4, "ftyp", 4))
        w = !memcmp(h + 8, "avif", 4) ? "an AVIF image"
            : (!memcmp(h + 8, "heic", 4) || !memcmp(h + 8, "mif1", 4)) ? "a HEIF image"
                                                                        : "an MP4/ISO media file";
    else if (starts(h, n, "\0\0\0\x0cjP  ", 8) || starts(h, n, "\xff\x4f\xff\x51", 4))
        w = "a JPEG 2000 image";
    else if (n >= 2 && h[0] == 'P' && h[1] >= '1' && h[1] <= '7')
        w = "a PNM/PPM image";
    else if (starts(h, n, "\x1f\x8b", 2))
        w = "gzip data";
    else if (starts(h, n, "PK\x03\x04", 4))
        w = "a zip archive";
    else if (n >= 2 && h[0] == 0xFF && h[1] == 0xD8)
        w = "a damaged JPEG (no marker after the start of image)";
    else if (starts(h, n, "\x89PNG", 4))
        w = "a damaged PNG (bad signature)";
    else {
        size_t k = 0;
        while (k < n && (h[k] == '\t' || h[k] == '\n' || h[k] == '\r' ||
                         (h[k] >= 0x20 && h[k] < 0x7F)))
            k++;
        if (k == n)
            w = (h[0] == '<' || (n > 1 && h[0] == ' ' && h[1] == '<')) ? "HTML/XML text"
                                                                        : "text";
    }
    *what = w;
    return SLD_IMAGE_UNKNOWN;
}

sld_status sld_image_read(const char *path, uint8_t **rgb, int *width, int *height,
                          sld_error *err)
{
    *rgb = NULL;
    *width = *height = 0;
    int fd;
    struct stat sb;
    sld_status st = sld_open_read(path, &fd, &sb, err);
    if (st)
        return st;
    uint8_t head[16];
    size_t n = 0;
    while (n < sizeof head) {
        ssize_t r = read(fd, head + n, sizeof head - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return sld_err(err, SLD_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    const char *what = NULL;
    switch (sld_image_sniff(head, n, &what)) {
    case SLD_IMAGE_PNG:
        return sld_png_read(path, rgb, width, height, err);
    case SLD_IMAGE_JPEG:
        return sld_jpeg_read(path, rgb, width, height, err);
    default:
        return sld_err(err, SLD_ERR_FORMAT, "%s: not a PNG or JPEG image: it looks like %s", path,
                       what);
    }
}

bool sld_image_name_ok(const char *name)
{
    static const char *const ext[] = {".png", ".jpg", ".jpeg"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcasecmp(name + n - e, ext[i]))
            return true;
    }
    return false;
}
