/* worker.c: the worker daemon's engine: Kafka in, micro-batches through the
 * model, results out, offsets committed only for what is durable.
 *
 * One thread runs everything that touches our state: the consume loop, the
 * batch, the delivery report callback (served by rd_kafka_poll on the
 * producer) and the rebalance callback (served by rd_kafka_consumer_poll).
 * So the offset bookkeeping needs no locks; librdkafka's own threads do the
 * network I/O. Only the stop flag, the statistics and the model handoff are
 * touched from other threads (atomics and one mutex).
 *
 * The pipeline: a batch of pipeline_min_articles or more (default 512) is
 * decoded and dead-lettered on the worker thread, then handed to the model thread,
 * which tokenizes, featurizes and runs its forward pass while the worker
 * thread sends the previous batch's results and gathers the next. The model
 * thread touches only the batches handed to it and the classifier. Results
 * are sent on the worker thread, batch after batch in input order; every
 * rebalance, transaction commit, model swap and shutdown first waits for the
 * model thread's batches and sends them (cw_worker_flush_all).
 *
 * At-least-once: every input message's output is registered in cw_offsets_t
 * when produced; acknowledgements (any order) advance the per-partition
 * committable offset, which is stored with rd_kafka_offsets_store() and
 * committed by librdkafka's auto-commit. Deliveries are pipelined: a batch
 * never waits for the previous one's acknowledgements.
 *
 * Exactly-once: a transaction spans the batches of commit_interval_ms; the
 * next input offsets of the partitions it covers go in with
 * send_offsets_to_transaction. Abortable errors abort and rewind the
 * consumer to the committed offsets; fatal errors end the run with -1.
 *
 * The serving model (model, backend, name, version) is one struct, replaced
 * between batches when cw_worker_offer_model() handed over a new one. */
#include "worker.h"

#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "article.h"
#include "backend.h"
#include "checkpoint.h"
#include "classify.h"
#include "log.h"
#include "offsets.h"
#include "registry.h"
#include "util.h"

#define CW_COMP "worker"
#define CW_TXN_TIMEOUT_MS 30000
#define CW_TXN_RETRIES 10

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "tokens travel in the message opaque");

/* The model serving now. */
typedef struct cw_served_s {
    cw_model_t *model;
    cw_backend_t *be;
    char *name;
    int64_t version;
} cw_served_t;

/* Latency histogram, milliseconds: exact below 1024, then powers of two. */
#define CW_HIST_EXACT 1024
#define CW_HIST_N (CW_HIST_EXACT + 48)
typedef struct cw_hist_s {
    uint64_t b[CW_HIST_N];
    uint64_t n;
} cw_hist_t;

static void cw_hist_add(cw_hist_t *h, int64_t ms) {
    if (ms < 0) ms = 0;
    size_t i;
    if (ms < CW_HIST_EXACT) {
        i = (size_t)ms;
    } else {
        i = CW_HIST_EXACT;
        for (int64_t v = ms / CW_HIST_EXACT; v > 1 && i < CW_HIST_N - 1; v >>= 1) i++;
    }
    h->b[i]++;
    h->n++;
}

/* The q-quantile, as the upper edge of its bucket. */
static int64_t cw_hist_quantile(const cw_hist_t *h, double q) {
    if (h->n == 0) return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), acc = 0;
    if (want == 0) want = 1;
    for (size_t i = 0; i < CW_HIST_N; i++) {
        acc += h->b[i];
        if (acc >= want)
            return i < CW_HIST_EXACT ? (int64_t)i : (int64_t)CW_HIST_EXACT << (i - CW_HIST_EXACT + 1);
    }
    return 0;
}

/* One micro-batch: its messages in consume order, their decoded articles
 * and texts, and (with the model thread) the model it was given and its
 * probabilities. */
typedef struct cw_wbatch_s {
    rd_kafka_message_t **msgs;
    cw_article_t *arts;
    uint64_t *tokens;      /* cw_offsets_t registrations */
    uint8_t *valid;        /* 0: dead-lettered */
    size_t n;
    char *text;            /* arena: title + " " + body of each valid article */
    size_t text_cap;
    cw_text_t *texts;      /* the valid articles' texts, in batch order (batch_cap) */
    size_t ntexts;
    const cw_model_t *model; /* model thread only: what to run, set when handed over */
    cw_backend_t *be;
    float *probs;          /* ntexts x nlabels, written by the model thread */
    size_t probs_cap;
    int failed;            /* the forward pass failed; err says why */
    char err[256];
} cw_wbatch_t;

struct cw_worker_s {
    const cw_worker_conf_t *conf;
    char *worker_id;
    int eos;

    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_topic_t *out_rkt;
    rd_kafka_topic_t *dlq_rkt;

    cw_served_t served;
    cw_classifier_t *clf;

    /* Model handoff (cw_worker_offer_model). */
    pthread_mutex_t offer_mu;
    atomic_int offer_pending;
    cw_served_t offer;

    /* Batches: slots[tail % nslots] is being gathered (w->g); with the
     * model thread, slots head .. tail-1 (counts, not indices) are in its
     * hands, oldest first. Without it nslots is 1 and head == tail. */
    cw_wbatch_t *slots;
    size_t nslots, head, tail;
    cw_wbatch_t *g;
    size_t batch_cap;
    double batch_deadline;

    /* The model thread (pipeline): computes slots in order up to tail
     * (written under pipe_mu, by the worker thread only); pipe_done counts
     * the slots it has finished (release, so their probs are seen). */
    int pipe_on;
    pthread_t pipe_th;
    pthread_mutex_t pipe_mu;
    pthread_cond_t pipe_go, pipe_cv;
    atomic_size_t pipe_done;
    int pipe_quit, pipe_waiting;

    char *enc;             /* one encoded result */
    size_t enc_len, enc_cap;
    float *zero_scores;    /* passthrough results */
    size_t zero_cap;

    cw_offsets_t *offs;

    /* Next offset expected per partition (-1: unknown since the assignment).
     * librdkafka 2.0.2 can hand out messages of a partition again after a
     * cooperative rebalance that kept it (confluentinc/librdkafka#4637);
     * re-processing them would only make duplicates, so they are skipped. */
    int64_t *next_pos;
    size_t pos_cap;
    uint64_t replayed;

    /* Exactly-once: the open transaction and the next offset per partition in it. */
    int txn_open;
    double txn_start;
    int64_t *txn_next;
    size_t txn_cap;

    atomic_int stop;
    atomic_int fatal;

    /* Statistics. */
    atomic_uint_least64_t st_consumed, st_produced, st_dead, st_batches, st_batched, st_reloads;
    atomic_int_least64_t st_version;
    cw_hist_t lat;         /* input timestamp -> acknowledgement, this interval */
    double stats_last;
    uint64_t stats_prev_consumed, stats_prev_batches, stats_prev_batched;
};

/* Stop the loop after an error the worker cannot go on from: what is
 * not durable yet stays uncommitted, and cw_worker_run returns -1. */
