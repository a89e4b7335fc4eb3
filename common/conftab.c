/* conftab.c: the table-driven configuration engine (conftab.h).
 *
 * Every value, whether from the table's defaults, a libconfig file or
 * cw_conftab_set(), goes through the same per-type setters, so defaults,
 * files and tests are validated by the same rules. */
#include "conftab.h"

#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void *cw_conftab_field(void *conf, const cw_conftab_key_t *k) { return (char *)conf + k->off; }

static cw_conftab_kv_t **cw_conftab_kafka(const cw_conftab_t *t, void *conf) {
    return (cw_conftab_kv_t **)((char *)conf + t->kafka_off);
}
static size_t *cw_conftab_nkafka(const cw_conftab_t *t, void *conf) {
    return (size_t *)((char *)conf + t->nkafka_off);
}

static const cw_conftab_key_t *cw_conftab_find(const cw_conftab_t *t, const char *name) {
    for (size_t i = 0; i < t->nkeys; i++)
        if (!strcmp(t->keys[i].name, name)) return &t->keys[i];
    return NULL;
}

/* Validate and store a string value. why receives the reason (no location). */
static int cw_conftab_set_str(void *conf, const cw_conftab_key_t *k, const char *v, char *why,
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
    char **f = cw_conftab_field(conf, k);
    cw_free(*f);
    *f = cw_strdup(v);
    return 0;
}

static int cw_conftab_set_int(void *conf, const cw_conftab_key_t *k, int64_t v, char *why,
                              size_t why_size) {
    int64_t lo = (int64_t)k->min, hi = (int64_t)k->max;
    if (v < lo || v > hi) {
        cw_seterr(why, why_size, "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", v, lo,
                  hi);
        return -1;
    }
    *(int64_t *)cw_conftab_field(conf, k) = v;
    return 0;
}

static int cw_conftab_set_float(void *conf, const cw_conftab_key_t *k, double v, char *why,
                                size_t why_size) {
    if (!(v >= k->min && v <= k->max)) {   /* NaN is out of every range */
        cw_seterr(why, why_size, "%g is out of range [%g, %g]", v, k->min, k->max);
        return -1;
    }
    *(double *)cw_conftab_field(conf, k) = v;
    return 0;
}

static int cw_conftab_parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcmp(s, yes[i])) { *out = 1; return 0; }
        if (!strcmp(s, no[i])) { *out = 0; return 0; }
    }
    return -1;
}

/* Set a key from text (defaults, cw_conftab_set). */
static int cw_conftab_set_text(void *conf, const cw_conftab_key_t *k, const char *v, char *why,
                               size_t why_size) {
    char *end = NULL;
    switch (k->type) {
    case CW_CONFTAB_STR:
        return cw_conftab_set_str(conf, k, v, why, why_size);
    case CW_CONFTAB_INT: {
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            cw_seterr(why, why_size, "expected an integer, got '%s'", v);
            return -1;
        }
        return cw_conftab_set_int(conf, k, (int64_t)n, why, why_size);
    }
    case CW_CONFTAB_FLOAT: {
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end) {
            cw_seterr(why, why_size, "expected a number, got '%s'", v);
            return -1;
        }
        return cw_conftab_set_float(conf, k, d, why, why_size);
    }
    case CW_CONFTAB_BOOL: {
        int b;
        if (cw_conftab_parse_bool(v, &b) != 0) {
            cw_seterr(why, why_size, "expected a boolean (true or false), got '%s'", v);
            return -1;
        }
        *(int *)cw_conftab_field(conf, k) = b;
        return 0;
    }
    }
    return -1;
}

/* Check one librdkafka property on a scratch configuration and store it
 * (replacing an earlier value of the same key). */
static int cw_conftab_kafka_put(const cw_conftab_t *t, void *conf, rd_kafka_conf_t *scratch,
                                const char *key, const char *value, int line, char *why,
                                size_t why_size) {
    for (size_t i = 0; i < t->nreserved; i++) {
        if (!strcmp(key, t->reserved[i][0])) {
            cw_seterr(why, why_size, "kafka property '%s' is set by the %s; use %s", key, t->owner,
                      t->reserved[i][1]);
            return -1;
        }
    }
    char rderr[512];
    if (rd_kafka_conf_set(scratch, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        cw_seterr(why, why_size, "kafka property '%s': %s", key, rderr);
        return -1;
    }
    cw_conftab_kv_t **kv = cw_conftab_kafka(t, conf);
    size_t *n = cw_conftab_nkafka(t, conf);
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp((*kv)[i].key, key)) {
            cw_free((*kv)[i].value);
            (*kv)[i].value = cw_strdup(value);
            (*kv)[i].line = line;
            return 0;
        }
    }
    *kv = cw_realloc(*kv, (*n + 1) * sizeof(**kv));
    (*kv)[*n].key = cw_strdup(key);
    (*kv)[*n].value = cw_strdup(value);
    (*kv)[*n].line = line;
    (*n)++;
    return 0;
}

