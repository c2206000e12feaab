/*
 * npz.c — .npy parsing/serialising and .npz archives through libzip (npz.h).
 *
 * .npy layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32
 * LE for 2.0/3.0), the header — a Python dict literal
 * {'descr': '<f8', 'fortran_order': False, 'shape': (64, 64), } padded with
 * spaces and ending in '\n' — then the raw data.
 */
#include "io/npz.h"

#include <string.h>
#include <zip.h>

/* Members above this are refused (a 2048x2048 float64 sigma is 32 MiB). */
#define NPZ_MAX_MEMBER ((size_t)1 << 30)

void sld_npy_free(sld_npy *a)
{
    if (!a)
        return;
    sld_free(a->data);
    a->data = NULL;
}

/* ---- header dict parser (bounded cursor) ------------------------------------ */

typedef struct {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "...", no escapes) into out (cap bytes). */
static bool read_str(cur *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap)
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = 0;
    return true;
}

static bool read_word(cur *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) {
        c->p += n;
        return true;
    }
    return false;
}

static bool read_shape(cur *c, sld_npy *a)
{
    if (!eat(c, '('))
        return false;
    a->ndim = 0;
    for (;;) {
        if (eat(c, ')'))
            return true;
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9' || a->ndim >= SLD_NPY_MAX_DIMS)
            return false;
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > ((int64_t)1 << 40))
                return false;
            v = v * 10 + (*c->p++ - '0');
        }
        a->shape[a->ndim++] = v;
        if (!eat(c, ',')) {
            if (eat(c, ')'))
                return true;
            return false;
        }
    }
}

sld_status sld_npy_parse(sld_npy *out, const void *buf, size_t len, const char *name,
                         sld_error *err)
{
    memset(out, 0, sizeof *out);
    const uint8_t *b = buf;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6))
        return sld_err(err, SLD_ERR_FORMAT, "%s: not a .npy array (bad magic)", name);
    int major = b[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return sld_err(err, SLD_ERR_FORMAT, "%s: truncated .npy header", name);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hoff = 12;
    } else {
        return sld_err(err, SLD_ERR_FORMAT, "%s: .npy version %d.%d is not supported", name,
                       major, b[7]);
    }
    if (hlen > len - hoff)
        return sld_err(err, SLD_ERR_FORMAT, "%s: .npy header runs past the end (%zu bytes)",
                       name, len);
    cur c = {(const char *)b + hoff, (const char *)b + hoff + hlen};
    char key[32], descr[16] = "";
    int fortran = -1, have_shape = 0;
    if (!eat(&c, '{'))
        goto bad;
    while (!eat(&c, '}')) {
        if (!read_str(&c, key, sizeof key) || !eat(&c, ':'))
            goto bad;
        if (!strcmp(key, "descr")) {
            if (!read_str(&c, descr, sizeof descr))
                goto bad;
        } else if (!strcmp(key, "fortran_order")) {
            if (read_word(&c, "True"))
                fortran = 1;
            else if (read_word(&c, "False"))
                fortran = 0;
            else
                goto bad;
        } else if (!strcmp(key, "shape")) {
            if (!read_shape(&c, out))
                goto bad;
            have_shape = 1;
        } else {
            goto bad;
        }
        if (!eat(&c, ',')) {
            if (eat(&c, '}'))
                break;
            goto bad;
        }
    }
    if (!descr[0] || fortran < 0 || !have_shape)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: .npy header lacks 'descr', 'fortran_order' or 'shape'", name);
    size_t es;
    if (!strcmp(descr, "<f8"))
        es = 8;
    else if (!strcmp(descr, "<f4"))
        es = 4;
    else
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: dtype '%s' is not supported (little-endian float64 '<f8' or "
                       "float32 '<f4')",
                       name, descr);
    size_t numel = 1, nbytes;
    for (int i = 0; i < out->ndim; i++)
        if (!sld_mul_ok(numel, (size_t)out->shape[i], &numel))
            return sld_err(err, SLD_ERR_FORMAT, "%s: .npy shape overflows", name);
    if (!sld_mul_ok(numel, es, &nbytes) || nbytes != len - hoff - hlen)
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: .npy data is %zu bytes, its shape and dtype need %zu", name,
                       len - hoff - hlen, numel * es);
    out->numel = numel;
    out->data = sld_malloc((numel ? numel : 1) * sizeof(double));
    if (!out->data)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for %zu values", name, numel);
    const uint8_t *d = b + hoff + hlen;
    for (size_t i = 0; i < numel; i++) {
        if (es == 8) {
            memcpy(&out->data[i], d + i * 8, 8);
        } else {
            float f;
            memcpy(&f, d + i * 4, 4);
            out->data[i] = f;
        }
    }
    if (fortran && out->ndim >= 2) {
        /* Column-major: element (i0..ik) sits at sum i_j * prod(shape[<j]). */
        double *t = sld_malloc((numel ? numel : 1) * sizeof(double));
        if (!t) {
            sld_npy_free(out);
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
        }
        int64_t idx[SLD_NPY_MAX_DIMS] = {0};
        for (size_t i = 0; i < numel; i++) { /* i walks C order */
            size_t f = 0, mul = 1;
            for (int j = 0; j < out->ndim; j++) {
                f += (size_t)idx[j] * mul;
                mul *= (size_t)out->shape[j];
            }
            t[i] = out->data[f];
            for (int j = out->ndim - 1; j >= 0; j--) {
                if (++idx[j] < out->shape[j])
                    break;
                idx[j] = 0;
            }
        }
        sld_free(out->data);
        out->data = t;
    }
    return SLD_OK;
