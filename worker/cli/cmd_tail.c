/* cmd_tail.c: `catwire tail`: results or dead letters from a topic -> one
 * JSON object per line on stdout, so that nobody reads msgpack by hand.
 *
 * Without --group it reads every partition directly (assign, no group, no
 * commits), which starts at once; with --group it joins that consumer group
 * and commits what it printed. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "kafka_util.h"
#include "log.h"
#include "util.h"

#define TAIL_MAX_PROPS 64

typedef struct tail_opts_s {
    const char *brokers;
    const char *topic;
    const char *group;
    const char *isolation;
    int from_beginning;
    int envelope;       /* every message in the envelope form */
    int64_t max;        /* stop after this many messages (0 = no limit) */
    int64_t timeout_ms; /* stop after this long without a message (0 = never) */
    const char *props[TAIL_MAX_PROPS];
    size_t nprops;
} tail_opts_t;

static volatile sig_atomic_t tail_interrupted;

static void tail_on_signal(int sig) {
    (void)sig;
    tail_interrupted = 1;
}

static void tail_usage(FILE *f) {
    fprintf(f,
        "usage: catwire tail --brokers B --topic T [OPTIONS]\n"
        "\n"
        "Print the messages of a results or dead-letter topic, one JSON object per line.\n"
        "\n"
        "Output:\n"
        "  A message whose value is msgpack and that has no \"catwire.reason\" header (a\n"
        "  result, or an article) prints as its value rendered as JSON, e.g.\n"
        "    {\"id\":\"test-1\",\"label\":\"Business\",\"label_id\":2,\"confidence\":0.93,...}\n"
        "  A dead letter (a message with a \"catwire.reason\" header), a value that is not\n"
        "  msgpack, and every message under --envelope print as an envelope:\n"
        "    {\"topic\":T,\"partition\":P,\"offset\":O,\"timestamp\":MS,\"key\":K,\n"
        "     \"headers\":{NAME:VALUE,...},\"value_base64\":B64}\n"
        "  key and header values are JSON strings (invalid UTF-8 bytes become U+FFFD;\n"
        "  a missing key is null); value_base64 holds the value's exact bytes in standard\n"
        "  base64, e.g. `jq -r .value_base64 | base64 -d` restores the original message;\n"
        "  envelopes of valid msgpack values also carry it rendered as \"value\".\n"
        "\n"
        "Options:\n"
        "  -b, --brokers B        bootstrap servers (host:port[,...])\n"
        "  -t, --topic T          topic to read\n"
        "  -B, --from-beginning   start at the oldest message (default: only new ones)\n"
        "  -n, --max N            exit after N messages\n"
        "  -T, --timeout-ms N     exit after N ms without a message (default: run until\n"
        "                         interrupted)\n"
        "  -g, --group G          join consumer group G and commit progress (default: read\n"
        "                         all partitions without a group)\n"
        "  -i, --isolation L      read_uncommitted | read_committed (default\n"
        "                         read_committed, which hides aborted transactions)\n"
        "  -e, --envelope         print every message as an envelope\n"
        "  -X KEY=VALUE           librdkafka consumer property (repeatable)\n"
        "  -h, --help             this text\n"
        "\n"
        "The count of messages printed goes to stderr at exit. Exit codes: 0 ok, 1 error,\n"
        "2 usage.\n");
}

static int tail_parse_i64(const char *s, int64_t *out) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

