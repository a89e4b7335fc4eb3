/* test_checkpoint.c: the .cwm format (checkpoint.c).
 *
 * Round trip (bit-exact weights, vocabulary, labels, little-endian layout),
 * refusal of damaged files (a flipped byte at every position, truncation at
 * many points, wrong magic, a newer format with valid checksums, inconsistent
 * dimensions, resealed random mutations that must never crash), the
 * committed v1 fixtures, and the load time of a 40k-word model (printed).
 *
 * With CW_CKPT_WRITE_FIXTURES=DIR set, it (re)writes the fixture files into
 * DIR instead of testing; see tests/fixtures/ckpt/README.md. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "util.h"

#include "check.h"

/* ---- helpers ---------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute both checksums after an edit, so that what is tested is the
 * parser behind them, not the checksum. Layout: checkpoint.c's header. */
static void reseal(uint8_t *b, size_t len) {
    wr32(b + 56, cw_crc32c(0, b, 56));
    wr32(b + len - 4, cw_crc32c(0, b, len - 4));
}

/* Decode and expect a refusal whose message contains want. */
static void expect_refusal(const uint8_t *b, size_t len, const char *want, const char *what) {
    char err[512] = "";
    cw_model_t *m = cw_ckpt_decode(b, len, err, sizeof(err));
    CHECK(m == NULL, "%s: loaded a damaged file", what);
    CHECK(strstr(err, want) != NULL, "%s: error '%s' lacks '%s'", what, err, want);
    cw_model_destroy(m);
}

/* The fixture model: weights from a closed formula (no RNG), so the content
 * a future build must read back is defined here, independent of util.c. */
static const char *const fixture_labels[] = {"World", "Sports", "Business", "Sci/Tech"};
static const char *const fixture_words[] = {"the", ",", ".", "to", "a", "of", "in", "and", "s",
                                            "'", "on", "for", "#39", "(", ")", "reuters", "é",
                                            "straße", "日本", "σ", "😀", "39", "-", "new"};
#define FIXTURE_NWORDS (sizeof(fixture_words) / sizeof(fixture_words[0]))
#define FIXTURE_DIM 6
#define FIXTURE_NGRAM 2
#define FIXTURE_NBUCKETS 16

static float fixture_value(size_t i, uint32_t which) {
    /* Exactly representable values with varied signs and exponents. */
    int k = (int)((i * 37 + which * 11) % 97) - 48;
    return ldexpf((float)k, -(int)((i + which) % 9));
}

static cw_model_t *fixture_model(void) {
    cw_vocab_t *v = cw_vocab_new();
    for (size_t i = 0; i < FIXTURE_NWORDS; i++)
        cw_vocab_push(v, fixture_words[i], strlen(fixture_words[i]));
    cw_model_t *m = cw_model_new(v, FIXTURE_DIM, fixture_labels, 4, FIXTURE_NGRAM, FIXTURE_NBUCKETS);
    for (size_t i = 0; i < m->nrows * m->dim; i++) m->emb[i] = fixture_value(i, 0);
    for (size_t i = 0; i < (size_t)m->nlabels * m->dim; i++) m->fc_w[i] = fixture_value(i, 1);
    for (size_t i = 0; i < m->nlabels; i++) m->fc_b[i] = fixture_value(i, 2);
    return m;
}

/* A random model of the given size; weights include special values whose
 * bits must survive (NaN payload, -0, infinities, a subnormal). */
