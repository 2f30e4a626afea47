/*
 * String-keyed hash table; see map.h. FNV-1a hashing is plenty for the keys
 * herald stores (tenant and subscription ids), and chaining keeps deletion
 * simple for the cache's invalidation path.
 */
#include "herald/map.h"
#include "herald/err.h"

#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
    size_t h = (size_t)1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= (size_t)1099511628211ULL;
    }
    return h;
}

void map_init(struct map *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void map_release(struct map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *e = m->buckets[i];
        while (e) {
            struct map_entry *next = e->next;
            if (free_value)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    map_init(m);
}

static struct map_entry **find_slot(const struct map *m, const char *key, size_t h)
{
    struct map_entry **pp;
    if (!m->nbuckets)
        return NULL;
    pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *map_get(const struct map *m, const char *key)
{
    struct map_entry **pp = find_slot(m, key, hash_str(key));
    return pp && *pp ? (*pp)->value : NULL;
}

static int grow(struct map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    struct map_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return HERALD_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *e = m->buckets[i];
        while (e) {
            struct map_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int map_put(struct map *m, const char *key, void *value, void **old)
{
    size_t h = hash_str(key), klen;
    struct map_entry **pp, *e;

    if (old)
        *old = NULL;
    pp = find_slot(m, key, h);
    if (pp && *pp) {
        if (old)
            *old = (*pp)->value;
        (*pp)->value = value;
        return 0;
    }
    if (m->count >= m->nbuckets && grow(m))
        return HERALD_ENOMEM;
    klen = strlen(key);
    e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        return HERALD_ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->value = value;
    e->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->count++;
    return 0;
}

void *map_del(struct map *m, const char *key)
{
    struct map_entry **pp = find_slot(m, key, hash_str(key)), *e;
    void *v;
    if (!pp || !*pp)
        return NULL;
    e = *pp;
    *pp = e->next;
    v = e->value;
    free(e);
    m->count--;
    return v;
}

void map_iter_init(struct map_iter *it, struct map *m)
{
    it->m = m;
    it->bucket = 0;
    it->cur = NULL;
    it->next = m->nbuckets ? m->buckets[0] : NULL;
}

struct map_entry *map_iter_next(struct map_iter *it)
{
    while (!it->next) {
        if (++it->bucket >= it->m->nbuckets)
            return it->cur = NULL;
        it->next = it->m->buckets[it->bucket];
    }
    it->cur = it->next;
    it->next = it->cur->next;
    return it->cur;
}

void map_iter_del(struct map_iter *it)
{
    struct map_entry **pp;
    if (!it->cur)
        return;
    pp = &it->m->buckets[it->cur->hash & (it->m->nbuckets - 1)];
    while (*pp != it->cur)
        pp = &(*pp)->next;
    *pp = it->cur->next;
    free(it->cur);
    it->cur = NULL;
    it->m->count--;
}
