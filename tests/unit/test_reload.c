/* test_reload.c: worker/reload.c without a broker.
 *
 *   - validation: a good model passes; NaN weights, a changed label set (names
 *     or count), inconsistent dimensions are refused; allow_label_change lets
 *     a label change through;
 *   - loading: a corrupted and a truncated checkpoint are refused;
 *   - control messages: decoded, unknown keys skipped, bad ones refused;
 *   - the reloader on a real registry: a promotion is offered within a
 *     second, a corrupted / truncated / relabelled version promoted as
 *     current is refused and logged while the serving version stays, a
 *     rollback is offered, a fleet pin wins over CURRENT;
 *   - 100 reloads in-process (each offered model swapped in on a CPU
 *     backend and the old one freed, as the worker does): VmRSS growth stays
 *     well under one model's size.
 * Runs in a temporary directory it removes afterwards. */
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "log.h"
#include "registry.h"
#include "reload.h"
#include "util.h"

#include "check.h"

static char root[64];
static char reg[128];
static const char *const labels4[] = {"World", "Sports", "Business", "Sci/Tech"};
static const char *const labels4b[] = {"World", "Sports", "Business", "Science"};
static const char *const labels5[] = {"World", "Sports", "Business", "Sci/Tech", "Other"};

/* A model with nwords words and some n-gram buckets; mark tells versions apart. */
static cw_model_t *make_model(uint32_t nwords, uint32_t dim, const char *const *labels, uint32_t nlabels,
                              uint64_t seed) {
    cw_vocab_t *v = cw_vocab_new();
    char tok[32];
    static const char *const words[] = {"stocks", "fell", "team", "won", "software", "oil", "game"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) cw_vocab_push(v, words[i], strlen(words[i]));
    for (uint32_t i = 0; i < nwords; i++) {
        int n = snprintf(tok, sizeof(tok), "w%u", i);
        cw_vocab_push(v, tok, (size_t)n);
    }
    cw_model_t *m = cw_model_new(v, dim, labels, nlabels, 2, 1024);
    cw_model_init_uniform(m, 0.5f, seed);
    for (uint32_t k = 0; k < nlabels; k++) m->fc_b[k] = 0.01f * (float)k;
    return m;
}

/* ---- log capture (the reloader logs from its own thread) ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 16];
static size_t log_len;

static void capture(cw_log_level_t level, const char *comp, const char *msg) {
    pthread_mutex_lock(&log_mu);
    int n = snprintf(log_buf + log_len, sizeof(log_buf) - log_len, "%d %s: %s\n", (int)level, comp, msg);
    if (n > 0 && (size_t)n < sizeof(log_buf) - log_len) log_len += (size_t)n;
    pthread_mutex_unlock(&log_mu);
    if (getenv("CW_TEST_VERBOSE")) fprintf(stderr, "%d %s: %s\n", (int)level, comp, msg);
}

static int log_has(const char *a, const char *b) {
    pthread_mutex_lock(&log_mu);
    int found = 0;
    for (char *line = log_buf; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        found = strstr(line, a) && (!b || strstr(line, b));
        if (nl) *nl = '\n';
        line = nl ? nl + 1 : NULL;
    }
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* ---- a stand-in for the worker engine: swap on offer, free the old ---- */

typedef struct sink_s {
    pthread_mutex_t mu;
    cw_model_t *model;
    cw_backend_t *be;
    int64_t version;
    uint64_t offers;
    double last_offer;
} sink_t;

static void sink_offer(void *opaque, cw_model_t *m, const char *name, int64_t version) {
    sink_t *s = opaque;
    char err[256];
    cw_backend_t *be = cw_backend_new("cpu", err, sizeof(err));
    if (!be || cw_backend_upload(be, m, err, sizeof(err)) != 0) {
        fprintf(stderr, "sink: %s\n", err);
        exit(1);
    }
    (void)name;
    pthread_mutex_lock(&s->mu);
    cw_backend_destroy(s->be);
    cw_model_destroy(s->model);
    s->model = m;
    s->be = be;
    s->version = version;
    s->offers++;
    s->last_offer = cw_now_s();
    pthread_mutex_unlock(&s->mu);
}

static void sink_get(sink_t *s, int64_t *version, uint64_t *offers) {
    pthread_mutex_lock(&s->mu);
    *version = s->version;
    *offers = s->offers;
    pthread_mutex_unlock(&s->mu);
}

