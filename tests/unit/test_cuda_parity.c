/* test_cuda_parity.c: the CUDA backend against the CPU backend (the reference).
 *
 * On the AG News test set (CW_TEST_DATA/test.csv) with a randomly initialised
 * model (vocabulary from the file, dim 64, words + hashed bigrams):
 *   - forward: the same argmax for every article and probabilities within
 *     1e-4, for the whole set in one batch, for small slices, for a batch
 *     big enough to be cut into pipelined chunks, and with empty bags;
 *   - bad batches (id out of range, offsets out of order) fail with an error
 *     and leave the backend usable;
 *   - training: the seed recipe (batch 64, lr 0.1, clip 0.1) for 100 steps
 *     from the same weights on both, then a run without clipping, one big
 *     batch, and a bad label (must fail and change nothing);
 *   - a wide model (dim 300, 50 labels: fc weights too big for shared memory,
 *     dim over one register tile) and a hot reload to another model shape.
 * Without a usable GPU, or in a build without CUDA, it prints SKIP and the
 * reason and exits 77 (CTest: skipped), never passes silently. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dataset.h"
#include "model.h"
#include "util.h"
#include "vocab.h"

#if !CW_WITH_CUDA

#if defined(CW_SANITIZED)
#define NO_CUDA_WHO "a sanitizer build (CW_SANITIZE)"
#define NO_CUDA_HINT "the GPU tests run in a normal build"
#else
#define NO_CUDA_WHO "this build"
#define NO_CUDA_HINT "configure with -DCW_CUDA=ON where nvcc is installed"
#endif

int main(void) {
    printf("SKIP: " NO_CUDA_WHO " has no CUDA backend (it has: %s); " NO_CUDA_HINT "\n", cw_backend_available());
    return 77;
}

#else

#include "check.h"

/* Tolerances.
 * Forward: the bound, 1e-4 on probabilities; the GPU sums the same
 * float terms in another order (and shuffles), which moves a probability by
 * a few ulps, ~1e-7.
 * Training with the seed recipe: clipping bounds each step's total update to
 * lr * clip = 0.01 in norm. The GPU accumulates gradients with atomics in
 * another order, so each gradient entry differs by a few ulps relative
 * (~1e-7 of a gradient entry <= 0.1 after clipping); over 100 steps that
 * adds up to ~1e-7 absolute on a weight, and the model (a softmax over a
 * linear map, lr 0.1) does not amplify it over so few steps. 1e-5 leaves two
 * orders of magnitude, yet catches any real difference (a wrong norm, a row
 * gradient counted once instead of per occurrence, a missed update changes
 * weights by ~1e-3). The loss is a mean of per-bag log-sum-exps in double
 * on both sides; 1e-5 again.
 * Without clipping, at lr 0.5, steps are ~50x larger, so 1e-4. */
#define TOL_PROB 1e-4
#define TOL_W 1e-5
#define TOL_W_NOCLIP 1e-4
#define TOL_LOSS 1e-5

typedef struct feats_s {
    int32_t *ids;
    size_t nids, ids_cap;
    uint32_t *offsets;
    int32_t *labels;
    size_t nbags;
} feats_t;

static cw_model_t *make_model(const cw_dataset_t *ds, uint32_t dim, uint32_t ngram, uint32_t nbuckets,
                              uint64_t seed) {
    cw_vocab_counter_t *vc = cw_vocab_counter_new();
    for (size_t t = 0; t < ds->ntok; t++) cw_vocab_counter_add(vc, ds->buf + ds->start[t], ds->len[t]);
    cw_vocab_t *v = cw_vocab_build(vc, 1, 0);
    cw_vocab_counter_destroy(vc);
    cw_model_t *m = cw_model_new(v, dim, (const char *const *)ds->label_names, ds->nlabels, ngram, nbuckets);
    cw_model_init_uniform(m, 0.5f, seed);
    return m;
}

