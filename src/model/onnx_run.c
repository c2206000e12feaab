/*
 * onnx_run.c — a small ONNX graph interpreter: the ops a YOLOv8 export uses
 * (Conv, Sigmoid, Add/Sub/Mul/Div, Concat, Split, MaxPool, Resize, Reshape,
 * Transpose, Softmax, Slice, Shape, Gather, Identity, Constant), float32 and
 * int64 tensors. Written from the ONNX operator specification.
 *
 * Values are dense tensors (<= 8 dims). At build every node is bound to value
 * ids (nodes must come in topological order, every name defined once),
 * Constant nodes and initializers become constant values, attributes are
 * parsed and checked (unknown op, domain or attribute -> SLD_ERR_UNSUPPORTED
 * naming it), and a "dry run" propagates shapes from the fixed input shape to
 * the output. In the dry run a node whose inputs all have data is evaluated
 * (so int64 shape arithmetic like the exporter's Shape->Gather->Div->Slice
 * chain is folded and checked), other nodes only get shapes. A real run
 * allocates each value when produced and frees it after its last reader.
 * Conv weights must be constants: the conv kernels cache reordered weights by
 * pointer, and constants never move.
 */
#include "model/onnx_run.h"

#include "ops/ops.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAXD SLD_ONNX_MAX_DIMS
#define MAX_NUMEL ((size_t)1 << 26) /* per tensor; YOLOv8n at 320 peaks at 410k */

/* ---- values and steps ------------------------------------------------------ */

typedef struct {
    int dtype; /* SLD_ONNX_FLOAT or SLD_ONNX_INT64 */
    int ndim;
    int64_t d[MAXD];
    size_t n;
    void *data; /* NULL: shape only (dry run) */
    bool owned;
} tval;

typedef enum {
    OP_CONV, OP_SIGMOID, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_CONCAT, OP_SPLIT, OP_MAXPOOL,
    OP_RESIZE, OP_RESHAPE, OP_TRANSPOSE, OP_SOFTMAX, OP_SLICE, OP_SHAPE, OP_GATHER, OP_IDENTITY,
    OP_CONSTANT, OP_COUNT
} op_kind;

static const char *const op_names[OP_COUNT] = {
    "Conv", "Sigmoid", "Add", "Sub", "Mul", "Div", "Concat", "Split", "MaxPool", "Resize",
    "Reshape", "Transpose", "Softmax", "Slice", "Shape", "Gather", "Identity", "Constant"};

enum { CT_ASYMMETRIC, CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS };
enum { NM_FLOOR, NM_CEIL, NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL };

typedef struct {
    op_kind op;
    const sld_onnx_node *node;
    int n_in, n_out;
    int *in;  /* value ids, -1 = omitted optional input */
    int *out; /* value ids, -1 = omitted optional output */
    int axis;
    int64_t ints[MAXD]; /* Transpose perm, Conv/MaxPool kernel_shape */
    int n_ints;
    int stride[2], pads[4]; /* t, l, b, r */
    const sld_onnx_attr *split; /* Split-11 `split` attribute */
    int64_t start, end;     /* Shape-15 */
    int coord, nearest, allowzero;
    int legacy; /* Softmax before opset 13 */
} step;

struct sld_onnx_run {
    sld_onnx_model *m; /* owns the names, initializer and Constant data */
    int n_vals;
    tval *consts;     /* [n_vals]; data != NULL for constants */
    const char **names; /* [n_vals] */
    step *steps;
    int n_steps;
    int *last_use;    /* [n_vals]: last step reading it; INT_MAX for the output */
    int in_id, out_id;
    int opset;
    int64_t in_shape[MAXD]; /* the input's fixed shape */
    int in_ndim;
    tval out_info;          /* the output's dtype and shape (no data) */
};

/* ---- small helpers ------------------------------------------------------------ */

static size_t dt_size(int dtype) { return dtype == SLD_ONNX_INT64 ? 8 : 4; }

static sld_status node_err(sld_error *err, sld_status code, const step *s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static sld_status node_err(sld_error *err, sld_status code, const step *s, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sld_err(err, code, "onnx node '%s' (%s): %s", s->node->name, s->node->op_type, msg);
}

static void shape_str(const tval *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)t->d[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static void tval_release(tval *t)
{
    if (t->owned)
        sld_free(t->data);
    t->data = NULL;
    t->owned = false;
}

/* Sets out's shape and, when compute, allocates its data. */
static sld_status out_alloc(tval *o, int dtype, int ndim, const int64_t *d, bool compute,
                            const step *s, sld_error *err)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (d[i] < 0 || !sld_mul_ok(n, (size_t)d[i], &n) || n > MAX_NUMEL)
            return node_err(err, SLD_ERR_SHAPE, s, "output dimension %d (%lld) invalid or too large",
                            i, (long long)d[i]);
    }
    o->dtype = dtype;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        o->d[i] = d[i];
    o->n = n;
    o->data = NULL;
    o->owned = false;
    if (compute) {
        o->data = sld_malloc_aligned(n * dt_size(dtype) + 1);
        if (!o->data)
            return node_err(err, SLD_ERR_NOMEM, s, "out of memory for %zu values", n);
        o->owned = true;
    }
    return SLD_OK;
}

static int norm_axis(int64_t axis, int ndim) { return (int)(axis < 0 ? axis + ndim : axis); }

static sld_status want_dtype(const tval *t, int dtype, const char *what, const step *s,
                             sld_error *err)
{
    if (t->dtype == dtype)
        return SLD_OK;
    return node_err(err, SLD_ERR_SHAPE, s, "%s is %s, expected %s", what,
                    sld_onnx_dtype_name(t->dtype), sld_onnx_dtype_name(dtype));
}

/* Reads a 1-D (or scalar) int64 tensor with data into v (at most cap values). */
static sld_status read_ints(const tval *t, int64_t *v, int cap, int *n, const char *what,
                            const step *s, sld_error *err)
{
    if (t->dtype != SLD_ONNX_INT64 || t->ndim > 1)
        return node_err(err, SLD_ERR_SHAPE, s, "%s must be a 1-D int64 tensor", what);
    if (!t->data)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "%s must be known before the run (a constant)",
                        what);
    if (t->n > (size_t)cap)
        return node_err(err, SLD_ERR_SHAPE, s, "%s has %zu values, at most %d", what, t->n, cap);
    memcpy(v, t->data, t->n * sizeof *v);
    *n = (int)t->n;
    return SLD_OK;
}

/* ---- kernels (each: shapes first, data only when compute) -------------------------- */

