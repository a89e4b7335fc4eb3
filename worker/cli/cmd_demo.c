/* cmd_demo.c: `catwire demo`: the whole job in one command, with no Kafka
 * to install. An embedded broker (librdkafka's mock cluster) unless
 * --brokers names a real one; a model loaded from the registry, or trained
 * on the AG News train file and published there when absent; a worker
 * running in this process; the AG News test articles streamed in while the
 * worker runs; results read back with a running accuracy; a summary. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "dataset.h"
#include "e2e.h"
#include "kafka_util.h"
#include "log.h"
#include "registry.h"
#include "train.h"
#include "util.h"
#include "worker.h"

static const char *const demo_labels[] = {"World", "Sports", "Business", "Sci/Tec"};
#define DEMO_NLABELS 4

typedef struct demo_opts_s {
    const char *brokers;
    const char *registry;
    const char *model;
    const char *data;
    const char *device;
    uint64_t articles;
    int partitions;
    int64_t max_articles;
    double rate;
    int samples;
    int verbose;
} demo_opts_t;

typedef struct demo_rows_s {
    cw_e2e_row_t *rows;
    size_t n, cap;
    char **bufs; /* the CSV fields, owned */
    size_t nbufs, bufcap;
} demo_rows_t;

typedef struct demo_view_s {
    const demo_opts_t *o;
    int printed;
} demo_view_t;

/* Why the streaming stops early: 1 a signal, 2 the worker thread ended. */
#define DEMO_STOP_SIGNAL 1
#define DEMO_STOP_WORKER 2
static volatile sig_atomic_t demo_interrupted;

static void demo_on_signal(int sig) {
    (void)sig;
    demo_interrupted = DEMO_STOP_SIGNAL;
}

static void demo_usage(FILE *f) {
    fprintf(f,
        "usage: catwire demo [OPTIONS]\n"
        "\n"
        "Run the whole job on this machine: a Kafka broker (embedded unless --brokers),\n"
        "a model (loaded from the registry, or trained on the AG News train file and\n"
        "published there when the registry has none), a worker in this process, the\n"
        "AG News test articles streamed in while it runs, and the results read back with\n"
        "a running accuracy. Ends with a summary: articles, results, dead letters,\n"
        "accuracy, throughput and publish-to-result latency (p50/p99).\n"
        "\n"
        "Options:\n"
        "  -b, --brokers B        use this Kafka cluster instead of the embedded broker;\n"
        "                         topics catwire-demo-<time>-<pid>-{articles,results,dead}\n"
        "                         are created there (and left for inspection)\n"
        "  -r, --registry DIR     model registry (default $CATWIRE_REGISTRY, else ./registry)\n"
        "  -m, --model NAME       model name or NAME@VERSION (default news)\n"
        "  -d, --data DIR         AG News folder with train.csv and test.csv (default\n"
        "                         $CATWIRE_DATA, else ../shared/data/ag_news)\n"
        "  -n, --articles N       articles to stream (default 7600, the test set; more\n"
        "                         repeats it with unique ids)\n"
        "  -p, --partitions N     partitions of the input and result topics (default 16)\n"
        "  -D, --device D         cpu | cuda | cuda:N | auto (default cpu)\n"
        "  -B, --max-articles N   the worker's batch size limit (default: the worker's)\n"
        "      --rate N           publish at most N articles/s (default: as fast as the\n"
        "                         worker keeps up)\n"
        "  -s, --samples N        results to print as samples (default 8)\n"
        "  -v, --verbose          the worker's and librdkafka's info logs too\n"
        "  -h, --help             this text\n"
        "\n"
        "The embedded broker keeps about 5 MiB per partition and drops older data, so\n"
        "the demo streams: it publishes at most 2000 articles ahead of the results\n"
        "(so the latency printed includes up to that much queueing at full speed).\n"
        "Exit codes: 0 every article classified, 1 error or missing results, 2 usage.\n");
}

