/* test_daemon.c: the trainer daemon without a broker.
 *
 *   - configuration: unknown keys, wrong types, ranges, librdkafka typos and
 *     reserved properties are refused with FILE:LINE; cross-key rules;
 *   - the quality gate's arithmetic;
 *   - the engine on AG News sample-1k (fast): bootstrap publishes v1 as
 *     current; a spool file with 400 good rows -> v2 passes the gate and
 *     becomes current, its data moves to accepted/; a file with a bad row goes
 *     to failed/ with a .reason; hidden and non-CSV names are left alone; a
 *     file of 2,000 rows with shuffled labels -> v3 is stopped by the gate,
 *     stays a candidate with the reason in meta.json, and its data moves to
 *     rejected/; finally the loop itself (cw_daemon_run on a thread) takes a
 *     dropped file and publishes a new current version. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "daemon.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#include "check.h"

static char root[64];

static void quiet_log(cw_log_level_t level, const char *comp, const char *msg) {
    if (getenv("CW_TEST_VERBOSE") || level <= CW_LOG_ERROR) fprintf(stderr, "  [%s] %s\n", comp, msg);
}

static char *write_file(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    return path;
}

static int exists(const char *dir, const char *name) {
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

/* Expect loading text to fail with an error containing want (and the line). */
static void conf_bad(const char *text, const char *want) {
    cw_daemon_conf_t c;
    char err[1024] = "";
    cw_daemon_conf_defaults(&c);
    const char *path = write_file("bad.conf", text);
    int rc = cw_daemon_conf_load(&c, path, err, sizeof(err));
    CHECK(rc != 0 && strstr(err, want) != NULL, "config:\n%s\nexpected an error with '%s', got rc %d '%s'", text,
          want, rc, err);
    cw_daemon_conf_free(&c);
}

static void test_config(void) {
    conf_bad("holdout = \"h.csv\";\nmodel = \"news\";\nbogus = 1;\n", "bad.conf:3: unknown key 'bogus'");
    conf_bad("holdout = \"h.csv\";\nmin_new_examples = \"ten\";\n",
             "bad.conf:2: key 'min_new_examples': expected an integer, got a string");
    conf_bad("holdout = \"h.csv\";\nmax_accuracy_drop = 1.5;\n", "bad.conf:2: key 'max_accuracy_drop': 1.5 is out of range");
    conf_bad("holdout = \"h.csv\";\nmin_new_examples = 0;\n", "bad.conf:2: key 'min_new_examples'");
    conf_bad("holdout = \"h.csv\";\nrecipe = \"magic\";\n", "bad.conf:2: key 'recipe': 'magic' is not one of default, seed, fasttext");
    conf_bad("holdout = \"h.csv\";\nkafka = {\n  socket_timeout_mss = 5;\n};\n",
             "bad.conf:3: kafka property 'socket.timeout.mss'");
    conf_bad("holdout = \"h.csv\";\nkafka = {\n  group_id = \"x\";\n};\n", "bad.conf:3: kafka property 'group.id' is set by the daemon");
    conf_bad("model = \"news\";\n", "'holdout' is required");
    conf_bad("holdout = \"h.csv\";\nlabelled_topic = \"corrections\";\n", "needs 'brokers'");
    conf_bad("holdout = \"h.csv\"\nmodel = ;\n", "bad.conf:2:");

    cw_daemon_conf_t c;
    char err[1024] = "";
    cw_daemon_conf_defaults(&c);
    const char *path = write_file("good.conf",
                                  "registry = \"/tmp/r\";\nholdout = \"h.csv\";\nmax_accuracy_drop = 0;\n"
                                  "min_new_examples = 50;\nbootstrap = false;\n"
                                  "kafka = {\n  socket_timeout_ms = 5000;\n  sasl_password = \"hunter2\";\n};\n");
    CHECK(cw_daemon_conf_load(&c, path, err, sizeof(err)) == 0, "good config refused: %s", err);
    CHECK(c.max_accuracy_drop == 0.0 && c.min_new_examples == 50 && !c.bootstrap && c.nkafka == 2,
          "values %g %" PRId64 " %d %zu", c.max_accuracy_drop, c.min_new_examples, c.bootstrap, c.nkafka);
    CHECK(!strcmp(c.kafka[0].key, "socket.timeout.ms") && c.kafka[0].line == 7, "kafka[0] %s line %d", c.kafka[0].key,
          c.kafka[0].line);
    char *dump = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dump, &len);
    cw_daemon_conf_dump(&c, f);
    fclose(f);
    CHECK(strstr(dump, "max_accuracy_drop = 0.0;") && strstr(dump, "socket_timeout_ms = \"5000\";") &&
              !strstr(dump, "hunter2"), "dump:\n%s", dump);
    free(dump);
    CHECK(cw_daemon_conf_set(&c, "max_accuracy_drop", "0.25", err, sizeof(err)) == 0 && c.max_accuracy_drop == 0.25,
          "set: %s", err);
    CHECK(cw_daemon_conf_set(&c, "nope", "1", err, sizeof(err)) != 0, "unknown key set");
    CHECK(cw_daemon_conf_set(&c, "kafka.linger.ms", "abc", err, sizeof(err)) != 0, "bad kafka value set");
    cw_daemon_conf_free(&c);
}

