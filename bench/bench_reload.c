/* bench_reload.c: hot reload latency, from promote to the first result that
 * carries the new version.
 *
 *   bench_reload [--brokers B] [--reps N] [--rate R] [--poll-ms N] [--buckets N]
 *                [--dim N] [--mode watch|announce|both] [--data DIR]
 *
 * The worker engine (worker.h) and its reloader (reload.h) run in this
 * process against a real broker (--brokers, else $CW_TEST_BROKERS) or the
 * embedded one. Articles stream in at --rate per second the whole time. Two
 * model versions of the same shape (vocabulary of AG News train.csv, --dim,
 * --buckets n-gram rows) are published; each repetition waits a random
 * 300-550 ms, makes the other version current, and times until a result
 * naming it is read from the output topic. Two ways of noticing:
 *   watch     the registry watch alone (reload_poll_ms = --poll-ms), what
 *             `catwire models promote` relies on;
 *   announce  a control-topic announcement right after the promotion, with
 *             the registry watch slowed to a minute so only the message counts.
 * Printed per mode: p50, p90, max and mean over the repetitions. Goal: <= 1 s.
 * The embedded broker answers fetches slowly (it waits fetch.wait.max.ms),
 * so there every client here uses fetch.wait.max.ms = 10. */
#include <librdkafka/rdkafka.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "article.h"
#include "config.h"
#include "csv.h"
#include "kafka_util.h"
#include "log.h"
#include "registry.h"
#include "reload.h"
#include "tokenizer.h"
#include "util.h"
#include "vocab.h"
#include "worker.h"

typedef struct bench_s {
    const char *brokers, *data, *mode;
    int mock, reps, poll_ms;
    double rate;
    uint32_t dim, buckets;
    char dir[64], reg[128], run[64];
    char in[128], out[128], dlq[128], ctl[128];
    char **texts;
    size_t ntexts;
    cw_kafka_mock_t *mk;
    atomic_int stop_producer;
    atomic_size_t produced;
} bench_t;

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "bench_reload: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

/* Vocabulary of train.csv and the texts the stream cycles through. */
static cw_vocab_t *load_data(bench_t *b) {
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/train.csv", b->data);
    cw_csv_t *c = cw_csv_open(path, err, sizeof(err));
    if (!c) die("%s", err);
    cw_vocab_counter_t *cnt = cw_vocab_counter_new();
    cw_tokens_t toks;
    cw_tokens_init(&toks);
    size_t nf, *lens, cap = 0;
    char **f;
    while (cw_csv_next(c, &nf, &f, &lens, err, sizeof(err)) == 1) {
        if (nf < 3) continue;
        size_t tl = lens[1] + 1 + lens[2];
        char *text = cw_malloc(tl + 1);
        snprintf(text, tl + 1, "%s %s", f[1], f[2]);
        cw_tokenize(text, tl, &toks);
        for (size_t t = 0; t < toks.n; t++) cw_vocab_counter_add(cnt, toks.buf + toks.start[t], toks.len[t]);
        cw_grow((void **)&b->texts, &cap, b->ntexts + 1, sizeof(char *));
        b->texts[b->ntexts++] = text;
    }
    cw_csv_close(c);
    cw_tokens_free(&toks);
    cw_vocab_t *v = cw_vocab_build(cnt, 1, 0);
    cw_vocab_counter_destroy(cnt);
    return v;
}

static void create_topic(bench_t *b, const char *topic, int partitions) {
    char err[512];
    int rc = b->mock ? cw_kafka_mock_create_topic(b->mk, topic, partitions, err, sizeof(err))
                     : cw_kafka_create_topic(b->brokers, topic, partitions, 30000, NULL, err, sizeof(err));
    if (rc != 0) die("creating a topic: %s", err);
}

static void conf_set(cw_worker_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (cw_worker_conf_set(c, k, v, err, sizeof(err)) != 0) die("%s", err);
}

