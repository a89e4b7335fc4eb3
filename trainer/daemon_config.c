/* daemon_config.c: the trainer daemon's configuration: its table of keys
 * for the shared engine (common/conftab.h), which sets the defaults, parses
 * the libconfig file (errors carry FILE:LINE), validates values and prints
 * --dump-config. The `kafka` group holds librdkafka properties, written with
 * '_' for '.'; the few properties the daemon owns are refused there with the
 * key to use instead. */
#include "daemon_config.h"

#include <string.h>

#include "util.h"

static const char *const cw_dc_recipes[] = {"default", "seed", "fasttext", NULL};
static const char *const cw_dc_levels[] = {"error", "warn", "info", "debug", NULL};

#define CW_DOFF(f) offsetof(cw_daemon_conf_t, f)
static const cw_conftab_key_t cw_dconf_keys[] = {
    {"registry", CW_CONFTAB_STR, CW_DOFF(registry), "models", 0, 0, NULL, 1, NULL,
     "model registry directory new versions are published to"},
    {"model", CW_CONFTAB_STR, CW_DOFF(model), "news", 0, 0, NULL, 1, NULL, "model name in the registry"},
    {"spool_dir", CW_CONFTAB_STR, CW_DOFF(spool_dir), "spool", 0, 0, NULL, 1, NULL,
     "directory watched for new labelled CSV files (*.csv, names not starting with '.'); "
     "taken files move to spool_dir/done, refused ones to spool_dir/failed with a .reason file"},
    {"state_dir", CW_CONFTAB_STR, CW_DOFF(state_dir), "", 0, 0, NULL, 0, NULL,
     "where accumulated training data is kept (\"\" = spool_dir/state)"},
    {"base_train", CW_CONFTAB_STR, CW_DOFF(base_train), "", 0, 0, NULL, 0, NULL,
     "base training CSV every retraining starts from (\"\" = none)"},
    {"holdout", CW_CONFTAB_STR, CW_DOFF(holdout), "", 0, 0, NULL, 0, NULL,
     "held-out CSV the quality gate scores new and current versions on (required)"},
    {"labels", CW_CONFTAB_STR, CW_DOFF(labels), "", 0, 0, NULL, 0, NULL,
     "label names A,B,C (class number N in a CSV means the N-th); \"\" = the current "
     "version's labels, else discovered from base_train"},
    {"recipe", CW_CONFTAB_STR, CW_DOFF(recipe), "default", 0, 0, cw_dc_recipes, 1, NULL,
     "training recipe: default (NB-SVM, C by cross-validation), seed (the notebook) or fasttext "
     "(fastText-style SGD ensemble)"},
    {"dim", CW_CONFTAB_INT, CW_DOFF(dim), "0", 0, 4096, NULL, 0, NULL,
     "embedding size, seed and fasttext recipes (0 = the recipe's; the default recipe has one per label)"},
    {"epochs", CW_CONFTAB_INT, CW_DOFF(epochs), "0", 0, 1000, NULL, 0, NULL,
     "epochs, seed and fasttext recipes (0 = the recipe's)"},
    {"ngram", CW_CONFTAB_INT, CW_DOFF(ngram), "0", 0, 8, NULL, 0, NULL, "word n-gram order (0 = the recipe's)"},
    {"threads", CW_CONFTAB_INT, CW_DOFF(threads), "0", 0, 1024, NULL, 0, NULL,
     "training threads (0 = all CPUs; 1 = repeatable weights)"},
    {"seed", CW_CONFTAB_INT, CW_DOFF(seed), "1", 0, 1e15, NULL, 0, NULL, "random seed"},
    {"min_new_examples", CW_CONFTAB_INT, CW_DOFF(min_new_examples), "1000", 1, 1e12, NULL, 0, NULL,
     "retrain as soon as this many new labelled examples arrived"},
    {"retrain_interval_s", CW_CONFTAB_INT, CW_DOFF(retrain_interval_s), "0", 0, 1e9, NULL, 0, NULL,
     "also retrain this often when any new example arrived (0 = only min_new_examples)"},
    {"spool_poll_ms", CW_CONFTAB_INT, CW_DOFF(spool_poll_ms), "1000", 10, 3600000, NULL, 0, NULL,
     "how often the spool directory is scanned"},
    {"max_accuracy_drop", CW_CONFTAB_FLOAT, CW_DOFF(max_accuracy_drop), "0.01", 0, 1, NULL, 0, NULL,
     "quality gate: a new version becomes current only if its held-out accuracy is at least "
     "the current version's minus this"},
    {"bootstrap", CW_CONFTAB_BOOL, CW_DOFF(bootstrap), "true", 0, 1, NULL, 0, NULL,
     "train a first version at start when the model has none"},
    {"brokers", CW_CONFTAB_STR, CW_DOFF(brokers), "", 0, 0, NULL, 0, NULL,
     "Kafka bootstrap servers (\"\" = no Kafka: spool only, no announcements)"},
    {"labelled_topic", CW_CONFTAB_STR, CW_DOFF(labelled_topic), "", 0, 0, NULL, 0, NULL,
     "topic of labelled articles (schemas/README.md, \"Labelled articles\"; \"\" = none)"},
    {"control_topic", CW_CONFTAB_STR, CW_DOFF(control_topic), "catwire.control", 0, 0, NULL, 0, NULL,
     "topic each new current version is announced on (\"\" = none)"},
    {"group_id", CW_CONFTAB_STR, CW_DOFF(group_id), "catwire-trainer", 0, 0, NULL, 1, NULL,
     "consumer group for labelled_topic (offsets are committed once the data is on disk)"},
    {"log_level", CW_CONFTAB_STR, CW_DOFF(log_level), "info", 0, 0, cw_dc_levels, 1, NULL,
     "error, warn, info or debug"},
};

