/* vocab.h: token <-> id mapping, built as torchtext's
 * build_vocab_from_iterator(..., specials=["<unk>"]) builds it.
 *
 * Ids: "<unk>" is 0; then tokens by descending count, ties in ascending byte
 * order (Python's order for str); optional min_count and max_size (max_size
 * counts "<unk>", as torchtext's max_tokens does). Tokens equal to "<unk>"
 * in the data are not counted (torchtext deletes specials from the counter).
 * Unknown tokens look up to 0.
 *
 * A cw_vocab_t is immutable after building/loading and safe to read from any
 * number of threads. A cw_vocab_counter_t is single-threaded; merge per-thread
 * counters with cw_vocab_counter_merge(). */
#ifndef CW_VOCAB_H
#define CW_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

#define CW_VOCAB_UNK_ID 0
#define CW_VOCAB_UNK "<unk>"

typedef struct cw_vocab_s cw_vocab_t;
typedef struct cw_vocab_counter_s cw_vocab_counter_t;

cw_vocab_counter_t *cw_vocab_counter_new(void);
void cw_vocab_counter_destroy(cw_vocab_counter_t *c);
void cw_vocab_counter_add(cw_vocab_counter_t *c, const char *tok, size_t len);
void cw_vocab_counter_merge(cw_vocab_counter_t *dst, const cw_vocab_counter_t *src);

/* Build a vocabulary; min_count 0 or 1 keeps everything, max_size 0 means no limit. */
cw_vocab_t *cw_vocab_build(const cw_vocab_counter_t *c, uint64_t min_count, uint64_t max_size);

/* An empty vocabulary holding only "<unk>" (id 0); cw_vocab_push() appends
 * the next id (used by the checkpoint loader). Returns the new id, or -1 when
 * the token is already present. */
cw_vocab_t *cw_vocab_new(void);
int64_t cw_vocab_push(cw_vocab_t *v, const char *tok, size_t len);

void cw_vocab_destroy(cw_vocab_t *v);

size_t cw_vocab_size(const cw_vocab_t *v);
/* Id of a token, CW_VOCAB_UNK_ID when absent. */
uint32_t cw_vocab_lookup(const cw_vocab_t *v, const char *tok, size_t len);
/* Same, for a caller that already computed hash = cw_hash64_pre(tok, len,
 * &prefix) (util.h). */
uint32_t cw_vocab_lookup_key(const cw_vocab_t *v, const char *tok, size_t len, uint64_t hash, uint64_t prefix);
/* The serving path: ids[j] = the id of token first + j of t and hash[j] =
 * its cw_hash64 (which the n-gram featurizer reuses), for j < n. One call
 * per run of tokens keeps the probe loop inlined and lets it hash the run
 * and prefetch its slots before the first probe. */
void cw_vocab_lookup_run(const cw_vocab_t *v, const cw_tokens_t *t, size_t first, size_t n, uint64_t *hash,
                         int32_t *ids);
/* Id of a token, or -1 when absent (to tell "<unk>" from unknown). */
int64_t cw_vocab_find(const cw_vocab_t *v, const char *tok, size_t len);
/* Bytes of token id (not NUL-terminated); *len receives the length. */
const char *cw_vocab_token(const cw_vocab_t *v, uint32_t id, size_t *len);

#endif
