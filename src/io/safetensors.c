/* safetensors.c — validated safetensors reader (mmap) and atomic writer.
 * See safetensors.h for the format and the checks made. */
#include "io/safetensors.h"
#include "io/torch_ckpt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER_BYTES ((uint64_t)100 << 20)

struct sld_st_file {
    char *path;
    const uint8_t *map;  /* whole file */
    size_t map_len;
    int owns_map;        /* munmap on close */
    sld_st_tensor *t;    /* sorted by name */
    char **names;
    int n;
    char **meta;         /* key, value pairs */
    int n_meta;
    const char *format;  /* static: "safetensors", "PyTorch zip", ... */
    char *root;          /* PyTorch files: the object path the tensors were taken from */
    void **owned;        /* buffers freed on close (inflated storages, contiguous copies) */
    int n_owned, owned_cap;
};

static const struct {
    const char *name;
    size_t size;
} k_dtypes[SLD_DT_COUNT] = {
    [SLD_DT_F32] = {"F32", 4}, [SLD_DT_F16] = {"F16", 2}, [SLD_DT_BF16] = {"BF16", 2},
    [SLD_DT_F64] = {"F64", 8}, [SLD_DT_I64] = {"I64", 8}, [SLD_DT_I32] = {"I32", 4},
    [SLD_DT_I16] = {"I16", 2}, [SLD_DT_I8] = {"I8", 1},   [SLD_DT_U8] = {"U8", 1},
    [SLD_DT_BOOL] = {"BOOL", 1},
};

size_t sld_dtype_size(sld_dtype t) { return (unsigned)t < SLD_DT_COUNT ? k_dtypes[t].size : 0; }
const char *sld_dtype_name(sld_dtype t)
{
    return (unsigned)t < SLD_DT_COUNT ? k_dtypes[t].name : "?";
}

/* ---- half precision ----------------------------------------------------- */

float sld_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sld_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* result is subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* a * 2^24 rounded to nearest even is the subnormal mantissa */
        float m = a * 16777216.0f;
        uint32_t r = (uint32_t)lrintf(m);
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1); /* round to nearest even */
    return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
}

float sld_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sld_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- reader ---------------------------------------------------------------- */

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const sld_st_tensor *)a)->name, ((const sld_st_tensor *)b)->name);
}

