/* bench_infer.c: inference throughput on one core, from raw text to label
 * (tokenize, look up, featurize, forward, argmax), in batches.
 *
 *   bench_infer --registry DIR --model REF --data test.csv [--batch 64] [--repeat 10] [--hint on|off|ab]
 *   bench_infer --registry DIR --model REF --describe     (prints dim/ngram/buckets)
 *
 * Prints articles/s over `repeat` passes of the file's texts (title + " " +
 * description) and the accuracy of the predictions, so a fast-but-wrong path
 * cannot pass unnoticed. bench/infer.sh runs it beside `fasttext predict`.
 * Each batch is added with the backend's row hint (cw_classifier_hint), as
 * the worker adds it; --hint off leaves it out, --hint ab alternates passes
 * with and without it in this process and prints the ratio of their rates
 * (the machines are noisy: an in-process pairing is what tells ~5%). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "classify.h"
#include "csv.h"
#include "registry.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: bench_infer --registry DIR --model REF (--describe | --data CSV) [--batch N] [--repeat N]\n"
               "                   [--hint on|off|ab]   (ab: --repeat at least 2)\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"registry", required_argument, 0, 'r'}, {"model", required_argument, 0, 'm'},
        {"data", required_argument, 0, 'f'},     {"batch", required_argument, 0, 'b'},
        {"repeat", required_argument, 0, 'n'},   {"describe", no_argument, 0, 'D'},
        {"hint", required_argument, 0, 'H'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *registry = "registry", *ref = NULL, *data = NULL;
    long batch = 64, repeat = 10;
    int describe = 0, hint = 1, c, rc = 1;
    char errstr[512];
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': registry = optarg; break;
        case 'm': ref = optarg; break;
        case 'f': data = optarg; break;
        case 'b': batch = atol(optarg); break;
        case 'n': repeat = atol(optarg); break;
        case 'D': describe = 1; break;
        case 'h': usage(stdout); return 0;
        case 'H':
            if (!strcmp(optarg, "on")) hint = 1;
            else if (!strcmp(optarg, "off")) hint = 0;
            else if (!strcmp(optarg, "ab")) hint = 2;
            else {
                fprintf(stderr, "bench_infer: --hint takes on, off or ab, not '%s'\n", optarg);
                return 2;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (!ref || (!describe && !data) || batch < 1 || repeat < 1 || (hint == 2 && repeat < 2)) {
        usage(stderr);
        return 2;
    }
    cw_model_t *m = cw_registry_load(registry, ref, NULL, errstr, sizeof(errstr));
    if (!m) {
        fprintf(stderr, "bench_infer: %s\n", errstr);
        return 1;
    }
    if (describe) {
        printf("dim=%u ngram=%u buckets=%u vocab=%zu labels=%u\n", m->dim, m->ngram, m->nbuckets,
               cw_vocab_size(m->vocab), m->nlabels);
        cw_model_destroy(m);
        return 0;
    }

    char **texts = NULL;
    size_t *lens = NULL;
    int *gold = NULL;
    size_t n = 0, cap = 0, cap2 = 0, cap3 = 0;
    cw_csv_t *csv = cw_csv_open(data, errstr, sizeof(errstr));
    cw_backend_t *be = NULL;
    cw_classifier_t *cl = NULL;
    if (!csv) {
        fprintf(stderr, "bench_infer: %s\n", errstr);
        goto done;
    }
    size_t nf;
    char **f;
    size_t *fl;
    int r;
    while ((r = cw_csv_next(csv, &nf, &f, &fl, errstr, sizeof(errstr))) == 1) {
        if (nf < 2) continue;
        size_t len = 0;
        for (size_t i = 1; i < nf; i++) len += fl[i] + (i > 1);
        char *t = cw_malloc(len + 1), *p = t;
        for (size_t i = 1; i < nf; i++) {
            if (i > 1) *p++ = ' ';
            memcpy(p, f[i], fl[i]);
            p += fl[i];
        }
        *p = '\0';
        cw_grow((void **)&texts, &cap, n + 1, sizeof(char *));
        cw_grow((void **)&lens, &cap2, n + 1, sizeof(size_t));
        cw_grow((void **)&gold, &cap3, n + 1, sizeof(int));
        texts[n] = t;
        lens[n] = len;
        gold[n] = atoi(f[0]) - 1;
        n++;
    }
    if (r < 0) {
        fprintf(stderr, "bench_infer: %s\n", errstr);
        goto done;
    }
    be = cw_backend_new("cpu", errstr, sizeof(errstr));
    /* prepare: one-time per-model state (like fastText's load, not timed). */
    if (!be || cw_backend_upload(be, m, errstr, sizeof(errstr)) != 0 ||
        cw_backend_prepare(be, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "bench_infer: %s\n", errstr);
        goto done;
    }
    cl = cw_classifier_new();
    size_t correct = 0, total = 0;
    double t0 = cw_now_s(), secs_with[2] = {0, 0};
    long passes_with = 0;
    for (long rep = 0; rep < repeat; rep++) {
        /* ab: passes in the order with, without, without, with, ... so that
         * neither side is always first (measured: with the hint a no-op,
         * plain alternation read 0.97-0.99 against the first). */
        int on = hint == 2 ? (rep % 4 == 0 || rep % 4 == 3) : hint;
        double tp = cw_now_s();
        for (size_t i = 0; i < n; i += (size_t)batch) {
            size_t k = n - i < (size_t)batch ? n - i : (size_t)batch;
            if (on) cw_classifier_hint(cl, be);
            for (size_t j = 0; j < k; j++) cw_classifier_add(cl, m, texts[i + j], lens[i + j]);
            const float *probs;
            if (cw_classifier_run(cl, be, &probs, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "bench_infer: %s\n", errstr);
                goto done;
            }
            for (size_t j = 0; j < k; j++)
                correct += (int)cw_argmax(probs + j * m->nlabels, m->nlabels) == gold[i + j];
            total += k;
        }
        secs_with[on] += cw_now_s() - tp;
        passes_with += on;
    }
    double secs = cw_now_s() - t0;
    printf("catwire articles=%zu batch=%ld seconds=%.3f articles_per_s=%.0f accuracy=%.4f\n", total, batch,
           secs, (double)total / secs, (double)correct / (double)total);
    if (hint == 2) {
        /* every pass classifies the n texts once */
        double with = (double)passes_with * (double)n / secs_with[1];
        double without = (double)(repeat - passes_with) * (double)n / secs_with[0];
        printf("hint ab: with %.0f articles/s, without %.0f, ratio %.3f (passes with, without, without, with...; %ld "
               "with)\n",
               with, without, with / without, passes_with);
    }
    rc = 0;
done:
    cw_classifier_destroy(cl);
    cw_backend_destroy(be);
    cw_csv_close(csv);
    for (size_t i = 0; i < n; i++) cw_free(texts[i]);
    cw_free(texts);
    cw_free(lens);
    cw_free(gold);
    cw_model_destroy(m);
    return rc;
}
