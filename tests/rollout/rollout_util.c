/* rollout_util.c: see rollout_util.h. */
#include "rollout_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "article.h"
#include "backend.h"
#include "checkpoint.h"
#include "classify.h"
#include "csv.h"
#include "kafka_util.h"
#include "registry.h"
#include "util.h"

const char *rt_registry(cwt_env_t *e) {
    static char reg[600];
    snprintf(reg, sizeof(reg), "%s/registry", e->dir);
    return reg;
}

cw_model_t *rt_model_variant(cwt_env_t *e, const cw_model_t *m, uint64_t seed) {
    char err[512];
    void *buf = NULL;
    size_t len = 0;
    if (cw_ckpt_encode(m, &buf, &len, err, sizeof(err)) != 0) cwt_die(e, "encode: %s", err);
    cw_model_t *v = cw_ckpt_decode(buf, len, err, sizeof(err));
    cw_free(buf);
    if (!v) cwt_die(e, "decode: %s", err);
    cw_model_init_uniform(v, 0.5f, seed);
    return v;
}

int64_t rt_publish(cwt_env_t *e, const cw_model_t *m) {
    char err[512];
    int64_t v = cw_registry_publish(rt_registry(e), "news", m, "{\"test\":true}", err, sizeof(err));
    if (v < 0) cwt_die(e, "publish: %s", err);
    return v;
}

int64_t rt_publish_damaged(cwt_env_t *e, const cw_model_t *m, int truncate) {
    char err[512];
    int64_t v = rt_publish(e, m);
    char *path = cw_registry_path(rt_registry(e), "news", v, "model.cwm"), *buf = NULL;
    size_t len = 0;
    if (cw_file_read_all(path, &buf, &len, err, sizeof(err)) != 0) cwt_die(e, "%s", err);
    if (truncate) len /= 2;
    else buf[len / 2] ^= 0x20;
    chmod(path, 0644);
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) cwt_die(e, "rewriting %s", path);
    fclose(f);
    cw_free(buf);
    cw_free(path);
    return v;
}

void rt_set_current(cwt_env_t *e, int64_t v) {
    char err[512];
    if (cw_registry_set_current(rt_registry(e), "news", v, err, sizeof(err)) != 0)
        cwt_die(e, "set_current %lld: %s", (long long)v, err);
}

void rt_track_init(rt_track_t *t, size_t n) {
    memset(t, 0, sizeof(*t));
    t->n = n;
    t->count = cw_calloc(n, sizeof(*t->count));
    t->version = cw_calloc(n, sizeof(*t->version));
}

void rt_track_free(rt_track_t *t) {
    cw_free(t->count);
    cw_free(t->version);
    memset(t, 0, sizeof(*t));
}

size_t rt_read(cwt_env_t *e, rd_kafka_t *rk, rt_track_t *t, const char *prefix, int *const *preds,
               int timeout_ms) {
    size_t got = 0, plen = strlen(prefix);
    double end = cwt_now() + timeout_ms / 1e3;
    for (;;) {
        double left = end - cwt_now();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, got ? 0 : (left > 0 ? (int)(left * 1e3) : 0));
        if (!m) {
            if (got || cwt_now() >= end) break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) cwt_log(e, "reader: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        cw_result_t r;
        float scores[16];
        char label[128], model[128], worker[128], err[256];
        if (cw_result_decode(m->payload, m->len, &r, scores, 16, label, sizeof(label), model, sizeof(model),
                             worker, sizeof(worker), err, sizeof(err)) != 0) {
            t->bad++;
        } else if (r.id.len <= plen || memcmp(r.id.p, prefix, plen) != 0) {
            t->foreign++;
        } else {
            char num[32];
            size_t nl = r.id.len - plen < sizeof(num) - 1 ? r.id.len - plen : sizeof(num) - 1;
            memcpy(num, r.id.p + plen, nl);
            num[nl] = '\0';
            size_t idx = (size_t)strtoull(num, NULL, 10);
            int64_t v = r.model_version;
            if (idx >= t->n || v <= 0 || v >= RT_MAXV) {
                t->foreign++;
            } else {
                t->results++;
                got++;
                if (t->count[idx]++ == 0) t->version[idx] = (int16_t)v;
                else t->dups++;
                if (t->per_version[v]++ == 0) t->first_seen[v] = cwt_now();
                t->last_version = v;
                if (preds && preds[v] && r.label_id != preds[v][idx % e->nrows]) t->wrong_label++;
            }
        }
        rd_kafka_message_destroy(m);
        if (got >= 100000) break;
    }
    return got;
}

