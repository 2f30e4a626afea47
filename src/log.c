/*
 * JSON-lines logger. Formatting happens into a fixed stack buffer that is
 * then JSON-escaped into a second one and written with one write(2), so lines
 * from different threads never interleave and logging never allocates.
 */
#include "herald/log.h"
#include "herald/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LEVEL_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return HERALD_EINVAL;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

/* Appends s to out as the inside of a JSON string; truncates at cap. */
static size_t escape_into(char *out, size_t pos, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c == '\n') {
            out[pos++] = '\\';
            out[pos++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            out[pos++] = '\\';
            out[pos++] = 'u';
            out[pos++] = '0';
            out[pos++] = '0';
            out[pos++] = hex[c >> 4];
            out[pos++] = hex[c & 0xf];
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

void log_vwrite(enum log_level level, const char *mod, const char *fmt, va_list ap)
{
    char msg[2048];
    char line[4608];
    struct timespec ts;
    struct tm tm;
    size_t pos;

    if (level < log_threshold)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    pos = (size_t)snprintf(line, sizeof(line),
                           "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                           "\"mod\":\"",
                           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                           tm.tm_sec, ts.tv_nsec / 1000000, log_level_name(level));
    pos = escape_into(line, pos, sizeof(line) - 16, mod ? mod : "herald");
    memcpy(line + pos, "\",\"msg\":\"", 9);
    pos += 9;
    pos = escape_into(line, pos, sizeof(line) - 4, msg);
    memcpy(line + pos, "\"}\n", 3);
    pos += 3;
    /* A short write to stderr is not worth retrying: the line is lost either way. */
    ssize_t n = write(log_fd, line, pos);
    (void)n;
}

void log_write(enum log_level level, const char *mod, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, mod, fmt, ap);
    va_end(ap);
}
