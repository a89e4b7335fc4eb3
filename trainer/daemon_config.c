/* daemon_config.c: the trainer daemon's configuration, driven by one table.
 *
 * cw_dconf_keys[] gives each key its type, default, range and help; the
 * same table sets the defaults, parses the libconfig file (errors carry
 * FILE:LINE), validates values and prints --dump-config. The `kafka` group
 * holds librdkafka properties, written with '_' for '.' because libconfig
 * names cannot hold dots; the few properties the daemon owns are refused
 * there with the key to use instead. */
#include "daemon_config.h"

#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { CW_DC_STR, CW_DC_INT, CW_DC_BOOL, CW_DC_FLOAT } cw_dc_type_t;

typedef struct cw_dc_key_s {
    const char *name;
    cw_dc_type_t type;
    size_t off;
    const char *def;
    double min, max;             /* INT and FLOAT range */
    const char *const *choices;  /* STR enum, NULL-terminated */
    int required;                /* STR must be non-empty */
    const char *help;
} cw_dc_key_t;

static const char *const cw_dc_recipes[] = {"default", "seed", NULL};
static const char *const cw_dc_levels[] = {"error", "warn", "info", "debug", NULL};

#define CW_DOFF(f) offsetof(cw_daemon_conf_t, f)
static const cw_dc_key_t cw_dconf_keys[] = {
    {"registry", CW_DC_STR, CW_DOFF(registry), "models", 0, 0, NULL, 1,
     "model registry directory new versions are published to"},
    {"model", CW_DC_STR, CW_DOFF(model), "news", 0, 0, NULL, 1, "model name in the registry"},
    {"spool_dir", CW_DC_STR, CW_DOFF(spool_dir), "spool", 0, 0, NULL, 1,
     "directory watched for new labelled CSV files (*.csv, names not starting with '.'); "
     "taken files move to spool_dir/done, refused ones to spool_dir/failed with a .reason file"},
    {"state_dir", CW_DC_STR, CW_DOFF(state_dir), "", 0, 0, NULL, 0,
     "where accumulated training data is kept (\"\" = spool_dir/state)"},
    {"base_train", CW_DC_STR, CW_DOFF(base_train), "", 0, 0, NULL, 0,
     "base training CSV every retraining starts from (\"\" = none)"},
    {"holdout", CW_DC_STR, CW_DOFF(holdout), "", 0, 0, NULL, 0,
     "held-out CSV the quality gate scores new and current versions on (required)"},
    {"labels", CW_DC_STR, CW_DOFF(labels), "", 0, 0, NULL, 0,
     "label names A,B,C (class number N in a CSV means the N-th); \"\" = the current "
     "version's labels, else discovered from base_train"},
    {"recipe", CW_DC_STR, CW_DOFF(recipe), "default", 0, 0, cw_dc_recipes, 1,
     "training recipe: default (fastText-style) or seed (the notebook)"},
    {"dim", CW_DC_INT, CW_DOFF(dim), "0", 0, 4096, NULL, 0, "embedding size (0 = the recipe's)"},
    {"epochs", CW_DC_INT, CW_DOFF(epochs), "0", 0, 1000, NULL, 0, "epochs (0 = the recipe's)"},
    {"ngram", CW_DC_INT, CW_DOFF(ngram), "0", 0, 8, NULL, 0, "word n-gram order (0 = the recipe's)"},
    {"threads", CW_DC_INT, CW_DOFF(threads), "0", 0, 1024, NULL, 0,
     "training threads (0 = all CPUs; 1 = repeatable weights)"},
    {"seed", CW_DC_INT, CW_DOFF(seed), "1", 0, 1e15, NULL, 0, "random seed"},
    {"min_new_examples", CW_DC_INT, CW_DOFF(min_new_examples), "1000", 1, 1e12, NULL, 0,
     "retrain as soon as this many new labelled examples arrived"},
    {"retrain_interval_s", CW_DC_INT, CW_DOFF(retrain_interval_s), "0", 0, 1e9, NULL, 0,
     "also retrain this often when any new example arrived (0 = only min_new_examples)"},
    {"spool_poll_ms", CW_DC_INT, CW_DOFF(spool_poll_ms), "1000", 10, 3600000, NULL, 0,
     "how often the spool directory is scanned"},
    {"max_accuracy_drop", CW_DC_FLOAT, CW_DOFF(max_accuracy_drop), "0.01", 0, 1, NULL, 0,
     "quality gate: a new version becomes current only if its held-out accuracy is at least "
     "the current version's minus this"},
    {"bootstrap", CW_DC_BOOL, CW_DOFF(bootstrap), "true", 0, 1, NULL, 0,
     "train a first version at start when the model has none"},
    {"brokers", CW_DC_STR, CW_DOFF(brokers), "", 0, 0, NULL, 0,
     "Kafka bootstrap servers (\"\" = no Kafka: spool only, no announcements)"},
    {"labelled_topic", CW_DC_STR, CW_DOFF(labelled_topic), "", 0, 0, NULL, 0,
     "topic of labelled articles (schemas/README.md, \"Labelled articles\"; \"\" = none)"},
    {"control_topic", CW_DC_STR, CW_DOFF(control_topic), "catwire.control", 0, 0, NULL, 0,
     "topic each new current version is announced on (\"\" = none)"},
    {"group_id", CW_DC_STR, CW_DOFF(group_id), "catwire-trainer", 0, 0, NULL, 1,
     "consumer group for labelled_topic (offsets are committed once the data is on disk)"},
    {"log_level", CW_DC_STR, CW_DOFF(log_level), "info", 0, 0, cw_dc_levels, 1,
     "error, warn, info or debug"},
};
#define CW_DC_NKEYS (sizeof(cw_dconf_keys) / sizeof(cw_dconf_keys[0]))

