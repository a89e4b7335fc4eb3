/* test_schemas.c: the wire codec (schemas/article.h) and its JSON tools
 * (schemas/json.h): round trips, every refusal class, limits, truncation at
 * every byte, and a deterministic mutation fuzz loop. */
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article.h"
#include "json.h"
#include "util.h"

static int failures;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            if (failures++ < 50)                                                       \
                fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                              \
    } while (0)

#define CHECK_ERR(got, want)                                                           \
    do {                                                                               \
        cw_article_err_t g_ = (got), w_ = (want);                                      \
        if (g_ != w_) {                                                                \
            fprintf(stderr, "%s:%d: got %s, want %s (detail: %s)\n", __FILE__, __LINE__, \
                    cw_article_err2str(g_), cw_article_err2str(w_), detail);           \
            failures++;                                                                \
        }                                                                              \
    } while (0)

static char detail[256];

static int str_eq(cw_str_t s, const char *c) {
    return s.p && s.len == strlen(c) && memcmp(s.p, c, s.len) == 0;
}

static cw_str_t S(const char *c) {
    cw_str_t s = {c, c ? strlen(c) : 0};
    return s;
}

/* ---- building raw messages ---------------------------------------------- */

typedef struct {
    unsigned char b[1 << 16];
    size_t n;
} raw_t;

static void raw_bytes(raw_t *r, const void *p, size_t n) {
    if (r->n + n > sizeof(r->b)) {
        fprintf(stderr, "raw_t overflow\n");
        exit(1);
    }
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

static void raw_u8(raw_t *r, unsigned v) {
    unsigned char c = (unsigned char)v;
    raw_bytes(r, &c, 1);
}

static void raw_be(raw_t *r, uint64_t v, int nbytes) {
    for (int k = nbytes - 1; k >= 0; k--)
        raw_u8(r, (unsigned)(v >> (8 * k)) & 0xff);
}

/* fixstr/str8 as needed */
static void raw_str(raw_t *r, const char *s) {
    size_t n = strlen(s);
    if (n < 32) {
        raw_u8(r, 0xa0 | (unsigned)n);
    } else if (n < 256) {
        raw_u8(r, 0xd9);
        raw_u8(r, (unsigned)n);
    } else {
        raw_u8(r, 0xda);
        raw_be(r, n, 2);
    }
    raw_bytes(r, s, n);
}

static cw_article_err_t dec(const raw_t *r, cw_article_t *a) {
    return cw_article_decode(r->b, r->n, a, detail, sizeof(detail));
}

/* ---- article round trips ------------------------------------------------ */

static void test_article_roundtrip(void) {
    static const int64_t stamps[] = {0, 1, 127, 128, 255, 256, 65535, 65536, -1, -32, -33,
                                     -128, -129, -32768, -32769, 4294967295LL, 4294967296LL,
                                     1718000000000LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        cw_article_t a = {0}, b;
        void *buf;
        size_t len;
        a.id = S("ag-7");
        a.title = S("Wall St. Bears Claw Back Into the Black");
        a.body = S("Reuters - Short-sellers, Wall Street's dwindling\\band of ultra-cynics");
        a.source = S("reuters");
        a.url = S("https://example.com/a?b=1");
        a.lang = S("en");
        a.published_at = stamps[i];
        a.has_published_at = 1;
        CHECK(cw_article_encode(&a, &buf, &len) == 0);
        CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_OK);
        CHECK(str_eq(b.id, "ag-7"));
        CHECK(b.title.len == a.title.len && memcmp(b.title.p, a.title.p, a.title.len) == 0);
        CHECK(b.body.len == a.body.len && memcmp(b.body.p, a.body.p, a.body.len) == 0);
        CHECK(str_eq(b.source, "reuters") && str_eq(b.url, a.url.p) && str_eq(b.lang, "en"));
        CHECK(b.has_published_at && b.published_at == stamps[i]);
        /* decoded strings point into the buffer */
        CHECK(b.id.p >= (const char *)buf && b.id.p + b.id.len <= (const char *)buf + len);
        free(buf);
    }

    /* optional fields absent; empty-but-present title keeps a non-NULL pointer */
    cw_article_t a = {0}, b;
    void *buf;
    size_t len;
    a.id = S("x");
    a.title = S("");
    a.body = S("only a body");
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_OK);
    CHECK(b.title.p != NULL && b.title.len == 0);
    CHECK(str_eq(b.body, "only a body"));
    CHECK(b.source.p == NULL && b.url.p == NULL && b.lang.p == NULL && !b.has_published_at);
    free(buf);

    /* a title alone is enough */
    memset(&a, 0, sizeof(a));
    a.id = S("y");
    a.title = S("t");
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_OK);
    CHECK(str_eq(b.title, "t") && b.body.p == NULL);
    free(buf);

    /* non-ASCII UTF-8 passes */
    memset(&a, 0, sizeof(a));
    a.id = S("\xc3\xa9t\xc3\xa9-\xf0\x9f\x98\x80");
    a.body = S("Z\xc3\xbcrich \xe2\x82\xac");
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_OK);
    CHECK(str_eq(b.id, a.id.p) && str_eq(b.body, a.body.p));
    free(buf);
}