static sld_status k_conv(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    tval *x = in[0], *w = in[1], *b = s->n_in > 2 ? in[2] : NULL;
    sld_status st;
    if ((st = want_dtype(x, SLD_ONNX_FLOAT, "input", s, err)) ||
        (st = want_dtype(w, SLD_ONNX_FLOAT, "weight", s, err)))
        return st;
    if (x->ndim != 4 || w->ndim != 4 || w->d[1] != x->d[1])
        return node_err(err, SLD_ERR_SHAPE, s,
                        "input [N,C,H,W] and weight [M,C,kh,kw] disagree (C %lld vs %lld or not 4-D)",
                        (long long)(x->ndim == 4 ? x->d[1] : -1), (long long)(w->ndim == 4 ? w->d[1] : -1));
    for (int i = 0; i < 4; i++)
        if (x->d[i] < 1 || w->d[i] < 1 || x->d[i] > (int64_t)MAX_NUMEL || w->d[i] > (int64_t)MAX_NUMEL)
            return node_err(err, SLD_ERR_SHAPE, s, "empty or oversized input or weight");
    if (s->n_ints && (s->ints[0] != w->d[2] || s->ints[1] != w->d[3]))
        return node_err(err, SLD_ERR_SHAPE, s, "kernel_shape [%lld,%lld] but weight is %lldx%lld",
                        (long long)s->ints[0], (long long)s->ints[1], (long long)w->d[2],
                        (long long)w->d[3]);
    if (b && (b->dtype != SLD_ONNX_FLOAT || b->ndim != 1 || b->d[0] != w->d[0]))
        return node_err(err, SLD_ERR_SHAPE, s, "bias must be float [%lld]", (long long)w->d[0]);
    sld_conv2d_desc d = {(int)x->d[0], (int)x->d[1], (int)x->d[2], (int)x->d[3], (int)w->d[0],
                         (int)w->d[2], (int)w->d[3], s->stride[0], s->pads[0], s->pads[1],
                         s->pads[2], s->pads[3]};
    int64_t Ho = (x->d[2] + s->pads[0] + s->pads[2] - w->d[2]);
    int64_t Wo = (x->d[3] + s->pads[1] + s->pads[3] - w->d[3]);
    if (Ho < 0 || Wo < 0)
        return node_err(err, SLD_ERR_SHAPE, s, "kernel larger than the padded input");
    int64_t od[4] = {x->d[0], w->d[0], Ho / s->stride[0] + 1, Wo / s->stride[1] + 1};
    if ((st = out_alloc(out[0], SLD_ONNX_FLOAT, 4, od, compute, s, err)))
        return st;
    if (compute)
        sld_conv2d(&d, x->data, w->data, b ? b->data : NULL, out[0]->data);
    return SLD_OK;
}

static sld_status k_sigmoid(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    sld_status st = want_dtype(in[0], SLD_ONNX_FLOAT, "input", s, err);
    if (!st)
        st = out_alloc(out[0], SLD_ONNX_FLOAT, in[0]->ndim, in[0]->d, compute, s, err);
    if (st || !compute)
        return st;
    const float *x = in[0]->data;
    float *y = out[0]->data;
    for (size_t i = 0; i < in[0]->n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
    return SLD_OK;
}

/* Binary element-wise ops with numpy (multidirectional) broadcasting. Integer
 * arithmetic wraps (unsigned) rather than invoking undefined behaviour. */
static sld_status k_binary(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *a = in[0], *b = in[1];
    if (a->dtype != b->dtype)
        return node_err(err, SLD_ERR_SHAPE, s, "operands are %s and %s",
                        sld_onnx_dtype_name(a->dtype), sld_onnx_dtype_name(b->dtype));
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t od[MAXD], sa[MAXD], sb[MAXD];
    int64_t stra = 1, strb = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char x1[96], x2[96];
            shape_str(a, x1, sizeof x1);
            shape_str(b, x2, sizeof x2);
            return node_err(err, SLD_ERR_SHAPE, s, "cannot broadcast %s with %s", x1, x2);
        }
        od[i] = da == 1 ? db : da;
        sa[i] = da == 1 ? 0 : stra;
        sb[i] = db == 1 ? 0 : strb;
        stra *= da;
        strb *= db;
    }
    sld_status st = out_alloc(out[0], a->dtype, nd, od, compute, s, err);
    if (st || !compute)
        return st;
    size_t n = out[0]->n;
    bool same = a->n == n && b->n == n;
    if (a->dtype == SLD_ONNX_FLOAT) {
        const float *x = a->data, *y = b->data;
        float *z = out[0]->data;
        if (same) {
            switch (s->op) {
            case OP_ADD: for (size_t i = 0; i < n; i++) z[i] = x[i] + y[i]; break;
            case OP_SUB: for (size_t i = 0; i < n; i++) z[i] = x[i] - y[i]; break;
            case OP_MUL: for (size_t i = 0; i < n; i++) z[i] = x[i] * y[i]; break;
            default: for (size_t i = 0; i < n; i++) z[i] = x[i] / y[i]; break;
            }
            return SLD_OK;
        }
    }
    int64_t idx[MAXD] = {0};
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < n; i++) {
        if (a->dtype == SLD_ONNX_FLOAT) {
            float x = ((const float *)a->data)[ia], y = ((const float *)b->data)[ib], z;
            switch (s->op) {
            case OP_ADD: z = x + y; break;
            case OP_SUB: z = x - y; break;
            case OP_MUL: z = x * y; break;
            default: z = x / y; break;
            }
            ((float *)out[0]->data)[i] = z;
        } else {
            int64_t x = ((const int64_t *)a->data)[ia], y = ((const int64_t *)b->data)[ib], z;
            switch (s->op) {
            case OP_ADD: z = (int64_t)((uint64_t)x + (uint64_t)y); break;
            case OP_SUB: z = (int64_t)((uint64_t)x - (uint64_t)y); break;
            case OP_MUL: z = (int64_t)((uint64_t)x * (uint64_t)y); break;
            default:
                if (y == 0 || (x == INT64_MIN && y == -1))
                    return node_err(err, SLD_ERR_SHAPE, s, "integer division %lld / %lld",
                                    (long long)x, (long long)y);
                z = x / y;
                break;
            }
            ((int64_t *)out[0]->data)[i] = z;
        }
        /* odometer over the output index, moving both input offsets */
        for (int k = nd - 1; k >= 0; k--) {
            ia += (size_t)sa[k];
            ib += (size_t)sb[k];
            if (++idx[k] < od[k])
                break;
            ia -= (size_t)(sa[k] * od[k]);
            ib -= (size_t)(sb[k] * od[k]);
            idx[k] = 0;
        }
    }
    return SLD_OK;
}

/* outer = product of dims before axis, inner = product after. */
static void split_dims(const tval *t, int axis, size_t *outer, size_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= (size_t)t->d[i];
    for (int i = axis + 1; i < t->ndim; i++)
        *inner *= (size_t)t->d[i];
}

static sld_status k_concat(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *a = in[0];
    int axis = norm_axis(s->axis, a->ndim);
    if (axis < 0 || axis >= a->ndim)
        return node_err(err, SLD_ERR_SHAPE, s, "axis %d out of range for %d dims", s->axis, a->ndim);
    int64_t od[MAXD];
    memcpy(od, a->d, sizeof od);
    od[axis] = 0;
    for (int i = 0; i < s->n_in; i++) {
        const tval *t = in[i];
        if (t->dtype != a->dtype || t->ndim != a->ndim)
            return node_err(err, SLD_ERR_SHAPE, s, "input %d has a different type or rank", i);
        for (int k = 0; k < a->ndim; k++)
            if (k != axis && t->d[k] != a->d[k]) {
                char x1[96], x2[96];
                shape_str(a, x1, sizeof x1);
                shape_str(t, x2, sizeof x2);
                return node_err(err, SLD_ERR_SHAPE, s, "input 0 %s and input %d %s differ off axis %d",
                                x1, i, x2, axis);
            }
        od[axis] += t->d[axis];
    }
    sld_status st = out_alloc(out[0], a->dtype, a->ndim, od, compute, s, err);
    if (st || !compute)
        return st;
    size_t outer, inner, es = dt_size(a->dtype);
    split_dims(out[0], axis, &outer, &inner);
    char *dst = out[0]->data;
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < s->n_in; i++) {
            size_t blk = (size_t)in[i]->d[axis] * inner * es;
            memcpy(dst, (const char *)in[i]->data + o * blk, blk);
            dst += blk;
        }
    return SLD_OK;
}

