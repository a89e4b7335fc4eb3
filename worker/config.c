/* config.c: the worker's configuration, driven by one table of keys.
 *
 * Each key in cw_conf_keys[] names its type, default, range or choices and a
 * one-line help; the same table sets the defaults, parses the libconfig file,
 * validates values (errors carry FILE:LINE) and prints --dump-config.
 *
 * The `kafka` group holds librdkafka properties. libconfig names cannot hold
 * dots, so a name is written with '_' for '.' (socket_keepalive_enable =
 * "true" sets socket.keepalive.enable); values may be strings, numbers or
 * booleans. Each property is checked with rd_kafka_conf_set() on a scratch
 * configuration when it is read, so a typo fails at start-up with its line.
 * A few properties are owned by the worker itself (they carry its delivery
 * guarantee) and are refused there, with the key to use instead. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { CW_CONF_STR, CW_CONF_INT, CW_CONF_BOOL } cw_conf_type_t;

typedef int (*cw_conf_check_fn)(const char *value, char *why, size_t why_size);

typedef struct cw_conf_key_s {
    const char *name;
    cw_conf_type_t type;
    size_t off;                  /* offset in cw_worker_conf_t */
    const char *def;             /* default, as text */
    int64_t min, max;            /* CW_CONF_INT range */
    const char *const *choices;  /* CW_CONF_STR enum, NULL-terminated; NULL = free text */
    int required;                /* CW_CONF_STR must be non-empty */
    cw_conf_check_fn check;      /* extra CW_CONF_STR validation */
    const char *help;
} cw_conf_key_t;

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
static const cw_conf_key_t cw_conf_keys[] = {
    {"brokers", CW_CONF_STR, CW_OFF(brokers), "localhost:9092", 0, 0, NULL, 1, NULL,
     "Kafka bootstrap servers, host:port[,host:port...]"},
    {"input_topic", CW_CONF_STR, CW_OFF(input_topic), "articles", 0, 0, NULL, 1, NULL,
     "topic the articles (msgpack, schemas/README.md) are read from"},
    {"output_topic", CW_CONF_STR, CW_OFF(output_topic), "results", 0, 0, NULL, 1, NULL,
     "topic one result per article is written to"},
    {"dead_letter_topic", CW_CONF_STR, CW_OFF(dead_letter_topic), "articles.dead", 0, 0, NULL, 1,
     NULL, "topic undecodable or invalid articles go to, with catwire.* headers"},
    {"control_topic", CW_CONF_STR, CW_OFF(control_topic), "catwire.control", 0, 0, NULL, 0, NULL,
     "topic model versions are announced on (hot reload)"},
    {"group_id", CW_CONF_STR, CW_OFF(group_id), "catwire-worker", 0, 0, NULL, 1, NULL,
     "consumer group; workers with the same group share the input partitions"},
    {"registry", CW_CONF_STR, CW_OFF(registry), "models", 0, 0, NULL, 1, NULL,
     "model registry directory"},
    {"model", CW_CONF_STR, CW_OFF(model), "news", 0, 0, NULL, 1, NULL,
     "model to serve: NAME (its current version) or NAME@VERSION"},
    {"fleet", CW_CONF_STR, CW_OFF(fleet), "", 0, 0, NULL, 0, NULL,
     "pin name for rollouts (\"\" = follow the current version)"},
    {"device", CW_CONF_STR, CW_OFF(device), "cpu", 0, 0, NULL, 1, cw_conf_check_device,
     "where the model runs: cpu, cuda, cuda:N or auto"},
    {"worker_id", CW_CONF_STR, CW_OFF(worker_id), "", 0, 0, NULL, 0, NULL,
     "instance id written into results (\"\" = hostname-pid); keep it stable across "
     "restarts in exactly_once mode, it names the transactional producer"},
    {"processing_guarantee", CW_CONF_STR, CW_OFF(processing_guarantee), "at_least_once", 0, 0,
     cw_guarantees, 1, NULL,
     "at_least_once (offsets stored after results are acknowledged) or exactly_once "
     "(transactions)"},
    {"log_level", CW_CONF_STR, CW_OFF(log_level), "info", 0, 0, cw_log_levels, 1, NULL,
     "error, warn, info or debug"},
    {"max_articles", CW_CONF_INT, CW_OFF(max_articles), "256", 1, 65536, NULL, 0, NULL,
     "micro-batch size limit (articles per forward pass)"},
    {"max_wait_ms", CW_CONF_INT, CW_OFF(max_wait_ms), "5", 0, 60000, NULL, 0, NULL,
     "micro-batch time limit, counted from the batch's first article"},
    {"commit_interval_ms", CW_CONF_INT, CW_OFF(commit_interval_ms), "100", 0, 60000, NULL, 0,
     NULL, "exactly_once: a transaction spans the batches of this many ms"},
    {"stats_interval_ms", CW_CONF_INT, CW_OFF(stats_interval_ms), "10000", 0, 86400000, NULL, 0,
     NULL, "period of the stats log line (0 = never)"},
    {"shutdown_timeout_ms", CW_CONF_INT, CW_OFF(shutdown_timeout_ms), "10000", 100, 600000, NULL,
     0, NULL, "on SIGTERM, how long to wait for in-flight deliveries"},
    {"reload_poll_ms", CW_CONF_INT, CW_OFF(reload_poll_ms), "250", 50, 3600000, NULL, 0, NULL,
     "registry watch interval for new model versions"},
    {"allow_label_change", CW_CONF_BOOL, CW_OFF(allow_label_change), "false", 0, 1, NULL, 0,
     NULL, "accept a new model version whose labels differ from the serving one"},
    {"skip_model", CW_CONF_BOOL, CW_OFF(skip_model), "false", 0, 1, NULL, 0, NULL,
     "benchmark passthrough: no tokenizing or forward pass, results carry label_id 0"},
};
#define CW_NKEYS (sizeof(cw_conf_keys) / sizeof(cw_conf_keys[0]))

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

