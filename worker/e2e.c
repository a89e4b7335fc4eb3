/* e2e.c: publish articles while reading results back, and measure; see e2e.h. */
#include "e2e.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_util.h"
#include "log.h"
#include "util.h"

#define E2E_MAX_LABELS 1024
#define E2E_NAME_BUF 256

typedef struct e2e_s {
    const cw_e2e_opts_t *o;
    volatile sig_atomic_t *stop;
    size_t prefix_len;
    double t0;                     /* monotonic s of the first publish */
    _Atomic int64_t *sent_ns;      /* per article: monotonic ns when produced, 0 = not yet */
    uint8_t *answered;             /* consumer thread only */
    float *lat_ms;                 /* consumer thread only, one per first result */
    _Atomic uint64_t published, delivered, delivery_failed, results;
    _Atomic int consumer_done;     /* every article answered, or gave up */
    _Atomic int quit;              /* main thread tells the consumer to stop */
    _Atomic int64_t first_result_ns, last_result_ns;
    /* consumer thread only */
    uint64_t duplicates, dead_letters, foreign, labelled, correct;
    rd_kafka_t *consumer;
    char errstr[256];
    int consumer_failed;
} e2e_t;

static int64_t e2e_now_ns(void) {
    return (int64_t)(cw_now_s() * 1e9);
}

static void e2e_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    e2e_t *e = opaque;
    (void)rk;
    if (m->err) {
        if (!atomic_fetch_add(&e->delivery_failed, 1))
            cw_log_warn("e2e", "delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        atomic_fetch_add(&e->delivered, 1);
    }
}

static void e2e_fill_report(e2e_t *e, cw_e2e_report_t *rep) {
    int64_t last = atomic_load(&e->last_result_ns), first = atomic_load(&e->first_result_ns);
    double from = e->o->drain ? (first ? first / 1e9 : cw_now_s()) : e->t0;
    memset(rep, 0, sizeof(*rep));
    rep->published = atomic_load(&e->published);
    rep->delivered = atomic_load(&e->delivered);
    rep->delivery_failed = atomic_load(&e->delivery_failed);
    rep->results = atomic_load(&e->results);
    rep->duplicates = e->duplicates;
    rep->dead_letters = e->dead_letters;
    rep->foreign = e->foreign;
    rep->labelled = e->labelled;
    rep->correct = e->correct;
    rep->elapsed_s = (rep->results && last ? last / 1e9 : cw_now_s()) - from;
    if (rep->elapsed_s < 0) rep->elapsed_s = 0;
    rep->throughput = rep->elapsed_s > 0 ? (double)rep->results / rep->elapsed_s : 0;
    rep->complete = rep->published == e->o->count && rep->results == e->o->count;
}

