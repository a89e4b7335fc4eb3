/* test_registry.c: registry.c: publish (increasing, never overwritten,
 * concurrent publishers), meta.json, resolve, CURRENT with its history,
 * promote/rollback, fleet pins and gc protections. Runs in a temporary
 * directory it removes afterwards. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "registry.h"
#include "util.h"

#include "check.h"

static char root[64];
static char reg[128];

static cw_model_t *small_model(float mark) {
    cw_vocab_t *v = cw_vocab_new();
    cw_vocab_push(v, "alpha", 5);
    cw_vocab_push(v, "beta", 4);
    static const char *const labels[] = {"World", "Sports"};
    cw_model_t *m = cw_model_new(v, 4, labels, 2, 1, 0);
    cw_model_init_uniform(m, 0.5f, 1);
    m->fc_b[0] = mark; /* tells versions apart after loading */
    return m;
}

static int64_t publish(const char *name, float mark, const char *meta) {
    char err[512] = "";
    cw_model_t *m = small_model(mark);
    int64_t v = cw_registry_publish(reg, name, m, meta, err, sizeof(err));
    CHECK(v > 0, "publish %s: %s", name, err);
    cw_model_destroy(m);
    return v;
}

static char *read_text(const char *path) {
    char *buf = NULL, err[512];
    size_t len;
    if (cw_file_read_all(path, &buf, &len, err, sizeof(err)) != 0) return NULL;
    return buf;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int64_t current(const char *name) {
    char err[512];
    return cw_registry_current(reg, name, err, sizeof(err));
}

static void rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        rm_rf(p);
    }
    closedir(d);
    rmdir(path);
}

/* ---- tests -------------------------------------------------------------- */

static void test_publish_and_meta(void) {
    char err[512] = "";
    const char *meta = "{\"recipe\": \"default\", \"version\": 99, \"hyper\": {\"lr\": 0.5, \"ngram\": [1, 2]},"
                       " \"metrics\": {\"val_accuracy\": 0.915, \"test_accuracy\": 9.05e-1, \"loss\": 0.3},"
                       " \"note\": \"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\", \"holdout_accuracy\": 0.9}";
    CHECK(publish("news", 1.0f, meta) == 1, "first version is 1");
    CHECK(publish("news", 2.0f, NULL) == 2, "second version is 2");
    CHECK(current("news") == 0, "nothing current yet");

    cw_registry_meta_t mt;
    CHECK(cw_registry_meta_read(reg, "news", 1, &mt, err, sizeof(err)) == 0, "meta 1: %s", err);
    CHECK(mt.version == 1 && mt.parent == 0, "meta 1 version %" PRId64 " parent %" PRId64, mt.version, mt.parent);
    CHECK(mt.recipe && !strcmp(mt.recipe, "default"), "recipe");
    CHECK(mt.created_at && strlen(mt.created_at) == 24 && mt.created_at[10] == 'T' &&
              mt.created_at[23] == 'Z',
          "created_at '%s'", mt.created_at ? mt.created_at : "(null)");
    CHECK(mt.nmetrics == 4, "nmetrics %zu", mt.nmetrics);
    if (mt.nmetrics == 4) {
        CHECK(!strcmp(mt.metric_names[0], "metrics.val_accuracy") && mt.metric_values[0] == 0.915, "m0");
        CHECK(!strcmp(mt.metric_names[1], "metrics.test_accuracy") && mt.metric_values[1] == 0.905, "m1");
        CHECK(!strcmp(mt.metric_names[2], "metrics.loss"), "m2");
        CHECK(!strcmp(mt.metric_names[3], "holdout_accuracy") && mt.metric_values[3] == 0.9, "m3");
    }
    /* The caller's "version" lost to the registry's; other members kept verbatim. (Look for
     * the member, not the bare "99", which created_at can hold: ".994Z".) */
    CHECK(mt.json && !strstr(mt.json, "\"version\": 99") && strstr(mt.json, "\"version\": 1,") &&
              strstr(mt.json, "\"hyper\": {\"lr\": 0.5, \"ngram\": [1, 2]}") &&
              strstr(mt.json, "\\ud83d\\ude00") && strstr(mt.json, "\"model\": \"news\""),
          "meta.json:\n%s", mt.json ? mt.json : "(null)");
    cw_registry_meta_clear(&mt);
    cw_registry_meta_clear(&mt); /* idempotent */

    CHECK(cw_registry_set_current(reg, "news", 1, err, sizeof(err)) == 0, "%s", err);
    CHECK(publish("news", 3.0f, "{\"recipe\": {\"name\": \"seed\", \"lr\": 0.1}}") == 3, "v3");
    CHECK(cw_registry_meta_read(reg, "news", 3, &mt, err, sizeof(err)) == 0, "meta 3: %s", err);
    CHECK(mt.parent == 1, "parent is the current at publish time: %" PRId64, mt.parent);
    CHECK(mt.recipe && !strcmp(mt.recipe, "seed"), "recipe object name");
    CHECK(mt.nmetrics == 0, "no metrics");
    cw_registry_meta_clear(&mt);

    /* Bad input. */
    cw_model_t *m = small_model(0);
    const char *bad_meta[] = {"[1]", "{\"a\": }", "{\"a\": 1,}", "{\"a\" 1}", "{} x", "{\"a\": \"\\x\"}",
                              "{\"a\": 01}", "{\"a\": \"\\ud800\"}", "{\"a\": tru}"};
    for (size_t i = 0; i < sizeof(bad_meta) / sizeof(bad_meta[0]); i++) {
        err[0] = '\0';
        CHECK(cw_registry_publish(reg, "news", m, bad_meta[i], err, sizeof(err)) == -1 &&
                  strstr(err, "metadata"),
              "bad meta '%s' accepted or bad message '%s'", bad_meta[i], err);
    }
    const char *bad_names[] = {"", ".hidden", "a/b", "x@1", "sp ace", "..", "é"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        err[0] = '\0';
        CHECK(cw_registry_publish(reg, bad_names[i], m, "{}", err, sizeof(err)) == -1 &&
                  strstr(err, "invalid model name"),
              "bad name '%s': '%s'", bad_names[i], err);
    }
    cw_model_destroy(m);
    int64_t *vs = NULL;
    size_t n = 0;
    CHECK(cw_registry_list(reg, "news", &vs, &n, err, sizeof(err)) == 0 && n == 3, "3 versions after refusals");
    cw_free(vs);
}

