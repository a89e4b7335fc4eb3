/* offsets.c: per-partition acknowledgement rings. See offsets.h. */
#include "offsets.h"

#include <assert.h>
#include <string.h>

#include "util.h"

#define CW_TOKEN_SEQ_BITS 44
#define CW_TOKEN_SEQ_MASK ((UINT64_C(1) << CW_TOKEN_SEQ_BITS) - 1)

typedef struct cw_off_ent_s {
    int64_t offset;
    int64_t ts_ms;
    uint8_t acked;
} cw_off_ent_t;

typedef struct cw_off_part_s {
    cw_off_ent_t *ring;  /* capacity cap (a power of two), indexed by seq & (cap - 1) */
    size_t cap;
    uint64_t head;       /* oldest unacknowledged seq */
    uint64_t tail;       /* next seq to hand out; seqs start at 1 so a token is never 0 */
    int64_t next_offset; /* committable offset (one past the acknowledged prefix) */
    int dirty;
} cw_off_part_t;

struct cw_offsets_s {
    cw_off_part_t *parts;
    size_t nparts;
    size_t inflight;
};

cw_offsets_t *cw_offsets_new(void) { return cw_calloc(1, sizeof(cw_offsets_t)); }

void cw_offsets_destroy(cw_offsets_t *o) {
    if (!o) return;
    for (size_t i = 0; i < o->nparts; i++) cw_free(o->parts[i].ring);
    cw_free(o->parts);
    cw_free(o);
}

static cw_off_part_t *cw_offsets_part(cw_offsets_t *o, int32_t partition) {
    assert(partition >= 0 && partition <= CW_OFFSETS_MAX_PARTITION);
    if ((size_t)partition >= o->nparts) {
        size_t n = (size_t)partition + 1;
        o->parts = cw_realloc(o->parts, n * sizeof(*o->parts));
        for (size_t i = o->nparts; i < n; i++) {
            memset(&o->parts[i], 0, sizeof(o->parts[i]));
            o->parts[i].head = o->parts[i].tail = 1;
            o->parts[i].next_offset = -1;
        }
        o->nparts = n;
    }
    return &o->parts[partition];
}

static void cw_offsets_grow(cw_off_part_t *p) {
    size_t ncap = p->cap ? p->cap * 2 : 1024;
    cw_off_ent_t *nring = cw_malloc(ncap * sizeof(*nring));
    for (uint64_t s = p->head; s < p->tail; s++)
        nring[s & (ncap - 1)] = p->ring[s & (p->cap - 1)];
    cw_free(p->ring);
    p->ring = nring;
    p->cap = ncap;
}

uint64_t cw_offsets_push(cw_offsets_t *o, int32_t partition, int64_t offset, int64_t ts_ms) {
    cw_off_part_t *p = cw_offsets_part(o, partition);
    if (p->tail - p->head == p->cap) cw_offsets_grow(p);
    uint64_t seq = p->tail++;
    cw_off_ent_t *e = &p->ring[seq & (p->cap - 1)];
    e->offset = offset;
    e->ts_ms = ts_ms;
    e->acked = 0;
    o->inflight++;
    return ((uint64_t)partition << CW_TOKEN_SEQ_BITS) | (seq & CW_TOKEN_SEQ_MASK);
}

int cw_offsets_ack(cw_offsets_t *o, uint64_t token, int64_t *ts_ms) {
    uint64_t partition = token >> CW_TOKEN_SEQ_BITS;
    uint64_t seq = token & CW_TOKEN_SEQ_MASK;
    if (partition >= o->nparts) return 0;
    cw_off_part_t *p = &o->parts[partition];
    /* The low bits of head/tail identify the seq (44 bits never wrap in practice). */
    if (seq < (p->head & CW_TOKEN_SEQ_MASK) || seq >= (p->tail & CW_TOKEN_SEQ_MASK)) return 0;
    cw_off_ent_t *e = &p->ring[seq & (p->cap - 1)];
    if (e->acked) return 0;
    e->acked = 1;
    *ts_ms = e->ts_ms;
    o->inflight--;
    while (p->head < p->tail && p->ring[p->head & (p->cap - 1)].acked) {
        p->next_offset = p->ring[p->head & (p->cap - 1)].offset + 1;
        p->head++;
        p->dirty = 1;
    }
    return 1;
}

size_t cw_offsets_inflight(const cw_offsets_t *o, int32_t partition) {
    if (partition < 0 || (size_t)partition >= o->nparts) return 0;
    const cw_off_part_t *p = &o->parts[partition];
    size_t n = 0;
    for (uint64_t s = p->head; s < p->tail; s++)
        if (!p->ring[s & (p->cap - 1)].acked) n++;
    return n;
}

size_t cw_offsets_inflight_total(const cw_offsets_t *o) { return o->inflight; }

int cw_offsets_next_dirty(cw_offsets_t *o, size_t *cursor, int32_t *partition,
                          int64_t *next_offset) {
    for (; *cursor < o->nparts; (*cursor)++) {
        cw_off_part_t *p = &o->parts[*cursor];
        if (!p->dirty) continue;
        p->dirty = 0;
        *partition = (int32_t)*cursor;
        *next_offset = p->next_offset;
        (*cursor)++;
        return 1;
    }
    return 0;
}

void cw_offsets_reset(cw_offsets_t *o, int32_t partition) {
    if (partition < 0 || (size_t)partition >= o->nparts) return;
    cw_off_part_t *p = &o->parts[partition];
    for (uint64_t s = p->head; s < p->tail; s++)
        if (!p->ring[s & (p->cap - 1)].acked) o->inflight--;
    p->head = p->tail;
    p->dirty = 0;
    p->next_offset = -1;
}

void cw_offsets_reset_all(cw_offsets_t *o) {
    for (size_t i = 0; i < o->nparts; i++) cw_offsets_reset(o, (int32_t)i);
}
