/*
 * attention_avx512.c — fused multi-head attention (flash-style): for each
 * (batch, head, block of 64 queries) it streams over blocks of 64 keys,
 * keeping a running row maximum m, denominator l and unnormalised output O
 * (online softmax), so no Nq x Nk score matrix is ever formed.
 *
 * Per key block: K is packed transposed (Kt [dh][64]) and V padded to a
 * multiple of 16 columns; S = Q Kt is computed 4 queries x 64 keys at a time
 * (16 zmm accumulators, one broadcast of q per query and dh step), the softmax
 * update is vectorised over keys, and O += P V runs 4 queries x 64 columns at
 * a time over the block's keys.
 *
 * Determinism: every (batch, head, query block) is one task computed by one
 * thread with a fixed order of operations, so the result is identical for
 * any thread count or schedule.
 */
#include "ops/avx512_math.h"
#include "ops/ops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

enum { BQ = 64, BK = 64 };

typedef struct {
    float *qp; /* [BQ][dh]   queries of this block (zero rows past Nq) */
    float *kt; /* [dh][BK]   keys transposed (zero columns past Nk) */
    float *vp; /* [BK][dhp]  values, zero padded */
    float *s;  /* [BQ][BK]   scores, then probabilities */
    float *o;  /* [BQ][dhp]  unnormalised output */
    float *m, *l; /* [BQ] running max and denominator */
} scratch;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t scratch_floats(int dh)
{
    size_t dhp = round16((size_t)dh);
    return round16((size_t)BQ * dh) + round16((size_t)dh * BK) + (size_t)BK * dhp +
           (size_t)BQ * BK + (size_t)BQ * dhp + 2 * BQ;
}

static scratch scratch_carve(float *base, int dh)
{
    size_t dhp = round16((size_t)dh);
    scratch s;
    s.qp = base;
    s.kt = s.qp + round16((size_t)BQ * dh);
    s.vp = s.kt + round16((size_t)dh * BK);
    s.s = s.vp + (size_t)BK * dhp;
    s.o = s.s + (size_t)BQ * BK;
    s.m = s.o + (size_t)BQ * dhp;
    s.l = s.m + BQ;
    return s;
}

