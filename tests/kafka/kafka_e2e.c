/* kafka_e2e.c: the end-to-end driver (worker/e2e.c, behind `catwire demo`
 * and bench_e2e) against a catwire-worker process.
 *
 *   1. Drain mode: on_published is called once, after every article is in
 *      the broker (the input topic's end offsets grew by the count) and
 *      before any result; the worker is spawned there. Every article then
 *      has one result, the accuracy counts agree with the rows' true labels
 *      and the local classifier's labels, and the rate is measured from the
 *      first result (elapsed_s is at most the time since on_published).
 *   2. Streaming mode with a small window and refill: the publisher never
 *      has more than `window` articles without a result, and the run still
 *      completes.
 *   3. An on_published failure ends the run with -1 and its message.
 *   4. Drain mode again with a new worker featurizing on two threads
 *      (compute_threads = 2, batches of up to 256): every article has one
 *      result and every label is the local classifier's. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "harness.h"

#define N_DRAIN 3000
#define N_STREAM 4000
#define WINDOW 200
#define REFILL 50

typedef struct ctx_s {
    cwt_env_t *e;
    rd_kafka_t *probe;        /* a client to read the input topic's end offsets */
    int64_t end_before;       /* sum of the input topic's end offsets before the run */
    uint64_t results_seen;    /* on_result calls */
    int published_calls;
    uint64_t results_at_published;
    int64_t end_at_published;
    double t_published;
    const char *conf;
    const char *tag;          /* the spawned worker's log name */
    pid_t worker;
    uint64_t progress_calls, max_in_flight;
    int fail_start;
} ctx_t;

static int64_t end_offsets(ctx_t *c) {
    int64_t sum = 0;
    for (int p = 0; p < c->e->partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(c->probe, c->e->in_topic, p, &lo, &hi, 10000);
        if (err) cwt_die(c->e, "end offset of %s[%d]: %s", c->e->in_topic, p, rd_kafka_err2str(err));
        sum += hi;
    }
    return sum;
}

static void on_result(void *opaque, uint64_t index, const cw_e2e_row_t *row, const cw_result_t *r,
                      double latency_ms) {
    ctx_t *c = opaque;
    (void)index, (void)row, (void)r, (void)latency_ms;
    c->results_seen++;
}

static void on_progress(void *opaque, const cw_e2e_report_t *rep) {
    ctx_t *c = opaque;
    uint64_t in_flight = rep->published - rep->results;
    c->progress_calls++;
    if (in_flight > c->max_in_flight) c->max_in_flight = in_flight;
}

static int on_published(void *opaque, char *errstr, size_t errstr_size) {
    ctx_t *c = opaque;
    c->published_calls++;
    if (c->fail_start) {
        snprintf(errstr, errstr_size, "planted start failure");
        return -1;
    }
    c->results_at_published = c->results_seen;
    c->end_at_published = end_offsets(c);
    c->t_published = cwt_now();
    c->worker = cwt_worker_spawn(c->e, c->conf, c->tag);
    return 0;
}

static void rows_of(const cwt_env_t *e, cw_e2e_row_t *rows) {
    for (size_t i = 0; i < e->nrows; i++) {
        rows[i].title = e->rows[i].title;
        rows[i].title_len = strlen(e->rows[i].title);
        rows[i].body = e->rows[i].body;
        rows[i].body_len = strlen(e->rows[i].body);
        rows[i].label = e->rows[i].label;
    }
}

/* Results whose label_id should equal the true label: the local classifier's
 * prediction is what the worker answers. */
static uint64_t expected_correct(const cwt_env_t *e, uint64_t count) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < count; i++) {
        const cwt_row_t *row = &e->rows[i % e->nrows];
        n += row->pred == row->label;
    }
    return n;
}

