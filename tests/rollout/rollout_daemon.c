/* rollout_daemon.c: the trainer daemon and a worker, end to end.
 *
 * A worker serves v1 (the harness's random model) and hears about new
 * versions only from the control topic: its registry watch is set to once a
 * minute, so a switch within seconds proves the announcement path. The
 * trainer daemon (catwire-trainer run) watches a spool directory:
 *   - a file of 400 good AG News rows is dropped -> the daemon trains on
 *     sample-1k + those rows, v2 beats v1 on the held-out rows, becomes
 *     current and is announced; the worker switches: results carry v2 and
 *     their labels are v2's predictions;
 *   - a file of 2,000 rows with shuffled labels is dropped -> v3 is
 *     published but stopped by the gate (meta.json says why, the daemon logs
 *     it); CURRENT stays v2 and the worker keeps answering with v2.
 *   - labelled articles on a Kafka topic (150 good ones, plus one with an
 *     unknown label and one without a label, which are skipped) -> the
 *     daemon writes them to its pending data and retrains: v4's meta.json
 *     counts exactly the 150 new rows from kafka-*.csv files. The daemon
 *     writes what it has read once a second, so the 150 may land in two
 *     files; min_new_examples = 150 makes the retrain wait for all of them
 *     (the spool files, 400 and 2,000 rows, pass it at once).
 * Both processes exit 0 on SIGTERM. */
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"
#include "rollout_util.h"
#include "util.h"

/* Produce articles [from, from + count) and wait until all are answered. */
static double produce_and_wait(cwt_env_t *e, cwt_producer_t *p, rd_kafka_t *reader, rt_track_t *t,
                               int *const *preds, size_t from, size_t count) {
    double t0 = cwt_now();
    for (size_t i = from; i < from + count; i++) cwt_produce_article(e, p, i, "d-");
    cwt_producer_flush(e, p);
    size_t done = 0;
    while (cwt_now() - t0 < 30) {
        rt_read(e, reader, t, "d-", preds, 200);
        done = 0;
        for (size_t i = from; i < from + count; i++) done += t->count[i] > 0;
        if (done == count) break;
    }
    CWT_CHECK(e, done == count, "%zu of %zu articles answered", done, count);
    return cwt_now() - t0;
}

