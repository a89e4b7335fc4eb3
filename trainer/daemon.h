/* daemon.h: the trainer daemon (`catwire-trainer run --config FILE`).
 *
 * It gathers new labelled examples, retrains, and publishes versions that
 * pass a quality gate:
 *
 *   spool_dir/NAME.csv --+                     state_dir/pending/   new examples
 *                        +--> normalised CSV -->                      |
 *   labelled_topic ------+                          retrain + gate  --+
 *                                                                      |
 *                             state_dir/accepted/ <-- passed ----------+
 *                             state_dir/rejected/ <-- stopped ---------+
 *
 * Input. A spool file is taken when its name ends in ".csv" and does not
 * start with '.' (writers create ".name.csv" or "name.tmp" and rename, so a
 * half-written file is never taken). Every row must parse and carry a known
 * label (same layouts as `catwire-trainer train`: "class number",texts... or
 * "label name",texts...); a file with any bad row is refused whole and moved
 * to spool_dir/failed/ with NAME.reason beside it; a good one is rewritten
 * as normalised rows ("label name","text") into state_dir/pending/ and moved
 * to spool_dir/done/. Labelled articles from Kafka (schemas/README.md,
 * "Labelled articles") are buffered and written the same way as
 * pending/kafka-*.csv; their offsets are committed only once that file is on
 * disk (at-least-once; an undecodable message or unknown label is logged and
 * skipped).
 *
 * Retraining happens when pending examples reach min_new_examples, or when
 * retrain_interval_s passed since the last training and anything is pending,
 * or at start when the model has no version yet (bootstrap). It trains from
 * scratch on base_train + accepted/ + pending/. Why from scratch rather than
 * warm-started from the current weights: the vocabulary and n-gram buckets
 * are built from the data, so new words in new data get rows only in a fresh
 * model; the result is reproducible from the files alone (threads = 1); and
 * the training engine is fast (1,400 AG News rows: about 0.5 s on one core
 * in test_daemon), which leaves little for warm starting to save.
 *
 * Quality gate. The new version and the current one are both scored on the
 * holdout file now (so they are compared on the same rows, whatever the
 * current's meta says). The new version becomes current when
 *     holdout_accuracy(new) >= holdout_accuracy(current) - max_accuracy_drop
 * (or when there is no current version, or it does not load). Either way it
 * is published, with the decision and its reason in meta.json ("gate"); a
 * stopped version stays a candidate and the reason is logged. Data behind a
 * stopped version moves from pending/ to rejected/ (with a .reason file), so
 * one bad file does not poison every later retraining; an operator can
 * drop it into the spool again. Data behind an accepted version moves to
 * accepted/.
 *
 * Announcement. Each version made current is announced on control_topic
 * (schemas/README.md, "Control messages"): model, version, path, checksum,
 * holdout accuracy, previous version. Workers treat it as a hint and read
 * the registry (worker/reload.h).
 *
 * Threads: cw_daemon_run() runs on the calling thread until
 * cw_daemon_stop() (async-signal-safe). Training blocks the loop; the
 * labelled-articles consumer is not polled meanwhile (its buffered data is
 * on disk and committed before training starts). */
#ifndef CW_DAEMON_H
#define CW_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "daemon_config.h"

typedef struct cw_daemon_s cw_daemon_t;

/* The quality gate: 1 when a version scoring new_acc may replace the
 * current one scoring cur_acc (has_current 0: there is none), else 0;
 * reason receives the sentence that goes into the log and meta.json. */
int cw_daemon_gate(double new_acc, int has_current, int64_t cur_version, double cur_acc,
                   double max_drop, char *reason, size_t reason_size);

/* What one retraining did. */
typedef struct cw_daemon_outcome_s {
    int64_t version;         /* published version (0 when none) */
    int promoted;            /* became current */
    int64_t previous;        /* current version before (0 when none) */
    double holdout_acc;      /* the new version's */
    double current_acc;      /* the previous current's (-1 when none) */
    size_t train_rows, pending_rows;
    double seconds;
    char reason[512];
} cw_daemon_outcome_t;

typedef struct cw_daemon_stats_s {
    uint64_t files_taken, files_failed;
    uint64_t kafka_examples, kafka_skipped;
    uint64_t pending_rows;   /* new examples waiting for a retraining */
    uint64_t trainings, promoted, stopped;
    uint64_t announced;
} cw_daemon_stats_t;

/* Checks the configuration, creates the state directories, loads the
 * holdout file, settles the label set and connects to Kafka (when
 * configured). conf must outlive the daemon. NULL with errstr. */
cw_daemon_t *cw_daemon_new(const cw_daemon_conf_t *conf, char *errstr, size_t errstr_size);
/* Loop until stopped: 0 on a clean stop, -1 on a fatal error (logged). */
int cw_daemon_run(cw_daemon_t *d);
void cw_daemon_stop(cw_daemon_t *d);
void cw_daemon_destroy(cw_daemon_t *d);
void cw_daemon_get_stats(cw_daemon_t *d, cw_daemon_stats_t *st);

/* One pass of the loop's pieces, for tests and tools: take what is in the
 * spool (returns the number of files taken, -1 on an I/O error) ... */
int cw_daemon_scan_spool(cw_daemon_t *d, char *errstr, size_t errstr_size);
/* ... and retrain now, whatever is pending. 0 with *out filled, -1 with errstr. */
int cw_daemon_retrain(cw_daemon_t *d, const char *trigger, cw_daemon_outcome_t *out,
                      char *errstr, size_t errstr_size);

/* `catwire-trainer run ...`: argument parsing, signals, exit codes
 * (0 clean stop or valid config, 1 fatal error, 2 usage or config). */
int cw_daemon_main(int argc, char **argv);

#endif
