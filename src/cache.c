/*
 * Subscription cache; see cache.h.
 *
 * Each tenant has a slot: the current entry (maybe NULL), a generation
 * bumped by every invalidation, and whether a lookup is in flight. A lookup
 * remembers the generation it started in; a reply from an older generation
 * may predate the change that invalidated it, so it is discarded and the
 * lookup re-run.
 */
#include "herald/cache.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/map.h"

#include <stdlib.h>
#include <string.h>

/*
 * One round trip per tenant: the ids in the tenant's set and the document of
 * each. A missing document (deleted between the two reads of a writer) comes
 * back as false and is skipped.
 */
static const char lookup_script[] = "local ids = redis.call('SMEMBERS', KEYS[1])\n"
                                    "local out = {}\n"
                                    "for i, id in ipairs(ids) do\n"
                                    "  out[i] = redis.call('GET', ARGV[1] .. id) or ''\n"
                                    "end\n"
                                    "return out\n";

struct slot {
    struct cache *c;
    char *tenant;
    struct cache_entry *entry;
    uint64_t gen;
    bool in_flight;
    uint64_t retry_timer;
    int64_t backoff_ms;
    int64_t last_used;
};

struct lookup {
    struct cache *c;
    char *tenant;
    uint64_t gen;
};

struct cache {
    struct loop *loop;
    struct redis *r;
    int64_t ttl_ms;
    size_t max_tenants;
    cache_ready_fn ready;
    void *arg;
    struct map slots;
    struct cache_stats stats;
    bool freeing;
};

static void entry_free(struct cache_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        subs_unref(e->subs[i]);
    free(e->subs);
    free(e);
}

static void slot_free(void *p)
{
    struct slot *s = p;
    if (!s)
        return;
    if (s->retry_timer)
        loop_cancel(s->c->loop, s->retry_timer);
    entry_free(s->entry);
    free(s->tenant);
    free(s);
}

int cache_new(struct loop *loop, struct redis *r, int64_t ttl_ms, size_t max_tenants,
              cache_ready_fn ready, void *arg, struct cache **out)
{
    struct cache *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return HERALD_ENOMEM;
    c->loop = loop;
    c->r = r;
    c->ttl_ms = ttl_ms;
    c->max_tenants = max_tenants ? max_tenants : 1;
    c->ready = ready;
    c->arg = arg;
    map_init(&c->slots);
    *out = c;
    return 0;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    c->freeing = true;
    map_release(&c->slots, slot_free);
    free(c);
}

struct sub *cache_find(const struct cache_entry *e, const char *sub_id)
{
    for (size_t i = 0; e && i < e->n; i++)
        if (strcmp(e->subs[i]->id, sub_id) == 0)
            return e->subs[i];
    return NULL;
}

static struct cache_entry *entry_from_reply(struct cache *c, const char *tenant, redisReply *rep)
{
    struct cache_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->subs = calloc(rep->elements ? rep->elements : 1, sizeof(*e->subs));
    if (!e->subs) {
        free(e);
        return NULL;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *doc = rep->element[i];
        struct sub *sub = NULL;
        char field[64], why[256];
        int rc;
        if (doc->type != REDIS_REPLY_STRING || doc->len == 0)
            continue;
        rc = subs_parse(doc->str, doc->len, &sub, field, sizeof(field), why, sizeof(why));
        if (rc == HERALD_ENOMEM) {
            entry_free(e);
            return NULL;
        }
        if (rc) {
            c->stats.invalid_docs++;
            log_warn("cache", "skipping an invalid subscription of tenant \"%s\": field \"%s\": %s",
                     tenant, field, why);
            continue;
        }
        if (strcmp(sub->tenant, tenant) != 0) {
            /* The set and the document disagree; trust the document's owner. */
            c->stats.invalid_docs++;
            log_warn("cache",
                     "subscription \"%s\" is listed under tenant \"%s\" but belongs to "
                     "\"%s\"; skipped",
                     sub->id, tenant, sub->tenant);
            subs_unref(sub);
            continue;
        }
        e->subs[e->n++] = sub;
    }
    e->fetched_ms = loop_now(c->loop);
    return e;
}

static void start_lookup(struct cache *c, struct slot *s);

static void retry_timer_fired(struct loop *loop, uint64_t id, void *arg)
{
    struct slot *s = arg;
    (void)loop;
    (void)id;
    s->retry_timer = 0;
    if (!s->in_flight)
        start_lookup(s->c, s);
}

static void lookup_failed(struct cache *c, struct slot *s)
{
    c->stats.lookup_failures++;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 100;
    if (s->backoff_ms > 2000)
        s->backoff_ms = 2000;
    if (!s->retry_timer)
        s->retry_timer = loop_timer(c->loop, s->backoff_ms, retry_timer_fired, s);
    /* Only a tenant with no entry at all has events waiting on it. */
    if (!s->entry)
        c->ready(c->arg, s->tenant, NULL);
}

