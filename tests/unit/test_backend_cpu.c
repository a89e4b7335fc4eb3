/* test_backend_cpu.c: the CPU backend (backend_cpu.c) through the backend
 * interface.
 *
 * Forward against a double-precision reference written here (torch's
 * EmbeddingBag mean: an empty bag is a zero vector, so its logits are fc_b),
 * batch forward equal to per-article forward (BLAS and fused paths), the
 * loss of a training step, gradients read back as (w_before - w_after) / lr
 * with clipping off against central finite differences of the reference
 * loss, for every parameter, on the batched path and the fused one-bag path;
 * untouched embedding rows bit-identical after a step; clipping of the total
 * norm (torch's clip_grad_norm_), Hogwild sharing of one model by two
 * backends, the inference projection (direct path, then projected path,
 * both against the reference, and refreshed after updates made through
 * this backend or another one sharing the model), and refusal of bad
 * batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "util.h"
#include "vocab.h"

#include "check.h"

static cw_model_t *make_model(uint32_t nwords, uint32_t dim, uint32_t nlabels, uint64_t seed) {
    cw_vocab_t *v = cw_vocab_new();
    char buf[32];
    for (uint32_t i = 1; i < nwords; i++) {
        int n = snprintf(buf, sizeof(buf), "w%u", i);
        cw_vocab_push(v, buf, (size_t)n);
    }
    const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    cw_model_t *m = cw_model_new(v, dim, names, nlabels, 1, 0);
    cw_model_init_uniform(m, 0.5f, seed);
    cw_rng_t rng;
    cw_rng_seed(&rng, seed + 7);
    for (uint32_t l = 0; l < nlabels; l++) m->fc_b[l] = (float)(cw_rng_unit(&rng) - 0.5);
    return m;
}

/* Reference: logits of bag [s, e) in double. */
static void ref_logits(const cw_model_t *m, const int32_t *ids, size_t s, size_t e, double *z) {
    size_t d = m->dim;
    double *h = calloc(d, sizeof(double));
    for (size_t t = s; t < e; t++)
        for (size_t j = 0; j < d; j++) h[j] += m->emb[(size_t)ids[t] * d + j];
    for (size_t j = 0; j < d && e > s; j++) h[j] /= (double)(e - s);
    for (size_t l = 0; l < m->nlabels; l++) {
        double a = m->fc_b[l];
        for (size_t j = 0; j < d; j++) a += (double)m->fc_w[l * d + j] * h[j];
        z[l] = a;
    }
    free(h);
}

static size_t bag_end(const cw_batch_t *b, size_t i) { return i + 1 < b->nbags ? b->offsets[i + 1] : b->nids; }

/* Reference mean cross-entropy of the batch. */
static double ref_loss(const cw_model_t *m, const cw_batch_t *b) {
    double z[16], total = 0.0;
    for (size_t i = 0; i < b->nbags; i++) {
        ref_logits(m, b->ids, b->offsets[i], bag_end(b, i), z);
        double mx = z[0], se = 0.0;
        for (size_t l = 1; l < m->nlabels; l++) if (z[l] > mx) mx = z[l];
        for (size_t l = 0; l < m->nlabels; l++) se += exp(z[l] - mx);
        total += mx + log(se) - z[b->labels[i]];
    }
    return total / (double)b->nbags;
}

