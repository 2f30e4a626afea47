/*
 * libFuzzer target for subscription validation (subs.c).
 *
 * A document subs_parse() accepts is trusted from then on: its URL is handed
 * to libcurl, its headers are written into requests, its secrets sign. So
 * besides memory safety this checks, independently of subs.c's own helpers,
 * that every accepted document keeps the documented rules, and traps when
 * one breaks:
 *   - a refusal sets *out to NULL and names a field and a reason;
 *   - the id is 1 to 128 of letters, digits and "_-.:"; the tenant and every
 *     event pattern are visible ASCII ("*" or a "prefix.*" allowed);
 *   - the URL is an http or https URL with a host, no credentials, no
 *     spaces or control characters, and libcurl reads the same scheme;
 *   - custom header names are HTTP tokens that herald does not set itself,
 *     values hold no CR, LF or other control characters, and the document
 *     holds no NUL (raw or \u0000) that would cut a value short;
 *   - limits: events, secrets, headers and the integer fields are in range,
 *     the "none" scheme has no keys and every other scheme has at least one;
 *   - the subscription signs a request without error (what the signer would
 *     refuse at send time is refused here);
 *   - subs_disable_doc() of an accepted document parses again, disabled,
 *     with everything else unchanged.
 */
#include "herald/err.h"
#include "herald/sign.h"
#include "herald/subs.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static bool visible(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

static bool no_controls(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

static bool has_nul(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size))
        return true;
    for (size_t i = 0; i + 5 < size; i++) {
        if (data[i] != '\\')
            continue;
        if (data[i + 1] == 'u' && memcmp(data + i + 2, "0000", 4) == 0)
            return true;
        i++;
    }
    return false;
}

static void check_url(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *host = NULL;

    CHECK(strlen(url) <= SUBS_URL_MAX);
    CHECK(strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
    for (const char *p = url; *p; p++)
        CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
    if (!u)
        return;
    CHECK(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK);
    CHECK(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK);
    CHECK(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    CHECK(curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_OK);
    CHECK(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host);
    curl_free(scheme);
    curl_free(user);
    curl_free(host);
    curl_url_cleanup(u);
}

static void check_pattern(const char *p)
{
    size_t n = strlen(p);
    if (n == 1 && p[0] == '*')
        return;
    CHECK(visible(p, 256));
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] != '*' || (i == n - 1 && i >= 2 && p[i - 1] == '.'));
}

static void check_signs(const struct sub *sub)
{
    static const char body[] = "{\"id\":\"evt_1\",\"type\":\"a.b\",\"message\":\"m\"}";
    struct sign_input in = {0};
    struct sign_headers sh;
    int rc;

    in.msg_id = "evt_1";
    in.timestamp = 1700000000;
    in.body = body;
    in.body_len = sizeof(body) - 1;
    rc = sign_request(sub->scheme, sub->signature_header, sub->keys, sub->nkeys, &in, &sh);
    CHECK(rc == 0 || rc == HERALD_ENOMEM);
    for (size_t i = 0; rc == 0 && i < sh.n; i++) {
        CHECK(token(sh.h[i].name));
        CHECK(no_controls(sh.h[i].value));
    }
    sign_headers_release(&sh);
}

