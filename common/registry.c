/* registry.c: versioned models on disk, the CURRENT pointer with its
 * history, fleet pins, garbage collection and meta.json. See registry.h for
 * the layout and the rules; this file is how they are kept on a POSIX file
 * system: rename(2) is the commit point of every change, directories are
 * fsynced after renames, and read-modify-write changes of CURRENT, pins and
 * gc hold flock(2) on <model>/.lock. */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "util.h"

#define NAME_MAX_LEN 128
#define MAX_VERSION_DIGITS 18

/* ---- names and paths ------------------------------------------------- */

static int name_ok(const char *s, int allow_dot) {
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || (allow_dot && c == '.')))
            return 0;
    }
    return 1;
}

static int check_name(const char *name, char *errstr, size_t errstr_size) {
    if (name_ok(name, 1)) return 0;
    cw_seterr(errstr, errstr_size,
              "invalid model name '%s' (use 1-%d of A-Z a-z 0-9 . _ -, not starting with '.')",
              name, NAME_MAX_LEN);
    return -1;
}

static int check_fleet(const char *fleet, char *errstr, size_t errstr_size) {
    if (fleet && name_ok(fleet, 0)) return 0;
    cw_seterr(errstr, errstr_size, "invalid fleet name '%s' (use 1-%d of A-Z a-z 0-9 _ -)",
              fleet ? fleet : "", NAME_MAX_LEN);
    return -1;
}

/* A decimal version without sign or leading zero; 0 when s is not one. */
static int64_t parse_version(const char *s, size_t n) {
    if (n == 0 || n > MAX_VERSION_DIGITS || s[0] == '0') return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static char *path_join(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = cw_malloc(n);
    if (c) snprintf(p, n, "%s/%s/%s", a, b, c);
    else snprintf(p, n, "%s/%s", a, b);
    return p;
}

static char *model_dir(const char *registry, const char *name) { return path_join(registry, name, NULL); }

char *cw_registry_path(const char *registry, const char *name, int64_t version, const char *file) {
    char v[32];
    snprintf(v, sizeof(v), "%" PRId64, version);
    char *mdir = model_dir(registry, name);
    char *p = path_join(mdir, v, file);
    cw_free(mdir);
    return p;
}

static int version_exists(const char *registry, const char *name, int64_t version) {
    char *p = cw_registry_path(registry, name, version, "model.cwm");
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    cw_free(p);
    return ok;
}

static int require_version(const char *registry, const char *name, int64_t version,
                           char *errstr, size_t errstr_size) {
    if (version >= 1 && version_exists(registry, name, version)) return 0;
    cw_seterr(errstr, errstr_size, "version %" PRId64 " of model '%s' not found in %s", version,
              name, registry);
    return -1;
}

/* The model's lock file, held until close. -1 with errstr on failure. */
static int lock_model(const char *registry, const char *name, char *errstr, size_t errstr_size) {
    char *p = path_join(registry, name, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", p, strerror(errno));
    } else {
        while (flock(fd, LOCK_EX) != 0) {
            if (errno == EINTR) continue;
            cw_seterr(errstr, errstr_size, "lock %s: %s", p, strerror(errno));
            close(fd);
            fd = -1;
            break;
        }
    }
    cw_free(p);
    return fd;
}

static int model_must_exist(const char *registry, const char *name, char *errstr, size_t errstr_size) {
    if (check_name(name, errstr, errstr_size) != 0) return -1;
    char *mdir = model_dir(registry, name);
    struct stat st;
    int rc = 0;
    if (stat(mdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cw_seterr(errstr, errstr_size, "no model named '%s' in registry %s", name, registry);
        rc = -1;
    }
    cw_free(mdir);
    return rc;
}

/* ---- a small JSON reader ---------------------------------------------
 * Enough of RFC 8259 to validate a caller's metadata object, walk the
 * members of an object and decode strings and numbers; nesting is bounded. */

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t n, pos;
} json_t;

static void json_ws(json_t *j) {
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
                             j->s[j->pos] == '\r'))
        j->pos++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int json_hex4(json_t *j, uint32_t *u) {
    if (j->n - j->pos < 4) return -1;
    *u = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->s[j->pos + i]);
        if (h < 0) return -1;
        *u = *u << 4 | (uint32_t)h;
    }
    j->pos += 4;
    return 0;
}

