/*
 * attention_avx512.c — fused multi-head attention in fp32 (flash-style): for
 * each (batch, head, block of 64 queries) it streams over blocks of up to 64
 * keys, keeping a running maximum m, denominator l and unnormalised output O
 * per query (online softmax), so no Nq x Nk score matrix is ever formed.
 * Also owns sld_exp2_avx512 (the exp used here, exposed for its test).
 *
 * Layout: queries live in the vector lanes. The query block is packed once,
 * transposed (Qt [dh][64], pre-multiplied by scale*log2(e) so the softmax
 * needs only 2^x), and the output is kept transposed too (Ot [dh][64]). Then
 *   S^T[j][:] = sum_d K[j][d] * Qt[d][:]    broadcast K from the caller's
 *                                           (strided) rows, FMA 4 vectors
 *   Ot[c][:] += sum_j V[j][c] * P^T[j][:]   broadcast V from the caller's rows
 * Both micro-kernels hold 6 rows x 4 vectors = 24 zmm accumulators, need no
 * packing of K or V and no padding of dh (dh = 40 wastes nothing), and every
 * softmax step (max, exp, sum, rescale) is vertical: no horizontal
 * reductions, 64 queries per instruction group.
 *
 * A task covers up to 4 such query blocks (160/dh of them: 4 at dh 40, 2 at
 * 80, 1 at 160; 4 for dh > 160) that take turns on each key block, so its K
 * and V rows come from L3 once per task and from L1/L2 for the other blocks.
 *
 * Speed (Zen4, 1 thread, SD 1.5 shapes): 80-98 GFLOP/s, 70-85% of the
 * measured 115 GFLOP/s zmm-FMA peak; at dh 40 the exp of the softmax is
 * about 15% of the time, the S and PV tile edges and packing the rest.
 *
 * Scratch: per thread Qt and Ot for the task's blocks and P^T ([80][64]);
 * on the stack when dh <= 160 (every UNet shape; ~100 KB), otherwise one
 * allocation per call (the VAE's single-head dh = 512, 4 blocks per task,
 * ~1 MB per thread, noise next to the work). Running out of memory there
 * returns false and the caller falls back to the reference.
 *
 * Determinism: every task (batch, head, query blocks) is computed by one
 * thread with a fixed order of operations, and the task split depends only
 * on the shape, so the result is identical for any thread count or schedule.
 */
#include "ops/avx512_math.h"
#include "ops/ops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* BQ queries per query block (QV vectors); BK keys per block, the last block takes
 * up to BK + 16 so e.g. 77 keys are one block; JR key rows per score tile;
 * CR output channels per PV tile. */
enum {
    BQ = 64, QV = BQ / 16, BK = 64, BK_MAX = BK + 16, JR = 6, CR = 6, DH_STACK = 160,
    NSUB_MAX = 4
};

/* Score of a masked (causal) pair: finite so 2^(s - m) is exactly 0 without
 * an inf - inf; below any real score. */
#define MASKED (-0x1p120f)

#define INLINE static inline __attribute__((always_inline))
/* The micro-kernels' row/vector loops must be fully unrolled so their
 * accumulators stay in registers; -O2 alone does not do it. */
#define UNROLL _Pragma("GCC unroll 8")

typedef struct {
    float *qt; /* [dh][BQ]     queries transposed and scaled (zero lanes past Nq) */
    float *ot; /* [dh][BQ]     unnormalised output, transposed */
    float *p;  /* [BK_MAX][BQ] scores, then probabilities, transposed */
} work;

/* Lanes of query vector qv that may see a key t positions after the block's
 * first query (query i0+16qv+lane sees key i0+t when 16qv+lane >= t). */
static inline __mmask16 causal_lanes(int t, int qv)
{
    int s = t - 16 * qv;
    return s <= 0 ? (__mmask16)0xffff : s >= 16 ? (__mmask16)0 : (__mmask16)(0xffffu << s);
}

/* P^T rows [0, jr) = scores of keys k[0..jr) (row stride ldk) against the
 * block; mx = max(mx, rows). With mask, row r is key t0 + r relative to the
 * block's first query and invisible lanes become MASKED. */
