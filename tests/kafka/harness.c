/* harness.c: the broker tests' driver. See harness.h. */
#include "harness.h"
#include "tsan_kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "article.h"
#include "backend.h"
#include "classify.h"
#include "csv.h"
#include "registry.h"
#include "tokenizer.h"
#include "util.h"
#include "vocab.h"

static const char *const cwt_labels[] = {"World", "Sports", "Business", "Sci/Tech"};

double cwt_now(void) { return cw_now_s(); }

void cwt_log(cwt_env_t *e, const char *fmt, ...) {
    va_list ap;
    fprintf(stdout, "[%s %.1fs] ", e->name, cwt_now());
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void cwt_print_logs(cwt_env_t *e) {
    for (int i = 0; i < e->nprocs; i++) {
        char cmd[700];
        fprintf(stderr, "---- last lines of %s ----\n", e->logs[i]);
        snprintf(cmd, sizeof(cmd), "tail -n 25 '%s' 1>&2", e->logs[i]);
        if (system(cmd) != 0) fprintf(stderr, "(cannot read it)\n");
    }
}

void cwt_fail(cwt_env_t *e, const char *file, int line, const char *cond, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: FAIL (%s): ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    e->failures++;
}

void cwt_die(cwt_env_t *e, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: FATAL: ", e->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cwt_print_logs(e);
    for (int i = 0; i < e->nprocs; i++)
        if (e->pids[i] > 0) kill(e->pids[i], SIGKILL);
    fprintf(stderr, "%s: files kept in %s\n", e->name, e->dir);
    exit(1);
}

/* ---- model and data ---- */

static void cwt_make_model(cwt_env_t *e) {
    char err[512], path[1024];
    size_t nf;
    char **f;
    size_t *lens;
    snprintf(path, sizeof(path), "%s/sample-1k.csv", CW_TEST_DATA);
    cw_csv_t *csv = cw_csv_open(path, err, sizeof(err));
    if (!csv) cwt_die(e, "%s", err);
    cw_vocab_counter_t *cnt = cw_vocab_counter_new();
    cw_tokens_t toks;
    cw_tokens_init(&toks);
    int rc;
    while ((rc = cw_csv_next(csv, &nf, &f, &lens, err, sizeof(err))) == 1) {
        for (size_t k = 1; k < nf; k++) {
            cw_tokenize(f[k], lens[k], &toks);
            for (size_t t = 0; t < toks.n; t++)
                cw_vocab_counter_add(cnt, toks.buf + toks.start[t], toks.len[t]);
        }
    }
    if (rc < 0) cwt_die(e, "%s", err);
    cw_csv_close(csv);
    cw_tokens_free(&toks);
    cw_vocab_t *v = cw_vocab_build(cnt, 1, 0);
    cw_vocab_counter_destroy(cnt);
    e->model = cw_model_new(v, 16, cwt_labels, 4, 2, 4096);
    cw_model_init_uniform(e->model, 0.5f, 42);
    char reg[512];
    snprintf(reg, sizeof(reg), "%s/registry", e->dir);
    if (cw_registry_publish(reg, "news", e->model, "{\"test\":true}", err, sizeof(err)) != 1)
        cwt_die(e, "publishing the test model: %s", err);
}

static void cwt_load_rows(cwt_env_t *e) {
    char err[512], path[1024];
    size_t nf, cap = 0;
    char **f;
    size_t *lens;
    snprintf(path, sizeof(path), "%s/test.csv", CW_TEST_DATA);
    cw_csv_t *csv = cw_csv_open(path, err, sizeof(err));
    if (!csv) cwt_die(e, "%s", err);
    int rc;
    while ((rc = cw_csv_next(csv, &nf, &f, &lens, err, sizeof(err))) == 1) {
        if (nf != 3) cwt_die(e, "%s:%llu: %zu fields", path, (unsigned long long)cw_csv_line(csv), nf);
        cw_grow((void **)&e->rows, &cap, e->nrows + 1, sizeof(cwt_row_t));
        cwt_row_t *r = &e->rows[e->nrows++];
        r->label = atoi(f[0]) - 1;
        r->title = cw_strdup(f[1]);
        r->body = cw_strdup(f[2]);
    }
    if (rc < 0) cwt_die(e, "%s", err);
    cw_csv_close(csv);

    int *pred = cwt_predict_rows(e, e->model);
    for (size_t i = 0; i < e->nrows; i++) e->rows[i].pred = pred[i];
    cw_free(pred);
}

/* What `catwire predict` gives: the same classifier path, CPU backend. */
int *cwt_predict_rows(cwt_env_t *e, cw_model_t *m) {
    char err[512];
    int *pred = cw_calloc(e->nrows, sizeof(int));
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    if (!be || cw_backend_upload(be, m, err, sizeof(err)) != 0) cwt_die(e, "backend: %s", err);
    cw_classifier_t *c = cw_classifier_new();
    char *text = NULL;
    size_t text_cap = 0;
    for (size_t i = 0; i < e->nrows; i += 512) {
        size_t n = e->nrows - i < 512 ? e->nrows - i : 512;
        for (size_t j = 0; j < n; j++) {
            const cwt_row_t *r = &e->rows[i + j];
            size_t tl = strlen(r->title), bl = strlen(r->body);
            cw_grow((void **)&text, &text_cap, tl + bl + 2, 1);
            memcpy(text, r->title, tl);
            text[tl] = ' ';
            memcpy(text + tl + 1, r->body, bl);
            cw_classifier_add(c, m, text, tl + 1 + bl);
        }
        const float *probs;
        if (cw_classifier_run(c, be, &probs, err, sizeof(err)) != 0) cwt_die(e, "predict: %s", err);
        for (size_t j = 0; j < n; j++) pred[i + j] = (int)cw_argmax(probs + j * m->nlabels, m->nlabels);
    }
    cw_free(text);
    cw_classifier_destroy(c);
    cw_backend_destroy(be);
    return pred;
}

int cwt_env_init(cwt_env_t *e, const char *name, int argc, char **argv, int real_partitions,
                 int mock_partitions) {
    char err[512];
    memset(e, 0, sizeof(*e));
    e->name = name;
    setvbuf(stdout, NULL, _IOLBF, 0);
    CW_SKIP_IF_KAFKA_UNSAFE(name);
    const char *mode = argc > 1 ? argv[1] : "real";
    if (!strcmp(mode, "mock")) {
        e->mock = 1;
    } else if (!strcmp(mode, "real")) {
        const char *b = getenv("CW_TEST_BROKERS");
        if (!b || !*b) {
            printf("%s: skipped: no real broker: set CW_TEST_BROKERS (e.g. 127.0.0.1:9092; "
                   "deploy/kafka/kafka.sh start runs one)\n", name);
            return CWT_SKIP;
        }
        snprintf(e->brokers, sizeof(e->brokers), "%s", b);
    } else {
        fprintf(stderr, "usage: %s real|mock\n", argv[0]);
        exit(2);
    }
    snprintf(e->dir, sizeof(e->dir), "/tmp/cwt-%s-XXXXXX", name);
    if (!mkdtemp(e->dir)) cwt_die(e, "mkdtemp: %s", strerror(errno));
    snprintf(e->run, sizeof(e->run), "%d-%lld", (int)getpid(), (long long)cw_wall_ms());
    snprintf(e->in_topic, sizeof(e->in_topic), "cwt-%s-in-%s", name, e->run);
    snprintf(e->out_topic, sizeof(e->out_topic), "cwt-%s-out-%s", name, e->run);
    snprintf(e->dlq_topic, sizeof(e->dlq_topic), "cwt-%s-dlq-%s", name, e->run);
    snprintf(e->group, sizeof(e->group), "cwt-%s-group-%s", name, e->run);

    int partitions = e->partitions = e->mock ? mock_partitions : real_partitions;
    if (e->mock) {
        e->mk = cw_kafka_mock_new(1, err, sizeof(err));
        if (!e->mk) cwt_die(e, "mock cluster: %s", err);
        snprintf(e->brokers, sizeof(e->brokers), "%s", cw_kafka_mock_bootstraps(e->mk));
    }
    const char *topics[] = {e->in_topic, e->out_topic, e->dlq_topic};
    for (int i = 0; i < 3; i++) {
        int rc = e->mock ? cw_kafka_mock_create_topic(e->mk, topics[i], partitions, err, sizeof(err))
                         : cw_kafka_create_topic(e->brokers, topics[i], partitions, 30000, NULL, err,
                                                 sizeof(err));
        if (rc != 0) cwt_die(e, "creating %s on %s: %s", topics[i], e->brokers, err);
    }
    cwt_make_model(e);
    cwt_load_rows(e);
    cwt_log(e, "%s broker %s, %d partitions, %zu rows, dir %s", e->mock ? "mock" : "real",
            e->brokers, partitions, e->nrows, e->dir);
    return 0;
}

/* One failure per sanitizer report in the spawned processes' logs. */
static void cwt_check_sanitizer_reports(cwt_env_t *e) {
    for (int i = 0; i < e->nprocs; i++) {
        FILE *f = fopen(e->logs[i], "r");
        char *line = NULL;
        size_t cap = 0;
        if (!f) continue; /* never written: the process printed nothing */
        while (getline(&line, &cap, f) > 0) {
            if (!strncmp(line, "SUMMARY: ", 9) && strstr(line, "Sanitizer")) {
                fprintf(stderr, "%s: FAIL: a sanitizer report in %s: %s", e->name, e->logs[i], line);
                e->failures++;
            }
        }
        free(line);
        fclose(f);
    }
}

int cwt_env_finish(cwt_env_t *e) {
    for (int i = 0; i < e->nprocs; i++) {
        if (e->pids[i] > 0 && cwt_alive(e->pids[i])) {
            kill(e->pids[i], SIGKILL);
            cwt_worker_wait(e->pids[i], 10);
        }
    }
    cwt_check_sanitizer_reports(e);
    if (e->failures || getenv("CWT_KEEP")) {
        if (e->failures) cwt_print_logs(e);
        fprintf(stderr, "%s: %d failure(s); files kept in %s\n", e->name, e->failures, e->dir);
    } else {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", e->dir);
    }
    cw_kafka_mock_destroy(e->mk);
    for (size_t i = 0; i < e->nrows; i++) {
        cw_free(e->rows[i].title);
        cw_free(e->rows[i].body);
    }
    cw_free(e->rows);
    cw_model_destroy(e->model);
    cw_free(e->pred2);
    printf("%s: %s\n", e->name, e->failures ? "FAILED" : "passed");
    return e->failures ? 1 : 0;
}

/* ---- producing ---- */

static void cwt_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    cwt_producer_t *p = opaque;
    size_t idx = (size_t)(uintptr_t)m->_private;
    if (m->err) {
        p->failed++;
        return;
    }
    if (idx < p->nsent) {
        p->sent[idx].partition = m->partition;
        p->sent[idx].offset = m->offset;
        p->sent[idx].acked = 1;
    }
}