static sld_status k_split(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    int axis = norm_axis(s->axis, x->ndim);
    if (axis < 0 || axis >= x->ndim)
        return node_err(err, SLD_ERR_SHAPE, s, "axis %d out of range for %d dims", s->axis, x->ndim);
    int64_t sizes[64];
    int ns = 0;
    sld_status st;
    if (s->n_out > 64)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "%d outputs, at most 64", s->n_out);
    if (s->n_in > 1 && in[1]) {
        if ((st = read_ints(in[1], sizes, 64, &ns, "split sizes", s, err)))
            return st;
    } else if (s->split) {
        ns = s->split->n_ints;
        if (ns > 64)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "%d split sizes, at most 64", ns);
        memcpy(sizes, s->split->ints, (size_t)ns * sizeof *sizes);
    } else { /* equal parts, the last one smaller (Split-18 num_outputs) */
        ns = s->n_out;
        int64_t part = (x->d[axis] + ns - 1) / ns;
        for (int i = 0; i < ns; i++) {
            int64_t left = x->d[axis] - part * i;
            sizes[i] = left < part ? (left < 0 ? 0 : left) : part;
        }
    }
    if (ns != s->n_out)
        return node_err(err, SLD_ERR_SHAPE, s, "%d split sizes for %d outputs", ns, s->n_out);
    int64_t total = 0;
    for (int i = 0; i < ns; i++) {
        if (sizes[i] < 0 || sizes[i] > x->d[axis])
            return node_err(err, SLD_ERR_SHAPE, s, "split size %lld invalid", (long long)sizes[i]);
        total += sizes[i];
    }
    if (total != x->d[axis])
        return node_err(err, SLD_ERR_SHAPE, s, "split sizes sum to %lld, axis has %lld",
                        (long long)total, (long long)x->d[axis]);
    size_t outer, inner, es = dt_size(x->dtype);
    split_dims(x, axis, &outer, &inner);
    int64_t start = 0;
    for (int i = 0; i < ns; i++) {
        int64_t od[MAXD];
        memcpy(od, x->d, sizeof od);
        od[axis] = sizes[i];
        if (!out[i]) {
            start += sizes[i];
            continue;
        }
        if ((st = out_alloc(out[i], x->dtype, x->ndim, od, compute, s, err)))
            return st;
        if (compute) {
            size_t blk = (size_t)sizes[i] * inner * es, row = (size_t)x->d[axis] * inner * es;
            for (size_t o = 0; o < outer; o++)
                memcpy((char *)out[i]->data + o * blk,
                       (const char *)x->data + o * row + (size_t)start * inner * es, blk);
        }
        start += sizes[i];
    }
    return SLD_OK;
}

static sld_status k_maxpool(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    sld_status st = want_dtype(x, SLD_ONNX_FLOAT, "input", s, err);
    if (st)
        return st;
    if (x->ndim != 4)
        return node_err(err, SLD_ERR_SHAPE, s, "input must be 4-D");
    int kh = (int)s->ints[0], kw = (int)s->ints[1];
    int64_t H = x->d[2], W = x->d[3];
    int64_t Ho = (H + s->pads[0] + s->pads[2] - kh), Wo = (W + s->pads[1] + s->pads[3] - kw);
    if (Ho < 0 || Wo < 0)
        return node_err(err, SLD_ERR_SHAPE, s, "kernel larger than the padded input");
    Ho = Ho / s->stride[0] + 1;
    Wo = Wo / s->stride[1] + 1;
    int64_t od[4] = {x->d[0], x->d[1], Ho, Wo};
    if ((st = out_alloc(out[0], SLD_ONNX_FLOAT, 4, od, compute, s, err)) || !compute)
        return st;
    const float *xp = x->data;
    float *y = out[0]->data;
    size_t planes = (size_t)(x->d[0] * x->d[1]);
    for (size_t p = 0; p < planes; p++) {
        const float *src = xp + p * (size_t)(H * W);
        float *dst = y + p * (size_t)(Ho * Wo);
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                float m = -INFINITY;
                int64_t y0 = oy * s->stride[0] - s->pads[0], x0 = ox * s->stride[1] - s->pads[1];
                for (int64_t ky = 0; ky < kh; ky++) {
                    int64_t yy = y0 + ky;
                    if (yy < 0 || yy >= H)
                        continue;
                    for (int64_t kx = 0; kx < kw; kx++) {
                        int64_t xx = x0 + kx;
                        if (xx >= 0 && xx < W && src[yy * W + xx] > m)
                            m = src[yy * W + xx];
                    }
                }
                dst[oy * Wo + ox] = m;
            }
    }
    return SLD_OK;
}

/* Source index of output coordinate o for nearest resize (ONNX Resize). */
static int64_t nearest_src(const step *s, int64_t o, int64_t in_len, int64_t out_len, double scale)
{
    double x;
    switch (s->coord) {
    case CT_HALF_PIXEL: x = ((double)o + 0.5) / scale - 0.5; break;
    case CT_PYTORCH_HALF_PIXEL: x = out_len > 1 ? ((double)o + 0.5) / scale - 0.5 : 0.0; break;
    case CT_ALIGN_CORNERS:
        x = out_len > 1 ? (double)o * (double)(in_len - 1) / (double)(out_len - 1) : 0.0;
        break;
    default: x = (double)o / scale; break;
    }
    double r;
    switch (s->nearest) {
    case NM_CEIL: r = ceil(x); break;
    case NM_ROUND_PREFER_FLOOR: r = (x - floor(x) == 0.5) ? floor(x) : round(x); break;
    case NM_ROUND_PREFER_CEIL: r = (x - floor(x) == 0.5) ? ceil(x) : round(x); break;
    default: r = floor(x); break;
    }
    if (r < 0)
        r = 0;
    if (r > (double)(in_len - 1))
        r = (double)(in_len - 1);
    return (int64_t)r;
}

static sld_status k_resize(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    sld_status st = want_dtype(x, SLD_ONNX_FLOAT, "input", s, err);
    if (st)
        return st;
    if (x->ndim != 4 || x->n == 0)
        return node_err(err, SLD_ERR_SHAPE, s, "input must be 4-D and not empty");
    /* Resize-10: (X, scales); Resize-11+: (X, roi, scales, sizes) */
    const tval *scales = s->n_in == 2 ? in[1] : s->n_in > 2 ? in[2] : NULL;
    const tval *sizes = s->n_in > 3 ? in[3] : NULL;
    double sc[4];
    int64_t od[4];
    if (scales && scales->n > 0) {
        if (scales->dtype != SLD_ONNX_FLOAT || scales->n != 4 || !scales->data)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "scales must be 4 constant floats");
        for (int i = 0; i < 4; i++) {
            sc[i] = ((const float *)scales->data)[i];
            double o = floor((double)x->d[i] * sc[i]);
            if (!(sc[i] > 0) || !(o >= 1 && o <= (double)MAX_NUMEL))
                return node_err(err, SLD_ERR_SHAPE, s, "scale %g invalid for dimension %d", sc[i], i);
            od[i] = (int64_t)o;
        }
    } else if (sizes) {
        int ns;
        if ((st = read_ints(sizes, od, 4, &ns, "sizes", s, err)))
            return st;
        if (ns != 4)
            return node_err(err, SLD_ERR_SHAPE, s, "sizes must have 4 values");
        for (int i = 0; i < 4; i++) {
            if (od[i] < 1)
                return node_err(err, SLD_ERR_SHAPE, s, "size %lld invalid", (long long)od[i]);
            sc[i] = (double)od[i] / (double)x->d[i];
        }
    } else {
        return node_err(err, SLD_ERR_SHAPE, s, "neither scales nor sizes given");
    }
    if ((st = out_alloc(out[0], SLD_ONNX_FLOAT, 4, od, compute, s, err)) || !compute)
        return st;
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += (size_t)od[i];
    int64_t *map = sld_malloc(total * sizeof *map);
    if (!map)
        return node_err(err, SLD_ERR_NOMEM, s, "out of memory");
    int64_t *m[4] = {map, map + od[0], map + od[0] + od[1], map + od[0] + od[1] + od[2]};
    for (int i = 0; i < 4; i++)
        for (int64_t o = 0; o < od[i]; o++)
            m[i][o] = nearest_src(s, o, x->d[i], od[i], sc[i]);
    const float *xp = x->data;
    float *y = out[0]->data;
    for (int64_t a = 0; a < od[0]; a++)
        for (int64_t b = 0; b < od[1]; b++) {
            const float *pl = xp + (size_t)((m[0][a] * x->d[1] + m[1][b]) * x->d[2] * x->d[3]);
            for (int64_t c = 0; c < od[2]; c++) {
                const float *row = pl + m[2][c] * x->d[3];
                for (int64_t d = 0; d < od[3]; d++)
                    *y++ = row[m[3][d]];
            }
        }
    sld_free(map);
    return SLD_OK;
}

