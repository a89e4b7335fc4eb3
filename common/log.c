/* log.c: the process log sink. See log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Daemon configuration, set before threads start (see log.h). */
static cw_log_level_t log_level = CW_LOG_INFO;
static cw_log_cb_t *log_cb = NULL;

void cw_log_set_level(cw_log_level_t level) { log_level = level; }
cw_log_level_t cw_log_get_level(void) { return log_level; }
void cw_log_set_callback(cw_log_cb_t *cb) { log_cb = cb; }

int cw_log_level_parse(const char *s) {
    if (!strcmp(s, "error")) return CW_LOG_ERROR;
    if (!strcmp(s, "warn") || !strcmp(s, "warning")) return CW_LOG_WARN;
    if (!strcmp(s, "info")) return CW_LOG_INFO;
    if (!strcmp(s, "debug")) return CW_LOG_DEBUG;
    return -1;
}

static const char *level_name(cw_log_level_t l) {
    switch (l) {
    case CW_LOG_ERROR: return "ERROR";
    case CW_LOG_WARN: return "WARN";
    case CW_LOG_INFO: return "INFO";
    default: return "DEBUG";
    }
}

void cw_log(cw_log_level_t level, const char *component, const char *fmt, ...) {
    if (level > log_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_cb) {
        log_cb(level, component, msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char line[2300];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_name(level), component, msg);
    if (n < 0) return;
    if ((size_t)n >= sizeof(line)) n = sizeof(line) - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
