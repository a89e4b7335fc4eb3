/* dataset.h: labelled CSV files as (label, tokens) examples for training
 * and evaluation.
 *
 * Two layouts, told apart row by row by the first column:
 *   - AG News style: "class number","title","description": numbers 1..K
 *     map to the configured label names (1 -> labels[0]);
 *   - named: "label name","text"[,"more text"...].
 * A first column that equals a configured label name is that label; else a
 * decimal number 1..K picks labels[number - 1]; else the row is an error.
 * With no label names configured, names are discovered: every distinct
 * first-column value is a label, ordered numerically when all are decimal
 * numbers (so AG News' "1".."4" keep their order), else by bytes.
 *
 * The text of a row is its columns after the first joined by one space
 * (title + " " + description, as torchtext's AG_NEWS makes it). It is
 * tokenized at load time (tokenizer.h) and kept as tokens.
 *
 * Errors name the file and line ("train.csv:17: expected 3 fields, found 2"):
 * unreadable file, CSV syntax, a row whose field count differs from the first
 * row's (or is < 2), unknown label, invalid UTF-8, empty file.
 *
 * A loaded dataset is immutable and may be read from any number of threads. */
#ifndef CW_DATASET_H
#define CW_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct cw_dataset_opts_s {
    const char *const *labels;  /* label names (NULL: discover them) */
    uint32_t nlabels;
} cw_dataset_opts_t;

typedef struct cw_dataset_s {
    size_t n;               /* examples */
    int32_t *labels;        /* n label ids */
    uint64_t *first;        /* n + 1: example i has tokens [first[i], first[i+1]) */
    char *buf;              /* token bytes */
    uint32_t *start, *len;  /* per token: byte offset in buf and length */
    size_t ntok;
    char **label_names;     /* nlabels names, in id order */
    uint32_t nlabels;
    uint64_t *label_count;  /* examples per label */
    uint64_t fingerprint;   /* FNV-1a 64 of the file's bytes */
    uint64_t bytes;         /* file size */
    char *path;
} cw_dataset_t;

void cw_dataset_opts_init(cw_dataset_opts_t *o);

/* Load path ("-" = stdin). NULL with errstr on failure. */
cw_dataset_t *cw_dataset_load(const char *path, const cw_dataset_opts_t *o,
                              char *errstr, size_t errstr_size);
void cw_dataset_destroy(cw_dataset_t *ds);

/* A read-only view of example i's tokens (t borrows ds's arrays; do not
 * cw_tokens_free it). */
void cw_dataset_tokens(const cw_dataset_t *ds, size_t i, cw_tokens_t *t);

/* Parse "A,B,C" into a malloc'd array of malloc'd names (free with
 * cw_labels_free). Returns the count, or -1 with errstr on an empty name or
 * a duplicate. */
int cw_labels_parse(const char *csv, char ***names, char *errstr, size_t errstr_size);
void cw_labels_free(char **names, uint32_t n);

#endif
