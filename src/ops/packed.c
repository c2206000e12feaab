/*
 * packed.c — load-time packed conv / linear weights on oneDNN primitives.
 *
 * Each object holds its weights once, in the layout (and data type) that
 * oneDNN picked for a prototype shape at load time. Primitives depend on the
 * activation shape, so each object keeps a short list of per-shape entries
 * (conv: B,H,W; linear: M), built on first use of that shape and reused
 * after: repeated calls at one size never allocate. Should a later shape's
 * primitive want another weight layout, that entry gets its own reordered
 * copy (from the packed one) — rare, and only costs memory.
 *
 * Conv data path (all NCHW float32 at the interface):
 *   x --reorder(+f32->bf16)--> ws.src  --conv(+bias)--> ws.dst (f32 blocked)
 *     --reorder(+sum post-op when the residual is y itself)--> y
 * Linear path: x [--reorder f32->bf16--> ws.src] --matmul(+bias)--> y, the
 * fp32 matmul reading x in place.
 *
 * The oneDNN engine is created once per process (pthread_once) and never
 * changes; streams are per workspace.
 */
#include "ops/packed.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <string.h>

/* ---- engine and workspace ------------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_eng; /* written once under g_once, read-only after */

static void engine_init(void)
{
    if (dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success)
        g_eng = NULL;
}

static dnnl_engine_t engine(void)
{
    pthread_once(&g_once, engine_init);
    return g_eng;
}

enum { WS_SRC, WS_DST, WS_TMP, WS_SCR, WS_N };

struct sld_pack_ws {
    dnnl_stream_t stream;
    void *buf[WS_N];
    size_t cap[WS_N];
    sld_prof *prof; /* where the ops add their time and work, or NULL */
};

void sld_pack_ws_set_profile(sld_pack_ws *ws, sld_prof *prof) { ws->prof = prof; }

sld_pack_ws *sld_pack_ws_new(void)
{
    sld_pack_ws *ws = sld_calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    dnnl_engine_t e = engine();
    if (e && dnnl_stream_create(&ws->stream, e, dnnl_stream_default_flags) != dnnl_success)
        ws->stream = NULL;
    return ws;
}

void sld_pack_ws_free(sld_pack_ws *ws)
{
    if (!ws)
        return;
    if (ws->stream)
        dnnl_stream_destroy(ws->stream);
    for (int i = 0; i < WS_N; i++)
        sld_free(ws->buf[i]);
    sld_free(ws);
}

size_t sld_pack_ws_bytes(const sld_pack_ws *ws)
{
    size_t n = 0;
    for (int i = 0; ws && i < WS_N; i++)
        n += ws->cap[i];
    return n;
}

void sld_pack_ws_trim(sld_pack_ws *ws)
{
    for (int i = 0; ws && i < WS_N; i++) {
        sld_free(ws->buf[i]);
        ws->buf[i] = NULL;
        ws->cap[i] = 0;
    }
}

/* Buffer i of at least n bytes (contents not kept on growth); NULL on OOM. */
static void *ws_get(sld_pack_ws *ws, int i, size_t n)
{
    if (n <= ws->cap[i])
        return ws->buf[i];
    sld_free(ws->buf[i]);
    ws->cap[i] = 0;
    ws->buf[i] = sld_malloc_aligned(n);
    if (ws->buf[i])
        ws->cap[i] = n;
    return ws->buf[i];
}

/* Process-wide Winograd figures for benches and logs: weight copies held
 * now, and the largest scratchpad any Winograd primitive asked for. */
static size_t g_wino_wbytes, g_wino_scr_max;

size_t sld_pack_winograd_weight_bytes(void)
{
    return __atomic_load_n(&g_wino_wbytes, __ATOMIC_RELAXED);
}

size_t sld_pack_winograd_scratch_max(void)
{
    return __atomic_load_n(&g_wino_scr_max, __ATOMIC_RELAXED);
}

static bool bf16_native(void)
{
    return dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core_bf16 &&
           sld_cpu_isa() >= SLD_ISA_AVX512;
}

sld_precision sld_pack_precision(sld_precision requested)
{
    if (sld_cpu_isa() == SLD_ISA_REF)
        return SLD_PREC_FP32;
    if (requested == SLD_PREC_AUTO)
        return sld_cpu_isa() >= SLD_ISA_AMX && bf16_native() ? SLD_PREC_BF16 : SLD_PREC_FP32;
    if (requested == SLD_PREC_BF16)
        return bf16_native() ? SLD_PREC_BF16 : SLD_PREC_FP32;
    return SLD_PREC_FP32;
}

