/* test_train.c: data sets, the seed recipe's step, the training engine.
 *
 * - One full training step of the seed recipe (forward, mean cross-entropy,
 *   backward, total-norm clipping at 0.1, SGD at lr 0.1) on a tiny batch
 *   with an empty bag, against values computed independently in numpy by
 *   tests/fixtures/train/seed_step.py (its output is pasted below), once
 *   with clipping triggered and once with a clip above the gradient norm.
 * - Data sets: AG News style and named-label CSV, label discovery and
 *   ordering, text = title + " " + description, and the errors that must
 *   name file and line (field count, unknown label, empty file, bad UTF-8).
 * - The report: precision/recall/F1 from a known confusion matrix, and the
 *   report files (epochs.csv, training.svg, confusion.csv, ...).
 * - The engine: one thread gives identical weights for the same seed (every
 *   recipe) and different ones for another seed. The default recipe on
 *   sample-1k.csv scores sanely on test.csv, walks its C grid as nbsvm.h
 *   says, gives the same model on any thread count, and its exported model
 *   is the trained SVMs exactly (the optimality condition of each label's
 *   bias holds on the logits the model computes). The fasttext recipe's
 *   ensemble option builds one model whose logits are the mean of its
 *   members'. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "dataset.h"
#include "model.h"
#include "report.h"
#include "train.h"
#include "util.h"
#include "vocab.h"

#include "check.h"

/* ---- the seed step against numpy ---------------------------------------- */

/* Output of tests/fixtures/train/seed_step.py (also in seed_step.expected). */
/* clipped: weight scale 1.0, lr 0.1, clip 0.1: gradient norm 0.255367221 (clipped) */
static const double clipped_loss = 1.06493114329;
static const double clipped_norm = 0.255367220642;
static const double clipped_emb[24] = {-0.499641197, -0.1333045682, 0.2330320755, -0.40192684, -0.03352596332, 0.3328106617, -0.3008526946, 0.06141473285, 0.4315128538, -0.2021505025, 0.1641861263, -0.4724334855, -0.1039750061, 0.2623616376, -0.3713017485, -0.001659705072, 0.3617449532, -0.271918433, 0.09441821074, 0.4594593102, -0.17249862, 0.1938380088, -0.4398253475, -0.07626239069};
static const double clipped_fc_w[12] = {-0.4998988864, 0.04517090975, -0.405256613, 0.1398131719, -0.3153497774, 0.2332876079, -0.2232919783, 0.325345407, -0.128050287, 0.417417764, -0.03639985347, -0.4909317912};
static const double clipped_fc_b[3] = {0.04734849849, 0.09699441799, 0.1556570917};
/* unclipped: weight scale 1.0, lr 0.1, clip 1.0: gradient norm 0.255367221 (not clipped) */
static const double unclipped_loss = 1.06493114329;
static const double unclipped_norm = 0.255367220642;
static const double unclipped_emb[24] = {-0.4990837311, -0.1327471023, 0.2335895414, -0.4033822381, -0.03177418216, 0.3345624428, -0.2991009134, 0.05684425665, 0.4327865525, -0.2008768038, 0.165459825, -0.4757528452, -0.1039977072, 0.2623389364, -0.3713244498, 0.00345313664, 0.362302419, -0.2713609671, 0.09497567662, 0.458003912, -0.1713043047, 0.1950323241, -0.4386310322, -0.0793774687};
static const double unclipped_fc_w[12] = {-0.4997417879, 0.04327410947, -0.4022115881, 0.1408042981, -0.3167741913, 0.2353522125, -0.2258438943, 0.3262825094, -0.1267829716, 0.4172499597, -0.0368929624, -0.4928600199};
static const double unclipped_fc_b[3] = {0.04322890663, 0.09232469639, 0.1644464052};

enum { V = 6, D = 4, K = 3 };

