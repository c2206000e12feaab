/* torch_ckpt.c — PyTorch checkpoint reader (zip and legacy formats) into
 * the sld_st_file tensor table, and a zip-format writer. See torch_ckpt.h. */
#include "io/torch_ckpt.h"
#include "io/pickle.h"

#include <minizip/unzip.h>
#include <minizip/zip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64          /* object nesting below the root */
#define MAX_META 4096         /* non-tensor values recorded */
#define MAX_PKL_BYTES ((uint64_t)1 << 31)
#define MAX_NAME 1024

/* The legacy format's first pickle: 0x1950a86a20f9469cfc6c as a LONG. */
static const uint8_t k_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

bool sld_torch_sniff(const uint8_t *p, size_t n)
{
    if (n >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
        return true;
    return n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5;
}

/* ---- storages ---------------------------------------------------------------- */

typedef struct {
    const char *key;
    size_t key_len;
    size_t esize;     /* element size of the storage type */
    uint64_t numel;   /* elements, from the persistent id */
    const uint8_t *data;
    size_t nbytes;    /* bytes available at data */
    bool resolved;
} store;

typedef struct {
    sld_st_file *f;
    const char *P; /* path for messages */
    int flags;
    sld_pickle *vms[5];
    int n_vms;
    sld_pk_value *root;
    store *st;
    size_t n_st;
    /* output */
    sld_st_tensor *t;
    char **names;
    const sld_pk_tensor **src;
    int n, cap;
    char **meta;
    int n_meta, meta_cap;
    long budget; /* traversal steps left (shared containers) */
    /* zip */
    unzFile uz;
    struct zentry *ze;
    size_t n_ze;
    char prefix[MAX_NAME];
    uint8_t *pkl;
    /* legacy */
    sld_pk_value *keys;
    size_t data_pos;
} reader;

static int cmp_store(const void *a, const void *b)
{
    const store *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static store *find_store(reader *r, const char *key, size_t len)
{
    store k = {.key = key, .key_len = len};
    return bsearch(&k, r->st, r->n_st, sizeof *r->st, cmp_store);
}

/* One record per distinct key over every pickle run; binds each STORAGE
 * value to its record. */
static sld_status collect_stores(reader *r, sld_error *err)
{
    size_t total = 0, n;
    for (int i = 0; i < r->n_vms; i++) {
        sld_pickle_storages(r->vms[i], &n);
        total += n;
    }
    r->st = sld_calloc(total + 1, sizeof *r->st);
    if (!r->st)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
    for (int i = 0; i < r->n_vms; i++) {
        sld_pk_value *const *sv = sld_pickle_storages(r->vms[i], &n);
        for (size_t k = 0; k < n; k++) {
            const sld_pk_storage *S = &sv[k]->u.storage;
            r->st[r->n_st++] = (store){.key = S->key,
                                       .key_len = S->key_len,
                                       .esize = sld_dtype_size(S->dtype),
                                       .numel = S->is_view ? 0 : S->numel};
        }
    }
    qsort(r->st, r->n_st, sizeof *r->st, cmp_store);
    size_t w = 0;
    for (size_t k = 0; k < r->n_st; k++) {
        if (w && !cmp_store(&r->st[w - 1], &r->st[k])) {
            store *a = &r->st[w - 1];
            if (a->esize != r->st[k].esize && r->st[k].numel)
                return sld_err(err, SLD_ERR_FORMAT,
                               "%s: storage '%.*s' is referenced with two element types", r->P,
                               (int)(a->key_len > 64 ? 64 : a->key_len), a->key);
            if (r->st[k].numel > a->numel)
                a->numel = r->st[k].numel;
            continue;
        }
        r->st[w++] = r->st[k];
    }
    r->n_st = w;
    for (int i = 0; i < r->n_vms; i++) {
        sld_pk_value *const *sv = sld_pickle_storages(r->vms[i], &n);
        for (size_t k = 0; k < n; k++)
            sv[k]->u.storage.bound = find_store(r, sv[k]->u.storage.key, sv[k]->u.storage.key_len);
    }
    return SLD_OK;
}

/* ---- object walk ---------------------------------------------------------------- */

static sld_status add_meta(reader *r, const char *path, const sld_pk_value *v, sld_error *err)
{
    if (r->n_meta >= MAX_META)
        return SLD_OK;
    char val[256];
    switch (v->kind) {
    case SLD_PK_NONE: snprintf(val, sizeof val, "None"); break;
    case SLD_PK_BOOL: snprintf(val, sizeof val, "%s", v->u.b ? "True" : "False"); break;
    case SLD_PK_INT: snprintf(val, sizeof val, "%lld", (long long)v->u.i); break;
    case SLD_PK_FLOAT: snprintf(val, sizeof val, "%.17g", v->u.f); break;
    case SLD_PK_STR:
        snprintf(val, sizeof val, "%.*s", (int)(v->u.str.len > 200 ? 200 : v->u.str.len),
                 v->u.str.s);
        break;
    default: return SLD_OK;
    }
    if (r->n_meta == r->meta_cap) {
        int nc = r->meta_cap ? r->meta_cap * 2 : 16;
        char **nm = sld_realloc(r->meta, (size_t)nc * 2 * sizeof *nm);
        if (!nm)
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
        r->meta = nm;
        r->meta_cap = nc;
    }
    char *k = sld_strdup(path), *x = sld_strdup(val);
    if (!k || !x) {
        sld_free(k);
        sld_free(x);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
    }
    r->meta[2 * r->n_meta] = k;
    r->meta[2 * r->n_meta + 1] = x;
    r->n_meta++;
    return SLD_OK;
}

static sld_status add_tensor(reader *r, const char *path, const sld_pk_tensor *T, sld_error *err)
{
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 64;
        sld_st_tensor *nt = sld_realloc(r->t, (size_t)nc * sizeof *nt);
        if (nt)
            r->t = nt;
        char **nn = nt ? sld_realloc(r->names, ((size_t)nc + 1) * sizeof *nn) : NULL;
        if (nn)
            r->names = nn;
        const sld_pk_tensor **ns = nn ? sld_realloc(r->src, (size_t)nc * sizeof *ns) : NULL;
        if (!ns)
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
        r->src = ns;
        r->cap = nc;
    }
    char *name = sld_strdup(*path ? path : "tensor");
    if (!name)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
    r->names[r->n] = name;
    r->names[r->n + 1] = NULL;
    memset(&r->t[r->n], 0, sizeof r->t[r->n]);
    r->t[r->n].name = name;
    r->src[r->n] = T;
    r->n++;
    return SLD_OK;
}

/* Dict keys become name parts: strings as they are, numbers in decimal. */
static int key_str(const sld_pk_value *k, char *buf, size_t cap)
{
    switch (k->kind) {
    case SLD_PK_STR:
    case SLD_PK_BYTES:
        return snprintf(buf, cap, "%.*s", (int)(k->u.str.len > 512 ? 512 : k->u.str.len),
                        k->u.str.s);
    case SLD_PK_INT: return snprintf(buf, cap, "%lld", (long long)k->u.i);
    case SLD_PK_BOOL: return snprintf(buf, cap, "%s", k->u.b ? "True" : "False");
    case SLD_PK_NONE: return snprintf(buf, cap, "None");
    default: return -1;
    }
}

/* what: 1 = tensors, 2 = metadata scalars. path has room for MAX_NAME. */
static sld_status walk(reader *r, sld_pk_value *v, char *path, size_t plen, int depth, int what,
                       sld_error *err)
{
    if (--r->budget < 0)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: the object graph is too large to walk (containers shared many "
                       "times?)",
                       r->P);
    if (depth > MAX_DEPTH)
        return sld_err(err, SLD_ERR_FORMAT, "%s: objects nested deeper than %d levels at '%.200s'",
                       r->P, MAX_DEPTH, path);
    switch (v->kind) {
    case SLD_PK_TENSOR:
        return what == 1 ? add_tensor(r, path, &v->u.tensor, err) : SLD_OK;
    case SLD_PK_NONE:
    case SLD_PK_BOOL:
    case SLD_PK_INT:
    case SLD_PK_FLOAT:
    case SLD_PK_STR:
        return what == 2 && plen ? add_meta(r, path, v, err) : SLD_OK;
    case SLD_PK_DICT:
    case SLD_PK_LIST:
    case SLD_PK_TUPLE:
        break;
    default:
        return SLD_OK;
    }
    if (v->visiting)
        return SLD_OK; /* a cycle: its tensors are reached on the first pass */
    v->visiting = 1;
    sld_status st = SLD_OK;
    bool dict = v->kind == SLD_PK_DICT;
    size_t n = dict ? v->u.seq.n / 2 : v->u.seq.n;
    for (size_t i = 0; i < n && !st; i++) {
        char part[600];
        int pl = dict ? key_str(v->u.seq.v[2 * i], part, sizeof part)
                      : snprintf(part, sizeof part, "%zu", i);
        if (pl < 0)
            continue; /* a key we cannot name (tuple, object): not a state dict entry */
        if (plen + (size_t)pl + 2 > MAX_NAME) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: object path longer than %d bytes at '%.200s'",
                         r->P, MAX_NAME, path);
            break;
        }
        size_t np = plen;
        if (plen)
            path[np++] = '.';
        memcpy(path + np, part, (size_t)pl + 1);
        st = walk(r, dict ? v->u.seq.v[2 * i + 1] : v->u.seq.v[i], path, np + (size_t)pl,
                  depth + 1, what, err);
        path[plen] = 0;
    }
    v->visiting = 0;
    return st;
}

