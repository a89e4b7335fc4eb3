/* test_offsets.c: worker/offsets.c, the at-least-once commit rule: an offset
 * becomes committable only when it and every earlier offset of its partition
 * are acknowledged, whatever order acknowledgements arrive in; stale tokens
 * after a reset are ignored; rings grow past their first capacity. */
#include <stdio.h>
#include <stdlib.h>

#include "offsets.h"
#include "util.h"

#include "check.h"

/* The committable offset of partition, or -2 when it did not advance. */
static int64_t take(cw_offsets_t *o, int32_t partition) {
    size_t cursor = 0;
    int32_t p;
    int64_t next, got = -2;
    while (cw_offsets_next_dirty(o, &cursor, &p, &next))
        if (p == partition) got = next;
    return got;
}

static void test_order(void) {
    cw_offsets_t *o = cw_offsets_new();
    int64_t ts;
    uint64_t t10 = cw_offsets_push(o, 3, 10, 100);
    uint64_t t11 = cw_offsets_push(o, 3, 11, 101);
    uint64_t t13 = cw_offsets_push(o, 3, 13, 103); /* a gap: 12 was a transaction marker */
    uint64_t u0 = cw_offsets_push(o, 0, 0, 200);
    CHECK(t10 && t11 && t13 && u0, "tokens are never 0");
    CHECK(cw_offsets_inflight(o, 3) == 3 && cw_offsets_inflight_total(o) == 4, "inflight");
    CHECK(take(o, 3) == -2, "nothing acknowledged yet");

    CHECK(cw_offsets_ack(o, t11, &ts) == 1 && ts == 101, "ack 11");
    CHECK(take(o, 3) == -2, "11 acknowledged but 10 not: nothing committable");
    CHECK(cw_offsets_ack(o, t13, &ts) == 1, "ack 13");
    CHECK(take(o, 3) == -2, "still waiting for 10");
    CHECK(cw_offsets_ack(o, t10, &ts) == 1 && ts == 100, "ack 10");
    CHECK(take(o, 3) == 14, "all acknowledged: commit 14");
    CHECK(take(o, 3) == -2, "reported once");
    CHECK(cw_offsets_ack(o, t10, &ts) == 0, "a second ack of the same token is ignored");
    CHECK(cw_offsets_inflight(o, 3) == 0 && cw_offsets_inflight_total(o) == 1, "inflight after");

    /* Reset (revoked): later acks of the old tokens do not move anything. */
    uint64_t u1 = cw_offsets_push(o, 0, 1, 201);
    cw_offsets_reset(o, 0);
    CHECK(cw_offsets_inflight_total(o) == 0, "reset drops in-flight");
    CHECK(cw_offsets_ack(o, u0, &ts) == 0 && cw_offsets_ack(o, u1, &ts) == 0, "stale tokens ignored");
    CHECK(take(o, 0) == -2, "nothing committable after reset");
    uint64_t u5 = cw_offsets_push(o, 0, 5, 205);
    CHECK(cw_offsets_ack(o, u5, &ts) == 1 && take(o, 0) == 6, "works again after reset");
    CHECK(cw_offsets_ack(o, (uint64_t)77 << 44, &ts) == 0, "unknown partition");
    cw_offsets_destroy(o);
}

/* Many in flight (the ring grows), acknowledged in a random order: the
 * committable offset is always one past the acknowledged prefix. */
static void test_random(void) {
    enum { N = 5000 };
    cw_offsets_t *o = cw_offsets_new();
    uint64_t *tok = cw_malloc(N * sizeof(*tok));
    int *acked = cw_calloc(N, sizeof(int));
    size_t *perm = cw_malloc(N * sizeof(*perm));
    cw_rng_t rng;
    cw_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++) {
        tok[i] = cw_offsets_push(o, 1, 1000 + (int64_t)i, (int64_t)i);
        perm[i] = i;
    }
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)cw_rng_below(&rng, i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int64_t last = -1;
    size_t prefix = 0;
    for (size_t k = 0; k < N; k++) {
        int64_t ts;
        size_t i = perm[k];
        CHECK(cw_offsets_ack(o, tok[i], &ts) == 1 && ts == (int64_t)i, "ack %zu", i);
        acked[i] = 1;
        while (prefix < N && acked[prefix]) prefix++;
        int64_t got = take(o, 1);
        if (got != -2) last = got;
        int64_t want = prefix ? 1000 + (int64_t)prefix : -1;
        if (last != want) {
            CHECK(last == want, "after %zu acks: committable %lld, want %lld", k + 1, (long long)last,
                  (long long)want);
            break;
        }
    }
    CHECK(cw_offsets_inflight_total(o) == 0, "all acknowledged");
    cw_free(tok);
    cw_free(acked);
    cw_free(perm);
    cw_offsets_destroy(o);
}

int main(void) {
    test_order();
    test_random();
    if (failures) {
        fprintf(stderr, "test_offsets: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_offsets: ok\n");
    return 0;
}
