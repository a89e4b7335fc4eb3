/* backend_cuda.cu: the CUDA backend. Weights live on the GPU; a forward pass
 * is one fused kernel (EmbeddingBag mean + Linear + softmax) and a training
 * step is three kernels (forward+backward+sparse scatter, gradient norm,
 * clipped SGD update), so nothing but the batch and the loss crosses PCIe.
 *
 * Semantics are the CPU backend's (backend_cpu.c), up to float rounding:
 *   hidden = mean of the bag's emb rows (empty bag: zeros)
 *   logits = fc_w . hidden + fc_b, probs = softmax(logits)
 *   loss   = mean over bags of -log probs[label]
 *   grads  = d loss / d (emb, fc_w, fc_b); an id repeated in a bag, or used
 *            by several bags, gets the sum of its contributions
 *   norm   = sqrt(sum of squares of all gradient entries), computed from
 *            the summed rows, so it equals the dense norm
 *   clip   = clip_norm / (norm + 1e-6) when that is below 1 (torch's
 *            clip_grad_norm_), off when clip_norm is 0; then
 *            w -= (lr * clip) * g, the step rounded to float as the CPU does.
 *   checks   a bad batch (id out of range, offsets out of order, label not
 *            a class) fails the call with an error and changes nothing.
 * Float sums on the GPU run in another order (atomics), so results differ
 * from the CPU's in the last bits; tests/unit/test_cuda_parity.c bounds it.
 *
 * Layout of the work:
 *   forward   one warp per bag. Lanes load 32 ids at once and broadcast them
 *             with shuffles; each lane accumulates K strided columns of the
 *             rows in registers (coalesced 128-byte loads per row). fc_w and
 *             fc_b sit in shared memory when they fit (48 KiB), logits are
 *             warp reductions written straight into the output row, then a
 *             warp softmax in place. Ids and offsets are checked on the
 *             device (a bad id would otherwise fault and poison the context):
 *             the first error is recorded and the call fails cleanly.
 *   batches   the caller's ids/offsets are copied into pinned staging and
 *             sent with one cudaMemcpyAsync per chunk. Batches of 8192+ bags
 *             are cut into up to 4 chunks alternating over 2 streams, so the
 *             host copy of chunk c+1, the upload of chunk c and the kernel of
 *             chunk c-1 overlap; results come back chunk by chunk. forward()
 *             still returns only when every probability is in the caller's
 *             buffer.
 *   training  a dense gradient buffer for emb (nrows x dim, allocated on the
 *             first train_step only, so serving never pays for it) plus a
 *             "touched" mark per row. Bags atomically add their row
 *             gradients; the first bag to touch a row appends it to a list.
 *             The norm and the update then visit only listed rows, and the
 *             update zeroes them again, so between steps the buffer and the
 *             marks are all zero and a step costs O(touched rows), not
 *             O(nrows). A step that fails on the device (bad id or label)
 *             updates nothing and still cleans up; one that fails in CUDA
 *             marks the buffers dirty and the next step clears them whole.
 *
 * Hot reload: upload() with a new model allocates new device buffers, copies
 * the new weights on a dedicated stream and only then swaps them in and
 * frees the old ones; on any failure the old model stays bound and
 * untouched. The copy runs on the calling thread (a cw_backend_t is used by
 * one thread), so a worker that must keep serving during the copy builds a
 * second backend on a loader thread, uploads there and swaps backends.
 *
 * Every CUDA call is checked; errors read "cuda:N: what: CUDA's message". */
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "backend.h"
#include "util.h"
}

#define CW_CU_WARPS 8                      /* warps per block */
#define CW_CU_THREADS (CW_CU_WARPS * 32)
#define CW_CU_MAX_CHUNKS 4                 /* forward pipeline depth */
#ifndef CW_CU_CHUNK_MIN_BAGS
#define CW_CU_CHUNK_MIN_BAGS 4096          /* smaller chunks are not worth a launch */
#endif
#define CW_CU_SMEM_MAX (47 * 1024)         /* dynamic shared memory: 48 KiB without opt-in,
                                            * less the kernels' static shared variables */
#define CW_CU_ALIGN 256                    /* staging sub-buffer alignment */
#define CW_CU_FULL 0xffffffffu

enum { CW_CU_ERR_ID = 1, CW_CU_ERR_OFFSETS = 2, CW_CU_ERR_LABEL = 3 };

/* Per-call results the device reports back (one slot per forward chunk;
 * training uses slot 0). */
typedef struct cw_cu_scalars_s {
    double loss;                  /* sum over bags of -log p[label] */
    double sq;                    /* squared total gradient norm */
    unsigned int count;           /* touched embedding rows */
    int err;                      /* first error, CW_CU_ERR_*; 0 = none */
    unsigned long long err_at;    /* bag index (offsets, label) or id index */
    long long err_val;            /* the offending value */
} cw_cu_scalars_t;

typedef struct cw_cuda_ctx_s {
    int device;
    int sm_count;
    cudaStream_t st[2];           /* forward chunks alternate; training uses st[0] */
    cudaStream_t up;              /* weight uploads (hot reload) */
    cudaEvent_t ev[CW_CU_MAX_CHUNKS];

    /* resident weights */
    float *emb, *fc_w, *fc_b;
    uint64_t nrows;
    uint32_t dim, nlabels;

    /* batch staging: pinned host and device mirrors, same layout */
    unsigned char *h_in, *d_in;
    size_t h_in_cap, d_in_cap;
    float *h_out, *d_out;
    size_t h_out_cap, d_out_cap;
    cw_cu_scalars_t *h_sc, *d_sc; /* CW_CU_MAX_CHUNKS slots each */

    /* training state (lazy) */
    float *gemb;                  /* nrows x dim, all zero between steps */
    uint32_t *mark;               /* nrows, all zero between steps */
    uint64_t g_nrows;             /* rows gemb/mark were sized for (0 = none) */
    uint32_t g_dim;
    int g_dirty;                  /* a step died midway: clear gemb/mark whole */
    int32_t *rows;                /* touched row list, capacity rows_cap */
    size_t rows_cap;
    float *scratch;               /* per bag: hidden (dim) then logits (nlabels) */
    size_t scratch_cap;           /* floats */
    float *gfc;                   /* fc_w grads (nlabels x dim) then fc_b grads */
    size_t gfc_cap;               /* floats */
} cw_cuda_ctx_t;

/* ---------------------------------------------------------------- errors */

static void cu_seterr(char *errstr, size_t errstr_size, int dev, const char *what, cudaError_t e) {
    cw_seterr(errstr, errstr_size, "cuda:%d: %s: %s (%s)", dev, what, cudaGetErrorString(e),
              cudaGetErrorName(e));
}