static sld_pk_value *dict_get(const sld_pk_value *d, const char *key)
{
    if (d->kind != SLD_PK_DICT)
        return NULL;
    size_t kl = strlen(key);
    sld_pk_value *found = NULL;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const sld_pk_value *k = d->u.seq.v[i];
        if (k->kind == SLD_PK_STR && k->u.str.len == kl && !memcmp(k->u.str.s, key, kl))
            found = d->u.seq.v[i + 1]; /* the last assignment wins, as in Python */
    }
    return found;
}

static bool holds_tensor(const sld_pk_value *d)
{
    for (size_t i = 1; d->kind == SLD_PK_DICT && i < d->u.seq.n; i += 2)
        if (d->u.seq.v[i]->kind == SLD_PK_TENSOR)
            return true;
    return false;
}

/* The state dict: see torch_ckpt.h. Writes its path into root_path. */
static sld_pk_value *select_root(sld_pk_value *v, char *root_path, size_t cap)
{
    root_path[0] = 0;
    for (int guard = 0; guard < 8; guard++) {
        sld_pk_value *s = dict_get(v, "state_dict");
        const char *k = "state_dict";
        if (!s || s->kind != SLD_PK_DICT) {
            s = NULL;
            if (!holds_tensor(v))
                for (int i = 0; i < 2 && !s; i++) {
                    k = i ? "module" : "model";
                    sld_pk_value *c = dict_get(v, k);
                    if (c && holds_tensor(c))
                        s = c;
                }
        }
        if (!s)
            break;
        size_t l = strlen(root_path);
        snprintf(root_path + l, cap - l, "%s%s", l ? "." : "", k);
        v = s;
        if (strcmp(k, "state_dict"))
            break;
    }
    return v;
}