static int demo_parse_u64(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

static int demo_parse(int argc, char **argv, demo_opts_t *o) {
    enum { OPT_RATE = 1000 };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},    {"registry", required_argument, NULL, 'r'},
        {"model", required_argument, NULL, 'm'},      {"data", required_argument, NULL, 'd'},
        {"articles", required_argument, NULL, 'n'},   {"partitions", required_argument, NULL, 'p'},
        {"device", required_argument, NULL, 'D'},     {"max-articles", required_argument, NULL, 'B'},
        {"rate", required_argument, NULL, OPT_RATE},  {"samples", required_argument, NULL, 's'},
        {"verbose", no_argument, NULL, 'v'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int c;
    memset(o, 0, sizeof(*o));
    o->registry = getenv("CATWIRE_REGISTRY");
    if (!o->registry || !*o->registry) o->registry = "registry";
    o->data = getenv("CATWIRE_DATA");
    if (!o->data || !*o->data) o->data = "../shared/data/ag_news";
    o->model = "news";
    o->device = "cpu";
    o->articles = 7600;
    o->partitions = 16;
    o->samples = 8;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:r:m:d:n:p:D:B:s:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->brokers = optarg; break;
        case 'r': o->registry = optarg; break;
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'D': o->device = optarg; break;
        case 'n':
            if (demo_parse_u64(optarg, &o->articles) || !o->articles || o->articles > 100000000) {
                fprintf(stderr, "catwire demo: --articles needs an integer in 1..100000000\n");
                return CW_EXIT_USAGE;
            }
            break;
        case 'p':
            if (demo_parse_u64(optarg, &v) || !v || v > 1024) {
                fprintf(stderr, "catwire demo: --partitions needs an integer in 1..1024\n");
                return CW_EXIT_USAGE;
            }
            o->partitions = (int)v;
            break;
        case 'B':
            if (demo_parse_u64(optarg, &v) || !v || v > 65536) {
                fprintf(stderr, "catwire demo: --max-articles needs an integer in 1..65536\n");
                return CW_EXIT_USAGE;
            }
            o->max_articles = (int64_t)v;
            break;
        case OPT_RATE: {
            char *end;
            errno = 0;
            o->rate = strtod(optarg, &end);
            if (errno || end == optarg || *end || o->rate <= 0) {
                fprintf(stderr, "catwire demo: --rate needs a positive number\n");
                return CW_EXIT_USAGE;
            }
            break;
        }
        case 's':
            if (demo_parse_u64(optarg, &v) || v > 1000) {
                fprintf(stderr, "catwire demo: --samples needs an integer in 0..1000\n");
                return CW_EXIT_USAGE;
            }
            o->samples = (int)v;
            break;
        case 'v': o->verbose = 1; break;
        case 'h': demo_usage(stdout); return -1;
        default: demo_usage(stderr); return CW_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "catwire demo: unexpected argument '%s'\n", argv[optind]);
        demo_usage(stderr);
        return CW_EXIT_USAGE;
    }
    return CW_EXIT_OK;
}

static void demo_rows_free(demo_rows_t *r) {
    for (size_t i = 0; i < r->nbufs; i++) cw_free(r->bufs[i]);
    cw_free(r->bufs);
    cw_free(r->rows);
    memset(r, 0, sizeof(*r));
}

static char *demo_keep(demo_rows_t *r, const char *s, size_t n) {
    char *p = cw_strndup(s, n);
    cw_grow((void **)&r->bufs, &r->bufcap, r->nbufs + 1, sizeof(char *));
    r->bufs[r->nbufs++] = p;
    return p;
}

/* The test CSV: class number (1-based) -> label id, title, description. */
static int demo_rows_load(demo_rows_t *r, const char *path, char *errstr, size_t errstr_size) {
    size_t nf, *lens;
    char **fields;
    int rc = -1, st;
    cw_csv_t *csv = cw_csv_open(path, errstr, errstr_size);
    if (!csv) return -1;
    while ((st = cw_csv_next(csv, &nf, &fields, &lens, errstr, errstr_size)) == 1) {
        cw_e2e_row_t *row;
        char *end;
        long cls;
        if (nf != 3) {
            cw_seterr(errstr, errstr_size, "%s:%llu: expected 3 columns (class,title,description), got %zu",
                      cw_csv_name(csv), (unsigned long long)cw_csv_line(csv), nf);
            goto done;
        }
        cls = strtol(fields[0], &end, 10);
        if (*end || end == fields[0] || cls < 1 || cls > DEMO_NLABELS) {
            cw_seterr(errstr, errstr_size, "%s:%llu: class '%s' is not 1..%d", cw_csv_name(csv),
                      (unsigned long long)cw_csv_line(csv), fields[0], DEMO_NLABELS);
            goto done;
        }
        cw_grow((void **)&r->rows, &r->cap, r->n + 1, sizeof(*r->rows));
        row = &r->rows[r->n++];
        row->label = (int32_t)(cls - 1);
        row->title = demo_keep(r, fields[1], lens[1]);
        row->title_len = lens[1];
        row->body = demo_keep(r, fields[2], lens[2]);
        row->body_len = lens[2];
    }
    if (st < 0) goto done;
    if (!r->n) {
        cw_seterr(errstr, errstr_size, "%s: no articles", path);
        goto done;
    }
    rc = 0;
done:
    cw_csv_close(csv);
    return rc;
}