static void test_never_overwrites(void) {
    char err[512], path[1024];
    /* Another publisher got version 2 first (taken, non-empty): ours is 3. */
    snprintf(path, sizeof(path), "%s/solo/1", reg);
    CHECK(publish("solo", 1.0f, "{}") == 1, "solo v1");
    snprintf(path, sizeof(path), "%s/solo/2", reg);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/solo/2/model.cwm", reg);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("someone else's", f);
        fclose(f);
    }
    CHECK(publish("solo", 3.0f, "{}") == 3, "skips the taken number");
    char *text = read_text(path);
    CHECK(text && !strcmp(text, "someone else's"), "version 2 untouched");
    cw_free(text);
    /* No staging directories are left behind. */
    snprintf(path, sizeof(path), "%s/solo", reg);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) CHECK(strncmp(e->d_name, ".tmp-", 5), "left %s", e->d_name);
    if (d) closedir(d);
    /* The checkpoint in a version directory is the model published. */
    int64_t v = 0;
    cw_model_t *m = cw_registry_load(reg, "solo@3", &v, err, sizeof(err));
    CHECK(m && v == 3 && m->fc_b[0] == 3.0f, "load solo@3: %s", m ? "wrong content" : err);
    cw_model_destroy(m);
}

/* Two processes publishing at once get distinct, gap-free versions. */
static void test_concurrent_publish(void) {
    const int per_child = 12;
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            char go;
            close(pfd[1]);
            if (read(pfd[0], &go, 1) != 1) _exit(3); /* start together */
            char err[512], out[128];
            snprintf(out, sizeof(out), "%s/child%d.txt", root, k);
            FILE *f = fopen(out, "w");
            if (!f) _exit(2);
            for (int i = 0; i < per_child; i++) {
                cw_model_t *m = small_model((float)(k * 1000 + i));
                int64_t v = cw_registry_publish(reg, "race", m, "{\"recipe\": \"r\"}", err, sizeof(err));
                cw_model_destroy(m);
                if (v < 0) {
                    fprintf(stderr, "child %d: %s\n", k, err);
                    _exit(1);
                }
                fprintf(f, "%" PRId64 " %d\n", v, k * 1000 + i);
            }
            fclose(f);
            _exit(0);
        }
    }
    close(pfd[0]);
    CHECK(write(pfd[1], "gg", 2) == 2, "release children");
    close(pfd[1]);
    for (int k = 0; k < 2; k++) {
        int st = 0;
        waitpid(kids[k], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed", k);
    }
    int seen[64] = {0};
    for (int k = 0; k < 2; k++) {
        char out[128];
        snprintf(out, sizeof(out), "%s/child%d.txt", root, k);
        FILE *f = fopen(out, "r");
        long long v;
        int mark;
        while (f && fscanf(f, "%lld %d", &v, &mark) == 2) {
            CHECK(v >= 1 && v <= 2 * per_child, "version %lld out of range", v);
            if (v < 1 || v > 2 * per_child) continue;
            CHECK(!seen[v], "version %lld given twice", v);
            seen[v] = 1;
            /* Each version holds the model its publisher wrote. */
            char ref[64], err[512];
            snprintf(ref, sizeof(ref), "race@%lld", v);
            cw_model_t *m = cw_registry_load(reg, ref, NULL, err, sizeof(err));
            CHECK(m && m->fc_b[0] == (float)mark, "%s holds the wrong model", ref);
            cw_model_destroy(m);
            cw_registry_meta_t mt;
            CHECK(cw_registry_meta_read(reg, "race", v, &mt, err, sizeof(err)) == 0 && mt.version == v,
                  "%s meta version", ref);
            cw_registry_meta_clear(&mt);
        }
        if (f) fclose(f);
        unlink(out);
    }
    for (int v = 1; v <= 2 * per_child; v++) CHECK(seen[v], "version %d missing", v);
}

