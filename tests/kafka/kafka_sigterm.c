/* kafka_sigterm.c: SIGTERM under load.
 *
 * A backlog of N articles; the worker is stopped with SIGTERM once a third
 * has results. It must exit 0 within its shutdown bound, and the offsets it
 * committed must be exactly the articles whose results are out (every
 * article below a committed offset has a result, and every result's input is
 * below its partition's committed offset: nothing lost, nothing left to
 * redo). A restarted worker then finishes the rest with no duplicates.
 * N = 60,000. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util.h"

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "kafka_sigterm", argc, argv, 8, 16);
    if (rc) return rc;
    const size_t n = 60000;
    const char *prefix = "s-";

    cwt_producer_t p;
    cwt_producer_init(&e, &p, n);
    for (size_t i = 0; i < n; i++) cwt_produce_article(&e, &p, i, prefix);
    cwt_producer_flush(&e, &p);

    /* Small batches keep it busy for longer. */
    const char *conf = cwt_worker_conf(&e, "w1", "max_articles = 64;\nshutdown_timeout_ms = 10000;\n", NULL);
    char conf_path[600];
    snprintf(conf_path, sizeof(conf_path), "%s", conf);
    pid_t pid = cwt_worker_spawn(&e, conf_path, "worker");
    rd_kafka_t *reader = cwt_reader(&e, e.out_topic, 0);
    cwt_seen_t s;
    cwt_seen_init(&s, n);
    cwt_read_results(&e, reader, &s, prefix, n / 3, 60);
    CWT_CHECK(&e, cwt_alive(pid), "worker died early");
    double t0 = cwt_now();
    kill(pid, SIGTERM);
    int st = cwt_worker_wait(pid, 30);
    double took = cwt_now() - t0;
    cwt_log(&e, "SIGTERM after %llu results: exit status %d after %.2f s",
            (unsigned long long)s.distinct, st, took);
    CWT_CHECK(&e, st == 0, "exit status %d", st);
    CWT_CHECK(&e, took < 12.0, "shutdown took %.2f s (bound: shutdown_timeout_ms 10 s)", took);

    /* Everything it produced is readable now. */
    cwt_read_results(&e, reader, &s, prefix, n, 3);
    int64_t committed[64];
    cwt_committed(&e, e.group, committed);
    uint64_t below = 0, total_committed = 0, lost = 0, uncommitted = 0;
    for (int q = 0; q < e.partitions; q++) total_committed += committed[q] > 0 ? (uint64_t)committed[q] : 0;
    for (size_t i = 0; i < n; i++) {
        const cwt_sent_t *src = &p.sent[i];
        int under = committed[src->partition] >= 0 && src->offset < committed[src->partition];
        below += under;
        if (under && !s.count[i]) lost++;
        if (!under && s.count[i]) uncommitted++;
    }
    cwt_log(&e, "committed offsets cover %llu articles; results out: %llu; committed without "
            "result: %llu; result without commit: %llu", (unsigned long long)below,
            (unsigned long long)s.distinct, (unsigned long long)lost, (unsigned long long)uncommitted);
    CWT_CHECK(&e, below > 0 && below == total_committed, "committed %llu, covering %llu",
              (unsigned long long)total_committed, (unsigned long long)below);
    CWT_CHECK(&e, lost == 0, "%llu articles committed without a result", (unsigned long long)lost);
    CWT_CHECK(&e, uncommitted == 0, "%llu results whose offsets were not committed",
              (unsigned long long)uncommitted);

    /* Restart: the rest, and nothing twice. */
    pid = cwt_worker_spawn(&e, conf_path, "restart");
    cwt_read_results(&e, reader, &s, prefix, n, 30);
    cwt_read_results(&e, reader, &s, prefix, n + 1, 2);
    cwt_log(&e, "after restart: %llu distinct of %zu, %llu duplicates", (unsigned long long)s.distinct,
            n, (unsigned long long)s.dups);
    cwt_report_dups(&e, &s, &p, prefix);
    CWT_CHECK(&e, s.distinct == n, "%llu of %zu have a result", (unsigned long long)s.distinct, n);
    CWT_CHECK(&e, s.dups == 0, "%llu duplicates after a clean shutdown", (unsigned long long)s.dups);
    CWT_CHECK(&e, s.wrong_label == 0 && s.wrong_key == 0 && s.wrong_meta == 0 && s.bad == 0,
              "bad results");
    kill(pid, SIGTERM);
    st = cwt_worker_wait(pid, 30);
    CWT_CHECK(&e, st == 0, "restarted worker exit status %d", st);

    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_seen_free(&s);
    cwt_producer_destroy(&p);
    return cwt_env_finish(&e);
}