/* Parse "<prefix><index>"; -1 when id is not one of this run's. */
static int64_t e2e_index(const e2e_t *e, const char *p, size_t len) {
    uint64_t v = 0;
    if (len <= e->prefix_len || len - e->prefix_len > 19 ||
        memcmp(p, e->o->id_prefix, e->prefix_len))
        return -1;
    for (size_t i = e->prefix_len; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v < e->o->count ? (int64_t)v : -1;
}

static void e2e_on_result(e2e_t *e, const rd_kafka_message_t *m) {
    cw_result_t r;
    float scores[E2E_MAX_LABELS];
    char label[E2E_NAME_BUF], model[E2E_NAME_BUF], worker[E2E_NAME_BUF], why[256];
    int64_t idx, sent, now;
    const cw_e2e_row_t *row;
    double lat;

    if (cw_result_decode(m->payload, m->len, &r, scores, E2E_MAX_LABELS, label, sizeof(label),
                         model, sizeof(model), worker, sizeof(worker), why, sizeof(why))) {
        e->foreign++;
        cw_log_warn("e2e", "undecodable result at %s[%" PRId32 "]@%" PRId64 ": %s",
                    rd_kafka_topic_name(m->rkt), m->partition, m->offset, why);
        return;
    }
    idx = e2e_index(e, r.id.p, r.id.len);
    if (idx < 0 || !(sent = atomic_load(&e->sent_ns[idx]))) {
        e->foreign++;
        return;
    }
    if (e->answered[idx]) {
        e->duplicates++;
        return;
    }
    now = e2e_now_ns();
    e->answered[idx] = 1;
    lat = (double)(now - sent) / 1e6;
    e->lat_ms[atomic_load(&e->results)] = (float)lat;
    if (!atomic_load(&e->results)) atomic_store(&e->first_result_ns, now);
    atomic_store(&e->last_result_ns, now);
    row = &e->o->rows[(uint64_t)idx % e->o->nrows];
    if (row->label >= 0) {
        e->labelled++;
        if (r.label_id == row->label) e->correct++;
    }
    atomic_fetch_add(&e->results, 1);
    if (e->o->on_result) e->o->on_result(e->o->opaque, (uint64_t)idx, row, &r, lat);
}

/* Assign every partition of topic from its current end offset. */
static int e2e_add_partitions(rd_kafka_t *rk, const char *topic,
                              rd_kafka_topic_partition_list_t *parts, char *errstr,
                              size_t errstr_size) {
    int n = cw_kafka_partition_count(rk, topic, 10000, errstr, errstr_size);
    if (n < 0) return -1;
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        double deadline = cw_now_s() + 15;
        rd_kafka_resp_err_t err;
        /* A topic created moments ago may not have its leaders elected yet. */
        while ((err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000)) &&
               (err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || err == RD_KAFKA_RESP_ERR__TIMED_OUT) &&
               cw_now_s() < deadline)
            rd_kafka_poll(rk, 200);
        if (err) {
            cw_seterr(errstr, errstr_size, "offsets of %s[%d]: %s", topic, p, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = hi;
    }
    return 0;
}

/* Wait (10 s at most) until every assigned partition reported its end:
 * then the consumer is connected and fetching, and the first results are
 * not delayed by its start-up, which would count as latency. */
static void e2e_wait_fetching(e2e_t *e, const rd_kafka_topic_partition_list_t *parts) {
    uint8_t *seen = cw_calloc((size_t)parts->cnt + 1, 1);
    int nseen = 0;
    double deadline = cw_now_s() + 10;
    while (nseen < parts->cnt && cw_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, 50);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            for (int i = 0; i < parts->cnt; i++) {
                if (!seen[i] && parts->elems[i].partition == m->partition &&
                    !strcmp(parts->elems[i].topic, rd_kafka_topic_name(m->rkt))) {
                    seen[i] = 1;
                    nseen++;
                    break;
                }
            }
        } else if (m->err) {
            cw_log_warn("e2e", "consume: %s", rd_kafka_message_errstr(m));
        }
        /* nothing of this run was published yet: other messages are old */
        rd_kafka_message_destroy(m);
    }
    if (nseen < parts->cnt)
        cw_log_warn("e2e", "only %d of %d partitions of the result topics answered in 10 s",
                    nseen, parts->cnt);
    cw_free(seen);
}

static int e2e_consumer_new(e2e_t *e, char *errstr, size_t errstr_size) {
    char why[512], gid[64];
    int rc = -1;
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_conf_t *conf = cw_kafka_conf_new(e->o->brokers, errstr, errstr_size);
    if (!conf) goto done;
    snprintf(gid, sizeof(gid), "catwire-e2e-reader-%ld", (long)getpid());
    if (cw_kafka_conf_set(conf, "group.id", gid, errstr, errstr_size) ||
        cw_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        cw_kafka_conf_set(conf, "client.id", "catwire-e2e-reader", errstr, errstr_size) ||
        cw_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
        /* latency is measured at consume time: do not let fetches linger */
        cw_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr, errstr_size))
        goto done;
    e->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!e->consumer) {
        cw_seterr(errstr, errstr_size, "kafka consumer: %s", why);
        goto done;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(e->consumer);
    parts = rd_kafka_topic_partition_list_new(32);
    if (e2e_add_partitions(e->consumer, e->o->output_topic, parts, errstr, errstr_size)) goto done;
    if (e->o->dead_letter_topic &&
        e2e_add_partitions(e->consumer, e->o->dead_letter_topic, parts, errstr, errstr_size))
        goto done;
    err = rd_kafka_assign(e->consumer, parts);
    if (err) {
        cw_seterr(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
        goto done;
    }
    e2e_wait_fetching(e, parts);
    rc = 0;
done:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (conf) rd_kafka_conf_destroy(conf);
    return rc;
}

static void *e2e_consume_main(void *arg) {
    e2e_t *e = arg;
    const cw_e2e_opts_t *o = e->o;
    double interval = o->progress_interval_s > 0 ? o->progress_interval_s : 1.0;
    double next_progress = cw_now_s() + interval;
    uint64_t last_reported = 0;
    while (!atomic_load(&e->quit)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, 50);
        if (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    cw_log_warn("e2e", "consume: %s", rd_kafka_message_errstr(m));
            } else if (o->dead_letter_topic &&
                       !strcmp(rd_kafka_topic_name(m->rkt), o->dead_letter_topic)) {
                e->dead_letters++;
            } else {
                e2e_on_result(e, m);
            }
            rd_kafka_message_destroy(m);
        }
        uint64_t done_now = atomic_load(&e->results);
        int due = cw_now_s() >= next_progress ||
                  (o->progress_every && done_now >= last_reported + o->progress_every);
        if (o->on_progress && due) {
            cw_e2e_report_t rep;
            next_progress = cw_now_s() + interval;
            last_reported = done_now;
            e2e_fill_report(e, &rep);
            o->on_progress(o->opaque, &rep);
        }
        if (atomic_load(&e->results) == o->count) break;
    }
    atomic_store(&e->consumer_done, 1);
    return NULL;
}