static void featurize(const cw_model_t *m, const cw_dataset_t *ds, feats_t *f) {
    memset(f, 0, sizeof(*f));
    f->offsets = cw_malloc(ds->n * sizeof(uint32_t));
    f->labels = cw_malloc(ds->n * sizeof(int32_t));
    for (size_t i = 0; i < ds->n; i++) {
        cw_tokens_t t;
        cw_dataset_tokens(ds, i, &t);
        f->offsets[i] = (uint32_t)f->nids;
        f->labels[i] = ds->labels[i];
        cw_model_featurize(m, &t, &f->ids, &f->nids, &f->ids_cap);
    }
    f->nbags = ds->n;
}

static void feats_free(feats_t *f) {
    cw_free(f->ids);
    cw_free(f->offsets);
    cw_free(f->labels);
}

/* Bags [b0, b1) of f as a batch; offs (b1 - b0 entries) receives the rebased offsets. */
static cw_batch_t slice(const feats_t *f, size_t b0, size_t b1, uint32_t *offs) {
    size_t i0 = f->offsets[b0], i1 = b1 < f->nbags ? f->offsets[b1] : f->nids;
    for (size_t b = b0; b < b1; b++) offs[b - b0] = f->offsets[b] - (uint32_t)i0;
    cw_batch_t bt = {.ids = f->ids + i0, .nids = i1 - i0, .offsets = offs, .nbags = b1 - b0,
                     .labels = f->labels + b0};
    return bt;
}

