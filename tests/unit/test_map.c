/*
 * Unit tests for map.c, the string-keyed hash table behind the subscription
 * cache: put / get / replace / delete, growth to 10,000 keys with every key
 * still found, and iteration that deletes as it goes (map_iter_del).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herald/err.h"
#include "herald/map.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Values are small integers disguised as pointers; 0 is never stored. */
#define V(i) ((void *)(uintptr_t)(i))
#define I(p) ((uintptr_t)(p))

static void test_put_get_replace_del(void **state)
{
    struct map m;
    void *old = V(99);
    (void)state;
    map_init(&m);
    assert_null(map_get(&m, "a"));
    assert_null(map_del(&m, "a"));
    assert_int_equal(map_put(&m, "a", V(1), &old), 0);
    assert_null(old);
    assert_int_equal(map_put(&m, "b", V(2), NULL), 0);
    assert_int_equal(map_put(&m, "", V(3), NULL), 0); /* the empty key is a key */
    assert_int_equal(m.count, 3);
    assert_int_equal(I(map_get(&m, "a")), 1);
    assert_int_equal(I(map_get(&m, "b")), 2);
    assert_int_equal(I(map_get(&m, "")), 3);
    assert_null(map_get(&m, "A"));
    assert_null(map_get(&m, "ab"));

    /* Replacing hands back the old value and keeps the count. */
    assert_int_equal(map_put(&m, "a", V(10), &old), 0);
    assert_int_equal(I(old), 1);
    assert_int_equal(m.count, 3);
    assert_int_equal(I(map_get(&m, "a")), 10);

    assert_int_equal(I(map_del(&m, "a")), 10);
    assert_null(map_get(&m, "a"));
    assert_null(map_del(&m, "a"));
    assert_int_equal(m.count, 2);
    assert_int_equal(I(map_get(&m, "b")), 2);
    map_release(&m, NULL);
    assert_int_equal(m.count, 0);
    assert_null(map_get(&m, "b"));
}

static void test_keys_are_copied(void **state)
{
    struct map m;
    char key[16];
    (void)state;
    map_init(&m);
    strcpy(key, "tenant");
    assert_int_equal(map_put(&m, key, V(7), NULL), 0);
    strcpy(key, "xxxxxx");
    assert_int_equal(I(map_get(&m, "tenant")), 7);
    assert_null(map_get(&m, "xxxxxx"));
    map_release(&m, NULL);
}

static void test_growth(void **state)
{
    enum { COUNT = 10000 };
    struct map m;
    char key[32];
    (void)state;
    map_init(&m);
    for (int i = 1; i <= COUNT; i++) {
        snprintf(key, sizeof(key), "org_%d", i);
        assert_int_equal(map_put(&m, key, V(i), NULL), 0);
    }
    assert_int_equal(m.count, COUNT);
    /* Load factor at most 1, power-of-two buckets. */
    assert_true(m.nbuckets >= COUNT);
    assert_int_equal(m.nbuckets & (m.nbuckets - 1), 0);
    for (int i = 1; i <= COUNT; i++) {
        snprintf(key, sizeof(key), "org_%d", i);
        if (I(map_get(&m, key)) != (uintptr_t)i)
            fail_msg("key %s lost after growth", key);
    }
    /* Delete the odd ones; the even ones stay. */
    for (int i = 1; i <= COUNT; i += 2) {
        snprintf(key, sizeof(key), "org_%d", i);
        assert_int_equal(I(map_del(&m, key)), i);
    }
    assert_int_equal(m.count, COUNT / 2);
    for (int i = 1; i <= COUNT; i++) {
        snprintf(key, sizeof(key), "org_%d", i);
        assert_int_equal(I(map_get(&m, key)), i % 2 ? 0 : (uintptr_t)i);
    }
    map_release(&m, NULL);
}

static int freed;

static void free_value(void *v)
{
    free(v);
    freed++;
}

static void test_release_frees_values(void **state)
{
    struct map m;
    (void)state;
    map_init(&m);
    freed = 0;
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(map_put(&m, key, malloc(8), NULL), 0);
    }
    map_release(&m, free_value);
    assert_int_equal(freed, 100);
}

static void test_iterate_and_delete(void **state)
{
    enum { COUNT = 1000 };
    static unsigned char seen[COUNT + 1];
    struct map m;
    struct map_iter it;
    struct map_entry *e;
    int visited = 0;
    (void)state;
    map_init(&m);

    /* An empty map iterates over nothing. */
    map_iter_init(&it, &m);
    assert_null(map_iter_next(&it));
    map_iter_del(&it); /* nothing current: a no-op */

    for (int i = 1; i <= COUNT; i++) {
        char key[16];
        snprintf(key, sizeof(key), "s%d", i);
        assert_int_equal(map_put(&m, key, V(i), NULL), 0);
    }
    memset(seen, 0, sizeof(seen));
    map_iter_init(&it, &m);
    while ((e = map_iter_next(&it))) {
        int v = (int)I(e->value);
        char want[16];
        snprintf(want, sizeof(want), "s%d", v);
        assert_string_equal(e->key, want);
        assert_int_equal(seen[v], 0); /* each entry exactly once */
        seen[v] = 1;
        visited++;
        if (v % 3 == 0)
            map_iter_del(&it);
    }
    assert_int_equal(visited, COUNT);
    assert_int_equal(m.count, COUNT - COUNT / 3);
    for (int i = 1; i <= COUNT; i++) {
        char key[16];
        snprintf(key, sizeof(key), "s%d", i);
        assert_int_equal(I(map_get(&m, key)), i % 3 == 0 ? 0 : (uintptr_t)i);
    }

    /* Deleting every entry while iterating empties the map. */
    visited = 0;
    map_iter_init(&it, &m);
    while ((e = map_iter_next(&it))) {
        visited++;
        map_iter_del(&it);
        map_iter_del(&it); /* twice on the same entry: the second is a no-op */
    }
    assert_int_equal(visited, COUNT - COUNT / 3);
    assert_int_equal(m.count, 0);
    map_iter_init(&it, &m);
    assert_null(map_iter_next(&it));
    map_release(&m, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_del),
        cmocka_unit_test(test_keys_are_copied),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_release_frees_values),
        cmocka_unit_test(test_iterate_and_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
