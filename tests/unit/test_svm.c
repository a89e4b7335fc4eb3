/* test_svm.c: the dual coordinate descent solver (trainer/svm.h).
 *
 * On a small random problem with label noise (so some margins are violated):
 * - the returned w is a stationary point of the primal, which for this convex
 *   objective means the optimum: w = 2C sum_i xi_i y_i x_i with
 *   xi_i = max(0, 1 - y_i (w.x_i + b)), the bias coordinate included, and
 *   alpha_i = 2C xi_i (the dual-primal link of the squared hinge);
 * - a warm start from a smaller C reaches the same optimum as a cold start;
 * - the same seed gives the same bits; a loose tolerance stops early but
 *   stays close in objective;
 * - cw_svm_primal rebuilds w from alpha. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "svm.h"
#include "util.h"

#define NROWS 80
#define NFEAT 12

typedef struct prob_s {
    uint64_t off[NROWS + 1];
    cw_svm_entry_t ent[NROWS * 6];
    int8_t y[NROWS];
    cw_svm_problem_t p;
} prob_t;

static void make_problem(prob_t *q, uint64_t seed) {
    cw_rng_t rng;
    cw_rng_seed(&rng, seed);
    double truth[NFEAT];
    for (int f = 0; f < NFEAT; f++) truth[f] = cw_rng_unit(&rng) * 2.0 - 1.0;
    uint64_t k = 0;
    for (int i = 0; i < NROWS; i++) {
        q->off[i] = k;
        int len = 2 + (int)cw_rng_below(&rng, 5); /* 2..6 distinct features */
        uint32_t first = (uint32_t)cw_rng_below(&rng, NFEAT);
        double dot = 0.0;
        for (int j = 0; j < len; j++) {
            uint32_t f = (first + (uint32_t)j * 5u) % NFEAT;
            float v = (float)(cw_rng_unit(&rng) * 1.5 + 0.1);
            q->ent[k++] = (cw_svm_entry_t){.f = f, .v = v};
            dot += truth[f] * v;
        }
        int8_t y = dot > 0.1 ? 1 : -1;
        if (cw_rng_below(&rng, 10) == 0) y = (int8_t)-y; /* 10% label noise */
        q->y[i] = y;
    }
    q->off[NROWS] = k;
    q->p = (cw_svm_problem_t){.n = NROWS, .off = q->off, .ent = q->ent, .y = q->y, .nfeat = NFEAT, .bias = 1.f};
}

static double decision(const prob_t *q, const float *w, int i) {
    double s = w[NFEAT];
    for (uint64_t k = q->off[i]; k < q->off[i + 1]; k++) s += (double)w[q->ent[k].f] * (double)q->ent[k].v;
    return s;
}

static double objective(const prob_t *q, const float *w, double C) {
    double ww = 0.0, loss = 0.0;
    for (int f = 0; f <= NFEAT; f++) ww += (double)w[f] * (double)w[f];
    for (int i = 0; i < NROWS; i++) {
        double m = 1.0 - q->y[i] * decision(q, w, i);
        if (m > 0) loss += m * m;
    }
    return 0.5 * ww + C * loss;
}

/* max_f |w_f - 2C sum_i xi_i y_i x_if| (f = NFEAT: the bias), and the largest
 * |alpha_i - 2C xi_i|. */
static void stationarity(const prob_t *q, const float *w, const double *alpha, double C, double *gw, double *ga,
                         int *violated) {
    double g[NFEAT + 1];
    memset(g, 0, sizeof(g));
    *ga = 0.0;
    *violated = 0;
    for (int i = 0; i < NROWS; i++) {
        double xi = 1.0 - q->y[i] * decision(q, w, i);
        if (xi < 0) xi = 0;
        *violated += xi > 0;
        for (uint64_t k = q->off[i]; k < q->off[i + 1]; k++) g[q->ent[k].f] += 2.0 * C * xi * q->y[i] * q->ent[k].v;
        g[NFEAT] += 2.0 * C * xi * q->y[i];
        *ga = fmax(*ga, fabs(alpha[i] - 2.0 * C * xi));
    }
    *gw = 0.0;
    for (int f = 0; f <= NFEAT; f++) *gw = fmax(*gw, fabs((double)w[f] - g[f]));
}