/* Check a CUDA call; on failure fill errstr and jump to the function's cleanup. */
#define CU(dev, call, what)                                            \
    do {                                                               \
        cudaError_t e_ = (call);                                       \
        if (e_ != cudaSuccess) {                                       \
            cu_seterr(errstr, errstr_size, (dev), (what), e_);         \
            goto done;                                                 \
        }                                                              \
    } while (0)

/* ---------------------------------------------------------------- device code */

__device__ __forceinline__ float cw_cu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(CW_CU_FULL, v, o);
    return v;
}

__device__ __forceinline__ double cw_cu_warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(CW_CU_FULL, v, o);
    return v;
}

__device__ __forceinline__ float cw_cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(CW_CU_FULL, v, o));
    return v;
}

__device__ __forceinline__ void cw_cu_report(cw_cu_scalars_t *sc, int code, unsigned long long at,
                                             long long val) {
    if (atomicCAS(&sc->err, 0, code) == 0) {
        sc->err_at = at;
        sc->err_val = val;
    }
}

/* One chunk of a batch as the kernels see it. The chunk's offsets are the
 * batch's (absolute indices into the batch's ids); its ids start at batch
 * index id_base. */
struct cw_cu_bags {
    const uint32_t *offs;
    const int32_t *ids;
    uint32_t nb;              /* bags in the chunk */
    uint32_t id_base, id_end; /* the chunk's ids are batch ids [id_base, id_end) */
    uint64_t bag_base;        /* batch index of the chunk's first bag (errors) */
    uint64_t nrows;
};

/* Bag b's ids as chunk-local [*s, *e); a malformed bag is reported and
 * treated as empty so that nothing reads out of bounds. */
__device__ __forceinline__ void cw_cu_bag_range(const cw_cu_bags &g, uint32_t b, uint32_t *s, uint32_t *e,
                                                cw_cu_scalars_t *sc) {
    uint32_t start = g.offs[b];
    uint32_t end = b + 1 < g.nb ? g.offs[b + 1] : g.id_end;
    if (start < g.id_base || start > end || end > g.id_end) {
        cw_cu_report(sc, CW_CU_ERR_OFFSETS, g.bag_base + b, (long long)start);
        *s = *e = 0;
        return;
    }
    *s = start - g.id_base;
    *e = end - g.id_base;
}

/* Sum of the bag's rows over columns d0 + lane + 32k (k < K) into acc.
 * Called by a whole warp (s, e, d0 uniform). Ids are loaded 32 at a time,
 * checked, and broadcast by shuffle; a bad id is reported and read as row 0. */
template <int K>
__device__ __forceinline__ void cw_cu_bag_sum(const cw_cu_bags &g, uint32_t s, uint32_t e,
                                              const float *__restrict__ emb, uint32_t dim, uint32_t d0,
                                              unsigned lane, cw_cu_scalars_t *sc, float acc[K]) {
    for (uint32_t base = s; base < e; base += 32) {
        uint32_t i = base + lane;
        int32_t my = 0;
        if (i < e) {
            my = g.ids[i];
            if (my < 0 || (uint64_t)my >= g.nrows) {
                cw_cu_report(sc, CW_CU_ERR_ID, (unsigned long long)g.id_base + i, my);
                my = 0;
            }
        }
        uint32_t cnt = e - base < 32 ? e - base : 32;
/* Unrolled for memory parallelism; deeper unrolling at K >= 4 spills. */
#pragma unroll(K <= 2 ? 4 : 2)
        for (uint32_t t = 0; t < cnt; t++) {
            int32_t id = __shfl_sync(CW_CU_FULL, my, (int)t);
            const float *r = emb + (size_t)id * dim + d0 + lane;
#pragma unroll
            for (int k = 0; k < K; k++)
                if (d0 + lane + 32u * k < dim) acc[k] += __ldg(r + 32 * k);
        }
    }
}

/* Softmax of one row in place, by a warp (the CPU's order: max, exp, scale by 1/sum). */
__device__ __forceinline__ void cw_cu_softmax_row(float *row, uint32_t n, unsigned lane) {
    float mx = -INFINITY;
    for (uint32_t j = lane; j < n; j += 32) mx = fmaxf(mx, row[j]);
    mx = cw_cu_warp_max(mx);
    float s = 0.f;
    for (uint32_t j = lane; j < n; j += 32) {
        float v = expf(row[j] - mx);
        row[j] = v;
        s += v;
    }
    s = cw_cu_warp_sum(s);
    float inv = 1.f / s;
    for (uint32_t j = lane; j < n; j += 32) row[j] *= inv;
}

struct cw_cu_fwd_args {
    cw_cu_bags g;
    const float *emb, *fc_w, *fc_b;
    uint32_t dim, nlabels;
    int fc_smem;      /* stage fc_w, fc_b in shared memory */
    float *out;       /* nb x nlabels probabilities */
    cw_cu_scalars_t *sc;
};

/* Fused forward: one warp per bag, grid-strided. */
template <int K>
__global__ void __launch_bounds__(CW_CU_THREADS) cw_cu_forward_kernel(cw_cu_fwd_args a) {
    extern __shared__ __align__(16) unsigned char cw_cu_smem[];
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const size_t nw = (size_t)a.nlabels * a.dim;
    const float *W = a.fc_w, *B = a.fc_b;
    if (a.fc_smem) {
        float *sw = (float *)cw_cu_smem;
        for (size_t i = threadIdx.x; i < nw; i += blockDim.x) sw[i] = a.fc_w[i];
        for (uint32_t j = threadIdx.x; j < a.nlabels; j += blockDim.x) sw[nw + j] = a.fc_b[j];
        __syncthreads();
        W = sw;
        B = sw + nw;
    }
    for (uint32_t b = blockIdx.x * CW_CU_WARPS + warp; b < a.g.nb; b += gridDim.x * CW_CU_WARPS) {
        uint32_t s, e;
        cw_cu_bag_range(a.g, b, &s, &e, a.sc);
        float *row = a.out + (size_t)b * a.nlabels;
        const float inv = e > s ? 1.f / (float)(e - s) : 0.f;
        for (uint32_t j = lane; j < a.nlabels; j += 32) row[j] = B[j];
        __syncwarp();
        for (uint32_t d0 = 0; d0 < a.dim; d0 += 32u * K) {
            float acc[K];
#pragma unroll
            for (int k = 0; k < K; k++) acc[k] = 0.f;
            cw_cu_bag_sum<K>(a.g, s, e, a.emb, a.dim, d0, lane, a.sc, acc);
#pragma unroll
            for (int k = 0; k < K; k++) acc[k] *= inv;
            for (uint32_t j = 0; j < a.nlabels; j++) {
                const float *w = W + (size_t)j * a.dim + d0 + lane;
                float p = 0.f;
#pragma unroll
                for (int k = 0; k < K; k++)
                    if (d0 + lane + 32u * k < a.dim) p += w[32 * k] * acc[k];
                p = cw_cu_warp_sum(p);
                if (lane == 0) row[j] += p;
            }
        }
        __syncwarp();
        cw_cu_softmax_row(row, a.nlabels, lane);
        __syncwarp();
    }
}

