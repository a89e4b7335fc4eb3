/* classify.c: batch texts -> probabilities. See classify.h. */
#include "classify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "tokenizer.h"
#include "util.h"

/* One thread's share of a parallel add: its tokens and the ids of the chunks
 * it took, appended in the order it took them. Lane 0 is the caller's. */
typedef struct clf_lane_s {
    cw_classifier_t *c;
    cw_tokens_t toks;
    int32_t *ids;
    size_t nids, ids_cap;
    pthread_t th;
} clf_lane_t;

struct cw_classifier_s {
    cw_tokens_t toks;
    int32_t *ids;
    size_t nids, ids_cap;
    uint32_t *offsets;
    size_t nbags, off_cap;
    float *probs;
    size_t probs_cap;

    /* Parallel add (cw_classifier_new_threads); nlanes 0 or 1 = none. */
    unsigned nlanes, started;
    clf_lane_t *lanes;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;             /* job number, bumped to start helpers */
    unsigned busy;            /* helpers still in the current job */
    int quit;
    /* The current job, read by the helpers between go and done. */
    const cw_model_t *jm;
    const cw_text_t *jtexts;
    size_t jn, jchunks;
    atomic_size_t jnext;      /* next chunk to take */
    uint32_t *tcount;         /* ids of each text */
    size_t tcount_cap;
    uint32_t *chunk_lane;     /* lane that featurized each chunk */
    size_t *chunk_start;      /* where in that lane's ids the chunk begins */
    size_t chunk_cap, chunk_cap2;
};

/* Take chunks until none is left. */
static void clf_lane_work(cw_classifier_t *c, clf_lane_t *l, uint32_t lane) {
    size_t ch;
    while ((ch = atomic_fetch_add_explicit(&c->jnext, 1, memory_order_relaxed)) < c->jchunks) {
        c->chunk_lane[ch] = lane;
        c->chunk_start[ch] = l->nids;
        size_t end = (ch + 1) * CW_CLASSIFY_CHUNK;
        if (end > c->jn) end = c->jn;
        for (size_t i = ch * CW_CLASSIFY_CHUNK; i < end; i++) {
            size_t before = l->nids;
            cw_tokenize(c->jtexts[i].p, c->jtexts[i].len, &l->toks);
            cw_model_featurize(c->jm, &l->toks, &l->ids, &l->nids, &l->ids_cap);
            c->tcount[i] = (uint32_t)(l->nids - before);
        }
    }
}

static void *clf_helper(void *arg) {
    clf_lane_t *l = arg;
    cw_classifier_t *c = l->c;
    uint32_t lane = (uint32_t)(l - c->lanes);
    uint64_t seen = 0;
#ifdef __linux__
    prctl(PR_SET_NAME, "cw-featurize", 0, 0, 0);
#endif
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->gen == seen && !c->quit) pthread_cond_wait(&c->go, &c->mu);
        if (c->quit) break;
        seen = c->gen;
        pthread_mutex_unlock(&c->mu);
        clf_lane_work(c, l, lane);
        pthread_mutex_lock(&c->mu);
        if (--c->busy == 0) pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

cw_classifier_t *cw_classifier_new(void) {
    cw_classifier_t *c = cw_calloc(1, sizeof(*c));
    cw_tokens_init(&c->toks);
    return c;
}

cw_classifier_t *cw_classifier_new_threads(unsigned nthreads, char *errstr, size_t errstr_size) {
    if (nthreads < 1 || nthreads > CW_CLASSIFY_MAX_THREADS) {
        snprintf(errstr, errstr_size, "classifier threads %u out of 1..%d", nthreads, CW_CLASSIFY_MAX_THREADS);
        return NULL;
    }
    cw_classifier_t *c = cw_classifier_new();
    if (nthreads == 1) return c;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    atomic_init(&c->jnext, 0);
    c->nlanes = nthreads;
    c->lanes = cw_calloc(nthreads, sizeof(clf_lane_t));
    for (unsigned i = 0; i < nthreads; i++) {
        c->lanes[i].c = c;
        cw_tokens_init(&c->lanes[i].toks);
    }
    for (unsigned i = 1; i < nthreads; i++) {
        int e = pthread_create(&c->lanes[i].th, NULL, clf_helper, &c->lanes[i]);
        if (e != 0) {
            snprintf(errstr, errstr_size, "starting classifier thread %u of %u: %s", i, nthreads, strerror(e));
            cw_classifier_destroy(c);
            return NULL;
        }
        c->started = i;
    }
    return c;
}