/* every integer encoding msgpack has, for published_at */
static void test_published_at_encodings(void) {
    static const struct {
        unsigned char b[9];
        size_t n;
        int64_t want;
        int ok;
    } cases[] = {
        {{0x05}, 1, 5, 1},
        {{0xff}, 1, -1, 1},
        {{0xe0}, 1, -32, 1},
        {{0xcc, 0xff}, 2, 255, 1},
        {{0xcd, 0x12, 0x34}, 3, 0x1234, 1},
        {{0xce, 0xff, 0xff, 0xff, 0xff}, 5, 4294967295LL, 1},
        {{0xcf, 0x00, 0x00, 0x01, 0x90, 0x00, 0x00, 0x00, 0x00}, 9, 0x19000000000LL, 1},
        {{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, INT64_MAX, 1},
        {{0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 9, 0, 0},   /* > INT64_MAX */
        {{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, 0, 0},
        {{0xd0, 0x80}, 2, -128, 1},
        {{0xd0, 0x7f}, 2, 127, 1},
        {{0xd1, 0xff, 0x7f}, 3, -129, 1},
        {{0xd2, 0x80, 0x00, 0x00, 0x00}, 5, INT32_MIN, 1},
        {{0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 9, INT64_MIN, 1},
        {{0xd3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a}, 9, 42, 1},
        {{0xca, 0x3f, 0x80, 0x00, 0x00}, 5, 0, 0},   /* float32 1.0 is not an int */
        {{0xc3}, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_t r = {.n = 0};
        cw_article_t a;
        raw_u8(&r, 0x83);
        raw_str(&r, "id");
        raw_str(&r, "p1");
        raw_str(&r, "title");
        raw_str(&r, "t");
        raw_str(&r, "published_at");
        raw_bytes(&r, cases[i].b, cases[i].n);
        cw_article_err_t e = dec(&r, &a);
        if (cases[i].ok) {
            CHECK_ERR(e, CW_ARTICLE_OK);
            CHECK(a.has_published_at && a.published_at == cases[i].want);
        } else {
            CHECK_ERR(e, CW_ARTICLE_ERR_WRONG_TYPE);
            CHECK(strstr(detail, "published_at") != NULL);
        }
    }
}

/* ---- refusals ----------------------------------------------------------- */

/* {"id": <v>, "title": "t"} with v written by the caller, etc. */
static void map_with(raw_t *r, const char *key, const unsigned char *val, size_t vn) {
    r->n = 0;
    raw_u8(r, 0x83);
    if (strcmp(key, "id") != 0) {
        raw_str(r, "id");
        raw_str(r, "a1");
    } else {
        raw_str(r, "src");
        raw_str(r, "x");
    }
    if (strcmp(key, "title") != 0) {
        raw_str(r, "title");
        raw_str(r, "some title");
    } else {
        raw_str(r, "body");
        raw_str(r, "some body");
    }
    raw_str(r, key);
    raw_bytes(r, val, vn);
}

static void test_wrong_types(void) {
    static const char *fields[] = {"id", "title", "body", "source", "url", "lang",
                                   "published_at"};
    static const struct {
        unsigned char b[5];
        size_t n;
        const char *what;
    } vals[] = {
        {{0x01}, 1, "int"},
        {{0xc3}, 1, "bool"},
        {{0xcb, 0, 0, 0, 0}, 0, "float64"},   /* filled below */
        {{0x90}, 1, "array"},
        {{0x80}, 1, "map"},
        {{0xc4, 0x01, 'x'}, 3, "bin"},
        {{0xa1, 'x'}, 2, "str"},
        {{0xc0}, 1, "nil"},
    };
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
            raw_t r;
            cw_article_t a;
            unsigned char f64[9] = {0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
            const unsigned char *val = vals[v].b;
            size_t vn = vals[v].n;
            if (strcmp(vals[v].what, "float64") == 0) {
                val = f64;
                vn = 9;
            }
            map_with(&r, fields[f], val, vn);
            cw_article_err_t e = dec(&r, &a);
            int is_pub = strcmp(fields[f], "published_at") == 0;
            int is_id = strcmp(fields[f], "id") == 0;
            const char *w = vals[v].what;
            if (strcmp(w, "nil") == 0) {
                /* nil means absent for optional fields; the id is required */
                CHECK_ERR(e, is_id ? CW_ARTICLE_ERR_WRONG_TYPE : CW_ARTICLE_OK);
            } else if ((strcmp(w, "str") == 0 && !is_pub) || (strcmp(w, "int") == 0 && is_pub)) {
                CHECK_ERR(e, CW_ARTICLE_OK);
            } else {
                CHECK_ERR(e, CW_ARTICLE_ERR_WRONG_TYPE);
                char want[64];
                snprintf(want, sizeof(want), "'%s'", fields[f]);
                CHECK(strstr(detail, want) != NULL);
                CHECK(strstr(detail, w) != NULL || strcmp(w, "bool") == 0 ||
                      strstr(detail, "got") != NULL);
            }
        }
    }
}

static void test_refusals(void) {
    raw_t r;
    cw_article_t a;

    /* not msgpack at all */
    {
        const char *txt = "hello, this is plain text";
        CHECK_ERR(cw_article_decode(txt, strlen(txt), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_MALFORMED);
        const char *json = "{\"id\":\"1\",\"title\":\"x\"}";
        CHECK_ERR(cw_article_decode(json, strlen(json), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_MALFORMED);
        unsigned char c1[] = {0xc1, 0x00};
        CHECK_ERR(cw_article_decode(c1, sizeof(c1), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_MALFORMED);
        CHECK_ERR(cw_article_decode("", 0, &a, detail, sizeof(detail)), CW_ARTICLE_ERR_TRUNCATED);
    }
    /* well-formed msgpack, wrong shape */
    {
        unsigned char arr[] = {0x92, 0x01, 0x02};
        CHECK_ERR(cw_article_decode(arr, sizeof(arr), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_NOT_MAP);
        unsigned char s[] = {0xa2, 'h', 'i'};
        CHECK_ERR(cw_article_decode(s, sizeof(s), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_NOT_MAP);
        unsigned char nil[] = {0xc0};
        CHECK_ERR(cw_article_decode(nil, 1, &a, detail, sizeof(detail)), CW_ARTICLE_ERR_NOT_MAP);
    }
    /* missing id */
    r.n = 0;
    raw_u8(&r, 0x82);
    raw_str(&r, "title");
    raw_str(&r, "t");
    raw_str(&r, "body");
    raw_str(&r, "b");
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_MISSING_ID);
    CHECK(strstr(detail, "'id'") != NULL);

    /* empty id, 256-byte id, 257-byte id */
    {
        char id[CW_ARTICLE_MAX_ID + 2];
        static const size_t lens[] = {0, 1, CW_ARTICLE_MAX_ID, CW_ARTICLE_MAX_ID + 1};
        for (size_t k = 0; k < 4; k++) {
            memset(id, 'i', lens[k]);
            id[lens[k]] = '\0';
            r.n = 0;
            raw_u8(&r, 0x82);
            raw_str(&r, "id");
            raw_str(&r, id);
            raw_str(&r, "title");
            raw_str(&r, "t");
            CHECK_ERR(dec(&r, &a), (lens[k] == 0 || lens[k] > CW_ARTICLE_MAX_ID)
                                       ? CW_ARTICLE_ERR_BAD_ID
                                       : CW_ARTICLE_OK);
            if (lens[k] == CW_ARTICLE_MAX_ID)
                CHECK(a.id.len == CW_ARTICLE_MAX_ID);
        }
    }

    /* no text: both empty, both absent, nil and empty */
    r.n = 0;
    raw_u8(&r, 0x83);
    raw_str(&r, "id");
    raw_str(&r, "n1");
    raw_str(&r, "title");
    raw_str(&r, "");
    raw_str(&r, "body");
    raw_str(&r, "");
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_NO_TEXT);
    r.n = 0;
    raw_u8(&r, 0x82);
    raw_str(&r, "id");
    raw_str(&r, "n2");
    raw_str(&r, "lang");
    raw_str(&r, "en");
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_NO_TEXT);
    r.n = 0;
    raw_u8(&r, 0x83);
    raw_str(&r, "id");
    raw_str(&r, "n3");
    raw_str(&r, "title");
    raw_u8(&r, 0xc0);
    raw_str(&r, "body");
    raw_str(&r, "");
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_NO_TEXT);

    /* duplicate known key; a repeated unknown key is fine */
    r.n = 0;
    raw_u8(&r, 0x83);
    raw_str(&r, "id");
    raw_str(&r, "d1");
    raw_str(&r, "title");
    raw_str(&r, "t");
    raw_str(&r, "id");
    raw_str(&r, "d2");
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_DUPLICATE_KEY);
    CHECK(strstr(detail, "'id'") != NULL);
    r.n = 0;
    raw_u8(&r, 0x84);
    raw_str(&r, "id");
    raw_str(&r, "d1");
    raw_str(&r, "title");
    raw_str(&r, "t");
    raw_str(&r, "x");
    raw_u8(&r, 1);
    raw_str(&r, "x");
    raw_u8(&r, 2);
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_OK);

    /* non-str key */
    r.n = 0;
    raw_u8(&r, 0x83);
    raw_str(&r, "id");
    raw_str(&r, "k1");
    raw_str(&r, "title");
    raw_str(&r, "t");
    raw_u8(&r, 0x07);
    raw_str(&r, "v");
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_MALFORMED);
    CHECK(strstr(detail, "key #3") != NULL);

    /* trailing bytes after a valid map */
    r.n = 0;
    raw_u8(&r, 0x82);
    raw_str(&r, "id");
    raw_str(&r, "t1");
    raw_str(&r, "title");
    raw_str(&r, "t");
    raw_u8(&r, 0xc0);
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_MALFORMED);
    CHECK(strstr(detail, "trailing") != NULL);

    /* an array header claiming 2^30 elements in a 10-byte message */
    {
        unsigned char m[10] = {0xdd, 0x40, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5};
        CHECK_ERR(cw_article_decode(m, sizeof(m), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_TOO_MANY);
        /* the same inside an unknown key's value */
        r.n = 0;
        raw_u8(&r, 0x83);
        raw_str(&r, "id");
        raw_str(&r, "m1");
        raw_str(&r, "title");
        raw_str(&r, "t");
        raw_str(&r, "extra");
        raw_bytes(&r, m, sizeof(m));
        CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_TOO_MANY);
        CHECK(strstr(detail, "'extra'") != NULL);
        /* a map32 claiming 2^31 entries */
        unsigned char mm[7] = {0xdf, 0x80, 0x00, 0x00, 0x00, 0xa0, 0xa0};
        CHECK_ERR(cw_article_decode(mm, sizeof(mm), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_TOO_MANY);
        /* a count under the limit that the remaining bytes cannot hold:
         * refused before anything is read or allocated */
        unsigned char few[10] = {0xdc, 0xea, 0x60, 1, 2, 3, 4, 5, 6, 7};   /* 60000 items */
        CHECK_ERR(cw_article_decode(few, sizeof(few), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_TOO_MANY);
        CHECK(strstr(detail, "only 7 bytes remain") != NULL);
        /* a map of n entries needs 2n bytes: 4 entries in 7 bytes is refused */
        unsigned char m4[8] = {0x84, 0xa1, 'i', 0xa1, 'x', 0xa1, 't', 0xa1};
        CHECK_ERR(cw_article_decode(m4, sizeof(m4), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_TOO_MANY);
        /* a count within the bytes but over CW_ARTICLE_MAX_ITEMS */
        static unsigned char big[5 + CW_ARTICLE_MAX_ITEMS + 1];
        big[0] = 0xdd;
        big[1] = 0; big[2] = 0x01; big[3] = 0x00; big[4] = 0x01;   /* 65537 items */
        memset(big + 5, 0xc0, CW_ARTICLE_MAX_ITEMS + 1);
        CHECK_ERR(cw_article_decode(big, sizeof(big), &a, detail, sizeof(detail)),
                  CW_ARTICLE_ERR_TOO_MANY);
    }

    /* a str header claiming 4 GiB */
    r.n = 0;
    raw_u8(&r, 0x82);
    raw_str(&r, "title");
    raw_str(&r, "t");
    raw_str(&r, "id");
    raw_u8(&r, 0xdb);
    raw_be(&r, 0xffffffffu, 4);
    raw_bytes(&r, "abc", 3);
    CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_TRUNCATED);
    CHECK(strstr(detail, "'id'") != NULL);
    /* bin32 and ext32 claiming 4 GiB inside an unknown key */
    {
        static const unsigned char hdrs[][6] = {{0xc6, 0xff, 0xff, 0xff, 0xff, 0},
                                                {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}};
        for (int k = 0; k < 2; k++) {
            r.n = 0;
            raw_u8(&r, 0x83);
            raw_str(&r, "id");
            raw_str(&r, "b");
            raw_str(&r, "title");
            raw_str(&r, "t");
            raw_str(&r, "blob");
            raw_bytes(&r, hdrs[k], k == 0 ? 5 : 6);
            raw_bytes(&r, "xy", 2);
            CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_TRUNCATED);
        }
    }

    /* invalid UTF-8 in known str fields: stray continuation, overlong,
     * surrogate, beyond U+10FFFF, cut short */
    {
        static const char *bad[] = {"a\x80z",         "\xc0\xaf",         "\xe0\x80\xaf",
                                    "\xf0\x80\x80\xaf", "\xed\xa0\x80",     "\xf4\x90\x80\x80",
                                    "ok\xe2\x82",      "\xf8\x88\x80\x80\x80"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            r.n = 0;
            raw_u8(&r, 0x82);
            raw_str(&r, "id");
            raw_str(&r, "u");
            raw_str(&r, "body");
            raw_str(&r, bad[k]);
            CHECK_ERR(dec(&r, &a), CW_ARTICLE_ERR_BAD_UTF8);
            CHECK(strstr(detail, "'body'") != NULL);
        }
        /* an unknown key's str is not checked */
        r.n = 0;
        raw_u8(&r, 0x83);
        raw_str(&r, "id");
        raw_str(&r, "u");
        raw_str(&r, "body");
        raw_str(&r, "fine");
        raw_str(&r, "other");
        raw_str(&r, bad[0]);
        CHECK_ERR(dec(&r, &a), CW_ARTICLE_OK);
    }
}

/* unknown keys of every type are skipped */
static void test_unknown_keys(void) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cw_article_t a;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "extra", 5);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_nil(&pk);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 3);          /* non-str key inside an unknown value: allowed */
    msgpack_pack_false(&pk);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "id", 2);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "u-1", 3);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "bin", 3);
    msgpack_pack_bin(&pk, 4);
    msgpack_pack_bin_body(&pk, "\x00\x01\x02\x03", 4);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "ext", 3);
    msgpack_pack_ext(&pk, 8, 5);
    msgpack_pack_ext_body(&pk, "\x00\x01\x02\x03\x04\x05\x06\x07", 8);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "title", 5);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "Title", 5);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "f32", 3);
    msgpack_pack_float(&pk, 2.5f);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "neg", 3);
    msgpack_pack_int64(&pk, -5000000000LL);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "uint", 4);
    msgpack_pack_uint64(&pk, UINT64_MAX);   /* fine where nobody reads it */
    msgpack_pack_str(&pk, 0);                 /* the empty key */
    msgpack_pack_true(&pk);
    CHECK_ERR(cw_article_decode(sb.data, sb.size, &a, detail, sizeof(detail)), CW_ARTICLE_OK);
    CHECK(str_eq(a.id, "u-1") && str_eq(a.title, "Title"));
    msgpack_sbuffer_destroy(&sb);
}

