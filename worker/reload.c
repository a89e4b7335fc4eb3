/* reload.c: the worker's hot reload thread (see reload.h for the contract).
 *
 * One thread owns everything here: the control-topic consumer, the registry
 * look-ups, loading and validating. Loading happens off the serving thread
 * on purpose: a checkpoint read and a full scan of the weights take tens of
 * milliseconds to seconds, and the engine must not stall for them; the
 * engine only swaps a pointer between two batches (worker.c).
 *
 * Only the stop/wake flags and the statistics are shared with other threads
 * (one mutex and a condition variable). */
#include "reload.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "classify.h"
#include "log.h"
#include "mpread.h"
#include "registry.h"
#include "util.h"

#define CW_COMP "reload"
/* How long the thread blocks in one wait, so stop and wake are prompt. */
#define CW_RELOAD_SLICE_MS 50
/* Retry period for a control topic that does not exist (yet). */
#define CW_RELOAD_CTL_RETRY_S 5.0
#define CW_CONTROL_MAX_BYTES 65536

struct cw_reload_s {
    char *registry, *model_ref, *name, *fleet, *brokers, *control_topic;
    cw_kv_t *kafka;
    size_t nkafka;
    int64_t fixed_version;      /* "NAME@V": the reloader stays idle */
    int64_t poll_ms;
    int allow_label_change;
    char **labels;
    uint32_t nlabels;
    cw_reload_offer_cb *offer;
    void *opaque;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake;                   /* under mu */
    atomic_int stop;

    rd_kafka_t *ctl;            /* control consumer, NULL when not configured */
    int ctl_assigned;
    double ctl_next_try;

    char last_problem[512];     /* the last resolve error logged (logged once) */
    cw_reload_stats_t st;       /* under mu */
};

/* ---------- validation ---------- */

static int cw_all_finite(const float *x, size_t n) {
    /* Sum of x*0: NaN as soon as any element is NaN or infinite, and the
     * loop vectorises (no early exit). */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
    return acc == 0.0f;
}

static const char *const cw_smoke_texts[] = {
    "",
    "Stocks fell sharply on Wall Street as oil prices climbed to a record high.",
    "The home team won the championship game in overtime last night.",
    "A new software update improves the battery life of smartphones.",
    "Leaders met at the United Nations to discuss the ceasefire.",
    "zzzz qqqq xyzzy",
};
#define CW_NSMOKE (sizeof(cw_smoke_texts) / sizeof(cw_smoke_texts[0]))

