/* fuzz_coco.c — libFuzzer target for the COCO captions reader and its
 * seeded sample: no crash, no leak; every sampled caption belongs to a
 * distinct image. */
#include "eval/coco.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    for (long limit = 0; limit <= 2; limit += 2) {
        sld_coco_set *s = NULL;
        if (sld_coco_parse(&s, buf, size, "fuzz.json", limit, 7, NULL) == SLD_OK) {
            long n = sld_coco_count(s);
            if (n < 1 || n > sld_coco_images(s) || (limit && n != limit))
                abort();
            for (long i = 0; i < n; i++)
                for (long j = 0; j < i && j < 64; j++)
                    if (sld_coco_get(s, i)->image_id == sld_coco_get(s, j)->image_id)
                        abort();
            sld_coco_free(s);
        }
    }
    free(buf);
    return 0;
}
