/* classify.h: raw texts in, class probabilities out, for one batch.
 *
 * The path every caller of a trained model shares (worker, predict, evaluate,
 * benchmarks): tokenize each text, featurize (words + n-grams), pack one
 * (ids, offsets) batch, one backend forward pass. A cw_classifier_t holds the
 * scratch buffers, reused across batches, so steady state allocates nothing.
 *
 * Threads: one classifier per thread; it does not own the backend or model.
 * A classifier made by cw_classifier_new_threads(n) owns n - 1 helper
 * threads of its own, which work on a batch in chunks of CW_CLASSIFY_CHUNK
 * texts taken from a shared counter (a helper that is slow to be scheduled
 * costs balance, not time; the caller works too):
 *   - cw_classifier_add_texts() tokenizes and featurizes a batch in
 *     parallel; the ids and offsets are exactly those of adding the texts
 *     one by one, in order, and the forward pass stays one call on the
 *     caller's thread (cw_classifier_run);
 *   - a stream job (cw_classifier_stream_*) also runs the forward pass, chunk
 *     by chunk, on whichever thread featurized the chunk, one thread at a
 *     time in the backend (a mutex), while the caller is still adding texts
 *     and while it reads finished rows in order. Only for backends whose
 *     forward is splittable (backend.h: CPU); the probabilities are exactly
 *     those of cw_classifier_run on the whole batch.
 * Between the begin and the end of a stream job, the backend belongs to the
 * classifier: the caller must not use it. */
#ifndef CW_CLASSIFY_H
#define CW_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"

typedef struct cw_classifier_s cw_classifier_t;

/* Texts per chunk of a parallel job. */
#define CW_CLASSIFY_CHUNK 16
/* Batches under this many texts stay on the caller's thread: handing them to
 * helpers costs more than it saves (measured on 2 busy cores: at 64 texts a
 * stream job cost ~1 us more CPU per text than one thread, at 1024 the same). */
#define CW_CLASSIFY_MIN_PARALLEL 128
/* Most threads (caller included) one classifier may use. */
#define CW_CLASSIFY_MAX_THREADS 64

typedef struct cw_text_s {
    const char *p;
    size_t len;
} cw_text_t;

cw_classifier_t *cw_classifier_new(void);
/* A classifier using nthreads threads (1 = cw_classifier_new(), no helper);
 * NULL with errstr when a thread cannot be started or nthreads is out of
 * 1..CW_CLASSIFY_MAX_THREADS. */
cw_classifier_t *cw_classifier_new_threads(unsigned nthreads, char *errstr, size_t errstr_size);
/* Stops and joins the helpers. */
void cw_classifier_destroy(cw_classifier_t *c);

/* A batch's texts added one at a time (cw_classifier_add, add_texts on one
 * thread) have their rows prefetched while the pending batch holds fewer
 * than this many ids: a small batch's forward pass would otherwise start
 * with all of its scattered rows missing at once, while a big batch's
 * forward keeps its own lookahead and extra early loads only compete with
 * the featurizer's. Measured with bench_infer --hint ab (the rates with and
 * without the hint in one process, 40 passes each run, 6 runs): batch 1
 * 1.05-1.10 (median 1.064), batch 64 0.98-1.02 (1.00), batch 1024 0.95-1.10
 * (1.00); the same with the hint made a no-op (A/A) read 0.99-1.02 at 1 and
 * 0.97-1.06 at 64. Uncapped, batch 64 was no better (0.96-1.01, read
 * before the pass order was balanced). */
#define CW_CLASSIFY_HINT_IDS 256

/* Until the next run or clear, prefetch be's forward rows (backend.h's rows
 * op) while texts are added: call it with the backend that will run the
 * batch. Nothing changes in the ids or results; a backend without the op
 * gives no hint. */
void cw_classifier_hint(cw_classifier_t *c, const cw_backend_t *be);

/* Add one text to the pending batch (tokenized and featurized now, with m). */
void cw_classifier_add(cw_classifier_t *c, const cw_model_t *m, const char *text, size_t len);
/* Add n texts, in order, as n cw_classifier_add() calls would; in parallel
 * when the classifier has helpers and n >= CW_CLASSIFY_MIN_PARALLEL. The texts
 * need to stay valid only during the call. */
void cw_classifier_add_texts(cw_classifier_t *c, const cw_model_t *m, const cw_text_t *texts, size_t n);
/* Stream jobs (see the top): 1 when a batch of n texts is worth streaming
 * through be (this classifier has helpers, be's forward is splittable, n is
 * at least CW_CLASSIFY_MIN_PARALLEL). */
int cw_classifier_can_stream(const cw_classifier_t *c, const cw_backend_t *be, size_t n);
/* Start a job of at most cap texts that the caller writes into texts[] (an
 * array of cap entries) while the job runs; be must be prepared (its model
 * is m) and the pending batch empty. */
void cw_classifier_stream_begin(cw_classifier_t *c, const cw_model_t *m, cw_backend_t *be,
                                const cw_text_t *texts, size_t cap);
/* texts[0, n) and the bytes they point to are written and stay unchanged
 * until the end of the job (n only grows). */
void cw_classifier_stream_ready(cw_classifier_t *c, size_t n);
/* The job has n texts in all (n <= cap); no more will be added. */
void cw_classifier_stream_close(cw_classifier_t *c, size_t n);
/* After close: the nlabels probabilities of text i, waiting for them (and
 * featurizing other chunks meanwhile); valid until the next job. NULL when
 * the forward pass of i's chunk failed (the reason comes from _end). */
const float *cw_classifier_stream_row(cw_classifier_t *c, size_t i);
/* End the job (closing it first if needed): every helper is out of it, the
 * backend is the caller's again. 0, or -1 with errstr (may be NULL) when a
 * chunk's forward pass failed. */
int cw_classifier_stream_end(cw_classifier_t *c, char *errstr, size_t errstr_size);
/* Number of texts pending. */
size_t cw_classifier_pending(const cw_classifier_t *c);
/* The pending (ids, offsets) batch, valid until the next add, run or clear. */
void cw_classifier_batch(const cw_classifier_t *c, cw_batch_t *out);
/* Run the pending batch on be (whose bound model must be the m texts were
 * featurized with); *probs receives pending x nlabels probabilities, valid
 * until the next call. The batch is then cleared. 0 or -1 with errstr. */
int cw_classifier_run(cw_classifier_t *c, cw_backend_t *be, const float **probs,
                      char *errstr, size_t errstr_size);
/* Drop pending texts without running them. */
void cw_classifier_clear(cw_classifier_t *c);

/* argmax of one row. */
uint32_t cw_argmax(const float *row, uint32_t k);

#endif
