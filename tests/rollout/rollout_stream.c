/* rollout_stream.c: promote and roll back while articles stream; refuse
 * damaged checkpoints.
 *
 * One worker (registry watch every 250 ms, no control topic: the operator
 * path, `catwire models promote` / `rollback`, changes only the registry)
 * serves a stream of N articles produced at a steady rate. At a third of the
 * stream v2 is promoted, at two thirds the registry rolls back to v1. Then:
 *   - every article has exactly one result, no dead letters;
 *   - each result's label is what its version predicts locally (so the
 *     version a result names is the one that produced it);
 *   - per input partition, in offset order, versions run v1.., v2.., v1..
 *     (never back to v2 after the rollback, never v1 inside the v2 run).
 * After the stream, a corrupted and a truncated checkpoint are promoted as
 * current (what `catwire models promote --force` does): the worker logs the
 * refusal with its reason and keeps answering with v1.
 *
 * N = 200,000 on a real broker (CWT_N overrides), 30,000 on the embedded
 * one (whose partitions keep only ~5 MiB); rate CWT_RATE articles/s
 * (default: N / 24 s). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"
#include "rollout_util.h"
#include "util.h"

typedef struct prod_s {
    cwt_env_t *e;
    cwt_producer_t p;
    size_t n;
    double rate;
    atomic_size_t produced;
} prod_t;

static void *producer_main(void *arg) {
    prod_t *pr = arg;
    double t0 = cwt_now();
    for (size_t i = 0; i < pr->n; i++) {
        cwt_produce_article(pr->e, &pr->p, i, "s-");
        atomic_store(&pr->produced, i + 1);
        if ((i & 255) == 255) {
            double ahead = (double)(i + 1) / pr->rate - (cwt_now() - t0);
            if (ahead > 0) usleep((useconds_t)(ahead * 1e6));
        }
    }
    rd_kafka_flush(pr->p.rk, 60000);
    return NULL;
}

typedef struct ent_s {
    int64_t offset;
    int version;
} ent_t;

static int ent_cmp(const void *a, const void *b) {
    const ent_t *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "rollout_stream", argc, argv, 8, 16);
    if (rc) return rc;
    char err[512];
    size_t n = getenv("CWT_N") ? (size_t)strtoull(getenv("CWT_N"), NULL, 10) : e.mock ? 30000 : 200000;
    double rate = getenv("CWT_RATE") ? atof(getenv("CWT_RATE")) : (double)n / 24.0;
    const size_t extra = 1000;   /* articles per damaged checkpoint, after the stream */

    cw_model_t *m2 = rt_model_variant(&e, e.model, 2);
    int64_t v2 = rt_publish(&e, m2);
    rt_set_current(&e, 1);
    int *preds[RT_MAXV] = {0};
    preds[1] = cw_calloc(e.nrows, sizeof(int));
    for (size_t i = 0; i < e.nrows; i++) preds[1][i] = e.rows[i].pred;
    preds[2] = cwt_predict_rows(&e, m2);
    size_t differ = 0;
    for (size_t i = 0; i < e.nrows; i++) differ += preds[1][i] != preds[2][i];
    cwt_log(&e, "v1 and v2 disagree on %zu of %zu rows", differ, e.nrows);
    CWT_CHECK(&e, v2 == 2 && differ > e.nrows / 10, "v2 = %lld, %zu differences", (long long)v2, differ);

    const char *conf = cwt_worker_conf(&e, "w1",
                                       "max_articles = 256;\nmax_wait_ms = 5;\nreload_poll_ms = 250;\n"
                                       "control_topic = \"\";\n", NULL);
    pid_t pid = cwt_worker_spawn(&e, conf, "worker");
    const char *wlog = e.logs[e.nprocs - 1];
    rd_kafka_t *reader = rt_reader(&e, e.out_topic);

    rt_track_t t;
    rt_track_init(&t, n + 2 * extra);
    prod_t pr = {.e = &e, .n = n, .rate = rate};
    cwt_producer_init(&e, &pr.p, n + 2 * extra);
    /* Wait for the worker to answer before the stream starts. */
    double t0 = cwt_now();
    pthread_t th;
    pthread_create(&th, NULL, producer_main, &pr);

    int phase = 0;
    double t_promote = 0, t_rollback = 0, lat_promote = -1, lat_rollback = -1;
    double deadline = cwt_now() + 60 + (double)n / rate * 2;
    uint64_t v1_before_rb = 0;
    for (;;) {
        rt_read(&e, reader, &t, "s-", preds, 100);
        size_t produced = atomic_load(&pr.produced);
        if (phase == 0 && produced >= n / 3) {
            rt_set_current(&e, v2);
            t_promote = cwt_now();
            cwt_log(&e, "promoted v2 after %zu articles", produced);
            phase = 1;
        } else if (phase == 1 && produced >= 2 * n / 3) {
            if (lat_promote < 0) cwt_log(&e, "no result from v2 yet at two thirds of the stream");
            int64_t back = cw_registry_rollback(rt_registry(&e), "news", err, sizeof(err));
            CWT_CHECK(&e, back == 1, "rollback returned %lld: %s", (long long)back, err);
            t_rollback = cwt_now();
            v1_before_rb = t.per_version[1];
            cwt_log(&e, "rolled back to v1 after %zu articles", produced);
            phase = 2;
        }
        if (phase >= 1 && lat_promote < 0 && t.per_version[2] > 0) lat_promote = t.first_seen[2] - t_promote;
        if (phase == 2 && lat_rollback < 0 && t.per_version[1] > v1_before_rb && t.last_version == 1)
            lat_rollback = cwt_now() - t_rollback;
        if (phase == 2 && produced == n && rt_answered(&t, n) == n) break;
        if (cwt_now() > deadline) {
            CWT_CHECK(&e, 0, "timed out: %zu of %zu articles answered", rt_answered(&t, n), n);
            break;
        }
        if (!cwt_alive(pid)) cwt_die(&e, "the worker died");
    }
    pthread_join(th, NULL);
    double elapsed = cwt_now() - t0;
    rt_read(&e, reader, &t, "s-", preds, 1000);   /* duplicates arrive right behind */

    cwt_log(&e, "stream: %zu articles in %.1f s (%.0f/s produced), results v1 %llu, v2 %llu; duplicates %llu, "
            "wrong labels %llu, foreign %llu, undecodable %llu", n, elapsed, (double)n / elapsed,
            (unsigned long long)t.per_version[1], (unsigned long long)t.per_version[2],
            (unsigned long long)t.dups, (unsigned long long)t.wrong_label, (unsigned long long)t.foreign,
            (unsigned long long)t.bad);
    cwt_log(&e, "promote -> first v2 result %.0f ms; rollback -> v1 results again %.0f ms", lat_promote * 1e3,
            lat_rollback * 1e3);
    CWT_CHECK(&e, rt_answered(&t, n) == n, "%zu of %zu articles answered", rt_answered(&t, n), n);
    CWT_CHECK(&e, t.dups == 0 && t.foreign == 0 && t.bad == 0, "dups %llu foreign %llu bad %llu",
              (unsigned long long)t.dups, (unsigned long long)t.foreign, (unsigned long long)t.bad);
    CWT_CHECK(&e, t.wrong_label == 0, "%llu results whose label is not their version's prediction",
              (unsigned long long)t.wrong_label);
    CWT_CHECK(&e, lat_promote >= 0 && lat_promote < 2.0, "promotion took %.3f s to show", lat_promote);
    CWT_CHECK(&e, lat_rollback >= 0 && lat_rollback < 2.0, "rollback took %.3f s to show", lat_rollback);

    /* Per input partition, in offset order: v1*, v2*, v1* and every phase present. */
    int np = e.partitions, full = 0, bad_order = 0;
    ent_t **per = cw_calloc((size_t)np, sizeof(ent_t *));
    size_t *cnt = cw_calloc((size_t)np, sizeof(size_t));
    for (int p = 0; p < np; p++) per[p] = cw_malloc(n * sizeof(ent_t));
    for (size_t i = 0; i < n; i++) {
        const cwt_sent_t *s = &pr.p.sent[i];
        if (!s->acked || s->partition < 0 || s->partition >= np) continue;
        per[s->partition][cnt[s->partition]++] = (ent_t){s->offset, t.version[i]};
    }
    for (int p = 0; p < np; p++) {
        qsort(per[p], cnt[p], sizeof(ent_t), ent_cmp);
        int state = 0;   /* 0: v1 run, 1: v2 run, 2: v1 again */
        for (size_t k = 0; k < cnt[p]; k++) {
            int v = per[p][k].version;
            if (state == 0 && v == 2) state = 1;
            else if (state == 1 && v == 1) state = 2;
            else if ((state == 2 && v == 2) || (v != 1 && v != 2)) {
                if (bad_order++ < 5)
                    cwt_log(&e, "partition %d offset %lld: version %d in state %d", p,
                            (long long)per[p][k].offset, v, state);
            }
        }
        full += state == 2;
        cw_free(per[p]);
    }
    cw_free(per);
    cw_free(cnt);
    cwt_log(&e, "order: %d of %d partitions show v1 -> v2 -> v1, %d out-of-order results", full, np, bad_order);
    CWT_CHECK(&e, bad_order == 0, "%d results out of version order", bad_order);
    CWT_CHECK(&e, full == np, "only %d of %d partitions saw v1, v2, then v1", full, np);

    /* Damaged checkpoints made current: refused, v1 keeps serving. */
    cw_model_t *m3 = rt_model_variant(&e, e.model, 3);
    int64_t bad[2] = {rt_publish_damaged(&e, m3, 0), rt_publish_damaged(&e, m3, 1)};
    const char *why[2] = {"checksum", "truncated"};
    for (int b = 0; b < 2; b++) {
        char needle[64];
        rt_set_current(&e, bad[b]);
        double ts = cwt_now();
        snprintf(needle, sizeof(needle), "refusing news@%lld", (long long)bad[b]);
        while (!rt_log_has(wlog, needle) && cwt_now() - ts < 5) usleep(20000);
        double dt = cwt_now() - ts;
        CWT_CHECK(&e, rt_log_has(wlog, needle), "the worker did not log '%s'", needle);
        CWT_CHECK(&e, rt_log_line_has(wlog, needle, why[b]), "the refusal does not say '%s'", why[b]);
        size_t from = n + (size_t)b * extra;
        for (size_t i = from; i < from + extra; i++) cwt_produce_article(&e, &pr.p, i, "s-");
        cwt_producer_flush(&e, &pr.p);
        double tw = cwt_now();
        while (rt_answered(&t, from + extra) < from + extra && cwt_now() - tw < 30)
            rt_read(&e, reader, &t, "s-", preds, 200);
        size_t v1 = 0, answered = 0;
        for (size_t i = from; i < from + extra; i++) {
            answered += t.count[i] > 0;
            v1 += t.version[i] == 1;
        }
        cwt_log(&e, "v%lld (%s) promoted: refused after %.0f ms; %zu of %zu new articles answered, %zu by v1",
                (long long)bad[b], b ? "truncated" : "corrupted", dt * 1e3, answered, extra, v1);
        CWT_CHECK(&e, answered == extra && v1 == extra, "%zu answered, %zu by v1", answered, v1);
    }
    CWT_CHECK(&e, cwt_alive(pid), "worker died");
    CWT_CHECK(&e, t.wrong_label == 0, "%llu wrong labels", (unsigned long long)t.wrong_label);

    /* No dead letters. */
    rd_kafka_t *dlq = cwt_reader(&e, e.dlq_topic, 0);
    int ndlq = 0;
    double td = cwt_now();
    while (cwt_now() - td < 1.5) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(dlq, 100);
        if (m) {
            ndlq += !m->err;
            rd_kafka_message_destroy(m);
        }
    }
    CWT_CHECK(&e, ndlq == 0, "%d dead letters", ndlq);
    rd_kafka_consumer_close(dlq);
    rd_kafka_destroy(dlq);

    kill(pid, SIGTERM);
    int st = cwt_worker_wait(pid, 30);
    CWT_CHECK(&e, st == 0, "worker exit status %d after SIGTERM", st);

    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_producer_destroy(&pr.p);
    rt_track_free(&t);
    cw_free(preds[1]);
    cw_free(preds[2]);
    cw_model_destroy(m2);
    cw_model_destroy(m3);
    return cwt_env_finish(&e);
}