static void *producer_main(void *arg) {
    bench_t *b = arg;
    char err[512], id[64];
    rd_kafka_conf_t *c = cw_kafka_conf_new(b->brokers, err, sizeof(err));
    if (!c || cw_kafka_conf_set(c, "linger.ms", "2", err, sizeof(err)) != 0) die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!rk) die("producer: %s", err);
    double t0 = cw_now_s();
    for (size_t i = 0; !atomic_load(&b->stop_producer); i++) {
        cw_article_t a;
        memset(&a, 0, sizeof(a));
        snprintf(id, sizeof(id), "b-%zu", i);
        const char *text = b->texts[i % b->ntexts];
        a.id = (cw_str_t){id, strlen(id)};
        a.body = (cw_str_t){text, strlen(text)};
        void *buf = NULL;
        size_t len = 0;
        if (cw_article_encode(&a, &buf, &len) != 0) die("%s", "encode");
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(b->in), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
        atomic_store(&b->produced, i + 1);
        double ahead = (double)(i + 1) / b->rate - (cw_now_s() - t0);
        if (ahead > 0.002) usleep((useconds_t)(ahead * 1e6));
    }
    rd_kafka_flush(rk, 5000);
    rd_kafka_destroy(rk);
    return NULL;
}

static void *worker_main(void *arg) {
    cw_worker_run(arg);
    return NULL;
}

static rd_kafka_t *output_reader(bench_t *b) {
    char err[512], group[200];
    rd_kafka_conf_t *c = cw_kafka_conf_new(b->brokers, err, sizeof(err));
    snprintf(group, sizeof(group), "bench-reload-reader-%s", b->run);
    if (!c || cw_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
        cw_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
        (b->mock && cw_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof(err))))
        die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) die("reader: %s", err);
    rd_kafka_poll_set_consumer(rk);
    int np = cw_kafka_partition_count(rk, b->out, 10000, err, sizeof(err));
    if (np <= 0) die("%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) rd_kafka_topic_partition_list_add(l, b->out, i)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Read results until one names version want and was processed at or after
 * since_ms (results of earlier batches still in flight on other partitions
 * do not count); returns the time it arrived, -1 on timeout. */
static double wait_version(rd_kafka_t *rk, int64_t want, int64_t since_ms, double timeout_s) {
    double end = cw_now_s() + timeout_s;
    char err[256];
    float scores[16];
    while (cw_now_s() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 20);
        if (!m) continue;
        cw_result_t r;
        int hit = !m->err && cw_result_decode(m->payload, m->len, &r, scores, 16, NULL, 0, NULL, 0, NULL, 0, err,
                                              sizeof(err)) == 0 && r.model_version == want &&
                  r.processed_at >= since_ms;
        rd_kafka_message_destroy(m);
        if (hit) return cw_now_s();
    }
    return -1;
}

static rd_kafka_t *control_producer(bench_t *b) {
    char err[512];
    rd_kafka_conf_t *c = cw_kafka_conf_new(b->brokers, err, sizeof(err));
    if (!c || cw_kafka_conf_set(c, "linger.ms", "0", err, sizeof(err))) die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!rk) die("control producer: %s", err);
    return rk;
}