static void test_forward(void) {
    char err[256] = "";
    cw_model_t *m = make_model(50, 7, 4, 1);
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    CHECK(be != NULL, "new: %s", err);
    CHECK(!strncmp(be->desc, "cpu", 3), "desc '%s'", be->desc);
    float p0[4];
    int32_t one = 1;
    uint32_t zero = 0;
    cw_batch_t b1 = {.ids = &one, .nids = 1, .offsets = &zero, .nbags = 1};
    CHECK(cw_backend_forward(be, &b1, p0, err, sizeof(err)) != 0, "forward without a model must fail");
    CHECK(cw_backend_upload(be, m, err, sizeof(err)) == 0, "upload: %s", err);

    /* 20 bags: empty ones (first, middle, last), repeated ids, long bags. */
    enum { NB = 20 };
    int32_t ids[400];
    uint32_t offs[NB];
    size_t nids = 0;
    cw_rng_t rng;
    cw_rng_seed(&rng, 3);
    for (size_t i = 0; i < NB; i++) {
        offs[i] = (uint32_t)nids;
        size_t len = (i == 0 || i == 9 || i == NB - 1) ? 0 : 1 + cw_rng_below(&rng, 15);
        for (size_t k = 0; k < len; k++) ids[nids++] = (int32_t)cw_rng_below(&rng, 50);
        if (i == 5) {
            ids[nids] = ids[nids - 1]; /* a repeated id */
            nids++;
        }
    }
    cw_batch_t b = {.ids = ids, .nids = nids, .offsets = offs, .nbags = NB};
    float probs[NB * 4], single[4];
    CHECK(cw_backend_forward(be, &b, probs, err, sizeof(err)) == 0, "forward: %s", err);
    double worst_ref = 0.0, worst_single = 0.0;
    for (size_t i = 0; i < NB; i++) {
        double z[4], mx = -1e300, se = 0.0;
        ref_logits(m, ids, offs[i], bag_end(&b, i), z);
        for (int l = 0; l < 4; l++) if (z[l] > mx) mx = z[l];
        for (int l = 0; l < 4; l++) se += exp(z[l] - mx);
        /* the same bag alone: the fused path */
        uint32_t o0 = 0;
        cw_batch_t bi = {.ids = ids + offs[i], .nids = bag_end(&b, i) - offs[i], .offsets = &o0, .nbags = 1};
        CHECK(cw_backend_forward(be, &bi, single, err, sizeof(err)) == 0, "single forward: %s", err);
        for (int l = 0; l < 4; l++) {
            double want = exp(z[l] - mx) / se;
            worst_ref = fmax(worst_ref, fabs(probs[i * 4 + l] - want));
            worst_single = fmax(worst_single, fabs(probs[i * 4 + l] - single[l]));
        }
    }
    CHECK(worst_ref < 1e-6, "batch forward vs reference: %g", worst_ref);
    CHECK(worst_single < 1e-6, "batch forward vs per-article forward: %g", worst_single);

    /* An empty bag's probabilities are softmax(fc_b). */
    double mx = -1e300, se = 0.0;
    for (int l = 0; l < 4; l++) if (m->fc_b[l] > mx) mx = m->fc_b[l];
    for (int l = 0; l < 4; l++) se += exp(m->fc_b[l] - mx);
    for (int l = 0; l < 4; l++)
        CHECK(fabs(probs[9 * 4 + l] - exp(m->fc_b[l] - mx) / se) < 1e-6, "empty bag label %d", l);

    /* Bad batches are refused, not read out of bounds. */
    int32_t bad_id = 50;
    cw_batch_t bb = {.ids = &bad_id, .nids = 1, .offsets = &zero, .nbags = 1};
    err[0] = '\0';
    CHECK(cw_backend_forward(be, &bb, p0, err, sizeof(err)) != 0 && strstr(err, "out of range"),
          "id out of range: '%s'", err);
    uint32_t bad_offs[2] = {0, 5};
    cw_batch_t bo = {.ids = ids, .nids = 3, .offsets = bad_offs, .nbags = 2};
    CHECK(cw_backend_forward(be, &bo, probs, err, sizeof(err)) != 0, "offset beyond nids");
    int32_t bad_label = 4;
    cw_batch_t bl = {.ids = &one, .nids = 1, .offsets = &zero, .nbags = 1, .labels = &bad_label};
    cw_step_opts_t so = {.lr = 0.1f, .clip_norm = 0.f};
    double loss;
    CHECK(cw_backend_train_step(be, &bl, &so, &loss, err, sizeof(err)) != 0, "label out of range");
    cw_batch_t nolab = {.ids = &one, .nids = 1, .offsets = &zero, .nbags = 1};
    CHECK(cw_backend_train_step(be, &nolab, &so, &loss, err, sizeof(err)) != 0, "training without labels");

    cw_backend_destroy(be);
    cw_model_destroy(m);
}

