/*
 * core/tensor/checkpoint: safetensors files holding typed tensors and string metadata.
 *
 * Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, a
 * JSON header of N bytes {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]},
 * ..., "__metadata__": {"k": "v"}}, then the raw little-endian tensor bytes. JSON through
 * json-c. Little-endian hosts only.
 *
 * Two layers:
 *   - rlab_ckpt, an in-memory container of named tensors (F32, I32, I64; 0 to 8 dimensions)
 *     and metadata strings, written and read as one file. A model stores every tensor it has
 *     (parameters, but also integer arrays such as user histories in CSR form):
 *
 *         rlab_ckpt *ck = rlab_ckpt_new(&err);
 *         rlab_ckpt_add_params(ck, P, "params.", &err);
 *         rlab_ckpt_add(ck, "hist.indptr", RLAB_DT_I64, 1, (int64_t[]){nu + 1}, indptr, &err);
 *         rlab_ckpt_set_meta(ck, "reclab.kind", "sasrec", &err);
 *         rlab_ckpt_write(ck, path, &err);              // data is borrowed until here
 *         rlab_ckpt_free(ck);
 *
 *         rlab_ckpt *in = rlab_ckpt_read(path, &err);   // validated, owns its bytes
 *         rlab_ckpt_get_params(in, P, "params.", 1, &err);
 *         const int64_t *ip = rlab_ckpt_tensor(in, "hist.indptr", RLAB_DT_I64, NULL, NULL, &err);
 *
 *   - rlab_ckpt_save / rlab_ckpt_load / rlab_ckpt_meta: one parameter block (plus optimiser
 *     moments) per file, built on the container. Names are the parameters' dotted names.
 *
 * Files written: the header is space-padded to a multiple of 8 bytes and tensors with 8-byte
 * elements come first in the data, so every tensor is aligned to its element size in the
 * file (as the reference writer does). Files read: any tensor order and alignment; every
 * tensor's bytes are copied to a 64-byte aligned slot.
 */
#ifndef RLAB_TENSOR_CHECKPOINT_H
#define RLAB_TENSOR_CHECKPOINT_H

#include "tensor/optim.h"
#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rlab_kv {
    const char *key, *value;
} rlab_kv;

/* ---- the container ---------------------------------------------------------------------- */
/* Element types, with their safetensors names "F32", "I32", "I64". */
typedef enum rlab_dtype { RLAB_DT_F32 = 1, RLAB_DT_I32, RLAB_DT_I64 } rlab_dtype;

#define RLAB_CKPT_MAXDIM 8    /* dimensions of a tensor */
#define RLAB_CKPT_MAXNAME 255 /* bytes of a tensor name, without the NUL */

/* Tensors and __metadata__ of one safetensors file, in memory. */
typedef struct rlab_ckpt rlab_ckpt;

/* An empty container, for writing. Free with rlab_ckpt_free. */
RLAB_API rlab_ckpt *rlab_ckpt_new(rlab_err *err);
/* Free a container from rlab_ckpt_new / rlab_ckpt_read / rlab_ckpt_read_mem. NULL is a no-op. */
RLAB_API void rlab_ckpt_free(rlab_ckpt *ck);

/* Add a tensor. name: 1 to RLAB_CKPT_MAXNAME bytes, unique in ck, not "__metadata__";
 * ndim 0..RLAB_CKPT_MAXDIM (0 = a scalar, one element); shape[0..ndim) >= 0 (may be NULL when
 * ndim is 0). data holds the elements in row-major order and is BORROWED: it must stay valid
 * and unchanged until rlab_ckpt_write / rlab_ckpt_write_mem or rlab_ckpt_free (it is not
 * copied); it may be NULL when the element count is 0. EINVAL on a bad argument or a
 * duplicate name (ck unchanged). */
RLAB_API int rlab_ckpt_add(rlab_ckpt *ck, const char *name, rlab_dtype dt, int ndim,
                           const int64_t *shape, const void *data, rlab_err *err);
/* Add every tensor of p, in block order, as an F32 tensor "<prefix><param name>" (prefix may
 * be NULL or ""), borrowing p's data like rlab_ckpt_add. All or nothing: on error none of
 * them is added. */
RLAB_API int rlab_ckpt_add_params(rlab_ckpt *ck, const rlab_params *p, const char *prefix,
                                  rlab_err *err);
/* Set a metadata string (key and value are copied). Setting a key again replaces its value
 * and keeps its position. */
RLAB_API int rlab_ckpt_set_meta(rlab_ckpt *ck, const char *key, const char *value, rlab_err *err);

/* Write ck to path atomically (a temporary file in the same folder, fsync, rename). The
 * header lists __metadata__ (always, possibly empty) then the tensors in the order they
 * were added. EIO names path; the temporary file is removed on error. */
RLAB_API int rlab_ckpt_write(const rlab_ckpt *ck, const char *path, rlab_err *err);
/* The same bytes into a new buffer (*out, *n), for the SQLite store: *out is the caller's to
 * free with rlab_free. On error *out = NULL, *n = 0. */