static cw_model_t *random_model(uint32_t nwords, uint32_t dim, uint32_t nlabels, uint32_t ngram,
                                uint32_t nbuckets, uint64_t seed) {
    cw_vocab_t *v = cw_vocab_new();
    char tok[32];
    for (uint32_t i = 0; i < nwords; i++) {
        int n = snprintf(tok, sizeof(tok), "w%" PRIu32 "x%" PRIu64, i, seed);
        cw_vocab_push(v, tok, (size_t)n);
    }
    char names[16][16];
    const char *lab[16];
    for (uint32_t i = 0; i < nlabels && i < 16; i++) {
        snprintf(names[i], sizeof(names[i]), "label-%" PRIu32, i);
        lab[i] = names[i];
    }
    cw_model_t *m = cw_model_new(v, dim, lab, nlabels, ngram, nbuckets);
    cw_model_init_uniform(m, 0.5f, seed);
    cw_rng_t rng;
    cw_rng_seed(&rng, seed ^ 0x5eed);
    for (uint32_t i = 0; i < nlabels; i++) m->fc_b[i] = (float)cw_rng_unit(&rng) - 0.5f;
    uint32_t specials[] = {0x7fc12345u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x00000001u};
    for (size_t i = 0; i < 5 && i < m->nrows * m->dim; i++) memcpy(&m->emb[i], &specials[i], 4);
    return m;
}

static int models_equal(const cw_model_t *a, const cw_model_t *b, const char *what) {
    int before = failures;
    CHECK(a->dim == b->dim && a->nlabels == b->nlabels && a->ngram == b->ngram &&
              a->nbuckets == b->nbuckets && a->nrows == b->nrows,
          "%s: dims differ", what);
    if (failures != before) return 0;
    CHECK(cw_vocab_size(a->vocab) == cw_vocab_size(b->vocab), "%s: vocab size", what);
    for (uint32_t id = 0; id < cw_vocab_size(a->vocab) && id < cw_vocab_size(b->vocab); id++) {
        size_t la, lb;
        const char *ta = cw_vocab_token(a->vocab, id, &la), *tb = cw_vocab_token(b->vocab, id, &lb);
        if (la != lb || memcmp(ta, tb, la) != 0) {
            CHECK(0, "%s: token %" PRIu32 " differs", what, id);
            break;
        }
        CHECK(cw_vocab_lookup(b->vocab, ta, la) == id, "%s: lookup of token %" PRIu32, what, id);
    }
    for (uint32_t i = 0; i < a->nlabels; i++)
        CHECK(!strcmp(a->labels[i], b->labels[i]), "%s: label %" PRIu32, what, i);
    CHECK(!memcmp(a->emb, b->emb, a->nrows * a->dim * 4), "%s: emb not bit-exact", what);
    CHECK(!memcmp(a->fc_w, b->fc_w, (size_t)a->nlabels * a->dim * 4), "%s: fc_w not bit-exact", what);
    CHECK(!memcmp(a->fc_b, b->fc_b, (size_t)a->nlabels * 4), "%s: fc_b not bit-exact", what);
    return failures == before;
}

/* Byte offsets of the sections of an encoded file (checkpoint.c's layout). */
typedef struct {
    size_t strings, vocab, labels, weights, crc;
} regions_t;

static regions_t find_regions(const uint8_t *b, size_t len) {
    regions_t r;
    uint32_t vsize = rd32(b + 40), nlabels = rd32(b + 28);
    size_t p = 60;
    r.strings = p;
    for (int i = 0; i < 2; i++) p += 4 + rd32(b + p);
    r.vocab = p;
    for (uint32_t i = 1; i < vsize; i++) p += 4 + rd32(b + p);
    r.labels = p;
    for (uint32_t i = 0; i < nlabels; i++) p += 4 + rd32(b + p);
    r.weights = p;
    r.crc = len - 4;
    return r;
}

/* ---- tests ------------------------------------------------------------ */

