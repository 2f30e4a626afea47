/*
 * Unit tests for event.c: envelope parsing (every reject reason of
 * EVENT_REJECT_MAP with its status code, the tenant fallback to the message
 * key, the size limit at and just past the edge, bodies kept byte for byte),
 * RFC 3339 timestamps, and the reference counting that lets the jobs of one
 * fan-out share an event (run under ASan to catch a double free or leak).
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
#include "herald/event.h"

#define N(a)      (sizeof(a) / sizeof((a)[0]))
#define MAX_BYTES (1u << 20)

/* A fresh heap string of n copies of c, for the length-limit cases. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/*
 * Parses value from an exactly-sized heap copy (no terminating NUL), so ASan
 * sees any read past the end of the message value.
 */
static int parse_exact(const char *value, size_t len, const char *key, size_t max,
                       struct event **ev, enum event_reject *reject, char *why, size_t whylen)
{
    char *copy = malloc(len ? len : 1);
    int rc;
    assert_non_null(copy);
    if (len)
        memcpy(copy, value, len);
    rc = event_parse(copy, len, key, key ? strlen(key) : 0, max, ev, reject, why, whylen);
    free(copy);
    return rc;
}

/* ---- valid envelopes ----------------------------------------------------- */

struct valid_case {
    const char *name;
    const char *value;
    const char *key; /* message key, or NULL */
    const char *id, *type, *tenant;
    int64_t created_ms;
};

static const struct valid_case valid_cases[] = {
    {"full envelope",
     "{\"id\":\"evt_1\",\"type\":\"post.created\",\"tenant\":\"org_123\","
     "\"timestamp\":\"2024-10-01T18:30:03Z\",\"data\":{\"post\":{\"id\":\"p\"}}}",
     NULL, "evt_1", "post.created", "org_123", 1727807403000},
    {"tenant beats key", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"org_a\"}", "org_key", "e", "t",
     "org_a", 0},
    {"key is the fallback", "{\"id\":\"e\",\"type\":\"t\"}", "org_key", "e", "t", "org_key", 0},
    {"null tenant falls back to key", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":null}", "k", "e",
     "t", "k", 0},
    {"null timestamp is absent",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\",\"timestamp\":null}", NULL, "e", "t", "o", 0},
    {"fractional timestamp",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-10-01T18:30:03.250Z\"}",
     NULL, "e", "t", "o", 1727807403250},
    {"offset timestamp",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-10-01T20:30:03+02:00\"}",
     NULL, "e", "t", "o", 1727807403000},
    {"negative offset",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-10-01T13:00:03.5-05:30\"}",
     NULL, "e", "t", "o", 1727807403500},
    {"punctuation in ids", "{\"id\":\"a\\\"b\\\\c~!\",\"type\":\"x.y-z_1\",\"tenant\":\"org:1/2\"}",
     NULL, "a\"b\\c~!", "x.y-z_1", "org:1/2", 0},
    {"no data member", "{\"type\":\"t\",\"id\":\"e\",\"tenant\":\"o\"}", NULL, "e", "t", "o", 0},
    {"data of any type", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\",\"data\":[1,\"x\",null]}",
     NULL, "e", "t", "o", 0},
    {"unknown members allowed", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\",\"extra\":{}}", NULL,
     "e", "t", "o", 0},
    {"surrounding whitespace", " \n\t{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\"}\r\n ", NULL,
     "e", "t", "o", 0},
    {"duplicate member: first wins",
     "{\"id\":\"e1\",\"id\":\"e2\",\"type\":\"t\",\"tenant\":\"o\"}", NULL, "e1", "t", "o", 0},
};

