/* config.c: the worker's configuration: its table of keys for the shared
 * engine (common/conftab.h), which sets the defaults, parses the libconfig
 * file, validates values (errors carry FILE:LINE) and prints --dump-config.
 *
 * The `kafka` group holds librdkafka properties (written with '_' for '.'),
 * checked with rd_kafka_conf_set() when read. A few properties are owned by
 * the worker itself (they carry its delivery guarantee) and are refused
 * there, with the key to use instead. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const cw_guarantees[] = {"at_least_once", "exactly_once", NULL};
static const char *const cw_log_levels[] = {"error", "warn", "info", "debug", NULL};

/* cpu | cuda | cuda:N | auto. Whether the build has CUDA is checked when the
 * backend is created, with the list of what this build has. */
static int cw_conf_check_device(const char *v, char *why, size_t why_size) {
    if (!strcmp(v, "cpu") || !strcmp(v, "cuda") || !strcmp(v, "auto")) return 0;
    if (!strncmp(v, "cuda:", 5) && v[5]) {
        char *end = NULL;
        errno = 0;
        long n = strtol(v + 5, &end, 10);
        if (!errno && *end == '\0' && n >= 0 && n < 1024 && v[5] != '-' && v[5] != '+') return 0;
    }
    cw_seterr(why, why_size, "'%s' is not one of cpu, cuda, cuda:N, auto", v);
    return -1;
}

#define CW_OFF(field) offsetof(cw_worker_conf_t, field)
static const cw_conftab_key_t cw_conf_keys[] = {
    {"brokers", CW_CONFTAB_STR, CW_OFF(brokers), "localhost:9092", 0, 0, NULL, 1, NULL,
     "Kafka bootstrap servers, host:port[,host:port...]"},
    {"input_topic", CW_CONFTAB_STR, CW_OFF(input_topic), "articles", 0, 0, NULL, 1, NULL,
     "topic the articles (msgpack, schemas/README.md) are read from"},
    {"output_topic", CW_CONFTAB_STR, CW_OFF(output_topic), "results", 0, 0, NULL, 1, NULL,
     "topic one result per article is written to"},
    {"dead_letter_topic", CW_CONFTAB_STR, CW_OFF(dead_letter_topic), "articles.dead", 0, 0, NULL, 1,
     NULL, "topic undecodable or invalid articles go to, with catwire.* headers"},
    {"control_topic", CW_CONFTAB_STR, CW_OFF(control_topic), "catwire.control", 0, 0, NULL, 0, NULL,
     "topic model versions are announced on (hot reload)"},
    {"group_id", CW_CONFTAB_STR, CW_OFF(group_id), "catwire-worker", 0, 0, NULL, 1, NULL,
     "consumer group; workers with the same group share the input partitions"},
    {"registry", CW_CONFTAB_STR, CW_OFF(registry), "models", 0, 0, NULL, 1, NULL,
     "model registry directory"},
    {"model", CW_CONFTAB_STR, CW_OFF(model), "news", 0, 0, NULL, 1, NULL,
     "model to serve: NAME (its current version) or NAME@VERSION"},
    {"fleet", CW_CONFTAB_STR, CW_OFF(fleet), "", 0, 0, NULL, 0, NULL,
     "pin name for rollouts (\"\" = follow the current version)"},
    {"device", CW_CONFTAB_STR, CW_OFF(device), "cpu", 0, 0, NULL, 1, cw_conf_check_device,
     "where the model runs: cpu, cuda, cuda:N or auto"},
    {"worker_id", CW_CONFTAB_STR, CW_OFF(worker_id), "", 0, 0, NULL, 0, NULL,
     "instance id written into results (\"\" = hostname-pid); keep it stable across "
     "restarts in exactly_once mode, it names the transactional producer"},
    {"processing_guarantee", CW_CONFTAB_STR, CW_OFF(processing_guarantee), "at_least_once", 0, 0,
     cw_guarantees, 1, NULL,
     "at_least_once (offsets stored after results are acknowledged) or exactly_once "
     "(transactions)"},
    {"log_level", CW_CONFTAB_STR, CW_OFF(log_level), "info", 0, 0, cw_log_levels, 1, NULL,
     "error, warn, info or debug"},
    {"max_articles", CW_CONFTAB_INT, CW_OFF(max_articles), "256", 1, 65536, NULL, 0, NULL,
     "micro-batch size limit (articles per forward pass)"},
    {"max_wait_ms", CW_CONFTAB_INT, CW_OFF(max_wait_ms), "5", 0, 60000, NULL, 0, NULL,
     "micro-batch time limit, counted from the batch's first article"},
    {"compute_threads", CW_CONFTAB_INT, CW_OFF(compute_threads), "1", 1, 64, NULL, 0, NULL,
     "threads that tokenize and featurize a batch (the one running its model step included: "
     "the model thread, or the worker thread); batches under 128 articles use one"},
    {"pipeline_min_articles", CW_CONFTAB_INT, CW_OFF(pipeline_min_articles), "512", 0, 65536, NULL, 0,
     NULL,
     "batches of at least this many articles run their model step (tokenize, featurize, "
     "forward) on a model thread while the worker thread sends the previous batch's results "
     "and gathers and decodes the next (0 = never: the model step on the worker thread); "
     "results go out in input order either way"},
    {"commit_interval_ms", CW_CONFTAB_INT, CW_OFF(commit_interval_ms), "100", 0, 60000, NULL, 0,
     NULL, "exactly_once: a transaction spans the batches of this many ms"},
    {"stats_interval_ms", CW_CONFTAB_INT, CW_OFF(stats_interval_ms), "10000", 0, 86400000, NULL, 0,
     NULL, "period of the stats log line (0 = never)"},
    {"shutdown_timeout_ms", CW_CONFTAB_INT, CW_OFF(shutdown_timeout_ms), "10000", 100, 600000, NULL,
     0, NULL, "on SIGTERM, how long to wait for in-flight deliveries"},
    {"reload_poll_ms", CW_CONFTAB_INT, CW_OFF(reload_poll_ms), "250", 50, 3600000, NULL, 0, NULL,
     "registry watch interval for new model versions"},
    {"allow_label_change", CW_CONFTAB_BOOL, CW_OFF(allow_label_change), "false", 0, 1, NULL, 0,
     NULL, "accept a new model version whose labels differ from the serving one"},
    {"skip_model", CW_CONFTAB_BOOL, CW_OFF(skip_model), "false", 0, 1, NULL, 0, NULL,
     "benchmark passthrough: no tokenizing or forward pass, results carry label_id 0"},
};

