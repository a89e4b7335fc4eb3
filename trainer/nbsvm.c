/* nbsvm.c: NB-scaled TF-IDF one-vs-rest linear SVMs, exported as the
 * EmbeddingBag-mean + Linear model. See nbsvm.h.
 *
 * Layout of the work: every row's bag becomes distinct (feature, count / n)
 * entries once (bags_t). The search runs in rounds, one C each; a job is one
 * (fold, class) pair: on its first round it builds class c's feature scale
 * over the fold's training rows (kept for the later rounds), then each
 * round packs those rows scaled, solves warm from its previous alpha and
 * writes its decision values for the fold's held-out rows into the shared
 * score table (each job owns distinct cells: no locking). After the search,
 * one job per class refits on every row with the chosen C, warm-started
 * from the folds' alphas, and writes its column of emb. */
#include "nbsvm.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "svm.h"
#include "util.h"

#define NB_ALPHA 1.0 /* Laplace smoothing; class_scale's log table assumes 1 */
#define MAX_STEPS 64

void cw_nbsvm_opts_init(cw_nbsvm_opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->folds = 2;
    o->valid_frac = 0.05;
    o->c = 0.0;
    o->c_min = 1.0 / 16.0;
    o->c_max = 8.0;
    o->eps = 1.0;
    o->max_passes = 1000;
    o->threads = 1;
    o->seed = 1;
}

/* ---- distinct (feature, count / n) entries per row ------------------------ */

typedef struct bags_s {
    uint64_t *off;          /* n + 1 */
    cw_svm_entry_t *ent;    /* (feature, count / n), in order of first occurrence */
    uint32_t nfeat;         /* features that occur in some row */
    uint32_t *orig;         /* nfeat: feature -> the model's row */
} bags_t;

/* Distinct entries per row (in order of first occurrence), features
 * renumbered densely in their order so that those no row has take no room
 * in the solver's arrays. (Renumbering by document frequency, to pack the
 * hot features into few cache lines, measured no faster.) */
static void bags_build(bags_t *b, const cw_nbsvm_data_t *d) {
    size_t total = d->off[d->n];
    uint64_t nf = d->nfeat ? d->nfeat : 1;
    b->off = cw_malloc((d->n + 1) * sizeof(uint64_t));
    b->ent = cw_malloc((total ? total : 1) * sizeof(cw_svm_entry_t));
    uint32_t *stamp = cw_calloc(nf, sizeof(uint32_t)); /* 1 + the last row that had f */
    uint64_t *pos = cw_malloc(nf * sizeof(uint64_t));   /* f's entry in that row */
    uint64_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        uint64_t a = d->off[i], e = d->off[i + 1];
        b->off[i] = k;
        for (uint64_t q = a; q < e; q++) {
            uint32_t f = (uint32_t)d->ids[q];
            if (stamp[f] != (uint32_t)i + 1) {
                stamp[f] = (uint32_t)i + 1;
                pos[f] = k;
                b->ent[k++] = (cw_svm_entry_t){.f = f, .v = 1.f};
            } else {
                b->ent[pos[f]].v += 1.f;
            }
        }
        float inv = e > a ? (float)(1.0 / (double)(e - a)) : 0.f;
        for (uint64_t q = b->off[i]; q < k; q++) b->ent[q].v *= inv;
    }
    b->off[d->n] = k;
    /* Renumber (pos is reused as the new ids). */
    uint32_t used = 0;
    for (uint64_t f = 0; f < d->nfeat; f++) used += stamp[f] != 0;
    b->orig = cw_malloc((used ? used : 1) * sizeof(uint32_t));
    used = 0;
    for (uint64_t f = 0; f < d->nfeat; f++) {
        if (!stamp[f]) continue;
        b->orig[used] = (uint32_t)f;
        pos[f] = used++;
    }
    for (uint64_t e = 0; e < k; e++) b->ent[e].f = (uint32_t)pos[b->ent[e].f];
    b->nfeat = used;
    cw_free(stamp);
    cw_free(pos);
}