/* ---- shared primitive plumbing ------------------------------------------------ */

typedef struct pentry {
    struct pentry *next;
    int key[3];                    /* conv: B,H,W; linear: M,0,0 */
    dnnl_primitive_t prim;         /* conv or matmul */
    dnnl_primitive_t rin;          /* user src -> primitive src (fp32 linears skip it) */
    dnnl_primitive_t rout, rout_sum; /* conv: primitive dst -> user dst (plain / += ) */
    dnnl_memory_t m_usrc, m_src, m_wei, m_bias, m_dst, m_udst;
    dnnl_memory_t m_scr;           /* Winograd: its scratchpad (in the workspace) */
    size_t src_bytes, dst_bytes, scr_bytes;
    bool wino;     /* conv: Winograd F(4,3) with per-call weight transform */
    void *wei_own; /* this entry's own weight copy (layout differs), or NULL */
} pentry;

static void entry_free(pentry *e)
{
    if (!e)
        return;
    dnnl_primitive_destroy(e->prim);
    dnnl_primitive_destroy(e->rin);
    dnnl_primitive_destroy(e->rout);
    dnnl_primitive_destroy(e->rout_sum);
    dnnl_memory_destroy(e->m_usrc);
    dnnl_memory_destroy(e->m_src);
    dnnl_memory_destroy(e->m_wei);
    dnnl_memory_destroy(e->m_bias);
    dnnl_memory_destroy(e->m_dst);
    dnnl_memory_destroy(e->m_udst);
    dnnl_memory_destroy(e->m_scr);
    sld_free(e->wei_own);
    sld_free(e);
}

static bool reorder_make(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, bool sum,
                         dnnl_primitive_t *out)
{
    *out = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    bool ok = true;
    if (sum) {
        ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_post_ops_create(&po) == dnnl_success &&
             dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    }
    dnnl_primitive_desc_t pd = NULL;
    ok = ok && dnnl_reorder_primitive_desc_create(&pd, a, engine(), b, engine(), attr) ==
                   dnnl_success;
    ok = ok && dnnl_primitive_create(out, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return ok;
}

/* One-off reorder of src (desc a) into dst (desc b), waiting for completion. */
static bool reorder_once(const dnnl_memory_desc_t *a, const void *src,
                         const dnnl_memory_desc_t *b, void *dst)
{
    dnnl_primitive_t r = NULL;
    dnnl_memory_t ma = NULL, mb = NULL;
    dnnl_stream_t s = NULL;
    bool ok = reorder_make(a, b, false, &r) &&
              dnnl_memory_create(&ma, a, engine(), (void *)src) == dnnl_success &&
              dnnl_memory_create(&mb, b, engine(), dst) == dnnl_success &&
              dnnl_stream_create(&s, engine(), dnnl_stream_default_flags) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ma}, {DNNL_ARG_TO, mb}};
        ok = dnnl_primitive_execute(r, s, 2, args) == dnnl_success &&
             dnnl_stream_wait(s) == dnnl_success;
    }
    if (s)
        dnnl_stream_destroy(s);
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_primitive_destroy(r);
    return ok;
}

/* Packed weights common to conv and linear. */
typedef struct {
    dnnl_memory_desc_t wmd; /* layout of wbuf */
    void *wbuf;
    float *bias; /* own copy, or NULL */
} packw;

/* Finishes an entry after its primitive descriptor pd exists: memory
 * objects, the input/output reorders and the weights for this layout. */
