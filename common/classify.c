/* classify.c: batch texts -> probabilities. See classify.h. */
#include "classify.h"

#include "tokenizer.h"
#include "util.h"

struct cw_classifier_s {
    cw_tokens_t toks;
    int32_t *ids;
    size_t nids, ids_cap;
    uint32_t *offsets;
    size_t nbags, off_cap;
    float *probs;
    size_t probs_cap;
};

cw_classifier_t *cw_classifier_new(void) {
    cw_classifier_t *c = cw_calloc(1, sizeof(*c));
    cw_tokens_init(&c->toks);
    return c;
}

void cw_classifier_destroy(cw_classifier_t *c) {
    if (!c) return;
    cw_tokens_free(&c->toks);
    cw_free(c->ids);
    cw_free(c->offsets);
    cw_free(c->probs);
    cw_free(c);
}

void cw_classifier_add(cw_classifier_t *c, const cw_model_t *m, const char *text, size_t len) {
    cw_grow((void **)&c->offsets, &c->off_cap, c->nbags + 1, sizeof(uint32_t));
    c->offsets[c->nbags++] = (uint32_t)c->nids;
    cw_tokenize(text, len, &c->toks);
    cw_model_featurize(m, &c->toks, &c->ids, &c->nids, &c->ids_cap);
}

size_t cw_classifier_pending(const cw_classifier_t *c) { return c->nbags; }

void cw_classifier_clear(cw_classifier_t *c) {
    c->nbags = 0;
    c->nids = 0;
}

int cw_classifier_run(cw_classifier_t *c, cw_backend_t *be, const float **probs,
                      char *errstr, size_t errstr_size) {
    int rc = -1;
    uint32_t k = be->model->nlabels;
    cw_grow((void **)&c->probs, &c->probs_cap, c->nbags * k + 1, sizeof(float));
    cw_batch_t b = {.ids = c->ids, .nids = c->nids, .offsets = c->offsets, .nbags = c->nbags};
    if (c->nbags > 0 && cw_backend_forward(be, &b, c->probs, errstr, errstr_size) != 0) goto done;
    *probs = c->probs;
    rc = 0;
done:
    cw_classifier_clear(c);
    return rc;
}

uint32_t cw_argmax(const float *row, uint32_t k) {
    uint32_t best = 0;
    for (uint32_t j = 1; j < k; j++)
        if (row[j] > row[best]) best = j;
    return best;
}