static void bags_free(bags_t *b) {
    cw_free(b->off);
    cw_free(b->ent);
    cw_free(b->orig);
}

/* ---- class c's feature scale over a set of training rows ------------------- */

/* s_c(f) = g * idf(f) * r_c(f) for the features the rows contain, 0 for the
 * others (see nbsvm.h). df and pc are nfeat-sized scratch; log1 holds
 * ln(1 + k) for k = 0 .. n (so the scale costs no log per feature). */
static void class_scale(const bags_t *b, const int32_t *labels, const size_t *rows, size_t nrows, int32_t c,
                        const double *log1, uint32_t *df, uint32_t *pc, float *scale) {
    uint32_t nf = b->nfeat;
    memset(df, 0, nf * sizeof(uint32_t));
    memset(pc, 0, nf * sizeof(uint32_t));
    for (size_t r = 0; r < nrows; r++) {
        size_t row = rows[r];
        uint32_t in = labels[row] == c;
        for (uint64_t k = b->off[row]; k < b->off[row + 1]; k++) {
            df[b->ent[k].f]++;
            pc[b->ent[k].f] += in;
        }
    }
    double psum = 0.0, qsum = 0.0;
    uint64_t present = 0;
    for (uint32_t f = 0; f < nf; f++) {
        if (!df[f]) continue;
        present++;
        psum += pc[f];
        qsum += df[f] - pc[f];
    }
    psum += NB_ALPHA * (double)present;
    qsum += NB_ALPHA * (double)present;
    /* idf first (scale holds it), then g from the idf-weighted rows. */
    double l1n = log1[nrows];
    for (uint32_t f = 0; f < nf; f++) scale[f] = df[f] ? (float)(l1n - log1[df[f]] + 1.0) : 0.f;
    double sq = 0.0;
    for (size_t r = 0; r < nrows; r++) {
        size_t row = rows[r];
        for (uint64_t k = b->off[row]; k < b->off[row + 1]; k++) {
            double v = (double)b->ent[k].v * (double)scale[b->ent[k].f];
            sq += v * v;
        }
    }
    double g = sq > 0.0 ? 1.0 / sqrt(sq / (double)nrows) : 1.0;
    double lq_minus_lp = log(qsum) - log(psum);
    for (uint32_t f = 0; f < nf; f++) {
        if (!df[f]) continue;
        /* ln((1 + pc) / psum) - ln((1 + qc) / qsum), NB_ALPHA = 1 */
        double r = log1[pc[f]] - log1[df[f] - pc[f]] + lq_minus_lp;
        scale[f] = (float)(g * (double)scale[f] * r);
    }
}

/* ---- jobs ------------------------------------------------------------------- */

/* Search rounds: one C per round, every (fold, class) job solving it warm
 * from its alpha of the previous round. Final: one job per class. */
typedef struct shared_s {
    const cw_nbsvm_data_t *d;
    const cw_nbsvm_opts_t *o;
    const bags_t *bags;
    const size_t *perm;        /* seeded permutation of the rows */
    const uint32_t *fold_of;   /* row -> its held-out fold (UINT32_MAX: none) */
    uint32_t folds;            /* 1: one held-out share */
    size_t nvalid1;            /* folds == 1: held-out rows (the first of perm) */
    double c;                  /* this round's C */
    double **alpha;            /* per job: dual variables, carried across rounds */
    double **alpha_best;       /* per job: those of the best round so far */
    float **scale;             /* per job: its feature scale s_c (built in its first round) */
    const double *log1;        /* ln(1 + k), k = 0 .. n */
    float *scores;             /* n x nlabels: this round's out-of-fold decision values */
    double *job_loss, *job_secs;
    uint32_t *job_passes;
    uint8_t *job_unconv;
    /* final stage */
    int final;                 /* 1: the refit on all rows */
    double temperature;
    cw_model_t *m;
    double *final_loss;        /* nlabels */
    _Atomic uint32_t next;
    uint32_t njobs;
} shared_t;