static bool entry_finish(pentry *e, dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *usrc,
                         const dnnl_memory_desc_t *udst, const packw *pw,
                         const dnnl_memory_desc_t *bias_md)
{
    dnnl_engine_t eng = engine();
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    bool ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
              reorder_make(usrc, smd, false, &e->rin);
    if (ok && udst) {
        ok = reorder_make(dmd, udst, false, &e->rout) && reorder_make(dmd, udst, true,
                                                                      &e->rout_sum) &&
             dnnl_memory_create(&e->m_udst, udst, eng, DNNL_MEMORY_NONE) == dnnl_success;
    }
    ok = ok && dnnl_memory_create(&e->m_usrc, usrc, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->m_src, smd, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->m_dst, dmd, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->m_wei, wmd, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         (!pw->bias || dnnl_memory_create(&e->m_bias, bias_md, eng, pw->bias) == dnnl_success);
    if (!ok)
        return false;
    e->src_bytes = dnnl_memory_desc_get_size(smd);
    e->dst_bytes = dnnl_memory_desc_get_size(dmd);
    if (dnnl_memory_desc_equal(wmd, &pw->wmd))
        return dnnl_memory_set_data_handle(e->m_wei, pw->wbuf) == dnnl_success;
    e->wei_own = sld_malloc_aligned(dnnl_memory_desc_get_size(wmd));
    return e->wei_own && reorder_once(&pw->wmd, pw->wbuf, wmd, e->wei_own) &&
           dnnl_memory_set_data_handle(e->m_wei, e->wei_own) == dnnl_success;
}

static dnnl_data_type_t dt_of(sld_precision p) { return p == SLD_PREC_BF16 ? dnnl_bf16 : dnnl_f32; }

/* ---- convolution ---------------------------------------------------------------- */

struct sld_pconv {
    sld_conv2d_desc d; /* B, H, W of the prototype only */
    sld_precision prec;
    bool packed;
    const float *w_plain, *b_plain; /* plain mode */
    packw pw;
    bool wino_ok;  /* sld_pconv_set_winograd: may run Winograd where it pays */
    packw wino_w;  /* weights in the Winograd primitive's layout (shared by its entries) */
    pentry *entries;
};

/* wino: Winograd F(4,3) as oneDNN's forward_training flavour, which takes
 * plain blocked weights and transforms them on each call (the inference
 * flavour wants them pre-transformed: 4x the bytes, per layer), with its
 * scratchpad given by the caller (DNNL_ARG_SCRATCHPAD). */
static bool conv_pd(const sld_pconv *p, int B, int H, int W, bool wino,
                    dnnl_primitive_desc_t *pd, dnnl_memory_desc_t *usrc,
                    dnnl_memory_desc_t *udst, dnnl_memory_desc_t *bmd)
{
    sld_conv2d_desc d = p->d;
    d.B = B;
    d.H = H;
    d.W = W;
    int Ho, Wo;
    sld_conv2d_out_hw(&d, &Ho, &Wo);
    dnnl_data_type_t dt = dt_of(p->prec);
    dnnl_dims_t sd = {B, d.C_in, H, W}, wd = {d.C_out, d.C_in, d.kh, d.kw}, bd = {d.C_out},
                dd = {B, d.C_out, Ho, Wo};
    dnnl_dims_t st = {d.stride, d.stride}, pl = {d.pad_t, d.pad_l}, pr = {d.pad_b, d.pad_r};
    dnnl_memory_desc_t s_any, w_any, d_any;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    if (wino && (dnnl_primitive_attr_create(&attr) != dnnl_success ||
                 dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) !=
                     dnnl_success)) {
        dnnl_primitive_attr_destroy(attr);
        return false;
    }
    bool ok = dnnl_memory_desc_init_by_tag(usrc, 4, sd, dnnl_f32, dnnl_nchw) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(udst, 4, dd, dnnl_f32, dnnl_nchw) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(bmd, 1, bd, dnnl_f32, dnnl_x) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&s_any, 4, sd, dt, dnnl_format_tag_any) ==
               dnnl_success &&
           dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dt, dnnl_format_tag_any) ==
               dnnl_success &&
           dnnl_memory_desc_init_by_tag(&d_any, 4, dd, dnnl_f32, dnnl_format_tag_any) ==
               dnnl_success &&
           dnnl_convolution_forward_desc_init(
               &cd, wino ? dnnl_forward_training : dnnl_forward_inference,
               wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &s_any, &w_any,
               p->pw.bias ? bmd : NULL, &d_any, st, pl, pr) == dnnl_success &&
           dnnl_primitive_desc_create(pd, &cd, attr, engine(), NULL) == dnnl_success;
    dnnl_primitive_attr_destroy(attr);
    return ok;
}

sld_status sld_pconv_new(sld_pconv **out, const sld_conv2d_desc *d, const float *w,
                         const float *bias, sld_precision prec, sld_error *err)
{
    return sld_pconv_new_ex(out, d, w, bias, prec, false, err);
}

