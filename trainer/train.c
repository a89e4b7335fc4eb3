/* train.c: the training engine. See train.h for the recipes.
 *
 * Data flow: the dataset's tokens -> vocabulary (counter over the rows the
 * recipe allows) -> a model -> every row featurized once into CSR form
 * (ids, offsets; words then hashed n-grams, cw_model_featurize) -> epochs.
 *
 * The default recipe goes from the featurized rows to nbsvm.c
 * (train_nbsvm); the seed and fasttext recipes run epochs here.
 *
 * Two epoch runners share the backend interface:
 *   - batched (seed): shuffled batches of `batch` rows, one
 *     cw_backend_train_step each (mean cross-entropy, clipping, SGD);
 *   - Hogwild (fasttext): `threads` threads, each with its own CPU backend
 *     bound to the same model, each taking a contiguous share of the epoch's
 *     shuffled order, one train_step per row; the learning rate decays
 *     linearly with the rows done by all threads together, as in fastText.
 *
 * fasttext recipe, epoch count: phase 1 trains on the 95% split with a linear
 * schedule over `epochs` epochs and records the validation loss after each
 * epoch; the chosen count E is the epoch with the lowest (smoothed)
 * validation loss. Phase 2 trains fresh models on all rows for E epochs with
 * the schedule stretched over E, and merges them (train_ensemble).
 *
 * With member_holdout (the fasttext recipe's setting) there are no phases:
 * member k of the ensemble validates on the k-th run of valid_frac * n rows
 * of the seeded permutation and trains on the others, over the linear
 * schedule of `epochs`, scoring its validation rows after every epoch; it
 * keeps the weights of its epoch of lowest validation loss (a snapshot)
 * and stops after `patience` epochs without a new low. Rows of emb that
 * none of ITS training rows use are zeroed. Held-out AG News (80/20 splits
 * of train.csv, 3 splits x 2 seeds) scored the same as select+retrain
 * (0.9021 vs 0.9020 mean) in about two thirds of the time. */
#include "train.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbsvm.h"
#include "util.h"
#include "vocab.h"

#define EVAL_BATCH 512

uint32_t cw_train_ncpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

int cw_train_opts_init(cw_train_opts_t *o, const char *recipe, char *errstr, size_t errstr_size) {
    memset(o, 0, sizeof(*o));
    o->valid_frac = 0.05;
    o->seed = 1;
    o->device = "cpu";
    if (!strcmp(recipe, "seed")) {
        snprintf(o->recipe, sizeof(o->recipe), "seed");
        o->dim = 64;
        o->epochs = 10;
        o->lr = 0.1f;
        o->batch = 64;
        o->clip_norm = 0.1f;
        o->lr_decay = 0;
        o->init_emb = 0.5f;
        o->init_fc = 0.5f;
        o->ngram = 1;
        o->threads = 1;
        o->keep_best = 1;
        o->select_epochs = 0;
        return 0;
    }
    if (!strcmp(recipe, "default")) {
        cw_nbsvm_opts_t no;
        cw_nbsvm_opts_init(&no);
        snprintf(o->recipe, sizeof(o->recipe), "default");
        /* dim 0: one per label (nbsvm.h); no epochs, lr or batch; C searched. */
        o->ngram = 2;
        o->bucket_mult = 1.0f;
        o->folds = no.folds;
        o->c_min = no.c_min;
        o->c_max = no.c_max;
        return 0;
    }
    if (!strcmp(recipe, "fasttext")) {
        snprintf(o->recipe, sizeof(o->recipe), "fasttext");
        o->dim = 10;
        o->epochs = 20;
        o->lr = 0.25f;
        o->batch = 1;
        o->clip_norm = 0.0f;
        o->lr_decay = 1;
        o->init_emb = 0.0f; /* 1/dim */
        o->init_fc = 0.0f;
        o->ngram = 2;
        o->nbuckets = 0;
        o->threads = 0;
        o->keep_best = 0;
        o->select_epochs = 1;
        o->member_holdout = 1;
        o->patience = 0;
        o->dropout = 0.8f;
        o->ensemble = 4;
        o->zero_unseen = 1;
        o->bucket_mult = 1.0f;
        return 0;
    }
    cw_seterr(errstr, errstr_size, "unknown recipe '%s' (expected default, seed or fasttext)", recipe);
    return -1;
}

static void note(const cw_train_opts_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const cw_train_opts_t *o, const char *fmt, ...) {
    if (!o->note) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    o->note(buf, o->opaque);
}

/* ---- featurized rows ---------------------------------------------------- */

typedef struct feats_s {
    int32_t *ids;
    size_t nids, cap;
    uint64_t *off;   /* n + 1 */
    size_t n;
} feats_t;

static void feats_free(feats_t *f) {
    cw_free(f->ids);
    cw_free(f->off);
    memset(f, 0, sizeof(*f));
}

static void featurize(const cw_model_t *m, const cw_dataset_t *ds, feats_t *f) {
    memset(f, 0, sizeof(*f));
    f->n = ds->n;
    f->off = cw_malloc((ds->n + 1) * sizeof(uint64_t));
    cw_tokens_t t;
    for (size_t i = 0; i < ds->n; i++) {
        f->off[i] = f->nids;
        cw_dataset_tokens(ds, i, &t);
        cw_model_featurize(m, &t, &f->ids, &f->nids, &f->cap);
    }
    f->off[ds->n] = f->nids;
}

/* ---- vocabulary and n-gram buckets --------------------------------------- */

static cw_vocab_t *build_vocab(const cw_dataset_t *ds, const size_t *rows, size_t nrows, uint64_t min_count) {
    cw_vocab_counter_t *c = cw_vocab_counter_new();
    cw_tokens_t t;
    for (size_t r = 0; r < nrows; r++) {
        cw_dataset_tokens(ds, rows ? rows[r] : r, &t);
        for (size_t k = 0; k < t.n; k++) cw_vocab_counter_add(c, t.buf + t.start[k], t.len[k]);
    }
    cw_vocab_t *v = cw_vocab_build(c, min_count, 0);
    cw_vocab_counter_destroy(c);
    return v;
}

static cw_vocab_t *vocab_clone(const cw_vocab_t *v) {
    cw_vocab_t *c = cw_vocab_new();
    for (uint32_t id = 1; id < cw_vocab_size(v); id++) {
        size_t len;
        const char *t = cw_vocab_token(v, id, &len);
        cw_vocab_push(c, t, len);
    }
    return c;
}

