/* json.c: msgpack -> JSON rendering and the JSON-lines article reader
 * (contract: json.h). JSON grammar from RFC 8259. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpread.h"

/* ---- Growable output buffer ------------------------------------------- */

static void jbuf_reserve(cw_jbuf_t *b, size_t extra) {
    if (extra >= SIZE_MAX / 2 - b->len) {
        fprintf(stderr, "catwire: JSON buffer size overflow\n");
        abort();
    }
    size_t need = b->len + extra + 1;   /* + NUL */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "catwire: out of memory (%zu bytes)\n", cap);
        abort();
    }
    b->p = p;
    b->cap = cap;
}

void cw_jbuf_free(cw_jbuf_t *b) {
    if (!b)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void cw_json_append_raw(cw_jbuf_t *b, const char *s, size_t n) {
    jbuf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void append_c(cw_jbuf_t *b, const char *s) {
    cw_json_append_raw(b, s, strlen(s));
}

void cw_json_append_str(cw_jbuf_t *b, const void *str, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)str;
    /* worst case: every byte becomes \u00XX (6) or U+FFFD \ufffd (6) */
    jbuf_reserve(b, n * 6 + 2);
    char *w = b->p + b->len;
    *w++ = '"';
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *w++ = (char)c;
            i++;
        } else if (c < 0x80) {
            *w++ = '\\';
            switch (c) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '\b': *w++ = 'b'; break;
            case '\f': *w++ = 'f'; break;
            case '\n': *w++ = 'n'; break;
            case '\r': *w++ = 'r'; break;
            case '\t': *w++ = 't'; break;
            default:
                *w++ = 'u'; *w++ = '0'; *w++ = '0';
                *w++ = hex[c >> 4]; *w++ = hex[c & 15];
                break;
            }
            i++;
        } else {
            uint32_t cp;
            int len = cw_mp_utf8_seq(s + i, n - i, &cp);
            if (len > 0) {
                memcpy(w, s + i, (size_t)len);
                w += len;
                i += (size_t)len;
            } else {
                memcpy(w, "\\ufffd", 6);
                w += 6;
                i++;
            }
        }
    }
    *w++ = '"';
    b->len = (size_t)(w - b->p);
    b->p[b->len] = '\0';
}

void cw_json_append_base64(cw_jbuf_t *b, const void *data, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *s = (const uint8_t *)data;
    jbuf_reserve(b, (n + 2) / 3 * 4 + 2);
    char *w = b->p + b->len;
    *w++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *w++ = tab[x >> 18]; *w++ = tab[(x >> 12) & 63];
        *w++ = tab[(x >> 6) & 63]; *w++ = tab[x & 63];
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)s[i] << 16;
        *w++ = tab[x >> 18]; *w++ = tab[(x >> 12) & 63]; *w++ = '='; *w++ = '=';
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *w++ = tab[x >> 18]; *w++ = tab[(x >> 12) & 63]; *w++ = tab[(x >> 6) & 63]; *w++ = '=';
    }
    *w++ = '"';
    b->len = (size_t)(w - b->p);
    b->p[b->len] = '\0';
}

/* Shortest "%.Ng" that reads back to the same float (float32 when is32). */
static void append_float(cw_jbuf_t *b, double f, int is32) {
    char tmp[48];
    if (!isfinite(f)) {
        append_c(b, "null");
        return;
    }
    for (int prec = 1; prec <= (is32 ? 9 : 17); prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, f);
        if (is32 ? strtof(tmp, NULL) == (float)f : strtod(tmp, NULL) == f)
            break;
    }
    /* keep it a float for readers that type numbers: "1" -> "1.0" */
    if (!strpbrk(tmp, ".eE"))
        strcat(tmp, ".0");
    append_c(b, tmp);
}

/* ---- msgpack -> JSON -------------------------------------------------- */

static int render(cw_mp_t *r, cw_jbuf_t *b, int depth);

