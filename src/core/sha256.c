/* sha256.c — SHA-256 (FIPS 180-4) for content identities: model files,
 * prompt sets and classifier files recorded in run manifests. A plain
 * portable implementation; on this project's machines it hashes roughly
 * 0.3-0.5 GB/s per core, so a 2 GB model costs a few seconds (run
 * manifests remember file hashes keyed by size/mtime/ctime/inode so a
 * resume does not pay it again). */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* Processes n whole 64-byte blocks. */
static void compress(uint32_t h[8], const uint8_t *p, size_t n)
{
    for (; n; n--, p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                   (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
                 hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                          K[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        h[5] += f;
        h[6] += g;
        h[7] += hh;
    }
}

void sld_sha256_init(sld_sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->n = 0;
    s->nbuf = 0;
}

void sld_sha256_update(sld_sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->n += len;
    if (s->nbuf) {
        size_t take = 64 - s->nbuf < len ? 64 - s->nbuf : len;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        len -= take;
        if (s->nbuf < 64)
            return;
        compress(s->h, s->buf, 1);
        s->nbuf = 0;
    }
    compress(s->h, p, len / 64);
    p += len / 64 * 64;
    len %= 64;
    memcpy(s->buf, p, len);
    s->nbuf = len;
}

void sld_sha256_final(sld_sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->n * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = s->nbuf < 56 ? 56 - s->nbuf : 120 - s->nbuf;
    sld_sha256_update(s, pad, padlen);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sld_sha256_update(s, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sld_sha256_hex(const uint8_t digest[32], char hex[65])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = d[digest[i] >> 4];
        hex[2 * i + 1] = d[digest[i] & 15];
    }
    hex[64] = 0;
}

void sld_sha256_str(const void *data, size_t len, char hex[65])
{
    sld_sha256 s;
    uint8_t dg[32];
    sld_sha256_init(&s);
    sld_sha256_update(&s, data, len);
    sld_sha256_final(&s, dg);
    sld_sha256_hex(dg, hex);
}

sld_status sld_sha256_file(const char *path, char hex[65], sld_error *err)
{
    hex[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: not a regular file", path);
    }
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = sld_malloc(CHUNK);
    if (!buf) {
        close(fd);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
    }
    sld_sha256 s;
    sld_sha256_init(&s);
    sld_status rc = SLD_OK;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sld_err(err, SLD_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        sld_sha256_update(&s, buf, (size_t)n);
    }
    sld_free(buf);
    close(fd);
    if (rc)
        return rc;
    uint8_t dg[32];
    sld_sha256_final(&s, dg);
    sld_sha256_hex(dg, hex);
    return SLD_OK;
}
