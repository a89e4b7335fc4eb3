/* article.c: the catwire wire codec, schema version 1 (contract: article.h,
 * spec: README.md). Decoding uses the strict reader in mpread.c and never
 * allocates; encoding uses msgpack-c's packer writing into a growable buffer
 * the caller can reuse, so a steady-state result encode allocates nothing. */
#include "article.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpread.h"

const char *cw_article_err2str(cw_article_err_t err) {
    switch (err) {
    case CW_ARTICLE_OK: return "ok";
    case CW_ARTICLE_ERR_TOO_LARGE: return "too_large";
    case CW_ARTICLE_ERR_MALFORMED: return "malformed";
    case CW_ARTICLE_ERR_TRUNCATED: return "truncated";
    case CW_ARTICLE_ERR_NOT_MAP: return "not_map";
    case CW_ARTICLE_ERR_TOO_DEEP: return "too_deep";
    case CW_ARTICLE_ERR_TOO_MANY: return "too_many";
    case CW_ARTICLE_ERR_MISSING_ID: return "missing_id";
    case CW_ARTICLE_ERR_BAD_ID: return "bad_id";
    case CW_ARTICLE_ERR_WRONG_TYPE: return "wrong_type";
    case CW_ARTICLE_ERR_NO_TEXT: return "no_text";
    case CW_ARTICLE_ERR_DUPLICATE_KEY: return "duplicate_key";
    case CW_ARTICLE_ERR_BAD_UTF8: return "bad_utf8";
    }
    return "unknown";
}

static void set_detail(char *detail, size_t detail_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_detail(char *detail, size_t detail_size, const char *fmt, ...) {
    if (!detail || detail_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, detail_size, fmt, ap);
    va_end(ap);
}

/* ---- Article ---------------------------------------------------------- */

enum { F_ID, F_TITLE, F_BODY, F_SOURCE, F_URL, F_LANG, F_PUBLISHED_AT, F_COUNT };
static const char *const article_keys[F_COUNT] = {
    "id", "title", "body", "source", "url", "lang", "published_at",
};

static int key_index(const char *const *keys, int nkeys, const uint8_t *k, uint32_t n) {
    if (n == 0 || n > 15)   /* no known key is longer */
        return -1;
    for (int i = 0; i < nkeys; i++)
        if (keys[i][0] == (char)k[0] && strlen(keys[i]) == n && memcmp(keys[i], k, n) == 0)
            return i;
    return -1;
}

/* Entry i of a map whose keys are `keys`: reads the key (a str) and the head
 * of its value into *val. Returns the key's index, marking it in *seen (a
 * key seen twice is refused); ENTRY_UNKNOWN when the key is not one of
 * `keys` (its value is stepped over, within the same limits); ENTRY_FAIL
 * after cw_mp_fail. */
enum { ENTRY_UNKNOWN = -1, ENTRY_FAIL = -2 };
static int rd_map_entry(cw_mp_t *r, uint32_t i, const char *const *keys, int nkeys, unsigned *seen,
                        cw_mp_val_t *val) {
    cw_mp_val_t key;
    r->key = NULL;
    r->key_no = i + 1;
    if (cw_mp_head(r, &key))
        return ENTRY_FAIL;
    if (key.type != CW_MP_STR) {
        cw_mp_fail(r, CW_ARTICLE_ERR_MALFORMED, "is %s, expected str", cw_mp_type_name(key.type));
        return ENTRY_FAIL;
    }
    int f = key_index(keys, nkeys, key.ptr, key.n);
    r->key = key.ptr;
    r->key_len = key.n;
    if (f >= 0 && (*seen & (1u << f))) {
        cw_mp_fail(r, CW_ARTICLE_ERR_DUPLICATE_KEY, "appears more than once");
        return ENTRY_FAIL;
    }
    if (cw_mp_head(r, val))
        return ENTRY_FAIL;
    if (f < 0)
        return cw_mp_skip(r, val, 2) ? ENTRY_FAIL : ENTRY_UNKNOWN;
    *seen |= 1u << f;
    return f;
}

/* Read a str field value; nil means absent when the field is optional. */
static int rd_str_field(cw_mp_t *r, const cw_mp_val_t *v, int optional, cw_str_t *out) {
    if (v->type == CW_MP_NIL && optional)
        return 0;
    if (v->type != CW_MP_STR)
        return cw_mp_fail(r, CW_ARTICLE_ERR_WRONG_TYPE, "expected str, got %s",
                          cw_mp_type_name(v->type));
    /* never NULL when present, even for an empty string */
    out->p = (const char *)v->ptr;
    out->len = v->n;
    return 0;
}

/* Any msgpack integer that fits int64. */
static int rd_int64(cw_mp_t *r, const cw_mp_val_t *v, int64_t *out) {
    if (v->type == CW_MP_NINT) {
        *out = v->i;
        return 0;
    }
    if (v->type == CW_MP_UINT) {
        if (v->u > (uint64_t)INT64_MAX)
            return cw_mp_fail(r, CW_ARTICLE_ERR_WRONG_TYPE, "%" PRIu64 " is over the int64 range",
                              v->u);
        *out = (int64_t)v->u;
        return 0;
    }
    return cw_mp_fail(r, CW_ARTICLE_ERR_WRONG_TYPE, "expected int, got %s",
                      cw_mp_type_name(v->type));
}

cw_article_err_t cw_article_validate(const cw_article_t *a, char *detail, size_t detail_size) {
    const cw_str_t *fields[] = {&a->id, &a->title, &a->body, &a->source, &a->url, &a->lang};
    const char *names[] = {"id", "title", "body", "source", "url", "lang"};

    if (!a->id.p) {
        set_detail(detail, detail_size, "field 'id' is missing");
        return CW_ARTICLE_ERR_MISSING_ID;
    }
    if (a->id.len == 0 || a->id.len > CW_ARTICLE_MAX_ID) {
        set_detail(detail, detail_size, "field 'id': %zu bytes, expected 1 to %d", a->id.len,
                   CW_ARTICLE_MAX_ID);
        return CW_ARTICLE_ERR_BAD_ID;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i]->p && !cw_mp_utf8_valid(fields[i]->p, fields[i]->len)) {
            set_detail(detail, detail_size, "field '%s': not valid UTF-8", names[i]);
            return CW_ARTICLE_ERR_BAD_UTF8;
        }
    }
    if (a->title.len == 0 && a->body.len == 0) {
        set_detail(detail, detail_size, "fields 'title' and 'body' are both empty or absent");
        return CW_ARTICLE_ERR_NO_TEXT;
    }
    set_detail(detail, detail_size, "ok");
    return CW_ARTICLE_OK;
}