static void cw_worker_fail(cw_worker_t *w) {
    atomic_store(&w->fatal, 1);
    atomic_store(&w->stop, 1);
}

/* ---------- logging ---------- */

static void cw_worker_rdlog_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    cw_log_level_t l = level <= 3 ? CW_LOG_ERROR : level == 4 ? CW_LOG_WARN
                     : level <= 6 ? CW_LOG_INFO : CW_LOG_DEBUG;
    /* The kafka group goes to both clients, so each warns about the other's
     * properties; that is expected, not worth a warning. */
    if (!strcmp(fac, "CONFWARN") && strstr(buf, "will be ignored by this")) l = CW_LOG_DEBUG;
    cw_log(l, "kafka", "%s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void cw_worker_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    cw_worker_t *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        cw_log_error(CW_COMP, "fatal Kafka error on %s: %s: %s", rd_kafka_name(rk),
                     rd_kafka_err2name(orig), buf);
        cw_worker_fail(w);
        return;
    }
    /* Transient (brokers down, timeouts): librdkafka retries by itself. */
    cw_log_warn("kafka", "%s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

/* ---------- model ---------- */

static void cw_served_free(cw_served_t *s) {
    cw_backend_destroy(s->be);
    cw_model_destroy(s->model);
    cw_free(s->name);
    memset(s, 0, sizeof(*s));
}

static int cw_labels_equal(const cw_model_t *a, const cw_model_t *b) {
    if (a->nlabels != b->nlabels) return 0;
    for (uint32_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0) return 0;
    return 1;
}

void cw_worker_offer_model(cw_worker_t *w, cw_model_t *m, const char *name, int64_t version) {
    pthread_mutex_lock(&w->offer_mu);
    cw_served_free(&w->offer);
    w->offer.model = m;
    w->offer.name = cw_strdup(name);
    w->offer.version = version;
    atomic_store(&w->offer_pending, 1);
    pthread_mutex_unlock(&w->offer_mu);
}

/* Between batches: take an offered model if there is one. */
static void cw_worker_maybe_swap(cw_worker_t *w) {
    if (!atomic_load_explicit(&w->offer_pending, memory_order_acquire)) return;
    cw_served_t next;
    pthread_mutex_lock(&w->offer_mu);
    next = w->offer;
    memset(&w->offer, 0, sizeof(w->offer));
    atomic_store(&w->offer_pending, 0);
    pthread_mutex_unlock(&w->offer_mu);
    if (!next.model) return;

    char err[512];
    if (!w->conf->allow_label_change && !cw_labels_equal(w->served.model, next.model)) {
        cw_log_error(CW_COMP, "refusing model %s@%lld: its labels differ from %s@%lld's "
                     "(set allow_label_change to accept)", next.name, (long long)next.version,
                     w->served.name, (long long)w->served.version);
        goto refuse;
    }
    next.be = cw_backend_new(w->conf->device, err, sizeof(err));
    if (!next.be || cw_backend_upload(next.be, next.model, err, sizeof(err)) != 0 ||
        (!w->conf->skip_model && cw_backend_prepare(next.be, err, sizeof(err)) != 0)) {
        cw_log_error(CW_COMP, "refusing model %s@%lld: %s", next.name, (long long)next.version, err);
        goto refuse;
    }
    cw_log_info(CW_COMP, "model swap: %s@%lld -> %s@%lld", w->served.name,
                (long long)w->served.version, next.name, (long long)next.version);
    cw_served_free(&w->served);
    w->served = next;
    atomic_fetch_add(&w->st_reloads, 1);
    atomic_store(&w->st_version, next.version);
    return;
refuse:
    cw_served_free(&next);
}

/* ---------- producing ---------- */

/* Hand one message to the producer; waits (serving deliveries) while its
 * queue is full. hdrs pass to librdkafka on success. 0 or -1 (logged). */
static int cw_worker_produce(cw_worker_t *w, rd_kafka_topic_t *rkt, const void *key, size_t klen,
                             const void *val, size_t vlen, rd_kafka_headers_t *hdrs,
                             uint64_t token) {
    double give_up = 0;
    for (;;) {
        rd_kafka_resp_err_t err;
        if (hdrs)
            err = rd_kafka_producev(w->producer, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_HEADERS(hdrs),
                                    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(w->producer, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
        if (!err) return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Backpressure: the broker is slower than us. While stopping,
             * give up after shutdown_timeout_ms (the offset stays uncommitted). */
            if (atomic_load(&w->stop)) {
                if (give_up == 0) give_up = cw_now_s() + (double)w->conf->shutdown_timeout_ms / 1e3;
                else if (cw_now_s() > give_up) {
                    cw_log_error(CW_COMP, "producer queue still full at shutdown; dropping output");
                    return -1;
                }
            }
            rd_kafka_poll(w->producer, 10);
            continue;
        }
        cw_log_error(CW_COMP, "produce to %s failed: %s", rd_kafka_topic_name(rkt),
                     rd_kafka_err2str(err));
        return -1;
    }
}

static void cw_worker_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    cw_worker_t *w = opaque;
    uint64_t token = (uint64_t)(uintptr_t)m->_private;
    int dead = m->rkt == w->dlq_rkt;
    if (m->err) {
        if (w->eos) {
            /* The transaction fails to commit and is aborted and retried. */
            if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
                cw_log_warn(CW_COMP, "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                            rd_kafka_err2str(m->err));
            return;
        }
        /* At-least-once: this offset must never be committed, and nothing
         * after it in its partition either. Stop; a restart reprocesses. */
        cw_log_error(CW_COMP, "delivery to %s failed after retries: %s; stopping (offsets after "
                     "the failed message stay uncommitted)", rd_kafka_topic_name(m->rkt),
                     rd_kafka_err2str(m->err));
        cw_worker_fail(w);
        return;
    }
    int64_t ts;
    if (cw_offsets_ack(w->offs, token, &ts)) cw_hist_add(&w->lat, cw_wall_ms() - ts);
    atomic_fetch_add_explicit(dead ? &w->st_dead : &w->st_produced, 1, memory_order_relaxed);
}

/* At-least-once: store the offsets that became committable. */
static void cw_worker_store_offsets(cw_worker_t *w) {
    if (w->eos) return;
    size_t cursor = 0;
    int32_t part;
    int64_t next;
    rd_kafka_topic_partition_list_t *l = NULL;
    while (cw_offsets_next_dirty(w->offs, &cursor, &part, &next)) {
        if (!l) l = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_list_add(l, w->conf->input_topic, part)->offset = next;
    }
    if (!l) return;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, l);
    if (err && err != RD_KAFKA_RESP_ERR__STATE)
        cw_log_warn(CW_COMP, "storing offsets failed: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

static void cw_worker_serve_deliveries(cw_worker_t *w, int timeout_ms) {
    rd_kafka_poll(w->producer, timeout_ms);
    cw_worker_store_offsets(w);
}

/* ---------- fetch positions ---------- */

static void cw_pos_reset(cw_worker_t *w, int32_t partition) {
    if (partition >= 0 && (size_t)partition < w->pos_cap) w->next_pos[partition] = -1;
}

static void cw_pos_reset_all(cw_worker_t *w) {
    for (size_t i = 0; i < w->pos_cap; i++) w->next_pos[i] = -1;
}

/* 1 when m is the next message of its partition (or the first one), 0 when
 * it repeats one handed out already. */
static int cw_pos_advance(cw_worker_t *w, const rd_kafka_message_t *m) {
    if ((size_t)m->partition >= w->pos_cap) {
        size_t old = w->pos_cap;
        cw_grow((void **)&w->next_pos, &w->pos_cap, (size_t)m->partition + 1, sizeof(int64_t));
        for (size_t i = old; i < w->pos_cap; i++) w->next_pos[i] = -1;
    }
    int64_t *next = &w->next_pos[m->partition];
    if (*next >= 0 && m->offset < *next) return 0;
    *next = m->offset + 1;
    return 1;
}

/* ---------- transactions ---------- */

static void cw_txn_set_next(cw_worker_t *w, int32_t partition, int64_t next) {
    if ((size_t)partition >= w->txn_cap) {
        size_t old = w->txn_cap;
        cw_grow((void **)&w->txn_next, &w->txn_cap, (size_t)partition + 1, sizeof(int64_t));
        for (size_t i = old; i < w->txn_cap; i++) w->txn_next[i] = -1;
    }
    w->txn_next[partition] = next;
}

static void cw_txn_clear(cw_worker_t *w) {
    for (size_t i = 0; i < w->txn_cap; i++) w->txn_next[i] = -1;
    w->txn_open = 0;
}

static void cw_txn_fatal(cw_worker_t *w, const char *what, rd_kafka_error_t *error) {
    cw_log_error(CW_COMP, "%s: %s: %s", what, rd_kafka_error_name(error), rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    cw_worker_fail(w);
}

/* Rewind the consumer to the committed offsets of its assignment (the
 * position where the aborted transaction started). */
static void cw_txn_rewind(cw_worker_t *w) {
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(w->consumer, &l);
    if (err || !l || l->cnt == 0) goto done;
    err = rd_kafka_committed(w->consumer, l, CW_TXN_TIMEOUT_MS);
    if (err) {
        cw_log_error(CW_COMP, "rewind: cannot read committed offsets: %s", rd_kafka_err2str(err));
        cw_worker_fail(w);
        goto done;
    }
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].offset < 0) l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(w->consumer, l, CW_TXN_TIMEOUT_MS);
    if (error) cw_txn_fatal(w, "rewind: seek failed", error);
done:
    if (l) rd_kafka_topic_partition_list_destroy(l);
}

/* Abort the open transaction; rewind (unless the assignment was lost, when
 * there is nothing left to rewind). */
static void cw_txn_abort(cw_worker_t *w, int rewind) {
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *error = rd_kafka_abort_transaction(w->producer, CW_TXN_TIMEOUT_MS);
        if (!error) break;
        if (rd_kafka_error_is_retriable(error) && attempt < CW_TXN_RETRIES) {
            cw_log_warn(CW_COMP, "abort_transaction: %s; retrying", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            continue;
        }
        cw_txn_fatal(w, "abort_transaction failed", error);
        return;
    }
    cw_txn_clear(w);
    cw_offsets_reset_all(w->offs);
    cw_pos_reset_all(w);
    if (rewind) {
        cw_txn_rewind(w);
        cw_log_warn(CW_COMP, "transaction aborted; consumer rewound to the committed offsets");
    } else {
        cw_log_warn(CW_COMP, "transaction aborted (assignment lost)");
    }
}

static int cw_txn_begin(cw_worker_t *w) {
    if (w->txn_open) return 0;
    rd_kafka_error_t *error = rd_kafka_begin_transaction(w->producer);
    if (error) {
        cw_txn_fatal(w, "begin_transaction failed", error);
        return -1;
    }
    w->txn_open = 1;
    w->txn_start = cw_now_s();
    return 0;
}

/* Run one transactional call with the example's error handling: retriable
 * -> retry, requires abort -> abort and rewind (returns 1), fatal -> -1. */
#define CW_TXN_CALL(w, what, call, outcome)                                                   \
    do {                                                                                      \
        for (int attempt_ = 0;; attempt_++) {                                                 \
            rd_kafka_error_t *error_ = (call);                                                \
            if (!error_) { (outcome) = 0; break; }                                            \
            if (rd_kafka_error_txn_requires_abort(error_)) {                                  \
                cw_log_warn(CW_COMP, "%s: %s; aborting", what, rd_kafka_error_string(error_)); \
                rd_kafka_error_destroy(error_);                                               \
                cw_txn_abort(w, 1);                                                           \
                (outcome) = 1;                                                                \
                break;                                                                        \
            }                                                                                 \
            if (rd_kafka_error_is_retriable(error_) && attempt_ < CW_TXN_RETRIES) {           \
                cw_log_warn(CW_COMP, "%s: %s; retrying", what, rd_kafka_error_string(error_)); \
                rd_kafka_error_destroy(error_);                                               \
                continue;                                                                     \
            }                                                                                 \
            cw_txn_fatal(w, what, error_);                                                    \
            (outcome) = -1;                                                                   \
            break;                                                                            \
        }                                                                                     \
    } while (0)

/* Commit the open transaction with the input offsets it covers.
 * 0 committed (or nothing open), 1 aborted and rewound, -1 fatal. */
static int cw_txn_commit(cw_worker_t *w) {
    if (!w->txn_open) return 0;
    int outcome = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < w->txn_cap; i++)
        if (w->txn_next[i] >= 0)
            rd_kafka_topic_partition_list_add(l, w->conf->input_topic, (int32_t)i)->offset =
                w->txn_next[i];
    if (l->cnt > 0) {
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(w->consumer);
        CW_TXN_CALL(w, "send_offsets_to_transaction",
                    rd_kafka_send_offsets_to_transaction(w->producer, l, cgmd, CW_TXN_TIMEOUT_MS),
                    outcome);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    }
    if (outcome == 0)
        CW_TXN_CALL(w, "commit_transaction", rd_kafka_commit_transaction(w->producer, CW_TXN_TIMEOUT_MS),
                    outcome);
    if (outcome == 0) {
        cw_txn_clear(w);
        /* Everything in it is durable; acknowledgements were counted already. */
        cw_offsets_reset_all(w->offs);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return outcome;
}

/* ---------- the batch ---------- */

static void cw_worker_dead_letter(cw_worker_t *w, const rd_kafka_message_t *m,
                                  cw_article_err_t err, const char *detail, uint64_t token) {
    char num[32];
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    const char *reason = cw_article_err2str(err);
    rd_kafka_header_add(h, CW_DLQ_HDR_REASON, -1, reason, (ssize_t)strlen(reason));
    rd_kafka_header_add(h, CW_DLQ_HDR_DETAIL, -1, detail, (ssize_t)strlen(detail));
    rd_kafka_header_add(h, CW_DLQ_HDR_SOURCE_TOPIC, -1, w->conf->input_topic,
                        (ssize_t)strlen(w->conf->input_topic));
    snprintf(num, sizeof(num), "%d", (int)m->partition);
    rd_kafka_header_add(h, CW_DLQ_HDR_SOURCE_PARTITION, -1, num, (ssize_t)strlen(num));
    snprintf(num, sizeof(num), "%lld", (long long)m->offset);
    rd_kafka_header_add(h, CW_DLQ_HDR_SOURCE_OFFSET, -1, num, (ssize_t)strlen(num));
    if (cw_worker_produce(w, w->dlq_rkt, m->key, m->key_len, m->payload, m->len, h, token) != 0) {
        rd_kafka_headers_destroy(h);
        cw_worker_fail(w);
    }
}

/* ---------- batches ---------- */

/* Batches under pipeline_min_articles run on the worker thread. Handing a
 * batch over costs a wake-up on each side and moves its texts to another
 * core, which small batches do not repay. Measured with bench_e2e on the
 * embedded broker, 2 cores, model thread against none, alternating runs of
 * 3 pairs each (catwire / passthrough):
 *   max_articles 1024: drain 0.72-0.78 against 0.59-0.61 (3 runs each),
 *                      saturated 0.84-0.92 against 0.85-0.94;
 *   max_articles 256:  drain 0.54-0.58 against 0.59-0.63 (2 runs each),
 *                      saturated 0.84-0.90 against 0.86-0.88;
 *   max_articles 64:   drain 0.57-0.74 against 0.63-0.69, saturated
 *                      0.76-0.82 against 0.88-0.94 (a loss);
 *   max_articles 1:    every article handed over, even with wake-ups in
 *                      groups of 32: 6.0 us of process CPU per result
 *                      against 2.9, drain 0.35-0.45 against 0.61.
 * (Single later runs at 1024 with it on gave drains of 0.61 and 0.64: the
 * embedded drain of 100,000 articles lasts about 0.2 s and is noisy.)
 * Hence the default, 512. */

static void cw_batch_release(cw_wbatch_t *b) {
    for (size_t i = 0; i < b->n; i++) rd_kafka_message_destroy(b->msgs[i]);
    b->n = 0;
    b->ntexts = 0;
}

/* The texts' arena, sized once for the batch (a text is at most its
 * message's length plus the space), so that they stay put while other
 * threads read them. */
static void cw_batch_arena(cw_wbatch_t *b) {
    size_t need = 1;
    for (size_t i = 0; i < b->n; i++) need += b->msgs[i]->len + 1;
    cw_grow((void **)&b->text, &b->text_cap, need, 1);
}

/* Pass 1, on the worker thread: register each message in offset order,
 * decode it, dead-letter what fails, gather the texts (with a stream job
 * open, its helpers start on them as they come). */
static void cw_batch_decode(cw_worker_t *w, cw_wbatch_t *b, int stream) {
    int64_t now_ms = cw_wall_ms();
    char detail[256];
    size_t used = 0;
    b->ntexts = 0;
    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_t *m = b->msgs[i];
        rd_kafka_timestamp_type_t tst;
        int64_t ts = rd_kafka_message_timestamp(m, &tst);
        if (ts < 0) ts = now_ms;
        b->tokens[i] = cw_offsets_push(w->offs, m->partition, m->offset, ts);
        detail[0] = '\0';
        cw_article_err_t err = cw_article_decode(m->payload, m->len, &b->arts[i], detail, sizeof(detail));
        if (err != CW_ARTICLE_OK) {
            b->valid[i] = 0;
            cw_worker_dead_letter(w, m, err, detail, b->tokens[i]);
            continue;
        }
        b->valid[i] = 1;
        if (w->conf->skip_model) continue;
        const cw_article_t *a = &b->arts[i];
        size_t len = a->title.len + 1 + a->body.len;
        char *t = b->text + used;
        if (a->title.len) memcpy(t, a->title.p, a->title.len);
        t[a->title.len] = ' ';
        if (a->body.len) memcpy(t + a->title.len + 1, a->body.p, a->body.len);
        b->texts[b->ntexts].p = t;
        b->texts[b->ntexts].len = len;
        b->ntexts++;
        used += len;
        if (stream) cw_classifier_stream_ready(w->clf, b->ntexts);
    }
}

/* Pass 3: one result per valid article, in batch order. Row r of the valid
 * articles' probabilities comes from probs (NULL: passthrough, all zero) or,
 * when *stream, from the stream job (which is ended here if it failed).
 * 0, or -1 when the worker must stop (logged). */
static int cw_batch_emit(cw_worker_t *w, cw_wbatch_t *b, const float *probs, int *stream) {
    const cw_model_t *model = w->served.model;
    uint32_t k = model->nlabels;
    int64_t processed_at = cw_wall_ms();
    size_t row = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->valid[i]) continue;
        rd_kafka_message_t *m = b->msgs[i];
        const cw_article_t *a = &b->arts[i];
        cw_result_t r;
        memset(&r, 0, sizeof(r));
        r.id = a->id;
        const float *p = *stream ? cw_classifier_stream_row(w->clf, row) : probs ? probs + row * k : NULL;
        if (*stream && !p) {
            char err[256] = "";
            cw_classifier_stream_end(w->clf, err, sizeof(err));
            *stream = 0;
            cw_log_error(CW_COMP, "forward pass failed: %s; stopping", err);
            cw_worker_fail(w);
            return -1;
        }
        if (p) {
            r.label_id = (int32_t)cw_argmax(p, k);
            r.confidence = p[r.label_id];
            r.scores = p;
        } else {
            r.label_id = 0;
            r.confidence = 0;
            r.scores = w->zero_scores;
        }
        row++;
        r.label = model->labels[r.label_id];
        r.nscores = k;
        r.model = w->served.name;
        r.model_version = w->served.version;
        r.worker = w->worker_id;
        r.processed_at = processed_at;
        if (cw_result_encode(&r, &w->enc, &w->enc_len, &w->enc_cap) != 0) {
            cw_log_error(CW_COMP, "encoding a result failed; stopping");
            cw_worker_fail(w);
            return -1;
        }
        const void *key = m->key ? m->key : a->id.p;
        size_t klen = m->key ? m->key_len : a->id.len;
        if (cw_worker_produce(w, w->out_rkt, key, klen, w->enc, w->enc_len, NULL, b->tokens[i]) != 0) {
            cw_worker_fail(w);
            return -1;
        }
    }
    return 0;
}

