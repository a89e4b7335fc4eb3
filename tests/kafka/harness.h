/* harness.h: shared driver for the broker tests in tests/kafka/.
 *
 * A test runs in one of two modes, its first argument: "real" talks to the
 * broker at $CW_TEST_BROKERS (skipped with exit 77 when unset), "mock" starts
 * librdkafka's embedded mock cluster inside the test process (the worker
 * processes connect to it over TCP). Each run gets a temporary directory
 * (registry, configs, worker logs) and unique topic and group names.
 *
 * The harness builds a small deterministic model (vocabulary of
 * sample-1k.csv, uniform random weights) and publishes it to the run's
 * registry, loads AG News test.csv rows, produces articles "<prefix><i>"
 * (row i % nrows), spawns catwire-worker (fork/exec of CW_WORKER_BIN), and
 * reads the output topics by plain assignment from the beginning.
 *
 * Failures: CWT_CHECK records a failure and continues; cwt_die() ends the
 * test at once. Both print the workers' log tails. cwt_env_finish() also
 * fails the test for each sanitizer report (a "SUMMARY: ...Sanitizer" line)
 * in a spawned process's log: in a checking build (CW_SANITIZE) a worker
 * killed with -9, or one whose ThreadSanitizer report does not stop it,
 * would otherwise leave its report unread. */
#ifndef CWT_HARNESS_H
#define CWT_HARNESS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kafka_util.h"
#include "model.h"

#define CWT_SKIP 77

typedef struct cwt_row_s {
    char *title, *body;
    int label;      /* 0-based class */
    int pred;       /* the local classifier's label id for title + " " + body */
} cwt_row_t;

typedef struct cwt_env_s {
    const char *name;        /* test name, for messages */
    int mock;
    cw_kafka_mock_t *mk;
    char brokers[512];
    char dir[256];           /* temporary directory */
    char run[64];            /* unique suffix */
    char in_topic[128], out_topic[128], dlq_topic[128], group[128];
    int partitions;
    cwt_row_t *rows;
    size_t nrows;
    cw_model_t *model;       /* the model published as "news@1" */
    pid_t pids[16];          /* spawned workers (for log tails on failure) */
    char logs[16][512];
    int nprocs;
    int failures;
    int *pred2;              /* per row: label id under model version 2, when a test has one */
} cwt_env_t;

/* Parse the mode, make the directory, topics (real_partitions each on a
 * real broker, mock_partitions on the mock one, whose partitions hold only
 * ~5 MiB), the model and the rows. Returns 0, or CWT_SKIP (message printed). */
int cwt_env_init(cwt_env_t *e, const char *name, int argc, char **argv, int real_partitions,
                 int mock_partitions);
/* Stop remaining workers (SIGKILL), delete the directory unless there were
 * failures, and return the exit code: 0 or 1. */
int cwt_env_finish(cwt_env_t *e);

#define CWT_CHECK(e, cond, ...) \
    do { if (!(cond)) cwt_fail((e), __FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)
void cwt_fail(cwt_env_t *e, const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void cwt_die(cwt_env_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void cwt_log(cwt_env_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Label ids the local classifier gives each row under model m (malloc'd). */
int *cwt_predict_rows(cwt_env_t *e, cw_model_t *m);

/* Monotonic seconds. */
double cwt_now(void);

/* ---- producing ---- */

/* Where each produced message landed (from delivery reports). */
typedef struct cwt_sent_s {
    int32_t partition;
    int64_t offset;
    int acked;
} cwt_sent_t;

typedef struct cwt_producer_s {
    rd_kafka_t *rk;
    cwt_sent_t *sent;        /* indexed by the caller's message number */
    size_t nsent;
    uint64_t failed;
} cwt_producer_t;

void cwt_producer_init(cwt_env_t *e, cwt_producer_t *p, size_t capacity);
/* Produce value under key (NULL: no key) as message number idx. */
void cwt_produce(cwt_env_t *e, cwt_producer_t *p, size_t idx, const void *key, size_t klen,
                 const void *val, size_t vlen);
/* Article idx: "<prefix><idx>", row idx % nrows; keyed "key-<idx>" when idx is even. */
void cwt_produce_article(cwt_env_t *e, cwt_producer_t *p, size_t idx, const char *prefix);
/* Wait for every delivery report; dies on failures. */
void cwt_producer_flush(cwt_env_t *e, cwt_producer_t *p);
void cwt_producer_destroy(cwt_producer_t *p);

/* ---- workers ---- */

/* Write a worker config (brokers, topics, group, registry, model "news",
 * worker_id) plus extra libconfig text and extra lines inside the kafka
 * group (either may be NULL); the kafka group sets session.timeout.ms 6000
 * so that a killed member leaves the group quickly. Returns its path
 * (static storage, copy it). */
const char *cwt_worker_conf(cwt_env_t *e, const char *worker_id, const char *extra,
                            const char *kafka_extra);
/* Spawn catwire-worker --config conf_path, stderr/stdout to a log file. */
pid_t cwt_worker_spawn(cwt_env_t *e, const char *conf_path, const char *tag);
/* Wait for exit up to timeout_s: returns the exit status (0..255), 128+sig
 * for a signal, or -1 on timeout. */
int cwt_worker_wait(pid_t pid, double timeout_s);
/* 1 when pid is running (not exited, not a zombie). */
int cwt_alive(pid_t pid);
/* VmRSS in KiB, -1 when unavailable. */
long cwt_rss_kb(pid_t pid);

/* ---- reading results ---- */

typedef struct cwt_seen_s {
    size_t n;                /* articles 0..n-1 */
    uint32_t *count;         /* results per article */
    int32_t *label;          /* last label_id */
    int32_t *version;        /* last model_version */
    uint64_t distinct, dups, foreign, bad;
    uint64_t wrong_label, wrong_key, wrong_meta;
    char workers[4][64];     /* distinct worker ids seen ... */
    uint64_t per_worker[4];  /* ... and their result counts */
    int64_t model_version;
    int64_t max_processed_at; /* newest processed_at seen (ms) */
} cwt_seen_t;

void cwt_seen_init(cwt_seen_t *s, size_t n);
void cwt_seen_free(cwt_seen_t *s);

/* A consumer assigned to every partition of topic from the beginning;
 * read_committed selects the isolation level. */
rd_kafka_t *cwt_reader(cwt_env_t *e, const char *topic, int read_committed);
/* Read results until want distinct articles were seen or timeout_s passed
 * without progress; checks each result (label = local prediction, key,
 * model, scores). Returns seen->distinct. */
uint64_t cwt_read_results(cwt_env_t *e, rd_kafka_t *reader, cwt_seen_t *s, const char *prefix,
                          uint64_t want, double idle_timeout_s);

/* Read results for about seconds (producing in between, e.g.). */
void cwt_read_for(cwt_env_t *e, rd_kafka_t *reader, cwt_seen_t *s, const char *prefix,
                  double seconds);

/* Print up to 10 articles with more than one result, with their input
 * partition and offset (p may be NULL). */
void cwt_report_dups(cwt_env_t *e, const cwt_seen_t *s, const cwt_producer_t *p, const char *prefix);

/* Offsets committed by group for the input topic's partitions (array of
 * e->partitions, -1 = none). */
void cwt_committed(cwt_env_t *e, const char *group, int64_t *out);

#endif
