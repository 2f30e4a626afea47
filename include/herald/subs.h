/*
 * Subscriptions (endpoints): the model, its validation and event matching.
 *
 * schemas/subscription.schema.json defines the JSON document; subs_parse()
 * enforces the same rules and, when it refuses a document, names the field
 * that is wrong ("url", "events[2]", "headers.X-Foo"), so `herald subs put`
 * can tell an operator exactly what to fix. Secrets are decoded once here
 * into sign keys; the document's text is never logged.
 *
 * Everything in this file is pure. Ownership: struct sub is reference
 * counted because jobs in flight keep the snapshot they were matched with
 * while the cache may already hold a newer one.
 */
#ifndef HERALD_SUBS_H
#define HERALD_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/config.h"
#include "herald/payload.h"
#include "herald/sign.h"

#define SUBS_ID_MAX      128
#define SUBS_URL_MAX     2048
#define SUBS_MAX_EVENTS  256
#define SUBS_MAX_SECRETS 10
#define SUBS_MAX_HEADERS 32

enum subs_method { SUBS_POST, SUBS_PUT, SUBS_PATCH };

struct sub {
    int refs;
    char *id;
    char *tenant;
    char *url;
    enum subs_method method;
    char *content_type;
    struct strlist events;
    bool active;
    char *disabled_reason;
    enum sign_scheme scheme;
    char *signature_header; /* NULL: scheme default */
    struct sign_key *keys;
    size_t nkeys;
    enum payload_mode payload;
    struct kv *headers;
    size_t nheaders;
    int max_attempts;   /* 0: delivery.max_attempts */
    int64_t timeout_ms; /* 0: delivery.timeout */
    int max_in_flight;  /* 0: delivery.max_in_flight_per_endpoint */
    int rate_limit;     /* 0: delivery.rate_limit_per_s, which may also be 0 (unlimited) */
};

/*
 * Parses and validates one subscription document. On a refusal returns
 * HERALD_EINVAL, and field/why say which field is wrong and why.
 */
int subs_parse(const char *json, size_t len, struct sub **out, char *field, size_t fieldlen,
               char *why, size_t whylen);

struct sub *subs_ref(struct sub *sub);
void subs_unref(struct sub *sub);

/* "*" matches all, "post.*" every type starting with "post.", anything else exactly. */
bool subs_pattern_matches(const char *pattern, const char *type);
/* True when sub is active and one of its patterns matches type. */
bool subs_matches(const struct sub *sub, const char *type);

const char *subs_method_name(enum subs_method m);

/* Header names a subscription may not set: herald's own and hop-by-hop ones. */
bool subs_header_reserved(const char *name, const char *signature_header);

/*
 * Returns a copy of the document with status set to "disabled" and
 * disabled_reason set (caller frees), for auto-disable on 410 Gone and on
 * endpoints failing for too long. NULL on a malformed document or no memory.
 */
char *subs_disable_doc(const char *json, size_t len, const char *reason);

#endif
