/* report.c: confusion matrix, per-class metrics, the training report files.
 * See report.h. */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

cw_report_t *cw_report_new(const char *const *labels, uint32_t nlabels) {
    cw_report_t *r = cw_calloc(1, sizeof(*r));
    r->nlabels = nlabels;
    r->labels = cw_calloc(nlabels ? nlabels : 1, sizeof(char *));
    for (uint32_t i = 0; i < nlabels; i++) r->labels[i] = cw_strdup(labels[i]);
    r->confusion = cw_calloc((size_t)nlabels * nlabels + 1, sizeof(uint64_t));
    return r;
}

void cw_report_destroy(cw_report_t *r) {
    if (!r) return;
    for (uint32_t i = 0; i < r->nlabels; i++) cw_free(r->labels[i]);
    cw_free(r->labels);
    cw_free(r->confusion);
    cw_free(r);
}

void cw_report_add(cw_report_t *r, uint32_t gold, uint32_t pred) {
    if (gold >= r->nlabels || pred >= r->nlabels) return;
    r->confusion[(size_t)gold * r->nlabels + pred]++;
    r->total++;
    r->correct += gold == pred;
}

double cw_report_accuracy(const cw_report_t *r) {
    return r->total ? (double)r->correct / (double)r->total : 0.0;
}

void cw_report_class(const cw_report_t *r, uint32_t c, double *precision, double *recall, double *f1,
                     uint64_t *support) {
    uint64_t tp = r->confusion[(size_t)c * r->nlabels + c], pred = 0, gold = 0;
    for (uint32_t i = 0; i < r->nlabels; i++) {
        pred += r->confusion[(size_t)i * r->nlabels + c];
        gold += r->confusion[(size_t)c * r->nlabels + i];
    }
    double p = pred ? (double)tp / (double)pred : 0.0;
    double q = gold ? (double)tp / (double)gold : 0.0;
    if (precision) *precision = p;
    if (recall) *recall = q;
    if (f1) *f1 = p + q > 0 ? 2 * p * q / (p + q) : 0.0;
    if (support) *support = gold;
}

double cw_report_macro_f1(const cw_report_t *r) {
    if (!r->nlabels) return 0.0;
    double s = 0.0;
    for (uint32_t c = 0; c < r->nlabels; c++) {
        double f1;
        cw_report_class(r, c, NULL, NULL, &f1, NULL);
        s += f1;
    }
    return s / r->nlabels;
}

void cw_report_print(const cw_report_t *r, FILE *out) {
    int w = 9;
    for (uint32_t i = 0; i < r->nlabels; i++)
        if ((int)strlen(r->labels[i]) > w) w = (int)strlen(r->labels[i]);
    fprintf(out, "%-*s %9s %9s %9s %9s\n", w, "class", "precision", "recall", "f1", "support");
    for (uint32_t c = 0; c < r->nlabels; c++) {
        double p, q, f;
        uint64_t s;
        cw_report_class(r, c, &p, &q, &f, &s);
        fprintf(out, "%-*s %9.4f %9.4f %9.4f %9llu\n", w, r->labels[c], p, q, f, (unsigned long long)s);
    }
    fprintf(out, "%-*s %9s %9s %9.4f %9llu\n", w, "macro", "", "", cw_report_macro_f1(r),
            (unsigned long long)r->total);
    fprintf(out, "\nconfusion matrix (rows: true label, columns: predicted)\n%-*s", w, "");
    for (uint32_t c = 0; c < r->nlabels; c++) fprintf(out, " %9.9s", r->labels[c]);
    fprintf(out, "\n");
    for (uint32_t g = 0; g < r->nlabels; g++) {
        fprintf(out, "%-*s", w, r->labels[g]);
        for (uint32_t c = 0; c < r->nlabels; c++)
            fprintf(out, " %9llu", (unsigned long long)r->confusion[(size_t)g * r->nlabels + c]);
        fprintf(out, "\n");
    }
}

/* ---- a growing string -------------------------------------------------- */

