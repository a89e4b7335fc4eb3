/* e2e.h: the end-to-end driver behind `catwire demo` and bench_e2e: publish
 * articles to a worker's input topic while reading its results back, and
 * measure what came out (results, duplicates, dead letters, accuracy,
 * throughput, latency from publish to result).
 *
 * Streaming, never pre-loading: the producer stays at most `window` articles
 * ahead of the results, so a slow worker slows the producer instead of
 * letting a backlog pile up (the embedded broker keeps only ~5 MiB per
 * partition and silently drops older data). Once the window is full it
 * publishes again in bursts of `refill` (it waits until at most window -
 * refill articles lack a result), not one article per result: a trickle of
 * single articles makes every client and the broker work in tiny requests,
 * and on a machine they share that can settle at a fraction of the speed
 * the same worker reaches with full batches.
 *
 * Drain mode (`drain`): publish all `count` articles first, wait until the
 * broker has acknowledged every one, call on_published (the caller starts
 * its worker there), then read the results. Throughput is then the steady
 * drain rate, results over first result -> last result, which leaves out the
 * worker's start and group join; latencies count the wait and mean little.
 * The backlog must fit the broker: the embedded one keeps ~5 MiB per
 * partition and silently drops older data (then the run is incomplete).
 *
 * Article i (0 <= i < count) is rows[i % nrows] with id "<id_prefix><i>",
 * keyed by its id. Latency of i = the time its result was consumed minus the
 * time it was handed to the producer (one monotonic clock, one process).
 * Results are read by a plain assignment (no group) of every partition of
 * the output and dead-letter topics from their end offsets as measured
 * before the first publish, so earlier data in reused topics is not read;
 * results whose id lacks id_prefix are ignored (counted as foreign).
 *
 * Threads: cw_e2e_run() produces on the calling thread and consumes on one
 * thread of its own; the callbacks run on that consumer thread. */
#ifndef CW_E2E_H
#define CW_E2E_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "article.h"

typedef struct cw_e2e_row_s {
    const char *title, *body;
    size_t title_len, body_len;
    int32_t label;  /* true label id, or -1 when unknown */
} cw_e2e_row_t;

typedef struct cw_e2e_report_s {
    uint64_t published;       /* handed to the producer */
    uint64_t delivered;       /* acknowledged by the broker */
    uint64_t delivery_failed;
    uint64_t results;         /* distinct articles with a result */
    uint64_t duplicates;      /* further results for an article already answered */
    uint64_t dead_letters;    /* messages read from the dead-letter topic */
    uint64_t foreign;         /* results that are not this run's */
    uint64_t labelled;        /* results whose row has a true label */
    uint64_t correct;         /* ... and whose label_id equals it */
    double elapsed_s;         /* first publish (drain: first result) -> last result (or now) */
    double throughput;        /* results / elapsed_s */
    double lat_p50_ms, lat_p99_ms, lat_max_ms; /* final report only */
    int complete;             /* every published article has a result */
} cw_e2e_report_t;

/* Called for every first result of an article; latency in ms. */
typedef void (cw_e2e_result_cb_t)(void *opaque, uint64_t index, const cw_e2e_row_t *row,
                                  const cw_result_t *r, double latency_ms);
/* Called every progress_interval_s with a running report (no percentiles). */
typedef void (cw_e2e_progress_cb_t)(void *opaque, const cw_e2e_report_t *rep);
/* Drain mode: every article is acknowledged; start consuming now. Nonzero
 * (with errstr) ends the run with -1. */
typedef int (cw_e2e_published_cb_t)(void *opaque, char *errstr, size_t errstr_size);

typedef struct cw_e2e_opts_s {
    const char *brokers;
    const char *input_topic;
    const char *output_topic;
    const char *dead_letter_topic;  /* NULL: not read */
    const cw_e2e_row_t *rows;
    size_t nrows;
    uint64_t count;                 /* articles to publish */
    const char *id_prefix;          /* make it unique per run */
    double rate;                    /* articles/s; 0 = as fast as the window allows */
    uint64_t window;                /* max published without result; 0 = 20000 */
    uint64_t refill;                /* burst once the window is full; 0 = window / 4 */
    int drain;                      /* publish everything first (window, rate ignored) */
    cw_e2e_published_cb_t *on_published; /* drain mode; may be NULL */
    double idle_timeout_s;          /* give up when no result for this long; 0 = 30 */
    const char *const *producer_props; /* "KEY=VALUE" librdkafka properties, NULL-terminated */
    cw_e2e_result_cb_t *on_result;
    cw_e2e_progress_cb_t *on_progress;
    double progress_interval_s;     /* 0 = 1 s */
    uint64_t progress_every;        /* also report after every N results (0 = off) */
    void *opaque;
} cw_e2e_opts_t;

/* Runs until every article has a result, or no result came for
 * idle_timeout_s (then rep->complete is 0), or *stop becomes nonzero (may be
 * NULL; set it from a signal handler to interrupt). 0 with rep filled, or -1
 * with errstr when Kafka could not be used at all. */
int cw_e2e_run(const cw_e2e_opts_t *o, volatile sig_atomic_t *stop, cw_e2e_report_t *rep,
               char *errstr, size_t errstr_size);

#endif
