/*
 * onnx.c — protobuf wire-format reader for ONNX ModelProto (see onnx.h).
 *
 * Protobuf in brief: a message is a sequence of (tag, value); tag = varint
 * field_number << 3 | wire_type; wire types 0 varint, 1 fixed64, 2 length-
 * delimited (strings, bytes, sub-messages, packed repeated scalars), 5 fixed32
 * (3/4 are deprecated groups, rejected). Unknown fields are skipped, which is
 * how newer ONNX versions stay readable. Repeated scalars may come packed (one
 * length-delimited run) or one per tag; both are accepted.
 *
 * Everything reads through `cur`, a bounded cursor that never moves past its
 * end; each failure reports the field path (e.g. "graph.node[12].attribute[0]")
 * and the byte offset in the file.
 */
#include "io/onnx.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx.c copies little-endian raw_data as is; port the copy for big-endian hosts"
#endif

/* ---- cursor ------------------------------------------------------------ */

typedef struct {
    const uint8_t *base; /* start of the whole file, for offsets in messages */
    const uint8_t *p, *end;
    const char *file;
    sld_error *err;
} cur;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static size_t off(const cur *c) { return (size_t)(c->p - c->base); }

static sld_status fmt_err(const cur *c, const char *ctx, const char *what)
{
    return sld_err(c->err, SLD_ERR_FORMAT, "%s: %s: %s at byte %zu", c->file, ctx, what, off(c));
}

static sld_status rd_varint(cur *c, uint64_t *v, const char *ctx)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (c->p >= c->end)
            return fmt_err(c, ctx, "truncated varint");
        uint8_t b = *c->p++;
        if (i == 9 && b > 1)
            return fmt_err(c, ctx, "varint longer than 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return SLD_OK;
        }
    }
    return fmt_err(c, ctx, "varint longer than 10 bytes");
}

static sld_status rd_tag(cur *c, uint32_t *field, int *wt, const char *ctx)
{
    uint64_t t;
    sld_status s = rd_varint(c, &t, ctx);
    if (s)
        return s;
    if ((t >> 3) == 0 || (t >> 3) > 0x1fffffff)
        return fmt_err(c, ctx, "invalid field number 0 in tag");
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    if (*wt != WT_VARINT && *wt != WT_I64 && *wt != WT_LEN && *wt != WT_I32)
        return sld_err(c->err, SLD_ERR_FORMAT, "%s: %s: field %u has wire type %d (groups/invalid) at byte %zu",
                       c->file, ctx, *field, *wt, off(c));
    return SLD_OK;
}

/* Length-delimited value: *sub covers its bytes, c moves past them. */
static sld_status rd_len(cur *c, cur *sub, const char *ctx)
{
    uint64_t n;
    sld_status s = rd_varint(c, &n, ctx);
    if (s)
        return s;
    if (n > (uint64_t)(c->end - c->p))
        return sld_err(c->err, SLD_ERR_FORMAT,
                       "%s: %s: length %llu runs past the end of its message (%zu bytes left) at byte %zu",
                       c->file, ctx, (unsigned long long)n, (size_t)(c->end - c->p), off(c));
    *sub = *c;
    sub->end = c->p + n;
    c->p += n;
    return SLD_OK;
}

static sld_status rd_fixed(cur *c, void *out, size_t n, const char *ctx)
{
    if ((size_t)(c->end - c->p) < n)
        return fmt_err(c, ctx, n == 4 ? "truncated fixed32" : "truncated fixed64");
    memcpy(out, c->p, n);
    c->p += n;
    return SLD_OK;
}

static sld_status skip_field(cur *c, int wt, const char *ctx)
{
    uint64_t v;
    cur sub;
    switch (wt) {
    case WT_VARINT: return rd_varint(c, &v, ctx);
    case WT_I64: return rd_fixed(c, &v, 8, ctx);
    case WT_I32: return rd_fixed(c, &v, 4, ctx);
    default: return rd_len(c, &sub, ctx);
    }
}

