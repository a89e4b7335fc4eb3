/* bench_forward.c: forward throughput and training epoch time, CPU vs GPU.
 *
 *   bench_forward [--data DIR] [--dim N] [--ngram N] [--buckets N]
 *                 [--min-batch N] [--max-batch N] [--seconds S] [--threads N]
 *                 [--epochs N] [--no-train]
 *
 * The model is the seed recipe's shape by default (vocabulary of DIR/train.csv,
 * dim 64, words only, 4 labels), randomly initialised: throughput does not
 * depend on the weights. Articles are DIR/test.csv, featurized once (the
 * tokenizer is not measured here; bench/ of issue 2 measures raw text),
 * cycled to fill batches of 64 .. 65,536 articles.
 *
 * Forward, articles/s, for each batch size:
 *   cpu-1     one CPU backend on one thread (OpenBLAS limited to 1 thread);
 *   cpu-all   the batch split across T threads (all online CPUs), one CPU
 *             backend per thread, all bound to the one model;
 *   gpu       the CUDA backend, host-to-device copies of ids and offsets and
 *             the copy of the probabilities back included (forward() is
 *             synchronous).
 * and the ratios gpu/cpu-1 and gpu/cpu-all (the goal: >= 20x one core at
 * large batches). Each cell runs for at least --seconds (after one warm-up).
 *
 * Training: one epoch (or --epochs) of the seed recipe (batch 64, lr 0.1,
 * clip 0.1) over DIR/train.csv in file order on the CPU backend (one thread,
 * as the seed recipe trains) and on the GPU, from the same initial weights;
 * prints seconds, examples/s and the mean loss of each.
 *
 * Without a usable GPU (or in a build without CUDA) the GPU columns read
 * "skipped: <reason>". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "dataset.h"
#include "model.h"
#include "util.h"
#include "vocab.h"

typedef struct bench_opts_s {
    const char *data;
    uint32_t dim, ngram, nbuckets;
    size_t min_batch, max_batch;
    double seconds;
    uint32_t threads;
    uint32_t epochs;
    int train;
} bench_opts_t;

/* Featurized articles, cycled to max_batch bags. */
typedef struct bags_s {
    int32_t *ids;
    size_t nids, cap;
    uint32_t *offsets;   /* nbags + 1 */
    int32_t *labels;
    size_t nbags;
} bags_t;

static void featurize(const cw_model_t *m, const cw_dataset_t *ds, size_t nbags, bags_t *b) {
    memset(b, 0, sizeof(*b));
    b->offsets = cw_malloc((nbags + 1) * sizeof(uint32_t));
    b->labels = cw_malloc((nbags + 1) * sizeof(int32_t));
    for (size_t i = 0; i < nbags; i++) {
        cw_tokens_t t;
        cw_dataset_tokens(ds, i % ds->n, &t);
        b->offsets[i] = (uint32_t)b->nids;
        b->labels[i] = ds->labels[i % ds->n];
        cw_model_featurize(m, &t, &b->ids, &b->nids, &b->cap);
    }
    b->offsets[nbags] = (uint32_t)b->nids;
    b->nbags = nbags;
}

static void bags_free(bags_t *b) {
    cw_free(b->ids);
    cw_free(b->offsets);
    cw_free(b->labels);
}

/* Bags [b0, b1) as a batch with offsets rebased into offs. */
static cw_batch_t slice(const bags_t *bg, size_t b0, size_t b1, uint32_t *offs) {
    uint32_t i0 = bg->offsets[b0];
    for (size_t b = b0; b < b1; b++) offs[b - b0] = bg->offsets[b] - i0;
    cw_batch_t bt = {.ids = bg->ids + i0, .nids = bg->offsets[b1] - i0, .offsets = offs, .nbags = b1 - b0,
                     .labels = bg->labels + b0};
    return bt;
}

/* ---- multi-threaded CPU forward: a persistent pool, one backend per thread */

typedef struct pool_s pool_t;
typedef struct worker_s {
    pool_t *pool;
    pthread_t tid;
    cw_backend_t *be;
    uint32_t *offs;
    float *probs;
    cw_batch_t batch;
    int rc;
    char err[256];
} worker_t;

