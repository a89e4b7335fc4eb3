/* backend_cpu.c: the CPU backend (the reference the other backends are
 * tested against).
 *
 * Forward: EmbeddingBag(mode="mean") with torch's semantics (an empty bag is
 * a zero vector), then Linear: logits = H · fc_wᵀ + fc_b through OpenBLAS
 * cblas_sgemm for batches; tiny batches (the per-example SGD of the default
 * recipe) use fused loops, because a BLAS call costs more than the few
 * hundred multiply-adds it would do.
 *
 * Training step: mean cross-entropy, backward, optional clipping of the
 * total gradient norm over all parameters (torch's clip_grad_norm_: scale
 * by clip / (norm + 1e-6) when that is < 1), SGD update. The embedding
 * gradient is sparse: only rows that occur in the batch have a non-zero
 * gradient, so only those rows are accumulated, counted in the norm and
 * updated; this is exactly torch's dense update, since the other rows would
 * get w -= lr * 0.
 *
 * Inference projection: when a model has no more labels than dimensions
 * (the default recipe's models have exactly as many), the forward pass of a
 * backend that has already averaged many ids switches to
 * P = emb · fc_wᵀ (nrows x nlabels, one cblas_sgemm, built lazily once the
 * ids forwarded since the weights last changed reach nrows / 4, so a one-off
 * evaluation never pays for it, or at once by cw_backend_prepare(), which
 * servers call after each upload): logits of a bag = mean over its ids of
 * P[id] + fc_b, the same math up to float rounding, nlabels floats read per
 * id instead of dim and no BLAS call per batch. P is dropped on upload and
 * on train_step, and before each forward the fc weights are compared with
 * the copy taken when P was built, so updates made through other backends
 * sharing the model (every SGD step changes fc_w) are seen too; a caller
 * that edits emb rows of a bound model by hand must upload it again.
 *
 * Weights are the bound model's host arrays, read and updated in place:
 * several CPU backends bound to one model train it Hogwild-style (lock-free
 * races on shared rows are accepted, as fastText does); each backend has its
 * own scratch buffers, so one backend per thread.
 *
 * Threads: every CPU backend is one core. Callers that want more run more
 * backends (the trainer's Hogwild threads, the worker's compute_threads), so
 * init sets OpenBLAS to one thread for the process: its own pool would only
 * compete with them, and after each call its idle threads spin on
 * sched_yield for a while (measured: ~100 ms of a core after the projection
 * a worker builds on every model load, taken from the Kafka client threads
 * on a 2-core machine). */
#include "backend.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* How many ids ahead forward_proj prefetches projection rows. The rows are
 * scattered over a table that outgrows L2 (the default AG News model: 5.8 MB),
 * so each is a long miss; 128 ahead (bench_infer, batch 1024: 1.13-1.19x the
 * articles/s of 32 ahead, median of 8-10 alternating runs) keeps enough of
 * them in flight. */
#define CW_CPU_PREFETCH 128

/* Below this many bags the fused loops beat a cblas_sgemm call. */
#define CW_CPU_BLAS_MIN_BAGS 8

typedef struct cpu_ctx_s {
    /* per-batch scratch, grown on demand */
    float *hidden;        /* nbags x dim: bag means */
    float *logits;        /* nbags x nlabels: logits, then probabilities, then dL/dlogits */
    float *ghidden;       /* nbags x dim: dL/dhidden */
    size_t bags_cap_h, bags_cap_l, bags_cap_g;
    /* gradients of the dense parameters: fc_w (nlabels x dim), then fc_b (nlabels) */
    float *gfc;
    size_t gfc_cap;
    /* sparse embedding gradient: touched rows, their accumulators */
    int32_t *row_slot;    /* nrows, -1 = untouched; sized at upload */
    uint64_t row_slot_n;
    int32_t *rows;        /* touched row ids in first-seen order */
    size_t nrows_t, rows_cap;
    float *gemb;          /* nrows_t x dim accumulators */
    size_t gemb_cap;
    /* inference projection (see the header comment) */
    float *proj;          /* nrows x nlabels, valid when proj_ok */
    size_t proj_cap;
    float *proj_fc;       /* fc_w then fc_b as they were when proj was built */
    size_t proj_fc_cap;
    int proj_ok;
    uint64_t direct_ids;  /* ids averaged without proj since the weights last changed */
} cpu_ctx_t;

