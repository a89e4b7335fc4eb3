/* svm.c: dual coordinate descent for the L2-loss linear SVM. See svm.h.
 *
 * The dual is  min_a 1/2 a'Qa - e'a,  a_i >= 0,  Q = (y_i y_j x_i.x_j) +
 * I/(2C). Each step minimises it exactly in one a_i:
 *   G = y_i w.x_i - 1 + a_i/(2C)         (the partial derivative)
 *   a_i <- max(a_i - G / Q_ii, 0),  w += (a_i' - a_i) y_i x_i
 * with Q_ii = |x_i|^2 + bias^2 + 1/(2C). Rows whose a_i is 0 and whose
 * gradient exceeds the previous pass's largest projected gradient are
 * "shrunk" (skipped) until the active set converges; then every row is
 * checked once more before the solve ends, as in the paper's Algorithm 3.
 *
 * The rows are visited in random order, so each step starts with cache
 * misses on its row; the loop prefetches the next row's entries. */
#include "svm.h"

#include <math.h>
#include <string.h>

#include "util.h"

float cw_svm_dot(const float *w, const cw_svm_entry_t *e, size_t n) {
    /* Four partial sums: the gathers from w overlap instead of waiting on
     * one chain of additions. */
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += w[e[k].f] * e[k].v;
        s1 += w[e[k + 1].f] * e[k + 1].v;
        s2 += w[e[k + 2].f] * e[k + 2].v;
        s3 += w[e[k + 3].f] * e[k + 3].v;
    }
    for (; k < n; k++) s0 += w[e[k].f] * e[k].v;
    return (s0 + s1) + (s2 + s3);
}

static void row_axpy(const cw_svm_problem_t *p, double a, float *w, size_t i) {
    const cw_svm_entry_t *e = p->ent;
    float af = (float)a;
    for (uint64_t k = p->off[i], end = p->off[i + 1]; k < end; k++) w[e[k].f] += af * e[k].v;
    w[p->nfeat] += (float)(a * (double)p->bias);
}

static double row_dot(const cw_svm_problem_t *p, const float *w, size_t i) {
    return (double)cw_svm_dot(w, p->ent + p->off[i], p->off[i + 1] - p->off[i]) +
           (double)w[p->nfeat] * (double)p->bias;
}

void cw_svm_primal(const cw_svm_problem_t *p, const double *alpha, float *w) {
    memset(w, 0, ((size_t)p->nfeat + 1) * sizeof(float));
    for (size_t i = 0; i < p->n; i++)
        if (alpha[i] > 0.0) row_axpy(p, alpha[i] * p->y[i], w, i);
}

static void prefetch_row(const cw_svm_problem_t *p, size_t i) {
    const char *a = (const char *)(p->ent + p->off[i]), *b = (const char *)(p->ent + p->off[i + 1]);
    for (; a < b; a += 64) __builtin_prefetch(a);
}

void cw_svm_solve(const cw_svm_problem_t *p, double C, double eps, uint32_t max_passes, uint64_t seed,
                  double *alpha, float *w, cw_svm_stats_t *st) {
    size_t n = p->n;
    double diag = 0.5 / C;
    double *qd = cw_malloc((n ? n : 1) * sizeof(double));
    size_t *active = cw_malloc((n ? n : 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        double q = (double)p->bias * (double)p->bias;
        for (uint64_t k = p->off[i]; k < p->off[i + 1]; k++) q += (double)p->ent[k].v * (double)p->ent[k].v;
        qd[i] = q + diag;
        if (alpha[i] < 0.0) alpha[i] = 0.0;
        active[i] = i;
    }
    cw_svm_primal(p, alpha, w);
    cw_rng_t rng;
    cw_rng_seed(&rng, seed);
    size_t nactive = n;
    double pg_max_old = INFINITY; /* no upper bound on alpha, so only this side shrinks */
    uint32_t pass = 0;
    int converged = 0;
    double loss = 0.0; /* squared hinge of the rows seen in the current pass, before their step */
    while (pass < max_passes) {
        for (size_t i = nactive; i > 1; i--) {
            size_t j = (size_t)cw_rng_below(&rng, i);
            size_t t = active[i - 1];
            active[i - 1] = active[j];
            active[j] = t;
        }
        double pg_max = -INFINITY, pg_min = INFINITY;
        loss = 0.0;
        for (size_t s = 0; s < nactive;) {
            size_t i = active[s];
            if (s + 1 < nactive) prefetch_row(p, active[s + 1]);
            double yi = p->y[i];
            double margin = 1.0 - yi * row_dot(p, w, i);
            double G = alpha[i] * diag - margin;
            double pg = 0.0;
            if (margin > 0.0) loss += margin * margin;
            if (alpha[i] == 0.0) {
                if (G > pg_max_old) {
                    /* Shrink: swap with the last active row and look at the
                     * row now in this slot. */
                    nactive--;
                    active[s] = active[nactive];
                    active[nactive] = i;
                    continue;
                }
                if (G < 0.0) pg = G;
            } else {
                pg = G;
            }
            if (pg > pg_max) pg_max = pg;
            if (pg < pg_min) pg_min = pg;
            if (fabs(pg) > 1e-12) {
                double a = alpha[i];
                double na = a - G / qd[i];
                if (na < 0.0) na = 0.0;
                alpha[i] = na;
                row_axpy(p, (na - a) * yi, w, i);
            }
            s++;
        }
        pass++;
        if (nactive == 0 || pg_max - pg_min <= eps) {
            if (nactive == n) {
                converged = 1;
                break;
            }
            /* The shrunk rows may have moved: check all of them once more. */
            nactive = n;
            pg_max_old = INFINITY;
            continue;
        }
        pg_max_old = pg_max > 0.0 ? pg_max : INFINITY;
    }
    if (st) {
        /* The loss is the last pass's (each row's margin just before its
         * step; shrunk rows have margin <= 0): no extra pass over the data. */
        double ww = 0.0;
        for (uint32_t f = 0; f <= p->nfeat; f++) ww += (double)w[f] * (double)w[f];
        st->passes = pass;
        st->converged = converged;
        st->objective = 0.5 * ww + C * loss;
        st->loss = n ? loss / (double)n : 0.0;
    }
    cw_free(qd);
    cw_free(active);
}