/* Its results are out: the transaction covers its offsets, the counters
 * count it, its messages go. */
static void cw_batch_done(cw_worker_t *w, cw_wbatch_t *b) {
    if (w->eos)
        for (size_t i = 0; i < b->n; i++) cw_txn_set_next(w, b->msgs[i]->partition, b->msgs[i]->offset + 1);
    atomic_fetch_add_explicit(&w->st_batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->st_batched, b->n, memory_order_relaxed);
    cw_batch_release(b);
}

/* The whole batch on the worker thread: decode, one forward pass (or a
 * stream job: with compute_threads > 1 on the CPU backend, helpers featurize
 * and forward chunks while this thread decodes the rest and then sends the
 * results in order), one output per message. */
static void cw_batch_inline(cw_worker_t *w, cw_wbatch_t *b) {
    const cw_model_t *model = w->served.model;
    const float *probs = NULL;
    int stream = 0;
    if (!w->conf->skip_model) {
        cw_batch_arena(b);
        stream = cw_classifier_can_stream(w->clf, w->served.be, b->n);
        if (stream) cw_classifier_stream_begin(w->clf, model, w->served.be, b->texts, b->n);
    }
    cw_batch_decode(w, b, stream);
    if (stream) {
        cw_classifier_stream_close(w->clf, b->ntexts);
    } else if (!w->conf->skip_model && b->ntexts > 0) {
        char err[256];
        cw_classifier_hint(w->clf, w->served.be);
        cw_classifier_add_texts(w->clf, model, b->texts, b->ntexts);
        if (cw_classifier_run(w->clf, w->served.be, &probs, err, sizeof(err)) != 0) {
            /* A backend failure is not the article's fault: stop without
             * committing these offsets, a restart retries them. */
            cw_log_error(CW_COMP, "forward pass failed: %s; stopping", err);
            cw_worker_fail(w);
            goto drop;
        }
    } else if (w->conf->skip_model) {
        cw_grow((void **)&w->zero_scores, &w->zero_cap, model->nlabels, sizeof(float));
        memset(w->zero_scores, 0, model->nlabels * sizeof(float));
    }
    if (cw_batch_emit(w, b, probs, &stream) != 0) goto drop;
    if (stream) cw_classifier_stream_end(w->clf, NULL, 0);
    cw_classifier_clear(w->clf);
    cw_batch_done(w, b);
    return;
drop:
    if (stream) cw_classifier_stream_end(w->clf, NULL, 0);
    cw_classifier_clear(w->clf);
    cw_batch_release(b);
}

