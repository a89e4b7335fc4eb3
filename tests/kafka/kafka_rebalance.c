/* kafka_rebalance.c: two workers in one group.
 *
 * Articles stream in for ~10 s. Worker A starts alone; once its results flow,
 * worker B joins the group (cooperative-sticky: A gives up some partitions
 * without stopping the others); once both produce results, A is stopped with
 * SIGTERM and B takes every partition. Every article must have a result, and
 * since each handover commits what was delivered, none twice. N = 60,000.
 *
 * "None twice" needs the broker to accept the handover's commit. A real
 * Kafka broker accepts commits from the current generation while a
 * rebalance is being prepared. librdkafka 2.0.2's embedded broker refuses
 * them (REBALANCE_IN_PROGRESS) whenever its group is joining, and under CPU
 * load a follow-up rebalance can already be joining when A revokes: then
 * the next owner re-reads those partitions from their last accepted commit.
 * That is at-least-once doing its job, so on the embedded broker, and only
 * there, duplicates are allowed on exactly the partitions whose handover
 * commit a worker logged as refused so; anywhere else one is a failure. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util.h"

/* Marks refused[p] for each partition p of a handover whose commit a worker
 * logged as refused with REBALANCE_IN_PROGRESS (the "revoked N partition(s):
 * [..]" line before "commit on revoke failed: ... rebalance in progress").
 * Returns how many such handovers the logs show. */
static int refused_handovers(const cwt_env_t *e, int *refused, int np) {
    int n = 0;
    for (int w = 0; w < e->nprocs; w++) {
        FILE *f = fopen(e->logs[w], "r");
        char line[4096], last[4096] = "";
        if (!f) continue;
        while (fgets(line, sizeof(line), f)) {
            if (strstr(line, "worker: revoked ")) {
                snprintf(last, sizeof(last), "%s", line);
            } else if (strstr(line, "commit on revoke failed") && strstr(line, "Group rebalance in progress")) {
                const char *l = strchr(last, '[');
                n++;
                while (l && *l && *l != ']') {
                    char *end;
                    long p = strtol(l + 1, &end, 10);
                    if (end == l + 1) break;
                    if (p >= 0 && p < np) refused[p] = 1;
                    l = end;
                }
            }
        }
        fclose(f);
    }
    return n;
}

