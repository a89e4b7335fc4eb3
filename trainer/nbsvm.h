/* nbsvm.h: the default recipe's learner. One-vs-rest linear SVMs over
 * naive-Bayes-scaled TF-IDF bag features (NBSVM: Wang and Manning, "Baselines
 * and Bigrams", ACL 2012), exported EXACTLY as catwire's EmbeddingBag-mean +
 * Linear model, so the served model is the trained one and not an
 * approximation of it.
 *
 * Features. A row's bag (words then hashed n-grams, duplicates kept; n ids)
 * gives feature f the value x_f = (count_f / n) * s_c(f) for class c, with
 *   s_c(f) = g * idf(f) * r_c(f)
 *   idf(f) = ln((1 + N) / (1 + df(f))) + 1       (df over the training rows)
 *   r_c(f) = ln((a + p_c(f)) / |a + p_c|_1) - ln((a + q_c(f)) / |a + q_c|_1)
 * where p_c(f) / q_c(f) count the training rows of class c / of the other
 * classes that contain f, a = 1 (Laplace), and g makes the mean squared norm
 * of the idf-weighted rows 1 (so the C grid means the same on every data
 * set). Because count_f / n is what EmbeddingBag's mean computes, class c's
 * decision value w_c . x + b_c is exactly
 *   mean over the bag of emb[id][c] + fc_b[c],  emb[f][c] = T * s_c(f) * w_c(f)
 * with fc_w the identity and dim = the number of labels. T > 0 is one
 * temperature fitted on the cross-validated decision values (lowest
 * negative log-likelihood of their softmax) so that the served
 * probabilities are calibrated; it does not change any argmax.
 *
 * C. Chosen by k-fold cross-validation on the training file over a doubling
 * grid (c_min .. c_max), smallest C first: every (fold, class) pair solves
 * each C warm-started from its solution of the previous one (svm.h); the C
 * with the highest out-of-fold accuracy (ties: lower log-loss) wins. The
 * path stops at the first C that is not the best and whose log-loss rose
 * (past the minimum of the smooth, calibrated log-loss larger C only
 * overfits more, and costs more). Then every class is refitted on all rows
 * with the chosen C, warm-started from the folds' solutions. folds = 1
 * holds out valid_frac of the rows instead. A fixed C > 0 skips the search
 * (and still fits T out-of-fold when there are folds or a held-out share).
 *
 * Solver tolerance. eps = 1.0 (liblinear's default is 0.1) stops each solve
 * after a few passes; C is chosen for the solver as it runs, and on 80/20
 * splits of AG News' train.csv the looser solve scored the same (90.8% vs
 * 90.7%) in about half the time.
 *
 * Threads: the (fold, class) solves are independent jobs over `threads`
 * threads; each job's coordinate order comes from the seed and the job, so
 * the result is the same for any thread count.
 *
 * Errors: returns -1 with errstr (bad options, a class with no rows). */
#ifndef CW_NBSVM_H
#define CW_NBSVM_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct cw_nbsvm_opts_s {
    uint32_t folds;        /* cross-validation folds (>= 2), or 1: one held-out share */
    double valid_frac;     /* folds == 1: the held-out share (0 < valid < 1) */
    double c;              /* > 0: use this C, no search */
    double c_min, c_max;   /* the search grid: c_min, 2 c_min, ... <= c_max */
    double eps;            /* solver tolerance (svm.h) */
    uint32_t max_passes;   /* solver pass limit per solve */
    uint32_t threads;      /* >= 1 */
    uint64_t seed;
} cw_nbsvm_opts_t;

/* The training rows, featurized (cw_model_featurize order). */
typedef struct cw_nbsvm_data_s {
    const int32_t *ids;    /* every row's bag ids, in [0, nfeat) */
    const uint64_t *off;   /* n + 1: row i is ids[off[i] .. off[i+1]) */
    size_t n;
    const int32_t *labels; /* n label ids in [0, nlabels) */
    uint32_t nlabels;
    uint64_t nfeat;        /* rows of the model's emb */
} cw_nbsvm_data_t;

/* One candidate C of the search (or the single fixed C), for the report. */
typedef struct cw_nbsvm_step_s {
    double c;
    double train_loss;     /* mean squared hinge of the solves (per row and class) */
    double valid_acc;      /* out-of-fold accuracy (-1 without validation rows) */
    double valid_loss;     /* out-of-fold log-loss at this C's own fitted temperature */
    double temperature;
    double seconds;        /* solver time of this C, all jobs, divided by the threads */
    uint64_t passes;       /* solver passes, all jobs */
    uint32_t unconverged;  /* solves that hit max_passes */
} cw_nbsvm_step_t;

typedef struct cw_nbsvm_result_s {
    cw_nbsvm_step_t *steps; /* nsteps, grid order (malloc'd; cw_free) */
    size_t nsteps;
    size_t chosen;          /* index of the chosen C in steps */
    double final_loss;      /* mean squared hinge of the final all-rows fit */
    double final_seconds;
    size_t nvalid;          /* rows scored out-of-fold (n with k folds) */
} cw_nbsvm_result_t;

/* Fill o with the defaults: 2 folds, C searched over 1/16 .. 8, eps 1.0,
 * 1000 passes, 1 thread, seed 1. */
void cw_nbsvm_opts_init(cw_nbsvm_opts_t *o);

/* Fit on d and write the weights into m, whose dim must equal d->nlabels
 * and whose nrows must equal d->nfeat. 0 or -1 with errstr. */
int cw_nbsvm_fit(const cw_nbsvm_data_t *d, const cw_nbsvm_opts_t *o, cw_model_t *m, cw_nbsvm_result_t *res,
                 char *errstr, size_t errstr_size);

#endif