/* Per-thread scratch. */
typedef struct scratch_s {
    size_t *train;
    int8_t *y;
    uint32_t *df, *pc;
    uint64_t *off;             /* the job's rows, packed and scaled */
    cw_svm_entry_t *ent;
    float *w;
} scratch_t;

/* Fold k's held-out rows: perm[lo, hi); the final refit has none. */
static void fold_range(const shared_t *sh, uint32_t k, int all, size_t *lo, size_t *hi) {
    size_t n = sh->d->n;
    if (all) *lo = *hi = 0;
    else if (sh->folds == 1) *lo = 0, *hi = sh->nvalid1;
    else *lo = n * k / sh->folds, *hi = n * (k + 1) / sh->folds;
}

static uint64_t job_seed(const cw_nbsvm_opts_t *o, uint32_t job) {
    return o->seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL * (job + 1);
}

/* Fold k / class c's problem: its training rows (sc->train), packed in
 * that order with their entries scaled by *scale, which is built first when
 * NULL (into a new array). */
static void build_problem(const shared_t *sh, uint32_t k, int32_t c, int all, scratch_t *sc, float **scale,
                          cw_svm_problem_t *p, size_t *lo, size_t *hi) {
    const cw_nbsvm_data_t *d = sh->d;
    const bags_t *b = sh->bags;
    size_t ntrain = 0;
    fold_range(sh, k, all, lo, hi);
    /* Row order (not permutation order), so the packing below streams. */
    for (size_t row = 0; row < d->n; row++)
        if (all || sh->fold_of[row] != k) sc->train[ntrain++] = row;
    if (!*scale) {
        *scale = cw_malloc((b->nfeat ? b->nfeat : 1) * sizeof(float));
        class_scale(b, d->labels, sc->train, ntrain, c, sh->log1, sc->df, sc->pc, *scale);
    }
    const float *s = *scale;
    uint64_t e = 0;
    for (size_t i = 0; i < ntrain; i++) {
        size_t row = sc->train[i];
        sc->y[i] = d->labels[row] == c ? 1 : -1;
        sc->off[i] = e;
        for (uint64_t q = b->off[row]; q < b->off[row + 1]; q++, e++)
            sc->ent[e] = (cw_svm_entry_t){.f = b->ent[q].f, .v = b->ent[q].v * s[b->ent[q].f]};
    }
    sc->off[ntrain] = e;
    *p = (cw_svm_problem_t){.n = ntrain, .off = sc->off, .ent = sc->ent, .y = sc->y, .nfeat = b->nfeat, .bias = 1.f};
}

/* Decision value of an unscaled row: sum of w[f] * v * scale[f], plus the bias. */
static float row_score(const bags_t *b, size_t row, const float *scale, const float *w, float bias) {
    float s = 0.f;
    for (uint64_t q = b->off[row]; q < b->off[row + 1]; q++) s += w[b->ent[q].f] * b->ent[q].v * scale[b->ent[q].f];
    return s + w[b->nfeat] * bias;
}

/* The refit's starting point for class c: each row's alpha at the chosen
 * C, averaged over the searched folds that trained on it (a fold's rows are
 * packed in row order, so row r is at the count of earlier rows the fold
 * also trains on). Rows no fold trained on start at 0. */
static void warm_start(const shared_t *sh, uint32_t c, double *alpha) {
    uint32_t K = sh->d->nlabels, F = sh->folds;
    size_t *pos = cw_calloc(F, sizeof(size_t));
    for (size_t row = 0; row < sh->d->n; row++) {
        double sum = 0.0;
        uint32_t cnt = 0;
        for (uint32_t k = 0; k < F; k++) {
            if (sh->fold_of[row] == k) continue;
            sum += sh->alpha_best[k * K + c][pos[k]++];
            cnt++;
        }
        alpha[row] = cnt ? sum / cnt : 0.0;
    }
    cw_free(pos);
}