/* Everything a phase's models share: the vocabulary, the bucket count and
 * every row featurized once (members of an ensemble reuse them). */
typedef struct prep_s {
    cw_vocab_t *vocab;   /* owned; each model gets a copy */
    uint32_t nbuckets;
    feats_t f;           /* all rows of the data set */
    uint8_t *seen;       /* rows some training row uses (NULL: not computed) */
} prep_t;

static void prep_free(prep_t *p) {
    cw_vocab_destroy(p->vocab);
    feats_free(&p->f);
    cw_free(p->seen);
    memset(p, 0, sizeof(*p));
}

/* Distinct values among n-gram ids >= base of the training rows. */
static uint64_t count_distinct(const feats_t *f, const size_t *rows, size_t nrows, uint64_t base) {
    size_t cap = 1u << 16, used = 0;
    uint32_t *set = cw_malloc(cap * sizeof(uint32_t));
    memset(set, 0xff, cap * sizeof(uint32_t));
    for (size_t r = 0; r < nrows; r++) {
        size_t row = rows ? rows[r] : r;
        for (uint64_t k = f->off[row]; k < f->off[row + 1]; k++) {
            if ((uint64_t)f->ids[k] < base) continue;
            uint32_t h = (uint32_t)((uint64_t)f->ids[k] - base);
            if (2 * (used + 1) > cap) {
                size_t ncap = cap * 2;
                uint32_t *ns = cw_malloc(ncap * sizeof(uint32_t));
                memset(ns, 0xff, ncap * sizeof(uint32_t));
                for (size_t i = 0; i < cap; i++) {
                    if (set[i] == UINT32_MAX) continue;
                    size_t q = (set[i] * 2654435761u) & (ncap - 1);
                    while (ns[q] != UINT32_MAX) q = (q + 1) & (ncap - 1);
                    ns[q] = set[i];
                }
                cw_free(set);
                set = ns;
                cap = ncap;
            }
            size_t q = (h * 2654435761u) & (cap - 1);
            while (set[q] != UINT32_MAX && set[q] != h) q = (q + 1) & (cap - 1);
            if (set[q] == UINT32_MAX) {
                set[q] = h;
                used++;
            }
        }
    }
    cw_free(set);
    return used;
}

#define PROBE_BUCKETS (1u << 30)
#define MAX_AUTO_BUCKETS 2000000u

/* Vocabulary from the training rows (NULL = all), then the bucket count:
 * bucket_mult (default recipe: 1) x the distinct n-grams of the training
 * rows, rounded up to a multiple of 1024, at most 2M (fastText's default).
 * One bucket per distinct n-gram keeps the model small (fast to load, its
 * rows cache-resident at inference); 4x buckets (fewer collisions) measured
 * no better on held-out rows. The distinct
 * n-grams are counted through a weightless probe model with 2^30 buckets;
 * then every row is featurized with the chosen count. */
static void prep_build(prep_t *p, const cw_dataset_t *ds, const size_t *rows, size_t nrows,
                       const cw_train_opts_t *o) {
    memset(p, 0, sizeof(*p));
    p->vocab = build_vocab(ds, rows, nrows, o->min_count);
    uint64_t base = cw_vocab_size(p->vocab);
    cw_model_t probe;
    memset(&probe, 0, sizeof(probe));
    probe.vocab = p->vocab;
    probe.ngram = o->ngram < 1 ? 1 : o->ngram;
    if (probe.ngram >= 2) {
        uint32_t nb = o->nbuckets;
        if (nb == 0) {
            probe.nbuckets = PROBE_BUCKETS;
            featurize(&probe, ds, &p->f);
            double mult = o->bucket_mult > 0.f ? (double)o->bucket_mult : 4.0;
            uint64_t want = ((uint64_t)(mult * (double)count_distinct(&p->f, rows, nrows, base)) + 1023) / 1024 * 1024;
            nb = want < 1024 ? 1024 : want > MAX_AUTO_BUCKETS ? MAX_AUTO_BUCKETS : (uint32_t)want;
            feats_free(&p->f);
        }
        probe.nbuckets = nb;
        p->nbuckets = nb;
    }
    featurize(&probe, ds, &p->f);
    if (o->zero_unseen) {
        p->seen = cw_calloc(base + p->nbuckets, 1);
        for (size_t r = 0; r < nrows; r++) {
            size_t row = rows ? rows[r] : r;
            for (uint64_t k = p->f.off[row]; k < p->f.off[row + 1]; k++) p->seen[p->f.ids[k]] = 1;
        }
    }
}

/* ---- random numbers, splits ---------------------------------------------- */

static void shuffle(size_t *a, size_t n, cw_rng_t *rng) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cw_rng_below(rng, i);
        size_t x = a[i - 1];
        a[i - 1] = a[j];
        a[j] = x;
    }
}

/* emb uniform(-emb_range, emb_range) (rows not in seen stay zero, see
 * prep_t), fc_w uniform(-fc_range, fc_range) or zero, fc_b zero. */
static void init_weights(cw_model_t *m, float emb_range, float fc_range, const uint8_t *seen, uint64_t seed) {
    cw_rng_t rng;
    cw_rng_seed(&rng, seed);
    for (uint64_t row = 0; row < m->nrows; row++) {
        float *e = m->emb + row * m->dim;
        if (seen && !seen[row]) {
            memset(e, 0, m->dim * sizeof(float));
            continue;
        }
        for (uint32_t j = 0; j < m->dim; j++) e[j] = (float)((cw_rng_unit(&rng) * 2.0 - 1.0) * emb_range);
    }
    size_t nw = (size_t)m->nlabels * m->dim;
    for (size_t i = 0; i < nw; i++)
        m->fc_w[i] = fc_range > 0.f ? (float)((cw_rng_unit(&rng) * 2.0 - 1.0) * fc_range) : 0.f;
    memset(m->fc_b, 0, m->nlabels * sizeof(float));
}

/* ---- evaluation ----------------------------------------------------------- */

typedef struct eval_job_s {
    const cw_model_t *m;
    const feats_t *f;
    const int32_t *labels;
    const size_t *rows;     /* NULL: rows [0, n) */
    size_t lo, hi;          /* range in rows */
    int32_t *pred;          /* indexed like rows (optional) */
    uint64_t correct;
    double loss;
    int rc;
    char err[256];
} eval_job_t;