static size_t utf8_put(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at j->pos; decoded into *out (malloc'd) when out is non-NULL. */
static int json_string(json_t *j, char **out) {
    if (j->pos >= j->n || j->s[j->pos] != '"') return -1;
    j->pos++;
    size_t start = j->pos;
    /* Decoded text is never longer than the escaped text. */
    char *o = NULL;
    size_t on = 0;
    if (out) o = cw_malloc(j->n - start + 1);
    while (j->pos < j->n) {
        unsigned char c = (unsigned char)j->s[j->pos++];
        if (c == '"') {
            if (out) {
                o[on] = '\0';
                *out = o;
            }
            return 0;
        }
        if (c < 0x20) break;
        if (c != '\\') {
            if (o) o[on++] = (char)c;
            continue;
        }
        if (j->pos >= j->n) break;
        char e = j->s[j->pos++];
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (json_hex4(j, &cp) != 0) goto bad;
            if (cp >= 0xd800 && cp < 0xdc00) {
                uint32_t lo;
                if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u') goto bad;
                j->pos += 2;
                if (json_hex4(j, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) goto bad;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                goto bad;
            }
            break;
        default: goto bad;
        }
        if (o) on += utf8_put(o + on, cp);
    }
bad:
    cw_free(o);
    return -1;
}

static int json_number(json_t *j) {
    size_t p = j->pos;
    const char *s = j->s;
    if (p < j->n && s[p] == '-') p++;
    if (p >= j->n) return -1;
    if (s[p] == '0') p++;
    else if (s[p] >= '1' && s[p] <= '9') while (p < j->n && s[p] >= '0' && s[p] <= '9') p++;
    else return -1;
    if (p < j->n && s[p] == '.') {
        p++;
        if (p >= j->n || s[p] < '0' || s[p] > '9') return -1;
        while (p < j->n && s[p] >= '0' && s[p] <= '9') p++;
    }
    if (p < j->n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < j->n && (s[p] == '+' || s[p] == '-')) p++;
        if (p >= j->n || s[p] < '0' || s[p] > '9') return -1;
        while (p < j->n && s[p] >= '0' && s[p] <= '9') p++;
    }
    j->pos = p;
    return 0;
}

static int json_lit(json_t *j, const char *lit) {
    size_t l = strlen(lit);
    if (j->n - j->pos < l || memcmp(j->s + j->pos, lit, l) != 0) return -1;
    j->pos += l;
    return 0;
}

static int json_value(json_t *j, int depth);

/* Members of the object at j->pos: fn(key, value start, value end, ctx) for
 * each (fn may be NULL; returning non-zero from fn stops with that code). */
typedef int (*json_member_fn)(const char *key, size_t vstart, size_t vend, size_t kstart, void *ctx);

static int json_object(json_t *j, int depth, json_member_fn fn, void *ctx) {
    if (depth > JSON_MAX_DEPTH || j->pos >= j->n || j->s[j->pos] != '{') return -1;
    j->pos++;
    json_ws(j);
    if (j->pos < j->n && j->s[j->pos] == '}') {
        j->pos++;
        return 0;
    }
    for (;;) {
        json_ws(j);
        size_t kstart = j->pos;
        char *key = NULL;
        if (json_string(j, fn ? &key : NULL) != 0) return -1;
        json_ws(j);
        if (j->pos >= j->n || j->s[j->pos] != ':') {
            cw_free(key);
            return -1;
        }
        j->pos++;
        json_ws(j);
        size_t vstart = j->pos;
        if (json_value(j, depth + 1) != 0) {
            cw_free(key);
            return -1;
        }
        int rc = fn ? fn(key, vstart, j->pos, kstart, ctx) : 0;
        cw_free(key);
        if (rc) return rc;
        json_ws(j);
        if (j->pos < j->n && j->s[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->pos < j->n && j->s[j->pos] == '}') {
            j->pos++;
            return 0;
        }
        return -1;
    }
}

static int json_value(json_t *j, int depth) {
    if (depth > JSON_MAX_DEPTH || j->pos >= j->n) return -1;
    switch (j->s[j->pos]) {
    case '{': return json_object(j, depth, NULL, NULL);
    case '[':
        j->pos++;
        json_ws(j);
        if (j->pos < j->n && j->s[j->pos] == ']') {
            j->pos++;
            return 0;
        }
        for (;;) {
            json_ws(j);
            if (json_value(j, depth + 1) != 0) return -1;
            json_ws(j);
            if (j->pos < j->n && j->s[j->pos] == ',') {
                j->pos++;
                continue;
            }
            if (j->pos < j->n && j->s[j->pos] == ']') {
                j->pos++;
                return 0;
            }
            return -1;
        }
    case '"': return json_string(j, NULL);
    case 't': return json_lit(j, "true");
    case 'f': return json_lit(j, "false");
    case 'n': return json_lit(j, "null");
    default: return json_number(j);
    }
}

/* Walk a whole document that must be one object. 0, or -1 with errstr. */
static int json_walk(const char *s, size_t n, json_member_fn fn, void *ctx, const char *what,
                     char *errstr, size_t errstr_size) {
    json_t j = {s, n, 0};
    json_ws(&j);
    if (j.pos >= n || s[j.pos] != '{') {
        cw_seterr(errstr, errstr_size, "%s: not a JSON object", what);
        return -1;
    }
    int rc = json_object(&j, 0, fn, ctx);
    if (rc == 0) {
        json_ws(&j);
        if (j.pos != n) rc = -1;
    }
    if (rc != 0) cw_seterr(errstr, errstr_size, "%s: invalid JSON at byte %zu", what, j.pos);
    return rc == 0 ? 0 : -1;
}

static void sb_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    cw_grow((void **)buf, cap, *len + n + 1, 1);
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void sb_addf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sb_addf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_add(buf, len, cap, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ---- CURRENT and its history ----------------------------------------- */

/* Parse CURRENT into hist (current first). Missing file: n = 0. */
static int history_read(const char *registry, const char *name, int64_t *hist, size_t *n,
                        char *errstr, size_t errstr_size) {
    char *p = path_join(registry, name, "CURRENT");
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    *n = 0;
    struct stat st;
    if (stat(p, &st) != 0 && errno == ENOENT) {
        rc = 0;
        goto done;
    }
    if (cw_file_read_all(p, &buf, &len, errstr, errstr_size) != 0) goto done;
    size_t pos = 0, ln = 0;
    while (pos < len && buf[pos] >= '0' && buf[pos] <= '9') pos++;
    int64_t cur = parse_version(buf, pos);
    if (cur == 0 || (pos < len && buf[pos] != '\n')) goto corrupt;
    hist[(*n)++] = cur;
    if (pos < len) pos++;
    if (pos < len) {
        static const char prev[] = "previous";
        ln = sizeof(prev) - 1;
        if (len - pos < ln || memcmp(buf + pos, prev, ln) != 0) goto corrupt;
        pos += ln;
        while (pos < len && buf[pos] != '\n') {
            if (buf[pos] != ' ') goto corrupt;
            pos++;
            size_t s = pos;
            while (pos < len && buf[pos] >= '0' && buf[pos] <= '9') pos++;
            int64_t v = parse_version(buf + s, pos - s);
            if (v == 0) goto corrupt;
            if (*n < CW_REGISTRY_HISTORY) hist[(*n)++] = v;
        }
        if (pos < len) pos++;
        if (pos != len) goto corrupt;
    }
    rc = 0;
    goto done;
corrupt:
    cw_seterr(errstr, errstr_size, "%s: unreadable (expected a version number, then optionally "
              "a line 'previous N ...')", p);
    *n = 0;
done:
    cw_free(buf);
    cw_free(p);
    return rc;
}

static int history_write(const char *registry, const char *name, const int64_t *hist, size_t n,
                         char *errstr, size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    sb_addf(&buf, &len, &cap, "%" PRId64 "\n", hist[0]);
    if (n > 1) {
        sb_add(&buf, &len, &cap, "previous", 8);
        for (size_t i = 1; i < n && i < CW_REGISTRY_HISTORY; i++) sb_addf(&buf, &len, &cap, " %" PRId64, hist[i]);
        sb_add(&buf, &len, &cap, "\n", 1);
    }
    char *p = path_join(registry, name, "CURRENT");
    int rc = cw_file_write_atomic(p, buf, len, errstr, errstr_size);
    cw_free(p);
    cw_free(buf);
    return rc;
}

int cw_registry_history(const char *registry, const char *name, int64_t **versions, size_t *n,
                        char *errstr, size_t errstr_size) {
    int64_t hist[CW_REGISTRY_HISTORY];
    *versions = NULL;
    *n = 0;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0) return -1;
    if (history_read(registry, name, hist, n, errstr, errstr_size) != 0) return -1;
    *versions = cw_malloc((*n ? *n : 1) * sizeof(int64_t));
    memcpy(*versions, hist, *n * sizeof(int64_t));
    return 0;
}

int64_t cw_registry_current(const char *registry, const char *name, char *errstr, size_t errstr_size) {
    int64_t hist[CW_REGISTRY_HISTORY];
    size_t n;
    if (check_name(name, errstr, errstr_size) != 0) return -1;
    if (history_read(registry, name, hist, &n, errstr, errstr_size) != 0) return -1;
    return n ? hist[0] : 0;
}

/* Index in hist of the rollback target, or 0 when there is none. */
static size_t previous_index(const char *registry, const char *name, const int64_t *hist, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (hist[i] != hist[0] && version_exists(registry, name, hist[i])) return i;
    return 0;
}

int64_t cw_registry_previous(const char *registry, const char *name, char *errstr, size_t errstr_size) {
    int64_t hist[CW_REGISTRY_HISTORY];
    size_t n;
    if (check_name(name, errstr, errstr_size) != 0) return -1;
    if (history_read(registry, name, hist, &n, errstr, errstr_size) != 0) return -1;
    size_t i = previous_index(registry, name, hist, n);
    return i ? hist[i] : 0;
}

int cw_registry_set_current(const char *registry, const char *name, int64_t version,
                            char *errstr, size_t errstr_size) {
    int64_t hist[CW_REGISTRY_HISTORY], next[CW_REGISTRY_HISTORY];
    size_t n, nn = 0;
    int rc = -1, lock = -1;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0) return -1;
    if ((lock = lock_model(registry, name, errstr, errstr_size)) < 0) return -1;
    if (require_version(registry, name, version, errstr, errstr_size) != 0) goto done;
    if (history_read(registry, name, hist, &n, errstr, errstr_size) != 0) goto done;
    if (n > 0 && hist[0] == version) { /* already current: history unchanged */
        rc = 0;
        goto done;
    }
    next[nn++] = version;
    for (size_t i = 0; i < n && nn < CW_REGISTRY_HISTORY; i++)
        if (hist[i] != version) next[nn++] = hist[i];
    rc = history_write(registry, name, next, nn, errstr, errstr_size);
done:
    close(lock);
    return rc;
}

int64_t cw_registry_rollback(const char *registry, const char *name, char *errstr, size_t errstr_size) {
    int64_t hist[CW_REGISTRY_HISTORY];
    size_t n;
    int64_t rc = -1;
    int lock;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0) return -1;
    if ((lock = lock_model(registry, name, errstr, errstr_size)) < 0) return -1;
    if (history_read(registry, name, hist, &n, errstr, errstr_size) != 0) goto done;
    size_t i = previous_index(registry, name, hist, n);
    if (i == 0) {
        if (n == 0) cw_seterr(errstr, errstr_size, "model '%s' has no current version to roll back from", name);
        else cw_seterr(errstr, errstr_size,
                       "model '%s': no previous current version to roll back to (current is %" PRId64 ")",
                       name, hist[0]);
        goto done;
    }
    if (history_write(registry, name, hist + i, n - i, errstr, errstr_size) != 0) goto done;
    rc = hist[i];
done:
    close(lock);
    return rc;
}