sld_status sld_pconv_new_ex(sld_pconv **out, const sld_conv2d_desc *d, const float *w,
                            const float *bias, sld_precision prec, bool pack_thin,
                            sld_error *err)
{
    *out = NULL;
    sld_pconv *p = sld_calloc(1, sizeof *p);
    if (!p)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory packing a convolution");
    p->d = *d;
    p->prec = sld_pack_precision(prec);
    p->w_plain = w;
    p->b_plain = bias;
    *out = p;
    /* Thin convs (conv_in / conv_out) gain nothing from blocking and stay
     * float32. With pack_thin a k x k one (k > 1) is still packed: the same
     * oneDNN primitive sld_conv2d would use, but with its copies in the
     * caller's memory (sld_pconv_run_buf) instead of the process-wide conv
     * cache, which keeps them for good (128 MiB for a VAE conv_out at 512^2).
     * Thin 1x1 convs stay plain: sld_conv2d runs them as a GEMM. */
    bool thin = d->C_in < 16 || d->C_out < 16;
    if (thin)
        p->prec = SLD_PREC_FP32;
    if (sld_cpu_isa() == SLD_ISA_REF || !engine() ||
        (thin && (!pack_thin || d->kh * d->kw == 1)))
        return SLD_OK;
    size_t nb = (size_t)d->C_out * sizeof(float);
    if (bias) {
        p->pw.bias = sld_malloc_aligned(nb);
        if (!p->pw.bias)
            goto oom;
        memcpy(p->pw.bias, bias, nb);
    }
    /* Prototype shape: big enough that oneDNN picks its production kernel. */
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t usrc, udst, bmd, wuser;
    dnnl_dims_t wd = {d->C_out, d->C_in, d->kh, d->kw};
    int proto = 32 * d->stride;
    if (!conv_pd(p, 1, proto, proto, false, &pd, &usrc, &udst, &bmd)) {
        sld_free(p->pw.bias);
        p->pw.bias = NULL;
        p->prec = SLD_PREC_FP32;
        return SLD_OK; /* plain mode: sld_conv2d */
    }
    p->pw.wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    p->pw.wbuf = sld_malloc_aligned(dnnl_memory_desc_get_size(&p->pw.wmd));
    if (!p->pw.wbuf)
        goto oom;
    if (dnnl_memory_desc_init_by_tag(&wuser, 4, wd, dnnl_f32, dnnl_oihw) != dnnl_success ||
        !reorder_once(&wuser, w, &p->pw.wmd, p->pw.wbuf)) {
        sld_free(p->pw.wbuf);
        sld_free(p->pw.bias);
        memset(&p->pw, 0, sizeof p->pw);
        p->prec = SLD_PREC_FP32;
        return SLD_OK;
    }
    p->packed = true;
    p->w_plain = NULL;
    p->b_plain = NULL;
    return SLD_OK;
oom:
    sld_pconv_free(p);
    *out = NULL;
    return sld_err(err, SLD_ERR_NOMEM, "out of memory packing a %dx%d convolution %d->%d",
                   d->kh, d->kw, d->C_in, d->C_out);
}

void sld_pconv_free(sld_pconv *p)
{
    if (!p)
        return;
    while (p->entries) {
        pentry *e = p->entries;
        p->entries = e->next;
        entry_free(e);
    }
    sld_free(p->pw.wbuf);
    sld_free(p->pw.bias);
    if (p->wino_w.wbuf)
        __atomic_fetch_sub(&g_wino_wbytes, sld_pconv_winograd_bytes(p), __ATOMIC_RELAXED);
    sld_free(p->wino_w.wbuf);
    sld_free(p);
}

bool sld_pconv_packed(const sld_pconv *p) { return p->packed; }

static pentry *conv_entry(sld_pconv *p, int B, int H, int W);

void sld_pconv_set_winograd(sld_pconv *p, bool on) { p->wino_ok = on; }

bool sld_pack_winograd_available(void)
{
    return sld_cpu_isa() >= SLD_ISA_AVX512 && engine() &&
           dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core;
}

size_t sld_pconv_winograd_bytes(const sld_pconv *p)
{
    return p->wino_w.wbuf ? dnnl_memory_desc_get_size(&p->wino_w.wmd) : 0;
}

bool sld_pconv_winograd_used(sld_pconv *p, int B, int H, int W)
{
    pentry *e = p->packed ? conv_entry(p, B, H, W) : NULL;
    return e && e->wino;
}

/* Whether a run at B,H,W should try Winograd: fp32 3x3 stride 1, at least
 * 32x32 pixels, and no more channels than pixels (so the layer's weights are
 * small next to its activations: the extra weight copy stays small, and the
 * per-call weight transform is a few % of the work). Measured on Zen 5
 * (1 thread): 1.8-3.3x faster than direct at 32^2-256^2, 1.0-1.7x at 16^2. */
static bool wino_wanted(const sld_pconv *p, int H, int W)
{
    const sld_conv2d_desc *d = &p->d;
    long hw = (long)H * W;
    return p->wino_ok && p->packed && p->prec == SLD_PREC_FP32 && d->kh == 3 && d->kw == 3 &&
           d->stride == 1 && d->pad_t == 1 && d->pad_l == 1 && d->pad_b == 1 && d->pad_r == 1 &&
           hw >= 32 * 32 && hw >= d->C_in && hw >= d->C_out;
}