static int render_val(cw_mp_t *r, cw_jbuf_t *b, const cw_mp_val_t *v, int depth) {
    char tmp[32];
    switch (v->type) {
    case CW_MP_NIL: append_c(b, "null"); return 0;
    case CW_MP_BOOL: append_c(b, v->b ? "true" : "false"); return 0;
    case CW_MP_UINT:
        snprintf(tmp, sizeof(tmp), "%" PRIu64, v->u);
        append_c(b, tmp);
        return 0;
    case CW_MP_NINT:
        snprintf(tmp, sizeof(tmp), "%" PRId64, v->i);
        append_c(b, tmp);
        return 0;
    case CW_MP_F32: append_float(b, v->f, 1); return 0;
    case CW_MP_F64: append_float(b, v->f, 0); return 0;
    case CW_MP_STR: cw_json_append_str(b, v->ptr, v->n); return 0;
    case CW_MP_BIN: cw_json_append_base64(b, v->ptr, v->n); return 0;
    case CW_MP_EXT:
        snprintf(tmp, sizeof(tmp), "{\"ext\":%d,\"data\":", (int)v->ext_type);
        append_c(b, tmp);
        cw_json_append_base64(b, v->ptr, v->n);
        append_c(b, "}");
        return 0;
    case CW_MP_ARRAY:
    case CW_MP_MAP:
        break;
    }
    if (depth > CW_ARTICLE_MAX_DEPTH)
        return cw_mp_fail(r, CW_ARTICLE_ERR_TOO_DEEP, "nesting deeper than %d levels",
                          CW_ARTICLE_MAX_DEPTH);
    if (v->type == CW_MP_ARRAY) {
        append_c(b, "[");
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                append_c(b, ",");
            if (render(r, b, depth + 1))
                return -1;
        }
        append_c(b, "]");
        return 0;
    }
    append_c(b, "{");
    for (uint32_t i = 0; i < v->n; i++) {
        cw_mp_val_t k;
        if (i)
            append_c(b, ",");
        if (cw_mp_head(r, &k))
            return -1;
        if (k.type == CW_MP_STR) {
            cw_json_append_str(b, k.ptr, k.n);
        } else {
            cw_jbuf_t kb = {NULL, 0, 0};
            int rc = render_val(r, &kb, &k, depth + 1);
            if (rc == 0)
                cw_json_append_str(b, kb.p, kb.len);
            cw_jbuf_free(&kb);
            if (rc)
                return -1;
        }
        append_c(b, ":");
        if (render(r, b, depth + 1))
            return -1;
    }
    append_c(b, "}");
    return 0;
}

static int render(cw_mp_t *r, cw_jbuf_t *b, int depth) {
    cw_mp_val_t v;
    if (cw_mp_head(r, &v))
        return -1;
    return render_val(r, b, &v, depth);
}

int cw_json_from_msgpack(cw_jbuf_t *b, const void *buf, size_t len, char *errstr,
                         size_t errstr_size) {
    cw_mp_t r;
    size_t start = b->len;
    cw_mp_init(&r, buf, len);
    r.ctx = "msgpack";
    if (render(&r, b, 1))
        goto fail;
    if (cw_mp_left(&r) > 0) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_MALFORMED, "%zu trailing bytes after the value",
                   cw_mp_left(&r));
        goto fail;
    }
    return 0;
fail:
    if (errstr && errstr_size)
        snprintf(errstr, errstr_size, "%s: %s", cw_article_err2str(r.err), r.detail);
    b->len = start;
    if (b->p)
        b->p[start] = '\0';
    return -1;
}

/* ---- JSON line -> article --------------------------------------------- */

typedef struct js_s {
    char *start, *p, *end;
    cw_article_err_t err;
    char detail[200];
} js_t;