static int e2e_producer_new(e2e_t *e, rd_kafka_t **out, char *errstr, size_t errstr_size) {
    char why[512];
    rd_kafka_conf_t *conf = cw_kafka_conf_new(e->o->brokers, errstr, errstr_size);
    if (!conf) return -1;
    if (cw_kafka_conf_set(conf, "linger.ms", "2", errstr, errstr_size) ||
        cw_kafka_conf_set(conf, "client.id", "catwire-e2e-publisher", errstr, errstr_size))
        goto fail;
    for (const char *const *kv = e->o->producer_props; kv && *kv; kv++)
        if (cw_kafka_conf_set_kv(conf, *kv, errstr, errstr_size)) goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, e2e_dr_cb);
    rd_kafka_conf_set_opaque(conf, e);
    *out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!*out) {
        cw_seterr(errstr, errstr_size, "kafka producer: %s", why);
        goto fail;
    }
    return 0;
fail:
    rd_kafka_conf_destroy(conf);
    return -1;
}

static int e2e_cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static int e2e_stopped(const e2e_t *e) {
    return e->stop && *e->stop;
}

int cw_e2e_run(const cw_e2e_opts_t *o, volatile sig_atomic_t *stop, cw_e2e_report_t *rep,
               char *errstr, size_t errstr_size) {
    e2e_t e;
    rd_kafka_t *producer = NULL;
    pthread_t consumer_thread;
    int started = 0, rc = -1;
    uint64_t window = o->window ? o->window : 20000;
    uint64_t refill = o->refill ? (o->refill < window ? o->refill : window) : window / 4;
    int full = 0; /* the window was full: wait for room for a burst of refill */
    double idle = o->idle_timeout_s > 0 ? o->idle_timeout_s : 30.0;
    double last_progress;
    uint64_t last_results = 0;
    char id[64];

    memset(rep, 0, sizeof(*rep));
    memset(&e, 0, sizeof(e));
    if (!o->nrows || !o->count || !o->id_prefix || strlen(o->id_prefix) > 40) {
        cw_seterr(errstr, errstr_size, "e2e: need rows, a count and an id prefix of at most 40 bytes");
        return -1;
    }
    e.o = o;
    e.stop = stop;
    e.prefix_len = strlen(o->id_prefix);
    e.sent_ns = cw_calloc(o->count, sizeof(*e.sent_ns));
    e.answered = cw_calloc(o->count, 1);
    e.lat_ms = cw_calloc(o->count, sizeof(float));
    for (uint64_t i = 0; i < o->count; i++) atomic_init(&e.sent_ns[i], 0);

    if (e2e_consumer_new(&e, errstr, errstr_size)) goto done;
    if (e2e_producer_new(&e, &producer, errstr, errstr_size)) goto done;
    /* Learn the input topic's leaders and connect before the clock starts:
     * a new producer otherwise holds its first messages for about a second. */
    if (cw_kafka_partition_count(producer, o->input_topic, 10000, errstr, errstr_size) < 0)
        goto done;
    e.t0 = cw_now_s();
    if (pthread_create(&consumer_thread, NULL, e2e_consume_main, &e)) {
        cw_seterr(errstr, errstr_size, "e2e: cannot start the consumer thread");
        goto done;
    }
    started = 1;

    last_progress = cw_now_s();
    for (uint64_t i = 0; i < o->count && !e2e_stopped(&e); i++) {
        const cw_e2e_row_t *row = &o->rows[i % o->nrows];
        cw_article_t a;
        void *buf = NULL;
        size_t len = 0;
        rd_kafka_resp_err_t err;
        /* pace: the window, then the rate */
        for (;;) {
            uint64_t res = atomic_load(&e.results);
            double now = cw_now_s();
            int due = o->rate <= 0 || now >= e.t0 + (double)i / o->rate;
            if (res != last_results) {
                last_results = res;
                last_progress = now;
            }
            if (o->drain) break;
            if (i - res >= window) full = 1;
            else if (full && i - res + refill <= window) full = 0;
            if ((!full && due) || e2e_stopped(&e)) break;
            if (now - last_progress > idle) break;
            rd_kafka_poll(producer, 1);
        }
        if (e2e_stopped(&e) || cw_now_s() - last_progress > idle) break;

        memset(&a, 0, sizeof(a));
        a.id.len = (size_t)snprintf(id, sizeof(id), "%s%" PRIu64, o->id_prefix, i);
        a.id.p = id;
        a.title.p = row->title;
        a.title.len = row->title_len;
        a.body.p = row->body;
        a.body.len = row->body_len;
        if (cw_article_encode(&a, &buf, &len)) {
            cw_seterr(errstr, errstr_size, "e2e: cannot encode article %s", id);
            goto done;
        }
        atomic_store(&e.sent_ns[i], e2e_now_ns());
        for (;;) {
            err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(o->input_topic),
                                    RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_KEY(id, a.id.len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
            rd_kafka_poll(producer, 10);
        }
        free(buf);
        if (err) {
            cw_seterr(errstr, errstr_size, "e2e: produce: %s", rd_kafka_err2str(err));
            goto done;
        }
        atomic_fetch_add(&e.published, 1);
        rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 10000);
    if (o->drain && !e2e_stopped(&e)) {
        /* Every article must be in the broker before the worker starts. */
        double deadline = cw_now_s() + 60;
        uint64_t pub = atomic_load(&e.published);
        while (atomic_load(&e.delivered) + atomic_load(&e.delivery_failed) < pub && cw_now_s() < deadline &&
               !e2e_stopped(&e))
            rd_kafka_poll(producer, 50);
        if (atomic_load(&e.delivered) != pub) {
            cw_seterr(errstr, errstr_size, "e2e: drain: %" PRIu64 " of %" PRIu64 " articles acknowledged (%" PRIu64
                      " failed)", atomic_load(&e.delivered), pub, atomic_load(&e.delivery_failed));
            goto done;
        }
        if (o->on_published && o->on_published(o->opaque, errstr, errstr_size)) goto done;
        last_progress = cw_now_s();
    }

    /* Wait for the rest of the results, or until they stop coming. */
    while (!atomic_load(&e.consumer_done) && !e2e_stopped(&e)) {
        uint64_t res = atomic_load(&e.results);
        if (res != last_results) {
            last_results = res;
            last_progress = cw_now_s();
        } else if (cw_now_s() - last_progress > idle) {
            cw_log_warn("e2e", "no result for %.0f s; giving up with %" PRIu64 " of %" PRIu64,
                        idle, res, atomic_load(&e.published));
            break;
        }
        rd_kafka_poll(producer, 50);
    }
    rc = 0;
done:
    if (started) {
        atomic_store(&e.quit, 1);
        pthread_join(consumer_thread, NULL);
    }
    if (producer) {
        rd_kafka_flush(producer, 5000);
        rd_kafka_destroy(producer);
    }
    if (rc == 0) {
        uint64_t n;
        e2e_fill_report(&e, rep);
        n = rep->results;
        if (n) {
            qsort(e.lat_ms, n, sizeof(float), e2e_cmp_float);
            rep->lat_p50_ms = e.lat_ms[(n - 1) / 2];
            rep->lat_p99_ms = e.lat_ms[(uint64_t)((double)(n - 1) * 0.99)];
            rep->lat_max_ms = e.lat_ms[n - 1];
        }
    }
    if (e.consumer) {
        rd_kafka_consumer_close(e.consumer);
        rd_kafka_destroy(e.consumer);
    }
    cw_free(e.sent_ns);
    cw_free(e.answered);
    cw_free(e.lat_ms);
    return rc;
}