static cw_model_t *tiny_model(void) {
    cw_vocab_t *v = cw_vocab_new();
    const char *words[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) cw_vocab_push(v, words[i], 1);
    const char *labels[] = {"x", "y", "z"};
    cw_model_t *m = cw_model_new(v, D, labels, K, 1, 0);
    for (int r = 0; r < V; r++)
        for (int j = 0; j < D; j++) m->emb[r * D + j] = (float)((double)((r * D + j) * 37 % 101) / 101.0 - 0.5);
    for (int l = 0; l < K; l++)
        for (int j = 0; j < D; j++) m->fc_w[l * D + j] = (float)((double)((l * D + j) * 53 % 97) / 97.0 - 0.5);
    for (int l = 0; l < K; l++) m->fc_b[l] = (float)((l + 1) * 0.05);
    return m;
}

static double max_diff(const float *got, const double *want, size_t n) {
    double w = 0.0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)got[i] - want[i]));
    return w;
}

static void seed_step_case(const char *name, float clip, double want_loss, const double *emb, const double *fc_w,
                           const double *fc_b) {
    char err[256] = "";
    cw_train_opts_t o;
    CHECK(cw_train_opts_init(&o, "seed", err, sizeof(err)) == 0, "seed recipe: %s", err);
    CHECK(o.lr == 0.1f && o.clip_norm == 0.1f && o.batch == 64 && o.dim == 64 && o.epochs == 10,
          "seed recipe settings: lr %g clip %g batch %u dim %u epochs %u", (double)o.lr, (double)o.clip_norm, o.batch,
          o.dim, o.epochs);
    cw_model_t *m = tiny_model();
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    cw_backend_upload(be, m, err, sizeof(err));
    /* bags [1,2,2,5], [], [3], [0,4,5,1,1] */
    int32_t ids[] = {1, 2, 2, 5, 3, 0, 4, 5, 1, 1};
    uint32_t offs[] = {0, 4, 4, 5};
    int32_t labels[] = {2, 0, 1, 2};
    cw_batch_t b = {.ids = ids, .nids = 10, .offsets = offs, .nbags = 4, .labels = labels};
    cw_step_opts_t so = {.lr = o.lr, .clip_norm = clip};
    double loss = -1;
    CHECK(cw_backend_train_step(be, &b, &so, &loss, err, sizeof(err)) == 0, "%s: step: %s", name, err);
    CHECK(fabs(loss - want_loss) < 1e-6, "%s: loss %.9f, numpy %.9f", name, loss, want_loss);
    double de = max_diff(m->emb, emb, V * D), dw = max_diff(m->fc_w, fc_w, K * D), db = max_diff(m->fc_b, fc_b, K);
    CHECK(de < 2e-7 && dw < 2e-7 && db < 2e-7, "%s: weights after the step differ from numpy: emb %g fc_w %g fc_b %g",
          name, de, dw, db);
    cw_backend_destroy(be);
    cw_model_destroy(m);
}

static void test_seed_step(void) {
    CHECK(clipped_norm > 0.1 && unclipped_norm < 1.0, "fixture: the first case must clip, the second not");
    seed_step_case("clipped", 0.1f, clipped_loss, clipped_emb, clipped_fc_w, clipped_fc_b);
    seed_step_case("unclipped", 1.0f, unclipped_loss, unclipped_emb, unclipped_fc_w, unclipped_fc_b);
    /* The two expectations really differ, so the clipped case tests clipping. */
    CHECK(fabs(clipped_fc_b[0] - unclipped_fc_b[0]) > 1e-3, "clipping changes the step");
}

/* ---- data sets ---------------------------------------------------------- */

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *content, size_t len) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fwrite(content, 1, len, f);
    fclose(f);
    return path;
}

