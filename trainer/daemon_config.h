/* daemon_config.h: the trainer daemon's configuration (libconfig file).
 *
 * Same rules as the worker's (worker/config.h), same engine
 * (common/conftab.h): one table of keys in
 * daemon_config.c (name, type, default, range, help) drives defaults,
 * parsing, validation and --dump-config; unknown keys and bad values are
 * errors "FILE:LINE: ..."; the `kafka` group passes every property to
 * librdkafka (names with '_' for '.'), each checked with rd_kafka_conf_set()
 * when read, so a typo fails at start-up with its line. deploy/trainer.conf
 * is the commented example.
 *
 * The configuration is set once at start-up and then read-only. */
#ifndef CW_DAEMON_CONFIG_H
#define CW_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conftab.h"

/* One librdkafka property from the `kafka` group (key with dots). */
typedef cw_conftab_kv_t cw_daemon_kv_t;

typedef struct cw_daemon_conf_s {
    char *registry;            /* model registry directory */
    char *model;               /* model name */
    char *spool_dir;           /* new labelled CSV files are dropped here */
    char *state_dir;           /* accumulated data ("" = <spool_dir>/state) */
    char *base_train;          /* base training CSV ("" = none) */
    char *holdout;             /* held-out CSV for the quality gate (required) */
    char *labels;              /* "A,B,C" ("" = the current model's, else discovered) */
    char *recipe;              /* train.h recipe */
    char *brokers;             /* "" = no Kafka (spool only, no announcements) */
    char *labelled_topic;      /* labelled articles ("" = none) */
    char *control_topic;       /* announcements of new current versions ("" = none) */
    char *group_id;            /* consumer group for labelled_topic */
    char *log_level;
    int64_t min_new_examples;  /* retrain once this many new examples arrived */
    int64_t retrain_interval_s;/* also retrain this often when anything is new (0 = off) */
    int64_t spool_poll_ms;
    int64_t dim, epochs, ngram, threads, seed;   /* 0 = the recipe's */
    double max_accuracy_drop;  /* quality gate margin (absolute accuracy) */
    int bootstrap;             /* train at start when the model has no version */
    cw_daemon_kv_t *kafka;
    size_t nkafka;
} cw_daemon_conf_t;

void cw_daemon_conf_defaults(cw_daemon_conf_t *c);
/* Load a file over the defaults. 0 or -1 with errstr "FILE:LINE: ...". */
int cw_daemon_conf_load(cw_daemon_conf_t *c, const char *path, char *errstr, size_t errstr_size);
/* Set one key from text; "kafka.X" sets a librdkafka property. 0 or -1. */
int cw_daemon_conf_set(cw_daemon_conf_t *c, const char *key, const char *value,
                       char *errstr, size_t errstr_size);
/* Rules across keys (holdout required, ...); load runs it too. */
int cw_daemon_conf_check(const cw_daemon_conf_t *c, char *errstr, size_t errstr_size);
/* The effective configuration in libconfig syntax with help comments. */
void cw_daemon_conf_dump(const cw_daemon_conf_t *c, FILE *f);
void cw_daemon_conf_free(cw_daemon_conf_t *c);

#endif
