/*
 * struct buf: a growable byte buffer with a hard maximum.
 *
 * Invariants (as in git's strbuf): data is either NULL (len == cap == 0) or
 * points to cap bytes of which len are used, and data[len] == '\0' so text
 * can be used as a C string. Every buffer has a max; an append that would
 * pass it fails with HERALD_ETOOBIG and leaves the buffer unchanged, so a
 * hostile peer cannot make herald grow without bound (curl's DYNBUF rule).
 */
#ifndef HERALD_BUF_H
#define HERALD_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
/* Like buf_release but overwrites the bytes first; for secrets. */
void buf_release_secure(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appends(struct buf *b, const char *s);
int buf_appendc(struct buf *b, char c);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (no quotes). */
int buf_append_json_str(struct buf *b, const char *s, size_t n);
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *buf_detach(struct buf *b, size_t *len);

#endif
