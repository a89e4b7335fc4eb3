/* worker.h: the worker daemon's engine, usable in-process (catwire-worker,
 * the embedded demo, tests, benchmarks).
 *
 * A worker is one member of a Kafka consumer group (cooperative-sticky). It
 * reads articles from conf->input_topic, micro-batches them (up to
 * max_articles, or max_wait_ms after the batch's first article), runs one
 * forward pass per batch and produces one result per article to
 * conf->output_topic; undecodable or invalid messages go to
 * conf->dead_letter_topic with the reason in headers.
 *
 * Delivery: at-least-once by default (an input offset is stored for commit
 * only after the results for it and for every earlier offset of its
 * partition were acknowledged); exactly-once with processing_guarantee =
 * "exactly_once" (transactional producer + send_offsets_to_transaction).
 *
 * Threads: cw_worker_run() runs the loop on the calling thread until
 * cw_worker_stop() (async-signal-safe; callable from any thread or a signal
 * handler), then shuts down gracefully: stop fetching, finish the batch, wait
 * for deliveries, commit, leave the group. cw_worker_get_stats() may be
 * called from any thread. When max_articles >= pipeline_min_articles > 0
 * the worker owns a model thread that runs the model step (tokenize,
 * featurize, forward) of each batch of pipeline_min_articles or more while
 * the worker thread sends the previous batch's results and gathers the next.
 * With compute_threads = N > 1 it also owns N - 1 helper threads that
 * tokenize and featurize each batch of 128 or more articles (classify.h; for
 * a batch that stays on the worker thread they forward it in chunks too).
 * All Kafka calls stay on the worker thread. */
#ifndef CW_WORKER_H
#define CW_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"

typedef struct cw_worker_s cw_worker_t;

typedef struct cw_worker_stats_s {
    uint64_t consumed;        /* input messages read */
    uint64_t produced;        /* results acknowledged by the broker */
    uint64_t dead_lettered;   /* dead letters acknowledged */
    uint64_t batches;         /* forward passes */
    uint64_t batched_articles;/* articles across all batches (mean = /batches) */
    uint64_t reloads;         /* model swaps */
    int64_t model_version;    /* version serving now */
} cw_worker_stats_t;

/* Loads the model, creates the Kafka clients and subscribes. conf must
 * outlive the worker. NULL with errstr on failure. */
cw_worker_t *cw_worker_new(const cw_worker_conf_t *conf, char *errstr, size_t errstr_size);
/* Blocks until stopped; 0 on a clean shutdown, -1 on a fatal error (logged). */
int cw_worker_run(cw_worker_t *w);
void cw_worker_stop(cw_worker_t *w);
void cw_worker_get_stats(cw_worker_t *w, cw_worker_stats_t *st);
void cw_worker_destroy(cw_worker_t *w);

/* Hot reload hook: hand the worker a loaded model (ownership passes to the
 * worker, also on refusal). Thread-safe; the swap happens on the worker's
 * thread between two batches: the batches in flight (on the model thread
 * too) finish on the old model and their results go out, the next one runs
 * on m, and the old model is freed. A model whose labels
 * differ from the serving one is refused at the swap (logged) unless
 * conf->allow_label_change; a model offered while an earlier offer is still
 * pending replaces it. name is copied. */
void cw_worker_offer_model(cw_worker_t *w, cw_model_t *m, const char *name, int64_t version);

#endif
