/* dataset.c: labelled CSV -> tokenized examples. See dataset.h.
 *
 * The file is read whole (it is also fingerprinted), then parsed through the
 * CSV reader from memory, so stdin and files take the same path. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "util.h"

#define CW_DATASET_MAX_LABELS 4096

void cw_dataset_opts_init(cw_dataset_opts_t *o) { memset(o, 0, sizeof(*o)); }

void cw_labels_free(char **names, uint32_t n) {
    if (!names) return;
    for (uint32_t i = 0; i < n; i++) cw_free(names[i]);
    cw_free(names);
}

int cw_labels_parse(const char *csv, char ***names, char *errstr, size_t errstr_size) {
    char **out = NULL;
    size_t n = 0, cap = 0;
    const char *p = csv;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            cw_seterr(errstr, errstr_size, "labels '%s': empty label name", csv);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (strlen(out[i]) == len && !memcmp(out[i], p, len)) {
                cw_seterr(errstr, errstr_size, "labels '%s': duplicate label '%s'", csv, out[i]);
                goto fail;
            }
        }
        cw_grow((void **)&out, &cap, n + 1, sizeof(char *));
        out[n++] = cw_strndup(p, len);
        if (!e) break;
        p = e + 1;
    }
    *names = out;
    return (int)n;
fail:
    cw_labels_free(out, (uint32_t)n);
    return -1;
}

static int read_input(const char *path, char **data, size_t *len, char *errstr, size_t errstr_size) {
    if (strcmp(path, "-") != 0) return cw_file_read_all(path, data, len, errstr, errstr_size);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        cw_grow((void **)&buf, &cap, n + 65536 + 1, 1);
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) {
        cw_seterr(errstr, errstr_size, "read stdin: %s", strerror(errno));
        cw_free(buf);
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* Decimal 1..max without sign, spaces or leading zeros; 0 when not one. */
static uint64_t label_number(const char *s, size_t len, uint64_t max) {
    if (len == 0 || len > 9 || s[0] == '0') return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v <= max ? v : 0;
}

static int is_decimal(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* Numbers without leading zeros order by length, then by digits. */
static int cmp_discovered(const void *a, const void *b, int numeric) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    if (numeric) {
        size_t lx = strlen(x), ly = strlen(y);
        if (lx != ly) return lx < ly ? -1 : 1;
    }
    return strcmp(x, y);
}
static int cmp_numeric(const void *a, const void *b) { return cmp_discovered(a, b, 1); }
static int cmp_bytes(const void *a, const void *b) { return cmp_discovered(a, b, 0); }