typedef struct {
    size_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Reads a JSON number that must be a non-negative integer below 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return false;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static sld_status parse(sld_st_file *f, sld_error *err)
{
    const char *P = f->path;
    if (f->map_len < 8)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: not a safetensors file (only %zu bytes; truncated?)", P, f->map_len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->map[i];
    if (hlen > MAX_HEADER_BYTES || hlen > f->map_len - 8)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: header length %llu does not fit in the %zu-byte file "
                       "(truncated or not a safetensors file)",
                       P, (unsigned long long)hlen, f->map_len);
    const char *hdr = (const char *)f->map + 8;
    size_t data_len = f->map_len - 8 - (size_t)hlen;
    const uint8_t *data = f->map + 8 + hlen;

    cJSON *root = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sld_err(err, SLD_ERR_FORMAT, "%s: header is not a JSON object (corrupt file?)", P);
    }
    int n = 0;
    for (cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__"))
            n++;
    sld_status st = SLD_OK;
    f->t = sld_calloc((size_t)n + 1, sizeof *f->t);
    f->names = sld_calloc((size_t)n + 1, sizeof *f->names);
    span *sp = sld_calloc((size_t)n + 1, sizeof *sp);
    if (!f->t || !f->names || !sp) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory reading the header", P);
        goto done;
    }
    int i = 0;
    for (cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (f->meta) {
                st = sld_err(err, SLD_ERR_FORMAT, "%s: __metadata__ appears twice", P);
                goto done;
            }
            if (!cJSON_IsObject(e)) {
                st = sld_err(err, SLD_ERR_FORMAT, "%s: __metadata__ is not an object", P);
                goto done;
            }
            int nm = cJSON_GetArraySize(e);
            f->meta = sld_calloc((size_t)nm * 2 + 1, sizeof *f->meta);
            if (!f->meta) {
                st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", P);
                goto done;
            }
            for (cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m))
                    continue; /* the format says str->str; tolerate and skip others */
                f->meta[2 * f->n_meta] = sld_strdup(m->string);
                f->meta[2 * f->n_meta + 1] = sld_strdup(m->valuestring);
                f->n_meta++;
                if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1]) {
                    st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", P);
                    goto done;
                }
            }
            continue;
        }
        const char *name = e->string;
        sld_st_tensor *t = &f->t[i];
        f->names[i] = sld_strdup(name);
        if (!f->names[i]) {
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", P);
            goto done;
        }
        t->name = f->names[i];
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) ||
            cJSON_GetArraySize(jo) != 2) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: tensor '%s': header entry needs dtype, shape and data_offsets", P,
                         name);
            goto done;
        }
        int dt = -1;
        for (int k = 0; k < SLD_DT_COUNT; k++)
            if (!strcmp(jd->valuestring, k_dtypes[k].name))
                dt = k;
        if (dt < 0) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': unsupported dtype '%s'", P, name,
                         jd->valuestring);
            goto done;
        }
        t->dtype = (sld_dtype)dt;
        int nd = cJSON_GetArraySize(js);
        if (nd > SLD_ST_MAX_DIMS) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", P,
                         name, nd, SLD_ST_MAX_DIMS);
            goto done;
        }
        t->ndim = nd;
        size_t numel = 1;
        int k = 0;
        for (const cJSON *d = js->child; d; d = d->next, k++) {
            uint64_t v;
            if (!json_uint(d, &v) || !sld_mul_ok(numel, (size_t)v, &numel)) {
                st = sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': bad or huge shape", P, name);
                goto done;
            }
            t->shape[k] = (int64_t)v;
        }
        t->numel = numel;
        uint64_t a, b;
        if (!json_uint(jo->child, &a) || !json_uint(jo->child->next, &b) || a > b) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", P, name);
            goto done;
        }
        size_t bytes;
        if (!sld_mul_ok(numel, k_dtypes[dt].size, &bytes) || bytes != b - a) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: tensor '%s': %s shape needs %zu bytes but data_offsets span %llu",
                         P, name, k_dtypes[dt].name, bytes, (unsigned long long)(b - a));
            goto done;
        }
        if (b > data_len) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: tensor '%s': data ends at byte %llu of a %zu-byte data block "
                         "(file truncated?)",
                         P, name, (unsigned long long)b, data_len);
            goto done;
        }
        t->nbytes = bytes;
        t->data = data + a;
        sp[i] = (span){(size_t)a, (size_t)b, i};
        i++;
    }
    f->n = n;
    qsort(sp, (size_t)n, sizeof *sp, cmp_span);
    for (int k = 1; k < n; k++)
        if (sp[k].begin < sp[k - 1].end) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the file", P,
                         f->t[sp[k - 1].idx].name, f->t[sp[k].idx].name);
            goto done;
        }
    qsort(f->t, (size_t)n, sizeof *f->t, cmp_tensor_name);
    for (int k = 1; k < n; k++)
        if (!strcmp(f->t[k].name, f->t[k - 1].name)) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: tensor '%s' appears twice", P, f->t[k].name);
            goto done;
        }
done:
    sld_free(sp);
    cJSON_Delete(root);
    return st;
}

static sld_status finish_open(sld_st_file *f, sld_st_file **out, int flags, sld_error *err)
{
    sld_status st;
    /* a safetensors header length can start with the bytes of a pickle's
     * PROTO opcode (0x80 0x02 = 640): the JSON brace at byte 8 decides */
    bool st_like = false;
    if (f->map_len >= 9 && f->map[8] == '{') {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--)
            hl = (hl << 8) | f->map[i];
        st_like = hl <= f->map_len - 8;
    }
    if (!st_like && sld_torch_sniff(f->map, f->map_len)) {
        st = sld_torch_parse(f, flags, err);
    } else {
        f->format = "safetensors";
        st = parse(f, err);
    }
    if (st) {
        sld_st_close(f);
        return st;
    }
    *out = f;
    return SLD_OK;
}

sld_status sld_st_open_mem(sld_st_file **out, const void *buf, size_t len, const char *name,
                           sld_error *err)
{
    return sld_st_open_mem_ex(out, buf, len, name, 0, err);
}