size_t rt_answered(const rt_track_t *t, size_t upto) {
    size_t n = 0;
    for (size_t i = 0; i < upto && i < t->n; i++) n += t->count[i] > 0;
    return n;
}

int rt_log_has(const char *path, const char *needle) { return rt_log_line_has(path, needle, NULL); }

int rt_log_line_has(const char *path, const char *a, const char *b) {
    char *buf = NULL, err[256];
    size_t len = 0;
    if (cw_file_read_all(path, &buf, &len, err, sizeof(err)) != 0) return 0;
    int found = 0;
    for (char *line = buf; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        found = strstr(line, a) && (!b || strstr(line, b));
        line = nl ? nl + 1 : NULL;
    }
    cw_free(buf);
    return found;
}

static void rt_put_field(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void rt_write_train_rows(cwt_env_t *e, const char *path, size_t from, size_t to, int shuffle) {
    char err[512], src[512], tmp[700];
    snprintf(src, sizeof(src), "%s/train.csv", CW_TEST_DATA);
    cw_csv_t *c = cw_csv_open(src, err, sizeof(err));
    if (!c) cwt_die(e, "%s", err);
    size_t n = to - from, k = 0, nf, *lens;
    char **fields;
    char **lab = cw_calloc(n, sizeof(char *)), **title = cw_calloc(n, sizeof(char *)),
         **body = cw_calloc(n, sizeof(char *));
    for (size_t row = 0; row < to && cw_csv_next(c, &nf, &fields, &lens, err, sizeof(err)) == 1; row++) {
        if (row < from || nf != 3) continue;
        lab[k] = cw_strdup(fields[0]);
        title[k] = cw_strdup(fields[1]);
        body[k] = cw_strdup(fields[2]);
        k++;
    }
    cw_csv_close(c);
    if (shuffle && k > 1) {
        cw_rng_t rng;
        cw_rng_seed(&rng, 7);
        for (size_t i = k - 1; i > 0; i--) {
            size_t j = (size_t)cw_rng_below(&rng, i + 1);
            char *t = lab[i];
            lab[i] = lab[j];
            lab[j] = t;
        }
    }
    const char *slash = strrchr(path, '/');
    snprintf(tmp, sizeof(tmp), "%.*s/.%s", (int)(slash - path), path, slash + 1);
    FILE *f = fopen(tmp, "w");
    if (!f) cwt_die(e, "%s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < k; i++) {
        rt_put_field(f, lab[i]);
        fputc(',', f);
        rt_put_field(f, title[i]);
        fputc(',', f);
        rt_put_field(f, body[i]);
        fputc('\n', f);
        cw_free(lab[i]);
        cw_free(title[i]);
        cw_free(body[i]);
    }
    fclose(f);
    if (rename(tmp, path) != 0) cwt_die(e, "rename %s: %s", tmp, strerror(errno));
    cw_free(lab);
    cw_free(title);
    cw_free(body);
}

pid_t rt_trainer_spawn(cwt_env_t *e, const char *conf, const char *tag) {
    if (e->nprocs >= 16) cwt_die(e, "too many processes");
    char *log = e->logs[e->nprocs];
    snprintf(log, sizeof(e->logs[0]), "%s/%s.log", e->dir, tag);
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
        execl(CW_TRAINER_BIN, CW_TRAINER_BIN, "run", "--config", conf, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", CW_TRAINER_BIN, strerror(errno));
        _exit(127);
    }
    e->pids[e->nprocs++] = pid;
    return pid;
}

void rt_create_topic(cwt_env_t *e, const char *topic, int partitions) {
    char err[512];
    int rc = e->mock ? cw_kafka_mock_create_topic(e->mk, topic, partitions, err, sizeof(err))
                     : cw_kafka_create_topic(e->brokers, topic, partitions, 30000, NULL, err, sizeof(err));
    if (rc != 0) cwt_die(e, "creating %s: %s", topic, err);
}

rd_kafka_t *rt_reader(cwt_env_t *e, const char *topic) {
    char err[512], group[256];
    rd_kafka_conf_t *c = cw_kafka_conf_new(e->brokers, err, sizeof(err));
    if (!c) cwt_die(e, "%s", err);
    snprintf(group, sizeof(group), "%s-rt-reader", e->group);
    if (cw_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
        cw_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
        (e->mock && cw_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof(err))))
        cwt_die(e, "%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) cwt_die(e, "reader: %s", err);
    rd_kafka_poll_set_consumer(rk);
    int np = cw_kafka_partition_count(rk, topic, 10000, err, sizeof(err));
    if (np <= 0) cwt_die(e, "partitions of %s: %s", topic, err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t r = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (r) cwt_die(e, "assign: %s", rd_kafka_err2str(r));
    return rk;
}
