/* mpread.c: strict, bounded, non-allocating msgpack reader (see mpread.h).
 * Format facts from the msgpack specification (github.com/msgpack/msgpack,
 * spec.md); all multi-byte numbers are big-endian. */
#include "mpread.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cw_mp_init(cw_mp_t *r, const void *buf, size_t len) {
    r->p = (const uint8_t *)buf;
    r->end = r->p + len;
    r->ctx = "message";
    r->key = NULL;
    r->key_len = r->key_no = 0;
    r->err = CW_ARTICLE_OK;
    r->detail[0] = '\0';
}

int cw_mp_fail(cw_mp_t *r, cw_article_err_t err, const char *fmt, ...) {
    if (r->err != CW_ARTICLE_OK)
        return -1;   /* keep the first failure */
    r->err = err;
    int n;
    if (r->key) {
        /* the key comes from the message: quote it safely and briefly */
        size_t w = (size_t)snprintf(r->detail, sizeof(r->detail), "field '");
        uint32_t shown = r->key_len > 32 ? 32 : r->key_len;
        for (uint32_t i = 0; i < shown; i++) {
            uint8_t c = r->key[i];
            r->detail[w++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
        }
        n = snprintf(r->detail + w, sizeof(r->detail) - w, "%s': ",
                     r->key_len > shown ? "..." : "");
        n += (int)w;
    } else if (r->key_no) {
        n = snprintf(r->detail, sizeof(r->detail), "map key #%u: ", r->key_no);
    } else {
        n = snprintf(r->detail, sizeof(r->detail), "%s: ", r->ctx ? r->ctx : "message");
    }
    if (n < 0 || (size_t)n >= sizeof(r->detail))
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail + n, sizeof(r->detail) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cw_mp_type_name(cw_mp_type_t t) {
    switch (t) {
    case CW_MP_NIL: return "nil";
    case CW_MP_BOOL: return "bool";
    case CW_MP_UINT: return "int";
    case CW_MP_NINT: return "int";
    case CW_MP_F32: return "float32";
    case CW_MP_F64: return "float64";
    case CW_MP_STR: return "str";
    case CW_MP_BIN: return "bin";
    case CW_MP_EXT: return "ext";
    case CW_MP_ARRAY: return "array";
    case CW_MP_MAP: return "map";
    }
    return "?";
}

/* Big-endian unsigned of nbytes (1, 2, 4 or 8), bounds-checked. */
static int rd_be(cw_mp_t *r, unsigned nbytes, uint64_t *out) {
    if (cw_mp_left(r) < nbytes)
        return cw_mp_fail(r, CW_ARTICLE_ERR_TRUNCATED,
                          "ends inside a value header (%u bytes needed, %zu remain)",
                          nbytes, cw_mp_left(r));
    uint64_t x = 0;
    for (unsigned k = 0; k < nbytes; k++)
        x = (x << 8) | r->p[k];
    r->p += nbytes;
    *out = x;
    return 0;
}

static int rd_payload(cw_mp_t *r, cw_mp_val_t *v, uint64_t n) {
    if (n > cw_mp_left(r))
        return cw_mp_fail(r, CW_ARTICLE_ERR_TRUNCATED,
                          "%s of %llu bytes but only %zu bytes remain",
                          cw_mp_type_name(v->type), (unsigned long long)n, cw_mp_left(r));
    v->n = (uint32_t)n;   /* n <= remaining <= size_t, and headers carry at most 32 bits */
    v->ptr = r->p;
    r->p += n;
    return 0;
}

static int rd_count(cw_mp_t *r, cw_mp_val_t *v, uint64_t n) {
    uint64_t min_bytes = v->type == CW_MP_MAP ? 2 * n : n;
    if (n > CW_ARTICLE_MAX_ITEMS)
        return cw_mp_fail(r, CW_ARTICLE_ERR_TOO_MANY, "%s of %llu items is over the limit of %u",
                          cw_mp_type_name(v->type), (unsigned long long)n,
                          (unsigned)CW_ARTICLE_MAX_ITEMS);
    if (min_bytes > cw_mp_left(r))
        return cw_mp_fail(r, CW_ARTICLE_ERR_TOO_MANY,
                          "%s claims %llu items but only %zu bytes remain",
                          cw_mp_type_name(v->type), (unsigned long long)n, cw_mp_left(r));
    v->n = (uint32_t)n;
    return 0;
}

int cw_mp_head(cw_mp_t *r, cw_mp_val_t *v) {
    uint64_t x = 0;
    memset(v, 0, sizeof(*v));
    if (r->p >= r->end)
        return cw_mp_fail(r, CW_ARTICLE_ERR_TRUNCATED, "ends where a value should start");
    uint8_t b = *r->p++;

    if (b <= 0x7f) {
        v->type = CW_MP_UINT;
        v->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        v->type = CW_MP_NINT;
        v->i = (int64_t)(int8_t)b;
        return 0;
    }
    if (b <= 0x8f) {
        v->type = CW_MP_MAP;
        return rd_count(r, v, b & 0x0f);
    }
    if (b <= 0x9f) {
        v->type = CW_MP_ARRAY;
        return rd_count(r, v, b & 0x0f);
    }
    if (b <= 0xbf) {
        v->type = CW_MP_STR;
        return rd_payload(r, v, b & 0x1f);
    }

    switch (b) {
    case 0xc0:
        v->type = CW_MP_NIL;
        return 0;
    case 0xc1:
        return cw_mp_fail(r, CW_ARTICLE_ERR_MALFORMED, "byte 0xc1 is never used in msgpack");
    case 0xc2:
    case 0xc3:
        v->type = CW_MP_BOOL;
        v->b = b == 0xc3;
        return 0;
    case 0xc4: case 0xc5: case 0xc6:   /* bin 8/16/32 */
        v->type = CW_MP_BIN;
        if (rd_be(r, 1u << (b - 0xc4), &x))
            return -1;
        return rd_payload(r, v, x);
    case 0xc7: case 0xc8: case 0xc9: { /* ext 8/16/32: length, type, data */
        uint64_t t = 0;
        v->type = CW_MP_EXT;
        if (rd_be(r, 1u << (b - 0xc7), &x) || rd_be(r, 1, &t))
            return -1;
        v->ext_type = (int8_t)(uint8_t)t;
        return rd_payload(r, v, x);
    }
    case 0xca: {
        uint32_t bits;
        float f;
        if (rd_be(r, 4, &x))
            return -1;
        bits = (uint32_t)x;
        memcpy(&f, &bits, sizeof(f));
        v->type = CW_MP_F32;
        v->f = f;
        return 0;
    }
    case 0xcb: {
        double d;
        if (rd_be(r, 8, &x))
            return -1;
        memcpy(&d, &x, sizeof(d));
        v->type = CW_MP_F64;
        v->f = d;
        return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:   /* uint 8/16/32/64 */
        if (rd_be(r, 1u << (b - 0xcc), &x))
            return -1;
        v->type = CW_MP_UINT;
        v->u = x;
        return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: { /* int 8/16/32/64 */
        unsigned nb = 1u << (b - 0xd0);
        int64_t s;
        if (rd_be(r, nb, &x))
            return -1;
        /* sign-extend from nb bytes */
        if (nb < 8 && (x >> (nb * 8 - 1)) & 1)
            x |= ~(uint64_t)0 << (nb * 8);
        memcpy(&s, &x, sizeof(s));
        if (s >= 0) {
            v->type = CW_MP_UINT;
            v->u = (uint64_t)s;
        } else {
            v->type = CW_MP_NINT;
            v->i = s;
        }
        return 0;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: { /* fixext 1..16 */
        uint64_t t = 0;
        v->type = CW_MP_EXT;
        if (rd_be(r, 1, &t))
            return -1;
        v->ext_type = (int8_t)(uint8_t)t;
        return rd_payload(r, v, 1u << (b - 0xd4));
    }
    case 0xd9: case 0xda: case 0xdb:   /* str 8/16/32 */
        v->type = CW_MP_STR;
        if (rd_be(r, 1u << (b - 0xd9), &x))
            return -1;
        return rd_payload(r, v, x);
    case 0xdc: case 0xdd:   /* array 16/32 */
        v->type = CW_MP_ARRAY;
        if (rd_be(r, b == 0xdc ? 2 : 4, &x))
            return -1;
        return rd_count(r, v, x);
    case 0xde: case 0xdf:   /* map 16/32 */
        v->type = CW_MP_MAP;
        if (rd_be(r, b == 0xde ? 2 : 4, &x))
            return -1;
        return rd_count(r, v, x);
    default:
        break;
    }
    return cw_mp_fail(r, CW_ARTICLE_ERR_MALFORMED, "unknown type byte 0x%02x", b);
}

int cw_mp_skip(cw_mp_t *r, const cw_mp_val_t *v, int depth) {
    if (v->type != CW_MP_ARRAY && v->type != CW_MP_MAP)
        return 0;
    if (depth > CW_ARTICLE_MAX_DEPTH)
        return cw_mp_fail(r, CW_ARTICLE_ERR_TOO_DEEP, "nesting deeper than %d levels",
                          CW_ARTICLE_MAX_DEPTH);
    uint64_t items = v->type == CW_MP_MAP ? 2 * (uint64_t)v->n : v->n;
    for (uint64_t k = 0; k < items; k++) {
        cw_mp_val_t item;
        if (cw_mp_head(r, &item) || cw_mp_skip(r, &item, depth + 1))
            return -1;
    }
    return 0;
}

int cw_mp_utf8_seq(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t x, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2; x = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; x = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; x = c & 0x07; min = 0x10000;
    } else {
        return 0;   /* continuation byte, 0xc0/0xc1 (overlong), or > 0xf4 */
    }
    if (n < (size_t)len)
        return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        x = (x << 6) | (s[k] & 0x3f);
    }
    if (x < min || x > 0x10ffff || (x >= 0xd800 && x <= 0xdfff))
        return 0;
    *cp = x;
    return len;
}

int cw_mp_utf8_valid(const void *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        /* fast path over ASCII, the common case for news text: 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int len = cw_mp_utf8_seq(s + i, n - i, &cp);
        if (len == 0)
            return 0;
        i += (size_t)len;
    }
    return 1;
}