static void demo_train_progress(const cw_train_epoch_t *e, void *opaque) {
    (void)opaque;
    if (e->valid_acc >= 0)
        printf("  training: phase %u epoch %u: loss %.4f, validation accuracy %.2f%%, %.0f examples/s\n",
               e->phase, e->epoch, e->loss_mean, 100.0 * e->valid_acc, e->examples_per_s);
    else
        printf("  training: phase %u epoch %u: loss %.4f, %.0f examples/s\n", e->phase, e->epoch,
               e->loss_mean, e->examples_per_s);
    fflush(stdout);
}

static void demo_train_note(const char *msg, void *opaque) {
    (void)opaque;
    printf("  training: %s\n", msg);
    fflush(stdout);
}

/* Load the model ref names, or train the default recipe on train.csv and
 * publish it as the next version of the name. */
static int demo_ensure_model(const demo_opts_t *o, char *errstr, size_t errstr_size) {
    char why[512], path[4096], meta[1024];
    char *name = NULL, *ckpt = NULL;
    int64_t version = 0;
    cw_dataset_t *ds = NULL;
    cw_dataset_opts_t dso;
    cw_train_opts_t to;
    cw_train_result_t res;
    int rc = -1, trained = 0;
    double acc = 0;

    memset(&res, 0, sizeof(res));
    if (!cw_registry_resolve(o->registry, o->model, &name, &version, &ckpt, why, sizeof(why))) {
        printf("model: %s@%" PRId64 " from registry %s\n", name, version, o->registry);
        rc = 0;
        goto done;
    }
    if (strchr(o->model, '@')) {
        cw_seterr(errstr, errstr_size, "model %s: %s", o->model, why);
        goto done;
    }
    printf("model: %s not in registry %s (%s); training the default recipe\n", o->model,
           o->registry, why);
    snprintf(path, sizeof(path), "%s/train.csv", o->data);
    cw_dataset_opts_init(&dso);
    dso.labels = demo_labels;
    dso.nlabels = DEMO_NLABELS;
    ds = cw_dataset_load(path, &dso, errstr, errstr_size);
    if (!ds) goto done;
    if (cw_train_opts_init(&to, "default", errstr, errstr_size)) goto done;
    to.progress = demo_train_progress;
    to.note = demo_train_note;
    printf("  training on %s: %zu articles, %u threads\n", path, ds->n,
           to.threads ? to.threads : cw_train_ncpus());
    fflush(stdout);
    if (cw_train(ds, &to, &res, errstr, errstr_size)) goto done;
    trained = 1;
    if (cw_train_evaluate(res.model, ds, 0, &acc, NULL, NULL, errstr, errstr_size)) goto done;
    snprintf(meta, sizeof(meta),
             "{\"recipe\":\"default\",\"trained_by\":\"catwire demo\",\"train_file\":\"train.csv\","
             "\"train_rows\":%zu,\"train_accuracy\":%.6f,\"best_epoch\":%u,\"train_seconds\":%.3f,"
             "\"data_fingerprint\":\"%016" PRIx64 "\"}",
             ds->n, acc, res.best_epoch, res.seconds, ds->fingerprint);
    if (cw_mkdir_p(o->registry, errstr, errstr_size)) goto done;
    version = cw_registry_publish(o->registry, o->model, res.model, meta, errstr, errstr_size);
    if (version < 0) goto done;
    printf("model: trained in %.1f s (train accuracy %.2f%%), published as %s@%" PRId64 " in %s\n",
           res.seconds, 100.0 * acc, o->model, version, o->registry);
    rc = 0;
done:
    fflush(stdout);
    if (trained) cw_train_result_free(&res);
    cw_dataset_destroy(ds);
    cw_free(name);
    cw_free(ckpt);
    return rc;
}