bad:
    return sld_err(err, SLD_ERR_FORMAT, "%s: malformed .npy header dict", name);
}

sld_status sld_npy_serialize(const double *data, int ndim, const int64_t *shape, uint8_t **out,
                             size_t *len, sld_error *err)
{
    *out = NULL;
    *len = 0;
    if (ndim < 0 || ndim > SLD_NPY_MAX_DIMS)
        return sld_err(err, SLD_ERR_INVALID_ARG, ".npy: %d dimensions", ndim);
    char h[256], dims[160] = "";
    size_t numel = 1, o = 0;
    for (int i = 0; i < ndim; i++) {
        numel *= (size_t)shape[i];
        o += (size_t)snprintf(dims + o, sizeof dims - o, "%lld%s", (long long)shape[i],
                              ndim == 1 || i + 1 < ndim ? ", " : "");
    }
    if (ndim == 1)
        dims[o - 1] = 0; /* "(64,)", numpy's one-tuple */
    int n = snprintf(h, sizeof h, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }",
                     dims);
    /* pad with spaces so that 10 + header (ending in '\n') is a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64, hlen = (size_t)n + pad + 1;
    size_t sz = 10 + hlen + numel * 8;
    uint8_t *b = sld_malloc(sz);
    if (!b)
        return sld_err(err, SLD_ERR_NOMEM, ".npy: out of memory");
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hlen & 0xff);
    b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, h, (size_t)n);
    memset(b + 10 + n, ' ', pad);
    b[10 + hlen - 1] = '\n';
    memcpy(b + 10 + hlen, data, numel * 8);
    *out = b;
    *len = sz;
    return SLD_OK;
}

/* ---- .npz ------------------------------------------------------------------- */

struct sld_npz {
    zip_t *za;
    char *owned; /* file contents when opened from a path */
    char name[256];
};

sld_status sld_npz_open_mem(sld_npz **out, const void *buf, size_t len, const char *name,
                            sld_error *err)
{
    *out = NULL;
    sld_npz *z = sld_calloc(1, sizeof *z);
    if (!z)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
    snprintf(z->name, sizeof z->name, "%s", name);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
    if (src)
        z->za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!z->za) {
        sld_status st = sld_err(err, SLD_ERR_FORMAT, "%s: not a readable .npz (zip) archive: %s",
                                name, zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        sld_free(z);
        return st;
    }
    zip_error_fini(&ze);
    *out = z;
    return SLD_OK;
}

sld_status sld_npz_open(sld_npz **out, const char *path, sld_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    sld_status st = sld_file_read(path, NPZ_MAX_MEMBER * 2, &buf, &len, err);
    if (st)
        return st;
    if ((st = sld_npz_open_mem(out, buf, len, path, err))) {
        sld_free(buf);
        return st;
    }
    (*out)->owned = buf;
    return SLD_OK;
}

void sld_npz_close(sld_npz *z)
{
    if (!z)
        return;
    if (z->za)
        zip_discard(z->za);
    sld_free(z->owned);
    sld_free(z);
}