static void expect_load_error(const char *name, const char *content, const char *const *labels, uint32_t nlabels,
                              const char *want1, const char *want2) {
    const char *path = write_tmp(name, content, strlen(content));
    cw_dataset_opts_t o = {.labels = labels, .nlabels = nlabels};
    char err[512] = "";
    cw_dataset_t *ds = cw_dataset_load(path, &o, err, sizeof(err));
    CHECK(ds == NULL, "%s: loaded", name);
    CHECK(strstr(err, want1) && strstr(err, want2), "%s: error '%s' lacks '%s' / '%s'", name, err, want1, want2);
    cw_dataset_destroy(ds);
}

static int tokens_are(const cw_dataset_t *ds, size_t i, const char *want) {
    cw_tokens_t t;
    cw_dataset_tokens(ds, i, &t);
    char buf[1024];
    size_t p = 0;
    for (size_t k = 0; k < t.n && p + t.len[k] + 2 < sizeof(buf); k++) {
        if (k) buf[p++] = ' ';
        memcpy(buf + p, t.buf + t.start[k], t.len[k]);
        p += t.len[k];
    }
    buf[p] = '\0';
    if (strcmp(buf, want)) fprintf(stderr, "row %zu tokens '%s', want '%s'\n", i, buf, want);
    return !strcmp(buf, want);
}

static void test_dataset(void) {
    const char *ag[] = {"World", "Sports", "Business", "Sci/Tec"};
    char err[512] = "";
    const char *csv = "\"3\",\"Wall St. Bears\",\"Reuters - Short-sellers, it's\"\n"
                      "\"1\",\"Title\",\"\"\n"
                      "\"Sports\",\"Goal!\",\"(Win)\"\n";
    const char *path = write_tmp("ag.csv", csv, strlen(csv));
    cw_dataset_opts_t o = {.labels = ag, .nlabels = 4};
    cw_dataset_t *ds = cw_dataset_load(path, &o, err, sizeof(err));
    CHECK(ds != NULL, "load: %s", err);
    if (ds) {
        CHECK(ds->n == 3 && ds->nlabels == 4, "n %zu nlabels %u", ds->n, ds->nlabels);
        CHECK(ds->labels[0] == 2 && ds->labels[1] == 0 && ds->labels[2] == 1, "labels %d %d %d", ds->labels[0],
              ds->labels[1], ds->labels[2]);
        CHECK(tokens_are(ds, 0, "wall st . bears reuters - short-sellers , it ' s"), "row 0");
        CHECK(tokens_are(ds, 1, "title"), "row 1");
        CHECK(tokens_are(ds, 2, "goal ! ( win )"), "row 2");
        CHECK(ds->fingerprint == cw_fnv1a64(csv, strlen(csv), CW_FNV64_INIT), "fingerprint of the file bytes");
        CHECK(ds->label_count[0] == 1 && ds->label_count[3] == 0, "label counts");
    }
    cw_dataset_destroy(ds);

    /* Discovered labels: numbers in numeric order, names in byte order. */
    const char *nums = "\"10\",\"a\"\n\"9\",\"b\"\n\"2\",\"c\"\n\"9\",\"d\"\n";
    path = write_tmp("nums.csv", nums, strlen(nums));
    ds = cw_dataset_load(path, NULL, err, sizeof(err));
    CHECK(ds && ds->nlabels == 3 && !strcmp(ds->label_names[0], "2") && !strcmp(ds->label_names[2], "10") &&
              ds->labels[0] == 2 && ds->labels[1] == 1 && ds->labels[3] == 1,
          "numeric discovery: %s", ds ? "" : err);
    cw_dataset_destroy(ds);
    const char *names = "sports,\"the match\"\nbusiness,\"the market\"\nsports,x\n";
    path = write_tmp("names.csv", names, strlen(names));
    ds = cw_dataset_load(path, NULL, err, sizeof(err));
    CHECK(ds && ds->nlabels == 2 && !strcmp(ds->label_names[0], "business") && ds->labels[0] == 1 &&
              tokens_are(ds, 1, "the market"),
          "named discovery: %s", ds ? "" : err);
    cw_dataset_destroy(ds);

    expect_load_error("cols.csv", "\"1\",\"a\",\"b\"\n\"2\",\"c\",\"d\"\n\"3\",\"e\"\n", ag, 4, "cols.csv:3:",
                      "expected 3 fields");
    expect_load_error("one.csv", "\"1\"\n", ag, 4, "one.csv:1:", "at least 2 fields");
    expect_load_error("label.csv", "\"1\",\"a\",\"b\"\n\n\"7\",\"c\",\"d\"\n", ag, 4, "label.csv:3:",
                      "unknown label '7'");
    expect_load_error("name.csv", "\"Weather\",\"a\",\"b\"\n", ag, 4, "name.csv:1:", "unknown label 'Weather'");
    expect_load_error("empty.csv", "", ag, 4, "empty.csv", "empty file");
    expect_load_error("blank.csv", "\n\n", ag, 4, "blank.csv", "empty file");
    expect_load_error("utf8.csv", "\"1\",\"a\",\"b\"\n\"2\",\"caf\xc3\",\"d\"\n", ag, 4, "utf8.csv:2:", "UTF-8");
    char missing[512];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.csv", tmpdir);
    ds = cw_dataset_load(missing, &o, err, sizeof(err));
    CHECK(ds == NULL && strstr(err, "does-not-exist.csv"), "missing file: '%s'", err);

    char **lab = NULL;
    int n = cw_labels_parse("World,Sports,Business,Sci/Tec", &lab, err, sizeof(err));
    CHECK(n == 4 && !strcmp(lab[3], "Sci/Tec"), "labels parse");
    cw_labels_free(lab, (uint32_t)(n > 0 ? n : 0));
    CHECK(cw_labels_parse("a,,b", &lab, err, sizeof(err)) == -1, "empty label name");
    CHECK(cw_labels_parse("a,b,a", &lab, err, sizeof(err)) == -1 && strstr(err, "duplicate"), "duplicate label");
}

