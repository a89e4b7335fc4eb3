/* backend.h: where the model's arithmetic runs (CPU with OpenBLAS, CUDA).
 *
 * A backend is an ops table plus a private context. Callers never see which
 * one they have: they build a cw_batch_t (token ids and per-article offsets,
 * torch's EmbeddingBag input) and call cw_backend_forward / _train_step.
 * Backends are chosen by name at run time, see cw_backend_new(); the one
 * `#if CW_WITH_CUDA` lives in backend.c.
 *
 * Weights: cw_backend_upload() binds a model. The CPU backend reads the
 * model's host arrays in place (zero copy; training updates them in place,
 * Hogwild-style when several CPU backends share one model). A device backend
 * copies them and keeps them resident; cw_backend_download() copies trained
 * weights back. Upload may be called again to swap models (hot reload); the
 * caller must not free the old model until upload of the new one returned.
 *
 * Threads: a cw_backend_t is used by one thread at a time (it owns scratch
 * buffers and, for CUDA, streams). Use one per thread.
 *
 * Errors: functions return 0 or -1 and fill errstr. */
#ifndef CW_BACKEND_H
#define CW_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct cw_batch_s {
    const int32_t *ids;      /* nids row ids into emb, all < model->nrows */
    size_t nids;
    const uint32_t *offsets; /* nbags start offsets: bag i is ids[offsets[i] .. offsets[i+1])
                              * (the last ends at nids); non-decreasing, offsets[0] == 0 */
    size_t nbags;
    const int32_t *labels;   /* nbags class ids; training only */
} cw_batch_t;

/* Training step options: the seed recipe uses mean cross-entropy over the batch,
 * total gradient norm clipped to clip_norm (0 = no clipping), plain SGD. */
typedef struct cw_step_opts_s {
    float lr;
    float clip_norm;
} cw_step_opts_t;

typedef struct cw_backend_s cw_backend_t;

struct cw_backend_ops {
    const char *name;
    /* device: index for "cuda:N" (0 otherwise). */
    int (*init)(cw_backend_t *be, int device, char *errstr, size_t errstr_size);
    void (*destroy)(cw_backend_t *be);
    int (*upload)(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size);
    /* probs: nbags x nlabels softmax probabilities (host memory). */
    int (*forward)(cw_backend_t *be, const cw_batch_t *b, float *probs,
                   char *errstr, size_t errstr_size);
    /* One SGD step on the bound weights; *loss receives the mean cross-entropy
     * before the update. */
    int (*train_step)(cw_backend_t *be, const cw_batch_t *b, const cw_step_opts_t *opt,
                      double *loss, char *errstr, size_t errstr_size);
    /* Copy device weights back into the bound model (no-op on CPU). */
    int (*download)(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size);
    /* Optional: wait for queued work. */
    int (*sync)(cw_backend_t *be, char *errstr, size_t errstr_size);
    /* Optional: build inference-time state for the bound model now (the CPU
     * backend's emb x fc_w^T projection), so that the first batches after an
     * upload do not pay for it. Servers call it after every upload. */
    int (*prepare)(cw_backend_t *be, char *errstr, size_t errstr_size);
    /* Optional: the host table the forward pass reads one row of per id
     * (CPU, once prepared: the projection), for callers to prefetch rows
     * early (model.h's cw_rows_hint_t); NULL when there is none (CUDA: the
     * rows are in device memory). Valid until the next upload, prepare or
     * forward, which may rebuild it. */
    const void *(*rows)(const cw_backend_t *be, size_t *stride);
    /* 1 when forwarding a batch in pieces costs what the whole batch costs
     * and gives the same probabilities, bit for bit, once prepared (CPU: every
     * bag is computed alone); 0 where each call has a fixed cost worth
     * batching for (CUDA: launches, copies). The classifier may then stream
     * a batch through the backend in chunks (classify.h). */
    int splittable;
};

struct cw_backend_s {
    const struct cw_backend_ops *ops;
    void *ctx;              /* the backend's private state */
    int device;             /* CUDA device index, 0 on CPU */
    cw_model_t *model;      /* bound model (not owned) */
    char desc[128];         /* human-readable: "cpu (OpenBLAS 0.3.21)", "cuda:0 (NVIDIA H200)" */
};

/* spec: "cpu", "cuda", "cuda:N" or "auto" (CUDA when a GPU is usable, else CPU).
 * Errors name what this build has, e.g. "backend 'cuda' not compiled in
 * (this build has: cpu)". */
cw_backend_t *cw_backend_new(const char *spec, char *errstr, size_t errstr_size);
void cw_backend_destroy(cw_backend_t *be);
/* Comma-separated backends compiled into this build, e.g. "cpu, cuda". */
const char *cw_backend_available(void);

int cw_backend_upload(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size);
int cw_backend_forward(cw_backend_t *be, const cw_batch_t *b, float *probs,
                       char *errstr, size_t errstr_size);
int cw_backend_train_step(cw_backend_t *be, const cw_batch_t *b, const cw_step_opts_t *opt,
                          double *loss, char *errstr, size_t errstr_size);
int cw_backend_download(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size);
int cw_backend_sync(cw_backend_t *be, char *errstr, size_t errstr_size);
int cw_backend_prepare(cw_backend_t *be, char *errstr, size_t errstr_size);
/* The backend's rows op as a hint (base NULL when it has none). */
void cw_backend_rows(const cw_backend_t *be, cw_rows_hint_t *hint);

/* The ops tables (backend_cpu.c, backend_cuda.cu). */
extern const struct cw_backend_ops cw_backend_cpu_ops;
/* Defined only in CUDA builds; backend.c references them under its one #if. */
extern const struct cw_backend_ops cw_backend_cuda_ops;
/* 1 when a CUDA device can be used, 0 otherwise (reason in errstr). */
int cw_cuda_available(char *errstr, size_t errstr_size);

#endif