cw_article_err_t cw_article_decode(const void *buf, size_t len, cw_article_t *a,
                                   char *detail, size_t detail_size) {
    cw_mp_t r;
    cw_mp_val_t top, val;
    unsigned seen = 0;

    memset(a, 0, sizeof(*a));
    cw_mp_init(&r, buf, len);
    if (len > CW_ARTICLE_MAX_BYTES) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_TOO_LARGE, "%zu bytes is over the limit of %u", len,
                   (unsigned)CW_ARTICLE_MAX_BYTES);
        goto fail;
    }
    if (len == 0) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_TRUNCATED, "empty");
        goto fail;
    }
    if (cw_mp_head(&r, &top))
        goto fail;
    if (top.type != CW_MP_MAP) {
        /* Garbage usually starts with a byte that reads as a small scalar,
         * followed by more bytes: call that malformed, and keep "not_map"
         * for a well-formed msgpack value of the wrong shape. */
        if (cw_mp_skip(&r, &top, 1))
            goto fail;
        if (cw_mp_left(&r) > 0)
            cw_mp_fail(&r, CW_ARTICLE_ERR_MALFORMED,
                       "not msgpack (%zu more bytes after a top-level %s)",
                       cw_mp_left(&r), cw_mp_type_name(top.type));
        else
            cw_mp_fail(&r, CW_ARTICLE_ERR_NOT_MAP, "top level is %s, expected map",
                       cw_mp_type_name(top.type));
        goto fail;
    }

    for (uint32_t i = 0; i < top.n; i++) {
        int f = rd_map_entry(&r, i, article_keys, F_COUNT, &seen, &val);
        if (f == ENTRY_FAIL)
            goto fail;
        if (f == ENTRY_UNKNOWN)
            continue;
        switch (f) {
        case F_ID:
            if (rd_str_field(&r, &val, 0, &a->id))
                goto fail;
            break;
        case F_TITLE:
            if (rd_str_field(&r, &val, 1, &a->title))
                goto fail;
            break;
        case F_BODY:
            if (rd_str_field(&r, &val, 1, &a->body))
                goto fail;
            break;
        case F_SOURCE:
            if (rd_str_field(&r, &val, 1, &a->source))
                goto fail;
            break;
        case F_URL:
            if (rd_str_field(&r, &val, 1, &a->url))
                goto fail;
            break;
        case F_LANG:
            if (rd_str_field(&r, &val, 1, &a->lang))
                goto fail;
            break;
        case F_PUBLISHED_AT:
            if (val.type == CW_MP_NIL)
                break;
            if (rd_int64(&r, &val, &a->published_at))
                goto fail;
            a->has_published_at = 1;
            break;
        default:
            break;
        }
    }
    r.key = NULL;
    r.key_no = 0;
    if (cw_mp_left(&r) > 0) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_MALFORMED, "%zu trailing bytes after the top-level map",
                   cw_mp_left(&r));
        goto fail;
    }
    cw_article_err_t err = cw_article_validate(a, detail, detail_size);
    if (err != CW_ARTICLE_OK)
        memset(a, 0, sizeof(*a));
    return err;