static sld_status want_wt(const cur *c, uint32_t field, int wt, int want, const char *ctx)
{
    if (wt == want)
        return SLD_OK;
    return sld_err(c->err, SLD_ERR_FORMAT, "%s: %s: field %u has wire type %d, expected %d at byte %zu",
                   c->file, ctx, field, wt, want, off(c));
}

static sld_status nomem(const cur *c, const char *ctx)
{
    return sld_err(c->err, SLD_ERR_NOMEM, "%s: %s: out of memory", c->file, ctx);
}

/* Replaces *out with a NUL-terminated copy of a length-delimited string. */
static sld_status rd_string(cur *c, char **out, size_t *len_out, const char *ctx)
{
    cur sub;
    sld_status s = rd_len(c, &sub, ctx);
    if (s)
        return s;
    size_t n = (size_t)(sub.end - sub.p);
    char *str = sld_malloc(n + 1);
    if (!str)
        return nomem(c, ctx);
    memcpy(str, sub.p, n);
    str[n] = 0;
    sld_free(*out);
    *out = str;
    if (len_out)
        *len_out = n;
    return SLD_OK;
}

static sld_status rd_int64(cur *c, uint32_t field, int wt, int64_t *v, const char *ctx)
{
    uint64_t u;
    sld_status s = want_wt(c, field, wt, WT_VARINT, ctx);
    if (!s)
        s = rd_varint(c, &u, ctx);
    if (!s)
        *v = (int64_t)u;
    return s;
}

/* Grows a dynamic array so that it holds n+1 elements. */
static bool grow(void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return true;
    if (n > INT_MAX / 2 - 8)
        return false;
    int nc = *cap ? *cap * 2 : 8;
    size_t bytes;
    if (!sld_mul_ok((size_t)nc, elem, &bytes))
        return false;
    void *p = sld_realloc(*arr, bytes);
    if (!p)
        return false;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return true;
}

/* A repeated scalar (packed or not). kind: 'v' varint (stored as int64),
 * 'f' fixed32 float, 'd' fixed64 double. Values are appended to *arr. */
typedef struct {
    void *v;
    int n, cap;
} vec;

static sld_status rd_repeated(cur *c, uint32_t field, int wt, char kind, vec *out, const char *ctx)
{
    size_t elem = kind == 'f' ? sizeof(float) : kind == 'd' ? sizeof(double) : sizeof(int64_t);
    int want = kind == 'f' ? WT_I32 : kind == 'd' ? WT_I64 : WT_VARINT;
    cur sub;
    bool packed = wt == WT_LEN;
    if (!packed) {
        sld_status s = want_wt(c, field, wt, want, ctx);
        if (s)
            return s;
        sub = *c;
    } else {
        sld_status s = rd_len(c, &sub, ctx);
        if (s)
            return s;
    }
    do {
        if (packed && sub.p >= sub.end)
            break;
        if (!grow(&out->v, &out->cap, out->n, elem))
            return nomem(c, ctx);
        sld_status s;
        if (kind == 'v') {
            uint64_t u;
            s = rd_varint(&sub, &u, ctx);
            if (!s)
                ((int64_t *)out->v)[out->n] = (int64_t)u;
        } else {
            s = rd_fixed(&sub, (char *)out->v + (size_t)out->n * elem, elem, ctx);
        }
        if (s)
            return s;
        out->n++;
    } while (packed);
    if (!packed)
        c->p = sub.p;
    return SLD_OK;
}

/* ---- sizes and names --------------------------------------------------- */

size_t sld_onnx_dtype_size(int dtype)
{
    switch (dtype) {
    case SLD_ONNX_FLOAT: case SLD_ONNX_INT32: case SLD_ONNX_UINT32: return 4;
    case SLD_ONNX_UINT8: case SLD_ONNX_INT8: case SLD_ONNX_BOOL: return 1;
    case SLD_ONNX_UINT16: case SLD_ONNX_INT16: case SLD_ONNX_FLOAT16: case SLD_ONNX_BFLOAT16:
        return 2;
    case SLD_ONNX_INT64: case SLD_ONNX_DOUBLE: case SLD_ONNX_UINT64: return 8;
    default: return 0;
    }
}