static void *eval_run(void *arg) {
    eval_job_t *j = arg;
    j->rc = -1;
    const cw_model_t *m = j->m;
    uint32_t k = m->nlabels;
    cw_backend_t *be = cw_backend_new("cpu", j->err, sizeof(j->err));
    if (!be) return NULL;
    int32_t *ids = NULL;
    uint32_t *offs = cw_malloc(EVAL_BATCH * sizeof(uint32_t));
    float *probs = cw_malloc((size_t)EVAL_BATCH * k * sizeof(float));
    size_t idcap = 0;
    if (cw_backend_upload(be, (cw_model_t *)m, j->err, sizeof(j->err)) != 0) goto done;
    for (size_t s = j->lo; s < j->hi; s += EVAL_BATCH) {
        size_t e = s + EVAL_BATCH < j->hi ? s + EVAL_BATCH : j->hi;
        size_t nids = 0;
        for (size_t r = s; r < e; r++) {
            size_t row = j->rows ? j->rows[r] : r;
            size_t a = j->f->off[row], b = j->f->off[row + 1];
            cw_grow((void **)&ids, &idcap, nids + (b - a) + 1, sizeof(int32_t));
            offs[r - s] = (uint32_t)nids;
            memcpy(ids + nids, j->f->ids + a, (b - a) * sizeof(int32_t));
            nids += b - a;
        }
        cw_batch_t batch = {.ids = ids, .nids = nids, .offsets = offs, .nbags = e - s};
        if (cw_backend_forward(be, &batch, probs, j->err, sizeof(j->err)) != 0) goto done;
        for (size_t r = s; r < e; r++) {
            const float *p = probs + (r - s) * k;
            size_t row = j->rows ? j->rows[r] : r;
            uint32_t best = 0;
            for (uint32_t l = 1; l < k; l++)
                if (p[l] > p[best]) best = l;
            int32_t y = j->labels[row];
            j->correct += (int32_t)best == y;
            double py = p[y] > 1e-30f ? (double)p[y] : 1e-30;
            j->loss -= log(py);
            if (j->pred) j->pred[r] = (int32_t)best;
        }
    }
    j->rc = 0;
done:
    cw_free(ids);
    cw_free(offs);
    cw_free(probs);
    cw_backend_destroy(be);
    return NULL;
}

/* Accuracy and mean loss of m over rows (NULL = all n rows of f). */
static int evaluate_rows(const cw_model_t *m, const feats_t *f, const int32_t *labels, const size_t *rows,
                         size_t n, uint32_t threads, double *acc, double *loss, int32_t *pred, char *errstr,
                         size_t errstr_size) {
    if (threads < 1) threads = 1;
    if (threads > n / EVAL_BATCH + 1) threads = (uint32_t)(n / EVAL_BATCH + 1);
    eval_job_t *jobs = cw_calloc(threads, sizeof(eval_job_t));
    pthread_t *tids = cw_calloc(threads, sizeof(pthread_t));
    int rc = -1;
    uint32_t started = 0;
    for (uint32_t t = 0; t < threads; t++) {
        jobs[t] = (eval_job_t){.m = m, .f = f, .labels = labels, .rows = rows, .lo = n * t / threads,
                               .hi = n * (t + 1) / threads, .pred = pred};
    }
    for (uint32_t t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, eval_run, &jobs[t]) != 0) break;
        started = t;
    }
    eval_run(&jobs[0]);
    for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    for (uint32_t t = started + 1; t < threads; t++) eval_run(&jobs[t]); /* pthread_create failed */
    uint64_t correct = 0;
    double lsum = 0.0;
    for (uint32_t t = 0; t < threads; t++) {
        if (jobs[t].rc != 0) {
            cw_seterr(errstr, errstr_size, "evaluate: %s", jobs[t].err);
            goto done;
        }
        correct += jobs[t].correct;
        lsum += jobs[t].loss;
    }
    if (acc) *acc = n ? (double)correct / (double)n : 0.0;
    if (loss) *loss = n ? lsum / (double)n : 0.0;
    rc = 0;
done:
    cw_free(jobs);
    cw_free(tids);
    return rc;
}

int cw_train_evaluate(const cw_model_t *m, const cw_dataset_t *ds, uint32_t threads, double *acc,
                      double *loss, int32_t *pred, char *errstr, size_t errstr_size) {
    if (ds->nlabels != m->nlabels) {
        cw_seterr(errstr, errstr_size, "evaluate: data has %u labels, model %u", ds->nlabels, m->nlabels);
        return -1;
    }
    feats_t f;
    featurize(m, ds, &f);
    int rc = evaluate_rows(m, &f, ds->labels, NULL, ds->n, threads ? threads : cw_train_ncpus(), acc, loss,
                           pred, errstr, errstr_size);
    feats_free(&f);
    return rc;
}

/* ---- epoch runners ---------------------------------------------------------- */

/* Batched epoch (seed recipe): rows in `order`, `batch` at a time. */
static int epoch_batched(cw_backend_t *be, const feats_t *f, const int32_t *labels, const size_t *order,
                         size_t n, const cw_train_opts_t *o, double *loss_sum, char *errstr,
                         size_t errstr_size) {
    int rc = -1;
    size_t B = o->batch ? o->batch : 1;
    int32_t *ids = NULL, *lab = cw_malloc(B * sizeof(int32_t));
    uint32_t *offs = cw_malloc(B * sizeof(uint32_t));
    size_t idcap = 0;
    cw_step_opts_t so = {.lr = o->lr, .clip_norm = o->clip_norm};
    *loss_sum = 0.0;
    for (size_t s = 0; s < n; s += B) {
        size_t e = s + B < n ? s + B : n, nids = 0;
        for (size_t r = s; r < e; r++) {
            size_t row = order[r];
            size_t a = f->off[row], b = f->off[row + 1];
            cw_grow((void **)&ids, &idcap, nids + (b - a) + 1, sizeof(int32_t));
            offs[r - s] = (uint32_t)nids;
            lab[r - s] = labels[row];
            memcpy(ids + nids, f->ids + a, (b - a) * sizeof(int32_t));
            nids += b - a;
        }
        cw_batch_t batch = {.ids = ids, .nids = nids, .offsets = offs, .nbags = e - s, .labels = lab};
        double l = 0.0;
        if (cw_backend_train_step(be, &batch, &so, &l, errstr, errstr_size) != 0) goto done;
        *loss_sum += l;
    }
    rc = 0;
done:
    cw_free(ids);
    cw_free(lab);
    cw_free(offs);
    return rc;
}