static sld_status copy_data(tval *o, const tval *x, bool compute)
{
    if (compute)
        memcpy(o->data, x->data, x->n * dt_size(x->dtype));
    return SLD_OK;
}

static sld_status k_reshape(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    int64_t sh[MAXD];
    int ns;
    sld_status st = read_ints(in[1], sh, MAXD, &ns, "shape", s, err);
    if (st)
        return st;
    int infer = -1;
    size_t known = 1;
    for (int i = 0; i < ns; i++) {
        if (sh[i] == 0 && !s->allowzero) {
            if (i >= x->ndim)
                return node_err(err, SLD_ERR_SHAPE, s, "shape[%d] = 0 copies a missing dim", i);
            sh[i] = x->d[i];
        }
        if (sh[i] == -1) {
            if (infer >= 0)
                return node_err(err, SLD_ERR_SHAPE, s, "more than one -1 in shape");
            infer = i;
            continue;
        }
        if (sh[i] < 0 || !sld_mul_ok(known, (size_t)sh[i], &known) || known > MAX_NUMEL)
            return node_err(err, SLD_ERR_SHAPE, s, "bad shape value %lld", (long long)sh[i]);
    }
    if (infer >= 0) {
        if (known == 0 || x->n % known)
            return node_err(err, SLD_ERR_SHAPE, s, "cannot infer -1: %zu values over %zu", x->n, known);
        sh[infer] = (int64_t)(x->n / known);
        known = x->n;
    }
    if (known != x->n)
        return node_err(err, SLD_ERR_SHAPE, s, "shape holds %zu values, input has %zu", known, x->n);
    if ((st = out_alloc(out[0], x->dtype, ns, sh, compute, s, err)))
        return st;
    return copy_data(out[0], x, compute);
}

static sld_status k_identity(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    sld_status st = out_alloc(out[0], in[0]->dtype, in[0]->ndim, in[0]->d, compute, s, err);
    return st ? st : copy_data(out[0], in[0], compute);
}

static sld_status k_transpose(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    int nd = x->ndim;
    int64_t perm[MAXD], od[MAXD], istr[MAXD], ps[MAXD];
    if (s->n_ints) {
        if (s->n_ints != nd)
            return node_err(err, SLD_ERR_SHAPE, s, "perm has %d entries for %d dims", s->n_ints, nd);
        memcpy(perm, s->ints, sizeof perm);
    } else {
        for (int i = 0; i < nd; i++)
            perm[i] = nd - 1 - i;
    }
    int seen = 0;
    for (int i = 0; i < nd; i++) {
        if (perm[i] < 0 || perm[i] >= nd || (seen >> perm[i]) & 1)
            return node_err(err, SLD_ERR_SHAPE, s, "perm is not a permutation of 0..%d", nd - 1);
        seen |= 1 << perm[i];
    }
    int64_t str = 1;
    for (int i = nd - 1; i >= 0; i--) {
        istr[i] = str;
        str *= x->d[i];
    }
    for (int i = 0; i < nd; i++) {
        od[i] = x->d[perm[i]];
        ps[i] = istr[perm[i]];
    }
    sld_status st = out_alloc(out[0], x->dtype, nd, od, compute, s, err);
    if (st || !compute || out[0]->n == 0)
        return st;
    size_t es = dt_size(x->dtype);
    int64_t idx[MAXD] = {0};
    size_t src = 0;
    for (size_t i = 0; i < out[0]->n; i++) {
        memcpy((char *)out[0]->data + i * es, (const char *)x->data + src * es, es);
        for (int k = nd - 1; k >= 0; k--) {
            src += (size_t)ps[k];
            if (++idx[k] < od[k])
                break;
            src -= (size_t)(ps[k] * od[k]);
            idx[k] = 0;
        }
    }
    return SLD_OK;
}

static sld_status k_softmax(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    sld_status st = want_dtype(x, SLD_ONNX_FLOAT, "input", s, err);
    if (st)
        return st;
    int axis = norm_axis(s->axis, x->ndim);
    if (axis < 0 || axis >= x->ndim)
        return node_err(err, SLD_ERR_SHAPE, s, "axis %d out of range for %d dims", s->axis, x->ndim);
    if ((st = out_alloc(out[0], SLD_ONNX_FLOAT, x->ndim, x->d, compute, s, err)) || !compute)
        return st;
    size_t outer, inner, len;
    split_dims(x, axis, &outer, &inner);
    len = (size_t)x->d[axis];
    if (s->legacy) { /* opset < 13: softmax over the flattened dims axis.. */
        len *= inner;
        inner = 1;
    }
    const float *xp = x->data;
    float *y = out[0]->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *a = xp + o * len * inner + i;
            float *b = y + o * len * inner + i;
            float m = -INFINITY;
            for (size_t k = 0; k < len; k++)
                if (a[k * inner] > m)
                    m = a[k * inner];
            float sum = 0;
            for (size_t k = 0; k < len; k++) {
                b[k * inner] = expf(a[k * inner] - m);
                sum += b[k * inner];
            }
            for (size_t k = 0; k < len; k++)
                b[k * inner] /= sum;
        }
    return SLD_OK;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static sld_status k_slice(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0];
    int nd = x->ndim;
    int64_t st_[MAXD], en[MAXD], ax[MAXD], sp[MAXD];
    int ns, ne, na = 0, nstep = 0;
    sld_status st;
    if (s->n_in < 3)
        return node_err(err, SLD_ERR_SHAPE, s, "needs data, starts and ends");
    if ((st = read_ints(in[1], st_, MAXD, &ns, "starts", s, err)) ||
        (st = read_ints(in[2], en, MAXD, &ne, "ends", s, err)))
        return st;
    if (s->n_in > 3 && in[3] && (st = read_ints(in[3], ax, MAXD, &na, "axes", s, err)))
        return st;
    if (s->n_in > 4 && in[4] && (st = read_ints(in[4], sp, MAXD, &nstep, "steps", s, err)))
        return st;
    if (ne != ns || (na && na != ns) || (nstep && nstep != ns))
        return node_err(err, SLD_ERR_SHAPE, s, "starts/ends/axes/steps lengths differ");
    int64_t b[MAXD], stp[MAXD], od[MAXD];
    for (int i = 0; i < nd; i++) {
        b[i] = 0;
        stp[i] = 1;
        od[i] = x->d[i];
    }
    int used = 0;
    for (int i = 0; i < ns; i++) {
        int a = na ? norm_axis(ax[i], nd) : i;
        if (a < 0 || a >= nd || (used >> a) & 1)
            return node_err(err, SLD_ERR_SHAPE, s, "axis %lld invalid or repeated",
                            (long long)(na ? ax[i] : i));
        used |= 1 << a;
        int64_t dim = x->d[a], stv = nstep ? sp[i] : 1, lo = st_[i], hi = en[i];
        if (stv == 0)
            return node_err(err, SLD_ERR_SHAPE, s, "step 0");
        if (lo < 0)
            lo = lo < -dim ? 0 : lo + dim; /* avoids overflow on INT64_MIN */
        if (hi < 0)
            hi = hi < -dim ? -1 : hi + dim;
        int64_t cnt;
        if (stv > 0) {
            lo = clamp64(lo, 0, dim);
            hi = clamp64(hi, 0, dim);
            cnt = hi > lo ? (hi - lo + stv - 1) / stv : 0;
        } else {
            lo = clamp64(lo, 0, dim - 1);
            hi = clamp64(hi, -1, dim - 1);
            if (stv == INT64_MIN) /* -stv would overflow */
                cnt = lo > hi ? 1 : 0;
            else
                cnt = lo > hi ? (lo - hi + (-stv) - 1) / (-stv) : 0;
        }
        b[a] = lo;
        stp[a] = stv;
        od[a] = cnt;
    }
    if ((st = out_alloc(out[0], x->dtype, nd, od, compute, s, err)) || !compute || !out[0]->n)
        return st;
    int64_t istr[MAXD], str = 1;
    for (int i = nd - 1; i >= 0; i--) {
        istr[i] = str;
        str *= x->d[i];
    }
    size_t es = dt_size(x->dtype);
    int64_t idx[MAXD] = {0};
    int64_t src = 0;
    for (int i = 0; i < nd; i++)
        src += b[i] * istr[i];
    for (size_t i = 0; i < out[0]->n; i++) {
        memcpy((char *)out[0]->data + i * es, (const char *)x->data + (size_t)src * es, es);
        for (int k = nd - 1; k >= 0; k--) {
            src += stp[k] * istr[k];
            if (++idx[k] < od[k])
                break;
            src -= stp[k] * istr[k] * od[k];
            idx[k] = 0;
        }
    }
    return SLD_OK;
}

