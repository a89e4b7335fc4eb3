/* cmd_predict.c: `catwire predict`: label and class probabilities for texts,
 * like the notebook's predict("I like sports"). Texts come from the
 * arguments, or one per stdin line; stdin lines are classified in batches. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "classify.h"
#include "cli.h"
#include "registry.h"
#include "util.h"

#define PREDICT_BATCH 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: catwire predict [--registry DIR] --model NAME[@VERSION] [--device D] [--json] [TEXT...]\n"
            "\n"
            "Label each TEXT (or each stdin line when no TEXT is given) with a registered model.\n"
            "Output: one line per text, the label then every class probability:\n"
            "  Sports\tWorld=0.0123 Sports=0.9712 Business=0.0081 Sci/Tec=0.0084\n"
            "\n"
            "  --registry DIR   model registry (default: $CATWIRE_REGISTRY or ./registry)\n"
            "  --model REF      NAME (the current version) or NAME@VERSION\n"
            "  --device D       cpu, cuda, cuda:N or auto (default: cpu)\n"
            "  --json           one JSON object per line instead\n"
            "  --help           this text\n"
            "Exit codes: 0 ok, 1 error, 2 usage.\n");
}

static void print_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void print_row(const cw_model_t *m, const float *row, int json, const char *text) {
    uint32_t best = cw_argmax(row, m->nlabels);
    if (json) {
        printf("{\"text\":");
        print_json_string(text);
        printf(",\"label\":");
        print_json_string(m->labels[best]);
        printf(",\"label_id\":%u,\"confidence\":%.6f,\"scores\":{", best, row[best]);
        for (uint32_t j = 0; j < m->nlabels; j++) {
            if (j) putchar(',');
            print_json_string(m->labels[j]);
            printf(":%.6f", row[j]);
        }
        printf("}}\n");
        return;
    }
    printf("%s\t", m->labels[best]);
    for (uint32_t j = 0; j < m->nlabels; j++) printf("%s%s=%.4f", j ? " " : "", m->labels[j], row[j]);
    putchar('\n');
}

/* Run the pending batch and print it; texts[i] are the batch's texts. */
static int flush(cw_classifier_t *c, cw_backend_t *be, const cw_model_t *m, char **texts,
                 size_t n, int json) {
    char errstr[512];
    const float *probs;
    if (n == 0) return 0;
    if (cw_classifier_run(c, be, &probs, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "catwire predict: %s\n", errstr);
        return -1;
    }
    for (size_t i = 0; i < n; i++) print_row(m, probs + i * m->nlabels, json, texts[i]);
    return 0;
}

int cw_cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"registry", required_argument, 0, 'r'}, {"model", required_argument, 0, 'm'},
        {"device", required_argument, 0, 'd'},   {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    const char *registry = getenv("CATWIRE_REGISTRY");
    const char *ref = NULL, *device = "cpu";
    int json = 0, c, rc = CW_EXIT_ERROR;
    char errstr[512];
    cw_model_t *m = NULL;
    cw_backend_t *be = NULL;
    cw_classifier_t *cl = NULL;
    char *texts[PREDICT_BATCH] = {0};
    size_t ntexts = 0;
    char *line = NULL;
    size_t line_cap = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': registry = optarg; break;
        case 'm': ref = optarg; break;
        case 'd': device = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CW_EXIT_OK;
        default: usage(stderr); return CW_EXIT_USAGE;
        }
    }
    if (!ref) {
        fprintf(stderr, "catwire predict: --model is required\n");
        usage(stderr);
        return CW_EXIT_USAGE;
    }
    if (!registry) registry = "registry";

    int64_t version = 0;
    m = cw_registry_load(registry, ref, &version, errstr, sizeof(errstr));
    if (!m) {
        fprintf(stderr, "catwire predict: %s\n", errstr);
        goto done;
    }
    be = cw_backend_new(device, errstr, sizeof(errstr));
    if (!be || cw_backend_upload(be, m, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "catwire predict: %s\n", errstr);
        goto done;
    }
    cl = cw_classifier_new();

    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            cw_classifier_add(cl, m, argv[i], strlen(argv[i]));
            texts[ntexts++] = cw_strdup(argv[i]);
            if (ntexts == PREDICT_BATCH) {
                if (flush(cl, be, m, texts, ntexts, json) != 0) goto done;
                for (size_t k = 0; k < ntexts; k++) cw_free(texts[k]), texts[k] = NULL;
                ntexts = 0;
            }
        }
    } else {
        ssize_t n;
        while ((n = getline(&line, &line_cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
            cw_classifier_add(cl, m, line, (size_t)n);
            texts[ntexts++] = cw_strndup(line, (size_t)n);
            if (ntexts == PREDICT_BATCH) {
                if (flush(cl, be, m, texts, ntexts, json) != 0) goto done;
                for (size_t k = 0; k < ntexts; k++) cw_free(texts[k]), texts[k] = NULL;
                ntexts = 0;
            }
        }
    }
    if (flush(cl, be, m, texts, ntexts, json) != 0) goto done;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "catwire predict: error writing output\n");
        goto done;
    }
    rc = CW_EXIT_OK;
done:
    for (size_t k = 0; k < ntexts; k++) cw_free(texts[k]);
    free(line);
    cw_classifier_destroy(cl);
    cw_backend_destroy(be);
    cw_model_destroy(m);
    return rc;
}