/* Hogwild epoch: shared state of one epoch. */
typedef struct hog_shared_s {
    cw_model_t *m;
    const feats_t *f;
    const int32_t *labels;
    const size_t *order;
    size_t n;
    float lr0;
    int decay;
    float dropout;
    uint64_t seed;              /* per-epoch seed of the threads' dropout generators */
    uint64_t total;             /* rows in the whole run (lr schedule) */
    _Atomic uint64_t done;      /* rows done in the run so far, all threads */
} hog_shared_t;

typedef struct hog_job_s {
    hog_shared_t *sh;
    cw_backend_t *be;
    size_t lo, hi;
    int32_t *scratch;           /* the bag after dropout */
    size_t scratch_cap;
    double loss;
    int rc;
    char err[256];
} hog_job_t;

#define HOG_SYNC 64 /* rows between updates of the shared progress counter */

static void *hog_run(void *arg) {
    hog_job_t *j = arg;
    hog_shared_t *sh = j->sh;
    j->rc = -1;
    j->loss = 0.0;
    uint32_t off0 = 0;
    cw_step_opts_t so = {.lr = sh->lr0, .clip_norm = 0.f};
    uint64_t local = 0, seen = atomic_load(&sh->done);
    cw_rng_t rng;
    cw_rng_seed(&rng, sh->seed + j->lo);
    uint64_t keep_below = (uint64_t)((1.0 - (double)sh->dropout) * 4294967296.0);
    for (size_t r = j->lo; r < j->hi; r++) {
        size_t row = sh->order[r];
        size_t a = sh->f->off[row], b = sh->f->off[row + 1];
        cw_batch_t batch = {.ids = sh->f->ids + a, .nids = b - a, .offsets = &off0, .nbags = 1,
                            .labels = &sh->labels[row]};
        if (sh->dropout > 0.f && b > a) {
            cw_grow((void **)&j->scratch, &j->scratch_cap, b - a, sizeof(int32_t));
            size_t n = 0;
            /* Two keep/drop draws per 64-bit random number. */
            size_t k = a;
            for (; k + 1 < b; k += 2) {
                uint64_t x = cw_rng_next(&rng);
                j->scratch[n] = sh->f->ids[k];
                n += (x >> 32) < keep_below;
                j->scratch[n] = sh->f->ids[k + 1];
                n += (x & 0xffffffffu) < keep_below;
            }
            if (k < b && (cw_rng_next(&rng) >> 32) < keep_below) j->scratch[n++] = sh->f->ids[k];
            if (n == 0) j->scratch[n++] = sh->f->ids[a + (size_t)cw_rng_below(&rng, b - a)];
            batch.ids = j->scratch;
            batch.nids = n;
        }
        if (sh->decay) {
            double p = (double)(seen + local) / (double)sh->total;
            so.lr = (float)(sh->lr0 * (1.0 - (p < 1.0 ? p : 1.0)));
        }
        double l = 0.0;
        if (cw_backend_train_step(j->be, &batch, &so, &l, j->err, sizeof(j->err)) != 0) return NULL;
        j->loss += l;
        if (++local == HOG_SYNC) {
            seen = atomic_fetch_add(&sh->done, local) + local;
            local = 0;
        }
    }
    atomic_fetch_add(&sh->done, local);
    j->rc = 0;
    return NULL;
}

static int epoch_hogwild(cw_backend_t **bes, uint32_t threads, hog_shared_t *sh, double *loss_sum,
                         char *errstr, size_t errstr_size) {
    hog_job_t *jobs = cw_calloc(threads, sizeof(hog_job_t));
    pthread_t *tids = cw_calloc(threads, sizeof(pthread_t));
    uint32_t started = 0;
    int rc = -1;
    for (uint32_t t = 0; t < threads; t++)
        jobs[t] = (hog_job_t){.sh = sh, .be = bes[t], .lo = sh->n * t / threads, .hi = sh->n * (t + 1) / threads};
    for (uint32_t t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, hog_run, &jobs[t]) != 0) break;
        started = t;
    }
    hog_run(&jobs[0]);
    for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    for (uint32_t t = started + 1; t < threads; t++) hog_run(&jobs[t]);
    *loss_sum = 0.0;
    for (uint32_t t = 0; t < threads; t++) cw_free(jobs[t].scratch);
    for (uint32_t t = 0; t < threads; t++) {
        if (jobs[t].rc != 0) {
            cw_seterr(errstr, errstr_size, "train: %s", jobs[t].err);
            goto done;
        }
        *loss_sum += jobs[t].loss;
    }
    rc = 0;
done:
    cw_free(jobs);
    cw_free(tids);
    return rc;
}

/* ---- one training run -------------------------------------------------------- */

static void record_epoch(cw_train_result_t *res, size_t *cap, const cw_train_epoch_t *e, const cw_train_opts_t *o) {
    cw_grow((void **)&res->epochs, cap, res->nepochs + 1, sizeof(cw_train_epoch_t));
    res->epochs[res->nepochs++] = *e;
    if (o && o->progress) o->progress(e, o->opaque);
}

typedef struct snapshot_s {
    float *emb, *fc_w, *fc_b;
} snapshot_t;

static void snapshot_take(snapshot_t *s, const cw_model_t *m) {
    size_t ne = (size_t)m->nrows * m->dim, nw = (size_t)m->nlabels * m->dim;
    if (!s->emb) {
        s->emb = cw_malloc(ne * sizeof(float));
        s->fc_w = cw_malloc(nw * sizeof(float));
        s->fc_b = cw_malloc(m->nlabels * sizeof(float));
    }
    memcpy(s->emb, m->emb, ne * sizeof(float));
    memcpy(s->fc_w, m->fc_w, nw * sizeof(float));
    memcpy(s->fc_b, m->fc_b, m->nlabels * sizeof(float));
}

static void snapshot_restore(const snapshot_t *s, cw_model_t *m) {
    memcpy(m->emb, s->emb, (size_t)m->nrows * m->dim * sizeof(float));
    memcpy(m->fc_w, s->fc_w, (size_t)m->nlabels * m->dim * sizeof(float));
    memcpy(m->fc_b, s->fc_b, m->nlabels * sizeof(float));
}

