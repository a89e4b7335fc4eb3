/* checkpoint.c: the .cwm model file, its encoder and its defensive decoder.
 *
 * Format version 1. Every integer is little-endian and fixed-width, written
 * byte by byte (never a struct dump), so a file moves between any hosts.
 *
 *   offset  size  field
 *        0     8  magic "CWMODEL\0"
 *        8     4  u32 format version (1)
 *       12     4  u32 flags (0; a reader refuses bits it does not know)
 *       16     8  u64 file size in bytes, trailing checksum included
 *       24     4  u32 dim
 *       28     4  u32 nlabels
 *       32     4  u32 ngram (1 = words only, up to CW_CKPT_MAX_NGRAM)
 *       36     4  u32 nbuckets (0 when ngram == 1)
 *       40     4  u32 vocab size, "<unk>" (id 0) included
 *       44     4  u32 reserved (0)
 *       48     8  u64 nrows (= vocab size + nbuckets)
 *       56     4  u32 CRC-32C of bytes 0..55 (the header checksum)
 *       60        str tokenizer id ("basic_english")
 *                 str n-gram hash name (CW_CKPT_NGRAM_HASH)
 *                 str x (vocab size - 1): tokens of ids 1.. in id order
 *                 str x nlabels: label names in id order
 *                 f32 x nrows*dim: emb, row-major
 *                 f32 x nlabels*dim: fc_w, row-major
 *                 f32 x nlabels: fc_b
 *   size-4     4  u32 CRC-32C of bytes 0..size-5 (the file checksum)
 *
 *   str = u32 byte length + bytes (no terminator); f32 = IEEE-754 binary32.
 *
 * Why a size field and a header checksum besides the file checksum: they
 * let the reader tell a truncated file ("truncated at byte N") from a
 * corrupted one ("checksum mismatch") instead of reporting both as the
 * latter, and reject a damaged header before trusting any length in it.
 *
 * Order of checks when reading: magic, format version (a newer format may
 * lay out everything after it differently, so this comes before any other
 * field is trusted), header checksum, size (truncation / trailing bytes),
 * file checksum, then a bounds-checked parse of the sections. Every size is
 * compared with the bytes that remain before anything is allocated.
 *
 * Compatibility: a v1 file written by this code is committed under
 * tests/fixtures/ckpt/ and must keep loading in every later version. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define HDR_SIZE 60u
#define HDR_CRC_OFF 56u
#define TOKENIZER_ID "basic_english"

static const uint8_t ckpt_magic[8] = {'C', 'W', 'M', 'O', 'D', 'E', 'L', '\0'};

/* ---- little-endian primitives --------------------------------------- */

static int host_is_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* n floats to/from little-endian bytes: one memcpy on little-endian hosts
 * (the common case, and what keeps a 40k-word load fast), a swap loop else. */
