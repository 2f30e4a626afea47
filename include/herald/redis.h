/*
 * Redis connections for the worker: hiredis's async API driven by herald's
 * event loop, with the bounds hiredis 0.14 does not have.
 *
 * - Every command has a deadline (redis.timeout). When the oldest
 *   outstanding reply is late, or a connect takes too long, the connection
 *   is dropped: every pending callback then runs with reply == NULL, and the
 *   connection is re-established with capped exponential backoff.
 * - Outstanding commands are capped; beyond the cap redis_command() fails at
 *   once instead of queueing without bound while Redis is slow.
 * - AUTH and SELECT from the URL are sent first on every (re)connect.
 *
 * A subscriber connection (redis_subscribe) delivers every message of a
 * channel to one callback and tells its owner when it (re)subscribes, since
 * messages published while it was away are lost and caches must be dropped.
 */
#ifndef HERALD_REDIS_H
#define HERALD_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/loop.h"

struct redis_url {
    char host[256];
    int port;
    char password[256];
    int db;
};

/* redis://[:password@]host[:port][/db]; 0 or HERALD_EINVAL. */
int redis_url_parse(const char *url, struct redis_url *out);

struct redis;

/* reply is NULL when the connection failed, timed out or was closed. */
typedef void (*redis_reply_fn)(struct redis *r, redisReply *reply, void *arg);
/* Subscriber: message payload, or NULL with len 0 when (re)subscribed. */
typedef void (*redis_message_fn)(struct redis *r, const char *msg, size_t len, void *arg);
/* Connection state changes, for health reporting. */
typedef void (*redis_state_fn)(struct redis *r, bool up, void *arg);

int redis_new(struct loop *loop, const char *url, int64_t timeout_ms, size_t max_pending,
              struct redis **out);
void redis_free(struct redis *r);

void redis_on_state(struct redis *r, redis_state_fn fn, void *arg);
/* Turns this connection into a subscriber of channel. */
int redis_subscribe(struct redis *r, const char *channel, redis_message_fn fn, void *arg);

bool redis_is_up(const struct redis *r);
size_t redis_pending(const struct redis *r);

/*
 * Sends a command (argv form, binary safe). fn runs exactly once, later,
 * with the reply or NULL. Returns 0, or HERALD_EREDIS / HERALD_EFULL when the
 * command was not sent (fn is then NOT called).
 */
int redis_commandv(struct redis *r, redis_reply_fn fn, void *arg, int argc, const char **argv,
                   const size_t *lens);

#endif