static void announce(bench_t *b, rd_kafka_t *rk, int64_t v) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "type", 4);
    msgpack_pack_str(&pk, 13);
    msgpack_pack_str_body(&pk, "model.current", 13);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "model", 5);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "news", 4);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "version", 7);
    msgpack_pack_int64(&pk, v);
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(b->ctl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_KEY("news", 4), RD_KAFKA_V_VALUE(sb.data, sb.size), RD_KAFKA_V_END);
    rd_kafka_flush(rk, 5000);
    msgpack_sbuffer_destroy(&sb);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run_mode(bench_t *b, int announce_mode) {
    char err[1024], num[32];
    cw_worker_conf_t conf;
    cw_worker_conf_defaults(&conf);
    char group[200];
    snprintf(group, sizeof(group), "bench-reload-%s-%d", b->run, announce_mode);
    conf_set(&conf, "brokers", b->brokers);
    conf_set(&conf, "input_topic", b->in);
    conf_set(&conf, "output_topic", b->out);
    conf_set(&conf, "dead_letter_topic", b->dlq);
    conf_set(&conf, "control_topic", announce_mode ? b->ctl : "");
    conf_set(&conf, "group_id", group);
    conf_set(&conf, "registry", b->reg);
    conf_set(&conf, "model", "news");
    conf_set(&conf, "worker_id", "bench");
    conf_set(&conf, "stats_interval_ms", "0");
    conf_set(&conf, "max_articles", "256");
    conf_set(&conf, "max_wait_ms", "5");
    snprintf(num, sizeof(num), "%d", announce_mode ? 60000 : b->poll_ms);
    conf_set(&conf, "reload_poll_ms", num);
    if (b->mock) conf_set(&conf, "kafka.fetch.wait.max.ms", "10");

    char reg_err[512];
    if (cw_registry_set_current(b->reg, "news", 1, reg_err, sizeof(reg_err)) != 0) die("%s", reg_err);
    cw_worker_t *w = cw_worker_new(&conf, err, sizeof(err));
    if (!w) die("worker: %s", err);
    cw_reload_t *r = cw_reload_start_worker(w, &conf, err, sizeof(err));
    if (!r) die("reload: %s", err);
    pthread_t wt, pt;
    pthread_create(&wt, NULL, worker_main, w);
    atomic_store(&b->stop_producer, 0);
    pthread_create(&pt, NULL, producer_main, b);
    rd_kafka_t *reader = output_reader(b);
    rd_kafka_t *ctl = announce_mode ? control_producer(b) : NULL;
    if (wait_version(reader, 1, 0, 30) < 0) die("%s", "no result from v1 within 30 s");
    if (announce_mode) usleep(1500000);   /* the reloader assigns the control topic when it starts */

    double *lat = cw_calloc((size_t)b->reps, sizeof(double));
    int ok = 0;
    cw_rng_t rng;
    cw_rng_seed(&rng, 99);
    int64_t v = 1;
    for (int i = 0; i < b->reps; i++) {
        usleep((useconds_t)(300000 + cw_rng_below(&rng, 250000)));
        v = v == 1 ? 2 : 1;
        double t0 = cw_now_s();
        int64_t t0_ms = cw_wall_ms();
        if (cw_registry_set_current(b->reg, "news", v, reg_err, sizeof(reg_err)) != 0) die("%s", reg_err);
        if (ctl) announce(b, ctl, v);
        double t1 = wait_version(reader, v, t0_ms, 10);
        if (t1 < 0) {
            fprintf(stderr, "bench_reload: repetition %d: no result from v%lld within 10 s\n", i, (long long)v);
            continue;
        }
        lat[ok++] = t1 - t0;
    }
    qsort(lat, (size_t)ok, sizeof(double), cmp_d);
    double sum = 0;
    for (int i = 0; i < ok; i++) sum += lat[i];
    cw_worker_stats_t ws;
    cw_worker_get_stats(w, &ws);
    if (ok)
        printf("%-8s %3d/%d reloads  p50 %6.0f ms  p90 %6.0f ms  max %6.0f ms  mean %6.0f ms  (%s, %.0f articles/s, "
               "%llu swaps)\n", announce_mode ? "announce" : "watch", ok, b->reps, lat[ok / 2] * 1e3,
               lat[(ok * 9) / 10 < ok ? (ok * 9) / 10 : ok - 1] * 1e3, lat[ok - 1] * 1e3, sum / ok * 1e3,
               announce_mode ? "control topic, registry watch 60 s" : "registry watch", b->rate,
               (unsigned long long)ws.reloads);
    else
        printf("%-8s no reload observed\n", announce_mode ? "announce" : "watch");
    fflush(stdout);

    atomic_store(&b->stop_producer, 1);
    pthread_join(pt, NULL);
    cw_worker_stop(w);
    pthread_join(wt, NULL);
    cw_reload_stop(r);
    cw_worker_destroy(w);
    if (ctl) rd_kafka_destroy(ctl);
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cw_free(lat);
    cw_worker_conf_free(&conf);
}

static const char usage[] = "usage: bench_reload [--brokers B] [--reps N] [--rate R] [--poll-ms N] [--buckets N] "
                            "[--dim N] [--mode watch|announce|both] [--data DIR]";