static int tail_parse(int argc, char **argv, tail_opts_t *o) {
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},   {"topic", required_argument, NULL, 't'},
        {"from-beginning", no_argument, NULL, 'B'},  {"max", required_argument, NULL, 'n'},
        {"timeout-ms", required_argument, NULL, 'T'}, {"group", required_argument, NULL, 'g'},
        {"isolation", required_argument, NULL, 'i'}, {"envelope", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof(*o));
    o->isolation = "read_committed";
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:t:Bn:T:g:i:eX:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->brokers = optarg; break;
        case 't': o->topic = optarg; break;
        case 'B': o->from_beginning = 1; break;
        case 'n':
            if (tail_parse_i64(optarg, &o->max) || o->max == 0) {
                fprintf(stderr, "catwire tail: --max needs an integer >= 1\n");
                return CW_EXIT_USAGE;
            }
            break;
        case 'T':
            if (tail_parse_i64(optarg, &o->timeout_ms)) {
                fprintf(stderr, "catwire tail: --timeout-ms needs an integer >= 0\n");
                return CW_EXIT_USAGE;
            }
            break;
        case 'g': o->group = optarg; break;
        case 'i':
            if (strcmp(optarg, "read_committed") && strcmp(optarg, "read_uncommitted")) {
                fprintf(stderr, "catwire tail: --isolation must be read_committed or read_uncommitted\n");
                return CW_EXIT_USAGE;
            }
            o->isolation = optarg;
            break;
        case 'e': o->envelope = 1; break;
        case 'X':
            if (o->nprops == TAIL_MAX_PROPS) {
                fprintf(stderr, "catwire tail: too many -X properties\n");
                return CW_EXIT_USAGE;
            }
            o->props[o->nprops++] = optarg;
            break;
        case 'h': tail_usage(stdout); return -1;
        default: tail_usage(stderr); return CW_EXIT_USAGE;
        }
    }
    if (optind != argc || !o->brokers || !o->topic) {
        fprintf(stderr, "catwire tail: need --brokers and --topic (and no other arguments)\n");
        tail_usage(stderr);
        return CW_EXIT_USAGE;
    }
    return CW_EXIT_OK;
}

static int tail_is_dead_letter(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *hdrs = NULL;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &hdrs) || !hdrs) return 0;
    return rd_kafka_header_get_last(hdrs, "catwire.reason", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void tail_envelope(cw_jbuf_t *b, const rd_kafka_message_t *m) {
    char num[64];
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    size_t before;
    char why[128];

    cw_json_append_raw(b, "{\"topic\":", 9);
    {
        const char *t = rd_kafka_topic_name(m->rkt);
        cw_json_append_str(b, t, strlen(t));
    }
    snprintf(num, sizeof(num), ",\"partition\":%" PRId32 ",\"offset\":%" PRId64, m->partition,
             m->offset);
    cw_json_append_raw(b, num, strlen(num));
    if (ts >= 0) snprintf(num, sizeof(num), ",\"timestamp\":%" PRId64, ts);
    else snprintf(num, sizeof(num), ",\"timestamp\":null");
    cw_json_append_raw(b, num, strlen(num));
    cw_json_append_raw(b, ",\"key\":", 7);
    if (m->key) cw_json_append_str(b, m->key, m->key_len);
    else cw_json_append_raw(b, "null", 4);
    cw_json_append_raw(b, ",\"headers\":{", 12);
    if (!rd_kafka_message_headers(m, &hdrs) && hdrs) {
        const char *name;
        const void *val;
        size_t vlen;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen); i++) {
            if (i) cw_json_append_raw(b, ",", 1);
            cw_json_append_str(b, name, strlen(name));
            cw_json_append_raw(b, ":", 1);
            if (val) cw_json_append_str(b, val, vlen);
            else cw_json_append_raw(b, "null", 4);
        }
    }
    cw_json_append_raw(b, "},\"value_base64\":", 17);
    if (m->payload) cw_json_append_base64(b, m->payload, m->len);
    else cw_json_append_raw(b, "null", 4);
    before = b->len;
    cw_json_append_raw(b, ",\"value\":", 9);
    if (!m->payload || cw_json_from_msgpack(b, m->payload, m->len, why, sizeof(why))) {
        b->len = before; /* not msgpack: the base64 form is all there is */
        b->p[b->len] = '\0';
    }
    cw_json_append_raw(b, "}", 1);
}

/* One output line for m into b (cleared first). */
static void tail_render(cw_jbuf_t *b, const rd_kafka_message_t *m, int envelope) {
    char why[128];
    b->len = 0;
    if (!envelope && m->payload && !tail_is_dead_letter(m) &&
        !cw_json_from_msgpack(b, m->payload, m->len, why, sizeof(why)))
        return;
    b->len = 0;
    tail_envelope(b, m);
}

