/* pickle.c — the code-free pickle machine (see pickle.h). Opcode semantics
 * follow Python's Lib/pickle.py and the descriptions in pickletools; the
 * allow table below is the whole of what a pickle can reach. */
#include "io/pickle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MARK_DEPTH 1000 /* Python's own recursion limit is about this */
#define POOL_CHUNK 128

/* ---- the allow table ------------------------------------------------------ */

typedef enum {
    G_TYPE = 0,     /* a value used as an argument only (dtype, storage type, class marker) */
    G_ORDERED_DICT, /* collections.OrderedDict() -> dict */
    G_REBUILD_V1,   /* torch._utils._rebuild_tensor(storage, offset, size, stride) */
    G_REBUILD_V2,   /* ..._v2(storage, offset, size, stride, requires_grad, hooks[, meta]) */
    G_REBUILD_V3,   /* ..._v3(storage, offset, size, stride, requires_grad, hooks, dtype[, meta]) */
    G_PARAMETER,    /* _rebuild_parameter(data, requires_grad, hooks[, state]) -> data */
    G_FROM_TYPE,    /* torch._tensor._rebuild_from_type_v2(func, type, args, state) */
    G_CODECS_ENCODE,/* _codecs.encode(str, "latin1") -> bytes (protocol 2 bytes objects) */
    G_SET,          /* set(iterable) / frozenset(iterable) */
    G_SIZE,         /* torch.Size(tuple) -> tuple */
    G_INERT         /* an opaque object; arguments and state are dropped */
} gkind;

typedef struct {
    const char *module, *name;
    gkind kind;
    int dtype; /* storage types and dtypes: sld_dtype; -1 otherwise; -2 untyped storage */
    bool storage;
} gentry;

static const gentry k_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, -1, false},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_V1, -1, false},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, -1, false},
    {"torch._utils", "_rebuild_tensor_v3", G_REBUILD_V3, -1, false},
    {"torch._utils", "_rebuild_parameter", G_PARAMETER, -1, false},
    {"torch._utils", "_rebuild_parameter_with_state", G_PARAMETER, -1, false},
    {"torch._tensor", "_rebuild_from_type_v2", G_FROM_TYPE, -1, false},
    {"torch", "Tensor", G_TYPE, -1, false},
    {"torch.nn.parameter", "Parameter", G_TYPE, -1, false},
    {"torch", "FloatStorage", G_TYPE, SLD_DT_F32, true},
    {"torch", "HalfStorage", G_TYPE, SLD_DT_F16, true},
    {"torch", "BFloat16Storage", G_TYPE, SLD_DT_BF16, true},
    {"torch", "DoubleStorage", G_TYPE, SLD_DT_F64, true},
    {"torch", "LongStorage", G_TYPE, SLD_DT_I64, true},
    {"torch", "IntStorage", G_TYPE, SLD_DT_I32, true},
    {"torch", "ShortStorage", G_TYPE, SLD_DT_I16, true},
    {"torch", "CharStorage", G_TYPE, SLD_DT_I8, true},
    {"torch", "ByteStorage", G_TYPE, SLD_DT_U8, true},
    {"torch", "BoolStorage", G_TYPE, SLD_DT_BOOL, true},
    {"torch", "UntypedStorage", G_TYPE, -2, true},
    {"torch", "float32", G_TYPE, SLD_DT_F32, false},
    {"torch", "float", G_TYPE, SLD_DT_F32, false},
    {"torch", "float16", G_TYPE, SLD_DT_F16, false},
    {"torch", "half", G_TYPE, SLD_DT_F16, false},
    {"torch", "bfloat16", G_TYPE, SLD_DT_BF16, false},
    {"torch", "float64", G_TYPE, SLD_DT_F64, false},
    {"torch", "double", G_TYPE, SLD_DT_F64, false},
    {"torch", "int64", G_TYPE, SLD_DT_I64, false},
    {"torch", "long", G_TYPE, SLD_DT_I64, false},
    {"torch", "int32", G_TYPE, SLD_DT_I32, false},
    {"torch", "int", G_TYPE, SLD_DT_I32, false},
    {"torch", "int16", G_TYPE, SLD_DT_I16, false},
    {"torch", "short", G_TYPE, SLD_DT_I16, false},
    {"torch", "int8", G_TYPE, SLD_DT_I8, false},
    {"torch", "uint8", G_TYPE, SLD_DT_U8, false},
    {"torch", "bool", G_TYPE, SLD_DT_BOOL, false},
    {"torch", "Size", G_SIZE, -1, false},
    {"_codecs", "encode", G_CODECS_ENCODE, -1, false},
    {"builtins", "set", G_SET, -1, false},
    {"builtins", "frozenset", G_SET, -1, false},
    {"__builtin__", "set", G_SET, -1, false},
    {"__builtin__", "frozenset", G_SET, -1, false},
    {"torch", "device", G_INERT, -1, false},
    {"numpy.core.multiarray", "scalar", G_INERT, -1, false},
    {"numpy.core.multiarray", "_reconstruct", G_INERT, -1, false},
    {"numpy._core.multiarray", "scalar", G_INERT, -1, false},
    {"numpy._core.multiarray", "_reconstruct", G_INERT, -1, false},
    {"numpy", "dtype", G_INERT, -1, false},
    {"numpy", "ndarray", G_INERT, -1, false},
    {"argparse", "Namespace", G_INERT, -1, false},
    {"pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", G_INERT, -1, false},
    {"pytorch_lightning.callbacks", "model_checkpoint", G_TYPE, -1, false},
};
#define N_GLOBALS ((int)(sizeof k_globals / sizeof k_globals[0]))