/* ---- tensors ------------------------------------------------------------------ */

static sld_status materialize(reader *r, int i, sld_error *err)
{
    sld_st_tensor *t = &r->t[i];
    const sld_pk_tensor *T = r->src[i];
    const sld_pk_storage *S = &T->storage->u.storage;
    const store *s = S->bound;
    const char *P = r->P, *N = t->name;
    if (!s || !s->resolved)
        return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': storage '%.*s' has no data", P, N,
                       (int)(S->key_len > 64 ? 64 : S->key_len), S->key);
    size_t es = sld_dtype_size(T->dtype);
    t->dtype = T->dtype;
    t->ndim = T->ndim;
    size_t numel = 1;
    for (int d = 0; d < T->ndim; d++) {
        t->shape[d] = T->shape[d];
        if (!sld_mul_ok(numel, (size_t)T->shape[d], &numel))
            return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': shape overflows", P, N);
    }
    t->numel = numel;
    if (!sld_mul_ok(numel, es, &t->nbytes))
        return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': byte size overflows", P, N);
    /* the storage window this tensor may address, in its own elements */
    const uint8_t *base = s->data;
    size_t avail = s->nbytes;
    if (S->is_view) {
        size_t vo, vb;
        if (!sld_mul_ok((size_t)S->view_offset, s->esize, &vo) || vo > avail)
            return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': storage view past the end", P,
                           N);
        base += vo;
        avail -= vo;
        if (sld_mul_ok((size_t)S->numel, s->esize, &vb) && vb < avail)
            avail = vb;
    }
    size_t avail_el = avail / es;
    if (numel == 0) {
        t->data = base;
        return SLD_OK;
    }
    /* last element addressed: offset + sum (shape-1)*stride */
    size_t last = (size_t)T->offset, term;
    for (int d = 0; d < T->ndim; d++)
        if (!sld_mul_ok((size_t)(T->shape[d] - 1), (size_t)T->stride[d], &term) ||
            __builtin_add_overflow(last, term, &last))
            return sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': strides overflow", P, N);
    if (T->offset >= avail_el || last >= avail_el)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: tensor '%s' needs storage elements up to %zu (offset %llu) but its "
                       "storage '%.*s' holds %zu (file truncated or corrupt?)",
                       P, N, last + 1, (unsigned long long)T->offset,
                       (int)(S->key_len > 64 ? 64 : S->key_len), S->key, avail_el);
    bool contig = true;
    size_t want = 1;
    for (int d = T->ndim - 1; d >= 0; d--) {
        if (T->shape[d] != 1 && (size_t)T->stride[d] != want)
            contig = false;
        want *= (size_t)T->shape[d];
    }
    const uint8_t *src = base + (size_t)T->offset * es;
    if (contig) {
        t->data = src;
        return SLD_OK;
    }
    uint8_t *dst = sld_malloc(t->nbytes);
    if (!dst)
        return sld_err(err, SLD_ERR_NOMEM, "%s: tensor '%s': out of memory for a %zu-byte copy",
                       P, N, t->nbytes);
    int64_t idx[SLD_ST_MAX_DIMS] = {0};
    for (size_t e = 0; e < numel; e++) {
        size_t off = 0;
        for (int d = 0; d < T->ndim; d++)
            off += (size_t)idx[d] * (size_t)T->stride[d];
        memcpy(dst + e * es, src + off * es, es);
        for (int d = T->ndim - 1; d >= 0; d--) {
            if (++idx[d] < T->shape[d])
                break;
            idx[d] = 0;
        }
    }
    t->data = dst;
    return sld_st_keep(r->f, dst, err);
}

/* ---- zip -------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} memfile;

static voidpf ZCALLBACK mf_open(voidpf opaque, const void *name, int mode)
{
    (void)opaque;
    (void)mode;
    return (voidpf)name;
}
static uLong ZCALLBACK mf_read(voidpf opaque, voidpf stream, void *buf, uLong size)
{
    (void)opaque;
    memfile *m = stream;
    size_t n = m->pos < m->len ? m->len - m->pos : 0;
    if (n > size)
        n = size;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (uLong)n;
}
static uLong ZCALLBACK mf_write(voidpf opaque, voidpf stream, const void *buf, uLong size)
{
    (void)opaque;
    (void)stream;
    (void)buf;
    (void)size;
    return 0;
}
static ZPOS64_T ZCALLBACK mf_tell(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return ((memfile *)stream)->pos;
}
static long ZCALLBACK mf_seek(voidpf opaque, voidpf stream, ZPOS64_T off, int origin)
{
    (void)opaque;
    memfile *m = stream;
    uint64_t b = origin == ZLIB_FILEFUNC_SEEK_SET ? 0
                 : origin == ZLIB_FILEFUNC_SEEK_CUR ? m->pos
                                                    : m->len;
    if (off > m->len || b > m->len - off)
        return -1;
    m->pos = (size_t)(b + off);
    return 0;
}
static int ZCALLBACK mf_close(voidpf opaque, voidpf stream)
{
    (void)opaque;
    (void)stream;
    return 0;
}
static int ZCALLBACK mf_error(voidpf opaque, voidpf stream)
{
    (void)opaque;
    (void)stream;
    return 0;
}

typedef struct zentry {
    char *name;
    unz64_file_pos pos;
    uint64_t csize, usize;
    uint32_t crc; /* CRC-32 from the central directory */
    int method;
} zentry;

