/* report.h: classification metrics and the training report.
 *
 * cw_report_t accumulates (gold, predicted) pairs into a confusion matrix
 * and derives accuracy and per-class precision, recall and F1 (a class with
 * no predictions has precision 0; with no gold rows, recall 0). It is what
 * `catwire-trainer train` writes and what `catwire evaluate` prints.
 *
 * cw_report_write_dir() writes a training report directory:
 *   epochs.csv     phase,epoch,loss_sum,loss_mean,valid_accuracy,valid_loss,lr,seconds,examples_per_s,
 *                  member,c (the ensemble member; the default recipe's C, one row per candidate)
 *   training.svg   the notebook's plot: total loss per epoch (left axis, red)
 *                  and validation accuracy (right axis, blue); for the default
 *                  recipe, per candidate C
 *   confusion.csv  gold label per row, predicted label per column
 *   classes.csv    label,precision,recall,f1,support
 *   report.txt     the text form (cw_report_print)
 * Files are written atomically (util.h). Single-threaded; no global state. */
#ifndef CW_REPORT_H
#define CW_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "train.h"

typedef struct cw_report_s {
    uint32_t nlabels;
    char **labels;       /* copies */
    uint64_t *confusion; /* nlabels x nlabels, [gold * nlabels + pred] */
    uint64_t total, correct;
} cw_report_t;

cw_report_t *cw_report_new(const char *const *labels, uint32_t nlabels);
void cw_report_destroy(cw_report_t *r);
void cw_report_add(cw_report_t *r, uint32_t gold, uint32_t pred);

double cw_report_accuracy(const cw_report_t *r);
/* Per-class metrics of class c. */
void cw_report_class(const cw_report_t *r, uint32_t c, double *precision, double *recall, double *f1,
                     uint64_t *support);
/* Unweighted mean of the per-class F1. */
double cw_report_macro_f1(const cw_report_t *r);

/* Human-readable: per-class P/R/F1 table and the confusion matrix. Does not
 * print the accuracy line (callers print their own last line). */
void cw_report_print(const cw_report_t *r, FILE *out);

/* Write the training report files into dir (created when missing). test may
 * be NULL (no confusion.csv / classes.csv then). */
int cw_report_write_dir(const char *dir, const cw_train_epoch_t *epochs, size_t nepochs,
                        const cw_report_t *test, char *errstr, size_t errstr_size);

/* The SVG chart alone, as a malloc'd NUL-terminated string. */
char *cw_report_svg(const cw_train_epoch_t *epochs, size_t nepochs);

#endif