static void test_gate(void) {
    char why[512];
    CHECK(cw_daemon_gate(0.5, 0, 0, -1, 0.01, why, sizeof(why)) == 1, "no current: %s", why);
    CHECK(cw_daemon_gate(0.80, 1, 3, 0.80, 0.0, why, sizeof(why)) == 1, "equal: %s", why);
    CHECK(cw_daemon_gate(0.79, 1, 3, 0.80, 0.01, why, sizeof(why)) == 1, "at the margin: %s", why);
    CHECK(cw_daemon_gate(0.789, 1, 3, 0.80, 0.01, why, sizeof(why)) == 0, "below the margin passed: %s", why);
    CHECK(strstr(why, "stays a candidate") && strstr(why, "v3"), "reason '%s'", why);
    CHECK(cw_daemon_gate(0.25, 1, 3, 0.70, 0.05, why, sizeof(why)) == 0, "shuffled-level accuracy passed");
    CHECK(cw_daemon_gate(0.95, 1, 3, 0.70, 0.0, why, sizeof(why)) == 1, "better refused");
}

/* Rows [from, to) of AG News train.csv into path; shuffle permutes their labels. */
static void write_rows(const char *path, size_t from, size_t to, int shuffle) {
    char err[512], src[512];
    snprintf(src, sizeof(src), "%s/train.csv", CW_TEST_DATA);
    cw_csv_t *c = cw_csv_open(src, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    size_t n = to - from, i = 0, nf, *lens;
    char **fields;
    char **lab = cw_calloc(n, sizeof(char *)), **title = cw_calloc(n, sizeof(char *)), **body = cw_calloc(n, sizeof(char *));
    for (size_t row = 0; row < to && cw_csv_next(c, &nf, &fields, &lens, err, sizeof(err)) == 1; row++) {
        if (row < from) continue;
        lab[i] = cw_strdup(fields[0]);
        title[i] = cw_strdup(fields[1]);
        body[i] = cw_strdup(fields[2]);
        i++;
    }
    cw_csv_close(c);
    if (shuffle) {
        cw_rng_t rng;
        cw_rng_seed(&rng, 42);
        for (size_t k = n - 1; k > 0; k--) {
            size_t j = (size_t)cw_rng_below(&rng, k + 1);
            char *t = lab[k];
            lab[k] = lab[j];
            lab[j] = t;
        }
    }
    FILE *f = fopen(path, "w");
    for (size_t k = 0; k < i; k++) {
        fprintf(f, "\"%s\",\"", lab[k]);
        for (const char *p = title[k]; *p; p++) fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, f);
        fputs("\",\"", f);
        for (const char *p = body[k]; *p; p++) fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, f);
        fputs("\"\n", f);
        cw_free(lab[k]);
        cw_free(title[k]);
        cw_free(body[k]);
    }
    fclose(f);
    cw_free(lab);
    cw_free(title);
    cw_free(body);
}

/* Drop a file into the spool the way writers must: a dot name, then rename. */
static void drop(const char *spool, const char *name, size_t from, size_t to, int shuffle) {
    char tmp[600], dst[600];
    snprintf(tmp, sizeof(tmp), "%s/.%s", spool, name);
    snprintf(dst, sizeof(dst), "%s/%s", spool, name);
    write_rows(tmp, from, to, shuffle);
    if (rename(tmp, dst) != 0) perror("rename");
}

static char *meta_of(const char *reg, int64_t v) {
    cw_registry_meta_t m;
    char err[512];
    memset(&m, 0, sizeof(m));
    if (cw_registry_meta_read(reg, "news", v, &m, err, sizeof(err)) != 0) return cw_strdup(err);
    char *json = cw_strdup(m.json);
    cw_registry_meta_clear(&m);
    return json;
}