int main(int argc, char **argv) {
    bench_t b;
    memset(&b, 0, sizeof(b));
    b.data = getenv("CW_DATA") ? getenv("CW_DATA") : "../shared/data/ag_news";
    b.brokers = getenv("CW_TEST_BROKERS");
    b.reps = 10;
    b.rate = 2000;
    b.poll_ms = 250;
    b.dim = 64;
    b.buckets = 200000;
    b.mode = "both";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n", usage);
            return 0;
        }
        if (!val) die("%s", usage);
        if (!strcmp(a, "--brokers")) b.brokers = val;
        else if (!strcmp(a, "--reps")) b.reps = atoi(val);
        else if (!strcmp(a, "--rate")) b.rate = atof(val);
        else if (!strcmp(a, "--poll-ms")) b.poll_ms = atoi(val);
        else if (!strcmp(a, "--buckets")) b.buckets = (uint32_t)atoi(val);
        else if (!strcmp(a, "--dim")) b.dim = (uint32_t)atoi(val);
        else if (!strcmp(a, "--mode")) b.mode = val;
        else if (!strcmp(a, "--data")) b.data = val;
        else die("unknown argument '%s'", a);
        i++;
    }
    if (b.reps < 1 || b.rate <= 0 || b.poll_ms < 50 || b.dim == 0) die("%s", "bad arguments");
    cw_log_set_level(CW_LOG_WARN);

    char err[512];
    if (!b.brokers || !*b.brokers) {
        b.mock = 1;
        b.mk = cw_kafka_mock_new(1, err, sizeof(err));
        if (!b.mk) die("mock: %s", err);
        b.brokers = cw_kafka_mock_bootstraps(b.mk);
    }
    snprintf(b.run, sizeof(b.run), "%d-%lld", (int)getpid(), (long long)cw_wall_ms());
    snprintf(b.dir, sizeof(b.dir), "/tmp/bench_reload.XXXXXX");
    if (!mkdtemp(b.dir)) die("%s", "mkdtemp");
    snprintf(b.reg, sizeof(b.reg), "%s/registry", b.dir);
    snprintf(b.in, sizeof(b.in), "bench-reload-in-%s", b.run);
    snprintf(b.out, sizeof(b.out), "bench-reload-out-%s", b.run);
    snprintf(b.dlq, sizeof(b.dlq), "bench-reload-dlq-%s", b.run);
    snprintf(b.ctl, sizeof(b.ctl), "bench-reload-ctl-%s", b.run);
    create_topic(&b, b.in, 8);
    create_topic(&b, b.out, 8);
    create_topic(&b, b.dlq, 1);
    create_topic(&b, b.ctl, 1);

    /* Two versions of the same shape. */
    cw_vocab_t *vocab = load_data(&b);
    static const char *const labels[] = {"World", "Sports", "Business", "Sci/Tech"};
    size_t words = cw_vocab_size(vocab);
    /* The model owns its vocabulary, so version 2 gets a copy. */
    cw_vocab_t *vocab2 = cw_vocab_new();
    for (uint32_t id = 1; id < words; id++) {
        size_t len;
        const char *tok = cw_vocab_token(vocab, id, &len);
        cw_vocab_push(vocab2, tok, len);
    }
    cw_vocab_t *vv[2] = {vocab, vocab2};
    for (uint64_t seed = 1; seed <= 2; seed++) {
        cw_model_t *m = cw_model_new(vv[seed - 1], b.dim, labels, 4, 2, b.buckets);
        cw_model_init_uniform(m, 0.5f, seed);
        int64_t ver = cw_registry_publish(b.reg, "news", m, "{\"bench\":true}", err, sizeof(err));
        if (ver != (int64_t)seed) die("publish: %s", err);
        if (seed == 1)
            printf("bench_reload: %s broker %s; model %zu words + %u buckets, dim %u (%.0f MiB of weights); "
                   "%d repetitions per mode at %.0f articles/s\n", b.mock ? "embedded" : "real", b.brokers, words,
                   b.buckets, b.dim, (double)m->nrows * b.dim * 4 / 1048576.0, b.reps, b.rate);
        cw_model_destroy(m);
    }
    fflush(stdout);
    if (!strcmp(b.mode, "watch") || !strcmp(b.mode, "both")) run_mode(&b, 0);
    if (!strcmp(b.mode, "announce") || !strcmp(b.mode, "both")) run_mode(&b, 1);

    for (size_t i = 0; i < b.ntexts; i++) cw_free(b.texts[i]);
    cw_free(b.texts);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", b.dir);
    cw_kafka_mock_destroy(b.mk);
    return 0;
}
