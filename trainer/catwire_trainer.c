/* catwire_trainer.c: the catwire-trainer program.
 *
 *   catwire-trainer train --train FILE [--test FILE] [--registry DIR --model NAME] ...
 *   catwire-trainer run --config FILE  (the trainer daemon, daemon.h)
 *
 * `train` loads the data, trains with a recipe (train.h), prints one line per
 * epoch, scores the test file, writes the report and publishes the model to
 * the registry. Exit codes: 0 ok, 1 error, 2 usage. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "daemon.h"
#include "dataset.h"
#include "registry.h"
#include "report.h"
#include "train.h"
#include "util.h"

#define EXIT_USAGE 2

static void usage_main(FILE *out) {
    fprintf(out,
            "usage: catwire-trainer COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  train   train a model from a labelled CSV file and publish it\n"
            "  run     the trainer daemon: retrain on new data, gate, publish, announce\n"
            "\n"
            "catwire-trainer COMMAND --help shows a command's options.\n");
}

static void usage_train(FILE *out) {
    fprintf(out,
            "usage: catwire-trainer train --train FILE [OPTIONS]\n"
            "\n"
            "Trains the EmbeddingBag-mean + Linear classifier on a labelled CSV file\n"
            "(AG News style \"class number\",\"title\",\"description\", or \"label name\",\"text\"...).\n"
            "\n"
            "data and output:\n"
            "  --train FILE        training CSV (required; '-' reads stdin)\n"
            "  --test FILE         score the trained model on this CSV at the end\n"
            "  --labels A,B,...    label names; class number N means the N-th name\n"
            "                      (default: discovered from the first column)\n"
            "  --registry DIR      publish the model as the next version in DIR ...\n"
            "  --model NAME        ... under this model name (both or neither)\n"
            "  --output FILE       also write the checkpoint (.cwm) to FILE\n"
            "  --report DIR        write the training report (epochs.csv, training.svg,\n"
            "                      confusion.csv, classes.csv, report.txt) into DIR\n"
            "\n"
            "recipe and overrides:\n"
            "  --recipe NAME       default: one linear SVM per label over naive-Bayes-scaled\n"
            "                      TF-IDF words and hashed bigrams (NBSVM), C chosen by\n"
            "                      cross-validation, exported exactly as the model;\n"
            "                      seed: the notebook exactly;\n"
            "                      fasttext: fastText-style SGD (bigrams, feature dropout,\n"
            "                      epochs chosen on validation, a 4-model ensemble)\n"
            "  --seed N            random seed (default 1)\n"
            "  --threads N         training threads (default: all CPUs; the seed recipe uses 1);\n"
            "                      1 gives the same weights for the same seed\n"
            "  --ngram N           word n-gram order (1 = words only)\n"
            "  --buckets N         hashed n-gram rows (0 = sized from the data)\n"
            "  --min-count N       drop words seen fewer than N times\n"
            "  --valid F           validation share of the training file (seed, fasttext: 0.05;\n"
            "                      default recipe with --folds 1: the held-out share)\n"
            "default recipe:\n"
            "  --folds K           cross-validation folds choosing C (default 2; 1 = hold out --valid)\n"
            "  --c F               use this C, no search\n"
            "  --c-min F, --c-max F  the doubling grid C is searched over (default 0.0625 .. 8)\n"
            "seed and fasttext recipes:\n"
            "  --epochs N          seed: epochs; fasttext: most epochs tried\n"
            "  --lr F              learning rate\n"
            "  --dim N             embedding size\n"
            "  --batch N           batch size (1 = per-example Hogwild SGD)\n"
            "  --clip F            total gradient norm clip (0 = off)\n"
            "  --dropout F         fasttext: drop each feature of a training bag with probability F\n"
            "  --ensemble K        fasttext: train K models and merge them into one of dim K x dim\n"
            "  --zero-unseen 0|1   fasttext: zero the embedding rows no training row uses\n"
            "  --holdout 0|1       fasttext: 1 = each ensemble member holds out its own validation\n"
            "                      share and keeps its epoch of lowest validation loss (no\n"
            "                      retrain); 0 = phase 1 picks the epoch count, phase 2 retrains\n"
            "  --patience N        stop a model after N epochs without a lower validation loss (0 = never)\n"
            "  --no-select         fasttext: train --epochs epochs on all rows, no phase 1\n"
            "  --quiet             print only the final summary\n"
            "  --help              this text\n");
}

typedef struct cli_s {
    int quiet;
    uint32_t ensemble;
    int holdout;
} cli_t;

static void on_epoch(const cw_train_epoch_t *e, void *opaque) {
    const cli_t *c = opaque;
    if (c->quiet) return;
    if (e->c > 0) {
        /* default recipe: a candidate C (phase 1) or the final fit (phase 2) */
        if (e->valid_acc >= 0)
            printf("C %-8g  train loss %.4f  valid accuracy %.4f  valid loss %.4f  %.0f examples/s  %.2fs\n", e->c,
                   e->loss_mean, e->valid_acc, e->valid_loss, e->examples_per_s, e->seconds);
        else
            printf("C %-8g  train loss %.4f  (final fit on all rows)  %.0f examples/s  %.2fs\n", e->c, e->loss_mean,
                   e->examples_per_s, e->seconds);
        fflush(stdout);
        return;
    }
    if (c->ensemble > 1 && (e->phase == 2 || c->holdout)) printf("model %u/%u  ", e->member + 1, c->ensemble);
    if (e->valid_acc >= 0)
        printf("phase %u epoch %3u  loss %10.4f (mean %.4f)  valid accuracy %.4f  valid loss %.4f  lr %.4g  "
               "%.0f examples/s  %.2fs\n",
               e->phase, e->epoch, e->loss_sum, e->loss_mean, e->valid_acc, e->valid_loss, e->lr,
               e->examples_per_s, e->seconds);
    else
        printf("phase %u epoch %3u  loss %10.4f (mean %.4f)  lr %.4g  %.0f examples/s  %.2fs\n", e->phase, e->epoch,
               e->loss_sum, e->loss_mean, e->lr, e->examples_per_s, e->seconds);
    fflush(stdout);
}