static char **cw_conf_str_field(cw_worker_conf_t *c, const cw_conf_key_t *k) {
    return (char **)((char *)c + k->off);
}
static int64_t *cw_conf_int_field(cw_worker_conf_t *c, const cw_conf_key_t *k) {
    return (int64_t *)((char *)c + k->off);
}
static int *cw_conf_bool_field(cw_worker_conf_t *c, const cw_conf_key_t *k) {
    return (int *)((char *)c + k->off);
}

static const cw_conf_key_t *cw_conf_key_find(const char *name) {
    for (size_t i = 0; i < CW_NKEYS; i++)
        if (!strcmp(cw_conf_keys[i].name, name)) return &cw_conf_keys[i];
    return NULL;
}

/* Validate and store a string value. why receives the reason (no location). */
static int cw_conf_set_str(cw_worker_conf_t *c, const cw_conf_key_t *k, const char *v, char *why,
                           size_t why_size) {
    if (k->required && !*v) {
        cw_seterr(why, why_size, "must not be empty");
        return -1;
    }
    if (k->choices) {
        size_t i;
        for (i = 0; k->choices[i]; i++)
            if (!strcmp(k->choices[i], v)) break;
        if (!k->choices[i]) {
            char list[256] = "";
            size_t used = 0;
            for (size_t j = 0; k->choices[j] && used < sizeof(list); j++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "",
                                         k->choices[j]);
            cw_seterr(why, why_size, "'%s' is not one of %s", v, list);
            return -1;
        }
    }
    if (k->check && k->check(v, why, why_size) != 0) return -1;
    char **f = cw_conf_str_field(c, k);
    cw_free(*f);
    *f = cw_strdup(v);
    return 0;
}

static int cw_conf_set_int(cw_worker_conf_t *c, const cw_conf_key_t *k, int64_t v, char *why,
                           size_t why_size) {
    if (v < k->min || v > k->max) {
        cw_seterr(why, why_size, "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", v,
                  k->min, k->max);
        return -1;
    }
    *cw_conf_int_field(c, k) = v;
    return 0;
}

static int cw_conf_parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcmp(s, yes[i])) { *out = 1; return 0; }
        if (!strcmp(s, no[i])) { *out = 0; return 0; }
    }
    return -1;
}

/* Set a key from text (defaults, cw_worker_conf_set). */
static int cw_conf_set_text(cw_worker_conf_t *c, const cw_conf_key_t *k, const char *v, char *why,
                            size_t why_size) {
    switch (k->type) {
    case CW_CONF_STR:
        return cw_conf_set_str(c, k, v, why, why_size);
    case CW_CONF_INT: {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            cw_seterr(why, why_size, "expected an integer, got '%s'", v);
            return -1;
        }
        return cw_conf_set_int(c, k, (int64_t)n, why, why_size);
    }
    case CW_CONF_BOOL: {
        int b;
        if (cw_conf_parse_bool(v, &b) != 0) {
            cw_seterr(why, why_size, "expected a boolean (true or false), got '%s'", v);
            return -1;
        }
        *cw_conf_bool_field(c, k) = b;
        return 0;
    }
    }
    return -1;
}