/* ---- the engine ------------------------------------------------------------ */

static cw_dataset_t *load_ag(const char *file) {
    const char *ag[] = {"World", "Sports", "Business", "Sci/Tec"};
    char path[4096], err[512] = "";
    snprintf(path, sizeof(path), "%s/%s", CW_TEST_DATA, file);
    cw_dataset_opts_t o = {.labels = ag, .nlabels = 4};
    cw_dataset_t *ds = cw_dataset_load(path, &o, err, sizeof(err));
    CHECK(ds != NULL, "load %s: %s", file, err);
    return ds;
}

static int same_weights(const cw_model_t *a, const cw_model_t *b) {
    return a->nrows == b->nrows && a->dim == b->dim &&
           !memcmp(a->emb, b->emb, (size_t)a->nrows * a->dim * sizeof(float)) &&
           !memcmp(a->fc_w, b->fc_w, (size_t)a->nlabels * a->dim * sizeof(float)) &&
           !memcmp(a->fc_b, b->fc_b, a->nlabels * sizeof(float));
}

static void train_twice(const cw_dataset_t *ds, const char *recipe, uint32_t epochs) {
    char err[512] = "";
    cw_train_opts_t o;
    cw_train_opts_init(&o, recipe, err, sizeof(err));
    o.epochs = epochs;
    o.threads = 1;
    o.seed = 42;
    cw_train_result_t a, b, c;
    CHECK(cw_train(ds, &o, &a, err, sizeof(err)) == 0, "%s: train: %s", recipe, err);
    CHECK(cw_train(ds, &o, &b, err, sizeof(err)) == 0, "%s: train again: %s", recipe, err);
    o.seed = 43;
    CHECK(cw_train(ds, &o, &c, err, sizeof(err)) == 0, "%s: train, seed 43: %s", recipe, err);
    if (a.model && b.model && c.model) {
        CHECK(same_weights(a.model, b.model), "%s: one thread, same seed: weights differ", recipe);
        CHECK(!same_weights(a.model, c.model), "%s: another seed gives the same weights", recipe);
        CHECK(a.nepochs == b.nepochs && a.nepochs > 0 &&
                  a.epochs[a.nepochs - 1].loss_sum == b.epochs[b.nepochs - 1].loss_sum,
              "%s: same losses", recipe);
    }
    cw_train_result_free(&a);
    cw_train_result_free(&b);
    cw_train_result_free(&c);
}