void cw_conftab_defaults(const cw_conftab_t *t, void *conf) {
    memset(conf, 0, t->size);
    for (size_t i = 0; i < t->nkeys; i++) {
        char why[256];
        /* The tables' defaults are valid by construction (the unit tests load them). */
        if (cw_conftab_set_text(conf, &t->keys[i], t->keys[i].def, why, sizeof(why)) != 0) abort();
    }
}

static const char *cw_conftab_type_name(int type) {
    switch (type) {
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
static int cw_conftab_load_kafka(const cw_conftab_t *t, void *conf, config_setting_t *grp,
                                 const char *path, char *errstr, size_t errstr_size) {
    int rc = -1;
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    if (!config_setting_is_group(grp)) {
        cw_seterr(errstr, errstr_size, "%s:%d: key 'kafka': expected a group { ... }, got %s",
                  path, config_setting_source_line(grp),
                  cw_conftab_type_name(config_setting_type(grp)));
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
        case CONFIG_TYPE_FLOAT:
            snprintf(value, sizeof(value), "%.17g", config_setting_get_float(s));
            break;
        case CONFIG_TYPE_BOOL: v = config_setting_get_bool(s) ? "true" : "false"; break;
        default:
            cw_seterr(errstr, errstr_size, "%s:%d: kafka property '%s': expected a scalar, got %s",
                      path, line, key, cw_conftab_type_name(config_setting_type(s)));
            goto done;
        }
        if (cw_conftab_kafka_put(t, conf, scratch, key, v, line, why, sizeof(why)) != 0) {
            cw_seterr(errstr, errstr_size, "%s:%d: %s", path, line, why);
            goto done;
        }
    }
    rc = 0;
done:
    rd_kafka_conf_destroy(scratch);
    return rc;
}

/* One top-level setting against its key: type check, then the setter. */
static int cw_conftab_load_value(void *conf, const cw_conftab_key_t *k, config_setting_t *s,
                                 char *why, size_t why_size) {
    int type = config_setting_type(s);
    int is_int = type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
    if (k->type == CW_CONFTAB_STR && type == CONFIG_TYPE_STRING)
        return cw_conftab_set_str(conf, k, config_setting_get_string(s), why, why_size);
    if (k->type == CW_CONFTAB_INT && is_int)
        return cw_conftab_set_int(conf, k, (int64_t)config_setting_get_int64(s), why, why_size);
    if (k->type == CW_CONFTAB_FLOAT && (type == CONFIG_TYPE_FLOAT || is_int))
        return cw_conftab_set_float(conf, k,
                                    type == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                                              : (double)config_setting_get_int64(s),
                                    why, why_size);
    if (k->type == CW_CONFTAB_BOOL && type == CONFIG_TYPE_BOOL) {
        *(int *)cw_conftab_field(conf, k) = config_setting_get_bool(s) ? 1 : 0;
        return 0;
    }
    static const char *const want[] = {
        [CW_CONFTAB_STR] = "a string",
        [CW_CONFTAB_INT] = "an integer",
        [CW_CONFTAB_BOOL] = "a boolean (true or false)",
        [CW_CONFTAB_FLOAT] = "a number",
    };
    cw_seterr(why, why_size, "expected %s, got %s", want[k->type], cw_conftab_type_name(type));
    return -1;
}

int cw_conftab_load(const cw_conftab_t *t, void *conf, const char *path, char *errstr,
                    size_t errstr_size) {
    int rc = -1;
    char why[512];
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
        if (!strcmp(name, "kafka")) {
            if (cw_conftab_load_kafka(t, conf, s, path, errstr, errstr_size) != 0) goto done;
            continue;
        }
        const cw_conftab_key_t *k = cw_conftab_find(t, name);
        if (!k) {
            cw_seterr(errstr, errstr_size, "%s:%d: unknown key '%s'", path, line, name);
            goto done;
        }
        if (cw_conftab_load_value(conf, k, s, why, sizeof(why)) != 0) {
            cw_seterr(errstr, errstr_size, "%s:%d: key '%s': %s", path, line, name, why);
            goto done;
        }
    }
    if (t->check && t->check(conf, why, sizeof(why)) != 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, why);
        goto done;
    }
    rc = 0;
