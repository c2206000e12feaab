/*
 * attention_bf16_avx512.c — fused multi-head attention with bf16 products
 * (AVX512-BF16 vdpbf16ps) and fp32 accumulation and softmax: the structure
 * of attention_avx512.c (queries in the vector lanes, transposed Qt and Ot,
 * online softmax over key blocks, 6 rows x 4 vectors accumulator tiles), with
 * each multiply-add consuming a pair of bf16 products:
 *   S^T[j][:] += (K[j][d], K[j][d+1]) . Qp[d/2][:]   Qp lane i = (Q[i][d], Q[i][d+1])
 *   Ot[c][:]  += (V[j][c], V[j+1][c]) . Pp[j/2][:]   Pp lane i = (P[j][i], P[j+1][i])
 * so one instruction does 32 multiply-adds where fp32 FMA does 16.
 *
 * Rounding: q (pre-scaled by scale*log2(e)), k, v and the probabilities are
 * rounded to bf16 (round to nearest even); everything else is fp32. The
 * softmax denominator sums the bf16-rounded probabilities that PV uses, so
 * the weights of each output row sum to 1 up to fp32 rounding.
 *
 * Packing: each query block once per task; K (rows to bf16) and V (key
 * pairs interleaved) once per key block and task, shared by the task's up to
 * 4 query blocks (160/dh of them), vectorised.
 *
 * Scratch per thread (~145 KB): on the stack when dh <= 160, else one
 * allocation per call. Determinism: the task split depends only on the
 * shape, each task runs on one thread in a fixed order of operations, so
 * results do not depend on the thread count.
 */
#include "ops/avx512_math.h"
#include "ops/ops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

enum {
    BQ = 64, QV = BQ / 16, BK = 64, BK_MAX = BK + 16, JR = 6, CR = 6, DH_STACK = 160,
    NSUB_MAX = 4
};

/* Score of a masked (causal) pair: finite so 2^(s - m) is exactly 0 without
 * an inf - inf; below any real score. */
#define MASKED (-0x1p120f)

#define INLINE static inline __attribute__((always_inline))
/* Full unrolling keeps the tile accumulators in registers (see the fp32 file). */
#define UNROLL _Pragma("GCC unroll 8")

typedef struct {
    uint32_t *qp; /* [nsub][dh2][BQ]  query pairs (bf16 x2), scaled; zero lanes past Nq */
    uint32_t *kb; /* [BK_MAX][dh2]    key rows in bf16, zero-padded to even dh */
    uint32_t *vp; /* [BK_MAX/2][dh]   value pairs (key 2j, key 2j+1) */
    uint32_t *pp; /* [BK_MAX/2][BQ]   probability pairs (key 2j, key 2j+1) */
    float *p;     /* [BK_MAX][BQ]     scores (fp32), transposed */
    float *ot;    /* [nsub][dh][BQ]   unnormalised output, transposed */
} work;

static size_t work_bytes(int dh, int nsub)
{
    size_t dh2 = ((size_t)dh + 1) / 2, ns = (size_t)nsub;
    size_t n = (ns * dh2 * BQ + BK_MAX * dh2 + BK_MAX / 2 * (size_t)dh + BK_MAX / 2 * BQ) * 4 +
               ((size_t)BK_MAX * BQ + ns * dh * BQ) * 4 + 6 * 64;
    return (n + 63) & ~(size_t)63; /* each thread's share starts 64-byte aligned */
}

static work work_carve(unsigned char *base, int dh, int nsub)
{
    size_t dh2 = ((size_t)dh + 1) / 2, ns = (size_t)nsub;
    work w;
    size_t off = 0;
#define CARVE(ptr, type, n)                                                                   \
    ptr = (type *)(void *)(base + off), off += (((n) * sizeof(type)) + 63) & ~(size_t)63
    CARVE(w.qp, uint32_t, ns * dh2 * BQ);
    CARVE(w.kb, uint32_t, BK_MAX * dh2);
    CARVE(w.vp, uint32_t, BK_MAX / 2 * (size_t)dh);
    CARVE(w.pp, uint32_t, (size_t)BK_MAX / 2 * BQ);
    CARVE(w.p, float, (size_t)BK_MAX * BQ);
    CARVE(w.ot, float, ns * dh * BQ);
#undef CARVE
    return w;
}

static inline __mmask16 causal_lanes(int t, int qv)
{
    int s = t - 16 * qv;
    return s <= 0 ? (__mmask16)0xffff : s >= 16 ? (__mmask16)0 : (__mmask16)(0xffffu << s);
}