int cw_reload_validate(const cw_model_t *m, const char *const *labels, uint32_t nlabels,
                       int allow_label_change, char *errstr, size_t errstr_size) {
    int rc = -1;
    cw_backend_t *be = NULL;
    cw_classifier_t *clf = NULL;
    char err[512];

    if (!m->vocab || !m->labels || !m->emb || !m->fc_w || !m->fc_b) {
        cw_seterr(errstr, errstr_size, "incomplete model (missing vocabulary, labels or weights)");
        goto done;
    }
    if (m->dim == 0 || m->nlabels == 0) {
        cw_seterr(errstr, errstr_size, "bad dimensions: dim %u, %u labels", m->dim, m->nlabels);
        goto done;
    }
    if (m->ngram < 1 || m->ngram > CW_CKPT_MAX_NGRAM || (m->ngram > 1 && m->nbuckets == 0)) {
        cw_seterr(errstr, errstr_size, "bad n-gram settings: order %u with %u buckets", m->ngram,
                  m->nbuckets);
        goto done;
    }
    if (m->nrows != (uint64_t)cw_vocab_size(m->vocab) + m->nbuckets) {
        cw_seterr(errstr, errstr_size,
                  "bad dimensions: %" PRIu64 " embedding rows, expected %zu words + %u buckets",
                  m->nrows, cw_vocab_size(m->vocab), m->nbuckets);
        goto done;
    }
    if (!allow_label_change && labels) {
        int same = m->nlabels == nlabels;
        for (uint32_t i = 0; same && i < nlabels; i++) same = !strcmp(m->labels[i], labels[i]);
        if (!same) {
            char have[256] = "", want[256] = "";
            size_t u = 0;
            for (uint32_t i = 0; i < m->nlabels && u < sizeof(have); i++)
                u += (size_t)snprintf(have + u, sizeof(have) - u, "%s%s", i ? "," : "", m->labels[i]);
            u = 0;
            for (uint32_t i = 0; i < nlabels && u < sizeof(want); i++)
                u += (size_t)snprintf(want + u, sizeof(want) - u, "%s%s", i ? "," : "", labels[i]);
            cw_seterr(errstr, errstr_size,
                      "label set differs: [%s] instead of the serving [%s] "
                      "(allow_label_change = true accepts it)", have, want);
            goto done;
        }
    }
    if (!cw_all_finite(m->fc_w, (size_t)m->nlabels * m->dim) || !cw_all_finite(m->fc_b, m->nlabels) ||
        !cw_all_finite(m->emb, (size_t)m->nrows * m->dim)) {
        cw_seterr(errstr, errstr_size, "weights contain NaN or infinity");
        goto done;
    }

    /* Smoke prediction: the real serving path (tokenize, featurize, forward). */
    be = cw_backend_new("cpu", err, sizeof(err));
    if (!be || cw_backend_upload(be, (cw_model_t *)m, err, sizeof(err)) != 0) {
        cw_seterr(errstr, errstr_size, "smoke prediction: %s", err);
        goto done;
    }
    clf = cw_classifier_new();
    for (size_t i = 0; i < CW_NSMOKE; i++)
        cw_classifier_add(clf, m, cw_smoke_texts[i], strlen(cw_smoke_texts[i]));
    const float *probs = NULL;
    if (cw_classifier_run(clf, be, &probs, err, sizeof(err)) != 0) {
        cw_seterr(errstr, errstr_size, "smoke prediction: %s", err);
        goto done;
    }
    for (size_t i = 0; i < CW_NSMOKE; i++) {
        double sum = 0;
        for (uint32_t k = 0; k < m->nlabels; k++) {
            float p = probs[i * m->nlabels + k];
            if (!isfinite(p) || p < 0.0f || p > 1.0f) {
                cw_seterr(errstr, errstr_size, "smoke prediction: text %zu: probability %g of '%s'",
                          i, (double)p, m->labels[k]);
                goto done;
            }
            sum += p;
        }
        if (fabs(sum - 1.0) > 1e-3) {
            cw_seterr(errstr, errstr_size, "smoke prediction: text %zu: probabilities sum to %g", i, sum);
            goto done;
        }
    }
    rc = 0;
done:
    cw_classifier_destroy(clf);
    cw_backend_destroy(be);
    return rc;
}

cw_model_t *cw_reload_load(const char *path, const char *const *labels, uint32_t nlabels,
                           int allow_label_change, char *errstr, size_t errstr_size) {
    cw_model_t *m = cw_ckpt_read(path, errstr, errstr_size);
    if (!m) return NULL;
    if (cw_reload_validate(m, labels, nlabels, allow_label_change, errstr, errstr_size) != 0) {
        cw_model_destroy(m);
        return NULL;
    }
    return m;
}

/* ---------- control messages ---------- */

