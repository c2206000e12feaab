/* fuzz_onnx.c — libFuzzer target for the ONNX protobuf reader and the NudeNet
 * graph builder: arbitrary bytes must be rejected cleanly, or give tensors
 * whose data spans are fully readable, and a graph that (when it builds) runs
 * on a zero image without touching memory it does not own.
 * Seed: fuzz/seeds/fuzz_onnx/tiny.onnx (written by tests/test_nudenet.c with
 * SLD_WRITE_ONNX_SEED=path). */
#include "io/onnx.h"
#include "model/nudenet.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sld_error err;
    sld_onnx_model *m;
    if (sld_onnx_parse(data, size, "fuzz", &m, &err) != SLD_OK)
        return 0;
    volatile uint8_t sink = 0;
    for (int i = 0; i < m->n_inits; i++) {
        const sld_onnx_tensor *t = &m->inits[i];
        if (t->nbytes != t->numel * sld_onnx_dtype_size(t->dtype))
            __builtin_trap();
        if (t->nbytes) { /* ASan reports a short allocation */
            sink ^= ((const uint8_t *)t->data)[0];
            sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
        }
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (!m->nodes[i].op_type || !m->nodes[i].name || !m->nodes[i].domain)
            __builtin_trap();
    (void)sink;
    sld_onnx_free(m);

    sld_nudenet *nn;
    if (sld_nudenet_open_mem(&nn, data, size, "fuzz", &err) != SLD_OK)
        return 0;
    if (size < 65536) {
        static float blob[3 * SLD_NUDENET_SIZE * SLD_NUDENET_SIZE];
        static float out[SLD_NUDENET_ROWS * SLD_NUDENET_ANCHORS];
        sld_nudenet_forward(nn, blob, out, &err);
    }
    sld_nudenet_free(nn);
    return 0;
}