sld_status sld_npz_get(sld_npz *z, const char *key, sld_npy *out, sld_error *err)
{
    memset(out, 0, sizeof *out);
    char nm[128];
    snprintf(nm, sizeof nm, "%s.npy", key);
    zip_int64_t i = zip_name_locate(z->za, nm, 0);
    if (i < 0)
        i = zip_name_locate(z->za, key, 0);
    if (i < 0) {
        char have[256] = "";
        size_t o = 0;
        zip_int64_t n = zip_get_num_entries(z->za, 0);
        for (zip_int64_t k = 0; k < n && k < 16 && o < sizeof have - 1; k++) {
            const char *e = zip_get_name(z->za, (zip_uint64_t)k, 0);
            o += (size_t)snprintf(have + o, sizeof have - o, "%s%s", k ? ", " : "",
                                  e ? e : "?");
        }
        return sld_err(err, SLD_ERR_FORMAT, "%s: no array '%s' in the archive (it has: %s)",
                       z->name, key, n ? have : "nothing");
    }
    zip_stat_t s;
    /* Deflate expands at most ~1032x: a larger claimed size is a corrupt or
     * hostile archive, refused before allocating for it. */
    if (zip_stat_index(z->za, (zip_uint64_t)i, 0, &s) || !(s.valid & ZIP_STAT_SIZE) ||
        !(s.valid & ZIP_STAT_COMP_SIZE) || s.size > NPZ_MAX_MEMBER ||
        s.size / 1100 > s.comp_size)
        return sld_err(err, SLD_ERR_FORMAT, "%s: member '%s' has no usable size", z->name, nm);
    uint8_t *buf = sld_malloc(s.size ? s.size : 1);
    if (!buf)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory for '%s'", z->name, nm);
    zip_file_t *f = zip_fopen_index(z->za, (zip_uint64_t)i, 0);
    zip_int64_t got = f ? zip_fread(f, buf, s.size) : -1;
    if (f)
        zip_fclose(f);
    char label[400];
    snprintf(label, sizeof label, "%s:%s", z->name, zip_get_name(z->za, (zip_uint64_t)i, 0));
    sld_status st;
    if (got < 0 || (zip_uint64_t)got != s.size)
        st = sld_err(err, SLD_ERR_FORMAT, "%s: cannot decompress (corrupt archive)", label);
    else
        st = sld_npy_parse(out, buf, s.size, label, err);
    sld_free(buf);
    return st;
}

sld_status sld_npz_write(const char *path, int n, const char *const *keys,
                         const double *const *data, const int *ndims,
                         const int64_t *const *shapes, sld_error *err)
{
    sld_status st = SLD_OK;
    uint8_t **blobs = sld_calloc((size_t)(n > 0 ? n : 1), sizeof *blobs);
    if (!blobs)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    char *mem = NULL;
    if (!za) {
        st = sld_err(err, SLD_ERR_INTERNAL, "%s: libzip: %s", path, zip_error_strerror(&ze));
        goto done;
    }
    zip_source_keep(src);
    for (int i = 0; i < n; i++) {
        size_t len;
        if ((st = sld_npy_serialize(data[i], ndims[i], shapes[i], &blobs[i], &len, err)))
            goto done;
        char nm[128];
        snprintf(nm, sizeof nm, "%s.npy", keys[i]);
        zip_source_t *s = zip_source_buffer(za, blobs[i], len, 0);
        zip_int64_t idx = s ? zip_file_add(za, nm, s, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            zip_source_free(s);
            st = sld_err(err, SLD_ERR_INTERNAL, "%s: libzip: %s", path, zip_strerror(za));
            goto done;
        }
        /* fixed time stamp (1980-01-01, as numpy's zipfile) for reproducible files */
        zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0);
        zip_file_set_mtime(za, (zip_uint64_t)idx, 315532800, 0);
    }
    if (zip_close(za)) {
        st = sld_err(err, SLD_ERR_INTERNAL, "%s: libzip: %s", path, zip_strerror(za));
        zip_discard(za);
        za = NULL;
        goto done;
    }
    za = NULL;
    zip_stat_t s;
    if (zip_source_stat(src, &s) || zip_source_open(src)) {
        st = sld_err(err, SLD_ERR_INTERNAL, "%s: libzip could not return the archive", path);
        goto done;
    }
    mem = sld_malloc(s.size ? s.size : 1);
    zip_int64_t got = mem ? zip_source_read(src, mem, s.size) : -1;
    zip_source_close(src);
    if (!mem)
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
    else if (got < 0 || (zip_uint64_t)got != s.size)
        st = sld_err(err, SLD_ERR_INTERNAL, "%s: libzip returned a short archive", path);
    else
        st = sld_file_write_atomic(path, mem, s.size, err);
done:
    if (za)
        zip_discard(za);
    if (src)
        zip_source_free(src);
    zip_error_fini(&ze);
    sld_free(mem);
    for (int i = 0; i < n; i++)
        sld_free(blobs[i]);
    sld_free(blobs);
    return st;
}