typedef struct params_s {
    float *p[3];
    size_t n[3];
} params_t;

static params_t params_of(cw_model_t *m) {
    params_t p = {{m->emb, m->fc_w, m->fc_b},
                  {(size_t)m->nrows * m->dim, (size_t)m->nlabels * m->dim, m->nlabels}};
    return p;
}

/* Take one step with clipping off; check (before - after) / lr against the
 * central finite differences of ref_loss for every parameter. */
static void grad_check(cw_model_t *m, const cw_batch_t *b, const char *what) {
    char err[256] = "";
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    cw_backend_upload(be, m, err, sizeof(err));
    params_t P = params_of(m);
    float *before[3];
    for (int k = 0; k < 3; k++) {
        before[k] = malloc(P.n[k] * sizeof(float));
        memcpy(before[k], P.p[k], P.n[k] * sizeof(float));
    }
    /* Numerical gradient first, on the untouched weights. */
    double *num[3];
    const double eps = 1e-3;
    for (int k = 0; k < 3; k++) {
        num[k] = malloc(P.n[k] * sizeof(double));
        for (size_t i = 0; i < P.n[k]; i++) {
            float w = P.p[k][i];
            P.p[k][i] = w + (float)eps;
            double lp = ref_loss(m, b);
            P.p[k][i] = w - (float)eps;
            double lm = ref_loss(m, b);
            P.p[k][i] = w;
            num[k][i] = (lp - lm) / (((double)(w + (float)eps)) - ((double)(w - (float)eps)));
        }
    }
    double want_loss = ref_loss(m, b);
    const float lr = 0.01f;
    cw_step_opts_t so = {.lr = lr, .clip_norm = 0.f};
    double loss = -1;
    CHECK(cw_backend_train_step(be, b, &so, &loss, err, sizeof(err)) == 0, "%s: step: %s", what, err);
    CHECK(fabs(loss - want_loss) < 1e-5, "%s: loss %.8f, reference %.8f", what, loss, want_loss);
    double worst = 0.0;
    size_t nonzero = 0, untouched_changed = 0;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < P.n[k]; i++) {
            double g = ((double)before[k][i] - (double)P.p[k][i]) / lr;
            double diff = fabs(g - num[k][i]);
            double tol = 2e-4 + 1e-2 * fabs(num[k][i]);
            if (diff > tol) {
                if (worst < diff) worst = diff;
                if (failures < 20)
                    fprintf(stderr, "%s: param %d[%zu]: backend %.6g, numerical %.6g\n", what, k, i, g, num[k][i]);
            }
            if (num[k][i] != 0.0) nonzero++;
            if (num[k][i] == 0.0 && k == 0 && before[k][i] != P.p[k][i]) untouched_changed++;
        }
    }
    CHECK(worst == 0.0, "%s: gradients differ from finite differences (worst %g)", what, worst);
    CHECK(nonzero > 0, "%s: no gradient at all", what);
    CHECK(untouched_changed == 0, "%s: %zu untouched embedding weights changed", what, untouched_changed);
    for (int k = 0; k < 3; k++) {
        free(before[k]);
        free(num[k]);
    }
    cw_backend_destroy(be);
}

static void test_gradients(void) {
    /* Batched path (>= 8 bags: BLAS), with an empty bag and repeated ids. */
    cw_model_t *m = make_model(30, 6, 3, 11);
    int32_t ids[] = {1, 2, 3, 3, 3, 7, 8, 9, 10, 11, 12, 1, 1, 0, 5, 6, 29, 28, 4, 4, 13, 14};
    uint32_t offs[] = {0, 5, 5, 8, 11, 13, 15, 18, 20};
    int32_t labels[] = {0, 1, 2, 0, 1, 2, 0, 1, 2};
    cw_batch_t b = {.ids = ids, .nids = sizeof(ids) / sizeof(ids[0]), .offsets = offs, .nbags = 9,
                    .labels = labels};
    grad_check(m, &b, "batch of 9");
    /* Small batch (fused loops in the general path). */
    cw_batch_t b3 = {.ids = ids, .nids = 8, .offsets = offs, .nbags = 3, .labels = labels};
    grad_check(m, &b3, "batch of 3");
    /* One bag (the fused per-example step), with a repeated id. */
    uint32_t zero = 0;
    cw_batch_t b1 = {.ids = ids, .nids = 5, .offsets = &zero, .nbags = 1, .labels = labels + 1};
    grad_check(m, &b1, "one bag");
    /* One empty bag: only fc_b moves. */
    cw_batch_t be = {.ids = ids, .nids = 0, .offsets = &zero, .nbags = 1, .labels = labels + 2};
    grad_check(m, &be, "one empty bag");
    cw_model_destroy(m);
}

