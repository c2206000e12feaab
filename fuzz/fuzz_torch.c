/* fuzz_torch.c — libFuzzer target for the whole PyTorch checkpoint reader
 * (io/torch_ckpt.c: zip via minizip over memory, legacy, the pickle machine,
 * storage binding, view copies) from a buffer, in both naming modes: every
 * tensor it returns lies inside the input or in a buffer it owns. */
#include "io/torch_ckpt.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int flags = 0; flags < 2; flags++) {
        sld_st_file *f;
        sld_error err;
        if (!sld_torch_sniff(data, size))
            return 0;
        if (sld_st_open_mem_ex(&f, data, size, "fuzz", flags ? SLD_ST_ALL_OBJECTS : 0, &err) !=
            SLD_OK)
            continue;
        volatile uint8_t sink = 0;
        for (int i = 0; i < sld_st_count(f); i++) {
            const sld_st_tensor *t = sld_st_at(f, i);
            const uint8_t *p = t->data;
            if (t->nbytes) {
                sink ^= p[0];
                sink ^= p[t->nbytes - 1]; /* ASan reports a span outside its buffer */
            }
            if (t->nbytes != t->numel * sld_dtype_size(t->dtype) || sld_st_find(f, t->name) != t)
                __builtin_trap();
        }
        (void)sink;
        sld_st_close(f);
    }
    return 0;
}
