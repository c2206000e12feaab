/*
 * rng.h — torch-compatible CPU random numbers (internal side of the public
 * sld_rng_* API in sld.h).
 *
 * Reproduces torch 1.13 / 2.x CPU `torch.Generator().manual_seed(s)`:
 * mt19937 seeded with s & 0xffffffff, float32/float64 uniforms, and
 * torch.randn in float32 bit for bit, for both kernels torch can pick:
 * SLD_RNG_AVX2 (the x86-64 default: avx_mathfun log/sincos with FMAs) and
 * SLD_RNG_DEFAULT (portable scalar libm path). Successive draws on one
 * generator continue the same stream, including the cached spare normal of
 * the < 16 element path (it survives intervening large draws).
 *
 * A generator is plain data (no allocation): embed it or use sld_rng_new.
 */
#ifndef SLD_RNG_H
#define SLD_RNG_H

#include "core/core.h"

#define SLD_MT_N 624

struct sld_rng {
    uint32_t mt[SLD_MT_N]; /* mt19937 state */
    int idx;               /* next word of mt; SLD_MT_N = twist first */
    sld_rng_variant variant;
    int has_spare;         /* torch's cached double normal (scalar path) */
    double spare;
};

/* (Re)initialises r in place, like torch.Generator().manual_seed(seed): only
 * the low 32 bits of seed are used; clears the cached normal. */
void sld_rng_seed(sld_rng *r, uint64_t seed, sld_rng_variant v);

/* Next raw 32-bit mt19937 output. */
uint32_t sld_rng_u32(sld_rng *r);
/* One float32 uniform in [0,1): (u32 & 0xffffff) * 2^-24 (torch.rand). */
float sld_rng_uniform_f32(sld_rng *r);
/* One float64 uniform in [0,1) from 53 bits of (u32a << 32 | u32b). */
double sld_rng_uniform_f64(sld_rng *r);

/* torch.rand(n) float32 / float64 and torch.randn(n, dtype=float64). */
void sld_rng_rand(sld_rng *r, float *out, size_t n);
void sld_rng_rand64(sld_rng *r, double *out, size_t n);
void sld_rng_randn64(sld_rng *r, double *out, size_t n);

/* Box-Muller on one block of 16 float32 uniforms, in place, with the math of
 * the given variant (exposed for tests of the two kernels). */
void sld_rng_fill16(float d[16], sld_rng_variant v);

#endif /* SLD_RNG_H */
