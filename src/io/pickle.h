/*
 * pickle.h — a Python pickle virtual machine that cannot run code, for the
 * object graphs torch.save writes (state dicts of tensors).
 *
 * It executes the data opcodes of protocols 2-5 (and the few protocol 0/1
 * forms protocol-2 pickles still use) and builds plain values: None, bools,
 * ints, floats, strings, bytes, tuples, lists, dicts, sets. A GLOBAL is
 * admitted only when it is in a fixed table (pickle.c, k_globals; the reason
 * for each entry is in docs/CHECKPOINTS.md); anything else — os.system,
 * builtins.eval, getattr, ... — stops the machine with an error naming it.
 * "Calling" (REDUCE, NEWOBJ, INST, OBJ) is only possible on admitted
 * callables, each implemented here as a pure value constructor: OrderedDict
 * makes a dict, torch._utils._rebuild_tensor_v2 makes a tensor record, an
 * inert class (numpy scalar, Lightning callback) makes an opaque object.
 * Nothing is ever looked up by name at run time.
 *
 * Persistent ids (BINPERSID) are torch storages: ('storage', <storage type>,
 * key, location, numel[, view]) becomes a STORAGE value; the file reader
 * (torch_ckpt.c) later binds keys to bytes.
 *
 * Values live in the machine's pool and die with sld_pickle_free. Strings
 * and bytes point into the pickle buffer (which must outlive the machine).
 * Limits (all errors, never crashes): memo indices below the pickle length,
 * MARK nesting depth, lengths inside the buffer, tensor rank <= 8, shapes and
 * extents overflow-checked.
 */
#ifndef SLD_PICKLE_H
#define SLD_PICKLE_H

#include "io/safetensors.h"

typedef enum {
    SLD_PK_NONE = 0,
    SLD_PK_BOOL,
    SLD_PK_INT,
    SLD_PK_BIGINT, /* a LONG wider than 64 bits: raw little-endian bytes in str */
    SLD_PK_FLOAT,
    SLD_PK_STR,
    SLD_PK_BYTES,
    SLD_PK_TUPLE,
    SLD_PK_LIST,
    SLD_PK_SET,
    SLD_PK_DICT,
    SLD_PK_GLOBAL,  /* an admitted global (class, function, dtype) */
    SLD_PK_OBJECT,  /* an instance of an inert admitted class; contents dropped */
    SLD_PK_STORAGE, /* a torch storage (persistent id) */
    SLD_PK_TENSOR
} sld_pk_kind;

typedef struct sld_pk_value sld_pk_value;

typedef struct {
    const char *key; /* storage key (zip entry name under data/, legacy id) */
    size_t key_len;
    sld_dtype dtype; /* element type of the storage type (U8 for UntypedStorage) */
    bool untyped;
    uint64_t numel;  /* elements of dtype */
    /* legacy storage views (torch < 0.4): byte offset into the root storage */
    bool is_view;
    uint64_t view_offset; /* in elements */
    void *bound;     /* the reader's record for this storage (torch_ckpt.c) */
} sld_pk_storage;

typedef struct {
    sld_pk_value *storage; /* SLD_PK_STORAGE */
    sld_dtype dtype;
    int ndim;
    int64_t shape[SLD_ST_MAX_DIMS];
    int64_t stride[SLD_ST_MAX_DIMS]; /* in elements */
    uint64_t offset;                  /* in elements */
} sld_pk_tensor;

struct sld_pk_value {
    sld_pk_kind kind;
    int visiting; /* traversal guard (cycles) */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t len;
        } str; /* STR (UTF-8), BYTES, BIGINT */
        struct {
            sld_pk_value **v;
            size_t n, cap;
        } seq;  /* TUPLE, LIST, SET; DICT: v[2k] key, v[2k+1] value */
        int global; /* index into the allow table */
        sld_pk_storage storage;
        sld_pk_tensor tensor;
    } u;
};

typedef struct sld_pickle sld_pickle;

/* Runs the pickle in buf[0..len) until STOP. On success *vm holds the pool
 * (free with sld_pickle_free) and *root the result; *used (may be NULL)
 * receives the bytes consumed (a file may hold several pickles). name is
 * used in messages. */
sld_status sld_pickle_run(sld_pickle **vm, sld_pk_value **root, const uint8_t *buf, size_t len,
                          size_t *used, const char *name, sld_error *err);
void sld_pickle_free(sld_pickle *vm);
/* Every STORAGE value the run made (one per persistent id), in order. */
sld_pk_value *const *sld_pickle_storages(const sld_pickle *vm, size_t *n);

/* The allow table: its size and the i-th entry's module and name. */
int sld_pickle_allowed_count(void);
void sld_pickle_allowed(int idx, const char **module, const char **name);

#endif /* SLD_PICKLE_H */