static void test_round_trip(const char *tmpdir) {
    struct { uint32_t nwords, dim, nlabels, ngram, nbuckets; } cases[] = {
        {0, 1, 1, 1, 0}, {50, 8, 4, 1, 0}, {300, 16, 7, 2, 64}, {1000, 10, 2, 3, 1000},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cw_model_t *m = random_model(cases[k].nwords, cases[k].dim, cases[k].nlabels, cases[k].ngram,
                                     cases[k].nbuckets, 100 + k);
        char err[512] = "", path[1024], what[64];
        snprintf(what, sizeof(what), "round trip %zu", k);
        void *buf = NULL;
        size_t len = 0;
        CHECK(cw_ckpt_encode(m, &buf, &len, err, sizeof(err)) == 0, "%s: encode: %s", what, err);
        cw_model_t *d = cw_ckpt_decode(buf, len, err, sizeof(err));
        CHECK(d != NULL, "%s: decode: %s", what, err);
        if (d) models_equal(m, d, what);
        cw_model_destroy(d);

        snprintf(path, sizeof(path), "%s/rt%zu.cwm", tmpdir, k);
        CHECK(cw_ckpt_write(m, path, err, sizeof(err)) == 0, "%s: write: %s", what, err);
        d = cw_ckpt_read(path, err, sizeof(err));
        CHECK(d != NULL, "%s: read: %s", what, err);
        if (d) models_equal(m, d, what);
        cw_model_destroy(d);
        /* The written file is exactly the encoding. */
        char *fbuf = NULL;
        size_t flen = 0;
        CHECK(cw_file_read_all(path, &fbuf, &flen, err, sizeof(err)) == 0, "%s", err);
        CHECK(flen == len && fbuf && !memcmp(fbuf, buf, len), "%s: file != encoding", what);
        cw_free(fbuf);
        cw_free(buf);
        cw_model_destroy(m);
    }
    char err[512] = "";
    CHECK(cw_ckpt_read("/nonexistent/dir/x.cwm", err, sizeof(err)) == NULL, "missing file loaded");
    CHECK(strstr(err, "/nonexistent/dir/x.cwm") && strstr(err, "No such file"), "missing: '%s'", err);
    CHECK(cw_ckpt_read(tmpdir, err, sizeof(err)) == NULL, "directory loaded");
}

/* The bytes on disk are little-endian at documented offsets, whatever the host. */
static void test_layout(void) {
    cw_model_t *m = fixture_model();
    m->fc_b[3] = 1.0f; /* 0x3f800000 */
    void *vbuf = NULL;
    size_t len = 0;
    char err[512];
    CHECK(cw_ckpt_encode(m, &vbuf, &len, err, sizeof(err)) == 0, "%s", err);
    const uint8_t *b = vbuf;
    CHECK(!memcmp(b, "CWMODEL\0", 8), "magic");
    CHECK(b[8] == 1 && b[9] == 0 && b[10] == 0 && b[11] == 0, "version bytes");
    CHECK(rd32(b + 16) == len && rd32(b + 20) == 0, "file size field");
    CHECK(b[24] == FIXTURE_DIM && rd32(b + 28) == 4 && rd32(b + 32) == FIXTURE_NGRAM &&
              rd32(b + 36) == FIXTURE_NBUCKETS && rd32(b + 40) == FIXTURE_NWORDS + 1,
          "dims");
    CHECK(rd32(b + 48) == FIXTURE_NWORDS + 1 + FIXTURE_NBUCKETS, "nrows");
    CHECK(rd32(b + 60) == 13 && !memcmp(b + 64, "basic_english", 13), "tokenizer id");
    regions_t r = find_regions(b, len);
    CHECK(rd32(b + r.vocab) == 3 && !memcmp(b + r.vocab + 4, "the", 3), "first token");
    CHECK(rd32(b + r.labels) == 5 && !memcmp(b + r.labels + 4, "World", 5), "first label");
    const uint8_t one_le[4] = {0x00, 0x00, 0x80, 0x3f};
    CHECK(!memcmp(b + len - 8, one_le, 4), "last fc_b as LE float32");
    CHECK(rd32(b + len - 4) == cw_crc32c(0, b, len - 4), "trailing crc");
    size_t nfloats = (size_t)(FIXTURE_NWORDS + 1 + FIXTURE_NBUCKETS) * FIXTURE_DIM + 4 * FIXTURE_DIM + 4;
    CHECK(r.weights + 4 * nfloats == len - 4, "weights section size");
    cw_free(vbuf);
    cw_model_destroy(m);
}