static void test_parse_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(valid_cases); i++) {
        const struct valid_case *c = &valid_cases[i];
        struct event *ev = NULL;
        enum event_reject reject = EVENT_REJECT_BAD_TIMESTAMP;
        char why[256] = "";
        size_t len = strlen(c->value);
        int rc = parse_exact(c->value, len, c->key, MAX_BYTES, &ev, &reject, why, sizeof(why));
        if (rc != 0)
            fail_msg("case \"%s\": rc %d (%s)", c->name, rc, why);
        assert_int_equal(reject, EVENT_REJECT_NONE);
        assert_non_null(ev);
        assert_int_equal(ev->refs, 1);
        assert_string_equal(ev->id, c->id);
        assert_string_equal(ev->type, c->type);
        assert_string_equal(ev->tenant, c->tenant);
        if (ev->created_ms != c->created_ms)
            fail_msg("case \"%s\": created_ms %lld, want %lld", c->name, (long long)ev->created_ms,
                     (long long)c->created_ms);
        /* The body is the value exactly as consumed, whitespace and all. */
        assert_int_equal(ev->body_len, len);
        assert_memory_equal(ev->body, c->value, len);
        assert_int_equal(ev->body[len], '\0');
        event_unref(ev);
    }
}

static void test_body_bytes_exact(void **state)
{
    static const char value[] =
        "{ \"id\" : \"e\",\n\t\"type\":\"t\" ,\"tenant\":\"o\",\n"
        "  \"data\": {\"n\": 1.50, \"s\": \"\\u00e9\\n\", \"u\": \"\xc3\xa9\"}"
        "   }\n\n";
    struct event *ev;
    enum event_reject reject;
    (void)state;
    assert_int_equal(
        event_parse(value, sizeof(value) - 1, NULL, 0, MAX_BYTES, &ev, &reject, NULL, 0), 0);
    assert_int_equal(ev->body_len, sizeof(value) - 1);
    assert_memory_equal(ev->body, value, sizeof(value) - 1);
    event_unref(ev);
}

/* ---- rejects ------------------------------------------------------------- */

struct reject_case {
    const char *name;
    const char *value;
    size_t len; /* 0: strlen(value) */
    const char *key;
    int rc;
    enum event_reject reject;
};

