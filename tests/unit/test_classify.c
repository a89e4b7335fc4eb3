/* test_classify.c: the batch classifier (classify.c), and above all its
 * parallel add: cw_classifier_add_texts() with 2 and 4 threads must give
 * exactly the (ids, offsets) batch and the probabilities of adding the same
 * texts one by one on one thread.
 *
 * Texts: the AG News test set (title + " " + description), with a vocabulary
 * of words seen at least twice (so some map to <unk>) and hashed bigrams (so
 * the n-gram path runs). Batch sizes around the chunk size (16) and the
 * inline threshold (128), odd sizes, and the whole set; batches appended to a
 * non-empty pending batch; the same classifier reused for many batches;
 * bad thread counts refused.
 *
 * Stream jobs (featurize and forward chunk by chunk on the helpers while
 * texts are still being added): the same probabilities as the whole batch
 * on one thread, bit for bit, at every size, with texts announced one at a
 * time; a job closed short of its capacity; a job ended before its rows are
 * read; a failing forward pass (ids the backend's model does not have)
 * reported by the row and by the end, after which the classifier still
 * works.
 *
 * Row hints (cw_classifier_hint): the prepared CPU backend offers its
 * projection (one row of nlabels floats per id), and a batch added with the
 * hint has the same ids and probabilities, bit for bit, at every size (the
 * cap CW_CLASSIFY_HINT_IDS falls inside the bigger ones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "classify.h"
#include "csv.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"
#include "vocab.h"

#include "check.h"

typedef struct {
    char *arena;
    size_t used, cap;
    size_t *at, *len;
    size_t n, ncap;
} texts_t;

static int load_texts(const char *path, texts_t *t) {
    char err[512] = "";
    cw_csv_t *csv = cw_csv_open(path, err, sizeof(err));
    CHECK(csv != NULL, "open: %s", err);
    if (!csv) return -1;
    size_t nf, *lens;
    char **f;
    int r;
    while ((r = cw_csv_next(csv, &nf, &f, &lens, err, sizeof(err))) == 1) {
        if (nf < 3) continue;
        size_t len = lens[1] + 1 + lens[2];
        cw_grow((void **)&t->arena, &t->cap, t->used + len, 1);
        memcpy(t->arena + t->used, f[1], lens[1]);
        t->arena[t->used + lens[1]] = ' ';
        memcpy(t->arena + t->used + lens[1] + 1, f[2], lens[2]);
        cw_grow((void **)&t->at, &t->ncap, t->n + 1, sizeof(size_t));
        t->len = realloc(t->len, t->ncap * sizeof(size_t));
        t->at[t->n] = t->used;
        t->len[t->n] = len;
        t->n++;
        t->used += len;
    }
    CHECK(r == 0, "read: %s", err);
    cw_csv_close(csv);
    return r == 0 ? 0 : -1;
}

static cw_model_t *make_model(const texts_t *t) {
    cw_vocab_counter_t *c = cw_vocab_counter_new();
    cw_tokens_t toks;
    cw_tokens_init(&toks);
    for (size_t i = 0; i < t->n; i++) {
        cw_tokenize(t->arena + t->at[i], t->len[i], &toks);
        for (size_t k = 0; k < toks.n; k++) cw_vocab_counter_add(c, toks.buf + toks.start[k], toks.len[k]);
    }
    cw_tokens_free(&toks);
    cw_vocab_t *v = cw_vocab_build(c, 2, 0);
    cw_vocab_counter_destroy(c);
    const char *labels[] = {"World", "Sports", "Business", "Sci/Tec"};
    cw_model_t *m = cw_model_new(v, 16, labels, 4, 2, 4096);
    cw_model_init_uniform(m, 0.5f, 42);
    return m;
}

/* The reference: texts [first, first + n) added one by one on one thread. */
typedef struct {
    int32_t *ids;
    uint32_t *offsets;
    size_t nids, nbags;
    float *probs;
} ref_t;

