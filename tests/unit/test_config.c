/* test_config.c: the worker's configuration table: parsing, validation with
 * FILE:LINE errors, the kafka passthrough group, --dump-config round trip and
 * the example in deploy/worker.conf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "check.h"

static char tmpdir[256];

static const char *write_conf(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

/* Load text; expect failure with an error containing want (NULL: expect success). */
static void expect(const char *text, const char *want) {
    cw_worker_conf_t c;
    char err[1024] = "";
    cw_worker_conf_defaults(&c);
    const char *path = write_conf("t.conf", text);
    int rc = cw_worker_conf_load(&c, path, err, sizeof(err));
    if (!want) {
        CHECK(rc == 0, "config %s: %s", text, err);
    } else {
        CHECK(rc == -1, "config %s loaded but should fail with '%s'", text, want);
        CHECK(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
        CHECK(strstr(err, path) == err, "error '%s' does not start with the file name", err);
    }
    cw_worker_conf_free(&c);
}

static void test_defaults(void) {
    cw_worker_conf_t c;
    cw_worker_conf_defaults(&c);
    CHECK(!strcmp(c.processing_guarantee, "at_least_once"), "%s", c.processing_guarantee);
    CHECK(c.max_articles > 0 && c.max_wait_ms >= 0, "batch limits");
    CHECK(c.shutdown_timeout_ms > 0, "shutdown timeout");
    CHECK(c.nkafka == 0, "kafka");
    CHECK(!strcmp(c.worker_id, "") && !strcmp(c.fleet, ""), "optional strings default to \"\"");
    CHECK(c.skip_model == 0 && c.allow_label_change == 0, "booleans");
    cw_worker_conf_free(&c);
}

static void test_valid_file(void) {
    cw_worker_conf_t c;
    char err[1024] = "";
    cw_worker_conf_defaults(&c);
    const char *path = write_conf("ok.conf",
        "# a comment\n"
        "brokers = \"k1:9092,k2:9092\";\n"
        "input_topic = \"in\";\n"
        "output_topic = \"out\";\n"
        "max_articles = 64;\n"
        "max_wait_ms = 7;\n"
        "processing_guarantee = \"exactly_once\";\n"
        "device = \"cuda:1\";\n"
        "skip_model = true;\n"
        "kafka = {\n"
        "  linger_ms = 10;\n"
        "  socket_keepalive_enable = true;\n"
        "  compression_codec = \"lz4\";\n"
        "};\n");
    int rc = cw_worker_conf_load(&c, path, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    CHECK(!strcmp(c.brokers, "k1:9092,k2:9092"), "%s", c.brokers);
    CHECK(!strcmp(c.input_topic, "in") && !strcmp(c.output_topic, "out"), "topics");
    CHECK(c.max_articles == 64 && c.max_wait_ms == 7, "ints");
    CHECK(!strcmp(c.processing_guarantee, "exactly_once"), "enum");
    CHECK(!strcmp(c.device, "cuda:1"), "device");
    CHECK(c.skip_model == 1, "bool");
    CHECK(c.nkafka == 3, "nkafka %zu", c.nkafka);
    if (c.nkafka == 3) {
        CHECK(!strcmp(c.kafka[0].key, "linger.ms") && !strcmp(c.kafka[0].value, "10") &&
              c.kafka[0].line == 11, "kafka[0] %s=%s line %d", c.kafka[0].key, c.kafka[0].value,
              c.kafka[0].line);
        CHECK(!strcmp(c.kafka[1].key, "socket.keepalive.enable") &&
              !strcmp(c.kafka[1].value, "true"), "kafka[1] %s=%s", c.kafka[1].key, c.kafka[1].value);
        CHECK(!strcmp(c.kafka[2].key, "compression.codec") && !strcmp(c.kafka[2].value, "lz4"),
              "kafka[2]");
    }
    /* Unset keys keep their defaults. */
    CHECK(!strcmp(c.group_id, "catwire-worker"), "%s", c.group_id);

    /* Dump and load back: the same effective configuration. */
    char dpath[512];
    snprintf(dpath, sizeof(dpath), "%s/dump.conf", tmpdir);
    FILE *f = fopen(dpath, "w");
    cw_worker_conf_dump(&c, f);
    fclose(f);
    cw_worker_conf_t d;
    cw_worker_conf_defaults(&d);
    rc = cw_worker_conf_load(&d, dpath, err, sizeof(err));
    CHECK(rc == 0, "dump does not load: %s", err);
    CHECK(!strcmp(d.brokers, c.brokers) && d.max_articles == 64 && d.skip_model == 1 &&
          !strcmp(d.processing_guarantee, "exactly_once") && d.nkafka == 3, "dump round trip");
    if (d.nkafka == 3) CHECK(!strcmp(d.kafka[1].key, "socket.keepalive.enable"), "kafka round trip");
    cw_worker_conf_free(&d);
    cw_worker_conf_free(&c);
}

static void test_errors(void) {
    expect("brokers = \"x:1\";\n\nbogus = 1;\n", ":3: unknown key 'bogus'");
    expect("max_articles = \"many\";\n", ":1: key 'max_articles': expected an integer, got a string");
    expect("\n\nmax_articles = 0;\n", ":3: key 'max_articles': 0 is out of range");
    expect("max_articles = 100000;\n", "out of range [1, 65536]");
    expect("max_wait_ms = -1;\n", "key 'max_wait_ms': -1 is out of range");
    expect("processing_guarantee = \"maybe\";\n",
           ":1: key 'processing_guarantee': 'maybe' is not one of at_least_once, exactly_once");
    expect("log_level = \"loud\";\n", "key 'log_level': 'loud' is not one of");
    expect("device = \"gpu\";\n", "key 'device': 'gpu' is not one of cpu, cuda, cuda:N, auto");
    expect("device = \"cuda:x\";\n", "key 'device'");
    expect("skip_model = 1;\n", "key 'skip_model': expected a boolean");
    expect("brokers = 5;\n", "key 'brokers': expected a string, got an integer");
    expect("input_topic = \"\";\n", "key 'input_topic': must not be empty");
    expect("input_topic = \"a\";\noutput_topic = \"a\";\n", "output_topic must differ from input_topic");
    expect("brokers = \"x\";\nmodel = ;\n", ":2: syntax error");
    expect("kafka = {\n  no_such_thing = 1;\n};\n",
           ":2: kafka property 'no.such.thing': No such configuration property");
    expect("kafka = {\n  linger_ms = \"soon\";\n};\n", ":2: kafka property 'linger.ms'");
    expect("kafka = {\n  group_id = \"g\";\n};\n", ":2: kafka property 'group.id' is set by the worker");
    expect("kafka = {\n  enable_auto_offset_store = true;\n};\n", "is set by the worker");
    expect("kafka = 5;\n", ":1: key 'kafka': expected a group");
    expect("kafka = {\n  a = { b = 1; };\n};\n", ":2: kafka property 'a': expected a scalar");
    expect("model = \"news@3\";\nworker_id = \"w-1\";\n", NULL);
    expect("", NULL);

    cw_worker_conf_t c;
    char err[1024];
    CHECK(cw_worker_conf_load((cw_worker_conf_defaults(&c), &c), "/nonexistent/x.conf", err,
                              sizeof(err)) == -1 && strstr(err, "/nonexistent/x.conf: cannot read"),
          "missing file: %s", err);
    cw_worker_conf_free(&c);
}

static void test_set(void) {
    cw_worker_conf_t c;
    char err[1024];
    cw_worker_conf_defaults(&c);
    CHECK(cw_worker_conf_set(&c, "max_articles", "64", err, sizeof(err)) == 0, "%s", err);
    CHECK(c.max_articles == 64, "set int");
    CHECK(cw_worker_conf_set(&c, "skip_model", "true", err, sizeof(err)) == 0 && c.skip_model == 1,
          "set bool");
    CHECK(cw_worker_conf_set(&c, "max_articles", "64x", err, sizeof(err)) == -1 &&
          strstr(err, "expected an integer"), "bad int: %s", err);
    CHECK(cw_worker_conf_set(&c, "nope", "1", err, sizeof(err)) == -1 &&
          strstr(err, "unknown key 'nope'"), "unknown: %s", err);
    CHECK(cw_worker_conf_set(&c, "kafka.linger.ms", "20", err, sizeof(err)) == 0, "%s", err);
    CHECK(cw_worker_conf_set(&c, "kafka.linger.ms", "30", err, sizeof(err)) == 0, "%s", err);
    CHECK(c.nkafka == 1 && !strcmp(c.kafka[0].value, "30"), "kafka replaced");
    CHECK(cw_worker_conf_set(&c, "kafka.bogus.prop", "1", err, sizeof(err)) == -1 &&
          strstr(err, "bogus.prop"), "bad kafka: %s", err);
    CHECK(cw_worker_conf_set(&c, "kafka.sasl.password", "hunter2", err, sizeof(err)) == 0, "%s", err);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cw_worker_conf_dump(&c, f);
    fclose(f);
    CHECK(strstr(buf, "hunter2") == NULL, "dump shows a password");
    CHECK(strstr(buf, "linger_ms = \"30\";") != NULL, "dump kafka: %s", buf);
    CHECK(strstr(buf, "max_articles = 64;") != NULL, "dump int");
    free(buf);
    cw_worker_conf_free(&c);
}

/* deploy/worker.conf: loads, and names every key the dump names. */
static void test_example(void) {
    char path[1024], err[1024];
    snprintf(path, sizeof(path), "%s/../../deploy/worker.conf", CW_TEST_FIXTURES);
    cw_worker_conf_t c;
    cw_worker_conf_defaults(&c);
    CHECK(cw_worker_conf_load(&c, path, err, sizeof(err)) == 0, "%s", err);
    cw_worker_conf_free(&c);

    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "%s", path);
    if (!f) return;
    char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    cw_worker_conf_defaults(&c);
    char *dump = NULL;
    size_t dlen = 0;
    FILE *m = open_memstream(&dump, &dlen);
    cw_worker_conf_dump(&c, m);
    fclose(m);
    for (char *line = strtok(dump, "\n"); line; line = strtok(NULL, "\n")) {
        char key[128];
        if (line[0] == '#' || sscanf(line, "%127[a-z_] =", key) != 1) continue;
        char needle[160];
        snprintf(needle, sizeof(needle), "\n%s =", key);
        char needle2[160];
        snprintf(needle2, sizeof(needle2), "\n# %s =", key);
        CHECK(strstr(text, needle) || strstr(text, needle2), "deploy/worker.conf lacks key '%s'", key);
    }
    free(dump);
    cw_worker_conf_free(&c);
}

int main(void) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cw-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_defaults();
    test_valid_file();
    test_errors();
    test_set();
    test_example();
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", tmpdir);
    if (failures) {
        fprintf(stderr, "test_config: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_config: ok\n");
    return 0;
}
