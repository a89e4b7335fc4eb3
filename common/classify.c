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

/* One thread's share of a parallel job. Lane 0 is the caller's. In an add
 * job a lane appends the ids of the chunks it took, in the order it took
 * them; in a stream job it keeps one chunk at a time (ids, local offsets). */
typedef struct clf_lane_s {
    cw_classifier_t *c;
    cw_tokens_t toks;
    int32_t *ids;
    size_t nids, ids_cap;
    uint32_t *offs;
    size_t offs_cap;
    pthread_t th;
} clf_lane_t;

/* Chunk states of a stream job. */
enum { CLF_TODO = 0, CLF_DONE = 1, CLF_FAILED = 2 };

struct cw_classifier_s {
    cw_tokens_t toks;
    int32_t *ids;
    size_t nids, ids_cap;
    uint32_t *offsets;
    size_t nbags, off_cap;
    float *probs;
    size_t probs_cap;
    cw_rows_hint_t hint;      /* cw_classifier_hint: rows to prefetch while featurizing; until clear */

    /* Parallel jobs (cw_classifier_new_threads); nlanes 0 or 1 = none. */
    unsigned nlanes, started;
    clf_lane_t *lanes;
    pthread_mutex_t mu;
    pthread_cond_t go, done, more, chunk_done;
    uint64_t gen;             /* job number, bumped to start helpers */
    unsigned busy;            /* helpers still in the current job */
    unsigned waiting;         /* lanes waiting for texts (more) */
    unsigned row_waiting;     /* the caller waits for a chunk (chunk_done) */
    int quit;
    int streaming;            /* a stream job is open */
    /* The current job, read by the helpers between go and done. */
    const cw_model_t *jm;
    cw_backend_t *jbe;        /* stream job: forward each chunk on it; NULL: add job */
    const cw_text_t *jtexts;
    atomic_size_t jready;     /* texts [0, jready) may be read */
    atomic_size_t jtotal;     /* the job's text count, once jclosed */
    atomic_int jclosed;
    atomic_size_t jnext;      /* next chunk to take */
    size_t jsignalled;        /* chunks announced to waiting lanes */
    pthread_mutex_t be_mu;    /* one thread at a time in the backend */
    char jerr[256];           /* first forward failure of a stream job */
    uint32_t *tcount;         /* add job: ids of each text */
    size_t tcount_cap;
    uint32_t *chunk_lane;     /* add job: lane that featurized each chunk */
    size_t *chunk_start;      /* add job: where in that lane's ids the chunk begins */
    size_t chunk_lane_cap, chunk_start_cap;
    atomic_uchar *chunk_state; /* stream job: CLF_* of each chunk */
    size_t state_cap;
};

/* Tokenize and featurize one text, appending its ids (their rows prefetched
 * through hint, which may be NULL); returns how many. */
static size_t clf_featurize(const cw_model_t *m, cw_tokens_t *toks, const char *p, size_t len, int32_t **ids,
                            size_t *nids, size_t *ids_cap, const cw_rows_hint_t *hint) {
    size_t before = *nids;
    cw_tokenize(p, len, toks);
    cw_model_featurize_hinted(m, toks, ids, nids, ids_cap, hint);
    return *nids - before;
}

/* Wait until chunk ch's texts may be read. 1: process it; 0: the job closed
 * with fewer texts, nothing left to take. */
static int clf_chunk_ready(cw_classifier_t *c, size_t ch) {
    size_t lo = ch * CW_CLASSIFY_CHUNK;
    for (;;) {
        if (atomic_load_explicit(&c->jready, memory_order_acquire) >= lo + CW_CLASSIFY_CHUNK) return 1;
        if (atomic_load_explicit(&c->jclosed, memory_order_acquire))
            return lo < atomic_load_explicit(&c->jtotal, memory_order_relaxed);
        pthread_mutex_lock(&c->mu);
        while (atomic_load_explicit(&c->jready, memory_order_acquire) < lo + CW_CLASSIFY_CHUNK &&
               !atomic_load_explicit(&c->jclosed, memory_order_acquire)) {
            c->waiting++;
            pthread_cond_wait(&c->more, &c->mu);
            c->waiting--;
        }
        pthread_mutex_unlock(&c->mu);
    }
}

