/*
 * core/store/sha256: SHA-256 (FIPS 180-4), written for the session store's checksums of
 * datasets and artifacts. Streaming (init / update / final) plus one-shot helpers that
 * return the lowercase hex digest.
 *
 *     rlab_sha256 h;
 *     unsigned char digest[32];
 *     rlab_sha256_init(&h);
 *     rlab_sha256_update(&h, "ab", 2);
 *     rlab_sha256_update(&h, "c", 1);
 *     rlab_sha256_final(&h, digest);          // ba7816bf... ("abc")
 *
 *     char hex[65];
 *     if (rlab_sha256_file("u.data", hex, NULL, &err) != RLAB_OK) ...
 *
 * A context is plain data (no allocation); give each thread its own. All functions are
 * reentrant.
 */
#ifndef RLAB_STORE_SHA256_H
#define RLAB_STORE_SHA256_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rlab_sha256 {
    uint32_t h[8];         /* chaining state */
    uint64_t nbytes;       /* total bytes absorbed so far */
    unsigned char buf[64]; /* pending partial block */
    size_t nbuf;           /* bytes pending in buf, < 64 */
} rlab_sha256;

/* Start a new digest. */
RLAB_API void rlab_sha256_init(rlab_sha256 *h);
/* Absorb n bytes (data may be NULL when n == 0). */
RLAB_API void rlab_sha256_update(rlab_sha256 *h, const void *data, size_t n);
/* Pad, write the 32-byte digest to out and leave h unusable until the next init. */
RLAB_API void rlab_sha256_final(rlab_sha256 *h, unsigned char out[32]);
/* Lowercase hex of a 32-byte digest into hex[65] (NUL-terminated). */
RLAB_API void rlab_sha256_hex(const unsigned char digest[32], char hex[65]);
/* One shot: hex digest of n bytes. */
RLAB_API void rlab_sha256_buf(const void *data, size_t n, char hex[65]);
/* Hex digest of a whole file, read in 64 KiB chunks; *bytes (may be NULL) receives its
 * size. Errors: RLAB_EIO (cannot open or read; the message names the file). */
RLAB_API int rlab_sha256_file(const char *path, char hex[65], uint64_t *bytes, rlab_err *err);

#endif /* RLAB_STORE_SHA256_H */
