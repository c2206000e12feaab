/*
 * npz.h — numpy .npy arrays and .npz archives (a zip of .npy members), the
 * format of pytorch-fid's statistics files (`--save-stats`: `mu` [D] and
 * `sigma` [D,D], float64, np.savez_compressed).
 *
 * Reading: .npy versions 1.0, 2.0 and 3.0; little-endian float64 ('<f8') or
 * float32 ('<f4') data (converted to double); C or Fortran order (Fortran
 * arrays are transposed into C order); up to 4 dimensions. The header dict is
 * parsed with a bounded cursor; every size is overflow-checked and must match
 * the bytes present. Members are found by name ("mu" finds "mu.npy").
 * Writing: .npy 1.0, '<f8', C order, header padded so the data starts at a
 * multiple of 64 (what numpy >= 1.24 writes); .npz members deflated, the
 * archive written atomically.
 */
#ifndef SLD_IO_NPZ_H
#define SLD_IO_NPZ_H

#include "core/core.h"

#define SLD_NPY_MAX_DIMS 4

typedef struct {
    int ndim;
    int64_t shape[SLD_NPY_MAX_DIMS];
    size_t numel;
    double *data; /* C order, sld_malloc'd; owned by the array */
} sld_npy;

void sld_npy_free(sld_npy *a); /* frees data, keeps the struct */

/* Parses one .npy file image (name is used in messages). Errors:
 * SLD_ERR_FORMAT (bad magic, header, dtype, size mismatch), SLD_ERR_NOMEM. */
sld_status sld_npy_parse(sld_npy *out, const void *buf, size_t len, const char *name,
                         sld_error *err);
/* Serialises a float64 array as .npy 1.0; *out (sld_malloc) owned by the caller. */
sld_status sld_npy_serialize(const double *data, int ndim, const int64_t *shape, uint8_t **out,
                             size_t *len, sld_error *err);

typedef struct sld_npz sld_npz;

/* Opens an .npz held in memory (buf must outlive the object) or a file. */
sld_status sld_npz_open_mem(sld_npz **out, const void *buf, size_t len, const char *name,
                            sld_error *err);
sld_status sld_npz_open(sld_npz **out, const char *path, sld_error *err);
void sld_npz_close(sld_npz *z);
/* Reads member `key` (or `key`.npy). SLD_ERR_FORMAT when absent, naming the
 * members the archive has. */
sld_status sld_npz_get(sld_npz *z, const char *key, sld_npy *out, sld_error *err);

/* Writes n float64 arrays as a deflated .npz, atomically. keys without the
 * ".npy" suffix. */
sld_status sld_npz_write(const char *path, int n, const char *const *keys,
                         const double *const *data, const int *ndims,
                         const int64_t *const *shapes, sld_error *err);

#endif /* SLD_IO_NPZ_H */