int cw_control_decode(const void *buf, size_t len, char *model_buf, size_t model_buf_size,
                      int64_t *version, char *errstr, size_t errstr_size) {
    cw_mp_t r;
    cw_mp_val_t top, key, val;
    int have_model = 0;
    *version = 0;
    if (model_buf_size) model_buf[0] = '\0';
    if (len == 0 || len > CW_CONTROL_MAX_BYTES) {
        cw_seterr(errstr, errstr_size, "control message of %zu bytes", len);
        return -1;
    }
    cw_mp_init(&r, buf, len);
    r.ctx = "control message";
    if (cw_mp_head(&r, &top)) goto fail;
    if (top.type != CW_MP_MAP) {
        cw_seterr(errstr, errstr_size, "control message is %s, expected map",
                  cw_mp_type_name(top.type));
        return -1;
    }
    for (uint32_t i = 0; i < top.n; i++) {
        if (cw_mp_head(&r, &key)) goto fail;
        if (key.type != CW_MP_STR) {
            cw_seterr(errstr, errstr_size, "control message: a key is %s, expected str",
                      cw_mp_type_name(key.type));
            return -1;
        }
        if (cw_mp_head(&r, &val)) goto fail;
        if (key.n == 5 && !memcmp(key.ptr, "model", 5)) {
            if (val.type != CW_MP_STR || val.n == 0 || val.n >= model_buf_size ||
                memchr(val.ptr, '\0', val.n)) {
                cw_seterr(errstr, errstr_size, "control message: bad 'model'");
                return -1;
            }
            memcpy(model_buf, val.ptr, val.n);
            model_buf[val.n] = '\0';
            have_model = 1;
        } else if (key.n == 7 && !memcmp(key.ptr, "version", 7)) {
            if (val.type != CW_MP_UINT || val.u > INT64_MAX) {
                cw_seterr(errstr, errstr_size, "control message: bad 'version'");
                return -1;
            }
            *version = (int64_t)val.u;
        } else if (cw_mp_skip(&r, &val, 2)) {
            goto fail;
        }
    }
    if (cw_mp_left(&r) > 0) {
        cw_seterr(errstr, errstr_size, "control message: %zu trailing bytes", cw_mp_left(&r));
        return -1;
    }
    if (!have_model) {
        cw_seterr(errstr, errstr_size, "control message without 'model'");
        return -1;
    }
    return 0;
fail:
    cw_seterr(errstr, errstr_size, "%s", r.detail);
    return -1;
}

/* ---------- the control consumer ---------- */