void sld_pickle_allowed(int idx, const char **module, const char **name)
{
    bool ok = idx >= 0 && idx < N_GLOBALS;
    *module = ok ? k_globals[idx].module : "?";
    *name = ok ? k_globals[idx].name : "?";
}

int sld_pickle_allowed_count(void) { return N_GLOBALS; }

/* ---- machine ----------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    int used;
    sld_pk_value v[POOL_CHUNK];
} chunk;

struct sld_pickle {
    chunk *pool;
    const uint8_t *buf;
    size_t len, pos;
    const char *name;
    sld_pk_value **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    sld_pk_value **memo;
    size_t memo_cap, memo_count;
    sld_pk_value none_v, true_v, false_v;
    sld_pk_value **storages; /* every STORAGE value made, in order */
    size_t n_storages, storages_cap;
};

static sld_pk_value *new_value(sld_pickle *vm, sld_pk_kind k)
{
    if (!vm->pool || vm->pool->used == POOL_CHUNK) {
        chunk *c = sld_malloc(sizeof *c);
        if (!c)
            return NULL;
        c->next = vm->pool;
        c->used = 0;
        vm->pool = c;
    }
    sld_pk_value *v = &vm->pool->v[vm->pool->used++];
    memset(v, 0, sizeof *v);
    v->kind = k;
    return v;
}

void sld_pickle_free(sld_pickle *vm)
{
    if (!vm)
        return;
    for (chunk *c = vm->pool, *n; c; c = n) {
        n = c->next;
        for (int i = 0; i < c->used; i++) {
            sld_pk_kind k = c->v[i].kind;
            if (k == SLD_PK_TUPLE || k == SLD_PK_LIST || k == SLD_PK_SET || k == SLD_PK_DICT)
                sld_free(c->v[i].u.seq.v);
        }
        sld_free(c);
    }
    sld_free(vm->stack);
    sld_free(vm->marks);
    sld_free(vm->memo);
    sld_free(vm->storages);
    sld_free(vm);
}

#define FAIL(code, ...) return sld_err(err, code, __VA_ARGS__)
#define BAD(...) FAIL(SLD_ERR_FORMAT, __VA_ARGS__)

static sld_status seq_push(sld_pickle *vm, sld_pk_value *s, sld_pk_value *x, sld_error *err)
{
    if (s->u.seq.n == s->u.seq.cap) {
        size_t nc = s->u.seq.cap ? s->u.seq.cap * 2 : 4;
        sld_pk_value **nv = sld_realloc(s->u.seq.v, nc * sizeof *nv);
        if (!nv)
            FAIL(SLD_ERR_NOMEM, "%s: out of memory in the pickle", vm->name);
        s->u.seq.v = nv;
        s->u.seq.cap = nc;
    }
    s->u.seq.v[s->u.seq.n++] = x;
    return SLD_OK;
}

static sld_status push(sld_pickle *vm, sld_pk_value *v, sld_error *err)
{
    if (!v)
        FAIL(SLD_ERR_NOMEM, "%s: out of memory in the pickle", vm->name);
    if (vm->sp == vm->scap) {
        size_t nc = vm->scap ? vm->scap * 2 : 64;
        sld_pk_value **ns = sld_realloc(vm->stack, nc * sizeof *ns);
        if (!ns)
            FAIL(SLD_ERR_NOMEM, "%s: out of memory in the pickle", vm->name);
        vm->stack = ns;
        vm->scap = nc;
    }
    vm->stack[vm->sp++] = v;
    return SLD_OK;
}