static int cmp_zentry(const void *a, const void *b)
{
    return strcmp(((const zentry *)a)->name, ((const zentry *)b)->name);
}

/* Opens entry e as the current file (minizip checks its local header
 * against the directory); *data_off gets the offset of its data in the file. */
static sld_status zip_open_entry(reader *r, const zentry *e, size_t *data_off, sld_error *err)
{
    unz64_file_pos pos = e->pos;
    if (unzGoToFilePos64(r->uz, &pos) != UNZ_OK || unzOpenCurrentFile(r->uz) != UNZ_OK)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: zip entry '%s': local header is corrupt (file truncated?)", r->P,
                       e->name);
    size_t len;
    sld_st_map(r->f, &len);
    ZPOS64_T off = unzGetCurrentFileZStreamPos64(r->uz);
    if (off > len || e->csize > len - off) {
        unzCloseCurrentFile(r->uz);
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: zip entry '%s' (%llu bytes at offset %llu) runs past the end of the "
                       "%zu-byte file (truncated?)",
                       r->P, e->name, (unsigned long long)e->csize, (unsigned long long)off, len);
    }
    *data_off = (size_t)off;
    return SLD_OK;
}

/* zlib's CRC-32 over any length (crc32_z takes a size_t). */
static uint32_t crc_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32_z(0, p, n);
}

/* Reads (inflating) the open current entry: want bytes into a new buffer. */
static sld_status zip_read_current(reader *r, const zentry *e, size_t want, uint8_t **out,
                                   sld_error *err)
{
    uint8_t *b = sld_malloc(want ? want : 1);
    if (!b) {
        unzCloseCurrentFile(r->uz);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory inflating '%s' (%zu bytes)", r->P,
                       e->name, want);
    }
    size_t got = 0;
    while (got < want) {
        size_t chunk = want - got > (1u << 30) ? (1u << 30) : want - got;
        int k = unzReadCurrentFile(r->uz, b + got, (unsigned)chunk);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    int cl = unzCloseCurrentFile(r->uz);
    if (got < want || (got == e->usize && cl != UNZ_OK)) {
        sld_free(b);
        return sld_err(err, SLD_ERR_FORMAT, "%s: zip entry '%s' is corrupt (%s)", r->P, e->name,
                       got < want ? "data ends early" : "CRC mismatch");
    }
    *out = b;
    return SLD_OK;
}

static sld_status run_pickle(reader *r, const uint8_t *p, size_t n, size_t *used,
                             sld_pk_value **root, sld_error *err)
{
    if (r->n_vms == (int)(sizeof r->vms / sizeof r->vms[0]))
        return sld_err(err, SLD_ERR_INTERNAL, "%s: too many pickles", r->P);
    return sld_pickle_run(&r->vms[r->n_vms++], root, p, n, used, r->P, err);
}

/* ---- common end: choose, walk, resolve, materialize -------------------------- */

static sld_status finish(reader *r, sld_status (*resolve)(reader *, sld_error *), const char *fmt,
                         sld_error *err)
{
    sld_status st = collect_stores(r, err);
    if (st)
        return st;
    char path[MAX_NAME + 8], root_path[256] = "";
    sld_pk_value *top = r->root;
    if (!(r->flags & SLD_ST_ALL_OBJECTS))
        top = select_root(r->root, root_path, sizeof root_path);
    path[0] = 0;
    r->budget = 1L << 24;
    if ((st = walk(r, r->root, path, 0, 0, 2, err)))
        return st;
    path[0] = 0;
    if ((st = walk(r, top, path, 0, 0, 1, err)))
        return st;
    if ((st = resolve(r, err)))
        return st;
    for (int i = 0; i < r->n && !st; i++)
        st = materialize(r, i, err);
    if (st)
        return st;
    if (!r->names && !(r->names = sld_calloc(1, sizeof *r->names)))
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
    st = sld_st_set_table(r->f, fmt, root_path, r->t, r->names, r->n, r->meta, r->n_meta, err);
    r->t = NULL; /* taken */
    r->names = NULL;
    r->meta = NULL;
    r->n_meta = 0;
    return st;
}

/* ---- zip ------------------------------------------------------------------------- */

static zentry *find_entry(reader *r, const char *name)
{
    zentry k = {.name = (char *)name};
    return bsearch(&k, r->ze, r->n_ze, sizeof *r->ze, cmp_zentry);
}

