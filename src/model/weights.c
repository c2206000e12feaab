/* weights.c — canonical-name weight table with convert-once float32 views. */
#include "model/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    char *name;
    const sld_st_tensor *src;
    size_t elem_off;
    int ndim;
    int64_t shape[SLD_ST_MAX_DIMS];
    size_t numel;
    float *conv; /* owned float32 copy, or NULL when used in place */
    bool used;
} entry;

struct sld_weights {
    char *label;
    entry *e;
    int n, cap;
    int *hash; /* open addressing, -1 = empty; size hcap (power of 2) */
    int hcap;
    size_t conv_bytes;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static int find(const sld_weights *w, const char *name)
{
    if (!w->hcap)
        return -1;
    for (uint64_t i = hash_str(name) & (uint64_t)(w->hcap - 1);; i = (i + 1) & (uint64_t)(w->hcap - 1)) {
        int k = w->hash[i];
        if (k < 0)
            return -1;
        if (!strcmp(w->e[k].name, name))
            return k;
    }
}

static sld_status rehash(sld_weights *w, sld_error *err)
{
    int hc = w->hcap ? w->hcap * 2 : 256;
    int *h = sld_malloc((size_t)hc * sizeof *h);
    if (!h)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    memset(h, 0xff, (size_t)hc * sizeof *h);
    for (int k = 0; k < w->n; k++) {
        uint64_t i = hash_str(w->e[k].name) & (uint64_t)(hc - 1);
        while (h[i] >= 0)
            i = (i + 1) & (uint64_t)(hc - 1);
        h[i] = k;
    }
    sld_free(w->hash);
    w->hash = h;
    w->hcap = hc;
    return SLD_OK;
}

sld_status sld_weights_new(sld_weights **out, const char *label, sld_error *err)
{
    sld_weights *w = sld_calloc(1, sizeof *w);
    if (!w || !(w->label = sld_strdup(label ? label : "weights"))) {
        sld_free(w);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    *out = w;
    return SLD_OK;
}

void sld_weights_free(sld_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) {
        sld_free(w->e[i].name);
        sld_free(w->e[i].conv);
    }
    sld_free(w->e);
    sld_free(w->hash);
    sld_free(w->label);
    sld_free(w);
}

sld_status sld_weights_add_view(sld_weights *w, const char *name, const sld_st_tensor *src,
                                size_t elem_off, int ndim, const int64_t *shape, sld_error *err)
{
    if (find(w, name) >= 0)
        return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s' is given twice", w->label, name);
    if (ndim < 0 || ndim > SLD_ST_MAX_DIMS)
        return sld_err(err, SLD_ERR_INTERNAL, "%s: bad view rank for '%s'", w->label, name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || !sld_mul_ok(numel, (size_t)shape[i], &numel))
            return sld_err(err, SLD_ERR_SHAPE, "%s: bad shape for '%s'", w->label, name);
    if (elem_off > src->numel || numel > src->numel - elem_off)
        return sld_err(err, SLD_ERR_SHAPE, "%s: view '%s' does not fit in tensor '%s'", w->label,
                       name, src->name);
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 256;
        entry *ne = sld_realloc(w->e, (size_t)nc * sizeof *ne);
        if (!ne)
            return sld_err(err, SLD_ERR_NOMEM, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    if ((w->n + 1) * 2 > w->hcap) {
        sld_status st = rehash(w, err);
        if (st)
            return st;
    }
    entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = sld_strdup(name);
    if (!e->name)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    e->src = src;
    e->elem_off = elem_off;
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->numel = numel;
    uint64_t i = hash_str(name) & (uint64_t)(w->hcap - 1);
    while (w->hash[i] >= 0)
        i = (i + 1) & (uint64_t)(w->hcap - 1);
    w->hash[i] = w->n++;
    return SLD_OK;
}

sld_status sld_weights_add_file(sld_weights *w, const sld_st_file *f, const char *prefix,
                                sld_error *err)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < sld_st_count(f); i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        if (pl && strncmp(t->name, prefix, pl))
            continue;
        sld_status st = sld_weights_add_view(w, t->name + pl, t, 0, t->ndim, t->shape, err);
        if (st)
            return st;
    }
    return SLD_OK;
}

