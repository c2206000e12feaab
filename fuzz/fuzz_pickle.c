/* fuzz_pickle.c — libFuzzer target for the code-free pickle machine
 * (io/pickle.c) on raw bytes: every input ends in a value or a clean error;
 * tensor records carry ranks and dimensions within bounds. */
#include "io/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const sld_pk_value *v, int depth)
{
    if (depth > 50)
        return;
    switch (v->kind) {
    case SLD_PK_TUPLE:
    case SLD_PK_LIST:
    case SLD_PK_SET:
    case SLD_PK_DICT:
        for (size_t i = 0; i < v->u.seq.n; i++)
            touch(v->u.seq.v[i], depth + 1);
        break;
    case SLD_PK_TENSOR:
        if (v->u.tensor.ndim < 0 || v->u.tensor.ndim > SLD_ST_MAX_DIMS ||
            v->u.tensor.storage->kind != SLD_PK_STORAGE)
            __builtin_trap();
        for (int d = 0; d < v->u.tensor.ndim; d++)
            if (v->u.tensor.shape[d] < 0 || v->u.tensor.stride[d] < 0)
                __builtin_trap();
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sld_pickle *vm;
    sld_pk_value *root;
    sld_error err;
    size_t used;
    if (sld_pickle_run(&vm, &root, data, size, &used, "fuzz", &err) != SLD_OK)
        return 0;
    if (used > size)
        __builtin_trap();
    touch(root, 0);
    sld_pickle_free(vm);
    return 0;
}