RLAB_API int rlab_ckpt_write_mem(const rlab_ckpt *ck, void **out, size_t *n, rlab_err *err);

/* Read a whole file. Every header entry is validated before the function returns: dtype F32,
 * I32 or I64 (others EFORMAT naming the tensor), shape of non-negative integers, data_offsets
 * [begin, end] holding exactly shape x element size bytes, tensors covering the data section
 * contiguously with no overlap, no gap and no trailing byte, file not truncated, header
 * length at most 100 MiB and inside the file, __metadata__ an object of strings. The
 * result owns the tensors' bytes. NULL on error: ENOTFOUND (no such file), EIO, EFORMAT or
 * ENOMEM, the message naming the file (and the tensor). */
RLAB_API rlab_ckpt *rlab_ckpt_read(const char *path, rlab_err *err);
/* Same from the n bytes at buf (copied; buf may be freed afterwards). name replaces the path
 * in error messages (NULL: "<memory>"). */
RLAB_API rlab_ckpt *rlab_ckpt_read_mem(const void *buf, size_t n, const char *name, rlab_err *err);

/* Metadata value of key, or NULL. Valid until the key is set again or ck is freed. */
RLAB_API const char *rlab_ckpt_meta_get(const rlab_ckpt *ck, const char *key);
/* Number of metadata keys and the i-th key (0 <= i < count; NULL outside). Order: the file's
 * order for a container read, else the order keys were first set. */
RLAB_API int rlab_ckpt_meta_count(const rlab_ckpt *ck);
RLAB_API const char *rlab_ckpt_meta_key(const rlab_ckpt *ck, int i);

/* The tensor name with dtype dt: returns its data (borrowed from ck; never NULL on success,
 * even for 0 elements) and fills *ndim and shape[0..ndim) (room for RLAB_CKPT_MAXDIM);
 * ndim and shape may be NULL. On error NULL with RLAB_ENOTFOUND ("<file>: no tensor 'x'") or
 * RLAB_EFORMAT ("<file>: tensor 'x' is I32, F32 expected"). For a container not read from a
 * file, <file> is "checkpoint". */
RLAB_API const void *rlab_ckpt_tensor(const rlab_ckpt *ck, const char *name, rlab_dtype dt,
                                      int *ndim, int64_t *shape, rlab_err *err);
/* Number of tensors and the i-th name (0 <= i < count; NULL outside). Order: the header's
 * order for a container read, else the order tensors were added. */
RLAB_API int rlab_ckpt_tensor_count(const rlab_ckpt *ck);
RLAB_API const char *rlab_ckpt_tensor_name(const rlab_ckpt *ck, int i);

/* Copy the tensors "<prefix><name>" into every tensor of p (prefix may be NULL or ""): each
 * must exist (else ENOTFOUND "tensor 'x' not found"), be F32 (else EFORMAT) and have the
 * same shape (else EINVAL "tensor 'x': shape [3, 4] in the file, [4, 3] expected"). When
 * strict, every tensor of ck whose name starts with prefix must be one of p's (else EINVAL;
 * with an empty prefix that includes optimiser moments "opt.m.*"). Everything is checked
 * before anything is copied: on error p is untouched. Messages name the file. */
RLAB_API int rlab_ckpt_get_params(const rlab_ckpt *ck, rlab_params *p, const char *prefix,
                                  int strict, rlab_err *err);

/* ---- one parameter block per file ------------------------------------------------------- */
/* Write every tensor of p (and, when opt != NULL, its moments as "opt.m.<name>" /
 * "opt.v.<name>" plus "opt.step" in the metadata) to path, atomically (tmp + rename).
 * meta: n_meta string pairs stored in __metadata__. */
RLAB_API int rlab_ckpt_save(const char *path, const rlab_params *p, const rlab_opt *opt,
                            const rlab_kv *meta, int n_meta, rlab_err *err);
/* Load into an existing block: every tensor of p must be present with the same shape and
 * dtype F32 (extra tensors in the file are ignored unless strict; "opt.*" moments never count
 * as extra). opt may be NULL; when given, its moments and "opt.step" must be in the file.
 * The whole file is read and validated (as rlab_ckpt_read) before anything is copied, so on
 * EINVAL (shape), EFORMAT (dtype, truncated file, bad header) or ENOTFOUND (missing tensor or
 * file) the block is untouched. Errors name the file and the tensor ("ckpt.safetensors:
 * tensor 'w': shape [3, 4] in the file, [4, 3] expected"). */
RLAB_API int rlab_ckpt_load(const char *path, rlab_params *p, rlab_opt *opt, int strict,
                            rlab_err *err);
/* Read one metadata value into buf (RLAB_ENOTFOUND when absent). Reads and validates the
 * header only, not the tensor bytes. */
RLAB_API int rlab_ckpt_meta(const char *path, const char *key, char *buf, size_t size,
                            rlab_err *err);

#endif /* RLAB_TENSOR_CHECKPOINT_H */