struct pool_s {
    uint32_t n;
    worker_t *w;
    pthread_barrier_t start, end;
    int quit;
};

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (;;) {
        pthread_barrier_wait(&w->pool->start);
        if (w->pool->quit) break;
        if (w->batch.nbags && cw_backend_forward(w->be, &w->batch, w->probs, w->err, sizeof(w->err)) != 0) w->rc = -1;
        pthread_barrier_wait(&w->pool->end);
    }
    return NULL;
}

static int pool_start(pool_t *p, uint32_t n, cw_model_t *m, size_t max_batch, char *errstr, size_t errstr_size) {
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->w = cw_calloc(n, sizeof(worker_t));
    pthread_barrier_init(&p->start, NULL, n + 1);
    pthread_barrier_init(&p->end, NULL, n + 1);
    size_t per = max_batch / n + 1;
    for (uint32_t i = 0; i < n; i++) {
        worker_t *w = &p->w[i];
        w->pool = p;
        w->offs = cw_malloc(per * sizeof(uint32_t));
        w->probs = cw_malloc(per * m->nlabels * sizeof(float));
        w->be = cw_backend_new("cpu", errstr, errstr_size);
        if (!w->be || cw_backend_upload(w->be, m, errstr, errstr_size) != 0) return -1;
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            cw_seterr(errstr, errstr_size, "pthread_create failed");
            return -1;
        }
    }
    return 0;
}

static void pool_stop(pool_t *p) {
    p->quit = 1;
    pthread_barrier_wait(&p->start);
    for (uint32_t i = 0; i < p->n; i++) {
        pthread_join(p->w[i].tid, NULL);
        cw_backend_destroy(p->w[i].be);
        cw_free(p->w[i].offs);
        cw_free(p->w[i].probs);
    }
    cw_free(p->w);
    pthread_barrier_destroy(&p->start);
    pthread_barrier_destroy(&p->end);
}

/* One batch of nbags split across the pool. */
static int pool_forward(pool_t *p, const bags_t *bg, size_t nbags, char *errstr, size_t errstr_size) {
    for (uint32_t i = 0; i < p->n; i++) {
        size_t b0 = nbags * i / p->n, b1 = nbags * (i + 1) / p->n;
        p->w[i].batch = slice(bg, b0, b1, p->w[i].offs);
        p->w[i].rc = 0;
    }
    pthread_barrier_wait(&p->start);
    pthread_barrier_wait(&p->end);
    for (uint32_t i = 0; i < p->n; i++)
        if (p->w[i].rc) {
            cw_seterr(errstr, errstr_size, "%s", p->w[i].err);
            return -1;
        }
    return 0;
}

/* ---- timing */

typedef enum { RUN_CPU1, RUN_POOL, RUN_GPU } run_kind_t;

/* Articles/s of repeated forwards of a batch of nbags; -1 on error. */
static double measure(run_kind_t kind, cw_backend_t *be, pool_t *pool, const bags_t *bg, size_t nbags,
                      float *probs, uint32_t *offs, double seconds, char *errstr, size_t errstr_size) {
    cw_batch_t b = slice(bg, 0, nbags, offs);
    size_t reps = 0;
    double t0 = 0, t = 0;
    for (int warm = 1;; warm = 0) {
        int rc = kind == RUN_POOL ? pool_forward(pool, bg, nbags, errstr, errstr_size)
                                  : cw_backend_forward(be, &b, probs, errstr, errstr_size);
        if (rc != 0) return -1;
        if (warm) {
            t0 = cw_now_s();
            continue;
        }
        reps++;
        t = cw_now_s() - t0;
        if (t >= seconds && reps >= 3) break;
    }
    return (double)reps * (double)nbags / t;
}

/* One pass of the seed recipe's steps over bg; returns seconds, *mean_loss set. */
static double train_epoch(cw_backend_t *be, const bags_t *bg, uint32_t *offs, double *mean_loss, char *errstr,
                          size_t errstr_size) {
    cw_step_opts_t opt = {.lr = 0.1f, .clip_norm = 0.1f};
    double sum = 0, t0 = cw_now_s();
    size_t steps = 0;
    for (size_t b0 = 0; b0 < bg->nbags; b0 += 64) {
        size_t b1 = b0 + 64 < bg->nbags ? b0 + 64 : bg->nbags;
        cw_batch_t b = slice(bg, b0, b1, offs);
        double loss = 0;
        if (cw_backend_train_step(be, &b, &opt, &loss, errstr, errstr_size) != 0) return -1;
        sum += loss;
        steps++;
    }
    if (cw_backend_sync(be, errstr, errstr_size) != 0) return -1;
    *mean_loss = steps ? sum / (double)steps : 0;
    return cw_now_s() - t0;
}