static void run_job(shared_t *sh, uint32_t job, scratch_t *sc) {
    const cw_nbsvm_data_t *d = sh->d;
    uint32_t K = d->nlabels;
    cw_svm_problem_t p;
    size_t lo, hi;
    cw_svm_stats_t st;
    if (sh->final) {
        /* Job = class c: refit on all rows, write column c of emb and fc_b[c]. */
        uint32_t c = job;
        const bags_t *b = sh->bags;
        float *scale = NULL;
        build_problem(sh, 0, (int32_t)c, 1, sc, &scale, &p, &lo, &hi);
        double *alpha = cw_calloc(p.n ? p.n : 1, sizeof(double));
        if (sh->alpha_best) warm_start(sh, c, alpha);
        cw_svm_solve(&p, sh->c, sh->o->eps, sh->o->max_passes, job_seed(sh->o, 1000003u + job), alpha, sc->w, &st);
        sh->final_loss[c] = st.loss;
        cw_model_t *m = sh->m;
        double T = sh->temperature;
        for (uint64_t f = 0; f < m->nrows; f++) m->emb[f * K + c] = 0.f;
        for (uint32_t f = 0; f < b->nfeat; f++)
            m->emb[(uint64_t)b->orig[f] * K + c] = (float)(T * (double)scale[f] * (double)sc->w[f]);
        m->fc_b[c] = (float)(T * (double)p.bias * (double)sc->w[b->nfeat]);
        cw_free(alpha);
        cw_free(scale);
        return;
    }
    uint32_t fold = job / K;
    int32_t c = (int32_t)(job % K);
    build_problem(sh, fold, c, 0, sc, &sh->scale[job], &p, &lo, &hi);
    double t0 = cw_now_s();
    cw_svm_solve(&p, sh->c, sh->o->eps, sh->o->max_passes, job_seed(sh->o, job), sh->alpha[job], sc->w, &st);
    sh->job_secs[job] = cw_now_s() - t0;
    sh->job_loss[job] = st.loss;
    sh->job_passes[job] = st.passes;
    sh->job_unconv[job] = !st.converged;
    for (size_t i = lo; i < hi; i++) {
        size_t row = sh->perm[i];
        sh->scores[row * K + (uint32_t)c] = row_score(sh->bags, row, sh->scale[job], sc->w, p.bias);
    }
}

static void *worker(void *arg) {
    shared_t *sh = arg;
    const cw_nbsvm_data_t *d = sh->d;
    size_t n = d->n ? d->n : 1;
    uint64_t nnz = sh->bags->off[d->n];
    size_t nf = sh->bags->nfeat ? sh->bags->nfeat : 1;
    scratch_t sc = {.train = cw_malloc(n * sizeof(size_t)), .y = cw_malloc(n),
                    .df = cw_malloc(nf * sizeof(uint32_t)), .pc = cw_malloc(nf * sizeof(uint32_t)),
                    .off = cw_malloc((n + 1) * sizeof(uint64_t)), .ent = cw_malloc((nnz ? nnz : 1) * sizeof(cw_svm_entry_t)),
                    .w = cw_malloc((nf + 1) * sizeof(float))};
    for (;;) {
        uint32_t job = atomic_fetch_add(&sh->next, 1);
        if (job >= sh->njobs) break;
        run_job(sh, job, &sc);
    }
    cw_free(sc.train);
    cw_free(sc.y);
    cw_free(sc.df);
    cw_free(sc.pc);
    cw_free(sc.off);
    cw_free(sc.ent);
    cw_free(sc.w);
    return NULL;
}

static void run_jobs(shared_t *sh, uint32_t njobs, uint32_t threads) {
    atomic_store(&sh->next, 0);
    sh->njobs = njobs;
    if (threads > njobs) threads = njobs;
    if (threads < 1) threads = 1;
    pthread_t *tids = cw_calloc(threads, sizeof(pthread_t));
    uint32_t started = 0;
    for (uint32_t t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, worker, sh) != 0) break;
        started = t;
    }
    worker(sh); /* also takes every job a thread that failed to start would have */
    for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    cw_free(tids);
}

