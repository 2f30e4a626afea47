/*
 * The in-process subscription cache.
 *
 * The hot path never touches Redis: a tenant's subscriptions are looked up
 * once (one round trip: a Lua script reads herald:tenant:{t} and every
 * herald:sub:{id} it names) and then served from memory. A message on
 * herald:changes naming the tenant (or "*") drops it; a TTL bounds how long
 * a missed notification can matter, and entries past the TTL are still
 * served while a refresh runs (stale-while-revalidate). Every miss for a
 * tenant while its lookup is in flight joins that one lookup.
 *
 * A failed lookup (Redis down, timeout) is retried with backoff; the cache
 * tells its owner through the ready callback with ok == false each time, so
 * the owner can keep the waiting events unsettled rather than guess.
 *
 * Entry pointers returned by cache_get are valid until control returns to
 * the loop; take a sub reference to keep a subscription longer.
 */
#ifndef HERALD_CACHE_H
#define HERALD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/loop.h"
#include "herald/redis.h"
#include "herald/subs.h"

struct cache_entry {
    struct sub **subs;
    size_t n;
    int64_t fetched_ms;
};

struct cache;

typedef void (*cache_ready_fn)(void *arg, const char *tenant, const struct cache_entry *entry);

struct cache_stats {
    uint64_t hits, misses, lookups, lookup_failures, invalid_docs, invalidations;
};

int cache_new(struct loop *loop, struct redis *r, int64_t ttl_ms, size_t max_tenants,
              cache_ready_fn ready, void *arg, struct cache **out);
void cache_free(struct cache *c);

/*
 * The tenant's subscriptions, or NULL when not cached yet: a lookup is then
 * started (or joined) and ready(arg, tenant, entry) runs when it finishes;
 * entry is NULL if the lookup failed (it will be retried by the cache).
 */
const struct cache_entry *cache_get(struct cache *c, const char *tenant);

/* Drops one tenant, or every tenant for "*". */
void cache_invalidate(struct cache *c, const char *tenant);

/* Finds one subscription of a cached tenant by id; NULL if absent. */
struct sub *cache_find(const struct cache_entry *e, const char *sub_id);

void cache_stats(const struct cache *c, struct cache_stats *out);
size_t cache_size(const struct cache *c);

#endif