static void test_clipping(void) {
    char err[256] = "";
    cw_model_t *m = make_model(30, 6, 3, 5);
    cw_model_t *m2 = make_model(30, 6, 3, 5);
    int32_t ids[] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t offs[] = {0, 3, 6};
    int32_t labels[] = {2, 0, 1};
    cw_batch_t b = {.ids = ids, .nids = 8, .offsets = offs, .nbags = 3, .labels = labels};
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    cw_backend_t *be2 = cw_backend_new("cpu", err, sizeof(err));
    cw_backend_upload(be, m, err, sizeof(err));
    cw_backend_upload(be2, m2, err, sizeof(err));
    const float lr = 0.5f, clip = 0.01f;
    double loss;
    cw_step_opts_t off = {.lr = lr, .clip_norm = 0.f}, on = {.lr = lr, .clip_norm = clip};
    params_t P = params_of(m), P2 = params_of(m2);
    float *before[3];
    for (int k = 0; k < 3; k++) {
        before[k] = malloc(P.n[k] * sizeof(float));
        memcpy(before[k], P.p[k], P.n[k] * sizeof(float));
    }
    CHECK(cw_backend_train_step(be, &b, &off, &loss, err, sizeof(err)) == 0, "unclipped step");
    CHECK(cw_backend_train_step(be2, &b, &on, &loss, err, sizeof(err)) == 0, "clipped step");
    double norm = 0.0, norm2 = 0.0;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < P.n[k]; i++) {
            double g = ((double)before[k][i] - P.p[k][i]) / lr, g2 = ((double)before[k][i] - P2.p[k][i]) / lr;
            norm += g * g;
            norm2 += g2 * g2;
        }
    norm = sqrt(norm);
    norm2 = sqrt(norm2);
    CHECK(norm > 10 * clip, "the test needs a gradient norm above the clip (%g)", norm);
    CHECK(fabs(norm2 - clip * norm / (norm + 1e-6)) < 1e-4 * clip + 1e-6, "clipped norm %g, want %g", norm2, (double)clip);
    /* Same direction: g2 = g * clip / (norm + 1e-6). */
    double worst = 0.0, coef = clip / (norm + 1e-6);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < P.n[k]; i++) {
            double g = ((double)before[k][i] - P.p[k][i]) / lr, g2 = ((double)before[k][i] - P2.p[k][i]) / lr;
            worst = fmax(worst, fabs(g2 - g * coef));
        }
    CHECK(worst < 1e-5, "clipped gradient is not the scaled gradient (%g)", worst);
    /* A clip just below the norm scales by clip / norm (0.8). */
    cw_model_t *m5 = make_model(30, 6, 3, 5);
    params_t P5 = params_of(m5);
    cw_backend_upload(be2, m5, err, sizeof(err));
    cw_step_opts_t near = {.lr = lr, .clip_norm = (float)(0.8 * norm)};
    cw_backend_train_step(be2, &b, &near, &loss, err, sizeof(err));
    double norm5 = 0.0;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < P5.n[k]; i++) {
            double g = ((double)before[k][i] - P5.p[k][i]) / lr;
            norm5 += g * g;
        }
    norm5 = sqrt(norm5);
    CHECK(fabs(norm5 - 0.8 * norm) < 1e-3 * norm, "clip at 0.8 x norm: step norm %g, want %g", norm5, 0.8 * norm);
    cw_model_destroy(m5);
    /* A clip above the norm changes nothing. */
    cw_model_t *m3 = make_model(30, 6, 3, 5), *m4 = make_model(30, 6, 3, 5);
    cw_backend_upload(be, m3, err, sizeof(err));
    cw_backend_upload(be2, m4, err, sizeof(err));
    cw_step_opts_t big = {.lr = lr, .clip_norm = (float)(norm * 10)};
    cw_backend_train_step(be, &b, &off, &loss, err, sizeof(err));
    cw_backend_train_step(be2, &b, &big, &loss, err, sizeof(err));
    CHECK(!memcmp(m3->emb, m4->emb, (size_t)m3->nrows * m3->dim * sizeof(float)) &&
              !memcmp(m3->fc_w, m4->fc_w, (size_t)m3->nlabels * m3->dim * sizeof(float)),
          "a clip above the norm must not change the step");
    for (int k = 0; k < 3; k++) free(before[k]);
    cw_backend_destroy(be);
    cw_backend_destroy(be2);
    cw_model_destroy(m);
    cw_model_destroy(m2);
    cw_model_destroy(m3);
    cw_model_destroy(m4);
}