static sld_status k_shape(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    (void)compute; /* the shape is always known: evaluated in dry runs too */
    int nd = in[0]->ndim;
    int64_t a = s->start < 0 ? s->start + nd : s->start;
    int64_t b = s->end == INT64_MAX ? nd : s->end < 0 ? s->end + nd : s->end;
    a = clamp64(a, 0, nd);
    b = clamp64(b, 0, nd);
    int64_t od[1] = {b > a ? b - a : 0};
    sld_status st = out_alloc(out[0], SLD_ONNX_INT64, 1, od, true, s, err);
    if (!st)
        for (int64_t i = 0; i < od[0]; i++)
            ((int64_t *)out[0]->data)[i] = in[0]->d[a + i];
    return st;
}

static sld_status k_gather(const step *s, tval **in, tval **out, bool compute, sld_error *err)
{
    const tval *x = in[0], *ix = in[1];
    sld_status st = want_dtype(ix, SLD_ONNX_INT64, "indices", s, err);
    if (st)
        return st;
    int axis = norm_axis(s->axis, x->ndim);
    if (axis < 0 || axis >= x->ndim || x->ndim - 1 + ix->ndim > MAXD)
        return node_err(err, SLD_ERR_SHAPE, s, "axis %d invalid for %d dims", s->axis, x->ndim);
    int64_t od[MAXD];
    int nd = 0;
    for (int i = 0; i < axis; i++)
        od[nd++] = x->d[i];
    for (int i = 0; i < ix->ndim; i++)
        od[nd++] = ix->d[i];
    for (int i = axis + 1; i < x->ndim; i++)
        od[nd++] = x->d[i];
    if ((st = out_alloc(out[0], x->dtype, nd, od, compute, s, err)) || !compute)
        return st;
    size_t outer, inner, es = dt_size(x->dtype);
    split_dims(x, axis, &outer, &inner);
    int64_t dim = x->d[axis];
    const int64_t *iv = ix->data;
    char *dst = out[0]->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < ix->n; j++) {
            int64_t k = iv[j] < 0 ? iv[j] + dim : iv[j];
            if (k < 0 || k >= dim)
                return node_err(err, SLD_ERR_SHAPE, s, "index %lld out of range [0,%lld)",
                                (long long)iv[j], (long long)dim);
            memcpy(dst, (const char *)x->data + ((o * (size_t)dim + (size_t)k) * inner) * es,
                   inner * es);
            dst += inner * es;
        }
    return SLD_OK;
}

typedef sld_status (*kernel_fn)(const step *, tval **, tval **, bool, sld_error *);

static const kernel_fn kernels[OP_COUNT] = {
    k_conv,   k_sigmoid, k_binary,  k_binary,    k_binary,  k_binary, k_concat, k_split,  k_maxpool,
    k_resize, k_reshape, k_transpose, k_softmax, k_slice,   k_shape,  k_gather, k_identity, NULL};

/* ---- the interpreter ------------------------------------------------------------ */

/* Runs all steps over vals (prefilled with constants and the input). dry: see
 * the file comment. On return (success or not) every owned value except the
 * output has been released; the caller releases the output. */
static sld_status run_graph(const sld_onnx_run *nn, tval *vals, bool dry, sld_error *err)
{
    sld_status st = SLD_OK;
    tval *ins[64], *outs[64];
    for (int i = 0; i < nn->n_steps && !st; i++) {
        const step *s = &nn->steps[i];
        bool compute = true;
        for (int k = 0; k < s->n_in; k++) {
            ins[k] = s->in[k] >= 0 ? &vals[s->in[k]] : NULL;
            if (ins[k] && !ins[k]->data)
                compute = false;
        }
        for (int k = 0; k < s->n_out; k++)
            outs[k] = s->out[k] >= 0 ? &vals[s->out[k]] : NULL;
        if (!dry && !compute)
            st = node_err(err, SLD_ERR_INTERNAL, s, "an input has no data");
        else
            st = kernels[s->op](s, ins, outs, compute, err);
        for (int k = 0; k < s->n_in; k++) /* free what no later step reads */
            if (s->in[k] >= 0 && nn->last_use[s->in[k]] == i)
                tval_release(&vals[s->in[k]]);
        for (int k = 0; k < s->n_out; k++)
            if (s->out[k] >= 0 && nn->last_use[s->out[k]] < i + 1)
                tval_release(&vals[s->out[k]]);
    }
    if (st)
        for (int v = 0; v < nn->n_vals; v++)
            tval_release(&vals[v]);
    return st;
}

/* Fresh value table: constants (borrowed) and the input. */
static tval *vals_new(const sld_onnx_run *nn, const float *input)
{
    tval *v = sld_calloc((size_t)nn->n_vals, sizeof *v);
    if (!v)
        return NULL;
    memcpy(v, nn->consts, (size_t)nn->n_vals * sizeof *v);
    tval *x = &v[nn->in_id];
    x->dtype = SLD_ONNX_FLOAT;
    x->ndim = nn->in_ndim;
    x->n = 1;
    for (int k = 0; k < nn->in_ndim; k++) {
        x->d[k] = nn->in_shape[k];
        x->n *= (size_t)nn->in_shape[k];
    }
    x->data = (void *)input;
    x->owned = false;
    return v;
}

sld_status sld_onnx_run_forward(const sld_onnx_run *n, const float *input, float *out,
                               size_t out_n, sld_error *err)
{
    if (!n || !input || !out)
        return sld_err(err, SLD_ERR_INVALID_ARG, "onnx run: NULL argument");
    if (out_n != n->out_info.n)
        return sld_err(err, SLD_ERR_INVALID_ARG, "onnx run: output holds %zu values, not %zu",
                       n->out_info.n, out_n);
    tval *v = vals_new(n, input);
    if (!v)
        return sld_err(err, SLD_ERR_NOMEM, "onnx run: out of memory");
    sld_status st = run_graph(n, v, false, err);
    if (!st) {
        tval *o = &v[n->out_id];
        if (o->n != out_n || o->dtype != SLD_ONNX_FLOAT)
            st = sld_err(err, SLD_ERR_INTERNAL, "onnx run: output changed shape");
        else
            memcpy(out, o->data, o->n * sizeof(float));
        tval_release(o);
    }
    sld_free(v);
    return st;
}