const char *sld_onnx_dtype_name(int dtype)
{
    static const char *const names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16",
                                        "INT16", "INT32", "INT64", "STRING", "BOOL",
                                        "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
                                        "COMPLEX128", "BFLOAT16"};
    return dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]) ? names[dtype] : "?";
}

/* ---- TensorProto --------------------------------------------------------- */

static void tensor_clear(sld_onnx_tensor *t)
{
    if (!t)
        return;
    sld_free(t->name);
    sld_free(t->data);
    memset(t, 0, sizeof *t);
}

static sld_status parse_tensor(cur *c, sld_onnx_tensor *t, const char *ctx)
{
    vec dims = {0}, ints = {0}, floats = {0}, doubles = {0};
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool has_raw = false, external = false, segment = false;
    int64_t dtype = 0;
    sld_status s = SLD_OK;
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        cur sub;
        switch (f) {
        case 1: s = rd_repeated(c, f, wt, 'v', &dims, ctx); break;
        case 2: s = rd_int64(c, f, wt, &dtype, ctx); break;
        case 3: segment = true; s = skip_field(c, wt, ctx); break;
        case 4: s = rd_repeated(c, f, wt, 'f', &floats, ctx); break;
        case 5: /* int32_data */
        case 7: /* int64_data */
        case 11: /* uint64_data */
            s = rd_repeated(c, f, wt, 'v', &ints, ctx);
            break;
        case 10: s = rd_repeated(c, f, wt, 'd', &doubles, ctx); break;
        case 8:
            if (!(s = want_wt(c, f, wt, WT_LEN, ctx)))
                s = rd_string(c, &t->name, NULL, ctx);
            break;
        case 9:
            if ((s = want_wt(c, f, wt, WT_LEN, ctx)) || (s = rd_len(c, &sub, ctx)))
                break;
            raw = sub.p;
            raw_len = (size_t)(sub.end - sub.p);
            has_raw = true;
            break;
        case 13: external = true; s = skip_field(c, wt, ctx); break;
        case 14: {
            int64_t loc;
            if (!(s = rd_int64(c, f, wt, &loc, ctx)) && loc != 0)
                external = true;
            break;
        }
        default: s = skip_field(c, wt, ctx); break;
        }
    }
    const char *nm = t->name ? t->name : "?";
    if (s)
        goto done;
    t->dtype = (int)dtype;
    if (external || segment) {
        s = sld_err(c->err, SLD_ERR_UNSUPPORTED, "%s: %s (tensor '%s'): %s is not supported",
                    c->file, ctx, nm, external ? "external data" : "segmented data");
        goto done;
    }
    if (dims.n > SLD_ONNX_MAX_DIMS) {
        s = sld_err(c->err, SLD_ERR_UNSUPPORTED, "%s: %s (tensor '%s'): %d dims, at most %d supported",
                    c->file, ctx, nm, dims.n, SLD_ONNX_MAX_DIMS);
        goto done;
    }
    size_t es = sld_onnx_dtype_size(t->dtype);
    if (!es) {
        s = sld_err(c->err, SLD_ERR_UNSUPPORTED, "%s: %s (tensor '%s'): data type %d (%s) is not supported",
                    c->file, ctx, nm, t->dtype, sld_onnx_dtype_name(t->dtype));
        goto done;
    }
    t->ndim = dims.n;
    size_t numel = 1;
    for (int i = 0; i < dims.n; i++) {
        int64_t d = ((int64_t *)dims.v)[i];
        if (d < 0 || !sld_mul_ok(numel, (size_t)d, &numel)) {
            s = sld_err(c->err, SLD_ERR_FORMAT, "%s: %s (tensor '%s'): bad dimension %lld",
                        c->file, ctx, nm, (long long)d);
            goto done;
        }
        t->dims[i] = d;
    }
    size_t nbytes;
    if (!sld_mul_ok(numel, es, &nbytes) || nbytes > ((size_t)1 << 40)) {
        s = sld_err(c->err, SLD_ERR_FORMAT, "%s: %s (tensor '%s'): size overflows", c->file, ctx, nm);
        goto done;
    }
    t->numel = numel;
    t->nbytes = nbytes;
    if (has_raw ? raw_len != nbytes : false) {
        s = sld_err(c->err, SLD_ERR_FORMAT,
                    "%s: %s (tensor '%s'): raw_data has %zu bytes, shape and %s need %zu", c->file,
                    ctx, nm, raw_len, sld_onnx_dtype_name(t->dtype), nbytes);
        goto done;
    }
    /* which typed field must carry the values */
    int want = t->dtype == SLD_ONNX_FLOAT ? 1 : t->dtype == SLD_ONNX_DOUBLE ? 4 : 2;
    size_t have = want == 1 ? (size_t)floats.n : want == 4 ? (size_t)doubles.n : (size_t)ints.n;
    if (!has_raw && have != numel) {
        s = sld_err(c->err, SLD_ERR_FORMAT,
                    "%s: %s (tensor '%s'): %zu values in the typed data field, shape needs %zu",
                    c->file, ctx, nm, have, numel);
        goto done;
    }
    t->data = sld_malloc_aligned(nbytes ? nbytes : 1);
    if (!t->data) {
        s = nomem(c, ctx);
        goto done;
    }
    if (has_raw) {
        if (nbytes)
            memcpy(t->data, raw, nbytes);
    } else if (want == 1) {
        if (nbytes)
            memcpy(t->data, floats.v, nbytes);
    } else if (want == 4) {
        if (nbytes)
            memcpy(t->data, doubles.v, nbytes);
    } else {
        /* int32_data carries every type of 32 bits or less (float16 as bits) */
        const int64_t *iv = ints.v;
        for (size_t i = 0; i < numel; i++) {
            uint64_t u = (uint64_t)iv[i];
            switch (es) {
            case 1: ((uint8_t *)t->data)[i] = (uint8_t)u; break;
            case 2: ((uint16_t *)t->data)[i] = (uint16_t)u; break;
            case 4: ((uint32_t *)t->data)[i] = (uint32_t)u; break;
            default: ((uint64_t *)t->data)[i] = u; break;
            }
        }
    }
