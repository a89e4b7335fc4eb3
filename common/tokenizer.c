/* tokenizer.c: torchtext's basic_english tokenizer in one pass. See tokenizer.h.
 *
 * torchtext lowercases the line, applies twelve regex substitutions in order,
 * then str.split()s it. Only token boundaries survive the final split, so the
 * substitutions reduce to one action per (lowercased) character:
 *   '  .  ,  (  )  !  ?   a token of its own;
 *   ;  :  and \s           a separator;
 *   "                      deleted: its neighbours join ("a"b" -> ab);
 *   "<br />"               a separator, matched on the text with every " already
 *                          deleted ("<br "/>" matches) and case already folded
 *                          ("<BR />"). The spaces that ' and . insert never form
 *                          part of a match (each sits next to the ' or . it
 *                          pads), and no other step runs before it that could
 *                          create or break one, so the match is taken on the
 *                          original bytes with " skipped and b/r case-folded;
 *   anything else          appended to the current token.
 * The \s+ step collapses whitespace that split() ignores anyway; Python's \s
 * (str patterns) and str.split() use the same predicate, Py_UNICODE_ISSPACE
 * (checked by gen_unicode_lower.py for every code point).
 *
 * Lowercasing is Python's str.lower(): the full mapping from unicode_lower.h
 * (generated from Python itself), U+0130 -> "i" U+0307, and CPython's
 * Final_Sigma rule for U+03A3: it lowers to final sigma U+03C2 when the
 * nearest preceding character that is not case-ignorable is cased and the
 * nearest following one is not cased (or absent); otherwise to U+03C3. Like
 * Python, the context is the whole line, across punctuation and quotes.
 * No character outside ASCII lowers into the ASCII punctuation above (also
 * checked by the generator), so those rules only look at ASCII bytes.
 *
 * Invalid UTF-8 is decoded exactly as Python's bytes.decode("utf-8",
 * errors="replace"): each maximal prefix of a valid sequence that is cut short
 * (or a byte that can start none: 0x80-0xC1, 0xF5-0xFF) becomes one U+FFFD,
 * which is neither space nor cased and is kept in its token as EF BF BD.
 * Overlong forms, surrogates (ED A0-BF ..) and code points above U+10FFFF are
 * invalid in their second byte, so they yield one U+FFFD per byte.
 *
 * Output size: at most 3 bytes per input byte (an invalid byte becomes U+FFFD),
 * so the token buffer is sized once per call and the hot loop writes without
 * bounds checks. On x86-64, runs of plain ASCII word bytes are found and
 * lowercased 16 bytes at a time (SSE2), or 32 where the CPU has AVX2; every
 * other byte takes the scalar path, which alone gives the same result
 * (-DCW_TOKENIZER_NO_SIMD). Offsets are uint32_t, so input beyond CW_TOKENIZE_MAX bytes
 * (1 GiB) is ignored: a deterministic cut, never an overflow. */
#include "tokenizer.h"

#include <string.h>

#include "unicode_lower.h"
#include "util.h"

/* x86-64 always has SSE2; elsewhere (or with -DCW_TOKENIZER_NO_SIMD) the
 * scalar loop does the same work a byte at a time. */
#if defined(__SSE2__) && !defined(CW_TOKENIZER_NO_SIMD)
#define CW_TOKENIZER_SSE2 1
#include <emmintrin.h>
#else
#define CW_TOKENIZER_SSE2 0
#endif
/* The 32-byte plain path, where the compiler can build AVX2 code for a
 * function of its own (GCC and Clang on x86-64) and the CPU has AVX2
 * (__builtin_cpu_supports, per call: one load of what libgcc found at
 * start-up). -DCW_TOKENIZER_NO_AVX2 leaves the 16-byte path alone. */
#if CW_TOKENIZER_SSE2 && defined(__x86_64__) && defined(__GNUC__) && !defined(CW_TOKENIZER_NO_AVX2)
#define CW_TOKENIZER_AVX2 1
#include <immintrin.h>
#else
#define CW_TOKENIZER_AVX2 0
#endif

#define CW_TOKENIZE_MAX ((size_t)1 << 30)

