/*
 * The dispatcher: HTTP deliveries over libcurl's multi interface, driven by
 * the event loop (socket and timer callbacks, no thread per request).
 *
 * It owns what makes delivery safe and fair:
 * - a global in-flight cap, and per endpoint (subscription) an in-flight cap,
 *   a token-bucket rate limit and a bounded queue; endpoints with work are
 *   served round-robin, so one busy or slow endpoint cannot starve others;
 * - a circuit breaker per endpoint: after breaker_failures consecutive
 *   failures its jobs are handed back at once as "deferred" (no attempt)
 *   until the cool-down lets a single probe through;
 * - the SSRF guard on the address actually connected to (open-socket
 *   callback), http/https only, no redirects, no environment proxies, TLS
 *   verification always on, bounded response bodies;
 * - signing at send time, so every attempt carries a fresh timestamp.
 *
 * Every submitted job comes back exactly once through the done callback,
 * never from inside dispatch_submit() itself.
 */
#ifndef HERALD_DISPATCH_H
#define HERALD_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/job.h"
#include "herald/loop.h"
#include "herald/netguard.h"

struct dispatch_opts {
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    size_t max_in_flight;
    size_t endpoint_in_flight;
    int rate_limit; /* per endpoint per second; 0 = unlimited */
    size_t response_max;
    bool https_only;
    const char *ca_bundle; /* NULL or "": system store */
    const char *proxy;     /* NULL or "": direct */
    const char *user_agent;
    const struct netguard *guard;
    int breaker_failures;
    int64_t breaker_cooldown_ms;
};

struct dispatch_stats {
    uint64_t started;
    uint64_t completed;
    uint64_t deferred;
    uint64_t refused;
    uint64_t breaker_opened;
};

typedef void (*dispatch_done_fn)(struct job *job, void *arg);

struct dispatch;

int dispatch_new(struct loop *loop, const struct dispatch_opts *opts, dispatch_done_fn done,
                 void *arg, struct dispatch **out);
/* Frees the dispatcher; call dispatch_cancel_all() first if jobs may remain. */
void dispatch_free(struct dispatch *d);

/* Queues a job (ownership passes to the dispatcher until the done callback). */
void dispatch_submit(struct dispatch *d, struct job *job);

/* Completes every queued and in-flight job as deferred (shutdown deadline). */
void dispatch_cancel_all(struct dispatch *d);

size_t dispatch_in_flight(const struct dispatch *d);
size_t dispatch_queued(const struct dispatch *d);
size_t dispatch_breakers_open(const struct dispatch *d);
void dispatch_stats(const struct dispatch *d, struct dispatch_stats *out);

#endif