/* Builds the Winograd entry for e's shape; false (nothing kept) when oneDNN
 * has no Winograd kernel here or its scratchpad would pass the cap. */
static bool wino_entry(sld_pconv *p, pentry *e)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t usrc, udst, bmd;
    if (!conv_pd(p, e->key[0], e->key[1], e->key[2], true, &pd, &usrc, &udst, &bmd))
        return false;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scr = smd ? dnnl_memory_desc_get_size(smd) : 0;
    bool ok = scr <= SLD_WINO_SCRATCH_MAX && wmd->format_kind == dnnl_blocked;
    const packw *use = &p->pw;
    if (ok && !dnnl_memory_desc_equal(wmd, &p->pw.wmd)) {
        use = &p->wino_w;
        if (p->wino_w.wbuf && !dnnl_memory_desc_equal(wmd, &p->wino_w.wmd))
            ok = false; /* another layout than the one held: not worth a third copy */
    }
    if (ok && use == &p->wino_w && !p->wino_w.wbuf) {
        void *buf = sld_malloc_aligned(dnnl_memory_desc_get_size(wmd));
        ok = buf && reorder_once(&p->pw.wmd, p->pw.wbuf, wmd, buf);
        if (ok) {
            p->wino_w.wmd = *wmd;
            p->wino_w.wbuf = buf;
            p->wino_w.bias = p->pw.bias;
            __atomic_fetch_add(&g_wino_wbytes, dnnl_memory_desc_get_size(wmd), __ATOMIC_RELAXED);
        } else {
            sld_free(buf);
        }
    }
    ok = ok && entry_finish(e, pd, &usrc, &udst, use, &bmd) &&
         (!smd || scr == 0 ||
          dnnl_memory_create(&e->m_scr, smd, engine(), DNNL_MEMORY_NONE) == dnnl_success);
    dnnl_primitive_desc_destroy(pd);
    if (ok) {
        e->wino = true;
        e->scr_bytes = scr;
        size_t m = __atomic_load_n(&g_wino_scr_max, __ATOMIC_RELAXED);
        while (scr > m && !__atomic_compare_exchange_n(&g_wino_scr_max, &m, scr, false,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
    }
    return ok;
}

static pentry *conv_entry(sld_pconv *p, int B, int H, int W)
{
    for (pentry *e = p->entries; e; e = e->next)
        if (e->key[0] == B && e->key[1] == H && e->key[2] == W)
            return e;
    pentry *e = sld_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key[0] = B;
    e->key[1] = H;
    e->key[2] = W;
    bool ok = false;
    if (wino_wanted(p, H, W)) {
        ok = wino_entry(p, e);
        if (!ok) { /* start the entry over for the direct kernel */
            entry_free(e);
            e = sld_calloc(1, sizeof *e);
            if (!e)
                return NULL;
            e->key[0] = B;
            e->key[1] = H;
            e->key[2] = W;
        }
    }
    if (!ok) {
        dnnl_primitive_desc_t pd = NULL;
        dnnl_memory_desc_t usrc, udst, bmd;
        ok = conv_pd(p, B, H, W, false, &pd, &usrc, &udst, &bmd) &&
             entry_finish(e, pd, &usrc, &udst, &p->pw, &bmd);
        dnnl_primitive_desc_destroy(pd);
    }
    if (!ok) {
        entry_free(e);
        return NULL;
    }
    e->next = p->entries;
    p->entries = e;
    return e;
}

/* Work of one run of p at B x H x W: 2 FLOP per multiply-add, in GFLOP. */
static double conv_gflop(const sld_pconv *p, int B, int H, int W)
{
    sld_conv2d_desc d = p->d;
    d.H = H;
    d.W = W;
    int Ho, Wo;
    sld_conv2d_out_hw(&d, &Ho, &Wo);
    return 2e-9 * B * d.C_out * (double)Ho * Wo * d.C_in * d.kh * d.kw;
}

static sld_prof_class conv_class(const sld_pconv *p, bool wino)
{
    if (p->d.kh == 1 && p->d.kw == 1)
        return SLD_PROF_CONV1;
    return wino ? SLD_PROF_CONV3_WINO : SLD_PROF_CONV3;
}

static sld_status plain_conv(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y, int B,
                             int H, int W, const float *residual, sld_error *err)
{
    sld_conv2d_desc d = p->d;
    d.B = B;
    d.H = H;
    d.W = W;
    int Ho, Wo;
    sld_conv2d_out_hw(&d, &Ho, &Wo);
    size_t n = (size_t)B * d.C_out * Ho * Wo;
    /* sld_conv2d cannot write over what it reads: go through a temporary */
    if (residual == y || x == y) {
        float *t = ws_get(ws, WS_TMP, n * sizeof(float));
        if (!t)
            return sld_err(err, SLD_ERR_NOMEM, "out of memory for a convolution");
        sld_conv2d(&d, x, p->w_plain, p->b_plain, t);
        if (residual == y) {
            sld_add(y, t, n);
        } else {
            memcpy(y, t, n * sizeof(float));
            if (residual)
                sld_add(y, residual, n);
        }
        return SLD_OK;
    }
    sld_conv2d(&d, x, p->w_plain, p->b_plain, y);
    if (residual)
        sld_add(y, residual, n);
    return SLD_OK;
}

/* The unpacked path, timed as one convolution when a profile is on. */
static sld_status plain_conv_timed(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y,
                                   int B, int H, int W, const float *residual, sld_error *err)
{
    double t0 = ws->prof ? sld_time_now() : 0.0;
    sld_status st = plain_conv(p, ws, x, y, B, H, W, residual, err);
    sld_prof_add(ws->prof, conv_class(p, false), t0, conv_gflop(p, B, H, W));
    return st;
}

static bool exec(sld_pack_ws *ws, dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *a)
{
    return dnnl_primitive_execute(prim, ws->stream, n, a) == dnnl_success;
}

void sld_pconv_scratch(sld_pconv *p, int B, int H, int W, size_t *src_bytes, size_t *dst_bytes)
{
    *src_bytes = *dst_bytes = 0;
    pentry *e = p->packed ? conv_entry(p, B, H, W) : NULL;
    if (e) {
        *src_bytes = e->src_bytes;
        *dst_bytes = e->dst_bytes;
    }
}

sld_status sld_pconv_run_buf(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y, int B,
                             int H, int W, const float *residual, void *sbuf, size_t sbytes,
                             void *dbuf, size_t dbytes, sld_error *err)
{
    if (!p->packed)
        return plain_conv_timed(p, ws, x, y, B, H, W, residual, err);
    if (!ws->stream)
        return sld_err(err, SLD_ERR_INTERNAL, "oneDNN stream unavailable for a packed conv");
    pentry *e = conv_entry(p, B, H, W);
    if (!e)
        return sld_err(err, SLD_ERR_INTERNAL,
                       "oneDNN could not build a %dx%d convolution %d->%d at %dx%dx%d",
                       p->d.kh, p->d.kw, p->d.C_in, p->d.C_out, B, H, W);
    void *sb = sbuf && sbytes >= e->src_bytes ? sbuf : ws_get(ws, WS_SRC, e->src_bytes);
    void *db = dbuf && dbytes >= e->dst_bytes ? dbuf : ws_get(ws, WS_DST, e->dst_bytes);
    void *scr = e->m_scr ? ws_get(ws, WS_SCR, e->scr_bytes) : NULL;
    if (!sb || !db || (e->m_scr && !scr))
        return sld_err(err, SLD_ERR_NOMEM, "out of memory for convolution activations");
    bool sum = residual == y;
    bool ok = dnnl_memory_set_data_handle(e->m_usrc, (void *)x) == dnnl_success &&
              dnnl_memory_set_data_handle(e->m_src, sb) == dnnl_success &&
              dnnl_memory_set_data_handle(e->m_dst, db) == dnnl_success &&
              dnnl_memory_set_data_handle(e->m_udst, y) == dnnl_success &&
              (!scr || dnnl_memory_set_data_handle(e->m_scr, scr) == dnnl_success);
    dnnl_exec_arg_t a_in[2] = {{DNNL_ARG_FROM, e->m_usrc}, {DNNL_ARG_TO, e->m_src}};
    dnnl_exec_arg_t a_cv[5] = {{DNNL_ARG_SRC, e->m_src}, {DNNL_ARG_WEIGHTS, e->m_wei},
                               {DNNL_ARG_DST, e->m_dst}, {DNNL_ARG_SCRATCHPAD, e->m_scr},
                               {DNNL_ARG_BIAS, e->m_bias}};
    int n_cv = 3 + (e->m_scr != NULL);
    if (e->m_bias)
        a_cv[n_cv++] = a_cv[4];
    dnnl_exec_arg_t a_out[2] = {{DNNL_ARG_FROM, e->m_dst}, {DNNL_ARG_TO, e->m_udst}};
    /* The stream is in-order: each step sees the previous one's writes. With
     * a profile, each step is waited for and timed on its own. */
    sld_prof *pf = ws->prof;
    double t0 = pf ? sld_time_now() : 0.0;
    ok = ok && exec(ws, e->rin, 2, a_in) && (!pf || dnnl_stream_wait(ws->stream) == dnnl_success);
    if (pf) {
        sld_prof_add(pf, SLD_PROF_REORDER, t0, 0.0);
        t0 = sld_time_now();
    }
    ok = ok && exec(ws, e->prim, n_cv, a_cv) &&
         (!pf || dnnl_stream_wait(ws->stream) == dnnl_success);
    if (pf) {
        sld_prof_add(pf, conv_class(p, e->wino), t0, conv_gflop(p, B, H, W));
        t0 = sld_time_now();
    }
    ok = ok && exec(ws, sum ? e->rout_sum : e->rout, 2, a_out) &&
         dnnl_stream_wait(ws->stream) == dnnl_success;
    sld_prof_add(pf, SLD_PROF_REORDER, t0, 0.0);
    if (!ok)
        return sld_err(err, SLD_ERR_INTERNAL, "oneDNN failed running a %dx%d convolution",
                       p->d.kh, p->d.kw);
    if (residual && !sum) {
        t0 = pf ? sld_time_now() : 0.0;
        int Ho, Wo;
        sld_conv2d_desc d = p->d;
        d.H = H;
        d.W = W;
        sld_conv2d_out_hw(&d, &Ho, &Wo);
        sld_add(y, residual, (size_t)B * d.C_out * Ho * Wo);
        sld_prof_add(pf, SLD_PROF_ELT, t0, 0.0);
    }
    return SLD_OK;
}

sld_status sld_pconv_run(sld_pconv *p, sld_pack_ws *ws, const float *x, float *y, int B, int H,
                         int W, const float *residual, sld_error *err)
{
    return sld_pconv_run_buf(p, ws, x, y, B, H, W, residual, NULL, 0, NULL, 0, err);
}

/* ---- linear ---------------------------------------------------------------------- */

struct sld_plin {
    int N, K;
    sld_precision prec;
    bool packed;
    const float *w_plain, *b_plain;
    packw pw;
    pentry *entries;
};

static bool lin_pd(const sld_plin *p, int M, dnnl_primitive_desc_t *pd, dnnl_memory_desc_t *usrc,
                   dnnl_memory_desc_t *bmd)
{
    dnnl_data_type_t dt = dt_of(p->prec);
    dnnl_dims_t sd = {M, p->K}, wd = {p->K, p->N}, bd = {1, p->N}, dd = {M, p->N};
    dnnl_memory_desc_t s_md, w_any, d_md;
    dnnl_matmul_desc_t md;
    return dnnl_memory_desc_init_by_tag(usrc, 2, sd, dnnl_f32, dnnl_ab) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&s_md, 2, sd, dt, dnnl_ab) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&w_any, 2, wd, dt, dnnl_format_tag_any) ==
               dnnl_success &&
           dnnl_memory_desc_init_by_tag(bmd, 2, bd, dnnl_f32, dnnl_ab) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&d_md, 2, dd, dnnl_f32, dnnl_ab) == dnnl_success &&
           dnnl_matmul_desc_init(&md, &s_md, &w_any, p->pw.bias ? bmd : NULL, &d_md) ==
               dnnl_success &&
           dnnl_primitive_desc_create(pd, &md, NULL, engine(), NULL) == dnnl_success;
}