static sld_status zip_resolve(reader *r, sld_error *err)
{
    size_t len;
    const uint8_t *map = sld_st_map(r->f, &len);
    bool *use = sld_calloc(r->n_st + 1, sizeof *use);
    if (!use)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
    for (int i = 0; i < r->n; i++) {
        const store *b = r->src[i]->storage->u.storage.bound;
        if (b)
            use[b - r->st] = true;
    }
    sld_status st = SLD_OK;
    for (size_t k = 0; k < r->n_st && !st; k++) {
        store *s = &r->st[k];
        if (!use[k])
            continue;
        char name[MAX_NAME * 2];
        snprintf(name, sizeof name, "%sdata/%.*s", r->prefix,
                 (int)(s->key_len > MAX_NAME ? MAX_NAME : s->key_len), s->key);
        const zentry *e = find_entry(r, name);
        size_t want;
        if (!e) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: storage entry '%s' is missing from the zip",
                         r->P, name);
            break;
        }
        if (!sld_mul_ok((size_t)s->numel, s->esize, &want)) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: storage '%s': element count overflows", r->P,
                         name);
            break;
        }
        if (e->usize < want) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: storage '%s' holds %llu bytes but its tensors' storage needs %zu",
                         r->P, name, (unsigned long long)e->usize, want);
            break;
        }
        size_t off;
        if (e->method == 0) {
            if (e->csize != e->usize) {
                st = sld_err(err, SLD_ERR_FORMAT, "%s: stored zip entry '%s' has two sizes", r->P,
                             name);
                break;
            }
            if ((st = zip_open_entry(r, e, &off, err)))
                break;
            unzCloseCurrentFile(r->uz);
            /* Mapped in place, so minizip never reads it: check its CRC here
             * (as PyTorch's reader does), so a damaged download is an error
             * instead of silently wrong weights. */
            if (crc_of(map + off, (size_t)e->usize) != e->crc) {
                st = sld_err(err, SLD_ERR_FORMAT,
                             "%s: zip entry '%s' is corrupt (CRC mismatch: the file was damaged "
                             "or cut; download it again)",
                             r->P, name);
                break;
            }
            s->data = map + off;
            s->nbytes = (size_t)e->usize;
        } else if (e->method == Z_DEFLATED) {
            /* deflate expands at most ~1032x: refuse sizes the input cannot hold */
            if (want / 1100 > e->csize + 1024) {
                st = sld_err(err, SLD_ERR_FORMAT,
                             "%s: deflated entry '%s' claims %zu bytes from %llu compressed", r->P,
                             name, want, (unsigned long long)e->csize);
                break;
            }
            uint8_t *buf;
            if ((st = zip_open_entry(r, e, &off, err)) ||
                (st = zip_read_current(r, e, want, &buf, err)) ||
                (st = sld_st_keep(r->f, buf, err)))
                break;
            s->data = buf;
            s->nbytes = want;
        } else {
            st = sld_err(err, SLD_ERR_UNSUPPORTED,
                         "%s: zip entry '%s' uses compression method %d (stored and deflate "
                         "are supported)",
                         r->P, name, e->method);
            break;
        }
        s->resolved = true;
    }
    sld_free(use);
    return st;
}

static sld_status read_entry_small(reader *r, const zentry *e, uint64_t max, uint8_t **out,
                                   size_t *n, sld_error *err)
{
    if (e->usize > max || (e->method != 0 && e->method != Z_DEFLATED) ||
        (e->method == 0 && e->csize != e->usize) ||
        (e->method == Z_DEFLATED && e->usize / 1100 > e->csize + 1024))
        return sld_err(err, SLD_ERR_FORMAT, "%s: zip entry '%s' has implausible sizes (%llu)",
                       r->P, e->name, (unsigned long long)e->usize);
    size_t off;
    sld_status st = zip_open_entry(r, e, &off, err);
    if (st)
        return st;
    *n = (size_t)e->usize;
    return zip_read_current(r, e, *n, out, err);
}