/* ---- versions, publish, resolve --------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int cw_registry_list(const char *registry, const char *name, int64_t **versions, size_t *n,
                     char *errstr, size_t errstr_size) {
    *versions = NULL;
    *n = 0;
    if (check_name(name, errstr, errstr_size) != 0) return -1;
    char *mdir = model_dir(registry, name);
    DIR *d = opendir(mdir);
    if (!d) {
        if (errno == ENOENT) cw_seterr(errstr, errstr_size, "no model named '%s' in registry %s", name, registry);
        else cw_seterr(errstr, errstr_size, "%s: %s", mdir, strerror(errno));
        cw_free(mdir);
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t v = parse_version(e->d_name, strlen(e->d_name));
        if (v == 0) continue;
        cw_grow((void **)versions, &cap, *n + 1, sizeof(int64_t));
        (*versions)[(*n)++] = v;
    }
    closedir(d);
    cw_free(mdir);
    if (*n) qsort(*versions, *n, sizeof(int64_t), cmp_i64);
    else *versions = cw_malloc(sizeof(int64_t));
    return 0;
}

static int64_t highest_version(const char *registry, const char *name, char *errstr, size_t errstr_size) {
    int64_t *vs = NULL;
    size_t n = 0;
    if (cw_registry_list(registry, name, &vs, &n, errstr, errstr_size) != 0) return -1;
    int64_t h = n ? vs[n - 1] : 0;
    cw_free(vs);
    return h;
}

static void iso8601_utc(int64_t ms, char *out, size_t size) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void json_escape(char **buf, size_t *len, size_t *cap, const char *s) {
    sb_add(buf, len, cap, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_add(buf, len, cap, e, 2);
        } else if (*p < 0x20) {
            sb_addf(buf, len, cap, "\\u%04x", *p);
        } else {
            sb_add(buf, len, cap, (const char *)p, 1);
        }
    }
    sb_add(buf, len, cap, "\"", 1);
}

typedef struct {
    const char *src;
    char *buf;
    size_t len, cap;
} merge_t;

static int merge_member(const char *key, size_t vstart, size_t vend, size_t kstart, void *ctx) {
    merge_t *mg = ctx;
    static const char *const ours[] = {"model", "version", "created_at", "parent"};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(key, ours[i])) return 0;
    sb_add(&mg->buf, &mg->len, &mg->cap, ",\n  ", 4);
    /* Keep the caller's bytes for key and value (numbers stay as written). */
    size_t kend = kstart + 1;
    while (mg->src[kend] != '"') kend += mg->src[kend] == '\\' ? 2 : 1;
    sb_add(&mg->buf, &mg->len, &mg->cap, mg->src + kstart, kend + 1 - kstart);
    sb_add(&mg->buf, &mg->len, &mg->cap, ": ", 2);
    sb_add(&mg->buf, &mg->len, &mg->cap, mg->src + vstart, vend - vstart);
    return 0;
}

