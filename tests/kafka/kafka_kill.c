/* kafka_kill.c: kill -9 of the worker at random points, then a restart.
 *
 *   kafka_kill real [alo|eos]
 *
 * A backlog of N articles; the worker is killed with SIGKILL KILLS times at
 * random moments (one of them during start-up) and restarted each time.
 * At-least-once: every article has a result afterwards; duplicates are
 * counted and reported. Exactly-once (the worker in processing_guarantee =
 * "exactly_once", results read with isolation read_committed): every article
 * has exactly one result. Real broker only: the embedded one implements
 * neither the retention nor the transaction markers a guarantee needs.
 * N = 60,000; the seed is printed (CWT_SEED repeats a run). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

#define KILLS 3

int main(int argc, char **argv) {
    int eos = argc > 2 && !strcmp(argv[2], "eos");
    if (argc > 1 && !strcmp(argv[1], "mock")) {
        printf("kafka_kill: skipped: a delivery guarantee needs the real broker\n");
        return CWT_SKIP;
    }
    cwt_env_t e;
    int rc = cwt_env_init(&e, eos ? "kafka_kill_eos" : "kafka_kill", argc, argv, 8, 16);
    if (rc) return rc;
    const size_t n = 60000;
    const char *prefix = "k-";
    uint64_t seed = getenv("CWT_SEED") ? strtoull(getenv("CWT_SEED"), NULL, 10) : (uint64_t)cw_wall_ms();
    cw_rng_t rng;
    cw_rng_seed(&rng, seed);
    cwt_log(&e, "%s, seed %llu", eos ? "exactly_once" : "at_least_once", (unsigned long long)seed);

    /* Small batches and a slow auto-commit make kills land mid-stream with
     * uncommitted work; the same worker_id keeps the transactional id, so a
     * restart fences the killed instance's open transaction at once. */
    const char *conf = cwt_worker_conf(
        &e, "w1",
        eos ? "max_articles = 64;\nprocessing_guarantee = \"exactly_once\";\ncommit_interval_ms = 200;\n"
            : "max_articles = 64;\n",
        eos ? "  transaction_timeout_ms = 10000;" : "  auto_commit_interval_ms = 1000;");
    char conf_path[600];
    snprintf(conf_path, sizeof(conf_path), "%s", conf);

    rd_kafka_t *reader = cwt_reader(&e, e.out_topic, eos);
    cwt_seen_t s;
    cwt_seen_init(&s, n);
    cwt_producer_t p;
    cwt_producer_init(&e, &p, n);
    pid_t pid = cwt_worker_spawn(&e, conf_path, "worker");

    /* Articles arrive at n / 15 s while the worker is killed at random
     * moments (the first may land in its start-up, before it joined). */
    const double rate = (double)n / 15.0;
    double t0 = cwt_now(), next_kill = t0 + 0.3 + cw_rng_unit(&rng) * 1.5;
    size_t produced = 0;
    int kills = 0;
    int64_t armed_at = 0;
    while ((produced < n || kills < KILLS) && cwt_now() - t0 < 120) {
        if (produced == n && s.distinct == n) break; /* nothing left to interrupt */
        double now = cwt_now();
        size_t target = (size_t)(rate * (now - t0));
        if (target > n) target = n;
        while (produced < target) cwt_produce_article(&e, &p, produced++, prefix);
        rd_kafka_poll(p.rk, 0);
        cwt_read_for(&e, reader, &s, prefix, 0.01);
        if (kills < KILLS && now >= next_kill) {
            CWT_CHECK(&e, cwt_alive(pid), "worker exited before kill %d", kills + 1);
            kill(pid, SIGKILL);
            int st = cwt_worker_wait(pid, 10);
            kills++;
            cwt_log(&e, "kill -9 #%d at %.2f s: status %d; %zu published, %llu results so far",
                    kills, now - t0, st, produced, (unsigned long long)s.distinct);
            pid = cwt_worker_spawn(&e, conf_path, "restart");
            /* The next kill: a random moment once the new worker's results
             * appear (it first waits out the killed member's session). */
            armed_at = cw_wall_ms();
            next_kill = 1e300;
        }
        if (next_kill == 1e300 && s.max_processed_at > armed_at)
            next_kill = now + cw_rng_unit(&rng) * 1.0;
    }
    cwt_producer_flush(&e, &p);
    cwt_read_results(&e, reader, &s, prefix, n, 45);
    cwt_read_results(&e, reader, &s, prefix, n + 1, 3);
    uint64_t missing = n - s.distinct;
    CWT_CHECK(&e, kills >= 2, "only %d kill(s) landed before the stream ended", kills);
    cwt_log(&e, "after %d kills: %llu of %zu articles have a result, %llu missing, %llu duplicates",
            kills, (unsigned long long)s.distinct, n, (unsigned long long)missing,
            (unsigned long long)s.dups);
    cwt_report_dups(&e, &s, &p, prefix);
    CWT_CHECK(&e, missing == 0, "%llu articles without a result", (unsigned long long)missing);
    if (eos) CWT_CHECK(&e, s.dups == 0, "exactly_once: %llu duplicates", (unsigned long long)s.dups);
    CWT_CHECK(&e, s.wrong_label == 0 && s.wrong_key == 0 && s.wrong_meta == 0 && s.bad == 0,
              "bad results");

    kill(pid, SIGTERM);
    int st = cwt_worker_wait(pid, 30);
    CWT_CHECK(&e, st == 0, "last worker exit status %d after SIGTERM", st);
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_seen_free(&s);
    cwt_producer_destroy(&p);
    return cwt_env_finish(&e);
}