static const char *const cw_dc_reserved[][2] = {
    {"bootstrap.servers", "the top-level 'brokers' key"},
    {"metadata.broker.list", "the top-level 'brokers' key"},
    {"group.id", "the top-level 'group_id' key"},
    {"enable.auto.commit", "nothing: offsets are committed once the data is on disk"},
    {"enable.auto.offset.store", "nothing: offsets are committed once the data is on disk"},
};

int cw_daemon_conf_check(const cw_daemon_conf_t *c, char *errstr, size_t errstr_size) {
    if (!*c->holdout) {
        cw_seterr(errstr, errstr_size, "'holdout' is required: the quality gate scores versions on it");
        return -1;
    }
    if (*c->labelled_topic && !*c->brokers) {
        cw_seterr(errstr, errstr_size, "labelled_topic '%s' needs 'brokers'", c->labelled_topic);
        return -1;
    }
    if (*c->labelled_topic && *c->control_topic && !strcmp(c->labelled_topic, c->control_topic)) {
        cw_seterr(errstr, errstr_size, "labelled_topic and control_topic must differ ('%s')", c->control_topic);
        return -1;
    }
    return 0;
}

static int cw_dc_check(const void *conf, char *why, size_t why_size) {
    return cw_daemon_conf_check(conf, why, why_size);
}

/* Values of properties that may hold secrets are not printed. */
static const char *const cw_dc_secrets[] = {"password", "secret", ".key", "token", "jaas", NULL};

static const cw_conftab_t cw_daemon_conftab = {
    .owner = "daemon",
    .size = sizeof(cw_daemon_conf_t),
    .keys = cw_dconf_keys,
    .nkeys = sizeof(cw_dconf_keys) / sizeof(cw_dconf_keys[0]),
    .kafka_off = offsetof(cw_daemon_conf_t, kafka),
    .nkafka_off = offsetof(cw_daemon_conf_t, nkafka),
    .reserved = cw_dc_reserved,
    .nreserved = sizeof(cw_dc_reserved) / sizeof(cw_dc_reserved[0]),
    .secrets = cw_dc_secrets,
    .check = cw_dc_check,
    .dump_kafka_comment = "# librdkafka properties ('_' for '.')\n",
};

void cw_daemon_conf_defaults(cw_daemon_conf_t *c) { cw_conftab_defaults(&cw_daemon_conftab, c); }

int cw_daemon_conf_load(cw_daemon_conf_t *c, const char *path, char *errstr, size_t errstr_size) {
    return cw_conftab_load(&cw_daemon_conftab, c, path, errstr, errstr_size);
}

int cw_daemon_conf_set(cw_daemon_conf_t *c, const char *key, const char *value, char *errstr, size_t errstr_size) {
    return cw_conftab_set(&cw_daemon_conftab, c, key, value, errstr, errstr_size);
}

void cw_daemon_conf_dump(const cw_daemon_conf_t *c, FILE *f) { cw_conftab_dump(&cw_daemon_conftab, c, f); }

void cw_daemon_conf_free(cw_daemon_conf_t *c) { cw_conftab_free(&cw_daemon_conftab, c); }
