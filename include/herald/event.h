/*
 * Event envelopes: parsing and validating the Kafka message value.
 *
 * The envelope is defined by schemes/event.schema.json: a JSON object with a
 * required string "id" (the idempotency key, sent as webhook-id) and "type",
 * an optional "tenant" (the message key is the fallback), "timestamp" and
 * "data". herald keeps the value's bytes exactly as consumed, because by
 * default those bytes are the webhook body that gets signed.
 *
 * event_parse() is pure. A rejected value yields a reason code that names
 * why it is poison; the worker dead-letters it with that reason.
 *
 * Ownership: struct event is reference counted (jobs of a fan-out share it);
 * event_unref() frees it when the last reference goes.
 */
#ifndef HERALD_EVENT_H
#define HERALD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_ID_MAX     256
#define EVENT_TYPE_MAX   256
#define EVENT_TENANT_MAX 256

#define EVENT_REJECT_MAP(XX)                                                                       \
    XX(NONE, "none")                                                                               \
    XX(EMPTY, "empty_value")                                                                       \
    XX(TOO_LARGE, "too_large")                                                                     \
    XX(NOT_JSON, "not_json")                                                                       \
    XX(NOT_OBJECT, "not_an_object")                                                                \
    XX(NO_ID, "missing_id")                                                                        \
    XX(BAD_ID, "invalid_id")                                                                       \
    XX(NO_TYPE, "missing_type")                                                                    \
    XX(BAD_TYPE, "invalid_type")                                                                   \
    XX(NO_TENANT, "missing_tenant")                                                                \
    XX(BAD_TENANT, "invalid_tenant")                                                               \
    XX(BAD_TIMESTAMP, "invalid_timestamp")

enum event_reject {
#define XX(id, name) EVENT_REJECT_##id,
    EVENT_REJECT_MAP(XX)
#undef XX
        EVENT_REJECT_COUNT
};

const char *event_reject_name(enum event_reject r);

struct event {
    int refs;
    char *id;
    char *type;
    char *tenant;
    char *body; /* the value exactly as consumed, NUL-terminated copy */
    size_t body_len;
    int64_t created_ms; /* envelope timestamp (wall ms), or 0 when absent */
};

/*
 * Parses value (len bytes) with the Kafka message key as tenant fallback
 * (key may be NULL). On success returns 0 and *out (refs = 1). On a poison
 * value returns HERALD_EPARSE (or HERALD_ETOOBIG) and sets *reject and a
 * human-readable detail in why. HERALD_ENOMEM is not poison: retry later.
 */
int event_parse(const char *value, size_t len, const char *key, size_t key_len, size_t max_bytes,
                struct event **out, enum event_reject *reject, char *why, size_t whylen);

/* Builds an event from already-known parts (used for retry jobs). */
int event_new(const char *id, const char *type, const char *tenant, const char *body,
              size_t body_len, struct event **out);

struct event *event_ref(struct event *ev);
void event_unref(struct event *ev);

/* Parses an RFC 3339 timestamp to unix milliseconds; 0 or HERALD_EINVAL. */
int event_parse_time(const char *s, int64_t *ms);

/* Identifiers: 1..max visible ASCII characters, no spaces or controls. */
int event_check_ident(const char *s, size_t max);

#endif