struct cw_cu_train_args {
    cw_cu_bags g;
    const int32_t *labels;
    const float *emb, *fc_w, *fc_b;
    uint32_t dim, nlabels;
    int smem;          /* stage fc_w, fc_b and accumulate their grads in shared memory */
    float *scratch;    /* nb x (dim + nlabels) */
    float *gemb;
    uint32_t *mark;
    int32_t *rows;
    float *gfc;        /* nlabels x dim + nlabels, zeroed by the host */
    cw_cu_scalars_t *sc;
};

/* Forward, loss, backward and the sparse scatter of a training batch: one
 * warp per bag, grid-strided. Per bag: hidden -> logits -> log-softmax ->
 * dlogits = (p - onehot) / B -> fc grads (block-local, flushed once per
 * block) -> dhidden = fc_w^T dlogits / len -> atomically added to every
 * row of the bag, the row appended to the touched list on first touch. */
__global__ void __launch_bounds__(CW_CU_THREADS) cw_cu_train_kernel(cw_cu_train_args a) {
    extern __shared__ __align__(16) unsigned char cw_cu_smem[];
    __shared__ double s_loss;
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const uint32_t dim = a.dim, nl = a.nlabels;
    const size_t nw = (size_t)nl * dim, nfc = nw + nl;
    const float *W = a.fc_w, *Bv = a.fc_b;
    float *G = a.gfc;
    if (a.smem) {
        float *sw = (float *)cw_cu_smem;
        float *sg = sw + nfc;
        for (size_t i = threadIdx.x; i < nw; i += blockDim.x) sw[i] = a.fc_w[i];
        for (uint32_t j = threadIdx.x; j < nl; j += blockDim.x) sw[nw + j] = a.fc_b[j];
        for (size_t i = threadIdx.x; i < nfc; i += blockDim.x) sg[i] = 0.f;
        W = sw;
        Bv = sw + nw;
        G = sg;
    }
    if (threadIdx.x == 0) s_loss = 0.0;
    __syncthreads();
    const float inv_b = 1.f / (float)a.g.nb;
    for (uint32_t b = blockIdx.x * CW_CU_WARPS + warp; b < a.g.nb; b += gridDim.x * CW_CU_WARPS) {
        uint32_t s, e;
        cw_cu_bag_range(a.g, b, &s, &e, a.sc);
        int32_t y = a.labels[b];
        if (y < 0 || (uint32_t)y >= nl) {
            if (lane == 0) cw_cu_report(a.sc, CW_CU_ERR_LABEL, a.g.bag_base + b, y);
            y = 0;
        }
        float *h = a.scratch + (size_t)b * (dim + nl);
        float *lg = h + dim;
        const float inv = e > s ? 1.f / (float)(e - s) : 0.f;

        /* hidden: lane owns columns d == lane (mod 32), in h[] */
        for (uint32_t d0 = 0; d0 < dim; d0 += 128) {
            float acc[4] = {0.f, 0.f, 0.f, 0.f};
            cw_cu_bag_sum<4>(a.g, s, e, a.emb, dim, d0, lane, a.sc, acc);
#pragma unroll
            for (int k = 0; k < 4; k++)
                if (d0 + lane + 32u * k < dim) h[d0 + lane + 32u * k] = acc[k] * inv;
        }
        __syncwarp();
        /* logits */
        for (uint32_t j = 0; j < nl; j++) {
            float p = 0.f;
            for (uint32_t d = lane; d < dim; d += 32) p += W[(size_t)j * dim + d] * h[d];
            p = cw_cu_warp_sum(p);
            if (lane == 0) lg[j] = p + Bv[j];
        }
        __syncwarp();
        /* log-softmax and loss */
        float mx = -INFINITY;
        for (uint32_t j = lane; j < nl; j += 32) mx = fmaxf(mx, lg[j]);
        mx = cw_cu_warp_max(mx);
        float se = 0.f;
        for (uint32_t j = lane; j < nl; j += 32) se += expf(lg[j] - mx);
        se = cw_cu_warp_sum(se);
        const float ly = lg[y];
        if (lane == 0) atomicAdd(&s_loss, (double)(logf(se) + mx - ly));
        __syncwarp();
        /* dlogits, fc_b grads */
        const float inv_se = 1.f / se;
        for (uint32_t j = lane; j < nl; j += 32) {
            float dl = expf(lg[j] - mx) * inv_se * inv_b;
            if ((int32_t)j == y) dl -= inv_b;
            lg[j] = dl;
            atomicAdd(&G[nw + j], dl);
        }
        __syncwarp();
        /* fc_w grads and the hidden gradient (scaled by 1/len: the mean) */
        for (uint32_t d = lane; d < dim; d += 32) {
            const float hd = h[d];
            float dh = 0.f;
            for (uint32_t j = 0; j < nl; j++) {
                const float dl = lg[j];
                atomicAdd(&G[(size_t)j * dim + d], dl * hd);
                dh += W[(size_t)j * dim + d] * dl;
            }
            h[d] = dh * inv;
        }
        __syncwarp();
        /* scatter into the touched rows */
        for (uint32_t base = s; base < e; base += 32) {
            uint32_t i = base + lane;
            int32_t my = 0;
            if (i < e) {
                my = a.g.ids[i];
                if (my < 0 || (uint64_t)my >= a.g.nrows) my = 0; /* reported by the sum above */
                if (atomicExch(&a.mark[my], 1u) == 0u) {
                    unsigned pos = atomicAdd(&a.sc->count, 1u);
                    a.rows[pos] = my;
                }
            }
            uint32_t cnt = e - base < 32 ? e - base : 32;
            for (uint32_t t = 0; t < cnt; t++) {
                int32_t id = __shfl_sync(CW_CU_FULL, my, (int)t);
                float *gr = a.gemb + (size_t)id * dim;
                for (uint32_t d = lane; d < dim; d += 32) atomicAdd(&gr[d], h[d]);
            }
        }
        __syncwarp();
    }
    __syncthreads();
    if (a.smem) {
        for (size_t i = threadIdx.x; i < nfc; i += blockDim.x)
            if (G[i] != 0.f) atomicAdd(&a.gfc[i], G[i]);
    }
    if (threadIdx.x == 0 && s_loss != 0.0) atomicAdd(&a.sc->loss, s_loss);
}