static void demo_on_result(void *opaque, uint64_t index, const cw_e2e_row_t *row,
                           const cw_result_t *r, double latency_ms) {
    demo_view_t *v = opaque;
    const char *truth = row->label >= 0 && row->label < DEMO_NLABELS ? demo_labels[row->label] : "?";
    if (v->printed >= v->o->samples) return;
    if (!v->printed) printf("sample results (label, confidence, true class, latency, title):\n");
    v->printed++;
    printf("  %-9.*s %-8s %.3f %s %-8s %6.1f ms  %.56s\n", (int)r->id.len, r->id.p, r->label,
           r->confidence, r->label_id == row->label ? "==" : "!=", truth, latency_ms, row->title);
    fflush(stdout);
    (void)index;
}

static void demo_on_progress(void *opaque, const cw_e2e_report_t *rep) {
    (void)opaque;
    printf("[%5.1f s] %" PRIu64 " published, %" PRIu64 " results, accuracy %.2f%%, %.0f articles/s\n",
           rep->elapsed_s, rep->published, rep->results,
           rep->labelled ? 100.0 * (double)rep->correct / (double)rep->labelled : 0.0,
           rep->throughput);
    fflush(stdout);
}

typedef struct demo_worker_s {
    cw_worker_t *w;
    int rc;
    atomic_int stopping; /* the demo asked it to stop */
} demo_worker_t;

static void *demo_worker_main(void *arg) {
    demo_worker_t *dw = arg;
    dw->rc = cw_worker_run(dw->w);
    /* Only cw_worker_stop() should end it; anything else stops the stream. */
    if (!atomic_load(&dw->stopping) && !demo_interrupted) demo_interrupted = DEMO_STOP_WORKER;
    return NULL;
}

static int demo_conf(cw_worker_conf_t *c, const demo_opts_t *o, const char *brokers,
                     const char *in, const char *out, const char *dead, const char *group,
                     int embedded, char *errstr, size_t errstr_size) {
    char num[32];
    if (cw_worker_conf_set(c, "brokers", brokers, errstr, errstr_size) ||
        cw_worker_conf_set(c, "input_topic", in, errstr, errstr_size) ||
        cw_worker_conf_set(c, "output_topic", out, errstr, errstr_size) ||
        cw_worker_conf_set(c, "dead_letter_topic", dead, errstr, errstr_size) ||
        cw_worker_conf_set(c, "group_id", group, errstr, errstr_size) ||
        cw_worker_conf_set(c, "registry", o->registry, errstr, errstr_size) ||
        cw_worker_conf_set(c, "model", o->model, errstr, errstr_size) ||
        cw_worker_conf_set(c, "device", o->device, errstr, errstr_size) ||
        cw_worker_conf_set(c, "worker_id", "demo-worker", errstr, errstr_size) ||
        cw_worker_conf_set(c, "log_level", o->verbose ? "info" : "warn", errstr, errstr_size))
        return -1;
    /* The embedded broker answers a fetch only when fetch.wait.max.ms has
     * passed, even when data arrived meanwhile (a real broker answers at
     * once), so the default 500 ms would add up to half a second per fetch. */
    if (embedded && cw_worker_conf_set(c, "kafka.fetch.wait.max.ms", "10", errstr, errstr_size))
        return -1;
    if (o->max_articles) {
        snprintf(num, sizeof(num), "%" PRId64, o->max_articles);
        if (cw_worker_conf_set(c, "max_articles", num, errstr, errstr_size)) return -1;
    }
    return 0;
}