static int js_fail(js_t *j, cw_article_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int js_fail(js_t *j, cw_article_err_t err, const char *fmt, ...) {
    if (j->err != CW_ARTICLE_OK)
        return -1;
    j->err = err;
    int n = snprintf(j->detail, sizeof(j->detail), "column %zu: ",
                     (size_t)(j->p - j->start) + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->detail + n, sizeof(j->detail) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void js_ws(js_t *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int js_expect(js_t *j, char c) {
    js_ws(j);
    if (j->p >= j->end)
        return js_fail(j, CW_ARTICLE_ERR_TRUNCATED, "line ends where '%c' was expected", c);
    if (*j->p != c)
        return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "expected '%c'", c);
    j->p++;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* \uXXXX at j->p (after the backslash and 'u'). */
static int js_hex4(js_t *j, uint32_t *out) {
    if (j->end - j->p < 4)
        return js_fail(j, CW_ARTICLE_ERR_TRUNCATED, "line ends inside a \\u escape");
    uint32_t x = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(j->p[k]);
        if (h < 0)
            return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "bad \\u escape");
        x = x << 4 | (uint32_t)h;
    }
    j->p += 4;
    *out = x;
    return 0;
}

/* A string at j->p ('"'), unescaped in place: the output never outruns the
 * input (an escape is at least as long as the bytes it stands for). */
static int js_string(js_t *j, cw_str_t *out) {
    j->p++;
    char *w = j->p;
    out->p = w;
    for (;;) {
        if (j->p >= j->end)
            return js_fail(j, CW_ARTICLE_ERR_TRUNCATED, "unterminated string");
        uint8_t c = (uint8_t)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "raw control character 0x%02x in a string",
                           c);
        if (c >= 0x80) {
            uint32_t cp;
            int n = cw_mp_utf8_seq((const uint8_t *)j->p, (size_t)(j->end - j->p), &cp);
            if (n == 0)
                return js_fail(j, CW_ARTICLE_ERR_BAD_UTF8, "invalid UTF-8 in a string");
            memmove(w, j->p, (size_t)n);
            w += n;
            j->p += n;
            continue;
        }
        if (c != '\\') {
            *w++ = (char)c;
            j->p++;
            continue;
        }
        j->p++;
        if (j->p >= j->end)
            return js_fail(j, CW_ARTICLE_ERR_TRUNCATED, "line ends inside an escape");
        char e = *j->p++;
        uint32_t cp = 0;
        switch (e) {
        case '"': *w++ = '"'; continue;
        case '\\': *w++ = '\\'; continue;
        case '/': *w++ = '/'; continue;
        case 'b': *w++ = '\b'; continue;
        case 'f': *w++ = '\f'; continue;
        case 'n': *w++ = '\n'; continue;
        case 'r': *w++ = '\r'; continue;
        case 't': *w++ = '\t'; continue;
        case 'u': break;
        default:
            j->p--;
            return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "bad escape '\\%c'", e);
        }
        if (js_hex4(j, &cp))
            return -1;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return js_fail(j, CW_ARTICLE_ERR_BAD_UTF8, "lone low surrogate \\u%04x", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                return js_fail(j, CW_ARTICLE_ERR_BAD_UTF8, "lone high surrogate \\u%04x", cp);
            j->p += 2;
            if (js_hex4(j, &lo))
                return -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return js_fail(j, CW_ARTICLE_ERR_BAD_UTF8, "high surrogate without a low one");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp < 0x80) {
            *w++ = (char)cp;
        } else if (cp < 0x800) {
            *w++ = (char)(0xc0 | cp >> 6);
            *w++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *w++ = (char)(0xe0 | cp >> 12);
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *w++ = (char)(0x80 | (cp & 0x3f));
        } else {
            *w++ = (char)(0xf0 | cp >> 18);
            *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *w++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    out->len = (size_t)(w - out->p);
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A number at j->p. *is_int: no fraction or exponent and within int64. */
static int js_number(js_t *j, int *is_int, int64_t *iv) {
    int neg = 0, fits = 1;
    uint64_t mag = 0;
    *is_int = 0;
    if (j->p < j->end && *j->p == '-') {
        neg = 1;
        j->p++;
    }
    if (j->p >= j->end || !is_digit(*j->p))
        return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "bad number");
    if (*j->p == '0') {
        j->p++;
    } else {
        while (j->p < j->end && is_digit(*j->p)) {
            unsigned d = (unsigned)(*j->p - '0');
            if (mag > (UINT64_MAX - d) / 10)
                fits = 0;
            else
                mag = mag * 10 + d;
            j->p++;
        }
    }
    int integral = 1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        integral = 0;
        if (j->p >= j->end || !is_digit(*j->p))
            return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "bad number: no digit after '.'");
        while (j->p < j->end && is_digit(*j->p))
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        integral = 0;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || !is_digit(*j->p))
            return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "bad number: no digit in the exponent");
        while (j->p < j->end && is_digit(*j->p))
            j->p++;
    }
    if (integral && fits) {
        if (neg && mag <= (uint64_t)INT64_MAX + 1) {
            *iv = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
            *is_int = 1;
        } else if (!neg && mag <= (uint64_t)INT64_MAX) {
            *iv = (int64_t)mag;
            *is_int = 1;
        }
    }
    return 0;
}

