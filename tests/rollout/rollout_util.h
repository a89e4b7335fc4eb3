/* rollout_util.h: helpers shared by the rollout broker tests (on top of
 * tests/kafka/harness.h, whose cwt_predict_rows gives each version's local
 * predictions): a second model version, damaged checkpoints, a result tracker that remembers which
 * version answered each article, and spawning the trainer daemon. */
#ifndef RT_ROLLOUT_UTIL_H
#define RT_ROLLOUT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define RT_MAXV 16

/* A copy of m with fresh uniform weights (same vocabulary and labels). */
cw_model_t *rt_model_variant(cwt_env_t *e, const cw_model_t *m, uint64_t seed);
/* Publish m (not consumed) as the next version of "news" in the run's registry. */
int64_t rt_publish(cwt_env_t *e, const cw_model_t *m);
/* Publish m, then damage its checkpoint: flip a byte (truncate = 0) or cut
 * it in half (truncate = 1). */
int64_t rt_publish_damaged(cwt_env_t *e, const cw_model_t *m, int truncate);
void rt_set_current(cwt_env_t *e, int64_t v);
const char *rt_registry(cwt_env_t *e);
/* Results seen, per article "<prefix><idx>". */
typedef struct rt_track_s {
    size_t n;
    uint32_t *count;          /* results per article */
    int16_t *version;         /* version of the first result (0: none yet) */
    uint64_t results, dups, foreign, bad, wrong_label;
    uint64_t per_version[RT_MAXV];
    double first_seen[RT_MAXV];   /* cwt_now() when version v first answered */
    int64_t last_version;
} rt_track_t;

void rt_track_init(rt_track_t *t, size_t n);
void rt_track_free(rt_track_t *t);
/* Read what the output topic has for up to timeout_ms; preds[v] (may be
 * NULL) are the labels version v must give. Returns results read. */
size_t rt_read(cwt_env_t *e, rd_kafka_t *rk, rt_track_t *t, const char *prefix, int *const *preds,
               int timeout_ms);
/* Articles [0, upto) with a result. */
size_t rt_answered(const rt_track_t *t, size_t upto);

/* 1 when the log file at path contains needle. */
int rt_log_has(const char *path, const char *needle);
/* 1 when one line of the log has both a and b (b may be NULL). */
int rt_log_line_has(const char *path, const char *a, const char *b);

/* Write rows [from, to) of AG News train.csv as CSV (labels shuffled with
 * shuffle != 0) to path via a dot-name and rename, as spool writers must. */
void rt_write_train_rows(cwt_env_t *e, const char *path, size_t from, size_t to, int shuffle);

/* Spawn `catwire-trainer run --config conf` logging to DIR/tag.log. */
pid_t rt_trainer_spawn(cwt_env_t *e, const char *conf, const char *tag);

/* A consumer assigned to every partition of topic from the beginning; on
 * the embedded broker it asks for short fetch waits (that broker holds a
 * fetch for fetch.wait.max.ms even when data is there). */
rd_kafka_t *rt_reader(cwt_env_t *e, const char *topic);

/* Create a topic on the run's broker (mock or real). */
void rt_create_topic(cwt_env_t *e, const char *topic, int partitions);

#endif