static char *meta_build(const char *name, int64_t version, int64_t parent, const char *created,
                        const char *caller, size_t *len_out) {
    merge_t mg = {caller, NULL, 0, 0};
    sb_add(&mg.buf, &mg.len, &mg.cap, "{\n  \"model\": ", 13);
    json_escape(&mg.buf, &mg.len, &mg.cap, name);
    sb_addf(&mg.buf, &mg.len, &mg.cap, ",\n  \"version\": %" PRId64 ",\n  \"created_at\": \"%s\",\n  \"parent\": ",
            version, created);
    if (parent > 0) sb_addf(&mg.buf, &mg.len, &mg.cap, "%" PRId64, parent);
    else sb_add(&mg.buf, &mg.len, &mg.cap, "null", 4);
    /* caller was validated by the caller of meta_build, so this cannot fail */
    json_walk(caller, strlen(caller), merge_member, &mg, "meta", NULL, 0);
    sb_add(&mg.buf, &mg.len, &mg.cap, "\n}\n", 3);
    *len_out = mg.len;
    return mg.buf;
}

/* Remove a directory holding only files. */
static int rm_flat_dir(const char *dir, char *errstr, size_t errstr_size) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        cw_seterr(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = path_join(dir, e->d_name, NULL);
        if (unlink(p) != 0 && errno != ENOENT) {
            cw_seterr(errstr, errstr_size, "unlink %s: %s", p, strerror(errno));
            rc = -1;
        }
        cw_free(p);
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) {
        cw_seterr(errstr, errstr_size, "rmdir %s: %s", dir, strerror(errno));
        rc = -1;
    }
    return rc;
}

