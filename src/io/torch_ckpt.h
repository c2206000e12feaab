/*
 * torch_ckpt.h — PyTorch checkpoints (torch.save: .ckpt, .pth, .pt, .bin)
 * read into the safetensors tensor table (sld_st_file), and a writer.
 *
 * Formats (docs/CHECKPOINTS.md):
 *   - zip (torch >= 1.6): <dir>/data.pkl, <dir>/data/<key> per storage,
 *     <dir>/version, optionally <dir>/byteorder. Read with minizip over the
 *     file's mmap: a stored entry is used in place (its data offset comes
 *     from unzGetCurrentFileZStreamPos64), a deflated one is inflated once
 *     into a buffer the file object owns.
 *   - legacy (torch < 1.6): pickles of the magic number, the protocol
 *     version (1001), system info (byte order), the object and the list of
 *     storage keys; then each storage as an int64 element count and raw bytes
 *     (used in place).
 * The object pickle runs on the code-free machine of pickle.h.
 *
 * Names: by default (flags 0) the tensors of the state dict: the value of
 * "state_dict" when the top level is a dict holding one (repeatedly, as
 * diffusers' single-file loader does; Lightning .ckpt files), else of
 * "model" or "module" when the top level holds no tensor itself and that
 * entry is a dict with tensors, else the top level; names are dotted paths
 * below it (list and tuple items by index). With SLD_ST_ALL_OBJECTS every
 * tensor anywhere, named by its full path ("state_dict.model.…",
 * "optimizer_states.0.…"). Non-tensor scalars (epoch, global_step, ...)
 * become metadata pairs under their full path.
 *
 * Tensors: every dtype of sld_dtype; a contiguous tensor is a view into the
 * file (or the inflated storage); a non-contiguous view (transpose, strided
 * slice, expand) is copied once into contiguous memory. Big-endian files are
 * refused. Every size, offset and extent is overflow-checked against the
 * storage's bytes.
 */
#ifndef SLD_TORCH_CKPT_H
#define SLD_TORCH_CKPT_H

#include "io/safetensors.h"

/* True when the first bytes look like a PyTorch checkpoint (zip local
 * header, or a pickle PROTO opcode). */
bool sld_torch_sniff(const uint8_t *p, size_t n);

/* Fills f (already mapped: sld_st_map) from a PyTorch checkpoint. flags:
 * SLD_ST_ALL_OBJECTS or 0. On error f holds whatever it took and the caller
 * closes it. */
sld_status sld_torch_parse(sld_st_file *f, int flags, sld_error *err);

/* Writes tensors as a torch.save zip-format checkpoint (pickle protocol 2,
 * stored entries aligned to 64 bytes, as torch writes them), atomically.
 * wrap: NULL writes the state dict at the top level; a key (e.g.
 * "state_dict") nests it there, as SD .ckpt files hold it. Readable by
 * torch.load and by sld. */
sld_status sld_torch_write(const char *path, const sld_st_out *t, int n, const char *wrap,
                           sld_error *err);

#endif /* SLD_TORCH_CKPT_H */