/* Squared norm of the gradient: touched emb rows (each once, already summed)
 * and the fc grads. Grid-strided over count*dim + nfc entries. */
__global__ void __launch_bounds__(CW_CU_THREADS)
cw_cu_norm_kernel(const float *gemb, const int32_t *rows, const float *gfc, uint32_t dim, uint64_t nfc,
                  cw_cu_scalars_t *sc) {
    __shared__ double part[CW_CU_WARPS];
    const uint64_t ne = (uint64_t)sc->count * dim, total = ne + nfc;
    double acc = 0.0;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (uint64_t)gridDim.x * blockDim.x) {
        float v = i < ne ? gemb[(size_t)rows[i / dim] * dim + i % dim] : gfc[i - ne];
        acc += (double)v * (double)v;
    }
    acc = cw_cu_warp_sum_d(acc);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < CW_CU_WARPS; w++) t += part[w];
        if (t != 0.0) atomicAdd(&sc->sq, t);
    }
}

/* The step size after clipping, as backend_cpu.c computes it (torch's
 * clip_grad_norm_: grads scaled by clip / (norm + 1e-6) when that is < 1). */
__device__ __forceinline__ float cw_cu_step(double sq, float lr, float clip) {
    if (clip <= 0.f) return lr;
    double coef = (double)clip / (sqrt(sq) + 1e-6);
    return coef < 1.0 ? (float)((double)lr * coef) : lr;
}

/* SGD on touched rows and fc; zero the row grads and marks for the next step.
 * Nothing is updated when the step reported a bad input. */
__global__ void __launch_bounds__(CW_CU_THREADS)
cw_cu_update_kernel(float *emb, float *fc_w, float *fc_b, float *gemb, uint32_t *mark, const int32_t *rows,
                    const float *gfc, uint32_t dim, uint64_t nw, uint64_t nfc, float lr, float clip,
                    const cw_cu_scalars_t *sc) {
    const uint64_t ne = (uint64_t)sc->count * dim, total = ne + nfc;
    const bool apply = sc->err == 0;
    const float step = cw_cu_step(sc->sq, lr, clip);
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (uint64_t)gridDim.x * blockDim.x) {
        if (i < ne) {
            const int32_t r = rows[i / dim];
            const uint32_t d = (uint32_t)(i % dim);
            const size_t p = (size_t)r * dim + d;
            if (apply) emb[p] -= step * gemb[p];
            gemb[p] = 0.f;
            if (d == 0) mark[r] = 0u;
        } else if (apply) {
            const uint64_t k = i - ne;
            if (k < nw)
                fc_w[k] -= step * gfc[k];
            else
                fc_b[k - nw] -= step * gfc[k];
        }
    }
}

/* ---------------------------------------------------------------- host helpers */

static size_t cw_cu_align(size_t n) { return (n + CW_CU_ALIGN - 1) & ~(size_t)(CW_CU_ALIGN - 1); }

static size_t cw_cu_newcap(size_t cap, size_t need) {
    size_t n = cap + cap / 2;
    if (n < need) n = need;
    if (n < 65536) n = 65536;
    return n;
}

/* Grow pinned host memory (contents are not kept). flags: cudaHostAlloc's;
 * write-combined for buffers the host only writes (faster over PCIe). */
static int cw_cu_grow_host(int dev, void **p, size_t *cap, size_t need, unsigned flags, const char *what,
                           char *errstr, size_t errstr_size) {
    int rc = -1;
    size_t n = cw_cu_newcap(*cap, need);
    if (need <= *cap) return 0;
    if (*p) CU(dev, cudaFreeHost(*p), "cudaFreeHost");
    *p = NULL;
    *cap = 0;
    CU(dev, cudaHostAlloc(p, n, flags), what);
    *cap = n;
    rc = 0;
done:
    return rc;
}

/* Grow device memory (contents are not kept). Callers have synchronized. */
static int cw_cu_grow_dev(int dev, void **p, size_t *cap, size_t need, const char *what, char *errstr,
                          size_t errstr_size) {
    int rc = -1;
    size_t n = cw_cu_newcap(*cap, need);
    if (need <= *cap) return 0;
    if (*p) CU(dev, cudaFree(*p), "cudaFree");
    *p = NULL;
    *cap = 0;
    CU(dev, cudaMalloc(p, n), what);
    *cap = n;
    rc = 0;
done:
    return rc;
}

static void cw_cu_free_train(cw_cuda_ctx_t *c) {
    cudaFree(c->gemb);
    cudaFree(c->mark);
    cudaFree(c->rows);
    cudaFree(c->scratch);
    cudaFree(c->gfc);
    c->gemb = NULL;
    c->mark = NULL;
    c->rows = NULL;
    c->scratch = NULL;
    c->gfc = NULL;
    c->g_nrows = 0;
    c->g_dim = 0;
    c->g_dirty = 0;
    c->rows_cap = c->scratch_cap = c->gfc_cap = 0;
}

/* Release everything; safe on a partly built context. Errors are ignored:
 * there is nothing useful to do with them while tearing down. */
static void cw_cu_ctx_free(cw_cuda_ctx_t *c) {
    if (!c) return;
    if (cudaSetDevice(c->device) == cudaSuccess) {
        for (int i = 0; i < 2; i++)
            if (c->st[i]) cudaStreamSynchronize(c->st[i]);
        if (c->up) cudaStreamSynchronize(c->up);
        cw_cu_free_train(c);
        cudaFree(c->emb);
        cudaFree(c->fc_w);
        cudaFree(c->fc_b);
        cudaFree(c->d_in);
        cudaFree(c->d_out);
        cudaFree(c->d_sc);
        cudaFreeHost(c->h_in);
        cudaFreeHost(c->h_out);
        cudaFreeHost(c->h_sc);
        for (int i = 0; i < CW_CU_MAX_CHUNKS; i++)
            if (c->ev[i]) cudaEventDestroy(c->ev[i]);
        for (int i = 0; i < 2; i++)
            if (c->st[i]) cudaStreamDestroy(c->st[i]);
        if (c->up) cudaStreamDestroy(c->up);
    }
    cw_free(c);
}

/* Shared memory bytes for the kernels, 0 when the fc weights do not fit. */
static size_t cw_cu_fwd_smem(const cw_cuda_ctx_t *c) {
    size_t n = ((size_t)c->nlabels * c->dim + c->nlabels) * sizeof(float);
    return n <= CW_CU_SMEM_MAX ? n : 0;
}

static size_t cw_cu_train_smem(const cw_cuda_ctx_t *c) {
    size_t n = 2 * ((size_t)c->nlabels * c->dim + c->nlabels) * sizeof(float);
    return n <= CW_CU_SMEM_MAX ? n : 0;
}