void cwt_producer_init(cwt_env_t *e, cwt_producer_t *p, size_t capacity) {
    char err[512];
    memset(p, 0, sizeof(*p));
    p->sent = cw_calloc(capacity, sizeof(*p->sent));
    p->nsent = capacity;
    rd_kafka_conf_t *c = cw_kafka_conf_new(e->brokers, err, sizeof(err));
    if (!c) cwt_die(e, "%s", err);
    /* sticky.partitioning.linger.ms=0: key-less articles (every other one)
     * spread evenly instead of in sticky bursts, which could push one
     * partition of the embedded broker past its 5 MiB log and silently lose
     * its oldest messages. */
    if (cw_kafka_conf_set(c, "linger.ms", "20", err, sizeof(err)) ||
        cw_kafka_conf_set(c, "sticky.partitioning.linger.ms", "0", err, sizeof(err)) ||
        cw_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
        cw_kafka_conf_set(c, "queue.buffering.max.messages", "200000", err, sizeof(err)))
        cwt_die(e, "%s", err);
    rd_kafka_conf_set_dr_msg_cb(c, cwt_dr_cb);
    rd_kafka_conf_set_opaque(c, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!p->rk) cwt_die(e, "producer: %s", err);
}

void cwt_produce(cwt_env_t *e, cwt_producer_t *p, size_t idx, const void *key, size_t klen,
                 const void *val, size_t vlen) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(e->in_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? klen : 0), RD_KAFKA_V_VALUE((void *)val, vlen),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)idx), RD_KAFKA_V_END);
        if (!err) break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) cwt_die(e, "produce: %s", rd_kafka_err2str(err));
        rd_kafka_poll(p->rk, 10);
    }
    rd_kafka_poll(p->rk, 0);
}