/* Wait until the sink serves version want (offers beyond `after`); seconds or -1. */
static double wait_version(sink_t *s, int64_t want, uint64_t after, double timeout_s) {
    double t0 = cw_now_s();
    for (;;) {
        int64_t v;
        uint64_t n;
        sink_get(s, &v, &n);
        if (v == want && n > after) return cw_now_s() - t0;
        if (cw_now_s() - t0 > timeout_s) return -1;
        usleep(2000);
    }
}

/* Wait until the reloader refused `want` times in all. */
static double wait_refused(cw_reload_t *r, uint64_t want, double timeout_s) {
    double t0 = cw_now_s();
    for (;;) {
        cw_reload_stats_t st;
        cw_reload_get_stats(r, &st);
        if (st.refused >= want) return cw_now_s() - t0;
        if (cw_now_s() - t0 > timeout_s) return -1;
        usleep(2000);
    }
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void set_current(int64_t v) {
    char err[512] = "";
    CHECK(cw_registry_set_current(reg, "news", v, err, sizeof(err)) == 0, "set_current %" PRId64 ": %s", v, err);
}

static int64_t publish(cw_model_t *m) {
    char err[512] = "";
    int64_t v = cw_registry_publish(reg, "news", m, "{\"test\":true}", err, sizeof(err));
    CHECK(v > 0, "publish: %s", err);
    cw_model_destroy(m);
    return v;
}

/* Replace a version's checkpoint: flip a byte in the middle, or cut it in half. */
static void damage(int64_t version, int truncate) {
    char *path = cw_registry_path(reg, "news", version, "model.cwm"), err[512];
    char *buf = NULL;
    size_t len = 0;
    CHECK(cw_file_read_all(path, &buf, &len, err, sizeof(err)) == 0, "%s", err);
    if (truncate) len /= 2;
    else buf[len / 2] ^= 0x5a;
    chmod(path, 0644);
    unlink(path);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, len, f) == len, "rewrite %s", path);
    if (f) fclose(f);
    cw_free(buf);
    cw_free(path);
}

/* ---------------------------------------------------------------------- */

static void test_validate(void) {
    char err[512];
    cw_model_t *m = make_model(50, 16, labels4, 4, 1);
    CHECK(cw_reload_validate(m, labels4, 4, 0, err, sizeof(err)) == 0, "good model refused: %s", err);
    CHECK(cw_reload_validate(m, labels4b, 4, 0, err, sizeof(err)) != 0 && strstr(err, "label"),
          "renamed label accepted (%s)", err);
    CHECK(cw_reload_validate(m, labels5, 5, 0, err, sizeof(err)) != 0 && strstr(err, "label"),
          "label count change accepted (%s)", err);
    CHECK(cw_reload_validate(m, labels4b, 4, 1, err, sizeof(err)) == 0,
          "allow_label_change refused a label change: %s", err);
    m->emb[17] = NAN;
    CHECK(cw_reload_validate(m, labels4, 4, 0, err, sizeof(err)) != 0 && strstr(err, "NaN"),
          "NaN embedding accepted (%s)", err);
    m->emb[17] = 0.0f;
    m->fc_b[2] = INFINITY;
    CHECK(cw_reload_validate(m, labels4, 4, 0, err, sizeof(err)) != 0, "infinite bias accepted");
    m->fc_b[2] = 0.0f;
    m->nrows += 1;
    CHECK(cw_reload_validate(m, labels4, 4, 0, err, sizeof(err)) != 0 && strstr(err, "dimensions"),
          "inconsistent rows accepted (%s)", err);
    m->nrows -= 1;
    CHECK(cw_reload_validate(m, labels4, 4, 0, err, sizeof(err)) == 0, "restored model refused: %s", err);
    cw_model_destroy(m);
}