done:
    sld_free(dims.v);
    sld_free(ints.v);
    sld_free(floats.v);
    sld_free(doubles.v);
    return s;
}

/* ---- AttributeProto --------------------------------------------------------- */

static void attr_clear(sld_onnx_attr *a)
{
    sld_free(a->name);
    sld_free(a->s);
    if (a->t) {
        tensor_clear(a->t);
        sld_free(a->t);
    }
    sld_free(a->floats);
    sld_free(a->ints);
    memset(a, 0, sizeof *a);
}

static sld_status parse_attr(cur *c, sld_onnx_attr *a, const char *ctx)
{
    vec fl = {0}, in = {0};
    int64_t type = 0, iv = 0;
    int seen = 0; /* the type implied by the last value field, for files without `type` */
    sld_status s = SLD_OK;
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        switch (f) {
        case 1:
            if (!(s = want_wt(c, f, wt, WT_LEN, ctx)))
                s = rd_string(c, &a->name, NULL, ctx);
            break;
        case 2:
            if (!(s = want_wt(c, f, wt, WT_I32, ctx)))
                s = rd_fixed(c, &a->f, 4, ctx);
            seen = SLD_ONNX_ATTR_FLOAT;
            break;
        case 3:
            s = rd_int64(c, f, wt, &iv, ctx);
            a->i = iv;
            seen = SLD_ONNX_ATTR_INT;
            break;
        case 4:
            if (!(s = want_wt(c, f, wt, WT_LEN, ctx)))
                s = rd_string(c, &a->s, &a->s_len, ctx);
            seen = SLD_ONNX_ATTR_STRING;
            break;
        case 5: {
            cur sub;
            if ((s = want_wt(c, f, wt, WT_LEN, ctx)) || (s = rd_len(c, &sub, ctx)))
                break;
            if (a->t) {
                tensor_clear(a->t);
            } else if (!(a->t = sld_calloc(1, sizeof *a->t))) {
                s = nomem(c, ctx);
                break;
            }
            s = parse_tensor(&sub, a->t, ctx);
            seen = SLD_ONNX_ATTR_TENSOR;
            break;
        }
        case 6: s = skip_field(c, wt, ctx); seen = SLD_ONNX_ATTR_GRAPH; break;
        case 7: s = rd_repeated(c, f, wt, 'f', &fl, ctx); seen = SLD_ONNX_ATTR_FLOATS; break;
        case 8: s = rd_repeated(c, f, wt, 'v', &in, ctx); seen = SLD_ONNX_ATTR_INTS; break;
        case 9: s = skip_field(c, wt, ctx); a->n_strings++; seen = SLD_ONNX_ATTR_STRINGS; break;
        case 10: s = skip_field(c, wt, ctx); a->n_tensors++; seen = SLD_ONNX_ATTR_TENSORS; break;
        case 11: s = skip_field(c, wt, ctx); a->n_graphs++; seen = SLD_ONNX_ATTR_GRAPHS; break;
        case 20: s = rd_int64(c, f, wt, &type, ctx); break;
        default: s = skip_field(c, wt, ctx); break;
        }
    }
    if (!s) {
        a->type = type ? (int)type : seen;
        if (!a->name)
            s = sld_err(c->err, SLD_ERR_FORMAT, "%s: %s: attribute without a name", c->file, ctx);
        else if (a->type == SLD_ONNX_ATTR_TENSOR && !a->t)
            s = sld_err(c->err, SLD_ERR_FORMAT, "%s: %s: attribute '%s' of type TENSOR has no tensor",
                        c->file, ctx, a->name);
    }
    a->floats = fl.v;
    a->n_floats = fl.n;
    a->ints = in.v;
    a->n_ints = in.n;
    return s;
}

