/* test_publish_tail.c: `catwire publish` and `catwire tail` round trips on
 * the embedded broker (librdkafka's mock cluster, hosted by this process;
 * the tools run as child processes and connect to it over localhost).
 *
 * Checks: CSV and JSON-lines articles come back field for field with the
 * documented ids and keys; --repeat with --unique-ids; a result renders as
 * its JSON object; a dead letter renders as an envelope whose headers and
 * base64 value restore the original bytes; a CSV with a wrong column count
 * and an unreachable broker both exit 1; --help exits 0. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "article.h"
#include "json.h"
#include "kafka_util.h"
#include "log.h"
#include "util.h"

#include "check.h"
#include "tsan_kafka.h"
#include "run_status.h"

typedef struct lines_s {
    char **v;
    size_t n, cap;
} lines_t;

static void lines_free(lines_t *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int lines_has(const lines_t *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return 1;
    return 0;
}

/* Run a command and collect its stdout lines (newline stripped). */
static int run_lines(lines_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_lines(lines_t *out, const char *fmt, ...) {
    char cmd[4096];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    va_list ap;
    FILE *p;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    if (!p) return -1;
    while ((n = getline(&line, &cap, p)) >= 0) {
        if (n && line[n - 1] == '\n') line[n - 1] = '\0';
        cw_grow((void **)&out->v, &out->cap, out->n + 1, sizeof(char *));
        out->v[out->n++] = cw_strdup(line);
    }
    free(line);
    st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void produce(const char *brokers, const char *topic, const void *key, size_t keylen,
                    const void *val, size_t len, const char *reason) {
    char errstr[512];
    rd_kafka_conf_t *conf = cw_kafka_conf_new(brokers, errstr, sizeof(errstr));
    rd_kafka_t *rk;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_resp_err_t err;
    if (!conf || !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "producer: %s\n", errstr);
        exit(1);
    }
    if (reason) {
        h = rd_kafka_headers_new(3);
        rd_kafka_header_add(h, "catwire.reason", -1, reason, -1);
        rd_kafka_header_add(h, "catwire.source.topic", -1, "articles", -1);
        rd_kafka_header_add(h, "catwire.source.offset", -1, "41", -1);
    }
    if (h)
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)val, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)val, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_END);
    if (err) {
        if (h) rd_kafka_headers_destroy(h); /* ownership passes only on success */
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
        exit(1);
    }
    if (rd_kafka_flush(rk, 10000)) {
        fprintf(stderr, "flush timed out\n");
        exit(1);
    }
    rd_kafka_destroy(rk);
}

