/* rollout_rss.c: a real catwire-worker process swaps models 100 times;
 * its resident memory must not grow.
 *
 * CURRENT alternates v1 <-> v2; after each promotion articles are produced
 * until a result from the new version arrives (so every promotion is a real
 * swap on the worker's thread, the old model and backend freed). VmRSS is
 * read after 10 warm-up swaps and after the 100 counted ones; the growth
 * must stay under a quarter of what keeping every old model would cost.
 * Every result's label must be its version's local prediction.
 *
 * In an AddressSanitizer build (CW_SANITIZE) freed memory waits in a
 * quarantine of up to 256 MiB before it is reused or unmapped, so the RSS
 * would grow with every swap's freed model: the worker spawned here runs with
 * no quarantine, which keeps the bound meaningful (the other tests keep the
 * quarantine's use-after-free checks). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"
#include "rollout_util.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define RSS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_ASAN 1
#endif
#endif

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "rollout_rss", argc, argv, 4, 4);
    if (rc) return rc;
    const int warmup = 10, counted = 100;
    cw_model_t *m2 = rt_model_variant(&e, e.model, 2);
    rt_publish(&e, m2);
    rt_set_current(&e, 1);
    int *preds[RT_MAXV] = {0};
    preds[1] = cw_calloc(e.nrows, sizeof(int));
    for (size_t i = 0; i < e.nrows; i++) preds[1][i] = e.rows[i].pred;
    preds[2] = cwt_predict_rows(&e, m2);
    size_t model_kb = (size_t)(m2->nrows * m2->dim * sizeof(float)) / 1024;
    cw_model_destroy(m2);

    const char *conf = cwt_worker_conf(&e, "w1", "max_articles = 64;\nmax_wait_ms = 2;\nreload_poll_ms = 50;\n"
                                       "control_topic = \"\";\n",
                                       /* the embedded broker holds fetches for fetch.wait.max.ms */
                                       e.mock ? "  fetch_wait_max_ms = 10;\n" : NULL);
#ifdef RSS_ASAN
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    cwt_log(&e, "AddressSanitizer build: the worker runs with ASAN_OPTIONS=%s", opts);
#endif
    pid_t pid = cwt_worker_spawn(&e, conf, "worker");
    rd_kafka_t *reader = rt_reader(&e, e.out_topic);
    size_t cap = 200000, next = 0;
    rt_track_t t;
    rt_track_init(&t, cap);
    cwt_producer_t p;
    cwt_producer_init(&e, &p, cap);

    long rss0 = -1, rss1 = -1;
    double t0 = cwt_now(), slowest = 0;
    int64_t v = 1;
    for (int i = 0; i < warmup + counted; i++) {
        if (i == warmup) rss0 = cwt_rss_kb(pid);
        v = v == 1 ? 2 : 1;
        rt_set_current(&e, v);
        double ts = cwt_now();
        /* Articles until one produced after the promotion is answered by v. */
        int seen = 0;
        while (!seen && cwt_now() - ts < 10 && next + 10 < cap) {
            size_t from = next;
            for (size_t k = 0; k < 10; k++) cwt_produce_article(&e, &p, next++, "m-");
            rd_kafka_poll(p.rk, 0);
            rd_kafka_flush(p.rk, 1000);
            double tr = cwt_now();
            while (cwt_now() - tr < 2) {
                rt_read(&e, reader, &t, "m-", preds, 20);
                size_t k;
                for (k = from; k < next && t.count[k]; k++) {}
                if (k == next) break;
            }
            for (size_t k = from; k < next; k++) seen |= t.version[k] == v;
        }
        if (!seen) cwt_die(&e, "swap %d: no result from v%lld within 10 s", i, (long long)v);
        if (cwt_now() - ts > slowest) slowest = cwt_now() - ts;
        if (!cwt_alive(pid)) cwt_die(&e, "the worker died");
    }
    rss1 = cwt_rss_kb(pid);
    long growth = rss1 - rss0;
    cwt_log(&e, "%d swaps in %.1f s (slowest %.0f ms); worker VmRSS %ld -> %ld KiB (%+ld KiB) over the last %d; "
            "one model's embeddings: %zu KiB", warmup + counted, cwt_now() - t0, slowest * 1e3, rss0, rss1, growth,
            counted, model_kb);
    CWT_CHECK(&e, rss0 > 0 && rss1 > 0, "VmRSS unreadable");
    CWT_CHECK(&e, growth < (long)(model_kb * (size_t)counted / 4), "VmRSS grew by %ld KiB over %d swaps", growth,
              counted);
    CWT_CHECK(&e, t.wrong_label == 0 && t.dups == 0 && t.bad == 0, "wrong labels %llu dups %llu bad %llu",
              (unsigned long long)t.wrong_label, (unsigned long long)t.dups, (unsigned long long)t.bad);
    CWT_CHECK(&e, rt_answered(&t, next) == next, "%zu of %zu answered", rt_answered(&t, next), next);

    kill(pid, SIGTERM);
    int st = cwt_worker_wait(pid, 30);
    CWT_CHECK(&e, st == 0, "worker exit status %d after SIGTERM", st);
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_producer_destroy(&p);
    rt_track_free(&t);
    cw_free(preds[1]);
    cw_free(preds[2]);
    return cwt_env_finish(&e);
}
