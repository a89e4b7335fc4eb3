/* config.h: the worker's configuration (libconfig file).
 *
 * One table of keys (name, type, default, range, help) in config.c drives
 * parsing, validation, --dump-config and the commented example in
 * deploy/worker.conf, through the shared engine common/conftab.h. Unknown keys are errors reported as "FILE:LINE: unknown
 * key 'x'"; every value is checked (type, range, enum) and errors name the
 * key and line. Keys inside the `kafka` group are passed verbatim to
 * librdkafka (rd_kafka_conf_set), so SASL/SSL and tuning need no code; a key
 * librdkafka refuses is reported with its line too.
 *
 * The configuration is set once at start-up and then read-only. */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conftab.h"

/* One librdkafka property from the `kafka` group (key with dots). */
typedef cw_conftab_kv_t cw_kv_t;

typedef struct cw_worker_conf_s {
    char *brokers;              /* bootstrap.servers */
    char *input_topic;
    char *output_topic;
    char *dead_letter_topic;
    char *control_topic;        /* model announcements (rollout) */
    char *group_id;
    char *registry;             /* model registry directory */
    char *model;                /* model name in the registry ("NAME" or "NAME@V") */
    char *fleet;                /* pin name for rollout ("" = follow current) */
    char *device;               /* cpu | cuda | cuda:N | auto */
    char *worker_id;            /* instance id in results ("" = hostname-pid) */
    char *processing_guarantee; /* at_least_once | exactly_once */
    char *log_level;
    int64_t max_articles;       /* batch size limit */
    int64_t max_wait_ms;        /* batch time limit after its first article */
    int64_t compute_threads;    /* threads featurizing a batch, the model step's own included */
    int64_t pipeline_min_articles; /* batches this big: model step on the model thread (0: never) */
    int64_t commit_interval_ms; /* exactly_once: how long one transaction spans */
    int64_t stats_interval_ms;
    int64_t shutdown_timeout_ms;
    int64_t reload_poll_ms;     /* registry watch interval */
    int allow_label_change;     /* accept a new model with different labels */
    int skip_model;             /* passthrough mode for benchmarks: no forward pass */
    cw_kv_t *kafka;             /* passthrough librdkafka properties */
    size_t nkafka;
} cw_worker_conf_t;

void cw_worker_conf_defaults(cw_worker_conf_t *c);
/* Load a file over the defaults. 0 or -1 with errstr "FILE:LINE: ...". */
int cw_worker_conf_load(cw_worker_conf_t *c, const char *path, char *errstr, size_t errstr_size);
/* Set one key from a string (tests, the embedded demo); "kafka.X" sets a
 * librdkafka property. 0 or -1 with errstr. */
int cw_worker_conf_set(cw_worker_conf_t *c, const char *key, const char *value,
                       char *errstr, size_t errstr_size);
/* Print the effective configuration in libconfig syntax, with help comments. */
void cw_worker_conf_dump(const cw_worker_conf_t *c, FILE *f);
void cw_worker_conf_free(cw_worker_conf_t *c);

#endif
