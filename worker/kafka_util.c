/* kafka_util.c: client configuration, topic creation and the embedded
 * (mock) broker for the catwire tools; see kafka_util.h. */
#include "kafka_util.h"

#include <string.h>

#include <librdkafka/rdkafka_mock.h>

#include "log.h"
#include "util.h"

struct cw_kafka_mock_s {
    rd_kafka_t *rk; /* owner handle the mock cluster is attached to */
    rd_kafka_mock_cluster_t *mcluster;
};

/* librdkafka levels are syslog levels. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    cw_log_level_t lvl = level <= 3 ? CW_LOG_ERROR : level == 4 ? CW_LOG_WARN
                       : level <= 6 ? CW_LOG_INFO : CW_LOG_DEBUG;
    cw_log(lvl, "rdkafka", "%s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

int cw_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                      char *errstr, size_t errstr_size) {
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        cw_seterr(errstr, errstr_size, "kafka property '%s': %s", key, why);
        return -1;
    }
    return 0;
}

int cw_kafka_conf_set_kv(rd_kafka_conf_t *conf, const char *kv, char *errstr, size_t errstr_size) {
    const char *eq = strchr(kv, '=');
    int rc = -1;
    char *key = NULL;
    if (!eq || eq == kv) {
        cw_seterr(errstr, errstr_size, "kafka property '%s': expected KEY=VALUE", kv);
        goto done;
    }
    key = cw_strndup(kv, (size_t)(eq - kv));
    rc = cw_kafka_conf_set(conf, key, eq + 1, errstr, errstr_size);
done:
    cw_free(key);
    return rc;
}

rd_kafka_conf_t *cw_kafka_conf_new(const char *brokers, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    if (brokers && cw_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int cw_kafka_create_topic(const char *brokers, const char *topic, int partitions,
                          int timeout_ms, int *created, char *errstr, size_t errstr_size) {
    int rc = -1;
    char why[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_conf_t *conf = cw_kafka_conf_new(brokers, errstr, errstr_size);

    if (created) *created = 0;
    if (!conf) goto done;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        cw_seterr(errstr, errstr_size, "kafka client: %s", why);
        goto done;
    }
    nt = rd_kafka_NewTopic_new(topic, partitions, 1, why, sizeof(why));
    if (!nt) {
        cw_seterr(errstr, errstr_size, "topic '%s': %s", topic, why);
        goto done;
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, why, sizeof(why)) ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why))) {
        cw_seterr(errstr, errstr_size, "topic '%s': %s", topic, why);
        goto done;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        cw_seterr(errstr, errstr_size, "topic '%s': no answer from %s within %d ms", topic,
                  brokers, timeout_ms + 5000);
        goto done;
    }
    if (rd_kafka_event_error(ev)) {
        cw_seterr(errstr, errstr_size, "creating topic '%s': %s", topic,
                  rd_kafka_event_error_string(ev));
        goto done;
    }
    {
        size_t n = 0;
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        rd_kafka_resp_err_t err = n == 1 ? rd_kafka_topic_result_error(tr[0])
                                         : RD_KAFKA_RESP_ERR__FAIL;
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = 0;
        } else if (err) {
            const char *msg = n == 1 ? rd_kafka_topic_result_error_string(tr[0]) : NULL;
            cw_seterr(errstr, errstr_size, "creating topic '%s': %s", topic,
                      msg ? msg : rd_kafka_err2str(err));
        } else {
            if (created) *created = 1;
            rc = 0;
        }
    }
done:
    if (ev) rd_kafka_event_destroy(ev);
    if (q) rd_kafka_queue_destroy(q);
    if (opts) rd_kafka_AdminOptions_destroy(opts);
    if (nt) rd_kafka_NewTopic_destroy(nt);
    if (rk) rd_kafka_destroy(rk);
    return rc;
}

cw_kafka_mock_t *cw_kafka_mock_new(int nbrokers, char *errstr, size_t errstr_size) {
    char why[512];
    cw_kafka_mock_t *mk = cw_calloc(1, sizeof(*mk));
    /* The owner handle only does the cluster's bookkeeping; it never
     * connects anywhere, so it needs no bootstrap servers. */
    rd_kafka_conf_t *conf = cw_kafka_conf_new(NULL, errstr, errstr_size);
    if (!conf) goto fail;
    if (cw_kafka_conf_set(conf, "client.id", "catwire-embedded-broker", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    mk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!mk->rk) {
        rd_kafka_conf_destroy(conf);
        cw_seterr(errstr, errstr_size, "embedded broker: %s", why);
        goto fail;
    }
    mk->mcluster = rd_kafka_mock_cluster_new(mk->rk, nbrokers);
    if (!mk->mcluster) {
        cw_seterr(errstr, errstr_size, "embedded broker: could not start the mock cluster");
        goto fail;
    }
    return mk;
fail:
    cw_kafka_mock_destroy(mk);
    return NULL;
}

const char *cw_kafka_mock_bootstraps(const cw_kafka_mock_t *mk) {
    return rd_kafka_mock_cluster_bootstraps(mk->mcluster);
}

int cw_kafka_mock_create_topic(cw_kafka_mock_t *mk, const char *topic, int partitions,
                               char *errstr, size_t errstr_size) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mk->mcluster, topic, partitions, 1);
    if (err) {
        cw_seterr(errstr, errstr_size, "embedded broker: creating topic '%s': %s", topic,
                  rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

void cw_kafka_mock_destroy(cw_kafka_mock_t *mk) {
    if (!mk) return;
    if (mk->mcluster) rd_kafka_mock_cluster_destroy(mk->mcluster);
    if (mk->rk) rd_kafka_destroy(mk->rk);
    cw_free(mk);
}

int cw_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                             char *errstr, size_t errstr_size) {
    double deadline = cw_now_s() + timeout_ms / 1000.0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int count = -1;
    if (!rkt) {
        cw_seterr(errstr, errstr_size, "topic '%s': %s", topic,
                  rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int left = (int)((deadline - cw_now_s()) * 1000.0);
        err = rd_kafka_metadata(rk, 0, rkt, &md, left > 1000 ? left : 1000);
        if (!err) {
            if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
                count = md->topics[0].partition_cnt;
            else if (md->topic_cnt == 1)
                err = md->topics[0].err ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            rd_kafka_metadata_destroy(md);
        }
        if (count > 0 || cw_now_s() >= deadline) break;
        rd_kafka_poll(rk, 100); /* topic may still be propagating */
    }
    rd_kafka_topic_destroy(rkt);
    if (count < 0)
        cw_seterr(errstr, errstr_size, "topic '%s': %s", topic,
                  rd_kafka_err2str(err ? err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    return count;
}
