/* article.h: the wire formats of catwire, schema version 1.
 * The full specification (field tables, JSON-rendered examples) is
 * schemas/README.md; this header is the codec's contract.
 *
 * Article (input topic), a msgpack map:
 *   id            str, required, 1..256 bytes
 *   title, body   str, optional each, at least one non-empty
 *   source, url, lang   str, optional
 *   published_at  int, optional, ms since the epoch
 *   unknown keys are skipped (their values are still checked against limits)
 *   text = title + " " + body
 *
 * Result (output topic), a msgpack map:
 *   id, label (str), label_id (int), confidence (float: top probability),
 *   scores (array of float, one per label, in label order), model (str),
 *   model_version (int), worker (str), processed_at (int, ms)
 *
 * Decoding is strict and bounded: the message size, nesting depth, string
 * lengths and collection counts are checked against limits and against the
 * bytes that remain *before* anything is allocated, so a 10-byte message that
 * claims 2^30 elements is refused at once. The decoder does not allocate: the
 * decoded article points into the message buffer, which must outlive it.
 *
 * Thread-safe: no shared state. */
#ifndef CW_ARTICLE_H
#define CW_ARTICLE_H

#include <stddef.h>
#include <stdint.h>

#define CW_SCHEMA_VERSION 1
#define CW_ARTICLE_MAX_BYTES (1u << 20)   /* whole message */
#define CW_ARTICLE_MAX_ID 256
#define CW_ARTICLE_MAX_DEPTH 32           /* nesting levels; the top-level map is level 1 */
#define CW_ARTICLE_MAX_ITEMS 65536        /* entries in any map/array */

/* A field that is absent has p == NULL; a present empty string has p != NULL
 * and len 0. */
typedef struct cw_str_s {
    const char *p;   /* points into the message buffer; not NUL-terminated */
    size_t len;
} cw_str_t;

typedef struct cw_article_s {
    cw_str_t id, title, body, source, url, lang;
    int64_t published_at;
    int has_published_at;
} cw_article_t;

/* Why a message was refused; cw_article_err2str() gives a stable short name
 * (it goes into the dead-letter header "catwire.reason"). */
typedef enum {
    CW_ARTICLE_OK = 0,
    CW_ARTICLE_ERR_TOO_LARGE,      /* message over CW_ARTICLE_MAX_BYTES */
    CW_ARTICLE_ERR_MALFORMED,      /* not msgpack, trailing bytes, or a non-str map key */
    CW_ARTICLE_ERR_TRUNCATED,      /* ends inside a value */
    CW_ARTICLE_ERR_NOT_MAP,        /* top level is not a map */
    CW_ARTICLE_ERR_TOO_DEEP,       /* nesting over CW_ARTICLE_MAX_DEPTH */
    CW_ARTICLE_ERR_TOO_MANY,       /* a count over the limit or over what the bytes can hold */
    CW_ARTICLE_ERR_MISSING_ID,
    CW_ARTICLE_ERR_BAD_ID,         /* empty or over CW_ARTICLE_MAX_ID */
    CW_ARTICLE_ERR_WRONG_TYPE,     /* a known key with a value of the wrong type */
    CW_ARTICLE_ERR_NO_TEXT,        /* title and body both empty or absent */
    CW_ARTICLE_ERR_DUPLICATE_KEY,
    CW_ARTICLE_ERR_BAD_UTF8,       /* a known str field is not valid UTF-8 */
} cw_article_err_t;
#define CW_ARTICLE_ERR_COUNT (CW_ARTICLE_ERR_BAD_UTF8 + 1)   /* for per-reason counters */

/* Dead letters: the original key and value, plus these headers (values are
 * text; partition and offset in decimal). */
#define CW_DLQ_HDR_REASON "catwire.reason"               /* cw_article_err2str() */
#define CW_DLQ_HDR_DETAIL "catwire.detail"               /* the decoder's sentence */
#define CW_DLQ_HDR_SOURCE_TOPIC "catwire.source.topic"
#define CW_DLQ_HDR_SOURCE_PARTITION "catwire.source.partition"
#define CW_DLQ_HDR_SOURCE_OFFSET "catwire.source.offset"

const char *cw_article_err2str(cw_article_err_t err);

/* Decode; on error, detail (may be NULL) receives a human-readable sentence
 * naming the field, e.g. "field 'title': expected str, got int".
 * On error *a is zeroed. Strings are msgpack str only (bin is refused as
 * wrong_type); nil for an optional field means absent. */
cw_article_err_t cw_article_decode(const void *buf, size_t len, cw_article_t *a,
                                   char *detail, size_t detail_size);

/* The semantic checks the decoder applies once the bytes are well-formed:
 * id present (MISSING_ID) and 1..CW_ARTICLE_MAX_ID bytes (BAD_ID), every
 * present str field valid UTF-8 (BAD_UTF8), title or body non-empty
 * (NO_TEXT). For articles built by hand (catwire publish). */
cw_article_err_t cw_article_validate(const cw_article_t *a, char *detail, size_t detail_size);

/* Encode an article (catwire publish, tests). Out: malloc'd buffer (free()).
 * Absent fields (p == NULL, has_published_at == 0) are left out. It does not
 * validate (tests build bad messages with it): call cw_article_validate()
 * first, and check *len against CW_ARTICLE_MAX_BYTES. Returns 0, or -1 when
 * out of memory or a string is over 4 GiB. */
int cw_article_encode(const cw_article_t *a, void **out, size_t *len);

typedef struct cw_result_s {
    cw_str_t id;
    const char *label;
    int32_t label_id;
    float confidence;
    const float *scores;
    uint32_t nscores;
    const char *model;
    int64_t model_version;
    const char *worker;
    int64_t processed_at;
} cw_result_t;

/* Encode a result into a caller-provided msgpack sbuffer-like growable buffer:
 * *out, *len and *cap are reused across calls (no allocation in steady state).
 * Start with *out = NULL, *cap = 0; the buffer is realloc'd as needed and
 * stays the caller's (free() it at the end). *len is set to the message
 * size (the buffer is overwritten, not appended to). A NULL label, model or
 * worker is encoded as "". Floats go out as msgpack float32. Returns 0, or
 * -1 (with *len 0) when out of memory, id.p is NULL, scores is NULL with
 * nscores > 0, or nscores is over CW_ARTICLE_MAX_ITEMS. */
int cw_result_encode(const cw_result_t *r, char **out, size_t *len, size_t *cap);

/* Decode a result (catwire tail, tests). Strings point into buf; scores are
 * written to scores_out (capacity max_scores).
 * label, model and worker are copied, NUL-terminated, into the given buffers
 * (a NULL buffer skips the copy and leaves the pointer NULL); id points into
 * buf. All nine fields are required, unknown keys are skipped, float32 or
 * float64 are accepted for floats. Same limits as the article decoder.
 * Returns 0, or -1 with errstr "reason: detail". */
int cw_result_decode(const void *buf, size_t len, cw_result_t *r, float *scores_out,
                     uint32_t max_scores, char *label_buf, size_t label_buf_size,
                     char *model_buf, size_t model_buf_size, char *worker_buf,
                     size_t worker_buf_size, char *errstr, size_t errstr_size);

#endif
