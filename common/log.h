/* log.h: the one log sink of a catwire process.
 *
 * The model core never prints; daemons and tools log through cw_log(), and
 * librdkafka's log callback forwards here too, so every line on stderr has
 * the same shape:  2026-11-28T21:06:00.123Z LEVEL component: message
 *
 * The sink (level threshold and an optional callback) is process-wide: it is
 * part of the daemon's configuration, set once at start-up before threads
 * start; cw_log() itself is thread-safe (one write(2) per line). */
#ifndef CW_LOG_H
#define CW_LOG_H

typedef enum {
    CW_LOG_ERROR = 3,
    CW_LOG_WARN = 4,
    CW_LOG_INFO = 6,
    CW_LOG_DEBUG = 7,
} cw_log_level_t;

typedef void (cw_log_cb_t)(cw_log_level_t level, const char *component, const char *msg);

/* Set the threshold (messages above it are dropped) and an optional callback
 * that replaces the stderr writer (tests use it to capture logs). */
void cw_log_set_level(cw_log_level_t level);
cw_log_level_t cw_log_get_level(void);
void cw_log_set_callback(cw_log_cb_t *cb);
/* Parse "error", "warn", "info", "debug"; returns -1 when unknown. */
int cw_log_level_parse(const char *s);

void cw_log(cw_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cw_log_error(comp, ...) cw_log(CW_LOG_ERROR, comp, __VA_ARGS__)
#define cw_log_warn(comp, ...) cw_log(CW_LOG_WARN, comp, __VA_ARGS__)
#define cw_log_info(comp, ...) cw_log(CW_LOG_INFO, comp, __VA_ARGS__)
#define cw_log_debug(comp, ...) cw_log(CW_LOG_DEBUG, comp, __VA_ARGS__)

#endif