fail:
    set_detail(detail, detail_size, "%s", r.detail);
    memset(a, 0, sizeof(*a));
    return r.err != CW_ARTICLE_OK ? r.err : CW_ARTICLE_ERR_MALFORMED;
}

/* ---- Encoding --------------------------------------------------------- */

/* msgpack-c packer sink: appends to a growable buffer. */
typedef struct wbuf_s {
    char *p;
    size_t len, cap;
} wbuf_t;

static int wbuf_write(void *data, const char *buf, size_t n) {
    wbuf_t *w = (wbuf_t *)data;
    if (n > SIZE_MAX / 2 - w->len)
        return -1;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        char *p = realloc(w->p, cap);
        if (!p)
            return -1;
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, buf, n);
    w->len += n;
    return 0;
}

static int pack_bytes(msgpack_packer *pk, const void *s, size_t n) {
    if (n > UINT32_MAX)
        return -1;
    if (msgpack_pack_str(pk, n))
        return -1;
    return n ? msgpack_pack_str_body(pk, s, n) : 0;
}

static int pack_key(msgpack_packer *pk, const char *k) {
    return pack_bytes(pk, k, strlen(k));
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
    return pack_bytes(pk, s ? s : "", s ? strlen(s) : 0);
}

int cw_article_encode(const cw_article_t *a, void **out, size_t *len) {
    const cw_str_t *strs[] = {&a->id, &a->title, &a->body, &a->source, &a->url, &a->lang};
    wbuf_t w = {NULL, 0, 0};
    msgpack_packer pk;
    size_t n = 0;
    int rc = -1;

    *out = NULL;
    *len = 0;
    for (int i = 0; i < F_PUBLISHED_AT; i++)
        n += strs[i]->p != NULL;
    n += a->has_published_at != 0;

    msgpack_packer_init(&pk, &w, wbuf_write);
    if (msgpack_pack_map(&pk, n))
        goto done;
    for (int i = 0; i < F_PUBLISHED_AT; i++) {
        if (!strs[i]->p)
            continue;
        if (pack_key(&pk, article_keys[i]) || pack_bytes(&pk, strs[i]->p, strs[i]->len))
            goto done;
    }
    if (a->has_published_at &&
        (pack_key(&pk, "published_at") || msgpack_pack_int64(&pk, a->published_at)))
        goto done;
    *out = w.p;
    *len = w.len;
    w.p = NULL;
    rc = 0;
done:
    free(w.p);
    return rc;
}

/* ---- Result ----------------------------------------------------------- */