/* Texts of chunk ch: [lo, hi). */
static size_t clf_chunk_end(cw_classifier_t *c, size_t ch) {
    size_t hi = (ch + 1) * CW_CLASSIFY_CHUNK;
    if (atomic_load_explicit(&c->jclosed, memory_order_acquire)) {
        size_t total = atomic_load_explicit(&c->jtotal, memory_order_relaxed);
        if (hi > total) hi = total;
    }
    return hi;
}

/* Add job: featurize chunk ch into the lane's ids, recording where it went. */
static void clf_add_chunk(cw_classifier_t *c, clf_lane_t *l, uint32_t lane, size_t ch) {
    size_t hi = clf_chunk_end(c, ch);
    c->chunk_lane[ch] = lane;
    c->chunk_start[ch] = l->nids;
    for (size_t i = ch * CW_CLASSIFY_CHUNK; i < hi; i++)
        c->tcount[i] = (uint32_t)clf_featurize(c->jm, &l->toks, c->jtexts[i].p, c->jtexts[i].len, &l->ids,
                                               &l->nids, &l->ids_cap, NULL);
}

/* Stream job: featurize chunk ch and forward it into its rows of c->probs. */
static void clf_stream_chunk(cw_classifier_t *c, clf_lane_t *l, size_t ch) {
    size_t lo = ch * CW_CLASSIFY_CHUNK, hi = clf_chunk_end(c, ch);
    l->nids = 0;
    cw_grow((void **)&l->offs, &l->offs_cap, CW_CLASSIFY_CHUNK, sizeof(uint32_t));
    for (size_t i = lo; i < hi; i++) {
        l->offs[i - lo] = (uint32_t)l->nids;
        clf_featurize(c->jm, &l->toks, c->jtexts[i].p, c->jtexts[i].len, &l->ids, &l->nids, &l->ids_cap, NULL);
    }
    cw_batch_t b = {.ids = l->ids, .nids = l->nids, .offsets = l->offs, .nbags = hi - lo};
    char err[256];
    pthread_mutex_lock(&c->be_mu);
    int rc = cw_backend_forward(c->jbe, &b, c->probs + lo * c->jm->nlabels, err, sizeof(err));
    if (rc != 0 && !c->jerr[0]) snprintf(c->jerr, sizeof(c->jerr), "%s", err);
    pthread_mutex_unlock(&c->be_mu);
    atomic_store_explicit(&c->chunk_state[ch], rc == 0 ? CLF_DONE : CLF_FAILED, memory_order_release);
    pthread_mutex_lock(&c->mu);
    if (c->row_waiting) pthread_cond_signal(&c->chunk_done);
    pthread_mutex_unlock(&c->mu);
}

static void clf_do_chunk(cw_classifier_t *c, clf_lane_t *l, uint32_t lane, size_t ch) {
    if (c->jbe) clf_stream_chunk(c, l, ch);
    else clf_add_chunk(c, l, lane, ch);
}

