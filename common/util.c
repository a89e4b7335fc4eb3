/* util.c: allocation, time, files, random numbers, hashes. See util.h. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

static void cw_oom(size_t n) {
    fprintf(stderr, "catwire: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cw_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) cw_oom(n);
    return p;
}

void *cw_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) cw_oom(count * size);
    return p;
}

void *cw_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) cw_oom(n);
    return q;
}

char *cw_strdup(const char *s) { return cw_strndup(s, strlen(s)); }

char *cw_strndup(const char *s, size_t n) {
    char *d = cw_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void cw_free(void *p) { free(p); }

void cw_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    *p = cw_realloc(*p, c * elem);
    *cap = c;
}

double cw_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t cw_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cw_seterr(char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (!errstr || errstr_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

int cw_fsync_dir(const char *dir, char *errstr, size_t errstr_size) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) {
        cw_seterr(errstr, errstr_size, "fsync %s: %s", dir, strerror(e));
        return -1;
    }
    return 0;
}

int cw_file_write_atomic(const char *path, const void *data, size_t len,
                         char *errstr, size_t errstr_size) {
    int rc = -1, fd = -1;
    size_t plen = strlen(path);
    char *tmp = cw_malloc(plen + 32);
    char *dir = cw_strdup(path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            cw_seterr(errstr, errstr_size, "write %s: %s", tmp, strerror(errno));
            goto done;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        cw_seterr(errstr, errstr_size, "fsync %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        cw_seterr(errstr, errstr_size, "close %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        cw_seterr(errstr, errstr_size, "rename %s -> %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");
    if (cw_fsync_dir(dir, errstr, errstr_size) != 0) goto done;
    rc = 0;
done:
    if (fd >= 0) close(fd);
    if (rc != 0) unlink(tmp);
    cw_free(tmp);
    cw_free(dir);
    return rc;
}

int cw_file_read_all(const char *path, char **out, size_t *len,
                     char *errstr, size_t errstr_size) {
    int rc = -1;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        cw_grow((void **)&buf, &cap, n + 65536 + 1, 1);
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        cw_seterr(errstr, errstr_size, "read %s: %s", path, strerror(errno));
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
done:
    fclose(f);
    cw_free(buf);
    return rc;
}

int cw_mkdir_p(const char *path, char *errstr, size_t errstr_size) {
    char *p = cw_strdup(path);
    int rc = -1;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                cw_seterr(errstr, errstr_size, "mkdir %s: %s", p, strerror(errno));
                goto done;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    rc = 0;
done:
    cw_free(p);
    return rc;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cw_rng_seed(cw_rng_t *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cw_rng_next(cw_rng_t *rng) {
    uint64_t *s = rng->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

uint64_t cw_rng_below(cw_rng_t *rng, uint64_t n) {
    /* Rejection sampling: unbiased for every n. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = cw_rng_next(rng); while (x >= lim);
    return x % n;
}

double cw_rng_unit(cw_rng_t *rng) { return (double)(cw_rng_next(rng) >> 11) * 0x1.0p-53; }

uint64_t cw_fnv1a64(const void *data, size_t len, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

uint32_t cw_crc32c(uint32_t crc, const void *data, size_t len) {
    pthread_once(&crc32c_once, crc32c_init);
    const unsigned char *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
              crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][p[4]] ^ crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^ crc32c_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}