typedef struct sbuf_s {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    cw_grow((void **)&b->p, &b->cap, b->len + (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* CSV field: quoted when it holds a comma, quote or newline. */
static void sb_csv(sbuf_t *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        sb_printf(b, "%s", s);
        return;
    }
    sb_printf(b, "\"");
    for (; *s; s++) sb_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    sb_printf(b, "\"");
}

static void sb_xml(sbuf_t *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

/* ---- the chart ---------------------------------------------------------- */

/* A "nice" axis range [lo, hi] with about 5 ticks of size *step. */
static void nice_range(double mn, double mx, double *lo, double *hi, double *step) {
    if (!(mx > mn)) {
        double pad = fabs(mn) > 0 ? fabs(mn) * 0.1 : 1.0;
        mn -= pad;
        mx += pad;
    }
    double raw = (mx - mn) / 5.0;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double s = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    *step = s * mag;
    *lo = floor(mn / *step) * *step;
    *hi = ceil(mx / *step) * *step;
}

char *cw_report_svg(const cw_train_epoch_t *epochs, size_t nepochs) {
    /* The plot shows the last phase that has validation accuracy (phase 1 of the
     * default recipe, the only phase of the seed recipe). */
    uint32_t phase = 0;
    for (size_t i = 0; i < nepochs; i++)
        if (epochs[i].valid_acc >= 0) phase = epochs[i].phase;
    if (!phase && nepochs) phase = epochs[nepochs - 1].phase;
    const cw_train_epoch_t **pts = cw_malloc((nepochs ? nepochs : 1) * sizeof(*pts));
    size_t n = 0;
    for (size_t i = 0; i < nepochs; i++)
        if (epochs[i].phase == phase) pts[n++] = &epochs[i];

    const double W = 640, H = 400, L = 80, R = 80, T = 40, B = 60;
    double pw = W - L - R, ph = H - T - B;
    double lmin = INFINITY, lmax = -INFINITY, amin = INFINITY, amax = -INFINITY;
    int have_acc = 0;
    for (size_t i = 0; i < n; i++) {
        lmin = fmin(lmin, pts[i]->loss_sum);
        lmax = fmax(lmax, pts[i]->loss_sum);
        if (pts[i]->valid_acc >= 0) {
            have_acc = 1;
            amin = fmin(amin, pts[i]->valid_acc);
            amax = fmax(amax, pts[i]->valid_acc);
        }
    }
    if (n == 0) lmin = 0, lmax = 1;
    if (!have_acc) amin = 0, amax = 1;
    double l0, l1, ls, a0, a1, as;
    nice_range(lmin, lmax, &l0, &l1, &ls);
    nice_range(amin, amax, &a0, &a1, &as);
    double xmax = n > 1 ? (double)(n - 1) : 1.0;
#define XP(i) (L + pw * (double)(i) / xmax)
#define YL(v) (T + ph * (1.0 - ((v) - l0) / (l1 - l0)))
#define YA(v) (T + ph * (1.0 - ((v) - a0) / (a1 - a0)))
    sbuf_t b = {0};
    sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n",
              L, T, pw, ph);
    /* x ticks: epochs (1-based), or the default recipe's candidate C values */
    int by_c = n > 0 && pts[0]->c > 0;
    size_t xstep = n > 10 ? (n + 9) / 10 : 1;
    for (size_t i = 0; i < n; i += xstep) {
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                  XP(i), T + ph, XP(i), T + ph + 5, XP(i), T + ph + 18);
        if (by_c) sb_printf(&b, "%g</text>\n", pts[i]->c);
        else sb_printf(&b, "%u</text>\n", pts[i]->epoch);
    }
    sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#d62728\">%s</text>\n", L + pw / 2,
              H - 20, by_c ? "C (SVM regularisation)" : "epoch");
    /* left axis: total loss (red) */
    for (double v = l0; v <= l1 + ls * 0.5; v += ls)
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#d62728\">%g</text>\n",
                  L - 5, YL(v), L, YL(v), L - 8, YL(v) + 4, v);
    sb_printf(&b, "<text transform=\"translate(20,%.1f) rotate(-90)\" text-anchor=\"middle\" "
                  "fill=\"#d62728\">total loss</text>\n", T + ph / 2);
    /* right axis: accuracy (blue) */
    for (double v = a0; v <= a1 + as * 0.5; v += as)
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" fill=\"#1f77b4\">%g</text>\n",
                  L + pw, YA(v), L + pw + 5, YA(v), L + pw + 8, YA(v) + 4, v);
    sb_printf(&b, "<text transform=\"translate(%.1f,%.1f) rotate(90)\" text-anchor=\"middle\" "
                  "fill=\"#1f77b4\">accuracy</text>\n", W - 20, T + ph / 2);
    /* the two lines */
    sb_printf(&b, "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < n; i++) sb_printf(&b, "%s%.1f,%.1f", i ? " " : "", XP(i), YL(pts[i]->loss_sum));
    sb_printf(&b, "\"/>\n");
    if (have_acc) {
        sb_printf(&b, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
        int first = 1;
        for (size_t i = 0; i < n; i++) {
            if (pts[i]->valid_acc < 0) continue;
            sb_printf(&b, "%s%.1f,%.1f", first ? "" : " ", XP(i), YA(pts[i]->valid_acc));
            first = 0;
        }
        sb_printf(&b, "\"/>\n");
    }
    sb_printf(&b, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\">", W / 2);
    sb_xml(&b, phase == 2 ? "training loss (all rows)" : "training loss and validation accuracy");
    sb_printf(&b, "</text>\n</svg>\n");
#undef XP
#undef YL
#undef YA
    cw_free(pts);
    return b.p;
}

/* ---- the report directory ------------------------------------------------- */

static int write_file(const char *dir, const char *name, const sbuf_t *b, char *errstr, size_t errstr_size) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = cw_malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    int rc = cw_file_write_atomic(path, b->p ? b->p : "", b->len, errstr, errstr_size);
    cw_free(path);
    return rc;
}