static const char *const cw_dc_reserved[][2] = {
    {"bootstrap.servers", "the top-level 'brokers' key"},
    {"metadata.broker.list", "the top-level 'brokers' key"},
    {"group.id", "the top-level 'group_id' key"},
    {"enable.auto.commit", "nothing: offsets are committed once the data is on disk"},
    {"enable.auto.offset.store", "nothing: offsets are committed once the data is on disk"},
};

static void *cw_dc_field(cw_daemon_conf_t *c, const cw_dc_key_t *k) { return (char *)c + k->off; }

static const cw_dc_key_t *cw_dc_find(const char *name) {
    for (size_t i = 0; i < CW_DC_NKEYS; i++)
        if (!strcmp(cw_dconf_keys[i].name, name)) return &cw_dconf_keys[i];
    return NULL;
}

static int cw_dc_set_str(cw_daemon_conf_t *c, const cw_dc_key_t *k, const char *v, char *why, size_t why_size) {
    if (k->required && !*v) {
        cw_seterr(why, why_size, "must not be empty");
        return -1;
    }
    if (k->choices) {
        size_t i;
        for (i = 0; k->choices[i]; i++)
            if (!strcmp(k->choices[i], v)) break;
        if (!k->choices[i]) {
            char list[200] = "";
            size_t u = 0;
            for (size_t j = 0; k->choices[j] && u < sizeof(list); j++)
                u += (size_t)snprintf(list + u, sizeof(list) - u, "%s%s", j ? ", " : "", k->choices[j]);
            cw_seterr(why, why_size, "'%s' is not one of %s", v, list);
            return -1;
        }
    }
    char **f = cw_dc_field(c, k);
    cw_free(*f);
    *f = cw_strdup(v);
    return 0;
}

static int cw_dc_set_num(cw_daemon_conf_t *c, const cw_dc_key_t *k, double v, char *why, size_t why_size) {
    if (!(v >= k->min && v <= k->max)) {
        cw_seterr(why, why_size, "%g is out of range [%g, %g]", v, k->min, k->max);
        return -1;
    }
    if (k->type == CW_DC_INT) *(int64_t *)cw_dc_field(c, k) = (int64_t)v;
    else *(double *)cw_dc_field(c, k) = v;
    return 0;
}

static int cw_dc_set_text(cw_daemon_conf_t *c, const cw_dc_key_t *k, const char *v, char *why, size_t why_size) {
    char *end = NULL;
    switch (k->type) {
    case CW_DC_STR:
        return cw_dc_set_str(c, k, v, why, why_size);
    case CW_DC_INT: {
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            cw_seterr(why, why_size, "expected an integer, got '%s'", v);
            return -1;
        }
        return cw_dc_set_num(c, k, (double)n, why, why_size);
    }
    case CW_DC_FLOAT: {
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end) {
            cw_seterr(why, why_size, "expected a number, got '%s'", v);
            return -1;
        }
        return cw_dc_set_num(c, k, d, why, why_size);
    }
    case CW_DC_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) *(int *)cw_dc_field(c, k) = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) *(int *)cw_dc_field(c, k) = 0;
        else {
            cw_seterr(why, why_size, "expected a boolean (true or false), got '%s'", v);
            return -1;
        }
        return 0;
    }
    return -1;
}

