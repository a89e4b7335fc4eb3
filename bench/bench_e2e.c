/* bench_e2e.c: end-to-end throughput and latency of the worker, from publish
 * to result, on the embedded broker and (when given) a real one, at several
 * batch size limits, each beside a passthrough run of the same worker
 * (skip_model: everything but the forward pass) in the same process run.
 *
 *   bench_e2e [--brokers B] [--registry DIR] [--model NAME] [--data DIR]
 *             [--articles N] [--sizes 1,64,1024] [--partitions N]
 *             [--python 'PYTHON bench/python_worker.py'] [--no-embedded] [--rounds R]
 *             [--set KEY=VALUE ...]   (worker config, e.g. kafka.linger.ms=10)
 *             [--threads]             (each thread's CPU per result and runs on a CPU, by name)
 *             [--broker-warmup N]     (articles through a real broker first)
 *             [--no-drain]            (no drain run per configuration)
 *
 * (bench/e2e.sh supplies the model, a real broker and the Python baseline.)
 * Modes per size, each with its own topics and group: passthrough (the
 * worker with skip_model), python (bench/python_worker.py: confluent-kafka
 * and numpy with a model of the same shape; only with --python; once per
 * size), catwire. Passthrough and catwire run as --rounds pairs (default 9)
 * in alternating order; each catwire row is compared with its own pair's
 * passthrough, and a MEDIAN row gives the median pair (this machine's speed
 * drifts by tens of percent from one run to the next).
 *
 * Per configuration: a fresh set of topics and consumer group, then
 *   - drain (unless --no-drain): N articles (on the embedded broker at most
 *     8,000 per partition, inside what it keeps) published and acknowledged
 *     first, then the worker started on its own thread; throughput = results
 *     / (first result -> last result), the steady rate of draining a loaded
 *     topic, which is how issue 3 measured the Python worker, and which has
 *     no publisher competing for the CPUs;
 *   - a warm-up (group join, first fetches; without a drain run the worker
 *     starts here) that is not measured;
 *   - saturated: N articles published as fast as the worker answers (at
 *     most 10,000 ahead of the results); throughput = results / (first
 *     publish -> last result), and the latency of that run;
 *   - paced (in the first pair of a size only): 2,000 articles at 1,000
 *     articles/s, latency when not queueing.
 * Latency = result consumed - article handed to the producer (one clock).
 * CPU time of the saturated run is read too (the process's and the worker
 * thread's clocks): per result it tells what the model step costs in place,
 * a figure that other tenants of the machine move less than articles/s. So
 * is the process's CPU in the drain run, from its first result to its last
 * (the publisher is idle then: on 2 cores a drain is CPU-bound, and the
 * pass/catwire ratio of this figure is the drain ratio it can reach).
 * --threads splits the process's figure by thread name (schedstat of
 * /proc/self/task), in the saturated run and, from its first result to its
 * last, in the drain run, to show where a difference between the modes lies;
 * beside each figure, the times the threads were put on a CPU (schedstat's
 * third field: wake-ups and preemptions) per 1000 results.
 * The real broker comes from --brokers or $CW_BENCH_BROKERS; without one,
 * those rows are skipped and the output says so. A real broker is warmed up
 * (--broker-warmup articles, default 400,000, through a passthrough worker in
 * runs of 50,000, not measured; their rates are printed) before its first
 * row: a JVM that has not compiled its hot paths yet runs at a fraction of
 * its speed. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "e2e.h"
#include "kafka_util.h"
#include "log.h"
#include "registry.h"
#include "util.h"
#include "worker.h"

#define BENCH_MAX_SIZES 8
#define BENCH_MAX_ROUNDS 40
#define BENCH_MAX_SETS 16
#define BENCH_WARMUP_CHUNK 50000 /* articles per run of a real broker's warm-up */
#define BENCH_PY_REFERENCE 15000.0 /* articles/s: the figure quoted in issue 3 */
/* Drain backlog per partition on the embedded broker: an AG News article is
 * about 300 bytes on the wire, so 8,000 are ~2.4 MiB of its ~5 MiB. */
#define BENCH_DRAIN_PER_PARTITION 8000

typedef struct bench_opts_s {
    const char *brokers;
    const char *registry;
    const char *model;
    const char *data;
    const char *python;   /* command that runs bench/python_worker.py, or NULL */
    uint32_t dim, nbuckets; /* the model's shape, for the Python worker */
    char labels[512];
    uint64_t articles;
    uint64_t broker_warmup; /* articles through a real broker before its first row */
    int partitions;
    int64_t sizes[BENCH_MAX_SIZES];
    int nsizes;
    int embedded;
    int rounds;          /* passthrough/catwire pairs per size (alternating order) */
    const char *worker_set[BENCH_MAX_SETS]; /* --set KEY=VALUE for the passthrough and catwire workers */
    int nsets;
    const char *device;  /* the catwire worker's device: cpu, cuda, cuda:N, auto */
    int threads;         /* --threads: CPU per result of each thread name */
    int drain;           /* a drain run per configuration (--no-drain: none) */
} bench_opts_t;

typedef struct bench_rows_s {
    cw_e2e_row_t *rows;
    size_t n, cap;
    char **keep;
    size_t nkeep, keepcap;
} bench_rows_t;

typedef struct bench_cell_s {
    int ok;
    cw_e2e_report_t sat, paced, drain;
    double mean_batch;
    /* CPU time of the saturated run per result, microseconds: the whole
     * process (bench, worker and, on the embedded broker, the broker too) and
     * the worker's thread alone (0 for the Python worker, a process of its own).
     * Other tenants of the machine move them too, but less than articles/s. */
    double cpu_us, worker_us;
    /* Drain run: CPU of the whole process per result from the first result
     * to the last (the publisher is idle by then), and from the worker's
     * start to its first result, in ms (model load, group join). */
    double drain_cpu_us, drain_start_cpu_ms;
    int has_paced;  /* the paced run is made in a size's first pair only */
    int has_drain;  /* the drain run is made unless --no-drain */
    char threads[768]; /* --threads: "name us, ..." for the saturated run, "" when not measured */
    char drain_threads[768]; /* --threads: the same for the drain run, first result to last */
} bench_cell_t;

/* ---------- per-thread CPU (--threads) ---------- */

#define BENCH_MAX_THREADS 256