/* librdkafka properties the worker sets itself: key -> what to use instead. */
static const char *const cw_kafka_reserved[][2] = {
    {"bootstrap.servers", "the top-level 'brokers' key"},
    {"metadata.broker.list", "the top-level 'brokers' key"},
    {"group.id", "the top-level 'group_id' key"},
    {"enable.auto.offset.store", "nothing: the worker stores offsets after acknowledgement"},
    {"enable.auto.commit", "'processing_guarantee'"},
    {"transactional.id", "'worker_id' (exactly_once derives it from group_id and worker_id)"},
    {"partition.assignment.strategy", "nothing: the worker uses cooperative-sticky"},
    {"enable.partition.eof", "nothing: the worker needs it off"},
};

/* Rules across keys, checked once the whole file is read. */
static int cw_conf_check_all(const void *conf, char *why, size_t why_size) {
    const cw_worker_conf_t *c = conf;
    if (!strcmp(c->input_topic, c->output_topic)) {
        cw_seterr(why, why_size, "output_topic must differ from input_topic ('%s')",
                  c->input_topic);
        return -1;
    }
    if (!strcmp(c->input_topic, c->dead_letter_topic)) {
        cw_seterr(why, why_size, "dead_letter_topic must differ from input_topic ('%s')",
                  c->input_topic);
        return -1;
    }
    return 0;
}

/* Secrets are not printed: a dump ends up in logs and tickets. */
static const char *const cw_kafka_secrets[] = {"password", "secret", ".pem", "sasl.jaas", NULL};

static const cw_conftab_t cw_worker_conftab = {
    .owner = "worker",
    .size = sizeof(cw_worker_conf_t),
    .keys = cw_conf_keys,
    .nkeys = sizeof(cw_conf_keys) / sizeof(cw_conf_keys[0]),
    .kafka_off = offsetof(cw_worker_conf_t, kafka),
    .nkafka_off = offsetof(cw_worker_conf_t, nkafka),
    .reserved = cw_kafka_reserved,
    .nreserved = sizeof(cw_kafka_reserved) / sizeof(cw_kafka_reserved[0]),
    .secrets = cw_kafka_secrets,
    .check = cw_conf_check_all,
    .dump_header = "# catwire-worker configuration (libconfig syntax).\n"
                   "# Run `catwire-worker --config FILE --check-config` to validate a file.\n\n",
    .dump_annotate = 1,
    .dump_kafka_comment =
        "# librdkafka properties for both the consumer and the producer\n"
        "# (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md),\n"
        "# written with '_' for '.': security_protocol = \"SASL_SSL\";\n",
};

void cw_worker_conf_defaults(cw_worker_conf_t *c) { cw_conftab_defaults(&cw_worker_conftab, c); }

int cw_worker_conf_load(cw_worker_conf_t *c, const char *path, char *errstr, size_t errstr_size) {
    return cw_conftab_load(&cw_worker_conftab, c, path, errstr, errstr_size);
}

int cw_worker_conf_set(cw_worker_conf_t *c, const char *key, const char *value, char *errstr,
                       size_t errstr_size) {
    return cw_conftab_set(&cw_worker_conftab, c, key, value, errstr, errstr_size);
}

void cw_worker_conf_dump(const cw_worker_conf_t *c, FILE *f) {
    cw_conftab_dump(&cw_worker_conftab, c, f);
}

void cw_worker_conf_free(cw_worker_conf_t *c) { cw_conftab_free(&cw_worker_conftab, c); }