/* Check one librdkafka property on a scratch configuration and store it
 * (replacing an earlier value of the same key). */
static int cw_conf_kafka_put(cw_worker_conf_t *c, rd_kafka_conf_t *scratch, const char *key,
                             const char *value, int line, char *why, size_t why_size) {
    for (size_t i = 0; i < sizeof(cw_kafka_reserved) / sizeof(cw_kafka_reserved[0]); i++) {
        if (!strcmp(key, cw_kafka_reserved[i][0])) {
            cw_seterr(why, why_size, "kafka property '%s' is set by the worker; use %s", key,
                      cw_kafka_reserved[i][1]);
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

void cw_worker_conf_defaults(cw_worker_conf_t *c) {
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < CW_NKEYS; i++) {
        char why[256];
        /* The table's defaults are valid by construction (test_config checks). */
        if (cw_conf_set_text(c, &cw_conf_keys[i], cw_conf_keys[i].def, why, sizeof(why)) != 0)
            abort();
    }
}

/* Rules across keys, checked once the whole file is read. */
static int cw_conf_check_all(const cw_worker_conf_t *c, char *why, size_t why_size) {
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

static const char *cw_conf_type_name(int t) {
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

/* The kafka group: name with '_' for '.', scalar values. */
static int cw_conf_load_kafka(cw_worker_conf_t *c, config_setting_t *grp, const char *path,
                              char *errstr, size_t errstr_size) {
    int rc = -1;
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    if (!config_setting_is_group(grp)) {
        cw_seterr(errstr, errstr_size, "%s:%d: key 'kafka': expected a group { ... }, got %s",
                  path, config_setting_source_line(grp), cw_conf_type_name(config_setting_type(grp)));
        goto done;
    }
    int n = config_setting_length(grp);
    for (int i = 0; i < n; i++) {
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
        case CONFIG_TYPE_INT64:
            snprintf(value, sizeof(value), "%lld", config_setting_get_int64(s));
            break;
        case CONFIG_TYPE_FLOAT: snprintf(value, sizeof(value), "%.17g", config_setting_get_float(s)); break;
        case CONFIG_TYPE_BOOL: v = config_setting_get_bool(s) ? "true" : "false"; break;
        default:
            cw_seterr(errstr, errstr_size, "%s:%d: kafka property '%s': expected a scalar, got %s",
                      path, line, key, cw_conf_type_name(config_setting_type(s)));
            goto done;
        }
        if (cw_conf_kafka_put(c, scratch, key, v, line, why, sizeof(why)) != 0) {
            cw_seterr(errstr, errstr_size, "%s:%d: %s", path, line, why);
            goto done;
        }
    }
    rc = 0;
done:
    rd_kafka_conf_destroy(scratch);
    return rc;
}

int cw_worker_conf_load(cw_worker_conf_t *c, const char *path, char *errstr, size_t errstr_size) {
    int rc = -1;
    config_t cfg;
    config_init(&cfg);
    if (config_read_file(&cfg, path) != CONFIG_TRUE) {
        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
            cw_seterr(errstr, errstr_size, "%s: cannot read: %s", path, strerror(errno));
        else
            cw_seterr(errstr, errstr_size, "%s:%d: %s",
                      config_error_file(&cfg) ? config_error_file(&cfg) : path,
                      config_error_line(&cfg), config_error_text(&cfg));
        goto done;
    }
    config_setting_t *root = config_root_setting(&cfg);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        int line = config_setting_source_line(s);
        char why[512];
        if (!strcmp(name, "kafka")) {
            if (cw_conf_load_kafka(c, s, path, errstr, errstr_size) != 0) goto done;
            continue;
        }
        const cw_conf_key_t *k = cw_conf_key_find(name);
        if (!k) {
            cw_seterr(errstr, errstr_size, "%s:%d: unknown key '%s'", path, line, name);
            goto done;
        }
        int t = config_setting_type(s);
        int ok;
        if (k->type == CW_CONF_STR && t == CONFIG_TYPE_STRING) {
            ok = cw_conf_set_str(c, k, config_setting_get_string(s), why, sizeof(why));
        } else if (k->type == CW_CONF_INT && (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)) {
            ok = cw_conf_set_int(c, k, (int64_t)config_setting_get_int64(s), why, sizeof(why));
        } else if (k->type == CW_CONF_BOOL && t == CONFIG_TYPE_BOOL) {
            *cw_conf_bool_field(c, k) = config_setting_get_bool(s) ? 1 : 0;
            ok = 0;
        } else {
            static const char *const want[] = {"a string", "an integer", "a boolean (true or false)"};
            cw_seterr(why, sizeof(why), "expected %s, got %s", want[k->type], cw_conf_type_name(t));
            ok = -1;
        }
        if (ok != 0) {
            cw_seterr(errstr, errstr_size, "%s:%d: key '%s': %s", path, line, name, why);
            goto done;
        }
    }
    char why[512];
    if (cw_conf_check_all(c, why, sizeof(why)) != 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, why);
        goto done;
    }
    rc = 0;
done:
    config_destroy(&cfg);
    return rc;
}

int cw_worker_conf_set(cw_worker_conf_t *c, const char *key, const char *value, char *errstr,
                       size_t errstr_size) {
    char why[768];
    if (!strncmp(key, "kafka.", 6)) {
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        int rc = cw_conf_kafka_put(c, scratch, key + 6, value, 0, why, sizeof(why));
        rd_kafka_conf_destroy(scratch);
        if (rc != 0) cw_seterr(errstr, errstr_size, "%s", why);
        return rc;
    }
    const cw_conf_key_t *k = cw_conf_key_find(key);
    if (!k) {
        cw_seterr(errstr, errstr_size, "unknown key '%s'", key);
        return -1;
    }
    if (cw_conf_set_text(c, k, value, why, sizeof(why)) != 0) {
        cw_seterr(errstr, errstr_size, "key '%s': %s", key, why);
        return -1;
    }
    return 0;
}

static void cw_conf_dump_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f);
        if (*p == '\n') { fputs("\\n", f); continue; }
        if (*p == '\t') { fputs("\\t", f); continue; }
        fputc(*p, f);
    }
    fputc('"', f);
}