static void test_shared_model(void) {
    /* Two backends bound to one model see each other's updates (Hogwild). */
    char err[256] = "";
    cw_model_t *m = make_model(20, 4, 2, 9);
    cw_backend_t *a = cw_backend_new("cpu", err, sizeof(err)), *b = cw_backend_new("cpu", err, sizeof(err));
    cw_backend_upload(a, m, err, sizeof(err));
    cw_backend_upload(b, m, err, sizeof(err));
    int32_t ids[] = {3, 4};
    uint32_t zero = 0;
    int32_t y = 1;
    cw_batch_t bt = {.ids = ids, .nids = 2, .offsets = &zero, .nbags = 1, .labels = &y};
    float p_before[2], p_after[2];
    cw_backend_forward(b, &bt, p_before, err, sizeof(err));
    cw_step_opts_t so = {.lr = 1.0f, .clip_norm = 0.f};
    double loss;
    for (int i = 0; i < 5; i++) cw_backend_train_step(a, &bt, &so, &loss, err, sizeof(err));
    cw_backend_forward(b, &bt, p_after, err, sizeof(err));
    CHECK(p_after[1] > p_before[1] + 0.01f, "backend b does not see a's training (%g -> %g)", p_before[1], p_after[1]);
    CHECK(cw_backend_download(a, m, err, sizeof(err)) == 0, "download is a no-op on cpu");
    cw_backend_destroy(a);
    cw_backend_destroy(b);
    cw_model_destroy(m);
    cw_backend_destroy(NULL);
    CHECK(cw_backend_new("nonsense", err, sizeof(err)) == NULL && strstr(err, "cpu"), "unknown backend: '%s'", err);
}

/* Worst |probs - reference| over the bags of b. */
static double worst_vs_ref(const cw_model_t *m, const cw_batch_t *b, const float *probs) {
    double worst = 0.0, z[16];
    size_t k = m->nlabels;
    for (size_t i = 0; i < b->nbags; i++) {
        ref_logits(m, b->ids, b->offsets[i], bag_end(b, i), z);
        double mx = -1e300, se = 0.0;
        for (size_t l = 0; l < k; l++) if (z[l] > mx) mx = z[l];
        for (size_t l = 0; l < k; l++) se += exp(z[l] - mx);
        for (size_t l = 0; l < k; l++) worst = fmax(worst, fabs(probs[i * k + l] - exp(z[l] - mx) / se));
    }
    return worst;
}