static void test_flipped_bytes(void) {
    cw_model_t *m = random_model(20, 4, 3, 2, 8, 7);
    void *vbuf = NULL;
    size_t len = 0;
    char err[512], what[96];
    CHECK(cw_ckpt_encode(m, &vbuf, &len, err, sizeof(err)) == 0, "%s", err);
    uint8_t *b = vbuf;
    regions_t r = find_regions(b, len);
    size_t counted[6] = {0};
    const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t k = 0; k < sizeof(masks); k++) {
            const char *want;
            int region;
            if (pos < 8) want = "not a catwire model", region = 0;
            else if (pos < 12) want = "format version", region = 1;
            else if (pos < 60) want = "checksum mismatch in header", region = 2;
            else if (pos < r.weights) want = "checksum mismatch", region = 3;
            else if (pos < r.crc) want = "checksum mismatch", region = 4;
            else want = "checksum mismatch", region = 5;
            b[pos] ^= masks[k];
            snprintf(what, sizeof(what), "byte %zu ^ 0x%02x (region %d)", pos, masks[k], region);
            expect_refusal(b, len, want, what);
            b[pos] ^= masks[k];
            counted[region]++;
        }
    }
    for (int i = 0; i < 6; i++) CHECK(counted[i] > 0, "region %d never flipped", i);
    /* The untouched buffer still loads: the flips were the only damage. */
    cw_model_t *d = cw_ckpt_decode(b, len, err, sizeof(err));
    CHECK(d != NULL, "pristine buffer: %s", err);
    cw_model_destroy(d);
    printf("flipped bytes: %zu positions x %zu masks refused\n", len, sizeof(masks));
    cw_free(vbuf);
    cw_model_destroy(m);
}

static void test_truncation(void) {
    cw_model_t *m = random_model(30, 5, 4, 2, 10, 9);
    void *vbuf = NULL;
    size_t len = 0;
    char err[512], want[64], what[64];
    CHECK(cw_ckpt_encode(m, &vbuf, &len, err, sizeof(err)) == 0, "%s", err);
    const uint8_t *b = vbuf;
    regions_t r = find_regions(b, len);
    size_t cuts[] = {0, 1, 4, 7, 8, 11, 12, 30, 56, 59, 60, r.strings + 5, r.vocab + 1,
                     (r.vocab + r.labels) / 2, r.labels + 2, r.weights, r.weights + 3,
                     (r.weights + r.crc) / 2, r.crc, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        /* A copy of exactly cut bytes, so a read past it is caught by ASan too. */
        uint8_t *t = cw_malloc(cuts[i] ? cuts[i] : 1);
        memcpy(t, b, cuts[i]);
        snprintf(want, sizeof(want), "truncated at byte %zu", cuts[i]);
        snprintf(what, sizeof(what), "cut at %zu of %zu", cuts[i], len);
        expect_refusal(t, cuts[i], want, what);
        cw_free(t);
    }
    /* Bytes after the end are refused too (a file is exactly its declared size). */
    uint8_t *t = cw_malloc(len + 3);
    memcpy(t, b, len);
    memset(t + len, 0, 3);
    expect_refusal(t, len + 3, "3 unexpected bytes after the end", "trailing bytes");
    cw_free(t);
    cw_free(vbuf);
    cw_model_destroy(m);
}