static void snapshot_free(snapshot_t *s) {
    cw_free(s->emb);
    cw_free(s->fc_w);
    cw_free(s->fc_b);
}

/* Train a fresh model on rows `train` (validating on `valid` when nvalid > 0)
 * for `epochs` epochs. With keep_best, the returned weights are those of the
 * epoch with the best validation accuracy (strictly greater wins). */
typedef struct run_s {
    const cw_dataset_t *ds;
    const cw_train_opts_t *o;
    const prep_t *prep;
    const size_t *train;
    size_t ntrain;
    const size_t *valid;
    size_t nvalid;
    uint32_t epochs;
    uint32_t phase;
    uint32_t threads;
    uint64_t seed;
    uint32_t patience;          /* stop after this many epochs without a lower validation loss (0 = never) */
    uint32_t member;            /* ensemble member index (reported in the epochs) */
    int quiet;                  /* record epochs without calling the progress callback */
    int holdout;                /* members: each trains on perm minus its own validation share
                                   (train = perm, ntrain = all rows, nvalid = the share size),
                                   zeroes the rows its training rows do not use, and keeps its
                                   epoch of lowest validation loss */
} run_t;

static cw_model_t *train_run(const run_t *r, cw_train_result_t *res, size_t *ecap, uint32_t *best_epoch,
                             double *best_acc, char *errstr, size_t errstr_size) {
    const cw_train_opts_t *o = r->o;
    const cw_dataset_t *ds = r->ds;
    const prep_t *p = r->prep;
    const feats_t *fp = &p->f;
    cw_model_t *m = cw_model_new(vocab_clone(p->vocab), o->dim, (const char *const *)ds->label_names, ds->nlabels,
                                 o->ngram, p->nbuckets);
    cw_backend_t **bes = cw_calloc(r->threads, sizeof(cw_backend_t *));
    size_t *order = cw_malloc((r->ntrain ? r->ntrain : 1) * sizeof(size_t));
    snapshot_t snap = {0};
    uint8_t *own_seen = NULL;
    int ok = 0;
    cw_rng_t rng;
    cw_rng_seed(&rng, r->seed ^ 0x5eedULL);

    if (r->holdout && o->zero_unseen) {
        own_seen = cw_calloc(m->nrows, 1);
        for (size_t i = 0; i < r->ntrain; i++)
            for (uint64_t k = fp->off[r->train[i]]; k < fp->off[r->train[i] + 1]; k++) own_seen[fp->ids[k]] = 1;
    }
    if (!strcmp(o->recipe, "seed")) cw_model_init_uniform(m, o->init_emb, r->seed);
    else init_weights(m, o->init_emb > 0.f ? o->init_emb : 1.0f / (float)o->dim, o->init_fc,
                      r->holdout ? own_seen : p->seen, r->seed);
    uint32_t nbe = o->batch > 1 ? 1 : r->threads;
    for (uint32_t t = 0; t < nbe; t++) {
        bes[t] = cw_backend_new(o->batch > 1 && o->device ? o->device : "cpu", errstr, errstr_size);
        if (!bes[t] || cw_backend_upload(bes[t], m, errstr, errstr_size) != 0) goto done;
    }
    memcpy(order, r->train, r->ntrain * sizeof(size_t));
    hog_shared_t sh = {.m = m, .f = fp, .labels = ds->labels, .order = order, .n = r->ntrain, .lr0 = o->lr,
                       .decay = o->lr_decay, .dropout = o->dropout, .total = (uint64_t)r->ntrain * r->epochs};
    atomic_init(&sh.done, 0);
    *best_epoch = 0;
    *best_acc = 0.0;
    double best_loss = INFINITY;
    uint32_t best_loss_epoch = 0;
    for (uint32_t ep = 1; ep <= r->epochs; ep++) {
        cw_train_epoch_t e = {.phase = r->phase, .epoch = ep, .member = r->member, .valid_acc = -1, .valid_loss = -1};
        e.lr = o->lr_decay ? o->lr * (1.0 - (double)(ep - 1) / r->epochs) : o->lr;
        shuffle(order, r->ntrain, &rng);
        sh.seed = cw_rng_next(&rng);
        double t0 = cw_now_s();
        if (o->batch > 1) {
            if (cw_backend_sync(bes[0], errstr, errstr_size) != 0) goto done;
            if (epoch_batched(bes[0], fp, ds->labels, order, r->ntrain, o, &e.loss_sum, errstr, errstr_size) != 0)
                goto done;
            size_t nb = (r->ntrain + o->batch - 1) / o->batch;
            e.loss_mean = nb ? e.loss_sum / (double)nb : 0.0;
            if (cw_backend_download(bes[0], m, errstr, errstr_size) != 0) goto done;
        } else {
            if (epoch_hogwild(bes, r->threads, &sh, &e.loss_sum, errstr, errstr_size) != 0) goto done;
            e.loss_mean = r->ntrain ? e.loss_sum / (double)r->ntrain : 0.0;
        }
        e.seconds = cw_now_s() - t0;
        e.examples_per_s = e.seconds > 0 ? (double)r->ntrain / e.seconds : 0.0;
        if (r->nvalid > 0) {
            if (evaluate_rows(m, fp, ds->labels, r->valid, r->nvalid, r->threads, &e.valid_acc, &e.valid_loss,
                              NULL, errstr, errstr_size) != 0)
                goto done;
            if (e.valid_acc > *best_acc) {
                *best_acc = e.valid_acc;
                *best_epoch = ep;
                if (o->keep_best && ep < r->epochs) snapshot_take(&snap, m);
            }
        }
        record_epoch(res, ecap, &e, r->quiet ? NULL : o);
        if (r->nvalid > 0 && e.valid_loss < best_loss) {
            best_loss = e.valid_loss;
            best_loss_epoch = ep;
            if (r->holdout) {
                *best_epoch = ep;
                *best_acc = e.valid_acc;
                if (ep < r->epochs) snapshot_take(&snap, m);
            }
        } else if (r->nvalid > 0 && r->patience > 0 && ep - best_loss_epoch >= r->patience) {
            break;
        }
    }
    if (r->holdout) {
        if (best_loss_epoch > 0 && best_loss_epoch < r->epochs && snap.emb) snapshot_restore(&snap, m);
    } else if (o->keep_best && *best_epoch > 0 && *best_epoch < r->epochs) {
        snapshot_restore(&snap, m);
    }
    ok = 1;
done:
    for (uint32_t t = 0; t < nbe; t++) cw_backend_destroy(bes[t]);
    cw_free(bes);
    cw_free(order);
    cw_free(own_seen);
    snapshot_free(&snap);
    if (!ok) {
        cw_model_destroy(m);
        return NULL;
    }
    return m;
}

