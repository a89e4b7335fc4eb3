/* tokenizer.h: torchtext's "basic_english" tokenizer, byte for byte.
 *
 * What it computes, for UTF-8 text (the notebook's get_tokenizer("basic_english")):
 *   1. lowercase exactly as Python's str.lower() (full Unicode mapping,
 *      including multi-character results such as "İ" -> "i̇" and the
 *      final-sigma rule);
 *   2. then, in this order: ' -> " '  ", " -> "", . -> " . ", "<br />" -> " ",
 *      , -> " , ", ( -> " ( ", ) -> " ) ", ! -> " ! ", ? -> " ? ", ; -> " ",
 *      : -> " ", runs of whitespace (Python's \s, Unicode) -> " ";
 *   3. split on whitespace as Python's str.split() defines it.
 * Invalid UTF-8: see tokenizer.c (decoded as Python's errors="replace" does).
 *
 * One pass over the input; tokens are written into a reusable buffer owned by
 * cw_tokens_t, so tokenizing allocates nothing per token (only when the
 * buffers must grow). Not thread-safe per cw_tokens_t; use one per thread. */
#ifndef CW_TOKENIZER_H
#define CW_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* Every producer of a cw_tokens_t (cw_tokenize, cw_dataset_tokens) leaves at
 * least this many readable bytes after the end of any token, so the
 * featurizer may read a token's tail as one 8-byte load. */
#define CW_TOKENS_SLACK 8

typedef struct cw_tokens_s {
    char *buf;           /* token bytes; token i is buf[start[i] .. start[i]+len[i]),
                            followed by >= CW_TOKENS_SLACK readable bytes */
    size_t buf_len, buf_cap;
    uint32_t *start;     /* byte offset of each token in buf */
    uint32_t *len;       /* byte length of each token */
    size_t n, cap;       /* token count and capacity */
} cw_tokens_t;

void cw_tokens_init(cw_tokens_t *t);
void cw_tokens_free(cw_tokens_t *t);

/* Tokenize text[0..len) into t (its previous content is discarded).
 * Never fails and never reads past len; text need not be NUL-terminated. */
void cw_tokenize(const char *text, size_t len, cw_tokens_t *t);

#endif
