/* backend.c: choosing a backend by name, and the thin dispatch wrappers.
 * The only place that knows which backends this build has. */
#include "backend.h"

#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

const char *cw_backend_available(void) {
#if CW_WITH_CUDA
    return "cpu, cuda";
#else
    return "cpu";
#endif
}

static const struct cw_backend_ops *pick(const char *spec, int *device, char *errstr,
                                         size_t errstr_size) {
    *device = 0;
    if (!strcmp(spec, "cpu")) return &cw_backend_cpu_ops;
    int is_cuda = !strcmp(spec, "cuda") || !strncmp(spec, "cuda:", 5);
    if (is_cuda && spec[4] == ':') {
        char *end = NULL;
        long d = strtol(spec + 5, &end, 10);
        if (!spec[5] || *end || d < 0 || d > 1024) {
            cw_seterr(errstr, errstr_size, "bad device '%s' (expected cpu, cuda, cuda:N or auto)", spec);
            return NULL;
        }
        *device = (int)d;
    }
#if CW_WITH_CUDA
    if (is_cuda) return &cw_backend_cuda_ops;
    if (!strcmp(spec, "auto")) {
        char why[256] = "";
        if (cw_cuda_available(why, sizeof(why))) return &cw_backend_cuda_ops;
        cw_log_info("backend", "device auto: no usable GPU (%s), using cpu", why);
        return &cw_backend_cpu_ops;
    }
#else
    if (is_cuda) {
        cw_seterr(errstr, errstr_size, "device '%s': this build has no CUDA backend (this build has: %s)",
                  spec, cw_backend_available());
        return NULL;
    }
    if (!strcmp(spec, "auto")) {
        cw_log_info("backend", "device auto: built without CUDA, using cpu");
        return &cw_backend_cpu_ops;
    }
#endif
    cw_seterr(errstr, errstr_size, "unknown device '%s' (expected cpu, cuda, cuda:N or auto; this build has: %s)",
              spec, cw_backend_available());
    return NULL;
}

cw_backend_t *cw_backend_new(const char *spec, char *errstr, size_t errstr_size) {
    int device = 0;
    const struct cw_backend_ops *ops = pick(spec ? spec : "cpu", &device, errstr, errstr_size);
    if (!ops) return NULL;
    cw_backend_t *be = cw_calloc(1, sizeof(*be));
    be->ops = ops;
    be->device = device;
    snprintf(be->desc, sizeof(be->desc), "%s", ops->name);
    if (ops->init(be, device, errstr, errstr_size) != 0) {
        cw_free(be);
        return NULL;
    }
    return be;
}

void cw_backend_destroy(cw_backend_t *be) {
    if (!be) return;
    be->ops->destroy(be);
    cw_free(be);
}

int cw_backend_upload(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size) {
    if (be->ops->upload(be, m, errstr, errstr_size) != 0) return -1;
    be->model = m;
    return 0;
}

int cw_backend_forward(cw_backend_t *be, const cw_batch_t *b, float *probs,
                       char *errstr, size_t errstr_size) {
    if (!be->model) {
        cw_seterr(errstr, errstr_size, "backend %s: no model uploaded", be->ops->name);
        return -1;
    }
    return be->ops->forward(be, b, probs, errstr, errstr_size);
}

int cw_backend_train_step(cw_backend_t *be, const cw_batch_t *b, const cw_step_opts_t *opt,
                          double *loss, char *errstr, size_t errstr_size) {
    if (!be->model) {
        cw_seterr(errstr, errstr_size, "backend %s: no model uploaded", be->ops->name);
        return -1;
    }
    return be->ops->train_step(be, b, opt, loss, errstr, errstr_size);
}

int cw_backend_download(cw_backend_t *be, cw_model_t *m, char *errstr, size_t errstr_size) {
    return be->ops->download ? be->ops->download(be, m, errstr, errstr_size) : 0;
}

int cw_backend_sync(cw_backend_t *be, char *errstr, size_t errstr_size) {
    return be->ops->sync ? be->ops->sync(be, errstr, errstr_size) : 0;
}

void cw_backend_rows(const cw_backend_t *be, cw_rows_hint_t *hint) {
    hint->base = NULL;
    hint->stride = 0;
    if (be && be->ops->rows) hint->base = be->ops->rows(be, &hint->stride);
}

int cw_backend_prepare(cw_backend_t *be, char *errstr, size_t errstr_size) {
    if (!be->model) {
        cw_seterr(errstr, errstr_size, "backend %s: no model uploaded", be->ops->name);
        return -1;
    }
    return be->ops->prepare ? be->ops->prepare(be, errstr, errstr_size) : 0;
}