static int cpu_init(cw_backend_t *be, int device, char *errstr, size_t errstr_size) {
    (void)device;
    (void)errstr;
    (void)errstr_size;
    be->ctx = cw_calloc(1, sizeof(cpu_ctx_t));
    openblas_set_num_threads(1);
    char *cfg = openblas_get_config();
    snprintf(be->desc, sizeof(be->desc), "cpu (%s)", cfg ? cfg : "OpenBLAS");
    return 0;
}

static void cpu_destroy(cw_backend_t *be) {
    cpu_ctx_t *c = be->ctx;
    if (!c) return;
    cw_free(c->hidden);
    cw_free(c->logits);
    cw_free(c->ghidden);
    cw_free(c->gfc);
    cw_free(c->row_slot);
    cw_free(c->rows);
    cw_free(c->gemb);
    cw_free(c->proj);
    cw_free(c->proj_fc);
    cw_free(c);
    be->ctx = NULL;
}

static int cpu_upload(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size) {
    cpu_ctx_t *c = be->ctx;
    if (m->dim == 0 || m->nlabels == 0) {
        cw_seterr(errstr, errstr_size, "cpu backend: model has dim %u and %u labels", m->dim, m->nlabels);
        return -1;
    }
    /* The row map is only needed for training; allocate it lazily there. */
    cw_free(c->row_slot);
    c->row_slot = NULL;
    c->row_slot_n = 0;
    c->proj_ok = 0;
    c->direct_ids = 0;
    return 0;
}

/* The bags' offsets: start at 0, non-decreasing, within nids. */
static int check_offsets(const cw_batch_t *b, char *errstr, size_t errstr_size) {
    if (b->nbags == 0) return 0;
    if (!b->offsets || b->offsets[0] != 0) {
        cw_seterr(errstr, errstr_size, "batch: offsets[0] must be 0");
        return -1;
    }
    for (size_t i = 0; i < b->nbags; i++) {
        uint32_t end = i + 1 < b->nbags ? b->offsets[i + 1] : (uint32_t)b->nids;
        if (end < b->offsets[i] || end > b->nids) {
            cw_seterr(errstr, errstr_size, "batch: offsets not non-decreasing within %zu ids at bag %zu",
                      b->nids, i);
            return -1;
        }
    }
    return 0;
}

static int bad_id(const cw_model_t *m, const cw_batch_t *b, size_t i, char *errstr, size_t errstr_size) {
    cw_seterr(errstr, errstr_size, "batch: id %ld at %zu out of range [0, %llu)", (long)b->ids[i], i,
              (unsigned long long)m->nrows);
    return -1;
}

