/* cmd_publish.c: `catwire publish`: CSV or JSON-lines articles -> msgpack
 * article messages on a Kafka topic, so that nobody writes msgpack by hand.
 * Waits for every delivery report; exit 1 when any delivery failed. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "article.h"
#include "cli.h"
#include "csv.h"
#include "json.h"
#include "kafka_util.h"
#include "log.h"
#include "util.h"

#define PUB_MAX_PROPS 64

typedef struct pub_opts_s {
    const char *brokers;
    const char *topic;
    const char *path;
    int jsonl;          /* 0 csv, 1 jsonl */
    int key_id;         /* key each message by its id */
    long repeat;
    int unique_ids;
    double rate;        /* articles per second, 0 = as fast as possible */
    int quiet;
    const char *props[PUB_MAX_PROPS];
    size_t nprops;
} pub_opts_t;

typedef struct pub_stats_s {
    uint64_t delivered;
    uint64_t failed;
    char first_error[256];
} pub_stats_t;

static volatile sig_atomic_t pub_interrupted;

static void pub_on_signal(int sig) {
    (void)sig;
    pub_interrupted = 1;
}

static void pub_usage(FILE *f) {
    fprintf(f,
        "usage: catwire publish --brokers B --topic T [OPTIONS] FILE|-\n"
        "\n"
        "Publish articles as catwire article messages (msgpack, schemas/README.md).\n"
        "\n"
        "Input formats:\n"
        "  csv    AG-News style, no header: class,title,description. The class column\n"
        "         is not sent (articles carry no label). id = BASE-ROW, where BASE is the\n"
        "         file name without directory and extension (\"stdin\" for -) and ROW is\n"
        "         the 1-based record number.\n"
        "  jsonl  one JSON object per line: {\"id\": ..., \"title\": ..., \"body\": ...},\n"
        "         optional \"source\", \"url\", \"lang\", \"published_at\" (ms); other keys\n"
        "         are ignored. Blank lines are skipped.\n"
        "Messages are keyed by id (--key id) or unkeyed (--key none).\n"
        "\n"
        "Options:\n"
        "  -b, --brokers B       bootstrap servers (host:port[,...])\n"
        "  -t, --topic T         topic to publish to\n"
        "  -f, --format F        csv | jsonl (default: jsonl for *.jsonl and *.json, else csv)\n"
        "  -k, --key K           id | none (default id)\n"
        "  -n, --repeat N        publish the file N times (default 1; needs a file, not -)\n"
        "  -u, --unique-ids      make ids unique across repeats: BASE-rREP-ROW for csv,\n"
        "                        ID-rREP for jsonl (REP from 0)\n"
        "  -r, --rate N          at most N articles per second (default: unlimited)\n"
        "  -X KEY=VALUE          librdkafka producer property (repeatable), e.g.\n"
        "                        -X security.protocol=SASL_SSL\n"
        "  -q, --quiet           no progress lines\n"
        "  -h, --help            this text\n"
        "\n"
        "Every message is retried until delivered or until message.timeout.ms passes\n"
        "(librdkafka's default: 300000 ms; e.g. -X message.timeout.ms=10000 to give up\n"
        "sooner when the cluster is down).\n"
        "Prints a summary on stderr (published, delivered, failed). Exit codes: 0 all\n"
        "delivered, 1 error or any delivery failed, 2 usage.\n");
}

static void pub_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    pub_stats_t *st = opaque;
    (void)rk;
    if (msg->err) {
        if (!st->failed)
            snprintf(st->first_error, sizeof(st->first_error), "%s", rd_kafka_err2str(msg->err));
        st->failed++;
    } else {
        st->delivered++;
    }
}

/* Produce one message; waits (serving delivery reports) while the local
 * queue is full. 0 or -1 with errstr. */
static int pub_produce(rd_kafka_t *rk, const char *topic, const void *val, size_t len,
                       const char *key, size_t keylen, char *errstr, size_t errstr_size) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_KEY(key, key ? keylen : 0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (!err) return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            cw_seterr(errstr, errstr_size, "produce to '%s': %s", topic, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(rk, 50);
    }
}