static sld_status read_zip(reader *r, sld_error *err)
{
    size_t len;
    const uint8_t *map = sld_st_map(r->f, &len);
    /* The end record must close the file: minizip searches backwards for it
     * and would accept a file cut inside its zip64 trailer. */
    bool eocd = false;
    for (size_t back = 22; !eocd && back <= len && back <= 22 + 65535; back++) {
        const uint8_t *e = map + len - back;
        eocd = !memcmp(e, "PK\5\6", 4) && 22 + (size_t)(e[20] | e[21] << 8) == back;
    }
    if (!eocd)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: a zip file without its end record (truncated download?)", r->P);
    memfile mf = {map, len, 0};
    zlib_filefunc64_def ff = {mf_open, mf_read, mf_write, mf_tell, mf_seek, mf_close, mf_error,
                              NULL};
    r->uz = unzOpen2_64(&mf, &ff);
    if (!r->uz)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: a zip file whose central directory is missing or corrupt (truncated "
                       "download?)",
                       r->P);
    unz_global_info64 gi;
    if (unzGetGlobalInfo64(r->uz, &gi) != UNZ_OK || gi.number_entry > len / 46 + 1)
        return sld_err(err, SLD_ERR_FORMAT, "%s: corrupt zip directory (entry count)", r->P);
    r->ze = sld_calloc((size_t)gi.number_entry + 1, sizeof *r->ze);
    if (!r->ze)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
    int rc = unzGoToFirstFile(r->uz);
    while (rc == UNZ_OK) {
        if (r->n_ze == gi.number_entry)
            return sld_err(err, SLD_ERR_FORMAT, "%s: corrupt zip directory (more entries than "
                           "announced)", r->P);
        char name[MAX_NAME];
        unz_file_info64 fi;
        if (unzGetCurrentFileInfo64(r->uz, &fi, name, sizeof name, NULL, 0, NULL, 0) != UNZ_OK)
            return sld_err(err, SLD_ERR_FORMAT, "%s: corrupt zip directory entry %zu", r->P,
                           r->n_ze);
        if (fi.size_filename >= sizeof name) {
            rc = unzGoToNextFile(r->uz);
            continue; /* not a name torch writes */
        }
        zentry *e = &r->ze[r->n_ze];
        if (!(e->name = sld_strdup(name)))
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", r->P);
        r->n_ze++;
        unzGetFilePos64(r->uz, &e->pos);
        e->csize = fi.compressed_size;
        e->usize = fi.uncompressed_size;
        e->method = (int)fi.compression_method;
        e->crc = (uint32_t)fi.crc;
        rc = unzGoToNextFile(r->uz);
    }
    if (rc != UNZ_END_OF_LIST_OF_FILE)
        return sld_err(err, SLD_ERR_FORMAT, "%s: corrupt zip directory (after entry %zu)", r->P,
                       r->n_ze);
    qsort(r->ze, r->n_ze, sizeof *r->ze, cmp_zentry);
    for (size_t k = 1; k < r->n_ze; k++)
        if (!strcmp(r->ze[k].name, r->ze[k - 1].name))
            return sld_err(err, SLD_ERR_FORMAT, "%s: zip entry '%s' appears twice", r->P,
                           r->ze[k].name);
    const zentry *pk = NULL;
    for (size_t k = 0; k < r->n_ze && !pk; k++) {
        const char *nm = r->ze[k].name, *sl = strchr(nm, '/');
        if (sl && !strcmp(sl + 1, "data.pkl"))
            pk = &r->ze[k];
    }
    if (!pk)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: a zip file without '<folder>/data.pkl': not a torch.save checkpoint",
                       r->P);
    size_t pl = strlen(pk->name) - strlen("data.pkl");
    memcpy(r->prefix, pk->name, pl);
    r->prefix[pl] = 0;

    char bo_name[MAX_NAME + 16];
    snprintf(bo_name, sizeof bo_name, "%sbyteorder", r->prefix);
    const zentry *bo = find_entry(r, bo_name);
    sld_status st;
    if (bo) {
        uint8_t *b;
        size_t n;
        if ((st = read_entry_small(r, bo, 64, &b, &n, err)))
            return st;
        bool big = n >= 3 && !memcmp(b, "big", 3);
        bool little = n >= 6 && !memcmp(b, "little", 6);
        sld_free(b);
        if (big)
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: a big-endian checkpoint (byteorder 'big'); re-save it on a "
                           "little-endian machine",
                           r->P);
        if (!little)
            return sld_err(err, SLD_ERR_FORMAT, "%s: unknown byteorder entry", r->P);
    }
    size_t n;
    if ((st = read_entry_small(r, pk, MAX_PKL_BYTES, &r->pkl, &n, err)) ||
        (st = run_pickle(r, r->pkl, n, NULL, &r->root, err)))
        return st;
    return finish(r, zip_resolve, "PyTorch zip", err);
}

/* ---- legacy ---------------------------------------------------------------------- */

static sld_status legacy_resolve(reader *r, sld_error *err)
{
    size_t len;
    const uint8_t *map = sld_st_map(r->f, &len);
    size_t pos = r->data_pos;
    const sld_pk_value *k = r->keys;
    for (size_t i = 0; i < k->u.seq.n; i++) {
        const sld_pk_value *kv = k->u.seq.v[i];
        store *s = find_store(r, kv->u.str.s, kv->u.str.len);
        int kl = (int)(kv->u.str.len > 64 ? 64 : kv->u.str.len);
        if (!s)
            return sld_err(err, SLD_ERR_FORMAT,
                           "%s: storage '%.*s' is listed but no tensor refers to it", r->P, kl,
                           kv->u.str.s);
        if (len - pos < 8)
            return sld_err(err, SLD_ERR_FORMAT,
                           "%s: file truncated before storage '%.*s' (byte %zu of %zu)", r->P, kl,
                           kv->u.str.s, pos, len);
        uint64_t numel = 0;
        for (int b = 7; b >= 0; b--)
            numel = (numel << 8) | map[pos + (size_t)b];
        pos += 8;
        size_t bytes;
        if (numel < s->numel || !sld_mul_ok((size_t)numel, s->esize, &bytes) || numel > len)
            return sld_err(err, SLD_ERR_FORMAT,
                           "%s: storage '%.*s' has %llu elements, its tensors say %llu", r->P,
                           kl, kv->u.str.s, (unsigned long long)numel,
                           (unsigned long long)s->numel);
        if (bytes > len - pos)
            return sld_err(err, SLD_ERR_FORMAT,
                           "%s: file truncated: storage '%.*s' needs %zu bytes at byte %zu, "
                           "only %zu left",
                           r->P, kl, kv->u.str.s, bytes, pos, len - pos);
        s->data = map + pos;
        s->nbytes = bytes;
        s->resolved = true;
        pos += bytes;
    }
    return SLD_OK;
}