typedef struct bench_thread_s {
    long tid;
    char comm[20];
    uint64_t ns;   /* CPU time so far: the first field of /proc/self/task/TID/schedstat */
    uint64_t runs; /* times it was put on a CPU so far (its third field): wake-ups and preemptions */
} bench_thread_t;

/* The process's threads and their CPU time so far; -1 when /proc does not tell. */
static int bench_threads_snap(bench_thread_t *t, int max) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL && n < max) {
        char path[64], buf[64];
        unsigned long long ns, waited, runs;
        FILE *f;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "/proc/self/task/%.20s/schedstat", e->d_name);
        if (!(f = fopen(path, "r"))) continue;  /* ended meanwhile */
        int ok = fscanf(f, "%llu %llu %llu", &ns, &waited, &runs) == 3;
        fclose(f);
        if (!ok) continue;
        snprintf(path, sizeof(path), "/proc/self/task/%.20s/comm", e->d_name);
        buf[0] = '\0';
        if ((f = fopen(path, "r"))) {
            if (!fgets(buf, sizeof(buf), f)) buf[0] = '\0';
            fclose(f);
        }
        buf[strcspn(buf, "\n")] = '\0';
        t[n].tid = strtol(e->d_name, NULL, 10);
        snprintf(t[n].comm, sizeof(t[n].comm), "%s", buf[0] ? buf : "?");
        t[n].ns = ns;
        t[n].runs = runs;
        n++;
    }
    closedir(d);
    return n;
}

typedef struct bench_thread_sum_s {
    char comm[20];
    double us;   /* CPU per result of the threads of this name */
    double runs; /* their runs on a CPU per 1000 results */
    int k;       /* how many */
} bench_thread_sum_t;

/* "name us/runs, name (k threads) us/runs, ..., ended us" per result: the CPU each
 * thread name used between the snapshots (threads of one name summed; a
 * thread started meanwhile counts from 0), biggest first, then what the
 * process used beyond that (threads that ended before the second snapshot,
 * such as the bench's own Kafka clients, which live as long as one run). */
static void bench_threads_format(const bench_thread_t *a, int na, const bench_thread_t *b, int nb,
                                 double process_us, double results, char *out, size_t outsz) {
    bench_thread_sum_t g[BENCH_MAX_THREADS];
    int ng = 0;
    double sum = 0;
    for (int i = 0; i < nb; i++) {
        uint64_t base = 0, base_runs = 0;
        for (int j = 0; j < na; j++)
            if (a[j].tid == b[i].tid) {
                base = a[j].ns;
                base_runs = a[j].runs;
            }
        double us = (double)(b[i].ns - base) / 1e3 / results;
        double runs = (double)(b[i].runs - base_runs) * 1e3 / results;
        int x = 0;
        while (x < ng && strcmp(g[x].comm, b[i].comm)) x++;
        if (x == ng) {
            snprintf(g[ng].comm, sizeof(g[ng].comm), "%s", b[i].comm);
            g[ng].us = 0;
            g[ng].runs = 0;
            g[ng].k = 0;
            ng++;
        }
        g[x].us += us;
        g[x].runs += runs;
        g[x].k++;
        sum += us;
    }
    for (int i = 1; i < ng; i++)  /* biggest first (insertion sort: a few names) */
        for (int j = i; j > 0 && g[j].us > g[j - 1].us; j--) {
            bench_thread_sum_t tmp = g[j];
            g[j] = g[j - 1];
            g[j - 1] = tmp;
        }
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < ng && used + 64 < outsz; i++) {
        if (g[i].us < 0.01) continue;
        if (g[i].k > 1)
            used += (size_t)snprintf(out + used, outsz - used, "%s%s (%d threads) %.2f/%.0f", used ? ", " : "",
                                     g[i].comm, g[i].k, g[i].us, g[i].runs);
        else
            used += (size_t)snprintf(out + used, outsz - used, "%s%s %.2f/%.0f", used ? ", " : "", g[i].comm,
                                     g[i].us, g[i].runs);
    }
    if (used + 32 < outsz)
        snprintf(out + used, outsz - used, "%sended threads %.2f", used ? ", " : "",
                 process_us > sum ? process_us - sum : 0.0);
}

typedef enum { BENCH_CATWIRE, BENCH_PASSTHROUGH, BENCH_PYTHON } bench_mode_t;
static const char *const bench_mode_names[] = {"catwire", "passthrough", "python"};

typedef struct bench_worker_s {
    cw_worker_conf_t wc;
    int have_wc;
    cw_worker_t *w;
    pthread_t thread;
    int started, rc;
    pid_t py;     /* the Python worker's process */
} bench_worker_t;

/* What bench_worker_start() starts: a worker of `mode` on these topics. */
typedef struct bench_start_s {
    const bench_opts_t *o;
    bench_worker_t *bw;
    const char *brokers;
    int embedded;
    bench_mode_t mode;
    int64_t size;
    const char *in, *out, *dead, *group;
    double cpu0;      /* process CPU seconds when the drain run's worker started */
    double cpu_first; /* ... and at its first result (0 until then) */
    bench_thread_t *first_threads; /* --threads: the threads' CPU at the first result */
    int nfirst;                    /* how many (-1: not taken) */
} bench_start_t;

static double bench_cpu_s(clockid_t id);

/* Drain run: the CPU clock at the first result. */
static void bench_drain_result(void *opaque, uint64_t index, const cw_e2e_row_t *row, const cw_result_t *r,
                               double latency_ms) {
    bench_start_t *st = opaque;
    (void)index, (void)row, (void)r, (void)latency_ms;
    if (st->cpu_first != 0) return;
    st->cpu_first = bench_cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    if (st->first_threads) st->nfirst = bench_threads_snap(st->first_threads, BENCH_MAX_THREADS);
}

static volatile sig_atomic_t bench_stop;

static void bench_on_signal(int sig) {
    (void)sig;
    bench_stop = 1;
}

static char *bench_keep(bench_rows_t *r, const char *s, size_t n) {
    char *p = cw_strndup(s, n);
    cw_grow((void **)&r->keep, &r->keepcap, r->nkeep + 1, sizeof(char *));
    r->keep[r->nkeep++] = p;
    return p;
}

