/* csv.c: streaming RFC 4180 reader. See csv.h.
 *
 * Grammar accepted (RFC 4180, with LF or CRLF record ends):
 *   record  = field *("," field) (LF | CRLF | end of file)
 *   field   = quoted | bare
 *   quoted  = '"' *(any byte except '"' | '""') '"'   (LF, CR and CRLF allowed inside)
 *   bare    = *(any byte except '"', ',', CR, LF)
 * An empty line (LF or CRLF alone) is skipped. A UTF-8 byte order mark at the
 * very start of the input is skipped. Errors, all "NAME:LINE: reason" with the
 * line where the record starts: a quote inside a bare field, a character other
 * than ',' or a line end after a closing quote, a CR not followed by LF outside
 * quotes, end of file inside quotes, invalid UTF-8 in a field, a read error.
 * After an error the reader's position is unspecified: stop reading. */
#include "csv.h"

#include <errno.h>
#include <string.h>

#include "util.h"

#define CSV_CHUNK 65536

struct cw_csv_s {
    FILE *fp;
    int own_fp;        /* opened by cw_csv_open (closed by cw_csv_close) */
    char *name;
    unsigned char *in; /* read buffer */
    size_t in_pos, in_len;
    int eof;           /* fp reported end of file (or an error, see read_err) */
    int read_err;      /* errno of a read error, 0 if none */
    uint64_t line;     /* current physical line (1-based) */
    uint64_t rec_line; /* line where the last record started */
    int started;       /* BOM check done */
    char *buf;         /* field bytes, each field NUL-terminated */
    size_t buf_len, buf_cap;
    size_t *offs;      /* field start offsets in buf */
    size_t *lens;
    char **fields;
    size_t nf, fcap;
};

static cw_csv_t *csv_new(FILE *fp, int own, const char *name) {
    cw_csv_t *c = cw_calloc(1, sizeof *c);
    c->fp = fp;
    c->own_fp = own;
    c->name = cw_strdup(name);
    c->in = cw_malloc(CSV_CHUNK);
    c->line = 1;
    return c;
}

cw_csv_t *cw_csv_open(const char *path, char *errstr, size_t errstr_size) {
    if (!strcmp(path, "-")) return csv_new(stdin, 0, "<stdin>");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    return csv_new(fp, 1, path);
}

cw_csv_t *cw_csv_open_fp(FILE *fp, const char *name) { return csv_new(fp, 0, name); }

void cw_csv_close(cw_csv_t *c) {
    if (!c) return;
    if (c->own_fp) fclose(c->fp);
    cw_free(c->name);
    cw_free(c->in);
    cw_free(c->buf);
    cw_free(c->offs);
    cw_free(c->lens);
    cw_free(c->fields);
    cw_free(c);
}

uint64_t cw_csv_line(const cw_csv_t *c) { return c->rec_line; }
const char *cw_csv_name(const cw_csv_t *c) { return c->name; }

/* Next input byte, or -1 at end of input (or on a read error: see read_err). */
static int csv_getc(cw_csv_t *c) {
    if (c->in_pos == c->in_len) {
        if (c->eof) return -1;
        c->in_len = fread(c->in, 1, CSV_CHUNK, c->fp);
        c->in_pos = 0;
        if (c->in_len < CSV_CHUNK) {
            if (ferror(c->fp)) c->read_err = errno ? errno : EIO;
            c->eof = 1;
        }
        if (c->in_len == 0) return -1;
    }
    return c->in[c->in_pos++];
}

/* Look at the next byte without consuming it (-1 at end of input). */
static int csv_peek(cw_csv_t *c) {
    int ch = csv_getc(c);
    if (ch >= 0) c->in_pos--;
    return ch;
}

static inline void buf_put(cw_csv_t *c, int ch) {
    if (c->buf_len == c->buf_cap) cw_grow((void **)&c->buf, &c->buf_cap, c->buf_len + 1, 1);
    c->buf[c->buf_len++] = (char)ch;
}

static void field_begin(cw_csv_t *c) {
    if (c->nf == c->fcap) {
        size_t cap = c->fcap;
        cw_grow((void **)&c->offs, &cap, c->nf + 1, sizeof *c->offs);
        c->lens = cw_realloc(c->lens, cap * sizeof *c->lens);
        c->fields = cw_realloc(c->fields, cap * sizeof *c->fields);
        c->fcap = cap;
    }
    c->offs[c->nf] = c->buf_len;
}

