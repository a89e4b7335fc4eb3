/* test_csv.c: the RFC 4180 reader (quoting, line ends, blank lines, line
 * numbers in errors, invalid UTF-8, chunk boundaries, stdin) and cw_utf8_valid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv.h"
#include "util.h"

#include "check.h"

/* Reads every record of data[0..len) and renders them as
 * "LINE:field|field|...\n" per record; on error appends "ERR:<errstr>". */
static char *render(const char *data, size_t len) {
    FILE *fp = fmemopen((void *)data, len, "rb");
    if (!fp) {
        perror("fmemopen");
        exit(1);
    }
    cw_csv_t *c = cw_csv_open_fp(fp, "t.csv");
    char *out = NULL;
    size_t olen = 0, ocap = 0;
    char err[256];
    size_t nf;
    char **f;
    size_t *lens;
    int rc;
    while ((rc = cw_csv_next(c, &nf, &f, &lens, err, sizeof err)) == 1) {
        char head[32];
        int hn = snprintf(head, sizeof head, "%llu:", (unsigned long long)cw_csv_line(c));
        size_t need = olen + (size_t)hn + 2;
        for (size_t i = 0; i < nf; i++) need += lens[i] + 1;
        cw_grow((void **)&out, &ocap, need + 1, 1);
        memcpy(out + olen, head, (size_t)hn);
        olen += (size_t)hn;
        for (size_t i = 0; i < nf; i++) {
            if (f[i][lens[i]] != '\0') CHECK(0, "field %zu not NUL-terminated", i);
            if (i) out[olen++] = '|';
            memcpy(out + olen, f[i], lens[i]);
            olen += lens[i];
        }
        out[olen++] = '\n';
    }
    if (rc < 0) {
        size_t el = strlen(err);
        cw_grow((void **)&out, &ocap, olen + el + 5, 1);
        memcpy(out + olen, "ERR:", 4);
        memcpy(out + olen + 4, err, el);
        olen += 4 + el;
    }
    cw_grow((void **)&out, &ocap, olen + 1, 1);
    out[olen] = '\0';
    /* End of file is sticky. */
    if (rc == 0) CHECK(cw_csv_next(c, &nf, &f, &lens, err, sizeof err) == 0, "EOF not sticky");
    cw_csv_close(c);
    fclose(fp);
    return out;
}

static void expect(const char *data, const char *want) {
    char *got = render(data, strlen(data));
    CHECK(!strcmp(got, want), "input \"%s\":\n  want \"%s\"\n  got  \"%s\"", data, want, got);
    cw_free(got);
}

static void test_parsing(void) {
    expect("", "");
    expect("a,b,c\n1,2,3\n", "1:a|b|c\n2:1|2|3\n");
    expect("a,b\r\nc,d", "1:a|b\n2:c|d\n");              /* CRLF, no final line end */
    expect("\"a,b\",\"say \"\"hi\"\"\",c\r\n", "1:a,b|say \"hi\"|c\n");
    expect("\"line1\nline2\",x\nnext,y\n", "1:line1\nline2|x\n3:next|y\n");
    expect("\"crlf\r\ninside\"\r\nz\r\n", "1:crlf\r\ninside\n3:z\n");
    expect("\n\na\n\r\n\nb\n\n", "3:a\n6:b\n");           /* blank lines skipped */
    expect(",,\n\"\"\n", "1:||\n2:\n");                   /* empty fields are records */
    expect("\"\"\"\"\n", "1:\"\n");
    expect("caf\xc3\xa9,\xe2\x82\xac\n", "1:caf\xc3\xa9|\xe2\x82\xac\n");
    expect("\xef\xbb\xbf" "a,b\n", "1:a|b\n");            /* UTF-8 BOM skipped */
    expect("\"3\",\"Title\",\"Desc with \\ backslash\"\n", "1:3|Title|Desc with \\ backslash\n");
    expect("a, b ,c\n", "1:a| b |c\n");                   /* spaces are data */
}

static void test_errors(void) {
    expect("x\n\"abc\n", "1:x\nERR:t.csv:2: unterminated quoted field");
    expect("\"a\nb\"\n\"c\n", "1:a\nb\nERR:t.csv:3: unterminated quoted field");
    expect("ab\"c\n", "ERR:t.csv:1: quote inside an unquoted field (quote the field and double the quote)");
    expect("ok\n\"a\"b\n", "1:ok\nERR:t.csv:2: unexpected character after a closing quote");
    expect("\"ok\"\n\"\xff\"\n", "1:ok\nERR:t.csv:2: invalid UTF-8 in field 1");
    expect("a,b\n\n\"x\ny\",\xc3\x28\n", "1:a|b\nERR:t.csv:3: invalid UTF-8 in field 2");
    expect("a,\xed\xa0\x80\n", "ERR:t.csv:1: invalid UTF-8 in field 2"); /* surrogate */
    expect("a\rb\n", "ERR:t.csv:1: carriage return not followed by a line feed");
    expect("a\n\r\n\rb\n", "1:a\nERR:t.csv:3: carriage return not followed by a line feed");
}

