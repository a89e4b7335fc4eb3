/* kafka_util.h: Kafka plumbing shared by the catwire tools (publish, tail,
 * demo) and the end-to-end benchmark: client configuration with catwire's
 * log sink, topic creation, and the embedded broker.
 *
 * The embedded broker is librdkafka's mock cluster. It listens on localhost,
 * so other processes (catwire-worker, catwire tail) can connect to the
 * address cw_kafka_mock_bootstraps() returns. Know its limit (librdkafka
 * 2.0.2): each partition keeps at most about 5 MiB (or 100,000 message sets)
 * and silently drops the oldest data beyond that, so callers stream (consume
 * while producing) and spread load over enough partitions; no delivery
 * guarantee can be tested against it. It does not implement the Admin
 * CreateTopics API, hence cw_kafka_mock_create_topic().
 *
 * Errors: functions return 0 or -1 (constructors NULL) and fill errstr.
 * Threads: a cw_kafka_mock_t may be used from any thread; the mock cluster
 * runs on its own librdkafka threads until destroyed. */
#ifndef CW_KAFKA_UTIL_H
#define CW_KAFKA_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* A client configuration: bootstrap.servers = brokers (may be NULL), logs
 * routed to cw_log() under component "rdkafka". NULL with errstr when
 * librdkafka refuses brokers. */
rd_kafka_conf_t *cw_kafka_conf_new(const char *brokers, char *errstr, size_t errstr_size);

/* Set one property; errstr names it ("kafka property 'x': ..."). */
int cw_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                      char *errstr, size_t errstr_size);

/* Set "KEY=VALUE" (the tools' -X option). */
int cw_kafka_conf_set_kv(rd_kafka_conf_t *conf, const char *kv, char *errstr, size_t errstr_size);

/* Create topic with partitions partitions (replication factor 1) on a real
 * cluster through the Admin API, waiting up to timeout_ms. An existing
 * topic is fine (returns 0; *created, when not NULL, tells which). */
int cw_kafka_create_topic(const char *brokers, const char *topic, int partitions,
                          int timeout_ms, int *created, char *errstr, size_t errstr_size);

/* The embedded broker. */
typedef struct cw_kafka_mock_s cw_kafka_mock_t;

cw_kafka_mock_t *cw_kafka_mock_new(int nbrokers, char *errstr, size_t errstr_size);
/* "127.0.0.1:PORT[,...]": valid until cw_kafka_mock_destroy(). */
const char *cw_kafka_mock_bootstraps(const cw_kafka_mock_t *mk);
int cw_kafka_mock_create_topic(cw_kafka_mock_t *mk, const char *topic, int partitions,
                               char *errstr, size_t errstr_size);
/* Stops the listeners; clients still connected see the brokers go away. */
void cw_kafka_mock_destroy(cw_kafka_mock_t *mk);

/* Partition count of topic as the cluster reports it (-1 with errstr when
 * the topic is unknown after timeout_ms). */
int cw_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                             char *errstr, size_t errstr_size);

#endif