typedef struct runner_s {
    cw_daemon_t *d;
    int rc;
} runner_t;

static void *run_thread(void *arg) {
    runner_t *r = arg;
    r->rc = cw_daemon_run(r->d);
    return NULL;
}

static void test_engine(void) {
    char err[1024], reg[256], spool[256], holdout[256], base[512], buf[512];
    snprintf(reg, sizeof(reg), "%s/registry", root);
    snprintf(spool, sizeof(spool), "%s/spool", root);
    snprintf(base, sizeof(base), "%s/sample-1k.csv", CW_TEST_DATA);
    snprintf(holdout, sizeof(holdout), "%s/holdout.csv", root);
    /* Held out: the first 1,000 rows of the test split. */
    {
        char src[512];
        snprintf(src, sizeof(src), "%s/test.csv", CW_TEST_DATA);
        FILE *in = fopen(src, "r"), *out = fopen(holdout, "w");
        char line[8192];
        for (int i = 0; in && out && i < 1000 && fgets(line, sizeof(line), in); i++) fputs(line, out);
        if (in) fclose(in);
        if (out) fclose(out);
    }
    cw_daemon_conf_t c;
    cw_daemon_conf_defaults(&c);
    const char *kv[][2] = {{"registry", reg}, {"spool_dir", spool}, {"base_train", base}, {"holdout", holdout},
                           {"threads", "1"}, {"min_new_examples", "100"}, {"max_accuracy_drop", "0.02"},
                           {"spool_poll_ms", "50"}, {"control_topic", ""}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        CHECK(cw_daemon_conf_set(&c, kv[i][0], kv[i][1], err, sizeof(err)) == 0, "%s", err);
    cw_daemon_t *d = cw_daemon_new(&c, err, sizeof(err));
    CHECK(d != NULL, "daemon: %s", err);
    if (!d) return;

    cw_daemon_outcome_t out;
    double t0 = cw_now_s();
    CHECK(cw_daemon_retrain(d, "bootstrap", &out, err, sizeof(err)) == 0, "bootstrap: %s", err);
    printf("bootstrap: v%" PRId64 " holdout %.4f in %.2f s (%s)\n", out.version, out.holdout_acc, cw_now_s() - t0,
           out.reason);
    CHECK(out.version == 1 && out.promoted, "bootstrap v%" PRId64 " promoted %d", out.version, out.promoted);
    CHECK(cw_registry_current(reg, "news", err, sizeof(err)) == 1, "current after bootstrap");

    /* Spool: one good file, one with a bad row, one hidden, one not CSV. */
    drop(spool, "good-1.csv", 2000, 2400, 0);
    snprintf(buf, sizeof(buf), "%s/bad.csv", spool);
    FILE *f = fopen(buf, "w");
    fputs("\"1\",\"fine\",\"row\"\n\"Weather\",\"unknown\",\"label\"\n", f);
    fclose(f);
    snprintf(buf, sizeof(buf), "%s/.half-written.csv", spool);
    f = fopen(buf, "w");
    fputs("\"1\",\"x\",\"y\"\n", f);
    fclose(f);
    snprintf(buf, sizeof(buf), "%s/notes.txt", spool);
    f = fopen(buf, "w");
    fputs("not data\n", f);
    fclose(f);
    int taken = cw_daemon_scan_spool(d, err, sizeof(err));
    CHECK(taken == 1, "took %d files (%s)", taken, err);
    char failed[300], done[300];
    snprintf(failed, sizeof(failed), "%s/failed", spool);
    snprintf(done, sizeof(done), "%s/done", spool);
    CHECK(exists(failed, "bad.csv") && exists(failed, "bad.csv.reason"), "bad.csv not in failed/");
    CHECK(exists(done, "good-1.csv") && !exists(spool, "good-1.csv"), "good-1.csv not in done/");
    CHECK(exists(spool, ".half-written.csv") && exists(spool, "notes.txt"), "hidden or non-CSV file was taken");
    {
        char rp[400], *reason = NULL;
        size_t len;
        snprintf(rp, sizeof(rp), "%s/bad.csv.reason", failed);
        if (cw_file_read_all(rp, &reason, &len, err, sizeof(err)) == 0) {
            CHECK(strstr(reason, "bad.csv:2: unknown label 'Weather'") != NULL, "reason: %s", reason);
            cw_free(reason);
        }
    }
    cw_daemon_stats_t st;
    cw_daemon_get_stats(d, &st);
    CHECK(st.pending_rows == 400 && st.files_failed == 1, "pending %" PRIu64 ", failed %" PRIu64, st.pending_rows,
          st.files_failed);

    t0 = cw_now_s();
    CHECK(cw_daemon_retrain(d, "test", &out, err, sizeof(err)) == 0, "retrain: %s", err);
    printf("good data: v%" PRId64 " holdout %.4f vs v%" PRId64 " %.4f in %.2f s: %s\n", out.version, out.holdout_acc,
           out.previous, out.current_acc, cw_now_s() - t0, out.reason);
    CHECK(out.version == 2 && out.promoted && out.train_rows == 1400 && out.pending_rows == 400,
          "v%" PRId64 " promoted %d rows %zu", out.version, out.promoted, out.train_rows);
    CHECK(cw_registry_current(reg, "news", err, sizeof(err)) == 2, "current is not v2");
    char *meta = meta_of(reg, 2);
    CHECK(strstr(meta, "\"passed\":true") && strstr(meta, "\"parent\": 1") && strstr(meta, "\"holdout_accuracy\""),
          "meta v2: %s", meta);
    cw_free(meta);

    /* Shuffled labels: stopped by the gate, stays a candidate. */
    drop(spool, "shuffled.csv", 2400, 4400, 1);
    CHECK(cw_daemon_scan_spool(d, err, sizeof(err)) == 1, "shuffled file not taken: %s", err);
    t0 = cw_now_s();
    CHECK(cw_daemon_retrain(d, "test", &out, err, sizeof(err)) == 0, "retrain: %s", err);
    printf("shuffled labels: v%" PRId64 " holdout %.4f vs v%" PRId64 " %.4f in %.2f s: %s\n", out.version,
           out.holdout_acc, out.previous, out.current_acc, cw_now_s() - t0, out.reason);
    CHECK(out.version == 3 && !out.promoted, "shuffled v%" PRId64 " promoted %d", out.version, out.promoted);
    CHECK(cw_registry_current(reg, "news", err, sizeof(err)) == 2, "current moved off v2");
    meta = meta_of(reg, 3);
    CHECK(strstr(meta, "\"passed\":false") && strstr(meta, "stays a candidate"), "meta v3: %s", meta);
    cw_free(meta);
    char rej[300];
    snprintf(rej, sizeof(rej), "%s/spool/state/rejected", root);
    int nrej = 0;
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c 'shuffled.csv'", rej);
        FILE *p = popen(cmd, "r");
        if (p && fscanf(p, "%d", &nrej) != 1) nrej = 0;
        if (p) pclose(p);
    }
    CHECK(nrej == 2, "rejected/ holds %d shuffled.csv files (data + .reason expected)", nrej);

    /* The loop: a dropped file becomes a new current version by itself. */
    runner_t rr = {.d = d, .rc = -1};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &rr);
    drop(spool, "good-2.csv", 4400, 4600, 0);
    t0 = cw_now_s();
    int64_t cur = 0;
    while (cw_now_s() - t0 < 60) {
        cur = cw_registry_current(reg, "news", err, sizeof(err));
        if (cur == 4) break;
        usleep(20000);
    }
    printf("loop: dropped file -> current v%" PRId64 " in %.2f s\n", cur, cw_now_s() - t0);
    CHECK(cur == 4, "the loop did not make v4 current (current %" PRId64 ")", cur);
    cw_daemon_stop(d);
    pthread_join(th, NULL);
    CHECK(rr.rc == 0, "run returned %d", rr.rc);
    cw_daemon_get_stats(d, &st);
    CHECK(st.trainings == 4 && st.promoted == 3 && st.stopped == 1, "trainings %" PRIu64 " promoted %" PRIu64
          " stopped %" PRIu64, st.trainings, st.promoted, st.stopped);
    cw_daemon_destroy(d);
    cw_daemon_conf_free(&c);
}

int main(void) {
    snprintf(root, sizeof(root), "/tmp/cw_test_daemon.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    cw_log_set_callback(quiet_log);
    cw_log_set_level(CW_LOG_DEBUG);
    test_config();
    test_gate();
    test_engine();
    if (failures) {
        fprintf(stderr, "%d check(s) failed; kept %s\n", failures, root);
        return 1;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    printf("test_daemon: ok\n");
    return 0;
}
