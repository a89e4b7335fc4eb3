/* test_demo.c: `catwire demo` end to end on a small scale: train a model on
 * the 1,000-row AG News sample (the demo's training path), stream 1,500
 * articles (the first 500 test rows, repeated with unique ids) through the
 * embedded broker and an in-process worker, and check the summary: every
 * article answered once, no dead letters, accuracy well above chance. A
 * second run must load the model from the registry instead of training.
 * With CW_TEST_BROKERS (deploy/test.sh sets it) a third run uses that real
 * broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "util.h"

#include "check.h"
#include "tsan_kafka.h"

/* Run cmd, capture stdout into *out; exit status or -1. */
static int run_capture(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t n;
    int st;
    *out = NULL;
    if (!p) return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        cw_grow((void **)out, &cap, len + n + 1, 1);
        memcpy(*out + len, chunk, n);
        len += n;
    }
    if (!*out) *out = cw_strdup("");
    else (*out)[len] = '\0';
    st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    char dir[] = "/tmp/cw-test-demo-XXXXXX", cmd[4096];
    char *out = NULL;
    const char *line;
    double acc = 0;
    int st;

    CW_SKIP_IF_KAFKA_UNSAFE("test_demo");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/data && ln -s %s/sample-1k.csv %s/data/train.csv && "
             "head -n 500 %s/test.csv > %s/data/test.csv",
             dir, CW_TEST_DATA, dir, CW_TEST_DATA, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot prepare %s (AG News data in %s?)\n", dir, CW_TEST_DATA);
        return 1;
    }

    snprintf(cmd, sizeof(cmd),
             "%s demo --registry %s/reg --data %s/data --articles 1500 --partitions 4 --samples 3",
             CW_CATWIRE_BIN, dir, dir);
    st = run_capture(cmd, &out);
    fputs(out, stdout);
    CHECK(st == 0, "first demo run exit %d", st);
    CHECK(strstr(out, "training the default recipe") != NULL, "first run trains");
    CHECK(strstr(out, "published as news@1") != NULL, "and publishes news@1");
    CHECK(strstr(out, "articles      1500 published, 1500 delivered, 0 failed") != NULL,
          "1500 articles delivered");
    CHECK(strstr(out, "results       1500 (duplicates 0, missing 0)") != NULL, "1500 results");
    CHECK(strstr(out, "dead letters  0\n") != NULL, "no dead letters");
    line = strstr(out, "accuracy      ");
    CHECK(line && sscanf(line, "accuracy      %lf%%", &acc) == 1, "accuracy line");
    /* 4 balanced classes: chance is 25%; 1,000 training rows give ~70-80%. */
    CHECK(acc > 50.0 && acc <= 100.0, "accuracy %.2f%% well above chance", acc);
    CHECK(strstr(out, "sample results") != NULL, "samples printed");
    cw_free(out);

    snprintf(cmd, sizeof(cmd),
             "%s demo --registry %s/reg --data %s/data --articles 300 --partitions 2 --samples 0 "
             "--max-articles 16",
             CW_CATWIRE_BIN, dir, dir);
    st = run_capture(cmd, &out);
    fputs(out, stdout);
    CHECK(st == 0, "second demo run exit %d", st);
    CHECK(strstr(out, "model: news@1 from registry") != NULL, "second run loads news@1");
    CHECK(strstr(out, "training") == NULL, "and does not train");
    CHECK(strstr(out, "results       300 (duplicates 0, missing 0)") != NULL, "300 results");
    cw_free(out);

    /* On a real broker too, when the test run has one (topics created with
     * the Admin API, unique per run). */
    if (getenv("CW_TEST_BROKERS") && *getenv("CW_TEST_BROKERS")) {
        snprintf(cmd, sizeof(cmd),
                 "%s demo --registry %s/reg --data %s/data --articles 2000 --partitions 4 "
                 "--samples 0 --brokers '%s'",
                 CW_CATWIRE_BIN, dir, dir, getenv("CW_TEST_BROKERS"));
        st = run_capture(cmd, &out);
        fputs(out, stdout);
        CHECK(st == 0, "real-broker demo run exit %d", st);
        CHECK(strstr(out, "results       2000 (duplicates 0, missing 0)") != NULL, "2000 results");
        cw_free(out);
    } else {
        printf("CW_TEST_BROKERS not set: the real-broker run is skipped\n");
    }

    /* A missing data folder is an error, not a hang. */
    snprintf(cmd, sizeof(cmd), "%s demo --registry %s/reg --data %s/nope 2>/dev/null",
             CW_CATWIRE_BIN, dir, dir);
    st = system(cmd);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "missing data exit 1");

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