int main(void) {
    char errstr[512], dir[] = "/tmp/cw-test-publish-XXXXXX", path[600], path2[600];
    const char *cw = CW_CATWIRE_BIN;
    const char *b;
    cw_kafka_mock_t *mk;
    lines_t l = {0};
    int st;

    CW_SKIP_IF_KAFKA_UNSAFE("test_publish_tail");
    cw_log_set_level(CW_LOG_WARN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    mk = cw_kafka_mock_new(1, errstr, sizeof(errstr));
    if (!mk) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    b = cw_kafka_mock_bootstraps(mk);
    if (cw_kafka_mock_create_topic(mk, "articles", 3, errstr, sizeof(errstr)) ||
        cw_kafka_mock_create_topic(mk, "jarticles", 2, errstr, sizeof(errstr)) ||
        cw_kafka_mock_create_topic(mk, "results", 1, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }

    /* --help of the three tools */
    CHECK(run_status("%s publish --help >/dev/null", cw) == 0, "publish --help");
    CHECK(run_status("%s tail --help >/dev/null", cw) == 0, "tail --help");
    CHECK(run_status("%s demo --help >/dev/null", cw) == 0, "demo --help");
    CHECK(run_status("%s publish --topic x 2>/dev/null", cw) == 2, "publish usage error -> 2");

    /* CSV: quotes, commas, doubled quotes, backslashes, non-ASCII. */
    snprintf(path, sizeof(path), "%s/news.csv", dir);
    write_file(path,
               "\"3\",\"Stocks, bonds \"\"rally\"\"\",\"Wall St. rose\\today.\"\n"
               "\"2\",\"Caf\xc3\xa9 wins\",\"Cup final\"\n"
               "\"1\",\"\",\"Only a body\"\n");
    st = run_status("%s publish -q --brokers %s --topic articles %s", cw, b, path);
    CHECK(st == 0, "publish csv exit %d", st);
    st = run_lines(&l, "%s tail --brokers %s --topic articles --from-beginning --max 3 "
                       "--timeout-ms 10000", cw, b);
    CHECK(st == 0 && l.n == 3, "tail csv: exit %d, %zu lines", st, l.n);
    CHECK(lines_has(&l, "{\"id\":\"news-1\",\"title\":\"Stocks, bonds \\\"rally\\\"\","
                        "\"body\":\"Wall St. rose\\\\today.\"}"),
          "news-1 rendered; first line: %s", l.n ? l.v[0] : "(none)");
    CHECK(lines_has(&l, "{\"id\":\"news-2\",\"title\":\"Caf\xc3\xa9 wins\",\"body\":\"Cup final\"}"),
          "news-2 rendered");
    CHECK(lines_has(&l, "{\"id\":\"news-3\",\"title\":\"\",\"body\":\"Only a body\"}") ||
              lines_has(&l, "{\"id\":\"news-3\",\"body\":\"Only a body\"}"),
          "news-3 rendered");
    lines_free(&l);

    /* Keys are the ids: envelope form shows them. */
    st = run_lines(&l, "%s tail --brokers %s --topic articles --from-beginning --max 3 "
                       "--timeout-ms 10000 --envelope", cw, b);
    CHECK(st == 0 && l.n == 3, "tail envelope: exit %d, %zu lines", st, l.n);
    for (size_t i = 0; i < l.n; i++)
        CHECK(strstr(l.v[i], "\"key\":\"news-") && strstr(l.v[i], "\"value_base64\":\"") &&
                  strstr(l.v[i], "\"value\":{\"id\":\"news-"),
              "envelope line: %s", l.v[i]);
    lines_free(&l);

    /* --repeat with --unique-ids, and --key none. */
    st = run_status("%s publish -q --brokers %s --topic articles --repeat 2 --unique-ids "
                    "--key none %s", cw, b, path);
    CHECK(st == 0, "publish repeat exit %d", st);
    st = run_lines(&l, "%s tail --brokers %s --topic articles --from-beginning --max 9 "
                       "--timeout-ms 10000 --envelope", cw, b);
    CHECK(st == 0 && l.n == 9, "tail after repeat: exit %d, %zu lines", st, l.n);
    {
        int r0 = 0, r1 = 0, nokey = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (strstr(l.v[i], "\"id\":\"news-r0-")) r0++;
            if (strstr(l.v[i], "\"id\":\"news-r1-")) r1++;
            if (strstr(l.v[i], "\"key\":null")) nokey++;
        }
        CHECK(r0 == 3 && r1 == 3 && nokey == 6, "repeat ids r0=%d r1=%d unkeyed=%d", r0, r1, nokey);
    }
    lines_free(&l);

    /* JSON lines from stdin; unknown keys skipped; optional fields kept. */
    snprintf(path2, sizeof(path2), "%s/in.jsonl", dir);
    write_file(path2,
               "{\"id\":\"a1\",\"title\":\"Mars rover\",\"body\":\"NASA said\",\"extra\":[1,{\"x\":2}]}\n"
               "\n"
               "{\"id\":\"a2\",\"title\":\"T\",\"body\":\"B\",\"source\":\"wire\",\"published_at\":1700000000000}\n");
    st = run_status("%s publish -q --format jsonl --brokers %s --topic jarticles - < %s", cw, b, path2);
    CHECK(st == 0, "publish jsonl exit %d", st);
    st = run_lines(&l, "%s tail --brokers %s --topic jarticles --from-beginning --max 2 "
                       "--timeout-ms 10000", cw, b);
    CHECK(st == 0 && l.n == 2, "tail jsonl: exit %d, %zu lines", st, l.n);
    CHECK(lines_has(&l, "{\"id\":\"a1\",\"title\":\"Mars rover\",\"body\":\"NASA said\"}"),
          "a1 rendered; got %s", l.n ? l.v[0] : "(none)");
    {
        int found = 0;
        for (size_t i = 0; i < l.n; i++)
            found += strstr(l.v[i], "\"id\":\"a2\"") && strstr(l.v[i], "\"source\":\"wire\"") &&
                     strstr(l.v[i], "\"published_at\":1700000000000");
        CHECK(found == 1, "a2 with source and published_at");
    }
    lines_free(&l);

    /* Bad input: wrong column count (exit 1, names file:line); bad JSON line. */
    snprintf(path2, sizeof(path2), "%s/bad.csv", dir);
    write_file(path2, "\"1\",\"t\",\"d\"\n\"2\",\"only two\"\n");
    st = run_status("%s publish -q --brokers %s --topic articles %s 2>%s/err.txt", cw, b, path2, dir);
    CHECK(st == 1, "bad csv exit %d", st);
    {
        char *text = NULL;
        size_t len = 0;
        char ep[700];
        snprintf(ep, sizeof(ep), "%s/err.txt", dir);
        CHECK(!cw_file_read_all(ep, &text, &len, errstr, sizeof(errstr)) &&
                  strstr(text, "bad.csv:2: expected 3 columns"),
              "error names file:line: %s", text ? text : "(none)");
        cw_free(text);
    }
    snprintf(path2, sizeof(path2), "%s/bad.jsonl", dir);
    write_file(path2, "{\"id\":\"ok\",\"title\":\"t\"}\n{\"id\":\"x\",\"title\":\n");
    st = run_status("%s publish -q --brokers %s --topic jarticles %s 2>/dev/null", cw, b, path2);
    CHECK(st == 1, "bad jsonl exit %d", st);

    /* Nobody listening: every delivery fails -> exit 1. */
    st = run_status("%s publish -q --brokers 127.0.0.1:1 --topic articles "
                    "-X message.timeout.ms=1500 %s 2>/dev/null", cw, path);
    CHECK(st == 1, "unreachable broker exit %d", st);

    /* A result and a dead letter on one topic. */
    {
        static const float scores[4] = {0.125f, 0.75f, 0.0625f, 0.0625f};
        static const unsigned char junk[] = {0xc1, 0x00, 'x', 0xff};
        char *buf = NULL, b64line[256];
        size_t len = 0, cap = 0;
        cw_jbuf_t jb = {0};
        cw_result_t r;
        memset(&r, 0, sizeof(r));
        r.id.p = "news-2";
        r.id.len = 6;
        r.label = "Sports";
        r.label_id = 1;
        r.confidence = 0.75f;
        r.scores = scores;
        r.nscores = 4;
        r.model = "agnews";
        r.model_version = 3;
        r.worker = "w1";
        r.processed_at = 1700000000123;
        CHECK(cw_result_encode(&r, &buf, &len, &cap) == 0, "result encode");
        produce(b, "results", "news-2", 6, buf, len, NULL);
        produce(b, "results", "bad-7", 5, junk, sizeof(junk), "malformed");
        free(buf);
        st = run_lines(&l, "%s tail --brokers %s --topic results --from-beginning --max 2 "
                           "--timeout-ms 10000", cw, b);
        CHECK(st == 0 && l.n == 2, "tail results: exit %d, %zu lines", st, l.n);
        CHECK(l.n >= 1 && strstr(l.v[0], "{\"id\":\"news-2\",") && strstr(l.v[0], "\"label\":\"Sports\"") &&
                  strstr(l.v[0], "\"label_id\":1") && strstr(l.v[0], "\"scores\":[0.125,0.75,0.0625,0.0625]") &&
                  strstr(l.v[0], "\"model_version\":3"),
              "result line: %s", l.n ? l.v[0] : "(none)");
        cw_json_append_base64(&jb, junk, sizeof(junk));
        snprintf(b64line, sizeof(b64line), "\"value_base64\":%s", jb.p);
        CHECK(l.n >= 2 && strstr(l.v[1], "{\"topic\":\"results\",\"partition\":0,\"offset\":1,") &&
                  strstr(l.v[1], "\"key\":\"bad-7\"") &&
                  strstr(l.v[1], "\"headers\":{\"catwire.reason\":\"malformed\","
                                 "\"catwire.source.topic\":\"articles\",\"catwire.source.offset\":\"41\"}") &&
                  strstr(l.v[1], b64line) && !strstr(l.v[1], "\"value\":"),
              "dead letter line: %s (want %s)", l.n >= 2 ? l.v[1] : "(none)", b64line);
        CHECK(!strcmp(jb.p, "\"wQB4/w==\""), "base64 of the junk: %s", jb.p);
        cw_jbuf_free(&jb);
        lines_free(&l);
    }

    /* --max is honoured, --timeout-ms ends an idle tail. */
    st = run_lines(&l, "%s tail --brokers %s --topic results --from-beginning --timeout-ms 1500", cw, b);
    CHECK(st == 0 && l.n == 2, "idle tail: exit %d, %zu lines", st, l.n);
    lines_free(&l);

    cw_kafka_mock_destroy(mk);
    run_status("rm -rf %s", dir);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