INLINE void scores_tile(int jr, const float *qt, int dh, const float *k, int ldk, float *p,
                        __m512 *mx, bool mask, int t0)
{
    __m512 acc[JR][QV];
    UNROLL
    for (int r = 0; r < jr; r++)
        UNROLL
        for (int v = 0; v < QV; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int d = 0; d < dh; d++) {
        __m512 q[QV];
        UNROLL
        for (int v = 0; v < QV; v++)
            q[v] = _mm512_load_ps(qt + (size_t)d * BQ + 16 * v);
        UNROLL
        for (int r = 0; r < jr; r++) {
            __m512 kb = _mm512_set1_ps(k[(size_t)r * ldk + d]);
            UNROLL
            for (int v = 0; v < QV; v++)
                acc[r][v] = _mm512_fmadd_ps(kb, q[v], acc[r][v]);
        }
    }
    __m512 masked = _mm512_set1_ps(MASKED);
    UNROLL
    for (int r = 0; r < jr; r++)
        UNROLL
        for (int v = 0; v < QV; v++) {
            __m512 s = acc[r][v];
            if (mask)
                s = _mm512_mask_blend_ps(causal_lanes(t0 + r, v), masked, s);
            _mm512_store_ps(p + (size_t)r * BQ + 16 * v, s);
            mx[v] = _mm512_max_ps(mx[v], s);
        }
}

/* Ot rows [c0, c0+cr) = alpha * Ot (0 when first) + sum_j V[j][c] P^T[j]. */
INLINE void pv_tile(int cr, float *ot, int c0, const float *p, int nk, const float *v, int ldv,
                    const __m512 *alpha, bool first)
{
    __m512 acc[CR][QV];
    UNROLL
    for (int r = 0; r < cr; r++)
        UNROLL
        for (int u = 0; u < QV; u++)
            acc[r][u] = first ? _mm512_setzero_ps()
                              : _mm512_mul_ps(alpha[u],
                                              _mm512_load_ps(ot + (size_t)(c0 + r) * BQ + 16 * u));
    const float *vc = v + c0;
    for (int j = 0; j < nk; j++) {
        __m512 pj[QV];
        UNROLL
        for (int u = 0; u < QV; u++)
            pj[u] = _mm512_load_ps(p + (size_t)j * BQ + 16 * u);
        UNROLL
        for (int r = 0; r < cr; r++) {
            __m512 vb = _mm512_set1_ps(vc[(size_t)j * ldv + r]);
            UNROLL
            for (int u = 0; u < QV; u++)
                acc[r][u] = _mm512_fmadd_ps(vb, pj[u], acc[r][u]);
        }
    }
    UNROLL
    for (int r = 0; r < cr; r++)
        UNROLL
        for (int u = 0; u < QV; u++)
            _mm512_store_ps(ot + (size_t)(c0 + r) * BQ + 16 * u, acc[r][u]);
}

static void scores_block(const float *qt, float *p, int dh, const float *k, int ldk, int nk,
                         __m512 *mx, bool causal, int t0)
{
    for (int j = 0; j < nk; j += JR) {
        int jr = nk - j < JR ? nk - j : JR;
        const float *kj = k + (size_t)j * ldk;
        float *pj = p + (size_t)j * BQ;
        bool mask = causal && t0 + j + jr - 1 > 0;
        switch (jr) {
        case 1: scores_tile(1, qt, dh, kj, ldk, pj, mx, mask, t0 + j); break;
        case 2: scores_tile(2, qt, dh, kj, ldk, pj, mx, mask, t0 + j); break;
        case 3: scores_tile(3, qt, dh, kj, ldk, pj, mx, mask, t0 + j); break;
        case 4: scores_tile(4, qt, dh, kj, ldk, pj, mx, mask, t0 + j); break;
        case 5: scores_tile(5, qt, dh, kj, ldk, pj, mx, mask, t0 + j); break;
        default: scores_tile(6, qt, dh, kj, ldk, pj, mx, mask, t0 + j); break;
        }
    }
}

static void pv_block(float *ot, const float *p, int dh, const float *v, int ldv, int nk,
                     const __m512 *alpha, bool first)
{
    for (int c = 0; c < dh; c += CR) {
        switch (dh - c < CR ? dh - c : CR) {
        case 1: pv_tile(1, ot, c, p, nk, v, ldv, alpha, first); break;
        case 2: pv_tile(2, ot, c, p, nk, v, ldv, alpha, first); break;
        case 3: pv_tile(3, ot, c, p, nk, v, ldv, alpha, first); break;
        case 4: pv_tile(4, ot, c, p, nk, v, ldv, alpha, first); break;
        case 5: pv_tile(5, ot, c, p, nk, v, ldv, alpha, first); break;
        default: pv_tile(6, ot, c, p, nk, v, ldv, alpha, first); break;
        }
    }
}