/* nesting: total depth (top-level map = 1) of CW_ARTICLE_MAX_DEPTH passes,
 * one more is refused, for arrays and maps, under an unknown key */
static void test_depth(void) {
    for (int use_map = 0; use_map < 2; use_map++) {
        for (int total = CW_ARTICLE_MAX_DEPTH - 1; total <= CW_ARTICLE_MAX_DEPTH + 2; total++) {
            raw_t r = {.n = 0};
            cw_article_t a;
            raw_u8(&r, 0x83);
            raw_str(&r, "id");
            raw_str(&r, "deep");
            raw_str(&r, "title");
            raw_str(&r, "t");
            raw_str(&r, "nest");
            for (int d = 2; d <= total; d++) {
                if (use_map) {
                    raw_u8(&r, 0x81);
                    raw_str(&r, "k");
                } else {
                    raw_u8(&r, 0x91);
                }
            }
            raw_u8(&r, 0xc0);
            CHECK_ERR(dec(&r, &a),
                      total <= CW_ARTICLE_MAX_DEPTH ? CW_ARTICLE_OK : CW_ARTICLE_ERR_TOO_DEEP);
        }
    }
    /* 33 nested arrays as the whole message: never crashes, refused */
    unsigned char m[40];
    memset(m, 0x91, 33);
    m[33] = 0xc0;
    cw_article_t a;
    CHECK_ERR(cw_article_decode(m, 34, &a, detail, sizeof(detail)), CW_ARTICLE_ERR_TOO_DEEP);
}

