/* test_trainer_cli.c: catwire-trainer's exit codes (0 ok, 1 error, 2 usage),
 * the contract scripts and operators rely on, on the shipped sample data.
 * Needs no broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "run_status.h"

int main(void) {
    const char *tr = CW_TRAINER_BIN;
    char dir[] = "/tmp/cw-test-trainer-XXXXXX", data[4096];
    snprintf(data, sizeof(data), "%s/sample-1k.csv", CW_TEST_DATA);
    if (access(data, R_OK) != 0) {
        printf("SKIP: %s not found (the shared AG News files)\n", data);
        return 77;
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *labels = "World,Sports,Business,Sci/Tec";

    CHECK(run_status("%s --help >/dev/null", tr) == 0, "--help -> 0");
    CHECK(run_status("%s train --help >/dev/null", tr) == 0, "train --help -> 0");
    CHECK(run_status("%s train --no-such-option 2>/dev/null", tr) == 2, "unknown option -> 2");
    CHECK(run_status("%s train --labels %s 2>/dev/null", tr, labels) == 2, "no --train -> 2");
    CHECK(run_status("%s train --train %s --registry %s/reg --model m --labels %s --recipe nope 2>/dev/null", tr,
                     data, dir, labels) == 2, "unknown recipe -> 2");
    /* The default recipe's model has one dimension per label: any other dim is a usage error. */
    CHECK(run_status("%s train --train %s --registry %s/reg --model m --labels %s --dim 8 --quiet 2>/dev/null", tr,
                     data, dir, labels) == 2, "--dim 8 with the default recipe -> 2");
    CHECK(run_status("%s train --train %s/missing.csv --registry %s/reg --model m --labels %s 2>/dev/null", tr, dir,
                     dir, labels) == 1, "missing training file -> 1");
    CHECK(run_status("%s train --train %s --registry %s/reg --model m --labels %s --dim 4 --quiet >/dev/null", tr,
                     data, dir, labels) == 0, "--dim 4 (= labels) with the default recipe -> 0");

    run_status("rm -rf %s", dir);
    if (failures) {
        fprintf(stderr, "test_trainer_cli: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_trainer_cli: ok\n");
    return 0;
}