/* ---- NodeProto ---------------------------------------------------------------- */

static void node_clear(sld_onnx_node *n)
{
    sld_free(n->name);
    sld_free(n->op_type);
    sld_free(n->domain);
    for (int i = 0; i < n->n_inputs; i++)
        sld_free(n->inputs[i]);
    for (int i = 0; i < n->n_outputs; i++)
        sld_free(n->outputs[i]);
    sld_free(n->inputs);
    sld_free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++)
        attr_clear(&n->attrs[i]);
    sld_free(n->attrs);
    memset(n, 0, sizeof *n);
}

/* Appends a string to a dynamic char* array. */
static sld_status push_string(cur *c, char ***arr, int *n, int *cap, const char *ctx)
{
    if (!grow((void **)arr, cap, *n, sizeof(char *)))
        return nomem(c, ctx);
    sld_status s = rd_string(c, &(*arr)[*n], NULL, ctx);
    if (!s)
        (*n)++;
    return s;
}

static sld_status ensure_str(cur *c, char **s, const char *ctx)
{
    if (*s)
        return SLD_OK;
    *s = sld_strdup("");
    return *s ? SLD_OK : nomem(c, ctx);
}

static sld_status parse_node(cur *c, sld_onnx_node *n, const char *ctx)
{
    int cap_in = 0, cap_out = 0, cap_attr = 0;
    sld_status s = SLD_OK;
    char actx[128];
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        if ((f >= 1 && f <= 5) || f == 7)
            if ((s = want_wt(c, f, wt, WT_LEN, ctx)))
                break;
        switch (f) {
        case 1: s = push_string(c, &n->inputs, &n->n_inputs, &cap_in, ctx); break;
        case 2: s = push_string(c, &n->outputs, &n->n_outputs, &cap_out, ctx); break;
        case 3: s = rd_string(c, &n->name, NULL, ctx); break;
        case 4: s = rd_string(c, &n->op_type, NULL, ctx); break;
        case 7: s = rd_string(c, &n->domain, NULL, ctx); break;
        case 5: {
            cur sub;
            if ((s = rd_len(c, &sub, ctx)))
                break;
            if (!grow((void **)&n->attrs, &cap_attr, n->n_attrs, sizeof *n->attrs)) {
                s = nomem(c, ctx);
                break;
            }
            snprintf(actx, sizeof actx, "%s.attribute[%d]", ctx, n->n_attrs);
            s = parse_attr(&sub, &n->attrs[n->n_attrs], actx);
            n->n_attrs++; /* counted even on failure so node_clear frees it */
            break;
        }
        default: s = skip_field(c, wt, ctx); break;
        }
    }
    if (!s)
        s = ensure_str(c, &n->name, ctx);
    if (!s)
        s = ensure_str(c, &n->domain, ctx);
    if (!s && !n->op_type)
        s = sld_err(c->err, SLD_ERR_FORMAT, "%s: %s ('%s'): node without op_type", c->file, ctx,
                    n->name);
    return s;
}