/* Per-byte action (bytes >= 0x80 are all K_HIGH, the zero value). The suffix
 * says what the byte does to the Final_Sigma look-back state: CASED sets it,
 * CI (case-ignorable) leaves it, the others clear it. */
enum {
    K_HIGH = 0,      /* 0x80-0xFF: UTF-8 lead or invalid byte */
    K_WORD_CASED,    /* a-z (A-Z lowered) */
    K_WORD,          /* digits, symbols, controls */
    K_WORD_CI,       /* ^ ` */
    K_PUNCT,         /* , ( ) ! ? */
    K_PUNCT_CI,      /* ' . */
    K_SEP,           /* ; and ASCII whitespace */
    K_SEP_CI,        /* : */
    K_QUOTE,         /* " */
    K_LT             /* < (maybe "<br />") */
};

static const unsigned char ascii_kind[256] = {
    /* 0x00-0x1f: controls are word characters except \t \n \v \f \r, 0x1c-0x1f */
    K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD,
    K_WORD, K_SEP, K_SEP, K_SEP, K_SEP, K_SEP, K_WORD, K_WORD,
    K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD,
    K_WORD, K_WORD, K_WORD, K_WORD, K_SEP, K_SEP, K_SEP, K_SEP,
    /* 0x20: space ! " # $ % & ' ( ) * + , - . / */
    K_SEP, K_PUNCT, K_QUOTE, K_WORD, K_WORD, K_WORD, K_WORD, K_PUNCT_CI,
    K_PUNCT, K_PUNCT, K_WORD, K_WORD, K_PUNCT, K_WORD, K_PUNCT_CI, K_WORD,
    /* 0x30: 0-9 : ; < = > ? */
    K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD,
    K_WORD, K_WORD, K_SEP_CI, K_SEP, K_LT, K_WORD, K_WORD, K_PUNCT,
    /* 0x40: @ A-Z [ \ ] ^ _ */
    K_WORD, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD, K_WORD, K_WORD, K_WORD_CI, K_WORD,
    /* 0x60: ` a-z { | } ~ DEL */
    K_WORD_CI, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED, K_WORD_CASED,
    K_WORD_CASED, K_WORD, K_WORD, K_WORD, K_WORD, K_WORD,
    /* 0x80-0xff: K_HIGH (zero) */
};

/* ASCII lowercase: A-Z -> a-z, every other byte unchanged. */
static const unsigned char ascii_lower[256] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
    0x40, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
    0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
    0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
};

void cw_tokens_init(cw_tokens_t *t) { memset(t, 0, sizeof *t); }

void cw_tokens_free(cw_tokens_t *t) {
    if (!t) return;
    cw_free(t->buf);
    cw_free(t->start);
    cw_free(t->len);
    memset(t, 0, sizeof *t);
}

static void tokens_grow(cw_tokens_t *t) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    t->start = cw_realloc(t->start, cap * sizeof *t->start);
    t->len = cw_realloc(t->len, cap * sizeof *t->len);
    t->cap = cap;
}

static inline void tokens_push(cw_tokens_t *t, size_t start, size_t end) {
    if (t->n == t->cap) tokens_grow(t);
    t->start[t->n] = (uint32_t)start;
    t->len[t->n] = (uint32_t)(end - start);
    t->n++;
}

/* Decode one character at s[0..n) (n >= 1) as Python's errors="replace" does.
 * Returns the bytes consumed; *cp is U+FFFD for an invalid (maximal) subpart. */
