/*
 * Per-partition offset tracker; see offsets.h. A ring buffer of offsets in
 * consumption order with a settled flag each. Settling is a binary search
 * (offsets are increasing); committing pops the settled prefix.
 */
#include "herald/offsets.h"
#include "herald/err.h"

#include <stdlib.h>
#include <string.h>

void offsets_init(struct offsets *o)
{
    memset(o, 0, sizeof(*o));
    o->next = -1;
}

void offsets_release(struct offsets *o)
{
    free(o->off);
    free(o->done);
    offsets_init(o);
}

static size_t slot(const struct offsets *o, size_t i)
{
    return (o->head + i) & (o->cap - 1);
}

static int grow(struct offsets *o)
{
    size_t ncap = o->cap ? o->cap * 2 : 64;
    int64_t *off = malloc(ncap * sizeof(*off));
    unsigned char *done = malloc(ncap);
    if (!off || !done) {
        free(off);
        free(done);
        return HERALD_ENOMEM;
    }
    for (size_t i = 0; i < o->count; i++) {
        off[i] = o->off[slot(o, i)];
        done[i] = o->done[slot(o, i)];
    }
    free(o->off);
    free(o->done);
    o->off = off;
    o->done = done;
    o->cap = ncap;
    o->head = 0;
    return 0;
}

int offsets_track(struct offsets *o, int64_t offset)
{
    size_t s;
    if (offset < 0 || (o->next >= 0 && offset < o->next))
        return HERALD_EINVAL;
    if (o->count == o->cap && grow(o))
        return HERALD_ENOMEM;
    s = slot(o, o->count);
    o->off[s] = offset;
    o->done[s] = 0;
    o->count++;
    o->pending++;
    o->next = offset + 1;
    return 0;
}

int offsets_done(struct offsets *o, int64_t offset)
{
    size_t lo = 0, hi = o->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = o->off[slot(o, mid)];
        if (v == offset) {
            size_t s = slot(o, mid);
            if (o->done[s])
                return 0; /* settling twice is harmless */
            o->done[s] = 1;
            o->pending--;
            return 0;
        }
        if (v < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return HERALD_ENOTFOUND;
}

int64_t offsets_committable(struct offsets *o)
{
    while (o->count && o->done[o->head]) {
        o->head = (o->head + 1) & (o->cap - 1);
        o->count--;
    }
    if (o->count)
        return o->off[o->head];
    return o->next;
}

size_t offsets_pending(const struct offsets *o)
{
    return o->pending;
}
