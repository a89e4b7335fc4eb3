/* cmd_models.c: `catwire models`: the operator's view of a model registry
 * (registry.h): list and show versions, promote, roll back, pin fleets,
 * collect old versions.
 *
 * Every subcommand takes --registry DIR and a model reference, given as
 * --model REF or as the one positional argument; REF is NAME, or NAME@N
 * where a version is meant. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "cli.h"
#include "registry.h"
#include "util.h"

typedef struct models_opts_s {
    const char *cmd;       /* subcommand */
    const char *registry;
    const char *ref;       /* NAME or NAME@N */
    const char *fleet;
    int64_t keep;          /* gc; -1 when not given */
    int dry_run;
    int force;
} models_opts_t;

typedef struct models_cmd_s {
    const char *name;
    int (*run)(const models_opts_t *o);
    const char *args;      /* synopsis after the subcommand */
    const char *summary;
    const char *help;      /* details */
    unsigned opts;         /* which options the subcommand accepts */
} models_cmd_t;

#define OPT_FLEET 1u
#define OPT_KEEP 2u
#define OPT_DRY 4u
#define OPT_FORCE 8u

static void common_help(FILE *f) {
    fprintf(f,
            "Common options:\n"
            "  -r, --registry DIR   the model registry (required)\n"
            "  -m, --model REF      NAME, or NAME@VERSION where a version is meant; may also\n"
            "                       be given as the positional argument\n"
            "  -h, --help           this text\n"
            "\n"
            "Exit codes: 0 ok, 1 error, 2 usage.\n");
}

/* ---- helpers ----------------------------------------------------------- */

/* Split o->ref into a name (malloc'd) and a version (0 when absent). */
static int split_ref(const models_opts_t *o, char **name, int64_t *version) {
    const char *at = strchr(o->ref, '@');
    *name = at ? cw_strndup(o->ref, (size_t)(at - o->ref)) : cw_strdup(o->ref);
    *version = 0;
    if (at) {
        char *end;
        errno = 0;
        long long v = strtoll(at + 1, &end, 10);
        if (errno || end == at + 1 || *end || v < 1) {
            fprintf(stderr, "catwire models %s: invalid version in '%s' (expected NAME@N, N >= 1)\n",
                    o->cmd, o->ref);
            cw_free(*name);
            *name = NULL;
            return -1;
        }
        *version = v;
    }
    return 0;
}

static int need_version(const models_opts_t *o, char **name, int64_t *version) {
    if (split_ref(o, name, version) != 0) return CW_EXIT_USAGE;
    if (*version == 0) {
        fprintf(stderr, "catwire models %s: needs NAME@VERSION, got '%s'\n", o->cmd, o->ref);
        cw_free(*name);
        *name = NULL;
        return CW_EXIT_USAGE;
    }
    return CW_EXIT_OK;
}

static int need_name_only(const models_opts_t *o, char **name) {
    int64_t v;
    if (split_ref(o, name, &v) != 0) return CW_EXIT_USAGE;
    if (v != 0) {
        fprintf(stderr, "catwire models %s: takes a model NAME, not a version ('%s')\n", o->cmd, o->ref);
        cw_free(*name);
        *name = NULL;
        return CW_EXIT_USAGE;
    }
    return CW_EXIT_OK;
}

static const char *short_metric(const char *name) {
    return strncmp(name, "metrics.", 8) ? name : name + 8;
}

/* ---- list -------------------------------------------------------------- */

