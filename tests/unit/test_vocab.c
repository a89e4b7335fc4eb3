/* test_vocab.c: the vocabulary (vocab.c).
 *
 * torchtext's ordering (count descending, ties by ascending bytes, "<unk>"
 * first and never counted), min_count / max_size, lookups of unknown tokens,
 * push/find for the checkpoint loader, counter merging, growth to many
 * tokens, and the whole vocabulary of sample-1k.csv against the list a
 * Python re-implementation of the notebook wrote
 * (tests/fixtures/vocab/gen_vocab_sample1k.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "tokenizer.h"
#include "util.h"
#include "vocab.h"

#include "check.h"

static void add(cw_vocab_counter_t *c, const char *tok, int times) {
    for (int i = 0; i < times; i++) cw_vocab_counter_add(c, tok, strlen(tok));
}

static int token_is(const cw_vocab_t *v, uint32_t id, const char *want) {
    size_t len = 0;
    const char *t = cw_vocab_token(v, id, &len);
    return t && len == strlen(want) && memcmp(t, want, len) == 0;
}

static void test_order(void) {
    cw_vocab_counter_t *c = cw_vocab_counter_new();
    add(c, "b", 3);
    add(c, "a", 3);
    add(c, "c", 5);
    add(c, "<unk>", 7); /* torchtext deletes specials from the counter */
    add(c, "d", 1);
    add(c, "ab", 3);
    add(c, "\xc3\xa9", 3); /* "é" sorts after every ASCII token */
    add(c, "Z", 3);        /* upper case before lower case */
    cw_vocab_t *v = cw_vocab_build(c, 0, 0);
    const char *want[] = {"<unk>", "c", "Z", "a", "ab", "b", "\xc3\xa9", "d"};
    size_t nwant = sizeof(want) / sizeof(want[0]);
    CHECK(cw_vocab_size(v) == nwant, "size %zu", cw_vocab_size(v));
    for (size_t i = 0; i < nwant; i++) {
        CHECK(token_is(v, (uint32_t)i, want[i]), "id %zu is not '%s'", i, want[i]);
        CHECK(cw_vocab_lookup(v, want[i], strlen(want[i])) == i, "lookup '%s'", want[i]);
        CHECK(cw_vocab_find(v, want[i], strlen(want[i])) == (int64_t)i, "find '%s'", want[i]);
    }
    CHECK(cw_vocab_lookup(v, "zzz", 3) == CW_VOCAB_UNK_ID, "unknown -> 0");
    CHECK(cw_vocab_find(v, "zzz", 3) == -1, "find unknown -> -1");
    uint64_t zpre, zh = cw_hash64_pre("zzz", 3, &zpre);
    CHECK(cw_vocab_lookup_key(v, "zzz", 3, zh, zpre) == CW_VOCAB_UNK_ID, "keyed unknown -> 0");
    CHECK(cw_vocab_lookup(v, "a", 0) == CW_VOCAB_UNK_ID, "empty token -> 0");
    size_t len = 1;
    CHECK(cw_vocab_token(v, 99, &len) == NULL && len == 0, "token of bad id");
    cw_vocab_destroy(v);

    /* min_count 3 drops "d"; max_size counts "<unk>". */
    v = cw_vocab_build(c, 3, 0);
    CHECK(cw_vocab_size(v) == 7, "min_count: size %zu", cw_vocab_size(v));
    CHECK(cw_vocab_find(v, "d", 1) == -1, "min_count keeps d");
    cw_vocab_destroy(v);
    v = cw_vocab_build(c, 0, 3);
    CHECK(cw_vocab_size(v) == 3, "max_size: size %zu", cw_vocab_size(v));
    CHECK(token_is(v, 1, "c") && token_is(v, 2, "Z"), "max_size keeps the most frequent");
    cw_vocab_destroy(v);
    v = cw_vocab_build(c, 0, 1);
    CHECK(cw_vocab_size(v) == 1 && token_is(v, 0, "<unk>"), "max_size 1: only <unk>");
    cw_vocab_destroy(v);
    cw_vocab_counter_destroy(c);

    /* An empty counter gives the "<unk>"-only vocabulary. */
    c = cw_vocab_counter_new();
    v = cw_vocab_build(c, 0, 0);
    CHECK(cw_vocab_size(v) == 1 && token_is(v, 0, "<unk>"), "empty build");
    cw_vocab_destroy(v);
    cw_vocab_counter_destroy(c);
}

