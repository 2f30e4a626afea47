/*
 * Disabling subscriptions that cannot be delivered to.
 *
 * Two paths lead here: an endpoint answering 410 Gone (disable now), and an
 * endpoint that has failed continuously for subscription.disable_after
 * (default 5 days). The start of a failure streak is kept in Redis
 * (herald:health:{sub_id}, field failing_since, wall ms) rather than in
 * memory, so the window spans every worker of the group and survives
 * restarts; any success clears it. Each worker checks the streak at most
 * once per check interval per subscription, so a failing endpoint costs one
 * Redis call a minute, not one per attempt.
 *
 * Disabling rewrites the subscription document (status "disabled",
 * disabled_reason) only if it is unchanged since it was read, then
 * publishes the tenant on herald:changes so every worker drops it.
 */
#ifndef HERALD_AUTODISABLE_H
#define HERALD_AUTODISABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "herald/loop.h"
#include "herald/redis.h"
#include "herald/subs.h"

struct autodisable;

/* window_ms 0 turns the failure-window path off (410 still disables). */
int autodisable_new(struct loop *loop, struct redis *r, int64_t window_ms,
                    struct autodisable **out);
void autodisable_free(struct autodisable *ad);

/* Reports the outcome of one real attempt to sub's endpoint. */
void autodisable_report(struct autodisable *ad, const struct sub *sub, bool delivered);

/* Disables sub now, for reason (e.g. "endpoint answered 410 Gone"). */
void autodisable_disable(struct autodisable *ad, const struct sub *sub, const char *reason);

#endif
