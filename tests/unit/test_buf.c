/*
 * Unit tests for buf.c, the bounded byte buffer: the invariants of buf.h
 * (NUL after the data, a hard maximum that an append can never pass and
 * that leaves the buffer unchanged when refused), formatted appends, JSON
 * string escaping, reset and detach.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herald/buf.h"
#include "herald/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(x) x, sizeof(x) - 1

/* Asserts the buffer holds exactly want (len bytes) followed by a NUL. */
static void expect_bytes(const struct buf *b, const char *want, size_t len)
{
    assert_int_equal(b->len, len);
    if (len) {
        assert_non_null(b->data);
        assert_memory_equal(b->data, want, len);
    }
    if (b->data) {
        assert_int_equal(b->data[b->len], '\0');
        assert_true(b->cap >= b->len + 1);
        assert_true(b->cap <= b->max + 1);
    }
}

static void test_empty(void **state)
{
    struct buf b;
    char *p;
    size_t len = 99;
    (void)state;
    buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    buf_reset(&b); /* on a buffer that never allocated */
    assert_int_equal(buf_append(&b, "", 0), 0);
    expect_bytes(&b, "", 0);
    buf_release(&b);
    /* Detaching an empty buffer gives an empty string, not NULL. */
    buf_init(&b, 100);
    p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);
    buf_release(&b);
}

static void test_append_and_max(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 10);
    assert_int_equal(buf_appends(&b, "hello"), 0);
    assert_int_equal(buf_appendc(&b, ' '), 0);
    assert_int_equal(buf_append(&b, "wor", 3), 0);
    expect_bytes(&b, S("hello wor"));
    /* Exactly at the max is fine. */
    assert_int_equal(buf_appendc(&b, 'l'), 0);
    expect_bytes(&b, S("hello worl"));
    /* One past is refused and nothing changes. */
    assert_int_equal(buf_appendc(&b, 'd'), HERALD_ETOOBIG);
    expect_bytes(&b, S("hello worl"));
    assert_int_equal(buf_append(&b, "abc", 3), HERALD_ETOOBIG);
    assert_int_equal(buf_appendf(&b, "%d", 7), HERALD_ETOOBIG);
    assert_int_equal(buf_append_json_str(&b, "x", 1), HERALD_ETOOBIG);
    expect_bytes(&b, S("hello worl"));
    assert_int_equal(buf_append(&b, "", 0), 0);
    /* A huge length cannot wrap around the size checks. */
    assert_int_equal(buf_append(&b, "x", SIZE_MAX), HERALD_ETOOBIG);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 3), HERALD_ETOOBIG);
    expect_bytes(&b, S("hello worl"));
    buf_reset(&b);
    expect_bytes(&b, "", 0);
    assert_int_equal(buf_appends(&b, "0123456789"), 0);
    assert_int_equal(buf_appends(&b, "0123456789x"), HERALD_ETOOBIG);
    buf_release(&b);

    /* A max of zero holds nothing at all. */
    buf_init(&b, 0);
    assert_int_equal(buf_appendc(&b, 'a'), HERALD_ETOOBIG);
    assert_int_equal(buf_append(&b, "", 0), 0);
    expect_bytes(&b, "", 0);
    buf_release(&b);
}

static void test_growth(void **state)
{
    enum { MAX = 100000 };
    struct buf b;
    size_t total = 0;
    (void)state;
    buf_init(&b, MAX);
    while (total + 7 <= MAX) {
        assert_int_equal(buf_append(&b, "abcdefg", 7), 0);
        total += 7;
    }
    assert_int_equal(b.len, total);
    assert_int_equal(buf_append(&b, "abcdefg", 7), HERALD_ETOOBIG);
    assert_int_equal(b.len, total);
    for (size_t i = 0; i < total; i += 7)
        assert_memory_equal(b.data + i, "abcdefg", 7);
    assert_true(b.cap <= MAX + 1);
    buf_release(&b);
}

