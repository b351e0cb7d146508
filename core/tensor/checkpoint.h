/*
 * core/tensor/checkpoint: parameter blocks to and from safetensors files.
 *
 * Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, a
 * JSON header of N bytes {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]},
 * ..., "__metadata__": {"k": "v"}}, then the raw little-endian tensor bytes. Names are the
 * parameters' dotted names. JSON through json-c.
 */
#ifndef RLAB_TENSOR_CHECKPOINT_H
#define RLAB_TENSOR_CHECKPOINT_H

#include "tensor/optim.h"
#include "tensor/tensor.h"

typedef struct rlab_kv {
    const char *key, *value;
} rlab_kv;

/* Write every tensor of p (and, when opt != NULL, its moments as "opt.m.<name>" /
 * "opt.v.<name>" plus "opt.step" in the metadata) to path, atomically (tmp + rename).
 * meta: n_meta string pairs stored in __metadata__. */
RLAB_API int rlab_ckpt_save(const char *path, const rlab_params *p, const rlab_opt *opt,
                            const rlab_kv *meta, int n_meta, rlab_err *err);
/* Load into an existing block: every tensor of p must be present with the same shape and
 * dtype F32 (extra tensors in the file are ignored unless strict; "opt.*" moments never count
 * as extra). opt may be NULL; when given, its moments and "opt.step" must be in the file.
 * The whole header is validated before anything is copied, so on EINVAL (shape), EFORMAT
 * (dtype, truncated file, bad header) or ENOTFOUND (missing tensor or file) the block is
 * untouched. Errors name the file and the tensor ("ckpt.safetensors: tensor 'w': shape
 * [3, 4] in the file, [4, 3] expected"). */
RLAB_API int rlab_ckpt_load(const char *path, rlab_params *p, rlab_opt *opt, int strict,
                            rlab_err *err);
/* Read one metadata value into buf (RLAB_ENOTFOUND when absent). */
RLAB_API int rlab_ckpt_meta(const char *path, const char *key, char *buf, size_t size,
                            rlab_err *err);

#endif /* RLAB_TENSOR_CHECKPOINT_H */