/* ---- ValueInfoProto ------------------------------------------------------------ */

static sld_status parse_shape(cur *c, sld_onnx_value_info *v, const char *ctx)
{
    sld_status s = SLD_OK;
    v->ndim = 0;
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        if (f != 1) {
            s = skip_field(c, wt, ctx);
            continue;
        }
        cur dim;
        if ((s = want_wt(c, f, wt, WT_LEN, ctx)) || (s = rd_len(c, &dim, ctx)))
            break;
        if (v->ndim >= SLD_ONNX_MAX_DIMS)
            return sld_err(c->err, SLD_ERR_UNSUPPORTED, "%s: %s ('%s'): more than %d dims", c->file,
                           ctx, v->name ? v->name : "?", SLD_ONNX_MAX_DIMS);
        int64_t d = -1;
        while (!s && dim.p < dim.end) {
            uint32_t g;
            int gw;
            if ((s = rd_tag(&dim, &g, &gw, ctx)))
                break;
            if (g == 1)
                s = rd_int64(&dim, g, gw, &d, ctx);
            else
                s = skip_field(&dim, gw, ctx);
        }
        v->dims[v->ndim++] = d;
    }
    return s;
}

static sld_status parse_value_info(cur *c, sld_onnx_value_info *v, const char *ctx)
{
    sld_status s = SLD_OK;
    v->ndim = -1;
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        if (f == 1) {
            if (!(s = want_wt(c, f, wt, WT_LEN, ctx)))
                s = rd_string(c, &v->name, NULL, ctx);
            continue;
        }
        if (f != 2) {
            s = skip_field(c, wt, ctx);
            continue;
        }
        cur type;
        if ((s = want_wt(c, f, wt, WT_LEN, ctx)) || (s = rd_len(c, &type, ctx)))
            break;
        while (!s && type.p < type.end) { /* TypeProto: only tensor_type (1) */
            uint32_t g;
            int gw;
            cur tt;
            if ((s = rd_tag(&type, &g, &gw, ctx)))
                break;
            if (g != 1) {
                s = skip_field(&type, gw, ctx);
                continue;
            }
            if ((s = want_wt(&type, g, gw, WT_LEN, ctx)) || (s = rd_len(&type, &tt, ctx)))
                break;
            while (!s && tt.p < tt.end) { /* TypeProto.Tensor */
                uint32_t h;
                int hw;
                if ((s = rd_tag(&tt, &h, &hw, ctx)))
                    break;
                if (h == 1) {
                    int64_t et;
                    if (!(s = rd_int64(&tt, h, hw, &et, ctx)))
                        v->elem_type = (int)et;
                } else if (h == 2) {
                    cur sh;
                    if (!(s = want_wt(&tt, h, hw, WT_LEN, ctx)) && !(s = rd_len(&tt, &sh, ctx)))
                        s = parse_shape(&sh, v, ctx);
                } else {
                    s = skip_field(&tt, hw, ctx);
                }
            }
        }
    }
    if (!s)
        s = ensure_str(c, &v->name, ctx);
    return s;
}

/* ---- GraphProto and ModelProto ----------------------------------------------------- */

typedef struct {
    int nodes, inits, inputs, outputs, meta;
} caps;