static void field_end(cw_csv_t *c) {
    c->lens[c->nf] = c->buf_len - c->offs[c->nf];
    buf_put(c, '\0');
    c->nf++;
}

int cw_csv_next(cw_csv_t *c, size_t *nfields, char ***fields, size_t **lens,
                char *errstr, size_t errstr_size) {
    int rc = -1;
    const char *why = NULL;
    char msg[64];
    int ch;

    c->nf = 0;
    c->buf_len = 0;
    if (!c->started) { /* skip a UTF-8 byte order mark */
        c->started = 1;
        if (csv_peek(c) == 0xEF && c->in_len - c->in_pos >= 3 &&
            !memcmp(c->in + c->in_pos, "\xEF\xBB\xBF", 3))
            c->in_pos += 3;
    }
    /* Skip blank lines. */
    for (;;) {
        ch = csv_peek(c);
        if (ch == '\n') {
            csv_getc(c);
            c->line++;
        } else if (ch == '\r') {
            csv_getc(c);
            if (csv_peek(c) != '\n') {
                c->rec_line = c->line;
                why = "carriage return not followed by a line feed";
                goto done;
            }
            csv_getc(c);
            c->line++;
        } else {
            break;
        }
    }
    c->rec_line = c->line;
    if (ch < 0) {
        rc = 0;
        goto done;
    }

    for (;;) { /* one field per iteration */
        field_begin(c);
        ch = csv_getc(c);
        if (ch == '"') {
            for (;;) {
                ch = csv_getc(c);
                if (ch < 0) {
                    why = "unterminated quoted field";
                    goto done;
                }
                if (ch == '"') {
                    if (csv_peek(c) != '"') break;
                    csv_getc(c);
                } else if (ch == '\n') {
                    c->line++;
                }
                buf_put(c, ch);
            }
            ch = csv_getc(c);
            if (ch >= 0 && ch != ',' && ch != '\n' && ch != '\r') {
                why = "unexpected character after a closing quote";
                goto done;
            }
        } else {
            while (ch >= 0 && ch != ',' && ch != '\n' && ch != '\r') {
                if (ch == '"') {
                    why = "quote inside an unquoted field (quote the field and double the quote)";
                    goto done;
                }
                buf_put(c, ch);
                ch = csv_getc(c);
            }
        }
        field_end(c);
        if (!cw_utf8_valid(c->buf + c->offs[c->nf - 1], c->lens[c->nf - 1])) {
            snprintf(msg, sizeof msg, "invalid UTF-8 in field %zu", c->nf);
            why = msg;
            goto done;
        }
        if (ch == ',') continue;
        if (ch == '\r') {
            if (csv_getc(c) != '\n') {
                why = "carriage return not followed by a line feed";
                goto done;
            }
            ch = '\n';
        }
        if (ch == '\n') c->line++;
        break; /* end of record (line end or end of file) */
    }
    if (c->read_err) goto done;
    for (size_t i = 0; i < c->nf; i++) c->fields[i] = c->buf + c->offs[i];
    *nfields = c->nf;
    *fields = c->fields;
    *lens = c->lens;
    rc = 1;
done:
    if (rc != 1 && c->read_err) { /* a failed read looks like end of file: say what it was */
        cw_seterr(errstr, errstr_size, "%s:%llu: read error: %s", c->name,
                  (unsigned long long)c->line, strerror(c->read_err));
        rc = -1;
    } else if (rc < 0) {
        cw_seterr(errstr, errstr_size, "%s:%llu: %s", c->name, (unsigned long long)c->rec_line, why);
    }
    return rc;
}

int cw_utf8_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, eight bytes at a time. */
        while (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (v & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i == len) break;
        unsigned b0 = s[i];
        if (b0 < 0x80) {
            i++;
            continue;
        }
        unsigned lo = 0x80, hi = 0xBF;
        size_t n;
        if (b0 < 0xC2 || b0 > 0xF4) return 0;
        if (b0 < 0xE0) n = 2;
        else if (b0 < 0xF0) n = 3;
        else n = 4;
        if (b0 == 0xE0) lo = 0xA0;
        else if (b0 == 0xED) hi = 0x9F;
        else if (b0 == 0xF0) lo = 0x90;
        else if (b0 == 0xF4) hi = 0x8F;
        if (len - i < n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += n;
    }
    return 1;
}
