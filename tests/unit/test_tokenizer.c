/* test_tokenizer.c: cw_tokenize against torchtext's basic_english.
 *
 * Expected outputs come from tests/fixtures/tokenizer/gen_vectors.py, an
 * independent Python re-implementation of the torchtext function:
 *   vectors.tsv       hand-written, systematic and random vectors, 1 MB inputs;
 *   ag_news_test.tsv  token count and FNV-1a 64 per row of ag_news/test.csv.
 * Plus checks that need no fixture: buffer reuse, never reading past len,
 * and a throughput figure (printed, not asserted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "tokenizer.h"
#include "util.h"

#include "check.h"

/* Undo the fixture escaping ("\\\\" and "\\xHH") in place; returns the length. */
static size_t unescape(char *s) {
    size_t r = 0, w = 0;
    while (s[r]) {
        if (s[r] == '\\' && s[r + 1] == '\\') {
            s[w++] = '\\';
            r += 2;
        } else if (s[r] == '\\' && s[r + 1] == 'x' && s[r + 2] && s[r + 3]) {
            char hex[3] = {s[r + 2], s[r + 3], 0};
            s[w++] = (char)strtoul(hex, NULL, 16);
            r += 4;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    return w;
}

/* Print bytes escaped, for failure messages. */
static void print_esc(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b >= 0x20 && b < 0x7f && b != '\\') fputc(b, f);
        else fprintf(f, "\\x%02x", b);
    }
}

static void print_tokens(FILE *f, const cw_tokens_t *t) {
    for (size_t i = 0; i < t->n; i++) {
        fputs(i ? " | " : "", f);
        print_esc(f, t->buf + t->start[i], t->len[i]);
    }
    fputc('\n', f);
}

static uint64_t tokens_hash(const cw_tokens_t *t) {
    uint64_t h = CW_FNV64_INIT;
    for (size_t i = 0; i < t->n; i++) {
        h = cw_fnv1a64(t->buf + t->start[i], t->len[i], h);
        h = cw_fnv1a64("\n", 1, h);
    }
    return h;
}