void cwt_produce_article(cwt_env_t *e, cwt_producer_t *p, size_t idx, const char *prefix) {
    char id[64], key[64];
    const cwt_row_t *r = &e->rows[idx % e->nrows];
    cw_article_t a;
    memset(&a, 0, sizeof(a));
    snprintf(id, sizeof(id), "%s%zu", prefix, idx);
    a.id.p = id;
    a.id.len = strlen(id);
    a.title.p = r->title;
    a.title.len = strlen(r->title);
    a.body.p = r->body;
    a.body.len = strlen(r->body);
    a.source.p = "ag_news";
    a.source.len = 7;
    void *buf = NULL;
    size_t len = 0;
    if (cw_article_encode(&a, &buf, &len) != 0) cwt_die(e, "cw_article_encode failed");
    snprintf(key, sizeof(key), "key-%zu", idx);
    if (idx % 2 == 0) cwt_produce(e, p, idx, key, strlen(key), buf, len);
    else cwt_produce(e, p, idx, NULL, 0, buf, len);
    free(buf);
}

void cwt_producer_flush(cwt_env_t *e, cwt_producer_t *p) {
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, 60000);
    if (err) cwt_die(e, "producer flush: %s", rd_kafka_err2str(err));
    if (p->failed) cwt_die(e, "%llu deliveries failed", (unsigned long long)p->failed);
}