static inline size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned b0 = s[0], lo = 0x80, hi = 0xBF;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 < 0xC2 || b0 > 0xF4) goto bad1;
    if (b0 < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) goto bad1;
        *cp = ((b0 & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (b0 == 0xE0) lo = 0xA0;
    else if (b0 == 0xED) hi = 0x9F;
    else if (b0 == 0xF0) lo = 0x90;
    else if (b0 == 0xF4) hi = 0x8F;
    if (n < 2 || s[1] < lo || s[1] > hi) goto bad1;
    if (n < 3 || (s[2] & 0xC0) != 0x80) {
        *cp = 0xFFFD;
        return 2;
    }
    if (b0 < 0xF0) {
        *cp = ((b0 & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        return 3;
    }
    if (n < 4 || (s[3] & 0xC0) != 0x80) {
        *cp = 0xFFFD;
        return 3;
    }
    *cp = ((b0 & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    return 4;
bad1:
    *cp = 0xFFFD;
    return 1;
}

static inline size_t utf8_encode(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#if CW_TOKENIZER_SSE2
/* v with A-Z lowered (every other byte unchanged). */
static inline __m128i lower16(__m128i v) {
    __m128i up = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
    return _mm_or_si128(v, _mm_and_si128(up, _mm_set1_epi8(0x20)));
}

/* Copy 16 bytes from s to o with A-Z lowered, and return a mask with bit j set
 * when s[j] may end a run of plain ASCII word bytes: bytes below 0x23 (space,
 * controls, ! and ") or above 0x7F, and ' ( ) , . : ; < ? ^ `. Only the bytes
 * before the first set bit are meant to be kept. Some of those stop bytes are
 * word bytes (controls, ^, `): the scalar code takes them. */
static inline unsigned word_block16(const unsigned char *s, char *o) {
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    __m128i m = _mm_cmplt_epi8(v, _mm_set1_epi8(0x23)); /* signed: bytes >= 0x80 too */
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('\'')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('(')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(')')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(',')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(':')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(';')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('<')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('?')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('^')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('`')));
    _mm_storeu_si128((__m128i *)o, lower16(v));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* The plain-ASCII fast path. While whole blocks (16 bytes, or 32 with AVX2)
 * hold only ASCII bytes other than " and < (so no byte is deleted, inserted
 * or decoded, and the output is the input lowercased, byte for byte), each
 * block is stored lowercased at the same offset and its boundaries come from
 * two masks: separators (ASCII whitespace as Python's \s, 0x1c-0x1f, ; and :)
 * end the pending token; punctuation (' . , ( ) ! ?) ends it and is a token
 * of its own. Each returns the offset of the first block it did not take;
 * *ts is the start of the pending token. Same tokens as the scalar path,
 * which takes over from there with nothing to undo. */

/* Room for the tokens of one block: each boundary bit pushes at most the
 * pending token and a punctuation token, and a bit's pending token is empty
 * unless it is the block's first boundary, so a block of B bytes pushes at
 * most B + 1; and plain_boundaries writes one slot past what it counts.
 * Checked once per block, so the pushes below need no check. */
#define PLAIN_BLOCK_TOKENS 34

/* The tokens that a block's boundary bits b (punctuation bits pm, a subset)
 * end, the block starting at offset i; returns the pending token's start. */
static inline size_t plain_boundaries(cw_tokens_t *t, uint64_t b, uint64_t pm, size_t i, size_t start) {
    uint32_t *st = t->start, *ln = t->len;
    size_t n = t->n;
    /* Branch-free: both slots are written every time and counted only when
     * they hold a token (whether a boundary follows a word or punctuation is
     * what a branch predictor cannot learn). */
    while (b) {
        unsigned q = (unsigned)__builtin_ctzll(b);
        size_t pos = i + q;
        st[n] = (uint32_t)start;
        ln[n] = (uint32_t)(pos - start);
        n += start < pos;
        st[n] = (uint32_t)pos;
        ln[n] = 1;
        n += (size_t)(pm >> q & 1u);
        start = pos + 1;
        b &= b - 1;
    }
    t->n = n;
    return start;
}

static inline void plain_reserve(cw_tokens_t *t) {
    while (t->cap - t->n < PLAIN_BLOCK_TOKENS) tokens_grow(t);
}

#if CW_TOKENIZER_SSE2
static size_t plain_blocks(const unsigned char *s, size_t len, char *o, cw_tokens_t *t, size_t i, size_t *ts) {
    size_t start = *ts;
    const __m128i zero = _mm_setzero_si128();
    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i special = _mm_or_si128(_mm_cmplt_epi8(v, zero),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('<'))));
        if (_mm_movemask_epi8(special)) break;
        _mm_storeu_si128((__m128i *)(o + i), lower16(v));
        __m128i sep = _mm_or_si128(
            _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x08)), _mm_cmplt_epi8(v, _mm_set1_epi8(0x0e))),
            _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x1b)), _mm_cmplt_epi8(v, _mm_set1_epi8(0x21))));
        sep = _mm_or_si128(sep, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(';')),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8(':'))));
        __m128i pun = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\'')), _mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
        pun = _mm_or_si128(pun, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8('!'))));
        pun = _mm_or_si128(pun, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('(')),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8(')'))));
        pun = _mm_or_si128(pun, _mm_cmpeq_epi8(v, _mm_set1_epi8('?')));
        unsigned pm = (unsigned)_mm_movemask_epi8(pun);
        unsigned b = pm | (unsigned)_mm_movemask_epi8(sep);
        plain_reserve(t);
        start = plain_boundaries(t, b, pm, i, start);
        i += 16;
    }
    *ts = start;
    return i;
}
#endif