int sld_weights_shape(const sld_weights *w, const char *name, int64_t shape[SLD_ST_MAX_DIMS])
{
    int k = find(w, name);
    if (k < 0)
        return -1;
    memcpy(shape, w->e[k].shape, (size_t)w->e[k].ndim * sizeof *shape);
    return w->e[k].ndim;
}

bool sld_weights_has(const sld_weights *w, const char *name) { return find(w, name) >= 0; }

static void shape_str(char *buf, size_t cap, int nd, const int64_t *s)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ",%lld" : "%lld", (long long)s[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

const float *sld_weights_f32(sld_weights *w, const char *name, int ndim, const int64_t *shape,
                             sld_error *err)
{
    int k = find(w, name);
    if (k < 0) {
        sld_err(err, SLD_ERR_SHAPE, "%s: tensor '%s' is missing", w->label, name);
        return NULL;
    }
    entry *e = &w->e[k];
    bool ok = e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = e->shape[i] == shape[i];
    if (!ok) {
        char got[160], want[160];
        shape_str(got, sizeof got, e->ndim, e->shape);
        shape_str(want, sizeof want, ndim, shape);
        sld_err(err, SLD_ERR_SHAPE, "%s: '%s' is %s, expected %s", w->label, name, got, want);
        return NULL;
    }
    e->used = true;
    const sld_st_tensor *s = e->src;
    size_t esz = sld_dtype_size(s->dtype);
    const uint8_t *p = (const uint8_t *)s->data + e->elem_off * esz;
    if (s->dtype == SLD_DT_F32 && ((uintptr_t)p & 63) == 0)
        return (const float *)p;
    if (e->conv)
        return e->conv;
    float *d = sld_malloc_aligned(e->numel * sizeof(float));
    if (!d) {
        sld_err(err, SLD_ERR_NOMEM, "%s: out of memory converting '%s'", w->label, name);
        return NULL;
    }
    sld_st_tensor v = *s;
    v.data = p;
    v.numel = e->numel;
    if (sld_st_to_f32(&v, d, err)) {
        sld_free(d);
        sld_err_prefix(err, "%s", w->label);
        return NULL;
    }
    e->conv = d;
    w->conv_bytes += e->numel * sizeof(float);
    return d;
}

const float *sld_weights_get(sld_weights *w, sld_error *err, const char *name, ...)
{
    int64_t shape[SLD_ST_MAX_DIMS];
    int nd = 0;
    va_list ap;
    va_start(ap, name);
    for (;;) {
        int d = va_arg(ap, int);
        if (d < 0 || nd == SLD_ST_MAX_DIMS)
            break;
        shape[nd++] = d;
    }
    va_end(ap);
    return sld_weights_f32(w, name, nd, shape, err);
}

int sld_weights_count(const sld_weights *w) { return w->n; }
int sld_weights_used_count(const sld_weights *w)
{
    int c = 0;
    for (int i = 0; i < w->n; i++)
        c += w->e[i].used;
    return c;
}
const char *sld_weights_name(const sld_weights *w, int i, bool *used)
{
    if (i < 0 || i >= w->n)
        return NULL;
    if (used)
        *used = w->e[i].used;
    return w->e[i].name;
}
const char *sld_weights_label(const sld_weights *w) { return w->label; }
size_t sld_weights_converted_bytes(const sld_weights *w) { return w->conv_bytes; }

void sld_weights_release(sld_weights *w, const char *name)
{
    int k = find(w, name);
    if (k < 0)
        return;
    entry *e = &w->e[k];
    if (e->conv) {
        sld_free(e->conv);
        e->conv = NULL;
        w->conv_bytes -= e->numel * sizeof(float);
    }
#ifdef MADV_PAGEOUT
    /* The caller keeps its own copy now: ask the kernel to reclaim the source
     * pages (whole pages inside the tensor only). Clean file-backed pages are
     * dropped and refault from the file if read again; anonymous memory (an
     * in-memory file) can only be swapped, never lost. A hint: errors are
     * ignored. */
    size_t esz = sld_dtype_size(e->src->dtype), pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)e->src->data + e->elem_off * esz, b = a + e->numel * esz;
    uintptr_t a0 = (a + pg - 1) & ~(uintptr_t)(pg - 1), b0 = b & ~(uintptr_t)(pg - 1);
    if (b0 > a0)
        madvise((void *)a0, b0 - a0, MADV_PAGEOUT);
#endif
}
