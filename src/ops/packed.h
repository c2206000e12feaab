/*
 * packed.h — prepared (load-time packed) weights for convolutions and linear
 * layers, in the compute precision a network was opened with.
 *
 * A network creates one sld_pconv / sld_plin per layer at load time: the
 * weights are reordered once into the layout oneDNN's primitive prefers
 * (fp32, or bf16 with fp32 accumulation), so the plain float32 copy can be
 * dropped afterwards (sld_pconv_packed / sld_plin_packed say whether the
 * object still reads the caller's pointer). Activations stay float32 NCHW
 * (convs) or row-major [M,K] (linears) at the interface; conversions to the
 * blocked / bf16 layouts happen inside, in a workspace shared by all layers
 * of one network (sld_pack_ws), which only grows.
 *
 * Plain (unpacked) mode: with SLD_ISA=ref, for channel counts below 16, or
 * when oneDNN cannot build a primitive at load, the object just keeps the
 * caller's pointer and runs sld_conv2d / sld_linear, so results follow ops.h
 * exactly.
 *
 * Measured on the 2-core Zen4 (AVX512-BF16, no AMX; 1 thread, SD 1.5 UNet
 * shapes): 3x3 convs 103-117 GFLOP/s fp32 (FMA peak ~113/core), 200-233 bf16
 * (vdpbf16ps peak ~228/core); linears 85-105 fp32, 170-210 bf16. oneDNN's
 * Winograd F(4,3) would run fp32 3x3 convs 1.5-3x faster but keeps weights
 * 4x larger and fitted to each input size, so it is not used.
 *
 * Thread-safety: run calls on objects sharing a workspace must not overlap
 * (one network evaluation at a time). Results are deterministic for a given
 * thread count.
 */
#ifndef SLD_OPS_PACKED_H
#define SLD_OPS_PACKED_H

#include "ops/ops.h"

typedef struct sld_pack_ws sld_pack_ws;
typedef struct sld_pconv sld_pconv;
typedef struct sld_plin sld_plin;

/* Workspace for packed ops; NULL on out of memory. Free with sld_pack_ws_free
 * (NULL is a no-op). */
sld_pack_ws *sld_pack_ws_new(void);
void sld_pack_ws_free(sld_pack_ws *ws);
/* Bytes currently held by the workspace buffers. */
size_t sld_pack_ws_bytes(const sld_pack_ws *ws);

/* Resolves SLD_PREC_AUTO (bf16 only where AMX exists) and downgrades bf16 to
 * fp32 when the CPU has no native bf16 dot product or SLD_ISA=ref. */
sld_precision sld_pack_precision(sld_precision requested);

/* Convolution weights w [C_out,C_in,kh,kw] and bias [C_out] (may be NULL)
 * for geometry d (d->B, H, W are ignored: any input size is accepted at run
 * time). Copies what it packs; when sld_pconv_packed() is false the object
 * keeps pointing at w and bias, which must then outlive it. */
sld_status sld_pconv_new(sld_pconv **out, const sld_conv2d_desc *d, const float *w,
                         const float *bias, sld_precision prec, sld_error *err);
void sld_pconv_free(sld_pconv *p);
bool sld_pconv_packed(const sld_pconv *p);
/* y [B,C_out,Ho,Wo] = conv(x [B,C_in,H,W]) + bias, float32 NCHW. When
 * residual is not NULL it is added (residual has y's shape; it may alias
 * y). Errors only on out of memory or an unusable oneDNN. */
sld_status sld_pconv_run(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y, int B, int H,
                         int W, const float *residual, sld_error *err);

/* Linear weights W [N,K] and bias [N] (may be NULL): y[M,N] = x[M,K] W^T + b.
 * Same ownership rule as sld_pconv_new. */
sld_status sld_plin_new(sld_plin **out, const float *W, const float *b, int N, int K,
                        sld_precision prec, sld_error *err);
void sld_plin_free(sld_plin *p);
bool sld_plin_packed(const sld_plin *p);
sld_status sld_plin_run(sld_plin *p, sld_pack_ws *ws, const float *x, float *y, int M,
                        sld_error *err);

#endif /* SLD_OPS_PACKED_H */