static int check_batch(const cw_model_t *m, const cw_batch_t *b, int training, char *errstr,
                       size_t errstr_size) {
    if (b->nbags == 0) return 0;
    if (check_offsets(b, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < b->nids; i++)
        if (b->ids[i] < 0 || (uint64_t)b->ids[i] >= m->nrows) return bad_id(m, b, i, errstr, errstr_size);
    if (training) {
        if (!b->labels) {
            cw_seterr(errstr, errstr_size, "batch: training needs labels");
            return -1;
        }
        for (size_t i = 0; i < b->nbags; i++) {
            if (b->labels[i] < 0 || (uint32_t)b->labels[i] >= m->nlabels) {
                cw_seterr(errstr, errstr_size, "batch: label %d of bag %zu out of range [0, %u)",
                          (int)b->labels[i], i, m->nlabels);
                return -1;
            }
        }
    }
    return 0;
}

/* hidden[i] = mean of emb rows of bag i (zero when empty); logits = hidden · fc_wᵀ + fc_b. */
static void forward_logits(cpu_ctx_t *c, const cw_model_t *m, const cw_batch_t *b) {
    size_t d = m->dim, k = m->nlabels, nb = b->nbags;
    cw_grow((void **)&c->hidden, &c->bags_cap_h, nb * d, sizeof(float));
    cw_grow((void **)&c->logits, &c->bags_cap_l, nb * k, sizeof(float));
    for (size_t i = 0; i < nb; i++) {
        size_t s = b->offsets[i], e = i + 1 < nb ? b->offsets[i + 1] : b->nids;
        float *h = c->hidden + i * d;
        memset(h, 0, d * sizeof(float));
        for (size_t t = s; t < e; t++) {
            const float *row = m->emb + (size_t)b->ids[t] * d;
            for (size_t j = 0; j < d; j++) h[j] += row[j];
        }
        if (e > s) {
            float inv = 1.0f / (float)(e - s);
            for (size_t j = 0; j < d; j++) h[j] *= inv;
        }
    }
    for (size_t i = 0; i < nb; i++) memcpy(c->logits + i * k, m->fc_b, k * sizeof(float));
    if (nb >= CW_CPU_BLAS_MIN_BAGS) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)d, 1.0f, c->hidden,
                    (int)d, m->fc_w, (int)d, 1.0f, c->logits, (int)k);
    } else {
        for (size_t i = 0; i < nb; i++) {
            const float *h = c->hidden + i * d;
            for (size_t l = 0; l < k; l++) {
                const float *w = m->fc_w + l * d;
                float s = 0.f;
                for (size_t j = 0; j < d; j++) s += w[j] * h[j];
                c->logits[i * k + l] += s;
            }
        }
    }
}

/* Is the projection still that of the bound weights? */
static int proj_current(const cpu_ctx_t *c, const cw_model_t *m) {
    size_t nw = (size_t)m->nlabels * m->dim;
    return c->proj_ok && !memcmp(c->proj_fc, m->fc_w, nw * sizeof(float)) &&
           !memcmp(c->proj_fc + nw, m->fc_b, m->nlabels * sizeof(float));
}

static void proj_build(cpu_ctx_t *c, const cw_model_t *m) {
    size_t k = m->nlabels, d = m->dim, nw = k * d;
    cw_grow((void **)&c->proj, &c->proj_cap, (size_t)m->nrows * k, sizeof(float));
    cw_grow((void **)&c->proj_fc, &c->proj_fc_cap, nw + k, sizeof(float));
    memcpy(c->proj_fc, m->fc_w, nw * sizeof(float));
    memcpy(c->proj_fc + nw, m->fc_b, k * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m->nrows, (int)k, (int)d, 1.0f, m->emb, (int)d,
                c->proj_fc, (int)d, 0.0f, c->proj, (int)k);
    c->proj_ok = 1;
}

/* logits[i] = mean of proj rows of bag i + fc_b (fc_b alone when empty).
 * The ids are range-checked here, in the one pass that reads them (the
 * offsets were checked before); -1 on the first bad one. */