/* ---------- the model thread (pipeline) ---------- */

/* On the model thread: the batch's forward pass, its probabilities copied
 * into the batch (the classifier's buffers serve the next one). */
static void cw_pipe_compute(cw_worker_t *w, cw_wbatch_t *b) {
    const float *probs = NULL;
    b->failed = 0;
    if (b->ntexts == 0) return;
    cw_classifier_hint(w->clf, b->be);
    cw_classifier_add_texts(w->clf, b->model, b->texts, b->ntexts);
    if (cw_classifier_run(w->clf, b->be, &probs, b->err, sizeof(b->err)) != 0) {
        b->failed = 1;
    } else {
        size_t nf = b->ntexts * b->model->nlabels;
        cw_grow((void **)&b->probs, &b->probs_cap, nf, sizeof(float));
        memcpy(b->probs, probs, nf * sizeof(float));
    }
    cw_classifier_clear(w->clf);
}

static void *cw_pipe_main(void *arg) {
    cw_worker_t *w = arg;
    size_t next = 0;
    prctl(PR_SET_NAME, "cw-model", 0, 0, 0);
    pthread_mutex_lock(&w->pipe_mu);
    for (;;) {
        while (next == w->tail && !w->pipe_quit) pthread_cond_wait(&w->pipe_go, &w->pipe_mu);
        if (next == w->tail) break; /* quitting, nothing left */
        cw_wbatch_t *b = &w->slots[next % w->nslots];
        pthread_mutex_unlock(&w->pipe_mu);
        cw_pipe_compute(w, b);
        pthread_mutex_lock(&w->pipe_mu);
        atomic_store_explicit(&w->pipe_done, ++next, memory_order_release);
        if (w->pipe_waiting) pthread_cond_signal(&w->pipe_cv);
    }
    pthread_mutex_unlock(&w->pipe_mu);
    return NULL;
}