sld_status sld_st_open_mem_ex(sld_st_file **out, const void *buf, size_t len, const char *name,
                              int flags, sld_error *err)
{
    *out = NULL;
    sld_st_file *f = sld_calloc(1, sizeof *f);
    if (!f || !(f->path = sld_strdup(name ? name : "<memory>"))) {
        sld_free(f);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    f->map = buf;
    f->map_len = len;
    return finish_open(f, out, flags, err);
}

sld_status sld_st_open(sld_st_file **out, const char *path, sld_error *err)
{
    return sld_st_open_ex(out, path, 0, err);
}

sld_status sld_st_open_ex(sld_st_file **out, const char *path, int flags, sld_error *err)
{
    *out = NULL;
    int fd;
    struct stat st;
    sld_status ost = sld_open_read(path, &fd, &st, err);
    if (ost)
        return ost;
    sld_st_file *f = sld_calloc(1, sizeof *f);
    if (!f || !(f->path = sld_strdup(path))) {
        sld_free(f);
        close(fd);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    f->map_len = (size_t)st.st_size;
    if (f->map_len > 0) {
        void *m = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            sld_st_close(f);
            return sld_err(err, SLD_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
        }
        f->map = m;
        f->owns_map = 1;
    }
    close(fd);
    return finish_open(f, out, flags, err);
}

void sld_st_close(sld_st_file *f)
{
    if (!f)
        return;
    if (f->owns_map && f->map)
        munmap((void *)f->map, f->map_len);
    if (f->names)
        for (int i = 0; f->names[i]; i++)
            sld_free(f->names[i]);
    if (f->meta)
        for (int i = 0; i < 2 * f->n_meta; i++)
            sld_free(f->meta[i]);
    sld_free(f->meta);
    for (int i = 0; i < f->n_owned; i++)
        sld_free(f->owned[i]);
    sld_free(f->owned);
    sld_free(f->root);
    sld_free(f->names);
    sld_free(f->t);
    sld_free(f->path);
    sld_free(f);
}

const char *sld_st_path(const sld_st_file *f) { return f->path; }
const char *sld_st_format(const sld_st_file *f) { return f->format; }
const char *sld_st_root(const sld_st_file *f) { return f->root ? f->root : ""; }
int sld_st_meta_count(const sld_st_file *f) { return f->n_meta; }
const char *sld_st_meta_at(const sld_st_file *f, int i, const char **value)
{
    if (i < 0 || i >= f->n_meta)
        return NULL;
    *value = f->meta[2 * i + 1];
    return f->meta[2 * i];
}

const char *const sld_st_names_transformers[] = {"model.safetensors", "pytorch_model.bin", NULL};
const char *const sld_st_names_diffusers[] = {
    "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin", NULL};

char *sld_st_pick(const char *dir, const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        char *p = sld_path_join(dir, names[i]);
        if (!p || sld_path_exists(p))
            return p;
        sld_free(p);
    }
    return sld_path_join(dir, names[0]);
}

/* ---- other readers' hooks --------------------------------------------------- */

const uint8_t *sld_st_map(const sld_st_file *f, size_t *len)
{
    *len = f->map_len;
    return f->map;
}

sld_status sld_st_keep(sld_st_file *f, void *buf, sld_error *err)
{
    if (f->n_owned == f->owned_cap) {
        int nc = f->owned_cap ? f->owned_cap * 2 : 16;
        void **no = sld_realloc(f->owned, (size_t)nc * sizeof *no);
        if (!no) {
            sld_free(buf);
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", f->path);
        }
        f->owned = no;
        f->owned_cap = nc;
    }
    f->owned[f->n_owned++] = buf;
    return SLD_OK;
}

sld_status sld_st_set_table(sld_st_file *f, const char *format, const char *root, sld_st_tensor *t,
                            char **names, int n, char **meta, int n_meta, sld_error *err)
{
    f->format = format;
    f->t = t;
    f->names = names;
    f->n = n;
    f->meta = meta;
    f->n_meta = n_meta;
    if (root && !(f->root = sld_strdup(root)))
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", f->path);
    qsort(f->t, (size_t)n, sizeof *f->t, cmp_tensor_name);
    for (int k = 1; k < n; k++)
        if (!strcmp(f->t[k].name, f->t[k - 1].name))
            return sld_err(err, SLD_ERR_FORMAT, "%s: two tensors are both named '%s'", f->path,
                           f->t[k].name);
    return SLD_OK;
}
int sld_st_count(const sld_st_file *f) { return f->n; }
const sld_st_tensor *sld_st_at(const sld_st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const sld_st_tensor *sld_st_find(const sld_st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, f->t[mid].name);
        if (!c)
            return &f->t[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *sld_st_meta(const sld_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key))
            return f->meta[2 * i + 1];
    return NULL;
}

sld_status sld_st_to_f32(const sld_st_tensor *t, float *dst, sld_error *err)
{
    const uint8_t *s = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case SLD_DT_F32:
        memcpy(dst, s, n * 4);
        return SLD_OK;
    case SLD_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sld_f16_to_f32(h);
        }
        return SLD_OK;
    case SLD_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sld_bf16_to_f32(h);
        }
        return SLD_OK;
    case SLD_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return SLD_OK;
    default:
        return sld_err(err, SLD_ERR_SHAPE, "tensor '%s' has dtype %s, expected a float type",
                       t->name, sld_dtype_name(t->dtype));
    }
}