static int forward_proj(const cpu_ctx_t *c, const cw_model_t *m, const cw_batch_t *b, float *logits, char *errstr,
                        size_t errstr_size) {
    size_t k = m->nlabels, nb = b->nbags;
    const float *bias = c->proj_fc + (size_t)k * m->dim;
    const int32_t *ids = b->ids;
    uint64_t nrows = m->nrows;
    /* The loop below prefetches CW_CPU_PREFETCH ids ahead of the row it sums:
     * start the first ones now (a small batch may have no more than that). */
    for (size_t t = 0; t < b->nids && t < CW_CPU_PREFETCH; t++)
        if ((uint64_t)(uint32_t)ids[t] < nrows) __builtin_prefetch(c->proj + (size_t)ids[t] * k);
    for (size_t i = 0; i < nb; i++) {
        size_t s = b->offsets[i], e = i + 1 < nb ? b->offsets[i + 1] : b->nids;
        float *z = logits + i * k;
        for (size_t t = s; t < e; t++)
            if ((uint64_t)(uint32_t)ids[t] >= nrows) return bad_id(m, b, t, errstr, errstr_size);
        if (k == 4) {
            float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
            for (size_t t = s; t < e; t++) {
                /* The rows are scattered over the table: start loading a
                 * later one while this one is summed. */
                if (t + CW_CPU_PREFETCH < b->nids) __builtin_prefetch(c->proj + (size_t)ids[t + CW_CPU_PREFETCH] * 4);
                const float *p = c->proj + (size_t)ids[t] * 4;
                a0 += p[0];
                a1 += p[1];
                a2 += p[2];
                a3 += p[3];
            }
            float inv = e > s ? 1.0f / (float)(e - s) : 0.f;
            z[0] = a0 * inv + bias[0];
            z[1] = a1 * inv + bias[1];
            z[2] = a2 * inv + bias[2];
            z[3] = a3 * inv + bias[3];
            continue;
        }
        memset(z, 0, k * sizeof(float));
        for (size_t t = s; t < e; t++) {
            const float *p = c->proj + (size_t)ids[t] * k;
            for (size_t l = 0; l < k; l++) z[l] += p[l];
        }
        float inv = e > s ? 1.0f / (float)(e - s) : 0.f;
        for (size_t l = 0; l < k; l++) z[l] = z[l] * inv + bias[l];
    }
    return 0;
}

static int cpu_forward(cw_backend_t *be, const cw_batch_t *b, float *probs, char *errstr,
                       size_t errstr_size) {
    cpu_ctx_t *c = be->ctx;
    const cw_model_t *m = be->model;
    if (check_offsets(b, errstr, errstr_size) != 0) return -1;
    if (b->nbags == 0) return 0;
    if (m->nlabels <= m->dim) {
        if (c->proj_ok && !proj_current(c, m)) {
            c->proj_ok = 0;
            c->direct_ids = 0;
        }
        if (!c->proj_ok && c->direct_ids + b->nids >= m->nrows / 4) proj_build(c, m);
    }
    if (c->proj_ok) {
        if (forward_proj(c, m, b, probs, errstr, errstr_size) != 0) return -1;
    } else {
        if (check_batch(m, b, 0, errstr, errstr_size) != 0) return -1;
        c->direct_ids += b->nids;
        forward_logits(c, m, b);
        memcpy(probs, c->logits, b->nbags * m->nlabels * sizeof(float));
    }
    cw_softmax_rows(probs, b->nbags, m->nlabels);
    return 0;
}

/* Accumulator row for emb row id, allocating it on first touch. */
static float *gemb_row(cpu_ctx_t *c, int32_t id, size_t d) {
    int32_t s = c->row_slot[id];
    if (s >= 0) return c->gemb + (size_t)s * d;
    cw_grow((void **)&c->rows, &c->rows_cap, c->nrows_t + 1, sizeof(int32_t));
    cw_grow((void **)&c->gemb, &c->gemb_cap, (c->nrows_t + 1) * d, sizeof(float));
    s = (int32_t)c->nrows_t++;
    c->rows[s] = id;
    c->row_slot[id] = s;
    float *g = c->gemb + (size_t)s * d;
    memset(g, 0, d * sizeof(float));
    return g;
}

/* One bag, no clipping: the per-example SGD step of the default recipe,
 * fused. Every id of the bag gets the same update lr * dL/dhidden / n, so
 * applying it once per occurrence equals accumulating the sparse gradient
 * first (the update uses only values computed before it). */