static void test_resolve(void) {
    char err[512] = "", *name = NULL, *path = NULL;
    int64_t v = 0;
    /* news has 1..3 with 1 current. */
    CHECK(cw_registry_resolve(reg, "news", &name, &v, &path, err, sizeof(err)) == 0, "%s", err);
    CHECK(v == 1 && name && !strcmp(name, "news") && path && strstr(path, "/news/1/model.cwm"),
          "NAME -> current: v %" PRId64 " path %s", v, path ? path : "");
    cw_free(name);
    cw_free(path);
    name = path = NULL;
    CHECK(cw_registry_resolve(reg, "news@2", &name, &v, &path, err, sizeof(err)) == 0 && v == 2, "NAME@2");
    cw_free(name);
    cw_free(path);
    /* No CURRENT: the highest version. */
    CHECK(cw_registry_resolve(reg, "solo", NULL, &v, NULL, err, sizeof(err)) == 0 && v == 3, "highest");
    struct { const char *ref, *want; } bad[] = {
        {"news@9", "version 9 of model 'news' not found"},
        {"nosuch", "no model named 'nosuch'"},
        {"news@0", "invalid version"},
        {"news@x", "invalid version"},
        {"news@", "invalid version"},
        {"news@01", "invalid version"},
        {"@1", "invalid model name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(cw_registry_resolve(reg, bad[i].ref, NULL, &v, NULL, err, sizeof(err)) == -1 &&
                  strstr(err, bad[i].want),
              "resolve '%s': '%s'", bad[i].ref, err);
    }
    char p[1024];
    snprintf(p, sizeof(p), "%s/empty", reg);
    mkdir(p, 0755);
    CHECK(cw_registry_resolve(reg, "empty", NULL, &v, NULL, err, sizeof(err)) == -1 &&
              strstr(err, "has no versions"),
          "empty model: '%s'", err);
    cw_model_t *m = cw_registry_load(reg, "news", &v, err, sizeof(err));
    CHECK(m && v == 1 && m->fc_b[0] == 1.0f, "load current");
    cw_model_destroy(m);
}