static void test_engine(void) {
    cw_dataset_t *ds = load_ag("sample-1k.csv");
    cw_dataset_t *test = load_ag("test.csv");
    if (!ds || !test) goto done;
    train_twice(ds, "seed", 2);
    train_twice(ds, "default", 3);
    train_twice(ds, "fasttext", 3);

    /* Seed recipe bookkeeping: 95/5 split, 10 epochs, vocabulary over every row. */
    char err[512] = "";
    cw_train_opts_t o;
    cw_train_opts_init(&o, "seed", err, sizeof(err));
    o.epochs = 3;
    cw_train_result_t r;
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) == 0, "seed: %s", err);
    if (r.model) {
        CHECK(r.ntrain == 950 && r.nvalid == 50, "split %zu/%zu", r.ntrain, r.nvalid);
        CHECK(r.nepochs == 3 && r.model->dim == 64 && r.model->ngram == 1, "epochs %zu dim %u", r.nepochs,
              r.model->dim);
        CHECK(cw_vocab_size(r.model->vocab) == 8015, "vocabulary over all rows: %zu", cw_vocab_size(r.model->vocab));
        double best = -1;
        uint32_t be = 0;
        for (size_t i = 0; i < r.nepochs; i++)
            if (r.epochs[i].valid_acc > best) best = r.epochs[i].valid_acc, be = r.epochs[i].epoch;
        CHECK(r.best_epoch == be && r.best_valid_acc == best, "kept epoch %u (%g), best %u (%g)", r.best_epoch,
              r.best_valid_acc, be, best);
    }
    cw_train_result_free(&r);

    /* A default run learns: sane accuracy and calibration on the real test
     * set; the model has one dimension per label; the C search walks the
     * doubling grid upwards, keeps the most accurate C and stops only at the
     * grid's end or at a C that is not the best and whose log-loss rose. */
    cw_train_opts_init(&o, "default", err, sizeof(err));
    o.threads = 2;
    double t0 = cw_now_s();
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) == 0, "default: %s", err);
    if (r.model) {
        double acc = 0, loss = 0;
        int32_t *pred = malloc(test->n * sizeof(int32_t));
        CHECK(cw_train_evaluate(r.model, test, 2, &acc, &loss, pred, err, sizeof(err)) == 0, "evaluate: %s", err);
        printf("default recipe on sample-1k.csv: test accuracy %.4f (loss %.4f), C %g, %.2fs\n", acc, loss, r.best_c,
               cw_now_s() - t0);
        /* sample-1k is the first 250 rows of each class of AG's train split,
         * not a random sample: cross-validated on itself it scores about
         * 0.82, on test.csv about 0.67 (the fasttext recipe about 0.70). */
        CHECK(acc > 0.60, "default recipe on sample-1k: test accuracy %.4f", acc);
        CHECK(loss < 1.2, "default recipe on sample-1k: test log-loss %.4f (uniform: 1.386)", loss);
        CHECK(r.model->ngram == 2 && r.model->nbuckets > 0, "default uses hashed bigrams");
        CHECK(r.model->dim == r.model->nlabels, "default: dim %u for %u labels", r.model->dim, r.model->nlabels);
        size_t agree = 0;
        for (size_t i = 0; i < test->n; i++) agree += pred[i] == test->labels[i];
        CHECK(fabs((double)agree / (double)test->n - acc) < 1e-12, "predictions match the accuracy");
        free(pred);
        size_t nsteps = 0, best = 0;
        for (size_t i = 0; i < r.nepochs && r.epochs[i].phase == 1; i++, nsteps++) {
            const cw_train_epoch_t *e = &r.epochs[i];
            CHECK(fabs(e->c - o.c_min * pow(2.0, (double)i)) < 1e-9 * e->c, "step %zu: C %g", i, e->c);
            CHECK(e->valid_acc > 0 && e->valid_loss > 0, "step %zu: no validation figures", i);
            if (e->valid_acc > r.epochs[best].valid_acc ||
                (e->valid_acc == r.epochs[best].valid_acc && e->valid_loss < r.epochs[best].valid_loss))
                best = i;
        }
        CHECK(nsteps >= 2 && r.nepochs == nsteps + 1 && r.epochs[nsteps].phase == 2, "%zu steps, %zu records",
              nsteps, r.nepochs);
        CHECK(r.best_c == r.epochs[best].c && r.best_valid_acc == r.epochs[best].valid_acc,
              "chosen C %g (acc %g), most accurate %g", r.best_c, r.best_valid_acc, r.epochs[best].c);
        const cw_train_epoch_t *last = &r.epochs[nsteps - 1];
        CHECK(last->c * 2.0 > o.c_max || (nsteps - 1 != best && last->valid_loss > r.epochs[nsteps - 2].valid_loss),
              "the search stopped at C %g without reason", last->c);
        for (size_t i = 0; i + 1 < nsteps; i++)
            CHECK(!(i != best && i > 0 && r.epochs[i].valid_loss > r.epochs[i - 1].valid_loss),
                  "the search went on past step %zu", i);
    }
    cw_train_result_free(&r);

    /* Any thread count gives the same default model (its solves are
     * independent jobs with their own seeds). */
    {
        cw_train_result_t one_t, two_t;
        cw_train_opts_init(&o, "default", err, sizeof(err));
        o.threads = 1;
        CHECK(cw_train(ds, &o, &one_t, err, sizeof(err)) == 0, "default, 1 thread: %s", err);
        o.threads = 3;
        CHECK(cw_train(ds, &o, &two_t, err, sizeof(err)) == 0, "default, 3 threads: %s", err);
        if (one_t.model && two_t.model) CHECK(same_weights(one_t.model, two_t.model), "default: 3 threads differ from 1");
        cw_train_result_free(&one_t);
        cw_train_result_free(&two_t);
    }

    /* The served model IS the trained SVMs: with a fixed C, no held-out
     * rows (so no temperature: T = 1) and a tight tolerance, the logits the
     * model computes by its definition (model.h) on the training rows must
     * satisfy the optimality condition of each label's squared-hinge SVM in
     * its bias coordinate: b_c = 2C sum_i max(0, 1 - y_ic z_ic) y_ic, with
     * y_ic = +1 for rows of label c, else -1, z_ic the logit of label c. */
    cw_train_opts_init(&o, "default", err, sizeof(err));
    o.svm_c = 0.5;
    o.folds = 1;
    o.valid_frac = 0.0;
    o.svm_eps = 1e-5;
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) == 0, "default, fixed C: %s", err);
    if (r.model) {
        const cw_model_t *m = r.model;
        uint32_t nl = m->nlabels;
        CHECK(r.nepochs == 2 && r.epochs[0].c == 0.5 && r.epochs[0].valid_acc < 0, "fixed C: %zu records", r.nepochs);
        double *g = calloc(nl, sizeof(double));
        int32_t *ids = NULL;
        size_t cap = 0;
        cw_tokens_t t;
        for (size_t i = 0; i < ds->n; i++) {
            size_t nids = 0;
            cw_dataset_tokens(ds, i, &t);
            cw_model_featurize(m, &t, &ids, &nids, &cap);
            for (uint32_t c = 0; c < nl; c++) {
                double h = 0.0;
                for (uint32_t j = 0; j < m->dim; j++) {
                    double mean = 0.0;
                    for (size_t q = 0; q < nids; q++) mean += m->emb[(uint64_t)ids[q] * m->dim + j];
                    h += m->fc_w[c * m->dim + j] * (nids ? mean / (double)nids : 0.0);
                }
                double z = h + m->fc_b[c], y = ds->labels[i] == (int32_t)c ? 1.0 : -1.0;
                double xi = 1.0 - y * z;
                if (xi > 0) g[c] += 2.0 * o.svm_c * xi * y;
            }
        }
        for (uint32_t c = 0; c < nl; c++)
            CHECK(fabs(g[c] - m->fc_b[c]) < 1e-3 * (1.0 + fabs(g[c])), "label %u: bias %g, optimality says %g", c,
                  (double)m->fc_b[c], g[c]);
        free(g);
        cw_free(ids);
    }
    cw_train_result_free(&r);

    /* Ensemble: K members side by side in one model of dim K*d. Member 0
     * is trained exactly as a lone model with the same seed, so block 0 of
     * the ensemble's rows is that model's rows and block 0 of fc_w is its
     * fc_w / K (the logits are the mean of the members' logits). */
    cw_train_result_t one;
    cw_train_opts_init(&o, "fasttext", err, sizeof(err));
    o.threads = 1;
    o.select_epochs = 0;
    o.epochs = 4;
    o.ensemble = 1;
    CHECK(cw_train(ds, &o, &one, err, sizeof(err)) == 0, "lone member: %s", err);
    o.ensemble = 3;
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) == 0, "ensemble: %s", err);
    if (r.model && one.model) {
        const cw_model_t *e = r.model, *m = one.model;
        uint32_t d = m->dim;
        CHECK(e->dim == 3 * d && e->nrows == m->nrows, "ensemble dim %u rows %llu", e->dim,
              (unsigned long long)e->nrows);
        int bad = 0;
        for (uint64_t row = 0; row < m->nrows && e->dim == 3 * d; row++)
            bad += memcmp(e->emb + row * e->dim, m->emb + row * d, d * sizeof(float)) != 0;
        CHECK(bad == 0, "%d rows of block 0 differ from the lone model", bad);
        double worst = 0.0, other = 0.0;
        for (uint32_t l = 0; l < m->nlabels && e->dim == 3 * d; l++)
            for (uint32_t j = 0; j < d; j++) {
                worst = fmax(worst, fabs(3.0 * e->fc_w[l * e->dim + j] - m->fc_w[l * d + j]));
                other = fmax(other, fabs(3.0 * e->fc_w[l * e->dim + d + j] - m->fc_w[l * d + j]));
            }
        CHECK(worst < 1e-6, "fc_w block 0 is not the lone model's / 3 (%g)", worst);
        CHECK(other > 1e-3, "members 0 and 1 are identical");
        /* Members train one per thread, so two threads give the same ensemble. */
        cw_train_result_t two;
        o.threads = 2;
        CHECK(cw_train(ds, &o, &two, err, sizeof(err)) == 0, "ensemble on 2 threads: %s", err);
        if (two.model) CHECK(same_weights(two.model, r.model), "ensemble: 2 threads differ from 1");
        cw_train_result_free(&two);
    }
    cw_train_result_free(&one);
    cw_train_result_free(&r);

    /* Bad options are refused. */
    cw_train_opts_init(&o, "fasttext", err, sizeof(err));
    o.dim = 0;
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) != 0 && strstr(err, "dim"), "dim 0: '%s'", err);
    cw_train_opts_init(&o, "default", err, sizeof(err));
    o.dim = 7;
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) != 0 && strstr(err, "one dimension per label"), "default, dim 7: '%s'",
          err);
    cw_train_opts_init(&o, "default", err, sizeof(err));
    o.folds = 1;
    o.valid_frac = 0.0;
    CHECK(cw_train(ds, &o, &r, err, sizeof(err)) != 0 && strstr(err, "searching C"), "no validation rows: '%s'", err);
    CHECK(cw_train_opts_init(&o, "fancy", err, sizeof(err)) != 0 && strstr(err, "fancy"), "unknown recipe");
