/* vocab.c: token counting and the token <-> id table. See vocab.h.
 *
 * Both the counter and the vocabulary are an open-addressing hash table
 * (linear probing, power-of-two size, load <= 1/2) of 64-bit slots over an
 * array of entries whose bytes live in one growing arena. A slot holds the
 * entry's 32-bit hash beside its index, so a probe rejects other tokens (and
 * finds the end of a miss) without touching the entries: lookups are the
 * serving hot path. Token bytes are
 * hashed with cw_hash64 (util.h), the same hash the n-gram featurizer uses. */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define EMPTY_SLOT UINT64_MAX
#define SLOT(h, i) (((uint64_t)(h) << 32) | (uint32_t)(i))
#define SLOT_HASH(v) ((uint32_t)((v) >> 32))
#define SLOT_ENTRY(v) ((uint32_t)(v))

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
    uint64_t *slot;  /* SLOT(hash, entry index), or EMPTY_SLOT */
    size_t nslots;   /* power of two, or 0 before the first insert */
} table_t;

struct cw_vocab_counter_s { table_t t; };
struct cw_vocab_s { table_t t; };

/* Table hash from the token hash (util.h's cw_hash64), so a caller that
 * already hashed a token (the featurizer) looks it up without rehashing. */
static inline uint32_t fold_hash(uint64_t h) { return (uint32_t)(h ^ (h >> 32)); }

static uint32_t tok_hash(const char *tok, size_t len) { return fold_hash(cw_hash64(tok, len)); }

static void table_free(table_t *t) {
    cw_free(t->arena);
    cw_free(t->ent);
    cw_free(t->slot);
}

static void table_rehash(table_t *t, size_t nslots) {
    cw_free(t->slot);
    t->slot = cw_malloc(nslots * sizeof(uint64_t));
    memset(t->slot, 0xff, nslots * sizeof(uint64_t));
    t->nslots = nslots;
    size_t mask = nslots - 1;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = t->ent[i].hash & mask;
        while (t->slot[s] != EMPTY_SLOT) s = (s + 1) & mask;
        t->slot[s] = SLOT(t->ent[i].hash, i);
    }
}


/* Slot holding tok, or the empty slot where it would go. */
static size_t table_probe(const table_t *t, const char *tok, size_t len, uint32_t h) {
    size_t mask = t->nslots - 1;
    size_t s = h & mask;
    for (;;) {
        uint64_t v = t->slot[s];
        if (v == EMPTY_SLOT) return s;
        if (SLOT_HASH(v) == h) {
            const entry_t *en = &t->ent[SLOT_ENTRY(v)];
            if (en->len == len && memcmp(t->arena + en->off, tok, len) == 0) return s;
        }
        s = (s + 1) & mask;
    }
}

static int64_t table_find(const table_t *t, const char *tok, size_t len) {
    if (t->nslots == 0) return -1;
    uint64_t v = t->slot[table_probe(t, tok, len, tok_hash(tok, len))];
    return v == EMPTY_SLOT ? -1 : (int64_t)SLOT_ENTRY(v);
}

/* Entry index of tok, inserting it (count 0) when absent; *added tells which. */
static uint32_t table_intern(table_t *t, const char *tok, size_t len, uint32_t h, int *added) {
    if (2 * (t->n + 1) > t->nslots) table_rehash(t, t->nslots ? 2 * t->nslots : 1024);
    size_t s = table_probe(t, tok, len, h);
    if (t->slot[s] != EMPTY_SLOT) {
        *added = 0;
        return SLOT_ENTRY(t->slot[s]);
    }
    cw_grow((void **)&t->arena, &t->arena_cap, t->arena_len + len + 1, 1);
    memcpy(t->arena + t->arena_len, tok, len);
    t->arena[t->arena_len + len] = '\0';
    cw_grow((void **)&t->ent, &t->ent_cap, t->n + 1, sizeof(entry_t));
    t->ent[t->n] = (entry_t){.off = t->arena_len, .len = (uint32_t)len, .hash = h, .count = 0};
    t->arena_len += len + 1;
    t->slot[s] = SLOT(h, t->n);
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
    uint32_t e = table_intern(&c->t, tok, len, tok_hash(tok, len), &added);
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
    table_intern(&v->t, CW_VOCAB_UNK, strlen(CW_VOCAB_UNK), tok_hash(CW_VOCAB_UNK, strlen(CW_VOCAB_UNK)),
                 &added);
    return v;
}

int64_t cw_vocab_push(cw_vocab_t *v, const char *tok, size_t len) {
    int added;
    uint32_t e = table_intern(&v->t, tok, len, tok_hash(tok, len), &added);
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

uint32_t cw_vocab_lookup_hashed(const cw_vocab_t *v, const char *tok, size_t len, uint64_t hash) {
    if (v->t.nslots == 0) return CW_VOCAB_UNK_ID;
    uint64_t e = v->t.slot[table_probe(&v->t, tok, len, fold_hash(hash))];
    return e == EMPTY_SLOT ? CW_VOCAB_UNK_ID : SLOT_ENTRY(e);
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