static cw_model_t *make_model(const cw_dataset_t *train, const bench_opts_t *o, uint64_t seed) {
    cw_vocab_counter_t *vc = cw_vocab_counter_new();
    for (size_t t = 0; t < train->ntok; t++) cw_vocab_counter_add(vc, train->buf + train->start[t], train->len[t]);
    cw_vocab_t *v = cw_vocab_build(vc, 1, 0);
    cw_vocab_counter_destroy(vc);
    cw_model_t *m = cw_model_new(v, o->dim, (const char *const *)train->label_names, train->nlabels, o->ngram,
                                 o->nbuckets);
    cw_model_init_uniform(m, 0.5f, seed);
    return m;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_forward [--data DIR] [--dim N] [--ngram N] [--buckets N] [--min-batch N]\n"
               "                     [--max-batch N] [--seconds S] [--threads N] [--epochs N] [--no-train]\n");
}

int main(int argc, char **argv) {
    bench_opts_t o = {.data = getenv("CW_DATA") ? getenv("CW_DATA") : "../shared/data/ag_news",
                      .dim = 64, .ngram = 1, .nbuckets = 0, .min_batch = 64, .max_batch = 65536,
                      .seconds = 1.0, .threads = 0, .epochs = 1, .train = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-train")) { o.train = 0; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!v) { usage(stderr); return 2; }
        if (!strcmp(a, "--data")) o.data = v;
        else if (!strcmp(a, "--dim")) o.dim = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--ngram")) o.ngram = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--buckets")) o.nbuckets = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--min-batch")) o.min_batch = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--max-batch")) o.max_batch = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seconds")) o.seconds = strtod(v, NULL);
        else if (!strcmp(a, "--threads")) o.threads = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--epochs")) o.epochs = (uint32_t)strtoul(v, NULL, 10);
        else { usage(stderr); return 2; }
        i++;
    }
    if (o.dim == 0 || o.min_batch == 0 || o.max_batch < o.min_batch || o.seconds <= 0) { usage(stderr); return 2; }
    if (o.ngram > 1 && o.nbuckets == 0) o.nbuckets = 2000000;
    if (o.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n > 0 ? (uint32_t)n : 1;
    }

    int rc = 1;
    char err[512] = "", gpu_why[512] = "";
    char path[4096];
    cw_dataset_t *train = NULL, *test = NULL;
    cw_model_t *m = NULL, *mg = NULL;
    cw_backend_t *cpu = NULL, *gpu = NULL;
    bags_t bg = {0}, tb = {0};
    pool_t pool;
    int pool_up = 0;
    float *probs = NULL;
    uint32_t *offs = NULL;
    cw_dataset_opts_t dopts;
    cw_dataset_opts_init(&dopts);

    snprintf(path, sizeof(path), "%s/train.csv", o.data);
    if (!(train = cw_dataset_load(path, &dopts, err, sizeof(err)))) goto done;
    snprintf(path, sizeof(path), "%s/test.csv", o.data);
    if (!(test = cw_dataset_load(path, &dopts, err, sizeof(err)))) goto done;
    m = make_model(train, &o, 1);
    featurize(m, test, o.max_batch, &bg);
    probs = cw_malloc(o.max_batch * m->nlabels * sizeof(float));
    offs = cw_malloc((o.max_batch > train->n ? o.max_batch : train->n) * sizeof(uint32_t));

    if (!(cpu = cw_backend_new("cpu", err, sizeof(err)))) goto done;
    if (cw_backend_upload(cpu, m, err, sizeof(err)) != 0) goto done;
#if CW_WITH_CUDA
    if (cw_cuda_available(gpu_why, sizeof(gpu_why))) {
        if (!(gpu = cw_backend_new("cuda", err, sizeof(err)))) goto done;
        if (cw_backend_upload(gpu, m, err, sizeof(err)) != 0) goto done;
    }
#else
    snprintf(gpu_why, sizeof(gpu_why), "this build has no CUDA backend (it has: %s)", cw_backend_available());