static unsigned cw_cu_blocks(uint64_t work_items, uint64_t per_block, unsigned cap) {
    uint64_t n = (work_items + per_block - 1) / per_block;
    if (n < 1) n = 1;
    if (n > cap) n = cap;
    return (unsigned)n;
}

/* The checks that protect the host side; the device checks every bag and id. */
static int cw_cu_check_batch(const cw_batch_t *b, char *errstr, size_t errstr_size) {
    if (b->nbags > UINT32_MAX || b->nids > UINT32_MAX) {
        cw_seterr(errstr, errstr_size, "cuda: batch too large (%zu bags, %zu ids; at most 2^32-1 each)",
                  b->nbags, b->nids);
        return -1;
    }
    if (!b->offsets || (b->nids > 0 && !b->ids)) {
        cw_seterr(errstr, errstr_size, "cuda: batch without %s", b->offsets ? "ids" : "offsets");
        return -1;
    }
    if (b->offsets[0] != 0) {
        cw_seterr(errstr, errstr_size, "cuda: batch offsets[0] is %u, must be 0", b->offsets[0]);
        return -1;
    }
    return 0;
}

static void cw_cu_device_error(const cw_cu_scalars_t *sc, uint64_t nrows, uint32_t nlabels, char *errstr,
                               size_t errstr_size) {
    switch (sc->err) {
    case CW_CU_ERR_ID:
        cw_seterr(errstr, errstr_size, "cuda: batch ids[%llu] = %lld is out of range (model has %llu rows)",
                  sc->err_at, sc->err_val, (unsigned long long)nrows);
        break;
    case CW_CU_ERR_OFFSETS:
        cw_seterr(errstr, errstr_size, "cuda: batch bag %llu (offsets[%llu] = %lld): offsets out of order or beyond nids",
                  sc->err_at, sc->err_at, sc->err_val);
        break;
    case CW_CU_ERR_LABEL:
        cw_seterr(errstr, errstr_size, "cuda: batch labels[%llu] = %lld is not a class (model has %u)",
                  sc->err_at, sc->err_val, nlabels);
        break;
    default:
        cw_seterr(errstr, errstr_size, "cuda: device reported error %d", sc->err);
        break;
    }
}

/* Any kernel image for the device? (The build's archs may not cover it.) */
static cudaError_t cw_cu_probe_kernels(void) {
    cudaFuncAttributes fa;
    return cudaFuncGetAttributes(&fa, cw_cu_update_kernel);
}

/* ---------------------------------------------------------------- availability */