static void test_foreign_and_newer(void) {
    cw_model_t *m = random_model(10, 3, 2, 1, 0, 11);
    void *vbuf = NULL;
    size_t len = 0;
    char err[512];
    CHECK(cw_ckpt_encode(m, &vbuf, &len, err, sizeof(err)) == 0, "%s", err);
    uint8_t *b = vbuf;

    uint8_t *t = cw_malloc(len);
    memcpy(t, b, len);
    memcpy(t, "XXMODEL\0", 8);
    reseal(t, len);
    expect_refusal(t, len, "not a catwire model", "wrong magic");
    const char *text = "label,title,description\n";
    expect_refusal((const uint8_t *)text, strlen(text), "not a catwire model", "a CSV file");
    expect_refusal((const uint8_t *)"CW", 2, "truncated at byte 2", "magic prefix only");

    /* A newer format with valid checksums: the version is what refuses it. */
    memcpy(t, b, len);
    wr32(t + 8, 2);
    reseal(t, len);
    cw_model_t *d = cw_ckpt_decode(t, len, err, sizeof(err));
    CHECK(d == NULL && !strcmp(err, "format version 2 is newer than this build supports (1)"),
          "newer: '%s'", err);
    cw_model_destroy(d);
    /* ... even when the rest of it is something this build cannot parse. */
    memset(t + 12, 0xab, len - 12);
    expect_refusal(t, len, "format version 2 is newer", "newer, alien body");

    /* Valid checksums over inconsistent dimensions: refused, no huge allocation. */
    struct { size_t off; uint64_t val; int wide; const char *want; } bad[] = {
        {48, 0, 1, "nrows 0 != vocab size"},                       /* nrows */
        {24, 0, 0, "inconsistent dimensions"},                     /* dim 0 */
        {24, 0x7fffffff, 0, "cannot fit"},                         /* absurd dim */
        {24, 4, 0, "inconsistent dimensions: weights need"},       /* dim one too big */
        {28, 0, 0, "inconsistent dimensions"},                     /* nlabels 0 */
        {28, 0xffffffff, 0, "cannot fit"},                         /* absurd nlabels */
        {40, 0xfffffff0, 0, "!= vocab size"},                      /* vocab vs nrows */
        {32, 9, 0, "inconsistent dimensions"},                     /* ngram too large */
        {12, 1, 0, "unsupported flags"},
        {44, 1, 0, "unsupported flags"},
        {16, 10, 1, "file size 10 is too small"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(t, b, len);
        if (bad[i].wide) wr64(t + bad[i].off, bad[i].val);
        else wr32(t + bad[i].off, (uint32_t)bad[i].val);
        reseal(t, len);
        char what[64];
        snprintf(what, sizeof(what), "bad field at %zu = %" PRIu64, bad[i].off, bad[i].val);
        expect_refusal(t, len, bad[i].want, what);
    }
    /* Absurd vocab size with nrows to match: refused before pushing tokens. */
    memcpy(t, b, len);
    wr32(t + 40, 0xfffffff0u);
    wr64(t + 48, 0xfffffff0u);
    reseal(t, len);
    expect_refusal(t, len, "cannot fit", "absurd vocab size");

    regions_t r = find_regions(b, len);
    /* A foreign tokenizer id and a duplicate token, resealed. */
    memcpy(t, b, len);
    t[r.strings + 4] = 'B';
    reseal(t, len);
    expect_refusal(t, len, "unsupported tokenizer 'Basic_english'", "tokenizer id");
    memcpy(t, b, len);
    memcpy(t + r.vocab + 4 + rd32(t + r.vocab) + 4, t + r.vocab + 4, 2); /* w1x11 -> w0x11 */
    reseal(t, len);
    expect_refusal(t, len, "token 2 is a duplicate", "duplicate token");
    memcpy(t, b, len);
    t[r.labels + 4] = '\0';
    reseal(t, len);
    expect_refusal(t, len, "contains NUL", "label with NUL");
    memcpy(t, b, len);
    wr32(t + r.vocab, 0x7fffffff);
    reseal(t, len);
    expect_refusal(t, len, "runs past the end", "token length");
    cw_free(t);
    cw_free(vbuf);
    cw_model_destroy(m);
}

/* Random mutations with both checksums recomputed: the parser alone must
 * refuse or accept each without crashing or reading out of bounds. */
static void test_resealed_mutations(void) {
    cw_model_t *m = random_model(15, 3, 3, 2, 5, 13);
    void *vbuf = NULL;
    size_t len = 0;
    char err[512];
    CHECK(cw_ckpt_encode(m, &vbuf, &len, err, sizeof(err)) == 0, "%s", err);
    uint8_t *t = cw_malloc(len);
    cw_rng_t rng;
    cw_rng_seed(&rng, 42);
    size_t refused = 0, loaded = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(t, vbuf, len);
        int nmut = 1 + (int)cw_rng_below(&rng, 4);
        for (int k = 0; k < nmut; k++) {
            size_t pos = 12 + cw_rng_below(&rng, len - 16);
            if (pos >= 16 && pos < 24) continue; /* keep the size field: parse, not truncation */
            t[pos] = (uint8_t)cw_rng_next(&rng);
        }
        reseal(t, len);
        cw_model_t *d = cw_ckpt_decode(t, len, err, sizeof(err));
        if (d) {
            loaded++;
            CHECK(d->nrows == cw_vocab_size(d->vocab) + d->nbuckets, "accepted an inconsistent model");
        } else {
            refused++;
            CHECK(err[0] != '\0', "refusal without a message");
        }
        cw_model_destroy(d);
    }
    printf("resealed mutations: %zu refused, %zu loaded (weights-only changes), no crash\n", refused,
           loaded);
    CHECK(refused > 0 && loaded > 0, "mutation test did not exercise both outcomes");
    cw_free(t);
    cw_free(vbuf);
    cw_model_destroy(m);
}