/* Secrets are not printed: a dump ends up in logs and tickets. */
static int cw_conf_kafka_secret(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, ".pem") ||
           strstr(key, "sasl.jaas");
}

void cw_worker_conf_dump(const cw_worker_conf_t *c, FILE *f) {
    cw_worker_conf_t *m = (cw_worker_conf_t *)c; /* field accessors take non-const */
    fputs("# catwire-worker configuration (libconfig syntax).\n"
          "# Run `catwire-worker --config FILE --check-config` to validate a file.\n\n", f);
    for (size_t i = 0; i < CW_NKEYS; i++) {
        const cw_conf_key_t *k = &cw_conf_keys[i];
        fprintf(f, "# %s", k->help);
        if (k->type == CW_CONF_INT)
            fprintf(f, " [%" PRId64 "..%" PRId64 "]", k->min, k->max);
        fprintf(f, " (default: %s%s%s)\n", k->type == CW_CONF_STR ? "\"" : "", k->def,
                k->type == CW_CONF_STR ? "\"" : "");
        fprintf(f, "%s = ", k->name);
        switch (k->type) {
        case CW_CONF_STR: cw_conf_dump_str(f, *cw_conf_str_field(m, k) ? *cw_conf_str_field(m, k) : ""); break;
        case CW_CONF_INT: fprintf(f, "%" PRId64, *cw_conf_int_field(m, k)); break;
        case CW_CONF_BOOL: fputs(*cw_conf_bool_field(m, k) ? "true" : "false", f); break;
        }
        fputs(";\n\n", f);
    }
    fputs("# librdkafka properties for both the consumer and the producer\n"
          "# (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md),\n"
          "# written with '_' for '.': security_protocol = \"SASL_SSL\";\n"
          "kafka = {\n", f);
    for (size_t i = 0; i < c->nkafka; i++) {
        fputs("  ", f);
        for (const char *p = c->kafka[i].key; *p; p++) fputc(*p == '.' ? '_' : *p, f);
        fputs(" = ", f);
        if (cw_conf_kafka_secret(c->kafka[i].key))
            fputs("\"(hidden)\"", f);
        else
            cw_conf_dump_str(f, c->kafka[i].value);
        fputs(";\n", f);
    }
    fputs("};\n", f);
}

void cw_worker_conf_free(cw_worker_conf_t *c) {
    if (!c) return;
    for (size_t i = 0; i < CW_NKEYS; i++)
        if (cw_conf_keys[i].type == CW_CONF_STR) {
            char **f = cw_conf_str_field(c, &cw_conf_keys[i]);
            cw_free(*f);
            *f = NULL;
        }
    for (size_t i = 0; i < c->nkafka; i++) {
        cw_free(c->kafka[i].key);
        cw_free(c->kafka[i].value);
    }
    cw_free(c->kafka);
    c->kafka = NULL;
    c->nkafka = 0;
}