static void test_size_limit(void) {
    size_t body_len = CW_ARTICLE_MAX_BYTES;   /* the whole message ends up just over */
    char *body = cw_malloc(body_len + 1);
    cw_article_t a = {0}, b;
    void *buf;
    size_t len;
    memset(body, 'w', body_len);
    body[body_len] = '\0';
    a.id = S("big");
    a.body.p = body;
    a.body.len = body_len;
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    CHECK(len > CW_ARTICLE_MAX_BYTES);
    CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_ERR_TOO_LARGE);
    free(buf);
    /* exactly at the limit passes (str32 header either way, so the size is linear) */
    a.body.len = body_len - 64;
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    CHECK(len < CW_ARTICLE_MAX_BYTES);
    a.body.len += CW_ARTICLE_MAX_BYTES - len;
    free(buf);
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    CHECK(len == CW_ARTICLE_MAX_BYTES);
    CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_OK);
    CHECK(b.body.len == a.body.len);
    free(buf);
    cw_free(body);
}

/* every proper prefix of a valid message is refused as truncated (or as a
 * count that the remaining bytes cannot hold), never accepted */
static void test_truncation(void) {
    cw_article_t a = {0}, b;
    void *buf;
    size_t len;
    a.id = S("trunc-1");
    a.title = S("A title");
    a.body = S("A body with \xc3\xa9 and more words in it");
    a.source = S("src");
    a.url = S("http://u");
    a.lang = S("fr");
    a.published_at = -1234567890123LL;
    a.has_published_at = 1;
    CHECK(cw_article_encode(&a, &buf, &len) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        /* a copy of exactly cut bytes, so a read past it is caught by ASan/valgrind */
        unsigned char *p = cw_malloc(cut ? cut : 1);
        memcpy(p, buf, cut);
        cw_article_err_t e = cw_article_decode(p, cut, &b, detail, sizeof(detail));
        if (e != CW_ARTICLE_ERR_TRUNCATED && e != CW_ARTICLE_ERR_TOO_MANY) {
            fprintf(stderr, "cut at %zu of %zu: %s (%s)\n", cut, len, cw_article_err2str(e),
                    detail);
            failures++;
        }
        cw_free(p);
    }
    CHECK_ERR(cw_article_decode(buf, len, &b, detail, sizeof(detail)), CW_ARTICLE_OK);
    free(buf);
}

static void test_err2str(void) {
    for (int i = 0; i < CW_ARTICLE_ERR_COUNT; i++) {
        const char *s = cw_article_err2str((cw_article_err_t)i);
        CHECK(strcmp(s, "unknown") != 0);
        for (int k = 0; k < i; k++)
            CHECK(strcmp(s, cw_article_err2str((cw_article_err_t)k)) != 0);
    }
    CHECK(strcmp(cw_article_err2str(CW_ARTICLE_ERR_TOO_DEEP), "too_deep") == 0);
}

