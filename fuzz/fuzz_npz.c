/* fuzz_npz.c — libFuzzer target for the .npy parser and the .npz (zip)
 * reader: the input is tried both as one .npy file and as an .npz archive
 * whose "mu" and "sigma" members are parsed. No crash, no leak, no read past
 * the buffer; a parsed array's size always matches its shape. */
#include "io/npz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const sld_npy *a)
{
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++)
        n *= (size_t)a->shape[i];
    if (n != a->numel)
        abort();
    volatile double sum = 0;
    for (size_t i = 0; i < a->numel; i++)
        sum += a->data[i];
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    sld_npy a;
    if (sld_npy_parse(&a, buf, size, "fuzz.npy", NULL) == SLD_OK) {
        check(&a);
        sld_npy_free(&a);
    }
    sld_npz *z;
    if (sld_npz_open_mem(&z, buf, size, "fuzz.npz", NULL) == SLD_OK) {
        static const char *const keys[2] = {"mu", "sigma"};
        for (int k = 0; k < 2; k++)
            if (sld_npz_get(z, keys[k], &a, NULL) == SLD_OK) {
                check(&a);
                sld_npy_free(&a);
            }
        sld_npz_close(z);
    }
    free(buf);
    return 0;
}
