/*
 * Structured logging: one JSON object per line on stderr.
 *
 * {"ts":"2024-10-01T18:30:03.123Z","level":"info","mod":"consumer","msg":"..."}
 *
 * The level is checked before anything is formatted, so a disabled debug line
 * costs one comparison. Messages never carry payloads or secrets: callers pass
 * ids, counts and reasons, never bodies or keys. The logger is safe to call
 * from any thread (librdkafka and libmicrohttpd log from their own threads);
 * each line is written with a single write(2).
 */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

extern enum log_level log_threshold;

/* Parses "debug", "info", "warn" or "error"; returns 0 or HERALD_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
void log_set_level(enum log_level level);

/* Redirects output to fd (default 2); used by tests that scan the log. */
void log_set_fd(int fd);

void log_write(enum log_level level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level level, const char *mod, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define LOG_AT(level, mod, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= log_threshold)                                                              \
            log_write((level), (mod), __VA_ARGS__);                                                \
    } while (0)
#define log_debug(mod, ...) LOG_AT(LOG_LEVEL_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...)  LOG_AT(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...)  LOG_AT(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) LOG_AT(LOG_LEVEL_ERROR, mod, __VA_ARGS__)

#endif