/* Two fp32 vectors -> 16 bf16 pairs (lo[i], hi[i]) in 32-bit lanes. */
static inline __m512i pack_pairs(__m512 lo, __m512 hi)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

INLINE void scores_tile(int jr, const uint32_t *qp, int dh2, const uint32_t *kb, float *p,
                        __m512 *mx, bool mask, int t0)
{
    __m512 acc[JR][QV];
    UNROLL
    for (int r = 0; r < jr; r++)
        UNROLL
        for (int v = 0; v < QV; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int d = 0; d < dh2; d++) {
        __m512i q[QV];
        UNROLL
        for (int v = 0; v < QV; v++)
            q[v] = _mm512_load_si512(qp + (size_t)d * BQ + 16 * v);
        UNROLL
        for (int r = 0; r < jr; r++) {
            __m512i kr = _mm512_set1_epi32((int)kb[(size_t)r * dh2 + d]);
            UNROLL
            for (int v = 0; v < QV; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)kr, (__m512bh)q[v]);
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

INLINE void pv_tile(int cr, float *ot, int c0, const uint32_t *pp, int nk2, const uint32_t *vp,
                    int dh, const __m512 *alpha, bool first)
{
    __m512 acc[CR][QV];
    UNROLL
    for (int r = 0; r < cr; r++)
        UNROLL
        for (int u = 0; u < QV; u++)
            acc[r][u] = first ? _mm512_setzero_ps()
                              : _mm512_mul_ps(alpha[u],
                                              _mm512_load_ps(ot + (size_t)(c0 + r) * BQ + 16 * u));
    for (int j = 0; j < nk2; j++) {
        __m512i pj[QV];
        UNROLL
        for (int u = 0; u < QV; u++)
            pj[u] = _mm512_load_si512(pp + (size_t)j * BQ + 16 * u);
        UNROLL
        for (int r = 0; r < cr; r++) {
            __m512i vr = _mm512_set1_epi32((int)vp[(size_t)j * dh + c0 + r]);
            UNROLL
            for (int u = 0; u < QV; u++)
                acc[r][u] = _mm512_dpbf16_ps(acc[r][u], (__m512bh)vr, (__m512bh)pj[u]);
        }
    }
    UNROLL
    for (int r = 0; r < cr; r++)
        UNROLL
        for (int u = 0; u < QV; u++)
            _mm512_store_ps(ot + (size_t)(c0 + r) * BQ + 16 * u, acc[r][u]);
}

/* Keys [0, nk) of the block -> kb rows; values -> vp key pairs (zero past nk). */
static void pack_kv(const work *w, const float *k, int ldk, const float *v, int ldv, int nk,
                    int dh)
{
    int dh2 = (dh + 1) / 2;
    for (int j = 0; j < nk; j++) {
        const float *kj = k + (size_t)j * ldk;
        uint32_t *dst = w->kb + (size_t)j * dh2;
        for (int c = 0; c < dh; c += 32) {
            __mmask16 m0 = sld_tail_mask((size_t)(dh - c));
            __mmask16 m1 = sld_tail_mask(dh - c > 16 ? (size_t)(dh - c - 16) : 0);
            __m512 a = _mm512_maskz_loadu_ps(m0, kj + c), b = _mm512_maskz_loadu_ps(m1, kj + c + 16);
            /* 32 bf16 in order = 16 pairs; lanes past dh2 are not stored */
            __m512i x = (__m512i)_mm512_cvtne2ps_pbh(b, a);
            int left = dh2 - c / 2;
            _mm512_mask_storeu_epi32(dst + c / 2, sld_tail_mask((size_t)left), x);
        }
    }
    for (int j = 0; j < nk; j += 2) {
        const float *v0 = v + (size_t)j * ldv, *v1 = j + 1 < nk ? v0 + ldv : NULL;
        uint32_t *dst = w->vp + (size_t)(j / 2) * dh;
        for (int c = 0; c < dh; c += 16) {
            __mmask16 m = sld_tail_mask((size_t)(dh - c));
            __m512 a = _mm512_maskz_loadu_ps(m, v0 + c);
            __m512 b = v1 ? _mm512_maskz_loadu_ps(m, v1 + c) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(dst + c, m, pack_pairs(a, b));
        }
    }
}

/* Qp of queries [i0, i0+nq): 16 rows -> bf16 pairs (16 per 32 values),
 * transposed as 32-bit elements so lane i holds query i's pair. */
static void pack_q(uint32_t *qp, const float *q, int ldq, int i0, int nq, int dh, float s2)
{
    int dh2 = (dh + 1) / 2;
    __m512 sc = _mm512_set1_ps(s2);
    for (int ib = 0; ib < BQ; ib += 16)
        for (int d0 = 0; d0 < dh; d0 += 32) {
            __mmask16 m0 = sld_tail_mask((size_t)(dh - d0));
            __mmask16 m1 = sld_tail_mask(dh - d0 > 16 ? (size_t)(dh - d0 - 16) : 0);
            __m512 r[16];
            for (int t = 0; t < 16; t++) {
                if (ib + t >= nq) {
                    r[t] = _mm512_setzero_ps();
                    continue;
                }
                const float *qi = q + (size_t)(i0 + ib + t) * ldq + d0;
                __m512 a = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m0, qi));
                __m512 b = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m1, qi + 16));
                r[t] = _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(b, a));
            }
            sld_transpose16x16(r);
            for (int j = 0; j < 16 && d0 / 2 + j < dh2; j++)
                _mm512_store_ps((float *)(qp + (size_t)(d0 / 2 + j) * BQ + ib), r[j]);
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