static double step_one(cpu_ctx_t *c, cw_model_t *m, const int32_t *ids, size_t n, int32_t y, float lr) {
    size_t d = m->dim, k = m->nlabels;
    cw_grow((void **)&c->hidden, &c->bags_cap_h, d, sizeof(float));
    cw_grow((void **)&c->ghidden, &c->bags_cap_g, d, sizeof(float));
    cw_grow((void **)&c->logits, &c->bags_cap_l, k, sizeof(float));
    float *h = c->hidden, *gh = c->ghidden, *z = c->logits;
    memset(h, 0, d * sizeof(float));
    for (size_t t = 0; t < n; t++) {
        const float *row = m->emb + (size_t)ids[t] * d;
        for (size_t j = 0; j < d; j++) h[j] += row[j];
    }
    if (n > 0) {
        float inv = 1.0f / (float)n;
        for (size_t j = 0; j < d; j++) h[j] *= inv;
    }
    float mx = -INFINITY;
    for (size_t l = 0; l < k; l++) {
        const float *w = m->fc_w + l * d;
        float s = m->fc_b[l];
        for (size_t j = 0; j < d; j++) s += w[j] * h[j];
        z[l] = s;
        if (s > mx) mx = s;
    }
    float se = 0.f;
    for (size_t l = 0; l < k; l++) {
        z[l] = expf(z[l] - mx);
        se += z[l];
    }
    double loss = (double)mx + log((double)se) - ((double)logf(z[y]) + (double)mx);
    float inv_se = 1.0f / se;
    memset(gh, 0, d * sizeof(float));
    for (size_t l = 0; l < k; l++) {
        float g = z[l] * inv_se - (l == (size_t)y ? 1.0f : 0.0f); /* dL/dlogit */
        float *w = m->fc_w + l * d;
        for (size_t j = 0; j < d; j++) {
            gh[j] += g * w[j];
            w[j] -= lr * g * h[j];
        }
        m->fc_b[l] -= lr * g;
    }
    if (n > 0) {
        float s = lr / (float)n;
        for (size_t j = 0; j < d; j++) gh[j] *= s;
        for (size_t t = 0; t < n; t++) {
            float *row = m->emb + (size_t)ids[t] * d;
            for (size_t j = 0; j < d; j++) row[j] -= gh[j];
        }
    }
    return loss;
}