static int bench_rows_load(bench_rows_t *r, const char *path, char *errstr, size_t errstr_size) {
    size_t nf, *lens;
    char **fields;
    int st;
    cw_csv_t *csv = cw_csv_open(path, errstr, errstr_size);
    if (!csv) return -1;
    while ((st = cw_csv_next(csv, &nf, &fields, &lens, errstr, errstr_size)) == 1) {
        cw_e2e_row_t *row;
        if (nf != 3) continue;
        cw_grow((void **)&r->rows, &r->cap, r->n + 1, sizeof(*r->rows));
        row = &r->rows[r->n++];
        row->label = (int32_t)strtol(fields[0], NULL, 10) - 1;
        row->title = bench_keep(r, fields[1], lens[1]);
        row->title_len = lens[1];
        row->body = bench_keep(r, fields[2], lens[2]);
        row->body_len = lens[2];
    }
    cw_csv_close(csv);
    if (st < 0) return -1;
    if (!r->n) {
        cw_seterr(errstr, errstr_size, "%s: no rows", path);
        return -1;
    }
    return 0;
}

static void bench_rows_free(bench_rows_t *r) {
    for (size_t i = 0; i < r->nkeep; i++) cw_free(r->keep[i]);
    cw_free(r->keep);
    cw_free(r->rows);
}

static void *bench_worker_main(void *arg) {
    bench_worker_t *bw = arg;
    /* Named, so that top -H and perf tell the worker from the bench's own threads. */
    prctl(PR_SET_NAME, "cw-worker", 0, 0, 0);
    bw->rc = cw_worker_run(bw->w);
    return NULL;
}

static void bench_worker_stop(bench_worker_t *bw) {
    if (bw->started) {
        cw_worker_stop(bw->w);
        pthread_join(bw->thread, NULL);
    }
    cw_worker_destroy(bw->w);
    if (bw->have_wc) cw_worker_conf_free(&bw->wc);
    if (bw->py > 0) {
        int st;
        kill(bw->py, SIGTERM);
        waitpid(bw->py, &st, 0);
    }
    memset(bw, 0, sizeof(*bw));
}