done:
    cw_dataset_destroy(ds);
    cw_dataset_destroy(test);
}

/* ---- the report ------------------------------------------------------------- */

static void test_report(void) {
    const char *names[] = {"a", "b,c", "d"};
    cw_report_t *r = cw_report_new(names, 3);
    /* gold a: 3 right, 1 as b; gold b: 2 right; gold d: 1 as a; label 3 ignored. */
    uint32_t pairs[][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 1}, {2, 0}, {3, 0}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) cw_report_add(r, pairs[i][0], pairs[i][1]);
    CHECK(r->total == 7 && fabs(cw_report_accuracy(r) - 5.0 / 7.0) < 1e-12, "accuracy %g", cw_report_accuracy(r));
    double p, q, f;
    uint64_t sup;
    cw_report_class(r, 0, &p, &q, &f, &sup);
    CHECK(fabs(p - 0.75) < 1e-12 && fabs(q - 0.75) < 1e-12 && fabs(f - 0.75) < 1e-12 && sup == 4, "class a");
    cw_report_class(r, 1, &p, &q, &f, &sup);
    CHECK(fabs(p - 2.0 / 3.0) < 1e-12 && q == 1.0 && fabs(f - 0.8) < 1e-12 && sup == 2, "class b,c");
    cw_report_class(r, 2, &p, &q, &f, &sup);
    CHECK(p == 0.0 && q == 0.0 && f == 0.0 && sup == 1, "class d (never predicted)");
    CHECK(fabs(cw_report_macro_f1(r) - (0.75 + 0.8) / 3) < 1e-12, "macro F1");

    cw_train_epoch_t ep[3] = {{.phase = 1, .epoch = 1, .loss_sum = 300, .valid_acc = 0.5, .valid_loss = 1},
                              {.phase = 1, .epoch = 2, .loss_sum = 200, .valid_acc = 0.7, .valid_loss = 0.8},
                              {.phase = 2, .epoch = 1, .loss_sum = 150, .valid_acc = -1, .valid_loss = -1}};
    char dir[512], err[256] = "";
    snprintf(dir, sizeof(dir), "%s/report", tmpdir);
    CHECK(cw_report_write_dir(dir, ep, 3, r, err, sizeof(err)) == 0, "write: %s", err);
    const char *files[] = {"epochs.csv", "training.svg", "confusion.csv", "classes.csv", "report.txt"};
    for (size_t i = 0; i < 5; i++) {
        char path[600], *buf = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        CHECK(cw_file_read_all(path, &buf, &len, err, sizeof(err)) == 0 && len > 0, "%s: %s", files[i], err);
        if (!buf) continue;
        if (i == 0) CHECK(strstr(buf, "\n1,2,200.000000,") && strstr(buf, "\n2,1,150.000000,0.000000,,,"), "epochs.csv:\n%s", buf);
        if (i == 1) CHECK(strstr(buf, "<svg") && strstr(buf, "total loss") && strstr(buf, "accuracy") &&
                              strstr(buf, "</svg>"), "training.svg");
        if (i == 2) CHECK(strstr(buf, "\"b,c\"") && strstr(buf, "\na,3,1,0\n"), "confusion.csv:\n%s", buf);
        if (i == 4) CHECK(strstr(buf, "accuracy=0.7143"), "report.txt ends with the accuracy line");
        cw_free(buf);
    }
    cw_report_destroy(r);
}

int main(void) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cw_test_train.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_seed_step();
    test_dataset();
    test_engine();
    test_report();
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    if (failures) {
        fprintf(stderr, "test_train: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_train: ok\n");
    return 0;
}
