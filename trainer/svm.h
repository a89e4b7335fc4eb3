/* svm.h: a binary linear SVM over sparse rows, L2-regularised squared hinge
 * loss, solved by dual coordinate descent (Hsieh, Chang, Lin, Keerthi,
 * Sundararajan, "A Dual Coordinate Descent Method for Large-scale Linear
 * SVM", ICML 2008; liblinear's L2R_L2LOSS_SVC_DUAL):
 *
 *   min_w  1/2 |w|^2 + C sum_i max(0, 1 - y_i (w . x_i + w_b * bias))^2
 *
 * with the bias as one more feature of constant value `bias` (regularised
 * like the others, as liblinear does). The dual variables stay in the
 * caller's `alpha`, so a path of increasing C can warm-start each solve from
 * the previous one's alpha (w is rebuilt from alpha at the start).
 *
 * Rows are packed: row i's entries are ent[off[i] .. off[i+1]), each a
 * (feature, value) pair, so one row is one contiguous run of memory. w is
 * single precision (what the model stores, and half the cache footprint of
 * doubles); alpha and the gradients are double.
 *
 * Determinism: the coordinate order is a permutation drawn from `seed` each
 * pass; the same inputs and seed give the same w. Pure computation: no
 * threads, no I/O, no global state. */
#ifndef CW_SVM_H
#define CW_SVM_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_svm_entry_s {
    uint32_t f;            /* feature, < nfeat */
    float v;
} cw_svm_entry_t;

typedef struct cw_svm_problem_s {
    size_t n;                   /* rows */
    const uint64_t *off;        /* n + 1 */
    const cw_svm_entry_t *ent;
    const int8_t *y;            /* n labels, +1 / -1 */
    uint32_t nfeat;
    float bias;                 /* value of the constant feature (0 = no bias term) */
} cw_svm_problem_t;

typedef struct cw_svm_stats_s {
    uint32_t passes;       /* passes over the (active) rows */
    int converged;         /* 1: the projected-gradient gap fell below eps */
    double objective;      /* primal objective: 1/2 |w|^2 + C * loss * n */
    double loss;           /* mean squared hinge loss over the rows, as of the last pass */
} cw_svm_stats_t;

/* Solve p for C > 0 until the projected-gradient gap is below eps (liblinear
 * uses 0.1) or max_passes passes. alpha (p->n, >= 0; zeros for a cold start)
 * is read and updated; w (nfeat + 1, the last the bias weight) is
 * overwritten with the solution. */
void cw_svm_solve(const cw_svm_problem_t *p, double C, double eps, uint32_t max_passes, uint64_t seed,
                  double *alpha, float *w, cw_svm_stats_t *st);

/* w = sum_i alpha_i y_i x_i (the primal point of a dual one). */
void cw_svm_primal(const cw_svm_problem_t *p, const double *alpha, float *w);

/* w . x for n entries (no bias). */
float cw_svm_dot(const float *w, const cw_svm_entry_t *e, size_t n);

#endif
