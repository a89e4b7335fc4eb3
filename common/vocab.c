/* vocab.c: token counting and the token <-> id table. See vocab.h.
 *
 * Both the counter and the vocabulary are an open-addressing hash table
 * (linear probing, power-of-two size, load <= 1/2) of 16-byte slots over an
 * array of entries whose bytes live in one growing arena. A slot holds the
 * token's first 8 bytes, a tag (its hash with the low byte replaced by its
 * length, capped at 255) and the entry index; a parallel array holds bytes
 * 8..16 of each slot's token. So a token of at most 16 bytes (99.9% of AG News
 * tokens) is found, or rejected, without touching the entries or the arena
 * (equal tag and key words mean equal length and bytes); a longer one
 * compares only its tail from byte 16 with the arena. Lookups are the serving
 * hot path: the run lookup hashes a run of tokens first and prefetches their
 * slots, then probes, so the cache misses overlap instead of queueing. Token
 * bytes are hashed with cw_hash64 (util.h), the same hash the n-gram
 * featurizer uses. */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define EMPTY_IDX UINT32_MAX
/* Tokens hashed (and their slots prefetched) ahead of the probes. */
#define LOOKUP_RUN 64

typedef struct slot_s {
    uint64_t pre;    /* the token's first 8 bytes, zero-padded (cw_hash64_pre's prefix) */
    uint32_t tag;    /* slot_tag(hash, length) */
    uint32_t idx;    /* entry index, EMPTY_IDX when free */
} slot_t;

typedef struct entry_s {
    uint64_t off;    /* token bytes: arena[off .. off+len) */
    uint32_t len;
    uint32_t hash;   /* fold_hash(cw_hash64(token)), kept to skip most memcmp calls */
    uint64_t count;  /* counter only */
} entry_t;

/* The shared table: entries in insertion order, slots index into entries. */
typedef struct table_s {
    char *arena;
    size_t arena_len, arena_cap;
    entry_t *ent;
    size_t n, ent_cap;
    slot_t *slot;
    uint64_t *word2; /* word2[s]: bytes 8..16 of slot s's token (tok_word2) */
    size_t nslots;   /* power of two, or 0 before the first insert */
} table_t;

struct cw_vocab_counter_s { table_t t; };
struct cw_vocab_s { table_t t; };

/* Table hash from the token hash (util.h's cw_hash64), so a caller that
 * already hashed a token (the featurizer) looks it up without rehashing. */
static inline uint32_t fold_hash(uint64_t h) { return (uint32_t)(h ^ (h >> 32)); }

static inline uint32_t slot_tag(uint32_t h, size_t len) { return (h & ~0xffu) | (uint32_t)(len < 255 ? len : 255); }

/* A token's bytes 8..16 as a little-endian word, zero-padded (0 when it is
 * at most 8 bytes long). `padded`: at least 7 readable bytes follow it. */
static inline uint64_t tok_word2(const char *tok, size_t len, int padded) {
    if (len <= 8) return 0;
    size_t n = len - 8 < 8 ? len - 8 : 8;
    if (padded) return cw_load_le64((const unsigned char *)tok + 8) & (~0ULL >> (64 - 8 * n));
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)(unsigned char)tok[8 + i] << (8 * i);
    return v;
}

static void table_free(table_t *t) {
    cw_free(t->arena);
    cw_free(t->ent);
    cw_free(t->slot);
    cw_free(t->word2);
}

static void table_rehash(table_t *t, size_t nslots) {
    cw_free(t->slot);
    cw_free(t->word2);
    t->slot = cw_malloc(nslots * sizeof(slot_t));
    t->word2 = cw_calloc(nslots, sizeof(uint64_t));
    for (size_t s = 0; s < nslots; s++) t->slot[s] = (slot_t){.pre = 0, .tag = 0, .idx = EMPTY_IDX};
    t->nslots = nslots;
    size_t mask = nslots - 1;
    for (size_t i = 0; i < t->n; i++) {
        const entry_t *e = &t->ent[i];
        size_t s = e->hash & mask;
        while (t->slot[s].idx != EMPTY_IDX) s = (s + 1) & mask;
        uint64_t pre;
        cw_hash64_pre(t->arena + e->off, e->len, &pre);
        t->slot[s] = (slot_t){.pre = pre, .tag = slot_tag(e->hash, e->len), .idx = (uint32_t)i};
        t->word2[s] = tok_word2(t->arena + e->off, e->len, 0);
    }
}


/* Slot holding tok (whose key words are pre and w2), or the empty slot
 * where it would go; h = fold_hash of its cw_hash64. */