static void snapshot(cw_classifier_t *c, cw_backend_t *be, ref_t *out) {
    cw_batch_t b;
    cw_classifier_batch(c, &b);
    out->nids = b.nids;
    out->nbags = b.nbags;
    out->ids = malloc((b.nids + 1) * sizeof(int32_t));
    out->offsets = malloc((b.nbags + 1) * sizeof(uint32_t));
    if (b.nids) memcpy(out->ids, b.ids, b.nids * sizeof(int32_t));
    if (b.nbags) memcpy(out->offsets, b.offsets, b.nbags * sizeof(uint32_t));
    const float *p = NULL;
    char err[256] = "";
    int rc = cw_classifier_run(c, be, &p, err, sizeof(err));
    CHECK(rc == 0, "run: %s", err);
    size_t k = be->model->nlabels;
    out->probs = malloc((b.nbags * k + 1) * sizeof(float));
    if (rc == 0 && b.nbags) memcpy(out->probs, p, b.nbags * k * sizeof(float));
}

static void ref_free(ref_t *r) {
    free(r->ids);
    free(r->offsets);
    free(r->probs);
}

static void same(const ref_t *want, const ref_t *got, const char *what) {
    CHECK(got->nbags == want->nbags, "%s: %zu bags, want %zu", what, got->nbags, want->nbags);
    CHECK(got->nids == want->nids, "%s: %zu ids, want %zu", what, got->nids, want->nids);
    if (got->nbags != want->nbags || got->nids != want->nids) return;
    CHECK(memcmp(got->offsets, want->offsets, want->nbags * sizeof(uint32_t)) == 0, "%s: offsets differ", what);
    CHECK(memcmp(got->ids, want->ids, want->nids * sizeof(int32_t)) == 0, "%s: ids differ", what);
    CHECK(memcmp(got->probs, want->probs, want->nbags * 4 * sizeof(float)) == 0, "%s: probabilities differ", what);
}

/* got = c's pending batch, run on be; compared with want. */
static void check_pending(cw_classifier_t *c, cw_backend_t *be, const ref_t *want, const char *what) {
    ref_t got;
    snapshot(c, be, &got);
    same(want, &got, what);
    ref_free(&got);
}

/* The reference for texts v[0, n): added one by one to c (no helpers). */
static void reference(cw_classifier_t *c, const cw_model_t *m, cw_backend_t *be, const cw_text_t *v, size_t n,
                      ref_t *want) {
    for (size_t i = 0; i < n; i++) cw_classifier_add(c, m, v[i].p, v[i].len);
    snapshot(c, be, want);
}

/* Rows of a closed stream job whose probabilities differ from want's. */
static int stream_rows_bad(cw_classifier_t *c, const ref_t *want, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = cw_classifier_stream_row(c, i);
        if (!p || memcmp(p, want->probs + i * 4, 4 * sizeof(float)) != 0) bad++;
    }
    return bad;
}

static cw_text_t *as_texts(const texts_t *t, size_t first, size_t n) {
    cw_text_t *v = malloc((n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].p = t->arena + t->at[first + i];
        v[i].len = t->len[first + i];
    }
    return v;
}