#if CW_TOKENIZER_AVX2
/* The same, 32 bytes a block; for CPUs with AVX2 (chosen at run time). */
__attribute__((target("avx2"))) static size_t plain_blocks32(const unsigned char *s, size_t len, char *o,
                                                              cw_tokens_t *t, size_t *ts) {
    size_t i = 0, start = *ts;
    const __m256i zero = _mm256_setzero_si256();
#define EQ32(c) _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c))
#define IN32(lo, hi) _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8((char)((lo) - 1))), \
                                      _mm256_cmpgt_epi8(_mm256_set1_epi8((char)((hi) + 1)), v))
    while (len - i >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i special = _mm256_or_si256(_mm256_cmpgt_epi8(zero, v), _mm256_or_si256(EQ32('"'), EQ32('<')));
        if (_mm256_movemask_epi8(special)) break;
        __m256i up = IN32('A', 'Z');
        _mm256_storeu_si256((__m256i *)(o + i), _mm256_or_si256(v, _mm256_and_si256(up, _mm256_set1_epi8(0x20))));
        __m256i sep = _mm256_or_si256(IN32(0x09, 0x0d), IN32(0x1c, 0x20));
        sep = _mm256_or_si256(sep, _mm256_or_si256(EQ32(';'), EQ32(':')));
        __m256i pun = _mm256_or_si256(_mm256_or_si256(EQ32('\''), EQ32('.')), _mm256_or_si256(EQ32(','), EQ32('!')));
        pun = _mm256_or_si256(pun, _mm256_or_si256(_mm256_or_si256(EQ32('('), EQ32(')')), EQ32('?')));
        uint64_t pm = (uint32_t)_mm256_movemask_epi8(pun);
        uint64_t b = pm | (uint32_t)_mm256_movemask_epi8(sep);
        plain_reserve(t);
        start = plain_boundaries(t, b, pm, i, start);
        i += 32;
    }
#undef EQ32
#undef IN32
    *ts = start;
    return i;
}
#endif

/* Final_Sigma look-ahead: is the first character at or after s[i] that is not
 * case-ignorable a cased one? (No such character: 0.) */
static int next_is_cased(const unsigned char *s, size_t i, size_t len) {
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        unsigned f = cw_uni_flags[cw_uni_rec(cp)];
        if (!(f & CW_UNI_CASE_IGNORABLE)) return (f & CW_UNI_CASED) != 0;
        i += n;
    }
    return 0;
}

/* Does "<br />" (with any " deleted, b and r in either case) start at s[i],
 * which holds '<'? On a match, *end is the index just past the '>'. */
static int match_br(const unsigned char *s, size_t i, size_t len, size_t *end) {
    static const char want[] = "br />";
    i++;
    for (size_t k = 0; k < sizeof want - 1; k++) {
        while (i < len && s[i] == '"') i++;
        if (i == len) return 0;
        unsigned b = s[i];
        if (k < 2 && b >= 'A' && b <= 'Z') b |= 0x20;
        if (b != (unsigned char)want[k]) return 0;
        i++;
    }
    *end = i;
    return 1;
}