static int cw_cu_count(int *count, char *errstr, size_t errstr_size) {
    int drv = 0, rt = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e == cudaSuccess && *count > 0) return 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    if (e == cudaSuccess || e == cudaErrorNoDevice) {
        cw_seterr(errstr, errstr_size, "no CUDA device found");
    } else if (e == cudaErrorInsufficientDriver && drv == 0) {
        cw_seterr(errstr, errstr_size, "no NVIDIA driver installed (libcuda not found; %s)",
                  cudaGetErrorString(e));
    } else if (e == cudaErrorInsufficientDriver) {
        cw_seterr(errstr, errstr_size, "NVIDIA driver supports CUDA %d.%d, this build needs %d.%d",
                  drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    } else {
        cw_seterr(errstr, errstr_size, "CUDA unusable: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    *count = 0;
    return -1;
}

/* Device usable by this build? Sets the calling thread's current device. */
static int cw_cu_device_ok(int dev, cudaDeviceProp *prop, char *errstr, size_t errstr_size) {
    int rc = -1;
    cudaError_t e;
    CU(dev, cudaGetDeviceProperties(prop, dev), "cudaGetDeviceProperties");
    if (prop->major < 6) {
        cw_seterr(errstr, errstr_size, "cuda:%d (%s): compute capability %d.%d, need 6.0 or newer", dev,
                  prop->name, prop->major, prop->minor);
        goto done;
    }
    CU(dev, cudaSetDevice(dev), "cudaSetDevice");
    e = cw_cu_probe_kernels();
    if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction) {
        cw_seterr(errstr, errstr_size,
                  "cuda:%d (%s, compute capability %d.%d): this build has no kernels for it "
                  "(rebuild with CMAKE_CUDA_ARCHITECTURES=%d%d)",
                  dev, prop->name, prop->major, prop->minor, prop->major, prop->minor);
        goto done;
    }
    CU(dev, e, "loading kernels");
    rc = 0;
done:
    return rc;
}

extern "C" int cw_cuda_available(char *errstr, size_t errstr_size) {
    int count = 0, prev = -1, ok = 0;
    cudaDeviceProp prop;
    if (cw_cu_count(&count, errstr, errstr_size) != 0) return 0;
    if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    ok = cw_cu_device_ok(0, &prop, errstr, errstr_size) == 0;
    if (prev >= 0) cudaSetDevice(prev);
    return ok;
}

/* ---------------------------------------------------------------- ops */

static int cw_cu_init(cw_backend_t *be, int device, char *errstr, size_t errstr_size) {
    int rc = -1, count = 0;
    cudaDeviceProp prop;
    cw_cuda_ctx_t *c = NULL;
    if (cw_cu_count(&count, errstr, errstr_size) != 0) {
        char why[200];
        snprintf(why, sizeof(why), "%s", errstr);
        cw_seterr(errstr, errstr_size, "device 'cuda:%d': %s", device, why);
        goto done;
    }
    if (device < 0 || device >= count) {
        cw_seterr(errstr, errstr_size, "device 'cuda:%d': this machine has %d CUDA device%s (cuda:0%s)",
                  device, count, count == 1 ? "" : "s", count == 1 ? "" : "..");
        goto done;
    }
    if (cw_cu_device_ok(device, &prop, errstr, errstr_size) != 0) goto done;
    c = (cw_cuda_ctx_t *)cw_calloc(1, sizeof(*c));
    c->device = device;
    c->sm_count = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    for (int i = 0; i < 2; i++)
        CU(device, cudaStreamCreateWithFlags(&c->st[i], cudaStreamNonBlocking), "cudaStreamCreate");
    CU(device, cudaStreamCreateWithFlags(&c->up, cudaStreamNonBlocking), "cudaStreamCreate");
    for (int i = 0; i < CW_CU_MAX_CHUNKS; i++)
        CU(device, cudaEventCreateWithFlags(&c->ev[i], cudaEventDisableTiming), "cudaEventCreate");
    CU(device, cudaHostAlloc((void **)&c->h_sc, CW_CU_MAX_CHUNKS * sizeof(cw_cu_scalars_t), cudaHostAllocDefault),
       "cudaHostAlloc(scalars)");
    CU(device, cudaMalloc((void **)&c->d_sc, CW_CU_MAX_CHUNKS * sizeof(cw_cu_scalars_t)), "cudaMalloc(scalars)");
    /* prop.name is up to 255 bytes; desc keeps what fits. */
    snprintf(be->desc, sizeof(be->desc), "cuda:%d (%.100s)", device, prop.name);
    be->ctx = c;
    c = NULL;
    rc = 0;
done:
    cw_cu_ctx_free(c);
    return rc;
}

static void cw_cu_destroy(cw_backend_t *be) {
    cw_cu_ctx_free((cw_cuda_ctx_t *)be->ctx);
    be->ctx = NULL;
}

static int cw_cu_upload(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size) {
    cw_cuda_ctx_t *c = (cw_cuda_ctx_t *)be->ctx;
    const int dev = c->device;
    int rc = -1;
    float *emb = NULL, *fc_w = NULL, *fc_b = NULL;
    const size_t ne = (size_t)m->nrows * m->dim, nw = (size_t)m->nlabels * m->dim;
    if (m->dim == 0 || m->nlabels == 0 || m->nrows == 0 || m->nrows > (uint64_t)INT32_MAX + 1) {
        cw_seterr(errstr, errstr_size, "cuda: cannot upload a model with dim %u, %u labels, %llu rows",
                  m->dim, m->nlabels, (unsigned long long)m->nrows);
        return -1;
    }
    CU(dev, cudaSetDevice(dev), "cudaSetDevice");
    CU(dev, cudaMalloc((void **)&emb, ne * sizeof(float)), "cudaMalloc(embeddings)");
    CU(dev, cudaMalloc((void **)&fc_w, nw * sizeof(float)), "cudaMalloc(fc weights)");
    CU(dev, cudaMalloc((void **)&fc_b, m->nlabels * sizeof(float)), "cudaMalloc(fc bias)");
    CU(dev, cudaMemcpyAsync(emb, m->emb, ne * sizeof(float), cudaMemcpyHostToDevice, c->up), "upload embeddings");
    CU(dev, cudaMemcpyAsync(fc_w, m->fc_w, nw * sizeof(float), cudaMemcpyHostToDevice, c->up), "upload fc weights");
    CU(dev, cudaMemcpyAsync(fc_b, m->fc_b, m->nlabels * sizeof(float), cudaMemcpyHostToDevice, c->up),
       "upload fc bias");
    CU(dev, cudaStreamSynchronize(c->up), "upload");
    /* New weights are complete: nothing may still read the old ones. */
    CU(dev, cudaStreamSynchronize(c->st[0]), "cudaStreamSynchronize");
    CU(dev, cudaStreamSynchronize(c->st[1]), "cudaStreamSynchronize");
    {
        float *old_emb = c->emb, *old_w = c->fc_w, *old_b = c->fc_b;
        c->emb = emb;
        c->fc_w = fc_w;
        c->fc_b = fc_b;
        emb = old_emb;
        fc_w = old_w;
        fc_b = old_b; /* freed below */
    }
    if (c->g_nrows != m->nrows || c->g_dim != m->dim || c->nlabels != m->nlabels) cw_cu_free_train(c);
    c->nrows = m->nrows;
    c->dim = m->dim;
    c->nlabels = m->nlabels;
    rc = 0;
done:
    /* On success these are the old weights, on failure the half-made new ones. */
    cudaFree(emb);
    cudaFree(fc_w);
    cudaFree(fc_b);
    return rc;
}

static void cw_cu_launch_forward(const cw_cuda_ctx_t *c, const cw_cu_fwd_args &a, cudaStream_t st) {
    const unsigned blocks = cw_cu_blocks(a.g.nb, CW_CU_WARPS, (unsigned)c->sm_count * 16);
    const size_t smem = a.fc_smem ? cw_cu_fwd_smem(c) : 0;
    if (c->dim <= 32)
        cw_cu_forward_kernel<1><<<blocks, CW_CU_THREADS, smem, st>>>(a);
    else if (c->dim <= 64)
        cw_cu_forward_kernel<2><<<blocks, CW_CU_THREADS, smem, st>>>(a);
    else if (c->dim <= 128)
        cw_cu_forward_kernel<4><<<blocks, CW_CU_THREADS, smem, st>>>(a);
    else
        cw_cu_forward_kernel<8><<<blocks, CW_CU_THREADS, smem, st>>>(a);
}

static int cw_cu_forward(cw_backend_t *be, const cw_batch_t *b, float *probs, char *errstr, size_t errstr_size) {
    cw_cuda_ctx_t *c = (cw_cuda_ctx_t *)be->ctx;
    const int dev = c->device;
    const size_t nl = c->nlabels;
    int rc = -1, nch = 1, launched = 0;
    size_t b0[CW_CU_MAX_CHUNKS + 1], i0[CW_CU_MAX_CHUNKS + 1], in_off[CW_CU_MAX_CHUNKS + 1];
    size_t in_bytes = 0;
    if (b->nbags == 0) return 0;
    if (cw_cu_check_batch(b, errstr, errstr_size) != 0) return -1;
    if (b->nbags >= 2 * CW_CU_CHUNK_MIN_BAGS) {
        size_t n = b->nbags / CW_CU_CHUNK_MIN_BAGS;
        nch = (int)(n < CW_CU_MAX_CHUNKS ? n : CW_CU_MAX_CHUNKS);
    }
    /* Chunk boundaries by bags; their id ranges come from the offsets, which
     * are checked here because the host copies by them. */
    for (int k = 0; k <= nch; k++) {
        b0[k] = b->nbags * (size_t)k / (size_t)nch;
        i0[k] = b0[k] < b->nbags ? b->offsets[b0[k]] : b->nids;
        if (k > 0 && (i0[k] < i0[k - 1] || i0[k] > b->nids)) {
            cw_seterr(errstr, errstr_size, "cuda: batch offsets[%zu] = %zu is out of order or beyond nids %zu",
                      b0[k], i0[k], b->nids);
            return -1;
        }
    }
    for (int k = 0; k < nch; k++) {
        in_off[k] = in_bytes;
        in_bytes += cw_cu_align((b0[k + 1] - b0[k]) * sizeof(uint32_t)) + cw_cu_align((i0[k + 1] - i0[k]) * sizeof(int32_t));
    }
    in_off[nch] = in_bytes;
    CU(dev, cudaSetDevice(dev), "cudaSetDevice");
    if (cw_cu_grow_host(dev, (void **)&c->h_in, &c->h_in_cap, in_bytes, cudaHostAllocWriteCombined,
                        "cudaHostAlloc(batch)", errstr, errstr_size) ||
        cw_cu_grow_dev(dev, (void **)&c->d_in, &c->d_in_cap, in_bytes, "cudaMalloc(batch)", errstr, errstr_size) ||
        cw_cu_grow_host(dev, (void **)&c->h_out, &c->h_out_cap, b->nbags * nl * sizeof(float),
                        cudaHostAllocDefault, "cudaHostAlloc(probs)", errstr, errstr_size) ||
        cw_cu_grow_dev(dev, (void **)&c->d_out, &c->d_out_cap, b->nbags * nl * sizeof(float), "cudaMalloc(probs)",
                       errstr, errstr_size))
        goto done;
    for (int k = 0; k < nch; k++) {
        cudaStream_t st = c->st[k & 1];
        const size_t nb = b0[k + 1] - b0[k], ni = i0[k + 1] - i0[k];
        const size_t off_bytes = cw_cu_align(nb * sizeof(uint32_t));
        unsigned char *h = c->h_in + in_off[k], *d = c->d_in + in_off[k];
        cw_cu_fwd_args a;
        memcpy(h, b->offsets + b0[k], nb * sizeof(uint32_t));
        if (ni) memcpy(h + off_bytes, b->ids + i0[k], ni * sizeof(int32_t));
        launched = 1;
        CU(dev, cudaMemsetAsync(c->d_sc + k, 0, sizeof(cw_cu_scalars_t), st), "clear status");
        CU(dev, cudaMemcpyAsync(d, h, off_bytes + ni * sizeof(int32_t), cudaMemcpyHostToDevice, st), "copy batch");
        a.g.offs = (const uint32_t *)d;
        a.g.ids = (const int32_t *)(d + off_bytes);
        a.g.nb = (uint32_t)nb;
        a.g.id_base = (uint32_t)i0[k];
        a.g.id_end = (uint32_t)i0[k + 1];
        a.g.bag_base = b0[k];
        a.g.nrows = c->nrows;
        a.emb = c->emb;
        a.fc_w = c->fc_w;
        a.fc_b = c->fc_b;
        a.dim = c->dim;
        a.nlabels = c->nlabels;
        a.fc_smem = cw_cu_fwd_smem(c) > 0;
        a.out = c->d_out + b0[k] * nl;
        a.sc = c->d_sc + k;
        cw_cu_launch_forward(c, a, st);
        CU(dev, cudaGetLastError(), "forward kernel launch");
        CU(dev, cudaMemcpyAsync(c->h_out + b0[k] * nl, a.out, nb * nl * sizeof(float), cudaMemcpyDeviceToHost, st),
           "copy probabilities");
        CU(dev, cudaMemcpyAsync(c->h_sc + k, c->d_sc + k, sizeof(cw_cu_scalars_t), cudaMemcpyDeviceToHost, st),
           "copy status");
        CU(dev, cudaEventRecord(c->ev[k], st), "cudaEventRecord");
    }
    for (int k = 0; k < nch; k++) {
        CU(dev, cudaEventSynchronize(c->ev[k]), "forward");
        if (c->h_sc[k].err) {
            cw_cu_device_error(&c->h_sc[k], c->nrows, c->nlabels, errstr, errstr_size);
            goto done;
        }
        memcpy(probs + b0[k] * nl, c->h_out + b0[k] * nl, (b0[k + 1] - b0[k]) * nl * sizeof(float));
    }
    rc = 0;
done:
    if (rc != 0 && launched) {
        /* Leave nothing in flight that reads or writes the staging buffers. */
        cudaStreamSynchronize(c->st[0]);
        cudaStreamSynchronize(c->st[1]);
    }
    return rc;
}

/* Size the training buffers for this batch; gemb/mark once per model shape. */
static int cw_cu_train_buffers(cw_cuda_ctx_t *c, const cw_batch_t *b, char *errstr, size_t errstr_size) {
    const int dev = c->device;
    int rc = -1;
    const size_t nfc = (size_t)c->nlabels * c->dim + c->nlabels;
    if (!c->gemb) {
        CU(dev, cudaMalloc((void **)&c->gemb, (size_t)c->nrows * c->dim * sizeof(float)),
           "cudaMalloc(embedding gradients)");
        CU(dev, cudaMalloc((void **)&c->mark, (size_t)c->nrows * sizeof(uint32_t)), "cudaMalloc(row marks)");
        c->g_nrows = c->nrows;
        c->g_dim = c->dim;
        c->g_dirty = 1;
    }
    if (c->g_dirty) {
        CU(dev, cudaMemsetAsync(c->gemb, 0, (size_t)c->nrows * c->dim * sizeof(float), c->st[0]),
           "clear embedding gradients");
        CU(dev, cudaMemsetAsync(c->mark, 0, (size_t)c->nrows * sizeof(uint32_t), c->st[0]), "clear row marks");
        CU(dev, cudaStreamSynchronize(c->st[0]), "clear gradients");
        c->g_dirty = 0;
    }
    if (cw_cu_grow_dev(dev, (void **)&c->rows, &c->rows_cap, (b->nids + 1) * sizeof(int32_t), "cudaMalloc(rows)",
                       errstr, errstr_size) ||
        cw_cu_grow_dev(dev, (void **)&c->scratch, &c->scratch_cap,
                       b->nbags * ((size_t)c->dim + c->nlabels) * sizeof(float), "cudaMalloc(scratch)", errstr,
                       errstr_size) ||
        cw_cu_grow_dev(dev, (void **)&c->gfc, &c->gfc_cap, nfc * sizeof(float), "cudaMalloc(fc gradients)", errstr,
                       errstr_size))
        goto done;
    rc = 0;
done:
    return rc;
}

static int cw_cu_train_step(cw_backend_t *be, const cw_batch_t *b, const cw_step_opts_t *opt, double *loss,
                            char *errstr, size_t errstr_size) {
    cw_cuda_ctx_t *c = (cw_cuda_ctx_t *)be->ctx;
    const int dev = c->device;
    cudaStream_t st = c->st[0];
    int rc = -1, launched = 0;
    const size_t nb = b->nbags, ni = b->nids;
    const size_t nw = (size_t)c->nlabels * c->dim, nfc = nw + c->nlabels;
    const size_t off_bytes = cw_cu_align(nb * sizeof(uint32_t)), lab_bytes = cw_cu_align(nb * sizeof(int32_t));
    const size_t in_bytes = off_bytes + lab_bytes + ni * sizeof(int32_t);
    cw_cu_train_args a;
    size_t smem;
    unsigned blocks;
    if (loss) *loss = 0.0;
    if (nb == 0) return 0; /* as the CPU backend: nothing to learn */
    if (cw_cu_check_batch(b, errstr, errstr_size) != 0) return -1;
    if (!b->labels) {
        cw_seterr(errstr, errstr_size, "cuda: training batch without labels");
        return -1;
    }
    CU(dev, cudaSetDevice(dev), "cudaSetDevice");
    if (cw_cu_train_buffers(c, b, errstr, errstr_size) != 0 ||
        cw_cu_grow_host(dev, (void **)&c->h_in, &c->h_in_cap, in_bytes, cudaHostAllocWriteCombined,
                        "cudaHostAlloc(batch)", errstr, errstr_size) ||
        cw_cu_grow_dev(dev, (void **)&c->d_in, &c->d_in_cap, in_bytes, "cudaMalloc(batch)", errstr, errstr_size))
        goto done;
    memcpy(c->h_in, b->offsets, nb * sizeof(uint32_t));
    memcpy(c->h_in + off_bytes, b->labels, nb * sizeof(int32_t));
    if (ni) memcpy(c->h_in + off_bytes + lab_bytes, b->ids, ni * sizeof(int32_t));

    launched = 1;
    c->g_dirty = 1; /* until the update kernel has cleaned up */
    CU(dev, cudaMemsetAsync(c->d_sc, 0, sizeof(cw_cu_scalars_t), st), "clear status");
    CU(dev, cudaMemsetAsync(c->gfc, 0, nfc * sizeof(float), st), "clear fc gradients");
    CU(dev, cudaMemcpyAsync(c->d_in, c->h_in, in_bytes, cudaMemcpyHostToDevice, st), "copy batch");

    a.g.offs = (const uint32_t *)c->d_in;
    a.g.ids = (const int32_t *)(c->d_in + off_bytes + lab_bytes);
    a.g.nb = (uint32_t)nb;
    a.g.id_base = 0;
    a.g.id_end = (uint32_t)ni;
    a.g.bag_base = 0;
    a.g.nrows = c->nrows;
    a.labels = (const int32_t *)(c->d_in + off_bytes);
    a.emb = c->emb;
    a.fc_w = c->fc_w;
    a.fc_b = c->fc_b;
    a.dim = c->dim;
    a.nlabels = c->nlabels;
    smem = cw_cu_train_smem(c);
    a.smem = smem > 0;
    a.scratch = c->scratch;
    a.gemb = c->gemb;
    a.mark = c->mark;
    a.rows = c->rows;
    a.gfc = c->gfc;
    a.sc = c->d_sc;
    blocks = cw_cu_blocks(nb, CW_CU_WARPS, (unsigned)c->sm_count * 2);
    cw_cu_train_kernel<<<blocks, CW_CU_THREADS, smem, st>>>(a);
    CU(dev, cudaGetLastError(), "training kernel launch");

    blocks = cw_cu_blocks((uint64_t)ni * c->dim + nfc, CW_CU_THREADS, (unsigned)c->sm_count * 8);
    cw_cu_norm_kernel<<<blocks, CW_CU_THREADS, 0, st>>>(c->gemb, c->rows, c->gfc, c->dim, nfc, c->d_sc);
    CU(dev, cudaGetLastError(), "gradient norm kernel launch");
    cw_cu_update_kernel<<<blocks, CW_CU_THREADS, 0, st>>>(c->emb, c->fc_w, c->fc_b, c->gemb, c->mark, c->rows, c->gfc,
                                                         c->dim, nw, nfc, opt->lr, opt->clip_norm, c->d_sc);
    CU(dev, cudaGetLastError(), "update kernel launch");
    CU(dev, cudaMemcpyAsync(c->h_sc, c->d_sc, sizeof(cw_cu_scalars_t), cudaMemcpyDeviceToHost, st), "copy status");
    CU(dev, cudaStreamSynchronize(st), "training step");
    c->g_dirty = 0;
    if (c->h_sc[0].err) {
        cw_cu_device_error(&c->h_sc[0], c->nrows, c->nlabels, errstr, errstr_size);
        goto done;
    }
    if (loss) *loss = c->h_sc[0].loss / (double)nb;
    rc = 0;
done:
    if (rc != 0 && launched) cudaStreamSynchronize(st);
    return rc;
}

static int cw_cu_download(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size) {
    cw_cuda_ctx_t *c = (cw_cuda_ctx_t *)be->ctx;
    const int dev = c->device;
    int rc = -1;
    if (!c->emb) {
        cw_seterr(errstr, errstr_size, "cuda: download: no model uploaded");
        return -1;
    }
    if (m->nrows != c->nrows || m->dim != c->dim || m->nlabels != c->nlabels) {
        cw_seterr(errstr, errstr_size,
                  "cuda: download: model shape %llu x %u, %u labels differs from the device's %llu x %u, %u labels",
                  (unsigned long long)m->nrows, m->dim, m->nlabels, (unsigned long long)c->nrows, c->dim, c->nlabels);
        return -1;
    }
    CU(dev, cudaSetDevice(dev), "cudaSetDevice");
    CU(dev, cudaStreamSynchronize(c->st[0]), "cudaStreamSynchronize");
    CU(dev, cudaStreamSynchronize(c->st[1]), "cudaStreamSynchronize");
    CU(dev, cudaMemcpyAsync(m->emb, c->emb, (size_t)c->nrows * c->dim * sizeof(float), cudaMemcpyDeviceToHost, c->up),
       "download embeddings");
    CU(dev, cudaMemcpyAsync(m->fc_w, c->fc_w, (size_t)c->nlabels * c->dim * sizeof(float), cudaMemcpyDeviceToHost,
                            c->up),
       "download fc weights");
    CU(dev, cudaMemcpyAsync(m->fc_b, c->fc_b, c->nlabels * sizeof(float), cudaMemcpyDeviceToHost, c->up),
       "download fc bias");
    CU(dev, cudaStreamSynchronize(c->up), "download");
    rc = 0;
done:
    return rc;
}

static int cw_cu_sync(cw_backend_t *be, char *errstr, size_t errstr_size) {
    cw_cuda_ctx_t *c = (cw_cuda_ctx_t *)be->ctx;
    const int dev = c->device;
    int rc = -1;
    CU(dev, cudaSetDevice(dev), "cudaSetDevice");
    CU(dev, cudaStreamSynchronize(c->st[0]), "cudaStreamSynchronize");
    CU(dev, cudaStreamSynchronize(c->st[1]), "cudaStreamSynchronize");
    CU(dev, cudaStreamSynchronize(c->up), "cudaStreamSynchronize");
    rc = 0;
done:
    return rc;
}

extern "C" {
const struct cw_backend_ops cw_backend_cuda_ops = {
    "cuda", cw_cu_init, cw_cu_destroy, cw_cu_upload, cw_cu_forward, cw_cu_train_step, cw_cu_download, cw_cu_sync,
    nullptr, /* prepare: weights are resident after upload; nothing is built lazily */
    nullptr, /* rows: the forward reads device memory, nothing on the host to prefetch */
    0,       /* splittable: each forward pays launches and copies, batch it whole */
};
}