static sld_status read_legacy(reader *r, sld_error *err)
{
    size_t len, pos = 0, used;
    const uint8_t *map = sld_st_map(r->f, &len);
    sld_pk_value *v[5];
    static const char *const what[5] = {"magic number", "protocol", "system info", "object",
                                        "storage keys"};
    for (int i = 0; i < 5; i++) {
        /* messages count bytes from the pickle's start: say where it starts */
        char name[1200];
        snprintf(name, sizeof name, "%s (legacy %s pickle from file byte %zu)", r->P, what[i], pos);
        if (r->n_vms == (int)(sizeof r->vms / sizeof r->vms[0]))
            return sld_err(err, SLD_ERR_INTERNAL, "%s: too many pickles", r->P);
        sld_status st = sld_pickle_run(&r->vms[r->n_vms++], &v[i], map + pos, len - pos, &used,
                                       name, err);
        if (st)
            return st;
        pos += used;
        if (i == 0 && (v[0]->kind != SLD_PK_BIGINT || v[0]->u.str.len != sizeof k_magic ||
                       memcmp(v[0]->u.str.s, k_magic, sizeof k_magic)))
            return sld_err(err, SLD_ERR_FORMAT,
                           "%s: a pickle that is not a torch.save file (no torch magic number); "
                           "sld reads only PyTorch checkpoints",
                           r->P);
        if (i == 1 && (v[1]->kind != SLD_PK_INT || v[1]->u.i != 1001))
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: legacy checkpoint protocol version is not 1001", r->P);
        if (i == 2) {
            const sld_pk_value *le = dict_get(v[2], "little_endian");
            if (le && le->kind == SLD_PK_BOOL && !le->u.b)
                return sld_err(err, SLD_ERR_UNSUPPORTED,
                               "%s: a big-endian checkpoint (saved on a big-endian machine); "
                               "re-save it on a little-endian one",
                               r->P);
        }
    }
    r->root = v[3];
    r->keys = v[4];
    if (r->keys->kind != SLD_PK_LIST && r->keys->kind != SLD_PK_TUPLE)
        return sld_err(err, SLD_ERR_FORMAT, "%s: the storage key list is not a list", r->P);
    for (size_t i = 0; i < r->keys->u.seq.n; i++)
        if (r->keys->u.seq.v[i]->kind != SLD_PK_STR)
            return sld_err(err, SLD_ERR_FORMAT, "%s: storage key %zu is not a string", r->P, i);
    r->data_pos = pos;
    return finish(r, legacy_resolve, "PyTorch legacy", err);
}

sld_status sld_torch_parse(sld_st_file *f, int flags, sld_error *err)
{
    reader r = {.f = f, .P = sld_st_path(f), .flags = flags};
    size_t len;
    const uint8_t *map = sld_st_map(f, &len);
    sld_status st = map[0] == 'P' ? read_zip(&r, err) : read_legacy(&r, err);
    if (r.uz)
        unzClose(r.uz);
    for (size_t k = 0; k < r.n_ze; k++)
        sld_free(r.ze[k].name);
    sld_free(r.ze);
    sld_free(r.pkl);
    for (int i = 0; i < r.n_vms; i++)
        sld_pickle_free(r.vms[i]);
    sld_free(r.st);
    sld_free(r.src);
    if (r.names)
        for (int i = 0; i < r.n; i++)
            sld_free(r.names[i]);
    sld_free(r.names);
    sld_free(r.t);
    for (int i = 0; i < 2 * r.n_meta; i++)
        sld_free(r.meta[i]);
    sld_free(r.meta);
    return st;
}