sld_status sld_plin_new(sld_plin **out, const float *W, const float *b, int N, int K,
                        sld_precision prec, sld_error *err)
{
    *out = NULL;
    sld_plin *p = sld_calloc(1, sizeof *p);
    if (!p)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory packing a linear layer");
    p->N = N;
    p->K = K;
    p->prec = sld_pack_precision(prec);
    p->w_plain = W;
    p->b_plain = b;
    *out = p;
    if (sld_cpu_isa() == SLD_ISA_REF || !engine() || N < 16 || K < 16)
        return SLD_OK;
    if (b) {
        p->pw.bias = sld_malloc_aligned((size_t)N * sizeof(float));
        if (!p->pw.bias)
            goto oom;
        memcpy(p->pw.bias, b, (size_t)N * sizeof(float));
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t usrc, bmd, wuser;
    dnnl_dims_t wd = {K, N};
    if (!lin_pd(p, 1024, &pd, &usrc, &bmd)) {
        sld_free(p->pw.bias);
        p->pw.bias = NULL;
        p->prec = SLD_PREC_FP32;
        return SLD_OK;
    }
    p->pw.wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    p->pw.wbuf = sld_malloc_aligned(dnnl_memory_desc_get_size(&p->pw.wmd));
    if (!p->pw.wbuf)
        goto oom;
    /* W [N,K] row-major is the [K,N] weights matrix in column-major ("ba"). */
    if (dnnl_memory_desc_init_by_tag(&wuser, 2, wd, dnnl_f32, dnnl_ba) != dnnl_success ||
        !reorder_once(&wuser, W, &p->pw.wmd, p->pw.wbuf)) {
        sld_free(p->pw.wbuf);
        sld_free(p->pw.bias);
        memset(&p->pw, 0, sizeof p->pw);
        p->prec = SLD_PREC_FP32;
        return SLD_OK;
    }
    p->packed = true;
    p->w_plain = NULL;
    p->b_plain = NULL;
    return SLD_OK;
oom:
    sld_plin_free(p);
    *out = NULL;
    return sld_err(err, SLD_ERR_NOMEM, "out of memory packing a linear layer %d->%d", K, N);
}

void sld_plin_free(sld_plin *p)
{
    if (!p)
        return;
    while (p->entries) {
        pentry *e = p->entries;
        p->entries = e->next;
        entry_free(e);
    }
    sld_free(p->pw.wbuf);
    sld_free(p->pw.bias);
    sld_free(p);
}

bool sld_plin_packed(const sld_plin *p) { return p->packed; }

static pentry *lin_entry(sld_plin *p, int M)
{
    for (pentry *e = p->entries; e; e = e->next)
        if (e->key[0] == M)
            return e;
    pentry *e = sld_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key[0] = M;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t usrc, bmd;
    bool ok = lin_pd(p, M, &pd, &usrc, &bmd) && entry_finish(e, pd, &usrc, NULL, &p->pw, &bmd);
    dnnl_primitive_desc_destroy(pd);
    if (!ok) {
        entry_free(e);
        return NULL;
    }
    e->next = p->entries;
    p->entries = e;
    return e;
}

sld_status sld_plin_run(sld_plin *p, sld_pack_ws *ws, const float *x, float *y, int M,
                        sld_error *err)
{
    if (M <= 0)
        return SLD_OK;
    const double gflop = 2e-9 * M * (double)p->N * p->K;
    sld_prof *pf = ws->prof;
    double t0 = pf ? sld_time_now() : 0.0;
    if (!p->packed) {
        sld_linear(x, p->w_plain, p->b_plain, y, M, p->N, p->K);
        sld_prof_add(pf, SLD_PROF_LINEAR, t0, gflop);
        return SLD_OK;
    }
    if (!ws->stream)
        return sld_err(err, SLD_ERR_INTERNAL, "oneDNN stream unavailable for a packed linear");
    pentry *e = lin_entry(p, M);
    if (!e)
        return sld_err(err, SLD_ERR_INTERNAL, "oneDNN could not build a %d->%d linear for %d rows",
                       p->K, p->N, M);
    void *sb = p->prec == SLD_PREC_FP32 ? (void *)x : ws_get(ws, WS_SRC, e->src_bytes);
    if (!sb)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory for linear activations");
    bool ok = dnnl_memory_set_data_handle(e->m_usrc, (void *)x) == dnnl_success &&
              dnnl_memory_set_data_handle(e->m_src, sb) == dnnl_success &&
              dnnl_memory_set_data_handle(e->m_dst, y) == dnnl_success;
    dnnl_exec_arg_t a_in[2] = {{DNNL_ARG_FROM, e->m_usrc}, {DNNL_ARG_TO, e->m_src}};
    dnnl_exec_arg_t a_mm[4] = {{DNNL_ARG_SRC, e->m_src},
                               {DNNL_ARG_WEIGHTS, e->m_wei},
                               {DNNL_ARG_DST, e->m_dst},
                               {DNNL_ARG_BIAS, e->m_bias}};
    if (p->prec == SLD_PREC_FP32) /* the matmul reads x as it is */
        ok = ok && dnnl_memory_set_data_handle(e->m_src, (void *)x) == dnnl_success;
    if (p->prec != SLD_PREC_FP32) {
        ok = ok && exec(ws, e->rin, 2, a_in) &&
             (!pf || dnnl_stream_wait(ws->stream) == dnnl_success);
        if (pf) {
            sld_prof_add(pf, SLD_PROF_REORDER, t0, 0.0);
            t0 = sld_time_now();
        }
    }
    ok = ok && exec(ws, e->prim, e->m_bias ? 4 : 3, a_mm) &&
         dnnl_stream_wait(ws->stream) == dnnl_success;
    sld_prof_add(pf, SLD_PROF_LINEAR, t0, gflop);
    if (!ok)
        return sld_err(err, SLD_ERR_INTERNAL, "oneDNN failed running a %d->%d linear", p->K,
                       p->N);
    return SLD_OK;
}