static void cw_reload_rdlog_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    cw_log_level_t l = level <= 3 ? CW_LOG_ERROR : level == 4 ? CW_LOG_WARN
                     : level <= 6 ? CW_LOG_INFO : CW_LOG_DEBUG;
    cw_log(l, "kafka", "%s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static rd_kafka_t *cw_reload_ctl_new(cw_reload_t *r, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    char err[512], group[160];
    for (size_t i = 0; i < r->nkafka; i++) {
        if (rd_kafka_conf_set(rc, r->kafka[i].key, r->kafka[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            cw_seterr(errstr, errstr_size, "control consumer: %s", err);
            goto fail;
        }
    }
    /* A group id of its own that is never joined: the partitions are
     * assigned by hand, so this consumer takes part in no rebalance. */
    snprintf(group, sizeof(group), "catwire-reload-%d-%" PRIx64, (int)getpid(),
             (uint64_t)cw_wall_ms() ^ (uint64_t)(uintptr_t)r);
    const char *props[][2] = {
        {"bootstrap.servers", r->brokers},  {"group.id", group},
        {"enable.auto.commit", "false"},    {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "false"},  {"auto.offset.reset", "latest"},
        {"client.id", "catwire-reload"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(rc, props[i][0], props[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            cw_seterr(errstr, errstr_size, "control consumer: %s", err);
            goto fail;
        }
    }
    rd_kafka_conf_set_log_cb(rc, cw_reload_rdlog_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, err, sizeof(err));
    if (!rk) {
        cw_seterr(errstr, errstr_size, "control consumer: %s", err);
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(rc);
    return NULL;
}

/* Assign every partition of the control topic at its end. 0 when assigned. */
static int cw_reload_ctl_assign(cw_reload_t *r) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->ctl, r->control_topic, NULL);
    int rc = -1;
    rd_kafka_resp_err_t e = rd_kafka_metadata(r->ctl, 0, rkt, &md, 2000);
    if (e) {
        cw_log_debug(CW_COMP, "control topic %s: metadata: %s", r->control_topic, rd_kafka_err2str(e));
        goto done;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        cw_log_debug(CW_COMP, "control topic %s: %s", r->control_topic,
                     md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                                                              : "no partitions");
        goto done;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, r->control_topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_END;
    e = rd_kafka_assign(r->ctl, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        cw_log_warn(CW_COMP, "control topic %s: assign: %s", r->control_topic, rd_kafka_err2str(e));
        goto done;
    }
    cw_log_info(CW_COMP, "listening for announcements on %s (%d partitions)", r->control_topic,
                md->topics[0].partition_cnt);
    rc = 0;
done:
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* Handle one control message: 1 when it names our model. */
static int cw_reload_ctl_message(cw_reload_t *r, const rd_kafka_message_t *m) {
    char model[256], err[256];
    int64_t v;
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            cw_log_warn(CW_COMP, "control topic: %s", rd_kafka_message_errstr(m));
        return 0;
    }
    if (cw_control_decode(m->payload, m->len, model, sizeof(model), &v, err, sizeof(err)) != 0) {
        cw_log_warn(CW_COMP, "control topic %s [%d] at offset %" PRId64 ": ignored: %s",
                    r->control_topic, (int)m->partition, m->offset, err);
        return 0;
    }
    if (strcmp(model, r->name) != 0) return 0;
    cw_log_debug(CW_COMP, "announcement: %s@%" PRId64, model, v);
    pthread_mutex_lock(&r->mu);
    r->st.announcements++;
    pthread_mutex_unlock(&r->mu);
    return 1;
}

/* ---------- the check ---------- */

static void cw_reload_check(cw_reload_t *r) {
    char err[512];
    char *path = NULL;
    int64_t v = 0;
    int pinned = 0;
    pthread_mutex_lock(&r->mu);
    r->st.checks++;
    int64_t serving = r->st.serving_version, refused = r->st.refused_version;
    pthread_mutex_unlock(&r->mu);

    if (cw_registry_resolve_fleet(r->registry, r->name, r->fleet, NULL, &v, &path, &pinned, err,
                                  sizeof(err)) != 0) {
        if (strcmp(err, r->last_problem) != 0) {
            cw_log_warn(CW_COMP, "registry %s: %s (still serving %s@%" PRId64 ")", r->registry, err,
                        r->name, serving);
            snprintf(r->last_problem, sizeof(r->last_problem), "%s", err);
        }
        goto done;
    }
    r->last_problem[0] = '\0';
    if (v == serving) {
        if (refused) {
            pthread_mutex_lock(&r->mu);
            r->st.refused_version = 0;
            pthread_mutex_unlock(&r->mu);
        }
        goto done;
    }
    if (v == refused) goto done;

    double t0 = cw_now_s();
    cw_model_t *m = cw_reload_load(path, (const char *const *)r->labels, r->nlabels,
                                   r->allow_label_change, err, sizeof(err));
    if (!m) {
        cw_log_error(CW_COMP, "refusing %s@%" PRId64 "%s: %s; still serving %s@%" PRId64, r->name, v,
                     pinned ? " (fleet pin)" : "", err, r->name, serving);
        pthread_mutex_lock(&r->mu);
        r->st.refused++;
        r->st.refused_version = v;
        cw_seterr(r->st.last_error, sizeof(r->st.last_error), "%s@%" PRId64 ": %s", r->name, v, err);
        pthread_mutex_unlock(&r->mu);
        goto done;
    }
    cw_log_info(CW_COMP, "%s@%" PRId64 "%s loaded and validated in %.0f ms; handing over (was %" PRId64 ")",
                r->name, v, pinned ? " (fleet pin)" : "", (cw_now_s() - t0) * 1e3, serving);
    r->offer(r->opaque, m, r->name, v);
    pthread_mutex_lock(&r->mu);
    r->st.offered++;
    r->st.serving_version = v;
    r->st.refused_version = 0;
    pthread_mutex_unlock(&r->mu);
done:
    cw_free(path);
}

/* Wait up to ms for a wake-up; returns 1 when woken. */
static int cw_reload_wait(cw_reload_t *r, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->wake && !atomic_load(&r->stop))
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) break;
    int woken = r->wake;
    r->wake = 0;
    pthread_mutex_unlock(&r->mu);
    return woken;
}

static void *cw_reload_main(void *arg) {
    cw_reload_t *r = arg;
    double next_check = 0;
    while (!atomic_load(&r->stop)) {
        double now = cw_now_s();
        int check = now >= next_check;
        if (r->ctl) {
            if (!r->ctl_assigned && now >= r->ctl_next_try) {
                r->ctl_assigned = cw_reload_ctl_assign(r) == 0;
                r->ctl_next_try = cw_now_s() + CW_RELOAD_CTL_RETRY_S;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(r->ctl, check ? 0 : CW_RELOAD_SLICE_MS);
            while (m) {
                check |= cw_reload_ctl_message(r, m);
                rd_kafka_message_destroy(m);
                m = rd_kafka_consumer_poll(r->ctl, 0);
            }
            pthread_mutex_lock(&r->mu);
            check |= r->wake;
            r->wake = 0;
            pthread_mutex_unlock(&r->mu);
        } else if (!check) {
            int64_t left = (int64_t)((next_check - now) * 1e3) + 1;
            check = cw_reload_wait(r, left < CW_RELOAD_SLICE_MS ? left : CW_RELOAD_SLICE_MS);
        }
        if (atomic_load(&r->stop)) break;
        if (check || cw_now_s() >= next_check) {
            cw_reload_check(r);
            next_check = cw_now_s() + (double)r->poll_ms / 1e3;
        }
    }
    return NULL;
}

/* ---------- life cycle ---------- */

cw_reload_t *cw_reload_start(const cw_reload_opts_t *o, char *errstr, size_t errstr_size) {
    if (!o->registry || !*o->registry || !o->model || !*o->model || !o->offer) {
        cw_seterr(errstr, errstr_size, "reload: registry, model and offer callback are required");
        return NULL;
    }
    if (o->poll_ms < 10) {
        cw_seterr(errstr, errstr_size, "reload: poll interval %" PRId64 " ms is under 10 ms", o->poll_ms);
        return NULL;
    }
    cw_reload_t *r = cw_calloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->registry = cw_strdup(o->registry);
    r->model_ref = cw_strdup(o->model);
    const char *at = strchr(o->model, '@');
    r->name = at ? cw_strndup(o->model, (size_t)(at - o->model)) : cw_strdup(o->model);
    if (at) {
        char *end = NULL;
        long long v = strtoll(at + 1, &end, 10);
        if (!at[1] || *end || v <= 0) {
            cw_seterr(errstr, errstr_size, "reload: bad model reference '%s'", o->model);
            goto fail;
        }
        r->fixed_version = v;
    }
    r->fleet = cw_strdup(o->fleet ? o->fleet : "");
    r->brokers = cw_strdup(o->brokers ? o->brokers : "");
    r->control_topic = cw_strdup(o->control_topic ? o->control_topic : "");
    r->poll_ms = o->poll_ms;
    r->allow_label_change = o->allow_label_change;
    r->offer = o->offer;
    r->opaque = o->opaque;
    r->st.serving_version = o->serving_version;
    if (o->labels && o->nlabels) {
        r->labels = cw_calloc(o->nlabels, sizeof(char *));
        r->nlabels = o->nlabels;
        for (uint32_t i = 0; i < o->nlabels; i++) r->labels[i] = cw_strdup(o->labels[i]);
    }
    if (o->nkafka) {
        r->kafka = cw_calloc(o->nkafka, sizeof(*r->kafka));
        r->nkafka = o->nkafka;
        for (size_t i = 0; i < o->nkafka; i++) {
            r->kafka[i].key = cw_strdup(o->kafka[i].key);
            r->kafka[i].value = cw_strdup(o->kafka[i].value);
            r->kafka[i].line = o->kafka[i].line;
        }
    }
    if (r->fixed_version) {
        cw_log_info(CW_COMP, "model reference %s names a version: hot reload is off", o->model);
        return r;
    }
    if (*r->brokers && *r->control_topic) {
        r->ctl = cw_reload_ctl_new(r, errstr, errstr_size);
        if (!r->ctl) goto fail;
    }
    if (pthread_create(&r->thread, NULL, cw_reload_main, r) != 0) {
        cw_seterr(errstr, errstr_size, "reload: cannot start the thread");
        goto fail;
    }
    r->started = 1;
    cw_log_info(CW_COMP, "watching %s/%s%s%s every %" PRId64 " ms%s%s, serving version %" PRId64,
                r->registry, r->name, *r->fleet ? " for fleet " : "", r->fleet, r->poll_ms,
                r->ctl ? ", announcements on " : "", r->ctl ? r->control_topic : "",
                o->serving_version);
    return r;
fail:
    cw_reload_stop(r);
    return NULL;
}

void cw_reload_wake(cw_reload_t *r) {
    pthread_mutex_lock(&r->mu);
    r->wake = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void cw_reload_get_stats(cw_reload_t *r, cw_reload_stats_t *st) {
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    pthread_mutex_unlock(&r->mu);
}

void cw_reload_stop(cw_reload_t *r) {
    if (!r) return;
    if (r->started) {
        atomic_store(&r->stop, 1);
        cw_reload_wake(r);
        pthread_join(r->thread, NULL);
    }
    if (r->ctl) {
        rd_kafka_consumer_close(r->ctl);
        rd_kafka_destroy(r->ctl);
    }
    for (uint32_t i = 0; i < r->nlabels; i++) cw_free(r->labels[i]);
    cw_free(r->labels);
    for (size_t i = 0; i < r->nkafka; i++) {
        cw_free(r->kafka[i].key);
        cw_free(r->kafka[i].value);
    }
    cw_free(r->kafka);
    cw_free(r->registry);
    cw_free(r->model_ref);
    cw_free(r->name);
    cw_free(r->fleet);
    cw_free(r->brokers);
    cw_free(r->control_topic);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    cw_free(r);
}

/* ---------- the worker daemon's reloader ---------- */

static void cw_reload_offer_worker(void *opaque, cw_model_t *m, const char *name, int64_t version) {
    cw_worker_offer_model(opaque, m, name, version);
}

cw_reload_t *cw_reload_start_worker(cw_worker_t *w, const cw_worker_conf_t *conf,
                                    char *errstr, size_t errstr_size) {
    cw_worker_stats_t ws;
    cw_worker_get_stats(w, &ws);
    cw_reload_t *r = NULL;
    char *name = NULL, *path = NULL;
    cw_model_t *m = NULL;
    const char *at = strchr(conf->model, '@');
    name = at ? cw_strndup(conf->model, (size_t)(at - conf->model)) : cw_strdup(conf->model);
    /* The serving version's labels: what every later version must keep. */
    path = cw_registry_path(conf->registry, name, ws.model_version, "model.cwm");
    m = cw_ckpt_read(path, errstr, errstr_size);
    if (!m) goto done;
    cw_reload_opts_t o = {
        .registry = conf->registry,
        .model = conf->model,
        .fleet = conf->fleet,
        .poll_ms = conf->reload_poll_ms,
        .allow_label_change = conf->allow_label_change,
        .serving_version = ws.model_version,
        .labels = (const char *const *)m->labels,
        .nlabels = m->nlabels,
        .brokers = conf->brokers,
        .control_topic = conf->control_topic,
        .kafka = conf->kafka,
        .nkafka = conf->nkafka,
        .offer = cw_reload_offer_worker,
        .opaque = w,
    };
    r = cw_reload_start(&o, errstr, errstr_size);
done:
    cw_model_destroy(m);
    cw_free(path);
    cw_free(name);
    return r;
}