static sld_status parse_graph(cur *c, sld_onnx_model *m, caps *cp)
{
    sld_status s = SLD_OK;
    char ctx[96];
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, "graph")))
            break;
        cur sub;
        switch (f) {
        case 1:
            if ((s = want_wt(c, f, wt, WT_LEN, "graph.node")) || (s = rd_len(c, &sub, "graph.node")))
                break;
            if (!grow((void **)&m->nodes, &cp->nodes, m->n_nodes, sizeof *m->nodes)) {
                s = nomem(c, "graph.node");
                break;
            }
            snprintf(ctx, sizeof ctx, "graph.node[%d]", m->n_nodes);
            s = parse_node(&sub, &m->nodes[m->n_nodes++], ctx);
            break;
        case 2:
            if (!(s = want_wt(c, f, wt, WT_LEN, "graph.name")))
                s = rd_string(c, &m->graph_name, NULL, "graph.name");
            break;
        case 5:
            if ((s = want_wt(c, f, wt, WT_LEN, "graph.initializer")) ||
                (s = rd_len(c, &sub, "graph.initializer")))
                break;
            if (!grow((void **)&m->inits, &cp->inits, m->n_inits, sizeof *m->inits)) {
                s = nomem(c, "graph.initializer");
                break;
            }
            snprintf(ctx, sizeof ctx, "graph.initializer[%d]", m->n_inits);
            s = parse_tensor(&sub, &m->inits[m->n_inits++], ctx);
            if (!s && !m->inits[m->n_inits - 1].name)
                s = sld_err(c->err, SLD_ERR_FORMAT, "%s: %s: initializer without a name", c->file, ctx);
            break;
        case 11:
        case 12: {
            bool in = f == 11;
            const char *what = in ? "graph.input" : "graph.output";
            if ((s = want_wt(c, f, wt, WT_LEN, what)) || (s = rd_len(c, &sub, what)))
                break;
            sld_onnx_value_info **arr = in ? &m->inputs : &m->outputs;
            int *n = in ? &m->n_inputs : &m->n_outputs;
            if (!grow((void **)arr, in ? &cp->inputs : &cp->outputs, *n, sizeof **arr)) {
                s = nomem(c, what);
                break;
            }
            snprintf(ctx, sizeof ctx, "%s[%d]", what, *n);
            s = parse_value_info(&sub, &(*arr)[(*n)++], ctx);
            break;
        }
        case 15:
            s = sld_err(c->err, SLD_ERR_UNSUPPORTED, "%s: graph.sparse_initializer is not supported",
                        c->file);
            break;
        default: s = skip_field(c, wt, "graph"); break;
        }
    }
    return s;
}

static sld_status parse_opset(cur *c, sld_onnx_model *m)
{
    const char *ctx = "opset_import";
    char *domain = NULL;
    int64_t version = 0;
    sld_status s = SLD_OK;
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        if (f == 1) {
            if (!(s = want_wt(c, f, wt, WT_LEN, ctx)))
                s = rd_string(c, &domain, NULL, ctx);
        } else if (f == 2) {
            s = rd_int64(c, f, wt, &version, ctx);
        } else {
            s = skip_field(c, wt, ctx);
        }
    }
    if (!s && (!domain || !*domain || !strcmp(domain, "ai.onnx")))
        m->opset = version;
    sld_free(domain);
    return s;
}

static sld_status parse_meta(cur *c, sld_onnx_model *m, caps *cp)
{
    const char *ctx = "metadata_props";
    if (!grow((void **)&m->meta, &cp->meta, m->n_meta, sizeof *m->meta))
        return nomem(c, ctx);
    sld_onnx_meta *e = &m->meta[m->n_meta++];
    sld_status s = SLD_OK;
    while (!s && c->p < c->end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(c, &f, &wt, ctx)))
            break;
        if (f == 1 || f == 2) {
            if (!(s = want_wt(c, f, wt, WT_LEN, ctx)))
                s = rd_string(c, f == 1 ? &e->key : &e->value, NULL, ctx);
        } else {
            s = skip_field(c, wt, ctx);
        }
    }
    if (!s)
        s = ensure_str(c, &e->key, ctx);
    if (!s)
        s = ensure_str(c, &e->value, ctx);
    return s;
}