/* One query block against the packed key block (keys [0, nk), t0 = first key
 * minus first query): scores, online-softmax update of m and l, Ot += P V. */
static void block(const work *w, const uint32_t *qp, float *ot, __m512 *m, __m512 *l, int nk,
                  int dh, bool causal, int t0, bool first)
{
    int dh2 = (dh + 1) / 2, nk2 = (nk + 1) / 2;
    __m512 mx[QV], alpha[QV], sum[QV];
    for (int u = 0; u < QV; u++)
        mx[u] = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < nk; j += JR) {
        int jr = nk - j < JR ? nk - j : JR;
        const uint32_t *kj = w->kb + (size_t)j * dh2;
        float *pj = w->p + (size_t)j * BQ;
        bool mask = causal && t0 + j + jr - 1 > 0;
        switch (jr) {
        case 1: scores_tile(1, qp, dh2, kj, pj, mx, mask, t0 + j); break;
        case 2: scores_tile(2, qp, dh2, kj, pj, mx, mask, t0 + j); break;
        case 3: scores_tile(3, qp, dh2, kj, pj, mx, mask, t0 + j); break;
        case 4: scores_tile(4, qp, dh2, kj, pj, mx, mask, t0 + j); break;
        case 5: scores_tile(5, qp, dh2, kj, pj, mx, mask, t0 + j); break;
        default: scores_tile(6, qp, dh2, kj, pj, mx, mask, t0 + j); break;
        }
    }
    for (int u = 0; u < QV; u++) {
        __m512 mn = _mm512_max_ps(m[u], mx[u]);
        alpha[u] = sld_exp2_512(_mm512_sub_ps(m[u], mn));
        m[u] = mn;
        sum[u] = _mm512_setzero_ps();
    }
    /* probabilities of key pairs -> pp; the sum adds the rounded values */
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    for (int j = 0; j < nk; j += 2)
        for (int u = 0; u < QV; u++) {
            const float *pj = w->p + (size_t)j * BQ + 16 * u;
            __m512 e0 = sld_exp2_neg512_bf16(_mm512_sub_ps(_mm512_load_ps(pj), m[u]));
            __m512 e1 = j + 1 < nk
                            ? sld_exp2_neg512_bf16(_mm512_sub_ps(_mm512_load_ps(pj + BQ), m[u]))
                            : _mm512_setzero_ps();
            __m512i x = pack_pairs(e0, e1);
            _mm512_store_si512(w->pp + (size_t)(j / 2) * BQ + 16 * u, x);
            sum[u] = _mm512_add_ps(sum[u], _mm512_castsi512_ps(_mm512_slli_epi32(x, 16)));
            sum[u] = _mm512_add_ps(sum[u], _mm512_castsi512_ps(_mm512_and_si512(x, hi_mask)));
        }
    for (int u = 0; u < QV; u++)
        l[u] = _mm512_fmadd_ps(l[u], alpha[u], sum[u]);
    for (int c = 0; c < dh; c += CR) {
        switch (dh - c < CR ? dh - c : CR) {
        case 1: pv_tile(1, ot, c, w->pp, nk2, w->vp, dh, alpha, first); break;
        case 2: pv_tile(2, ot, c, w->pp, nk2, w->vp, dh, alpha, first); break;
        case 3: pv_tile(3, ot, c, w->pp, nk2, w->vp, dh, alpha, first); break;
        case 4: pv_tile(4, ot, c, w->pp, nk2, w->vp, dh, alpha, first); break;
        case 5: pv_tile(5, ot, c, w->pp, nk2, w->vp, dh, alpha, first); break;
        default: pv_tile(6, ot, c, w->pp, nk2, w->vp, dh, alpha, first); break;
        }
    }
}

