/* kafka_results.c: N articles in -> exactly N results out.
 *
 * AG News test rows repeated with unique ids are published, one worker
 * processes them; every id must have exactly one result whose label is what
 * the local classifier (the path `catwire predict` uses) gives with the same
 * model, keyed by the input key or the id. Then SIGTERM: exit 0. Prints the
 * worker's throughput (first to last result). N = 100,000 (CWT_N overrides). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "kafka_results", argc, argv, 8, 16);
    if (rc) return rc;
    size_t n = getenv("CWT_N") ? (size_t)strtoull(getenv("CWT_N"), NULL, 10) : 100000;
    const char *prefix = "r-";

    /* Publish first, then start the worker, so the run measures its drain rate. */
    cwt_producer_t p;
    cwt_producer_init(&e, &p, n);
    double t0 = cwt_now();
    for (size_t i = 0; i < n; i++) cwt_produce_article(&e, &p, i, prefix);
    cwt_producer_flush(&e, &p);
    cwt_log(&e, "published %zu articles in %.2f s", n, cwt_now() - t0);

    const char *conf = cwt_worker_conf(&e, "w1", "max_articles = 1024;\nmax_wait_ms = 5;\n", NULL);
    double tw = cwt_now();
    pid_t pid = cwt_worker_spawn(&e, conf, "worker");

    rd_kafka_t *reader = cwt_reader(&e, e.out_topic, 0);
    cwt_seen_t s;
    cwt_seen_init(&s, n);
    /* Time from the first result to the last (the worker's steady rate). */
    cwt_read_results(&e, reader, &s, prefix, 1, 60);
    double tfirst = cwt_now();
    cwt_read_results(&e, reader, &s, prefix, n, 30);
    double tlast = cwt_now();
    /* Anything extra (duplicates) arrives right behind: read a little more. */
    cwt_read_results(&e, reader, &s, prefix, n + 1, 2);

    cwt_log(&e, "results: %llu distinct of %zu, %llu duplicates, %llu foreign, %llu wrong labels",
            (unsigned long long)s.distinct, n, (unsigned long long)s.dups,
            (unsigned long long)s.foreign, (unsigned long long)s.wrong_label);
    cwt_log(&e, "worker start -> last result %.2f s; first -> last result %.2f s: %.0f articles/s",
            tlast - tw, tlast - tfirst, (double)(n - 1) / (tlast - tfirst));
    CWT_CHECK(&e, s.distinct == n, "%llu of %zu articles have a result", (unsigned long long)s.distinct, n);
    CWT_CHECK(&e, s.dups == 0, "%llu duplicate results", (unsigned long long)s.dups);
    CWT_CHECK(&e, s.wrong_label == 0 && s.wrong_key == 0 && s.wrong_meta == 0 && s.bad == 0,
              "wrong labels %llu, keys %llu, fields %llu, undecodable %llu",
              (unsigned long long)s.wrong_label, (unsigned long long)s.wrong_key,
              (unsigned long long)s.wrong_meta, (unsigned long long)s.bad);
    CWT_CHECK(&e, !strcmp(s.workers[0], "w1"), "worker id '%s'", s.workers[0]);
    CWT_CHECK(&e, s.model_version == 1, "model version %lld", (long long)s.model_version);

    kill(pid, SIGTERM);
    int st = cwt_worker_wait(pid, 30);
    CWT_CHECK(&e, st == 0, "worker exit status %d after SIGTERM", st);

    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_seen_free(&s);
    cwt_producer_destroy(&p);
    return cwt_env_finish(&e);
}