static inline size_t table_probe(const table_t *t, const char *tok, size_t len, uint32_t h, uint64_t pre,
                                 uint64_t w2) {
    size_t mask = t->nslots - 1;
    size_t s = h & mask;
    uint32_t tag = slot_tag(h, len);
    for (;;) {
        const slot_t *sl = &t->slot[s];
        if (sl->idx == EMPTY_IDX) return s;
        if (sl->tag == tag && sl->pre == pre) {
            if (len <= 8) return s; /* same length (len < 255) and same bytes */
            if (t->word2[s] == w2) {
                if (len <= 16) return s;
                const entry_t *en = &t->ent[sl->idx];
                if (en->len == len && memcmp(t->arena + en->off + 16, tok + 16, len - 16) == 0) return s;
            }
        }
        s = (s + 1) & mask;
    }
}

/* Entry index of tok (hash = cw_hash64 of it, pre and w2 its key words), or EMPTY_IDX. */
static inline uint32_t table_index(const table_t *t, const char *tok, size_t len, uint64_t hash, uint64_t pre,
                                   uint64_t w2) {
    return t->nslots ? t->slot[table_probe(t, tok, len, fold_hash(hash), pre, w2)].idx : EMPTY_IDX;
}

static int64_t table_find(const table_t *t, const char *tok, size_t len) {
    uint64_t pre, h = cw_hash64_pre(tok, len, &pre);
    uint32_t idx = table_index(t, tok, len, h, pre, tok_word2(tok, len, 0));
    return idx == EMPTY_IDX ? -1 : (int64_t)idx;
}

/* Entry index of tok, inserting it (count 0) when absent; *added tells which. */
static uint32_t table_intern(table_t *t, const char *tok, size_t len, int *added) {
    if (2 * (t->n + 1) > t->nslots) table_rehash(t, t->nslots ? 2 * t->nslots : 1024);
    uint64_t pre;
    uint32_t h = fold_hash(cw_hash64_pre(tok, len, &pre));
    uint64_t w2 = tok_word2(tok, len, 0);
    size_t s = table_probe(t, tok, len, h, pre, w2);
    if (t->slot[s].idx != EMPTY_IDX) {
        *added = 0;
        return t->slot[s].idx;
    }
    cw_grow((void **)&t->arena, &t->arena_cap, t->arena_len + len + 1, 1);
    memcpy(t->arena + t->arena_len, tok, len);
    t->arena[t->arena_len + len] = '\0';
    cw_grow((void **)&t->ent, &t->ent_cap, t->n + 1, sizeof(entry_t));
    t->ent[t->n] = (entry_t){.off = t->arena_len, .len = (uint32_t)len, .hash = h, .count = 0};
    t->arena_len += len + 1;
    t->slot[s] = (slot_t){.pre = pre, .tag = slot_tag(h, len), .idx = (uint32_t)t->n};
    t->word2[s] = w2;
    *added = 1;
    return (uint32_t)t->n++;
}

/* ---- counter ---- */

cw_vocab_counter_t *cw_vocab_counter_new(void) { return cw_calloc(1, sizeof(cw_vocab_counter_t)); }

void cw_vocab_counter_destroy(cw_vocab_counter_t *c) {
    if (!c) return;
    table_free(&c->t);
    cw_free(c);
}

static void counter_add_n(cw_vocab_counter_t *c, const char *tok, size_t len, uint64_t n) {
    int added;
    uint32_t e = table_intern(&c->t, tok, len, &added);
    c->t.ent[e].count += n;
}

void cw_vocab_counter_add(cw_vocab_counter_t *c, const char *tok, size_t len) {
    counter_add_n(c, tok, len, 1);
}

void cw_vocab_counter_merge(cw_vocab_counter_t *dst, const cw_vocab_counter_t *src) {
    for (size_t i = 0; i < src->t.n; i++) {
        const entry_t *e = &src->t.ent[i];
        counter_add_n(dst, src->t.arena + e->off, e->len, e->count);
    }
}

/* ---- vocabulary ---- */

cw_vocab_t *cw_vocab_new(void) {
    cw_vocab_t *v = cw_calloc(1, sizeof(*v));
    int added;
    table_intern(&v->t, CW_VOCAB_UNK, strlen(CW_VOCAB_UNK), &added);
    return v;
}

int64_t cw_vocab_push(cw_vocab_t *v, const char *tok, size_t len) {
    int added;
    uint32_t e = table_intern(&v->t, tok, len, &added);
    return added ? (int64_t)e : -1;
}

