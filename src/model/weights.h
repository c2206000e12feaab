/*
 * weights.h — the weight store networks bind their parameters from.
 *
 * A table from canonical (diffusers/transformers) tensor names to views of
 * tensors in mmap'd safetensors files. Loaders fill it: a diffusers folder
 * adds a whole file; a single-file LDM checkpoint adds renamed views through
 * the name-conversion layer (model/ckpt_map.c), including slices of fused
 * tensors (OpenCLIP in_proj) and reshaped views (1x1 conv <-> linear).
 * Networks then ask for float32 data by canonical name and exact shape;
 * F16/BF16/F64 (or unaligned F32) data is converted once and cached here.
 * The store records which entries were used so loaders can report unused
 * or missing tensors.
 */
#ifndef SLD_WEIGHTS_H
#define SLD_WEIGHTS_H

#include "io/safetensors.h"

typedef struct sld_weights sld_weights;

sld_status sld_weights_new(sld_weights **out, const char *label, sld_error *err);
void sld_weights_free(sld_weights *w);

/* Adds every tensor of f whose name starts with prefix (NULL or "" = all),
 * under its name with the prefix removed. f must outlive w. A name already
 * present is an error. */
sld_status sld_weights_add_file(sld_weights *w, const sld_st_file *f, const char *prefix,
                                sld_error *err);
/* Adds one entry: a view of src starting at element elem_off with the given
 * shape (numel must fit inside src). */
sld_status sld_weights_add_view(sld_weights *w, const char *name, const sld_st_tensor *src,
                                size_t elem_off, int ndim, const int64_t *shape, sld_error *err);

/* Shape of an entry: returns ndim, or -1 when absent. */
int sld_weights_shape(const sld_weights *w, const char *name, int64_t shape[SLD_ST_MAX_DIMS]);
bool sld_weights_has(const sld_weights *w, const char *name);

/* float32 data of an entry with an exact expected shape. Returns NULL with
 * err set when missing ("<label>: tensor 'x' is missing"), when the shape
 * differs ("'x' is [a,b], expected [c,d]") or the dtype is not a float. The
 * pointer stays valid until sld_weights_free. Thread-unsafe (load time). */
const float *sld_weights_f32(sld_weights *w, const char *name, int ndim, const int64_t *shape,
                             sld_error *err);
/* Variadic-shape convenience: int dims terminated by -1, e.g.
 * sld_weights_get(w, err, "conv.weight", 320, 4, 3, 3, -1). */
const float *sld_weights_get(sld_weights *w, sld_error *err, const char *name, ...);

int sld_weights_count(const sld_weights *w);
int sld_weights_used_count(const sld_weights *w);
/* Name of the i-th entry and whether it has been used. */
const char *sld_weights_name(const sld_weights *w, int i, bool *used);
const char *sld_weights_label(const sld_weights *w);
/* Bytes of converted float32 copies held by the store. */
size_t sld_weights_converted_bytes(const sld_weights *w);
/* Frees the converted float32 copy of an entry, if it has one, and hints the
 * kernel to reclaim the entry's source pages (a later sld_weights_f32 reads
 * and converts again). For networks that packed the tensor into their own
 * layout: pointers returned earlier for this entry become invalid. Unknown
 * names are ignored. */
void sld_weights_release(sld_weights *w, const char *name);

#endif /* SLD_WEIGHTS_H */