/* Ensemble members: trained independently, one thread each when there are
 * at least as many members as threads (so each member is deterministic
 * whatever the thread count), Hogwild otherwise. */
typedef struct member_job_s {
    const run_t *r;
    uint32_t first, step, K;   /* members first, first + step, ... < K */
    cw_model_t *out;
    float *biases;             /* K x nlabels: member k's fc_b in row k */
    cw_train_result_t res;     /* this job's epochs, reported after the join */
    size_t ecap;
    uint64_t best_epoch_sum;   /* holdout: the members' kept epochs, summed */
    double best_acc_sum;       /* holdout: their validation accuracies then, summed */
    int rc;
    char err[512];
} member_job_t;

/* Copy member k (dim d) into block k of the ensemble (dim K*d). */
static void member_merge(cw_model_t *out, const cw_model_t *m, uint32_t k, uint32_t K) {
    uint32_t d = m->dim, D = out->dim;
    for (uint64_t row = 0; row < m->nrows; row++)
        memcpy(out->emb + row * D + (size_t)k * d, m->emb + row * d, d * sizeof(float));
    for (uint32_t l = 0; l < m->nlabels; l++)
        for (uint32_t j = 0; j < d; j++) out->fc_w[(size_t)l * D + (size_t)k * d + j] = m->fc_w[(size_t)l * d + j] / (float)K;
}

static void *member_run(void *arg) {
    member_job_t *j = arg;
    j->rc = -1;
    for (uint32_t k = j->first; k < j->K; k += j->step) {
        run_t rk = *j->r;
        rk.seed = j->r->seed + 0x9e3779b97f4a7c15ULL * k;
        rk.member = k;
        rk.quiet = 1;
        if (j->step > 1) rk.threads = 1;
        size_t *split = NULL;
        if (rk.holdout) {
            /* Member k validates on the k-th share of perm (wrapping around
             * when K shares exceed the rows) and trains on the rest. */
            size_t n = j->r->ntrain, nv = j->r->nvalid, v0 = (size_t)(((uint64_t)k * nv) % n);
            split = cw_malloc(n * sizeof(size_t));
            for (size_t i = 0; i < n; i++) split[i] = j->r->train[(v0 + nv + i) % n];
            rk.train = split;
            rk.ntrain = n - nv;
            rk.valid = split + (n - nv);
        }
        uint32_t be;
        double ba;
        cw_model_t *m = train_run(&rk, &j->res, &j->ecap, &be, &ba, j->err, sizeof(j->err));
        cw_free(split);
        if (!m) return NULL;
        j->best_epoch_sum += be;
        j->best_acc_sum += ba;
        member_merge(j->out, m, k, j->K);
        memcpy(j->biases + (size_t)k * m->nlabels, m->fc_b, m->nlabels * sizeof(float));
        cw_model_destroy(m);
    }
    j->rc = 0;
    return NULL;
}

/* Train K members on r (seeds r->seed + k * golden ratio constant) and
 * concatenate them into one model of dim K*d whose logits are the mean of
 * the members' logits: emb rows side by side, fc_w side by side and divided
 * by K, fc_b averaged. (mean_k (W_k h_k + b_k) = [W_1..W_K]/K · [h_1..h_K] +
 * mean_k b_k, and the bag mean of concatenated rows is the concatenation of
 * the bag means.) Member 0 is exactly the model a lone run with r->seed and
 * one thread gives. */
static cw_model_t *train_ensemble(const run_t *r, uint32_t K, cw_train_result_t *res, size_t *ecap,
                                  uint32_t *best_epoch, double *best_acc, char *errstr, size_t errstr_size) {
    if (K <= 1 && !r->holdout) return train_run(r, res, ecap, best_epoch, best_acc, errstr, errstr_size);
    const cw_train_opts_t *o = r->o;
    const prep_t *p = r->prep;
    uint32_t nl = r->ds->nlabels;
    cw_model_t *out = cw_model_new(vocab_clone(p->vocab), K * o->dim, (const char *const *)r->ds->label_names, nl,
                                   o->ngram, p->nbuckets);
    uint32_t njobs = r->threads <= K ? r->threads : 1;
    if (njobs < 1) njobs = 1;
    member_job_t *jobs = cw_calloc(njobs, sizeof(member_job_t));
    pthread_t *tids = cw_calloc(njobs, sizeof(pthread_t));
    float *biases = cw_calloc((size_t)K * nl, sizeof(float));
    uint32_t started = 0;
    for (uint32_t t = 0; t < njobs; t++)
        jobs[t] = (member_job_t){.r = r, .first = t, .step = njobs, .K = K, .out = out, .biases = biases};
    for (uint32_t t = 1; t < njobs; t++) {
        if (pthread_create(&tids[t], NULL, member_run, &jobs[t]) != 0) break;
        started = t;
    }
    member_run(&jobs[0]);
    for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    for (uint32_t t = started + 1; t < njobs; t++) member_run(&jobs[t]);
    int ok = 1;
    for (uint32_t t = 0; t < njobs; t++) {
        if (jobs[t].rc != 0 && ok) {
            cw_seterr(errstr, errstr_size, "%s", jobs[t].err);
            ok = 0;
        }
    }
    /* Report the members' epochs in member order. */
    for (uint32_t k = 0; k < K && ok; k++) {
        member_job_t *j = &jobs[k % njobs];
        for (size_t i = 0; i < j->res.nepochs; i++)
            if (j->res.epochs[i].member == k) record_epoch(res, ecap, &j->res.epochs[i], o);
    }
    for (uint32_t l = 0; l < nl; l++) {
        double sum = 0.0;
        for (uint32_t k = 0; k < K; k++) sum += biases[(size_t)k * nl + l];
        out->fc_b[l] = (float)(sum / K);
    }
    *best_epoch = 0;
    *best_acc = 0.0;
    if (r->holdout && ok) {
        uint64_t sum = 0;
        double acc = 0.0;
        for (uint32_t t = 0; t < njobs; t++) sum += jobs[t].best_epoch_sum, acc += jobs[t].best_acc_sum;
        *best_epoch = (uint32_t)((sum + K / 2) / K);
        *best_acc = acc / K;
    }
    for (uint32_t t = 0; t < njobs; t++) cw_free(jobs[t].res.epochs);
    cw_free(jobs);
    cw_free(tids);
    cw_free(biases);
    if (!ok) {
        cw_model_destroy(out);
        return NULL;
    }
    return out;
}

