/* check.h: the tests' one assertion macro. CHECK(cond, fmt, ...) counts
 * a failure and prints "FILE:LINE: check failed: cond: message" without
 * stopping the test, so one run reports every broken case; a test's main()
 * returns failures ? 1 : 0 (or 77 when it cannot run here, saying why). */
#ifndef CW_TEST_CHECK_H
#define CW_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                             \
    do {                                                                             \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
        }                                                                            \
    } while (0)

#endif