static void test_push_merge(void) {
    cw_vocab_t *v = cw_vocab_new();
    CHECK(cw_vocab_size(v) == 1, "new has <unk>");
    CHECK(cw_vocab_push(v, "x", 1) == 1, "push x");
    CHECK(cw_vocab_push(v, "y", 1) == 2, "push y");
    CHECK(cw_vocab_push(v, "x", 1) == -1, "push duplicate");
    CHECK(cw_vocab_push(v, "<unk>", 5) == -1, "push <unk>");
    CHECK(cw_vocab_push(v, "a\0b", 3) == 3, "push with NUL byte");
    CHECK(cw_vocab_find(v, "a\0b", 3) == 3 && cw_vocab_find(v, "a", 1) == -1, "NUL byte is part of token");
    cw_vocab_destroy(v);
    cw_vocab_destroy(NULL);
    cw_vocab_counter_destroy(NULL);

    cw_vocab_counter_t *a = cw_vocab_counter_new(), *b = cw_vocab_counter_new();
    add(a, "p", 2);
    add(a, "q", 1);
    add(b, "q", 3);
    add(b, "r", 2);
    cw_vocab_counter_merge(a, b);
    v = cw_vocab_build(a, 0, 0);
    /* q 4, p 2, r 2 */
    CHECK(token_is(v, 1, "q") && token_is(v, 2, "p") && token_is(v, 3, "r"), "merge counts");
    cw_vocab_destroy(v);
    cw_vocab_counter_destroy(a);
    cw_vocab_counter_destroy(b);
}

static void test_many(void) {
    /* 200k distinct tokens; token i occurs (i % 7) + 1 times. */
    enum { N = 200000 };
    cw_vocab_counter_t *c = cw_vocab_counter_new();
    char buf[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof(buf), "t%d", i);
        for (int k = 0; k <= i % 7; k++) cw_vocab_counter_add(c, buf, (size_t)n);
    }
    cw_vocab_t *v = cw_vocab_build(c, 0, 0);
    CHECK(cw_vocab_size(v) == N + 1, "size %zu", cw_vocab_size(v));
    int bad = 0;
    uint64_t prev_count = 8;
    for (uint32_t id = 1; id <= N; id++) {
        size_t len;
        const char *t = cw_vocab_token(v, id, &len);
        if (cw_vocab_lookup(v, t, len) != id) bad++;
        uint64_t pre, h = cw_hash64_pre(t, len, &pre);
        if (cw_vocab_lookup_key(v, t, len, h, pre) != id) bad++;
        int i = atoi(t + 1);
        uint64_t cnt = (uint64_t)(i % 7) + 1;
        if (cnt > prev_count) bad++;
        prev_count = cnt;
    }
    CHECK(bad == 0, "%d bad ids", bad);
    cw_vocab_destroy(v);
    cw_vocab_counter_destroy(c);
}

/* Tokens that agree with a vocabulary token in their first 8 or 16 bytes, or
 * in everything but the length, must not be taken for it, on the run lookup
 * (the serving path, with its prefetching and key words) as on the plain one. */
static void test_near_misses(void) {
    static const char *const known[] = {
        "a", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq",
        "abcdefghijklmnopqrstuvwxyz0123456789", "zbcdefghijklmnopqrstuvwxyz0123456789", "x123456y",
        "abcdefghmrjwaa", "abcdefghijklmnopdvguaa", /* collide with the last two unknown ones */
    };
    static const char *const unknown[] = {
        "b", "abcdefgz", "abcdefgha", "abcdefghz", "abcdefghijklmnoq", "abcdefghijklmnopz",
        "abcdefghijklmnopqr", "abcdefghijklmnopqrstuvwxyz012345678", "abcdefghijklmnopqrstuvwxyz0123456788",
        "abcdefghijklmnopqrstuvwxyz01234567890", "abcdefghijklmno", "x123456", "x123456yy",
        "abcdefghdaiaaa", "abcdefghijklmnopwbmhaa",
    };
    enum { NK = sizeof known / sizeof *known, NU = sizeof unknown / sizeof *unknown };
    /* Those two pairs have the same length, the same first 8 (16) bytes and
     * the same table hash (vocab.c's fold of cw_hash64; found by a birthday
     * search), so they share a home slot and a tag: only the token's later
     * bytes tell them apart. */
    for (int p = 0; p < 2; p++) {
        const char *x = known[NK - 2 + p], *y = unknown[NU - 2 + p];
        uint64_t hx = cw_hash64(x, strlen(x)), hy = cw_hash64(y, strlen(y));
        CHECK(strlen(x) == strlen(y) && (uint32_t)(hx ^ (hx >> 32)) == (uint32_t)(hy ^ (hy >> 32)),
              "'%s' and '%s' no longer collide", x, y);
    }
    cw_vocab_counter_t *c = cw_vocab_counter_new();
    for (int i = 0; i < NK; i++)
        for (int k = 0; k <= NK - i; k++) cw_vocab_counter_add(c, known[i], strlen(known[i]));
    cw_vocab_t *v = cw_vocab_build(c, 0, 0);
    char text[2048];
    size_t used = 0;
    for (int r = 0; r < 3; r++) { /* more tokens than one prefetch run */
        for (int i = 0; i < NK; i++) used += (size_t)snprintf(text + used, sizeof text - used, "%s ", known[i]);
        for (int i = 0; i < NU; i++) used += (size_t)snprintf(text + used, sizeof text - used, "%s ", unknown[i]);
    }
    cw_tokens_t t;
    cw_tokens_init(&t);
    cw_tokenize(text, used, &t);
    CHECK(t.n == 3 * (NK + NU), "%zu tokens", t.n);
    int32_t ids[3 * (NK + NU)];
    uint64_t hs[3 * (NK + NU)];
    cw_vocab_lookup_run(v, &t, 0, t.n, hs, ids);
    int bad = 0;
    for (size_t j = 0; j < t.n; j++) {
        size_t r = j % (NK + NU);
        const char *want = r < NK ? known[r] : unknown[r - NK];
        int64_t id = cw_vocab_find(v, want, strlen(want));
        if ((r < NK) != (id > 0)) bad++;
        if (ids[j] != (id > 0 ? id : CW_VOCAB_UNK_ID)) {
            if (bad++ < 5) fprintf(stderr, "run lookup of '%s': %d, want %lld\n", want, ids[j], (long long)id);
        }
        if (hs[j] != cw_hash64(want, strlen(want))) bad++;
        if (r < NK && !token_is(v, (uint32_t)id, want)) bad++;
    }
    CHECK(bad == 0, "%d near-miss lookups wrong", bad);
    cw_tokens_free(&t);
    cw_vocab_destroy(v);
    cw_vocab_counter_destroy(c);
}

