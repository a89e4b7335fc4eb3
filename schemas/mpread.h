/* mpread.h: the strict msgpack reader behind every catwire decoder (private
 * to schemas/; article.c and json.c use it, nobody else should).
 *
 * Why not msgpack_unpack: it allocates a zone sized from the counts the
 * message declares, so a hostile 10-byte message can ask for gigabytes. This
 * reader never allocates. Every length and count is checked against the
 * bytes that remain before it is believed: a str/bin/ext payload must fit
 * entirely; an array of n items needs at least n bytes and a map of n
 * entries at least 2n (every msgpack value is at least one byte), and n is
 * also capped by CW_ARTICLE_MAX_ITEMS. Nesting is capped by the caller's
 * depth argument to cw_mp_skip(). So the work done is linear in the bytes.
 *
 * Errors: every helper returns 0, or -1 after recording the first failure
 * in the reader (r->err, a cw_article_err_t, and r->detail, a sentence that
 * starts with the caller's name for what is being read, e.g.
 * "field 'title'", from r->key, r->key_no or r->ctx). After a failure the reader must not be used further.
 *
 * Thread-safe: a cw_mp_t belongs to one caller; no shared state. */
#ifndef CW_MPREAD_H
#define CW_MPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "article.h"

typedef enum {
    CW_MP_NIL,
    CW_MP_BOOL,
    CW_MP_UINT,   /* any non-negative integer, whatever its encoding */
    CW_MP_NINT,   /* a negative integer */
    CW_MP_F32,
    CW_MP_F64,
    CW_MP_STR,
    CW_MP_BIN,
    CW_MP_EXT,
    CW_MP_ARRAY,
    CW_MP_MAP,
} cw_mp_type_t;

typedef struct cw_mp_val_s {
    cw_mp_type_t type;
    int b;                 /* BOOL */
    uint64_t u;            /* UINT */
    int64_t i;             /* NINT */
    double f;              /* F32 (exactly representable) and F64 */
    uint32_t n;            /* STR/BIN/EXT payload bytes; ARRAY items; MAP entries */
    const uint8_t *ptr;    /* STR/BIN/EXT payload, inside the buffer */
    int8_t ext_type;       /* EXT */
} cw_mp_val_t;

typedef struct cw_mp_s {
    const uint8_t *p, *end;
    const char *ctx;       /* what is being read, for detail sentences */
    /* Cheaper context, formatted only on failure: when key is set the detail
     * starts "field 'KEY'"; else when key_no is set, "map key #KEY_NO". */
    const uint8_t *key;
    uint32_t key_len, key_no;
    cw_article_err_t err;
    char detail[200];
} cw_mp_t;

void cw_mp_init(cw_mp_t *r, const void *buf, size_t len);

/* Read one value's header. Scalars are read whole; STR/BIN/EXT payloads are
 * bounds-checked and stepped over (v->ptr points at them); for ARRAY/MAP
 * only the count is read (and checked), the items follow. */
int cw_mp_head(cw_mp_t *r, cw_mp_val_t *v);

/* Step over the items of v (just read by cw_mp_head), recursively. depth is
 * the nesting depth v itself has (the top-level value has depth 1); a
 * container deeper than CW_ARTICLE_MAX_DEPTH fails with TOO_DEEP. Scalars
 * need no stepping and succeed at once. */
int cw_mp_skip(cw_mp_t *r, const cw_mp_val_t *v, int depth);

/* Record a failure (printf-style sentence, prefixed with r->ctx); returns -1. */
int cw_mp_fail(cw_mp_t *r, cw_article_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "int", "str", "map", ... for detail sentences. */
const char *cw_mp_type_name(cw_mp_type_t t);

/* Bytes left to read. */
static inline size_t cw_mp_left(const cw_mp_t *r) { return (size_t)(r->end - r->p); }

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
 * cw_mp_utf8_seq() returns the length (1..4) of the valid sequence starting at
 * s[0] (n > 0 bytes available), or 0 when it is invalid; *cp gets the code
 * point. cw_mp_utf8_valid() checks a whole string. */
int cw_mp_utf8_seq(const uint8_t *s, size_t n, uint32_t *cp);
int cw_mp_utf8_valid(const void *s, size_t n);

#endif