int64_t cw_registry_publish(const char *registry, const char *name, const cw_model_t *m,
                            const char *meta_json, char *errstr, size_t errstr_size) {
    int64_t result = -1;
    char *mdir = NULL, *tmp = NULL, *tmpfile = NULL, *meta = NULL, *target = NULL;
    void *ckpt = NULL;
    size_t ckpt_len = 0, meta_len = 0;
    char err[512];
    if (check_name(name, errstr, errstr_size) != 0) return -1;
    if (!meta_json || !*meta_json) meta_json = "{}";
    if (json_walk(meta_json, strlen(meta_json), NULL, NULL, "metadata", errstr, errstr_size) != 0)
        return -1;
    if (cw_ckpt_encode(m, &ckpt, &ckpt_len, err, sizeof(err)) != 0) {
        cw_seterr(errstr, errstr_size, "model '%s': %s", name, err);
        return -1;
    }
    mdir = model_dir(registry, name);
    if (cw_mkdir_p(mdir, errstr, errstr_size) != 0) goto done;

    /* A private staging directory next to the versions (same file system). */
    size_t tl = strlen(mdir) + 64;
    tmp = cw_malloc(tl);
    cw_rng_t rng;
    cw_rng_seed(&rng, (uint64_t)cw_wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rng);
    for (int tries = 0;; tries++) {
        snprintf(tmp, tl, "%s/.tmp-%ld-%08" PRIx64, mdir, (long)getpid(), cw_rng_next(&rng) & 0xffffffffu);
        if (mkdir(tmp, 0755) == 0) break;
        if (errno != EEXIST || tries > 100) {
            cw_seterr(errstr, errstr_size, "mkdir %s: %s", tmp, strerror(errno));
            cw_free(tmp);
            tmp = NULL;
            goto done;
        }
    }
    tmpfile = path_join(tmp, "model.cwm", NULL);
    if (cw_file_write_atomic(tmpfile, ckpt, ckpt_len, errstr, errstr_size) != 0) goto done;
    cw_free(tmpfile);
    tmpfile = path_join(tmp, "meta.json", NULL);

    int64_t parent = cw_registry_current(registry, name, errstr, errstr_size);
    if (parent < 0) goto done;
    char created[96];
    iso8601_utc(cw_wall_ms(), created, sizeof(created));
    int64_t v = highest_version(registry, name, errstr, errstr_size);
    if (v < 0) goto done;
    for (int tries = 0; tries < 10000; tries++) {
        v++;
        cw_free(meta);
        meta = meta_build(name, v, parent, created, meta_json, &meta_len);
        if (cw_file_write_atomic(tmpfile, meta, meta_len, errstr, errstr_size) != 0) goto done;
        char vs[32];
        snprintf(vs, sizeof(vs), "%" PRId64, v);
        cw_free(target);
        target = path_join(mdir, vs, NULL);
        /* The commit point: fails when another publisher took v first. */
        if (rename(tmp, target) == 0) {
            if (cw_fsync_dir(mdir, errstr, errstr_size) != 0) goto done;
            result = v;
            goto done;
        }
        if (errno != EEXIST && errno != ENOTEMPTY) {
            cw_seterr(errstr, errstr_size, "rename %s -> %s: %s", tmp, target, strerror(errno));
            goto done;
        }
        int64_t h = highest_version(registry, name, errstr, errstr_size);
        if (h < 0) goto done;
        if (h > v) v = h;
    }
    cw_seterr(errstr, errstr_size, "model '%s': could not claim a version number", name);
done:
    if (result < 0 && tmp) rm_flat_dir(tmp, NULL, 0);
    cw_free(ckpt);
    cw_free(mdir);
    cw_free(tmp);
    cw_free(tmpfile);
    cw_free(meta);
    cw_free(target);
    return result;
}

/* Split "NAME[@V]": *version 0 when absent. */
static int parse_ref(const char *ref, char **name, int64_t *version, char *errstr, size_t errstr_size) {
    const char *at = strchr(ref, '@');
    *version = 0;
    *name = at ? cw_strndup(ref, (size_t)(at - ref)) : cw_strdup(ref);
    if (check_name(*name, errstr, errstr_size) != 0) goto bad;
    if (at) {
        *version = parse_version(at + 1, strlen(at + 1));
        if (*version == 0) {
            cw_seterr(errstr, errstr_size, "invalid version in '%s' (expected NAME@N, N >= 1)", ref);
            goto bad;
        }
    }
    return 0;
bad:
    cw_free(*name);
    *name = NULL;
    return -1;
}

