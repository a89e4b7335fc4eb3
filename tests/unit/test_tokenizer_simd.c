/* test_tokenizer_simd.c: the tokenizer's SIMD paths (the plain-ASCII block
 * path, 32 bytes a block with AVX2 and 16 with SSE2, and the word-run
 * blocks) against its scalar path, which alone defines the result, on
 * random texts built to cross 16- and 32-byte block edges in every way:
 * words, separators and punctuation of every kind, runs longer than a block,
 * and (in half the texts) the bytes that end the plain path (", <, "<br />",
 * UTF-8 and invalid bytes) at random points.
 *
 * The scalar reference is the same source file compiled here a second time
 * with CW_TOKENIZER_NO_SIMD, under other names; tokenizer_sse2.c compiles it
 * a third time without the AVX2 path. The library's cw_tokenize takes the
 * AVX2 path where the CPU has AVX2 (the output says whether it did). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer.h"

#define CW_TOKENIZER_NO_SIMD
#define cw_tokenize cw_tokenize_scalar
#define cw_tokens_init cw_tokens_init_scalar
#define cw_tokens_free cw_tokens_free_scalar
#include "../../common/tokenizer.c"
#undef cw_tokenize
#undef cw_tokens_init
#undef cw_tokens_free

/* tokenizer_sse2.c */
void cw_tokenize_sse2(const char *text, size_t len, cw_tokens_t *t);
void cw_tokens_init_sse2(cw_tokens_t *t);
void cw_tokens_free_sse2(cw_tokens_t *t);

static uint64_t rng_next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Appends one random piece to b (at most 40 bytes). */
static size_t piece(uint64_t *x, char *b, int specials) {
    static const char seps[] = " \t\n\r\v\f\x1c\x1d\x1e\x1f;:";
    static const char puncts[] = "'.,()!?";
    static const char others[] = "^`-/#&$%*+=@[]_{}|~\\0123456789\x01\x7f";
    static const char *const special[] = {"\"", "<", "<br />", "<BR />", "<b\"r />", "\xc3\xa9", "\xce\xa3",
                                          "\xe2\x82\xac", "\xff", "\xc3", "\xf0\x9f\x98\x80"};
    uint64_t r = rng_next(x);
    unsigned kind = (unsigned)(r % 100);
    r >>= 8;
    if (kind < 45) { /* a word, sometimes longer than a block, sometimes capitalised */
        size_t n = 1 + (size_t)(r % (r & 0x100 ? 40 : 8));
        for (size_t i = 0; i < n; i++) {
            uint64_t c = rng_next(x);
            b[i] = (char)((c & 7) == 0 ? 'A' + c % 26 : 'a' + (c >> 3) % 26);
        }
        return n;
    }
    if (kind < 70) {
        b[0] = ' ';
        return 1;
    }
    if (kind < 80) {
        b[0] = seps[r % (sizeof seps - 1)];
        return 1;
    }
    if (kind < 90) {
        b[0] = puncts[r % (sizeof puncts - 1)];
        return 1;
    }
    if (kind < 97 || !specials) {
        b[0] = others[r % (sizeof others - 1)];
        return 1;
    }
    const char *s = special[r % (sizeof special / sizeof *special)];
    size_t n = strlen(s);
    memcpy(b, s, n);
    return n;
}

static int same_tokens(const cw_tokens_t *a, const cw_tokens_t *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || memcmp(a->buf + a->start[i], b->buf + b->start[i], a->len[i]) != 0)
            return 0;
    return 1;
}

int main(void) {
    enum { TEXTS = 40000, MAXLEN = 600 };
    static char text[MAXLEN + 48]; /* a piece may start at MAXLEN - 1 */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    cw_tokens_t simd, sse2, ref;
    cw_tokens_init(&simd);
    cw_tokens_init_sse2(&sse2);
    cw_tokens_init_scalar(&ref);
    int bad = 0, bad16 = 0;
    size_t tokens = 0;
    for (int it = 0; it < TEXTS; it++) {
        int specials = it % 2;
        size_t want = (size_t)(rng_next(&x) % (it % 10 == 0 ? MAXLEN : 80)), len = 0;
        while (len < want) len += piece(&x, text + len, specials);
        cw_tokenize(text, len, &simd);
        cw_tokenize_sse2(text, len, &sse2);
        cw_tokenize_scalar(text, len, &ref);
        tokens += ref.n;
        if (!same_tokens(&simd, &ref) && bad++ < 3) {
            fprintf(stderr, "text %d (%zu bytes): SIMD %zu tokens, scalar %zu: \"%.*s\"\n", it, len, simd.n,
                    ref.n, (int)len, text);
        }
        if (!same_tokens(&sse2, &ref) && bad16++ < 3) {
            fprintf(stderr, "text %d (%zu bytes): SSE2 path %zu tokens, scalar %zu: \"%.*s\"\n", it, len,
                    sse2.n, ref.n, (int)len, text);
        }
    }
    CHECK(bad == 0, "%d of %d texts tokenized differently by the SIMD paths", bad, TEXTS);
    CHECK(bad16 == 0, "%d of %d texts tokenized differently by the 16-byte path", bad16, TEXTS);
    CHECK(tokens > 100000, "only %zu tokens compared", tokens);
    cw_tokens_free(&simd);
    cw_tokens_free_sse2(&sse2);
    cw_tokens_free_scalar(&ref);
    if (failures) {
        fprintf(stderr, "test_tokenizer_simd: %d failure(s)\n", failures);
        return 1;
    }
#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
    printf("test_tokenizer_simd: ok (%d texts, %zu tokens; paths: %s)\n", TEXTS, tokens,
           __builtin_cpu_supports("avx2") ? "AVX2 32-byte and SSE2 16-byte"
                                          : "SSE2 16-byte only, this CPU has no AVX2");
#elif defined(__SSE2__)
    printf("test_tokenizer_simd: ok (%d texts, %zu tokens)\n", TEXTS, tokens);
#else
    printf("test_tokenizer_simd: ok (%d texts, %zu tokens; no SSE2 here: both sides are scalar)\n", TEXTS,
           tokens);
#endif
    return 0;
}