int main(void) {
    prob_t q;
    make_problem(&q, 7);
    const double C = 0.8;
    double alpha[NROWS], alpha2[NROWS], warm[NROWS];
    float w[NFEAT + 1], w2[NFEAT + 1], wl[NFEAT + 1], wr[NFEAT + 1];
    cw_svm_stats_t st;

    /* Cold start, tight tolerance: the optimum. */
    memset(alpha, 0, sizeof(alpha));
    cw_svm_solve(&q.p, C, 1e-9, 100000, 1, alpha, w, &st);
    CHECK(st.converged, "did not converge in %u passes", st.passes);
    double gw, ga;
    int violated;
    stationarity(&q, w, alpha, C, &gw, &ga, &violated);
    printf("cold: %u passes, objective %.6f, %d of %d rows inside the margin, |grad| %.2e, |alpha - 2C xi| %.2e\n",
           st.passes, st.objective, violated, NROWS, gw, ga);
    CHECK(violated > 0 && violated < NROWS, "the problem should have some (not all) margin violations: %d", violated);
    CHECK(gw < 1e-4, "w is not stationary: %g", gw);
    CHECK(ga < 1e-4, "alpha_i != 2C xi_i: %g", ga);
    double opt = objective(&q, w, C);
    CHECK(fabs(st.objective - opt) < 1e-4 * opt, "reported objective %g, recomputed %g", st.objective, opt);

    /* The same seed gives the same bits. */
    memset(alpha2, 0, sizeof(alpha2));
    cw_svm_solve(&q.p, C, 1e-9, 100000, 1, alpha2, w2, &st);
    CHECK(!memcmp(w, w2, sizeof(w)) && !memcmp(alpha, alpha2, sizeof(alpha)), "same seed, different result");

    /* Warm start from the optimum of a smaller C reaches the same optimum. */
    memset(warm, 0, sizeof(warm));
    cw_svm_solve(&q.p, C / 4, 1e-9, 100000, 2, warm, w2, &st);
    cw_svm_solve(&q.p, C, 1e-9, 100000, 3, warm, w2, &st);
    double diff = 0.0;
    for (int f = 0; f <= NFEAT; f++) diff = fmax(diff, fabs((double)w2[f] - (double)w[f]));
    CHECK(diff < 1e-4, "warm start reached a different w (max diff %g)", diff);

    /* A loose tolerance stops sooner, near the optimum. */
    double al[NROWS];
    memset(al, 0, sizeof(al));
    cw_svm_solve(&q.p, C, 1.0, 100000, 1, al, wl, &st);
    double loose = objective(&q, wl, C);
    printf("loose (eps 1): %u passes, objective %.6f (optimum %.6f)\n", st.passes, loose, opt);
    CHECK(st.converged && loose >= opt - 1e-6 && loose < opt * 1.5, "loose objective %g vs %g", loose, opt);

    /* The pass limit is honoured and reported. */
    memset(al, 0, sizeof(al));
    cw_svm_solve(&q.p, C, 1e-12, 2, 1, al, wl, &st);
    CHECK(st.passes == 2 && !st.converged, "pass limit: %u passes, converged %d", st.passes, st.converged);

    /* w is rebuilt from alpha. */
    cw_svm_primal(&q.p, alpha, wr);
    diff = 0.0;
    for (int f = 0; f <= NFEAT; f++) diff = fmax(diff, fabs((double)wr[f] - (double)w[f]));
    CHECK(diff < 1e-5, "primal(alpha) differs from the solver's w by %g", diff);
    CHECK(fabs(cw_svm_dot(w, q.ent + q.off[3], q.off[4] - q.off[3]) + w[NFEAT] - decision(&q, w, 3)) < 1e-5,
          "cw_svm_dot");

    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