cw_dataset_t *cw_dataset_load(const char *path, const cw_dataset_opts_t *o, char *errstr,
                              size_t errstr_size) {
    cw_dataset_t *ds = cw_calloc(1, sizeof(*ds));
    char *data = NULL, *text = NULL;
    size_t data_len = 0, text_cap = 0;
    size_t ex_cap = 0, first_cap = 0, buf_cap = 0, tok_cap = 0;
    FILE *fp = NULL;
    cw_csv_t *csv = NULL;
    cw_tokens_t t;
    cw_tokens_init(&t);
    char **found = NULL; /* discovered label names (no labels configured) */
    size_t nfound = 0, found_cap = 0;
    size_t want_fields = 0;
    size_t blen = 0; /* bytes used in ds->buf */
    int ok = 0;
    const char *name = strcmp(path, "-") ? path : "stdin";

    ds->path = cw_strdup(name);
    if (read_input(path, &data, &data_len, errstr, errstr_size) != 0) goto done;
    ds->fingerprint = cw_fnv1a64(data, data_len, CW_FNV64_INIT);
    ds->bytes = data_len;
    if (data_len == 0) {
        cw_seterr(errstr, errstr_size, "%s:1: empty file (no records)", name);
        goto done;
    }
    fp = fmemopen(data, data_len, "r");
    if (!fp) {
        cw_seterr(errstr, errstr_size, "%s: fmemopen: %s", name, strerror(errno));
        goto done;
    }
    csv = cw_csv_open_fp(fp, name);

    for (;;) {
        size_t nf;
        char **f;
        size_t *fl;
        int r = cw_csv_next(csv, &nf, &f, &fl, errstr, errstr_size);
        if (r < 0) goto done;
        if (r == 0) break;
        uint64_t line = cw_csv_line(csv);
        if (want_fields == 0) {
            if (nf < 2) {
                cw_seterr(errstr, errstr_size,
                          "%s:%llu: expected a label and text (at least 2 fields), found %zu", name,
                          (unsigned long long)line, nf);
                goto done;
            }
            want_fields = nf;
        } else if (nf != want_fields) {
            cw_seterr(errstr, errstr_size, "%s:%llu: expected %zu fields (as in the first row), found %zu",
                      name, (unsigned long long)line, want_fields, nf);
            goto done;
        }
        for (size_t i = 0; i < nf; i++) {
            if (!cw_utf8_valid(f[i], fl[i])) {
                cw_seterr(errstr, errstr_size, "%s:%llu: field %zu is not valid UTF-8", name,
                          (unsigned long long)line, i + 1);
                goto done;
            }
        }
        /* label */
        int32_t label = -1;
        if (o && o->nlabels > 0) {
            for (uint32_t k = 0; k < o->nlabels && label < 0; k++)
                if (strlen(o->labels[k]) == fl[0] && !memcmp(o->labels[k], f[0], fl[0])) label = (int32_t)k;
            if (label < 0) {
                uint64_t num = label_number(f[0], fl[0], o->nlabels);
                if (num) label = (int32_t)(num - 1);
            }
            if (label < 0) {
                cw_seterr(errstr, errstr_size,
                          "%s:%llu: unknown label '%.64s' (expected one of the %u configured labels or a class "
                          "number 1..%u)",
                          name, (unsigned long long)line, f[0], o->nlabels, o->nlabels);
                goto done;
            }
        } else {
            for (size_t k = 0; k < nfound && label < 0; k++)
                if (!strcmp(found[k], f[0])) label = (int32_t)k;
            if (label < 0) {
                if (fl[0] == 0 || nfound >= CW_DATASET_MAX_LABELS) {
                    cw_seterr(errstr, errstr_size, "%s:%llu: %s", name, (unsigned long long)line,
                              fl[0] == 0 ? "empty label" : "too many distinct labels");
                    goto done;
                }
                cw_grow((void **)&found, &found_cap, nfound + 1, sizeof(char *));
                found[nfound] = cw_strndup(f[0], fl[0]);
                label = (int32_t)nfound++;
            }
        }
        /* text = fields 2.. joined by one space */
        size_t tl = 0;
        for (size_t i = 1; i < nf; i++) tl += fl[i] + 1;
        cw_grow((void **)&text, &text_cap, tl + 1, 1);
        size_t p = 0;
        for (size_t i = 1; i < nf; i++) {
            if (i > 1) text[p++] = ' ';
            memcpy(text + p, f[i], fl[i]);
            p += fl[i];
        }
        cw_tokenize(text, p, &t);
        /* append example */
        cw_grow((void **)&ds->labels, &ex_cap, ds->n + 1, sizeof(int32_t));
        cw_grow((void **)&ds->first, &first_cap, ds->n + 2, sizeof(uint64_t));
        ds->labels[ds->n] = label;
        ds->first[ds->n] = ds->ntok;
        if (blen + t.buf_len > UINT32_MAX) {
            cw_seterr(errstr, errstr_size, "%s:%llu: data set too large (over 4 GiB of tokens)", name,
                      (unsigned long long)line);
            goto done;
        }
        cw_grow((void **)&ds->buf, &buf_cap, blen + t.buf_len + 1 + CW_TOKENS_SLACK, 1);
        if (ds->ntok + t.n + 1 > tok_cap) {
            cw_grow((void **)&ds->start, &tok_cap, ds->ntok + t.n + 1, sizeof(uint32_t));
            ds->len = cw_realloc(ds->len, tok_cap * sizeof(uint32_t));
        }
        size_t o2 = blen;
        for (size_t k = 0; k < t.n; k++) {
            memcpy(ds->buf + o2, t.buf + t.start[k], t.len[k]);
            ds->start[ds->ntok + k] = (uint32_t)o2;
            ds->len[ds->ntok + k] = t.len[k];
            o2 += t.len[k];
        }
        blen = o2;
        ds->ntok += t.n;
        ds->n++;
        ds->first[ds->n] = ds->ntok;
    }
    if (ds->n == 0) {
        cw_seterr(errstr, errstr_size, "%s:1: empty file (no records)", name);
        goto done;
    }

    if (o && o->nlabels > 0) {
        ds->nlabels = o->nlabels;
        ds->label_names = cw_calloc(o->nlabels, sizeof(char *));
        for (uint32_t k = 0; k < o->nlabels; k++) ds->label_names[k] = cw_strdup(o->labels[k]);
    } else {
        /* Order discovered names (numeric when all are numbers), then remap ids. */
        char **sorted = cw_malloc(nfound * sizeof(char *));
        memcpy(sorted, found, nfound * sizeof(char *));
        int numeric = 1;
        for (size_t k = 0; k < nfound; k++) numeric &= is_decimal(found[k]) && found[k][0] != '0';
        qsort(sorted, nfound, sizeof(char *), numeric ? cmp_numeric : cmp_bytes);
        int32_t *remap = cw_malloc(nfound * sizeof(int32_t));
        for (size_t k = 0; k < nfound; k++)
            for (size_t j = 0; j < nfound; j++)
                if (sorted[j] == found[k]) remap[k] = (int32_t)j;
        for (size_t i = 0; i < ds->n; i++) ds->labels[i] = remap[ds->labels[i]];
        ds->nlabels = (uint32_t)nfound;
        ds->label_names = sorted;
        cw_free(found);
        found = NULL;
        nfound = 0;
        cw_free(remap);
    }
    ds->label_count = cw_calloc(ds->nlabels, sizeof(uint64_t));
    for (size_t i = 0; i < ds->n; i++) ds->label_count[ds->labels[i]]++;
    ok = 1;
done:
    cw_csv_close(csv);
    if (fp) fclose(fp);
    cw_free(data);
    cw_free(text);
    cw_tokens_free(&t);
    cw_labels_free(found, (uint32_t)nfound);
    if (!ok) {
        cw_dataset_destroy(ds);
        return NULL;
    }
    return ds;
}

void cw_dataset_destroy(cw_dataset_t *ds) {
    if (!ds) return;
    cw_free(ds->labels);
    cw_free(ds->first);
    cw_free(ds->buf);
    cw_free(ds->start);
    cw_free(ds->len);
    cw_labels_free(ds->label_names, ds->nlabels);
    cw_free(ds->label_count);
    cw_free(ds->path);
    cw_free(ds);
}

void cw_dataset_tokens(const cw_dataset_t *ds, size_t i, cw_tokens_t *t) {
    memset(t, 0, sizeof(*t));
    t->buf = ds->buf;
    t->start = ds->start + ds->first[i];
    t->len = ds->len + ds->first[i];
    t->n = (size_t)(ds->first[i + 1] - ds->first[i]);
    t->cap = t->n;
}
