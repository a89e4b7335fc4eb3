/* daemon.c: the trainer daemon engine (see daemon.h for the contract).
 *
 * Everything runs on the caller's thread: spool scans, the labelled-articles
 * consumer, retraining, publishing and announcing. Files are the state: what
 * is pending, accepted or rejected is a directory listing, so a restart
 * carries on where the last run stopped (a crash between writing a pending
 * file and moving the spool file to done/ takes that file again: at least
 * once, like the Kafka input). */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "article.h"
#include "checkpoint.h"
#include "csv.h"
#include "dataset.h"
#include "log.h"
#include "mpread.h"
#include "registry.h"
#include "train.h"
#include "util.h"

#define CW_COMP "trainer"
/* Labelled articles are written to pending/ at this many, or this often. */
#define CW_KAFKA_FLUSH_ROWS 1000
#define CW_KAFKA_FLUSH_S 1.0
/* After a failed retraining, wait this long before the next attempt. */
#define CW_RETRY_S 30.0

struct cw_daemon_s {
    const cw_daemon_conf_t *conf;
    char *state, *pending, *accepted, *rejected, *done, *failed;
    char *base_norm;             /* state/base.csv: base_train, normalised (NULL: none) */
    char **labels;
    uint32_t nlabels;
    cw_dataset_t *holdout;

    rd_kafka_t *consumer;        /* labelled_topic, NULL when not configured */
    rd_kafka_t *producer;        /* control_topic, NULL when not configured */
    rd_kafka_topic_t *ctl_rkt;
    atomic_int_least64_t ctl_acked, ctl_failed;

    /* Labelled articles read and not yet written to pending/. */
    char *kbuf;
    size_t kbuf_len;
    FILE *kf;
    size_t krows;
    double kfirst;

    double last_train;
    double retry_at;
    atomic_int stop;

    pthread_mutex_t mu;
    cw_daemon_stats_t st;
};

/* ---------- small helpers ---------- */

static char *cw_path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = cw_malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void cw_stat_add(cw_daemon_t *d, uint64_t *field, uint64_t n) {
    pthread_mutex_lock(&d->mu);
    *field += n;
    pthread_mutex_unlock(&d->mu);
}

/* One CSV field, always quoted; CR and LF become spaces so a row is a line. */
static void cw_csv_put(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '"') fputs("\"\"", f);
        else if (ch == '\n' || ch == '\r') fputc(' ', f);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* JSON string with quotes. */
static void cw_json_put(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int cw_label_index(const cw_daemon_t *d, const char *s, size_t n) {
    for (uint32_t i = 0; i < d->nlabels; i++)
        if (strlen(d->labels[i]) == n && !memcmp(d->labels[i], s, n)) return (int)i;
    /* A class number 1..K, as in AG News. */
    if (n == 0 || n > 9) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v >= 1 && v <= d->nlabels ? (int)(v - 1) : -1;
}

/* Sorted names of the data files in dir: *.csv, not starting with '.'. */
static int cw_list_csv(const char *dir, char ***names, size_t *n, char *errstr, size_t errstr_size) {
    DIR *dh = opendir(dir);
    *names = NULL;
    *n = 0;
    if (!dh) {
        cw_seterr(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".csv") != 0) continue;
        char *full = cw_path_join(dir, de->d_name);
        struct stat sb;
        int regular = stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
        cw_free(full);
        if (!regular) continue;
        cw_grow((void **)names, &cap, *n + 1, sizeof(char *));
        (*names)[(*n)++] = cw_strdup(de->d_name);
    }
    closedir(dh);
    for (size_t i = 1; i < *n; i++)   /* insertion sort: directories hold few files */
        for (size_t j = i; j > 0 && strcmp((*names)[j - 1], (*names)[j]) > 0; j--) {
            char *t = (*names)[j];
            (*names)[j] = (*names)[j - 1];
            (*names)[j - 1] = t;
        }
    return 0;
}

static void cw_names_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) cw_free(names[i]);
    cw_free(names);
}

/* Normalise a labelled CSV file: every row "label name","text" on one line.
 * Appends to out; *rows gets the row count. Any bad row fails the whole
 * file with "FILE:LINE: why". */
static int cw_normalize(cw_daemon_t *d, const char *path, FILE *out, size_t *rows, char *errstr,
                        size_t errstr_size) {
    int rc = -1;
    size_t nf, first_nf = 0, *lens;
    char **fields;
    *rows = 0;
    cw_csv_t *c = cw_csv_open(path, errstr, errstr_size);
    if (!c) return -1;
    for (;;) {
        int r = cw_csv_next(c, &nf, &fields, &lens, errstr, errstr_size);
        if (r < 0) goto done;
        if (r == 0) break;
        if (nf < 2) {
            cw_seterr(errstr, errstr_size, "%s:%" PRIu64 ": expected a label and a text, found %zu field(s)",
                      cw_csv_name(c), cw_csv_line(c), nf);
            goto done;
        }
        if (first_nf == 0) first_nf = nf;
        else if (nf != first_nf) {
            cw_seterr(errstr, errstr_size, "%s:%" PRIu64 ": expected %zu fields, found %zu", cw_csv_name(c),
                      cw_csv_line(c), first_nf, nf);
            goto done;
        }
        int k = cw_label_index(d, fields[0], lens[0]);
        if (k < 0) {
            cw_seterr(errstr, errstr_size, "%s:%" PRIu64 ": unknown label '%.64s'", cw_csv_name(c), cw_csv_line(c),
                      fields[0]);
            goto done;
        }
        const char *name = d->labels[k];
        cw_csv_put(out, name, strlen(name));
        fputs(",\"", out);
        for (size_t i = 1; i < nf; i++) {
            if (i > 1) fputc(' ', out);
            for (size_t j = 0; j < lens[i]; j++) {
                char ch = fields[i][j];
                if (ch == '"') fputs("\"\"", out);
                else if (ch == '\n' || ch == '\r') fputc(' ', out);
                else fputc(ch, out);
            }
        }
        fputs("\"\n", out);
        (*rows)++;
    }
    if (*rows == 0) {
        cw_seterr(errstr, errstr_size, "%s: no rows", path);
        goto done;
    }
    rc = 0;
done:
    cw_csv_close(c);
    return rc;
}