/* Finish the oldest batch the model thread holds: send its results (or,
 * after a fatal error, only drop it). `wait`: for it to be computed;
 * otherwise only when it is. 1 when a batch was finished. */
static int cw_pipe_finish_head(cw_worker_t *w, int wait) {
    if (w->head == w->tail) return 0;
    if (atomic_load_explicit(&w->pipe_done, memory_order_acquire) <= w->head) {
        if (!wait) return 0;
        pthread_mutex_lock(&w->pipe_mu);
        w->pipe_waiting = 1;
        while (atomic_load_explicit(&w->pipe_done, memory_order_acquire) <= w->head)
            pthread_cond_wait(&w->pipe_cv, &w->pipe_mu);
        w->pipe_waiting = 0;
        pthread_mutex_unlock(&w->pipe_mu);
    }
    cw_wbatch_t *b = &w->slots[w->head % w->nslots];
    int stream = 0;
    w->head++;
    if (atomic_load(&w->fatal)) {
        cw_batch_release(b);
    } else if (b->failed) {
        cw_log_error(CW_COMP, "forward pass failed: %s; stopping", b->err);
        cw_worker_fail(w);
        cw_batch_release(b);
    } else if (cw_batch_emit(w, b, b->probs, &stream) != 0) {
        cw_batch_release(b);
    } else {
        cw_batch_done(w, b);
    }
    return 1;
}

/* Finish every batch the model thread holds, in order. */
static void cw_pipe_drain(cw_worker_t *w) {
    while (cw_pipe_finish_head(w, 1)) {
    }
}

/* Hand the gathered batch (decoded, texts gathered) to the model thread and
 * gather the next one into the next slot, once the slot is free. */
static void cw_pipe_submit(cw_worker_t *w, cw_wbatch_t *b) {
    cw_batch_arena(b);
    cw_batch_decode(w, b, 0);
    b->model = w->served.model;
    b->be = w->served.be;
    pthread_mutex_lock(&w->pipe_mu);
    w->tail++;
    pthread_cond_signal(&w->pipe_go);
    pthread_mutex_unlock(&w->pipe_mu);
    if (w->tail - w->head == w->nslots) cw_pipe_finish_head(w, 1);
    w->g = &w->slots[w->tail % w->nslots];
}

/* Process the gathered batch: on the model thread when it runs and the
 * batch is big enough, else here. Outputs leave in input order either way. */
static void cw_worker_flush(cw_worker_t *w) {
    cw_wbatch_t *b = w->g;
    if (b->n == 0) return;
    int pipe = w->pipe_on && b->n >= (size_t)w->conf->pipeline_min_articles;
    /* A batch run here waits for those ahead of it; a model swap frees the
     * model they hold. */
    if (!pipe || atomic_load_explicit(&w->offer_pending, memory_order_acquire)) cw_pipe_drain(w);
    if (atomic_load(&w->fatal)) {
        cw_batch_release(b);
        return;
    }
    cw_worker_maybe_swap(w);
    if (w->eos && cw_txn_begin(w) != 0) {
        cw_batch_release(b);
        return;
    }
    if (pipe) cw_pipe_submit(w, b);
    else cw_batch_inline(w, b);
}