static const char *const corrupt_fixtures[][2] = {
    {"v1-small.flipped.cwm", "checksum mismatch"},
    {"v1-small.truncated.cwm", "truncated at byte"},
    {"v1-small.badmagic.cwm", "not a catwire model"},
    {"v1-small.newer.cwm", "format version 2 is newer than this build supports"},
};

static int write_fixtures(const char *dir) {
    char err[512], path[1024];
    cw_model_t *m = fixture_model();
    void *vbuf = NULL;
    size_t len = 0;
    int rc = 1;
    if (cw_ckpt_encode(m, &vbuf, &len, err, sizeof(err)) != 0) goto done;
    uint8_t *b = vbuf;
    snprintf(path, sizeof(path), "%s/v1-small.cwm", dir);
    if (cw_file_write_atomic(path, b, len, err, sizeof(err)) != 0) goto done;
    regions_t r = find_regions(b, len);
    uint8_t *t = cw_malloc(len);
    for (size_t i = 0; i < 4; i++) {
        memcpy(t, b, len);
        size_t tlen = len;
        if (i == 0) t[r.weights + 10] ^= 0x04;
        if (i == 1) tlen = (r.weights + len) / 2;
        if (i == 2) memcpy(t, "PK\3\4", 4);
        if (i == 3) {
            wr32(t + 8, 2);
            reseal(t, len);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, corrupt_fixtures[i][0]);
        if (cw_file_write_atomic(path, t, tlen, err, sizeof(err)) != 0) {
            cw_free(t);
            goto done;
        }
    }
    cw_free(t);
    printf("wrote fixtures to %s\n", dir);
    rc = 0;
done:
    if (rc) fprintf(stderr, "writing fixtures: %s\n", err);
    cw_free(vbuf);
    cw_model_destroy(m);
    return rc;
}