int cw_report_write_dir(const char *dir, const cw_train_epoch_t *epochs, size_t nepochs,
                        const cw_report_t *test, char *errstr, size_t errstr_size) {
    int rc = -1;
    sbuf_t b = {0};
    char *svg = NULL;
    if (cw_mkdir_p(dir, errstr, errstr_size) != 0) goto done;

    sb_printf(&b, "phase,epoch,loss_sum,loss_mean,valid_accuracy,valid_loss,lr,seconds,examples_per_s,member,c\n");
    for (size_t i = 0; i < nepochs; i++) {
        const cw_train_epoch_t *e = &epochs[i];
        sb_printf(&b, "%u,%u,%.6f,%.6f,", e->phase, e->epoch, e->loss_sum, e->loss_mean);
        if (e->valid_acc >= 0) sb_printf(&b, "%.6f,%.6f,", e->valid_acc, e->valid_loss);
        else sb_printf(&b, ",,");
        sb_printf(&b, "%.6g,%.3f,%.0f,%u,", e->lr, e->seconds, e->examples_per_s, e->member);
        if (e->c > 0) sb_printf(&b, "%.6g", e->c);
        sb_printf(&b, "\n");
    }
    if (write_file(dir, "epochs.csv", &b, errstr, errstr_size) != 0) goto done;

    svg = cw_report_svg(epochs, nepochs);
    sbuf_t s = {.p = svg, .len = strlen(svg)};
    if (write_file(dir, "training.svg", &s, errstr, errstr_size) != 0) goto done;

    if (test) {
        b.len = 0;
        sb_printf(&b, "true\\predicted");
        for (uint32_t c = 0; c < test->nlabels; c++) {
            sb_printf(&b, ",");
            sb_csv(&b, test->labels[c]);
        }
        sb_printf(&b, "\n");
        for (uint32_t g = 0; g < test->nlabels; g++) {
            sb_csv(&b, test->labels[g]);
            for (uint32_t c = 0; c < test->nlabels; c++)
                sb_printf(&b, ",%llu", (unsigned long long)test->confusion[(size_t)g * test->nlabels + c]);
            sb_printf(&b, "\n");
        }
        if (write_file(dir, "confusion.csv", &b, errstr, errstr_size) != 0) goto done;

        b.len = 0;
        sb_printf(&b, "label,precision,recall,f1,support\n");
        for (uint32_t c = 0; c < test->nlabels; c++) {
            double p, q, f;
            uint64_t sup;
            cw_report_class(test, c, &p, &q, &f, &sup);
            sb_csv(&b, test->labels[c]);
            sb_printf(&b, ",%.6f,%.6f,%.6f,%llu\n", p, q, f, (unsigned long long)sup);
        }
        if (write_file(dir, "classes.csv", &b, errstr, errstr_size) != 0) goto done;

        char *txt = NULL;
        size_t tlen = 0;
        FILE *mf = open_memstream(&txt, &tlen);
        if (!mf) {
            cw_seterr(errstr, errstr_size, "open_memstream failed");
            goto done;
        }
        cw_report_print(test, mf);
        fprintf(mf, "accuracy=%.4f\n", cw_report_accuracy(test));
        fclose(mf);
        sbuf_t t = {.p = txt, .len = tlen};
        int wr = write_file(dir, "report.txt", &t, errstr, errstr_size);
        free(txt);
        if (wr != 0) goto done;
    }
    rc = 0;
done:
    cw_free(b.p);
    cw_free(svg);
    return rc;
}
