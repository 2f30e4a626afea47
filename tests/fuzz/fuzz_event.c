/*
 * libFuzzer target for the event envelope parser (event.c).
 *
 * The first byte says how many of the last bytes are the Kafka message key
 * (the tenant fallback); the rest is the message value. Besides memory
 * safety it checks what the worker relies on, and traps when one breaks:
 *   - the status is 0, HERALD_EPARSE or HERALD_ETOOBIG (or ENOMEM), and a
 *     refusal comes with a reason code and a non-empty message, never an
 *     event;
 *   - an accepted event has an id, type and tenant of 1 to 256 visible ASCII
 *     characters (they become header values and Redis keys), a body that is
 *     exactly the value, NUL-terminated, and a creation time that
 *     event_parse_time() agrees with;
 *   - one byte less of max_bytes than the value's length refuses it as
 *     too_large, and parsing is deterministic.
 * The value, as a C string, is also run through event_parse_time(), whose
 * accepted strings must have the RFC 3339 shape.
 */
#include "herald/err.h"
#include "herald/event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void check_ident(const char *s, size_t max)
{
    size_t n = strlen(s);
    CHECK(n >= 1 && n <= max);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f);
    CHECK(event_check_ident(s, max) == 0);
}

static void check_time(const char *s)
{
    int64_t ms = 0;
    size_t n = strlen(s);
    if (event_parse_time(s, &ms) != 0)
        return;
    /* YYYY-MM-DDTHH:MM:SS then an optional fraction and Z or an offset. */
    CHECK(n >= 20);
    CHECK(s[4] == '-' && s[7] == '-' && s[13] == ':' && s[16] == ':');
    CHECK(s[n - 1] == 'Z' || s[n - 1] == 'z' || (n >= 25 && s[n - 3] == ':'));
    /* Years 0000-9999 with offsets up to a day either way. */
    CHECK(ms >= -62167219200000LL - 86400000LL && ms <= 253402300800000LL + 86400000LL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event *ev = NULL, *again = NULL;
    enum event_reject reject = EVENT_REJECT_NONE, reject2 = EVENT_REJECT_NONE;
    char why[256], why2[256];
    const char *value, *key;
    size_t klen, vlen;
    int rc, rc2;
    char *text;

    if (size == 0)
        return 0;
    klen = data[0] % 32;
    if (klen > size - 1)
        klen = size - 1;
    value = (const char *)data + 1;
    vlen = size - 1 - klen;
    key = klen ? (const char *)data + 1 + vlen : NULL;

    memset(why, 'x', sizeof(why));
    rc = event_parse(value, vlen, key, klen, 1 << 20, &ev, &reject, why, sizeof(why));
    CHECK(rc == 0 || rc == HERALD_EPARSE || rc == HERALD_ETOOBIG || rc == HERALD_ENOMEM);
    if (rc == 0) {
        CHECK(ev != NULL && ev->refs == 1);
        CHECK(reject == EVENT_REJECT_NONE);
        check_ident(ev->id, EVENT_ID_MAX);
        check_ident(ev->type, EVENT_TYPE_MAX);
        check_ident(ev->tenant, EVENT_TENANT_MAX);
        CHECK(ev->body_len == vlen && memcmp(ev->body, value, vlen) == 0);
        CHECK(ev->body[vlen] == '\0');
        if (vlen > 0) {
            struct event *small = NULL;
            enum event_reject r = EVENT_REJECT_NONE;
            CHECK(event_parse(value, vlen, key, klen, vlen - 1, &small, &r, NULL, 0) ==
                  HERALD_ETOOBIG);
            CHECK(small == NULL && r == EVENT_REJECT_TOO_LARGE);
        }
    } else if (rc != HERALD_ENOMEM) {
        CHECK(ev == NULL);
        CHECK(reject != EVENT_REJECT_NONE);
        CHECK(strcmp(event_reject_name(reject), "unknown") != 0);
        CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0');
        CHECK((rc == HERALD_ETOOBIG) == (reject == EVENT_REJECT_TOO_LARGE));
    }

    /* Pure: the same input gives the same answer. */
    rc2 = event_parse(value, vlen, key, klen, 1 << 20, &again, &reject2, why2, sizeof(why2));
    CHECK(rc2 == rc && reject2 == reject);
    if (rc == 0) {
        CHECK(strcmp(again->id, ev->id) == 0 && strcmp(again->type, ev->type) == 0 &&
              strcmp(again->tenant, ev->tenant) == 0 && again->created_ms == ev->created_ms);
    }
    event_unref(again);
    event_unref(ev);

    text = malloc(vlen + 1);
    if (text) {
        memcpy(text, value, vlen);
        text[vlen] = '\0';
        check_time(text);
        free(text);
    }
    return 0;
}