static void test_appendf(void **state)
{
    struct buf b;
    char big[300];
    (void)state;
    buf_init(&b, 64);
    assert_int_equal(buf_appendf(&b, "%s=%d", "n", 42), 0);
    assert_int_equal(buf_appendf(&b, ",%05.1f|%x", 3.14159, 255u), 0);
    assert_int_equal(buf_appendf(&b, "%s", ""), 0);
    expect_bytes(&b, S("n=42,003.1|ff"));
    /* Too long for what is left: refused whole. */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(buf_appendf(&b, "%s", big), HERALD_ETOOBIG);
    expect_bytes(&b, S("n=42,003.1|ff"));
    /* Exactly filling the rest is fine. */
    assert_int_equal(buf_appendf(&b, "%.*s", (int)(64 - b.len), big), 0);
    assert_int_equal(b.len, 64);
    assert_int_equal(b.data[64], '\0');
    buf_release(&b);
}

struct json_case {
    const char *name;
    const char *in;
    size_t inlen;
    const char *out;
};

static const struct json_case json_cases[] = {
    {"plain", S("abc"), "abc"},
    {"quote", S("a\"b"), "a\\\"b"},
    {"backslash", S("a\\b"), "a\\\\b"},
    {"short escapes", S("\b\f\n\r\t"), "\\b\\f\\n\\r\\t"},
    {"controls", S("\x01\x0b\x1f"), "\\u0001\\u000b\\u001f"},
    {"NUL", S("a\0b"), "a\\u0000b"},
    {"space and DEL kept", S(" \x7f"), " \x7f"},
    {"slash kept", S("</script>"), "</script>"},
    {"UTF-8 bytes kept", S("caf\xc3\xa9"), "caf\xc3\xa9"},
};

static void test_json_str(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(json_cases); i++) {
        struct buf b;
        buf_init(&b, 256);
        assert_int_equal(buf_append_json_str(&b, json_cases[i].in, json_cases[i].inlen), 0);
        if (b.len != strlen(json_cases[i].out) || memcmp(b.data, json_cases[i].out, b.len) != 0)
            fail_msg("case \"%s\": got \"%s\"", json_cases[i].name, b.data);
        buf_release(&b);
    }
}

/* An escape that does not fit is refused like any append: the buffer is unchanged. */
static void test_json_str_unchanged_on_overflow(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 8);
    assert_int_equal(buf_appends(&b, "ab"), 0);
    assert_int_equal(buf_append_json_str(&b, "cd\n\x01", 4), HERALD_ETOOBIG);
    expect_bytes(&b, S("ab"));
    assert_int_equal(buf_append_json_str(&b, "cd\n", 3), 0);
    expect_bytes(&b, S("abcd\\n"));
    buf_release(&b);
}

static void test_detach(void **state)
{
    struct buf b;
    char *p;
    size_t len = 0;
    (void)state;
    buf_init(&b, 32);
    assert_int_equal(buf_appends(&b, "payload"), 0);
    p = buf_detach(&b, &len);
    assert_string_equal(p, "payload");
    assert_int_equal(len, 7);
    /* The buffer is empty and reusable, with the same max. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 32);
    assert_int_equal(buf_appends(&b, "again"), 0);
    expect_bytes(&b, S("again"));
    free(p);
    p = buf_detach(&b, NULL);
    assert_string_equal(p, "again");
    free(p);
    buf_release(&b);
}

static void test_release_secure(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 64);
    assert_int_equal(buf_appends(&b, "secret"), 0);
    buf_release_secure(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    buf_release_secure(&b); /* twice is fine */
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),    cmocka_unit_test(test_append_and_max),
        cmocka_unit_test(test_growth),   cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_json_str), cmocka_unit_test(test_json_str_unchanged_on_overflow),
        cmocka_unit_test(test_detach),   cmocka_unit_test(test_release_secure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