static int js_literal(js_t *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "unexpected character");
    j->p += n;
    return 0;
}

/* Step over any value; depth is the depth a container here would have. */
static int js_skip(js_t *j, int depth) {
    cw_str_t s;
    int is_int;
    int64_t iv;
    js_ws(j);
    if (j->p >= j->end)
        return js_fail(j, CW_ARTICLE_ERR_TRUNCATED, "line ends where a value should start");
    switch (*j->p) {
    case '"': return js_string(j, &s);
    case 't': return js_literal(j, "true");
    case 'f': return js_literal(j, "false");
    case 'n': return js_literal(j, "null");
    case '[':
    case '{': {
        char close = *j->p == '[' ? ']' : '}';
        int is_obj = close == '}';
        if (depth > CW_ARTICLE_MAX_DEPTH)
            return js_fail(j, CW_ARTICLE_ERR_TOO_DEEP, "nesting deeper than %d levels",
                           CW_ARTICLE_MAX_DEPTH);
        j->p++;
        js_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (is_obj) {
                js_ws(j);
                if (j->p >= j->end || *j->p != '"')
                    return js_fail(j, j->p >= j->end ? CW_ARTICLE_ERR_TRUNCATED
                                                     : CW_ARTICLE_ERR_MALFORMED,
                                   "expected a string key");
                if (js_string(j, &s) || js_expect(j, ':'))
                    return -1;
            }
            if (js_skip(j, depth + 1))
                return -1;
            js_ws(j);
            if (j->p >= j->end)
                return js_fail(j, CW_ARTICLE_ERR_TRUNCATED, "line ends inside a container");
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == close) {
                j->p++;
                return 0;
            }
            return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "expected ',' or '%c'", close);
        }
    }
    default:
        if (*j->p == '-' || is_digit(*j->p))
            return js_number(j, &is_int, &iv);
        return js_fail(j, CW_ARTICLE_ERR_MALFORMED, "unexpected character");
    }
}

static const char *const json_keys[] = {
    "id", "title", "body", "source", "url", "lang", "published_at",
};
enum { J_ID, J_TITLE, J_BODY, J_SOURCE, J_URL, J_LANG, J_PUBLISHED_AT, J_COUNT };