enum { R_ID, R_LABEL, R_LABEL_ID, R_CONFIDENCE, R_SCORES, R_MODEL, R_MODEL_VERSION, R_WORKER,
       R_PROCESSED_AT, R_COUNT };
static const char *const result_keys[R_COUNT] = {
    "id", "label", "label_id", "confidence", "scores", "model", "model_version", "worker",
    "processed_at",
};

int cw_result_encode(const cw_result_t *r, char **out, size_t *len, size_t *cap) {
    wbuf_t w = {*out, 0, *cap};
    msgpack_packer pk;
    int rc = -1;

    if (r->nscores > CW_ARTICLE_MAX_ITEMS || (r->nscores > 0 && !r->scores) || !r->id.p)
        goto done;
    msgpack_packer_init(&pk, &w, wbuf_write);
    if (msgpack_pack_map(&pk, R_COUNT))
        goto done;
    if (pack_key(&pk, "id") || pack_bytes(&pk, r->id.p, r->id.len))
        goto done;
    if (pack_key(&pk, "label") || pack_cstr(&pk, r->label))
        goto done;
    if (pack_key(&pk, "label_id") || msgpack_pack_int32(&pk, r->label_id))
        goto done;
    if (pack_key(&pk, "confidence") || msgpack_pack_float(&pk, r->confidence))
        goto done;
    if (pack_key(&pk, "scores") || msgpack_pack_array(&pk, r->nscores))
        goto done;
    for (uint32_t i = 0; i < r->nscores; i++)
        if (msgpack_pack_float(&pk, r->scores[i]))
            goto done;
    if (pack_key(&pk, "model") || pack_cstr(&pk, r->model))
        goto done;
    if (pack_key(&pk, "model_version") || msgpack_pack_int64(&pk, r->model_version))
        goto done;
    if (pack_key(&pk, "worker") || pack_cstr(&pk, r->worker))
        goto done;
    if (pack_key(&pk, "processed_at") || msgpack_pack_int64(&pk, r->processed_at))
        goto done;
    rc = 0;
done:
    /* the buffer, grown or not, stays the caller's */
    *out = w.p;
    *cap = w.cap;
    *len = rc == 0 ? w.len : 0;
    return rc;
}

/* Copy a str value into a caller buffer as a C string. */
static int rd_cstr(cw_mp_t *r, const cw_mp_val_t *v, char *buf, size_t size, const char **out) {
    if (v->type != CW_MP_STR)
        return cw_mp_fail(r, CW_ARTICLE_ERR_WRONG_TYPE, "expected str, got %s",
                          cw_mp_type_name(v->type));
    if (!cw_mp_utf8_valid(v->ptr, v->n))
        return cw_mp_fail(r, CW_ARTICLE_ERR_BAD_UTF8, "not valid UTF-8");
    if (!buf) {
        *out = NULL;
        return 0;
    }
    if (memchr(v->ptr, '\0', v->n))
        return cw_mp_fail(r, CW_ARTICLE_ERR_WRONG_TYPE, "contains a NUL byte");
    if ((size_t)v->n >= size)
        return cw_mp_fail(r, CW_ARTICLE_ERR_TOO_MANY, "%u bytes do not fit the %zu-byte buffer",
                          v->n, size);
    memcpy(buf, v->ptr, v->n);
    buf[v->n] = '\0';
    *out = buf;
    return 0;
}

static int rd_float(cw_mp_t *r, const cw_mp_val_t *v, float *out) {
    if (v->type != CW_MP_F32 && v->type != CW_MP_F64)
        return cw_mp_fail(r, CW_ARTICLE_ERR_WRONG_TYPE, "expected float, got %s",
                          cw_mp_type_name(v->type));
    *out = (float)v->f;
    return 0;
}