static void check_accepted(const struct sub *sub, const uint8_t *data, size_t size)
{
    const char *sig_header =
        sub->signature_header ? sub->signature_header : sign_default_header(sub->scheme);

    CHECK(!has_nul(data, size));
    CHECK(strlen(sub->id) >= 1 && strlen(sub->id) <= SUBS_ID_MAX);
    for (const char *p = sub->id; *p; p++) {
        unsigned char c = (unsigned char)*p;
        CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("_-.:", c));
    }
    CHECK(visible(sub->tenant, 256));
    check_url(sub->url);
    CHECK(sub->method == SUBS_POST || sub->method == SUBS_PUT || sub->method == SUBS_PATCH);
    CHECK(*sub->content_type && no_controls(sub->content_type));
    CHECK(sub->events.n >= 1 && sub->events.n <= SUBS_MAX_EVENTS);
    for (size_t i = 0; i < sub->events.n; i++)
        check_pattern(sub->events.v[i]);
    CHECK((unsigned)sub->scheme < SIGN_SCHEME_COUNT);
    CHECK(sub->nkeys <= SUBS_MAX_SECRETS);
    CHECK((sub->scheme == SIGN_NONE) == (sub->nkeys == 0));
    for (size_t i = 0; i < sub->nkeys; i++)
        CHECK(sub->keys[i].bytes && sub->keys[i].len > 0);
    CHECK(!sub->signature_header || sign_scheme_takes_header(sub->scheme));
    CHECK(!sub->signature_header ||
          (token(sub->signature_header) && !subs_header_reserved(sub->signature_header, NULL)));
    CHECK(sub->scheme != SIGN_MESSAGE_FIELD || sub->payload == PAYLOAD_MESSAGE);
    CHECK(sub->nheaders <= SUBS_MAX_HEADERS);
    for (size_t i = 0; i < sub->nheaders; i++) {
        CHECK(token(sub->headers[i].key));
        CHECK(!subs_header_reserved(sub->headers[i].key, sig_header));
        CHECK(no_controls(sub->headers[i].value));
        for (size_t j = 0; j < i; j++)
            CHECK(strcasecmp(sub->headers[i].key, sub->headers[j].key) != 0);
    }
    CHECK(sub->max_attempts == 0 || (sub->max_attempts >= 1 && sub->max_attempts <= 100));
    CHECK(sub->timeout_ms == 0 || (sub->timeout_ms >= 100 && sub->timeout_ms <= 300000));
    CHECK(sub->max_in_flight >= 0 && sub->max_in_flight <= 10000);
    CHECK(sub->rate_limit >= 0 && sub->rate_limit <= 1000000);
    check_signs(sub);
}

/* The disabled copy must differ in status and reason only. */
static void check_disable(const struct sub *sub, const uint8_t *data, size_t size)
{
    struct sub *off = NULL;
    char field[160], why[256];
    char *doc = subs_disable_doc((const char *)data, size, "fuzz");

    if (!doc)
        return; /* out of memory only: the document parsed once already */
    CHECK(subs_parse(doc, strlen(doc), &off, field, sizeof(field), why, sizeof(why)) == 0);
    CHECK(!off->active && off->disabled_reason && strcmp(off->disabled_reason, "fuzz") == 0);
    CHECK(strcmp(off->id, sub->id) == 0 && strcmp(off->tenant, sub->tenant) == 0);
    CHECK(strcmp(off->url, sub->url) == 0 && off->scheme == sub->scheme);
    CHECK(off->nkeys == sub->nkeys && off->nheaders == sub->nheaders);
    CHECK(off->events.n == sub->events.n);
    for (size_t i = 0; i < sub->nkeys; i++)
        CHECK(off->keys[i].len == sub->keys[i].len &&
              memcmp(off->keys[i].bytes, sub->keys[i].bytes, sub->keys[i].len) == 0);
    subs_unref(off);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sub *sub = (struct sub *)(uintptr_t)1;
    char field[160], why[256];
    int rc;

    memset(field, 'x', sizeof(field));
    memset(why, 'x', sizeof(why));
    rc = subs_parse((const char *)data, size, &sub, field, sizeof(field), why, sizeof(why));
    CHECK(rc == 0 || rc == HERALD_EINVAL || rc == HERALD_ENOMEM);
    if (rc != 0) {
        CHECK(sub == NULL);
        if (rc == HERALD_EINVAL) {
            CHECK(memchr(field, '\0', sizeof(field)) && field[0]);
            CHECK(memchr(why, '\0', sizeof(why)) && why[0]);
        }
        return 0;
    }
    CHECK(sub && sub->refs == 1);
    check_accepted(sub, data, size);
    CHECK(sub->active || !subs_matches(sub, "a.b"));
    check_disable(sub, data, size);
    subs_unref(sub);
    return 0;
}