/* ---- building the plan ------------------------------------------------------------- */

/* Open-addressing map from value name to id. */
typedef struct {
    const char **keys;
    int *ids;
    size_t cap;
} name_map;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static int map_find(const name_map *m, const char *k)
{
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return -1;
        if (!strcmp(m->keys[i], k))
            return m->ids[i];
    }
}

static void map_put(name_map *m, const char *k, int id)
{
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i])
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = k;
    m->ids[i] = id;
}

static sld_status attr_ints(const step *s, const char *name, int64_t *v, int want, bool *present,
                            sld_error *err)
{
    const sld_onnx_attr *a = sld_onnx_node_attr(s->node, name);
    *present = a != NULL;
    if (!a)
        return SLD_OK;
    if (a->type != SLD_ONNX_ATTR_INTS || a->n_ints != want)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "attribute %s must be %d ints", name, want);
    memcpy(v, a->ints, (size_t)want * sizeof *v);
    return SLD_OK;
}

static sld_status attr_int(const step *s, const char *name, int64_t def, int64_t *v, sld_error *err)
{
    const sld_onnx_attr *a = sld_onnx_node_attr(s->node, name);
    *v = def;
    if (!a)
        return SLD_OK;
    if (a->type != SLD_ONNX_ATTR_INT)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "attribute %s must be an int", name);
    *v = a->i;
    return SLD_OK;
}

static const char *attr_str(const step *s, const char *name, const char *def)
{
    const sld_onnx_attr *a = sld_onnx_node_attr(s->node, name);
    return a && a->type == SLD_ONNX_ATTR_STRING && a->s ? a->s : def;
}

/* Rejects attributes this op does not know (they could change its meaning). */
static sld_status attrs_allowed(const step *s, const char *const *allowed, sld_error *err)
{
    for (int i = 0; i < s->node->n_attrs; i++) {
        const char *nm = s->node->attrs[i].name;
        bool ok = false;
        for (int k = 0; allowed[k] && !ok; k++)
            ok = !strcmp(nm, allowed[k]);
        if (!ok)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "attribute '%s' is not supported", nm);
    }
    return SLD_OK;
}

/* Conv and MaxPool window attributes. */
static sld_status parse_window(step *s, bool conv, sld_error *err)
{
    bool have;
    int64_t v[4];
    sld_status st;
    const char *ap = attr_str(s, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET"))
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "auto_pad %s", ap);
    if ((st = attr_ints(s, "kernel_shape", s->ints, 2, &have, err)))
        return st;
    s->n_ints = have ? 2 : 0;
    if (!conv && !have)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "kernel_shape must be 2 ints");
    if (have && (s->ints[0] < 1 || s->ints[1] < 1 || s->ints[0] > 64 || s->ints[1] > 64))
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "kernel_shape out of range");
    s->stride[0] = s->stride[1] = 1;
    if ((st = attr_ints(s, "strides", v, 2, &have, err)))
        return st;
    if (have) {
        if (v[0] < 1 || v[1] < 1 || v[0] > 64 || v[1] > 64 || (conv && v[0] != v[1]))
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "strides [%lld,%lld]", (long long)v[0],
                            (long long)v[1]);
        s->stride[0] = (int)v[0];
        s->stride[1] = (int)v[1];
    }
    if ((st = attr_ints(s, "pads", v, 4, &have, err)))
        return st;
    for (int i = 0; i < 4; i++) {
        if (have && (v[i] < 0 || v[i] > 64))
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "pads value %lld", (long long)v[i]);
        /* ONNX order: x1_begin, x2_begin, x1_end, x2_end = top, left, bottom, right */
        s->pads[i] = have ? (int)v[i] : 0;
    }
    if ((st = attr_ints(s, "dilations", v, 2, &have, err)))
        return st;
    if (have && (v[0] != 1 || v[1] != 1))
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "dilations other than 1");
    int64_t x;
    if (conv) {
        if ((st = attr_int(s, "group", 1, &x, err)))
            return st;
        if (x != 1)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "group %lld (only 1)", (long long)x);
    } else {
        if ((st = attr_int(s, "ceil_mode", 0, &x, err)))
            return st;
        if (x != 0)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "ceil_mode 1");
        if ((st = attr_int(s, "storage_order", 0, &x, err)))
            return st;
        if (x != 0)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "storage_order 1");
    }
    return SLD_OK;
}

static sld_status parse_resize(step *s, sld_error *err)
{
    static const char *const allowed[] = {"mode", "coordinate_transformation_mode", "nearest_mode",
                                          "cubic_coeff_a", "exclude_outside", "antialias",
                                          "extrapolation_value", "keep_aspect_ratio_policy", NULL};
    sld_status st = attrs_allowed(s, allowed, err);
    if (st)
        return st;
    const char *mode = attr_str(s, "mode", "nearest");
    const char *ct = attr_str(s, "coordinate_transformation_mode", "half_pixel");
    const char *nm = attr_str(s, "nearest_mode", "round_prefer_floor");
    const char *kp = attr_str(s, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(mode, "nearest"))
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "mode %s (only nearest)", mode);
    if (strcmp(kp, "stretch"))
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "keep_aspect_ratio_policy %s", kp);
    static const char *const cts[] = {"asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"};
    static const char *const nms[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
    s->coord = s->nearest = -1;
    for (int i = 0; i < 4; i++) {
        if (!strcmp(ct, cts[i]))
            s->coord = i;
        if (!strcmp(nm, nms[i]))
            s->nearest = i;
    }
    if (s->coord < 0)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "coordinate_transformation_mode %s", ct);
    if (s->nearest < 0)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "nearest_mode %s", nm);
    int64_t x;
    if ((st = attr_int(s, "exclude_outside", 0, &x, err)))
        return st;
    if (x)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "exclude_outside 1");
    if ((st = attr_int(s, "antialias", 0, &x, err)))
        return st;
    if (x)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "antialias 1");
    return SLD_OK;
}