int cw_result_decode(const void *buf, size_t len, cw_result_t *res, float *scores_out,
                     uint32_t max_scores, char *label_buf, size_t label_buf_size,
                     char *model_buf, size_t model_buf_size, char *worker_buf,
                     size_t worker_buf_size, char *errstr, size_t errstr_size) {
    cw_mp_t r;
    cw_mp_val_t top, val;
    unsigned seen = 0;
    int64_t i64 = 0;

    memset(res, 0, sizeof(*res));
    cw_mp_init(&r, buf, len);
    if (len > CW_ARTICLE_MAX_BYTES) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_TOO_LARGE, "%zu bytes is over the limit of %u", len,
                   (unsigned)CW_ARTICLE_MAX_BYTES);
        goto fail;
    }
    if (cw_mp_head(&r, &top))
        goto fail;
    if (top.type != CW_MP_MAP) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_NOT_MAP, "top level is %s, expected map",
                   cw_mp_type_name(top.type));
        goto fail;
    }
    for (uint32_t i = 0; i < top.n; i++) {
        int f = rd_map_entry(&r, i, result_keys, R_COUNT, &seen, &val);
        if (f == ENTRY_FAIL)
            goto fail;
        if (f == ENTRY_UNKNOWN)
            continue;
        switch (f) {
        case R_ID:
            if (rd_str_field(&r, &val, 0, &res->id))
                goto fail;
            if (!cw_mp_utf8_valid(res->id.p, res->id.len)) {
                cw_mp_fail(&r, CW_ARTICLE_ERR_BAD_UTF8, "not valid UTF-8");
                goto fail;
            }
            break;
        case R_LABEL:
            if (rd_cstr(&r, &val, label_buf, label_buf_size, &res->label))
                goto fail;
            break;
        case R_MODEL:
            if (rd_cstr(&r, &val, model_buf, model_buf_size, &res->model))
                goto fail;
            break;
        case R_WORKER:
            if (rd_cstr(&r, &val, worker_buf, worker_buf_size, &res->worker))
                goto fail;
            break;
        case R_LABEL_ID:
            if (rd_int64(&r, &val, &i64))
                goto fail;
            if (i64 < INT32_MIN || i64 > INT32_MAX) {
                cw_mp_fail(&r, CW_ARTICLE_ERR_WRONG_TYPE, "%" PRId64 " is over the int32 range",
                           i64);
                goto fail;
            }
            res->label_id = (int32_t)i64;
            break;
        case R_CONFIDENCE:
            if (rd_float(&r, &val, &res->confidence))
                goto fail;
            break;
        case R_SCORES:
            if (val.type != CW_MP_ARRAY) {
                cw_mp_fail(&r, CW_ARTICLE_ERR_WRONG_TYPE, "expected array, got %s",
                           cw_mp_type_name(val.type));
                goto fail;
            }
            if (val.n > max_scores || (val.n > 0 && !scores_out)) {
                cw_mp_fail(&r, CW_ARTICLE_ERR_TOO_MANY, "%u scores, room for %u", val.n,
                           scores_out ? max_scores : 0);
                goto fail;
            }
            for (uint32_t k = 0; k < val.n; k++) {
                cw_mp_val_t s;
                if (cw_mp_head(&r, &s) || rd_float(&r, &s, &scores_out[k]))
                    goto fail;
            }
            res->scores = scores_out;
            res->nscores = val.n;
            break;
        case R_MODEL_VERSION:
            if (rd_int64(&r, &val, &res->model_version))
                goto fail;
            break;
        case R_PROCESSED_AT:
            if (rd_int64(&r, &val, &res->processed_at))
                goto fail;
            break;
        default:
            break;
        }
    }
    r.key = NULL;
    r.key_no = 0;
    if (cw_mp_left(&r) > 0) {
        cw_mp_fail(&r, CW_ARTICLE_ERR_MALFORMED, "%zu trailing bytes after the top-level map",
                   cw_mp_left(&r));
        goto fail;
    }
    for (int f = 0; f < R_COUNT; f++) {
        if (!(seen & (1u << f))) {
            r.key = (const uint8_t *)result_keys[f];
            r.key_len = (uint32_t)strlen(result_keys[f]);
            cw_mp_fail(&r, f == R_ID ? CW_ARTICLE_ERR_MISSING_ID : CW_ARTICLE_ERR_MALFORMED,
                       "is missing");
            goto fail;
        }
    }
    return 0;

fail:
    if (errstr && errstr_size)
        snprintf(errstr, errstr_size, "%s: %s", cw_article_err2str(r.err), r.detail);
    memset(res, 0, sizeof(*res));
    return -1;
}