static uint32_t argmax(const float *row, uint32_t k) {
    uint32_t best = 0;
    for (uint32_t j = 1; j < k; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

/* Forward b on both backends; check argmax and probabilities. */
static void forward_parity(const char *what, cw_backend_t *cpu, cw_backend_t *gpu, const cw_batch_t *b,
                           uint32_t k) {
    char err[512];
    float *pc = cw_malloc((b->nbags * k + 1) * sizeof(float));
    float *pg = cw_malloc((b->nbags * k + 1) * sizeof(float));
    for (size_t i = 0; i < b->nbags * k; i++) pg[i] = NAN;
    int rc = cw_backend_forward(cpu, b, pc, err, sizeof(err));
    CHECK(rc == 0, "%s: cpu forward: %s", what, err);
    rc = cw_backend_forward(gpu, b, pg, err, sizeof(err));
    CHECK(rc == 0, "%s: cuda forward: %s", what, err);
    double maxd = 0;
    size_t mism = 0, first = (size_t)-1;
    for (size_t i = 0; i < b->nbags; i++) {
        if (argmax(pc + i * k, k) != argmax(pg + i * k, k)) {
            if (!mism) first = i;
            mism++;
        }
        for (uint32_t j = 0; j < k; j++) {
            double d = fabs((double)pc[i * k + j] - (double)pg[i * k + j]);
            if (!(d <= maxd)) maxd = d; /* NaN sticks */
        }
    }
    printf("  forward %-28s %7zu bags: max |dp| %.3g, argmax mismatches %zu\n", what, b->nbags, maxd, mism);
    CHECK(mism == 0, "%s: %zu argmax mismatches, first at bag %zu", what, mism, first);
    CHECK(maxd <= TOL_PROB, "%s: max prob difference %g > %g", what, maxd, TOL_PROB);
    cw_free(pc);
    cw_free(pg);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Largest weight difference between the CPU model and the GPU's weights. */
static double weight_diff(cw_backend_t *gpu, cw_model_t *ref, cw_model_t *dev_copy) {
    char err[512];
    int rc = cw_backend_download(gpu, dev_copy, err, sizeof(err));
    CHECK(rc == 0, "download: %s", err);
    double d = max_diff(ref->emb, dev_copy->emb, (size_t)ref->nrows * ref->dim);
    double d2 = max_diff(ref->fc_w, dev_copy->fc_w, (size_t)ref->nlabels * ref->dim);
    double d3 = max_diff(ref->fc_b, dev_copy->fc_b, ref->nlabels);
    if (d2 > d) d = d2;
    if (d3 > d) d = d3;
    return d;
}

/* nsteps training steps of batch `batch` from bag `start` on, on both backends. */
static void train_parity(const char *what, cw_backend_t *cpu, cw_backend_t *gpu, cw_model_t *mc, cw_model_t *mg,
                         const feats_t *f, size_t start, size_t batch, size_t nsteps, cw_step_opts_t opt,
                         double tol_w) {
    char err[512];
    uint32_t *offs = cw_malloc(batch * sizeof(uint32_t));
    double maxl = 0, first_loss = 0, last_loss = 0;
    if (batch > f->nbags) batch = f->nbags;
    for (size_t s = 0; s < nsteps; s++) {
        size_t b0 = (start + s * batch) % (f->nbags - batch + 1);
        cw_batch_t b = slice(f, b0, b0 + batch, offs);
        double lc = -1, lg = -2;
        int rc = cw_backend_train_step(cpu, &b, &opt, &lc, err, sizeof(err));
        CHECK(rc == 0, "%s step %zu: cpu: %s", what, s, err);
        rc = cw_backend_train_step(gpu, &b, &opt, &lg, err, sizeof(err));
        CHECK(rc == 0, "%s step %zu: cuda: %s", what, s, err);
        double d = fabs(lc - lg);
        if (!(d <= maxl)) maxl = d;
        if (s == 0) first_loss = lc;
        last_loss = lc;
    }
    double dw = weight_diff(gpu, mc, mg);
    printf("  train %-30s %4zu steps x %5zu: loss %.4f -> %.4f, max |dloss| %.3g, max |dw| %.3g\n", what, nsteps,
           batch, first_loss, last_loss, maxl, dw);
    CHECK(maxl <= TOL_LOSS, "%s: loss differs by %g > %g", what, maxl, TOL_LOSS);
    CHECK(dw <= tol_w, "%s: weights differ by %g > %g", what, dw, tol_w);
    cw_free(offs);
}

/* A forward that must fail with an error mentioning want; then a good batch must still match. */
static void expect_forward_error(const char *what, cw_backend_t *gpu, const cw_batch_t *b, uint32_t k,
                                 const char *want) {
    char err[512] = "";
    float *p = cw_malloc((b->nbags * k + 1) * sizeof(float));
    int rc = cw_backend_forward(gpu, b, p, err, sizeof(err));
    CHECK(rc != 0, "%s: bad batch accepted", what);
    CHECK(strstr(err, want) != NULL, "%s: error \"%s\" lacks \"%s\"", what, err, want);
    printf("  rejects %-28s %s\n", what, err);
    cw_free(p);
}

/* Random bags over nrows rows for the synthetic model; some empty. */
static void random_feats(feats_t *f, size_t nbags, uint64_t nrows, uint32_t nlabels, uint64_t seed) {
    cw_rng_t rng;
    cw_rng_seed(&rng, seed);
    memset(f, 0, sizeof(*f));
    f->offsets = cw_malloc(nbags * sizeof(uint32_t));
    f->labels = cw_malloc(nbags * sizeof(int32_t));
    for (size_t b = 0; b < nbags; b++) {
        f->offsets[b] = (uint32_t)f->nids;
        f->labels[b] = (int32_t)cw_rng_below(&rng, nlabels);
        size_t len = b % 17 == 5 ? 0 : 1 + cw_rng_below(&rng, 60);
        cw_grow((void **)&f->ids, &f->ids_cap, f->nids + len, sizeof(int32_t));
        for (size_t i = 0; i < len; i++) f->ids[f->nids++] = (int32_t)cw_rng_below(&rng, nrows);
    }
    f->nbags = nbags;
}

static cw_model_t *synthetic_model(uint32_t nwords, uint32_t dim, uint32_t nlabels, uint64_t seed) {
    cw_vocab_t *v = cw_vocab_new();
    char tok[32];
    for (uint32_t i = 1; i < nwords; i++) {
        int n = snprintf(tok, sizeof(tok), "w%u", i);
        cw_vocab_push(v, tok, (size_t)n);
    }
    char **labels = cw_malloc(nlabels * sizeof(char *));
    for (uint32_t j = 0; j < nlabels; j++) {
        char name[16];
        snprintf(name, sizeof(name), "c%u", j);
        labels[j] = cw_strdup(name);
    }
    cw_model_t *m = cw_model_new(v, dim, (const char *const *)labels, nlabels, 1, 0);
    for (uint32_t j = 0; j < nlabels; j++) cw_free(labels[j]);
    cw_free(labels);
    cw_model_init_uniform(m, 0.5f, seed);
    /* a non-zero bias, so that it is exercised */
    for (uint32_t j = 0; j < nlabels; j++) m->fc_b[j] = 0.01f * (float)j - 0.2f;
    return m;
}

int main(void) {
    char err[512] = "", why[512] = "";
    if (!cw_cuda_available(why, sizeof(why))) {
        printf("SKIP: no usable GPU: %s\n", why);
        return 77;
    }
    cw_dataset_opts_t dopts;
    cw_dataset_opts_init(&dopts);
    cw_dataset_t *ds = cw_dataset_load(CW_TEST_DATA "/test.csv", &dopts, err, sizeof(err));
    if (!ds) {
        fprintf(stderr, "FAIL: %s\n", err);
        return 1;
    }
    /* Two models with identical weights: one trained by the CPU in place, one on the GPU. */
    cw_model_t *mc = make_model(ds, 64, 2, 20000, 42);
    cw_model_t *mg = make_model(ds, 64, 2, 20000, 42);
    feats_t f;
    featurize(mc, ds, &f);
    const uint32_t k = mc->nlabels;

    cw_backend_t *cpu = cw_backend_new("cpu", err, sizeof(err));
    cw_backend_t *gpu = cw_backend_new("cuda", err, sizeof(err));
    if (!cpu || !gpu) {
        fprintf(stderr, "FAIL: backend: %s\n", err);
        return 1;
    }
    printf("%s vs %s; %zu articles, %zu ids, model %llu x %u, %u labels\n", gpu->desc, cpu->desc, f.nbags, f.nids,
           (unsigned long long)mc->nrows, mc->dim, k);
    CHECK(cw_backend_upload(cpu, mc, err, sizeof(err)) == 0, "cpu upload: %s", err);
    CHECK(cw_backend_upload(gpu, mg, err, sizeof(err)) == 0, "cuda upload: %s", err);

    /* --- forward ------------------------------------------------------- */
    {
        cw_batch_t all = {.ids = f.ids, .nids = f.nids, .offsets = f.offsets, .nbags = f.nbags};
        forward_parity("test set, one batch", cpu, gpu, &all, k);

        uint32_t *offs = cw_malloc(f.nbags * sizeof(uint32_t));
        const size_t sizes[] = {1, 2, 3, 31, 64, 1000, 4095};
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            for (size_t b0 = 0; b0 + sizes[s] <= f.nbags; b0 += 1777) {
                cw_batch_t b = slice(&f, b0, b0 + sizes[s], offs);
                char what[64];
                snprintf(what, sizeof(what), "slice %zu+%zu", b0, sizes[s]);
                forward_parity(what, cpu, gpu, &b, k);
            }
        }
        cw_free(offs);

        /* 5 copies of the test set: 38,000 bags, cut into 4 pipelined chunks. */
        feats_t big = {0};
        const size_t reps = 5;
        big.nbags = f.nbags * reps;
        big.offsets = cw_malloc(big.nbags * sizeof(uint32_t));
        big.ids = cw_malloc(f.nids * reps * sizeof(int32_t));
        for (size_t r = 0; r < reps; r++) {
            memcpy(big.ids + r * f.nids, f.ids, f.nids * sizeof(int32_t));
            for (size_t b = 0; b < f.nbags; b++) big.offsets[r * f.nbags + b] = f.offsets[b] + (uint32_t)(r * f.nids);
        }
        big.nids = f.nids * reps;
        cw_batch_t bb = {.ids = big.ids, .nids = big.nids, .offsets = big.offsets, .nbags = big.nbags};
        forward_parity("test set x5, chunked", cpu, gpu, &bb, k);

        /* Errors: a bad id in the last chunk, a negative id, offsets out of order or past nids. */
        int32_t saved = big.ids[big.nids - 3];
        big.ids[big.nids - 3] = (int32_t)mc->nrows;
        expect_forward_error("id == nrows (last chunk)", gpu, &bb, k, "out of range");
        big.ids[big.nids - 3] = -7;
        expect_forward_error("negative id", gpu, &bb, k, "out of range");
        big.ids[big.nids - 3] = saved;
        uint32_t so = big.offsets[100];
        big.offsets[100] = big.offsets[101] + 1;
        expect_forward_error("offsets out of order", gpu, &bb, k, "offsets");
        big.offsets[100] = so;
        cw_batch_t small = {.ids = big.ids, .nids = 10, .offsets = big.offsets, .nbags = 3};
        expect_forward_error("offsets past nids", gpu, &small, k, "offsets");
        uint32_t off1[2] = {1, 4};
        cw_batch_t nz = {.ids = big.ids, .nids = 8, .offsets = off1, .nbags = 2};
        expect_forward_error("offsets[0] != 0", gpu, &nz, k, "offsets[0]");
        /* ...and the backend is still fine afterwards. */
        forward_parity("after errors", cpu, gpu, &bb, k);
        feats_free(&big);

        /* Empty bags: first, in a row, last; and a batch of only empty bags. */
        int32_t eids[] = {5, 9, 5, 1, 20000, 7};
        uint32_t eoffs[] = {0, 0, 3, 3, 3, 6};
        cw_batch_t eb = {.ids = eids, .nids = 6, .offsets = eoffs, .nbags = 6};
        forward_parity("empty bags", cpu, gpu, &eb, k);
        uint32_t zoffs[] = {0, 0, 0};
        cw_batch_t zb = {.ids = NULL, .nids = 0, .offsets = zoffs, .nbags = 3};
        forward_parity("only empty bags", cpu, gpu, &zb, k);
        cw_batch_t none = {.ids = NULL, .nids = 0, .offsets = NULL, .nbags = 0};
        CHECK(cw_backend_forward(gpu, &none, NULL, err, sizeof(err)) == 0, "empty batch: %s", err);
    }

    /* --- training ------------------------------------------------------ */
    {
        cw_step_opts_t seed = {.lr = 0.1f, .clip_norm = 0.1f};
        train_parity("seed recipe", cpu, gpu, mc, mg, &f, 0, 64, 100, seed, TOL_W);
        cw_step_opts_t noclip = {.lr = 0.5f, .clip_norm = 0.f};
        train_parity("no clipping, lr 0.5", cpu, gpu, mc, mg, &f, 3000, 64, 20, noclip, TOL_W_NOCLIP);
        train_parity("one batch of 4096", cpu, gpu, mc, mg, &f, 100, 4096, 1, seed, TOL_W);
        /* the same bag many times: one row touched by every bag */
        {
            int32_t ids[8 * 3];
            uint32_t offs[8];
            int32_t labels[8];
            for (int b = 0; b < 8; b++) {
                offs[b] = (uint32_t)(3 * b);
                labels[b] = b % 4;
                ids[3 * b] = 11;
                ids[3 * b + 1] = 11;
                ids[3 * b + 2] = 100 + b;
            }
            cw_batch_t b = {.ids = ids, .nids = 24, .offsets = offs, .nbags = 8, .labels = labels};
            double lc, lg;
            CHECK(cw_backend_train_step(cpu, &b, &noclip, &lc, err, sizeof(err)) == 0, "cpu: %s", err);
            CHECK(cw_backend_train_step(gpu, &b, &noclip, &lg, err, sizeof(err)) == 0, "cuda: %s", err);
            double dw = weight_diff(gpu, mc, mg);
            printf("  train %-30s %4d steps x %5d: max |dloss| %.3g, max |dw| %.3g\n", "shared row", 1, 8,
                   fabs(lc - lg), dw);
            CHECK(fabs(lc - lg) <= TOL_LOSS && dw <= TOL_W_NOCLIP, "shared row: loss %g vs %g, dw %g", lc, lg, dw);
        }
        /* A bad label fails and changes nothing. */
        {
            uint32_t offs[64];
            size_t b0 = f.nbags >= 564 ? 500 : 0;
            cw_batch_t b = slice(&f, b0, b0 + 64, offs);
            int32_t labels[64];
            memcpy(labels, b.labels, sizeof(labels));
            labels[40] = (int32_t)k;
            b.labels = labels;
            double l;
            float *before = cw_malloc((size_t)mg->nrows * mg->dim * sizeof(float));
            CHECK(cw_backend_download(gpu, mg, err, sizeof(err)) == 0, "download: %s", err);
            memcpy(before, mg->emb, (size_t)mg->nrows * mg->dim * sizeof(float));
            int rc = cw_backend_train_step(gpu, &b, &seed, &l, err, sizeof(err));
            CHECK(rc != 0 && strstr(err, "label"), "bad label: rc %d, error \"%s\"", rc, err);
            printf("  rejects %-28s %s\n", "label == nlabels", err);
            CHECK(cw_backend_download(gpu, mg, err, sizeof(err)) == 0, "download: %s", err);
            CHECK(max_diff(before, mg->emb, (size_t)mg->nrows * mg->dim) == 0.0, "bad step changed weights");
            cw_free(before);
            /* the next good steps still agree (gradient buffers were cleaned up) */
            train_parity("after a rejected step", cpu, gpu, mc, mg, &f, 6000, 64, 10, seed, TOL_W);
        }
        cw_step_opts_t opt = seed;
        cw_batch_t none = {.ids = NULL, .nids = 0, .offsets = NULL, .nbags = 0, .labels = NULL};
        double l = -1;
        CHECK(cw_backend_train_step(gpu, &none, &opt, &l, err, sizeof(err)) == 0 && l == 0.0,
              "empty training batch: %s", err);
        /* Trained weights still give the same predictions. */
        cw_batch_t all = {.ids = f.ids, .nids = f.nids, .offsets = f.offsets, .nbags = f.nbags};
        forward_parity("test set, trained", cpu, gpu, &all, k);
    }

    /* --- a wide model, then hot reload ----------------------------------- */
    {
        cw_model_t *wc = synthetic_model(1500, 300, 50, 7), *wg = synthetic_model(1500, 300, 50, 7);
        feats_t rf;
        random_feats(&rf, 3000, wc->nrows, wc->nlabels, 9);
        CHECK(cw_backend_upload(cpu, wc, err, sizeof(err)) == 0, "cpu upload: %s", err);
        CHECK(cw_backend_upload(gpu, wg, err, sizeof(err)) == 0, "cuda hot reload: %s", err);
        cw_batch_t rb = {.ids = rf.ids, .nids = rf.nids, .offsets = rf.offsets, .nbags = rf.nbags};
        forward_parity("wide model (300 x 50)", cpu, gpu, &rb, wc->nlabels);
        cw_step_opts_t opt = {.lr = 0.1f, .clip_norm = 0.1f};
        train_parity("wide model", cpu, gpu, wc, wg, &rf, 0, 256, 8, opt, TOL_W);
        /* back to the first model: the GPU copy must be the trained weights */
        CHECK(cw_backend_upload(cpu, mc, err, sizeof(err)) == 0, "cpu upload: %s", err);
        CHECK(cw_backend_upload(gpu, mg, err, sizeof(err)) == 0, "cuda hot reload: %s", err);
        cw_batch_t all = {.ids = f.ids, .nids = f.nids, .offsets = f.offsets, .nbags = f.nbags};
        forward_parity("after reloads", cpu, gpu, &all, k);
        feats_free(&rf);
        cw_model_destroy(wc);
        cw_model_destroy(wg);
    }

    cw_backend_destroy(gpu);
    cw_backend_destroy(cpu);
    feats_free(&f);
    cw_model_destroy(mc);
    cw_model_destroy(mg);
    cw_dataset_destroy(ds);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

#endif
