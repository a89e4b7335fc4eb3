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
 * n-gram id, so the checkpoint names it (CW_CKPT_NGRAM_HASH). */
uint64_t cw_hash64(const void *data, size_t len);

/* CRC-32C (Castagnoli), used as the checkpoint checksum. Chain with crc=0 first. */
uint32_t cw_crc32c(uint32_t crc, const void *data, size_t len);

#endif
