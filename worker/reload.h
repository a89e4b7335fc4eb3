/* reload.h: the worker's hot reload: notice a new model version, load and
 * validate it in the background, hand it to the serving engine.
 *
 * What to serve is decided by the registry alone (registry.h): the fleet's
 * pin when the worker belongs to a pinned fleet, else CURRENT (else the
 * highest version). Two things make the reloader look again:
 *   - the control topic: an announcement naming this model (schemas/README.md,
 *     "Control messages") wakes it at once. The message is only a hint; the
 *     version and path it carries are not trusted, the registry is re-read.
 *     The control consumer reads by plain assignment from the end of every
 *     partition (no group membership, nothing committed), so it never delays
 *     or rebalances anything and a restart does not replay old news;
 *   - a registry watch: CURRENT and the fleet's pin are re-read every poll_ms
 *     (a few small file reads), which covers `catwire models promote`,
 *     rollback and pin, a lost announcement, or no broker at all.
 *
 * A version that differs from the one served is loaded (checkpoint.h: the
 * checksum, magic, format version and lengths are checked there) and
 * validated (cw_reload_validate) on the reloader's thread, then offered to
 * the engine (worker.h's cw_worker_offer_model: the swap happens between two
 * batches). A version that fails is refused: logged once with the reason,
 * counted, and not tried again until the registry points somewhere else and
 * back; the engine keeps serving what it has. A model reference "NAME@V"
 * pins the worker to V: the reloader then only logs that it is idle.
 *
 * Threads: cw_reload_start() starts one thread; cw_reload_stop() joins it
 * and frees everything (NULL is a no-op). cw_reload_wake() and
 * cw_reload_get_stats() may be called from any thread. The offer callback
 * runs on the reloader's thread and receives ownership of the model.
 *
 * Errors: start returns NULL with errstr only for bad options; a broker or
 * registry that is unreachable is logged (once per distinct error) and
 * retried. */
#ifndef CW_RELOAD_H
#define CW_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"
#include "worker.h"

typedef struct cw_reload_s cw_reload_t;

/* Receives a validated model (ownership passes) and the version it is. */
typedef void (cw_reload_offer_cb)(void *opaque, cw_model_t *m, const char *name, int64_t version);

typedef struct cw_reload_opts_s {
    const char *registry;         /* registry directory */
    const char *model;            /* "NAME" (follow) or "NAME@V" (fixed) */
    const char *fleet;            /* pin name; NULL or "" = follow CURRENT */
    int64_t poll_ms;              /* registry watch period (>= 10) */
    int allow_label_change;       /* accept versions whose labels differ */
    /* What is served now: its version and labels (copied). */
    int64_t serving_version;
    const char *const *labels;
    uint32_t nlabels;
    /* Control topic: both non-empty to listen, else registry watch only. */
    const char *brokers;
    const char *control_topic;
    const cw_kv_t *kafka;         /* librdkafka properties for the control consumer */
    size_t nkafka;
    cw_reload_offer_cb *offer;
    void *opaque;
} cw_reload_opts_t;

typedef struct cw_reload_stats_s {
    uint64_t checks;          /* registry look-ups */
    uint64_t announcements;   /* control messages naming this model */
    uint64_t offered;         /* versions validated and handed over */
    uint64_t refused;         /* versions that failed to load or validate */
    int64_t serving_version;  /* the last version offered (or the initial one) */
    int64_t refused_version;  /* the last version refused (0 when none) */
    char last_error[512];     /* why it was refused */
} cw_reload_stats_t;

cw_reload_t *cw_reload_start(const cw_reload_opts_t *o, char *errstr, size_t errstr_size);
void cw_reload_stop(cw_reload_t *r);
/* Look at the registry now instead of at the next poll. */
void cw_reload_wake(cw_reload_t *r);
void cw_reload_get_stats(cw_reload_t *r, cw_reload_stats_t *st);

/* Start a reloader for a running engine: options from conf (registry,
 * model, fleet, reload_poll_ms, allow_label_change, brokers, control_topic,
 * kafka), the serving version from the engine's statistics, its labels from
 * that version's checkpoint; offers go to cw_worker_offer_model(w, ...).
 * conf and w must outlive the reloader. */
cw_reload_t *cw_reload_start_worker(cw_worker_t *w, const cw_worker_conf_t *conf,
                                    char *errstr, size_t errstr_size);

/* The checks a version must pass before it may serve, beyond the
 * checkpoint loader's: consistent dimensions (nrows = vocabulary + buckets,
 * dim and nlabels non-zero, n-gram order 1..8), labels equal to labels[]
 * (same names, same order) unless allow_label_change, every weight finite,
 * and a smoke prediction on the CPU backend (a few fixed texts, among them
 * an empty one) whose probabilities are finite, within [0, 1] and sum to 1
 * per text. 0, or -1 with errstr saying which check failed. */
int cw_reload_validate(const cw_model_t *m, const char *const *labels, uint32_t nlabels,
                       int allow_label_change, char *errstr, size_t errstr_size);

/* Load a checkpoint and validate it: the model, or NULL with errstr. */
cw_model_t *cw_reload_load(const char *path, const char *const *labels, uint32_t nlabels,
                           int allow_label_change, char *errstr, size_t errstr_size);

/* Control messages (schemas/README.md, "Control messages"): a msgpack map.
 * Decoding is bounded (schemas' strict reader); unknown keys are skipped.
 * model is copied into model_buf (NUL-terminated); *version gets "version"
 * (0 when absent). 0, or -1 with errstr. */
int cw_control_decode(const void *buf, size_t len, char *model_buf, size_t model_buf_size,
                      int64_t *version, char *errstr, size_t errstr_size);

#endif
