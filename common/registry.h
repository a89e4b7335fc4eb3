/* registry.h: versioned models on disk.
 *
 *   <registry>/<model>/<version>/model.cwm   the checkpoint (checkpoint.h)
 *   <registry>/<model>/<version>/meta.json   recipe, hyperparameters, metrics,
 *                                            data fingerprint, created_at, parent
 *   <registry>/<model>/CURRENT               the current version (atomic pointer,
 *                                            replaced by rename)
 *
 * Versions are increasing integers from 1 and are never overwritten: a new
 * version is assembled in a temporary directory and renamed into place, so a
 * version directory appears whole or not at all.
 *
 * A reference "NAME" means the current version (or the highest when none is
 * marked current); "NAME@N" means version N.
 *
 * Thread-safe across processes for publish (rename is the commit point);
 * no in-process shared state. */
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

#endif
