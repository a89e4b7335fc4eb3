/* json.h: JSON for the operator tools. `catwire tail` prints results and
 * dead letters as one JSON value per line; `catwire publish` reads articles
 * as JSON lines. Not used on the worker's hot path.
 *
 * Rendering (msgpack -> JSON, one line, no newline added):
 *   nil/bool/int -> null/true/false/integer; float32 and float64 -> the
 *   shortest decimal that reads back to the same float (NaN and infinities,
 *   which JSON lacks, -> null); str -> string with '"', '\\' and control
 *   characters escaped, valid UTF-8 passed through, each invalid byte
 *   replaced by U+FFFD; bin -> base64 string; ext -> {"ext":TYPE,"data":BASE64};
 *   a map key that is not a str is rendered as JSON and used as the key's
 *   text. Input limits are the article decoder's (CW_ARTICLE_MAX_DEPTH,
 *   CW_ARTICLE_MAX_ITEMS, lengths checked against the bytes that remain), so
 *   a hostile dead letter cannot make tail allocate without bound.
 *
 * Reading (one JSON object per line -> cw_article_t): strict RFC 8259 JSON
 * with UTF-8 text; keys id, title, body, source, url, lang (string or null)
 * and published_at (integer or null); other keys are skipped (any JSON value,
 * nesting at most CW_ARTICLE_MAX_DEPTH); a known key twice is an error;
 * only whitespace may follow the object. The article must then pass
 * cw_article_validate(). Strings are unescaped in place, so the line buffer
 * is modified and the article points into it.
 *
 * Memory: cw_jbuf_t grows with realloc and aborts on out-of-memory (as the
 * cw_malloc family does); cw_jbuf_free() releases it. p is always
 * NUL-terminated once anything was appended.
 * Thread-safe: no shared state. */
#ifndef CW_JSON_H
#define CW_JSON_H

#include <stddef.h>

#include "article.h"

#define CW_JSON_MAX_LINE (4u * CW_ARTICLE_MAX_BYTES)   /* longest JSON article line */

typedef struct cw_jbuf_s {
    char *p;
    size_t len, cap;
} cw_jbuf_t;

void cw_jbuf_free(cw_jbuf_t *b);

/* Append raw text (already JSON), a quoted escaped string, or a quoted
 * base64 string of arbitrary bytes. */
void cw_json_append_raw(cw_jbuf_t *b, const char *s, size_t n);
void cw_json_append_str(cw_jbuf_t *b, const void *s, size_t n);
void cw_json_append_base64(cw_jbuf_t *b, const void *data, size_t n);

/* Append one msgpack value, which must fill buf[0..len) exactly, as JSON.
 * Returns 0, or -1 with errstr (and b as it was before the call). */
int cw_json_from_msgpack(cw_jbuf_t *b, const void *buf, size_t len, char *errstr,
                         size_t errstr_size);

/* Parse one JSON object line (a trailing "\n" or "\r\n" is fine) into a.
 * Returns CW_ARTICLE_OK or the reason, with the article decoder's meanings:
 * MALFORMED (bad JSON), TRUNCATED (the line ends inside a value), NOT_MAP
 * (not an object), TOO_LARGE (over CW_JSON_MAX_LINE), TOO_DEEP, WRONG_TYPE,
 * DUPLICATE_KEY, BAD_UTF8, or what cw_article_validate() returns; detail
 * gets a sentence (with the byte column for syntax errors). On error *a is
 * zeroed. */
cw_article_err_t cw_json_article_parse(char *line, size_t len, cw_article_t *a, char *detail,
                                       size_t detail_size);

#endif
