/* test_backend_select.c: choosing a backend by device spec (backend.h).
 *
 * Runs in every build: "cpu" always works; bad specs fail with a message
 * that lists what the build has; "cuda" fails clearly where CUDA is not
 * compiled in or no GPU is usable, and works (with a "cuda:N (name)"
 * description) where one is; "auto" falls back to the CPU without a GPU. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "log.h"

#include "check.h"

/* cw_backend_new(spec) must fail with an error containing each of want[]. */
static void expect_fail(const char *spec, const char *const *want, size_t nwant) {
    char err[512] = "";
    cw_backend_t *be = cw_backend_new(spec, err, sizeof(err));
    CHECK(be == NULL, "spec '%s' was accepted (%s)", spec, be ? be->desc : "");
    cw_backend_destroy(be);
    CHECK(err[0] != '\0', "spec '%s': empty error", spec);
    for (size_t i = 0; i < nwant; i++)
        CHECK(strstr(err, want[i]) != NULL, "spec '%s': error \"%s\" lacks \"%s\"", spec, err, want[i]);
    printf("  %-10s -> error: %s\n", spec, err);
}

/* cw_backend_new(spec) must succeed with ops named name and desc starting with prefix. */
static void expect_ok(const char *spec, const char *name, const char *prefix) {
    char err[512] = "";
    cw_backend_t *be = cw_backend_new(spec, err, sizeof(err));
    CHECK(be != NULL, "spec '%s' failed: %s", spec, err);
    if (!be) return;
    CHECK(!strcmp(be->ops->name, name), "spec '%s' gave backend %s, expected %s", spec, be->ops->name, name);
    CHECK(!strncmp(be->desc, prefix, strlen(prefix)), "spec '%s': desc \"%s\" does not start with \"%s\"", spec,
          be->desc, prefix);
    printf("  %-10s -> %s\n", spec, be->desc);
    cw_backend_destroy(be);
}

static void quiet(cw_log_level_t level, const char *component, const char *msg) {
    printf("  (log %d %s: %s)\n", (int)level, component, msg);
}

int main(void) {
    cw_log_set_callback(quiet);
    const char *avail = cw_backend_available();
    printf("this build has: %s\n", avail);
    CHECK(strstr(avail, "cpu") != NULL, "available list \"%s\" lacks cpu", avail);

    expect_ok("cpu", "cpu", "cpu");
    expect_ok(NULL, "cpu", "cpu");

    const char *want_list[] = {"this build has: ", "cpu"};
    expect_fail("gpu", want_list, 2);
    expect_fail("", want_list, 2);
    expect_fail("CPU", want_list, 2);
    const char *want_bad[] = {"bad device"};
    expect_fail("cuda:", want_bad, 1);
    expect_fail("cuda:x", want_bad, 1);
    expect_fail("cuda:-1", want_bad, 1);
    expect_fail("cuda:1x", want_bad, 1);

#if CW_WITH_CUDA
    CHECK(strstr(avail, "cuda") != NULL, "CUDA build: available list \"%s\" lacks cuda", avail);
    char why[512] = "";
    int gpu = cw_cuda_available(why, sizeof(why));
    printf("CUDA build; GPU usable: %s%s%s\n", gpu ? "yes" : "no", gpu ? "" : ": ", gpu ? "" : why);
    if (gpu) {
        expect_ok("cuda", "cuda", "cuda:0 (");
        expect_ok("cuda:0", "cuda", "cuda:0 (");
        expect_ok("auto", "cuda", "cuda:0 (");
        const char *want_range[] = {"cuda:999", "CUDA device"};
        expect_fail("cuda:999", want_range, 2);
    } else {
        CHECK(why[0] != '\0', "cw_cuda_available gave no reason");
        /* The error for "cuda" carries the same reason the probe gives. */
        const char *want_cuda[] = {"cuda:0", why};
        expect_fail("cuda", want_cuda, 2);
        const char *want_cuda3[] = {"cuda:3"};
        expect_fail("cuda:3", want_cuda3, 1);
        expect_ok("auto", "cpu", "cpu");
    }
#else
    CHECK(strstr(avail, "cuda") == NULL, "non-CUDA build lists \"%s\"", avail);
    const char *want_nocuda[] = {"no CUDA backend", "this build has: cpu"};
    expect_fail("cuda", want_nocuda, 2);
    expect_fail("cuda:0", want_nocuda, 2);
    expect_fail("cuda:7", want_nocuda, 2);
    expect_ok("auto", "cpu", "cpu");
#endif

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