int cw_registry_resolve_fleet(const char *registry, const char *ref, const char *fleet,
                              char **name_out, int64_t *version_out, char **path_out,
                              int *pinned_out, char *errstr, size_t errstr_size) {
    char *name = NULL;
    int64_t v = 0;
    int pinned = 0, rc = -1;
    if (pinned_out) *pinned_out = 0;
    if (parse_ref(ref, &name, &v, errstr, errstr_size) != 0) return -1;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0) goto done;
    if (v == 0 && fleet && *fleet) {
        v = cw_registry_pinned(registry, name, fleet, errstr, errstr_size);
        if (v < 0) goto done;
        pinned = v > 0;
        if (pinned && !version_exists(registry, name, v)) {
            cw_seterr(errstr, errstr_size, "fleet '%s' is pinned to version %" PRId64
                      " of model '%s', which is missing", fleet, v, name);
            goto done;
        }
    }
    if (v == 0) {
        v = cw_registry_current(registry, name, errstr, errstr_size);
        if (v < 0) goto done;
        if (v > 0 && !version_exists(registry, name, v)) {
            cw_seterr(errstr, errstr_size, "the current version %" PRId64 " of model '%s' is missing", v, name);
            goto done;
        }
    }
    if (v == 0) {
        v = highest_version(registry, name, errstr, errstr_size);
        if (v < 0) goto done;
        if (v == 0) {
            cw_seterr(errstr, errstr_size, "model '%s' has no versions in %s", name, registry);
            goto done;
        }
    }
    if (require_version(registry, name, v, errstr, errstr_size) != 0) goto done;
    if (path_out) *path_out = cw_registry_path(registry, name, v, "model.cwm");
    if (version_out) *version_out = v;
    if (pinned_out) *pinned_out = pinned;
    if (name_out) {
        *name_out = name;
        name = NULL;
    }
    rc = 0;
done:
    cw_free(name);
    return rc;
}

int cw_registry_resolve(const char *registry, const char *ref, char **name_out,
                        int64_t *version_out, char **path_out, char *errstr, size_t errstr_size) {
    return cw_registry_resolve_fleet(registry, ref, NULL, name_out, version_out, path_out, NULL,
                                     errstr, errstr_size);
}

cw_model_t *cw_registry_load(const char *registry, const char *ref, int64_t *version_out,
                             char *errstr, size_t errstr_size) {
    char *path = NULL;
    if (cw_registry_resolve(registry, ref, NULL, version_out, &path, errstr, errstr_size) != 0)
        return NULL;
    cw_model_t *m = cw_ckpt_read(path, errstr, errstr_size);
    cw_free(path);
    return m;
}

/* ---- pins --------------------------------------------------------------- */

static char *pin_path(const char *registry, const char *name, const char *fleet) {
    char *mdir = model_dir(registry, name);
    char *p = path_join(mdir, "pins", fleet);
    cw_free(mdir);
    return p;
}

static int64_t read_pin_file(const char *path, char *errstr, size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return 0;
    if (cw_file_read_all(path, &buf, &len, errstr, errstr_size) != 0) return -1;
    size_t n = 0;
    while (n < len && buf[n] >= '0' && buf[n] <= '9') n++;
    int64_t v = parse_version(buf, n);
    if (v == 0 || !(n == len || (n + 1 == len && buf[n] == '\n'))) {
        cw_seterr(errstr, errstr_size, "%s: unreadable (expected a version number)", path);
        v = -1;
    }
    cw_free(buf);
    return v;
}

int64_t cw_registry_pinned(const char *registry, const char *name, const char *fleet,
                           char *errstr, size_t errstr_size) {
    if (check_name(name, errstr, errstr_size) != 0 || check_fleet(fleet, errstr, errstr_size) != 0)
        return -1;
    char *p = pin_path(registry, name, fleet);
    int64_t v = read_pin_file(p, errstr, errstr_size);
    cw_free(p);
    return v;
}

int cw_registry_pin(const char *registry, const char *name, const char *fleet, int64_t version,
                    char *errstr, size_t errstr_size) {
    int rc = -1, lock;
    char *dir = NULL, *p = NULL;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0 ||
        check_fleet(fleet, errstr, errstr_size) != 0)
        return -1;
    if ((lock = lock_model(registry, name, errstr, errstr_size)) < 0) return -1;
    if (require_version(registry, name, version, errstr, errstr_size) != 0) goto done;
    dir = path_join(registry, name, "pins");
    if (cw_mkdir_p(dir, errstr, errstr_size) != 0) goto done;
    p = pin_path(registry, name, fleet);
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", version);
    rc = cw_file_write_atomic(p, buf, (size_t)n, errstr, errstr_size);
done:
    close(lock);
    cw_free(dir);
    cw_free(p);
    return rc;
}