/* The default recipe (nbsvm.h): vocabulary and n-gram buckets over every
 * row, one featurization, then the cross-validated NB-SVM fit written into a
 * model of dim = the number of labels. Each candidate C is reported as a
 * phase-1 step, the final all-rows fit as phase 2. */
static int train_nbsvm(const cw_dataset_t *ds, const cw_train_opts_t *o, uint32_t threads, cw_train_result_t *res,
                       char *errstr, size_t errstr_size) {
    prep_t prep = {0};
    cw_nbsvm_result_t nr = {0};
    size_t ecap = 0;
    int rc = -1;
    prep_build(&prep, ds, NULL, ds->n, o);
    cw_model_t *m = cw_model_new(vocab_clone(prep.vocab), ds->nlabels, (const char *const *)ds->label_names,
                                 ds->nlabels, o->ngram, prep.nbuckets);
    cw_nbsvm_opts_t no;
    cw_nbsvm_opts_init(&no);
    no.folds = o->folds;
    no.valid_frac = o->valid_frac;
    no.c = o->svm_c;
    if (o->c_min > 0.0) no.c_min = o->c_min;
    if (o->c_max > 0.0) no.c_max = o->c_max;
    no.threads = threads;
    no.seed = o->seed;
    if (o->svm_eps > 0.0) no.eps = o->svm_eps;
    cw_nbsvm_data_t d = {.ids = prep.f.ids, .off = prep.f.off, .n = ds->n, .labels = ds->labels,
                         .nlabels = ds->nlabels, .nfeat = m->nrows};
    if (no.c > 0.0)
        note(o, "linear SVMs (one per label) on %zu rows, vocabulary %zu, %u n-gram buckets, C %g", ds->n,
             cw_vocab_size(prep.vocab), prep.nbuckets, no.c);
    else
        note(o, "linear SVMs (one per label) on %zu rows, vocabulary %zu, %u n-gram buckets; C from %g to %g "
             "chosen by %u-fold cross-validation", ds->n, cw_vocab_size(prep.vocab), prep.nbuckets, no.c_min,
             no.c_max, no.folds);
    if (cw_nbsvm_fit(&d, &no, m, &nr, errstr, errstr_size) != 0) goto done;
    size_t ntrain = no.folds > 1 ? ds->n - ds->n / no.folds : ds->n - nr.nvalid;
    for (size_t s = 0; s < nr.nsteps; s++) {
        const cw_nbsvm_step_t *st = &nr.steps[s];
        cw_train_epoch_t e = {.phase = 1, .epoch = (uint32_t)s + 1, .loss_mean = st->train_loss,
                              .loss_sum = st->train_loss * (double)ntrain, .valid_acc = st->valid_acc,
                              .valid_loss = st->valid_loss, .c = st->c, .seconds = st->seconds};
        e.examples_per_s = st->seconds > 0 ? (double)ntrain * (no.folds > 1 ? no.folds : 1) / st->seconds : 0.0;
        record_epoch(res, &ecap, &e, o);
        if (st->unconverged)
            note(o, "C %g: %u of the solves stopped at the pass limit before converging", st->c, st->unconverged);
    }
    const cw_nbsvm_step_t *ch = &nr.steps[nr.chosen];
    cw_train_epoch_t fin = {.phase = 2, .epoch = 1, .loss_mean = nr.final_loss,
                            .loss_sum = nr.final_loss * (double)ds->n, .valid_acc = -1, .valid_loss = -1, .c = ch->c,
                            .seconds = nr.final_seconds};
    fin.examples_per_s = nr.final_seconds > 0 ? (double)ds->n / nr.final_seconds : 0.0;
    if (ch->valid_acc >= 0)
        note(o, "C %g had the best cross-validated accuracy (%.4f, log-loss %.4f at temperature %.3g); refitting "
             "on all %zu rows", ch->c, ch->valid_acc, ch->valid_loss, ch->temperature, ds->n);
    record_epoch(res, &ecap, &fin, o);
    res->model = m;
    m = NULL;
    res->best_epoch = (uint32_t)nr.chosen + 1;
    res->best_valid_acc = ch->valid_acc;
    res->best_c = ch->c;
    res->ntrain = ntrain;
    res->nvalid = nr.nvalid;
    rc = 0;
done:
    cw_model_destroy(m);
    cw_free(nr.steps);
    prep_free(&prep);
    return rc;
}