static void test_load_damaged(void) {
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/m.cwm", root);
    cw_model_t *m = make_model(200, 16, labels4, 4, 2);
    CHECK(cw_ckpt_write(m, path, err, sizeof(err)) == 0, "%s", err);
    cw_model_destroy(m);
    m = cw_reload_load(path, labels4, 4, 0, err, sizeof(err));
    CHECK(m != NULL, "good checkpoint refused: %s", err);
    cw_model_destroy(m);

    char *buf = NULL;
    size_t len = 0;
    CHECK(cw_file_read_all(path, &buf, &len, err, sizeof(err)) == 0, "%s", err);
    buf[len / 2] ^= 0x01;
    m = cw_ckpt_decode(buf, len, err, sizeof(err));
    CHECK(m == NULL, "one flipped bit accepted");
    cw_model_destroy(m);
    buf[len / 2] ^= 0x01;
    for (size_t cut = 0; cut < len; cut += len / 7 + 1) {
        m = cw_ckpt_decode(buf, cut, err, sizeof(err));
        CHECK(m == NULL, "checkpoint cut at %zu of %zu bytes accepted", cut, len);
        cw_model_destroy(m);
    }
    cw_free(buf);
}

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void test_control_decode(void) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char model[64], err[256];
    int64_t v = -1;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_str(&pk, "event");
    pack_str(&pk, "current");
    pack_str(&pk, "model");
    pack_str(&pk, "news");
    pack_str(&pk, "version");
    msgpack_pack_uint64(&pk, 7);
    pack_str(&pk, "metrics");   /* unknown nested value: skipped */
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "accuracy");
    msgpack_pack_double(&pk, 0.9);
    pack_str(&pk, "path");
    pack_str(&pk, "/x/news/7/model.cwm");
    CHECK(cw_control_decode(sb.data, sb.size, model, sizeof(model), &v, err, sizeof(err)) == 0, "%s", err);
    CHECK(!strcmp(model, "news") && v == 7, "decoded %s@%" PRId64, model, v);
    CHECK(cw_control_decode(sb.data, sb.size - 3, model, sizeof(model), &v, err, sizeof(err)) != 0,
          "truncated control message accepted");
    CHECK(cw_control_decode(sb.data, 0, model, sizeof(model), &v, err, sizeof(err)) != 0, "empty accepted");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "version");
    msgpack_pack_uint64(&pk, 3);
    CHECK(cw_control_decode(sb.data, sb.size, model, sizeof(model), &v, err, sizeof(err)) != 0,
          "message without model accepted");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 1);
    CHECK(cw_control_decode(sb.data, sb.size, model, sizeof(model), &v, err, sizeof(err)) != 0,
          "array accepted");
    /* A map claiming 2^30 entries in a few bytes. */
    const unsigned char huge[] = {0xdf, 0x40, 0x00, 0x00, 0x00, 0xa1, 'a'};
    CHECK(cw_control_decode(huge, sizeof(huge), model, sizeof(model), &v, err, sizeof(err)) != 0,
          "huge map accepted");
    msgpack_sbuffer_destroy(&sb);
}