void cw_vocab_destroy(cw_vocab_t *v) {
    if (!v) return;
    table_free(&v->t);
    cw_free(v);
}

typedef struct sort_item_s {
    const char *tok;
    uint32_t len;
    uint64_t count;
} sort_item_t;

/* torchtext's order: count descending, then token bytes ascending (Python
 * compares str by code point, which for valid UTF-8 is byte order). */
static int sort_cmp(const void *a, const void *b) {
    const sort_item_t *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->tok, y->tok, n);
    if (c) return c;
    return x->len < y->len ? -1 : (x->len > y->len ? 1 : 0);
}

cw_vocab_t *cw_vocab_build(const cw_vocab_counter_t *c, uint64_t min_count, uint64_t max_size) {
    const table_t *t = &c->t;
    sort_item_t *items = cw_malloc((t->n ? t->n : 1) * sizeof(*items));
    size_t n = 0;
    size_t unk_len = strlen(CW_VOCAB_UNK);
    for (size_t i = 0; i < t->n; i++) {
        const entry_t *e = &t->ent[i];
        if (e->len == unk_len && memcmp(t->arena + e->off, CW_VOCAB_UNK, unk_len) == 0) continue;
        if (e->count < min_count || e->count == 0) continue;
        items[n++] = (sort_item_t){.tok = t->arena + e->off, .len = e->len, .count = e->count};
    }
    qsort(items, n, sizeof(*items), sort_cmp);
    if (max_size > 0) {
        uint64_t room = max_size > 1 ? max_size - 1 : 0;  /* "<unk>" takes one */
        if (n > room) n = (size_t)room;
    }
    cw_vocab_t *v = cw_vocab_new();
    for (size_t i = 0; i < n; i++) cw_vocab_push(v, items[i].tok, items[i].len);
    cw_free(items);
    return v;
}

size_t cw_vocab_size(const cw_vocab_t *v) { return v->t.n; }

uint32_t cw_vocab_lookup_key(const cw_vocab_t *v, const char *tok, size_t len, uint64_t hash, uint64_t prefix) {
    uint32_t idx = table_index(&v->t, tok, len, hash, prefix, tok_word2(tok, len, 0));
    return idx == EMPTY_IDX ? CW_VOCAB_UNK_ID : idx;
}

void cw_vocab_lookup_run(const cw_vocab_t *v, const cw_tokens_t *t, size_t first, size_t n, uint64_t *hash,
                         int32_t *ids) {
    const table_t *tb = &v->t;
    uint64_t pre[LOOKUP_RUN], w2[LOOKUP_RUN];
    size_t mask = tb->nslots ? tb->nslots - 1 : 0;
    for (size_t r = 0; r < n; r += LOOKUP_RUN) {
        size_t m = n - r < LOOKUP_RUN ? n - r : LOOKUP_RUN;
        /* Hash the run and start loading its slots (CW_TOKENS_SLACK makes the
         * padded loads safe)... */
        for (size_t j = 0; j < m; j++) {
            const char *tok = t->buf + t->start[first + r + j];
            size_t len = t->len[first + r + j];
            uint64_t h = cw_hash64_pre_padded(tok, len, &pre[j]);
            hash[r + j] = h;
            w2[j] = tok_word2(tok, len, 1);
            if (tb->nslots) {
                size_t s = fold_hash(h) & mask;
                __builtin_prefetch(&tb->slot[s]);
                if (len > 8) __builtin_prefetch(&tb->word2[s]);
            }
        }
        /* ...then probe them, most already in cache. */
        for (size_t j = 0; j < m; j++) {
            const char *tok = t->buf + t->start[first + r + j];
            size_t len = t->len[first + r + j];
            uint32_t idx = table_index(tb, tok, len, hash[r + j], pre[j], w2[j]);
            ids[r + j] = (int32_t)(idx == EMPTY_IDX ? CW_VOCAB_UNK_ID : idx);
        }
    }
}

uint32_t cw_vocab_lookup(const cw_vocab_t *v, const char *tok, size_t len) {
    int64_t id = table_find(&v->t, tok, len);
    return id < 0 ? CW_VOCAB_UNK_ID : (uint32_t)id;
}

int64_t cw_vocab_find(const cw_vocab_t *v, const char *tok, size_t len) {
    return table_find(&v->t, tok, len);
}

const char *cw_vocab_token(const cw_vocab_t *v, uint32_t id, size_t *len) {
    if (id >= v->t.n) {
        *len = 0;
        return NULL;
    }
    const entry_t *e = &v->t.ent[id];
    *len = e->len;
    return v->t.arena + e->off;
}
