/*
 * struct map: a string-keyed hash table (separate chaining, power-of-two
 * buckets, grows at load factor 1). The map copies keys and owns those copies;
 * values are the caller's pointers and are never freed by the map.
 * Iteration order is unspecified; do not insert or delete while iterating
 * except through map_iter_del on the current entry.
 */
#ifndef HERALD_MAP_H
#define HERALD_MAP_H

#include <stddef.h>

struct map_entry {
    struct map_entry *next;
    size_t hash;
    void *value;
    char key[];
};

struct map {
    struct map_entry **buckets;
    size_t nbuckets;
    size_t count;
};

struct map_iter {
    struct map *m;
    size_t bucket;
    struct map_entry *cur, *next;
};

void map_init(struct map *m);
/* Frees the table and keys; calls free_value on each value when non-NULL. */
void map_release(struct map *m, void (*free_value)(void *));
void *map_get(const struct map *m, const char *key);
/* Inserts or replaces; returns 0 or HERALD_ENOMEM. *old gets the replaced value. */
int map_put(struct map *m, const char *key, void *value, void **old);
/* Removes key and returns its value, or NULL when absent. */
void *map_del(struct map *m, const char *key);

void map_iter_init(struct map_iter *it, struct map *m);
struct map_entry *map_iter_next(struct map_iter *it);
/* Deletes the entry last returned by map_iter_next. */
void map_iter_del(struct map_iter *it);

#endif