int cw_train(const cw_dataset_t *ds, const cw_train_opts_t *o, cw_train_result_t *res, char *errstr,
             size_t errstr_size) {
    memset(res, 0, sizeof(*res));
    double t0 = cw_now_s();
    size_t ecap = 0;
    int rc = -1;
    size_t *perm = NULL, *all = NULL;
    prep_t prep = {0};
    uint32_t threads = o->threads ? o->threads : cw_train_ncpus();
    if (o->batch > 1) threads = 1;
    res->threads = threads;
    if (ds->n < 2 || ds->nlabels < 1) {
        cw_seterr(errstr, errstr_size, "%s: need at least 2 rows to train (has %zu)", ds->path, ds->n);
        return -1;
    }
    if (!strcmp(o->recipe, "default")) {
        if (o->dim != 0 && o->dim != ds->nlabels) {
            cw_seterr(errstr, errstr_size, "bad options: the default recipe's model has one dimension per label "
                      "(%u); dim %u applies to the seed and fasttext recipes", ds->nlabels, o->dim);
            return -1;
        }
        rc = train_nbsvm(ds, o, threads, res, errstr, errstr_size);
        res->threads = threads;
        res->seconds = cw_now_s() - t0;
        if (rc != 0) cw_train_result_free(res);
        return rc;
    }
    if (o->dim == 0 || o->epochs == 0 || !(o->lr > 0.f) || o->valid_frac < 0.0 || o->valid_frac >= 1.0 ||
        o->dropout < 0.f || o->dropout >= 1.f) {
        cw_seterr(errstr, errstr_size,
                  "bad options: dim %u, epochs %u, lr %g, valid %g, dropout %g (need dim, epochs, lr > 0, "
                  "0 <= valid < 1, 0 <= dropout < 1)",
                  o->dim, o->epochs, (double)o->lr, o->valid_frac, (double)o->dropout);
        return -1;
    }
    uint32_t K = o->ensemble > 1 ? o->ensemble : 1;
    if ((uint64_t)K * o->dim > 4096) {
        cw_seterr(errstr, errstr_size, "bad options: ensemble %u x dim %u is over 4096", K, o->dim);
        return -1;
    }
    /* random_split: a seeded permutation; the first floor(n * (1 - valid)) rows train. */
    perm = cw_malloc(ds->n * sizeof(size_t));
    for (size_t i = 0; i < ds->n; i++) perm[i] = i;
    cw_rng_t rng;
    cw_rng_seed(&rng, o->seed);
    shuffle(perm, ds->n, &rng);
    size_t ntrain = (size_t)((double)ds->n * (1.0 - o->valid_frac) + 1e-9);
    if (ntrain < 1) ntrain = 1;
    if (ntrain > ds->n) ntrain = ds->n;
    res->ntrain = ntrain;
    res->nvalid = ds->n - ntrain;

    run_t r = {.ds = ds, .o = o, .prep = &prep, .train = perm, .ntrain = ntrain, .valid = perm + ntrain,
               .nvalid = ds->n - ntrain, .epochs = o->epochs, .phase = 1, .threads = threads,
               .seed = cw_rng_next(&rng)};
    uint32_t best_epoch = 0;
    double best_acc = 0.0;
    if (o->select_epochs && o->member_holdout && r.nvalid > 0) {
        /* Every member trains on all rows but its own validation share (the
         * shares are consecutive runs of the permutation, so with K * valid
         * <= 1 they are disjoint and every row trains K - 1 members) and
         * keeps its epoch of lowest validation loss: the epoch count follows
         * the data without a selection run and a retrain. */
        prep_build(&prep, ds, NULL, ds->n, o);
        r.train = perm;
        r.ntrain = ds->n;
        r.holdout = 1;
        r.patience = o->patience;
        note(o, "%u model(s), each on %zu rows validated on its own %zu, vocabulary %zu, %u n-gram buckets, up to "
             "%u epochs", K, ntrain, r.nvalid, cw_vocab_size(prep.vocab), prep.nbuckets, r.epochs);
        res->model = train_ensemble(&r, K, res, &ecap, &best_epoch, &best_acc, errstr, errstr_size);
        if (!res->model) goto done;
        res->best_epoch = best_epoch;
        res->best_valid_acc = best_acc;
    } else if (!o->select_epochs) {
        /* Vocabulary over every row (the notebook builds it on the whole train
         * iterator, validation rows included); training on the split. */
        prep_build(&prep, ds, NULL, ds->n, o);
        note(o, "%zu train / %zu validation rows, vocabulary %zu, %u n-gram buckets, %u epochs", ntrain, r.nvalid,
             cw_vocab_size(prep.vocab), prep.nbuckets, r.epochs);
        res->model = train_ensemble(&r, K, res, &ecap, &best_epoch, &best_acc, errstr, errstr_size);
        if (!res->model) goto done;
        res->best_epoch = best_epoch;
        res->best_valid_acc = best_acc;
    } else {
        /* Phase 1: one model on the training split; the epoch count is the one
         * whose validation loss is lowest. */
        prep_build(&prep, ds, perm, ntrain, o);
        note(o, "phase 1: %zu train / %zu validation rows, vocabulary %zu, %u n-gram buckets, up to %u epochs",
             ntrain, r.nvalid, cw_vocab_size(prep.vocab), prep.nbuckets, r.epochs);
        r.patience = o->patience;
        cw_model_t *m1 = train_run(&r, res, &ecap, &best_epoch, &best_acc, errstr, errstr_size);
        if (!m1) goto done;
        cw_model_destroy(m1);
        prep_free(&prep);
        /* The validation loss of a 5% split is noisy from epoch to epoch (with
         * dropout the curve is flat near its minimum), so the choice is made
         * on its centred 5-epoch moving average. */
        uint32_t chosen = 0;
        double best_loss = INFINITY;
        size_t ne = res->nepochs;
        for (size_t i = 0; i < ne; i++) {
            double sum = 0.0;
            size_t cnt = 0;
            for (size_t k = i >= 2 ? i - 2 : 0; k <= i + 2 && k < ne; k++) {
                sum += res->epochs[k].valid_loss;
                cnt++;
            }
            if (sum / (double)cnt < best_loss) {
                best_loss = sum / (double)cnt;
                chosen = res->epochs[i].epoch;
            }
        }
        if (chosen == 0) chosen = o->epochs;
        res->best_epoch = chosen;
        res->best_valid_acc = res->epochs[chosen - 1].valid_acc;
        /* Phase 2: all rows, the chosen count, the schedule stretched over it. */
        all = cw_malloc(ds->n * sizeof(size_t));
        for (size_t i = 0; i < ds->n; i++) all[i] = i;
        prep_build(&prep, ds, NULL, ds->n, o);
        run_t r2 = r;
        r2.patience = 0;
        r2.train = all;
        r2.ntrain = ds->n;
        r2.valid = NULL;
        r2.nvalid = 0;
        r2.epochs = chosen;
        r2.phase = 2;
        note(o, "phase 2: epoch %u had the lowest validation loss (%.4f, accuracy %.4f); training %u model(s) on "
             "all %zu rows for %u epochs, vocabulary %zu, %u n-gram buckets",
             chosen, best_loss, res->best_valid_acc, K, ds->n, chosen, cw_vocab_size(prep.vocab), prep.nbuckets);
        res->model = train_ensemble(&r2, K, res, &ecap, &best_epoch, &best_acc, errstr, errstr_size);
        if (!res->model) goto done;
    }
    rc = 0;
done:
    cw_free(perm);
    cw_free(all);
    prep_free(&prep);
    res->seconds = cw_now_s() - t0;
    if (rc != 0) cw_train_result_free(res);
    return rc;
}

void cw_train_result_free(cw_train_result_t *res) {
    if (!res) return;
    cw_model_destroy(res->model);
    cw_free(res->epochs);
    memset(res, 0, sizeof(*res));
}
