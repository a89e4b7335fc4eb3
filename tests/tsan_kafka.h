/* tsan_kafka.h: whether a Kafka client can run in this build.
 *
 * Under ThreadSanitizer, a librdkafka that starts its threads with libc's
 * C11 thrd_create (Debian's does) crashes every client at start: TSan does
 * not intercept thrd_create. CMakeLists.txt then defines
 * CW_RDKAFKA_TSAN_UNSAFE, and a test that hosts or starts a Kafka client
 * begins with CW_SKIP_IF_KAFKA_UNSAFE(name): it prints why and exits 77
 * (ctest: skipped). deploy/librdkafka-tsan.sh builds a librdkafka that runs
 * under TSan. */
#ifndef CW_TEST_TSAN_KAFKA_H
#define CW_TEST_TSAN_KAFKA_H

#include <stdio.h>

#ifdef CW_RDKAFKA_TSAN_UNSAFE
#define CW_SKIP_IF_KAFKA_UNSAFE(name)                                                              \
    do {                                                                                           \
        printf("%s: skipped: this ThreadSanitizer build links a librdkafka that starts its "       \
               "threads with C11 thrd_create, which TSan does not intercept (any Kafka client "    \
               "would crash at start); configure a fresh build directory with "                    \
               "PKG_CONFIG_PATH=$(deploy/librdkafka-tsan.sh)\n", (name));                          \
        return 77;                                                                                 \
    } while (0)
#else
#define CW_SKIP_IF_KAFKA_UNSAFE(name) \
    do {                              \
    } while (0)
#endif

#endif
