/*
 * Offset tracking for at-least-once delivery.
 *
 * One tracker per assigned partition records every consumed offset until the
 * work it started is settled (delivered, or its retry / dead-letter record
 * acknowledged by the broker). The committable position is the lowest
 * unsettled offset, or one past the highest tracked offset when everything is
 * settled: committing it can never skip work that is not done, however the
 * outcomes arrive. Offsets must be tracked in increasing order (the order a
 * partition is consumed in); gaps are fine.
 *
 * Pure data structure: no Kafka calls here. Memory is one ring slot per
 * unsettled-or-not-yet-popped offset and grows on demand.
 */
#ifndef HERALD_OFFSETS_H
#define HERALD_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct offsets {
    int64_t *off; /* ring of tracked offsets, oldest first */
    unsigned char *done;
    size_t cap, head, count;
    int64_t next;   /* one past the highest offset tracked; -1 before the first */
    size_t pending; /* tracked offsets not yet settled */
};

void offsets_init(struct offsets *o);
void offsets_release(struct offsets *o);

/* Records offset as started; returns HERALD_EINVAL if not above the last one. */
int offsets_track(struct offsets *o, int64_t offset);

/* Marks a tracked offset settled; HERALD_ENOTFOUND when it is not tracked. */
int offsets_done(struct offsets *o, int64_t offset);

/*
 * The offset to commit (the next one to consume), or -1 when nothing was
 * ever tracked. Pops settled entries from the front as a side effect.
 */
int64_t offsets_committable(struct offsets *o);

/* Number of tracked offsets not yet settled. */
size_t offsets_pending(const struct offsets *o);

#endif