/* ---- writer ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void wb_put(wbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n)
            nc *= 2;
        uint8_t *np = sld_realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void wb_byte(wbuf *b, uint8_t c) { wb_put(b, &c, 1); }
static void wb_str(wbuf *b, const char *s) /* BINUNICODE */
{
    size_t n = strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    wb_put(b, h, 5);
    wb_put(b, s, n);
}
static void wb_int(wbuf *b, uint64_t v)
{
    if (v < 0x80000000u) {
        uint8_t h[5] = {'J', (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        wb_put(b, h, 5);
    } else { /* LONG1, 9 bytes so the sign bit stays clear */
        uint8_t h[11] = {0x8a, 9};
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(v >> (8 * i));
        wb_put(b, h, 11);
    }
}

static const char *const k_storage_names[SLD_DT_COUNT] = {
    [SLD_DT_F32] = "FloatStorage", [SLD_DT_F16] = "HalfStorage", [SLD_DT_BF16] = "BFloat16Storage",
    [SLD_DT_F64] = "DoubleStorage", [SLD_DT_I64] = "LongStorage", [SLD_DT_I32] = "IntStorage",
    [SLD_DT_I16] = "ShortStorage", [SLD_DT_I8] = "CharStorage",   [SLD_DT_U8] = "ByteStorage",
    [SLD_DT_BOOL] = "BoolStorage",
};

static voidpf ZCALLBACK wf_open(voidpf opaque, const void *name, int mode)
{
    (void)opaque;
    (void)mode;
    return (voidpf)name; /* the FILE* of the atomic temp file */
}
static uLong ZCALLBACK wf_read(voidpf opaque, voidpf stream, void *buf, uLong size)
{
    (void)opaque;
    return (uLong)fread(buf, 1, size, stream);
}
static uLong ZCALLBACK wf_write(voidpf opaque, voidpf stream, const void *buf, uLong size)
{
    (void)opaque;
    return (uLong)fwrite(buf, 1, size, stream);
}
static ZPOS64_T ZCALLBACK wf_tell(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return (ZPOS64_T)ftello(stream);
}
static long ZCALLBACK wf_seek(voidpf opaque, voidpf stream, ZPOS64_T off, int origin)
{
    (void)opaque;
    int wh = origin == ZLIB_FILEFUNC_SEEK_SET ? SEEK_SET
             : origin == ZLIB_FILEFUNC_SEEK_CUR ? SEEK_CUR
                                                : SEEK_END;
    return fseeko(stream, (off_t)off, wh) ? -1 : 0;
}
static int ZCALLBACK wf_close(voidpf opaque, voidpf stream)
{
    (void)opaque;
    (void)stream;
    return 0; /* sld_atomic_commit closes */
}
static int ZCALLBACK wf_error(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return ferror(stream);
}

/* One stored entry whose data starts on a 64-byte boundary (torch pads the
 * local extra field the same way, so the file can be mapped). */
static int zip_add(zipFile z, FILE *fp, const char *name, const void *data, size_t n)
{
    int zip64 = n >= 0xffffffffu;
    uint64_t hdr = (uint64_t)ftello(fp);
    uint64_t start = hdr + 30 + strlen(name) + 4 + (zip64 ? 20 : 0);
    size_t pad = (size_t)((64 - start % 64) % 64);
    uint8_t extra[4 + 64] = {'F', 'B', (uint8_t)pad, 0};
    memset(extra + 4, 'Z', pad);
    zip_fileinfo zi;
    memset(&zi, 0, sizeof zi);
    if (zipOpenNewFileInZip3_64(z, name, &zi, extra, (uInt)(4 + pad), NULL, 0, NULL, 0, 0, 0,
                                -MAX_WBITS, DEF_MEM_LEVEL, Z_DEFAULT_STRATEGY, NULL, 0,
                                zip64) != ZIP_OK)
        return -1;
    const uint8_t *p = data;
    while (n) {
        unsigned k = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        if (zipWriteInFileInZip(z, p, k) != ZIP_OK)
            return -1;
        p += k;
        n -= k;
    }
    return zipCloseFileInZip(z) == ZIP_OK ? 0 : -1;
}

sld_status sld_torch_write(const char *path, const sld_st_out *t, int n, const char *wrap,
                           sld_error *err)
{
    /* the archive folder is the file's base name without extension, as torch names it */
    char arch[128];
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(arch, sizeof arch, "%s", b);
    char *dot = strrchr(arch, '.');
    if (dot && dot != arch)
        *dot = 0;
    if (!arch[0] || strchr(arch, '/'))
        snprintf(arch, sizeof arch, "archive");

    wbuf pk = {0};
    wb_put(&pk, "\x80\x02", 2);
    if (wrap) {
        wb_byte(&pk, '}');
        wb_str(&pk, wrap);
    }
    wb_byte(&pk, '}');
    if (n)
        wb_byte(&pk, '(');
    for (int i = 0; i < n; i++) {
        if ((unsigned)t[i].dtype >= SLD_DT_COUNT || t[i].ndim < 0 || t[i].ndim > SLD_ST_MAX_DIMS) {
            sld_free(pk.p);
            return sld_err(err, SLD_ERR_INVALID_ARG, "%s: tensor '%s' has a bad dtype or rank",
                           path, t[i].name);
        }
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        char key[32], gl[64];
        snprintf(key, sizeof key, "%d", i);
        wb_str(&pk, t[i].name);
        wb_put(&pk, "ctorch._utils\n_rebuild_tensor_v2\n((", 35);
        wb_str(&pk, "storage");
        snprintf(gl, sizeof gl, "ctorch\n%s\n", k_storage_names[t[i].dtype]);
        wb_put(&pk, gl, strlen(gl));
        wb_str(&pk, key);
        wb_str(&pk, "cpu");
        wb_int(&pk, numel);
        wb_put(&pk, "tQ", 2);
        wb_int(&pk, 0);
        wb_byte(&pk, '(');
        for (int d = 0; d < t[i].ndim; d++)
            wb_int(&pk, (uint64_t)t[i].shape[d]);
        wb_put(&pk, "t(", 2);
        uint64_t stride[SLD_ST_MAX_DIMS], s = 1;
        for (int d = t[i].ndim - 1; d >= 0; d--) {
            stride[d] = s;
            s *= (uint64_t)t[i].shape[d];
        }
        for (int d = 0; d < t[i].ndim; d++)
            wb_int(&pk, stride[d]);
        wb_put(&pk, "t\x89" "ccollections\nOrderedDict\n)RtR", 31);
    }
    if (n)
        wb_byte(&pk, 'u');
    if (wrap)
        wb_byte(&pk, 's');
    wb_byte(&pk, '.');
    if (pk.oom) {
        sld_free(pk.p);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
    }

    sld_atomic_file af;
    sld_status st = sld_atomic_open(&af, path, err);
    if (st) {
        sld_free(pk.p);
        return st;
    }
    zlib_filefunc64_def ff = {wf_open, wf_read, wf_write, wf_tell, wf_seek, wf_close, wf_error,
                              NULL};
    zipFile z = zipOpen2_64(af.f, APPEND_STATUS_CREATE, NULL, &ff);
    char name[512];
    int bad = !z;
    snprintf(name, sizeof name, "%s/data.pkl", arch);
    bad = bad || zip_add(z, af.f, name, pk.p, pk.n);
    snprintf(name, sizeof name, "%s/byteorder", arch);
    bad = bad || zip_add(z, af.f, name, "little", 6);
    for (int i = 0; i < n && !bad; i++) {
        size_t nb = sld_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            nb *= (size_t)t[i].shape[d];
        snprintf(name, sizeof name, "%s/data/%d", arch, i);
        bad = zip_add(z, af.f, name, t[i].data, nb);
    }
    snprintf(name, sizeof name, "%s/version", arch);
    bad = bad || zip_add(z, af.f, name, "3\n", 2);
    if (z && zipClose(z, NULL) != ZIP_OK)
        bad = 1;
    sld_free(pk.p);
    if (bad)
        st = sld_err(err, SLD_ERR_IO, "%s: writing the zip archive failed (disk full?)", path);
    return sld_atomic_commit(&af, st, err);
}
