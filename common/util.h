/* util.h: small helpers every catwire module uses.
 *
 * Allocation: cw_malloc/cw_calloc/cw_realloc/cw_strdup never return NULL;
 * out-of-memory aborts the process with a message (there is no useful
 * recovery in a daemon that cannot allocate a batch). cw_free(NULL) is a no-op.
 *
 * Files: cw_file_write_atomic() writes a whole file the way a version must
 * appear: temporary name in the same directory, fsync, rename, fsync of the
 * directory. Either the old content or the new one is visible, never a mix.
 *
 * Random numbers: cw_rng_t is a per-caller generator (splitmix64 seeded
 * xoshiro256**), so there is no hidden global state and runs are repeatable. */
#ifndef CW_UTIL_H
#define CW_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void *cw_malloc(size_t n);
void *cw_calloc(size_t count, size_t size);
void *cw_realloc(void *p, size_t n);
char *cw_strdup(const char *s);
char *cw_strndup(const char *s, size_t n);
void cw_free(void *p);

/* Grow *p (of element size elem, capacity *cap) to hold at least need elements. */
void cw_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Monotonic and wall-clock time. */
double cw_now_s(void);          /* monotonic seconds */
int64_t cw_wall_ms(void);       /* milliseconds since the Unix epoch */

/* Error string helper: snprintf into errstr when errstr_size > 0. */
void cw_seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Atomic whole-file write (see header comment). Returns 0 or -1 with errstr. */
int cw_file_write_atomic(const char *path, const void *data, size_t len,
                         char *errstr, size_t errstr_size);
/* fsync a directory so a rename inside it is durable. */
int cw_fsync_dir(const char *dir, char *errstr, size_t errstr_size);
/* Read a whole file into a malloc'd buffer (NUL-terminated for convenience). */
int cw_file_read_all(const char *path, char **out, size_t *len,
                     char *errstr, size_t errstr_size);
/* mkdir -p. */
int cw_mkdir_p(const char *path, char *errstr, size_t errstr_size);

/* Random numbers. */
typedef struct cw_rng_s { uint64_t s[4]; } cw_rng_t;
void cw_rng_seed(cw_rng_t *rng, uint64_t seed);
uint64_t cw_rng_next(cw_rng_t *rng);
/* Uniform in [0, n). */
uint64_t cw_rng_below(cw_rng_t *rng, uint64_t n);
/* Uniform float in [0, 1). */
double cw_rng_unit(cw_rng_t *rng);

/* 64-bit FNV-1a, used for n-gram hashing and fingerprints. */
uint64_t cw_fnv1a64(const void *data, size_t len, uint64_t h);
#define CW_FNV64_INIT 0xcbf29ce484222325ULL

/* catwire's token hash (v1): 64-bit, 8 bytes per step, defined over the
 * bytes in little-endian order so models hash alike on every host. Used by
 * the vocabulary tables and the n-gram featurizer; changing it changes every
 * n-gram id, so the checkpoint names it (CW_CKPT_NGRAM_HASH). Inline: it runs
 * once per token on the serving path. cw_hash64_pre also returns the token's
 * first min(len, 8) bytes as a little-endian word, zero-padded (the
 * vocabulary's slot key, vocab.h), which the hash reads anyway. */
static inline uint64_t cw_load_le64(const unsigned char *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
#endif
}

/* The one definition; `padded` (a constant at every call) says that at least
 * 7 readable bytes follow the data, so the tail is one masked load. */
static inline uint64_t cw_hash64_core(const void *data, size_t len, uint64_t *prefix, int padded) {
    const unsigned char *p = (const unsigned char *)data, *first = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
    *prefix = len >= 8 ? cw_load_le64(p) : 0;
    while (len >= 8) {
        h = (h ^ cw_load_le64(p)) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = 0;
        if (padded) {
            v = cw_load_le64(p) & (~0ULL >> (64 - 8 * len));
        } else {
            for (size_t i = 0; i < len; i++) v |= (uint64_t)p[i] << (8 * i);
        }
        h = (h ^ v) * 0x94d049bb133111ebULL;
        if (p == first) *prefix = v;
    }
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
    return h;
}

static inline uint64_t cw_hash64_pre(const void *data, size_t len, uint64_t *prefix) {
    return cw_hash64_core(data, len, prefix, 0);
}

/* cw_hash64_pre for bytes followed by at least 7 readable bytes (a token of
 * a cw_tokens_t, tokenizer.h). */
static inline uint64_t cw_hash64_pre_padded(const void *data, size_t len, uint64_t *prefix) {
    return cw_hash64_core(data, len, prefix, 1);
}

static inline uint64_t cw_hash64(const void *data, size_t len) {
    uint64_t prefix;
    return cw_hash64_pre(data, len, &prefix);
}

/* CRC-32C (Castagnoli), used as the checkpoint checksum. Chain with crc=0 first. */
uint32_t cw_crc32c(uint32_t crc, const void *data, size_t len);

#endif
