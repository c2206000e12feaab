/*
 * profile.h — where a network forward spends its time, by op class.
 *
 * Opt-in (SLD_PROFILE=1 when a UNet or VAE is loaded): each op of a forward
 * is timed with a clock read on either side, so it costs a little and is for
 * benches and investigations. The packed convolutions and linears time their
 * own pieces (the layout reorders around each oneDNN primitive apart from the
 * primitive itself) into the profile their workspace carries
 * (sld_pack_ws_set_profile); the networks time attention, norms and the
 * element-wise ops around them. The work of each class is counted too, 2 FLOP
 * per multiply-add, so a bench can say GFLOP/s and % of peak per class.
 * Winograd convolutions count the work of the direct convolution they replace
 * (an "effective" rate, the one comparable with direct).
 */
#ifndef SLD_OPS_PROFILE_H
#define SLD_OPS_PROFILE_H

#include <stddef.h>

typedef enum {
    SLD_PROF_CONV3,      /* 3x3 (and other k > 1) convolutions, direct kernel */
    SLD_PROF_CONV3_WINO, /* 3x3 convolutions, Winograd F(4,3) */
    SLD_PROF_CONV1,      /* 1x1 convolutions */
    SLD_PROF_LINEAR,     /* linear layers (matmul) */
    SLD_PROF_ATTN,       /* fused attention: QK^T, softmax, PV */
    SLD_PROF_REORDER,    /* layout reorders in and out of the primitives (+ fp32<->bf16) */
    SLD_PROF_NORM,       /* GroupNorm (+ SiLU), LayerNorm */
    SLD_PROF_ELT,        /* element-wise: residual adds, GEGLU, NCHW<->NHWC, bias adds */
    SLD_PROF_N
} sld_prof_class;

typedef struct {
    double seconds[SLD_PROF_N];
    double gflop[SLD_PROF_N]; /* 0 for classes whose work is not counted */
    double total;             /* wall seconds of the forwards, all classes and the rest */
    int forwards;             /* how many forwards are summed here */
} sld_prof;

/* Short names: conv3x3, conv3x3_wino, conv1x1, linear, attention, reorder,
 * norm, elementwise. */
extern const char *const sld_prof_names[SLD_PROF_N];

/* Adds one op's time (from t0, an sld_time_now reading) and work to class c;
 * p may be NULL (profiling off): then nothing happens. */
void sld_prof_add(sld_prof *p, sld_prof_class c, double t0, double gflop);

/* "total T s, conv3x3 S s (G GFLOP/s), ..., other R s": one line, the
 * classes that ran, for logs. Returns what snprintf would. */
int sld_prof_format(const sld_prof *p, char *buf, size_t cap);

#endif /* SLD_OPS_PROFILE_H */