int main(void) {
    char path[4096], err[256] = "";
    snprintf(path, sizeof(path), "%s/test.csv", CW_TEST_DATA);
    texts_t t = {0};
    if (load_texts(path, &t) != 0) return 1;
    CHECK(t.n == 7600, "AG News test set: %zu articles, want 7600", t.n);
    cw_model_t *m = make_model(&t);
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    CHECK(be != NULL, "backend: %s", err);
    if (!be) return 1;
    CHECK(cw_backend_upload(be, m, err, sizeof(err)) == 0, "upload: %s", err);
    CHECK(cw_backend_prepare(be, err, sizeof(err)) == 0, "prepare: %s", err);

    /* The prepared CPU backend's rows: its projection. */
    cw_rows_hint_t hint;
    cw_backend_rows(be, &hint);
    CHECK(hint.base != NULL && hint.stride == m->nlabels * sizeof(float),
          "cpu rows after prepare: base %p, stride %zu (want %zu)", (const void *)hint.base, hint.stride,
          (size_t)(m->nlabels * sizeof(float)));

    /* Bad thread counts. */
    err[0] = '\0';
    CHECK(cw_classifier_new_threads(0, err, sizeof(err)) == NULL && strstr(err, "1..64"),
          "0 threads refused: '%s'", err);
    err[0] = '\0';
    CHECK(cw_classifier_new_threads(CW_CLASSIFY_MAX_THREADS + 1, err, sizeof(err)) == NULL && err[0],
          "65 threads refused: '%s'", err);

    cw_classifier_t *one = cw_classifier_new();
    unsigned nthreads[] = {1, 2, 4};
    cw_classifier_t *par[3];
    for (int j = 0; j < 3; j++) {
        par[j] = cw_classifier_new_threads(nthreads[j], err, sizeof(err));
        CHECK(par[j] != NULL, "%u threads: %s", nthreads[j], err);
        if (!par[j]) return 1;
    }

    CHECK(!cw_classifier_can_stream(one, be, CW_CLASSIFY_MIN_PARALLEL),
          "a classifier without helpers claims it can stream");
    for (int j = 1; j < 3; j++)
        CHECK(cw_classifier_can_stream(par[j], be, CW_CLASSIFY_MIN_PARALLEL) &&
                  !cw_classifier_can_stream(par[j], be, CW_CLASSIFY_MIN_PARALLEL - 1),
              "%u threads on cpu: streams from %d texts?", nthreads[j], CW_CLASSIFY_MIN_PARALLEL);

    /* Batches of many sizes, walking through the test set, each classifier
     * reused for all of them: added at once (1, 2, 4 threads), and streamed
     * with texts announced one at a time (2, 4 threads). */
    size_t sizes[] = {1, 15, 16, 17, 33, 64, 127, 128, 129, 143, 144, 145, 257, 1000, 1024, 7600};
    size_t first = 0;
    ref_t want;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        if (first + n > t.n) first = 0;
        cw_text_t *v = as_texts(&t, first, n);
        reference(one, m, be, v, n, &want);
        CHECK(want.nbags == n, "reference of %zu: %zu bags", n, want.nbags);
        for (int j = 0; j < 3; j++) {
            char what[64];
            snprintf(what, sizeof(what), "batch of %zu at %zu, %u threads", n, first, nthreads[j]);
            cw_classifier_add_texts(par[j], m, v, n);
            CHECK(cw_classifier_pending(par[j]) == n, "%s: %zu pending", what, cw_classifier_pending(par[j]));
            check_pending(par[j], be, &want, what);
        }
        /* The same texts with the row hint, one by one and at once. */
        char hwhat[64];
        snprintf(hwhat, sizeof(hwhat), "batch of %zu at %zu, hinted", n, first);
        cw_classifier_hint(one, be);
        for (size_t i = 0; i < n; i++) cw_classifier_add(one, m, v[i].p, v[i].len);
        check_pending(one, be, &want, hwhat);
        snprintf(hwhat, sizeof(hwhat), "batch of %zu at %zu, hinted, 2 threads", n, first);
        cw_classifier_hint(par[1], be);
        cw_classifier_add_texts(par[1], m, v, n);
        check_pending(par[1], be, &want, hwhat);
        for (int j = 1; j < 3; j++) {
            /* capacity above n: the job is closed short of it */
            cw_text_t *slots = calloc(n + 7, sizeof(*slots));
            cw_classifier_stream_begin(par[j], m, be, slots, n + 7);
            for (size_t i = 0; i < n; i++) {
                slots[i] = v[i];
                cw_classifier_stream_ready(par[j], i + 1);
            }
            cw_classifier_stream_close(par[j], n);
            int rows_bad = stream_rows_bad(par[j], &want, n);
            CHECK(rows_bad == 0, "stream of %zu, %u threads: %d rows differ", n, nthreads[j], rows_bad);
            err[0] = '\0';
            CHECK(cw_classifier_stream_end(par[j], err, sizeof(err)) == 0, "stream end: %s", err);
            free(slots);
        }
        free(v);
        ref_free(&want);
        first += n;
    }

    /* Appended to a pending batch: 5 single adds, then 200 texts at once,
     * then 3 more single adds. */
    cw_text_t *all = as_texts(&t, 3000, 208);
    reference(one, m, be, all, 208, &want);
    free(all);
    cw_text_t *v = as_texts(&t, 3005, 200);
    for (int j = 0; j < 3; j++) {
        char what[64];
        snprintf(what, sizeof(what), "appended batch, %u threads", nthreads[j]);
        for (size_t i = 0; i < 5; i++) cw_classifier_add(par[j], m, t.arena + t.at[3000 + i], t.len[3000 + i]);
        cw_classifier_add_texts(par[j], m, v, 200);
        for (size_t i = 205; i < 208; i++) cw_classifier_add(par[j], m, t.arena + t.at[3000 + i], t.len[3000 + i]);
        check_pending(par[j], be, &want, what);
    }
    free(v);
    ref_free(&want);

    /* Many small jobs in a row on the 4-thread classifier (the helpers'
     * wake-up and hand-back, not the merge, is what this exercises). */
    int bad = 0;
    size_t nsmall = CW_CLASSIFY_MIN_PARALLEL + 3;
    v = as_texts(&t, 0, nsmall);
    reference(one, m, be, v, nsmall, &want);
    for (int r = 0; r < 1000; r++) {
        cw_classifier_add_texts(par[2], m, v, nsmall);
        cw_batch_t b;
        cw_classifier_batch(par[2], &b);
        if (b.nids != want.nids || b.nbags != nsmall ||
            memcmp(b.ids, want.ids, want.nids * sizeof(int32_t)) != 0 ||
            memcmp(b.offsets, want.offsets, nsmall * sizeof(uint32_t)) != 0)
            bad++;
        cw_classifier_clear(par[2]);
    }
    CHECK(bad == 0, "%d of 1000 repeated %zu-text jobs differ", bad, nsmall);
    free(v);
    ref_free(&want);

    /* A stream job ended before any row is read, then the classifier reused. */
    v = as_texts(&t, 100, 300);
    cw_classifier_stream_begin(par[2], m, be, v, 300);
    cw_classifier_stream_ready(par[2], 300);
    CHECK(cw_classifier_stream_end(par[2], err, sizeof(err)) == 0, "early end: %s", err);
    reference(one, m, be, v, 300, &want);
    cw_classifier_add_texts(par[2], m, v, 300);
    check_pending(par[2], be, &want, "add after an early-ended stream job");

    /* A failing forward pass: featurized with m, forwarded on a backend
     * bound to a model with 50 rows. */
    {
        cw_vocab_t *v2 = cw_vocab_new();
        for (int i = 1; i < 50; i++) {
            char w[16];
            int len = snprintf(w, sizeof(w), "zz%d", i);
            cw_vocab_push(v2, w, (size_t)len);
        }
        const char *labels[] = {"World", "Sports", "Business", "Sci/Tec"};
        cw_model_t *small = cw_model_new(v2, 16, labels, 4, 1, 0);
        cw_model_init_uniform(small, 0.5f, 7);
        cw_backend_t *be2 = cw_backend_new("cpu", err, sizeof(err));
        CHECK(be2 && cw_backend_upload(be2, small, err, sizeof(err)) == 0 &&
              cw_backend_prepare(be2, err, sizeof(err)) == 0, "small backend: %s", err);
        cw_classifier_stream_begin(par[1], m, be2, v, 300);
        cw_classifier_stream_close(par[1], 300);
        CHECK(cw_classifier_stream_row(par[1], 0) == NULL, "a row of a failed chunk has probabilities");
        err[0] = '\0';
        CHECK(cw_classifier_stream_end(par[1], err, sizeof(err)) == -1 && err[0],
              "failed stream job ended with '%s'", err);
        fprintf(stderr, "failed stream job: %s\n", err);
        cw_backend_destroy(be2);
        cw_model_destroy(small);
        /* and the classifier still works */
        cw_text_t *slots = calloc(300, sizeof(*slots));
        memcpy(slots, v, 300 * sizeof(*slots));
        cw_classifier_stream_begin(par[1], m, be, slots, 300);
        cw_classifier_stream_close(par[1], 300);
        int rows_bad = stream_rows_bad(par[1], &want, 300);
        CHECK(rows_bad == 0, "stream after a failed one: %d rows differ", rows_bad);
        CHECK(cw_classifier_stream_end(par[1], err, sizeof(err)) == 0, "stream end: %s", err);
        free(slots);
    }
    ref_free(&want);
    free(v);

    /* An empty add changes nothing. */
    cw_classifier_add_texts(par[1], m, NULL, 0);
    CHECK(cw_classifier_pending(par[1]) == 0, "empty add left %zu pending", cw_classifier_pending(par[1]));

    cw_classifier_destroy(one);
    for (int j = 0; j < 3; j++) cw_classifier_destroy(par[j]);
    cw_backend_destroy(be);
    cw_model_destroy(m);
    free(t.arena);
    free(t.at);
    free(t.len);
    if (failures) fprintf(stderr, "test_classify: %d failures\n", failures);
    return failures ? 1 : 0;
}