/* Qt (scaled Q^T) of queries [i0, i0+nq), zero lanes past nq; 16x16
 * blocks through registers. */
static void pack_q(float *qt, const float *q, int ldq, int i0, int nq, int dh, float s2)
{
    __m512 sc = _mm512_set1_ps(s2);
    for (int ib = 0; ib < BQ; ib += 16)
        for (int d0 = 0; d0 < dh; d0 += 16) {
            __mmask16 md = sld_tail_mask((size_t)(dh - d0));
            __m512 r[16];
            for (int t = 0; t < 16; t++)
                r[t] = ib + t < nq ? _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(
                                                           md, q + (size_t)(i0 + ib + t) * ldq + d0))
                                   : _mm512_setzero_ps();
            sld_transpose16x16(r);
            for (int j = 0; j < 16 && d0 + j < dh; j++)
                _mm512_store_ps(qt + (size_t)(d0 + j) * BQ + ib, r[j]);
        }
}

/* out rows [i0, i0+nq) = (Ot / l)^T; zeros where l = 0 (no keys). */
static void store_out(float *o, int ldo, const float *ot, const __m512 *l, int i0, int nq, int dh)
{
    for (int u = 0; u < QV; u++) {
        __mmask16 pos = _mm512_cmp_ps_mask(l[u], _mm512_setzero_ps(), _CMP_NEQ_UQ); /* NaN too */
        __m512 inv = _mm512_maskz_div_ps(pos, _mm512_set1_ps(1.0f), l[u]);
        for (int c0 = 0; c0 < dh; c0 += 16) {
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = c0 + j < dh ? _mm512_maskz_mul_ps(pos, inv,
                                                         _mm512_load_ps(ot + (size_t)(c0 + j) * BQ + 16 * u))
                                   : _mm512_setzero_ps();
            sld_transpose16x16(r);
            __mmask16 mc = sld_tail_mask((size_t)(dh - c0));
            for (int t = 0; t < 16 && 16 * u + t < nq; t++)
                _mm512_mask_storeu_ps(o + (size_t)(i0 + 16 * u + t) * ldo + c0, mc, r[t]);
        }
    }
}

/* One task: queries [i0, i0+nq) of one (batch, head), nq <= nsub*BQ, as
 * nsub blocks of BQ that take turns on each key block while its K and V rows
 * are hot in L1/L2. Pointers at the head's first column; s2 = scale*log2(e). */