/* Fields and records that straddle the reader's 64 KiB chunks. */
static void test_big(void) {
    size_t n = 200000;
    char *data = cw_malloc(2 * n + 64);
    size_t len = 0;
    data[len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (i % 1000 == 999) {
            data[len++] = '"';
            data[len++] = '"';
        } else {
            data[len++] = (char)('a' + i % 26);
        }
    }
    memcpy(data + len, "\",tail\nnext\n", 12);
    len += 12;
    FILE *fp = fmemopen(data, len, "rb");
    cw_csv_t *c = cw_csv_open_fp(fp, "big.csv");
    size_t nf;
    char **f;
    size_t *lens;
    char err[256];
    int rc = cw_csv_next(c, &nf, &f, &lens, err, sizeof err);
    CHECK(rc == 1 && nf == 2 && lens[0] == n && !strcmp(f[1], "tail"), "big record");
    if (rc == 1 && nf == 2) {
        size_t quotes = 0;
        for (size_t i = 0; i < lens[0]; i++) quotes += f[0][i] == '"';
        CHECK(quotes == n / 1000 && f[0][999] == '"' && f[0][0] == 'a', "big field content");
    }
    rc = cw_csv_next(c, &nf, &f, &lens, err, sizeof err);
    CHECK(rc == 1 && nf == 1 && !strcmp(f[0], "next") && cw_csv_line(c) == 2, "record after big one");
    CHECK(cw_csv_next(c, &nf, &f, &lens, err, sizeof err) == 0, "big: end");
    cw_csv_close(c);
    fclose(fp);
    cw_free(data);
}

static void test_files(void) {
    char err[512];
    cw_csv_t *c = cw_csv_open("/nonexistent/dir/x.csv", err, sizeof err);
    CHECK(c == NULL && strstr(err, "/nonexistent/dir/x.csv") != NULL, "open error: %s", err);

    char path[4096];
    snprintf(path, sizeof path, "%s/test_csv_%ld.csv", CW_BUILD_DIR, (long)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        CHECK(0, "cannot create %s", path);
        return;
    }
    fputs("\"1\",\"x\"\n\"2\",\"y\"\n", fp);
    fclose(fp);
    c = cw_csv_open(path, err, sizeof err);
    CHECK(c != NULL, "%s", err);
    if (c) {
        size_t nf, *lens, n = 0;
        char **f;
        while (cw_csv_next(c, &nf, &f, &lens, err, sizeof err) == 1) n++;
        CHECK(n == 2 && !strcmp(cw_csv_name(c), path), "file: %zu records", n);
        cw_csv_close(c);
    }
    /* "-" reads stdin. */
    if (!freopen(path, "rb", stdin)) {
        CHECK(0, "freopen stdin");
    } else {
        c = cw_csv_open("-", err, sizeof err);
        CHECK(c != NULL, "%s", err);
        if (c) {
            size_t nf, *lens;
            char **f;
            int rc = cw_csv_next(c, &nf, &f, &lens, err, sizeof err);
            CHECK(rc == 1 && nf == 2 && !strcmp(f[0], "1") && !strcmp(f[1], "x"), "stdin record");
            CHECK(!strcmp(cw_csv_name(c), "<stdin>"), "stdin name %s", cw_csv_name(c));
            cw_csv_close(c); /* must not close stdin */
            rc = cw_csv_next(c = cw_csv_open_fp(stdin, "again"), &nf, &f, &lens, err, sizeof err);
            (void)rc; /* stdin still usable (position depends on buffering) */
            cw_csv_close(c);
        }
    }
    remove(path);

    /* The AG News files parse completely: three fields per row. */
    const char *names[] = {"sample-1k.csv", "test.csv"};
    const size_t rows[] = {1000, 7600};
    for (size_t k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", CW_TEST_DATA, names[k]);
        c = cw_csv_open(path, err, sizeof err);
        if (!c) {
            printf("SKIP %s: %s\n", names[k], err);
            continue;
        }
        size_t nf, *lens, n = 0, bad = 0;
        char **f;
        int rc;
        while ((rc = cw_csv_next(c, &nf, &f, &lens, err, sizeof err)) == 1) {
            n++;
            bad += nf != 3 || lens[0] != 1 || f[0][0] < '1' || f[0][0] > '4' || cw_csv_line(c) != n;
        }
        CHECK(rc == 0 && n == rows[k] && bad == 0, "%s: rc %d, %zu rows, %zu bad (%s)", names[k], rc, n,
              bad, rc < 0 ? err : "");
        cw_csv_close(c);
    }
}

static void test_utf8(void) {
    static const struct {
        const char *s;
        int valid;
    } cases[] = {
        {"", 1},
        {"plain ascii that is longer than eight bytes", 1},
        {"\x7f\x01", 1},
        {"\xc2\x80 \xdf\xbf", 1},
        {"\xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf", 1},
        {"\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", 1},
        {"0123456789abcdef\xce\xa3xyz", 1},
        {"\x80", 0},
        {"\xbf", 0},
        {"\xc0\x80", 0},   /* overlong NUL */
        {"\xc1\xbf", 0},
        {"\xe0\x80\xaf", 0}, /* overlong */
        {"\xe0\x9f\xbf", 0},
        {"\xed\xa0\x80", 0}, /* surrogate */
        {"\xed\xbf\xbf", 0},
        {"\xf0\x8f\xbf\xbf", 0},
        {"\xf4\x90\x80\x80", 0}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 0},
        {"\xff", 0},
        {"\xc3", 0},          /* truncated */
        {"\xe2\x82", 0},
        {"\xf0\x9f\x98", 0},
        {"\xc3\x28", 0},
        {"\xe2\x28\xa1", 0},
        {"abcdefgh\xe2\x82", 0}, /* truncated after the 8-byte fast path */
        {"abcdefghijklmnop\x80", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(cw_utf8_valid(cases[i].s, strlen(cases[i].s)) == cases[i].valid, "utf8 case %zu", i);
    /* An embedded NUL is valid UTF-8; the length, not the NUL, ends the text. */
    CHECK(cw_utf8_valid("a\0b", 3) == 1, "NUL");
    CHECK(cw_utf8_valid("\xe2\x82\xac", 2) == 0, "length respected");
}

int main(void) {
    test_parsing();
    test_errors();
    test_big();
    test_files();
    test_utf8();
    if (failures) {
        fprintf(stderr, "test_csv: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_csv: ok\n");
    return 0;
}