static void shape_str(char *buf, size_t cap, int nd, const int64_t *s)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < nd && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ",%lld" : "%lld", (long long)s[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

float *sld_st_read_f32(const sld_st_file *f, const char *name, int ndim, const int64_t *shape,
                       sld_error *err)
{
    const sld_st_tensor *t = sld_st_find(f, name);
    if (!t) {
        sld_err(err, SLD_ERR_SHAPE, "%s: tensor '%s' is missing", f->path, name);
        return NULL;
    }
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128], want[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, ndim, shape);
        sld_err(err, SLD_ERR_SHAPE, "%s: '%s' is %s, expected %s", f->path, name, got, want);
        return NULL;
    }
    float *d = sld_malloc_aligned(t->numel * sizeof(float));
    if (!d) {
        sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for '%s'", f->path, name);
        return NULL;
    }
    if (sld_st_to_f32(t, d, err)) {
        sld_free(d);
        sld_err_prefix(err, "%s", f->path);
        return NULL;
    }
    return d;
}

/* ---- writer ---------------------------------------------------------------- */

sld_status sld_st_write(const char *path, const sld_st_out *t, int n, const char *const *meta,
                        int n_meta, sld_error *err)
{
    return sld_st_write_fill(path, t, n, meta, n_meta, NULL, NULL, err);
}

sld_status sld_st_write_fill(const char *path, const sld_st_out *t, int n,
                             const char *const *meta, int n_meta, sld_st_fill_fn fill,
                             void *user, sld_error *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    sld_status st = SLD_OK;
    size_t off = 0, biggest = 0;
    char *hdr = NULL;
    void *scratch = NULL;
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && i < n_meta; i++)
            cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]);
    }
    for (int i = 0; i < n; i++) {
        size_t numel = 1, bytes;
        for (int k = 0; k < t[i].ndim; k++)
            if (t[i].shape[k] < 0 || !sld_mul_ok(numel, (size_t)t[i].shape[k], &numel)) {
                st = sld_err(err, SLD_ERR_INVALID_ARG, "%s: tensor '%s' has a bad shape", path,
                             t[i].name);
                goto done;
            }
        if (!sld_mul_ok(numel, sld_dtype_size(t[i].dtype), &bytes)) {
            st = sld_err(err, SLD_ERR_INVALID_ARG, "%s: tensor '%s' is too large", path,
                         t[i].name);
            goto done;
        }
        if (bytes > biggest)
            biggest = bytes;
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *offs = e ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        if (!shape || !offs) {
            st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
            goto done;
        }
        cJSON_AddStringToObject(e, "dtype", sld_dtype_name(t[i].dtype));
        for (int k = 0; k < t[i].ndim; k++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[k]));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    hdr = cJSON_PrintUnformatted(root);
    if (!hdr || (fill && !(scratch = sld_malloc(biggest)))) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    uint8_t len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (uint8_t)((uint64_t)padded >> (8 * k));
    sld_atomic_file af;
    if ((st = sld_atomic_open(&af, path, err)))
        goto done;
    bool ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(hdr, 1, hl, af.f) == hl;
    for (size_t k = hl; ok && k < padded; k++)
        ok = fputc(' ', af.f) != EOF;
    /* tensors stream out one at a time: no copy of the whole file in memory */
    for (int i = 0; ok && i < n && !st; i++) {
        size_t bytes = sld_dtype_size(t[i].dtype);
        for (int k = 0; k < t[i].ndim; k++)
            bytes *= (size_t)t[i].shape[k];
        const void *src = t[i].data;
        if (fill) {
            if ((st = fill(user, i, scratch, err)))
                break;
            src = scratch;
        }
        ok = !bytes || fwrite(src, 1, bytes, af.f) == bytes;
    }
    if (!ok && !st)
        st = sld_err(err, SLD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    st = sld_atomic_commit(&af, st, err);
done:
    sld_free(scratch);
    free(hdr); /* cJSON allocates with malloc */
    cJSON_Delete(root);
    return st;
}

sld_status sld_tensors_write_f32(const char *path, int n, const char *const *names,
                                 const int *ndims, const int64_t *const *shapes,
                                 const float *const *data, sld_error *err)
{
    if (n < 0 || n > 64)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: bad tensor count %d", path, n);
    sld_st_out t[64];
    for (int i = 0; i < n; i++) {
        if (ndims[i] < 0 || ndims[i] > SLD_ST_MAX_DIMS)
            return sld_err(err, SLD_ERR_INVALID_ARG, "%s: tensor '%s' has rank %d", path,
                           names[i], ndims[i]);
        t[i].name = names[i];
        t[i].dtype = SLD_DT_F32;
        t[i].ndim = ndims[i];
        memcpy(t[i].shape, shapes[i], (size_t)ndims[i] * sizeof(int64_t));
        t[i].data = data[i];
    }
    return sld_st_write(path, t, n, NULL, 0, err);
}
