/* csv.h: a streaming reader for RFC 4180 CSV (AG News and labelled data).
 *
 * Fields may be quoted ("..." with "" for a quote, newlines allowed inside
 * quotes) or bare; records end at LF or CRLF. Every field must be valid UTF-8.
 * Errors are sentences that start "FILE:LINE: " (LINE: where the record
 * starts, 1-based), e.g. "train.csv:17: unterminated quoted field".
 *
 * Field pointers stay valid until the next cw_csv_next() call; each field is
 * NUL-terminated for convenience (lens[] holds the byte length).
 * One reader per thread. */
#ifndef CW_CSV_H
#define CW_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cw_csv_s cw_csv_t;

/* path "-" reads stdin. NULL with errstr on failure. */
cw_csv_t *cw_csv_open(const char *path, char *errstr, size_t errstr_size);
/* Read from an open stream (not closed by cw_csv_close); name is used in errors. */
cw_csv_t *cw_csv_open_fp(FILE *fp, const char *name);
void cw_csv_close(cw_csv_t *c);

/* Next record: returns 1 (a record), 0 (end of file), -1 (error, errstr set).
 * A blank line is skipped, not returned as a record. */
int cw_csv_next(cw_csv_t *c, size_t *nfields, char ***fields, size_t **lens,
                char *errstr, size_t errstr_size);

/* Line where the last returned record started (1-based). */
uint64_t cw_csv_line(const cw_csv_t *c);
const char *cw_csv_name(const cw_csv_t *c);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int cw_utf8_valid(const char *s, size_t len);

#endif