/* ---- calibration and scoring ----------------------------------------------- */

/* Mean negative log-likelihood of softmax(T s) over rows, its first and
 * second derivatives in T. */
static void nll_at(const float *S, const int32_t *labels, const size_t *rows, size_t nrows, uint32_t K, double T,
                   double *f, double *g, double *h) {
    double F = 0.0, G = 0.0, H = 0.0;
    for (size_t r = 0; r < nrows; r++) {
        const float *s = S + rows[r] * K;
        double mx = -INFINITY;
        for (uint32_t c = 0; c < K; c++) mx = fmax(mx, T * (double)s[c]);
        double z = 0.0, m1 = 0.0, m2 = 0.0;
        for (uint32_t c = 0; c < K; c++) {
            double e = exp(T * (double)s[c] - mx);
            z += e;
            m1 += e * (double)s[c];
            m2 += e * (double)s[c] * (double)s[c];
        }
        m1 /= z;
        m2 /= z;
        double sy = (double)s[labels[rows[r]]];
        F += log(z) + mx - T * sy;
        G += m1 - sy;
        H += m2 - m1 * m1;
    }
    double nr = nrows ? (double)nrows : 1.0;
    *f = F / nr;
    *g = G / nr;
    *h = H / nr;
}

/* The T > 0 of lowest NLL (convex in T): Newton steps, halved while they
 * leave (1e-3, 1e4) or do not decrease the NLL. */
static double fit_temperature(const float *S, const int32_t *labels, const size_t *rows, size_t nrows, uint32_t K,
                              double *nll) {
    double T = 1.0, f, g, h;
    nll_at(S, labels, rows, nrows, K, T, &f, &g, &h);
    for (int it = 0; it < 50 && nrows; it++) {
        double step = h > 1e-12 ? g / h : (g > 0 ? 0.5 * T : -T);
        double t = 1.0, nf = f, ng = g, nh = h, nT = T;
        int ok = 0;
        for (int k = 0; k < 30; k++, t *= 0.5) {
            nT = T - t * step;
            if (nT <= 1e-3 || nT >= 1e4) continue;
            nll_at(S, labels, rows, nrows, K, nT, &nf, &ng, &nh);
            if (nf <= f) {
                ok = 1;
                break;
            }
        }
        if (!ok) break;
        int done = fabs(nT - T) < 1e-6 * T;
        T = nT, f = nf, g = ng, h = nh;
        if (done) break;
    }
    *nll = f;
    return T;
}

static double accuracy_of(const float *S, const int32_t *labels, const size_t *rows, size_t nrows, uint32_t K) {
    uint64_t ok = 0;
    for (size_t r = 0; r < nrows; r++) {
        const float *s = S + rows[r] * K;
        uint32_t best = 0;
        for (uint32_t c = 1; c < K; c++)
            if (s[c] > s[best]) best = c;
        ok += (int32_t)best == labels[rows[r]];
    }
    return nrows ? (double)ok / (double)nrows : 0.0;
}

/* ---- the fit ------------------------------------------------------------------- */

