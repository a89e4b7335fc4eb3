/* registry.h: versioned models on disk.
 *
 *   <registry>/<model>/<version>/model.cwm   the checkpoint (checkpoint.h)
 *   <registry>/<model>/<version>/meta.json   recipe, hyperparameters, metrics,
 *                                            data fingerprint, created_at, parent
 *   <registry>/<model>/CURRENT               the current version (atomic pointer,
 *                                            replaced by rename)
 *   <registry>/<model>/pins/<fleet>          a version that fleet is pinned to
 *   <registry>/<model>/.lock                 flock(2) serializing CURRENT, pin and
 *                                            gc changes (never held while loading)
 *
 * CURRENT is text: the first line is the current version in decimal (a
 * reader that only needs the current version reads that line), an optional
 * second line "previous A B C ..." lists the versions that were current
 * before it, newest first (at most CW_REGISTRY_HISTORY). Promoting pushes
 * onto that list; rollback pops back to the newest earlier version that
 * still exists. Keeping the history in the same file as the pointer means
 * one rename changes both, so they can never disagree.
 *
 * "Last good" version: the rollback target, i.e. the newest version in the
 * previous list that still exists. gc never deletes it, the current version,
 * a pinned version, or the newest version (so numbers are never reused).
 *
 * meta.json is written by the registry: the caller's members plus "model",
 * "version", "created_at" (ISO 8601 UTC, milliseconds) and "parent" (the
 * current version at publish time, or null); the registry's four win over
 * caller members of the same name.
 *
 * Versions are increasing integers from 1 and are never overwritten: a new
 * version is assembled in a temporary directory and renamed into place, so a
 * version directory appears whole or not at all.
 *
 * A reference "NAME" means the current version (or the highest when none is
 * marked current); "NAME@N" means version N.
 *
 * Names: a model name is 1-128 bytes of [A-Za-z0-9._-], not starting with
 * '.'; a fleet name is 1-128 bytes of [A-Za-z0-9_-].
 *
 * Thread-safe across processes for publish (rename is the commit point);
 * CURRENT, pin and gc changes hold the model's lock file; no in-process
 * shared state. */
#ifndef CW_REGISTRY_H
#define CW_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Publish m as the next version of name; meta_json is a JSON object (the
 * caller's metadata; the registry adds "version", "model", "created_at" and
 * "parent"). Returns the new version (>= 1) or -1 with errstr. */
int64_t cw_registry_publish(const char *registry, const char *name, const cw_model_t *m,
                            const char *meta_json, char *errstr, size_t errstr_size);

/* Resolve "NAME" or "NAME@VERSION" to a version number and checkpoint path
 * (path is malloc'd). Returns 0 or -1 with errstr. */
int cw_registry_resolve(const char *registry, const char *ref, char **name_out,
                        int64_t *version_out, char **path_out,
                        char *errstr, size_t errstr_size);

/* Load the model a reference names. */
cw_model_t *cw_registry_load(const char *registry, const char *ref, int64_t *version_out,
                             char *errstr, size_t errstr_size);

/* The current version of name, 0 when none is marked, -1 on error. */
int64_t cw_registry_current(const char *registry, const char *name,
                            char *errstr, size_t errstr_size);
/* Mark version as current (atomic). */
int cw_registry_set_current(const char *registry, const char *name, int64_t version,
                            char *errstr, size_t errstr_size);

/* Versions of name in ascending order (malloc'd array). */
int cw_registry_list(const char *registry, const char *name, int64_t **versions, size_t *n,
                     char *errstr, size_t errstr_size);

/* ---- history, rollback, pins, gc (issue 4) ---------------------------- */

#define CW_REGISTRY_HISTORY 32

/* Current version first, then earlier currents, newest first (malloc'd;
 * *n is 0 when none is marked). */
int cw_registry_history(const char *registry, const char *name, int64_t **versions, size_t *n,
                        char *errstr, size_t errstr_size);
/* The rollback target ("last good"): 0 when there is none, -1 on error. */
int64_t cw_registry_previous(const char *registry, const char *name,
                             char *errstr, size_t errstr_size);
/* Make the previous current version current again. Returns it, or -1 when
 * there is nothing to roll back to (errstr says so). */
int64_t cw_registry_rollback(const char *registry, const char *name,
                             char *errstr, size_t errstr_size);

/* Pin fleet to version (which must exist). Unpin returns 1 when a pin was
 * removed, 0 when fleet was not pinned, -1 on error. */
int cw_registry_pin(const char *registry, const char *name, const char *fleet, int64_t version,
                    char *errstr, size_t errstr_size);
int cw_registry_unpin(const char *registry, const char *name, const char *fleet,
                      char *errstr, size_t errstr_size);
/* The version fleet is pinned to: 0 when not pinned, -1 on error. */
int64_t cw_registry_pinned(const char *registry, const char *name, const char *fleet,
                           char *errstr, size_t errstr_size);
/* All pins, sorted by fleet name: fleets[i] (malloc'd strings in a malloc'd
 * array) is pinned to versions[i]. Free with cw_registry_pins_free(). */
int cw_registry_pins(const char *registry, const char *name, char ***fleets, int64_t **versions,
                     size_t *n, char *errstr, size_t errstr_size);
void cw_registry_pins_free(char **fleets, int64_t *versions, size_t n);

/* What a worker of fleet serves: "NAME@V" means V; "NAME" means fleet's pin
 * when fleet is non-NULL, non-empty and pinned, else as cw_registry_resolve
 * (CURRENT, else the highest version). Same outputs as cw_registry_resolve;
 * *pinned_out (may be NULL) is set to 1 when a pin decided. */
int cw_registry_resolve_fleet(const char *registry, const char *ref, const char *fleet,
                              char **name_out, int64_t *version_out, char **path_out,
                              int *pinned_out, char *errstr, size_t errstr_size);

/* Delete old versions so that at most keep (>= 1) remain besides the
 * protected ones: the newest keep versions survive, and so do the current,
 * every pinned version and the last good one, whatever keep says. With
 * dry_run nothing is deleted. *deleted (malloc'd, ascending) lists what was
 * (or would be) deleted. A version is renamed away before its files go, so
 * readers see it whole or not at all. Leftover .tmp-* directories of dead
 * publishers are removed too. */
int cw_registry_gc(const char *registry, const char *name, size_t keep, int dry_run,
                   int64_t **deleted, size_t *ndeleted, char *errstr, size_t errstr_size);

/* The fields of one meta.json that `catwire models list` shows. Metrics are
 * the numeric members of a top-level "metrics" object (named "metrics.KEY")
 * and top-level numeric members whose name contains "accuracy", in file
 * order. Strings are NULL when the field is absent. */
typedef struct cw_registry_meta_s {
    int64_t version;     /* 0 when absent */
    int64_t parent;      /* 0 when null or absent */
    char *created_at;
    char *recipe;
    size_t nmetrics;
    char **metric_names;
    double *metric_values;
    char *json;          /* the whole file, NUL-terminated */
} cw_registry_meta_t;

int cw_registry_meta_read(const char *registry, const char *name, int64_t version,
                          cw_registry_meta_t *meta, char *errstr, size_t errstr_size);
/* Frees what meta holds (not meta itself); safe on a zeroed struct. */
void cw_registry_meta_clear(cw_registry_meta_t *meta);

/* Path of a version's directory or files (malloc'd). file may be NULL for
 * the directory itself. */
char *cw_registry_path(const char *registry, const char *name, int64_t version, const char *file);

#endif