/* Committed files written by earlier builds must load forever. */
static void test_committed_fixtures(void) {
    char err[512] = "", path[1024];
    snprintf(path, sizeof(path), "%s/ckpt/v1-small.cwm", CW_TEST_FIXTURES);
    cw_model_t *d = cw_ckpt_read(path, err, sizeof(err));
    CHECK(d != NULL, "committed v1 fixture: %s", err);
    if (d) {
        cw_model_t *want = fixture_model();
        models_equal(want, d, "v1 fixture");
        CHECK(cw_vocab_lookup(d->vocab, "straße", strlen("straße")) == 18, "utf-8 token id");
        CHECK(cw_model_label_id(d, "Sci/Tech") == 3, "label id");
        /* While the writer still speaks v1, it must reproduce the file byte for
         * byte: an accidental format change fails here, not in production. */
        if (CW_CKPT_FORMAT_VERSION == 1) {
            void *enc = NULL;
            size_t elen = 0;
            char *file = NULL;
            size_t flen = 0;
            CHECK(cw_ckpt_encode(want, &enc, &elen, err, sizeof(err)) == 0, "%s", err);
            CHECK(cw_file_read_all(path, &file, &flen, err, sizeof(err)) == 0, "%s", err);
            CHECK(file && elen == flen && !memcmp(enc, file, flen),
                  "the v1 writer no longer reproduces the committed fixture");
            cw_free(enc);
            cw_free(file);
        }
        cw_model_destroy(want);
    }
    cw_model_destroy(d);
    for (size_t i = 0; i < sizeof(corrupt_fixtures) / sizeof(corrupt_fixtures[0]); i++) {
        snprintf(path, sizeof(path), "%s/ckpt/%s", CW_TEST_FIXTURES, corrupt_fixtures[i][0]);
        d = cw_ckpt_read(path, err, sizeof(err));
        CHECK(d == NULL, "%s loaded", corrupt_fixtures[i][0]);
        CHECK(strstr(err, corrupt_fixtures[i][1]) && strstr(err, corrupt_fixtures[i][0]),
              "%s: '%s'", corrupt_fixtures[i][0], err);
        cw_model_destroy(d);
    }
}

/* The 40k-word model of the issue; timed, not asserted (shared machines). */
static void test_load_time(const char *tmpdir) {
    const uint32_t nwords = 40000, dim = 64, nbuckets = 100000;
    cw_model_t *m = random_model(nwords, dim, 4, 2, nbuckets, 17);
    char err[512], path[1024];
    snprintf(path, sizeof(path), "%s/big.cwm", tmpdir);
    double t0 = cw_now_s();
    CHECK(cw_ckpt_write(m, path, err, sizeof(err)) == 0, "%s", err);
    double t1 = cw_now_s();
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double s = cw_now_s();
        cw_model_t *d = cw_ckpt_read(path, err, sizeof(err));
        double e = cw_now_s() - s;
        CHECK(d != NULL, "big model: %s", err);
        if (i == 0 && d) models_equal(m, d, "40k model");
        cw_model_destroy(d);
        if (e < best) best = e;
    }
    struct stat st;
    stat(path, &st);
    printf("40k words + %" PRIu32 " buckets, dim %" PRIu32 " (%.1f MB): write %.3f s, load %.3f s\n",
           nbuckets, dim, (double)st.st_size / 1e6, t1 - t0, best);
    unlink(path);
    cw_model_destroy(m);
}

static void rm_tmpdir(const char *dir) {
    char path[1024];
    for (int k = 0; k < 8; k++) {
        snprintf(path, sizeof(path), "%s/rt%d.cwm", dir, k);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    const char *fx = getenv("CW_CKPT_WRITE_FIXTURES");
    if (fx && *fx) return write_fixtures(fx);

    char tmpdir[] = "/tmp/cw_test_ckpt.XXXXXX";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_layout();
    test_round_trip(tmpdir);
    test_flipped_bytes();
    test_truncation();
    test_foreign_and_newer();
    test_resealed_mutations();
    test_committed_fixtures();
    test_load_time(tmpdir);
    rm_tmpdir(tmpdir);
    if (failures) {
        fprintf(stderr, "test_checkpoint: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_checkpoint: ok\n");
    return 0;
}