static void test_promote_rollback(void) {
    char err[512] = "", path[1024];
    for (int i = 0; i < 5; i++) publish("roll", (float)(i + 1), "{}");
    CHECK(cw_registry_previous(reg, "roll", err, sizeof(err)) == 0, "no previous before any current");
    CHECK(cw_registry_rollback(reg, "roll", err, sizeof(err)) == -1 && strstr(err, "no current version"),
          "rollback without current: '%s'", err);
    CHECK(cw_registry_set_current(reg, "roll", 9, err, sizeof(err)) == -1 && strstr(err, "not found"),
          "promote missing: '%s'", err);
    for (int64_t v = 1; v <= 3; v++) CHECK(cw_registry_set_current(reg, "roll", v, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_registry_set_current(reg, "roll", 3, err, sizeof(err)) == 0, "re-promote is a no-op");
    snprintf(path, sizeof(path), "%s/roll/CURRENT", reg);
    char *text = read_text(path);
    CHECK(text && !strcmp(text, "3\nprevious 2 1\n"), "CURRENT is '%s'", text ? text : "");
    cw_free(text);
    CHECK(current("roll") == 3 && cw_registry_previous(reg, "roll", err, sizeof(err)) == 2, "previous 2");

    CHECK(cw_registry_rollback(reg, "roll", err, sizeof(err)) == 2 && current("roll") == 2, "rollback -> 2");
    CHECK(cw_registry_rollback(reg, "roll", err, sizeof(err)) == 1 && current("roll") == 1, "rollback -> 1");
    CHECK(cw_registry_rollback(reg, "roll", err, sizeof(err)) == -1 && strstr(err, "no previous") &&
              current("roll") == 1,
          "nothing before 1: '%s'", err);

    /* Promoting a version already in the history moves it to the front once. */
    cw_registry_set_current(reg, "roll", 4, err, sizeof(err));
    cw_registry_set_current(reg, "roll", 5, err, sizeof(err));
    cw_registry_set_current(reg, "roll", 1, err, sizeof(err));
    int64_t *h = NULL;
    size_t n = 0;
    CHECK(cw_registry_history(reg, "roll", &h, &n, err, sizeof(err)) == 0 && n == 3 && h[0] == 1 &&
              h[1] == 5 && h[2] == 4,
          "history after re-promote (n %zu)", n);
    cw_free(h);
    /* Rollback skips a previous version that no longer exists. */
    snprintf(path, sizeof(path), "%s/roll/5", reg);
    rm_rf(path);
    CHECK(cw_registry_previous(reg, "roll", err, sizeof(err)) == 4, "previous skips deleted 5");
    CHECK(cw_registry_rollback(reg, "roll", err, sizeof(err)) == 4 && current("roll") == 4, "rollback -> 4");

    /* A corrupt CURRENT is an error, not "no current". */
    snprintf(path, sizeof(path), "%s/roll/CURRENT", reg);
    CHECK(cw_file_write_atomic(path, "x\n", 2, err, sizeof(err)) == 0, "%s", err);
    CHECK(current("roll") == -1, "corrupt CURRENT accepted");
    CHECK(cw_file_write_atomic(path, "4\n", 2, err, sizeof(err)) == 0, "%s", err);
    CHECK(current("roll") == 4, "plain CURRENT (first line only) reads");

    /* History is bounded. */
    for (int i = 0; i < 3 * CW_REGISTRY_HISTORY; i++)
        cw_registry_set_current(reg, "roll", 1 + (i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 3), err, sizeof(err));
    CHECK(cw_registry_history(reg, "roll", &h, &n, err, sizeof(err)) == 0 && n <= CW_REGISTRY_HISTORY && n == 3,
          "bounded, deduplicated history (n %zu)", n);
    cw_free(h);

    /* Concurrent promotions from two processes leave a readable CURRENT. */
    pid_t kid = fork();
    if (kid == 0) {
        char e2[512];
        for (int i = 0; i < 60; i++) cw_registry_set_current(reg, "roll", 1 + i % 2, e2, sizeof(e2));
        _exit(0);
    }
    for (int i = 0; i < 60; i++) {
        cw_registry_set_current(reg, "roll", 3 + i % 2, err, sizeof(err));
        int64_t c = current("roll");
        if (c < 1 || c > 4) {
            CHECK(0, "unreadable CURRENT during concurrent promotions (%" PRId64 ")", c);
            break;
        }
    }
    int st;
    waitpid(kid, &st, 0);
    CHECK(cw_registry_history(reg, "roll", &h, &n, err, sizeof(err)) == 0 && n == 4, "4 distinct in history");
    cw_free(h);
}

static void test_pins(void) {
    char err[512] = "", *path = NULL;
    int64_t v = 0;
    int pinned = -1;
    /* news: 1..3, current 1. */
    CHECK(cw_registry_set_current(reg, "news", 3, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_registry_pin(reg, "news", "canary", 2, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_registry_pin(reg, "news", "eu-west_1", 1, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_registry_pinned(reg, "news", "canary", err, sizeof(err)) == 2, "pinned canary");
    CHECK(cw_registry_pinned(reg, "news", "other", err, sizeof(err)) == 0, "unpinned fleet");
    CHECK(cw_registry_resolve_fleet(reg, "news", "canary", NULL, &v, &path, &pinned, err, sizeof(err)) == 0 &&
              v == 2 && pinned == 1 && strstr(path, "/news/2/model.cwm"),
          "fleet canary -> pin");
    cw_free(path);
    CHECK(cw_registry_resolve_fleet(reg, "news", "other", NULL, &v, NULL, &pinned, err, sizeof(err)) == 0 &&
              v == 3 && pinned == 0,
          "fleet other -> current");
    CHECK(cw_registry_resolve_fleet(reg, "news", NULL, NULL, &v, NULL, &pinned, err, sizeof(err)) == 0 && v == 3,
          "no fleet -> current");
    CHECK(cw_registry_resolve_fleet(reg, "news@1", "canary", NULL, &v, NULL, &pinned, err, sizeof(err)) == 0 &&
              v == 1 && pinned == 0,
          "explicit version beats the pin");
    /* Promotion does not move a pinned fleet. */
    CHECK(cw_registry_set_current(reg, "news", 1, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_registry_resolve_fleet(reg, "news", "canary", NULL, &v, NULL, NULL, err, sizeof(err)) == 0 && v == 2,
          "pinned fleet stays after promote");

    char **fleets = NULL;
    int64_t *pv = NULL;
    size_t n = 0;
    CHECK(cw_registry_pins(reg, "news", &fleets, &pv, &n, err, sizeof(err)) == 0 && n == 2 &&
              !strcmp(fleets[0], "canary") && pv[0] == 2 && !strcmp(fleets[1], "eu-west_1") && pv[1] == 1,
          "pins listing");
    cw_registry_pins_free(fleets, pv, n);

    CHECK(cw_registry_pin(reg, "news", "canary", 7, err, sizeof(err)) == -1 && strstr(err, "not found"),
          "pin to a missing version: '%s'", err);
    CHECK(cw_registry_pinned(reg, "news", "canary", err, sizeof(err)) == 2, "failed pin changed nothing");
    CHECK(cw_registry_pin(reg, "news", "a.b", 1, err, sizeof(err)) == -1 && strstr(err, "invalid fleet"),
          "bad fleet name: '%s'", err);
    CHECK(cw_registry_unpin(reg, "news", "eu-west_1", err, sizeof(err)) == 1, "unpin");
    CHECK(cw_registry_unpin(reg, "news", "eu-west_1", err, sizeof(err)) == 0, "unpin again");
    CHECK(cw_registry_resolve_fleet(reg, "news", "eu-west_1", NULL, &v, NULL, &pinned, err, sizeof(err)) == 0 &&
              v == 1 && pinned == 0,
          "unpinned fleet follows current");
}

static int has(const int64_t *vs, size_t n, int64_t v) {
    for (size_t i = 0; i < n; i++)
        if (vs[i] == v) return 1;
    return 0;
}

static void test_gc(void) {
    char err[512] = "", path[1024];
    for (int i = 1; i <= 8; i++) publish("gc", (float)i, "{}");
    cw_registry_set_current(reg, "gc", 3, err, sizeof(err));
    cw_registry_set_current(reg, "gc", 6, err, sizeof(err)); /* current 6, last good 3 */
    cw_registry_pin(reg, "gc", "canary", 2, err, sizeof(err));
    /* A dead publisher's staging directory. */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char stale[512];
    snprintf(stale, sizeof(stale), "%s/gc/.tmp-%ld-deadbeef", reg, (long)dead);
    mkdir(stale, 0755);
    snprintf(path, sizeof(path), "%s/model.cwm", stale);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);

    int64_t *del = NULL;
    size_t nd = 0;
    CHECK(cw_registry_gc(reg, "gc", 0, 1, &del, &nd, err, sizeof(err)) == -1 && strstr(err, "at least 1"),
          "keep 0 refused: '%s'", err);
    CHECK(cw_registry_gc(reg, "gc", 2, 1, &del, &nd, err, sizeof(err)) == 0, "dry run: %s", err);
    CHECK(nd == 3 && del[0] == 1 && del[1] == 4 && del[2] == 5, "dry run would delete 1 4 5 (got %zu)", nd);
    cw_free(del);
    int64_t *vs = NULL;
    size_t n = 0;
    cw_registry_list(reg, "gc", &vs, &n, err, sizeof(err));
    CHECK(n == 8, "dry run deleted something");
    cw_free(vs);
    CHECK(exists(stale), "dry run removed the stale staging dir");

    CHECK(cw_registry_gc(reg, "gc", 2, 0, &del, &nd, err, sizeof(err)) == 0 && nd == 3, "gc: %s", err);
    cw_free(del);
    cw_registry_list(reg, "gc", &vs, &n, err, sizeof(err));
    CHECK(n == 5 && has(vs, n, 2) && has(vs, n, 3) && has(vs, n, 6) && has(vs, n, 7) && has(vs, n, 8),
          "survivors: pinned 2, last good 3, current 6, newest 7 8 (n %zu)", n);
    cw_free(vs);
    CHECK(!exists(stale), "stale staging dir left");
    snprintf(path, sizeof(path), "%s/gc", reg);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) CHECK(strncmp(e->d_name, ".gc-", 4), "left %s", e->d_name);
    if (d) closedir(d);

    /* keep 1: the newest and every protected version remain. */
    CHECK(cw_registry_gc(reg, "gc", 1, 0, &del, &nd, err, sizeof(err)) == 0 && nd == 1 && del[0] == 7,
          "gc keep 1 deletes only 7 (nd %zu)", nd);
    cw_free(del);
    /* Numbers are never reused: the newest is never collected. */
    CHECK(publish("gc", 9.0f, "{}") == 9, "next version after gc is 9");
    /* Rolling back lands on the protected last good version. */
    CHECK(cw_registry_rollback(reg, "gc", err, sizeof(err)) == 3, "rollback to last good 3: %s", err);
    CHECK(cw_registry_gc(reg, "nosuch", 1, 0, &del, &nd, err, sizeof(err)) == -1 && strstr(err, "no model"),
          "gc missing model: '%s'", err);
}


/* ---- catwire models (the CLI built next to this test) ------------------- */

/* Run `catwire models ARGS` (stdout and stderr into out); its exit code. */
static int run_cli(const char *bin, char *out, size_t outsz, const char *args) {
    char cmd[2048];
    int w = snprintf(cmd, sizeof(cmd), "%s models %s 2>&1", bin, args);
    if (w < 0 || (size_t)w >= sizeof(cmd)) return -1;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output line that starts with prefix, or "" (static buffer). */
static const char *line_of(const char *out, const char *prefix) {
    static char line[512];
    line[0] = '\0';
    size_t pl = strlen(prefix);
    for (const char *s = out; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL) {
        if (!strncmp(s, prefix, pl)) {
            size_t n = strcspn(s, "\n");
            if (n >= sizeof(line)) n = sizeof(line) - 1;
            memcpy(line, s, n);
            line[n] = '\0';
            break;
        }
    }
    return line;
}

static void test_cli(void) {
    char bin[1024], out[16384], args[1536], err[512];
    snprintf(bin, sizeof(bin), "%s/worker/catwire", CW_BUILD_DIR);
    if (access(bin, X_OK) != 0) {
        printf("catwire models: skipped, %s is not built\n", bin);
        return;
    }
    const char *meta = "{\"recipe\": \"default\", \"metrics\": {\"valid_accuracy\": 0.9123, \"test_accuracy\": 0.9051}}";
    for (int i = 1; i <= 3; i++) publish("cli", (float)i, meta);
    /* Version 3 is truncated in place: it must not become current by accident. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/cli/3/model.cwm", reg);
    char *full = NULL;
    size_t flen = 0;
    CHECK(cw_file_read_all(path, &full, &flen, err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_file_write_atomic(path, full, 100, err, sizeof(err)) == 0, "%s", err);
    cw_free(full);

#define CLI(expect_rc, ...)                                                          \
    do {                                                                             \
        snprintf(args, sizeof(args), __VA_ARGS__);                                   \
        int rc_ = run_cli(bin, out, sizeof(out), args);                              \
        CHECK(rc_ == (expect_rc), "`catwire models %s` exit %d, want %d:\n%s", args, rc_, \
              (expect_rc), out);                                                     \
    } while (0)

    CLI(0, "list --registry %s cli", reg);
    CHECK(strstr(out, "current none") && strstr(line_of(out, "  1 "), "valid_accuracy=0.9123") &&
              strstr(line_of(out, "  1 "), "default"),
          "list:\n%s", out);
    CLI(0, "promote --registry %s cli@2", reg);
    CHECK(strstr(out, "cli: current is now 2"), "%s", out);
    CLI(1, "promote --registry %s --model cli@3", reg);
    CHECK(strstr(out, "refusing cli@3") && strstr(out, "truncated at byte 100"), "%s", out);
    CHECK(current("cli") == 2, "a refused promote changed CURRENT");
    CLI(0, "promote --registry %s --force cli@3", reg);
    CHECK(current("cli") == 3, "--force promotes");
    CLI(1, "show --registry %s cli", reg);
    CHECK(strstr(out, "checksum:    FAILED") && strstr(out, "\"version\": 3"), "show corrupt:\n%s", out);
    CLI(0, "rollback --registry %s cli", reg);
    CHECK(strstr(out, "rolled back from 3 to 2") && current("cli") == 2, "%s", out);
    CLI(1, "rollback --registry %s cli", reg);
    CHECK(strstr(out, "no previous"), "%s", out);
    CLI(0, "show --registry %s cli", reg);
    CHECK(strstr(out, "version:     2 [current]") && strstr(out, "labels:      2: World, Sports") &&
              strstr(out, "checksum:    OK") && strstr(out, "format:      1"),
          "show:\n%s", out);
    CLI(0, "pin --registry %s --fleet canary cli@1", reg);
    CLI(0, "list --registry %s cli", reg);
    CHECK(line_of(out, "* 2 ")[0] && strstr(line_of(out, "  1 "), "[pinned: canary]"), "list marks:\n%s", out);
    for (int i = 4; i <= 6; i++) publish("cli", (float)i, "{}");
    CLI(0, "gc --registry %s --keep 1 --dry-run cli", reg);
    CHECK(strstr(out, "cli: would delete 3 4 5\n"), "gc dry run: %s", out);
    CLI(0, "gc --registry %s --keep 1 cli", reg);
    CHECK(strstr(out, "cli: deleted 3 4 5\n"), "gc: %s", out);
    CLI(0, "gc --registry %s --keep 1 cli", reg);
    CHECK(strstr(out, "nothing to delete"), "gc again: %s", out);
    CLI(0, "unpin --registry %s --fleet canary cli", reg);
    CHECK(cw_registry_pinned(reg, "cli", "canary", err, sizeof(err)) == 0, "unpinned");

    /* Usage (2) and errors (1). */
    CLI(2, "%s", "");
    CLI(2, "bogus --registry %s cli", reg);
    CLI(2, "list cli");
    CLI(2, "promote --registry %s cli", reg);
    CLI(2, "gc --registry %s cli", reg);
    CLI(2, "gc --registry %s --keep 0 cli", reg);
    CLI(2, "pin --registry %s cli@1", reg);
    CLI(2, "list --registry %s --force cli", reg);
    CLI(2, "list --registry %s cli other", reg);
    CLI(1, "list --registry %s nosuch", reg);
    CHECK(strstr(out, "no model named 'nosuch'"), "%s", out);
    CLI(1, "show --registry %s cli@99", reg);
    CLI(0, "--help");
    CHECK(strstr(out, "usage: catwire models") && strstr(out, "rollback"), "%s", out);
    const char *subs[] = {"list", "show", "promote", "rollback", "pin", "unpin", "gc"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        CLI(0, "%s --help", subs[i]);
        CHECK(strstr(out, "usage: catwire models ") && strstr(out, subs[i]), "%s --help", subs[i]);
    }
#undef CLI
}

int main(void) {
    snprintf(root, sizeof(root), "/tmp/cw_test_registry.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(reg, sizeof(reg), "%s/registry", root);
    test_publish_and_meta();
    test_never_overwrites();
    test_concurrent_publish();
    test_resolve();
    test_promote_rollback();
    test_pins();
    test_gc();
    test_cli();
    rm_rf(root);
    if (failures) {
        fprintf(stderr, "test_registry: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_registry: ok\n");
    return 0;
}
