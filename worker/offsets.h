/* offsets.h: which input offsets may be committed (at-least-once).
 *
 * Every input message gets a token when its output (result or dead letter)
 * is handed to the producer; pushes happen in offset order per partition.
 * When the broker acknowledges the output, cw_offsets_ack() marks the token;
 * the committable offset of a partition is one past the last message of its
 * contiguous acknowledged prefix. So an offset is committed only after the
 * output for it and for every earlier offset of its partition is durable,
 * whatever order the acknowledgements arrive in (results and dead letters go
 * to different topics and partitions).
 *
 * Tokens carry the partition and a per-partition sequence number; after
 * cw_offsets_reset() (partition revoked, transaction aborted) late
 * acknowledgements of the old tokens are recognised and ignored.
 *
 * Memory: a ring per partition, as large as the most messages in flight.
 * Threads: single-threaded (the worker's loop and the delivery report
 * callback it serves run on one thread). */
#ifndef CW_OFFSETS_H
#define CW_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#define CW_OFFSETS_MAX_PARTITION ((1 << 19) - 1)

typedef struct cw_offsets_s cw_offsets_t;

cw_offsets_t *cw_offsets_new(void);
void cw_offsets_destroy(cw_offsets_t *o);

/* Register input message (partition, offset) produced now; ts_ms is carried
 * back by the acknowledgement (for latency). Partition must be in
 * [0, CW_OFFSETS_MAX_PARTITION]. Returns the token (never 0). */
uint64_t cw_offsets_push(cw_offsets_t *o, int32_t partition, int64_t offset, int64_t ts_ms);

/* Acknowledge a token. Returns 1 and fills *ts_ms when the token was in
 * flight, 0 when it is stale (reset since) or unknown. */
int cw_offsets_ack(cw_offsets_t *o, uint64_t token, int64_t *ts_ms);

/* Messages pushed but not acknowledged, for one partition / all. */
size_t cw_offsets_inflight(const cw_offsets_t *o, int32_t partition);
size_t cw_offsets_inflight_total(const cw_offsets_t *o);

/* Iterate partitions whose committable offset advanced since they were last
 * returned: start with *cursor = 0; returns 1 with (*partition, *next_offset)
 * or 0 when done. */
int cw_offsets_next_dirty(cw_offsets_t *o, size_t *cursor, int32_t *partition,
                          int64_t *next_offset);

/* Forget the partition's in-flight messages (their offsets will not become
 * committable; their acknowledgements are ignored). */
void cw_offsets_reset(cw_offsets_t *o, int32_t partition);
void cw_offsets_reset_all(cw_offsets_t *o);

#endif
