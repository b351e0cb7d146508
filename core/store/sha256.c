/*
 * SHA-256 as specified in FIPS 180-4, section 6.2: 64-byte blocks, a 64-word message
 * schedule, eight 32-bit working variables. Written from the standard, not copied.
 */
#include "store/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

/* Compress one 64-byte block into the state (FIPS 180-4 §6.2.2). */
static void compress(uint32_t st[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++) /* big-endian words */
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + K[t] + w[t];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    st[4] += e;
    st[5] += f;
    st[6] += g;
    st[7] += h;
}

void rlab_sha256_init(rlab_sha256 *h)
{
    /* First 32 bits of the fractional parts of the square roots of the first 8 primes. */
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h->h, H0, sizeof H0);
    h->nbytes = 0;
    h->nbuf = 0;
}

void rlab_sha256_update(rlab_sha256 *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    h->nbytes += n;
    if (h->nbuf) { /* top up the pending block first */
        size_t take = 64 - h->nbuf < n ? 64 - h->nbuf : n;
        memcpy(h->buf + h->nbuf, p, take);
        h->nbuf += take;
        p += take;
        n -= take;
        if (h->nbuf < 64)
            return;
        compress(h->h, h->buf);
        h->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64) /* whole blocks straight from the input */
        compress(h->h, p);
    if (n) {
        memcpy(h->buf, p, n);
        h->nbuf = n;
    }
}

void rlab_sha256_final(rlab_sha256 *h, unsigned char out[32])
{
    /* Padding: 0x80, zeros up to 56 mod 64, then the message length in bits, big-endian. */
    uint64_t bits = h->nbytes * 8;
    h->buf[h->nbuf++] = 0x80;
    if (h->nbuf > 56) {
        memset(h->buf + h->nbuf, 0, 64 - h->nbuf);
        compress(h->h, h->buf);
        h->nbuf = 0;
    }
    memset(h->buf + h->nbuf, 0, 56 - h->nbuf);
    for (int i = 0; i < 8; i++)
        h->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    compress(h->h, h->buf);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(h->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h->h[i];
    }
    h->nbuf = 0;
}

void rlab_sha256_hex(const unsigned char digest[32], char hex[65])
{
    static const char xd[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = xd[digest[i] >> 4];
        hex[2 * i + 1] = xd[digest[i] & 15];
    }
    hex[64] = '\0';
}

void rlab_sha256_buf(const void *data, size_t n, char hex[65])
{
    rlab_sha256 h;
    unsigned char d[32];
    rlab_sha256_init(&h);
    rlab_sha256_update(&h, data, n);
    rlab_sha256_final(&h, d);
    rlab_sha256_hex(d, hex);
}

int rlab_sha256_file(const char *path, char hex[65], uint64_t *bytes, rlab_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rlab_errf(err, RLAB_EIO, "sha256: cannot open %s: %s", path, strerror(errno));
    unsigned char *chunk = rlab_malloc(1 << 16);
    if (!chunk) {
        fclose(f);
        return rlab_errf(err, RLAB_ENOMEM, "sha256: out of memory");
    }
    rlab_sha256 h;
    rlab_sha256_init(&h);
    size_t got;
    while ((got = fread(chunk, 1, 1 << 16, f)) > 0)
        rlab_sha256_update(&h, chunk, got);
    int bad = ferror(f);
    fclose(f);
    rlab_free(chunk);
    if (bad)
        return rlab_errf(err, RLAB_EIO, "sha256: read error on %s", path);
    unsigned char d[32];
    if (bytes)
        *bytes = h.nbytes;
    rlab_sha256_final(&h, d);
    rlab_sha256_hex(d, hex);
    return RLAB_OK;
}