/* Per-op attribute parsing and input/output count checks. */
static sld_status parse_step(step *s, int opset, sld_error *err)
{
    static const char *const none[] = {NULL};
    static const char *const conv_a[] = {"kernel_shape", "strides", "pads", "dilations", "group",
                                         "auto_pad", NULL};
    static const char *const pool_a[] = {"kernel_shape", "strides", "pads", "dilations",
                                         "ceil_mode", "storage_order", "auto_pad", NULL};
    static const char *const axis_a[] = {"axis", NULL};
    static const char *const split_a[] = {"axis", "split", "num_outputs", NULL};
    static const char *const perm_a[] = {"perm", NULL};
    static const char *const shape_a[] = {"start", "end", NULL};
    static const char *const reshape_a[] = {"allowzero", NULL};
    int64_t v;
    sld_status st = SLD_OK;
    int min_in = 1, max_in = 1, max_out = 1;
    const char *const *allowed = none;
    switch (s->op) {
    case OP_CONV: min_in = 2; max_in = 3; allowed = conv_a; break;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: min_in = max_in = 2; break;
    case OP_CONCAT: max_in = 64; allowed = axis_a; break;
    case OP_SPLIT: max_in = 2; max_out = 64; allowed = split_a; break;
    case OP_MAXPOOL: allowed = pool_a; break;
    case OP_RESIZE: max_in = 4; break;
    case OP_RESHAPE: min_in = max_in = 2; allowed = reshape_a; break;
    case OP_TRANSPOSE: allowed = perm_a; break;
    case OP_SOFTMAX: allowed = axis_a; break;
    case OP_SLICE: min_in = 3; max_in = 5; break;
    case OP_SHAPE: allowed = shape_a; break;
    case OP_GATHER: min_in = max_in = 2; allowed = axis_a; break;
    default: break;
    }
    if (s->n_in < min_in || s->n_in > max_in || s->n_out < 1 || s->n_out > max_out)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "%d inputs / %d outputs (expected %d..%d / 1..%d)",
                        s->n_in, s->n_out, min_in, max_in, max_out);
    if (s->in[0] < 0)
        return node_err(err, SLD_ERR_FORMAT, s, "first input is empty");
    if (s->op != OP_RESIZE && (st = attrs_allowed(s, allowed, err)))
        return st;
    switch (s->op) {
    case OP_CONV:
    case OP_MAXPOOL: return parse_window(s, s->op == OP_CONV, err);
    case OP_RESIZE: return parse_resize(s, err);
    case OP_CONCAT:
    case OP_GATHER:
    case OP_SPLIT:
    case OP_SOFTMAX: {
        int64_t def = s->op == OP_SOFTMAX ? (opset >= 13 ? -1 : 1) : 0;
        const sld_onnx_attr *a = sld_onnx_node_attr(s->node, "axis");
        if (s->op == OP_CONCAT && !a)
            return node_err(err, SLD_ERR_FORMAT, s, "missing attribute axis");
        if ((st = attr_int(s, "axis", def, &v, err)))
            return st;
        if (v < -MAXD || v >= MAXD)
            return node_err(err, SLD_ERR_SHAPE, s, "axis %lld", (long long)v);
        s->axis = (int)v;
        s->legacy = s->op == OP_SOFTMAX && opset < 13; /* flattened (Softmax-1/11) semantics */
        if (s->op == OP_SPLIT) {
            s->split = sld_onnx_node_attr(s->node, "split");
            if (s->split && s->split->type != SLD_ONNX_ATTR_INTS)
                return node_err(err, SLD_ERR_UNSUPPORTED, s, "attribute split must be ints");
            if ((st = attr_int(s, "num_outputs", s->n_out, &v, err)))
                return st;
            if (v != s->n_out)
                return node_err(err, SLD_ERR_SHAPE, s, "num_outputs %lld but %d outputs",
                                (long long)v, s->n_out);
        }
        return SLD_OK;
    }
    case OP_TRANSPOSE: {
        const sld_onnx_attr *a = sld_onnx_node_attr(s->node, "perm");
        s->n_ints = 0;
        if (a) {
            if (a->type != SLD_ONNX_ATTR_INTS || a->n_ints > MAXD)
                return node_err(err, SLD_ERR_UNSUPPORTED, s, "perm must be at most %d ints", MAXD);
            s->n_ints = a->n_ints;
            memcpy(s->ints, a->ints, (size_t)a->n_ints * sizeof *s->ints);
        }
        return SLD_OK;
    }
    case OP_RESHAPE:
        if ((st = attr_int(s, "allowzero", 0, &v, err)))
            return st;
        s->allowzero = v != 0;
        return SLD_OK;
    case OP_SHAPE:
        if ((st = attr_int(s, "start", 0, &s->start, err)))
            return st;
        return attr_int(s, "end", INT64_MAX, &s->end, err);
    default: return SLD_OK;
    }
}

/* A Constant node's value as a tensor view (borrowing the attribute data). */
static sld_status constant_value(const step *s, tval *t, sld_error *err)
{
    if (s->node->n_attrs != 1 || s->n_out != 1 || s->n_in != 0)
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "expected exactly one value attribute");
    const sld_onnx_attr *a = &s->node->attrs[0];
    memset(t, 0, sizeof *t);
    if (!strcmp(a->name, "value") && a->type == SLD_ONNX_ATTR_TENSOR && a->t) {
        if (a->t->dtype != SLD_ONNX_FLOAT && a->t->dtype != SLD_ONNX_INT64)
            return node_err(err, SLD_ERR_UNSUPPORTED, s, "constant of type %s",
                            sld_onnx_dtype_name(a->t->dtype));
        t->dtype = a->t->dtype;
        t->ndim = a->t->ndim;
        memcpy(t->d, a->t->dims, sizeof t->d);
        t->n = a->t->numel;
        t->data = a->t->data;
    } else if (!strcmp(a->name, "value_float") && a->type == SLD_ONNX_ATTR_FLOAT) {
        t->dtype = SLD_ONNX_FLOAT;
        t->n = 1;
        t->data = (void *)&a->f;
    } else if (!strcmp(a->name, "value_int") && a->type == SLD_ONNX_ATTR_INT) {
        t->dtype = SLD_ONNX_INT64;
        t->n = 1;
        t->data = (void *)&a->i;
    } else if (!strcmp(a->name, "value_floats") && a->type == SLD_ONNX_ATTR_FLOATS && a->floats) {
        t->dtype = SLD_ONNX_FLOAT;
        t->ndim = 1;
        t->d[0] = a->n_floats;
        t->n = (size_t)a->n_floats;
        t->data = a->floats;
    } else if (!strcmp(a->name, "value_ints") && a->type == SLD_ONNX_ATTR_INTS && a->ints) {
        t->dtype = SLD_ONNX_INT64;
        t->ndim = 1;
        t->d[0] = a->n_ints;
        t->n = (size_t)a->n_ints;
        t->data = a->ints;
    } else {
        return node_err(err, SLD_ERR_UNSUPPORTED, s, "constant attribute '%s'", a->name);
    }
    return SLD_OK;
}

void sld_onnx_run_free(sld_onnx_run *n)
{
    if (!n)
        return;
    /* the conv cache is keyed by weight pointers we are about to free */
    sld_ops_cache_clear();
    if (n->steps)
        for (int i = 0; i < n->n_steps; i++) {
            sld_free(n->steps[i].in);
            sld_free(n->steps[i].out);
        }
    sld_free(n->steps);
    sld_free(n->consts);
    sld_free(n->names);
    sld_free(n->last_use);
    sld_onnx_free(n->m);
    sld_free(n);
}

static sld_status build(sld_onnx_run *nn, const char *file, sld_error *err)
{
    sld_onnx_model *m = nn->m;
    nn->opset = (int)m->opset;
    if (m->opset < 11 || m->opset > 22)
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: opset %lld not supported (11..22)", file,
                       (long long)m->opset);
    /* count value names: graph inputs, initializers, node outputs */
    size_t nv = (size_t)m->n_inputs + (size_t)m->n_inits;
    for (int i = 0; i < m->n_nodes; i++)
        nv += (size_t)m->nodes[i].n_outputs;
    if (nv > (size_t)INT_MAX / 4)
        return sld_err(err, SLD_ERR_FORMAT, "%s: too many values", file);
    name_map map = {0};
    map.cap = 16;
    while (map.cap < 2 * nv + 1)
        map.cap *= 2;
    map.keys = sld_calloc(map.cap, sizeof *map.keys);
    map.ids = sld_calloc(map.cap, sizeof *map.ids);
    nn->consts = sld_calloc(nv + 1, sizeof *nn->consts);
    nn->names = sld_calloc(nv + 1, sizeof *nn->names);
    nn->last_use = sld_calloc(nv + 1, sizeof *nn->last_use);
    nn->steps = sld_calloc((size_t)m->n_nodes + 1, sizeof *nn->steps);
    sld_status st = SLD_OK;
    if (!map.keys || !map.ids || !nn->consts || !nn->names || !nn->last_use || !nn->steps) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    int n = 0;