/* Take chunks until none is left. */
static void clf_lane_work(cw_classifier_t *c, clf_lane_t *l, uint32_t lane) {
    size_t ch;
    for (;;) {
        ch = atomic_fetch_add_explicit(&c->jnext, 1, memory_order_relaxed);
        if (!clf_chunk_ready(c, ch)) break;
        clf_do_chunk(c, l, lane, ch);
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

/* Start a job on the helpers: texts [0, ready) readable now; closed with
 * total texts when closed. */
static void clf_job_start(cw_classifier_t *c, const cw_model_t *m, cw_backend_t *be, const cw_text_t *texts,
                          size_t ready, int closed, size_t total) {
    for (unsigned i = 0; i < c->nlanes; i++) c->lanes[i].nids = 0;
    pthread_mutex_lock(&c->mu);
    c->jm = m;
    c->jbe = be;
    c->jtexts = texts;
    c->jerr[0] = '\0';
    atomic_store_explicit(&c->jready, ready, memory_order_relaxed);
    atomic_store_explicit(&c->jtotal, total, memory_order_relaxed);
    atomic_store_explicit(&c->jclosed, closed, memory_order_relaxed);
    atomic_store_explicit(&c->jnext, 0, memory_order_relaxed);
    c->jsignalled = ready / CW_CLASSIFY_CHUNK;
    c->busy = c->nlanes - 1;
    c->gen++;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
}

/* Every helper must be out of the job before its buffers are read (and
 * before the next job may change what it reads). */
static void clf_job_wait(cw_classifier_t *c) {
    pthread_mutex_lock(&c->mu);
    while (c->busy > 0) pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
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
    pthread_mutex_init(&c->be_mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    pthread_cond_init(&c->more, NULL);
    pthread_cond_init(&c->chunk_done, NULL);
    atomic_init(&c->jnext, 0);
    atomic_init(&c->jready, 0);
    atomic_init(&c->jtotal, 0);
    atomic_init(&c->jclosed, 0);
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
        if (c->streaming) cw_classifier_stream_end(c, NULL, 0);
        pthread_mutex_lock(&c->mu);
        c->quit = 1;
        pthread_cond_broadcast(&c->go);
        pthread_mutex_unlock(&c->mu);
        for (unsigned i = 1; i <= c->started; i++) pthread_join(c->lanes[i].th, NULL);
        for (unsigned i = 0; i < c->nlanes; i++) {
            cw_tokens_free(&c->lanes[i].toks);
            cw_free(c->lanes[i].ids);
            cw_free(c->lanes[i].offs);
        }
        cw_free(c->lanes);
        cw_free(c->tcount);
        cw_free(c->chunk_lane);
        cw_free(c->chunk_start);
        cw_free(c->chunk_state);
        pthread_cond_destroy(&c->go);
        pthread_cond_destroy(&c->done);
        pthread_cond_destroy(&c->more);
        pthread_cond_destroy(&c->chunk_done);
        pthread_mutex_destroy(&c->be_mu);
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
    clf_featurize(m, &c->toks, text, len, &c->ids, &c->nids, &c->ids_cap,
                  c->hint.base && c->nids < CW_CLASSIFY_HINT_IDS ? &c->hint : NULL);
}

void cw_classifier_hint(cw_classifier_t *c, const cw_backend_t *be) { cw_backend_rows(be, &c->hint); }

void cw_classifier_add_texts(cw_classifier_t *c, const cw_model_t *m, const cw_text_t *texts, size_t n) {
    if (c->nlanes < 2 || n < CW_CLASSIFY_MIN_PARALLEL) {
        for (size_t i = 0; i < n; i++) cw_classifier_add(c, m, texts[i].p, texts[i].len);
        return;
    }
    size_t nchunks = (n + CW_CLASSIFY_CHUNK - 1) / CW_CLASSIFY_CHUNK;
    cw_grow((void **)&c->tcount, &c->tcount_cap, n, sizeof(uint32_t));
    cw_grow((void **)&c->chunk_lane, &c->chunk_lane_cap, nchunks, sizeof(uint32_t));
    cw_grow((void **)&c->chunk_start, &c->chunk_start_cap, nchunks, sizeof(size_t));
    clf_job_start(c, m, NULL, texts, n, 1, n);
    clf_lane_work(c, &c->lanes[0], 0);
    clf_job_wait(c);

    /* Merge in text order: offsets from the counts, ids chunk by chunk. */
    size_t total = 0;
    for (unsigned i = 0; i < c->nlanes; i++) total += c->lanes[i].nids;
    cw_grow((void **)&c->offsets, &c->off_cap, c->nbags + n, sizeof(uint32_t));
    cw_grow((void **)&c->ids, &c->ids_cap, c->nids + total + 1, sizeof(int32_t));
    for (size_t ch = 0; ch < nchunks; ch++) {
        const clf_lane_t *l = &c->lanes[c->chunk_lane[ch]];
        size_t end = clf_chunk_end(c, ch), cnt = 0;
        for (size_t i = ch * CW_CLASSIFY_CHUNK; i < end; i++) {
            c->offsets[c->nbags++] = (uint32_t)(c->nids + cnt);
            cnt += c->tcount[i];
        }
        if (cnt) memcpy(c->ids + c->nids, l->ids + c->chunk_start[ch], cnt * sizeof(int32_t));
        c->nids += cnt;
    }
}

int cw_classifier_can_stream(const cw_classifier_t *c, const cw_backend_t *be, size_t n) {
    return c->nlanes > 1 && be->ops->splittable && n >= CW_CLASSIFY_MIN_PARALLEL;
}

void cw_classifier_stream_begin(cw_classifier_t *c, const cw_model_t *m, cw_backend_t *be, const cw_text_t *texts,
                                size_t cap) {
    size_t nchunks = (cap + CW_CLASSIFY_CHUNK - 1) / CW_CLASSIFY_CHUNK;
    cw_grow((void **)&c->probs, &c->probs_cap, cap * m->nlabels + 1, sizeof(float));
    cw_grow((void **)&c->chunk_state, &c->state_cap, nchunks + 1, sizeof(atomic_uchar));
    for (size_t i = 0; i < nchunks; i++) atomic_init(&c->chunk_state[i], CLF_TODO);
    c->streaming = 1;
    clf_job_start(c, m, be, texts, 0, 0, 0);
}

void cw_classifier_stream_ready(cw_classifier_t *c, size_t n) {
    atomic_store_explicit(&c->jready, n, memory_order_release);
    if (n / CW_CLASSIFY_CHUNK > c->jsignalled) {
        c->jsignalled = n / CW_CLASSIFY_CHUNK;
        pthread_mutex_lock(&c->mu);
        if (c->waiting) pthread_cond_broadcast(&c->more);
        pthread_mutex_unlock(&c->mu);
    }
}

void cw_classifier_stream_close(cw_classifier_t *c, size_t n) {
    atomic_store_explicit(&c->jready, n, memory_order_relaxed);
    atomic_store_explicit(&c->jtotal, n, memory_order_relaxed);
    pthread_mutex_lock(&c->mu);
    atomic_store_explicit(&c->jclosed, 1, memory_order_release);
    pthread_cond_broadcast(&c->more);
    pthread_mutex_unlock(&c->mu);
}

const float *cw_classifier_stream_row(cw_classifier_t *c, size_t i) {
    size_t ch = i / CW_CLASSIFY_CHUNK;
    for (;;) {
        unsigned char st = atomic_load_explicit(&c->chunk_state[ch], memory_order_acquire);
        if (st == CLF_DONE) return c->probs + i * c->jm->nlabels;
        if (st == CLF_FAILED) return NULL;
        /* Not done: work on a chunk not taken yet rather than wait. */
        size_t next = atomic_fetch_add_explicit(&c->jnext, 1, memory_order_relaxed);
        if (clf_chunk_ready(c, next)) {
            clf_do_chunk(c, &c->lanes[0], 0, next);
            continue;
        }
        pthread_mutex_lock(&c->mu);
        c->row_waiting = 1;
        while (atomic_load_explicit(&c->chunk_state[ch], memory_order_acquire) == CLF_TODO)
            pthread_cond_wait(&c->chunk_done, &c->mu);
        c->row_waiting = 0;
        pthread_mutex_unlock(&c->mu);
    }
}

int cw_classifier_stream_end(cw_classifier_t *c, char *errstr, size_t errstr_size) {
    if (!c->streaming) return 0;
    if (!atomic_load_explicit(&c->jclosed, memory_order_acquire))
        cw_classifier_stream_close(c, atomic_load_explicit(&c->jready, memory_order_relaxed));
    /* Chunks nobody took yet (the caller stopped reading rows early) are
     * taken here, so the helpers can leave. */
    clf_lane_work(c, &c->lanes[0], 0);
    clf_job_wait(c);
    c->streaming = 0;
    if (c->jerr[0]) {
        if (errstr) snprintf(errstr, errstr_size, "%s", c->jerr);
        return -1;
    }
    return 0;
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
    c->hint.base = NULL;
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