static void on_note(const char *msg, void *opaque) {
    const cli_t *c = opaque;
    if (c->quiet) return;
    printf("%s\n", msg);
    fflush(stdout);
}

/* JSON string body (no quotes) of s. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static char *meta_json(const cw_train_opts_t *o, const cw_train_result_t *res, const cw_dataset_t *train,
                       const char *test_path, double test_acc, double test_f1, uint32_t threads) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const cw_model_t *m = res->model;
    fprintf(f, "{\"recipe\":");
    json_str(f, o->recipe);
    if (!strcmp(o->recipe, "default"))
        fprintf(f, ",\"hyperparameters\":{\"learner\":\"nbsvm\",\"dim\":%u,\"ngram\":%u,\"nbuckets\":%u,"
                   "\"min_count\":%" PRIu64 ",\"folds\":%u,\"c_fixed\":%g,\"c_min\":%g,\"c_max\":%g,"
                   "\"chosen_c\":%g,\"seed\":%" PRIu64 ",\"threads\":%u}",
                m->dim, m->ngram, m->nbuckets, o->min_count, o->folds, o->svm_c, o->c_min, o->c_max, res->best_c,
                o->seed, threads);
    else
        fprintf(f, ",\"hyperparameters\":{\"dim\":%u,\"epochs\":%u,\"lr\":%g,\"batch\":%u,\"clip_norm\":%g,"
                   "\"lr_decay\":%s,\"ngram\":%u,\"nbuckets\":%u,\"min_count\":%" PRIu64 ",\"valid_frac\":%g,"
                   "\"seed\":%" PRIu64 ",\"threads\":%u,\"select_epochs\":%s,\"member_holdout\":%s,\"patience\":%u,"
                   "\"ensemble\":%u,\"dropout\":%g,\"chosen_epochs\":%u}",
                o->dim, o->epochs, (double)o->lr, o->batch, (double)o->clip_norm, o->lr_decay ? "true" : "false",
                m->ngram, m->nbuckets, o->min_count, o->valid_frac, o->seed, threads,
                o->select_epochs ? "true" : "false", o->select_epochs && o->member_holdout ? "true" : "false",
                o->patience, o->ensemble, (double)o->dropout, res->best_epoch);
    fprintf(f, ",\"metrics\":{\"valid_accuracy\":%.6f", res->best_valid_acc);
    if (test_path) fprintf(f, ",\"test_accuracy\":%.6f,\"test_macro_f1\":%.6f", test_acc, test_f1);
    fprintf(f, ",\"train_seconds\":%.3f}", res->seconds);
    fprintf(f, ",\"data\":{\"train\":");
    json_str(f, train->path);
    fprintf(f, ",\"train_rows\":%zu,\"train_bytes\":%" PRIu64 ",\"train_fnv1a64\":\"%016" PRIx64 "\"", train->n,
            train->bytes, train->fingerprint);
    if (test_path) {
        fprintf(f, ",\"test\":");
        json_str(f, test_path);
    }
    fprintf(f, "},\"labels\":[");
    for (uint32_t i = 0; i < m->nlabels; i++) {
        if (i) fputc(',', f);
        json_str(f, m->labels[i]);
    }
    fprintf(f, "],\"vocab_size\":%zu}", cw_vocab_size(m->vocab));
    fclose(f);
    return buf;
}

static int parse_u64(const char *s, uint64_t *v) {
    char *end = NULL;
    if (!s || !*s || *s == '-') return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end) return -1;
    *v = x;
    return 0;
}

static int parse_f(const char *s, double *v) {
    char *end = NULL;
    if (!s || !*s) return -1;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

static int cmd_train(int argc, char **argv) {
    enum { O_TRAIN = 256, O_TEST, O_LABELS, O_REGISTRY, O_MODEL, O_OUTPUT, O_REPORT, O_RECIPE, O_SEED, O_THREADS,
           O_EPOCHS, O_LR, O_DIM, O_BATCH, O_CLIP, O_NGRAM, O_BUCKETS, O_MINCOUNT, O_VALID, O_NOSELECT, O_QUIET,
           O_DROPOUT, O_ENSEMBLE, O_ZERO, O_HOLDOUT, O_PATIENCE, O_FOLDS, O_C, O_CMIN, O_CMAX, O_HELP };
    static const struct option lo[] = {
        {"train", required_argument, 0, O_TRAIN},     {"test", required_argument, 0, O_TEST},
        {"labels", required_argument, 0, O_LABELS},   {"registry", required_argument, 0, O_REGISTRY},
        {"model", required_argument, 0, O_MODEL},     {"output", required_argument, 0, O_OUTPUT},
        {"report", required_argument, 0, O_REPORT},   {"recipe", required_argument, 0, O_RECIPE},
        {"seed", required_argument, 0, O_SEED},       {"threads", required_argument, 0, O_THREADS},
        {"epochs", required_argument, 0, O_EPOCHS},   {"lr", required_argument, 0, O_LR},
        {"dim", required_argument, 0, O_DIM},         {"batch", required_argument, 0, O_BATCH},
        {"clip", required_argument, 0, O_CLIP},       {"ngram", required_argument, 0, O_NGRAM},
        {"buckets", required_argument, 0, O_BUCKETS}, {"min-count", required_argument, 0, O_MINCOUNT},
        {"valid", required_argument, 0, O_VALID},     {"no-select", no_argument, 0, O_NOSELECT},
        {"quiet", no_argument, 0, O_QUIET},           {"dropout", required_argument, 0, O_DROPOUT},
        {"ensemble", required_argument, 0, O_ENSEMBLE}, {"zero-unseen", required_argument, 0, O_ZERO},
        {"holdout", required_argument, 0, O_HOLDOUT}, {"patience", required_argument, 0, O_PATIENCE},
        {"folds", required_argument, 0, O_FOLDS},     {"c", required_argument, 0, O_C},
        {"c-min", required_argument, 0, O_CMIN},      {"c-max", required_argument, 0, O_CMAX},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    const char *train_path = NULL, *test_path = NULL, *labels_arg = NULL, *registry = NULL, *model_name = NULL;
    const char *output = NULL, *report_dir = NULL, *recipe = "default";
    /* Overrides are applied after the recipe's defaults, whatever the option order. */
    struct { int set; double v; } ov[O_HELP - O_TRAIN + 1];
    memset(ov, 0, sizeof(ov));
    int noselect = 0, rc = 1, seed_set = 0;
    uint64_t seed = 0;
    cli_t cli = {0};
    char err[1024] = "";
    char **labels = NULL;
    int nlabels = 0;
    cw_dataset_t *train = NULL, *test = NULL;
    cw_train_result_t res;
    memset(&res, 0, sizeof(res));
    cw_report_t *rep = NULL;
    int32_t *pred = NULL;
    char *meta = NULL;

    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_TRAIN: train_path = optarg; break;
        case O_TEST: test_path = optarg; break;
        case O_LABELS: labels_arg = optarg; break;
        case O_REGISTRY: registry = optarg; break;
        case O_MODEL: model_name = optarg; break;
        case O_OUTPUT: output = optarg; break;
        case O_REPORT: report_dir = optarg; break;
        case O_RECIPE: recipe = optarg; break;
        case O_NOSELECT: noselect = 1; break;
        case O_QUIET: cli.quiet = 1; break;
        case O_HELP: usage_train(stdout); return 0;
        case O_SEED:
            if (parse_u64(optarg, &seed) != 0) {
                fprintf(stderr, "catwire-trainer train: --seed: expected a non-negative integer, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            seed_set = 1;
            break;
        case O_THREADS: case O_EPOCHS: case O_DIM: case O_BATCH: case O_NGRAM: case O_BUCKETS:
        case O_MINCOUNT: case O_ENSEMBLE: case O_ZERO: case O_HOLDOUT: case O_PATIENCE: case O_FOLDS: {
            uint64_t v;
            if (parse_u64(optarg, &v) != 0 || (c != O_MINCOUNT && v > UINT32_MAX)) {
                fprintf(stderr, "catwire-trainer train: --%s: expected a non-negative integer, got '%s'\n",
                        lo[c - O_TRAIN].name, optarg);
                return EXIT_USAGE;
            }
            ov[c - O_TRAIN].set = 1;
            ov[c - O_TRAIN].v = (double)v;
            break;
        }
        case O_LR: case O_CLIP: case O_VALID: case O_DROPOUT: case O_C: case O_CMIN: case O_CMAX: {
            double v;
            if (parse_f(optarg, &v) != 0 || v < 0) {
                fprintf(stderr, "catwire-trainer train: --%s: expected a non-negative number, got '%s'\n",
                        lo[c - O_TRAIN].name, optarg);
                return EXIT_USAGE;
            }
            ov[c - O_TRAIN].set = 1;
            ov[c - O_TRAIN].v = v;
            break;
        }
        default: usage_train(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "catwire-trainer train: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!train_path) {
        fprintf(stderr, "catwire-trainer train: --train FILE is required (see --help)\n");
        return EXIT_USAGE;
    }
    if (!registry != !model_name) {
        fprintf(stderr, "catwire-trainer train: --registry and --model go together\n");
        return EXIT_USAGE;
    }

    cw_train_opts_t o;
    if (cw_train_opts_init(&o, recipe, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire-trainer train: %s\n", err);
        return EXIT_USAGE;
    }
    if (seed_set) o.seed = seed;
#define OV(opt) (ov[(opt) - O_TRAIN].set)
#define OVV(opt) (ov[(opt) - O_TRAIN].v)
    if (OV(O_THREADS)) o.threads = (uint32_t)OVV(O_THREADS);
    if (OV(O_EPOCHS)) o.epochs = (uint32_t)OVV(O_EPOCHS);
    int dim_set = OV(O_DIM);
    if (dim_set) o.dim = (uint32_t)OVV(O_DIM);
    if (OV(O_BATCH)) o.batch = (uint32_t)OVV(O_BATCH);
    if (OV(O_NGRAM)) o.ngram = (uint32_t)OVV(O_NGRAM);
    if (OV(O_BUCKETS)) o.nbuckets = (uint32_t)OVV(O_BUCKETS);
    if (OV(O_MINCOUNT)) o.min_count = (uint64_t)OVV(O_MINCOUNT);
    if (OV(O_LR)) o.lr = (float)OVV(O_LR);
    if (OV(O_CLIP)) o.clip_norm = (float)OVV(O_CLIP);
    if (OV(O_VALID)) o.valid_frac = OVV(O_VALID);
    if (OV(O_ZERO)) o.zero_unseen = OVV(O_ZERO) != 0;
    if (OV(O_ENSEMBLE)) o.ensemble = (uint32_t)OVV(O_ENSEMBLE);
    if (OV(O_DROPOUT)) o.dropout = (float)OVV(O_DROPOUT);
    if (OV(O_HOLDOUT)) o.member_holdout = OVV(O_HOLDOUT) != 0;
    if (OV(O_PATIENCE)) o.patience = (uint32_t)OVV(O_PATIENCE);
    if (OV(O_FOLDS)) o.folds = (uint32_t)OVV(O_FOLDS);
    if (OV(O_C)) o.svm_c = OVV(O_C);
    if (OV(O_CMIN)) o.c_min = OVV(O_CMIN);
    if (OV(O_CMAX)) o.c_max = OVV(O_CMAX);
    if (noselect) o.select_epochs = 0, o.member_holdout = 0;
#undef OV
#undef OVV
    cli.ensemble = o.ensemble;
    cli.holdout = o.member_holdout;
    o.progress = on_epoch;
    o.note = on_note;
    o.opaque = &cli;

    if (labels_arg) {
        nlabels = cw_labels_parse(labels_arg, &labels, err, sizeof(err));
        if (nlabels < 0) {
            fprintf(stderr, "catwire-trainer train: --labels: %s\n", err);
            return EXIT_USAGE;
        }
    }
    cw_dataset_opts_t dopt;
    cw_dataset_opts_init(&dopt);
    dopt.labels = (const char *const *)labels;
    dopt.nlabels = (uint32_t)(nlabels > 0 ? nlabels : 0);
    double t0 = cw_now_s();
    train = cw_dataset_load(train_path, &dopt, err, sizeof(err));
    if (!train) {
        fprintf(stderr, "catwire-trainer train: %s\n", err);
        goto done;
    }
    if (!cli.quiet) {
        printf("loaded %s: %zu rows, %zu tokens, %u labels (", train->path, train->n, train->ntok, train->nlabels);
        for (uint32_t i = 0; i < train->nlabels; i++)
            printf("%s%s %" PRIu64, i ? ", " : "", train->label_names[i], train->label_count[i]);
        printf(") in %.2fs\n", cw_now_s() - t0);
        if (!strcmp(o.recipe, "default"))
            printf("recipe default: NB-SVM, ngram %u, %s, threads %u, seed %" PRIu64 "\n", o.ngram,
                   o.svm_c > 0 ? "C fixed" : o.folds > 1 ? "C by cross-validation" : "C on a held-out share",
                   o.threads ? o.threads : cw_train_ncpus(), o.seed);
        else
            printf("recipe %s: dim %u, lr %g, epochs %u, batch %u, clip %g, ngram %u, threads %u, seed %" PRIu64 "\n",
                   o.recipe, o.dim, (double)o.lr, o.epochs, o.batch, (double)o.clip_norm, o.ngram,
                   o.batch > 1 ? 1 : (o.threads ? o.threads : cw_train_ncpus()), o.seed);
        fflush(stdout);
    }
    if (test_path) {
        /* The test file speaks the training file's labels. */
        cw_dataset_opts_t topt = {.labels = (const char *const *)train->label_names, .nlabels = train->nlabels};
        test = cw_dataset_load(test_path, &topt, err, sizeof(err));
        if (!test) {
            fprintf(stderr, "catwire-trainer train: %s\n", err);
            goto done;
        }
    }
    if (dim_set && !strcmp(o.recipe, "default") && o.dim != train->nlabels) {
        /* A usage error, though only the data can tell it (dim = labels). */
        fprintf(stderr, "catwire-trainer train: --dim %u: the default recipe's model has one dimension per label "
                "(%u here); --dim applies to the seed and fasttext recipes\n", o.dim, train->nlabels);
        rc = EXIT_USAGE;
        goto done;
    }
    if (cw_train(train, &o, &res, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire-trainer train: %s\n", err);
        goto done;
    }
    if (!strcmp(o.recipe, "default"))
        printf("trained in %.2fs on %u thread(s): C %g, cross-validated accuracy %.4f\n", res.seconds, res.threads,
               res.best_c, res.best_valid_acc);
    else
        printf("trained in %.2fs on %u thread(s): %s epoch %u, validation accuracy %.4f\n", res.seconds, res.threads,
               o.select_epochs ? "chosen epochs" : "kept", res.best_epoch, res.best_valid_acc);

    double test_acc = 0.0, test_f1 = 0.0;
    if (test) {
        pred = cw_malloc(test->n * sizeof(int32_t));
        double loss;
        if (cw_train_evaluate(res.model, test, 0, &test_acc, &loss, pred, err, sizeof(err)) != 0) {
            fprintf(stderr, "catwire-trainer train: %s\n", err);
            goto done;
        }
        rep = cw_report_new((const char *const *)res.model->labels, res.model->nlabels);
        for (size_t i = 0; i < test->n; i++) cw_report_add(rep, (uint32_t)test->labels[i], (uint32_t)pred[i]);
        test_f1 = cw_report_macro_f1(rep);
        if (!cli.quiet) cw_report_print(rep, stdout);
        printf("test accuracy %.4f (%zu rows, loss %.4f, macro F1 %.4f)\n", test_acc, test->n, loss, test_f1);
    }
    if (report_dir) {
        if (cw_report_write_dir(report_dir, res.epochs, res.nepochs, rep, err, sizeof(err)) != 0) {
            fprintf(stderr, "catwire-trainer train: report: %s\n", err);
            goto done;
        }
        printf("report written to %s\n", report_dir);
    }
    if (output) {
        if (cw_ckpt_write(res.model, output, err, sizeof(err)) != 0) {
            fprintf(stderr, "catwire-trainer train: %s\n", err);
            goto done;
        }
        printf("checkpoint written to %s\n", output);
    }
    if (registry) {
        meta = meta_json(&o, &res, train, test_path, test_acc, test_f1, res.threads);
        int64_t v = cw_registry_publish(registry, model_name, res.model, meta, err, sizeof(err));
        if (v < 0) {
            fprintf(stderr, "catwire-trainer train: publish: %s\n", err);
            goto done;
        }
        printf("published %s@%" PRId64 " to %s\n", model_name, v, registry);
    }
    rc = 0;
done:
    free(meta);
    cw_free(pred);
    cw_report_destroy(rep);
    cw_train_result_free(&res);
    cw_dataset_destroy(train);
    cw_dataset_destroy(test);
    cw_labels_free(labels, (uint32_t)(nlabels > 0 ? nlabels : 0));
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cw_daemon_main(argc - 1, argv + 1);
    fprintf(stderr, "catwire-trainer: unknown command '%s'\n", cmd);
    usage_main(stderr);
    return EXIT_USAGE;
}
