/* kafka_dead_letters.c: 5% malformed messages mixed into the stream.
 *
 * Kinds: not msgpack, missing id, wrong types, truncated, nesting 33 deep, an
 * array header claiming 2^30 elements in a 10-byte message. Each must appear
 * exactly once in the dead-letter topic with its original key and value and
 * headers giving its reason (the decoder's verdict) and source topic,
 * partition and offset; every valid article must have its result; the worker
 * must stay alive with bounded memory (VmRSS after the first and second
 * halves of the stream). N = 40,000 articles + 2,000 malformed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article.h"
#include "harness.h"
#include "util.h"

#define NKINDS 6
static const char *const kind_names[NKINDS] = {"not msgpack", "missing id", "wrong types",
                                               "truncated", "nesting 33 deep", "2^30 array"};
static const cw_article_err_t kind_want[NKINDS] = {
    CW_ARTICLE_ERR_MALFORMED, CW_ARTICLE_ERR_MISSING_ID, CW_ARTICLE_ERR_WRONG_TYPE,
    CW_ARTICLE_ERR_TRUNCATED, CW_ARTICLE_ERR_TOO_DEEP,  CW_ARTICLE_ERR_TOO_MANY};

typedef struct bad_s {
    unsigned char buf[256];
    size_t len;
    int kind;
    int seen;
} bad_t;

/* msgpack fixstr */
static size_t put_str(unsigned char *p, const char *s) {
    size_t n = strlen(s);
    p[0] = (unsigned char)(0xa0 | n);
    memcpy(p + 1, s, n);
    return n + 1;
}

static void make_bad(bad_t *b, int kind, size_t j) {
    unsigned char *p = b->buf;
    size_t n = 0;
    char id[32];
    snprintf(id, sizeof(id), "bad-%zu", j);
    b->kind = kind;
    switch (kind) {
    case 0: /* 0xc1 is never used by msgpack */
        n = (size_t)snprintf((char *)p, sizeof(b->buf), "\xc1 not msgpack %zu", j);
        break;
    case 1: /* {title: "t", body: "b"} */
        p[n++] = 0x82;
        n += put_str(p + n, "title");
        n += put_str(p + n, "a title");
        n += put_str(p + n, "body");
        n += put_str(p + n, "a body");
        break;
    case 2: /* {id: "...", title: 5} */
        p[n++] = 0x82;
        n += put_str(p + n, "id");
        n += put_str(p + n, id);
        n += put_str(p + n, "title");
        p[n++] = 0x05;
        break;
    case 3: { /* a valid article cut inside the body string */
        p[n++] = 0x83;
        n += put_str(p + n, "id");
        n += put_str(p + n, id);
        n += put_str(p + n, "title");
        n += put_str(p + n, "a title");
        n += put_str(p + n, "body");
        n += put_str(p + n, "a body that will be cut short");
        n -= 10;
        break;
    }
    case 4: /* {id, title, x: [[[...]]]} with 33 nested arrays under an unknown key */
        p[n++] = 0x83;
        n += put_str(p + n, "id");
        n += put_str(p + n, id);
        n += put_str(p + n, "title");
        n += put_str(p + n, "deep");
        n += put_str(p + n, "x");
        for (int d = 0; d < 33; d++) p[n++] = 0x91;
        p[n++] = 0x01;
        break;
    case 5: /* array32 header claiming 2^30 elements, 10 bytes in all */
        p[n++] = 0xdd;
        p[n++] = 0x40;
        p[n++] = 0x00;
        p[n++] = 0x00;
        p[n++] = 0x00;
        for (int k = 0; k < 5; k++) p[n++] = 0x01;
        break;
    }
    b->len = n;
}

static const char *hdr(rd_kafka_headers_t *h, const char *name, char *out, size_t size) {
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) return NULL;
    if (len >= size) len = size - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return out;
}