int cw_registry_unpin(const char *registry, const char *name, const char *fleet,
                      char *errstr, size_t errstr_size) {
    int rc = -1, lock;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0 ||
        check_fleet(fleet, errstr, errstr_size) != 0)
        return -1;
    if ((lock = lock_model(registry, name, errstr, errstr_size)) < 0) return -1;
    char *p = pin_path(registry, name, fleet);
    char *dir = path_join(registry, name, "pins");
    if (unlink(p) == 0) {
        rc = cw_fsync_dir(dir, errstr, errstr_size) == 0 ? 1 : -1;
    } else if (errno == ENOENT) {
        rc = 0;
    } else {
        cw_seterr(errstr, errstr_size, "unlink %s: %s", p, strerror(errno));
    }
    close(lock);
    cw_free(p);
    cw_free(dir);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cw_registry_pins(const char *registry, const char *name, char ***fleets, int64_t **versions,
                     size_t *n, char *errstr, size_t errstr_size) {
    *fleets = NULL;
    *versions = NULL;
    *n = 0;
    if (model_must_exist(registry, name, errstr, errstr_size) != 0) return -1;
    char *dir = path_join(registry, name, "pins");
    DIR *d = opendir(dir);
    size_t cap = 0;
    int rc = 0;
    if (!d) {
        if (errno != ENOENT) {
            cw_seterr(errstr, errstr_size, "%s: %s", dir, strerror(errno));
            rc = -1;
        }
        cw_free(dir);
        return rc;
    }
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* Fleet names have no '.', so this also skips temporary files. */
        if (!name_ok(e->d_name, 0)) continue;
        cw_grow((void **)&names, &cap, *n + 1, sizeof(char *));
        names[(*n)++] = cw_strdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(names, *n, sizeof(char *), cmp_str);
    int64_t *vs = cw_malloc((*n ? *n : 1) * sizeof(int64_t));
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        char *p = path_join(dir, names[i], NULL);
        int64_t v = rc == 0 ? read_pin_file(p, errstr, errstr_size) : 0;
        cw_free(p);
        if (v < 0) rc = -1;
        if (v > 0) { /* 0: unpinned since readdir */
            names[kept] = names[i];
            vs[kept++] = v;
        } else {
            cw_free(names[i]);
        }
    }
    *n = kept;
    cw_free(dir);
    if (rc != 0) {
        cw_registry_pins_free(names, vs, *n);
        *n = 0;
        return -1;
    }
    *fleets = names;
    *versions = vs;
    return 0;
}

void cw_registry_pins_free(char **fleets, int64_t *versions, size_t n) {
    for (size_t i = 0; fleets && i < n; i++) cw_free(fleets[i]);
    cw_free(fleets);
    cw_free(versions);
}

/* ---- gc ------------------------------------------------------------------ */

/* Staging directories ".tmp-PID-..." whose publisher is gone, and ".gc-*"
 * leftovers of an interrupted gc. */
static void gc_leftovers(const char *mdir) {
    DIR *d = opendir(mdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int stale = 0;
        if (!strncmp(e->d_name, ".tmp-", 5)) {
            long pid = strtol(e->d_name + 5, NULL, 10);
            stale = pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        } else if (!strncmp(e->d_name, ".gc-", 4)) {
            long pid = strtol(strrchr(e->d_name, '-') + 1, NULL, 10);
            stale = pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        }
        if (stale) {
            char *p = path_join(mdir, e->d_name, NULL);
            rm_flat_dir(p, NULL, 0);
            cw_free(p);
        }
    }
    closedir(d);
}

int cw_registry_gc(const char *registry, const char *name, size_t keep, int dry_run,
                   int64_t **deleted, size_t *ndeleted, char *errstr, size_t errstr_size) {
    int rc = -1, lock;
    int64_t *vs = NULL, *pins = NULL;
    char **fleets = NULL, *mdir = NULL;
    size_t n = 0, npins = 0, hn = 0;
    int64_t hist[CW_REGISTRY_HISTORY];
    *deleted = NULL;
    *ndeleted = 0;
    if (keep < 1) {
        cw_seterr(errstr, errstr_size, "gc must keep at least 1 version");
        return -1;
    }
    if (model_must_exist(registry, name, errstr, errstr_size) != 0) return -1;
    if ((lock = lock_model(registry, name, errstr, errstr_size)) < 0) return -1;
    if (cw_registry_list(registry, name, &vs, &n, errstr, errstr_size) != 0) goto done;
    if (history_read(registry, name, hist, &hn, errstr, errstr_size) != 0) goto done;
    if (cw_registry_pins(registry, name, &fleets, &pins, &npins, errstr, errstr_size) != 0) goto done;
    int64_t current = hn ? hist[0] : 0;
    size_t pi = previous_index(registry, name, hist, hn);
    int64_t last_good = pi ? hist[pi] : 0;
    mdir = model_dir(registry, name);
    *deleted = cw_malloc((n ? n : 1) * sizeof(int64_t));
    for (size_t i = 0; i + keep < n; i++) { /* all but the newest keep */
        int64_t v = vs[i];
        int protect = v == current || v == last_good;
        for (size_t k = 0; k < npins; k++) protect |= pins[k] == v;
        if (protect) continue;
        if (!dry_run) {
            char vname[32], gname[96];
            snprintf(vname, sizeof(vname), "%" PRId64, v);
            snprintf(gname, sizeof(gname), ".gc-%" PRId64 "-%ld", v, (long)getpid());
            char *from = path_join(mdir, vname, NULL), *to = path_join(mdir, gname, NULL);
            /* Rename first: the version disappears whole, then its files go. */
            int r = rename(from, to);
            if (r != 0) cw_seterr(errstr, errstr_size, "rename %s -> %s: %s", from, to, strerror(errno));
            cw_free(from);
            if (r == 0 && cw_fsync_dir(mdir, errstr, errstr_size) != 0) r = -1;
            if (r == 0) r = rm_flat_dir(to, errstr, errstr_size);
            cw_free(to);
            if (r != 0) goto done;
        }
        (*deleted)[(*ndeleted)++] = v;
    }
    if (!dry_run) gc_leftovers(mdir);
    rc = 0;
done:
    close(lock);
    if (rc != 0) {
        cw_free(*deleted);
        *deleted = NULL;
    }
    cw_free(vs);
    cw_free(mdir);
    cw_registry_pins_free(fleets, pins, npins);
    return rc;
}

