/* checkpoint.h: the model file (.cwm).
 *
 * One self-contained, checksummed, little-endian file: magic "CWMODEL\0",
 * format version, dimensions, tokenizer and n-gram settings, vocabulary,
 * label names, weights, and a CRC-32C over everything before it. The exact
 * layout is documented at the top of checkpoint.c.
 *
 * Writing is atomic (util.h's cw_file_write_atomic): a reader sees the whole
 * file or none. Reading refuses truncated, corrupted (checksum), foreign
 * (magic) and newer-format files with an error that says which. A model that
 * fails to load never replaces one that serves.
 *
 * Thread-safe: no shared state. */
#ifndef CW_CHECKPOINT_H
#define CW_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define CW_CKPT_MAGIC "CWMODEL"
#define CW_CKPT_FORMAT_VERSION 1
/* Largest n-gram order a file may declare (model.c featurizes up to 8). */
#define CW_CKPT_MAX_NGRAM 8
/* Name of the n-gram hash stored in the file; model.h's cw_model_featurize()
 * defines it (FNV-1a 64 per token, h = h * 116049371 + t, mod nbuckets). A
 * different hash would need a new name, so old files are refused, not misread. */
#define CW_CKPT_NGRAM_HASH "cwhash64v1-mul116049371-mulshift"

int cw_ckpt_write(const cw_model_t *m, const char *path, char *errstr, size_t errstr_size);
cw_model_t *cw_ckpt_read(const char *path, char *errstr, size_t errstr_size);
/* Same, from memory (tests, fuzzing). */
cw_model_t *cw_ckpt_decode(const void *data, size_t len, char *errstr, size_t errstr_size);
/* Encode to a malloc'd buffer. */
int cw_ckpt_encode(const cw_model_t *m, void **out, size_t *len, char *errstr, size_t errstr_size);

#endif
