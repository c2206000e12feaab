/*
 * safetensors.h — read-only, validated access to .safetensors files, and a
 * writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets:[a,b]}, "__metadata__": {str: str}},
 * then the data block. Everything is validated before any use: header length,
 * JSON, dtype, shape x element size == byte span, spans inside the data block
 * and pairwise disjoint, all arithmetic overflow-checked. Errors name the file
 * and the tensor.
 */
#ifndef SLD_SAFETENSORS_H
#define SLD_SAFETENSORS_H

#include "core/core.h"

typedef enum {
    SLD_DT_F32 = 0,
    SLD_DT_F16,
    SLD_DT_BF16,
    SLD_DT_F64,
    SLD_DT_I64,
    SLD_DT_I32,
    SLD_DT_I16,
    SLD_DT_I8,
    SLD_DT_U8,
    SLD_DT_BOOL,
    SLD_DT_COUNT
} sld_dtype;

#define SLD_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    sld_dtype dtype;
    int ndim;
    int64_t shape[SLD_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* inside the mapping; not necessarily aligned */
} sld_st_tensor;

typedef struct sld_st_file sld_st_file;

size_t sld_dtype_size(sld_dtype t);
const char *sld_dtype_name(sld_dtype t);

/* Opens and validates path (mmap, read-only). The format is told by its
 * first bytes: a PyTorch checkpoint (zip "PK\3\4" or a legacy pickle, 0x80)
 * is read by io/torch_ckpt.c into the same tensor table — names relative to
 * the state dict (see torch_ckpt.h) — so every loader takes .ckpt/.pth/.bin
 * files through this one call; anything else is parsed as safetensors. */
sld_status sld_st_open(sld_st_file **out, const char *path, sld_error *err);
/* Flags for the _ex variants. */
enum {
    SLD_ST_ALL_OBJECTS = 1 /* PyTorch files: every tensor, named by its full object path */
};
sld_status sld_st_open_ex(sld_st_file **out, const char *path, int flags, sld_error *err);
/* Same checks on a buffer in memory (used by the fuzz target and tests). The
 * buffer must outlive the file object; name is used in messages. */
sld_status sld_st_open_mem(sld_st_file **out, const void *buf, size_t len, const char *name,
                           sld_error *err);
sld_status sld_st_open_mem_ex(sld_st_file **out, const void *buf, size_t len, const char *name,
                              int flags, sld_error *err);
void sld_st_close(sld_st_file *f);

/* "safetensors", "PyTorch zip" or "PyTorch legacy". */
const char *sld_st_format(const sld_st_file *f);
/* PyTorch files: the object path the tensor table was taken from ("" = the
 * top level, "state_dict" for SD checkpoints). */
const char *sld_st_root(const sld_st_file *f);
/* Metadata pairs in file order (safetensors __metadata__; for PyTorch files
 * the non-tensor values: "epoch" = "3", ...). Returns the key or NULL. */
int sld_st_meta_count(const sld_st_file *f);
const char *sld_st_meta_at(const sld_st_file *f, int i, const char **value);

const char *sld_st_path(const sld_st_file *f);
int sld_st_count(const sld_st_file *f);
const sld_st_tensor *sld_st_at(const sld_st_file *f, int i); /* sorted by name */
const sld_st_tensor *sld_st_find(const sld_st_file *f, const char *name); /* NULL if absent */
/* __metadata__ value for key, or NULL. */
const char *sld_st_meta(const sld_st_file *f, const char *key);

/* Converts a floating tensor (F32/F16/BF16/F64) to float32 into dst
 * (numel floats). Returns SLD_ERR_SHAPE for other dtypes. */
sld_status sld_st_to_f32(const sld_st_tensor *t, float *dst, sld_error *err);

/* Reads an F32 tensor by name with an exact expected shape (ndim entries),
 * converting F16/BF16/F64 too: returns a new float buffer (caller frees) or
 * NULL with err set (missing, wrong shape/dtype, OOM). Convenience for tests
 * and debug tools. */
float *sld_st_read_f32(const sld_st_file *f, const char *name, int ndim, const int64_t *shape,
                       sld_error *err);

/* Weight files in a model folder, in order of preference (NULL-terminated):
 * .safetensors first, then the PyTorch pickles older folders hold. */
extern const char *const sld_st_names_transformers[]; /* model.safetensors, pytorch_model.bin */
extern const char *const sld_st_names_diffusers[];    /* diffusion_pytorch_model{,.fp16}.{safetensors,bin} */
/* dir/<the first of names that exists>, or dir/names[0] when none does (so
 * the open error names the preferred file). New string (sld_free) or NULL. */
char *sld_st_pick(const char *dir, const char *const *names);

/* ---- hooks for other readers in io/ (torch_ckpt.c) ------------------------- */

const uint8_t *sld_st_map(const sld_st_file *f, size_t *len);
/* Takes buf (sld_malloc'd; freed on close, also on error). */
sld_status sld_st_keep(sld_st_file *f, void *buf, sld_error *err);
/* Installs the tensor table and takes t, names (n + 1 entries, NULL
 * terminated) and meta (2 * n_meta strings) — also on error; format is a
 * static string. Sorts by name; a repeated name is an error. */
sld_status sld_st_set_table(sld_st_file *f, const char *format, const char *root, sld_st_tensor *t,
                            char **names, int n, char **meta, int n_meta, sld_error *err);

/* ---- writer ------------------------------------------------------------ */

typedef struct {
    const char *name;
    sld_dtype dtype;
    int ndim;
    int64_t shape[SLD_ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes */
} sld_st_out;

/* Writes tensors (and optional metadata pairs, meta[2i]=key meta[2i+1]=value)
 * to path atomically. */
sld_status sld_st_write(const char *path, const sld_st_out *t, int n, const char *const *meta,
                        int n_meta, sld_error *err);

/* The same, with each tensor's bytes produced on demand: fill(user, i, dst)
 * writes tensor i (t[i].data is ignored) into a scratch buffer the size of
 * the largest tensor, streamed out before the next call. */
typedef sld_status (*sld_st_fill_fn)(void *user, int i, void *dst, sld_error *err);
sld_status sld_st_write_fill(const char *path, const sld_st_out *t, int n,
                             const char *const *meta, int n_meta, sld_st_fill_fn fill,
                             void *user, sld_error *err);

/* fp16/bf16 conversions (round to nearest even). */
float sld_f16_to_f32(uint16_t h);
uint16_t sld_f32_to_f16(float f);
float sld_bf16_to_f32(uint16_t h);
uint16_t sld_f32_to_bf16(float f);

#endif /* SLD_SAFETENSORS_H */