static const struct reject_case reject_cases[] = {
    {"not JSON", "hello", 0, "k", HERALD_EPARSE, EVENT_REJECT_NOT_JSON},
    {"truncated JSON", "{\"id\":\"e\",\"type\":", 0, "k", HERALD_EPARSE, EVENT_REJECT_NOT_JSON},
    {"trailing garbage", "{\"id\":\"e\",\"type\":\"t\"} x", 0, "k", HERALD_EPARSE,
     EVENT_REJECT_NOT_JSON},
    {"two objects", "{\"id\":\"e\",\"type\":\"t\"}{}", 0, "k", HERALD_EPARSE,
     EVENT_REJECT_NOT_JSON},
    {"trailing NUL byte", "{\"id\":\"e\",\"type\":\"t\"}\0", 22, "k", HERALD_EPARSE,
     EVENT_REJECT_NOT_JSON},
    {"only whitespace", "  \n ", 0, "k", HERALD_EPARSE, EVENT_REJECT_NOT_JSON},
    {"array at top level", "[{\"id\":\"e\",\"type\":\"t\"}]", 0, "k", HERALD_EPARSE,
     EVENT_REJECT_NOT_OBJECT},
    {"number at top level", "42", 0, "k", HERALD_EPARSE, EVENT_REJECT_NOT_OBJECT},
    {"string at top level", "\"evt\"", 0, "k", HERALD_EPARSE, EVENT_REJECT_NOT_OBJECT},
    {"null at top level", "null", 0, "k", HERALD_EPARSE, EVENT_REJECT_NOT_OBJECT},
    {"missing id", "{\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE, EVENT_REJECT_NO_ID},
    {"null id", "{\"id\":null,\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_NO_ID},
    {"numeric id", "{\"id\":12,\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_ID},
    {"object id", "{\"id\":{},\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_ID},
    {"empty id", "{\"id\":\"\",\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_ID},
    {"id with a space", "{\"id\":\"a b\",\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_ID},
    {"id with a tab", "{\"id\":\"a\\tb\",\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_ID},
    {"id with a newline", "{\"id\":\"a\\nb\",\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL,
     HERALD_EPARSE, EVENT_REJECT_BAD_ID},
    {"id with DEL", "{\"id\":\"a\x7f\",\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_ID},
    {"id not ASCII", "{\"id\":\"\xc3\xa9\",\"type\":\"t\",\"tenant\":\"o\"}", 0, NULL,
     HERALD_EPARSE, EVENT_REJECT_BAD_ID},
    {"missing type", "{\"id\":\"e\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_NO_TYPE},
    {"null type", "{\"id\":\"e\",\"type\":null,\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_NO_TYPE},
    {"boolean type", "{\"id\":\"e\",\"type\":true,\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_TYPE},
    {"empty type", "{\"id\":\"e\",\"type\":\"\",\"tenant\":\"o\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_BAD_TYPE},
    {"type with a space", "{\"id\":\"e\",\"type\":\"post created\",\"tenant\":\"o\"}", 0, NULL,
     HERALD_EPARSE, EVENT_REJECT_BAD_TYPE},
    {"numeric tenant", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":7}", 0, "k", HERALD_EPARSE,
     EVENT_REJECT_BAD_TENANT},
    {"array tenant", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":[\"o\"]}", 0, "k", HERALD_EPARSE,
     EVENT_REJECT_BAD_TENANT},
    {"empty tenant", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"\"}", 0, "k", HERALD_EPARSE,
     EVENT_REJECT_BAD_TENANT},
    {"tenant with a space", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"org 1\"}", 0, "k",
     HERALD_EPARSE, EVENT_REJECT_BAD_TENANT},
    {"no tenant and no key", "{\"id\":\"e\",\"type\":\"t\"}", 0, NULL, HERALD_EPARSE,
     EVENT_REJECT_NO_TENANT},
    {"no tenant and an empty key", "{\"id\":\"e\",\"type\":\"t\"}", 0, "", HERALD_EPARSE,
     EVENT_REJECT_NO_TENANT},
    {"null tenant and no key", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":null}", 0, NULL,
     HERALD_EPARSE, EVENT_REJECT_NO_TENANT},
    {"key with a space", "{\"id\":\"e\",\"type\":\"t\"}", 0, "org 1", HERALD_EPARSE,
     EVENT_REJECT_BAD_TENANT},
    {"key with a control byte", "{\"id\":\"e\",\"type\":\"t\"}", 0, "org\x01", HERALD_EPARSE,
     EVENT_REJECT_BAD_TENANT},
    {"key not ASCII", "{\"id\":\"e\",\"type\":\"t\"}", 0, "org\xc3\xa9", HERALD_EPARSE,
     EVENT_REJECT_BAD_TENANT},
    {"numeric timestamp", "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\",\"timestamp\":1727807403}",
     0, NULL, HERALD_EPARSE, EVENT_REJECT_BAD_TIMESTAMP},
    {"date-only timestamp",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-10-01\"}",
     0, NULL, HERALD_EPARSE, EVENT_REJECT_BAD_TIMESTAMP},
    {"timestamp without offset",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-10-01T18:30:03\"}",
     0, NULL, HERALD_EPARSE, EVENT_REJECT_BAD_TIMESTAMP},
    {"month 13",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-13-01T00:00:00Z\"}",
     0, NULL, HERALD_EPARSE, EVENT_REJECT_BAD_TIMESTAMP},
    {"Feb 30",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"2024-02-30T00:00:00Z\"}",
     0, NULL, HERALD_EPARSE, EVENT_REJECT_BAD_TIMESTAMP},
    {"unix seconds as a string",
     "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\","
     "\"timestamp\":\"1727807403\"}",
     0, NULL, HERALD_EPARSE, EVENT_REJECT_BAD_TIMESTAMP},
};

static void test_parse_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(reject_cases); i++) {
        const struct reject_case *c = &reject_cases[i];
        struct event *ev = (struct event *)(uintptr_t)1;
        enum event_reject reject = EVENT_REJECT_NONE;
        char why[256] = "";
        size_t len = c->len ? c->len : strlen(c->value);
        int rc = parse_exact(c->value, len, c->key, MAX_BYTES, &ev, &reject, why, sizeof(why));
        if (rc != c->rc || reject != c->reject)
            fail_msg("case \"%s\": rc %d reject %s, want rc %d reject %s (%s)", c->name, rc,
                     event_reject_name(reject), c->rc, event_reject_name(c->reject), why);
        assert_null(ev);
        /* Every reject explains itself for the dead-letter record. */
        if (why[0] == '\0')
            fail_msg("case \"%s\": no reason given", c->name);
    }
}

static void test_parse_empty(void **state)
{
    struct event *ev = (struct event *)(uintptr_t)1;
    enum event_reject reject = EVENT_REJECT_NONE;
    char why[128] = "";
    (void)state;
    assert_int_equal(event_parse("", 0, "k", 1, MAX_BYTES, &ev, &reject, why, sizeof(why)),
                     HERALD_EPARSE);
    assert_int_equal(reject, EVENT_REJECT_EMPTY);
    assert_null(ev);
    assert_string_equal(why, "the message value is empty");
    /* A tombstone (NULL value) is an empty value too. */
    reject = EVENT_REJECT_NONE;
    assert_int_equal(event_parse(NULL, 0, "k", 1, MAX_BYTES, &ev, &reject, NULL, 0), HERALD_EPARSE);
    assert_int_equal(reject, EVENT_REJECT_EMPTY);
}

/* Builds a valid envelope of exactly len bytes by padding its data string. */
static char *envelope_of_len(size_t len)
{
    static const char head[] = "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\",\"data\":\"";
    static const char tail[] = "\"}";
    size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
    char *s;
    assert_true(len >= fixed);
    s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, head, sizeof(head) - 1);
    memset(s + sizeof(head) - 1, 'x', len - fixed);
    memcpy(s + len - (sizeof(tail) - 1), tail, sizeof(tail));
    assert_int_equal(strlen(s), len);
    return s;
}

static void test_parse_size_limit(void **state)
{
    static const size_t limits[] = {64, 1000, 4096, 1u << 20};
    (void)state;
    for (size_t i = 0; i < N(limits); i++) {
        size_t max = limits[i];
        char *at = envelope_of_len(max), *over = envelope_of_len(max + 1);
        struct event *ev = NULL;
        enum event_reject reject = EVENT_REJECT_NONE;
        char why[128] = "", want[128];

        assert_int_equal(parse_exact(at, max, NULL, max, &ev, &reject, why, sizeof(why)), 0);
        assert_int_equal(reject, EVENT_REJECT_NONE);
        assert_int_equal(ev->body_len, max);
        event_unref(ev);

        ev = (struct event *)(uintptr_t)1;
        assert_int_equal(parse_exact(over, max + 1, NULL, max, &ev, &reject, why, sizeof(why)),
                         HERALD_ETOOBIG);
        assert_int_equal(reject, EVENT_REJECT_TOO_LARGE);
        assert_null(ev);
        snprintf(want, sizeof(want), "the event is %zu bytes, over the limit of %zu", max + 1, max);
        assert_string_equal(why, want);
        free(at);
        free(over);
    }
}

/* Identifiers: 256 visible characters pass, 257 do not, for every field. */
static void test_ident_lengths(void **state)
{
    static const struct {
        const char *field;
        enum event_reject reject;
    } fields[] = {
        {"id", EVENT_REJECT_BAD_ID},
        {"type", EVENT_REJECT_BAD_TYPE},
        {"tenant", EVENT_REJECT_BAD_TENANT},
    };
    (void)state;
    for (size_t f = 0; f < N(fields); f++) {
        for (size_t n = 255; n <= 257; n++) {
            char *v = repeat('a', n), doc[1024];
            struct event *ev = NULL;
            enum event_reject reject = EVENT_REJECT_NONE;
            int rc;
            snprintf(doc, sizeof(doc), "{\"id\":\"%s\",\"type\":\"%s\",\"tenant\":\"%s\"}",
                     f == 0 ? v : "e", f == 1 ? v : "t", f == 2 ? v : "o");
            rc = parse_exact(doc, strlen(doc), NULL, MAX_BYTES, &ev, &reject, NULL, 0);
            if (n <= 256) {
                if (rc != 0)
                    fail_msg("%s of %zu characters refused", fields[f].field, n);
                assert_int_equal(strlen(f == 0 ? ev->id : f == 1 ? ev->type : ev->tenant), n);
                event_unref(ev);
            } else {
                assert_int_equal(rc, HERALD_EPARSE);
                assert_int_equal(reject, fields[f].reject);
            }
            free(v);
        }
    }
    {
        /* The key fallback has the same limit. */
        static const char doc[] = "{\"id\":\"e\",\"type\":\"t\"}";
        char *k256 = repeat('k', 256), *k257 = repeat('k', 257);
        struct event *ev = NULL;
        enum event_reject reject;
        assert_int_equal(parse_exact(doc, sizeof(doc) - 1, k256, MAX_BYTES, &ev, &reject, NULL, 0),
                         0);
        assert_string_equal(ev->tenant, k256);
        event_unref(ev);
        assert_int_equal(parse_exact(doc, sizeof(doc) - 1, k257, MAX_BYTES, &ev, &reject, NULL, 0),
                         HERALD_EPARSE);
        assert_int_equal(reject, EVENT_REJECT_BAD_TENANT);
        free(k256);
        free(k257);
    }
}

static void test_key_with_nul(void **state)
{
    static const char doc[] = "{\"id\":\"e\",\"type\":\"t\"}";
    struct event *ev = NULL;
    enum event_reject reject;
    (void)state;
    /* A binary key with a NUL byte inside must not be cut short into a valid tenant. */
    assert_int_equal(
        event_parse(doc, sizeof(doc) - 1, "org\0x", 5, MAX_BYTES, &ev, &reject, NULL, 0),
        HERALD_EPARSE);
    assert_int_equal(reject, EVENT_REJECT_BAD_TENANT);
    assert_null(ev);
    /* A key that is not NUL-terminated is read for exactly key_len bytes. */
    assert_int_equal(
        event_parse(doc, sizeof(doc) - 1, "org_1XYZ", 5, MAX_BYTES, &ev, &reject, NULL, 0), 0);
    assert_string_equal(ev->tenant, "org_1");
    event_unref(ev);
}

static void test_reject_names(void **state)
{
    static const struct {
        enum event_reject r;
        const char *name;
    } names[] = {
        {EVENT_REJECT_NONE, "none"},
        {EVENT_REJECT_EMPTY, "empty_value"},
        {EVENT_REJECT_TOO_LARGE, "too_large"},
        {EVENT_REJECT_NOT_JSON, "not_json"},
        {EVENT_REJECT_NOT_OBJECT, "not_an_object"},
        {EVENT_REJECT_NO_ID, "missing_id"},
        {EVENT_REJECT_BAD_ID, "invalid_id"},
        {EVENT_REJECT_NO_TYPE, "missing_type"},
        {EVENT_REJECT_BAD_TYPE, "invalid_type"},
        {EVENT_REJECT_NO_TENANT, "missing_tenant"},
        {EVENT_REJECT_BAD_TENANT, "invalid_tenant"},
        {EVENT_REJECT_BAD_TIMESTAMP, "invalid_timestamp"},
    };
    (void)state;
    for (size_t i = 0; i < N(names); i++)
        assert_string_equal(event_reject_name(names[i].r), names[i].name);
    assert_string_equal(event_reject_name((enum event_reject)99), "unknown");
}

/* ---- timestamps ---------------------------------------------------------- */

struct time_case {
    const char *in;
    int rc;
    int64_t ms;
};

static const struct time_case time_cases[] = {
    {"1970-01-01T00:00:00Z", 0, 0},
    {"2024-10-01T18:30:03Z", 0, 1727807403000},
    {"2024-10-01t18:30:03z", 0, 1727807403000},
    {"2024-10-01 18:30:03Z", 0, 1727807403000},
    {"2024-10-01T18:30:03+00:00", 0, 1727807403000},
    {"2024-10-01T18:30:03-00:00", 0, 1727807403000},
    {"2024-10-01T20:30:03+02:00", 0, 1727807403000},
    {"2024-10-01T18:30:03+02:00", 0, 1727800203000},
    {"2024-10-01T18:30:03-05:30", 0, 1727827203000},
    {"2024-10-02T00:00:03+05:30", 0, 1727807403000},
    {"2024-10-01T18:30:03.1Z", 0, 1727807403100},
    {"2024-10-01T18:30:03.12Z", 0, 1727807403120},
    {"2024-10-01T18:30:03.123Z", 0, 1727807403123},
    {"2024-10-01T18:30:03.123999999Z", 0, 1727807403123}, /* truncated, not rounded */
    {"2024-10-01T18:30:03.000001+00:00", 0, 1727807403000},
    {"2024-02-29T00:00:00Z", 0, 1709164800000},
    {"2000-02-29T12:00:00Z", 0, 951825600000},
    {"1999-12-31T23:59:59Z", 0, 946684799000},
    {"1999-12-31T23:59:60Z", 0, 946684799000}, /* a leap second counts as :59 */
    {"1969-12-31T23:59:59Z", 0, -1000},
    {"1969-12-31T23:59:59.500Z", 0, -500},
    {"0001-01-01T00:00:00Z", 0, -62135596800000},
    {"9999-12-31T23:59:59Z", 0, 253402300799000},
    {"", HERALD_EINVAL, 0},
    {"2024-10-01", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03", HERALD_EINVAL, 0},
    {"2024-10-01T18:30Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03ZZ", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03Z ", HERALD_EINVAL, 0},
    {" 2024-10-01T18:30:03Z", HERALD_EINVAL, 0},
    {"2024-10-01X18:30:03Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03.Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03,5Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03+0200", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03+02", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03+24:00", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03+02:60", HERALD_EINVAL, 0},
    {"2024-13-01T00:00:00Z", HERALD_EINVAL, 0},
    {"2024-00-10T00:00:00Z", HERALD_EINVAL, 0},
    {"2024-10-00T00:00:00Z", HERALD_EINVAL, 0},
    {"2024-10-32T00:00:00Z", HERALD_EINVAL, 0},
    {"2024-04-31T00:00:00Z", HERALD_EINVAL, 0},
    {"2024-02-30T00:00:00Z", HERALD_EINVAL, 0},
    {"2023-02-29T00:00:00Z", HERALD_EINVAL, 0}, /* 2023 is not a leap year */
    {"1900-02-29T00:00:00Z", HERALD_EINVAL, 0}, /* nor is 1900 */
    {"2024-10-01T24:00:00Z", HERALD_EINVAL, 0},
    {"2024-10-01T23:60:00Z", HERALD_EINVAL, 0},
    {"2024-10-01T23:59:61Z", HERALD_EINVAL, 0},
    {"24-10-01T18:30:03Z", HERALD_EINVAL, 0},
    {"20241001T183003Z", HERALD_EINVAL, 0},
    {"2024-1-01T18:30:03Z", HERALD_EINVAL, 0},
    /* Every field is exactly its digits: no signs, no blanks. */
    {"+202-10-01T18:30:03Z", HERALD_EINVAL, 0},
    {"-001-10-01T18:30:03Z", HERALD_EINVAL, 0},
    {"2024-+1-01T18:30:03Z", HERALD_EINVAL, 0},
    {"2024- 1-01T18:30:03Z", HERALD_EINVAL, 0},
    {"2024-10- 1T18:30:03Z", HERALD_EINVAL, 0},
    {"2024-10-01T-1:30:03Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:-1:03Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:-1Z", HERALD_EINVAL, 0},
    {"2024-10-01T 8:30:03Z", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03+-1:00", HERALD_EINVAL, 0},
    {"2024-10-01T18:30:03+02:-1", HERALD_EINVAL, 0},
};

static void test_parse_time(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(time_cases); i++) {
        const struct time_case *c = &time_cases[i];
        int64_t ms = -42;
        int rc = event_parse_time(c->in, &ms);
        if (rc != c->rc)
            fail_msg("\"%s\": rc %d, want %d (ms %lld)", c->in, rc, c->rc, (long long)ms);
        if (rc == 0 && ms != c->ms)
            fail_msg("\"%s\": %lld ms, want %lld", c->in, (long long)ms, (long long)c->ms);
    }
}

static void test_check_ident(void **state)
{
    static const struct {
        const char *s;
        size_t max;
        int rc;
    } cases[] = {
        {"a", 1, 0},
        {"ab", 1, HERALD_EINVAL},
        {"", 5, HERALD_EINVAL},
        {"!~", 5, 0},
        {"a b", 5, HERALD_EINVAL},
        {"a\x7f", 5, HERALD_EINVAL},
        {"a\x1f", 5, HERALD_EINVAL},
        {"\x80", 5, HERALD_EINVAL},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        if (event_check_ident(cases[i].s, cases[i].max) != cases[i].rc)
            fail_msg("case %zu: event_check_ident rc %d", i,
                     event_check_ident(cases[i].s, cases[i].max));
}

/* ---- reference counting -------------------------------------------------- */

static void test_refcount(void **state)
{
    static const char doc[] = "{\"id\":\"e\",\"type\":\"t\",\"tenant\":\"o\"}";
    struct event *ev, *a, *b;
    enum event_reject reject;
    (void)state;
    assert_int_equal(event_parse(doc, sizeof(doc) - 1, NULL, 0, MAX_BYTES, &ev, &reject, NULL, 0),
                     0);
    assert_int_equal(ev->refs, 1);
    a = event_ref(ev);
    b = event_ref(ev);
    assert_ptr_equal(a, ev);
    assert_ptr_equal(b, ev);
    assert_int_equal(ev->refs, 3);
    event_unref(a);
    event_unref(b);
    /* One reference left: the event is still whole (ASan would flag a use after free). */
    assert_int_equal(ev->refs, 1);
    assert_string_equal(ev->id, "e");
    assert_memory_equal(ev->body, doc, sizeof(doc) - 1);
    event_unref(ev);
    event_unref(NULL); /* a no-op */
}

/*
 * An escaped NUL inside id, type or tenant is refused (cJSON would cut the
 * string there, so two different ids could become one webhook-id); an
 * escaped NUL elsewhere, including in a nested "id", is ordinary data.
 */
static void test_escaped_nul_in_identifiers(void **state)
{
    static const struct {
        const char *json;
        int rc;
    } cases[] = {
        {"{\"id\":\"evt\\u0000a\",\"type\":\"t\",\"tenant\":\"x\"}", HERALD_EPARSE},
        {"{\"id\":\"e\",\"type\":\"t\\u0000\",\"tenant\":\"x\"}", HERALD_EPARSE},
        {" { \"tenant\" : \"x\\u0000\" , \"id\" : \"e\" , \"type\" : \"t\" } ", HERALD_EPARSE},
        {"{\"a\":[1,{\"b\":\"}\"}],\"id\":\"x\\u0000y\",\"type\":\"t\",\"tenant\":\"x\"}",
         HERALD_EPARSE},
        {"{\"data\":{\"id\":\"a\\u0000\"},\"id\":\"e\",\"type\":\"t\",\"tenant\":\"x\"}", 0},
        {"{\"data\":\"\\u0000\",\"id\":\"e\",\"type\":\"t\",\"tenant\":\"x\"}", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct event *ev = NULL;
        enum event_reject r = EVENT_REJECT_NONE;
        char why[128];
        int rc = event_parse(cases[i].json, strlen(cases[i].json), NULL, 0, 1 << 20, &ev, &r, why,
                             sizeof(why));
        assert_int_equal(rc, cases[i].rc);
        if (rc) {
            assert_int_equal(r, EVENT_REJECT_BAD_ID);
            assert_null(ev);
        } else {
            assert_string_equal(ev->id, "e");
            event_unref(ev);
        }
    }
}

static void test_event_new(void **state)
{
    static const char body[] = "raw\0bytes";
    struct event *ev;
    (void)state;
    assert_int_equal(event_new("id1", "type1", "ten1", body, sizeof(body) - 1, &ev), 0);
    assert_int_equal(ev->refs, 1);
    assert_string_equal(ev->id, "id1");
    assert_string_equal(ev->type, "type1");
    assert_string_equal(ev->tenant, "ten1");
    assert_int_equal(ev->body_len, 9);
    assert_memory_equal(ev->body, body, 9);
    assert_int_equal(ev->body[9], '\0');
    assert_int_equal(ev->created_ms, 0);
    event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_body_bytes_exact),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_size_limit),
        cmocka_unit_test(test_ident_lengths),
        cmocka_unit_test(test_key_with_nul),
        cmocka_unit_test(test_reject_names),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_check_ident),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_event_new),
        cmocka_unit_test(test_escaped_nul_in_identifiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