/* ---- meta.json ------------------------------------------------------------ */

typedef struct {
    const char *src;
    cw_registry_meta_t *meta;
} meta_ctx_t;

static void meta_add_metric(meta_ctx_t *c, const char *name, double v) {
    cw_registry_meta_t *m = c->meta;
    /* A handful of metrics: growing by one is fine. */
    m->metric_names = cw_realloc(m->metric_names, (m->nmetrics + 1) * sizeof(char *));
    m->metric_values = cw_realloc(m->metric_values, (m->nmetrics + 1) * sizeof(double));
    m->metric_names[m->nmetrics] = cw_strdup(name);
    m->metric_values[m->nmetrics++] = v;
}

static int is_number_start(char ch) { return ch == '-' || (ch >= '0' && ch <= '9'); }

static int meta_metrics_member(const char *key, size_t vstart, size_t vend, size_t kstart, void *ctx) {
    meta_ctx_t *c = ctx;
    if (!is_number_start(c->src[vstart])) return 0;
    char full[256];
    snprintf(full, sizeof(full), "metrics.%s", key);
    meta_add_metric(c, full, strtod(c->src + vstart, NULL));
    return 0;
}

static int meta_recipe_member(const char *key, size_t vstart, size_t vend, size_t kstart, void *ctx) {
    meta_ctx_t *c = ctx;
    if (strcmp(key, "name") || c->meta->recipe || c->src[vstart] != '"') return 0;
    json_t j = {c->src, vend, vstart};
    return json_string(&j, &c->meta->recipe) == 0 ? 0 : -1;
}

static int64_t json_int_at(const char *s) {
    char *end;
    long long v = strtoll(s, &end, 10);
    return (*end == '.' || *end == 'e' || *end == 'E' || v < 0) ? 0 : (int64_t)v;
}

static int meta_member(const char *key, size_t vstart, size_t vend, size_t kstart, void *ctx) {
    meta_ctx_t *c = ctx;
    cw_registry_meta_t *m = c->meta;
    char first = c->src[vstart];
    json_t j = {c->src, vend, vstart};
    if (!strcmp(key, "version") && is_number_start(first)) {
        m->version = json_int_at(c->src + vstart);
    } else if (!strcmp(key, "parent") && is_number_start(first)) {
        m->parent = json_int_at(c->src + vstart);
    } else if (!strcmp(key, "created_at") && first == '"' && !m->created_at) {
        return json_string(&j, &m->created_at) == 0 ? 0 : -1;
    } else if (!strcmp(key, "recipe") && first == '"' && !m->recipe) {
        return json_string(&j, &m->recipe) == 0 ? 0 : -1;
    } else if (!strcmp(key, "recipe") && first == '{') {
        return json_object(&j, 1, meta_recipe_member, c) == 0 ? 0 : -1;
    } else if (!strcmp(key, "metrics") && first == '{') {
        return json_object(&j, 1, meta_metrics_member, c) == 0 ? 0 : -1;
    } else if (strstr(key, "accuracy") && is_number_start(first)) {
        meta_add_metric(c, key, strtod(c->src + vstart, NULL));
    }
    return 0;
}

int cw_registry_meta_read(const char *registry, const char *name, int64_t version,
                          cw_registry_meta_t *meta, char *errstr, size_t errstr_size) {
    memset(meta, 0, sizeof(*meta));
    if (check_name(name, errstr, errstr_size) != 0) return -1;
    char *p = cw_registry_path(registry, name, version, "meta.json");
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    if (cw_file_read_all(p, &buf, &len, errstr, errstr_size) != 0) goto done;
    meta->json = buf;
    meta_ctx_t c = {buf, meta};
    if (json_walk(buf, len, meta_member, &c, p, errstr, errstr_size) != 0) goto done;
    rc = 0;
done:
    if (rc != 0) cw_registry_meta_clear(meta);
    cw_free(p);
    return rc;
}

void cw_registry_meta_clear(cw_registry_meta_t *meta) {
    if (!meta) return;
    cw_free(meta->created_at);
    cw_free(meta->recipe);
    for (size_t i = 0; i < meta->nmetrics; i++) cw_free(meta->metric_names[i]);
    cw_free(meta->metric_names);
    cw_free(meta->metric_values);
    cw_free(meta->json);
    memset(meta, 0, sizeof(*meta));
}