static void test_sample1k(void) {
    char err[512] = "", path[4096];
    snprintf(path, sizeof(path), "%s/sample-1k.csv", CW_TEST_DATA);
    cw_dataset_opts_t o;
    cw_dataset_opts_init(&o);
    cw_dataset_t *ds = cw_dataset_load(path, &o, err, sizeof(err));
    CHECK(ds != NULL, "load: %s", err);
    if (!ds) return;
    cw_vocab_counter_t *c = cw_vocab_counter_new();
    cw_tokens_t t;
    for (size_t i = 0; i < ds->n; i++) {
        cw_dataset_tokens(ds, i, &t);
        for (size_t k = 0; k < t.n; k++) cw_vocab_counter_add(c, t.buf + t.start[k], t.len[k]);
    }
    cw_vocab_t *v = cw_vocab_build(c, 0, 0);
    snprintf(path, sizeof(path), "%s/vocab/sample1k_vocab.txt", CW_TEST_FIXTURES);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (f) {
        char line[1024];
        uint32_t id = 0;
        int bad = 0;
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\n")] = '\0';
            if (!token_is(v, id, line)) {
                if (bad++ < 5) fprintf(stderr, "id %u: want '%s'\n", id, line);
            }
            id++;
        }
        fclose(f);
        CHECK(bad == 0, "%d ids differ from the Python reference", bad);
        CHECK(id == cw_vocab_size(v), "reference has %u tokens, ours %zu", id, cw_vocab_size(v));
    }
    cw_vocab_destroy(v);
    cw_vocab_counter_destroy(c);
    cw_dataset_destroy(ds);
}

/* The token hash is part of every checkpoint's meaning (n-gram ids,
 * CW_CKPT_NGRAM_HASH v1): pinned values, and the padded variant the
 * featurizer uses equals the plain one, prefix included, at every length. */
static void test_hash(void) {
    CHECK(cw_hash64("", 0) == 0x7fc31562f04b31b4ULL, "hash of \"\": %016llx", (unsigned long long)cw_hash64("", 0));
    CHECK(cw_hash64("news", 4) == 0xea05e50f6b0537d8ULL, "hash of news");
    CHECK(cw_hash64("catwire-classifier", 18) == 0xf0276233041c4b74ULL, "hash of catwire-classifier");
    unsigned char buf[48 + CW_TOKENS_SLACK];
    uint64_t x = 88172645463325252ULL;
    int bad = 0;
    for (int it = 0; it < 20000; it++) {
        size_t len = (size_t)(it % 41);
        for (size_t i = 0; i < sizeof buf; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        uint64_t p1, p2, want = 0;
        for (size_t i = 0; i < len && i < 8; i++) want |= (uint64_t)buf[i] << (8 * i);
        uint64_t a = cw_hash64_pre(buf, len, &p1), b = cw_hash64_pre_padded(buf, len, &p2);
        bad += a != b || a != cw_hash64(buf, len) || p1 != want || p2 != want;
    }
    CHECK(bad == 0, "%d padded/plain hash or prefix mismatches", bad);
}

int main(void) {
    test_hash();
    test_order();
    test_push_merge();
    test_many();
    test_near_misses();
    test_sample1k();
    if (failures) {
        fprintf(stderr, "test_vocab: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_vocab: ok\n");
    return 0;
}
