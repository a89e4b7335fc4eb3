/* model.c: model construction, featurization (words + hashed n-grams), softmax.
 * See model.h for the math and the layout. */
#include "model.h"

#include <math.h>
#include <string.h>

#include "util.h"

cw_model_t *cw_model_new(cw_vocab_t *vocab, uint32_t dim, const char *const *labels,
                         uint32_t nlabels, uint32_t ngram, uint32_t nbuckets) {
    cw_model_t *m = cw_calloc(1, sizeof(*m));
    m->dim = dim;
    m->nlabels = nlabels;
    m->ngram = ngram < 1 ? 1 : ngram;
    m->nbuckets = m->ngram > 1 ? nbuckets : 0;
    m->vocab = vocab;
    m->labels = cw_calloc(nlabels ? nlabels : 1, sizeof(char *));
    for (uint32_t i = 0; i < nlabels; i++) m->labels[i] = cw_strdup(labels[i]);
    m->nrows = (uint64_t)cw_vocab_size(vocab) + m->nbuckets;
    m->emb = cw_calloc(m->nrows * dim, sizeof(float));
    m->fc_w = cw_calloc((size_t)nlabels * dim, sizeof(float));
    m->fc_b = cw_calloc(nlabels, sizeof(float));
    return m;
}

void cw_model_destroy(cw_model_t *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->nlabels; i++) cw_free(m->labels[i]);
    cw_free(m->labels);
    cw_vocab_destroy(m->vocab);
    cw_free(m->emb);
    cw_free(m->fc_w);
    cw_free(m->fc_b);
    cw_free(m);
}

void cw_model_init_uniform(cw_model_t *m, float range, uint64_t seed) {
    cw_rng_t rng;
    cw_rng_seed(&rng, seed);
    size_t ne = (size_t)m->nrows * m->dim;
    for (size_t i = 0; i < ne; i++) m->emb[i] = (float)((cw_rng_unit(&rng) * 2.0 - 1.0) * range);
    size_t nw = (size_t)m->nlabels * m->dim;
    for (size_t i = 0; i < nw; i++) m->fc_w[i] = (float)((cw_rng_unit(&rng) * 2.0 - 1.0) * range);
    memset(m->fc_b, 0, m->nlabels * sizeof(float));
}

int cw_model_label_id(const cw_model_t *m, const char *name) {
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (!strcmp(m->labels[i], name)) return (int)i;
    return -1;
}

/* fastText's n-gram mixing constant; token hashes are util.h's cw_hash64. */
#define CW_NGRAM_MULT 116049371ULL
#define CW_NGRAM_MAX 8
#define FEAT_RUN 64

/* Bucket of an n-gram hash: Lemire's multiply-shift range reduction (no
 * division on the hot path). */
static inline uint64_t ngram_bucket(uint64_t h, uint64_t nbuckets) {
    return (uint64_t)(((unsigned __int128)h * nbuckets) >> 64);
}

size_t cw_model_featurize(const cw_model_t *m, const cw_tokens_t *toks,
                          int32_t **ids, size_t *count, size_t *cap) {
    return cw_model_featurize_hinted(m, toks, ids, count, cap, NULL);
}

/* Start loading row id of the hinted table (a no-op without a hint;
 * __builtin_prefetch never faults, so a stale base is harmless). */
static inline void rows_prefetch(const char *base, size_t stride, int32_t id) {
    if (base) __builtin_prefetch(base + (size_t)(uint32_t)id * stride);
}

size_t cw_model_featurize_hinted(const cw_model_t *m, const cw_tokens_t *toks, int32_t **ids, size_t *count,
                                 size_t *cap, const cw_rows_hint_t *hint) {
    const char *rows = hint ? hint->base : NULL;
    size_t stride = hint ? hint->stride : 0;
    size_t n = toks->n;
    uint32_t N = m->ngram > CW_NGRAM_MAX ? CW_NGRAM_MAX : m->ngram;
    if (m->nbuckets == 0) N = 1;
    size_t extra = 0;
    for (uint32_t k = 2; k <= N && k <= n; k++) extra += n - k + 1;
    cw_grow((void **)ids, cap, *count + n + extra, sizeof(int32_t));
    int32_t *out = *ids + *count;
    const cw_vocab_t *v = m->vocab;

    /* Words go to out[0..n), looked up a run of FEAT_RUN at a time with
     * their hashes, which the n-grams reuse; the n-grams ending at token i
     * (lengths 2..N) follow in order of i, then length. The n-gram of tokens
     * s..i hashes as fastText combines word hashes: h = H_s; h = h * MULT +
     * H_t for t = s+1..i (so a bigram is H_i + MULT * H_(i-1)). */
    uint64_t hs[FEAT_RUN], ring[CW_NGRAM_MAX];
    uint64_t base = cw_vocab_size(v), nb = m->nbuckets, prev = 0;
    int32_t *ng = out + n;
    for (size_t r = 0; r < n; r += FEAT_RUN) {
        size_t e = r + FEAT_RUN < n ? r + FEAT_RUN : n;
        cw_vocab_lookup_run(v, toks, r, e - r, hs, out + r);
        if (rows)
            for (size_t i = r; i < e; i++) rows_prefetch(rows, stride, out[i]);
        if (N == 2) {
            for (size_t i = r; i < e; i++) {
                uint64_t H = hs[i - r];
                if (i > 0) {
                    *ng = (int32_t)(base + ngram_bucket(H + prev * CW_NGRAM_MULT, nb));
                    rows_prefetch(rows, stride, *ng++);
                }
                prev = H;
            }
        } else if (N > 2) {
            for (size_t i = r; i < e; i++) {
                uint64_t H = hs[i - r], h = H, pw = 1;
                ring[i % CW_NGRAM_MAX] = H;
                for (uint32_t k = 2; k <= N && k <= i + 1; k++) {
                    pw *= CW_NGRAM_MULT;
                    h += ring[(i + 1 - k) % CW_NGRAM_MAX] * pw;
                    *ng = (int32_t)(base + ngram_bucket(h, nb));
                    rows_prefetch(rows, stride, *ng++);
                }
            }
        }
    }
    *count += n + extra;
    return n + extra;
}

void cw_softmax_rows(float *x, size_t n, size_t k) {
    for (size_t r = 0; r < n; r++) {
        float *row = x + r * k;
        float mx = row[0];
        for (size_t j = 1; j < k; j++) if (row[j] > mx) mx = row[j];
        float s = 0.f;
        for (size_t j = 0; j < k; j++) { row[j] = expf(row[j] - mx); s += row[j]; }
        float inv = 1.f / s;
        for (size_t j = 0; j < k; j++) row[j] *= inv;
    }
}