/* S[r][0:64] = scale * (q_r . k_j) for rows r0..r0+3 (4 rows always exist in qp). */
static void scores_4x64(const scratch *w, int r0, int dh, float scale)
{
    __m512 c[4][4];
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < 4; v++)
            c[r][v] = _mm512_setzero_ps();
    const float *q0 = w->qp + (size_t)r0 * dh;
    for (int d = 0; d < dh; d++) {
        const float *kr = w->kt + (size_t)d * BK;
        __m512 k0 = _mm512_load_ps(kr), k1 = _mm512_load_ps(kr + 16),
               k2 = _mm512_load_ps(kr + 32), k3 = _mm512_load_ps(kr + 48);
        for (int r = 0; r < 4; r++) {
            __m512 qb = _mm512_set1_ps(q0[(size_t)r * dh + d]);
            c[r][0] = _mm512_fmadd_ps(qb, k0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(qb, k1, c[r][1]);
            c[r][2] = _mm512_fmadd_ps(qb, k2, c[r][2]);
            c[r][3] = _mm512_fmadd_ps(qb, k3, c[r][3]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < 4; v++)
            _mm512_store_ps(w->s + (size_t)(r0 + r) * BK + v * 16, _mm512_mul_ps(c[r][v], sc));
}

/* O[r0..r0+3][c0..c0+16*nv) += P[r][0:nk] V[0:nk][cols]. Always inlined
 * with a constant nv so the 4 x nv accumulators live in registers. */
static inline __attribute__((always_inline)) void pv_4(const scratch *w, int r0, int c0, int nv, int nk, size_t dhp)
{
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm512_load_ps(w->o + (size_t)(r0 + r) * dhp + c0 + v * 16);
    for (int j = 0; j < nk; j++) {
        const float *vr = w->vp + (size_t)j * dhp + c0;
        __m512 vv[4];
        for (int v = 0; v < nv; v++)
            vv[v] = _mm512_load_ps(vr + v * 16);
        for (int r = 0; r < 4; r++) {
            __m512 p = _mm512_set1_ps(w->s[(size_t)(r0 + r) * BK + j]);
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_fmadd_ps(p, vv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < nv; v++)
            _mm512_store_ps(w->o + (size_t)(r0 + r) * dhp + c0 + v * 16, acc[r][v]);
}

/* One task: queries [i0, i0+nq) of (batch b, head h). */
static void attend_block(const scratch *w, const float *qb, int ldq, const float *kb, int ldk,
                         const float *vb, int ldv, float *ob, int ldo, int i0, int nq, int Nk,
                         int dh, float scale, bool causal)
{
    size_t dhp = round16((size_t)dh);
    int nq4 = (nq + 3) & ~3;
    for (int r = 0; r < BQ; r++) {
        float *dst = w->qp + (size_t)r * dh;
        if (r < nq)
            memcpy(dst, qb + (size_t)(i0 + r) * ldq, (size_t)dh * sizeof(float));
        else if (r < nq4)
            memset(dst, 0, (size_t)dh * sizeof(float));
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    memset(w->o, 0, (size_t)BQ * dhp * sizeof(float));
    /* Causal: keys past the block's last query are masked for every row. */
    int nk_all = causal && i0 + nq < Nk ? i0 + nq : Nk;
    for (int j0 = 0; j0 < nk_all; j0 += BK) {
        int nk = nk_all - j0 < BK ? nk_all - j0 : BK;
        /* pack K^T and V for keys [j0, j0+nk) */
        for (int j = 0; j < BK; j++) {
            float *vd = w->vp + (size_t)j * dhp;
            if (j < nk) {
                const float *kr = kb + (size_t)(j0 + j) * ldk;
                for (int d = 0; d < dh; d++)
                    w->kt[(size_t)d * BK + j] = kr[d];
                memcpy(vd, vb + (size_t)(j0 + j) * ldv, (size_t)dh * sizeof(float));
                memset(vd + dh, 0, (dhp - (size_t)dh) * sizeof(float));
            } else {
                for (int d = 0; d < dh; d++)
                    w->kt[(size_t)d * BK + j] = 0.0f;
                memset(vd, 0, dhp * sizeof(float));
            }
        }
        for (int r = 0; r < nq4; r += 4)
            scores_4x64(w, r, dh, scale);
        /* online softmax update per query row */
        for (int r = 0; r < nq; r++) {
            float *sr = w->s + (size_t)r * BK;
            int valid = nk;
            if (causal) {
                int lim = i0 + r + 1 - j0; /* keys j0..i0+r are visible */
                valid = lim < valid ? lim : valid;
            }
            if (valid < 0)
                valid = 0;
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int v = 0; v < BK; v += 16) {
                __mmask16 k = sld_tail_mask(valid > v ? (size_t)(valid - v) : 0);
                mx = _mm512_mask_max_ps(mx, k, mx, _mm512_load_ps(sr + v));
            }
            float m_blk = _mm512_reduce_max_ps(mx);
            float m_new = m_blk > w->m[r] ? m_blk : w->m[r];
            if (m_new == -INFINITY) { /* nothing visible yet: keep O=0, l=0 */
                memset(sr, 0, BK * sizeof(float));
                continue;
            }
            float alpha = w->m[r] == -INFINITY ? 0.0f : expf(w->m[r] - m_new);
            __m512 vm = _mm512_set1_ps(m_new), sum = _mm512_setzero_ps();
            for (int v = 0; v < BK; v += 16) {
                __mmask16 k = sld_tail_mask(valid > v ? (size_t)(valid - v) : 0);
                __m512 p = _mm512_maskz_mov_ps(
                    k, sld_exp512(_mm512_sub_ps(_mm512_load_ps(sr + v), vm)));
                sum = _mm512_add_ps(sum, p);
                _mm512_store_ps(sr + v, p);
            }
            w->l[r] = w->l[r] * alpha + sld_hsum512(sum);
            w->m[r] = m_new;
            if (alpha != 1.0f) {
                __m512 va = _mm512_set1_ps(alpha);
                float *orow = w->o + (size_t)r * dhp;
                for (size_t c = 0; c < dhp; c += 16)
                    _mm512_store_ps(orow + c, _mm512_mul_ps(_mm512_load_ps(orow + c), va));
            }
        }
        for (int r = nq; r < nq4; r++)
            memset(w->s + (size_t)r * BK, 0, BK * sizeof(float));
        for (int r = 0; r < nq4; r += 4)
            for (size_t c = 0; c < dhp; c += 64) {
                switch ((dhp - c) / 16) {
                case 1: pv_4(w, r, (int)c, 1, nk, dhp); break;
                case 2: pv_4(w, r, (int)c, 2, nk, dhp); break;
                case 3: pv_4(w, r, (int)c, 3, nk, dhp); break;
                default: pv_4(w, r, (int)c, 4, nk, dhp); break;
                }
            }
    }
    for (int r = 0; r < nq; r++) {
        float inv = w->l[r] > 0.0f ? 1.0f / w->l[r] : 0.0f;
        const float *orow = w->o + (size_t)r * dhp;
        float *dst = ob + (size_t)(i0 + r) * ldo;
        for (int d = 0; d < dh; d++)
            dst[d] = orow[d] * inv;
    }
}

bool sld_attention_avx512(const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, float *out, int ldo, int B, int Nq, int Nk, int heads, int dh,
                          float scale, bool causal)
{
    if (B <= 0 || Nq <= 0 || heads <= 0 || dh <= 0)
        return true;
    int nthr = omp_get_max_threads();
    size_t per = scratch_floats(dh);
    float *base = sld_malloc_aligned((size_t)nthr * per * sizeof(float));
    if (!base)
        return false;
    int nqb = (Nq + BQ - 1) / BQ;
    long ntask = (long)B * heads * nqb;
#pragma omp parallel num_threads(nthr)
    {
        scratch w = scratch_carve(base + (size_t)omp_get_thread_num() * per, dh);
#pragma omp for schedule(dynamic, 1)
        for (long t = 0; t < ntask; t++) {
            int qbk = (int)(t % nqb), h = (int)(t / nqb % heads), b = (int)(t / nqb / heads);
            int i0 = qbk * BQ, nq = Nq - i0 < BQ ? Nq - i0 : BQ;
            attend_block(&w, q + (size_t)b * Nq * ldq + (size_t)h * dh, ldq,
                         k + (size_t)b * Nk * ldk + (size_t)h * dh, ldk,
                         v + (size_t)b * Nk * ldv + (size_t)h * dh, ldv,
                         out + (size_t)b * Nq * ldo + (size_t)h * dh, ldo, i0, nq, Nk, dh, scale,
                         causal);
        }
    }
    sld_free(base);
    return true;
}