static size_t mark_base(const sld_pickle *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static sld_status pop(sld_pickle *vm, sld_pk_value **out, sld_error *err)
{
    if (vm->sp <= mark_base(vm))
        BAD("%s: corrupt pickle: stack underflow at byte %zu", vm->name, vm->pos);
    *out = vm->stack[--vm->sp];
    return SLD_OK;
}

static sld_status top(sld_pickle *vm, sld_pk_value **out, sld_error *err)
{
    if (vm->sp <= mark_base(vm))
        BAD("%s: corrupt pickle: empty stack at byte %zu", vm->name, vm->pos);
    *out = vm->stack[vm->sp - 1];
    return SLD_OK;
}

/* Pops everything above the last MARK into [*items, *items + *n) (still in
 * the stack array, valid until the next push) and removes the mark. */
static sld_status pop_mark(sld_pickle *vm, sld_pk_value ***items, size_t *n, sld_error *err)
{
    if (!vm->nmarks)
        BAD("%s: corrupt pickle: no MARK before byte %zu", vm->name, vm->pos);
    size_t m = vm->marks[--vm->nmarks];
    *items = vm->stack + m;
    *n = vm->sp - m;
    vm->sp = m;
    return SLD_OK;
}

static sld_pk_value *make_seq(sld_pickle *vm, sld_pk_kind k, sld_pk_value **items, size_t n)
{
    sld_pk_value *v = new_value(vm, k);
    if (!v)
        return NULL;
    if (n) {
        v->u.seq.v = sld_malloc(n * sizeof *items);
        if (!v->u.seq.v) {
            v->kind = SLD_PK_NONE;
            return NULL;
        }
        memcpy(v->u.seq.v, items, n * sizeof *items);
        v->u.seq.n = v->u.seq.cap = n;
    }
    return v;
}

static sld_status need(sld_pickle *vm, size_t n, const char *what, sld_error *err)
{
    if (n > vm->len - vm->pos)
        BAD("%s: pickle truncated: %s needs %zu bytes at byte %zu, only %zu left", vm->name,
            what, n, vm->pos, vm->len - vm->pos);
    return SLD_OK;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

/* A newline-terminated text argument (GLOBAL, INST, INT, ...). */
static sld_status read_line(sld_pickle *vm, const char **s, size_t *n, sld_error *err)
{
    const uint8_t *p = vm->buf + vm->pos, *e = memchr(p, '\n', vm->len - vm->pos);
    if (!e)
        BAD("%s: pickle truncated: unterminated text argument at byte %zu", vm->name, vm->pos);
    *s = (const char *)p;
    *n = (size_t)(e - p);
    vm->pos += *n + 1;
    return SLD_OK;
}

static sld_status memo_put(sld_pickle *vm, uint64_t idx, sld_error *err)
{
    sld_pk_value *v;
    sld_status st = top(vm, &v, err);
    if (st)
        return st;
    /* real pickles number memo entries 0, 1, 2 ...: an index beyond the
     * pickle's length cannot be legitimate and would make us allocate */
    if (idx > vm->len)
        BAD("%s: corrupt pickle: memo index %llu out of range at byte %zu", vm->name,
            (unsigned long long)idx, vm->pos);
    if (idx >= vm->memo_cap) {
        size_t nc = vm->memo_cap ? vm->memo_cap : 64;
        while (nc <= idx)
            nc *= 2;
        sld_pk_value **nm = sld_realloc(vm->memo, nc * sizeof *nm);
        if (!nm)
            FAIL(SLD_ERR_NOMEM, "%s: out of memory in the pickle", vm->name);
        memset(nm + vm->memo_cap, 0, (nc - vm->memo_cap) * sizeof *nm);
        vm->memo = nm;
        vm->memo_cap = nc;
    }
    if (!vm->memo[idx])
        vm->memo_count++;
    vm->memo[idx] = v;
    return SLD_OK;
}

static sld_status memo_get(sld_pickle *vm, uint64_t idx, sld_error *err)
{
    if (idx >= vm->memo_cap || !vm->memo[idx])
        BAD("%s: corrupt pickle: memo entry %llu read before it was written (byte %zu)", vm->name,
            (unsigned long long)idx, vm->pos);
    return push(vm, vm->memo[idx], err);
}

static sld_status find_global(sld_pickle *vm, const char *mod, size_t ml, const char *name,
                              size_t nl, sld_error *err)
{
    for (int i = 0; i < N_GLOBALS; i++)
        if (strlen(k_globals[i].module) == ml && !memcmp(k_globals[i].module, mod, ml) &&
            strlen(k_globals[i].name) == nl && !memcmp(k_globals[i].name, name, nl)) {
            sld_pk_value *v = new_value(vm, SLD_PK_GLOBAL);
            if (v)
                v->u.global = i;
            return push(vm, v, err);
        }
    int ml_i = ml > 100 ? 100 : (int)ml, nl_i = nl > 100 ? 100 : (int)nl;
    FAIL(SLD_ERR_UNSUPPORTED,
         "%s: refused: the pickle asks for the Python global '%.*s.%.*s' (byte %zu), which is "
         "not on sld's allow-list of tensor-checkpoint types; loading it in Python could run "
         "code. A state dict of tensors never needs it (docs/CHECKPOINTS.md)",
         vm->name, ml_i, mod, nl_i, name, vm->pos);
}

/* ---- admitted callables ------------------------------------------------------- */

static bool as_int(const sld_pk_value *v, int64_t *out)
{
    if (v->kind == SLD_PK_INT) {
        *out = v->u.i;
        return true;
    }
    if (v->kind == SLD_PK_BOOL) {
        *out = v->u.b;
        return true;
    }
    return false;
}

static sld_status build_tensor(sld_pickle *vm, sld_pk_value **a, size_t n, int dtype_arg,
                               sld_pk_value **out, sld_error *err)
{
    const char *N = vm->name;
    if (n < 4 || a[0]->kind != SLD_PK_STORAGE)
        BAD("%s: _rebuild_tensor wants (storage, offset, size, stride, ...) (byte %zu)", N,
            vm->pos);
    const sld_pk_value *sz = a[2], *sd = a[3];
    int64_t off;
    if (!as_int(a[1], &off) || off < 0)
        BAD("%s: tensor storage offset is not a non-negative integer (byte %zu)", N, vm->pos);
    if ((sz->kind != SLD_PK_TUPLE && sz->kind != SLD_PK_LIST) ||
        (sd->kind != SLD_PK_TUPLE && sd->kind != SLD_PK_LIST) || sz->u.seq.n != sd->u.seq.n)
        BAD("%s: tensor size and stride must be tuples of equal length (byte %zu)", N, vm->pos);
    if (sz->u.seq.n > SLD_ST_MAX_DIMS)
        FAIL(SLD_ERR_UNSUPPORTED, "%s: a tensor has %zu dimensions (sld takes at most %d)", N,
             sz->u.seq.n, SLD_ST_MAX_DIMS);
    sld_pk_value *t = new_value(vm, SLD_PK_TENSOR);
    if (!t)
        FAIL(SLD_ERR_NOMEM, "%s: out of memory", N);
    sld_pk_tensor *T = &t->u.tensor;
    T->storage = a[0];
    T->offset = (uint64_t)off;
    T->ndim = (int)sz->u.seq.n;
    const sld_pk_storage *S = &a[0]->u.storage;
    if (dtype_arg >= 0)
        T->dtype = (sld_dtype)dtype_arg;
    else if (S->untyped)
        BAD("%s: a tensor on an untyped storage has no dtype (byte %zu)", N, vm->pos);
    else
        T->dtype = S->dtype;
    for (int i = 0; i < T->ndim; i++)
        if (!as_int(sz->u.seq.v[i], &T->shape[i]) || !as_int(sd->u.seq.v[i], &T->stride[i]) ||
            T->shape[i] < 0 || T->stride[i] < 0)
            BAD("%s: tensor size/stride entry %d is not a non-negative integer (byte %zu)", N, i,
                vm->pos);
    *out = t;
    return SLD_OK;
}

static sld_status call(sld_pickle *vm, sld_pk_value *fn, sld_pk_value *args, sld_error *err)
{
    const char *N = vm->name;
    if (fn->kind != SLD_PK_GLOBAL)
        BAD("%s: corrupt pickle: call of a non-callable value (byte %zu)", N, vm->pos);
    if (args->kind != SLD_PK_TUPLE && args->kind != SLD_PK_LIST)
        BAD("%s: corrupt pickle: call arguments are not a tuple (byte %zu)", N, vm->pos);
    const gentry *g = &k_globals[fn->u.global];
    sld_pk_value **a = args->u.seq.v, *r = NULL;
    size_t n = args->u.seq.n;
    sld_status st;
    switch (g->kind) {
    case G_TYPE:
        BAD("%s: refused: the pickle calls '%s.%s' (byte %zu); sld only builds tensors and "
            "plain values",
            N, g->module, g->name, vm->pos);
    case G_ORDERED_DICT:
        r = new_value(vm, SLD_PK_DICT);
        if (r && n == 1 && a[0]->kind == SLD_PK_LIST)
            for (size_t i = 0; i < a[0]->u.seq.n; i++) {
                sld_pk_value *p = a[0]->u.seq.v[i];
                if (p->kind != SLD_PK_TUPLE || p->u.seq.n != 2)
                    BAD("%s: OrderedDict() items must be pairs (byte %zu)", N, vm->pos);
                if ((st = seq_push(vm, r, p->u.seq.v[0], err)) ||
                    (st = seq_push(vm, r, p->u.seq.v[1], err)))
                    return st;
            }
        else if (r && n)
            BAD("%s: OrderedDict() with unexpected arguments (byte %zu)", N, vm->pos);
        break;
    case G_REBUILD_V1:
    case G_REBUILD_V2:
        if ((st = build_tensor(vm, a, n, -1, &r, err)))
            return st;
        break;
    case G_REBUILD_V3:
        if (n < 7 || a[6]->kind != SLD_PK_GLOBAL || k_globals[a[6]->u.global].dtype < 0 ||
            k_globals[a[6]->u.global].storage)
            BAD("%s: _rebuild_tensor_v3 without a known torch dtype (byte %zu)", N, vm->pos);
        if ((st = build_tensor(vm, a, n, k_globals[a[6]->u.global].dtype, &r, err)))
            return st;
        break;
    case G_PARAMETER:
        if (n < 1 || a[0]->kind != SLD_PK_TENSOR)
            BAD("%s: _rebuild_parameter of something that is not a tensor (byte %zu)", N,
                vm->pos);
        r = a[0];
        break;
    case G_FROM_TYPE:
        /* (func, type, args, state): call func(*args); the type must be a tensor class */
        if (n < 3 || a[0]->kind != SLD_PK_GLOBAL || a[1]->kind != SLD_PK_GLOBAL ||
            k_globals[a[1]->u.global].kind != G_TYPE || k_globals[a[1]->u.global].dtype != -1)
            BAD("%s: _rebuild_from_type_v2 with unexpected arguments (byte %zu)", N, vm->pos);
        if (k_globals[a[0]->u.global].kind == G_FROM_TYPE)
            BAD("%s: _rebuild_from_type_v2 calling itself (byte %zu)", N, vm->pos);
        if ((st = call(vm, a[0], a[2], err)))
            return st;
        return SLD_OK; /* call pushed the result */
    case G_CODECS_ENCODE:
        /* bytes written by protocol 2: the text form is kept; never used as data */
        if (n < 1 || a[0]->kind != SLD_PK_STR)
            BAD("%s: _codecs.encode of a non-string (byte %zu)", N, vm->pos);
        r = new_value(vm, SLD_PK_BYTES);
        if (r)
            r->u.str = a[0]->u.str;
        break;
    case G_SET:
        if (n == 0)
            r = make_seq(vm, SLD_PK_SET, NULL, 0);
        else if (a[0]->kind == SLD_PK_LIST || a[0]->kind == SLD_PK_TUPLE ||
                 a[0]->kind == SLD_PK_SET)
            r = make_seq(vm, SLD_PK_SET, a[0]->u.seq.v, a[0]->u.seq.n);
        else
            BAD("%s: set() of a non-sequence (byte %zu)", N, vm->pos);
        break;
    case G_SIZE:
        if (n == 0)
            r = make_seq(vm, SLD_PK_TUPLE, NULL, 0);
        else if (a[0]->kind == SLD_PK_TUPLE || a[0]->kind == SLD_PK_LIST)
            r = make_seq(vm, SLD_PK_TUPLE, a[0]->u.seq.v, a[0]->u.seq.n);
        else
            BAD("%s: torch.Size() of a non-sequence (byte %zu)", N, vm->pos);
        break;
    case G_INERT:
        r = new_value(vm, SLD_PK_OBJECT);
        if (r)
            r->u.global = fn->u.global;
        break;
    }
    return push(vm, r, err);
}

/* BINPERSID: torch's ('storage', type, key, location, numel[, view]). */
static sld_status persistent(sld_pickle *vm, sld_pk_value *pid, sld_error *err)
{
    const char *N = vm->name;
    if (pid->kind != SLD_PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.v[0]->kind != SLD_PK_STR ||
        pid->u.seq.v[0]->u.str.len != 7 || memcmp(pid->u.seq.v[0]->u.str.s, "storage", 7))
        BAD("%s: persistent id is not a torch storage reference (byte %zu)", N, vm->pos);
    sld_pk_value **a = pid->u.seq.v;
    if (a[1]->kind != SLD_PK_GLOBAL || !k_globals[a[1]->u.global].storage)
        BAD("%s: storage reference without a torch storage type (byte %zu)", N, vm->pos);
    if (a[2]->kind != SLD_PK_STR || a[3]->kind != SLD_PK_STR)
        BAD("%s: storage key or location is not a string (byte %zu)", N, vm->pos);
    int64_t numel;
    if (!as_int(a[4], &numel) || numel < 0)
        BAD("%s: storage '%.*s': element count is not a non-negative integer", N,
            (int)(a[2]->u.str.len > 64 ? 64 : a[2]->u.str.len), a[2]->u.str.s);
    sld_pk_value *s = new_value(vm, SLD_PK_STORAGE);
    if (!s)
        FAIL(SLD_ERR_NOMEM, "%s: out of memory", N);
    sld_pk_storage *S = &s->u.storage;
    int dt = k_globals[a[1]->u.global].dtype;
    S->untyped = dt == -2;
    S->dtype = S->untyped ? SLD_DT_U8 : (sld_dtype)dt;
    S->key = a[2]->u.str.s;
    S->key_len = a[2]->u.str.len;
    S->numel = (uint64_t)numel;
    if (pid->u.seq.n >= 6 && a[5]->kind != SLD_PK_NONE) {
        /* legacy view: (view_key, offset, view_size) into the root storage */
        sld_pk_value *vw = a[5];
        int64_t o, sz;
        if (vw->kind != SLD_PK_TUPLE || vw->u.seq.n != 3 || vw->u.seq.v[0]->kind != SLD_PK_STR ||
            !as_int(vw->u.seq.v[1], &o) || !as_int(vw->u.seq.v[2], &sz) || o < 0 || sz < 0 ||
            (uint64_t)o > S->numel || (uint64_t)sz > S->numel - (uint64_t)o)
            BAD("%s: storage '%.*s': bad view (offset, size) (byte %zu)", N,
                (int)(S->key_len > 64 ? 64 : S->key_len), S->key, vm->pos);
        S->is_view = true;
        S->view_offset = (uint64_t)o;
        S->numel = (uint64_t)sz;
    }
    if (vm->n_storages == vm->storages_cap) {
        size_t nc = vm->storages_cap ? vm->storages_cap * 2 : 64;
        sld_pk_value **ns = sld_realloc(vm->storages, nc * sizeof *ns);
        if (!ns)
            FAIL(SLD_ERR_NOMEM, "%s: out of memory", N);
        vm->storages = ns;
        vm->storages_cap = nc;
    }
    vm->storages[vm->n_storages++] = s;
    return push(vm, s, err);
}

/* ---- the loop ---------------------------------------------------------------- */

static sld_status run(sld_pickle *vm, sld_pk_value **root, sld_error *err)
{
    const char *N = vm->name;
    sld_status st = SLD_OK;
    sld_pk_value *v, *w, *x, **items;
    size_t n;
    for (;;) {
        if (vm->pos >= vm->len)
            BAD("%s: pickle truncated at byte %zu (no STOP)", N, vm->pos);
        size_t at = vm->pos;
        uint8_t op = vm->buf[vm->pos++];
        switch (op) {
        case 0x80: /* PROTO */
            if ((st = need(vm, 1, "PROTO", err)))
                return st;
            if (vm->buf[vm->pos] > 5)
                FAIL(SLD_ERR_UNSUPPORTED, "%s: pickle protocol %d is newer than 5", N,
                     vm->buf[vm->pos]);
            vm->pos++;
            break;
        case 0x95: /* FRAME: a length hint; the bytes follow inline */
            if ((st = need(vm, 8, "FRAME", err)))
                return st;
            if (rd_le(vm->buf + vm->pos, 8) > vm->len - vm->pos - 8)
                BAD("%s: pickle truncated: frame at byte %zu runs past the end", N, at);
            vm->pos += 8;
            break;
        case '.': /* STOP */
            if ((st = pop(vm, root, err)))
                return st;
            return SLD_OK;
        case '(': /* MARK */
            if (vm->nmarks == MAX_MARK_DEPTH)
                BAD("%s: pickle nested too deep (more than %d open MARKs at byte %zu)", N,
                    MAX_MARK_DEPTH, at);
            if (vm->nmarks == vm->mcap) {
                size_t nc = vm->mcap ? vm->mcap * 2 : 32;
                size_t *nm = sld_realloc(vm->marks, nc * sizeof *nm);
                if (!nm)
                    FAIL(SLD_ERR_NOMEM, "%s: out of memory", N);
                vm->marks = nm;
                vm->mcap = nc;
            }
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case '0': /* POP */
            if ((st = pop(vm, &v, err)))
                return st;
            break;
        case '1': /* POP_MARK */
            if ((st = pop_mark(vm, &items, &n, err)))
                return st;
            break;
        case '2': /* DUP */
            if ((st = top(vm, &v, err)) || (st = push(vm, v, err)))
                return st;
            break;
        case 'N':
            if ((st = push(vm, &vm->none_v, err)))
                return st;
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if ((st = push(vm, op == 0x88 ? &vm->true_v : &vm->false_v, err)))
                return st;
            break;
        case 'K':
        case 'M':
        case 'J': { /* BININT1, BININT2, BININT */
            int nb = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if ((st = need(vm, (size_t)nb, "an integer", err)))
                return st;
            uint64_t u = rd_le(vm->buf + vm->pos, nb);
            vm->pos += (size_t)nb;
            v = new_value(vm, SLD_PK_INT);
            if (v)
                v->u.i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            if ((st = push(vm, v, err)))
                return st;
            break;
        }
        case 0x8a:
        case 0x8b: { /* LONG1, LONG4 */
            size_t nb;
            if ((st = need(vm, op == 0x8a ? 1 : 4, "LONG", err)))
                return st;
            nb = (size_t)rd_le(vm->buf + vm->pos, op == 0x8a ? 1 : 4);
            vm->pos += op == 0x8a ? 1 : 4;
            if ((st = need(vm, nb, "LONG", err)))
                return st;
            const uint8_t *p = vm->buf + vm->pos;
            vm->pos += nb;
            if (nb <= 8) {
                uint64_t u = rd_le(p, (int)nb);
                if (nb && nb < 8 && (p[nb - 1] & 0x80))
                    u |= ~(uint64_t)0 << (8 * nb); /* sign-extend */
                v = new_value(vm, SLD_PK_INT);
                if (v)
                    v->u.i = (int64_t)u;
            } else {
                v = new_value(vm, SLD_PK_BIGINT);
                if (v) {
                    v->u.str.s = (const char *)p;
                    v->u.str.len = nb;
                }
            }
            if ((st = push(vm, v, err)))
                return st;
            break;
        }
        case 'I':
        case 'L': { /* INT, LONG (text) */
            const char *s;
            size_t l;
            if ((st = read_line(vm, &s, &l, err)))
                return st;
            char tmp[32];
            if (l && s[l - 1] == 'L')
                l--;
            if (l == 0 || l >= sizeof tmp)
                BAD("%s: bad text integer at byte %zu", N, at);
            memcpy(tmp, s, l);
            tmp[l] = 0;
            char *e;
            long long x64 = strtoll(tmp, &e, 10);
            if (*e)
                BAD("%s: bad text integer at byte %zu", N, at);
            if (op == 'I' && l == 2 && (!strcmp(tmp, "00") || !strcmp(tmp, "01")))
                v = x64 ? &vm->true_v : &vm->false_v;
            else if ((v = new_value(vm, SLD_PK_INT)))
                v->u.i = x64;
            if ((st = push(vm, v, err)))
                return st;
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            if ((st = need(vm, 8, "BINFLOAT", err)))
                return st;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = (u << 8) | vm->buf[vm->pos + (size_t)i];
            vm->pos += 8;
            v = new_value(vm, SLD_PK_FLOAT);
            if (v)
                memcpy(&v->u.f, &u, 8);
            if ((st = push(vm, v, err)))
                return st;
            break;
        }
        case 'F': { /* FLOAT (text) */
            const char *s;
            size_t l;
            if ((st = read_line(vm, &s, &l, err)))
                return st;
            char tmp[64];
            if (l == 0 || l >= sizeof tmp)
                BAD("%s: bad text float at byte %zu", N, at);
            memcpy(tmp, s, l);
            tmp[l] = 0;
            char *e;
            double d = strtod(tmp, &e);
            if (*e)
                BAD("%s: bad text float at byte %zu", N, at);
            if ((v = new_value(vm, SLD_PK_FLOAT)))
                v->u.f = d;
            if ((st = push(vm, v, err)))
                return st;
            break;
        }
        case 'X':
        case 0x8c:
        case 0x8d: /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'T':
        case 'U': /* BINSTRING, SHORT_BINSTRING (Python 2 str) */
        case 'B':
        case 'C':
        case 0x8e:
        case 0x96: { /* BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8 */
            int nb = (op == 0x8c || op == 'U' || op == 'C') ? 1
                     : (op == 0x8d || op == 0x8e || op == 0x96) ? 8
                                                                : 4;
            if ((st = need(vm, (size_t)nb, "a string length", err)))
                return st;
            uint64_t l = rd_le(vm->buf + vm->pos, nb);
            vm->pos += (size_t)nb;
            if (l > vm->len - vm->pos)
                BAD("%s: pickle truncated: a %llu-byte string at byte %zu runs past the end "
                    "(%zu bytes left)",
                    N, (unsigned long long)l, at, vm->len - vm->pos);
            bool bytes = op == 'B' || op == 'C' || op == 0x8e || op == 0x96;
            v = new_value(vm, bytes ? SLD_PK_BYTES : SLD_PK_STR);
            if (v) {
                v->u.str.s = (const char *)vm->buf + vm->pos;
                v->u.str.len = (size_t)l;
            }
            vm->pos += (size_t)l;
            if ((st = push(vm, v, err)))
                return st;
            break;
        }
        case ')': /* EMPTY_TUPLE */
            if ((st = push(vm, make_seq(vm, SLD_PK_TUPLE, NULL, 0), err)))
                return st;
            break;
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            size_t k = (size_t)(op - 0x84);
            if (vm->sp < mark_base(vm) + k)
                BAD("%s: corrupt pickle: stack underflow at byte %zu", N, at);
            vm->sp -= k;
            if ((st = push(vm, make_seq(vm, SLD_PK_TUPLE, vm->stack + vm->sp, k), err)))
                return st;
            break;
        }
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 0x91: /* FROZENSET */
            if ((st = pop_mark(vm, &items, &n, err)))
                return st;
            if ((st = push(vm,
                           make_seq(vm,
                                    op == 't'   ? SLD_PK_TUPLE
                                    : op == 'l' ? SLD_PK_LIST
                                                : SLD_PK_SET,
                                    items, n),
                           err)))
                return st;
            break;
        case ']': /* EMPTY_LIST */
        case '}': /* EMPTY_DICT */
        case 0x8f: /* EMPTY_SET */
            if ((st = push(vm,
                           new_value(vm, op == ']'   ? SLD_PK_LIST
                                         : op == '}' ? SLD_PK_DICT
                                                     : SLD_PK_SET),
                           err)))
                return st;
            break;
        case 'd': /* DICT */
            if ((st = pop_mark(vm, &items, &n, err)))
                return st;
            if (n % 2)
                BAD("%s: corrupt pickle: DICT with an odd item count at byte %zu", N, at);
            if ((st = push(vm, make_seq(vm, SLD_PK_DICT, items, n), err)))
                return st;
            break;
        case 'a': /* APPEND */
            if ((st = pop(vm, &v, err)) || (st = top(vm, &w, err)))
                return st;
            if (w->kind != SLD_PK_LIST)
                BAD("%s: corrupt pickle: APPEND to a non-list at byte %zu", N, at);
            if ((st = seq_push(vm, w, v, err)))
                return st;
            break;
        case 'e':    /* APPENDS */
        case 0x90: { /* ADDITEMS */
            if ((st = pop_mark(vm, &items, &n, err)) || (st = top(vm, &w, err)))
                return st;
            if (w->kind != (op == 'e' ? SLD_PK_LIST : SLD_PK_SET))
                BAD("%s: corrupt pickle: %s to a %s at byte %zu", N,
                    op == 'e' ? "APPENDS" : "ADDITEMS", op == 'e' ? "non-list" : "non-set", at);
            for (size_t i = 0; i < n; i++)
                if ((st = seq_push(vm, w, items[i], err)))
                    return st;
            break;
        }
        case 's': /* SETITEM */
            if ((st = pop(vm, &v, err)) || (st = pop(vm, &x, err)) || (st = top(vm, &w, err)))
                return st;
            if (w->kind != SLD_PK_DICT)
                BAD("%s: corrupt pickle: SETITEM on a non-dict at byte %zu", N, at);
            if ((st = seq_push(vm, w, x, err)) || (st = seq_push(vm, w, v, err)))
                return st;
            break;
        case 'u': /* SETITEMS */
            if ((st = pop_mark(vm, &items, &n, err)) || (st = top(vm, &w, err)))
                return st;
            if (w->kind != SLD_PK_DICT || n % 2)
                BAD("%s: corrupt pickle: SETITEMS on a non-dict or with an odd count at byte "
                    "%zu",
                    N, at);
            for (size_t i = 0; i < n; i++)
                if ((st = seq_push(vm, w, items[i], err)))
                    return st;
            break;
        case 'q':
        case 'r': { /* BINPUT, LONG_BINPUT */
            int nb = op == 'q' ? 1 : 4;
            if ((st = need(vm, (size_t)nb, "a memo index", err)))
                return st;
            uint64_t idx = rd_le(vm->buf + vm->pos, nb);
            vm->pos += (size_t)nb;
            if ((st = memo_put(vm, idx, err)))
                return st;
            break;
        }
        case 0x94: { /* MEMOIZE: the next free index */
            if ((st = memo_put(vm, vm->memo_count, err)))
                return st;
            break;
        }
        case 'h':
        case 'j': { /* BINGET, LONG_BINGET */
            int nb = op == 'h' ? 1 : 4;
            if ((st = need(vm, (size_t)nb, "a memo index", err)))
                return st;
            uint64_t idx = rd_le(vm->buf + vm->pos, nb);
            vm->pos += (size_t)nb;
            if ((st = memo_get(vm, idx, err)))
                return st;
            break;
        }
        case 'p':
        case 'g': { /* PUT, GET (text) */
            const char *s;
            size_t l;
            if ((st = read_line(vm, &s, &l, err)))
                return st;
            uint64_t idx = 0;
            if (l == 0 || l > 18)
                BAD("%s: bad memo index at byte %zu", N, at);
            for (size_t i = 0; i < l; i++) {
                if (s[i] < '0' || s[i] > '9')
                    BAD("%s: bad memo index at byte %zu", N, at);
                idx = idx * 10 + (uint64_t)(s[i] - '0');
            }
            if ((st = op == 'p' ? memo_put(vm, idx, err) : memo_get(vm, idx, err)))
                return st;
            break;
        }
        case 'c':
        case 'i': { /* GLOBAL, INST: "module\nname\n" */
            const char *m, *nm;
            size_t ml, nl;
            if ((st = read_line(vm, &m, &ml, err)) || (st = read_line(vm, &nm, &nl, err)) ||
                (st = find_global(vm, m, ml, nm, nl, err)))
                return st;
            if (op == 'i') {
                sld_pk_value *fn = vm->stack[--vm->sp], *args;
                if ((st = pop_mark(vm, &items, &n, err)))
                    return st;
                if (!(args = make_seq(vm, SLD_PK_TUPLE, items, n)))
                    FAIL(SLD_ERR_NOMEM, "%s: out of memory", N);
                if ((st = call(vm, fn, args, err)))
                    return st;
            }
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if ((st = pop(vm, &w, err)) || (st = pop(vm, &v, err)))
                return st;
            if (v->kind != SLD_PK_STR || w->kind != SLD_PK_STR)
                BAD("%s: corrupt pickle: STACK_GLOBAL of non-strings at byte %zu", N, at);
            if ((st = find_global(vm, v->u.str.s, v->u.str.len, w->u.str.s, w->u.str.len, err)))
                return st;
            break;
        case 'R':    /* REDUCE: callable, args */
        case 0x81: { /* NEWOBJ: cls, args */
            if ((st = pop(vm, &v, err)) || (st = pop(vm, &w, err)) || (st = call(vm, w, v, err)))
                return st;
            break;
        }
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs (kwargs must be empty) */
            if ((st = pop(vm, &x, err)) || (st = pop(vm, &v, err)) || (st = pop(vm, &w, err)))
                return st;
            if (x->kind != SLD_PK_DICT || x->u.seq.n)
                BAD("%s: NEWOBJ_EX with keyword arguments at byte %zu", N, at);
            if ((st = call(vm, w, v, err)))
                return st;
            break;
        case 'o': { /* OBJ: MARK cls args... */
            if ((st = pop_mark(vm, &items, &n, err)))
                return st;
            if (n < 1)
                BAD("%s: corrupt pickle: OBJ without a class at byte %zu", N, at);
            sld_pk_value *fn = items[0], *args = make_seq(vm, SLD_PK_TUPLE, items + 1, n - 1);
            if (!args)
                FAIL(SLD_ERR_NOMEM, "%s: out of memory", N);
            if ((st = call(vm, fn, args, err)))
                return st;
            break;
        }
        case 'b': /* BUILD: obj.__setstate__(state); we keep plain data only */
            if ((st = pop(vm, &v, err)) || (st = top(vm, &w, err)))
                return st;
            if (w->kind != SLD_PK_DICT && w->kind != SLD_PK_OBJECT && w->kind != SLD_PK_TENSOR)
                BAD("%s: corrupt pickle: BUILD on a value that has no state at byte %zu", N, at);
            break; /* OrderedDict._metadata, Parameter state, inert objects: dropped */
        case 'Q': /* BINPERSID */
            if ((st = pop(vm, &v, err)) || (st = persistent(vm, v, err)))
                return st;
            break;
        case 'P': /* PERSID (text): torch never writes it */
            FAIL(SLD_ERR_UNSUPPORTED, "%s: text persistent id at byte %zu (not a torch.save file)",
                 N, at);
        case 0x82:
        case 0x83:
        case 0x84: /* EXT1/2/4: the copyreg extension registry names globals by number */
            FAIL(SLD_ERR_UNSUPPORTED,
                 "%s: refused: extension-registry opcode 0x%02x at byte %zu names a Python "
                 "global by number; sld admits only listed globals",
                 N, op, at);
        case 0x97:
        case 0x98: /* NEXT_BUFFER, READONLY_BUFFER: out-of-band buffers */
            FAIL(SLD_ERR_UNSUPPORTED, "%s: out-of-band pickle buffers (opcode 0x%02x at byte %zu) "
                 "are not supported", N, op, at);
        case 'S':
        case 'V': /* STRING, UNICODE (protocol 0 quoted text) */
            FAIL(SLD_ERR_UNSUPPORTED,
                 "%s: protocol-0 text string (opcode '%c' at byte %zu); torch.save writes "
                 "protocol 2 or later",
                 N, op, at);
        default:
            BAD("%s: corrupt pickle: unknown opcode 0x%02x at byte %zu", N, op, at);
        }
    }
}

sld_pk_value *const *sld_pickle_storages(const sld_pickle *vm, size_t *n)
{
    *n = vm->n_storages;
    return vm->storages;
}

sld_status sld_pickle_run(sld_pickle **out, sld_pk_value **root, const uint8_t *buf, size_t len,
                          size_t *used, const char *name, sld_error *err)
{
    *out = NULL;
    *root = NULL;
    sld_pickle *vm = sld_calloc(1, sizeof *vm);
    if (!vm)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
    vm->buf = buf;
    vm->len = len;
    vm->name = name;
    vm->none_v.kind = SLD_PK_NONE;
    vm->true_v.kind = SLD_PK_BOOL;
    vm->true_v.u.b = true;
    vm->false_v.kind = SLD_PK_BOOL;
    sld_status st = run(vm, root, err);
    vm->name = NULL; /* the caller's string need not outlive the run */
    if (st) {
        sld_pickle_free(vm);
        *root = NULL;
        return st;
    }
    if (used)
        *used = vm->pos;
    *out = vm;
    return SLD_OK;
}
