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
 * of one network (sld_pack_ws), which only grows until sld_pack_ws_trim, or
 * in memory the caller plans for them (sld_pconv_run_buf).
 *
 * Plain (unpacked) mode: with SLD_ISA=ref, for channel counts below 16
 * (unless sld_pconv_new_ex asks to pack those), or when oneDNN cannot build a
 * primitive at load, the object just keeps the
 * caller's pointer and runs sld_conv2d / sld_linear, so results follow ops.h
 * exactly.
 *
 * Measured on the 2-core Zen4 (AVX512-BF16, no AMX; 1 thread, SD 1.5 UNet
 * shapes): 3x3 convs 103-117 GFLOP/s fp32 (FMA peak ~113/core), 200-233 bf16
 * (vdpbf16ps peak ~228/core); linears 85-105 fp32, 170-210 bf16.
 *
 * Winograd (sld_pconv_set_winograd, off unless a network turns it on): fp32
 * 3x3 stride-1 convs whose run has at least 32x32 pixels and no more
 * channels than pixels go through oneDNN's Winograd F(4,3) kernel, which
 * does about 2.25x fewer multiplications (1.8-3.3x faster on a Zen 5 at
 * SD 1.5's 32^2-256^2 shapes). It transforms the weights on every call (the
 * inference-only variant would keep them 4x larger), from one extra copy of
 * the weights in its blocked layout (sld_pconv_winograd_bytes: 1x the fp32
 * weights), and needs a scratchpad of about 2.25x the input plus output
 * activations, held in the workspace; a shape whose scratchpad would pass
 * SLD_WINO_SCRATCH_MAX, or that oneDNN cannot run in Winograd, stays direct.
 * Results differ from direct convolution by rounding only (~1e-6 relative
 * at SD shapes); bf16 never uses it.
 *
 * Thread-safety: run calls on objects sharing a workspace must not overlap
 * (one network evaluation at a time). Results are deterministic for a given
 * thread count.
 */
#ifndef SLD_OPS_PACKED_H
#define SLD_OPS_PACKED_H

#include "ops/ops.h"
#include "ops/profile.h"

typedef struct sld_pack_ws sld_pack_ws;
typedef struct sld_pconv sld_pconv;
typedef struct sld_plin sld_plin;

/* Workspace for packed ops; NULL on out of memory. Free with sld_pack_ws_free
 * (NULL is a no-op). */
sld_pack_ws *sld_pack_ws_new(void);
void sld_pack_ws_free(sld_pack_ws *ws);
/* Bytes currently held by the workspace buffers. */
size_t sld_pack_ws_bytes(const sld_pack_ws *ws);
/* Frees the workspace buffers (they grow again on the next run that needs
 * them); the stream and every packed object stay usable. */
void sld_pack_ws_trim(sld_pack_ws *ws);
/* Every later run of a packed op on ws adds its time and work to prof (its
 * layout reorders under SLD_PROF_REORDER); NULL turns that off. prof must
 * outlive the runs. ops/profile.h. */
void sld_pack_ws_set_profile(sld_pack_ws *ws, sld_prof *prof);

/* Resolves SLD_PREC_AUTO (bf16 only where AMX exists) and downgrades bf16 to
 * fp32 when the CPU has no native bf16 dot product or SLD_ISA=ref. */
sld_precision sld_pack_precision(sld_precision requested);

/* Convolution weights w [C_out,C_in,kh,kw] and bias [C_out] (may be NULL)
 * for geometry d (d->B, H, W are ignored: any input size is accepted at run
 * time). Copies what it packs; when sld_pconv_packed() is false the object
 * keeps pointing at w and bias, which must then outlive it. */
sld_status sld_pconv_new(sld_pconv **out, const sld_conv2d_desc *d, const float *w,
                         const float *bias, sld_precision prec, sld_error *err);
/* Same, and with pack_thin a k x k conv (k > 1) with fewer than 16 input or
 * output channels is packed too, always in float32 (same results as plain
 * mode's sld_conv2d, without its process-wide cached buffers). */
sld_status sld_pconv_new_ex(sld_pconv **out, const sld_conv2d_desc *d, const float *w,
                            const float *bias, sld_precision prec, bool pack_thin,
                            sld_error *err);
void sld_pconv_free(sld_pconv *p);
bool sld_pconv_packed(const sld_pconv *p);
/* y [B,C_out,Ho,Wo] = conv(x [B,C_in,H,W]) + bias, float32 NCHW. When
 * residual is not NULL it is added (residual has y's shape; it may alias
 * y). Errors only on out of memory or an unusable oneDNN. */
sld_status sld_pconv_run(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y, int B, int H,
                         int W, const float *residual, sld_error *err);

/* Largest Winograd scratchpad a conv may use (see above). */
#define SLD_WINO_SCRATCH_MAX ((size_t)384 << 20)

/* Lets p run in Winograd at the shapes where it pays (off by default); a
 * no-op for bf16, plain-mode or non-3x3 convs. Set it before the first run
 * (entries already built for a shape keep their kernel). */
void sld_pconv_set_winograd(sld_pconv *p, bool on);
/* Whether this CPU (and SLD_ISA) lets fp32 convs use Winograd at all. */
bool sld_pack_winograd_available(void);
/* Whether a run at B,H,W uses Winograd (builds that shape's primitive). */
bool sld_pconv_winograd_used(sld_pconv *p, int B, int H, int W);
/* Bytes of the weight copy held for Winograd (0 until a Winograd run). */
size_t sld_pconv_winograd_bytes(const sld_pconv *p);
/* Process-wide: bytes of all Winograd weight copies held now, and the
 * largest Winograd scratchpad built so far (for benches). */
size_t sld_pack_winograd_weight_bytes(void);
size_t sld_pack_winograd_scratch_max(void);

/* Bytes of the oneDNN-layout copies of the input (*src_bytes) and output
 * (*dst_bytes) one run at B,H,W goes through; both 0 in plain mode or when
 * no primitive can be built (the run then reports the error). Builds the
 * per-shape primitive when it does not exist yet. */
void sld_pconv_scratch(sld_pconv *p, int B, int H, int W, size_t *src_bytes, size_t *dst_bytes);
/* sld_pconv_run with caller memory for those copies, so that a network can
 * plan them in its own arena instead of the workspace: sbuf (sbytes) holds
 * the input copy, dbuf (dbytes) the output copy; either one NULL or smaller
 * than sld_pconv_scratch says falls back to the workspace. Both 64-byte
 * aligned, not overlapping each other nor residual. The run reads x
 * completely before it writes dbuf, and writes y only after its last read of
 * sbuf, so sbuf may be y's memory (when residual is NULL) and dbuf x's
 * memory (when y is not x). y may be x in every mode. */
sld_status sld_pconv_run_buf(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y, int B,
                             int H, int W, const float *residual, void *sbuf, size_t sbytes,
                             void *dbuf, size_t dbytes, sld_error *err);

/* Linear weights W [N,K] and bias [N] (may be NULL): y[M,N] = x[M,K] W^T + b.
 * Same ownership rule as sld_pconv_new. */
sld_status sld_plin_new(sld_plin **out, const float *W, const float *b, int N, int K,
                        sld_precision prec, sld_error *err);
void sld_plin_free(sld_plin *p);
bool sld_plin_packed(const sld_plin *p);
sld_status sld_plin_run(sld_plin *p, sld_pack_ws *ws, const float *x, float *y, int M,
                        sld_error *err);

#endif /* SLD_OPS_PACKED_H */