int cw_cmd_demo(int argc, char **argv) {
    demo_opts_t o;
    demo_rows_t rows;
    demo_view_t view;
    demo_worker_t dw;
    cw_worker_conf_t wc;
    cw_worker_stats_t ws;
    cw_e2e_opts_t eo;
    cw_e2e_report_t rep;
    cw_kafka_mock_t *mk = NULL;
    pthread_t worker_thread;
    struct sigaction sa, old_int, old_term;
    char errstr[1024] = "", path[4096], in[128], out[128], dead[128], group[96], prefix[48];
    const char *brokers;
    int rc = CW_EXIT_ERROR, worker_started = 0, conf_ready = 0, signals_set = 0;
    double t_start = cw_now_s();

    int prc = demo_parse(argc, argv, &o);
    if (prc < 0) return CW_EXIT_OK;
    if (prc) return prc;
    memset(&rows, 0, sizeof(rows));
    memset(&dw, 0, sizeof(dw));
    atomic_init(&dw.stopping, 0);
    memset(&view, 0, sizeof(view));
    view.o = &o;
    demo_interrupted = 0;
    cw_log_set_level(o.verbose ? CW_LOG_INFO : CW_LOG_WARN);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = demo_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signals_set = 1;

    /* 1. The articles first: a wrong --data fails before anything starts. */
    snprintf(path, sizeof(path), "%s/test.csv", o.data);
    if (demo_rows_load(&rows, path, errstr, sizeof(errstr))) goto done;

    /* 2. The model. */
    if (demo_ensure_model(&o, errstr, sizeof(errstr))) goto done;
    if (demo_interrupted) goto interrupted;

    /* 3. The broker and topics. */
    if (o.brokers) {
        /* fresh topics per run, so no earlier run's data is read */
        long stamp = (long)time(NULL), pid = (long)getpid();
        int created;
        brokers = o.brokers;
        snprintf(in, sizeof(in), "catwire-demo-%ld-%ld-articles", stamp, pid);
        snprintf(out, sizeof(out), "catwire-demo-%ld-%ld-results", stamp, pid);
        snprintf(dead, sizeof(dead), "catwire-demo-%ld-%ld-dead", stamp, pid);
        if (cw_kafka_create_topic(brokers, in, o.partitions, 30000, &created, errstr, sizeof(errstr)) ||
            cw_kafka_create_topic(brokers, out, o.partitions, 30000, &created, errstr, sizeof(errstr)) ||
            cw_kafka_create_topic(brokers, dead, 1, 30000, &created, errstr, sizeof(errstr)))
            goto done;
        printf("broker: %s; topics %s -> %s (dead letters: %s), %d partitions\n", brokers, in, out,
               dead, o.partitions);
    } else {
        mk = cw_kafka_mock_new(1, errstr, sizeof(errstr));
        if (!mk) goto done;
        brokers = cw_kafka_mock_bootstraps(mk);
        snprintf(in, sizeof(in), "articles");
        snprintf(out, sizeof(out), "results");
        snprintf(dead, sizeof(dead), "articles.dead");
        if (cw_kafka_mock_create_topic(mk, in, o.partitions, errstr, sizeof(errstr)) ||
            cw_kafka_mock_create_topic(mk, out, o.partitions, errstr, sizeof(errstr)) ||
            cw_kafka_mock_create_topic(mk, dead, 1, errstr, sizeof(errstr)))
            goto done;
        printf("broker: embedded (librdkafka mock cluster) at %s; topics %s -> %s (dead letters: %s), "
               "%d partitions\n", brokers, in, out, dead, o.partitions);
    }

    /* 4. The worker, on its own thread. */
    snprintf(group, sizeof(group), "catwire-demo-%ld", (long)getpid());
    cw_worker_conf_defaults(&wc);
    conf_ready = 1;
    if (demo_conf(&wc, &o, brokers, in, out, dead, group, mk != NULL, errstr, sizeof(errstr)))
        goto done;
    dw.w = cw_worker_new(&wc, errstr, sizeof(errstr));
    if (!dw.w) goto done;
    if (pthread_create(&worker_thread, NULL, demo_worker_main, &dw)) {
        cw_seterr(errstr, sizeof(errstr), "cannot start the worker thread");
        goto done;
    }
    worker_started = 1;
    printf("worker: started in-process (group %s, device %s)\n", group, o.device);

    /* 5. Warm-up: the worker joins its consumer group (the embedded broker
     * waits about 3 s for more members before the first assignment); a few
     * articles answered mean it is serving. Not counted below. */
    memset(&eo, 0, sizeof(eo));
    eo.brokers = brokers;
    eo.input_topic = in;
    eo.output_topic = out;
    eo.rows = rows.rows;
    eo.nrows = rows.n;
    eo.count = 64;
    eo.id_prefix = "warmup-";
    eo.idle_timeout_s = 60;
    if (cw_e2e_run(&eo, &demo_interrupted, &rep, errstr, sizeof(errstr))) goto done;
    if (demo_interrupted) goto interrupted;
    if (!rep.complete) {
        cw_seterr(errstr, sizeof(errstr), "the worker answered %" PRIu64 " of %" PRIu64
                  " warm-up articles within 60 s", rep.results, eo.count);
        goto done;
    }
    printf("worker: joined its group and answered %" PRIu64 " warm-up articles after %.1f s\n",
           eo.count, rep.elapsed_s);

    /* 6. Stream the articles in and the results out. */
    snprintf(prefix, sizeof(prefix), "art-");
    memset(&eo, 0, sizeof(eo));
    eo.brokers = brokers;
    eo.input_topic = in;
    eo.output_topic = out;
    eo.dead_letter_topic = dead;
    eo.rows = rows.rows;
    eo.nrows = rows.n;
    eo.count = o.articles;
    eo.id_prefix = prefix;
    eo.rate = o.rate;
    eo.window = 2000;
    eo.idle_timeout_s = 60;
    eo.on_result = demo_on_result;
    eo.on_progress = demo_on_progress;
    eo.progress_interval_s = 0.5;
    eo.progress_every = 1000;
    eo.opaque = &view;
    printf("streaming %" PRIu64 " articles from %s%s\n", o.articles, path,
           o.articles > rows.n ? " (repeated with unique ids)" : "");
    fflush(stdout);
    if (cw_e2e_run(&eo, &demo_interrupted, &rep, errstr, sizeof(errstr))) goto done;

    /* Final worker numbers after its graceful shutdown (deliveries acknowledged). */
    atomic_store(&dw.stopping, 1);
    cw_worker_stop(dw.w);
    pthread_join(worker_thread, NULL);
    worker_started = 0;
    cw_worker_get_stats(dw.w, &ws);
    printf("\nsummary\n");
    printf("  articles      %" PRIu64 " published, %" PRIu64 " delivered, %" PRIu64 " failed\n",
           rep.published, rep.delivered, rep.delivery_failed);
    printf("  results       %" PRIu64 " (duplicates %" PRIu64 ", missing %" PRIu64 ")\n", rep.results,
           rep.duplicates, rep.published - rep.results);
    printf("  dead letters  %" PRIu64 "\n", rep.dead_letters);
    printf("  accuracy      %.2f%% (%" PRIu64 " of %" PRIu64 " labels equal the test set's class)\n",
           rep.labelled ? 100.0 * (double)rep.correct / (double)rep.labelled : 0.0, rep.correct,
           rep.labelled);
    printf("  throughput    %.0f articles/s (first publish to last result: %.2f s)\n", rep.throughput,
           rep.elapsed_s);
    printf("  latency       p50 %.1f ms, p99 %.1f ms, max %.1f ms (publish to result consumed)\n",
           rep.lat_p50_ms, rep.lat_p99_ms, rep.lat_max_ms);
    printf("  worker        %" PRIu64 " consumed, %" PRIu64 " results produced, %" PRIu64
           " batches (mean %.1f articles), model version %" PRId64 "\n",
           ws.consumed, ws.produced, ws.batches,
           ws.batches ? (double)ws.batched_articles / (double)ws.batches : 0.0, ws.model_version);
    printf("  wall time     %.1f s\n", cw_now_s() - t_start);
    if (demo_interrupted) goto interrupted;
    if (!rep.complete || rep.delivery_failed) {
        cw_seterr(errstr, sizeof(errstr), "%" PRIu64 " of %" PRIu64 " articles have no result",
                  o.articles - rep.results, o.articles);
        goto done;
    }
    rc = CW_EXIT_OK;
    goto done;
interrupted:
    cw_seterr(errstr, sizeof(errstr), "%s", demo_interrupted == DEMO_STOP_WORKER
                                                ? "the worker stopped unexpectedly (see its log above)"
                                                : "interrupted");
done:
    fflush(stdout);
    if (worker_started) {
        atomic_store(&dw.stopping, 1);
        cw_worker_stop(dw.w);
        pthread_join(worker_thread, NULL);
    }
    if (dw.w && dw.rc && rc == CW_EXIT_OK) {
        cw_seterr(errstr, sizeof(errstr), "the worker stopped with an error");
        rc = CW_EXIT_ERROR;
    }
    cw_worker_destroy(dw.w);
    if (conf_ready) cw_worker_conf_free(&wc);
    cw_kafka_mock_destroy(mk);
    demo_rows_free(&rows);
    if (signals_set) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (rc != CW_EXIT_OK) fprintf(stderr, "catwire demo: %s\n", errstr);
    return rc;
}