/* Split line at TABs into at most max fields (in place). */
static size_t split_tabs(char *line, char **f, size_t max) {
    size_t n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static void check_vector(cw_tokens_t *t, size_t lineno, char **f, size_t nf) {
    size_t len = unescape(f[1]);
    /* Copy into an exact-size buffer so a read past len is caught by ASan/valgrind. */
    char *in = cw_malloc(len ? len : 1);
    memcpy(in, f[1], len);
    cw_tokenize(in, len, t);
    int ok = t->n == nf - 2;
    for (size_t i = 0; ok && i < t->n; i++) {
        size_t el = unescape(f[2 + i]);
        ok = t->len[i] == el && !memcmp(t->buf + t->start[i], f[2 + i], el);
    }
    for (size_t i = 0; i + 1 < t->n && ok; i++) /* tokens are laid out in order */
        ok = t->start[i] + t->len[i] <= t->start[i + 1] && t->start[i + 1] + t->len[i + 1] <= t->buf_len;
    if (!ok) {
        failures++;
        fprintf(stderr, "FAIL vectors.tsv:%zu: input \"", lineno);
        print_esc(stderr, in, len);
        fprintf(stderr, "\"\n  expected %zu:", nf - 2);
        for (size_t i = 2; i < nf; i++) {
            fputs(i > 2 ? " | " : " ", stderr);
            print_esc(stderr, f[i], strlen(f[i]));
        }
        fprintf(stderr, "\n  got %zu: ", t->n);
        print_tokens(stderr, t);
    }
    cw_free(in);
}

static void check_repeat(cw_tokens_t *t, size_t lineno, char **f) {
    size_t count = strtoull(f[1], NULL, 10);
    size_t plen = unescape(f[2]);
    size_t want_n = strtoull(f[3], NULL, 10);
    uint64_t want_h = strtoull(f[4], NULL, 16);
    size_t len = count * plen;
    char *in = cw_malloc(len);
    for (size_t i = 0; i < count; i++) memcpy(in + i * plen, f[2], plen);
    double t0 = cw_now_s();
    cw_tokenize(in, len, t);
    double dt = cw_now_s() - t0;
    uint64_t h = tokens_hash(t);
    CHECK(t->n == want_n && h == want_h,
          "vectors.tsv:%zu: %zu-byte input: %zu tokens hash %016llx, expected %zu hash %016llx",
          lineno, len, t->n, (unsigned long long)h, want_n, (unsigned long long)want_h);
    printf("1 MB input (line %zu): %zu tokens in %.2f ms\n", lineno, t->n, dt * 1e3);
    cw_free(in);
}

static void test_vectors(void) {
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/tokenizer/vectors.tsv", CW_TEST_FIXTURES);
    char *data;
    size_t dlen;
    if (cw_file_read_all(path, &data, &dlen, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    cw_tokens_t t;
    cw_tokens_init(&t); /* one buffer reused across every vector */
    size_t nv = 0, nr = 0, lineno = 0;
    char **f = cw_malloc(4096 * sizeof *f);
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lineno++;
        if (line[0] == '#' || line[0] == '\0') continue;
        size_t nf = split_tabs(line, f, 4096);
        if (!strcmp(f[0], "V") && nf >= 2) {
            check_vector(&t, lineno, f, nf);
            nv++;
        } else if (!strcmp(f[0], "R") && nf == 5) {
            check_repeat(&t, lineno, f);
            nr++;
        } else {
            CHECK(0, "vectors.tsv:%zu: malformed line", lineno);
        }
    }
    CHECK(nv >= 60 && nr >= 1, "only %zu vectors and %zu repeats read", nv, nr);
    printf("vectors: %zu checked, %zu 1 MB inputs\n", nv, nr);
    cw_free(f);
    cw_tokens_free(&t);
    cw_free(data);
}

/* The text end is respected: bytes just past len must not change anything. */
static void test_bounds(void) {
    cw_tokens_t t;
    cw_tokens_init(&t);
    const char *s = "A\xce\xa3" "B<br />";
    cw_tokenize(s, 3, &t); /* "AΣ" — the B after it must not make the sigma medial */
    CHECK(t.n == 1 && t.len[0] == 3 && !memcmp(t.buf, "a\xcf\x82", 3), "final sigma at len");
    cw_tokenize(s + 4, 5, &t); /* "<br /" — the '>' after it must not complete a match */
    CHECK(t.n == 2 && t.len[0] == 3 && !memcmp(t.buf + t.start[0], "<br", 3) && t.len[1] == 1,
          "<br / cut at len");
    cw_tokenize("\xe2\x82\xac", 2, &t); /* a character cut by len: one U+FFFD */
    CHECK(t.n == 1 && t.len[0] == 3 && !memcmp(t.buf, "\xef\xbf\xbd", 3), "cut character");
    cw_tokenize(NULL, 0, &t);
    CHECK(t.n == 0, "empty input has no tokens");
    cw_tokens_free(&t);
    cw_tokens_free(&t); /* freeing twice is harmless */
}

/* Every row of ag_news/test.csv, title + " " + description, against Python. */
static void test_ag_news(void) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/test.csv", CW_TEST_DATA);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("SKIP ag_news differential: %s not found\n", path);
        return;
    }
    fclose(probe);
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s/tokenizer/ag_news_test.tsv", CW_TEST_FIXTURES);
    char *want;
    size_t wlen;
    if (cw_file_read_all(fpath, &want, &wlen, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    cw_csv_t *c = cw_csv_open(path, err, sizeof err);
    CHECK(c != NULL, "%s", err);
    if (!c) {
        cw_free(want);
        return;
    }
    cw_tokens_t t;
    cw_tokens_init(&t);
    char *text = NULL;
    size_t text_cap = 0, rows = 0, bad = 0, total_bytes = 0;
    char *wline = want;
    size_t nf;
    char **fields;
    size_t *lens;
    double tok_s = 0;
    int rc;
    while ((rc = cw_csv_next(c, &nf, &fields, &lens, err, sizeof err)) == 1) {
        rows++;
        CHECK(nf == 3, "test.csv row %zu: %zu fields", rows, nf);
        if (nf != 3) break;
        size_t n = lens[1] + 1 + lens[2];
        cw_grow((void **)&text, &text_cap, n, 1);
        memcpy(text, fields[1], lens[1]);
        text[lens[1]] = ' ';
        memcpy(text + lens[1] + 1, fields[2], lens[2]);
        double t0 = cw_now_s();
        cw_tokenize(text, n, &t);
        tok_s += cw_now_s() - t0;
        total_bytes += n;
        while (wline && *wline == '#') { /* skip comment lines */
            wline = strchr(wline, '\n');
            if (wline) wline++;
        }
        unsigned long long row = 0, cnt = 0, h = 0;
        if (!wline || sscanf(wline, "%llu\t%llu\t%llx", &row, &cnt, &h) != 3) {
            CHECK(0, "ag_news_test.tsv ends before row %zu", rows);
            break;
        }
        wline = strchr(wline, '\n');
        if (wline) wline++;
        if (row != rows || cnt != t.n || h != tokens_hash(&t)) {
            if (++bad <= 5) {
                fprintf(stderr, "FAIL test.csv row %zu: %zu tokens (expected %llu): ", rows, t.n, cnt);
                print_tokens(stderr, &t);
            }
        }
    }
    CHECK(rc == 0, "%s", err);
    CHECK(rows == 7600, "test.csv: %zu rows, expected 7600", rows);
    CHECK(bad == 0, "ag_news: %zu of %zu rows differ from Python", bad, rows);
    printf("ag_news test.csv: %zu rows, %zu differ; tokenize %.1f MB/s, %.2f us/row\n", rows, bad,
           total_bytes / tok_s / 1e6, tok_s / (double)(rows ? rows : 1) * 1e6);
    cw_free(text);
    cw_tokens_free(&t);
    cw_csv_close(c);
    cw_free(want);
}

int main(void) {
    test_vectors();
    test_bounds();
    test_ag_news();
    if (failures) {
        fprintf(stderr, "test_tokenizer: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_tokenizer: ok\n");
    return 0;
}