static int cw_dc_kafka_put(cw_daemon_conf_t *c, rd_kafka_conf_t *scratch, const char *key, const char *value,
                           int line, char *why, size_t why_size) {
    for (size_t i = 0; i < sizeof(cw_dc_reserved) / sizeof(cw_dc_reserved[0]); i++) {
        if (!strcmp(key, cw_dc_reserved[i][0])) {
            cw_seterr(why, why_size, "kafka property '%s' is set by the daemon; use %s", key, cw_dc_reserved[i][1]);
            return -1;
        }
    }
    char rderr[512];
    if (rd_kafka_conf_set(scratch, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        cw_seterr(why, why_size, "kafka property '%s': %s", key, rderr);
        return -1;
    }
    for (size_t i = 0; i < c->nkafka; i++) {
        if (!strcmp(c->kafka[i].key, key)) {
            cw_free(c->kafka[i].value);
            c->kafka[i].value = cw_strdup(value);
            c->kafka[i].line = line;
            return 0;
        }
    }
    c->kafka = cw_realloc(c->kafka, (c->nkafka + 1) * sizeof(*c->kafka));
    c->kafka[c->nkafka].key = cw_strdup(key);
    c->kafka[c->nkafka].value = cw_strdup(value);
    c->kafka[c->nkafka].line = line;
    c->nkafka++;
    return 0;
}

void cw_daemon_conf_defaults(cw_daemon_conf_t *c) {
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < CW_DC_NKEYS; i++) {
        char why[256];
        if (cw_dc_set_text(c, &cw_dconf_keys[i], cw_dconf_keys[i].def, why, sizeof(why)) != 0) abort();
    }
}

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

static const char *cw_dc_type_name(int t) {
    switch (t) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "an unknown type";
    }
}

static int cw_dc_load_kafka(cw_daemon_conf_t *c, config_setting_t *grp, const char *path, char *errstr,
                            size_t errstr_size) {
    int rc = -1;
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    if (!config_setting_is_group(grp)) {
        cw_seterr(errstr, errstr_size, "%s:%d: key 'kafka': expected a group { ... }, got %s", path,
                  config_setting_source_line(grp), cw_dc_type_name(config_setting_type(grp)));
        goto done;
    }
    for (int i = 0; i < config_setting_length(grp); i++) {
        config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        int line = config_setting_source_line(s);
        char key[256], value[64], why[768];
        const char *v = value;
        snprintf(key, sizeof(key), "%s", config_setting_name(s));
        for (char *p = key; *p; p++)
            if (*p == '_') *p = '.';
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_STRING: v = config_setting_get_string(s); break;
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64: snprintf(value, sizeof(value), "%lld", config_setting_get_int64(s)); break;
        case CONFIG_TYPE_FLOAT: snprintf(value, sizeof(value), "%.17g", config_setting_get_float(s)); break;
        case CONFIG_TYPE_BOOL: v = config_setting_get_bool(s) ? "true" : "false"; break;
        default:
            cw_seterr(errstr, errstr_size, "%s:%d: kafka property '%s': expected a scalar, got %s", path, line, key,
                      cw_dc_type_name(config_setting_type(s)));
            goto done;
        }
        if (cw_dc_kafka_put(c, scratch, key, v, line, why, sizeof(why)) != 0) {
            cw_seterr(errstr, errstr_size, "%s:%d: %s", path, line, why);
            goto done;
        }
    }
    rc = 0;
done:
    rd_kafka_conf_destroy(scratch);
    return rc;
}