/* Base of ids: file name without directory and extension. */
static void pub_id_base(const char *path, char *out, size_t size) {
    const char *slash, *dot;
    size_t n;
    if (!strcmp(path, "-")) {
        snprintf(out, size, "stdin");
        return;
    }
    slash = strrchr(path, '/');
    if (slash) path = slash + 1;
    dot = strrchr(path, '.');
    n = dot && dot != path ? (size_t)(dot - path) : strlen(path);
    if (n >= size) n = size - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

static int pub_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Rate limiting: sleep until sent articles are due at rate per second. */
static void pub_pace(rd_kafka_t *rk, double t0, uint64_t sent, double rate) {
    double due, now;
    if (rate <= 0) return;
    due = t0 + (double)sent / rate;
    while ((now = cw_now_s()) < due && !pub_interrupted) {
        double wait_ms = (due - now) * 1000.0;
        rd_kafka_poll(rk, wait_ms > 100 ? 100 : (int)wait_ms + 1);
    }
}

typedef struct pub_run_s {
    const pub_opts_t *o;
    rd_kafka_t *rk;
    pub_stats_t *st;
    uint64_t sent;
    double t0, last_report;
    char base[128];
} pub_run_t;

static int pub_send_article(pub_run_t *run, const cw_article_t *a, char *errstr,
                            size_t errstr_size) {
    void *buf = NULL;
    size_t len = 0;
    int rc = -1;
    if (cw_article_encode(a, &buf, &len)) {
        cw_seterr(errstr, errstr_size, "encoding article '%.*s' failed", (int)a->id.len, a->id.p);
        goto done;
    }
    pub_pace(run->rk, run->t0, run->sent, run->o->rate);
    if (pub_produce(run->rk, run->o->topic, buf, len, run->o->key_id ? a->id.p : NULL, a->id.len,
                    errstr, errstr_size))
        goto done;
    run->sent++;
    rd_kafka_poll(run->rk, 0);
    if (!run->o->quiet && cw_now_s() - run->last_report >= 5.0) {
        run->last_report = cw_now_s();
        cw_log_info("publish", "%llu sent, %llu delivered, %llu failed",
                    (unsigned long long)run->sent, (unsigned long long)run->st->delivered,
                    (unsigned long long)run->st->failed);
    }
    rc = 0;
done:
    free(buf); /* cw_article_encode's buffer comes from malloc */
    return rc;
}

static int pub_csv_pass(pub_run_t *run, long rep, char *errstr, size_t errstr_size) {
    int rc = -1, r;
    uint64_t row = 0;
    size_t nf = 0, *lens = NULL;
    char **fields = NULL;
    char id[CW_ARTICLE_MAX_ID + 1];
    cw_csv_t *csv = cw_csv_open(run->o->path, errstr, errstr_size);
    if (!csv) goto done;
    while (!pub_interrupted && (r = cw_csv_next(csv, &nf, &fields, &lens, errstr, errstr_size)) == 1) {
        cw_article_t a;
        int n;
        row++;
        if (nf != 3) {
            cw_seterr(errstr, errstr_size, "%s:%llu: expected 3 columns (class,title,description), got %zu",
                      cw_csv_name(csv), (unsigned long long)cw_csv_line(csv), nf);
            goto done;
        }
        if (run->o->unique_ids)
            n = snprintf(id, sizeof(id), "%s-r%ld-%llu", run->base, rep, (unsigned long long)row);
        else
            n = snprintf(id, sizeof(id), "%s-%llu", run->base, (unsigned long long)row);
        if (n < 0 || (size_t)n > CW_ARTICLE_MAX_ID) {
            cw_seterr(errstr, errstr_size, "%s:%llu: id longer than %u bytes", cw_csv_name(csv),
                      (unsigned long long)cw_csv_line(csv), CW_ARTICLE_MAX_ID);
            goto done;
        }
        memset(&a, 0, sizeof(a));
        a.id.p = id;
        a.id.len = (size_t)n;
        a.title.p = fields[1];
        a.title.len = lens[1];
        a.body.p = fields[2];
        a.body.len = lens[2];
        if (pub_send_article(run, &a, errstr, errstr_size)) goto done;
    }
    if (r < 0 && !pub_interrupted) goto done;
    rc = 0;
done:
    cw_csv_close(csv);
    return rc;
}

static int pub_jsonl_pass(pub_run_t *run, long rep, char *errstr, size_t errstr_size) {
    int rc = -1;
    FILE *fp = NULL;
    char *line = NULL, *idbuf = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    const char *name = strcmp(run->o->path, "-") ? run->o->path : "stdin";

    fp = strcmp(run->o->path, "-") ? fopen(run->o->path, "rb") : stdin;
    if (!fp) {
        cw_seterr(errstr, errstr_size, "%s: %s", run->o->path, strerror(errno));
        goto done;
    }
    idbuf = cw_malloc(CW_ARTICLE_MAX_ID + 32);
    while (!pub_interrupted && (n = getline(&line, &cap, fp)) >= 0) {
        cw_article_t a;
        char why[256];
        size_t len = (size_t)n;
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        {
            size_t k = 0;
            while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
            if (k == len) continue; /* blank line */
        }
        if (cw_json_article_parse(line, len, &a, why, sizeof(why)) != CW_ARTICLE_OK) {
            cw_seterr(errstr, errstr_size, "%s:%llu: %s", name, (unsigned long long)lineno, why);
            goto done;
        }
        if (run->o->unique_ids) {
            int m = snprintf(idbuf, CW_ARTICLE_MAX_ID + 32, "%.*s-r%ld", (int)a.id.len, a.id.p, rep);
            if (m < 0 || (size_t)m > CW_ARTICLE_MAX_ID) {
                cw_seterr(errstr, errstr_size, "%s:%llu: id with its repeat suffix is longer than %u bytes",
                          name, (unsigned long long)lineno, CW_ARTICLE_MAX_ID);
                goto done;
            }
            a.id.p = idbuf;
            a.id.len = (size_t)m;
        }
        if (pub_send_article(run, &a, errstr, errstr_size)) goto done;
    }
    if (ferror(fp)) {
        cw_seterr(errstr, errstr_size, "%s: read error: %s", name, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(line);
    cw_free(idbuf);
    if (fp && fp != stdin) fclose(fp);
    return rc;
}

static int pub_parse(int argc, char **argv, pub_opts_t *o) {
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},  {"key", required_argument, NULL, 'k'},
        {"repeat", required_argument, NULL, 'n'},  {"unique-ids", no_argument, NULL, 'u'},
        {"rate", required_argument, NULL, 'r'},    {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *format = NULL;
    int c;
    char *end;
    memset(o, 0, sizeof(*o));
    o->key_id = 1;
    o->repeat = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:t:f:k:n:ur:qX:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->brokers = optarg; break;
        case 't': o->topic = optarg; break;
        case 'f': format = optarg; break;
        case 'k':
            if (!strcmp(optarg, "id")) o->key_id = 1;
            else if (!strcmp(optarg, "none")) o->key_id = 0;
            else {
                fprintf(stderr, "catwire publish: --key must be id or none\n");
                return CW_EXIT_USAGE;
            }
            break;
        case 'n':
            errno = 0;
            o->repeat = strtol(optarg, &end, 10);
            if (errno || *end || o->repeat < 1) {
                fprintf(stderr, "catwire publish: --repeat needs an integer >= 1\n");
                return CW_EXIT_USAGE;
            }
            break;
        case 'u': o->unique_ids = 1; break;
        case 'r': {
            /* accept "500" and "500/s" */
            errno = 0;
            o->rate = strtod(optarg, &end);
            if (errno || end == optarg || (*end && strcmp(end, "/s")) || o->rate <= 0) {
                fprintf(stderr, "catwire publish: --rate needs a positive number (per second)\n");
                return CW_EXIT_USAGE;
            }
            break;
        }
        case 'q': o->quiet = 1; break;
        case 'X':
            if (o->nprops == PUB_MAX_PROPS) {
                fprintf(stderr, "catwire publish: too many -X properties\n");
                return CW_EXIT_USAGE;
            }
            o->props[o->nprops++] = optarg;
            break;
        case 'h': pub_usage(stdout); return -1;
        default: pub_usage(stderr); return CW_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !o->brokers || !o->topic) {
        fprintf(stderr, "catwire publish: need --brokers, --topic and one FILE (or -)\n");
        pub_usage(stderr);
        return CW_EXIT_USAGE;
    }
    o->path = argv[optind];
    if (format && !strcmp(format, "csv")) o->jsonl = 0;
    else if (format && !strcmp(format, "jsonl")) o->jsonl = 1;
    else if (format) {
        fprintf(stderr, "catwire publish: --format must be csv or jsonl\n");
        return CW_EXIT_USAGE;
    } else o->jsonl = pub_has_suffix(o->path, ".jsonl") || pub_has_suffix(o->path, ".json");
    if (o->repeat > 1 && !strcmp(o->path, "-")) {
        fprintf(stderr, "catwire publish: --repeat needs a file, not stdin\n");
        return CW_EXIT_USAGE;
    }
    return CW_EXIT_OK;
}

int cw_cmd_publish(int argc, char **argv) {
    pub_opts_t o;
    pub_stats_t st;
    pub_run_t run;
    char errstr[512], why[512];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    int rc = CW_EXIT_ERROR, failed_run = 0;
    struct sigaction sa, old_int, old_term;
    double elapsed;

    int prc = pub_parse(argc, argv, &o);
    if (prc < 0) return CW_EXIT_OK; /* --help */
    if (prc) return prc;
    errstr[0] = '\0';
    pub_interrupted = 0;

    memset(&st, 0, sizeof(st));
    memset(&run, 0, sizeof(run));
    conf = cw_kafka_conf_new(o.brokers, errstr, sizeof(errstr));
    if (!conf) goto done;
    /* Idempotence keeps retries from reordering or duplicating articles. */
    if (cw_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) ||
        cw_kafka_conf_set(conf, "client.id", "catwire-publish", errstr, sizeof(errstr)))
        goto done;
    for (size_t i = 0; i < o.nprops; i++)
        if (cw_kafka_conf_set_kv(conf, o.props[i], errstr, sizeof(errstr))) goto done;
    rd_kafka_conf_set_dr_msg_cb(conf, pub_dr_cb);
    rd_kafka_conf_set_opaque(conf, &st);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        cw_seterr(errstr, sizeof(errstr), "kafka producer: %s", why);
        goto done;
    }
    conf = NULL; /* owned by rk now */

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pub_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    run.o = &o;
    run.rk = rk;
    run.st = &st;
    run.t0 = run.last_report = cw_now_s();
    pub_id_base(o.path, run.base, sizeof(run.base));
    for (long rep = 0; rep < o.repeat && !pub_interrupted; rep++) {
        if (o.jsonl ? pub_jsonl_pass(&run, rep, errstr, sizeof(errstr))
                    : pub_csv_pass(&run, rep, errstr, sizeof(errstr))) {
            failed_run = 1;
            break;
        }
    }
    if (failed_run) cw_log_error("publish", "%s", errstr);
    if (pub_interrupted) cw_log_warn("publish", "interrupted; waiting for deliveries of what was sent");

    /* Every message ends delivered or failed (message.timeout.ms bounds it). */
    while (rd_kafka_outq_len(rk) > 0) rd_kafka_flush(rk, 1000);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    elapsed = cw_now_s() - run.t0;
    fprintf(stderr, "published %llu articles to %s: %llu delivered, %llu failed in %.2f s (%.0f articles/s)\n",
            (unsigned long long)run.sent, o.topic, (unsigned long long)st.delivered,
            (unsigned long long)st.failed, elapsed, elapsed > 0 ? (double)st.delivered / elapsed : 0.0);
    if (st.failed) fprintf(stderr, "first delivery error: %s\n", st.first_error);
    rc = (st.failed || failed_run || pub_interrupted) ? CW_EXIT_ERROR : CW_EXIT_OK;
    errstr[0] = '\0';
done:
    if (errstr[0] && rc == CW_EXIT_ERROR && !failed_run) fprintf(stderr, "catwire publish: %s\n", errstr);
    if (conf) rd_kafka_conf_destroy(conf);
    if (rk) rd_kafka_destroy(rk);
    return rc;
}