static void put_f32s(uint8_t *dst, const float *src, size_t n) {
    if (host_is_le()) {
        memcpy(dst, src, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        put_u32(dst + 4 * i, u);
    }
}

static void get_f32s(float *dst, const uint8_t *src, size_t n) {
    if (host_is_le()) {
        memcpy(dst, src, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(src + 4 * i);
        memcpy(&dst[i], &u, 4);
    }
}

/* ---- encoder --------------------------------------------------------- */

static uint8_t *put_str(uint8_t *p, const char *s, size_t len) {
    put_u32(p, (uint32_t)len);
    memcpy(p + 4, s, len);
    return p + 4 + len;
}

int cw_ckpt_encode(const cw_model_t *m, void **out, size_t *len, char *errstr, size_t errstr_size) {
    size_t vsize = cw_vocab_size(m->vocab);
    if (vsize < 1 || vsize > UINT32_MAX) {
        cw_seterr(errstr, errstr_size, "cannot write a model with a vocabulary of %zu tokens", vsize);
        return -1;
    }
    if (m->nrows != (uint64_t)vsize + m->nbuckets || m->dim == 0 || m->nlabels == 0 ||
        m->ngram < 1 || m->ngram > CW_CKPT_MAX_NGRAM || (m->ngram == 1 && m->nbuckets != 0)) {
        cw_seterr(errstr, errstr_size,
                  "cannot write an inconsistent model (dim %" PRIu32 ", nlabels %" PRIu32
                  ", ngram %" PRIu32 ", nbuckets %" PRIu32 ", vocab %zu, nrows %" PRIu64 ")",
                  m->dim, m->nlabels, m->ngram, m->nbuckets, vsize, m->nrows);
        return -1;
    }
    size_t total = HDR_SIZE;
    total += 4 + strlen(TOKENIZER_ID) + 4 + strlen(CW_CKPT_NGRAM_HASH);
    for (uint32_t id = 1; id < vsize; id++) {
        size_t tl;
        cw_vocab_token(m->vocab, id, &tl);
        total += 4 + tl;
    }
    for (uint32_t i = 0; i < m->nlabels; i++) {
        size_t ll = strlen(m->labels[i]);
        if (ll == 0 || ll > UINT32_MAX) {
            cw_seterr(errstr, errstr_size, "cannot write label %" PRIu32 ": bad length %zu", i, ll);
            return -1;
        }
        total += 4 + ll;
    }
    size_t nemb = (size_t)m->nrows * m->dim, nfcw = (size_t)m->nlabels * m->dim;
    total += 4 * (nemb + nfcw + m->nlabels) + 4;

    uint8_t *buf = cw_malloc(total);
    memcpy(buf, ckpt_magic, 8);
    put_u32(buf + 8, CW_CKPT_FORMAT_VERSION);
    put_u32(buf + 12, 0);
    put_u64(buf + 16, total);
    put_u32(buf + 24, m->dim);
    put_u32(buf + 28, m->nlabels);
    put_u32(buf + 32, m->ngram);
    put_u32(buf + 36, m->nbuckets);
    put_u32(buf + 40, (uint32_t)vsize);
    put_u32(buf + 44, 0);
    put_u64(buf + 48, m->nrows);
    put_u32(buf + HDR_CRC_OFF, cw_crc32c(0, buf, HDR_CRC_OFF));
    uint8_t *p = buf + HDR_SIZE;
    p = put_str(p, TOKENIZER_ID, strlen(TOKENIZER_ID));
    p = put_str(p, CW_CKPT_NGRAM_HASH, strlen(CW_CKPT_NGRAM_HASH));
    for (uint32_t id = 1; id < vsize; id++) {
        size_t tl;
        const char *t = cw_vocab_token(m->vocab, id, &tl);
        p = put_str(p, t, tl);
    }
    for (uint32_t i = 0; i < m->nlabels; i++) p = put_str(p, m->labels[i], strlen(m->labels[i]));
    put_f32s(p, m->emb, nemb);
    p += 4 * nemb;
    put_f32s(p, m->fc_w, nfcw);
    p += 4 * nfcw;
    put_f32s(p, m->fc_b, m->nlabels);
    p += 4 * (size_t)m->nlabels;
    put_u32(p, cw_crc32c(0, buf, total - 4));
    *out = buf;
    *len = total;
    return 0;
}

int cw_ckpt_write(const cw_model_t *m, const char *path, char *errstr, size_t errstr_size) {
    void *buf = NULL;
    size_t len = 0;
    char err[512];
    if (cw_ckpt_encode(m, &buf, &len, err, sizeof(err)) != 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, err);
        return -1;
    }
    int rc = cw_file_write_atomic(path, buf, len, errstr, errstr_size);
    cw_free(buf);
    return rc;
}

/* ---- decoder --------------------------------------------------------- */

/* A read position over the verified body; every take is bounds-checked
 * against end and a failure sends the caller to its one error exit. */
typedef struct {
    const uint8_t *base;
    size_t pos, end;
} cursor_t;

static const uint8_t *cur_take(cursor_t *c, size_t n) {
    if (c->end - c->pos < n) return NULL;
    const uint8_t *p = c->base + c->pos;
    c->pos += n;
    return p;
}

/* A length-prefixed string; NULL when it runs past the end. */
static const uint8_t *cur_str(cursor_t *c, size_t *len) {
    const uint8_t *l = cur_take(c, 4);
    if (!l) return NULL;
    *len = get_u32(l);
    return cur_take(c, *len);
}

static int str_is(const uint8_t *s, size_t len, const char *want) {
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

cw_model_t *cw_ckpt_decode(const void *data, size_t len, char *errstr, size_t errstr_size) {
    const uint8_t *d = data;
    cw_model_t *m = NULL;
    cw_vocab_t *vocab = NULL;
    char **labels = NULL;
    uint32_t nlabels_parsed = 0;
    cursor_t c = {d, HDR_SIZE, 0};

    /* Magic: compare what is there, so a short foreign file is "not a model". */
    if (memcmp(d, ckpt_magic, len < 8 ? len : 8) != 0) {
        cw_seterr(errstr, errstr_size, "not a catwire model (bad magic)");
        goto done;
    }
    if (len < 12) goto truncated;
    uint32_t version = get_u32(d + 8);
    if (version > CW_CKPT_FORMAT_VERSION) {
        cw_seterr(errstr, errstr_size,
                  "format version %" PRIu32 " is newer than this build supports (%d)", version,
                  CW_CKPT_FORMAT_VERSION);
        goto done;
    }
    if (version == 0) {
        cw_seterr(errstr, errstr_size, "format version 0 is not a valid version");
        goto done;
    }
    if (len < HDR_SIZE) goto truncated;
    uint32_t hcrc = cw_crc32c(0, d, HDR_CRC_OFF);
    if (hcrc != get_u32(d + HDR_CRC_OFF)) {
        cw_seterr(errstr, errstr_size,
                  "checksum mismatch in header (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                  get_u32(d + HDR_CRC_OFF), hcrc);
        goto done;
    }
    uint64_t fsize = get_u64(d + 16);
    if (fsize < HDR_SIZE + 4) {
        cw_seterr(errstr, errstr_size, "corrupt header: file size %" PRIu64 " is too small", fsize);
        goto done;
    }
    if (len < fsize) {
        cw_seterr(errstr, errstr_size, "truncated at byte %zu (the header says %" PRIu64 " bytes)",
                  len, fsize);
        goto done;
    }
    if (len > fsize) {
        cw_seterr(errstr, errstr_size, "%" PRIu64 " unexpected bytes after the end of the model",
                  (uint64_t)(len - fsize));
        goto done;
    }
    uint32_t crc = cw_crc32c(0, d, len - 4), stored = get_u32(d + len - 4);
    if (crc != stored) {
        cw_seterr(errstr, errstr_size,
                  "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")", stored, crc);
        goto done;
    }

    /* The bytes are what the writer wrote; now check that they make sense. */
    uint32_t flags = get_u32(d + 12), dim = get_u32(d + 24), nlabels = get_u32(d + 28);
    uint32_t ngram = get_u32(d + 32), nbuckets = get_u32(d + 36), vsize = get_u32(d + 40);
    uint64_t nrows = get_u64(d + 48);
    if (flags != 0 || get_u32(d + 44) != 0) {
        cw_seterr(errstr, errstr_size, "unsupported flags %08" PRIx32 " in a format %" PRIu32 " file",
                  flags, version);
        goto done;
    }
    if (dim == 0 || nlabels == 0 || vsize == 0 || ngram < 1 || ngram > CW_CKPT_MAX_NGRAM ||
        (ngram == 1 && nbuckets != 0)) {
        cw_seterr(errstr, errstr_size,
                  "inconsistent dimensions: dim %" PRIu32 ", nlabels %" PRIu32 ", ngram %" PRIu32
                  ", nbuckets %" PRIu32 ", vocab size %" PRIu32,
                  dim, nlabels, ngram, nbuckets, vsize);
        goto done;
    }
    if (nrows != (uint64_t)vsize + nbuckets) {
        cw_seterr(errstr, errstr_size,
                  "inconsistent dimensions: nrows %" PRIu64 " != vocab size %" PRIu32
                  " + nbuckets %" PRIu32,
                  nrows, vsize, nbuckets);
        goto done;
    }
    c.end = len - 4;
    /* Sizes against what remains, before any allocation: each string costs at
     * least its 4-byte length, each float 4 bytes. Divisions avoid overflow. */
    uint64_t room = (c.end - c.pos) / 4;
    uint64_t nfloats = 0;
    int absurd = (uint64_t)(vsize - 1) + nlabels > room || nrows > room / dim || nlabels > room / dim;
    if (!absurd) { /* each term is now <= room < 2^62: no overflow */
        nfloats = nrows * dim + (uint64_t)nlabels * dim + nlabels;
        absurd = nfloats + (uint64_t)(vsize - 1) + nlabels > room;
    }
    if (absurd) {
        cw_seterr(errstr, errstr_size,
                  "inconsistent dimensions: %" PRIu64 " rows x %" PRIu32 " dims, %" PRIu32
                  " tokens and %" PRIu32 " labels cannot fit in %zu bytes",
                  nrows, dim, vsize, nlabels, c.end - c.pos);
        goto done;
    }

    size_t sl;
    const uint8_t *s = cur_str(&c, &sl);
    if (!s) goto overrun;
    if (!str_is(s, sl, TOKENIZER_ID)) {
        cw_seterr(errstr, errstr_size, "unsupported tokenizer '%.*s' (this build has '%s')",
                  (int)(sl > 64 ? 64 : sl), (const char *)s, TOKENIZER_ID);
        goto done;
    }
    s = cur_str(&c, &sl);
    if (!s) goto overrun;
    if (!str_is(s, sl, CW_CKPT_NGRAM_HASH)) {
        cw_seterr(errstr, errstr_size, "unsupported n-gram hash '%.*s' (this build has '%s')",
                  (int)(sl > 64 ? 64 : sl), (const char *)s, CW_CKPT_NGRAM_HASH);
        goto done;
    }

    vocab = cw_vocab_new();
    for (uint32_t id = 1; id < vsize; id++) {
        s = cur_str(&c, &sl);
        if (!s) goto overrun;
        if (cw_vocab_push(vocab, (const char *)s, sl) != (int64_t)id) {
            cw_seterr(errstr, errstr_size, "corrupt vocabulary: token %" PRIu32 " is a duplicate", id);
            goto done;
        }
    }

    labels = cw_calloc(nlabels, sizeof(char *));
    for (uint32_t i = 0; i < nlabels; i++) {
        s = cur_str(&c, &sl);
        if (!s) goto overrun;
        if (sl == 0 || memchr(s, '\0', sl)) {
            cw_seterr(errstr, errstr_size, "corrupt label %" PRIu32 ": empty or contains NUL", i);
            goto done;
        }
        labels[i] = cw_strndup((const char *)s, sl);
        nlabels_parsed = i + 1;
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(labels[j], labels[i])) {
                cw_seterr(errstr, errstr_size, "corrupt labels: '%s' appears twice", labels[i]);
                goto done;
            }
    }

    if (c.end - c.pos != nfloats * 4) {
        cw_seterr(errstr, errstr_size,
                  "inconsistent dimensions: weights need %" PRIu64 " bytes, %zu remain", nfloats * 4,
                  c.end - c.pos);
        goto done;
    }
    m = cw_model_new(vocab, dim, (const char *const *)labels, nlabels, ngram, nbuckets);
    vocab = NULL; /* owned by m */
    size_t nemb = (size_t)nrows * dim, nfcw = (size_t)nlabels * dim;
    get_f32s(m->emb, cur_take(&c, 4 * nemb), nemb);
    get_f32s(m->fc_w, cur_take(&c, 4 * nfcw), nfcw);
    get_f32s(m->fc_b, cur_take(&c, 4 * (size_t)nlabels), nlabels);
    goto done;

truncated:
    cw_seterr(errstr, errstr_size, "truncated at byte %zu", len);
    goto done;
overrun:
    cw_seterr(errstr, errstr_size, "corrupt: a section runs past the end of the data at byte %zu",
              c.pos);
done:
    for (uint32_t i = 0; i < nlabels_parsed; i++) cw_free(labels[i]);
    cw_free(labels);
    cw_vocab_destroy(vocab);
    return m;
}

cw_model_t *cw_ckpt_read(const char *path, char *errstr, size_t errstr_size) {
    cw_model_t *m = NULL;
    uint8_t *buf = NULL;
    char err[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cw_seterr(errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        cw_seterr(errstr, errstr_size, "%s: not a regular file", path);
        goto done;
    }
    /* One allocation and read of the known size (no growth copies). */
    size_t size = (size_t)st.st_size, got = 0;
    buf = cw_malloc(size);
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            cw_seterr(errstr, errstr_size, "read %s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0) break; /* shrank under us: decode reports the truncation */
        got += (size_t)r;
    }
    m = cw_ckpt_decode(buf, got, err, sizeof(err));
    if (!m) cw_seterr(errstr, errstr_size, "%s: %s", path, err);
done:
    close(fd);
    cw_free(buf);
    return m;
}