void cw_classifier_destroy(cw_classifier_t *c) {
    if (!c) return;
    if (c->nlanes > 1) {
        pthread_mutex_lock(&c->mu);
        c->quit = 1;
        pthread_cond_broadcast(&c->go);
        pthread_mutex_unlock(&c->mu);
        for (unsigned i = 1; i <= c->started; i++) pthread_join(c->lanes[i].th, NULL);
        for (unsigned i = 0; i < c->nlanes; i++) {
            cw_tokens_free(&c->lanes[i].toks);
            cw_free(c->lanes[i].ids);
        }
        cw_free(c->lanes);
        cw_free(c->tcount);
        cw_free(c->chunk_lane);
        cw_free(c->chunk_start);
        pthread_cond_destroy(&c->go);
        pthread_cond_destroy(&c->done);
        pthread_mutex_destroy(&c->mu);
    }
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

void cw_classifier_add_texts(cw_classifier_t *c, const cw_model_t *m, const cw_text_t *texts, size_t n) {
    if (c->nlanes < 2 || n < 2 * CW_CLASSIFY_CHUNK) {
        for (size_t i = 0; i < n; i++) cw_classifier_add(c, m, texts[i].p, texts[i].len);
        return;
    }
    size_t nchunks = (n + CW_CLASSIFY_CHUNK - 1) / CW_CLASSIFY_CHUNK;
    cw_grow((void **)&c->tcount, &c->tcount_cap, n, sizeof(uint32_t));
    cw_grow((void **)&c->chunk_lane, &c->chunk_cap, nchunks, sizeof(uint32_t));
    cw_grow((void **)&c->chunk_start, &c->chunk_cap2, nchunks, sizeof(size_t));
    for (unsigned i = 0; i < c->nlanes; i++) c->lanes[i].nids = 0;

    pthread_mutex_lock(&c->mu);
    c->jm = m;
    c->jtexts = texts;
    c->jn = n;
    c->jchunks = nchunks;
    atomic_store_explicit(&c->jnext, 0, memory_order_relaxed);
    c->busy = c->nlanes - 1;
    c->gen++;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);

    clf_lane_work(c, &c->lanes[0], 0);

    /* Every helper must be out of the job before its buffers are read (and
     * before the next job may change what it reads). */
    pthread_mutex_lock(&c->mu);
    while (c->busy > 0) pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);

    /* Merge in text order: offsets from the counts, ids chunk by chunk. */
    size_t total = 0;
    for (unsigned i = 0; i < c->nlanes; i++) total += c->lanes[i].nids;
    cw_grow((void **)&c->offsets, &c->off_cap, c->nbags + n, sizeof(uint32_t));
    cw_grow((void **)&c->ids, &c->ids_cap, c->nids + total + 1, sizeof(int32_t));
    for (size_t ch = 0; ch < nchunks; ch++) {
        const clf_lane_t *l = &c->lanes[c->chunk_lane[ch]];
        size_t end = (ch + 1) * CW_CLASSIFY_CHUNK, cnt = 0;
        if (end > n) end = n;
        for (size_t i = ch * CW_CLASSIFY_CHUNK; i < end; i++) {
            c->offsets[c->nbags++] = (uint32_t)(c->nids + cnt);
            cnt += c->tcount[i];
        }
        if (cnt) memcpy(c->ids + c->nids, l->ids + c->chunk_start[ch], cnt * sizeof(int32_t));
        c->nids += cnt;
    }
}

size_t cw_classifier_pending(const cw_classifier_t *c) { return c->nbags; }

void cw_classifier_batch(const cw_classifier_t *c, cw_batch_t *out) {
    out->ids = c->ids;
    out->nids = c->nids;
    out->offsets = c->offsets;
    out->nbags = c->nbags;
}

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