void cwt_producer_destroy(cwt_producer_t *p) {
    if (p->rk) rd_kafka_destroy(p->rk);
    cw_free(p->sent);
    memset(p, 0, sizeof(*p));
}

/* ---- workers ---- */

const char *cwt_worker_conf(cwt_env_t *e, const char *worker_id, const char *extra,
                            const char *kafka_extra) {
    static char path[600];
    snprintf(path, sizeof(path), "%s/%s.conf", e->dir, worker_id);
    FILE *f = fopen(path, "w");
    if (!f) cwt_die(e, "%s: %s", path, strerror(errno));
    fprintf(f,
            "brokers = \"%s\";\n"
            "input_topic = \"%s\";\n"
            "output_topic = \"%s\";\n"
            "dead_letter_topic = \"%s\";\n"
            "group_id = \"%s\";\n"
            "registry = \"%s/registry\";\n"
            "model = \"news\";\n"
            "worker_id = \"%s\";\n"
            "stats_interval_ms = 2000;\n"
            "%s\n"
            "kafka = {\n"
            "  session_timeout_ms = 6000;\n"
            "  heartbeat_interval_ms = 1000;\n"
            "%s\n"
            "%s\n"
            "};\n"
            "%s\n",
            e->brokers, e->in_topic, e->out_topic, e->dlq_topic, e->group, e->dir, worker_id,
            extra ? extra : "", kafka_extra ? kafka_extra : "",
            /* Debugging aids: CWT_WORKER_KAFKA='debug = "cgrp";' CWT_WORKER_CONF='log_level = "debug";' */
            getenv("CWT_WORKER_KAFKA") ? getenv("CWT_WORKER_KAFKA") : "",
            getenv("CWT_WORKER_CONF") ? getenv("CWT_WORKER_CONF") : "");
    fclose(f);
    return path;
}