static void test_reloader(void) {
    char err[512];
    snprintf(reg, sizeof(reg), "%s/registry", root);
    /* v1, v2: same labels; v3: different labels; v4 corrupted; v5 truncated. */
    int64_t v1 = publish(make_model(20000, 64, labels4, 4, 11));
    int64_t v2 = publish(make_model(20000, 64, labels4, 4, 12));
    int64_t v3 = publish(make_model(20000, 64, labels4b, 4, 13));
    int64_t v4 = publish(make_model(20000, 64, labels4, 4, 14));
    int64_t v5 = publish(make_model(20000, 64, labels4, 4, 15));
    CHECK(v1 == 1 && v5 == 5, "versions %" PRId64 "..%" PRId64, v1, v5);
    damage(v4, 0);
    damage(v5, 1);
    set_current(v1);

    sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER, .version = v1};
    cw_reload_opts_t o = {.registry = reg, .model = "news", .fleet = "", .poll_ms = 20,
                          .serving_version = v1, .labels = labels4, .nlabels = 4,
                          .offer = sink_offer, .opaque = &s};
    cw_reload_t *r = cw_reload_start(&o, err, sizeof(err));
    CHECK(r != NULL, "start: %s", err);
    if (!r) return;

    usleep(100000);
    uint64_t n0;
    int64_t cur;
    sink_get(&s, &cur, &n0);
    CHECK(n0 == 0 && cur == v1, "offered %" PRIu64 " models with nothing promoted", n0);

    double t0 = cw_now_s();
    set_current(v2);
    double dt = wait_version(&s, v2, 0, 5);
    CHECK(dt >= 0 && dt < 1.0, "promotion of v2 seen after %.3f s", dt);
    printf("promote -> offered: %.1f ms\n", (cw_now_s() - t0) * 1e3);

    /* Corrupted, truncated and relabelled versions made current: refused, v2 stays. */
    const struct { int64_t v; const char *why; } bad[] = {
        {v4, "checksum"}, {v5, NULL}, {v3, "label"}};
    for (size_t i = 0; i < 3; i++) {
        set_current(bad[i].v);
        dt = wait_refused(r, i + 1, 5);
        CHECK(dt >= 0 && dt < 1.0, "v%" PRId64 " not refused within a second (%.3f)", bad[i].v, dt);
        cw_reload_stats_t st;
        cw_reload_get_stats(r, &st);
        CHECK(st.refused_version == bad[i].v, "refused version %" PRId64 ", expected %" PRId64,
              st.refused_version, bad[i].v);
        char vs[32];
        snprintf(vs, sizeof(vs), "news@%" PRId64, bad[i].v);
        CHECK(log_has(vs, "refusing"), "refusal of %s not logged", vs);
        if (bad[i].why) CHECK(strstr(st.last_error, bad[i].why) != NULL, "reason '%s'", st.last_error);
        printf("refused %s: %s\n", vs, st.last_error);
        sink_get(&s, &cur, &n0);
        CHECK(cur == v2 && n0 == 1, "serving %" PRId64 " after %" PRIu64 " offers", cur, n0);
    }
    /* A refused version is not retried while it stays current. */
    usleep(150000);
    cw_reload_stats_t st;
    cw_reload_get_stats(r, &st);
    CHECK(st.refused == 3, "refused %" PRIu64 " times (retrying?)", st.refused);

    /* Rollback to v1 (the registry's history skips nothing: use set_current). */
    set_current(v1);
    dt = wait_version(&s, v1, 1, 5);
    CHECK(dt >= 0 && dt < 1.0, "rollback to v1 seen after %.3f s", dt);
    cw_reload_stop(r);

    /* A fleet pin wins over CURRENT; unpinning follows CURRENT again. */
    o.fleet = "canary";
    o.serving_version = v1;
    r = cw_reload_start(&o, err, sizeof(err));
    CHECK(r != NULL, "start: %s", err);
    if (!r) return;
    uint64_t before;
    sink_get(&s, &cur, &before);
    CHECK(cw_registry_pin(reg, "news", "canary", v2, err, sizeof(err)) == 0, "pin: %s", err);
    dt = wait_version(&s, v2, before, 5);
    CHECK(dt >= 0 && dt < 1.0, "pin to v2 seen after %.3f s", dt);
    CHECK(cw_registry_unpin(reg, "news", "canary", err, sizeof(err)) == 1, "unpin: %s", err);
    dt = wait_version(&s, v1, before + 1, 5);
    CHECK(dt >= 0 && dt < 1.0, "unpin (back to CURRENT v1) seen after %.3f s", dt);
    cw_reload_stop(r);

    /* 100 reloads: v1 <-> v2, each swapped in and the old one freed. */
    o.fleet = "";
    o.poll_ms = 10;
    r = cw_reload_start(&o, err, sizeof(err));
    CHECK(r != NULL, "start: %s", err);
    if (!r) return;
    size_t model_bytes = (size_t)s.model->nrows * s.model->dim * sizeof(float);
    long rss0 = 0;
    double worst = 0;
    for (int i = 0; i < 110; i++) {
        int64_t want = i % 2 == 0 ? v2 : v1;
        sink_get(&s, &cur, &before);
        set_current(want);
        cw_reload_wake(r);
        dt = wait_version(&s, want, before, 5);
        CHECK(dt >= 0, "reload %d (to v%" PRId64 ") not seen", i, want);
        if (dt < 0) break;
        if (dt > worst) worst = dt;
        if (i == 9) rss0 = rss_kb();   /* after warm-up: allocator pools settled */
    }
    long rss1 = rss_kb();
    long growth = rss1 - rss0;
    printf("100 reloads: VmRSS %ld -> %ld KiB (%+ld KiB; one model's embeddings are %zu KiB), "
           "slowest reload %.1f ms\n", rss0, rss1, growth, model_bytes / 1024, worst * 1e3);
    CHECK(rss0 > 0 && growth < (long)(model_bytes / 1024) * 2,
          "VmRSS grew by %ld KiB over 100 reloads (model %zu KiB)", growth, model_bytes / 1024);
    cw_reload_stop(r);

    cw_backend_destroy(s.be);
    cw_model_destroy(s.model);
}

static void rm_rf(const char *path) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

int main(void) {
    snprintf(root, sizeof(root), "/tmp/cw_test_reload.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    cw_log_set_callback(capture);
    cw_log_set_level(CW_LOG_DEBUG);
    test_validate();
    test_load_damaged();
    test_control_decode();
    test_reloader();
    if (failures) {
        fprintf(stderr, "%d check(s) failed; logs:\n%s", failures, log_buf);
        fprintf(stderr, "kept %s\n", root);
        return 1;
    }
    rm_rf(root);
    printf("test_reload: ok\n");
    return 0;
}