int cw_daemon_conf_load(cw_daemon_conf_t *c, const char *path, char *errstr, size_t errstr_size) {
    int rc = -1;
    config_t cfg;
    config_init(&cfg);
    if (config_read_file(&cfg, path) != CONFIG_TRUE) {
        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
            cw_seterr(errstr, errstr_size, "%s: cannot read: %s", path, strerror(errno));
        else
            cw_seterr(errstr, errstr_size, "%s:%d: %s", config_error_file(&cfg) ? config_error_file(&cfg) : path,
                      config_error_line(&cfg), config_error_text(&cfg));
        goto done;
    }
    config_setting_t *root = config_root_setting(&cfg);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        int line = config_setting_source_line(s);
        char why[512];
        if (!strcmp(name, "kafka")) {
            if (cw_dc_load_kafka(c, s, path, errstr, errstr_size) != 0) goto done;
            continue;
        }
        const cw_dc_key_t *k = cw_dc_find(name);
        if (!k) {
            cw_seterr(errstr, errstr_size, "%s:%d: unknown key '%s'", path, line, name);
            goto done;
        }
        int t = config_setting_type(s), ok;
        int is_int = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
        if (k->type == CW_DC_STR && t == CONFIG_TYPE_STRING)
            ok = cw_dc_set_str(c, k, config_setting_get_string(s), why, sizeof(why));
        else if (k->type == CW_DC_INT && is_int)
            ok = cw_dc_set_num(c, k, (double)config_setting_get_int64(s), why, sizeof(why));
        else if (k->type == CW_DC_FLOAT && (t == CONFIG_TYPE_FLOAT || is_int))
            ok = cw_dc_set_num(c, k, t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                                            : (double)config_setting_get_int64(s), why, sizeof(why));
        else if (k->type == CW_DC_BOOL && t == CONFIG_TYPE_BOOL) {
            *(int *)cw_dc_field(c, k) = config_setting_get_bool(s) ? 1 : 0;
            ok = 0;
        } else {
            static const char *const want[] = {"a string", "an integer", "a boolean (true or false)", "a number"};
            cw_seterr(why, sizeof(why), "expected %s, got %s", want[k->type], cw_dc_type_name(t));
            ok = -1;
        }
        if (ok != 0) {
            cw_seterr(errstr, errstr_size, "%s:%d: key '%s': %s", path, line, name, why);
            goto done;
        }
    }
    char why[512];
    if (cw_daemon_conf_check(c, why, sizeof(why)) != 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, why);
        goto done;
    }
    rc = 0;
done:
    config_destroy(&cfg);
    return rc;
}

int cw_daemon_conf_set(cw_daemon_conf_t *c, const char *key, const char *value, char *errstr, size_t errstr_size) {
    char why[768];
    if (!strncmp(key, "kafka.", 6)) {
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        int rc = cw_dc_kafka_put(c, scratch, key + 6, value, 0, why, sizeof(why));
        rd_kafka_conf_destroy(scratch);
        if (rc != 0) cw_seterr(errstr, errstr_size, "%s", why);
        return rc;
    }
    const cw_dc_key_t *k = cw_dc_find(key);
    if (!k) {
        cw_seterr(errstr, errstr_size, "unknown key '%s'", key);
        return -1;
    }
    if (cw_dc_set_text(c, k, value, why, sizeof(why)) != 0) {
        cw_seterr(errstr, errstr_size, "key '%s': %s", key, why);
        return -1;
    }
    return 0;
}

static void cw_dc_dump_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f);
        if (*p == '\n') fputs("\\n", f);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* Values of properties that may hold secrets are not printed. */
static int cw_dc_secret(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, ".key") ||
           strstr(key, "token") || strstr(key, "jaas");
}

void cw_daemon_conf_dump(const cw_daemon_conf_t *c, FILE *f) {
    for (size_t i = 0; i < CW_DC_NKEYS; i++) {
        const cw_dc_key_t *k = &cw_dconf_keys[i];
        void *p = cw_dc_field((cw_daemon_conf_t *)c, k);
        fprintf(f, "# %s\n%s = ", k->help, k->name);
        switch (k->type) {
        case CW_DC_STR: cw_dc_dump_str(f, *(char **)p); break;
        case CW_DC_INT: fprintf(f, "%" PRId64, *(int64_t *)p); break;
        case CW_DC_FLOAT: fprintf(f, "%.6g%s", *(double *)p, floor(*(double *)p) == *(double *)p ? ".0" : ""); break;
        case CW_DC_BOOL: fputs(*(int *)p ? "true" : "false", f); break;
        }
        fputs(";\n", f);
    }
    fputs("# librdkafka properties ('_' for '.')\nkafka = {\n", f);
    for (size_t i = 0; i < c->nkafka; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s", c->kafka[i].key);
        for (char *q = name; *q; q++)
            if (*q == '.') *q = '_';
        fprintf(f, "  %s = ", name);
        cw_dc_dump_str(f, cw_dc_secret(c->kafka[i].key) ? "(hidden)" : c->kafka[i].value);
        fputs(";\n", f);
    }
    fputs("};\n", f);
}

void cw_daemon_conf_free(cw_daemon_conf_t *c) {
    for (size_t i = 0; i < CW_DC_NKEYS; i++)
        if (cw_dconf_keys[i].type == CW_DC_STR) cw_free(*(char **)cw_dc_field(c, &cw_dconf_keys[i]));
    for (size_t i = 0; i < c->nkafka; i++) {
        cw_free(c->kafka[i].key);
        cw_free(c->kafka[i].value);
    }
    cw_free(c->kafka);
    memset(c, 0, sizeof(*c));
}