/* Options of a drain run of N_DRAIN articles whose ids start with prefix. */
static void drain_opts(cw_e2e_opts_t *o, const cwt_env_t *e, const cw_e2e_row_t *rows, ctx_t *c,
                       const char *prefix) {
    memset(o, 0, sizeof(*o));
    o->brokers = e->brokers;
    o->input_topic = e->in_topic;
    o->output_topic = e->out_topic;
    o->dead_letter_topic = e->dlq_topic;
    o->rows = rows;
    o->nrows = e->nrows;
    o->count = N_DRAIN;
    o->id_prefix = prefix;
    o->drain = 1;
    o->on_published = on_published;
    o->on_result = on_result;
    o->opaque = c;
    o->idle_timeout_s = 60;
}

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "kafka_e2e", argc, argv, 8, 8);
    if (rc) return rc;
    cw_e2e_row_t *rows = calloc(e.nrows, sizeof(*rows));
    char errstr[512];
    ctx_t c;
    cw_e2e_opts_t o;
    cw_e2e_report_t rep;

    rows_of(&e, rows);
    memset(&c, 0, sizeof(c));
    c.e = &e;
    {
        char why[512];
        rd_kafka_conf_t *pc = cw_kafka_conf_new(e.brokers, why, sizeof(why));
        if (!pc || !(c.probe = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof(why))))
            cwt_die(&e, "probe client: %s", why);
    }
    c.conf = cwt_worker_conf(&e, "w1", "max_articles = 256;\nmax_wait_ms = 5;\n", NULL);
    c.tag = "worker";
    c.end_before = end_offsets(&c);

    /* 1. drain */
    drain_opts(&o, &e, rows, &c, "d-");
    if (cw_e2e_run(&o, NULL, &rep, errstr, sizeof(errstr))) cwt_die(&e, "drain run: %s", errstr);
    double t_end = cwt_now();
    cwt_log(&e, "drain: %" PRIu64 " results, %" PRIu64 " duplicates, %.0f articles/s over %.3f s", rep.results,
            rep.duplicates, rep.throughput, rep.elapsed_s);
    CWT_CHECK(&e, c.published_calls == 1, "on_published called %d times", c.published_calls);
    CWT_CHECK(&e, c.end_at_published - c.end_before == N_DRAIN,
              "at on_published the input topic held %lld new articles of %d",
              (long long)(c.end_at_published - c.end_before), N_DRAIN);
    CWT_CHECK(&e, c.results_at_published == 0, "%" PRIu64 " results before on_published",
              c.results_at_published);
    CWT_CHECK(&e, rep.complete && rep.results == N_DRAIN && rep.delivered == N_DRAIN,
              "complete %d, results %" PRIu64 ", delivered %" PRIu64, rep.complete, rep.results, rep.delivered);
    CWT_CHECK(&e, rep.duplicates == 0 && rep.foreign == 0 && rep.dead_letters == 0,
              "duplicates %" PRIu64 ", foreign %" PRIu64 ", dead letters %" PRIu64, rep.duplicates, rep.foreign,
              rep.dead_letters);
    CWT_CHECK(&e, rep.labelled == N_DRAIN && rep.correct == expected_correct(&e, N_DRAIN),
              "labelled %" PRIu64 ", correct %" PRIu64 " (expected %" PRIu64 ")", rep.labelled, rep.correct,
              expected_correct(&e, N_DRAIN));
    CWT_CHECK(&e, rep.elapsed_s > 0 && rep.elapsed_s <= t_end - c.t_published,
              "elapsed %.3f s, but on_published was %.3f s before the end", rep.elapsed_s, t_end - c.t_published);
    CWT_CHECK(&e, c.results_seen == N_DRAIN, "on_result called %" PRIu64 " times", c.results_seen);

    /* 2. streaming, with the worker already running */
    c.results_seen = 0;
    o.drain = 0;
    o.on_published = NULL;
    o.count = N_STREAM;
    o.id_prefix = "s-";
    o.window = WINDOW;
    o.refill = REFILL;
    o.on_progress = on_progress;
    o.progress_every = 25;
    if (cw_e2e_run(&o, NULL, &rep, errstr, sizeof(errstr))) cwt_die(&e, "streaming run: %s", errstr);
    cwt_log(&e, "streaming: %" PRIu64 " results, %.0f articles/s, at most %" PRIu64 " in flight over %" PRIu64
            " progress reports", rep.results, rep.throughput, c.max_in_flight, c.progress_calls);
    CWT_CHECK(&e, rep.complete && rep.results == N_STREAM && rep.duplicates == 0,
              "complete %d, results %" PRIu64 ", duplicates %" PRIu64, rep.complete, rep.results, rep.duplicates);
    CWT_CHECK(&e, c.progress_calls >= N_STREAM / 25 / 2, "only %" PRIu64 " progress reports", c.progress_calls);
    CWT_CHECK(&e, c.max_in_flight <= WINDOW, "%" PRIu64 " articles in flight, window %d", c.max_in_flight, WINDOW);
    CWT_CHECK(&e, c.max_in_flight > REFILL, "at most %" PRIu64 " in flight: the window was never used",
              c.max_in_flight);
    CWT_CHECK(&e, rep.correct == expected_correct(&e, N_STREAM), "correct %" PRIu64 " (expected %" PRIu64 ")",
              rep.correct, expected_correct(&e, N_STREAM));

    /* 3. a failing on_published */
    memset(&o, 0, sizeof(o));
    o.brokers = e.brokers;
    o.input_topic = e.in_topic;
    o.output_topic = e.out_topic;
    o.rows = rows;
    o.nrows = e.nrows;
    o.count = 10;
    o.id_prefix = "f-";
    o.drain = 1;
    o.on_published = on_published;
    o.opaque = &c;
    c.fail_start = 1;
    errstr[0] = '\0';
    rc = cw_e2e_run(&o, NULL, &rep, errstr, sizeof(errstr));
    CWT_CHECK(&e, rc == -1 && strstr(errstr, "planted start failure"), "rc %d, errstr '%s'", rc, errstr);

    kill(c.worker, SIGTERM);
    int st = cwt_worker_wait(c.worker, 30);
    CWT_CHECK(&e, st == 0, "worker exit status %d after SIGTERM", st);

    /* 4. drain with compute_threads = 2 */
    drain_opts(&o, &e, rows, &c, "t-");
    c.fail_start = 0;
    c.published_calls = 0;
    c.results_seen = 0;
    c.tag = "worker-2threads";
    c.conf = cwt_worker_conf(&e, "w2", "max_articles = 256;\nmax_wait_ms = 5;\ncompute_threads = 2;\n", NULL);
    if (cw_e2e_run(&o, NULL, &rep, errstr, sizeof(errstr))) cwt_die(&e, "two-thread drain run: %s", errstr);
    cwt_log(&e, "drain, compute_threads 2: %" PRIu64 " results, %.0f articles/s", rep.results, rep.throughput);
    CWT_CHECK(&e, rep.complete && rep.results == N_DRAIN && rep.duplicates == 0 && rep.dead_letters == 0,
              "complete %d, results %" PRIu64 ", duplicates %" PRIu64 ", dead letters %" PRIu64, rep.complete,
              rep.results, rep.duplicates, rep.dead_letters);
    CWT_CHECK(&e, rep.labelled == N_DRAIN && rep.correct == expected_correct(&e, N_DRAIN),
              "labelled %" PRIu64 ", correct %" PRIu64 " (expected %" PRIu64 ")", rep.labelled, rep.correct,
              expected_correct(&e, N_DRAIN));
    kill(c.worker, SIGTERM);
    st = cwt_worker_wait(c.worker, 30);
    CWT_CHECK(&e, st == 0, "two-thread worker exit status %d after SIGTERM", st);
    rd_kafka_destroy(c.probe);
    free(rows);
    return cwt_env_finish(&e);
}