/* Start the Python worker; returns once it printed "ready" (60 s at most). */
static int bench_python_start(const bench_opts_t *o, bench_worker_t *bw, const char *brokers,
                              int embedded, const char *in, const char *out, const char *group,
                              int64_t size, char *errstr, size_t errstr_size) {
    char cmd[4096], line[64];
    int pfd[2];
    size_t got = 0;
    double deadline = cw_now_s() + 60;
    snprintf(cmd, sizeof(cmd),
             "exec %s --brokers '%s' --input '%s' --output '%s' --group '%s' --vocab-from '%s/train.csv' "
             "--dim %u --nbuckets %u --labels '%s' --max-articles %" PRId64 "%s",
             o->python, brokers, in, out, group, o->data, o->dim, o->nbuckets, o->labels, size,
             embedded ? " -X fetch.wait.max.ms=10" : "");
    if (pipe(pfd)) {
        cw_seterr(errstr, errstr_size, "pipe: %s", strerror(errno));
        return -1;
    }
    bw->py = fork();
    if (bw->py < 0) {
        cw_seterr(errstr, errstr_size, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (bw->py == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    while (got < sizeof(line) - 1 && !strstr(line, "ready\n")) {
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        int left = (int)((deadline - cw_now_s()) * 1000);
        ssize_t n;
        if (left <= 0 || poll(&pf, 1, left) <= 0) break;
        n = read(pfd[0], line + got, sizeof(line) - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        line[got] = '\0';
    }
    line[got] = '\0';
    close(pfd[0]); /* later prints would get SIGPIPE; the worker prints nothing more */
    if (!strstr(line, "ready\n")) {
        cw_seterr(errstr, errstr_size, "the Python worker did not start (%s)", cmd);
        return -1;
    }
    return 0;
}

/* Start the worker that st describes; returns once it runs (the Python one:
 * once it said "ready"). Also drain mode's on_published callback. */
static int bench_worker_start(void *opaque, char *errstr, size_t errstr_size) {
    bench_start_t *st = opaque;
    st->cpu0 = bench_cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    const bench_opts_t *o = st->o;
    bench_worker_t *bw = st->bw;
    cw_worker_conf_t *wc = &bw->wc;
    char num[32];
    if (st->mode == BENCH_PYTHON)
        return bench_python_start(o, bw, st->brokers, st->embedded, st->in, st->out, st->group, st->size,
                                  errstr, errstr_size);
    cw_worker_conf_defaults(wc);
    bw->have_wc = 1;
    snprintf(num, sizeof(num), "%" PRId64, st->size);
    if (cw_worker_conf_set(wc, "brokers", st->brokers, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "input_topic", st->in, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "output_topic", st->out, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "dead_letter_topic", st->dead, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "group_id", st->group, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "registry", o->registry, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "model", o->model, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "log_level", "warn", errstr, errstr_size) ||
        cw_worker_conf_set(wc, "max_articles", num, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "device", o->device, errstr, errstr_size) ||
        cw_worker_conf_set(wc, "skip_model", st->mode == BENCH_PASSTHROUGH ? "true" : "false", errstr,
                           errstr_size))
        return -1;
    /* The embedded broker answers a fetch only after fetch.wait.max.ms,
     * even when data arrived meanwhile (a real broker answers at once). */
    if (st->embedded && cw_worker_conf_set(wc, "kafka.fetch.wait.max.ms", "10", errstr, errstr_size))
        return -1;
    for (int i = 0; i < o->nsets; i++) {
        char key[256];
        const char *eq = strchr(o->worker_set[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - o->worker_set[i]), o->worker_set[i]);
        if (cw_worker_conf_set(wc, key, eq + 1, errstr, errstr_size)) return -1;
    }
    bw->w = cw_worker_new(wc, errstr, errstr_size);
    if (!bw->w) return -1;
    if (pthread_create(&bw->thread, NULL, bench_worker_main, bw)) {
        cw_seterr(errstr, errstr_size, "cannot start the worker thread");
        return -1;
    }
    bw->started = 1;
    return 0;
}

static int bench_topics(const char *brokers, cw_kafka_mock_t *mk, const char *const names[3],
                        int partitions, char *errstr, size_t errstr_size) {
    for (int i = 0; i < 3; i++) {
        int p = i == 2 ? 1 : partitions;
        if (mk ? cw_kafka_mock_create_topic(mk, names[i], p, errstr, errstr_size)
               : cw_kafka_create_topic(brokers, names[i], p, 30000, NULL, errstr, errstr_size))
            return -1;
    }
    return 0;
}

static double bench_cpu_s(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Articles in a drain run: --articles, but on the embedded broker at most
 * BENCH_DRAIN_PER_PARTITION per partition, so that the backlog stays well
 * inside the ~5 MiB per partition it keeps. */
static uint64_t bench_drain_count(const bench_opts_t *o, int embedded) {
    uint64_t cap = (uint64_t)o->partitions * BENCH_DRAIN_PER_PARTITION;
    return embedded && o->articles > cap ? cap : o->articles;
}

/* One configuration: topics, drain run (the worker starts on its backlog),
 * warm-up, saturated and paced runs. */
static int bench_cell(const bench_opts_t *o, const char *brokers, cw_kafka_mock_t *mk,
                      const char *tag, int64_t size, bench_mode_t mode, int paced, const bench_rows_t *rows,
                      bench_cell_t *cell, char *errstr, size_t errstr_size) {
    static unsigned run_seq;
    char in[160], out[160], dead[160], group[160], prefix[48];
    const char *names[3] = {in, out, dead};
    cw_worker_stats_t ws;
    bench_worker_t bw;
    bench_start_t st;
    cw_e2e_opts_t eo;
    cw_e2e_report_t warm;
    int rc = -1;
    unsigned seq = ++run_seq;
    long stamp = (long)time(NULL);

    memset(cell, 0, sizeof(*cell));
    memset(&bw, 0, sizeof(bw));
    snprintf(in, sizeof(in), "bench-%ld-%u-%s-%" PRId64 "-%s-in", stamp, seq, tag, size,
             bench_mode_names[mode]);
    snprintf(out, sizeof(out), "bench-%ld-%u-%s-%" PRId64 "-%s-out", stamp, seq, tag, size,
             bench_mode_names[mode]);
    snprintf(dead, sizeof(dead), "bench-%ld-%u-%s-%" PRId64 "-%s-dead", stamp, seq, tag, size,
             bench_mode_names[mode]);
    snprintf(group, sizeof(group), "bench-%ld-%u-%ld", stamp, seq, (long)getpid());
    if (bench_topics(brokers, mk, names, o->partitions, errstr, errstr_size)) return -1;

    memset(&eo, 0, sizeof(eo));
    eo.brokers = brokers;
    eo.input_topic = in;
    eo.output_topic = out;
    eo.dead_letter_topic = dead;
    eo.rows = rows->rows;
    eo.nrows = rows->n;
    eo.idle_timeout_s = 30;

    memset(&st, 0, sizeof(st));
    st.o = o;
    st.bw = &bw;
    st.brokers = brokers;
    st.embedded = mk != NULL;
    st.mode = mode;
    st.size = size;
    st.in = in;
    st.out = out;
    st.dead = dead;
    st.group = group;
    st.nfirst = -1;
    if (o->drain) {
        static bench_thread_t da[BENCH_MAX_THREADS], db[BENCH_MAX_THREADS];
        if (o->threads) st.first_threads = da;
        /* drain: the backlog is published first, the worker started on it */
        snprintf(prefix, sizeof(prefix), "d%u-", seq);
        eo.id_prefix = prefix;
        eo.count = bench_drain_count(o, mk != NULL);
        eo.drain = 1;
        eo.on_published = bench_worker_start;
        eo.on_result = bench_drain_result;
        eo.opaque = &st;
        if (cw_e2e_run(&eo, &bench_stop, &cell->drain, errstr, errstr_size)) goto done;
        cell->has_drain = 1;
        if (cell->drain.results > 1 && st.cpu_first > 0) {
            cell->drain_cpu_us =
                (bench_cpu_s(CLOCK_PROCESS_CPUTIME_ID) - st.cpu_first) * 1e6 / (double)(cell->drain.results - 1);
            cell->drain_start_cpu_ms = (st.cpu_first - st.cpu0) * 1e3;
            int nb = st.nfirst >= 0 ? bench_threads_snap(db, BENCH_MAX_THREADS) : -1;
            if (nb >= 0)
                bench_threads_format(da, st.nfirst, db, nb, cell->drain_cpu_us, (double)(cell->drain.results - 1),
                                     cell->drain_threads, sizeof(cell->drain_threads));
        }
        st.first_threads = NULL;
        eo.drain = 0;
        eo.on_result = NULL;
        eo.on_published = NULL;
        eo.opaque = NULL;
        if (!cell->drain.complete) {
            cw_seterr(errstr, errstr_size, "drain: %" PRIu64 " of %" PRIu64 " results", cell->drain.results,
                      eo.count);
            goto done;
        }
    } else if (bench_worker_start(&st, errstr, errstr_size)) {
        goto done;
    }

    /* warm-up: the group join and first fetches are not measured */
    snprintf(prefix, sizeof(prefix), "w%u-", seq);
    eo.id_prefix = prefix;
    eo.count = 500;
    eo.window = 500;
    if (cw_e2e_run(&eo, &bench_stop, &warm, errstr, errstr_size)) goto done;
    if (!warm.complete) {
        cw_seterr(errstr, errstr_size, "warm-up: %" PRIu64 " of %" PRIu64 " results", warm.results,
                  eo.count);
        goto done;
    }
    /* saturated */
    snprintf(prefix, sizeof(prefix), "s%u-", seq);
    eo.count = o->articles;
    eo.window = 10000;
    {
        clockid_t wclock;
        int have_w = bw.w && pthread_getcpuclockid(bw.thread, &wclock) == 0;
        static bench_thread_t ta[BENCH_MAX_THREADS], tb[BENCH_MAX_THREADS];
        int na = o->threads ? bench_threads_snap(ta, BENCH_MAX_THREADS) : -1;
        double p0 = bench_cpu_s(CLOCK_PROCESS_CPUTIME_ID), w0 = have_w ? bench_cpu_s(wclock) : 0;
        if (cw_e2e_run(&eo, &bench_stop, &cell->sat, errstr, errstr_size)) goto done;
        double p1 = bench_cpu_s(CLOCK_PROCESS_CPUTIME_ID), w1 = have_w ? bench_cpu_s(wclock) : 0;
        int nb = na >= 0 ? bench_threads_snap(tb, BENCH_MAX_THREADS) : -1;
        if (cell->sat.results) {
            cell->cpu_us = (p1 - p0) * 1e6 / (double)cell->sat.results;
            cell->worker_us = (w1 - w0) * 1e6 / (double)cell->sat.results;
            if (nb >= 0)
                bench_threads_format(ta, na, tb, nb, cell->cpu_us, (double)cell->sat.results, cell->threads,
                                     sizeof(cell->threads));
            else if (o->threads)
                snprintf(cell->threads, sizeof(cell->threads), "not measured: no /proc/self/task");
        }
    }
    /* paced */
    if (paced) {
        snprintf(prefix, sizeof(prefix), "p%u-", seq);
        eo.count = 2000;
        eo.rate = 1000;
        if (cw_e2e_run(&eo, &bench_stop, &cell->paced, errstr, errstr_size)) goto done;
        cell->has_paced = 1;
    }
    if (bw.w) {
        cw_worker_get_stats(bw.w, &ws);
        cell->mean_batch = ws.batches ? (double)ws.batched_articles / (double)ws.batches : 0;
    }
    cell->ok = cell->sat.complete && (!paced || cell->paced.complete);
    if (!cell->ok)
        fprintf(stderr, "bench_e2e: %s max_articles=%" PRId64 " %s: incomplete (%" PRIu64 "/%" PRIu64
                " saturated, %" PRIu64 "/%" PRIu64 " paced)\n", tag, size,
                bench_mode_names[mode], cell->sat.results, o->articles,
                cell->paced.results, (uint64_t)2000);
    rc = 0;
done:
    bench_worker_stop(&bw);
    return rc;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n) (n >= 1), interpolated linearly between
 * ranks (q = 0.5 is the median). */
static double bench_quantile(const double *v, int n, double q) {
    double pos = q * (double)(n - 1);
    int i = (int)pos;
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* Median of v[0..n) (n >= 1; v is sorted in place). */
static double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    return bench_quantile(v, n, 0.5);
}

/* "a/b" of two ratios, "-" for one that is not known (<= 0). */
static void bench_pair(char *out, size_t outsz, double stream, double drain, const char *unit) {
    char a[16] = "-", b[16] = "-";
    if (stream > 0) snprintf(a, sizeof(a), unit[0] ? "%.1f" : "%.2f", stream);
    if (drain > 0) snprintf(b, sizeof(b), unit[0] ? "%.1f" : "%.2f", drain);
    snprintf(out, outsz, "%s/%s%s", a, b, unit);
}

static double bench_div(double a, double b) {
    return a > 0 && b > 0 ? a / b : 0;
}

static double bench_drain_rate(const bench_cell_t *c) {
    return c && c->ok && c->has_drain ? c->drain.throughput : 0;
}

static double bench_sat_rate(const bench_cell_t *c) {
    return c && c->ok ? c->sat.throughput : 0;
}

#define BENCH_ROW "| %-8s | %5" PRId64 " | %-11s | %10s | %8s | %6s | %6s | %6s | %7s | %7s | %8s | %8s | %-9s | %-20s |\n"

static void bench_print_cell(const char *broker, int64_t size, bench_mode_t mode,
                             const bench_cell_t *c, const bench_cell_t *pass, const bench_cell_t *py) {
    char vs_pass[32] = "", vs_py[48] = "", rate[24], drain[24] = "-";
    if (!c->ok) {
        printf(BENCH_ROW, broker, size, bench_mode_names[mode], "failed", "", "", "", "", "", "", "", "", "", "");
        return;
    }
    if (mode == BENCH_CATWIRE) {
        bench_pair(vs_pass, sizeof(vs_pass), bench_div(bench_sat_rate(c), bench_sat_rate(pass)),
                   bench_div(bench_drain_rate(c), bench_drain_rate(pass)), "");
        if (py && py->ok) {
            bench_pair(vs_py, sizeof(vs_py), bench_div(bench_sat_rate(c), bench_sat_rate(py)),
                       bench_div(bench_drain_rate(c), bench_drain_rate(py)), "x measured");
        } else {
            bench_pair(vs_py, sizeof(vs_py), bench_div(bench_sat_rate(c), BENCH_PY_REFERENCE),
                       bench_div(bench_drain_rate(c), BENCH_PY_REFERENCE), "x quoted*");
        }
    }
    snprintf(rate, sizeof(rate), "%.0f", c->sat.throughput);
    if (c->has_drain) snprintf(drain, sizeof(drain), "%.0f", c->drain.throughput);
    /* The Python worker is a process of its own: the bench's CPU clocks do not see it. */
    char batch[16] = "-", cpu[16] = "-", wkr[16] = "-";
    if (mode != BENCH_PYTHON) {
        snprintf(batch, sizeof(batch), "%.1f", c->mean_batch);
        snprintf(cpu, sizeof(cpu), "%.2f", c->cpu_us);
        snprintf(wkr, sizeof(wkr), "%.2f", c->worker_us);
    }
    char p50[16] = "-", p99[16] = "-", sp50[16], sp99[16];
    if (c->has_paced) {
        snprintf(p50, sizeof(p50), "%.1f", c->paced.lat_p50_ms);
        snprintf(p99, sizeof(p99), "%.1f", c->paced.lat_p99_ms);
    }
    snprintf(sp50, sizeof(sp50), "%.1f", c->sat.lat_p50_ms);
    snprintf(sp99, sizeof(sp99), "%.1f", c->sat.lat_p99_ms);
    printf(BENCH_ROW, broker, size, bench_mode_names[mode], rate, drain, batch, cpu, wkr, sp50, sp99, p50, p99,
           vs_pass, vs_py);
    const char *whose = mode == BENCH_PYTHON
                            ? "this process's threads (harness, embedded broker) while the python worker ran"
                            : mode == BENCH_CATWIRE ? "catwire threads" : "passthrough threads";
    if (c->threads[0])
        printf("|          |       | (%s, CPU us per result/runs on a CPU per 1000 results: %s) |\n", whose,
               c->threads);
    if (c->drain_threads[0])
        printf("|          |       | (%s, drain, first result to last, CPU us per result/runs per 1000 results: "
               "%s) |\n",
               whose, c->drain_threads);
    fflush(stdout);
}

static int bench_parse(int argc, char **argv, bench_opts_t *o) {
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"registry", required_argument, NULL, 'r'},
        {"model", required_argument, NULL, 'm'},   {"data", required_argument, NULL, 'd'},
        {"articles", required_argument, NULL, 'n'}, {"sizes", required_argument, NULL, 's'},
        {"partitions", required_argument, NULL, 'p'}, {"python", required_argument, NULL, 'P'},
        {"no-embedded", no_argument, NULL, 'E'},   {"help", no_argument, NULL, 'h'},
        {"device", required_argument, NULL, 'D'}, {"rounds", required_argument, NULL, 'R'},
        {"set", required_argument, NULL, 'S'},    {"threads", no_argument, NULL, 'T'},
        {"broker-warmup", required_argument, NULL, 'W'}, {"no-drain", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof(*o));
    o->brokers = getenv("CW_BENCH_BROKERS");
    if (o->brokers && !*o->brokers) o->brokers = NULL;
    o->registry = getenv("CATWIRE_REGISTRY");
    if (!o->registry || !*o->registry) o->registry = "registry";
    o->model = "news";
    o->data = getenv("CATWIRE_DATA");
    if (!o->data || !*o->data) o->data = "../shared/data/ag_news";
    o->articles = 100000;
    o->partitions = 16;
    o->rounds = 9;
    o->broker_warmup = 400000;
    o->embedded = 1;
    o->drain = 1;
    o->device = "cpu";
    o->sizes[0] = 1;
    o->sizes[1] = 64;
    o->sizes[2] = 1024;
    o->nsizes = 3;
    while ((c = getopt_long(argc, argv, "b:r:m:d:n:s:p:P:EhD:R:S:TW:N", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->brokers = optarg; break;
        case 'r': o->registry = optarg; break;
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'P': o->python = optarg; break;
        case 'E': o->embedded = 0; break;
        case 'D': o->device = optarg; break;
        case 'n': o->articles = strtoull(optarg, NULL, 10); break;
        case 'p': o->partitions = atoi(optarg); break;
        case 'R': o->rounds = atoi(optarg); break;
        case 'T': o->threads = 1; break;
        case 'W': o->broker_warmup = strtoull(optarg, NULL, 10); break;
        case 'N': o->drain = 0; break;
        case 'S':
            if (!strchr(optarg, '=') || *optarg == '=' || o->nsets == BENCH_MAX_SETS) return 2;
            o->worker_set[o->nsets++] = optarg;
            break;
        case 's': {
            char *s = optarg, *end;
            o->nsizes = 0;
            while (*s && o->nsizes < BENCH_MAX_SIZES) {
                long long v = strtoll(s, &end, 10);
                if (end == s || v < 1 || v > 65536) return 2;
                o->sizes[o->nsizes++] = v;
                s = *end == ',' ? end + 1 : end;
                if (*end && *end != ',') return 2;
            }
            break;
        }
        case 'h':
            printf("usage: bench_e2e [--brokers B] [--registry DIR] [--model NAME] [--data DIR]\n"
                   "                 [--articles N] [--sizes 1,64,1024] [--partitions N] [--no-embedded]\n"
                   "                 [--python 'PYTHON bench/python_worker.py'] [--device cpu|cuda|cuda:N|auto]\n"
                   "                 [--rounds R]   (passthrough/catwire pairs per size, default 9, at most 40)\n"
                   "                 [--set KEY=VALUE ...]  (worker config of the passthrough and catwire workers,\n"
                   "                                         e.g. kafka.linger.ms=10; repeatable)\n"
                   "                 [--threads]    (after each row: CPU us per result of each thread of\n"
                   "                                 this process, by name, and its runs on a CPU per 1000\n"
                   "                                 results, in the saturated run and the drain)\n"
                   "                 [--broker-warmup N]  (articles through a real broker before its first\n"
                   "                                       row, in runs of 50,000; default 400000, 0 = none)\n"
                   "                 [--no-drain]   (no drain run: the worker is started before the warm-up)\n"
                   "Real broker: --brokers or $CW_BENCH_BROKERS. The model must be in the registry\n"
                   "(`catwire demo` trains and publishes one).\n");
            return -1;
        default: return 2;
        }
    }
    if (!o->articles || o->partitions < 1 || !o->nsizes || o->rounds < 1 || o->rounds > BENCH_MAX_ROUNDS) return 2;
    return 0;
}

int main(int argc, char **argv) {
    bench_opts_t o;
    bench_rows_t rows;
    char errstr[1024], path[4096];
    char *name = NULL, *ckpt = NULL;
    int64_t version = 0;
    int rc = 1, prc;
    struct sigaction sa;
    const char *brokers_list[2];
    const char *tags[2];
    int nbrokers = 0;

    prc = bench_parse(argc, argv, &o);
    if (prc < 0) return 0;
    if (prc) {
        fprintf(stderr, "bench_e2e: bad arguments (see --help)\n");
        return 2;
    }
    memset(&rows, 0, sizeof(rows));
    cw_log_set_level(CW_LOG_WARN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (cw_registry_resolve(o.registry, o.model, &name, &version, &ckpt, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_e2e: model %s in %s: %s\n(run `catwire demo --registry %s` once to "
                "train and publish one)\n", o.model, o.registry, errstr, o.registry);
        goto done;
    }
    {
        cw_model_t *m = cw_registry_load(o.registry, o.model, NULL, errstr, sizeof(errstr));
        size_t len = 0;
        if (!m) {
            fprintf(stderr, "bench_e2e: %s\n", errstr);
            goto done;
        }
        o.dim = m->dim;
        o.nbuckets = m->nbuckets;
        for (uint32_t i = 0; i < m->nlabels && len < sizeof(o.labels); i++)
            len += (size_t)snprintf(o.labels + len, sizeof(o.labels) - len, "%s%s", i ? "," : "",
                                    m->labels[i]);
        cw_model_destroy(m);
    }
    snprintf(path, sizeof(path), "%s/test.csv", o.data);
    if (bench_rows_load(&rows, path, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_e2e: %s\n", errstr);
        goto done;
    }
    if (o.embedded) {
        brokers_list[nbrokers] = NULL;
        tags[nbrokers++] = "embedded";
    }
    if (o.brokers) {
        brokers_list[nbrokers] = o.brokers;
        tags[nbrokers++] = "kafka";
    }
    printf("bench_e2e: model %s@%" PRId64 ", %" PRIu64 " AG News test articles per saturated run "
           "(unique ids), %d partitions, worker in-process, %ld CPUs\n", name, version, o.articles,
           o.partitions, sysconf(_SC_NPROCESSORS_ONLN));
    if (!o.brokers)
        printf("real broker: none given (--brokers or CW_BENCH_BROKERS); its rows are skipped\n");
    printf("\n| %-8s | %5s | %-11s | %10s | %8s | %6s | %6s | %6s | %7s | %7s | %8s | %8s | %-9s | %-20s |\n",
           "broker", "max_a", "worker", "articles/s", "drain/s", "batch", "cpu us", "wkr us", "p50 ms", "p99 ms",
           "p50@1k/s", "p99@1k/s", "vs pass", "vs python");
    printf("|----------|-------|-------------|------------|----------|--------|--------|--------|---------|---------|"
           "----------|----------|-----------|----------------------|\n");
    fflush(stdout);
    for (int b = 0; b < nbrokers && !bench_stop; b++) {
        if (brokers_list[b]) {
            /* A JVM broker runs slowly until its JIT has compiled the hot
             * paths: the first configurations measured would pay for that.
             * Seen here: a fresh broker spent 95, 47, 31 and 28 us of CPU per
             * article on four successive runs of 254,000 articles. */
            bench_opts_t wo = o;
            char rates[256] = "";
            size_t rl = 0;
            uint64_t done = 0;
            int failed = 0;
            wo.articles = BENCH_WARMUP_CHUNK;
            wo.drain = 0;
            while (done < o.broker_warmup && !bench_stop) {
                bench_cell_t warm;
                errstr[0] = '\0';
                if (bench_cell(&wo, brokers_list[b], NULL, tags[b], 64, BENCH_PASSTHROUGH, 0, &rows, &warm,
                               errstr, sizeof(errstr)) || !warm.ok) {
                    fprintf(stderr, "bench_e2e: warming up the %s broker failed: %s\n", tags[b],
                            errstr[0] ? errstr : "incomplete (see above)");
                    failed = 1;
                    break;
                }
                done += wo.articles;
                if (rl < sizeof(rates))
                    rl += (size_t)snprintf(rates + rl, sizeof(rates) - rl, "%s%.0f", rl ? ", " : "",
                                           warm.sat.throughput);
            }
            if (!failed && done)
                printf("| %-8s | (broker warm-up, not measured: %" PRIu64 " articles through a passthrough worker, "
                       "in runs of %d at %s articles/s) |\n",
                       tags[b], done, BENCH_WARMUP_CHUNK, rates);
        }
        for (int s = 0; s < o.nsizes && !bench_stop; s++) {
            bench_cell_t cells[3];
            cw_kafka_mock_t *mk = NULL;
            const char *brokers = brokers_list[b];
            memset(cells, 0, sizeof(cells));
            if (!brokers) { /* a fresh embedded broker per size keeps memory flat */
                mk = cw_kafka_mock_new(1, errstr, sizeof(errstr));
                if (!mk) {
                    fprintf(stderr, "bench_e2e: %s\n", errstr);
                    goto done;
                }
                brokers = cw_kafka_mock_bootstraps(mk);
            }
            /* The Python worker once; then `rounds` passthrough/catwire pairs,
             * alternating which goes first, each catwire row compared with the
             * passthrough of its own pair; the summary is the median pair. */
            if (o.python) {
                if (bench_cell(&o, brokers, mk, tags[b], o.sizes[s], BENCH_PYTHON, 1, &rows, &cells[BENCH_PYTHON],
                               errstr, sizeof(errstr))) {
                    fprintf(stderr, "bench_e2e: %s python max_articles=%" PRId64 ": %s\n", tags[b], o.sizes[s],
                            errstr);
                    cells[BENCH_PYTHON].ok = 0;
                }
                bench_print_cell(tags[b], o.sizes[s], BENCH_PYTHON, &cells[BENCH_PYTHON], NULL, NULL);
            }
            double ratio[BENCH_MAX_ROUNDS], cw_rate[BENCH_MAX_ROUNDS], pass_rate[BENCH_MAX_ROUNDS];
            double cpu_ratio[BENCH_MAX_ROUNDS], model_us[BENCH_MAX_ROUNDS];
            double dratio[BENCH_MAX_ROUNDS], dcw_rate[BENCH_MAX_ROUNDS], dpass_rate[BENCH_MAX_ROUNDS];
            double dcpu_cw[BENCH_MAX_ROUNDS], dcpu_pass[BENCH_MAX_ROUNDS], dstart_cw[BENCH_MAX_ROUNDS];
            double dstart_pass[BENCH_MAX_ROUNDS];
            int npairs = 0, ndrain = 0;
            for (int r = 0; r < o.rounds && !bench_stop; r++) {
                bench_mode_t pair[2] = {BENCH_PASSTHROUGH, BENCH_CATWIRE};
                if (r % 2) pair[0] = BENCH_CATWIRE, pair[1] = BENCH_PASSTHROUGH;
                for (int m = 0; m < 2 && !bench_stop; m++) {
                    bench_mode_t mode = pair[m];
                    if (bench_cell(&o, brokers, mk, tags[b], o.sizes[s], mode, r == 0, &rows, &cells[mode], errstr,
                                   sizeof(errstr))) {
                        fprintf(stderr, "bench_e2e: %s %s max_articles=%" PRId64 ": %s\n", tags[b],
                                bench_mode_names[mode], o.sizes[s], errstr);
                        cells[mode].ok = 0;
                    }
                }
                if (bench_stop) break;
                bench_print_cell(tags[b], o.sizes[s], BENCH_PASSTHROUGH, &cells[BENCH_PASSTHROUGH], NULL, NULL);
                bench_print_cell(tags[b], o.sizes[s], BENCH_CATWIRE, &cells[BENCH_CATWIRE],
                                 &cells[BENCH_PASSTHROUGH], o.python ? &cells[BENCH_PYTHON] : NULL);
                if (cells[BENCH_CATWIRE].ok && cells[BENCH_PASSTHROUGH].ok && cells[BENCH_PASSTHROUGH].sat.throughput > 0) {
                    cw_rate[npairs] = cells[BENCH_CATWIRE].sat.throughput;
                    pass_rate[npairs] = cells[BENCH_PASSTHROUGH].sat.throughput;
                    ratio[npairs] = cw_rate[npairs] / pass_rate[npairs];
                    cpu_ratio[npairs] = cells[BENCH_CATWIRE].cpu_us > 0
                                            ? cells[BENCH_PASSTHROUGH].cpu_us / cells[BENCH_CATWIRE].cpu_us : 0;
                    model_us[npairs] = cells[BENCH_CATWIRE].worker_us - cells[BENCH_PASSTHROUGH].worker_us;
                    npairs++;
                    double dc = bench_drain_rate(&cells[BENCH_CATWIRE]), dp = bench_drain_rate(&cells[BENCH_PASSTHROUGH]);
                    if (dc > 0 && dp > 0) {
                        dcw_rate[ndrain] = dc;
                        dpass_rate[ndrain] = dp;
                        dratio[ndrain] = dc / dp;
                        dcpu_cw[ndrain] = cells[BENCH_CATWIRE].drain_cpu_us;
                        dcpu_pass[ndrain] = cells[BENCH_PASSTHROUGH].drain_cpu_us;
                        dstart_cw[ndrain] = cells[BENCH_CATWIRE].drain_start_cpu_ms;
                        dstart_pass[ndrain] = cells[BENCH_PASSTHROUGH].drain_start_cpu_ms;
                        ndrain++;
                    }
                }
            }
            if (npairs > 0) {
                char vs_py[48], vs_pass[32], rate[24], drain[24] = "-";
                const bench_cell_t *py = o.python && cells[BENCH_PYTHON].ok ? &cells[BENCH_PYTHON] : NULL;
                double mcw = bench_median(cw_rate, npairs);
                double mdcw = ndrain ? bench_median(dcw_rate, ndrain) : 0;
                double mdratio = ndrain ? bench_median(dratio, ndrain) : 0; /* sorts dratio */
                if (py)
                    bench_pair(vs_py, sizeof(vs_py), bench_div(mcw, bench_sat_rate(py)),
                               bench_div(mdcw, bench_drain_rate(py)), "x measured");
                else
                    bench_pair(vs_py, sizeof(vs_py), bench_div(mcw, BENCH_PY_REFERENCE),
                               bench_div(mdcw, BENCH_PY_REFERENCE), "x quoted*");
                double mratio = bench_median(ratio, npairs);  /* sorts ratio */
                bench_pair(vs_pass, sizeof(vs_pass), mratio, mdratio, "");
                snprintf(rate, sizeof(rate), "%.0f", mcw);
                if (ndrain) snprintf(drain, sizeof(drain), "%.0f", mdcw);
                printf(BENCH_ROW, tags[b], o.sizes[s], "MEDIAN", rate, drain, "", "", "", "", "", "", "", vs_pass,
                       vs_py);
                printf("|          |       | (of %d pairs: passthrough median %.0f/s; vs pass = median of the pairs' ratios, "
                       "which spread min %.2f, quartiles %.2f-%.2f, max %.2f; "
                       "cpu pass/catwire %.2f, model step %.2f us/article in the worker thread, medians) |\n",
                       npairs, bench_median(pass_rate, npairs), ratio[0], bench_quantile(ratio, npairs, 0.25),
                       bench_quantile(ratio, npairs, 0.75), ratio[npairs - 1], bench_median(cpu_ratio, npairs),
                       bench_median(model_us, npairs));
                if (ndrain)
                    printf("|          |       | (drain: of %d pairs: passthrough median %.0f/s; catwire/passthrough "
                           "spread min %.2f, quartiles %.2f-%.2f, max %.2f; process CPU us per result, first to last, "
                           "%.2f passthrough, %.2f catwire; CPU ms from worker start to first result %.0f "
                           "passthrough, %.0f catwire; medians) |\n",
                           ndrain, bench_median(dpass_rate, ndrain), dratio[0], bench_quantile(dratio, ndrain, 0.25),
                           bench_quantile(dratio, ndrain, 0.75), dratio[ndrain - 1], bench_median(dcpu_pass, ndrain),
                           bench_median(dcpu_cw, ndrain), bench_median(dstart_pass, ndrain),
                           bench_median(dstart_cw, ndrain));
                fflush(stdout);
            }
            cw_kafka_mock_destroy(mk);
        }
    }
    printf("\narticles/s: saturated run, results / (first publish -> last result).\n"
           "drain/s: the configuration's first run: a backlog of %" PRIu64 " articles (embedded: at most\n"
           "%d per partition) published and acknowledged before the worker starts, results / (first ->\n"
           "last result); this is how issue 3 measured the Python worker (draining a loaded topic).\n"
           "batch: mean articles per batch of the catwire worker (warm-up included). p50/p99: latency of\n"
           "the saturated run (up to 10,000 articles in flight); @1k/s: 2,000 articles paced at 1,000/s\n"
           "(a size's first pair only).\n"
           "cpu us / wkr us: CPU microseconds per result in the saturated run, of the whole bench\n"
           "process (on the embedded broker that includes the broker) / of the worker's thread.\n"
           "\"cpu pass/catwire\" is the throughput ratio the run would show if it were CPU-bound\n"
           "and alone on the machine; \"model step\" = catwire's wkr us - passthrough's.\n"
           "Drain lines: the process's CPU microseconds per result from the first result to the\n"
           "last (their ratio is what a CPU-bound drain can reach), and its CPU from the worker's\n"
           "start to the first result (model load, group join).\n"
           "vs pass: catwire / passthrough (same worker, model step skipped), saturated/drain, goal\n"
           ">= 0.70; each size runs --rounds pairs in alternating order, MEDIAN rows are the median pair.\n"
           "vs python: catwire / the Python worker (bench/python_worker.py: confluent-kafka + numpy,\n"
           "same model shape) measured in this run on the same broker, saturated/drain (\"-\": not\n"
           "measured); \"quoted*\" means no Python worker ran (--python) and the ratio is to %.0f\n"
           "articles/s, the figure QUOTED FROM ISSUE 3, not measured here. Goal >= 10x.\n",
           o.articles, BENCH_DRAIN_PER_PARTITION, BENCH_PY_REFERENCE);
    rc = bench_stop ? 1 : 0;
done:
    cw_free(name);
    cw_free(ckpt);
    bench_rows_free(&rows);
    return rc;
}