void sld_onnx_free(sld_onnx_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_nodes; i++)
        node_clear(&m->nodes[i]);
    for (int i = 0; i < m->n_inits; i++)
        tensor_clear(&m->inits[i]);
    for (int i = 0; i < m->n_inputs; i++)
        sld_free(m->inputs[i].name);
    for (int i = 0; i < m->n_outputs; i++)
        sld_free(m->outputs[i].name);
    for (int i = 0; i < m->n_meta; i++) {
        sld_free(m->meta[i].key);
        sld_free(m->meta[i].value);
    }
    sld_free(m->nodes);
    sld_free(m->inits);
    sld_free(m->inputs);
    sld_free(m->outputs);
    sld_free(m->meta);
    sld_free(m->producer_name);
    sld_free(m->producer_version);
    sld_free(m->graph_name);
    sld_free(m);
}

sld_status sld_onnx_parse(const uint8_t *buf, size_t len, const char *name, sld_onnx_model **out,
                          sld_error *err)
{
    *out = NULL;
    if (!name)
        name = "onnx";
    if (!buf && len)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: NULL buffer", name);
    sld_onnx_model *m = sld_calloc(1, sizeof *m);
    if (!m)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
    cur c = {buf, buf, buf + len, name, err};
    caps cp = {0};
    bool has_graph = false;
    sld_status s = SLD_OK;
    while (!s && c.p < c.end) {
        uint32_t f;
        int wt;
        if ((s = rd_tag(&c, &f, &wt, "model")))
            break;
        cur sub;
        switch (f) {
        case 1: s = rd_int64(&c, f, wt, &m->ir_version, "model.ir_version"); break;
        case 2:
        case 3:
            if (!(s = want_wt(&c, f, wt, WT_LEN, "model.producer")))
                s = rd_string(&c, f == 2 ? &m->producer_name : &m->producer_version, NULL,
                              "model.producer");
            break;
        case 7:
            if ((s = want_wt(&c, f, wt, WT_LEN, "model.graph")) || (s = rd_len(&c, &sub, "model.graph")))
                break;
            if (has_graph) {
                s = sld_err(err, SLD_ERR_FORMAT, "%s: model.graph appears twice", name);
                break;
            }
            has_graph = true;
            s = parse_graph(&sub, m, &cp);
            break;
        case 8:
            if (!(s = want_wt(&c, f, wt, WT_LEN, "model.opset_import")) &&
                !(s = rd_len(&c, &sub, "model.opset_import")))
                s = parse_opset(&sub, m);
            break;
        case 14:
            if (!(s = want_wt(&c, f, wt, WT_LEN, "model.metadata_props")) &&
                !(s = rd_len(&c, &sub, "model.metadata_props")))
                s = parse_meta(&sub, m, &cp);
            break;
        default: s = skip_field(&c, wt, "model"); break;
        }
    }
    if (!s && !has_graph)
        s = sld_err(err, SLD_ERR_FORMAT, "%s: not an ONNX model: no graph (field 7) in %zu bytes",
                    name, len);
    if (!s && !m->opset)
        s = sld_err(err, SLD_ERR_FORMAT, "%s: model has no opset_import for the default domain", name);
    if (s) {
        sld_onnx_free(m);
        return s;
    }
    *out = m;
    return SLD_OK;
}

sld_status sld_onnx_load(const char *path, sld_onnx_model **out, sld_error *err)
{
    char *buf;
    size_t len;
    *out = NULL;
    sld_status s = sld_file_read(path, (size_t)1 << 31, &buf, &len, err);
    if (s)
        return s;
    s = sld_onnx_parse((const uint8_t *)buf, len, path, out, err);
    sld_free(buf);
    return s;
}

const sld_onnx_attr *sld_onnx_node_attr(const sld_onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && !strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}