static void test_projection(uint32_t nlabels) {
    char err[256] = "";
    enum { ROWS = 4000, DIM = 16, NB = 64 };
    cw_model_t *m = make_model(ROWS, DIM, nlabels, 21 + nlabels);
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err)), *other = cw_backend_new("cpu", err, sizeof(err));
    CHECK(cw_backend_upload(be, m, err, sizeof(err)) == 0, "upload: %s", err);
    CHECK(cw_backend_upload(other, m, err, sizeof(err)) == 0, "upload: %s", err);
    static int32_t ids[NB * 40];
    uint32_t offs[NB];
    int32_t labels[NB];
    size_t nids = 0;
    cw_rng_t rng;
    cw_rng_seed(&rng, 5);
    for (size_t i = 0; i < NB; i++) {
        offs[i] = (uint32_t)nids;
        size_t len = i == 7 ? 0 : 1 + cw_rng_below(&rng, 39);
        for (size_t t = 0; t < len; t++) ids[nids++] = (int32_t)cw_rng_below(&rng, ROWS);
        labels[i] = (int32_t)cw_rng_below(&rng, nlabels);
    }
    float probs[NB * 8];
    /* A small batch stays under the projection threshold (direct path)... */
    cw_batch_t small = {.ids = ids, .nids = offs[4], .offsets = offs, .nbags = 4};
    CHECK(cw_backend_forward(be, &small, probs, err, sizeof(err)) == 0, "forward: %s", err);
    CHECK(worst_vs_ref(m, &small, probs) < 1e-6, "direct path vs reference: %g", worst_vs_ref(m, &small, probs));
    /* ...repeated batches cross it (projected path). */
    cw_batch_t big = {.ids = ids, .nids = nids, .offsets = offs, .nbags = NB, .labels = labels};
    for (int rep = 0; rep < 3; rep++) {
        CHECK(cw_backend_forward(be, &big, probs, err, sizeof(err)) == 0, "forward: %s", err);
        CHECK(worst_vs_ref(m, &big, probs) < 1e-6, "pass %d vs reference: %g", rep, worst_vs_ref(m, &big, probs));
    }
    /* Training through another backend sharing the model, then through this one. */
    cw_step_opts_t so = {.lr = 0.5f, .clip_norm = 0.f};
    double loss;
    uint32_t z0 = 0;
    cw_batch_t one = {.ids = ids, .nids = offs[1], .offsets = &z0, .nbags = 1, .labels = labels};
    CHECK(cw_backend_train_step(other, &one, &so, &loss, err, sizeof(err)) == 0, "step: %s", err);
    CHECK(cw_backend_forward(be, &big, probs, err, sizeof(err)) == 0, "forward: %s", err);
    CHECK(worst_vs_ref(m, &big, probs) < 1e-6, "after another backend's step: %g", worst_vs_ref(m, &big, probs));
    for (int rep = 0; rep < 3; rep++) CHECK(cw_backend_forward(be, &big, probs, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_backend_train_step(be, &big, &so, &loss, err, sizeof(err)) == 0, "step: %s", err);
    CHECK(cw_backend_forward(be, &big, probs, err, sizeof(err)) == 0, "forward: %s", err);
    CHECK(worst_vs_ref(m, &big, probs) < 1e-6, "after its own step: %g", worst_vs_ref(m, &big, probs));
    /* prepare builds the projection at once: the very first (small) batch of
     * a fresh backend then runs projected and still matches the reference. */
    cw_backend_t *fresh = cw_backend_new("cpu", err, sizeof(err));
    CHECK(cw_backend_upload(fresh, m, err, sizeof(err)) == 0, "upload: %s", err);
    CHECK(cw_backend_prepare(fresh, err, sizeof(err)) == 0, "prepare: %s", err);
    CHECK(cw_backend_forward(fresh, &small, probs, err, sizeof(err)) == 0, "forward: %s", err);
    CHECK(worst_vs_ref(m, &small, probs) < 1e-6, "prepared first batch vs reference: %g",
          worst_vs_ref(m, &small, probs));
    cw_backend_destroy(fresh);
    cw_backend_destroy(be);
    cw_backend_destroy(other);
    cw_model_destroy(m);
}

int main(void) {
    test_projection(4);
    test_projection(3);
    test_forward();
    test_gradients();
    test_clipping();
    test_shared_model();
    if (failures) {
        fprintf(stderr, "test_backend_cpu: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_backend_cpu: ok\n");
    return 0;
}