#define DEFINE(nm_, what_)                                                                     \
    do {                                                                                       \
        if (!*(nm_) || map_find(&map, nm_) >= 0) {                                             \
            st = sld_err(err, SLD_ERR_FORMAT, "%s: %s '%s' is empty or defined twice", file,   \
                         what_, nm_);                                                          \
            goto done;                                                                         \
        }                                                                                      \
        map_put(&map, nm_, n);                                                                 \
        nn->names[n] = nm_;                                                                    \
        nn->last_use[n] = -1;                                                                  \
        n++;                                                                                   \
    } while (0)
    for (int i = 0; i < m->n_inits; i++) {
        const sld_onnx_tensor *t = &m->inits[i];
        if (t->dtype != SLD_ONNX_FLOAT && t->dtype != SLD_ONNX_INT64) {
            st = sld_err(err, SLD_ERR_UNSUPPORTED, "%s: initializer '%s' is %s (only FLOAT, INT64)",
                         file, t->name, sld_onnx_dtype_name(t->dtype));
            goto done;
        }
        tval *c = &nn->consts[n];
        c->dtype = t->dtype;
        c->ndim = t->ndim;
        memcpy(c->d, t->dims, sizeof c->d);
        c->n = t->numel;
        c->data = t->data;
        DEFINE(t->name, "initializer");
    }
    nn->in_id = -1;
    for (int i = 0; i < m->n_inputs; i++) {
        const sld_onnx_value_info *vi = &m->inputs[i];
        if (map_find(&map, vi->name) >= 0)
            continue; /* IR < 4 lists initializers as inputs too */
        if (nn->in_id >= 0) {
            st = sld_err(err, SLD_ERR_UNSUPPORTED, "%s: more than one graph input ('%s', '%s')", file,
                         nn->names[nn->in_id], vi->name);
            goto done;
        }
        const int64_t *want = nn->in_shape;
        bool ok = (vi->elem_type == SLD_ONNX_FLOAT || vi->elem_type == 0) &&
                  (vi->ndim == -1 || vi->ndim == nn->in_ndim);
        for (int k = 0; k < vi->ndim; k++)
            if (vi->dims[k] != -1 && vi->dims[k] != want[k])
                ok = false;
        if (!ok) {
            tval w = {.ndim = nn->in_ndim};
            memcpy(w.d, want, sizeof w.d);
            char sh[96];
            shape_str(&w, sh, sizeof sh);
            st = sld_err(err, SLD_ERR_SHAPE, "%s: input '%s' must be FLOAT %s", file, vi->name,
                         sh);
            goto done;
        }
        nn->in_id = n;
        DEFINE(vi->name, "graph input");
    }
    if (nn->in_id < 0) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: graph has no runtime input", file);
        goto done;
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const sld_onnx_node *nd = &m->nodes[i];
        step *s = &nn->steps[nn->n_steps];
        s->node = nd;
        s->op = OP_COUNT;
        for (int k = 0; k < OP_COUNT; k++)
            if (!strcmp(nd->op_type, op_names[k]))
                s->op = (op_kind)k;
        if (s->op == OP_COUNT || (*nd->domain && strcmp(nd->domain, "ai.onnx"))) {
            st = sld_err(err, SLD_ERR_UNSUPPORTED, "%s: node '%s': op '%s%s%s' is not supported", file,
                         nd->name, nd->domain, *nd->domain ? "." : "", nd->op_type);
            goto done;
        }
        /* drop trailing omitted inputs/outputs */
        s->n_in = nd->n_inputs;
        while (s->n_in > 0 && !*nd->inputs[s->n_in - 1])
            s->n_in--;
        s->n_out = nd->n_outputs;
        while (s->n_out > 0 && !*nd->outputs[s->n_out - 1])
            s->n_out--;
        s->in = sld_calloc((size_t)s->n_in + 1, sizeof *s->in);
        s->out = sld_calloc((size_t)s->n_out + 1, sizeof *s->out);
        nn->n_steps++;
        if (!s->in || !s->out) {
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", file);
            goto done;
        }
        for (int k = 0; k < s->n_in; k++) {
            s->in[k] = -1;
            if (!*nd->inputs[k])
                continue;
            s->in[k] = map_find(&map, nd->inputs[k]);
            if (s->in[k] < 0) {
                st = sld_err(err, SLD_ERR_FORMAT,
                             "%s: node '%s' (%s) reads '%s', which no earlier node or initializer defines",
                             file, nd->name, nd->op_type, nd->inputs[k]);
                goto done;
            }
            nn->last_use[s->in[k]] = nn->n_steps - 1;
        }
        if (s->op == OP_CONSTANT) {
            if (s->n_out != 1 || s->n_in != 0) {
                st = node_err(err, SLD_ERR_UNSUPPORTED, s, "constant with inputs or several outputs");
                goto done;
            }
            if ((st = constant_value(s, &nn->consts[n], err)))
                goto done;
            DEFINE(nd->outputs[0], "value");
            nn->n_steps--; /* nothing to run */
            sld_free(s->in);
            sld_free(s->out);
            memset(s, 0, sizeof *s);
            continue;
        }
        if (s->n_in > 64 || s->n_out > 64) {
            st = node_err(err, SLD_ERR_UNSUPPORTED, s, "more than 64 inputs or outputs");
            goto done;
        }
        if ((st = parse_step(s, nn->opset, err)))
            goto done;
        if (s->op == OP_CONV)
            for (int k = 1; k < s->n_in; k++)
                if (s->in[k] < 0 || !nn->consts[s->in[k]].data) {
                    st = node_err(err, SLD_ERR_UNSUPPORTED, s, "weight/bias '%s' must be an initializer",
                                  nd->inputs[k]);
                    goto done;
                }
        for (int k = 0; k < s->n_out; k++) {
            s->out[k] = -1;
            if (!*nd->outputs[k])
                continue;
            s->out[k] = n;
            DEFINE(nd->outputs[k], "value");
        }
    }
#undef DEFINE
    nn->n_vals = n;
    if (m->n_outputs < 1 || (nn->out_id = map_find(&map, m->outputs[0].name)) < 0 ||
        nn->out_id == nn->in_id || nn->consts[nn->out_id].data) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: graph output '%s' is not produced by a node", file,
                     m->n_outputs ? m->outputs[0].name : "(none)");
        goto done;
    }
    nn->last_use[nn->out_id] = INT_MAX;
    /* shape propagation (and constant folding) from the input to the output */
    tval *v = vals_new(nn, NULL);
    if (!v) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    st = run_graph(nn, v, true, err);
    if (!st) {
        tval *o = &v[nn->out_id];
        nn->out_info = *o;
        nn->out_info.data = NULL;
        nn->out_info.owned = false;
        if (o->data && o->dtype == SLD_ONNX_FLOAT)
            st = sld_err(err, SLD_ERR_FORMAT, "%s: output does not depend on the input", file);
        tval_release(o);
    }
    sld_free(v);
    if (st)
        sld_err_prefix(err, "%s: checking shapes", file);
done:
    sld_free(map.keys);
    sld_free(map.ids);
    return st;
}

sld_status sld_onnx_run_new(sld_onnx_run **out, sld_onnx_model *m, const char *file,
                           const int64_t *in_shape, int in_ndim, sld_error *err)
{
    *out = NULL;
    sld_onnx_run *nn = sld_calloc(1, sizeof *nn);
    if (!nn) {
        sld_onnx_free(m);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", file);
    }
    nn->m = m;
    if (in_ndim < 1 || in_ndim > MAXD) {
        sld_onnx_run_free(nn);
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: input rank %d", file, in_ndim);
    }
    nn->in_ndim = in_ndim;
    for (int k = 0; k < in_ndim; k++)
        nn->in_shape[k] = in_shape[k];
    sld_status st = build(nn, file, err);
    if (st) {
        sld_onnx_run_free(nn);
        return st;
    }
    *out = nn;
    return SLD_OK;
}

const sld_onnx_model *sld_onnx_run_model(const sld_onnx_run *r) { return r->m; }

int sld_onnx_run_output(const sld_onnx_run *r, int64_t *dims, const char **name)
{
    for (int k = 0; k < r->out_info.ndim; k++)
        dims[k] = r->out_info.d[k];
    if (name)
        *name = r->names[r->out_id];
    return r->out_info.dtype == SLD_ONNX_FLOAT ? r->out_info.ndim : -1;
}
