/*
 * onnx_run.h — run an ONNX graph (as parsed by io/onnx.h) on float32 input:
 * the interpreter behind NudeNet, usable by any network built from the ops
 * it implements (see onnx_run.c). The runner is immutable after build and
 * allocates its own scratch per call, so threads may share it.
 *
 *     sld_onnx_run *r;
 *     int64_t in[4] = {1, 3, 320, 320};
 *     if (sld_onnx_run_new(&r, model, "x.onnx", in, 4, &err)) { ... }
 *     sld_onnx_run_forward(r, input, out, out_n, &err);
 *     sld_onnx_run_free(r);
 */
#ifndef SLD_ONNX_RUN_H
#define SLD_ONNX_RUN_H

#include "core/core.h"
#include "io/onnx.h"

typedef struct sld_onnx_run sld_onnx_run;

/* Binds model's nodes into a plan for one runtime input of the fixed shape
 * in_shape[in_ndim] and checks it by propagating shapes. Takes ownership of
 * m (freed with the runner, or here on failure). Errors name the file and
 * node: SLD_ERR_FORMAT (dangling or doubly defined names, an output that
 * does not depend on the input), SLD_ERR_UNSUPPORTED (an op, attribute or
 * dtype we do not implement), SLD_ERR_SHAPE, SLD_ERR_NOMEM. */
sld_status sld_onnx_run_new(sld_onnx_run **out, sld_onnx_model *m, const char *file,
                           const int64_t *in_shape, int in_ndim, sld_error *err);
/* Drops the process-wide conv cache too (keyed by weight pointers). */
void sld_onnx_run_free(sld_onnx_run *r);
/* The graph output's rank (dims filled, name set when not NULL), or -1
 * when it is not float32. */
int sld_onnx_run_output(const sld_onnx_run *r, int64_t *dims, const char **name);
const sld_onnx_model *sld_onnx_run_model(const sld_onnx_run *r);
/* input: the input shape's values; out: out_n floats (the output's size). */
sld_status sld_onnx_run_forward(const sld_onnx_run *r, const float *input, float *out,
                                size_t out_n, sld_error *err);

#endif /* SLD_ONNX_RUN_H */