/* Rows of a normalised file (one per line). */
static size_t cw_count_rows(const char *path) {
    FILE *f = fopen(path, "rb");
    size_t n = 0;
    int ch;
    if (!f) return 0;
    while ((ch = getc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static int cw_move(const char *from, const char *to, char *errstr, size_t errstr_size) {
    if (rename(from, to) != 0) {
        cw_seterr(errstr, errstr_size, "moving %s to %s: %s", from, to, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------- the quality gate ---------- */

int cw_daemon_gate(double new_acc, int has_current, int64_t cur_version, double cur_acc,
                   double max_drop, char *reason, size_t reason_size) {
    if (!has_current) {
        cw_seterr(reason, reason_size, "no current version: holdout accuracy %.4f, becomes current", new_acc);
        return 1;
    }
    double floor_acc = cur_acc - max_drop;
    /* A hair of slack so equal accuracies computed twice never fail on rounding. */
    if (new_acc + 1e-12 >= floor_acc) {
        cw_seterr(reason, reason_size,
                  "holdout accuracy %.4f >= %.4f (current v%" PRId64 " %.4f - max_accuracy_drop %.4f)", new_acc,
                  floor_acc, cur_version, cur_acc, max_drop);
        return 1;
    }
    cw_seterr(reason, reason_size,
              "holdout accuracy %.4f < %.4f (current v%" PRId64 " %.4f - max_accuracy_drop %.4f): stays a candidate",
              new_acc, floor_acc, cur_version, cur_acc, max_drop);
    return 0;
}

/* ---------- Kafka ---------- */

static void cw_daemon_rdlog_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    cw_log_level_t l = level <= 3 ? CW_LOG_ERROR : level == 4 ? CW_LOG_WARN : level <= 6 ? CW_LOG_INFO : CW_LOG_DEBUG;
    cw_log(l, "kafka", "%s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void cw_daemon_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    cw_daemon_t *d = opaque;
    (void)rk;
    if (m->err) {
        atomic_fetch_add(&d->ctl_failed, 1);
        cw_log_error(CW_COMP, "announcement on %s not delivered: %s", rd_kafka_topic_name(m->rkt),
                     rd_kafka_err2str(m->err));
    } else {
        atomic_fetch_add(&d->ctl_acked, 1);
    }
}

static rd_kafka_conf_t *cw_daemon_rdconf(cw_daemon_t *d, int consumer, char *errstr, size_t errstr_size) {
    const cw_daemon_conf_t *c = d->conf;
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    char err[512];
    for (size_t i = 0; i < c->nkafka; i++)
        if (rd_kafka_conf_set(rc, c->kafka[i].key, c->kafka[i].value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
            goto fail;
    if (rd_kafka_conf_set(rc, "bootstrap.servers", c->brokers, err, sizeof(err)) != RD_KAFKA_CONF_OK) goto fail;
    if (consumer) {
        if (rd_kafka_conf_set(rc, "group.id", c->group_id, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(rc, "enable.auto.commit", "false", err, sizeof(err)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(rc, "auto.offset.reset", "earliest", err, sizeof(err)) != RD_KAFKA_CONF_OK)
            goto fail;
    } else {
        rd_kafka_conf_set_dr_msg_cb(rc, cw_daemon_dr_cb);
    }
    rd_kafka_conf_set_log_cb(rc, cw_daemon_rdlog_cb);
    rd_kafka_conf_set_opaque(rc, d);
    return rc;
fail:
    cw_seterr(errstr, errstr_size, "kafka: %s", err);
    rd_kafka_conf_destroy(rc);
    return NULL;
}

/* The "label" member of a labelled article (a top-level str). */
static int cw_labelled_label(const void *buf, size_t len, const char **label, size_t *label_len, char *errstr,
                             size_t errstr_size) {
    cw_mp_t r;
    cw_mp_val_t top, key, val;
    cw_mp_init(&r, buf, len);
    r.ctx = "labelled article";
    *label = NULL;
    if (cw_mp_head(&r, &top)) goto fail;
    if (top.type != CW_MP_MAP) {
        cw_seterr(errstr, errstr_size, "not a map");
        return -1;
    }
    for (uint32_t i = 0; i < top.n; i++) {
        if (cw_mp_head(&r, &key)) goto fail;
        if (cw_mp_head(&r, &val)) goto fail;
        if (key.type == CW_MP_STR && key.n == 5 && !memcmp(key.ptr, "label", 5)) {
            if (val.type != CW_MP_STR || !cw_mp_utf8_valid(val.ptr, val.n)) {
                cw_seterr(errstr, errstr_size, "field 'label': expected a UTF-8 str, got %s",
                          cw_mp_type_name(val.type));
                return -1;
            }
            *label = (const char *)val.ptr;
            *label_len = val.n;
        } else if (cw_mp_skip(&r, &val, 2)) {
            goto fail;
        }
    }
    if (!*label) {
        cw_seterr(errstr, errstr_size, "no 'label'");
        return -1;
    }
    return 0;
fail:
    cw_seterr(errstr, errstr_size, "%s", r.detail);
    return -1;
}

static void cw_kafka_buffer_reset(cw_daemon_t *d) {
    if (d->kf) fclose(d->kf);
    free(d->kbuf);
    d->kbuf = NULL;
    d->kbuf_len = 0;
    d->kf = open_memstream(&d->kbuf, &d->kbuf_len);
    if (!d->kf) abort();
    d->krows = 0;
}

static void cw_kafka_take(cw_daemon_t *d, const rd_kafka_message_t *m) {
    cw_article_t a;
    char detail[256];
    const char *label;
    size_t label_len;
    cw_article_err_t e = cw_article_decode(m->payload, m->len, &a, detail, sizeof(detail));
    if (e == CW_ARTICLE_OK &&
        cw_labelled_label(m->payload, m->len, &label, &label_len, detail, sizeof(detail)) != 0)
        e = CW_ARTICLE_ERR_WRONG_TYPE;
    int k = e == CW_ARTICLE_OK ? cw_label_index(d, label, label_len) : -1;
    if (e == CW_ARTICLE_OK && k < 0) snprintf(detail, sizeof(detail), "unknown label '%.*s'", (int)(label_len > 64 ? 64 : label_len), label);
    if (k < 0) {
        cw_stat_add(d, &d->st.kafka_skipped, 1);
        cw_log_warn(CW_COMP, "%s [%d] at offset %" PRId64 ": skipped: %s%s%s", rd_kafka_topic_name(m->rkt),
                    (int)m->partition, m->offset, e == CW_ARTICLE_OK ? "" : cw_article_err2str(e),
                    e == CW_ARTICLE_OK ? "" : ": ", detail);
        return;
    }
    if (d->krows == 0) d->kfirst = cw_now_s();
    cw_csv_put(d->kf, d->labels[k], strlen(d->labels[k]));
    fputc(',', d->kf);
    /* text = title + " " + body, as the worker builds it */
    fputc('"', d->kf);
    const cw_str_t parts[2] = {a.title, a.body};
    for (int p = 0; p < 2; p++) {
        if (p == 1 && a.title.len && a.body.len) fputc(' ', d->kf);
        for (size_t j = 0; j < parts[p].len; j++) {
            char ch = parts[p].p[j];
            if (ch == '"') fputs("\"\"", d->kf);
            else if (ch == '\n' || ch == '\r') fputc(' ', d->kf);
            else fputc(ch, d->kf);
        }
    }
    fputs("\"\n", d->kf);
    d->krows++;
}

/* Write the buffered labelled articles to pending/ and commit their offsets. */
static int cw_kafka_flush(cw_daemon_t *d) {
    char err[512], name[96];
    if (!d->consumer || d->krows == 0) return 0;
    fflush(d->kf);
    snprintf(name, sizeof(name), "kafka-%013" PRId64 ".csv", cw_wall_ms());
    char *path = cw_path_join(d->pending, name);
    int rc = cw_file_write_atomic(path, d->kbuf, d->kbuf_len, err, sizeof(err));
    if (rc != 0) {
        cw_log_error(CW_COMP, "writing %s: %s (the articles stay uncommitted and are read again)", path, err);
        cw_free(path);
        return -1;
    }
    cw_log_info(CW_COMP, "%zu labelled article(s) from %s written to %s", d->krows, d->conf->labelled_topic, path);
    cw_free(path);
    pthread_mutex_lock(&d->mu);
    d->st.kafka_examples += d->krows;
    d->st.pending_rows += d->krows;
    pthread_mutex_unlock(&d->mu);
    cw_kafka_buffer_reset(d);
    rd_kafka_resp_err_t e = rd_kafka_commit(d->consumer, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        cw_log_warn(CW_COMP, "commit on %s: %s (the articles may be read again)", d->conf->labelled_topic,
                    rd_kafka_err2str(e));
    return 0;
}

static void cw_kafka_poll(cw_daemon_t *d, int timeout_ms) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(d->consumer, timeout_ms);
    for (int i = 0; m && i < 10000; i++) {
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cw_log_warn(CW_COMP, "consumer: %s", rd_kafka_message_errstr(m));
        } else {
            cw_kafka_take(d, m);
        }
        rd_kafka_message_destroy(m);
        m = rd_kafka_consumer_poll(d->consumer, 0);
    }
    if (m) rd_kafka_message_destroy(m);
    if (d->krows >= CW_KAFKA_FLUSH_ROWS || (d->krows && cw_now_s() - d->kfirst >= CW_KAFKA_FLUSH_S))
        cw_kafka_flush(d);
}

static void cw_pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* Announce version as current on the control topic (schemas/README.md). */
static void cw_announce(cw_daemon_t *d, int64_t version, int64_t previous, double acc) {
    const cw_daemon_conf_t *c = d->conf;
    if (!d->producer) return;
    char err[256], sum[32] = "";
    char *path = cw_registry_path(c->registry, c->model, version, "model.cwm");
    char *data = NULL;
    size_t len = 0;
    if (cw_file_read_all(path, &data, &len, err, sizeof(err)) == 0)
        snprintf(sum, sizeof(sum), "crc32c:%08x", cw_crc32c(0, data, len));
    cw_free(data);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 10);
    cw_pack_str(&pk, "type");
    cw_pack_str(&pk, "model.current");
    cw_pack_str(&pk, "schema");
    msgpack_pack_int(&pk, 1);
    cw_pack_str(&pk, "model");
    cw_pack_str(&pk, c->model);
    cw_pack_str(&pk, "version");
    msgpack_pack_int64(&pk, version);
    cw_pack_str(&pk, "previous");
    if (previous > 0) msgpack_pack_int64(&pk, previous);
    else msgpack_pack_nil(&pk);
    cw_pack_str(&pk, "path");
    cw_pack_str(&pk, path);
    cw_pack_str(&pk, "checksum");
    cw_pack_str(&pk, sum);
    cw_pack_str(&pk, "holdout_accuracy");
    msgpack_pack_double(&pk, acc);
    cw_pack_str(&pk, "source");
    cw_pack_str(&pk, "catwire-trainer");
    cw_pack_str(&pk, "at");
    msgpack_pack_int64(&pk, cw_wall_ms());
    int64_t before = atomic_load(&d->ctl_acked);
    rd_kafka_resp_err_t e = rd_kafka_produce(d->ctl_rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, sb.data,
                                             sb.size, c->model, strlen(c->model), NULL);
    if (e) {
        cw_log_error(CW_COMP, "announcing %s@%" PRId64 " on %s: %s", c->model, version, c->control_topic,
                     rd_kafka_err2str(e));
    } else {
        rd_kafka_flush(d->producer, 10000);
        if (atomic_load(&d->ctl_acked) > before) {
            cw_stat_add(d, &d->st.announced, 1);
            cw_log_info(CW_COMP, "announced %s@%" PRId64 " on %s", c->model, version, c->control_topic);
        } else {
            cw_log_error(CW_COMP, "announcement of %s@%" PRId64 " on %s not acknowledged (workers will still "
                         "see it in the registry)", c->model, version, c->control_topic);
        }
    }
    msgpack_sbuffer_destroy(&sb);
    cw_free(path);
}

/* ---------- spool ---------- */

/* Refuse a spool file: move it to failed/ with NAME.reason beside it. */
static void cw_spool_fail(cw_daemon_t *d, const char *name, const char *why) {
    char err[512];
    char *from = cw_path_join(d->conf->spool_dir, name), *to = cw_path_join(d->failed, name);
    size_t rn = strlen(to) + 8;
    char *reason_path = cw_malloc(rn);
    snprintf(reason_path, rn, "%s.reason", to);
    cw_log_error(CW_COMP, "refusing spool file %s: %s (moved to %s)", name, why, d->failed);
    char text[1024];
    int tn = snprintf(text, sizeof(text), "%s\n", why);
    if (cw_file_write_atomic(reason_path, text, (size_t)(tn < (int)sizeof(text) ? tn : (int)sizeof(text) - 1), err,
                             sizeof(err)) != 0)
        cw_log_error(CW_COMP, "%s", err);
    if (cw_move(from, to, err, sizeof(err)) != 0) cw_log_error(CW_COMP, "%s", err);
    cw_stat_add(d, &d->st.files_failed, 1);
    cw_free(reason_path);
    cw_free(from);
    cw_free(to);
}

int cw_daemon_scan_spool(cw_daemon_t *d, char *errstr, size_t errstr_size) {
    char **names = NULL;
    size_t n = 0;
    int taken = 0;
    if (cw_list_csv(d->conf->spool_dir, &names, &n, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < n && !atomic_load(&d->stop); i++) {
        char err[768], pname[600];
        char *src = cw_path_join(d->conf->spool_dir, names[i]);
        char *buf = NULL;
        size_t len = 0, rows = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) abort();
        int ok = cw_normalize(d, src, f, &rows, err, sizeof(err)) == 0;
        fclose(f);
        if (!ok) {
            cw_spool_fail(d, names[i], err);
        } else {
            snprintf(pname, sizeof(pname), "spool-%013" PRId64 "-%s", cw_wall_ms(), names[i]);
            char *dst = cw_path_join(d->pending, pname), *done = cw_path_join(d->done, names[i]);
            if (cw_file_write_atomic(dst, buf, len, err, sizeof(err)) != 0 ||
                cw_move(src, done, err, sizeof(err)) != 0) {
                cw_log_error(CW_COMP, "taking spool file %s: %s", names[i], err);
            } else {
                cw_log_info(CW_COMP, "took spool file %s: %zu example(s) -> %s", names[i], rows, dst);
                pthread_mutex_lock(&d->mu);
                d->st.files_taken++;
                d->st.pending_rows += rows;
                pthread_mutex_unlock(&d->mu);
                taken++;
            }
            cw_free(dst);
            cw_free(done);
        }
        free(buf);
        cw_free(src);
    }
    cw_names_free(names, n);
    return taken;
}

/* ---------- retraining ---------- */

/* Append every file of dir (sorted) to out; *rows counts lines. */
static int cw_append_dir(const char *dir, FILE *out, char ***names, size_t *nnames, size_t *rows, char *errstr,
                         size_t errstr_size) {
    if (cw_list_csv(dir, names, nnames, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < *nnames; i++) {
        char *path = cw_path_join(dir, (*names)[i]), *data = NULL;
        size_t len = 0;
        int rc = cw_file_read_all(path, &data, &len, errstr, errstr_size);
        cw_free(path);
        if (rc != 0) return -1;
        fwrite(data, 1, len, out);
        for (size_t j = 0; j < len; j++) *rows += data[j] == '\n';
        cw_free(data);
    }
    return 0;
}

static void cw_settle_files(cw_daemon_t *d, char **names, size_t n, int accepted, int64_t version,
                            const char *reason) {
    char err[512];
    for (size_t i = 0; i < n; i++) {
        char *from = cw_path_join(d->pending, names[i]);
        char *to = cw_path_join(accepted ? d->accepted : d->rejected, names[i]);
        if (cw_move(from, to, err, sizeof(err)) != 0) cw_log_error(CW_COMP, "%s", err);
        if (!accepted) {
            size_t rn = strlen(to) + 8;
            char *rp = cw_malloc(rn), text[1024];
            snprintf(rp, rn, "%s.reason", to);
            int tn = snprintf(text, sizeof(text), "version %" PRId64 " trained with this data was stopped by the "
                              "quality gate: %s\n", version, reason);
            if (cw_file_write_atomic(rp, text, (size_t)(tn < (int)sizeof(text) ? tn : (int)sizeof(text) - 1), err,
                                     sizeof(err)) != 0)
                cw_log_error(CW_COMP, "%s", err);
            cw_free(rp);
        }
        cw_free(from);
        cw_free(to);
    }
    cw_fsync_dir(d->pending, err, sizeof(err));
    cw_fsync_dir(accepted ? d->accepted : d->rejected, err, sizeof(err));
}

static char *cw_meta(cw_daemon_t *d, const cw_train_opts_t *o, const cw_train_result_t *res,
                     const cw_dataset_t *ds, const char *trigger, double acc, double loss, int passed,
                     const char *reason, int64_t cur, double cur_acc, char **pnames, size_t npending,
                     size_t pending_rows) {
    const cw_daemon_conf_t *c = d->conf;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) abort();
    const cw_model_t *m = res->model;
    fprintf(f, "{\"recipe\":");
    cw_json_put(f, o->recipe);
    fprintf(f, ",\"trainer\":\"catwire-trainer run\",\"trigger\":");
    cw_json_put(f, trigger);
    fprintf(f, ",\"hyperparameters\":{\"dim\":%u,\"epochs\":%u,\"chosen_epochs\":%u,\"lr\":%g,\"ngram\":%u,"
               "\"nbuckets\":%u,\"threads\":%u,\"seed\":%" PRIu64 "}",
            m->dim, o->epochs, res->best_epoch, (double)o->lr, m->ngram, m->nbuckets, res->threads, o->seed);
    fprintf(f, ",\"metrics\":{\"holdout_accuracy\":%.6f,\"holdout_loss\":%.6f,\"valid_accuracy\":%.6f,"
               "\"train_seconds\":%.3f}", acc, loss, res->best_valid_acc, res->seconds);
    fprintf(f, ",\"holdout_accuracy\":%.6f", acc);
    fprintf(f, ",\"data\":{\"base\":");
    cw_json_put(f, *c->base_train ? c->base_train : "");
    fprintf(f, ",\"holdout\":");
    cw_json_put(f, c->holdout);
    fprintf(f, ",\"rows\":%zu,\"fnv1a64\":\"%016" PRIx64 "\",\"new_rows\":%zu,\"new_files\":[", ds->n,
            ds->fingerprint, pending_rows);
    for (size_t i = 0; i < npending; i++) {
        if (i) fputc(',', f);
        cw_json_put(f, pnames[i]);
    }
    fprintf(f, "]},\"gate\":{\"passed\":%s,\"reason\":", passed ? "true" : "false");
    cw_json_put(f, reason);
    if (cur > 0) fprintf(f, ",\"current_version\":%" PRId64 ",\"current_holdout_accuracy\":%.6f", cur, cur_acc);
    else fprintf(f, ",\"current_version\":null,\"current_holdout_accuracy\":null");
    fprintf(f, ",\"max_accuracy_drop\":%g},\"labels\":[", c->max_accuracy_drop);
    for (uint32_t i = 0; i < m->nlabels; i++) {
        if (i) fputc(',', f);
        cw_json_put(f, m->labels[i]);
    }
    fprintf(f, "],\"vocab_size\":%zu}", cw_vocab_size(m->vocab));
    fclose(f);
    return buf;
}

int cw_daemon_retrain(cw_daemon_t *d, const char *trigger, cw_daemon_outcome_t *out, char *errstr,
                      size_t errstr_size) {
    const cw_daemon_conf_t *c = d->conf;
    int rc = -1;
    char err[1024];
    char **anames = NULL, **pnames = NULL;
    size_t nacc = 0, npend = 0, rows = 0, prow = 0;
    char *combined = cw_path_join(d->state, ".train-combined.csv"), *meta = NULL;
    cw_dataset_t *ds = NULL;
    cw_model_t *cur_model = NULL;
    cw_train_result_t res;
    memset(&res, 0, sizeof(res));
    memset(out, 0, sizeof(*out));
    out->current_acc = -1;
    double t0 = cw_now_s();

    cw_kafka_flush(d);
    /* base + accepted + pending, in that order, into one normalised file */
    FILE *f = fopen(combined, "wb");
    if (!f) {
        cw_seterr(errstr, errstr_size, "%s: %s", combined, strerror(errno));
        goto done;
    }
    int ok = 1;
    if (d->base_norm) {
        char *data = NULL;
        size_t len = 0;
        ok = cw_file_read_all(d->base_norm, &data, &len, errstr, errstr_size) == 0;
        if (ok) {
            fwrite(data, 1, len, f);
            for (size_t j = 0; j < len; j++) rows += data[j] == '\n';
        }
        cw_free(data);
    }
    ok = ok && cw_append_dir(d->accepted, f, &anames, &nacc, &rows, errstr, errstr_size) == 0;
    size_t before_pending = rows;
    ok = ok && cw_append_dir(d->pending, f, &pnames, &npend, &rows, errstr, errstr_size) == 0;
    prow = rows - before_pending;
    if (fclose(f) != 0 && ok) {
        cw_seterr(errstr, errstr_size, "%s: %s", combined, strerror(errno));
        ok = 0;
    }
    if (!ok) goto done;
    if (rows == 0) {
        cw_seterr(errstr, errstr_size, "no training data (no base_train, nothing accepted or pending)");
        goto done;
    }
    cw_dataset_opts_t dopt = {.labels = (const char *const *)d->labels, .nlabels = d->nlabels};
    ds = cw_dataset_load(combined, &dopt, errstr, errstr_size);
    if (!ds) goto done;

    cw_train_opts_t o;
    if (cw_train_opts_init(&o, c->recipe, errstr, errstr_size) != 0) goto done;
    if (c->dim) o.dim = (uint32_t)c->dim;
    if (c->epochs) o.epochs = (uint32_t)c->epochs;
    if (c->ngram) o.ngram = (uint32_t)c->ngram;
    if (c->threads) o.threads = (uint32_t)c->threads;
    o.seed = (uint64_t)c->seed;
    cw_log_info(CW_COMP, "retraining (%s): %zu rows (%zu new in %zu file(s)), recipe %s", trigger, ds->n, prow, npend,
                o.recipe);
    if (cw_train(ds, &o, &res, errstr, errstr_size) != 0) goto done;

    double acc = 0, loss = 0;
    if (cw_train_evaluate(res.model, d->holdout, (uint32_t)c->threads, &acc, &loss, NULL, errstr, errstr_size) != 0)
        goto done;

    /* The current version, scored on the same rows now. */
    int64_t cur = cw_registry_current(c->registry, c->model, err, sizeof(err));
    if (cur < 0) cur = 0;   /* no model directory yet */
    double cur_acc = -1;
    int has_current = 0, passed;
    char reason[512];
    if (cur > 0) {
        char ref[300];
        snprintf(ref, sizeof(ref), "%s@%" PRId64, c->model, cur);
        cur_model = cw_registry_load(c->registry, ref, NULL, err, sizeof(err));
        if (!cur_model) {
            cw_log_warn(CW_COMP, "current version %" PRId64 " does not load (%s): the gate has nothing to compare "
                        "with", cur, err);
        } else {
            int same = cur_model->nlabels == d->nlabels;
            for (uint32_t i = 0; same && i < d->nlabels; i++) same = !strcmp(cur_model->labels[i], d->labels[i]);
            if (!same) {
                cw_seterr(errstr, errstr_size, "the current version %" PRId64 " has another label set; not "
                          "training over it", cur);
                goto done;
            }
            double cl;
            if (cw_train_evaluate(cur_model, d->holdout, (uint32_t)c->threads, &cur_acc, &cl, NULL, errstr,
                                  errstr_size) != 0)
                goto done;
            has_current = 1;
        }
    }
    passed = cw_daemon_gate(acc, has_current, cur, cur_acc, c->max_accuracy_drop, reason, sizeof(reason));
    if (!has_current && cur > 0)
        cw_seterr(reason, sizeof(reason), "current version %" PRId64 " does not load: holdout accuracy %.4f, "
                  "becomes current", cur, acc);

    meta = cw_meta(d, &o, &res, ds, trigger, acc, loss, passed, reason, has_current ? cur : 0, cur_acc, pnames,
                   npend, prow);
    int64_t v = cw_registry_publish(c->registry, c->model, res.model, meta, errstr, errstr_size);
    if (v < 0) goto done;
    out->version = v;
    out->previous = cur;
    out->holdout_acc = acc;
    out->current_acc = cur_acc;
    out->train_rows = ds->n;
    out->pending_rows = prow;
    snprintf(out->reason, sizeof(out->reason), "%s", reason);
    if (passed) {
        if (cw_registry_set_current(c->registry, c->model, v, errstr, errstr_size) != 0) goto done;
        out->promoted = 1;
        cw_log_info(CW_COMP, "%s@%" PRId64 " is current: %s", c->model, v, reason);
        cw_announce(d, v, cur, acc);
    } else {
        cw_log_warn(CW_COMP, "%s@%" PRId64 " stopped by the quality gate: %s", c->model, v, reason);
    }
    cw_settle_files(d, pnames, npend, passed, v, reason);
    pthread_mutex_lock(&d->mu);
    d->st.trainings++;
    if (passed) d->st.promoted++;
    else d->st.stopped++;
    d->st.pending_rows = d->st.pending_rows > prow ? d->st.pending_rows - prow : 0;
    pthread_mutex_unlock(&d->mu);
    out->seconds = cw_now_s() - t0;
    rc = 0;
done:
    unlink(combined);
    d->last_train = cw_now_s();
    free(meta);
    cw_model_destroy(cur_model);
    cw_train_result_free(&res);
    cw_dataset_destroy(ds);
    cw_names_free(anames, nacc);
    cw_names_free(pnames, npend);
    cw_free(combined);
    return rc;
}

/* ---------- life cycle ---------- */

/* Labels: configured, else the current version's, else discovered from base_train. */
static int cw_settle_labels(cw_daemon_t *d, char *errstr, size_t errstr_size) {
    const cw_daemon_conf_t *c = d->conf;
    char err[512];
    cw_model_t *m = NULL;
    int64_t cur = cw_registry_current(c->registry, c->model, err, sizeof(err));
    if (cur > 0) {
        char ref[300];
        snprintf(ref, sizeof(ref), "%s@%" PRId64, c->model, cur);
        m = cw_registry_load(c->registry, ref, NULL, err, sizeof(err));
        if (!m) cw_log_warn(CW_COMP, "current version %" PRId64 " does not load: %s", cur, err);
    }
    int rc = -1;
    if (*c->labels) {
        int n = cw_labels_parse(c->labels, &d->labels, errstr, errstr_size);
        if (n < 0) goto done;
        d->nlabels = (uint32_t)n;
        if (m) {
            int same = m->nlabels == d->nlabels;
            for (uint32_t i = 0; same && i < d->nlabels; i++) same = !strcmp(m->labels[i], d->labels[i]);
            if (!same) {
                cw_seterr(errstr, errstr_size, "labels '%s' differ from those of the current version %" PRId64
                          " (workers refuse a label change)", c->labels, cur);
                goto done;
            }
        }
    } else if (m) {
        d->nlabels = m->nlabels;
        d->labels = cw_calloc(m->nlabels, sizeof(char *));
        for (uint32_t i = 0; i < m->nlabels; i++) d->labels[i] = cw_strdup(m->labels[i]);
    } else if (*c->base_train) {
        cw_dataset_t *ds = cw_dataset_load(c->base_train, NULL, errstr, errstr_size);
        if (!ds) goto done;
        d->nlabels = ds->nlabels;
        d->labels = cw_calloc(ds->nlabels, sizeof(char *));
        for (uint32_t i = 0; i < ds->nlabels; i++) d->labels[i] = cw_strdup(ds->label_names[i]);
        cw_dataset_destroy(ds);
    } else {
        cw_seterr(errstr, errstr_size, "no label set: set 'labels', 'base_train', or publish a current version");
        goto done;
    }
    rc = 0;
done:
    cw_model_destroy(m);
    return rc;
}

cw_daemon_t *cw_daemon_new(const cw_daemon_conf_t *conf, char *errstr, size_t errstr_size) {
    cw_daemon_t *d = cw_calloc(1, sizeof(*d));
    char err[512];
    rd_kafka_conf_t *rc = NULL;
    d->conf = conf;
    pthread_mutex_init(&d->mu, NULL);
    if (cw_daemon_conf_check(conf, errstr, errstr_size) != 0) goto fail;
    d->state = *conf->state_dir ? cw_strdup(conf->state_dir) : cw_path_join(conf->spool_dir, "state");
    d->pending = cw_path_join(d->state, "pending");
    d->accepted = cw_path_join(d->state, "accepted");
    d->rejected = cw_path_join(d->state, "rejected");
    d->done = cw_path_join(conf->spool_dir, "done");
    d->failed = cw_path_join(conf->spool_dir, "failed");
    const char *dirs[] = {conf->spool_dir, d->pending, d->accepted, d->rejected, d->done, d->failed, conf->registry};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (cw_mkdir_p(dirs[i], errstr, errstr_size) != 0) goto fail;
    if (cw_settle_labels(d, errstr, errstr_size) != 0) goto fail;

    cw_dataset_opts_t dopt = {.labels = (const char *const *)d->labels, .nlabels = d->nlabels};
    d->holdout = cw_dataset_load(conf->holdout, &dopt, err, sizeof(err));
    if (!d->holdout) {
        cw_seterr(errstr, errstr_size, "holdout: %s", err);
        goto fail;
    }
    if (*conf->base_train) {
        char *buf = NULL;
        size_t len = 0, rows = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) abort();
        int ok = cw_normalize(d, conf->base_train, f, &rows, err, sizeof(err)) == 0;
        fclose(f);
        d->base_norm = cw_path_join(d->state, "base.csv");
        if (ok) ok = cw_file_write_atomic(d->base_norm, buf, len, err, sizeof(err)) == 0;
        free(buf);
        if (!ok) {
            cw_seterr(errstr, errstr_size, "base_train: %s", err);
            goto fail;
        }
    }
    /* What earlier runs left pending. */
    char **names = NULL;
    size_t n = 0;
    if (cw_list_csv(d->pending, &names, &n, errstr, errstr_size) != 0) goto fail;
    for (size_t i = 0; i < n; i++) {
        char *p = cw_path_join(d->pending, names[i]);
        d->st.pending_rows += cw_count_rows(p);
        cw_free(p);
    }
    cw_names_free(names, n);
    cw_kafka_buffer_reset(d);

    if (*conf->brokers && *conf->labelled_topic) {
        if (!(rc = cw_daemon_rdconf(d, 1, errstr, errstr_size))) goto fail;
        d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, rc, err, sizeof(err));
        if (!d->consumer) {
            cw_seterr(errstr, errstr_size, "creating the consumer: %s", err);
            goto fail;
        }
        rc = NULL;
        rd_kafka_poll_set_consumer(d->consumer);
        rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(t, conf->labelled_topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(d->consumer, t);
        rd_kafka_topic_partition_list_destroy(t);
        if (e) {
            cw_seterr(errstr, errstr_size, "subscribing to %s: %s", conf->labelled_topic, rd_kafka_err2str(e));
            goto fail;
        }
    }
    if (*conf->brokers && *conf->control_topic) {
        if (!(rc = cw_daemon_rdconf(d, 0, errstr, errstr_size))) goto fail;
        d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, rc, err, sizeof(err));
        if (!d->producer) {
            cw_seterr(errstr, errstr_size, "creating the producer: %s", err);
            goto fail;
        }
        rc = NULL;
        d->ctl_rkt = rd_kafka_topic_new(d->producer, conf->control_topic, NULL);
    }
    char lab[256] = "";
    size_t u = 0;
    for (uint32_t i = 0; i < d->nlabels && u < sizeof(lab); i++)
        u += (size_t)snprintf(lab + u, sizeof(lab) - u, "%s%s", i ? "," : "", d->labels[i]);
    cw_log_info(CW_COMP, "trainer daemon: model %s in %s, spool %s, state %s, labels [%s], holdout %s (%zu rows), "
                "%" PRIu64 " example(s) pending%s%s%s%s", conf->model, conf->registry, conf->spool_dir, d->state, lab,
                conf->holdout, d->holdout->n, d->st.pending_rows, d->consumer ? ", labelled articles from " : "",
                d->consumer ? conf->labelled_topic : "", d->producer ? ", announcing on " : "",
                d->producer ? conf->control_topic : "");
    d->last_train = cw_now_s();
    return d;
fail:
    if (rc) rd_kafka_conf_destroy(rc);
    cw_daemon_destroy(d);
    return NULL;
}

void cw_daemon_stop(cw_daemon_t *d) { atomic_store(&d->stop, 1); }

void cw_daemon_get_stats(cw_daemon_t *d, cw_daemon_stats_t *st) {
    pthread_mutex_lock(&d->mu);
    *st = d->st;
    pthread_mutex_unlock(&d->mu);
}

int cw_daemon_run(cw_daemon_t *d) {
    const cw_daemon_conf_t *c = d->conf;
    char err[1024];
    double next_scan = 0;
    cw_daemon_outcome_t out;

    if (c->bootstrap) {
        int64_t *vs = NULL;
        size_t nv = 0;
        if (cw_registry_list(c->registry, c->model, &vs, &nv, err, sizeof(err)) != 0) nv = 0;
        cw_free(vs);
        if (nv == 0 && cw_daemon_retrain(d, "bootstrap", &out, err, sizeof(err)) != 0) {
            cw_log_error(CW_COMP, "bootstrap training failed: %s", err);
            d->retry_at = cw_now_s() + CW_RETRY_S;
        }
    }
    while (!atomic_load(&d->stop)) {
        double now = cw_now_s();
        if (now >= next_scan) {
            if (cw_daemon_scan_spool(d, err, sizeof(err)) < 0) cw_log_error(CW_COMP, "spool: %s", err);
            next_scan = cw_now_s() + (double)c->spool_poll_ms / 1e3;
        }
        if (d->consumer) {
            cw_kafka_poll(d, 100);
        } else {
            double left = next_scan - cw_now_s();
            if (left > 0.1) left = 0.1;
            if (left > 0) usleep((useconds_t)(left * 1e6));
        }
        if (atomic_load(&d->stop)) break;
        cw_daemon_stats_t st;
        cw_daemon_get_stats(d, &st);
        uint64_t pending = st.pending_rows + d->krows;
        now = cw_now_s();
        const char *trigger = NULL;
        if (pending >= (uint64_t)c->min_new_examples) trigger = "min_new_examples";
        else if (c->retrain_interval_s > 0 && pending > 0 && now - d->last_train >= (double)c->retrain_interval_s)
            trigger = "schedule";
        if (trigger && now >= d->retry_at) {
            if (cw_daemon_retrain(d, trigger, &out, err, sizeof(err)) != 0) {
                cw_log_error(CW_COMP, "retraining failed: %s (next attempt in %.0f s)", err, CW_RETRY_S);
                d->retry_at = cw_now_s() + CW_RETRY_S;
            } else {
                cw_log_info(CW_COMP, "retraining done in %.1f s: v%" PRId64 " %s (holdout %.4f)", out.seconds,
                            out.version, out.promoted ? "current" : "candidate", out.holdout_acc);
            }
        }
    }
    cw_log_info(CW_COMP, "stopping");
    cw_kafka_flush(d);
    if (d->consumer) {
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(d->consumer);
        if (e) cw_log_warn(CW_COMP, "closing the consumer: %s", rd_kafka_err2str(e));
    }
    if (d->producer) rd_kafka_flush(d->producer, 5000);
    return 0;
}

void cw_daemon_destroy(cw_daemon_t *d) {
    if (!d) return;
    if (d->consumer) rd_kafka_destroy(d->consumer);
    if (d->ctl_rkt) rd_kafka_topic_destroy(d->ctl_rkt);
    if (d->producer) rd_kafka_destroy(d->producer);
    if (d->kf) fclose(d->kf);
    free(d->kbuf);
    cw_dataset_destroy(d->holdout);
    cw_labels_free(d->labels, d->nlabels);
    cw_free(d->base_norm);
    cw_free(d->state);
    cw_free(d->pending);
    cw_free(d->accepted);
    cw_free(d->rejected);
    cw_free(d->done);
    cw_free(d->failed);
    pthread_mutex_destroy(&d->mu);
    cw_free(d);
}

/* ---------- catwire-trainer run ---------- */

/* The one piece of process state a signal handler may reach. */
static cw_daemon_t *volatile cw_the_daemon;
static volatile sig_atomic_t cw_daemon_stop_requested;

static void cw_daemon_on_signal(int sig) {
    (void)sig;
    cw_daemon_stop_requested = 1;
    cw_daemon_t *d = cw_the_daemon;
    if (d) cw_daemon_stop(d);
}

static void cw_daemon_usage(FILE *f) {
    fputs("usage: catwire-trainer run --config FILE [--check-config] [--dump-config] [--help]\n"
          "\n"
          "The trainer daemon: takes labelled CSV files dropped into the spool directory and\n"
          "labelled articles from Kafka, retrains when enough new examples arrived (or on a\n"
          "schedule), scores the new version against the current one on a held-out file and\n"
          "makes it current only when it is not worse by more than max_accuracy_drop, then\n"
          "announces it on the control topic (see deploy/trainer.conf for every setting).\n"
          "\n"
          "  --config FILE    libconfig file (required)\n"
          "  --check-config   validate the file and exit (0 when valid)\n"
          "  --dump-config    print the effective configuration with comments and exit\n"
          "  --help           this text\n"
          "\n"
          "SIGTERM or SIGINT: finish the current step, write buffered articles, commit, exit 0.\n", f);
}

int cw_daemon_main(int argc, char **argv) {
    const char *path = NULL;
    int check = 0, dump = 0, rc = 2;
    cw_daemon_conf_t conf;
    cw_daemon_t *d = NULL;
    char err[1024];
    cw_daemon_conf_defaults(&conf);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
        else if (!strcmp(argv[i], "--check-config")) check = 1;
        else if (!strcmp(argv[i], "--dump-config")) dump = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cw_daemon_usage(stdout);
            rc = 0;
            goto done;
        } else {
            fprintf(stderr, "catwire-trainer run: unknown argument '%s'\n", argv[i]);
            cw_daemon_usage(stderr);
            goto done;
        }
    }
    if (!path && !dump) {
        fprintf(stderr, "catwire-trainer run: --config FILE is required\n");
        cw_daemon_usage(stderr);
        goto done;
    }
    if (path && cw_daemon_conf_load(&conf, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire-trainer run: %s\n", err);
        goto done;
    }
    if (dump) {
        cw_daemon_conf_dump(&conf, stdout);
        rc = 0;
        goto done;
    }
    if (check) {
        printf("%s: ok\n", path);
        rc = 0;
        goto done;
    }
    cw_log_set_level((cw_log_level_t)cw_log_level_parse(conf.log_level));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cw_daemon_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    d = cw_daemon_new(&conf, err, sizeof(err));
    if (!d) {
        cw_log_error(CW_COMP, "%s", err);
        rc = 1;
        goto done;
    }
    cw_the_daemon = d;
    if (cw_daemon_stop_requested) cw_daemon_stop(d);
    rc = cw_daemon_run(d) == 0 ? 0 : 1;
    cw_the_daemon = NULL;
done:
    cw_daemon_destroy(d);
    cw_daemon_conf_free(&conf);
    return rc;
}
