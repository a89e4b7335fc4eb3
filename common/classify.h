/* classify.h: raw texts in, class probabilities out, for one batch.
 *
 * The path every caller of a trained model shares (worker, predict, evaluate,
 * benchmarks): tokenize each text, featurize (words + n-grams), pack one
 * (ids, offsets) batch, one backend forward pass. A cw_classifier_t holds the
 * scratch buffers, reused across batches, so steady state allocates nothing.
 *
 * Threads: one classifier per thread; it does not own the backend or model. */
#ifndef CW_CLASSIFY_H
#define CW_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"

typedef struct cw_classifier_s cw_classifier_t;

cw_classifier_t *cw_classifier_new(void);
void cw_classifier_destroy(cw_classifier_t *c);

/* Add one text to the pending batch (tokenized and featurized now, with m). */
void cw_classifier_add(cw_classifier_t *c, const cw_model_t *m, const char *text, size_t len);
/* Number of texts pending. */
size_t cw_classifier_pending(const cw_classifier_t *c);
/* Run the pending batch on be (whose bound model must be the m texts were
 * featurized with); *probs receives pending x nlabels probabilities, valid
 * until the next call. The batch is then cleared. 0 or -1 with errstr. */
int cw_classifier_run(cw_classifier_t *c, cw_backend_t *be, const float **probs,
                      char *errstr, size_t errstr_size);
/* Drop pending texts without running them. */
void cw_classifier_clear(cw_classifier_t *c);

/* argmax of one row. */
uint32_t cw_argmax(const float *row, uint32_t k);

#endif