static int cmd_list(const models_opts_t *o) {
    char err[512], *name = NULL, **fleets = NULL;
    int64_t *vs = NULL, *pins = NULL, *hist = NULL;
    size_t n = 0, npins = 0, nhist = 0;
    int rc = need_name_only(o, &name);
    if (rc != CW_EXIT_OK) return rc;
    rc = CW_EXIT_ERROR;
    if (cw_registry_list(o->registry, name, &vs, &n, err, sizeof(err)) != 0 ||
        cw_registry_history(o->registry, name, &hist, &nhist, err, sizeof(err)) != 0 ||
        cw_registry_pins(o->registry, name, &fleets, &pins, &npins, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire models list: %s\n", err);
        goto done;
    }
    int64_t cur = nhist ? hist[0] : 0;
    int64_t prev = cw_registry_previous(o->registry, name, err, sizeof(err));
    if (prev < 0) prev = 0;
    printf("model %s in %s: %zu version%s, current %s", name, o->registry, n, n == 1 ? "" : "s",
           cur ? "" : "none");
    if (cur) printf("%" PRId64, cur);
    if (prev) printf(", last good %" PRId64, prev);
    printf("\n  %-8s %-24s %-10s %s\n", "VERSION", "CREATED_AT", "RECIPE", "METRICS / MARKS");
    int bad_meta = 0;
    for (size_t i = n; i-- > 0;) { /* newest first */
        cw_registry_meta_t mt;
        int ok = cw_registry_meta_read(o->registry, name, vs[i], &mt, err, sizeof(err)) == 0;
        if (!ok) {
            fprintf(stderr, "catwire models list: %s\n", err);
            bad_meta = 1;
        }
        printf("%c %-8" PRId64 " %-24s %-10s", vs[i] == cur ? '*' : ' ', vs[i],
               ok && mt.created_at ? mt.created_at : "?", ok && mt.recipe ? mt.recipe : "-");
        for (size_t k = 0; ok && k < mt.nmetrics; k++)
            printf(" %s=%.4g", short_metric(mt.metric_names[k]), mt.metric_values[k]);
        if (vs[i] == cur) printf(" [current]");
        if (vs[i] == prev) printf(" [last good]");
        for (size_t k = 0; k < npins; k++)
            if (pins[k] == vs[i]) printf(" [pinned: %s]", fleets[k]);
        printf("\n");
        if (ok) cw_registry_meta_clear(&mt);
    }
    for (size_t k = 0; k < npins; k++) {
        int found = 0;
        for (size_t i = 0; i < n; i++) found |= vs[i] == pins[k];
        if (!found)
            printf("! fleet %s is pinned to version %" PRId64 ", which is missing\n", fleets[k], pins[k]);
    }
    rc = bad_meta ? CW_EXIT_ERROR : CW_EXIT_OK;
done:
    cw_free(name);
    cw_free(vs);
    cw_free(hist);
    cw_registry_pins_free(fleets, pins, npins);
    return rc;
}

/* ---- show -------------------------------------------------------------- */

static int cmd_show(const models_opts_t *o) {
    char err[512], *name = NULL, *path = NULL, **fleets = NULL;
    int64_t v = 0, *pins = NULL;
    size_t npins = 0;
    cw_model_t *m = NULL;
    cw_registry_meta_t mt;
    memset(&mt, 0, sizeof(mt));
    int rc = CW_EXIT_ERROR;
    if (cw_registry_resolve(o->registry, o->ref, &name, &v, &path, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire models show: %s\n", err);
        goto done;
    }
    int64_t cur = cw_registry_current(o->registry, name, err, sizeof(err));
    int64_t prev = cw_registry_previous(o->registry, name, err, sizeof(err));
    printf("model:       %s\n", name);
    printf("version:     %" PRId64 "%s%s", v, v == cur ? " [current]" : "", v == prev ? " [last good]" : "");
    if (cw_registry_pins(o->registry, name, &fleets, &pins, &npins, err, sizeof(err)) == 0)
        for (size_t k = 0; k < npins; k++)
            if (pins[k] == v) printf(" [pinned: %s]", fleets[k]);
    printf("\npath:        %s\n", path);
    struct stat st;
    if (stat(path, &st) == 0) printf("file size:   %lld bytes\n", (long long)st.st_size);
    /* The format version straight from the file, even when it does not load. */
    FILE *f = fopen(path, "rb");
    unsigned char hdr[12];
    if (f && fread(hdr, 1, 12, f) == 12 && !memcmp(hdr, CW_CKPT_MAGIC, 8))
        printf("format:      %u\n", (unsigned)hdr[8] | (unsigned)hdr[9] << 8 | (unsigned)hdr[10] << 16 |
                                        (unsigned)hdr[11] << 24);
    if (f) fclose(f);
    m = cw_ckpt_read(path, err, sizeof(err));
    if (!m) {
        printf("checksum:    FAILED: %s\n", err);
    } else {
        printf("checksum:    OK (CRC-32C; loads)\n");
        printf("dim:         %" PRIu32 "\n", m->dim);
        printf("labels:      %" PRIu32 ":", m->nlabels);
        for (uint32_t i = 0; i < m->nlabels; i++) printf(" %s%s", m->labels[i], i + 1 < m->nlabels ? "," : "");
        printf("\nvocabulary:  %zu tokens (<unk> included)\n", cw_vocab_size(m->vocab));
        if (m->ngram > 1) printf("n-grams:     up to %" PRIu32 " words, %" PRIu32 " hash buckets\n", m->ngram, m->nbuckets);
        else printf("n-grams:     none (words only)\n");
        printf("rows:        %" PRIu64 " x %" PRIu32 "\n", m->nrows, m->dim);
    }
    if (cw_registry_meta_read(o->registry, name, v, &mt, err, sizeof(err)) != 0) {
        printf("meta.json:   unreadable: %s\n", err);
        rc = CW_EXIT_ERROR;
        goto done;
    }
    printf("meta.json:\n%s", mt.json);
    if (mt.json[0] && mt.json[strlen(mt.json) - 1] != '\n') printf("\n");
    rc = m ? CW_EXIT_OK : CW_EXIT_ERROR;
done:
    cw_model_destroy(m);
    cw_registry_meta_clear(&mt);
    cw_registry_pins_free(fleets, pins, npins);
    cw_free(name);
    cw_free(path);
    return rc;
}

/* ---- promote / rollback ------------------------------------------------ */

static int cmd_promote(const models_opts_t *o) {
    char err[512], *name = NULL, *path = NULL;
    int64_t v = 0;
    cw_model_t *m = NULL, *old = NULL;
    int rc = need_version(o, &name, &v);
    if (rc != CW_EXIT_OK) return rc;
    rc = CW_EXIT_ERROR;
    if (cw_registry_resolve(o->registry, o->ref, NULL, NULL, &path, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire models promote: %s\n", err);
        goto done;
    }
    int64_t cur = cw_registry_current(o->registry, name, err, sizeof(err));
    if (cur < 0) {
        fprintf(stderr, "catwire models promote: %s\n", err);
        goto done;
    }
    /* Workers would refuse a version that does not load; refuse it here first. */
    m = cw_ckpt_read(path, err, sizeof(err));
    if (!m && !o->force) {
        fprintf(stderr, "catwire models promote: refusing %s@%" PRId64 ": %s (--force promotes it anyway)\n",
                name, v, err);
        goto done;
    }
    if (!m) fprintf(stderr, "catwire models promote: warning: %s@%" PRId64 " does not load (%s); promoting anyway (--force)\n",
                    name, v, err);
    if (m && cur > 0 && cur != v) {
        char oref[300];
        snprintf(oref, sizeof(oref), "%s@%" PRId64, name, cur);
        old = cw_registry_load(o->registry, oref, NULL, err, sizeof(err));
        int same = old && old->nlabels == m->nlabels;
        for (uint32_t i = 0; same && i < m->nlabels; i++) same = !strcmp(old->labels[i], m->labels[i]);
        if (old && !same)
            fprintf(stderr, "catwire models promote: warning: %s@%" PRId64 " has different labels than the "
                    "current %" PRId64 "; workers refuse it unless configured to allow label changes\n",
                    name, v, cur);
    }
    if (cw_registry_set_current(o->registry, name, v, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire models promote: %s\n", err);
        goto done;
    }
    if (cur == v) printf("%s: version %" PRId64 " is already current\n", name, v);
    else if (cur > 0) printf("%s: current is now %" PRId64 " (was %" PRId64 ")\n", name, v, cur);
    else printf("%s: current is now %" PRId64 "\n", name, v);
    rc = CW_EXIT_OK;
done:
    cw_model_destroy(m);
    cw_model_destroy(old);
    cw_free(name);
    cw_free(path);
    return rc;
}

static int cmd_rollback(const models_opts_t *o) {
    char err[512], *name = NULL;
    int rc = need_name_only(o, &name);
    if (rc != CW_EXIT_OK) return rc;
    int64_t cur = cw_registry_current(o->registry, name, err, sizeof(err));
    int64_t v = cur < 0 ? -1 : cw_registry_rollback(o->registry, name, err, sizeof(err));
    if (v < 0) {
        fprintf(stderr, "catwire models rollback: %s\n", err);
        rc = CW_EXIT_ERROR;
    } else {
        printf("%s: rolled back from %" PRId64 " to %" PRId64 "\n", name, cur, v);
    }
    cw_free(name);
    return rc;
}

/* ---- pins ----------------------------------------------------------------- */

static int cmd_pin(const models_opts_t *o) {
    char err[512], *name = NULL;
    int64_t v = 0;
    int rc = need_version(o, &name, &v);
    if (rc != CW_EXIT_OK) return rc;
    int64_t old = cw_registry_pinned(o->registry, name, o->fleet, err, sizeof(err));
    if (old < 0 || cw_registry_pin(o->registry, name, o->fleet, v, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire models pin: %s\n", err);
        rc = CW_EXIT_ERROR;
    } else if (old > 0 && old != v) {
        printf("%s: fleet %s pinned to %" PRId64 " (was %" PRId64 ")\n", name, o->fleet, v, old);
    } else {
        printf("%s: fleet %s pinned to %" PRId64 "\n", name, o->fleet, v);
    }
    cw_free(name);
    return rc;
}

static int cmd_unpin(const models_opts_t *o) {
    char err[512], *name = NULL;
    int rc = need_name_only(o, &name);
    if (rc != CW_EXIT_OK) return rc;
    int r = cw_registry_unpin(o->registry, name, o->fleet, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "catwire models unpin: %s\n", err);
        rc = CW_EXIT_ERROR;
    } else {
        printf("%s: fleet %s %s; it follows the current version\n", name, o->fleet,
               r ? "unpinned" : "was not pinned");
    }
    cw_free(name);
    return rc;
}

/* ---- gc ------------------------------------------------------------------- */

static int cmd_gc(const models_opts_t *o) {
    char err[512], *name = NULL;
    int64_t *del = NULL;
    size_t nd = 0;
    int rc = need_name_only(o, &name);
    if (rc != CW_EXIT_OK) return rc;
    if (cw_registry_gc(o->registry, name, (size_t)o->keep, o->dry_run, &del, &nd, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire models gc: %s\n", err);
        rc = CW_EXIT_ERROR;
        goto done;
    }
    if (nd == 0) {
        printf("%s: nothing to delete\n", name);
    } else {
        printf("%s: %s", name, o->dry_run ? "would delete" : "deleted");
        for (size_t i = 0; i < nd; i++) printf(" %" PRId64, del[i]);
        printf("\n");
    }
done:
    cw_free(del);
    cw_free(name);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------- */

static const models_cmd_t models_cmds[] = {
    {"list", cmd_list, "NAME", "versions with created_at, recipe, metrics and marks",
     "Newest first. '*' marks the current version; [last good] is the rollback target;\n"
     "[pinned: F] shows fleet pins. Metrics are the numbers in meta.json's \"metrics\"\n"
     "object and its top-level *accuracy* fields.\n", 0},
    {"show", cmd_show, "NAME[@VERSION]", "meta.json and checkpoint facts of one version",
     "NAME alone shows the current version (or the highest when none is current).\n"
     "Loads the checkpoint to verify it (checksum, dimensions) and prints its\n"
     "dimensions, labels and vocabulary size; exit 1 when it does not load.\n", 0},
    {"promote", cmd_promote, "NAME@VERSION [--force]", "make a version current",
     "The checkpoint must load (checksum, dimensions) or promote refuses it;\n"
     "--force skips that check (for testing how workers refuse a bad version).\n"
     "Workers that follow the current version switch to it; pinned fleets do not.\n"
     "  -f, --force          promote even when the checkpoint does not load\n", OPT_FORCE},
    {"rollback", cmd_rollback, "NAME", "make the previous current version current again",
     "Repeated rollbacks walk further back through the versions that were current,\n"
     "skipping ones that were deleted.\n", 0},
    {"pin", cmd_pin, "--fleet F NAME@VERSION", "pin a worker fleet to a version",
     "Workers configured with fleet F serve this version whatever is current.\n"
     "  -F, --fleet F        fleet name (A-Z a-z 0-9 _ -)\n", OPT_FLEET},
    {"unpin", cmd_unpin, "--fleet F NAME", "let a fleet follow the current version again",
     "  -F, --fleet F        fleet name\n", OPT_FLEET},
    {"gc", cmd_gc, "--keep N [--dry-run] NAME", "delete old versions",
     "Keeps the newest N versions (N >= 1, so version numbers are never reused) and,\n"
     "whatever N says, the current version, every pinned version and the last good\n"
     "version (the rollback target); deletes the rest.\n"
     "  -k, --keep N         versions to keep besides the protected ones (>= 1)\n"
     "  -n, --dry-run        print what would be deleted, delete nothing\n",
     OPT_KEEP | OPT_DRY},
};
#define N_MODELS_CMDS (sizeof(models_cmds) / sizeof(models_cmds[0]))

static void models_usage(FILE *f) {
    fprintf(f, "usage: catwire models COMMAND --registry DIR [OPTIONS] REF\n\ncommands:\n");
    for (size_t i = 0; i < N_MODELS_CMDS; i++)
        fprintf(f, "  %-9s %-28s %s\n", models_cmds[i].name, models_cmds[i].args, models_cmds[i].summary);
    fprintf(f, "\n`catwire models COMMAND --help` describes each.\n\n");
    common_help(f);
}

static void models_cmd_usage(FILE *f, const models_cmd_t *c) {
    fprintf(f, "usage: catwire models %s --registry DIR %s\n\n%s.\n\n%s\n", c->name, c->args, c->summary,
            c->help);
    common_help(f);
}

int cw_cmd_models(int argc, char **argv) {
    static const struct option longopts[] = {
        {"registry", required_argument, NULL, 'r'}, {"model", required_argument, NULL, 'm'},
        {"fleet", required_argument, NULL, 'F'},    {"keep", required_argument, NULL, 'k'},
        {"dry-run", no_argument, NULL, 'n'},        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        models_usage(stderr);
        return CW_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        models_usage(stdout);
        return CW_EXIT_OK;
    }
    const models_cmd_t *c = NULL;
    for (size_t i = 0; i < N_MODELS_CMDS; i++)
        if (!strcmp(argv[1], models_cmds[i].name)) c = &models_cmds[i];
    if (!c) {
        fprintf(stderr, "catwire models: unknown command '%s'\n", argv[1]);
        models_usage(stderr);
        return CW_EXIT_USAGE;
    }
    models_opts_t o;
    memset(&o, 0, sizeof(o));
    o.cmd = c->name;
    o.keep = -1;
    int sub_argc = argc - 1, ch;
    char **sub_argv = argv + 1;
    optind = 0; /* glibc: full reset, in case getopt ran before */
    opterr = 0;
    while ((ch = getopt_long(sub_argc, sub_argv, ":r:m:F:k:nfh", longopts, NULL)) != -1) {
        unsigned need = 0;
        switch (ch) {
        case 'r': o.registry = optarg; break;
        case 'm': o.ref = optarg; break;
        case 'F': o.fleet = optarg; need = OPT_FLEET; break;
        case 'k': {
            char *end;
            errno = 0;
            long long k = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || k < 1) {
                fprintf(stderr, "catwire models %s: --keep needs an integer >= 1 (got '%s')\n", c->name, optarg);
                return CW_EXIT_USAGE;
            }
            o.keep = k;
            need = OPT_KEEP;
            break;
        }
        case 'n': o.dry_run = 1; need = OPT_DRY; break;
        case 'f': o.force = 1; need = OPT_FORCE; break;
        case 'h': models_cmd_usage(stdout, c); return CW_EXIT_OK;
        case ':':
            fprintf(stderr, "catwire models %s: option '%s' needs a value\n", c->name, sub_argv[optind - 1]);
            return CW_EXIT_USAGE;
        default:
            fprintf(stderr, "catwire models %s: unknown option '%s' (see --help)\n", c->name,
                    sub_argv[optind - 1]);
            return CW_EXIT_USAGE;
        }
        if (need && !(c->opts & need)) {
            const char *opt = "?";
            for (const struct option *lo = longopts; lo->name; lo++)
                if (lo->val == ch) opt = lo->name;
            fprintf(stderr, "catwire models %s: option --%s does not apply here (see --help)\n", c->name, opt);
            return CW_EXIT_USAGE;
        }
    }
    for (int i = optind; i < sub_argc; i++) {
        if (o.ref) {
            fprintf(stderr, "catwire models %s: unexpected argument '%s' (one model reference)\n", c->name,
                    sub_argv[i]);
            return CW_EXIT_USAGE;
        }
        o.ref = sub_argv[i];
    }
    if (!o.registry) {
        fprintf(stderr, "catwire models %s: --registry DIR is required\n", c->name);
        return CW_EXIT_USAGE;
    }
    if (!o.ref) {
        fprintf(stderr, "catwire models %s: which model? (--model %s)\n", c->name, c->args);
        return CW_EXIT_USAGE;
    }
    if ((c->opts & OPT_FLEET) && !o.fleet) {
        fprintf(stderr, "catwire models %s: --fleet F is required\n", c->name);
        return CW_EXIT_USAGE;
    }
    if ((c->opts & OPT_KEEP) && o.keep < 0) {
        fprintf(stderr, "catwire models %s: --keep N is required\n", c->name);
        return CW_EXIT_USAGE;
    }
    return c->run(&o);
}