void cw_tokenize(const char *text, size_t len, cw_tokens_t *t) {
    const unsigned char *s = (const unsigned char *)text;
    if (len > CW_TOKENIZE_MAX) len = CW_TOKENIZE_MAX;
    /* 16 bytes of slack: the SIMD path stores whole 16-byte blocks (and
     * CW_TOKENS_SLACK, tokenizer.h, is covered). */
    cw_grow((void **)&t->buf, &t->buf_cap, 3 * len + 20, 1);
    t->n = 0;
    char *o = t->buf;
    size_t w = 0;      /* write position in o */
    size_t ts = 0;     /* start of the current token in o */
    int cased = 0;     /* Final_Sigma look-back: last non-case-ignorable char was cased */
    size_t i = 0;
#if CW_TOKENIZER_SSE2
#if CW_TOKENIZER_AVX2
    if (len >= 32 && __builtin_cpu_supports("avx2")) i = plain_blocks32(s, len, o, t, &ts);
#endif
    i = w = plain_blocks(s, len, o, t, i, &ts);
    /* Only ASCII so far: the look-back is the last byte's (^ and ` are
     * case-ignorable: look past them). */
    for (size_t j = i; j > 0; j--) {
        unsigned k = ascii_kind[s[j - 1]];
        if (k == K_WORD_CI || k == K_PUNCT_CI || k == K_SEP_CI) continue;
        cased = k == K_WORD_CASED;
        break;
    }
#endif

#define END_TOKEN()                             \
    do {                                        \
        if (w > ts) tokens_push(t, ts, w);      \
        ts = w;                                 \
    } while (0)

    while (i < len) {
#if CW_TOKENIZER_SSE2
        if (len - i >= 16) {
            unsigned m = word_block16(s + i, o + w);
            unsigned n = m ? (unsigned)__builtin_ctz(m) : 16;
            if (n) {
                i += n;
                w += n;
                cased = ascii_kind[s[i - 1]] == K_WORD_CASED;
                if (n == 16) continue;
            }
            /* s[i] (i < len) is a stop byte: fall through to the scalar code. */
        }
#endif
        unsigned b = s[i];
        unsigned k = ascii_kind[b];
        if (k == K_WORD_CASED || k == K_WORD) {
            /* The hot path: a run of ASCII word bytes, copied lowercased. */
            unsigned last;
            do {
                o[w++] = (char)ascii_lower[b];
                last = k;
                if (++i == len) break;
                b = s[i];
                k = ascii_kind[b];
            } while (k == K_WORD_CASED || k == K_WORD);
            cased = last == K_WORD_CASED;
            continue;
        }
        switch (k) {
        case K_WORD_CI:
            o[w++] = (char)b;
            i++;
            break;
        case K_PUNCT:
        case K_PUNCT_CI:
            END_TOKEN();
            o[w++] = (char)b;
            END_TOKEN();
            if (k == K_PUNCT) cased = 0;
            i++;
            break;
        case K_SEP:
            END_TOKEN();
            cased = 0;
            i++;
            break;
        case K_SEP_CI:
            END_TOKEN();
            i++;
            break;
        case K_QUOTE:
            cased = 0;
            i++;
            break;
        case K_LT: {
            size_t end;
            if (match_br(s, i, len, &end)) {
                END_TOKEN();
                i = end;
            } else {
                o[w++] = '<';
                i++;
            }
            cased = 0; /* '<' and '>' are neither cased nor case-ignorable */
            break;
        }
        default: { /* K_HIGH */
            uint32_t cp;
            size_t n = utf8_decode(s + i, len - i, &cp);
            unsigned r = cw_uni_rec(cp);
            unsigned f = cw_uni_flags[r];
            if (f & CW_UNI_SPACE) {
                END_TOKEN();
            } else {
                uint32_t lc;
                if (cp == 0x3A3)
                    lc = (cased && !next_is_cased(s, i + n, len)) ? 0x3C2 : 0x3C3;
                else if (cp == 0x130) {
                    o[w++] = 'i';
                    lc = 0x307;
                } else
                    lc = (uint32_t)((int32_t)cp + cw_uni_delta[r]);
                w += utf8_encode(o + w, lc);
            }
            if (!(f & CW_UNI_CASE_IGNORABLE)) cased = (f & CW_UNI_CASED) != 0;
            i += n;
            break;
        }
        }
    }
    END_TOKEN();
#undef END_TOKEN
    t->buf_len = w;
}