/* One task: queries [i0, i0+nq) of one (batch, head), nq <= nsub*BQ, as
 * nsub blocks of BQ sharing each packed key block (packing cost / nsub). */
static void attend(const work *w, int nsub, const float *q, int ldq, const float *k, int ldk,
                   const float *v, int ldv, float *o, int ldo, int i0, int nq, int Nk, int dh,
                   float s2, bool causal)
{
    int dh2 = (dh + 1) / 2;
    __m512 m[NSUB_MAX][QV], l[NSUB_MAX][QV];
    int lim[NSUB_MAX] = {0}; /* keys visible to sub-block s: causal stops at its last query */
    nsub = (nq + BQ - 1) / BQ < nsub ? (nq + BQ - 1) / BQ : nsub;
    for (int s = 0; s < nsub; s++) {
        int is = i0 + s * BQ, ns = nq - s * BQ < BQ ? nq - s * BQ : BQ;
        pack_q(w->qp + (size_t)s * dh2 * BQ, q, ldq, is, ns, dh, s2);
        for (int u = 0; u < QV; u++)
            m[s][u] = _mm512_set1_ps(-INFINITY), l[s][u] = _mm512_setzero_ps();
        lim[s] = causal && is + ns < Nk ? is + ns : Nk;
    }
    int nk_all = lim[nsub - 1], nk;
    for (int j0 = 0; j0 < nk_all; j0 += nk) {
        nk = nk_all - j0 <= BK_MAX ? nk_all - j0 : BK;
        pack_kv(w, k + (size_t)j0 * ldk, ldk, v + (size_t)j0 * ldv, ldv, nk, dh);
        for (int s = 0; s < nsub; s++) {
            if (j0 >= lim[s])
                continue;
            int nks = lim[s] - j0 < nk ? lim[s] - j0 : nk;
            block(w, w->qp + (size_t)s * dh2 * BQ, w->ot + (size_t)s * dh * BQ, m[s], l[s], nks,
                  dh, causal, j0 - (i0 + s * BQ), j0 == 0);
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

bool sld_attention_bf16_avx512(const float *q, int ldq, const float *k, int ldk, const float *v,
                               int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads,
                               int dh, float scale, bool causal)
{
    if (B <= 0 || Nq <= 0 || heads <= 0 || dh <= 0)
        return true;
    if (causal && !sld_rows_finite(v, ldv, (long)B * Nk, heads * dh))
        return false; /* the reference keeps masked keys' NaN out */
    int nthr = omp_get_max_threads();
    /* sub-blocks per task: as many as the stack scratch holds (4 at dh 40);
     * on the heap 4 up to dh 1024 (see the fp32 file) */
    int nsub = dh <= DH_STACK ? DH_STACK / (dh + dh % 2) : dh <= 1024 ? NSUB_MAX : 1;
    nsub = nsub > NSUB_MAX ? NSUB_MAX : nsub;
    size_t per = work_bytes(dh, nsub);
    unsigned char *heap = NULL;
    if (dh > DH_STACK) {
        heap = sld_malloc_aligned((size_t)nthr * per);
        if (!heap)
            return false;
    }
    float s2 = scale * 1.44269504088896341f;
    int tq = nsub * BQ, nqb = (Nq + tq - 1) / tq;
    long ntask = (long)B * heads * nqb;
#pragma omp parallel num_threads(nthr)
    {
        /* work_bytes(DH_STACK, 1): nsub * dh never exceeds DH_STACK here */
        _Alignas(64) unsigned char stack[(DH_STACK / 2 * BQ + BK_MAX * DH_STACK / 2 +
                                          BK_MAX / 2 * DH_STACK + BK_MAX / 2 * BQ +
                                          BK_MAX * BQ + DH_STACK * BQ) * 4 + 6 * 64];
        work w = work_carve(heap ? heap + (size_t)omp_get_thread_num() * per : stack, dh, nsub);
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
