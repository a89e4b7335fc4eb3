/* kafka_reload.c: the engine in-process and its model handoff hook.
 *
 * cw_worker_new/run/stop on a thread of the test; while articles stream in,
 * cw_worker_offer_model() hands over version 2 (same labels, other weights).
 * Every article must have a result whose label is the local prediction of
 * the version the result names; per input partition, in offset order, the
 * versions go 1...1 then 2...2 (the swap happens between batches). Then a
 * model with other labels is offered and must be refused (version 2 keeps
 * serving). Finally cw_worker_stop() ends the run cleanly. N = 20,000. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"
#include "registry.h"
#include "util.h"
#include "worker.h"

static cw_worker_t *the_worker;
static int run_rc = -99;

static void *run_thread(void *arg) {
    (void)arg;
    run_rc = cw_worker_run(the_worker);
    return NULL;
}

static void set(cwt_env_t *e, cw_worker_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (cw_worker_conf_set(c, k, v, err, sizeof(err)) != 0) cwt_die(e, "conf %s: %s", k, err);
}

/* Stream articles [from, to) at rate/s while reading results. */
static void stream(cwt_env_t *e, cwt_producer_t *p, rd_kafka_t *reader, cwt_seen_t *s, size_t from,
                   size_t to, double rate, const char *prefix) {
    double t0 = cwt_now();
    size_t produced = from;
    while (produced < to) {
        size_t target = from + (size_t)(rate * (cwt_now() - t0));
        if (target > to) target = to;
        while (produced < target) cwt_produce_article(e, p, produced++, prefix);
        rd_kafka_poll(p->rk, 0);
        cwt_read_for(e, reader, s, prefix, 0.01);
    }
    cwt_producer_flush(e, p);
}

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "kafka_reload", argc, argv, 8, 16);
    if (rc) return rc;
    const size_t n = 20000;
    const char *prefix = "h-";
    char err[512], reg[512];
    snprintf(reg, sizeof(reg), "%s/registry", e.dir);

    /* Version 2: the same vocabulary and labels, other weights. */
    int64_t v;
    cw_model_t *m2 = cw_registry_load(reg, "news@1", &v, err, sizeof(err));
    if (!m2) cwt_die(&e, "%s", err);
    cw_model_init_uniform(m2, 0.5f, 4242);
    e.pred2 = cwt_predict_rows(&e, m2);
    size_t differ = 0;
    for (size_t i = 0; i < e.nrows; i++) differ += e.pred2[i] != e.rows[i].pred;
    CWT_CHECK(&e, differ > e.nrows / 10, "version 2 predicts like version 1 (%zu rows differ)", differ);

    cw_log_set_level(CW_LOG_WARN);
    cw_worker_conf_t conf;
    cw_worker_conf_defaults(&conf);
    set(&e, &conf, "brokers", e.brokers);
    set(&e, &conf, "input_topic", e.in_topic);
    set(&e, &conf, "output_topic", e.out_topic);
    set(&e, &conf, "dead_letter_topic", e.dlq_topic);
    set(&e, &conf, "group_id", e.group);
    set(&e, &conf, "registry", reg);
    set(&e, &conf, "model", "news");
    set(&e, &conf, "worker_id", "inproc");
    set(&e, &conf, "max_articles", "64");
    set(&e, &conf, "stats_interval_ms", "0");
    set(&e, &conf, "kafka.session.timeout.ms", "6000");
    the_worker = cw_worker_new(&conf, err, sizeof(err));
    if (!the_worker) cwt_die(&e, "cw_worker_new: %s", err);
    pthread_t th;
    pthread_create(&th, NULL, run_thread, NULL);

    rd_kafka_t *reader = cwt_reader(&e, e.out_topic, 0);
    cwt_seen_t s;
    cwt_seen_init(&s, n);
    cwt_producer_t p;
    cwt_producer_init(&e, &p, n);

    /* First half on version 1, then the handoff, then the second half. */
    stream(&e, &p, reader, &s, 0, n / 2, 5000, prefix);
    cwt_read_results(&e, reader, &s, prefix, n / 4, 30);
    cw_worker_offer_model(the_worker, m2, "news", 2);
    stream(&e, &p, reader, &s, n / 2, n, 5000, prefix);
    cwt_read_results(&e, reader, &s, prefix, n, 30);
    cw_worker_stats_t st;
    /* Acknowledgements are counted when the worker serves them, which may
     * be a moment after the results became readable. */
    double until = cwt_now() + 5;
    do {
        cw_worker_get_stats(the_worker, &st);
    } while (st.produced < n && cwt_now() < until && usleep(10000) == 0);
    cwt_log(&e, "results %llu of %zu; worker stats: consumed %llu produced %llu batches %llu "
            "(mean %.1f) reloads %llu serving v%lld", (unsigned long long)s.distinct, n,
            (unsigned long long)st.consumed, (unsigned long long)st.produced,
            (unsigned long long)st.batches,
            st.batches ? (double)st.batched_articles / (double)st.batches : 0.0,
            (unsigned long long)st.reloads, (long long)st.model_version);
    CWT_CHECK(&e, s.distinct == n && s.dups == 0, "%llu of %zu, %llu duplicates",
              (unsigned long long)s.distinct, n, (unsigned long long)s.dups);
    CWT_CHECK(&e, s.wrong_label == 0 && s.wrong_key == 0 && s.wrong_meta == 0 && s.bad == 0,
              "bad results");
    CWT_CHECK(&e, st.reloads == 1 && st.model_version == 2, "reloads %llu, version %lld",
              (unsigned long long)st.reloads, (long long)st.model_version);
    CWT_CHECK(&e, st.consumed == n && st.produced == n, "stats consumed %llu produced %llu",
              (unsigned long long)st.consumed, (unsigned long long)st.produced);

    /* Per input partition in offset order: 1...1 2...2, both present. */
    size_t v1 = 0, v2 = 0, backwards = 0;
    for (int q = 0; q < e.partitions; q++) {
        int64_t last_off = -1;
        int last_v = 0;
        for (;;) {
            /* the next article of partition q after last_off */
            size_t best = n;
            for (size_t i = 0; i < n; i++)
                if (p.sent[i].partition == q && p.sent[i].offset > last_off &&
                    (best == n || p.sent[i].offset < p.sent[best].offset))
                    best = i;
            if (best == n) break;
            last_off = p.sent[best].offset;
            int ver = s.version[best];
            if (ver < last_v) backwards++;
            last_v = ver;
            v1 += ver == 1;
            v2 += ver == 2;
        }
    }
    cwt_log(&e, "results by version: v1 %zu, v2 %zu; version going back in a partition: %zu", v1, v2,
            backwards);
    CWT_CHECK(&e, v1 > 0 && v2 > 0 && v1 + v2 == n, "v1 %zu v2 %zu", v1, v2);
    CWT_CHECK(&e, backwards == 0, "%zu times an older version followed a newer one", backwards);

    /* Other labels: refused, version 2 keeps serving. */
    cw_model_t *m3 = cw_registry_load(reg, "news@1", &v, err, sizeof(err));
    if (!m3) cwt_die(&e, "%s", err);
    cw_free(m3->labels[0]);
    m3->labels[0] = cw_strdup("Politics");
    cw_worker_offer_model(the_worker, m3, "news", 3);
    cwt_seen_t s2;
    cwt_seen_init(&s2, 2000);
    cwt_producer_t p2;
    cwt_producer_init(&e, &p2, 2000);
    stream(&e, &p2, reader, &s2, 0, 2000, 5000, "h2-");
    cwt_read_results(&e, reader, &s2, "h2-", 2000, 30);
    cw_worker_get_stats(the_worker, &st);
    CWT_CHECK(&e, s2.distinct == 2000 && s2.model_version == 2 && st.reloads == 1 &&
                  st.model_version == 2,
              "after offering other labels: %llu results, last v%lld, reloads %llu",
              (unsigned long long)s2.distinct, (long long)s2.model_version,
              (unsigned long long)st.reloads);

    cw_worker_stop(the_worker);
    pthread_join(th, NULL);
    CWT_CHECK(&e, run_rc == 0, "cw_worker_run returned %d", run_rc);
    cw_worker_destroy(the_worker);
    cw_worker_conf_free(&conf);

    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_seen_free(&s);
    cwt_seen_free(&s2);
    cwt_producer_destroy(&p);
    cwt_producer_destroy(&p2);
    return cwt_env_finish(&e);
}
