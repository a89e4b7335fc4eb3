/* conftab.h: table-driven libconfig configuration, shared by the daemons.
 *
 * A daemon describes its configuration struct with one table of keys
 * (cw_conftab_key_t: name, type, offset of the field in the struct, default
 * as text, range, enum choices, required, extra check, help) and a
 * cw_conftab_t around it. The same table then sets the defaults, parses a
 * libconfig file, validates every value, accepts single "key=value" sets and
 * prints --dump-config, so a key is declared exactly once.
 *
 * Fields by type: CW_CONFTAB_STR is `char *` (owned by the struct, freed by
 * cw_conftab_free), CW_CONFTAB_INT `int64_t`, CW_CONFTAB_FLOAT `double`,
 * CW_CONFTAB_BOOL `int` (0 or 1). INT and FLOAT keys are checked against
 * [min, max] (INT bounds must be whole numbers below 2^53).
 *
 * The `kafka` group holds librdkafka properties, written with '_' for '.'
 * because libconfig names cannot hold dots (socket_keepalive_enable = "true"
 * sets socket.keepalive.enable); values may be strings, numbers or booleans
 * and are stored as text in a cw_conftab_kv_t array inside the struct (at
 * kafka_off, its length at nkafka_off), in file order, a repeated key
 * replacing the earlier value. Each property is checked with
 * rd_kafka_conf_set() on a scratch configuration when read, so a typo fails
 * at start-up with its line; properties the daemon sets itself are refused
 * with the key to use instead.
 *
 * Errors: functions return 0 or -1 and fill errstr. Errors in a file read
 * "FILE:LINE: ..." (a key's own errors "FILE:LINE: key 'x': ..."), unknown
 * keys "FILE:LINE: unknown key 'x'"; rules across keys (the table's check)
 * "FILE: ...". A load that fails leaves the struct valid for
 * cw_conftab_free, possibly with some keys already set.
 *
 * Configuration is read once at start-up and then read-only: none of these
 * functions may race with readers of the same struct. The tables are static
 * and const; the engine keeps no state of its own. */
#ifndef CW_CONFTAB_H
#define CW_CONFTAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { CW_CONFTAB_STR, CW_CONFTAB_INT, CW_CONFTAB_BOOL, CW_CONFTAB_FLOAT } cw_conftab_type_t;

/* One librdkafka property: key with dots, value as text, line in the file
 * (0 when set with cw_conftab_set). */
typedef struct cw_conftab_kv_s {
    char *key;
    char *value;
    int line;
} cw_conftab_kv_t;

/* Extra validation of a CW_CONFTAB_STR value: 0, or -1 with the reason. */
typedef int (*cw_conftab_check_fn)(const char *value, char *why, size_t why_size);

typedef struct cw_conftab_key_s {
    const char *name;
    cw_conftab_type_t type;
    size_t off;                  /* offsetof the field in the configuration struct */
    const char *def;             /* default, as text (valid by construction) */
    double min, max;             /* INT and FLOAT range, inclusive */
    const char *const *choices;  /* STR enum, NULL-terminated; NULL = free text */
    int required;                /* STR must be non-empty */
    cw_conftab_check_fn check;   /* extra STR validation, or NULL */
    const char *help;            /* one line, for --dump-config */
} cw_conftab_key_t;

typedef struct cw_conftab_s {
    const char *owner;                 /* "kafka property 'x' is set by the OWNER; use ..." */
    size_t size;                       /* sizeof the configuration struct */
    const cw_conftab_key_t *keys;
    size_t nkeys;
    size_t kafka_off;                  /* offsetof its cw_conftab_kv_t *kafka */
    size_t nkafka_off;                 /* offsetof its size_t nkafka */
    const char *const (*reserved)[2];  /* librdkafka property -> what to use instead */
    size_t nreserved;
    const char *const *secrets;        /* NULL-terminated substrings of property names
                                          whose values --dump-config hides */
    /* Rules across keys, run once a file is read; NULL = none. */
    int (*check)(const void *conf, char *why, size_t why_size);
    /* --dump-config layout. */
    const char *dump_header;           /* printed first, or NULL */
    int dump_annotate;                 /* help comments add range and default, blank line per key */
    const char *dump_kafka_comment;    /* comment lines before "kafka = {" */
} cw_conftab_t;

/* Zero the struct and set every key to its default. */
void cw_conftab_defaults(const cw_conftab_t *t, void *conf);
/* Read a libconfig file over the current values. 0 or -1 with errstr. */
int cw_conftab_load(const cw_conftab_t *t, void *conf, const char *path, char *errstr,
                    size_t errstr_size);
/* Set one key from text; "kafka.X" sets librdkafka property X. 0 or -1. */
int cw_conftab_set(const cw_conftab_t *t, void *conf, const char *key, const char *value,
                   char *errstr, size_t errstr_size);
/* Print the configuration in libconfig syntax with help comments; values of
 * secret librdkafka properties print as "(hidden)". The output loads back. */
void cw_conftab_dump(const cw_conftab_t *t, const void *conf, FILE *f);
/* Free the strings and properties and zero the struct; conf NULL is a no-op. */
void cw_conftab_free(const cw_conftab_t *t, void *conf);

#endif