/* Assign every partition of the topic, at the start or the end. */
static int tail_assign_all(rd_kafka_t *rk, const tail_opts_t *o, char *errstr, size_t errstr_size) {
    int n = cw_kafka_partition_count(rk, o->topic, 10000, errstr, errstr_size);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_resp_err_t err;
    if (n < 0) return -1;
    parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset =
            o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        cw_seterr(errstr, errstr_size, "assign '%s': %s", o->topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int cw_cmd_tail(int argc, char **argv) {
    tail_opts_t o;
    char errstr[512] = "", why[512], gid[96];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    cw_jbuf_t out = {0};
    int rc = CW_EXIT_ERROR, subscribed = 0;
    int64_t printed = 0;
    double last_msg;
    struct sigaction sa, old_int, old_term;
    rd_kafka_resp_err_t kerr;

    int prc = tail_parse(argc, argv, &o);
    if (prc < 0) return CW_EXIT_OK;
    if (prc) return prc;
    tail_interrupted = 0;

    conf = cw_kafka_conf_new(o.brokers, errstr, sizeof(errstr));
    if (!conf) goto done;
    /* librdkafka wants a group.id even for assign(); without --group it is
     * never used for a join or a commit. */
    snprintf(gid, sizeof(gid), "catwire-tail-%ld", (long)getpid());
    if (cw_kafka_conf_set(conf, "group.id", o.group ? o.group : gid, errstr, sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "client.id", "catwire-tail", errstr, sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "isolation.level", o.isolation, errstr, sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "auto.offset.reset", o.from_beginning ? "earliest" : "latest",
                          errstr, sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", errstr,
                          sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "enable.auto.commit", o.group ? "true" : "false", errstr,
                          sizeof(errstr)) ||
        /* commit only what was printed */
        cw_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, sizeof(errstr)))
        goto done;
    for (size_t i = 0; i < o.nprops; i++)
        if (cw_kafka_conf_set_kv(conf, o.props[i], errstr, sizeof(errstr))) goto done;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        cw_seterr(errstr, sizeof(errstr), "kafka consumer: %s", why);
        goto done;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(rk);

    if (o.group) {
        subs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(subs, o.topic, RD_KAFKA_PARTITION_UA);
        kerr = rd_kafka_subscribe(rk, subs);
        if (kerr) {
            cw_seterr(errstr, sizeof(errstr), "subscribe '%s': %s", o.topic, rd_kafka_err2str(kerr));
            goto done;
        }
        subscribed = 1;
    } else if (tail_assign_all(rk, &o, errstr, sizeof(errstr))) {
        goto done;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = tail_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    last_msg = cw_now_s();
    while (!tail_interrupted && (!o.max || printed < o.max)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (o.timeout_ms && (cw_now_s() - last_msg) * 1000.0 >= (double)o.timeout_ms) break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cw_log_warn("tail", "%s", rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                cw_seterr(errstr, sizeof(errstr), "%s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                sigaction(SIGINT, &old_int, NULL);
                sigaction(SIGTERM, &old_term, NULL);
                goto done;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        last_msg = cw_now_s();
        tail_render(&out, m, o.envelope);
        cw_json_append_raw(&out, "\n", 1);
        fwrite(out.p, 1, out.len, stdout);
        printed++;
        if (o.group) rd_kafka_offset_store(m->rkt, m->partition, m->offset);
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    fprintf(stderr, "catwire tail: %" PRId64 " messages from %s\n", printed, o.topic);
    rc = CW_EXIT_OK;
done:
    if (rc != CW_EXIT_OK) fprintf(stderr, "catwire tail: %s\n", errstr);
    if (rk) {
        /* leaves the group and commits the stored offsets */
        if (subscribed) rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (subs) rd_kafka_topic_partition_list_destroy(subs);
    if (conf) rd_kafka_conf_destroy(conf);
    cw_jbuf_free(&out);
    return rc;
}
