/* fuzz_jpeg.c — libFuzzer target for the JPEG decoder (sld_jpeg_decode)
 * and the format sniffer: no crash, no leak, no read past the buffer, no
 * exit from inside libjpeg; a decoded image has sane dimensions and every
 * byte of it is readable. A lower pixel limit keeps each input fast. */
#include "io/image.h"
#include "io/jpeg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(sld_log_level level, const char *msg, void *user)
{
    (void)level, (void)msg, (void)user;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        sld_log_set(quiet, NULL);
        init = 1;
    }
    uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    const char *what = NULL;
    sld_image_kind k = sld_image_sniff(buf, size, &what);
    if (k == SLD_IMAGE_UNKNOWN && !what)
        abort();
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    sld_error err;
    if (sld_jpeg_decode(buf, size, "fuzz.jpg", (size_t)1 << 20, &rgb, &w, &h, &err) == SLD_OK) {
        if (k != SLD_IMAGE_JPEG || w <= 0 || h <= 0 || (size_t)w * h > ((size_t)1 << 20))
            abort();
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            sum += rgb[i];
        (void)sum;
        sld_free(rgb);
    } else if (rgb || w || h || !err.msg[0]) {
        abort();
    }
    free(buf);
    return 0;
}