static void on_lookup(struct redis *r, redisReply *rep, void *arg)
{
    struct lookup *lk = arg;
    struct cache *c = lk->c;
    struct slot *s;
    struct cache_entry *e;
    (void)r;

    if (c->freeing) {
        free(lk->tenant);
        free(lk);
        return;
    }
    s = map_get(&c->slots, lk->tenant);
    if (!s) {
        /* Evicted while in flight: nobody waits for it any more. */
        free(lk->tenant);
        free(lk);
        return;
    }
    s->in_flight = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_warn("cache", "lookup of tenant \"%s\" failed: %s", lk->tenant, rep->str);
        lookup_failed(c, s);
    } else if (lk->gen != s->gen) {
        /* Invalidated while in flight: this answer may predate the change. */
        start_lookup(c, s);
    } else if (!(e = entry_from_reply(c, s->tenant, rep))) {
        lookup_failed(c, s);
    } else {
        entry_free(s->entry);
        s->entry = e;
        s->backoff_ms = 0;
        c->ready(c->arg, s->tenant, e);
    }
    free(lk->tenant);
    free(lk);
}

static void start_lookup(struct cache *c, struct slot *s)
{
    struct lookup *lk;
    char key[300];
    const char *argv[5];
    size_t lens[5];
    int rc;

    if (s->in_flight)
        return;
    lk = calloc(1, sizeof(*lk));
    if (!lk || !(lk->tenant = strdup(s->tenant))) {
        free(lk);
        lookup_failed(c, s);
        return;
    }
    lk->c = c;
    lk->gen = s->gen;
    snprintf(key, sizeof(key), "herald:tenant:%s", s->tenant);
    argv[0] = "EVAL";
    argv[1] = lookup_script;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = "herald:sub:";
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    c->stats.lookups++;
    rc = redis_commandv(c->r, on_lookup, lk, 5, argv, lens);
    if (rc) {
        free(lk->tenant);
        free(lk);
        lookup_failed(c, s);
        return;
    }
    s->in_flight = true;
}

/* Keeps the cache under max_tenants by dropping idle tenants, oldest use first. */
static void evict(struct cache *c)
{
    struct map_iter it;
    struct map_entry *me, *oldest = NULL;
    while (c->slots.count >= c->max_tenants) {
        oldest = NULL;
        map_iter_init(&it, &c->slots);
        while ((me = map_iter_next(&it))) {
            struct slot *s = me->value;
            if (s->in_flight || !s->entry)
                continue; /* events may be waiting on it */
            if (!oldest || s->last_used < ((struct slot *)oldest->value)->last_used)
                oldest = me;
        }
        if (!oldest)
            return;
        slot_free(map_del(&c->slots, oldest->key));
    }
}

const struct cache_entry *cache_get(struct cache *c, const char *tenant)
{
    struct slot *s = map_get(&c->slots, tenant);
    int64_t now = loop_now(c->loop);

    if (s && s->entry) {
        s->last_used = now;
        c->stats.hits++;
        if (now - s->entry->fetched_ms > c->ttl_ms && !s->in_flight && !s->retry_timer)
            start_lookup(c, s);
        return s->entry;
    }
    c->stats.misses++;
    if (!s) {
        evict(c);
        s = calloc(1, sizeof(*s));
        if (!s || !(s->tenant = strdup(tenant)) || map_put(&c->slots, tenant, s, NULL)) {
            if (s)
                free(s->tenant);
            free(s);
            return NULL; /* out of memory: the caller's event waits for the next ready call */
        }
        s->c = c;
    }
    s->last_used = now;
    if (!s->in_flight && !s->retry_timer)
        start_lookup(c, s);
    return NULL;
}

void cache_invalidate(struct cache *c, const char *tenant)
{
    struct map_iter it;
    struct map_entry *me;

    c->stats.invalidations++;
    if (strcmp(tenant, "*") != 0) {
        struct slot *s = map_get(&c->slots, tenant);
        if (!s)
            return;
        s->gen++;
        if (s->in_flight || s->retry_timer) {
            /* Someone is waiting or will be: keep the slot, forget the entry. */
            entry_free(s->entry);
            s->entry = NULL;
        } else {
            slot_free(map_del(&c->slots, tenant));
        }
        return;
    }
    map_iter_init(&it, &c->slots);
    while ((me = map_iter_next(&it))) {
        struct slot *s = me->value;
        s->gen++;
        if (s->in_flight || s->retry_timer) {
            entry_free(s->entry);
            s->entry = NULL;
        } else {
            slot_free(s);
            map_iter_del(&it);
        }
    }
}

void cache_stats(const struct cache *c, struct cache_stats *out)
{
    *out = c->stats;
}

size_t cache_size(const struct cache *c)
{
    return c->slots.count;
}