static size_t count_version(const rt_track_t *t, size_t from, size_t count, int v) {
    size_t k = 0;
    for (size_t i = from; i < from + count; i++) k += t->version[i] == v;
    return k;
}

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "rollout_daemon", argc, argv, 4, 4);
    if (rc) return rc;
    char err[512], ctl[200], lab[200], spool[700], holdout[700], path[800], reg[700];
    snprintf(ctl, sizeof(ctl), "cwt-rollout-ctl-%s", e.run);
    snprintf(lab, sizeof(lab), "cwt-rollout-labelled-%s", e.run);
    rt_create_topic(&e, ctl, 1);
    rt_create_topic(&e, lab, 2);
    snprintf(reg, sizeof(reg), "%s", rt_registry(&e));
    snprintf(spool, sizeof(spool), "%s/spool", e.dir);
    snprintf(holdout, sizeof(holdout), "%s/holdout.csv", e.dir);
    {   /* held out: the first 1,000 rows of the test split */
        char src[600], line[8192];
        snprintf(src, sizeof(src), "%s/test.csv", CW_TEST_DATA);
        FILE *in = fopen(src, "r"), *out = fopen(holdout, "w");
        if (!in || !out) cwt_die(&e, "holdout files");
        for (int i = 0; i < 1000 && fgets(line, sizeof(line), in); i++) fputs(line, out);
        fclose(in);
        fclose(out);
    }
    rt_set_current(&e, 1);

    char extra[600];
    snprintf(extra, sizeof(extra),
             "max_articles = 256;\nmax_wait_ms = 5;\nreload_poll_ms = 60000;\ncontrol_topic = \"%s\";\n", ctl);
    const char *wconf = cwt_worker_conf(&e, "w1", extra, NULL);
    pid_t wpid = cwt_worker_spawn(&e, wconf, "worker");
    const char *wlog = e.logs[e.nprocs - 1];

    snprintf(path, sizeof(path), "%s/trainer.conf", e.dir);
    FILE *f = fopen(path, "w");
    if (!f) cwt_die(&e, "%s", path);
    fprintf(f,
            "registry = \"%s\";\nmodel = \"news\";\nspool_dir = \"%s\";\nbase_train = \"%s/sample-1k.csv\";\n"
            "holdout = \"%s\";\nthreads = 1;\nmin_new_examples = 150;\nmax_accuracy_drop = 0.02;\n"
            "spool_poll_ms = 100;\nbootstrap = false;\nbrokers = \"%s\";\ncontrol_topic = \"%s\";\n"
            "labelled_topic = \"%s\";\ngroup_id = \"%s-trainer\";\nlog_level = \"info\";\n",
            reg, spool, CW_TEST_DATA, holdout, e.brokers, ctl, lab, e.group);
    fclose(f);
    pid_t tpid = rt_trainer_spawn(&e, path, "trainer");
    const char *tlog = e.logs[e.nprocs - 1];

    rd_kafka_t *reader = rt_reader(&e, e.out_topic);
    rt_track_t t;
    rt_track_init(&t, 20000);
    cwt_producer_t p;
    cwt_producer_init(&e, &p, 20000);
    int *preds[RT_MAXV] = {0};
    preds[1] = cw_calloc(e.nrows, sizeof(int));
    for (size_t i = 0; i < e.nrows; i++) preds[1][i] = e.rows[i].pred;

    /* The worker's reloader starts listening when it starts; let it assign. */
    double tw = cwt_now();
    while (!rt_log_has(wlog, "listening for announcements") && cwt_now() - tw < 20) usleep(50000);
    CWT_CHECK(&e, rt_log_has(wlog, "listening for announcements"), "the worker does not listen on %s", ctl);
    produce_and_wait(&e, &p, reader, &t, preds, 0, 1000);
    CWT_CHECK(&e, count_version(&t, 0, 1000, 1) == 1000, "v1 did not answer the first articles");

    /* Good data -> v2 current, announced, served. */
    snprintf(path, sizeof(path), "%s/good.csv", spool);
    double t_drop = cwt_now();
    rt_write_train_rows(&e, path, 2000, 2400, 0);
    int64_t cur = 1;
    while (cwt_now() - t_drop < 60 && cur != 2) {
        cur = cw_registry_current(reg, "news", err, sizeof(err));
        usleep(20000);
    }
    double t_current = cwt_now();
    CWT_CHECK(&e, cur == 2, "v2 did not become current (current %lld)", (long long)cur);
    if (cur != 2) cwt_die(&e, "the trainer did not promote v2");
    cw_model_t *m2 = cw_registry_load(reg, "news@2", NULL, err, sizeof(err));
    if (!m2) cwt_die(&e, "loading v2: %s", err);
    preds[2] = cwt_predict_rows(&e, m2);
    cw_model_destroy(m2);
    /* Stream until v2 answers. */
    size_t next = 1000;
    while (t.per_version[2] == 0 && cwt_now() - t_current < 20 && next + 100 < 20000) {
        for (size_t i = next; i < next + 100; i++) cwt_produce_article(&e, &p, i, "d-");
        next += 100;
        rd_kafka_poll(p.rk, 0);
        rt_read(&e, reader, &t, "d-", preds, 50);
    }
    double lat = t.per_version[2] ? t.first_seen[2] - t_current : -1;
    cwt_log(&e, "dropped good.csv -> v2 current after %.2f s -> first v2 result %.0f ms later", t_current - t_drop,
            lat * 1e3);
    CWT_CHECK(&e, lat >= 0 && lat < 5, "the worker took %.3f s to serve v2 after it became current", lat);
    CWT_CHECK(&e, rt_log_has(tlog, "announced news@2"), "the trainer did not announce v2");
    produce_and_wait(&e, &p, reader, &t, preds, next, 1000);
    CWT_CHECK(&e, count_version(&t, next, 1000, 2) == 1000, "only %zu of 1000 answered by v2",
              count_version(&t, next, 1000, 2));
    next += 1000;

    /* Shuffled labels -> v3 stopped by the gate, v2 keeps serving. */
    snprintf(path, sizeof(path), "%s/shuffled.csv", spool);
    double t_bad = cwt_now();
    rt_write_train_rows(&e, path, 2400, 4400, 1);
    int64_t *vs = NULL;
    size_t nv = 0;
    while (cwt_now() - t_bad < 60) {
        cw_free(vs);
        vs = NULL;
        if (cw_registry_list(reg, "news", &vs, &nv, err, sizeof(err)) == 0 && nv >= 3 &&
            rt_log_has(tlog, "stopped by the quality gate"))
            break;
        usleep(50000);
    }
    cw_free(vs);
    CWT_CHECK(&e, nv == 3, "%zu versions after the shuffled file", nv);
    CWT_CHECK(&e, rt_log_line_has(tlog, "news@3 stopped by the quality gate", "stays a candidate"),
              "the trainer did not log the gate's refusal of v3");
    cur = cw_registry_current(reg, "news", err, sizeof(err));
    CWT_CHECK(&e, cur == 2, "current is %lld after the shuffled file", (long long)cur);
    cw_registry_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    if (cw_registry_meta_read(reg, "news", 3, &meta, err, sizeof(err)) == 0) {
        CWT_CHECK(&e, strstr(meta.json, "\"passed\":false") != NULL, "v3 meta: %s", meta.json);
        cw_registry_meta_clear(&meta);
    } else {
        CWT_CHECK(&e, 0, "v3 meta: %s", err);
    }
    cwt_log(&e, "dropped shuffled.csv -> v3 stopped by the gate after %.2f s", cwt_now() - t_bad);
    usleep(500000);
    produce_and_wait(&e, &p, reader, &t, preds, next, 1000);
    CWT_CHECK(&e, count_version(&t, next, 1000, 2) == 1000, "only %zu of 1000 answered by v2 after v3 was stopped",
              count_version(&t, next, 1000, 2));
    CWT_CHECK(&e, t.per_version[3] == 0, "%llu results from the stopped v3", (unsigned long long)t.per_version[3]);
    CWT_CHECK(&e, t.dups == 0 && t.wrong_label == 0, "dups %llu wrong labels %llu", (unsigned long long)t.dups,
              (unsigned long long)t.wrong_label);

    /* Labelled articles from Kafka: 150 good, 2 skipped. */
    {
        const char *const names[] = {"World", "Sports", "Business", "Sci/Tech"};
        rd_kafka_t *lp = NULL;
        rd_kafka_conf_t *lc = cw_kafka_conf_new(e.brokers, err, sizeof(err));
        if (!lc || !(lp = rd_kafka_new(RD_KAFKA_PRODUCER, lc, err, sizeof(err)))) cwt_die(&e, "producer: %s", err);
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        for (size_t i = 0; i < 152; i++) {
            const cwt_row_t *r = &e.rows[(i * 37) % e.nrows];
            char id[32];
            snprintf(id, sizeof(id), "corr-%zu", i);
            const char *label = i == 150 ? "Weather" : names[r->label];
            msgpack_sbuffer_clear(&sb);
            msgpack_pack_map(&pk, i == 151 ? 3 : 4);
            const char *kv[4][2] = {{"id", id}, {"title", r->title}, {"body", r->body}, {"label", label}};
            for (int k = 0; k < (i == 151 ? 3 : 4); k++) {
                msgpack_pack_str(&pk, strlen(kv[k][0]));
                msgpack_pack_str_body(&pk, kv[k][0], strlen(kv[k][0]));
                msgpack_pack_str(&pk, strlen(kv[k][1]));
                msgpack_pack_str_body(&pk, kv[k][1], strlen(kv[k][1]));
            }
            if (rd_kafka_producev(lp, RD_KAFKA_V_TOPIC(lab), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_VALUE(sb.data, sb.size), RD_KAFKA_V_END) != 0)
                cwt_die(&e, "producing a labelled article");
        }
        if (rd_kafka_flush(lp, 10000) != 0) cwt_die(&e, "flushing labelled articles");
        msgpack_sbuffer_destroy(&sb);
        rd_kafka_destroy(lp);
        double tk = cwt_now();
        vs = NULL;
        nv = 0;
        while (cwt_now() - tk < 60) {
            cw_free(vs);
            vs = NULL;
            if (cw_registry_list(reg, "news", &vs, &nv, err, sizeof(err)) == 0 && nv >= 4) break;
            usleep(50000);
        }
        cw_free(vs);
        CWT_CHECK(&e, nv == 4, "%zu versions after the labelled articles", nv);
        memset(&meta, 0, sizeof(meta));
        if (cw_registry_meta_read(reg, "news", 4, &meta, err, sizeof(err)) == 0) {
            CWT_CHECK(&e, strstr(meta.json, "\"new_rows\":150,") && strstr(meta.json, "kafka-"),
                      "v4 meta: %s", meta.json);
            cwt_log(&e, "150 labelled articles (+2 refused) -> v4 after %.2f s (%s)", cwt_now() - tk,
                    strstr(meta.json, "\"passed\":true") ? "current" : "candidate");
            cw_registry_meta_clear(&meta);
        } else {
            CWT_CHECK(&e, 0, "v4 meta: %s", err);
        }
        CWT_CHECK(&e, rt_log_line_has(tlog, "skipped", "unknown label 'Weather'"), "unknown label not logged");
        CWT_CHECK(&e, rt_log_line_has(tlog, "skipped", "no 'label'"), "missing label not logged");
    }

    kill(tpid, SIGTERM);
    kill(wpid, SIGTERM);
    int st = cwt_worker_wait(tpid, 30);
    CWT_CHECK(&e, st == 0, "trainer exit status %d after SIGTERM", st);
    st = cwt_worker_wait(wpid, 30);
    CWT_CHECK(&e, st == 0, "worker exit status %d after SIGTERM", st);

    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_producer_destroy(&p);
    rt_track_free(&t);
    cw_free(preds[1]);
    cw_free(preds[2]);
    return cwt_env_finish(&e);
}