done:
    config_destroy(&cfg);
    return rc;
}

int cw_conftab_set(const cw_conftab_t *t, void *conf, const char *key, const char *value,
                   char *errstr, size_t errstr_size) {
    char why[768];
    if (!strncmp(key, "kafka.", 6)) {
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        int rc = cw_conftab_kafka_put(t, conf, scratch, key + 6, value, 0, why, sizeof(why));
        rd_kafka_conf_destroy(scratch);
        if (rc != 0) cw_seterr(errstr, errstr_size, "%s", why);
        return rc;
    }
    const cw_conftab_key_t *k = cw_conftab_find(t, key);
    if (!k) {
        cw_seterr(errstr, errstr_size, "unknown key '%s'", key);
        return -1;
    }
    if (cw_conftab_set_text(conf, k, value, why, sizeof(why)) != 0) {
        cw_seterr(errstr, errstr_size, "key '%s': %s", key, why);
        return -1;
    }
    return 0;
}

static void cw_conftab_dump_str(FILE *f, const char *s) {
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
static int cw_conftab_secret(const cw_conftab_t *t, const char *key) {
    for (size_t i = 0; t->secrets && t->secrets[i]; i++)
        if (strstr(key, t->secrets[i])) return 1;
    return 0;
}

void cw_conftab_dump(const cw_conftab_t *t, const void *conf, FILE *f) {
    void *c = (void *)conf; /* field accessors take non-const; nothing is written */
    if (t->dump_header) fputs(t->dump_header, f);
    for (size_t i = 0; i < t->nkeys; i++) {
        const cw_conftab_key_t *k = &t->keys[i];
        void *p = cw_conftab_field(c, k);
        fprintf(f, "# %s", k->help);
        if (t->dump_annotate) {
            const char *q = k->type == CW_CONFTAB_STR ? "\"" : "";
            if (k->type == CW_CONFTAB_INT)
                fprintf(f, " [%" PRId64 "..%" PRId64 "]", (int64_t)k->min, (int64_t)k->max);
            else if (k->type == CW_CONFTAB_FLOAT)
                fprintf(f, " [%g..%g]", k->min, k->max);
            fprintf(f, " (default: %s%s%s)", q, k->def, q);
        }
        fprintf(f, "\n%s = ", k->name);
        switch (k->type) {
        case CW_CONFTAB_STR: cw_conftab_dump_str(f, *(char **)p ? *(char **)p : ""); break;
        case CW_CONFTAB_INT: fprintf(f, "%" PRId64, *(int64_t *)p); break;
        case CW_CONFTAB_FLOAT: {
            /* A trailing ".0" keeps a whole number a float for libconfig. */
            double d = *(double *)p;
            fprintf(f, "%.6g%s", d, floor(d) == d ? ".0" : "");
            break;
        }
        case CW_CONFTAB_BOOL: fputs(*(int *)p ? "true" : "false", f); break;
        }
        fputs(t->dump_annotate ? ";\n\n" : ";\n", f);
    }
    if (t->dump_kafka_comment) fputs(t->dump_kafka_comment, f);
    fputs("kafka = {\n", f);
    cw_conftab_kv_t *kv = *cw_conftab_kafka(t, c);
    size_t n = *cw_conftab_nkafka(t, c);
    for (size_t i = 0; i < n; i++) {
        fputs("  ", f);
        for (const char *q = kv[i].key; *q; q++) fputc(*q == '.' ? '_' : *q, f);
        fputs(" = ", f);
        cw_conftab_dump_str(f, cw_conftab_secret(t, kv[i].key) ? "(hidden)" : kv[i].value);
        fputs(";\n", f);
    }
    fputs("};\n", f);
}

void cw_conftab_free(const cw_conftab_t *t, void *conf) {
    if (!conf) return;
    for (size_t i = 0; i < t->nkeys; i++)
        if (t->keys[i].type == CW_CONFTAB_STR) cw_free(*(char **)cw_conftab_field(conf, &t->keys[i]));
    cw_conftab_kv_t *kv = *cw_conftab_kafka(t, conf);
    size_t n = *cw_conftab_nkafka(t, conf);
    for (size_t i = 0; i < n; i++) {
        cw_free(kv[i].key);
        cw_free(kv[i].value);
    }
    cw_free(kv);
    memset(conf, 0, t->size);
}