#endif
    if (pool_start(&pool, o.threads, m, o.max_batch, err, sizeof(err)) != 0) goto done;
    pool_up = 1;

    printf("bench_forward: model %llu rows x dim %u, %u labels, ngram %u; articles from %s/test.csv "
           "(mean %.1f ids/article)\n",
           (unsigned long long)m->nrows, m->dim, m->nlabels, m->ngram, o.data, (double)bg.nids / (double)bg.nbags);
    printf("cpu: %s; cpu-all = %u threads\n", cpu->desc, o.threads);
    if (gpu)
        printf("gpu: %s\n", gpu->desc);
    else
        printf("gpu: skipped: %s\n", gpu_why);
    printf("\nforward, articles/s (host<->device copies included)\n");
    printf("%8s %12s %12s %12s %10s %10s\n", "batch", "cpu-1", "cpu-all", "gpu", "gpu/cpu-1", "gpu/cpu-all");
    for (size_t n = o.min_batch; n <= o.max_batch; n *= 4) {
        double c1 = measure(RUN_CPU1, cpu, NULL, &bg, n, probs, offs, o.seconds, err, sizeof(err));
        if (c1 < 0) goto done;
        double ca = measure(RUN_POOL, NULL, &pool, &bg, n, probs, offs, o.seconds, err, sizeof(err));
        if (ca < 0) goto done;
        if (gpu) {
            double g = measure(RUN_GPU, gpu, NULL, &bg, n, probs, offs, o.seconds, err, sizeof(err));
            if (g < 0) goto done;
            printf("%8zu %12.0f %12.0f %12.0f %9.1fx %9.1fx\n", n, c1, ca, g, g / c1, g / ca);
        } else {
            printf("%8zu %12.0f %12.0f %12s %10s %10s\n", n, c1, ca, "skipped", "-", "-");
        }
        fflush(stdout);
        if (n == o.max_batch) break;
        if (n * 4 > o.max_batch) n = o.max_batch / 4; /* always end on max_batch */
    }

    if (o.train) {
        /* Same initial weights on both: the CPU trains m in place, the GPU its copy. */
        featurize(m, train, train->n, &tb);
        printf("\ntraining, seed recipe (batch 64, lr 0.1, clip 0.1), %zu examples of %s/train.csv per epoch\n",
               tb.nbags, o.data);
        mg = make_model(train, &o, 2);
        cw_model_t *mc = make_model(train, &o, 2);
        if (cw_backend_upload(cpu, mc, err, sizeof(err)) != 0) {
            cw_model_destroy(mc);
            goto done;
        }
        if (gpu && cw_backend_upload(gpu, mg, err, sizeof(err)) != 0) {
            cw_model_destroy(mc);
            goto done;
        }
        double tc = 0, tg = 0, lc = 0, lg = 0;
        int ok = 1;
        for (uint32_t e = 0; e < o.epochs && ok; e++) {
            double s = train_epoch(cpu, &tb, offs, &lc, err, sizeof(err));
            if (s < 0) ok = 0;
            tc += s;
            if (ok && gpu) {
                s = train_epoch(gpu, &tb, offs, &lg, err, sizeof(err));
                if (s < 0) ok = 0;
                tg += s;
            }
            printf("  epoch %u: cpu mean loss %.4f", e + 1, lc);
            if (gpu) printf(", gpu mean loss %.4f", lg);
            printf("\n");
        }
        /* m must not be freed while the CPU backend is bound to mc; rebind before freeing mc */
        if (cw_backend_upload(cpu, m, err, sizeof(err)) != 0) ok = 0;
        cw_model_destroy(mc);
        if (!ok) goto done;
        double ex = (double)tb.nbags * o.epochs;
        printf("%8s %12s %14s\n", "device", "seconds", "examples/s");
        printf("%8s %12.3f %14.0f\n", "cpu-1", tc, ex / tc);
        if (gpu)
            printf("%8s %12.3f %14.0f   (gpu/cpu %.1fx)\n", "gpu", tg, ex / tg, tc / tg);
        else
            printf("%8s skipped: %s\n", "gpu", gpu_why);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_forward: %s\n", err);
    if (pool_up) pool_stop(&pool);
    cw_backend_destroy(gpu);
    cw_backend_destroy(cpu);
    bags_free(&bg);
    bags_free(&tb);
    cw_free(probs);
    cw_free(offs);
    cw_model_destroy(mg);
    cw_model_destroy(m);
    cw_dataset_destroy(test);
    cw_dataset_destroy(train);
    return rc;
}