/* ---- result ------------------------------------------------------------- */

static void test_result(void) {
    float scores[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    cw_result_t r = {0}, d;
    char *out = NULL;
    size_t len = 0, cap = 0;
    char label[32], model[32], worker[32], err[256];
    float got[8];

    r.id = S("ag-1");
    r.label = "Sci/Tech";
    r.label_id = 3;
    r.confidence = 0.4f;
    r.scores = scores;
    r.nscores = 4;
    r.model = "agnews";
    r.model_version = 7;
    r.worker = "w-\xc3\xbc";
    r.processed_at = 1718000000123LL;
    CHECK(cw_result_encode(&r, &out, &len, &cap) == 0);
    CHECK(len > 0 && cap >= len);
    /* floats are float32 on the wire (0xca), none float64 (0xcb) */
    int n_f32 = 0;
    for (size_t i = 0; i < len; i++)
        n_f32 += (unsigned char)out[i] == 0xca;
    CHECK(n_f32 >= 5);
    CHECK(cw_result_decode(out, len, &d, got, 8, label, sizeof(label), model, sizeof(model),
                           worker, sizeof(worker), err, sizeof(err)) == 0);
    CHECK(str_eq(d.id, "ag-1") && strcmp(d.label, "Sci/Tech") == 0 && d.label_id == 3);
    CHECK(d.confidence == 0.4f && d.nscores == 4 && d.scores == got);
    for (int i = 0; i < 4; i++)
        CHECK(got[i] == scores[i]);
    CHECK(strcmp(d.model, "agnews") == 0 && d.model_version == 7);
    CHECK(strcmp(d.worker, r.worker) == 0 && d.processed_at == r.processed_at);

    /* steady state: re-encoding into the same buffer does not reallocate */
    char *before = out;
    size_t cap_before = cap, len_before = len;
    for (int k = 0; k < 100; k++) {
        r.label_id = k % 4;
        CHECK(cw_result_encode(&r, &out, &len, &cap) == 0);
    }
    CHECK(out == before && cap == cap_before && len == len_before);

    /* NULL strings go out as "" */
    cw_result_t e = r;
    e.label = NULL;
    e.model = NULL;
    e.worker = NULL;
    CHECK(cw_result_encode(&e, &out, &len, &cap) == 0);
    CHECK(cw_result_decode(out, len, &d, got, 8, label, sizeof(label), model, sizeof(model),
                           worker, sizeof(worker), err, sizeof(err)) == 0);
    CHECK(strcmp(d.label, "") == 0 && strcmp(d.worker, "") == 0);
    /* bad arguments are refused */
    e.scores = NULL;
    CHECK(cw_result_encode(&e, &out, &len, &cap) == -1 && len == 0);
    e = r;
    e.id.p = NULL;
    CHECK(cw_result_encode(&e, &out, &len, &cap) == -1);

    CHECK(cw_result_encode(&r, &out, &len, &cap) == 0);
    /* decoder refusals: room for too few scores, a label buffer too small */
    CHECK(cw_result_decode(out, len, &d, got, 3, label, sizeof(label), model, sizeof(model),
                           worker, sizeof(worker), err, sizeof(err)) == -1);
    CHECK(strstr(err, "scores") != NULL);
    CHECK(cw_result_decode(out, len, &d, got, 8, label, 4, model, sizeof(model), worker,
                           sizeof(worker), err, sizeof(err)) == -1);
    CHECK(strstr(err, "'label'") != NULL);
    /* NULL buffers skip copies */
    CHECK(cw_result_decode(out, len, &d, got, 8, NULL, 0, NULL, 0, NULL, 0, err,
                           sizeof(err)) == 0);
    CHECK(d.label == NULL && d.model == NULL && d.worker == NULL && d.label_id == 3);
    /* every truncation refused */
    for (size_t cut = 0; cut < len; cut++)
        CHECK(cw_result_decode(out, cut, &d, got, 8, label, sizeof(label), model, sizeof(model),
                               worker, sizeof(worker), err, sizeof(err)) == -1);
    /* a result missing a field */
    {
        raw_t m = {.n = 0};
        raw_u8(&m, 0x81);
        raw_str(&m, "id");
        raw_str(&m, "x");
        CHECK(cw_result_decode(m.b, m.n, &d, got, 8, label, sizeof(label), model, sizeof(model),
                               worker, sizeof(worker), err, sizeof(err)) == -1);
        CHECK(strstr(err, "'label'") != NULL);
    }
    free(out);
}

/* ---- JSON --------------------------------------------------------------- */

static void test_json_render(void) {
    cw_jbuf_t jb = {NULL, 0, 0};
    char err[256];
    float scores[4] = {0.25f, 0.5f, 1.0f, 0.0f};
    cw_result_t r = {0};
    char *out = NULL;
    size_t len = 0, cap = 0;

    r.id = S("q\"\\\x01\n\t/\xc3\xa9");
    r.label = "Sci/Tech";
    r.label_id = 3;
    r.confidence = 1.0f;
    r.scores = scores;
    r.nscores = 4;
    r.model = "m";
    r.model_version = -2;
    r.worker = "w\xe2\x82\xac";
    r.processed_at = 1718000000123LL;
    CHECK(cw_result_encode(&r, &out, &len, &cap) == 0);
    CHECK(cw_json_from_msgpack(&jb, out, len, err, sizeof(err)) == 0);
    const char *want =
        "{\"id\":\"q\\\"\\\\\\u0001\\n\\t/\xc3\xa9\",\"label\":\"Sci/Tech\",\"label_id\":3,"
        "\"confidence\":1.0,\"scores\":[0.25,0.5,1.0,0.0],\"model\":\"m\","
        "\"model_version\":-2,\"worker\":\"w\xe2\x82\xac\",\"processed_at\":1718000000123}";
    if (strcmp(jb.p, want) != 0) {
        fprintf(stderr, "json:\n got  %s\n want %s\n", jb.p, want);
        failures++;
    }
    CHECK(strlen(jb.p) == jb.len);

    /* floats: the text reads back to the very same float32 */
    cw_rng_t rng;
    cw_rng_seed(&rng, 42);
    for (int it = 0; it < 2000; it++) {
        float s[3];
        for (int k = 0; k < 3; k++) {
            uint32_t bits = (uint32_t)cw_rng_next(&rng);
            memcpy(&s[k], &bits, 4);
            if (!isfinite(s[k]))
                s[k] = (float)cw_rng_unit(&rng);
        }
        r.scores = s;
        r.nscores = 3;
        r.confidence = s[0];
        CHECK(cw_result_encode(&r, &out, &len, &cap) == 0);
        jb.len = 0;
        CHECK(cw_json_from_msgpack(&jb, out, len, err, sizeof(err)) == 0);
        const char *p = strstr(jb.p, "\"scores\":[");
        CHECK(p != NULL);
        if (!p)
            break;
        p += strlen("\"scores\":[");
        for (int k = 0; k < 3; k++) {
            char *end;
            float f = strtof(p, &end);
            CHECK(end != p && f == s[k]);
            p = end + 1;
        }
    }
    free(out);

    /* non-finite -> null, invalid UTF-8 -> U+FFFD, bin/ext, non-str keys */
    {
        raw_t m = {.n = 0};
        raw_u8(&m, 0x86);
        raw_str(&m, "nan");
        raw_u8(&m, 0xcb);
        raw_be(&m, 0x7ff8000000000000ULL, 8);
        raw_str(&m, "bad");
        raw_str(&m, "a\xff" "b");
        raw_str(&m, "bin");
        raw_u8(&m, 0xc4);
        raw_u8(&m, 5);
        raw_bytes(&m, "hello", 5);
        raw_u8(&m, 0x07);   /* int key */
        raw_u8(&m, 0xc2);
        raw_str(&m, "ext");
        raw_u8(&m, 0xd4);
        raw_u8(&m, 0xff);
        raw_u8(&m, 0xab);
        raw_str(&m, "d");
        raw_u8(&m, 0xcb);
        raw_be(&m, 0x3fb999999999999aULL, 8);   /* 0.1 */
        jb.len = 0;
        CHECK(cw_json_from_msgpack(&jb, m.b, m.n, err, sizeof(err)) == 0);
        const char *want2 = "{\"nan\":null,\"bad\":\"a\\ufffdb\",\"bin\":\"aGVsbG8=\","
                            "\"7\":false,\"ext\":{\"ext\":-1,\"data\":\"qw==\"},\"d\":0.1}";
        if (strcmp(jb.p, want2) != 0) {
            fprintf(stderr, "json:\n got  %s\n want %s\n", jb.p, want2);
            failures++;
        }
        /* trailing bytes, depth, hostile counts: refused, buffer unchanged */
        size_t keep = jb.len;
        raw_u8(&m, 0xc0);
        CHECK(cw_json_from_msgpack(&jb, m.b, m.n, err, sizeof(err)) == -1);
        CHECK(jb.len == keep);
        unsigned char deep[40];
        memset(deep, 0x91, 33);
        deep[33] = 0xc0;
        CHECK(cw_json_from_msgpack(&jb, deep, 34, err, sizeof(err)) == -1);
        CHECK(strstr(err, "too_deep") != NULL);
        CHECK(cw_json_from_msgpack(&jb, deep + 1, 33, err, sizeof(err)) == 0);
        unsigned char claim[10] = {0xdd, 0x40, 0, 0, 0, 1, 2, 3, 4, 5};
        CHECK(cw_json_from_msgpack(&jb, claim, 10, err, sizeof(err)) == -1);
        CHECK(strstr(err, "too_many") != NULL);
    }
    cw_jbuf_free(&jb);
    cw_jbuf_free(&jb);   /* twice is fine */
}

static cw_article_err_t jparse(const char *line, cw_article_t *a, char *store) {
    size_t n = strlen(line);
    memcpy(store, line, n + 1);
    return cw_json_article_parse(store, n, a, detail, sizeof(detail));
}

static void test_json_article(void) {
    static char store[4096];
    cw_article_t a;

    CHECK_ERR(jparse("{\"id\":\"j1\",\"title\":\"T \\\"q\\\" \\u00e9 \\ud83d\\ude00\","
                     "\"body\":\"line\\nnext\\\\ \\/\",\"source\":null,\"lang\":\"en\","
                     "\"published_at\":-17,\"extra\":{\"a\":[1,2.5e3,true,null,\"s\"]}}\n",
                     &a, store),
              CW_ARTICLE_OK);
    CHECK(str_eq(a.id, "j1"));
    CHECK(str_eq(a.title, "T \"q\" \xc3\xa9 \xf0\x9f\x98\x80"));
    CHECK(str_eq(a.body, "line\nnext\\ /"));
    CHECK(a.source.p == NULL && str_eq(a.lang, "en"));
    CHECK(a.has_published_at && a.published_at == -17);
    CHECK(jparse("{\"id\":\"j\",\"body\":\"b\",\"published_at\":9223372036854775807}", &a,
                 store) == CW_ARTICLE_OK &&
          a.published_at == INT64_MAX);
    CHECK(jparse("{\"id\":\"j\",\"body\":\"b\",\"published_at\":-9223372036854775808}", &a,
                 store) == CW_ARTICLE_OK &&
          a.published_at == INT64_MIN);
    CHECK(jparse("  {\"id\" : \"j\" , \"body\" : \"b\\u0000c\" }  \r\n", &a, store) ==
          CW_ARTICLE_OK);
    CHECK(a.body.len == 3 && a.body.p[1] == '\0');

    static const struct {
        const char *line;
        cw_article_err_t want;
    } bad[] = {
        {"", CW_ARTICLE_ERR_TRUNCATED},
        {"[1,2]", CW_ARTICLE_ERR_NOT_MAP},
        {"\"id\"", CW_ARTICLE_ERR_NOT_MAP},
        {"{\"id\":\"a\",\"body\":\"b\"", CW_ARTICLE_ERR_TRUNCATED},
        {"{\"id\":\"a\",\"body\":\"b}", CW_ARTICLE_ERR_TRUNCATED},
        {"{\"id\":\"a\",\"body\":\"b\"} x", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"b\",}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\" \"body\":\"b\"}", CW_ARTICLE_ERR_MALFORMED},
        {"{id:\"a\"}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"b\\x\"}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"b\tc\"}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"\\ud800\"}", CW_ARTICLE_ERR_BAD_UTF8},
        {"{\"id\":\"a\",\"body\":\"\\udc00x\"}", CW_ARTICLE_ERR_BAD_UTF8},
        {"{\"id\":\"a\",\"body\":\"\xff\"}", CW_ARTICLE_ERR_BAD_UTF8},
        {"{\"id\":\"a\",\"body\":\"\\u12\"}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"id\":\"b\",\"body\":\"b\"}", CW_ARTICLE_ERR_DUPLICATE_KEY},
        {"{\"id\":7,\"body\":\"b\"}", CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":null,\"body\":\"b\"}", CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":\"a\",\"body\":[\"b\"]}", CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":\"a\",\"body\":\"b\",\"published_at\":1.5}", CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":\"a\",\"body\":\"b\",\"published_at\":1e3}", CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":\"a\",\"body\":\"b\",\"published_at\":9223372036854775808}",
         CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":\"a\",\"body\":\"b\",\"published_at\":\"1\"}", CW_ARTICLE_ERR_WRONG_TYPE},
        {"{\"id\":\"a\",\"body\":\"b\",\"published_at\":01}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"b\",\"x\":-}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"b\",\"x\":tru}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"id\":\"a\",\"body\":\"b\",\"x\":[1 2]}", CW_ARTICLE_ERR_MALFORMED},
        {"{\"title\":\"t\"}", CW_ARTICLE_ERR_MISSING_ID},
        {"{\"id\":\"\",\"title\":\"t\"}", CW_ARTICLE_ERR_BAD_ID},
        {"{\"id\":\"a\",\"title\":\"\",\"body\":null}", CW_ARTICLE_ERR_NO_TEXT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cw_article_err_t e = jparse(bad[i].line, &a, store);
        if (e != bad[i].want) {
            fprintf(stderr, "json line %zu '%s': got %s want %s (%s)\n", i, bad[i].line,
                    cw_article_err2str(e), cw_article_err2str(bad[i].want), detail);
            failures++;
        }
    }

    /* nesting in an unknown value: depth 32 (object = 1) passes, 33 refused */
    for (int total = CW_ARTICLE_MAX_DEPTH; total <= CW_ARTICLE_MAX_DEPTH + 1; total++) {
        char line[512];
        size_t w = (size_t)snprintf(line, sizeof(line), "{\"id\":\"d\",\"body\":\"b\",\"x\":");
        for (int d = 2; d <= total; d++)
            line[w++] = '[';
        for (int d = 2; d <= total; d++)
            line[w++] = ']';
        line[w++] = '}';
        line[w] = '\0';
        CHECK_ERR(jparse(line, &a, store),
                  total <= CW_ARTICLE_MAX_DEPTH ? CW_ARTICLE_OK : CW_ARTICLE_ERR_TOO_DEEP);
    }

    /* round trip: article -> msgpack -> JSON -> article */
    {
        cw_article_t o = {0}, m, back;
        void *buf;
        size_t len;
        cw_jbuf_t jb = {NULL, 0, 0};
        char err[256];
        o.id = S("rt-\xe6\x97\xa5");
        o.title = S("ctl \x01\x1f \"quoted\" back\\slash");
        o.body = S("tab\there\nnew line \xf0\x9f\x93\xb0");
        o.url = S("https://x/y?z=1&w=2");
        o.published_at = 1700000000000LL;
        o.has_published_at = 1;
        CHECK(cw_article_encode(&o, &buf, &len) == 0);
        CHECK(cw_json_from_msgpack(&jb, buf, len, err, sizeof(err)) == 0);
        CHECK(strchr(jb.p, '\n') == NULL);   /* one line */
        CHECK_ERR(cw_article_decode(buf, len, &m, detail, sizeof(detail)), CW_ARTICLE_OK);
        CHECK_ERR(cw_json_article_parse(jb.p, jb.len, &back, detail, sizeof(detail)),
                  CW_ARTICLE_OK);
        CHECK(back.id.len == o.id.len && memcmp(back.id.p, o.id.p, o.id.len) == 0);
        CHECK(back.title.len == o.title.len && memcmp(back.title.p, o.title.p, o.title.len) == 0);
        CHECK(back.body.len == o.body.len && memcmp(back.body.p, o.body.p, o.body.len) == 0);
        CHECK(str_eq(back.url, o.url.p) && back.source.p == NULL);
        CHECK(back.has_published_at && back.published_at == o.published_at);
        free(buf);
        cw_jbuf_free(&jb);
    }
}

/* ---- fuzz --------------------------------------------------------------- */

static int in_buf(cw_str_t s, const unsigned char *b, size_t n) {
    if (!s.p)
        return s.len == 0;
    return (const unsigned char *)s.p >= b && (const unsigned char *)s.p + s.len <= b + n;
}

static void test_fuzz(void) {
    enum { ITER = 200000 };
    static const unsigned char interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                                0xc0, 0xc1, 0xc4, 0xc6, 0xc9, 0xca, 0xcb, 0xcf,
                                                0xd3, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
                                                0xe0, 0xff};
    cw_rng_t rng;
    cw_rng_seed(&rng, 20240611);
    unsigned char *seeds[3];
    size_t seed_len[3];
    {
        cw_article_t a = {0};
        a.id = S("fuzz-1");
        a.title = S("Title words");
        a.body = S("Body \xc3\xa9 text");
        a.lang = S("en");
        a.published_at = 1700000000000LL;
        a.has_published_at = 1;
        CHECK(cw_article_encode(&a, (void **)&seeds[0], &seed_len[0]) == 0);
        raw_t r = {.n = 0};
        raw_u8(&r, 0x84);
        raw_str(&r, "id");
        raw_str(&r, "f2");
        raw_str(&r, "body");
        raw_str(&r, "b");
        raw_str(&r, "nest");
        raw_bytes(&r, "\x92\x81\xa1k\x93\x01\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18\xc4\x02xy\xc0", 21);
        raw_str(&r, "e");
        raw_bytes(&r, "\xd6\xff\x00\x00\x00\x01", 6);
        seeds[1] = cw_malloc(r.n);
        memcpy(seeds[1], r.b, r.n);
        seed_len[1] = r.n;
        float sc[4] = {0.1f, 0.2f, 0.3f, 0.4f};
        cw_result_t res = {0};
        res.id = S("r1");
        res.label = "World";
        res.scores = sc;
        res.nscores = 4;
        res.model = "m";
        res.worker = "w";
        char *o = NULL;
        size_t ol = 0, oc = 0;
        CHECK(cw_result_encode(&res, &o, &ol, &oc) == 0);
        seeds[2] = (unsigned char *)o;
        seed_len[2] = ol;
    }

    unsigned char *m = cw_malloc(4096);
    cw_jbuf_t jb = {NULL, 0, 0};
    char err[256];
    long n_ok = 0, n_res_ok = 0;
    for (long it = 0; it < ITER; it++) {
        int s = (int)cw_rng_below(&rng, 3);
        size_t n = seed_len[s];
        memcpy(m, seeds[s], n);
        int muts = 1 + (int)cw_rng_below(&rng, 4);
        for (int k = 0; k < muts; k++) {
            size_t pos = n ? cw_rng_below(&rng, n) : 0;
            switch (cw_rng_below(&rng, 6)) {
            case 0: /* flip a bit */
                if (n)
                    m[pos] ^= (unsigned char)(1u << cw_rng_below(&rng, 8));
                break;
            case 1: /* random byte */
                if (n)
                    m[pos] = (unsigned char)cw_rng_below(&rng, 256);
                break;
            case 2: /* an interesting type byte */
                if (n)
                    m[pos] = interesting[cw_rng_below(&rng, sizeof(interesting))];
                break;
            case 3: /* delete a byte */
                if (n) {
                    memmove(m + pos, m + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            case 4: /* insert a byte */
                if (n < 4000) {
                    memmove(m + pos + 1, m + pos, n - pos);
                    m[pos] = (unsigned char)cw_rng_below(&rng, 256);
                    n++;
                }
                break;
            case 5: /* truncate */
                n = pos;
                break;
            }
        }
        /* decode an exact-size copy so any overread is out of bounds */
        unsigned char *p = cw_malloc(n ? n : 1);
        memcpy(p, m, n);
        cw_article_t a;
        cw_article_err_t e = cw_article_decode(p, n, &a, detail, sizeof(detail));
        CHECK(e >= CW_ARTICLE_OK && e < CW_ARTICLE_ERR_COUNT);
        CHECK(strlen(detail) < sizeof(detail));
        if (e == CW_ARTICLE_OK) {
            n_ok++;
            CHECK(a.id.p && a.id.len >= 1 && a.id.len <= CW_ARTICLE_MAX_ID);
            CHECK(a.title.len > 0 || a.body.len > 0);
            CHECK(in_buf(a.id, p, n) && in_buf(a.title, p, n) && in_buf(a.body, p, n));
            CHECK(in_buf(a.source, p, n) && in_buf(a.url, p, n) && in_buf(a.lang, p, n));
            CHECK(cw_article_validate(&a, NULL, 0) == CW_ARTICLE_OK);
        } else {
            CHECK(a.id.p == NULL && a.title.p == NULL);
        }
        float sc[16];
        char l[64], mo[64], w[64];
        cw_result_t r;
        if (cw_result_decode(p, n, &r, sc, 16, l, sizeof(l), mo, sizeof(mo), w, sizeof(w), err,
                             sizeof(err)) == 0) {
            n_res_ok++;
            CHECK(r.nscores <= 16 && in_buf(r.id, p, n));
            CHECK(strlen(r.label) < sizeof(l) && strlen(r.worker) < sizeof(w));
        }
        /* the renderer survives the same bytes; when it accepts, it wrote one line */
        jb.len = 0;
        if (cw_json_from_msgpack(&jb, p, n, err, sizeof(err)) == 0)
            CHECK(jb.len > 0 && memchr(jb.p, '\n', jb.len) == NULL);
        cw_free(p);
    }
    printf("fuzz: %d iterations, %ld articles accepted, %ld results accepted\n", ITER, n_ok,
           n_res_ok);
    CHECK(n_ok > 0);   /* the mutations do not destroy every message */
    cw_jbuf_free(&jb);
    cw_free(m);
    for (int s = 0; s < 3; s++)
        free(seeds[s]);
}

/* the JSON line reader under mutation: no crash, OK means a valid article */
static void test_json_fuzz(void) {
    const char *seed = "{\"id\":\"a-1\",\"title\":\"T\\u00e9 \\\"x\\\"\",\"body\":\"b\\nc\","
                       "\"published_at\":123,\"x\":[1,{\"k\":null},-2.5e-3,\"\\ud83d\\ude00\"]}";
    static const char alphabet[] = "{}[]\",:\\u0123456789-+.eEtrufalsn \t\xc3\xa9\xff";
    cw_rng_t rng;
    cw_rng_seed(&rng, 7);
    char buf[512], line[512];
    long ok = 0;
    for (int it = 0; it < 50000; it++) {
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int muts = 1 + (int)cw_rng_below(&rng, 3);
        for (int k = 0; k < muts && n > 0; k++) {
            size_t pos = cw_rng_below(&rng, n);
            switch (cw_rng_below(&rng, 3)) {
            case 0: buf[pos] = alphabet[cw_rng_below(&rng, sizeof(alphabet) - 1)]; break;
            case 1: memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; break;
            case 2: n = pos; break;
            }
        }
        char *p = cw_malloc(n ? n : 1);
        memcpy(p, buf, n);
        memcpy(line, buf, n);
        cw_article_t a;
        if (cw_json_article_parse(p, n, &a, detail, sizeof(detail)) == CW_ARTICLE_OK) {
            ok++;
            CHECK(cw_article_validate(&a, NULL, 0) == CW_ARTICLE_OK);
            CHECK(in_buf(a.id, (unsigned char *)p, n) && in_buf(a.body, (unsigned char *)p, n));
        }
        cw_free(p);
    }
    printf("json fuzz: 50000 iterations, %ld accepted\n", ok);
    CHECK(ok > 0);
}

int main(void) {
    test_article_roundtrip();
    test_published_at_encodings();
    test_wrong_types();
    test_refusals();
    test_unknown_keys();
    test_depth();
    test_size_limit();
    test_truncation();
    test_err2str();
    test_result();
    test_json_render();
    test_json_article();
    test_fuzz();
    test_json_fuzz();
    if (failures) {
        fprintf(stderr, "test_schemas: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_schemas: all passed\n");
    return 0;
}