static int cpu_train_step(cw_backend_t *be, const cw_batch_t *b, const cw_step_opts_t *opt,
                          double *loss, char *errstr, size_t errstr_size) {
    cpu_ctx_t *c = be->ctx;
    cw_model_t *m = be->model;
    if (check_batch(m, b, 1, errstr, errstr_size) != 0) return -1;
    c->proj_ok = 0;
    c->direct_ids = 0;
    if (loss) *loss = 0.0;
    if (b->nbags == 0) return 0;
    if (b->nbags == 1 && !(opt->clip_norm > 0.0f)) {
        double l = step_one(c, m, b->ids, b->nids, b->labels[0], opt->lr);
        if (loss) *loss = l;
        return 0;
    }
    if (c->row_slot_n != m->nrows) {
        cw_free(c->row_slot);
        c->row_slot = cw_malloc(m->nrows * sizeof(int32_t));
        memset(c->row_slot, 0xff, m->nrows * sizeof(int32_t));
        c->row_slot_n = m->nrows;
    }
    size_t d = m->dim, k = m->nlabels, nb = b->nbags;
    forward_logits(c, m, b);

    /* Loss (log-sum-exp in double) and dL/dlogits = (softmax - onehot) / nb, in place. */
    double lsum = 0.0;
    float invb = 1.0f / (float)nb;
    for (size_t i = 0; i < nb; i++) {
        float *z = c->logits + i * k;
        float mx = z[0];
        for (size_t l = 1; l < k; l++) if (z[l] > mx) mx = z[l];
        double se = 0.0;
        for (size_t l = 0; l < k; l++) se += exp((double)(z[l] - mx));
        double lse = (double)mx + log(se);
        int32_t y = b->labels[i];
        lsum += lse - (double)z[y];
        for (size_t l = 0; l < k; l++) z[l] = (float)exp((double)z[l] - lse) * invb;
        z[y] -= invb;
    }
    if (loss) *loss = lsum / (double)nb;

    /* Dense gradients: gfc_w = Gᵀ · H, gfc_b = column sums of G, ghidden = G · fc_w. */
    cw_grow((void **)&c->gfc, &c->gfc_cap, k * d + k, sizeof(float));
    float *gw = c->gfc, *gb = c->gfc + k * d;
    cw_grow((void **)&c->ghidden, &c->bags_cap_g, nb * d, sizeof(float));
    const float *G = c->logits;
    memset(gb, 0, k * sizeof(float));
    for (size_t i = 0; i < nb; i++)
        for (size_t l = 0; l < k; l++) gb[l] += G[i * k + l];
    if (nb >= CW_CPU_BLAS_MIN_BAGS) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)d, (int)nb, 1.0f, G, (int)k,
                    c->hidden, (int)d, 0.0f, gw, (int)d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)k, 1.0f, G, (int)k,
                    m->fc_w, (int)d, 0.0f, c->ghidden, (int)d);
    } else {
        memset(gw, 0, k * d * sizeof(float));
        for (size_t i = 0; i < nb; i++) {
            const float *h = c->hidden + i * d;
            float *gh = c->ghidden + i * d;
            memset(gh, 0, d * sizeof(float));
            for (size_t l = 0; l < k; l++) {
                float g = G[i * k + l];
                const float *w = m->fc_w + l * d;
                float *gwl = gw + l * d;
                for (size_t j = 0; j < d; j++) {
                    gwl[j] += g * h[j];
                    gh[j] += g * w[j];
                }
            }
        }
    }

    /* Sparse embedding gradient: each id of bag i gets ghidden[i] / |bag i|. */
    c->nrows_t = 0;
    for (size_t i = 0; i < nb; i++) {
        size_t s = b->offsets[i], e = i + 1 < nb ? b->offsets[i + 1] : b->nids;
        if (e == s) continue;
        float inv = 1.0f / (float)(e - s);
        const float *gh = c->ghidden + i * d;
        for (size_t t = s; t < e; t++) {
            float *g = gemb_row(c, b->ids[t], d);
            for (size_t j = 0; j < d; j++) g[j] += gh[j] * inv;
        }
    }

    /* Clip the total norm, as torch.nn.utils.clip_grad_norm_ does. */
    float scale = opt->lr;
    if (opt->clip_norm > 0.0f) {
        double ss = 0.0;
        for (size_t j = 0; j < k * d + k; j++) ss += (double)gw[j] * gw[j];
        size_t ne = c->nrows_t * d;
        for (size_t j = 0; j < ne; j++) ss += (double)c->gemb[j] * c->gemb[j];
        double norm = sqrt(ss);
        double coef = (double)opt->clip_norm / (norm + 1e-6);
        if (coef < 1.0) scale = (float)((double)opt->lr * coef);
    }

    /* SGD update; only touched embedding rows change. */
    for (size_t j = 0; j < k * d; j++) m->fc_w[j] -= scale * gw[j];
    for (size_t l = 0; l < k; l++) m->fc_b[l] -= scale * gb[l];
    for (size_t r = 0; r < c->nrows_t; r++) {
        int32_t id = c->rows[r];
        float *w = m->emb + (size_t)id * d;
        const float *g = c->gemb + r * d;
        for (size_t j = 0; j < d; j++) w[j] -= scale * g[j];
        c->row_slot[id] = -1;
    }
    return 0;
}

/* Build the projection now instead of after nrows/4 forwarded ids. */
static int cpu_prepare(cw_backend_t *be, char *errstr, size_t errstr_size) {
    cpu_ctx_t *c = be->ctx;
    const cw_model_t *m = be->model;
    (void)errstr;
    (void)errstr_size;
    if (m->nlabels <= m->dim && !proj_current(c, m)) proj_build(c, m);
    return 0;
}

/* The projection, once built: the rows forward_proj sums, one per id. The
 * direct path's rows (emb, dim floats each) span several lines: no hint. */
static const void *cpu_rows(const cw_backend_t *be, size_t *stride) {
    const cpu_ctx_t *c = be->ctx;
    if (!c->proj_ok) return NULL;
    *stride = (size_t)be->model->nlabels * sizeof(float);
    return c->proj;
}

const struct cw_backend_ops cw_backend_cpu_ops = {
    .name = "cpu",
    .init = cpu_init,
    .destroy = cpu_destroy,
    .upload = cpu_upload,
    .forward = cpu_forward,
    .train_step = cpu_train_step,
    .download = NULL,
    .sync = NULL,
    .prepare = cpu_prepare,
    .rows = cpu_rows,
    .splittable = 1,
};