int cw_nbsvm_fit(const cw_nbsvm_data_t *d, const cw_nbsvm_opts_t *o, cw_model_t *m, cw_nbsvm_result_t *res,
                 char *errstr, size_t errstr_size) {
    memset(res, 0, sizeof(*res));
    uint32_t K = d->nlabels;
    bags_t bags = {0};
    size_t *perm = NULL, *vrows = NULL;
    double *log1 = NULL;
    uint32_t *fold_of = NULL;
    shared_t sh;
    memset(&sh, 0, sizeof(sh));
    double cs[MAX_STEPS];
    size_t ncs = 0;

    if (m->dim != K || m->nlabels != K || m->nrows != d->nfeat || d->nfeat >= UINT32_MAX || d->n >= UINT32_MAX) {
        cw_seterr(errstr, errstr_size, "nbsvm: model shape (dim %u, labels %u, rows %llu) does not fit the data "
                  "(%u labels, %llu features, %zu rows; at most 2^32 - 2 of each)", m->dim, m->nlabels,
                  (unsigned long long)m->nrows, K, (unsigned long long)d->nfeat, d->n);
        return -1;
    }
    if (K < 2 || d->n < 2) {
        cw_seterr(errstr, errstr_size, "nbsvm: need at least 2 labels and 2 rows (have %u and %zu)", K, d->n);
        return -1;
    }
    if (o->c > 0.0) {
        cs[ncs++] = o->c;
    } else {
        if (!(o->c_min > 0.0) || !(o->c_max >= o->c_min)) {
            cw_seterr(errstr, errstr_size, "nbsvm: bad C grid %g .. %g", o->c_min, o->c_max);
            return -1;
        }
        for (double c = o->c_min; c <= o->c_max * (1.0 + 1e-9) && ncs < MAX_STEPS; c *= 2.0) cs[ncs++] = c;
    }
    uint32_t folds = o->folds < 1 ? 1 : o->folds;
    if (folds > d->n) folds = (uint32_t)d->n;
    size_t nvalid1 = folds == 1 && o->valid_frac > 0.0 ? (size_t)((double)d->n * o->valid_frac + 0.5) : 0;
    if (nvalid1 >= d->n) nvalid1 = d->n - 1;
    int search = folds > 1 || nvalid1 > 0;
    if (!search && ncs > 1) {
        cw_seterr(errstr, errstr_size, "nbsvm: searching C needs folds >= 2 or a held-out share 0 < valid < 1 "
                  "(folds %u, valid %g)", o->folds, o->valid_frac);
        return -1;
    }

    perm = cw_malloc(d->n * sizeof(size_t));
    for (size_t i = 0; i < d->n; i++) perm[i] = i;
    cw_rng_t rng;
    cw_rng_seed(&rng, o->seed ^ 0x5b5bULL);
    for (size_t i = d->n; i > 1; i--) {
        size_t j = (size_t)cw_rng_below(&rng, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    bags_build(&bags, d);
    fold_of = cw_malloc(d->n * sizeof(uint32_t));
    for (size_t i = 0; i < d->n; i++) fold_of[i] = UINT32_MAX;
    for (uint32_t k = 0; k < folds; k++) {
        size_t lo = 0, hi = 0;
        shared_t tmp = {.d = d, .folds = folds, .nvalid1 = nvalid1};
        fold_range(&tmp, k, 0, &lo, &hi);
        for (size_t i = lo; i < hi; i++) fold_of[perm[i]] = k;
    }
    log1 = cw_malloc((d->n + 2) * sizeof(double));
    for (size_t k = 0; k <= d->n + 1; k++) log1[k] = log1p((double)k);
    sh = (shared_t){.d = d, .o = o, .bags = &bags, .perm = perm, .fold_of = fold_of, .folds = folds, .nvalid1 = nvalid1, .m = m,
                    .log1 = log1};

    size_t nvalid = folds > 1 ? d->n : nvalid1;
    vrows = cw_malloc((nvalid ? nvalid : 1) * sizeof(size_t));
    memcpy(vrows, perm, nvalid * sizeof(size_t));
    res->nvalid = nvalid;
    res->steps = cw_calloc(ncs, sizeof(cw_nbsvm_step_t));
    double T = 1.0;
    size_t best = 0;
    if (search) {
        /* Rounds of ascending C. The best round has the highest accuracy
         * (ties: lower log-loss). The path stops at the first round that is
         * not the best and whose log-loss rose: the calibrated log-loss is
         * smooth and unimodal in C, so past its minimum larger C only
         * overfits more, and the large C values are the expensive ones. */
        uint32_t njobs = (folds > 1 ? folds : 1) * K;
        sh.alpha = cw_calloc(njobs, sizeof(double *));
        sh.alpha_best = cw_calloc(njobs, sizeof(double *));
        sh.scale = cw_calloc(njobs, sizeof(float *));
        for (uint32_t j = 0; j < njobs; j++) {
            sh.alpha[j] = cw_calloc(d->n, sizeof(double));
            sh.alpha_best[j] = cw_calloc(d->n, sizeof(double));
        }
        sh.scores = cw_calloc(d->n * K, sizeof(float));
        sh.job_loss = cw_calloc(njobs, sizeof(double));
        sh.job_secs = cw_calloc(njobs, sizeof(double));
        sh.job_passes = cw_calloc(njobs, sizeof(uint32_t));
        sh.job_unconv = cw_calloc(njobs, 1);
        uint32_t used = o->threads < njobs ? o->threads : njobs;
        for (size_t s = 0; s < ncs; s++) {
            sh.c = cs[s];
            run_jobs(&sh, njobs, o->threads);
            cw_nbsvm_step_t *st = &res->steps[s];
            st->c = cs[s];
            for (uint32_t j = 0; j < njobs; j++) {
                st->train_loss += sh.job_loss[j] / njobs;
                st->seconds += sh.job_secs[j] / (used ? used : 1);
                st->passes += sh.job_passes[j];
                st->unconverged += sh.job_unconv[j];
            }
            st->valid_acc = accuracy_of(sh.scores, d->labels, vrows, nvalid, K);
            st->temperature = fit_temperature(sh.scores, d->labels, vrows, nvalid, K, &st->valid_loss);
            res->nsteps = s + 1;
            if (s == 0 || st->valid_acc > res->steps[best].valid_acc ||
                (st->valid_acc == res->steps[best].valid_acc && st->valid_loss < res->steps[best].valid_loss)) {
                best = s;
                for (uint32_t j = 0; j < njobs; j++) memcpy(sh.alpha_best[j], sh.alpha[j], d->n * sizeof(double));
            } else if (st->valid_loss > res->steps[s - 1].valid_loss) {
                break;
            }
        }
        T = res->steps[best].temperature;
    } else {
        res->steps[0] = (cw_nbsvm_step_t){.c = cs[0], .valid_acc = -1, .valid_loss = -1, .temperature = 1.0};
        res->nsteps = 1;
    }
    res->chosen = best;

    /* The final model: every class refitted on all rows with the chosen C.
     * (Averaging the folds' models instead, which is linear in the bag too,
     * saves the refit but scored lower on held-out rows.) */
    double t0 = cw_now_s();
    sh.final = 1;
    sh.c = cs[best];
    sh.temperature = T;
    sh.final_loss = cw_calloc(K, sizeof(double));
    memset(m->fc_w, 0, (size_t)K * K * sizeof(float));
    for (uint32_t c = 0; c < K; c++) m->fc_w[(size_t)c * K + c] = 1.f;
    run_jobs(&sh, K, o->threads);
    for (uint32_t c = 0; c < K; c++) res->final_loss += sh.final_loss[c] / K;
    res->final_seconds = cw_now_s() - t0;
    if (!search) res->steps[0].train_loss = res->final_loss, res->steps[0].seconds = res->final_seconds;

    if (sh.alpha)
        for (uint32_t j = 0; j < (folds > 1 ? folds : 1) * K; j++) {
            cw_free(sh.alpha[j]);
            cw_free(sh.alpha_best[j]);
            cw_free(sh.scale[j]);
        }
    cw_free(sh.scale);
    cw_free(sh.alpha);
    cw_free(sh.alpha_best);
    cw_free(sh.final_loss);
    cw_free(sh.scores);
    cw_free(sh.job_loss);
    cw_free(sh.job_secs);
    cw_free(sh.job_passes);
    cw_free(sh.job_unconv);
    cw_free(perm);
    cw_free(vrows);
    cw_free(log1);
    cw_free(fold_of);
    bags_free(&bags);
    return 0;
}
