/* cmd_evaluate.c: `catwire evaluate`: accuracy, per-class precision/recall/F1
 * and the confusion matrix of a registered model on a labelled CSV. The last
 * line is always "accuracy=0.XXXX" so scripts can read it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dataset.h"
#include "registry.h"
#include "report.h"
#include "train.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: catwire evaluate [--registry DIR] --model NAME[@VERSION] [--threads N] FILE.csv\n"
            "\n"
            "Score a registered model on a labelled CSV (AG News style: class number, title,\n"
            "description; or label name, text). Prints per-class precision/recall/F1, the\n"
            "confusion matrix, and last the line accuracy=0.XXXX.\n"
            "\n"
            "  --registry DIR   model registry (default: $CATWIRE_REGISTRY or ./registry)\n"
            "  --model REF      NAME (the current version) or NAME@VERSION\n"
            "  --threads N      CPU threads (default: all cores)\n"
            "  --help           this text\n"
            "Exit codes: 0 ok, 1 error, 2 usage.\n");
}

int cw_cmd_evaluate(int argc, char **argv) {
    static const struct option opts[] = {
        {"registry", required_argument, 0, 'r'}, {"model", required_argument, 0, 'm'},
        {"threads", required_argument, 0, 't'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *registry = getenv("CATWIRE_REGISTRY");
    const char *ref = NULL;
    long threads = 0;
    int c, rc = CW_EXIT_ERROR;
    char errstr[512];
    cw_model_t *m = NULL;
    cw_dataset_t *ds = NULL;
    cw_report_t *rep = NULL;
    int32_t *pred = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': registry = optarg; break;
        case 'm': ref = optarg; break;
        case 't': {
            char *end;
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 0 || threads > 1024) {
                fprintf(stderr, "catwire evaluate: --threads: expected 0..1024, got '%s'\n", optarg);
                return CW_EXIT_USAGE;
            }
            break;
        }
        case 'h': usage(stdout); return CW_EXIT_OK;
        default: usage(stderr); return CW_EXIT_USAGE;
        }
    }
    if (!ref || optind != argc - 1) {
        fprintf(stderr, "catwire evaluate: expected --model and exactly one CSV file\n");
        usage(stderr);
        return CW_EXIT_USAGE;
    }
    if (!registry) registry = "registry";

    int64_t version = 0;
    m = cw_registry_load(registry, ref, &version, errstr, sizeof(errstr));
    if (!m) {
        fprintf(stderr, "catwire evaluate: %s\n", errstr);
        goto done;
    }
    cw_dataset_opts_t dopts;
    cw_dataset_opts_init(&dopts);
    dopts.labels = (const char *const *)m->labels;
    dopts.nlabels = m->nlabels;
    ds = cw_dataset_load(argv[optind], &dopts, errstr, sizeof(errstr));
    if (!ds) {
        fprintf(stderr, "catwire evaluate: %s\n", errstr);
        goto done;
    }
    double acc = 0, loss = 0;
    pred = cw_calloc(ds->n ? ds->n : 1, sizeof(int32_t));
    if (cw_train_evaluate(m, ds, (uint32_t)threads, &acc, &loss, pred, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "catwire evaluate: %s\n", errstr);
        goto done;
    }
    rep = cw_report_new((const char *const *)m->labels, m->nlabels);
    for (size_t i = 0; i < ds->n; i++) cw_report_add(rep, (uint32_t)ds->labels[i], (uint32_t)pred[i]);
    printf("model %s (version %lld) on %s: %zu rows, mean cross-entropy %.4f, macro F1 %.4f\n\n", ref,
           (long long)version, argv[optind], ds->n, loss, cw_report_macro_f1(rep));
    cw_report_print(rep, stdout);
    printf("accuracy=%.4f\n", cw_report_accuracy(rep));
    rc = CW_EXIT_OK;
done:
    cw_free(pred);
    cw_report_destroy(rep);
    cw_dataset_destroy(ds);
    cw_model_destroy(m);
    return rc;
}