int main(int argc, char **argv) {
    cwt_env_t e;
    int rc = cwt_env_init(&e, "kafka_dead_letters", argc, argv, 8, 16);
    if (rc) return rc;
    const size_t n = 40000, nbad = n / 20;
    const char *prefix = "d-";

    bad_t *bad = cw_calloc(nbad, sizeof(*bad));
    for (size_t j = 0; j < nbad; j++) {
        make_bad(&bad[j], (int)(j % NKINDS), j);
        /* The decoder's verdict here is what the dead letter must say. */
        cw_article_t a;
        cw_article_err_t got = cw_article_decode(bad[j].buf, bad[j].len, &a, NULL, 0);
        if (j < NKINDS)
            CWT_CHECK(&e, got == kind_want[j % NKINDS], "%s: decoder says %s, want %s",
                      kind_names[j % NKINDS], cw_article_err2str(got),
                      cw_article_err2str(kind_want[j % NKINDS]));
    }
    CWT_CHECK(&e, bad[5].len == 10, "the 2^30 message has %zu bytes", bad[5].len);

    const char *conf = cwt_worker_conf(&e, "w1",
        "max_articles = 256;\n", "  queued_max_messages_kbytes = 16384;");
    pid_t pid = cwt_worker_spawn(&e, conf, "worker");
    rd_kafka_t *reader = cwt_reader(&e, e.out_topic, 0);
    cwt_seen_t s;
    cwt_seen_init(&s, n);

    /* Message numbers: articles 0..n-1, malformed n..n+nbad-1 (for offsets). */
    cwt_producer_t p;
    cwt_producer_init(&e, &p, n + nbad);
    long rss[2] = {-1, -1};
    size_t next_bad = 0;
    for (int half = 0; half < 2; half++) {
        size_t lo = half * n / 2, hi = (half + 1) * n / 2;
        for (size_t i = lo; i < hi; i++) {
            cwt_produce_article(&e, &p, i, prefix);
            /* one malformed message after every 20 articles */
            if (i % 20 == 19 && next_bad < nbad) {
                char key[32];
                snprintf(key, sizeof(key), "bad-%zu", next_bad);
                cwt_produce(&e, &p, n + next_bad, key, strlen(key), bad[next_bad].buf, bad[next_bad].len);
                next_bad++;
            }
        }
        cwt_producer_flush(&e, &p);
        cwt_read_results(&e, reader, &s, prefix, hi, 30);
        rss[half] = cwt_rss_kb(pid);
        cwt_log(&e, "after %zu articles: %llu results, worker VmRSS %ld KiB", hi,
                (unsigned long long)s.distinct, rss[half]);
    }
    CWT_CHECK(&e, next_bad == nbad, "produced %zu malformed", next_bad);
    CWT_CHECK(&e, s.distinct == n, "%llu of %zu valid articles have a result",
              (unsigned long long)s.distinct, n);
    CWT_CHECK(&e, s.wrong_label == 0 && s.wrong_key == 0 && s.wrong_meta == 0 && s.bad == 0,
              "bad results");
    CWT_CHECK(&e, cwt_alive(pid), "the worker died");
    CWT_CHECK(&e, rss[0] > 0 && rss[1] > 0 && rss[1] - rss[0] < 32 * 1024,
              "VmRSS grew from %ld to %ld KiB over the second half", rss[0], rss[1]);

    /* The dead-letter topic: each malformed message once, intact, with headers. */
    rd_kafka_t *dlq = cwt_reader(&e, e.dlq_topic, 0);
    size_t got = 0, dups = 0, wrong = 0, other = 0;
    size_t per_kind[NKINDS] = {0};
    double last = cwt_now();
    while (got < nbad && cwt_now() - last < 20) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(dlq, 100);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        last = cwt_now();
        char key[64] = "", buf[256], rbuf[64];
        size_t j = 0;
        if (m->key_len < sizeof(key)) {
            memcpy(key, m->key, m->key_len);
            key[m->key_len] = '\0';
        }
        if (sscanf(key, "bad-%zu", &j) != 1 || j >= nbad) {
            other++;
            rd_kafka_message_destroy(m);
            continue;
        }
        bad_t *b = &bad[j];
        if (b->seen++) dups++;
        else got++;
        per_kind[b->kind]++;
        rd_kafka_headers_t *h = NULL;
        rd_kafka_message_headers(m, &h);
        cw_article_t a;
        const char *want_reason = cw_article_err2str(cw_article_decode(b->buf, b->len, &a, NULL, 0));
        const cwt_sent_t *src = &p.sent[n + j];
        char want_part[16], want_off[32];
        snprintf(want_part, sizeof(want_part), "%d", (int)src->partition);
        snprintf(want_off, sizeof(want_off), "%lld", (long long)src->offset);
        const char *reason = hdr(h, CW_DLQ_HDR_REASON, rbuf, sizeof(rbuf));
        int ok = m->len == b->len && !memcmp(m->payload, b->buf, b->len) && reason &&
                 !strcmp(reason, want_reason);
        ok = ok && hdr(h, CW_DLQ_HDR_SOURCE_TOPIC, buf, sizeof(buf)) && !strcmp(buf, e.in_topic);
        ok = ok && hdr(h, CW_DLQ_HDR_SOURCE_PARTITION, buf, sizeof(buf)) && !strcmp(buf, want_part);
        ok = ok && hdr(h, CW_DLQ_HDR_SOURCE_OFFSET, buf, sizeof(buf)) && !strcmp(buf, want_off);
        ok = ok && hdr(h, CW_DLQ_HDR_DETAIL, buf, sizeof(buf)) != NULL;
        if (!ok && wrong++ < 5)
            cwt_fail(&e, __FILE__, __LINE__, "dead letter", "%s (%s): len %zu/%zu reason %s/%s at %s/%s",
                     key, kind_names[b->kind], m->len, b->len, reason ? reason : "(none)",
                     want_reason, want_part, want_off);
        if (j < NKINDS) {
            char detail[256];
            cwt_log(&e, "dead letter %s (%s): reason=%s detail=\"%s\"", key, kind_names[b->kind],
                    reason ? reason : "-", hdr(h, CW_DLQ_HDR_DETAIL, detail, sizeof(detail)));
        }
        rd_kafka_message_destroy(m);
    }
    cwt_log(&e, "dead letters: %zu distinct of %zu, %zu duplicates, %zu wrong, %zu foreign", got,
            nbad, dups, wrong, other);
    for (int k = 0; k < NKINDS; k++) cwt_log(&e, "  %-16s %zu", kind_names[k], per_kind[k]);
    CWT_CHECK(&e, got == nbad && dups == 0 && wrong == 0 && other == 0, "dead letters");

    kill(pid, SIGTERM);
    int st = cwt_worker_wait(pid, 30);
    CWT_CHECK(&e, st == 0, "worker exit status %d after SIGTERM", st);
    /* Its stats line counted them. */
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "grep -q 'dead_lettered=%zu ' '%s'", nbad, e.logs[0]);
    CWT_CHECK(&e, system(cmd) == 0, "no stats line with dead_lettered=%zu", nbad);

    rd_kafka_consumer_close(dlq);
    rd_kafka_destroy(dlq);
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cwt_seen_free(&s);
    cwt_producer_destroy(&p);
    cw_free(bad);
    return cwt_env_finish(&e);
}