static uint64_t results_of(const cwt_seen_t *s, const char *worker) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s->workers[i], worker)) return s->per_worker[i];
    return 0;
}

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "kafka_rebalance", argc, argv, 8, 16);
    if (rc) return rc;
    const size_t n = 60000;
    const char *prefix = "b-";
    char conf_a[600], conf_b[600];
    snprintf(conf_a, sizeof(conf_a), "%s", cwt_worker_conf(&e, "wa", "max_articles = 128;\n", NULL));
    snprintf(conf_b, sizeof(conf_b), "%s", cwt_worker_conf(&e, "wb", "max_articles = 128;\n", NULL));

    rd_kafka_t *reader = cwt_reader(&e, e.out_topic, 0);
    cwt_seen_t s;
    cwt_seen_init(&s, n);
    cwt_producer_t p;
    cwt_producer_init(&e, &p, n);
    pid_t a = cwt_worker_spawn(&e, conf_a, "worker-a"), b = -1;
    int phase = 0; /* 0: A alone, 1: A and B, 2: B alone */
    uint64_t a_at_join = 0, b_while_shared = 0, a_while_shared = 0;
    const double rate = (double)n / 10.0;
    double t0 = cwt_now(), phase_t = t0;
    size_t produced = 0;
    while ((produced < n || phase < 2) && cwt_now() - t0 < 120) {
        double now = cwt_now();
        size_t target = (size_t)(rate * (now - t0));
        if (target > n) target = n;
        while (produced < target) cwt_produce_article(&e, &p, produced++, prefix);
        rd_kafka_poll(p.rk, 0);
        cwt_read_for(&e, reader, &s, prefix, 0.01);
        if (phase == 0 && results_of(&s, "wa") > 2000) {
            b = cwt_worker_spawn(&e, conf_b, "worker-b");
            a_at_join = results_of(&s, "wa");
            cwt_log(&e, "B joins at %.2f s (A: %llu results)", now - t0, (unsigned long long)a_at_join);
            phase = 1;
            phase_t = now;
        } else if (phase == 1 && results_of(&s, "wb") > 2000 && results_of(&s, "wa") > a_at_join + 2000) {
            /* Both served at the same time: the partitions were shared. */
            a_while_shared = results_of(&s, "wa") - a_at_join;
            b_while_shared = results_of(&s, "wb");
            cwt_log(&e, "shared for %.2f s: A +%llu, B %llu results; SIGTERM to A", now - phase_t,
                    (unsigned long long)a_while_shared, (unsigned long long)b_while_shared);
            kill(a, SIGTERM);
            int st = cwt_worker_wait(a, 30);
            CWT_CHECK(&e, st == 0, "A's exit status %d", st);
            phase = 2;
        } else if (phase == 1 && now - phase_t > 60) {
            cwt_fail(&e, __FILE__, __LINE__, "shared", "A +%llu and B %llu results after 60 s",
                     (unsigned long long)(results_of(&s, "wa") - a_at_join),
                     (unsigned long long)results_of(&s, "wb"));
            break;
        }
    }
    cwt_producer_flush(&e, &p);
    cwt_read_results(&e, reader, &s, prefix, n, 30);
    cwt_read_results(&e, reader, &s, prefix, n + 1, 3);
    cwt_log(&e, "results: %llu of %zu, %llu duplicates; A %llu, B %llu", (unsigned long long)s.distinct,
            n, (unsigned long long)s.dups, (unsigned long long)results_of(&s, "wa"),
            (unsigned long long)results_of(&s, "wb"));
    cwt_report_dups(&e, &s, &p, prefix);
    CWT_CHECK(&e, phase == 2, "never reached the phase with B alone (phase %d)", phase);
    CWT_CHECK(&e, a_while_shared > 0 && b_while_shared > 0, "partitions were not shared");
    CWT_CHECK(&e, s.distinct == n, "%llu of %zu articles have a result", (unsigned long long)s.distinct, n);
    if (e.mock) {
        int *refused = cw_calloc((size_t)e.partitions, sizeof(int));
        int nref = refused_handovers(&e, refused, e.partitions);
        uint64_t unexplained = 0, explained = 0;
        for (size_t i = 0; i < n && i < p.nsent; i++) {
            if (s.count[i] < 2) continue;
            int part = (int)p.sent[i].partition;
            if (part >= 0 && part < e.partitions && refused[part]) explained += s.count[i] - 1;
            else unexplained += s.count[i] - 1;
        }
        if (nref)
            cwt_log(&e, "the embedded broker refused %d handover commit(s) with REBALANCE_IN_PROGRESS: %llu "
                    "duplicates re-read from those partitions (at-least-once), %llu elsewhere", nref,
                    (unsigned long long)explained, (unsigned long long)unexplained);
        CWT_CHECK(&e, unexplained == 0, "%llu duplicates across cooperative handovers whose commit was accepted",
                  (unsigned long long)unexplained);
        cw_free(refused);
    } else {
        CWT_CHECK(&e, s.dups == 0, "%llu duplicates across cooperative handovers", (unsigned long long)s.dups);
    }
    CWT_CHECK(&e, s.wrong_label == 0 && s.wrong_key == 0 && s.wrong_meta == 0 && s.bad == 0,
              "bad results");
    if (b > 0) {
        kill(b, SIGTERM);
        int st = cwt_worker_wait(b, 30);
        CWT_CHECK(&e, st == 0, "B's exit status %d", st);
    }
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_seen_free(&s);
    cwt_producer_destroy(&p);
    return cwt_env_finish(&e);
}