static void attend(const work *w, int nsub, const float *q, int ldq, const float *k, int ldk,
                   const float *v, int ldv, float *o, int ldo, int i0, int nq, int Nk, int dh,
                   float s2, bool causal)
{
    __m512 m[NSUB_MAX][QV], l[NSUB_MAX][QV];
    int lim[NSUB_MAX] = {0}; /* keys visible to sub-block s: causal stops at its last query */
    nsub = (nq + BQ - 1) / BQ < nsub ? (nq + BQ - 1) / BQ : nsub;
    for (int s = 0; s < nsub; s++) {
        int is = i0 + s * BQ, ns = nq - s * BQ < BQ ? nq - s * BQ : BQ;
        pack_q(w->qt + (size_t)s * dh * BQ, q, ldq, is, ns, dh, s2);
        for (int u = 0; u < QV; u++)
            m[s][u] = _mm512_set1_ps(-INFINITY), l[s][u] = _mm512_setzero_ps();
        lim[s] = causal && is + ns < Nk ? is + ns : Nk;
    }
    int nk_all = lim[nsub - 1], nk;
    for (int j0 = 0; j0 < nk_all; j0 += nk) {
        nk = nk_all - j0 <= BK_MAX ? nk_all - j0 : BK;
        for (int s = 0; s < nsub; s++) {
            if (j0 >= lim[s])
                continue;
            int nks = lim[s] - j0 < nk ? lim[s] - j0 : nk;
            const float *qt = w->qt + (size_t)s * dh * BQ;
            float *ot = w->ot + (size_t)s * dh * BQ;
            __m512 mx[QV], alpha[QV], sum[QV];
            for (int u = 0; u < QV; u++)
                mx[u] = _mm512_set1_ps(-INFINITY);
            scores_block(qt, w->p, dh, k + (size_t)j0 * ldk, ldk, nks, mx, causal,
                         j0 - (i0 + s * BQ));
            for (int u = 0; u < QV; u++) {
                __m512 mn = _mm512_max_ps(m[s][u], mx[u]);
                alpha[u] = sld_exp2_512(_mm512_sub_ps(m[s][u], mn));
                m[s][u] = mn;
                sum[u] = _mm512_setzero_ps();
            }
            for (int j = 0; j < nks; j++)
                for (int u = 0; u < QV; u++) {
                    float *pj = w->p + (size_t)j * BQ + 16 * u;
                    __m512 e = sld_exp2_neg512(_mm512_sub_ps(_mm512_load_ps(pj), m[s][u]));
                    sum[u] = _mm512_add_ps(sum[u], e);
                    _mm512_store_ps(pj, e);
                }
            for (int u = 0; u < QV; u++)
                l[s][u] = _mm512_fmadd_ps(l[s][u], alpha[u], sum[u]);
            pv_block(ot, w->p, dh, v + (size_t)j0 * ldv, ldv, nks, alpha, j0 == 0);
        }
    }
    for (int s = 0; s < nsub; s++) {
        int is = i0 + s * BQ, ns = nq - s * BQ < BQ ? nq - s * BQ : BQ;
        if (lim[s] <= 0) { /* no keys: the reference writes zeros */
            for (int i = 0; i < ns; i++)
                memset(o + (size_t)(is + i) * ldo, 0, (size_t)dh * sizeof(float));
            continue;
        }
        store_out(o, ldo, w->ot + (size_t)s * dh * BQ, l[s], is, ns, dh);
    }
}

bool sld_attention_avx512(const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                          float scale, bool causal)
{
    if (B <= 0 || Nq <= 0 || heads <= 0 || dh <= 0)
        return true;
    if (causal && !sld_rows_finite(v, ldv, (long)B * Nk, heads * dh))
        return false; /* the reference keeps masked keys' NaN out */
    int nthr = omp_get_max_threads();
    /* sub-blocks per task: as many as the stack scratch holds (4 at dh 40);
     * on the heap 4 up to dh 1024 (the VAE's dh 512: +5% fp32, +50% bf16
     * over 1, since K/V are streamed and packed once per 256 queries) */
    int nsub = dh <= DH_STACK ? DH_STACK / dh : dh <= 1024 ? NSUB_MAX : 1;
    nsub = nsub > NSUB_MAX ? NSUB_MAX : nsub;
    size_t per = 2 * (size_t)nsub * dh * BQ + (size_t)BK_MAX * BQ;
    float *heap = NULL;
    if (dh > DH_STACK) {
        heap = sld_malloc_aligned((size_t)nthr * per * sizeof(float));
        if (!heap)
            return false;
    }
    float s2 = scale * 1.44269504088896341f;
    int tq = nsub * BQ, nqb = (Nq + tq - 1) / tq;
    long ntask = (long)B * heads * nqb;
#pragma omp parallel num_threads(nthr)
    {
        _Alignas(64) float stack[2 * DH_STACK * BQ + BK_MAX * BQ];
        float *base = heap ? heap + (size_t)omp_get_thread_num() * per : stack;
        work w = {base, base + (size_t)nsub * dh * BQ, base + 2 * (size_t)nsub * dh * BQ};
#pragma omp for schedule(dynamic, 1)
        for (long t = 0; t < ntask; t++) {
            int qbk = (int)(t % nqb), h = (int)(t / nqb % heads), b = (int)(t / nqb / heads);
            int i0 = qbk * tq, nq = Nq - i0 < tq ? Nq - i0 : tq;
            attend(&w, nsub, q + (size_t)b * Nq * ldq + (size_t)h * dh, ldq,
                   k + (size_t)b * Nk * ldk + (size_t)h * dh, ldk,
                   v + (size_t)b * Nk * ldv + (size_t)h * dh, ldv,
                   out + (size_t)b * Nq * ldo + (size_t)h * dh, ldo, i0, nq, Nk, dh, s2, causal);
        }
    }
    sld_free(heap);
    return true;
}

void sld_exp2_avx512(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = sld_tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, sld_exp2_512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