pid_t cwt_worker_spawn(cwt_env_t *e, const char *conf_path, const char *tag) {
    if (e->nprocs >= 16) cwt_die(e, "too many workers");
    char *log = e->logs[e->nprocs];
    snprintf(log, sizeof(e->logs[0]), "%s/%s-%d.log", e->dir, tag, e->nprocs);
    char conf[600];
    snprintf(conf, sizeof(conf), "%s", conf_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) cwt_die(e, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(CW_WORKER_BIN, CW_WORKER_BIN, "--config", conf, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", CW_WORKER_BIN, strerror(errno));
        _exit(127);
    }
    e->pids[e->nprocs++] = pid;
    return pid;
}

int cwt_worker_wait(pid_t pid, double timeout_s) {
    double end = cwt_now() + timeout_s;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0) return -2;
        if (cwt_now() > end) return -1;
        usleep(20000);
    }
}

int cwt_alive(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

long cwt_rss_kb(pid_t pid) {
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* ---- reading ---- */

void cwt_seen_init(cwt_seen_t *s, size_t n) {
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->count = cw_calloc(n, sizeof(*s->count));
    s->label = cw_calloc(n, sizeof(*s->label));
    s->version = cw_calloc(n, sizeof(*s->version));
    s->model_version = -1;
}

void cwt_seen_free(cwt_seen_t *s) {
    cw_free(s->count);
    cw_free(s->label);
    cw_free(s->version);
    memset(s, 0, sizeof(*s));
}

rd_kafka_t *cwt_reader(cwt_env_t *e, const char *topic, int read_committed) {
    char err[512], group[256];
    rd_kafka_conf_t *c = cw_kafka_conf_new(e->brokers, err, sizeof(err));
    if (!c) cwt_die(e, "%s", err);
    snprintf(group, sizeof(group), "%s-reader", e->group);
    if (cw_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
        cw_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
        cw_kafka_conf_set(c, "isolation.level", read_committed ? "read_committed" : "read_uncommitted",
                          err, sizeof(err)))
        cwt_die(e, "%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) cwt_die(e, "reader: %s", err);
    rd_kafka_poll_set_consumer(rk);
    int np = cw_kafka_partition_count(rk, topic, 10000, err, sizeof(err));
    if (np <= 0) cwt_die(e, "partitions of %s: %s", topic, err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t r = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (r) cwt_die(e, "assign: %s", rd_kafka_err2str(r));
    return rk;
}

static void cwt_check_result(cwt_env_t *e, cwt_seen_t *s, const rd_kafka_message_t *m,
                             const char *prefix) {
    cw_result_t r;
    float scores[16];
    char label[64], model[64], worker[64], err[256];
    if (cw_result_decode(m->payload, m->len, &r, scores, 16, label, sizeof(label), model,
                         sizeof(model), worker, sizeof(worker), err, sizeof(err)) != 0) {
        if (s->bad++ < 5) cwt_fail(e, __FILE__, __LINE__, "decode", "undecodable result: %s", err);
        return;
    }
    size_t plen = strlen(prefix);
    char idbuf[80];
    if (r.id.len < plen || r.id.len - plen >= 20 || memcmp(r.id.p, prefix, plen) != 0) {
        s->foreign++;
        return;
    }
    memcpy(idbuf, r.id.p + plen, r.id.len - plen);
    idbuf[r.id.len - plen] = '\0';
    char *end;
    unsigned long long idx = strtoull(idbuf, &end, 10);
    if (*end || idx >= s->n) {
        s->foreign++;
        return;
    }
    if (s->count[idx]++ == 0) s->distinct++;
    else s->dups++;
    s->label[idx] = r.label_id;
    s->version[idx] = (int32_t)r.model_version;
    const cwt_row_t *row = &e->rows[idx % e->nrows];
    int want = r.model_version == 2 && e->pred2 ? e->pred2[idx % e->nrows] : row->pred;
    if (r.label_id != want && s->wrong_label++ < 5)
        cwt_fail(e, __FILE__, __LINE__, "label", "article %llu: label %d, local prediction %d (model v%lld)",
                 idx, (int)r.label_id, want, (long long)r.model_version);
    /* Key: the input's key ("key-<i>" for even i) or the id. */
    char want_key[80];
    if (idx % 2 == 0) snprintf(want_key, sizeof(want_key), "key-%llu", idx);
    else snprintf(want_key, sizeof(want_key), "%s%llu", prefix, idx);
    if ((m->key_len != strlen(want_key) || memcmp(m->key, want_key, m->key_len) != 0) &&
        s->wrong_key++ < 5)
        cwt_fail(e, __FILE__, __LINE__, "key", "article %llu: key '%.*s', want '%s'", idx,
                 (int)m->key_len, (const char *)m->key, want_key);
    double sum = 0;
    for (uint32_t j = 0; j < r.nscores; j++) sum += scores[j];
    int meta_ok = !strcmp(model, "news") && r.model_version >= 1 && r.nscores == 4 &&
                  fabs(sum - 1.0) < 1e-3 && r.label_id >= 0 && r.label_id < 4 &&
                  !strcmp(label, cwt_labels[r.label_id]) && fabsf(r.confidence - scores[r.label_id]) < 1e-6f &&
                  r.processed_at > 1600000000000LL;
    if (!meta_ok && s->wrong_meta++ < 5)
        cwt_fail(e, __FILE__, __LINE__, "result fields",
                 "article %llu: model %s@%lld label %s/%d conf %f nscores %u sum %f processed_at %lld",
                 idx, model, (long long)r.model_version, label, (int)r.label_id, r.confidence,
                 r.nscores, sum, (long long)r.processed_at);
    s->model_version = r.model_version;
    if (r.processed_at > s->max_processed_at) s->max_processed_at = r.processed_at;
    for (int i = 0; i < 4; i++) {
        if (!s->workers[i][0]) snprintf(s->workers[i], sizeof(s->workers[i]), "%s", worker);
        if (!strcmp(s->workers[i], worker)) {
            s->per_worker[i]++;
            break;
        }
    }
}

uint64_t cwt_read_results(cwt_env_t *e, rd_kafka_t *reader, cwt_seen_t *s, const char *prefix,
                          uint64_t want, double idle_timeout_s) {
    double last = cwt_now();
    while (s->distinct < want) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 100);
        if (!m) {
            if (cwt_now() - last > idle_timeout_s) break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cwt_log(e, "reader: %s", rd_kafka_message_errstr(m));
        } else {
            cwt_check_result(e, s, m, prefix);
            last = cwt_now();
        }
        rd_kafka_message_destroy(m);
    }
    return s->distinct;
}

void cwt_read_for(cwt_env_t *e, rd_kafka_t *reader, cwt_seen_t *s, const char *prefix,
                  double seconds) {
    double end = cwt_now() + seconds;
    while (cwt_now() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 5);
        if (!m) continue;
        if (!m->err) cwt_check_result(e, s, m, prefix);
        rd_kafka_message_destroy(m);
    }
}

void cwt_report_dups(cwt_env_t *e, const cwt_seen_t *s, const cwt_producer_t *p, const char *prefix) {
    size_t shown = 0;
    for (size_t i = 0; i < s->n && shown < 10; i++) {
        if (s->count[i] < 2) continue;
        if (p && i < p->nsent)
            cwt_log(e, "duplicate: %s%zu x%u (input partition %d offset %lld)", prefix, i, s->count[i],
                    (int)p->sent[i].partition, (long long)p->sent[i].offset);
        else
            cwt_log(e, "duplicate: %s%zu x%u", prefix, i, s->count[i]);
        shown++;
    }
}

void cwt_committed(cwt_env_t *e, const char *group, int64_t *out) {
    char err[512];
    rd_kafka_conf_t *c = cw_kafka_conf_new(e->brokers, err, sizeof(err));
    if (!c || cw_kafka_conf_set(c, "group.id", group, err, sizeof(err))) cwt_die(e, "%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) cwt_die(e, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(e->partitions);
    for (int i = 0; i < e->partitions; i++) rd_kafka_topic_partition_list_add(l, e->in_topic, i);
    rd_kafka_resp_err_t r = rd_kafka_committed(rk, l, 15000);
    if (r) cwt_die(e, "committed: %s", rd_kafka_err2str(r));
    for (int i = 0; i < e->partitions; i++) out[i] = l->elems[i].err ? -1 : l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}