cw_article_err_t cw_json_article_parse(char *line, size_t len, cw_article_t *a, char *detail,
                                       size_t detail_size) {
    js_t j = {line, line, line + len, CW_ARTICLE_OK, {0}};
    cw_str_t *strs[] = {&a->id, &a->title, &a->body, &a->source, &a->url, &a->lang};
    unsigned seen = 0;
    cw_str_t key;

    memset(a, 0, sizeof(*a));
    if (len > CW_JSON_MAX_LINE) {
        js_fail(&j, CW_ARTICLE_ERR_TOO_LARGE, "line of %zu bytes is over the limit of %u", len,
                (unsigned)CW_JSON_MAX_LINE);
        goto fail;
    }
    js_ws(&j);
    if (j.p < j.end && *j.p != '{') {
        js_fail(&j, CW_ARTICLE_ERR_NOT_MAP, "expected a JSON object");
        goto fail;
    }
    if (js_expect(&j, '{'))
        goto fail;
    js_ws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        for (;;) {
            js_ws(&j);
            if (j.p >= j.end || *j.p != '"') {
                js_fail(&j, j.p >= j.end ? CW_ARTICLE_ERR_TRUNCATED : CW_ARTICLE_ERR_MALFORMED,
                        "expected a string key");
                goto fail;
            }
            char *key_at = j.p;
            if (js_string(&j, &key) || js_expect(&j, ':'))
                goto fail;
            int f = -1;
            for (int k = 0; k < J_COUNT; k++)
                if (strlen(json_keys[k]) == key.len && memcmp(json_keys[k], key.p, key.len) == 0)
                    f = k;
            js_ws(&j);
            if (f >= 0 && (seen & (1u << f))) {
                j.p = key_at;
                js_fail(&j, CW_ARTICLE_ERR_DUPLICATE_KEY, "key '%s' appears more than once",
                        json_keys[f]);
                goto fail;
            }
            if (f < 0) {
                if (js_skip(&j, 2))
                    goto fail;
            } else {
                seen |= 1u << f;
                int is_null = (j.end - j.p >= 4 && memcmp(j.p, "null", 4) == 0);
                if (is_null && f != J_ID) {
                    j.p += 4;
                } else if (f == J_PUBLISHED_AT) {
                    int is_int = 0;
                    if (j.p >= j.end || !(*j.p == '-' || is_digit(*j.p))) {
                        js_fail(&j, CW_ARTICLE_ERR_WRONG_TYPE,
                                "key 'published_at': expected an integer");
                        goto fail;
                    }
                    if (js_number(&j, &is_int, &a->published_at))
                        goto fail;
                    if (!is_int) {
                        js_fail(&j, CW_ARTICLE_ERR_WRONG_TYPE,
                                "key 'published_at': expected an integer in the int64 range");
                        goto fail;
                    }
                    a->has_published_at = 1;
                } else {
                    if (j.p >= j.end || *j.p != '"') {
                        js_fail(&j, CW_ARTICLE_ERR_WRONG_TYPE, "key '%s': expected a string",
                                json_keys[f]);
                        goto fail;
                    }
                    if (js_string(&j, strs[f]))
                        goto fail;
                }
            }
            js_ws(&j);
            if (j.p >= j.end) {
                js_fail(&j, CW_ARTICLE_ERR_TRUNCATED, "line ends inside the object");
                goto fail;
            }
            if (*j.p == ',') {
                j.p++;
                continue;
            }
            if (*j.p == '}') {
                j.p++;
                break;
            }
            js_fail(&j, CW_ARTICLE_ERR_MALFORMED, "expected ',' or '}'");
            goto fail;
        }
    }
    js_ws(&j);
    if (j.p < j.end) {
        js_fail(&j, CW_ARTICLE_ERR_MALFORMED, "trailing characters after the object");
        goto fail;
    }
    cw_article_err_t err = cw_article_validate(a, detail, detail_size);
    if (err != CW_ARTICLE_OK)
        memset(a, 0, sizeof(*a));
    return err;

fail:
    if (detail && detail_size)
        snprintf(detail, detail_size, "%s", j.detail);
    memset(a, 0, sizeof(*a));
    return j.err != CW_ARTICLE_OK ? j.err : CW_ARTICLE_ERR_MALFORMED;
}
