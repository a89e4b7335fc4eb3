/* model.h: the catwire model, shared by trainer and worker.
 *
 *   logits = fc_w · mean(emb[ids of the article]) + fc_b,  probs = softmax(logits)
 *
 * which is torch's EmbeddingBag(mode="mean") followed by Linear, the
 * notebook's TextClassificationModel. An empty bag gives a zero vector, so
 * its logits are fc_b.
 *
 * Rows of emb: [0, vocab size) are words (row 0 is "<unk>"), then nbuckets
 * rows for hashed word n-grams (fastText-style): with ngram = N > 1 every run
 * of 2..N consecutive tokens adds one id, vocab size + bucket(hash), to
 * the same bag. The hash is over token bytes (not word ids), so n-grams that
 * contain unknown words still count; cw_model_featurize() is the only place
 * that defines it.
 *
 * Layout: emb is nrows x dim, row-major; fc_w is nlabels x dim, row-major
 * (torch's Linear.weight); fc_b is nlabels.
 *
 * Ownership: the model owns vocab, labels and weights. A model is read-only
 * while it serves; any number of threads may call cw_model_featurize and a
 * backend's forward on it at once, each with its own scratch buffers. */
#ifndef CW_MODEL_H
#define CW_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"
#include "vocab.h"

typedef struct cw_model_s {
    uint32_t dim;        /* embedding size (the notebook: 64) */
    uint32_t nlabels;    /* classes */
    uint32_t ngram;      /* 1 = words only; N = also hashed 2..N-grams */
    uint32_t nbuckets;   /* hashed n-gram rows (0 when ngram == 1) */
    cw_vocab_t *vocab;
    char **labels;       /* nlabels NUL-terminated names, in id order */
    uint64_t nrows;      /* cw_vocab_size(vocab) + nbuckets */
    float *emb;          /* nrows x dim */
    float *fc_w;         /* nlabels x dim */
    float *fc_b;         /* nlabels */
} cw_model_t;

/* A new model with zeroed weights; takes ownership of vocab; copies labels. */
cw_model_t *cw_model_new(cw_vocab_t *vocab, uint32_t dim, const char *const *labels,
                         uint32_t nlabels, uint32_t ngram, uint32_t nbuckets);
void cw_model_destroy(cw_model_t *m);

/* The notebook's init_weights(): emb and fc_w uniform(-range, range), fc_b 0. */
void cw_model_init_uniform(cw_model_t *m, float range, uint64_t seed);

/* Label id by name, -1 when unknown. */
int cw_model_label_id(const cw_model_t *m, const char *name);

/* Ids for one article's tokens: appends to *ids (capacity *cap, grown with
 * cw_grow) and returns the number appended. Words first (unknown -> 0), then
 * the hashed n-gram ids. */
size_t cw_model_featurize(const cw_model_t *m, const cw_tokens_t *toks,
                          int32_t **ids, size_t *count, size_t *cap);

/* Where a forward pass will read one row per id (backend.h's
 * cw_backend_rows): row id starts at base + id * stride. A featurizer given
 * one starts loading each id's row as soon as the id is known, so that a
 * small batch's scattered rows are in cache when its forward pass sums them
 * instead of all missing at once. Only prefetched, never read: a stale hint
 * (the table was rebuilt or freed since) costs a wasted load, not a fault. */
typedef struct cw_rows_hint_s {
    const char *base; /* NULL: no hint */
    size_t stride;
} cw_rows_hint_t;

/* cw_model_featurize(), prefetching the rows of the appended ids through
 * hint (NULL or hint->base NULL: none). The ids are the same. */
size_t cw_model_featurize_hinted(const cw_model_t *m, const cw_tokens_t *toks, int32_t **ids, size_t *count,
                                 size_t *cap, const cw_rows_hint_t *hint);

/* Row-wise softmax of n x k logits, in place, numerically stable. */
void cw_softmax_rows(float *x, size_t n, size_t k);

#endif