/* Flush, then wait for every batch to be out (rebalances, commits, shutdown). */
static void cw_worker_flush_all(cw_worker_t *w) {
    cw_worker_flush(w);
    cw_pipe_drain(w);
}

/* ---------- rebalancing ---------- */

static void cw_worker_log_parts(const char *what, const rd_kafka_topic_partition_list_t *parts) {
    char buf[512];
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && used < sizeof(buf) - 16; i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%d", i ? "," : "",
                                 (int)parts->elems[i].partition);
    cw_log_info(CW_COMP, "%s %d partition(s): [%s]", what, parts->cnt, buf);
}

static void cw_worker_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t *parts, void *opaque) {
    cw_worker_t *w = opaque;
    int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        cw_worker_log_parts("assigned", parts);
        for (int i = 0; i < parts->cnt; i++) {
            cw_offsets_reset(w->offs, parts->elems[i].partition);
            cw_pos_reset(w, parts->elems[i].partition);
        }
        if (coop) error = rd_kafka_incremental_assign(rk, parts);
        else {
            rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
            if (e) error = rd_kafka_error_new(e, "assign: %s", rd_kafka_err2str(e));
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(rk);
        cw_worker_log_parts(lost ? "lost" : "revoked", parts);
        /* Finish what was fetched: its outputs go out with this assignment. */
        cw_worker_flush_all(w);
        if (w->eos) {
            if (lost) {
                if (w->txn_open) cw_txn_abort(w, 0);
            } else {
                cw_txn_commit(w);
            }
        } else if (!lost) {
            /* Wait for the revoked partitions' deliveries, then commit them so
             * the next owner starts where our durable outputs end. */
            double deadline = cw_now_s() + (double)w->conf->shutdown_timeout_ms / 1e3;
            for (;;) {
                size_t inflight = 0;
                for (int i = 0; i < parts->cnt; i++)
                    inflight += cw_offsets_inflight(w->offs, parts->elems[i].partition);
                if (inflight == 0 || atomic_load(&w->fatal)) break;
                if (cw_now_s() > deadline) {
                    cw_log_warn(CW_COMP, "revoke: %zu deliveries still pending after %lld ms; "
                                "their offsets stay uncommitted", inflight,
                                (long long)w->conf->shutdown_timeout_ms);
                    break;
                }
                cw_worker_serve_deliveries(w, 10);
            }
            cw_worker_store_offsets(w);
            rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
            if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
                cw_log_warn(CW_COMP, "commit on revoke failed: %s", rd_kafka_err2str(e));
        }
        for (int i = 0; i < parts->cnt; i++) {
            cw_offsets_reset(w->offs, parts->elems[i].partition);
            cw_pos_reset(w, parts->elems[i].partition);
        }
        if (coop) error = rd_kafka_incremental_unassign(rk, parts);
        else {
            rd_kafka_resp_err_t e = rd_kafka_assign(rk, NULL);
            if (e) error = rd_kafka_error_new(e, "unassign: %s", rd_kafka_err2str(e));
        }
    } else {
        cw_log_error(CW_COMP, "rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
    if (error) cw_txn_fatal(w, "rebalance", error);
}

/* ---------- stats ---------- */

static void cw_worker_stats_line(cw_worker_t *w, double now) {
    double dt = now - w->stats_last;
    uint64_t consumed = atomic_load(&w->st_consumed), batches = atomic_load(&w->st_batches);
    uint64_t batched = atomic_load(&w->st_batched);
    uint64_t db = batches - w->stats_prev_batches;
    cw_log_info(CW_COMP, "stats: consumed=%llu (%.0f/s) produced=%llu dead_lettered=%llu "
                "batches=%llu mean_batch=%.1f latency_ms p50=%lld p99=%lld (n=%llu) inflight=%zu "
                "replayed=%llu model=%s@%lld",
                (unsigned long long)consumed,
                dt > 0 ? (double)(consumed - w->stats_prev_consumed) / dt : 0.0,
                (unsigned long long)atomic_load(&w->st_produced),
                (unsigned long long)atomic_load(&w->st_dead), (unsigned long long)batches,
                db ? (double)(batched - w->stats_prev_batched) / (double)db : 0.0,
                (long long)cw_hist_quantile(&w->lat, 0.5), (long long)cw_hist_quantile(&w->lat, 0.99),
                (unsigned long long)w->lat.n, cw_offsets_inflight_total(w->offs),
                (unsigned long long)w->replayed, w->served.name,
                (long long)w->served.version);
    memset(&w->lat, 0, sizeof(w->lat));
    w->stats_last = now;
    w->stats_prev_consumed = consumed;
    w->stats_prev_batches = batches;
    w->stats_prev_batched = batched;
}

/* ---------- lifecycle ---------- */

static int cw_conf_put(rd_kafka_conf_t *rc, const char *k, const char *v, char *errstr,
                       size_t errstr_size) {
    char e[512];
    if (rd_kafka_conf_set(rc, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        cw_seterr(errstr, errstr_size, "kafka property %s=%s: %s", k, v, e);
        return -1;
    }
    return 0;
}

/* Worker defaults, then the user's kafka group, then what the worker must own. */
static rd_kafka_conf_t *cw_worker_rdconf(cw_worker_t *w, int consumer, char *errstr,
                                         size_t errstr_size) {
    const cw_worker_conf_t *c = w->conf;
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    char client_id[300];
    snprintf(client_id, sizeof(client_id), "catwire-%s", w->worker_id);
    if (cw_conf_put(rc, "client.id", client_id, errstr, errstr_size) ||
        cw_conf_put(rc, "log.connection.close", "false", errstr, errstr_size))
        goto fail;
    if (consumer) {
        if (cw_conf_put(rc, "auto.offset.reset", "earliest", errstr, errstr_size)) goto fail;
    } else {
        if (cw_conf_put(rc, "linger.ms", "5", errstr, errstr_size) ||
            cw_conf_put(rc, "enable.idempotence", "true", errstr, errstr_size))
            goto fail;
    }
    for (size_t i = 0; i < c->nkafka; i++)
        if (cw_conf_put(rc, c->kafka[i].key, c->kafka[i].value, errstr, errstr_size)) goto fail;
    if (cw_conf_put(rc, "bootstrap.servers", c->brokers, errstr, errstr_size)) goto fail;
    if (consumer) {
        if (cw_conf_put(rc, "group.id", c->group_id, errstr, errstr_size) ||
            cw_conf_put(rc, "partition.assignment.strategy", "cooperative-sticky", errstr, errstr_size) ||
            cw_conf_put(rc, "enable.partition.eof", "false", errstr, errstr_size) ||
            cw_conf_put(rc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
            cw_conf_put(rc, "enable.auto.commit", w->eos ? "false" : "true", errstr, errstr_size))
            goto fail;
        rd_kafka_conf_set_rebalance_cb(rc, cw_worker_rebalance_cb);
    } else {
        if (w->eos) {
            char txid[600];
            snprintf(txid, sizeof(txid), "catwire-%s-%s", c->group_id, w->worker_id);
            if (cw_conf_put(rc, "transactional.id", txid, errstr, errstr_size)) goto fail;
        }
        rd_kafka_conf_set_dr_msg_cb(rc, cw_worker_dr_cb);
    }
    rd_kafka_conf_set_log_cb(rc, cw_worker_rdlog_cb);
    rd_kafka_conf_set_error_cb(rc, cw_worker_error_cb);
    rd_kafka_conf_set_opaque(rc, w);
    return rc;
fail:
    rd_kafka_conf_destroy(rc);
    return NULL;
}

cw_worker_t *cw_worker_new(const cw_worker_conf_t *conf, char *errstr, size_t errstr_size) {
    cw_worker_t *w = cw_calloc(1, sizeof(*w));
    rd_kafka_conf_t *rc = NULL;
    char err[512];
    w->conf = conf;
    pthread_mutex_init(&w->offer_mu, NULL);
    w->eos = !strcmp(conf->processing_guarantee, "exactly_once");
    if (conf->worker_id && *conf->worker_id) {
        w->worker_id = cw_strdup(conf->worker_id);
    } else {
        char host[256] = "localhost", id[320];
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(id, sizeof(id), "%s-%d", host, (int)getpid());
        w->worker_id = cw_strdup(id);
        if (w->eos)
            cw_log_warn(CW_COMP, "exactly_once with no worker_id: the transactional id changes "
                        "with every restart, so a crashed instance's open transaction blocks "
                        "readers until transaction.timeout.ms; set worker_id");
    }

    /* The model. */
    /* What this fleet serves: its pin when it has one, else CURRENT (the
     * reloader follows the same rule afterwards). */
    int64_t version = 0;
    char *ckpt_path = NULL;
    if (cw_registry_resolve_fleet(conf->registry, conf->model, conf->fleet, NULL, &version, &ckpt_path,
                                  NULL, err, sizeof(err)) == 0) {
        w->served.model = cw_ckpt_read(ckpt_path, err, sizeof(err));
        cw_free(ckpt_path);
    }
    if (!w->served.model) {
        cw_seterr(errstr, errstr_size, "loading model '%s' from %s: %s", conf->model,
                  conf->registry, err);
        goto fail;
    }
    const char *at = strchr(conf->model, '@');
    w->served.name = at ? cw_strndup(conf->model, (size_t)(at - conf->model)) : cw_strdup(conf->model);
    w->served.version = version;
    atomic_store(&w->st_version, version);
    w->served.be = cw_backend_new(conf->device, err, sizeof(err));
    /* prepare: build the backend's inference state (the CPU projection) now,
     * not in the middle of the first second of traffic. */
    if (!w->served.be || cw_backend_upload(w->served.be, w->served.model, err, sizeof(err)) != 0 ||
        (!conf->skip_model && cw_backend_prepare(w->served.be, err, sizeof(err)) != 0)) {
        cw_seterr(errstr, errstr_size, "backend '%s': %s", conf->device, err);
        goto fail;
    }
    if (!(w->clf = cw_classifier_new_threads((unsigned)conf->compute_threads, err, sizeof(err)))) {
        cw_seterr(errstr, errstr_size, "compute_threads: %s", err);
        goto fail;
    }
    w->offs = cw_offsets_new();
    w->batch_cap = (size_t)conf->max_articles;
    /* The model thread: one batch computing, one waiting, one gathering. */
    w->pipe_on = conf->pipeline_min_articles > 0 && !conf->skip_model &&
                 w->batch_cap >= (size_t)conf->pipeline_min_articles;
    w->nslots = w->pipe_on ? 3 : 1;
    w->slots = cw_calloc(w->nslots, sizeof(*w->slots));
    for (size_t i = 0; i < w->nslots; i++) {
        cw_wbatch_t *b = &w->slots[i];
        b->msgs = cw_calloc(w->batch_cap, sizeof(*b->msgs));
        b->arts = cw_calloc(w->batch_cap, sizeof(*b->arts));
        b->tokens = cw_calloc(w->batch_cap, sizeof(*b->tokens));
        b->valid = cw_calloc(w->batch_cap, sizeof(*b->valid));
        b->texts = cw_calloc(w->batch_cap, sizeof(*b->texts));
    }
    w->g = &w->slots[0];
    pthread_mutex_init(&w->pipe_mu, NULL);
    pthread_cond_init(&w->pipe_go, NULL);
    pthread_cond_init(&w->pipe_cv, NULL);
    if (w->pipe_on) {
        int e = pthread_create(&w->pipe_th, NULL, cw_pipe_main, w);
        if (e != 0) {
            cw_seterr(errstr, errstr_size, "starting the model thread: %s", strerror(e));
            w->pipe_on = 0;
            goto fail;
        }
    }

    /* The producer. */
    if (!(rc = cw_worker_rdconf(w, 0, errstr, errstr_size))) goto fail;
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, rc, err, sizeof(err));
    if (!w->producer) {
        cw_seterr(errstr, errstr_size, "creating the producer: %s", err);
        goto fail;
    }
    rc = NULL;
    w->out_rkt = rd_kafka_topic_new(w->producer, conf->output_topic, NULL);
    w->dlq_rkt = rd_kafka_topic_new(w->producer, conf->dead_letter_topic, NULL);
    if (w->eos) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(w->producer, CW_TXN_TIMEOUT_MS);
        if (error) {
            cw_seterr(errstr, errstr_size, "init_transactions: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            goto fail;
        }
    }

    /* The consumer. */
    if (!(rc = cw_worker_rdconf(w, 1, errstr, errstr_size))) goto fail;
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, rc, err, sizeof(err));
    if (!w->consumer) {
        cw_seterr(errstr, errstr_size, "creating the consumer: %s", err);
        goto fail;
    }
    rc = NULL;
    rd_kafka_poll_set_consumer(w->consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, conf->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        cw_seterr(errstr, errstr_size, "subscribing to %s: %s", conf->input_topic, rd_kafka_err2str(e));
        goto fail;
    }
    char threads[96] = "";
    if (conf->compute_threads > 1)
        snprintf(threads, sizeof(threads), ", %lld compute threads (%s)", (long long)conf->compute_threads,
                 w->served.be->ops->splittable ? "featurize and forward"
                                               : "featurize; forward on the worker thread");
    cw_log_info(CW_COMP, "worker %s: model %s@%lld on %s, %s -> %s (dead letters: %s), group %s, %s%s%s%s",
                w->worker_id, w->served.name, (long long)w->served.version, w->served.be->desc,
                conf->input_topic, conf->output_topic, conf->dead_letter_topic, conf->group_id,
                conf->processing_guarantee, w->pipe_on ? ", model thread" : "", threads,
                conf->skip_model ? ", passthrough (no model)" : "");
    return w;
fail:
    if (rc) rd_kafka_conf_destroy(rc);
    cw_worker_destroy(w);
    return NULL;
}

void cw_worker_stop(cw_worker_t *w) { atomic_store(&w->stop, 1); }

int cw_worker_run(cw_worker_t *w) {
    const cw_worker_conf_t *c = w->conf;
    double now = cw_now_s();
    w->stats_last = now;
    unsigned since_serve = 0;

    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        int timeout_ms = 100;
        if (w->g->n) {
            double left = w->batch_deadline - now;
            timeout_ms = left > 0 ? (int)(left * 1e3) + 1 : 0;
        }
        if (timeout_ms > 10 && cw_offsets_inflight_total(w->offs) > 0) timeout_ms = 10;
        /* A batch on the model thread: with nothing fetched, wait for it instead. */
        if (w->head != w->tail) timeout_ms = 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout_ms);
        int got = m != NULL;
        now = cw_now_s();
        if (m) {
            if (m->err) {
                cw_log_warn(CW_COMP, "consumer: %s%s%s", rd_kafka_message_errstr(m),
                            m->rkt ? " on " : "", m->rkt ? rd_kafka_topic_name(m->rkt) : "");
                rd_kafka_message_destroy(m);
            } else if (!cw_pos_advance(w, m)) {
                if (w->replayed++ == 0 || w->replayed % 10000 == 0)
                    cw_log_info(CW_COMP, "skipping messages librdkafka handed out again (partition %d "
                                "offset %lld; %llu so far)", (int)m->partition, (long long)m->offset,
                                (unsigned long long)w->replayed);
                rd_kafka_message_destroy(m);
            } else {
                if (w->g->n == 0) w->batch_deadline = now + (double)c->max_wait_ms / 1e3;
                w->g->msgs[w->g->n++] = m;
                atomic_fetch_add_explicit(&w->st_consumed, 1, memory_order_relaxed);
            }
        }
        if (w->g->n && (w->g->n >= w->batch_cap || now >= w->batch_deadline)) {
            cw_worker_flush(w);
            since_serve = 64;
        }
        /* Send what the model thread has finished; with nothing fetched,
         * wait for its oldest batch rather than poll again. */
        if (cw_pipe_finish_head(w, !got))
            while (cw_pipe_finish_head(w, 0)) {
            }
        if (!got || ++since_serve >= 64) {
            cw_worker_serve_deliveries(w, 0);
            since_serve = 0;
        }
        if (w->eos && w->txn_open && w->g->n == 0 &&
            (now - w->txn_start) * 1e3 >= (double)c->commit_interval_ms) {
            cw_pipe_drain(w);
            cw_txn_commit(w);
        }
        if (c->stats_interval_ms > 0 && (now - w->stats_last) * 1e3 >= (double)c->stats_interval_ms)
            cw_worker_stats_line(w, now);
    }

    /* Graceful shutdown: finish the batch, wait for deliveries, commit, leave. */
    int fatal = atomic_load(&w->fatal);
    double deadline = cw_now_s() + (double)c->shutdown_timeout_ms / 1e3;
    cw_log_info(CW_COMP, "stopping%s: finishing the batch, waiting for deliveries",
                fatal ? " after a fatal error" : "");
    if (fatal) cw_batch_release(w->g);
    cw_worker_flush_all(w); /* after a fatal error: only drops what the model thread holds */
    if (w->eos) {
        if (!atomic_load(&w->fatal)) cw_txn_commit(w);
    } else {
        while (cw_offsets_inflight_total(w->offs) > 0 && cw_now_s() < deadline)
            cw_worker_serve_deliveries(w, 10);
        cw_worker_store_offsets(w);
        size_t left = cw_offsets_inflight_total(w->offs);
        if (left)
            cw_log_warn(CW_COMP, "%zu deliveries unacknowledged at shutdown; their offsets stay "
                        "uncommitted", left);
        rd_kafka_resp_err_t e = rd_kafka_commit(w->consumer, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            cw_log_warn(CW_COMP, "final commit failed: %s", rd_kafka_err2str(e));
    }
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(w->consumer);
    if (e) cw_log_warn(CW_COMP, "closing the consumer: %s", rd_kafka_err2str(e));
    double left_s = deadline - cw_now_s();
    rd_kafka_flush(w->producer, left_s > 0 ? (int)(left_s * 1e3) : 0);
    cw_worker_stats_line(w, cw_now_s());
    fatal = atomic_load(&w->fatal);
    cw_log_info(CW_COMP, "stopped%s", fatal ? " (fatal error)" : "");
    return fatal ? -1 : 0;
}

void cw_worker_get_stats(cw_worker_t *w, cw_worker_stats_t *st) {
    st->consumed = atomic_load(&w->st_consumed);
    st->produced = atomic_load(&w->st_produced);
    st->dead_lettered = atomic_load(&w->st_dead);
    st->batches = atomic_load(&w->st_batches);
    st->batched_articles = atomic_load(&w->st_batched);
    st->reloads = atomic_load(&w->st_reloads);
    st->model_version = atomic_load(&w->st_version);
}

void cw_worker_destroy(cw_worker_t *w) {
    if (!w) return;
    if (w->pipe_on) {
        /* It computes what it holds first; those messages are dropped below. */
        pthread_mutex_lock(&w->pipe_mu);
        w->pipe_quit = 1;
        pthread_cond_signal(&w->pipe_go);
        pthread_mutex_unlock(&w->pipe_mu);
        pthread_join(w->pipe_th, NULL);
    }
    for (size_t i = 0; i < w->nslots; i++) cw_batch_release(&w->slots[i]);
    if (w->consumer) rd_kafka_destroy(w->consumer);
    if (w->out_rkt) rd_kafka_topic_destroy(w->out_rkt);
    if (w->dlq_rkt) rd_kafka_topic_destroy(w->dlq_rkt);
    if (w->producer) rd_kafka_destroy(w->producer);
    cw_served_free(&w->served);
    cw_served_free(&w->offer);
    pthread_mutex_destroy(&w->offer_mu);
    cw_classifier_destroy(w->clf);
    cw_offsets_destroy(w->offs);
    for (size_t i = 0; i < w->nslots; i++) {
        cw_wbatch_t *b = &w->slots[i];
        cw_free(b->msgs);
        cw_free(b->arts);
        cw_free(b->tokens);
        cw_free(b->valid);
        cw_free(b->text);
        cw_free(b->texts);
        cw_free(b->probs);
    }
    cw_free(w->slots);
    if (w->nslots) {
        pthread_mutex_destroy(&w->pipe_mu);
        pthread_cond_destroy(&w->pipe_go);
        pthread_cond_destroy(&w->pipe_cv);
    }
    cw_free(w->enc);
    cw_free(w->zero_scores);
    cw_free(w->txn_next);
    cw_free(w->next_pos);
    cw_free(w->worker_id);
    cw_free(w);
}
