/*
 * Unit tests for subs.c: a full and a minimal subscription document (every
 * field and every default), a table of refused documents each with the exact
 * field subs_parse() names, the size limits at and past their edge, event
 * pattern matching, and subs_disable_doc(). Secrets are the Standard
 * Webhooks test secret.
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
#include "herald/subs.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define SECRET  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define HEAD    "\"id\":\"sub_1\",\"tenant\":\"org_1\",\"url\":\"https://example.com/hook\""
#define EVENTS  ",\"events\":[\"post.created\"]"
#define SECRETS ",\"secrets\":[\"" SECRET "\"]"
/* A minimal valid document, with room for more members. */
#define DOC(extra) "{" HEAD EVENTS SECRETS extra "}"

static struct sub *parse_ok(const char *json)
{
    struct sub *sub = NULL;
    char field[160] = "", why[256] = "";
    int rc = subs_parse(json, strlen(json), &sub, field, sizeof(field), why, sizeof(why));
    if (rc != 0)
        fail_msg("refused (%d): field \"%s\": %s\n  doc: %.300s", rc, field, why, json);
    assert_non_null(sub);
    assert_int_equal(sub->refs, 1);
    return sub;
}

/* Asserts json is refused and names want_field; returns nothing on success. */
static void expect_refused(const char *json, size_t len, const char *want_field, const char *name)
{
    struct sub *sub = (struct sub *)(uintptr_t)1;
    char field[160] = "", why[256] = "";
    int rc = subs_parse(json, len, &sub, field, sizeof(field), why, sizeof(why));
    if (rc != HERALD_EINVAL)
        fail_msg("case \"%s\": rc %d, want HERALD_EINVAL\n  doc: %.300s", name, rc, json);
    assert_null(sub);
    if (strcmp(field, want_field) != 0)
        fail_msg("case \"%s\": field \"%s\" (%s), want \"%s\"", name, field, why, want_field);
    if (why[0] == '\0')
        fail_msg("case \"%s\": no reason given", name);
}

/* ---- valid documents ----------------------------------------------------- */

static void test_full_document(void **state)
{
    static const char doc[] =
        "{\"id\":\"sub_01:a-b.c\",\"tenant\":\"org_123\",\"name\":\"Billing\","
        "\"description\":\"Sends invoices\",\"metadata\":{\"team\":\"billing\",\"n\":[1]},"
        "\"url\":\"https://hooks.example.com:8443/in?x=1\",\"method\":\"PUT\","
        "\"content_type\":\"application/cloudevents+json; charset=utf-8\","
        "\"events\":[\"invoice.paid\",\"invoice.*\",\"*\"],\"status\":\"disabled\","
        "\"disabled_reason\":\"endpoint returned 410\",\"secrets\":[\"" SECRET "\",\"" SECRET "\"],"
        "\"signature\":\"standard-webhooks\",\"payload\":\"compact\","
        "\"headers\":{\"Authorization\":\"Bearer "
        "abc\",\"X-Tab\":\"a\\tb\",\"X-Utf8\":\"caf\xc3\xa9\"},"
        "\"max_attempts\":5,\"timeout_ms\":2500,\"max_in_flight\":7,\"rate_limit_per_s\":20,"
        "\"created_at\":\"2024-10-01T00:00:00Z\",\"updated_at\":\"2024-10-02T00:00:00Z\"}";
    struct sub *sub = parse_ok(doc);
    (void)state;
    assert_string_equal(sub->id, "sub_01:a-b.c");
    assert_string_equal(sub->tenant, "org_123");
    assert_string_equal(sub->url, "https://hooks.example.com:8443/in?x=1");
    assert_int_equal(sub->method, SUBS_PUT);
    assert_string_equal(subs_method_name(sub->method), "PUT");
    assert_string_equal(sub->content_type, "application/cloudevents+json; charset=utf-8");
    assert_int_equal(sub->events.n, 3);
    assert_string_equal(sub->events.v[0], "invoice.paid");
    assert_string_equal(sub->events.v[1], "invoice.*");
    assert_string_equal(sub->events.v[2], "*");
    assert_false(sub->active);
    assert_string_equal(sub->disabled_reason, "endpoint returned 410");
    assert_int_equal(sub->scheme, SIGN_STANDARD_WEBHOOKS);
    assert_null(sub->signature_header);
    assert_int_equal(sub->nkeys, 2);
    /* whsec_ + base64 of 24 bytes: the key is the decoded bytes. */
    assert_int_equal(sub->keys[0].len, 24);
    assert_int_equal(sub->keys[1].len, 24);
    assert_memory_equal(sub->keys[0].bytes,
                        "\x31\xf2\x90\xf6\xbf\x06\x29\x8a\xab\x4f\x08\xd4"
                        "\x3c\x3f\x08\x2c\xf6\x48\xa3\x62\xda\x2d\xa4\xb0",
                        24);
    assert_int_equal(sub->payload, PAYLOAD_COMPACT);
    assert_int_equal(sub->nheaders, 3);
    assert_string_equal(sub->headers[0].key, "Authorization");
    assert_string_equal(sub->headers[0].value, "Bearer abc");
    assert_string_equal(sub->headers[1].key, "X-Tab");
    assert_string_equal(sub->headers[1].value, "a\tb");
    assert_string_equal(sub->headers[2].value, "caf\xc3\xa9");
    assert_int_equal(sub->max_attempts, 5);
    assert_int_equal(sub->timeout_ms, 2500);
    assert_int_equal(sub->max_in_flight, 7);
    assert_int_equal(sub->rate_limit, 20);
    subs_unref(sub);
}

static void test_minimal_document_defaults(void **state)
{
    struct sub *sub = parse_ok(DOC(""));
    (void)state;
    assert_string_equal(sub->id, "sub_1");
    assert_string_equal(sub->tenant, "org_1");
    assert_string_equal(sub->url, "https://example.com/hook");
    assert_int_equal(sub->method, SUBS_POST);
    assert_string_equal(subs_method_name(sub->method), "POST");
    assert_string_equal(sub->content_type, "application/json");
    assert_true(sub->active);
    assert_null(sub->disabled_reason);
    assert_int_equal(sub->scheme, SIGN_STANDARD_WEBHOOKS);
    assert_null(sub->signature_header);
    assert_int_equal(sub->nkeys, 1);
    assert_int_equal(sub->payload, PAYLOAD_RAW);
    assert_int_equal(sub->nheaders, 0);
    /* 0 means "the config default" for the per-endpoint knobs. */
    assert_int_equal(sub->max_attempts, 0);
    assert_int_equal(sub->timeout_ms, 0);
    assert_int_equal(sub->max_in_flight, 0);
    assert_int_equal(sub->rate_limit, 0);
    subs_unref(sub);
}

struct scheme_case {
    const char *doc;
    enum sign_scheme scheme;
    const char *header; /* expected signature_header, or NULL */
    enum payload_mode payload;
    size_t nkeys;
    size_t key_len;
};

static const struct scheme_case scheme_cases[] = {
    {"{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\",\"secrets\":[\"plain secret\"],"
     "\"signature_header\":\"X-Hub-Signature-256\"}",
     SIGN_HMAC_SHA256_HEX, "X-Hub-Signature-256", PAYLOAD_RAW, 1, 12},
    {"{" HEAD EVENTS ",\"signature\":\"hmac-sha256-base64\",\"secrets\":[\"" SECRET "\"]}",
     SIGN_HMAC_SHA256_BASE64, NULL, PAYLOAD_RAW, 1, 24},
    {"{" HEAD EVENTS ",\"signature\":\"timestamped\",\"secrets\":[\"s1\",\"s2\"],"
     "\"signature_header\":\"X-Campsite-Signature\",\"payload\":\"data\"}",
     SIGN_TIMESTAMPED, "X-Campsite-Signature", PAYLOAD_DATA, 2, 2},
    {"{" HEAD EVENTS ",\"signature\":\"message-field\",\"secrets\":[\"k\"],"
     "\"signature_header\":\"X-Capmo-Signature\",\"payload\":\"message\"}",
     SIGN_MESSAGE_FIELD, "X-Capmo-Signature", PAYLOAD_MESSAGE, 1, 1},
    {"{" HEAD EVENTS ",\"signature\":\"none\"}", SIGN_NONE, NULL, PAYLOAD_RAW, 0, 0},
    {"{" HEAD EVENTS ",\"signature\":\"none\",\"secrets\":[]}", SIGN_NONE, NULL, PAYLOAD_RAW, 0, 0},
    {"{" HEAD EVENTS ",\"signature\":\"standard-webhooks-ed25519\","
     "\"secrets\":[\"whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=\"]}",
     SIGN_STANDARD_WEBHOOKS_ED25519, NULL, PAYLOAD_RAW, 1, 32},
};

static void test_schemes(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(scheme_cases); i++) {
        const struct scheme_case *c = &scheme_cases[i];
        struct sub *sub = parse_ok(c->doc);
        assert_int_equal(sub->scheme, c->scheme);
        if (c->header)
            assert_string_equal(sub->signature_header, c->header);
        else
            assert_null(sub->signature_header);
        assert_int_equal(sub->payload, c->payload);
        assert_int_equal(sub->nkeys, c->nkeys);
        for (size_t k = 0; k < sub->nkeys; k++)
            assert_int_equal(sub->keys[k].len, c->key_len);
        subs_unref(sub);
    }
}

/* Boundary values that must still be accepted. */
static const char *const valid_edges[] = {
    DOC(",\"max_attempts\":1,\"timeout_ms\":100,\"max_in_flight\":1,\"rate_limit_per_s\":0"),
    DOC(",\"max_attempts\":100,\"timeout_ms\":300000,\"max_in_flight\":10000,"
        "\"rate_limit_per_s\":1000000"),
    DOC(",\"max_attempts\":5.0"),
    DOC(",\"status\":\"active\",\"disabled_reason\":\"was paused\""),
    DOC(",\"method\":\"PATCH\""),
    DOC(",\"metadata\":{}"),
    DOC(",\"name\":\"\",\"description\":\"\""),
    DOC(",\"headers\":{}"),
    /* standard-webhooks has no configurable header, so X-Signature is a custom header there. */
    DOC(",\"headers\":{\"X-Signature\":\"custom\"}"),
    DOC(",\"headers\":{\"X-Empty\":\"\"}"),
    "{" HEAD ",\"events\":[\"a.*\",\"*\",\"a..*\",\"post.created\",\"post.created\"]" SECRETS "}",
    "{\"id\":\"s\",\"tenant\":\"t\",\"url\":\"http://localhost:8080\",\"events\":[\"x\"]" SECRETS
    "}",
    "{\"id\":\"s\",\"tenant\":\"t\",\"url\":\"http://[::1]:8080/a\",\"events\":[\"x\"]" SECRETS "}",
    "{\"id\":\"s\",\"tenant\":\"t\",\"url\":\"HTTPS://EXAMPLE.COM/\",\"events\":[\"x\"]" SECRETS
    "}",
    "{\"id\":\"s\",\"tenant\":\"t\",\"url\":\"https://example.com/a@b\",\"events\":[\"x\"]" SECRETS
    "}",
    " {" HEAD EVENTS SECRETS "} \n",
};

static void test_valid_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(valid_edges); i++)
        subs_unref(parse_ok(valid_edges[i]));
}

/* ---- refused documents --------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *doc;
    const char *field;
};

static const struct bad_case bad_cases[] = {
    {"not JSON", "{\"id\":", "(document)"},
    {"array document", "[" DOC("") "]", "(document)"},
    {"trailing garbage", DOC("") " x", "(document)"},
    {"two documents", DOC("") DOC(""), "(document)"},
    /* Found by fuzz_subs: cJSON keeps repeats, and disabling rewrote only the first. */
    {"repeated status", DOC(",\"status\":\"active\",\"status\":\"disabled\""), "status"},
    {"repeated url", "{" HEAD ",\"url\":\"http://169.254.169.254/\"" EVENTS SECRETS "}", "url"},
    /* \u0000 would end the C string early: a header value, URL or secret cut short. */
    {"NUL in a header value", DOC(",\"headers\":{\"X-A\":\"a\\u0000b\"}"), "(document)"},
    {"NUL in a secret",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"abc\\u0000def\"]}",
     "(document)"},
    {"unknown field", DOC(",\"colour\":\"red\""), "colour"},
    {"empty member name", DOC(",\"\":[\"k\"]"), "(document)"}, /* found by fuzz_subs */
    {"misspelt field", DOC(",\"max_attempt\":3"), "max_attempt"},
    {"missing id", "{\"tenant\":\"o\",\"url\":\"https://e.com\",\"events\":[\"x\"]" SECRETS "}",
     "id"},
    {"numeric id",
     "{\"id\":1,\"tenant\":\"o\",\"url\":\"https://e.com\",\"events\":[\"x\"]" SECRETS "}", "id"},
    {"empty id",
     "{\"id\":\"\",\"tenant\":\"o\",\"url\":\"https://e.com\",\"events\":[\"x\"]" SECRETS "}",
     "id"},
    {"id with a space",
     "{\"id\":\"a b\",\"tenant\":\"o\",\"url\":\"https://e.com\","
     "\"events\":[\"x\"]" SECRETS "}",
     "id"},
    {"id with a slash",
     "{\"id\":\"a/b\",\"tenant\":\"o\",\"url\":\"https://e.com\","
     "\"events\":[\"x\"]" SECRETS "}",
     "id"},
    {"missing tenant", "{\"id\":\"s\",\"url\":\"https://e.com\",\"events\":[\"x\"]" SECRETS "}",
     "tenant"},
    {"tenant with a space",
     "{\"id\":\"s\",\"tenant\":\"o 1\",\"url\":\"https://e.com\","
     "\"events\":[\"x\"]" SECRETS "}",
     "tenant"},
    {"numeric name", DOC(",\"name\":1"), "name"},
    {"numeric description", DOC(",\"description\":false"), "description"},
    {"array metadata", DOC(",\"metadata\":[]"), "metadata"},
    {"missing url", "{\"id\":\"s\",\"tenant\":\"o\",\"events\":[\"x\"]" SECRETS "}", "url"},
    {"numeric url", "{\"id\":\"s\",\"tenant\":\"o\",\"url\":5,\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"ftp url",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"ftp://e.com/x\",\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"file url",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"file:///etc/passwd\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"gopher url",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"gopher://e.com/\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"relative url",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"/hook\",\"events\":[\"x\"]" SECRETS "}", "url"},
    {"url without scheme",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"example.com/hook\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with user and password",
     "{\"id\":\"s\",\"tenant\":\"o\","
     "\"url\":\"https://user:pw@e.com/\",\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with user only",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://user@e.com/\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with password only",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://:pw@e.com/\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url without host",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https:///path\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with one slash",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"http:/e.com/x\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with an empty authority",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://?x=1\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url of a scheme only",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with a space",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://e.com/a b\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with a space in the host",
     "{\"id\":\"s\",\"tenant\":\"o\","
     "\"url\":\"https://exa mple.com/\",\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with a newline",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://e.com/\\n\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"url with a bad port",
     "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\"https://e.com:99999/\","
     "\"events\":[\"x\"]" SECRETS "}",
     "url"},
    {"lower-case method", DOC(",\"method\":\"post\""), "method"},
    {"GET method", DOC(",\"method\":\"GET\""), "method"},
    {"numeric method", DOC(",\"method\":1"), "method"},
    {"empty content type", DOC(",\"content_type\":\"\""), "content_type"},
    {"content type with CR LF", DOC(",\"content_type\":\"text/plain\\r\\nX-A: b\""),
     "content_type"},
    {"missing events", "{" HEAD SECRETS "}", "events"},
    {"empty events", "{" HEAD ",\"events\":[]" SECRETS "}", "events"},
    {"events as a string", "{" HEAD ",\"events\":\"post.created\"" SECRETS "}", "events"},
    {"events as an object", "{" HEAD ",\"events\":{\"a\":\"b\"}" SECRETS "}", "events"},
    {"numeric event", "{" HEAD ",\"events\":[1]" SECRETS "}", "events[0]"},
    {"second event with a space", "{" HEAD ",\"events\":[\"a\",\"b c\"]" SECRETS "}", "events[1]"},
    {"empty event", "{" HEAD ",\"events\":[\"a\",\"b\",\"\"]" SECRETS "}", "events[2]"},
    {"star without a dot", "{" HEAD ",\"events\":[\"post*\"]" SECRETS "}", "events[0]"},
    {"star in the middle", "{" HEAD ",\"events\":[\"post.*.x\"]" SECRETS "}", "events[0]"},
    {"leading star", "{" HEAD ",\"events\":[\"*.created\"]" SECRETS "}", "events[0]"},
    {"dot star alone", "{" HEAD ",\"events\":[\".*\"]" SECRETS "}", "events[0]"},
    {"double star", "{" HEAD ",\"events\":[\"**\"]" SECRETS "}", "events[0]"},
    {"paused status", DOC(",\"status\":\"paused\""), "status"},
    {"boolean status", DOC(",\"status\":true"), "status"},
    {"numeric disabled reason", DOC(",\"disabled_reason\":3"), "disabled_reason"},
    {"unknown scheme", DOC(",\"signature\":\"hmac-sha512\""), "signature"},
    {"upper-case scheme", DOC(",\"signature\":\"STANDARD-WEBHOOKS\""), "signature"},
    {"header with standard-webhooks", DOC(",\"signature_header\":\"X-Sig\""), "signature_header"},
    {"header with ed25519",
     "{" HEAD EVENTS ",\"signature\":\"standard-webhooks-ed25519\","
     "\"signature_header\":\"X-Sig\"}",
     "signature_header"},
    {"header with none", "{" HEAD EVENTS ",\"signature\":\"none\",\"signature_header\":\"X-Sig\"}",
     "signature_header"},
    {"header name with a space",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"k\"],\"signature_header\":\"X Sig\"}",
     "signature_header"},
    {"empty header name",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"k\"],\"signature_header\":\"\"}",
     "signature_header"},
    {"numeric header name",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"k\"],\"signature_header\":7}",
     "signature_header"},
    {"Content-Type as signature header",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"k\"],\"signature_header\":\"content-type\"}",
     "signature_header"},
    {"webhook-signature as signature header",
     "{" HEAD EVENTS ",\"signature\":\"timestamped\","
     "\"secrets\":[\"k\"],"
     "\"signature_header\":\"Webhook-Signature\"}",
     "signature_header"},
    {"missing secrets", "{" HEAD EVENTS "}", "secrets"},
    {"empty secrets", "{" HEAD EVENTS ",\"secrets\":[]}", "secrets"},
    {"secrets as a string", "{" HEAD EVENTS ",\"secrets\":\"" SECRET "\"}", "secrets"},
    {"hmac without secrets", "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\"}", "secrets"},
    {"none with a secret", "{" HEAD EVENTS ",\"signature\":\"none\",\"secrets\":[\"k\"]}",
     "secrets"},
    {"numeric secret", "{" HEAD EVENTS ",\"secrets\":[5]}", "secrets[0]"},
    {"secret without whsec_",
     "{" HEAD EVENTS ",\"secrets\":[\"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]}", "secrets[0]"},
    {"second secret bad", "{" HEAD EVENTS ",\"secrets\":[\"" SECRET "\",\"whsec_!!!!\"]}",
     "secrets[1]"},
    {"whsec_ secret too short", "{" HEAD EVENTS ",\"secrets\":[\"whsec_dGVzdA==\"]}", "secrets[0]"},
    {"empty whsec_ secret", "{" HEAD EVENTS ",\"secrets\":[\"whsec_\"]}", "secrets[0]"},
    {"empty plain secret", "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\",\"secrets\":[\"\"]}",
     "secrets[0]"},
    {"ed25519 key for hmac",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=\"]}",
     "secrets[0]"},
    {"whsec_ for ed25519",
     "{" HEAD EVENTS ",\"signature\":\"standard-webhooks-ed25519\","
     "\"secrets\":[\"" SECRET "\"]}",
     "secrets[0]"},
    {"public key for ed25519",
     "{" HEAD EVENTS ",\"signature\":\"standard-webhooks-ed25519\","
     "\"secrets\":[\"whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=\"]}",
     "secrets[0]"},
    {"unknown payload", DOC(",\"payload\":\"xml\""), "payload"},
    {"numeric payload", DOC(",\"payload\":0"), "payload"},
    {"message-field without payload",
     "{" HEAD EVENTS ",\"signature\":\"message-field\","
     "\"secrets\":[\"k\"]}",
     "payload"},
    {"message-field with raw payload",
     "{" HEAD EVENTS ",\"signature\":\"message-field\","
     "\"secrets\":[\"k\"],\"payload\":\"raw\"}",
     "payload"},
    {"headers as an array", DOC(",\"headers\":[\"X-Foo: 1\"]"), "headers"},
    {"numeric header value", DOC(",\"headers\":{\"X-Foo\":5}"), "headers.X-Foo"},
    {"null header value", DOC(",\"headers\":{\"X-Foo\":null}"), "headers.X-Foo"},
    {"header value with CR LF", DOC(",\"headers\":{\"X-Foo\":\"a\\r\\nEvil: 1\"}"),
     "headers.X-Foo"},
    {"header value with LF", DOC(",\"headers\":{\"X-Foo\":\"a\\nb\"}"), "headers.X-Foo"},
    {"header value with CR", DOC(",\"headers\":{\"X-Foo\":\"a\\rb\"}"), "headers.X-Foo"},
    {"header value with DEL", DOC(",\"headers\":{\"X-Foo\":\"a\x7f\"}"), "headers.X-Foo"},
    {"header name with a space", DOC(",\"headers\":{\"X Foo\":\"1\"}"), "headers.X Foo"},
    {"header name with a colon", DOC(",\"headers\":{\"X-Foo:\":\"1\"}"), "headers.X-Foo:"},
    {"empty header name", DOC(",\"headers\":{\"\":\"1\"}"), "headers."},
    {"webhook-signature header", DOC(",\"headers\":{\"webhook-signature\":\"v1,x\"}"),
     "headers.webhook-signature"},
    {"webhook-id header", DOC(",\"headers\":{\"Webhook-Id\":\"x\"}"), "headers.Webhook-Id"},
    {"Host header", DOC(",\"headers\":{\"Host\":\"internal\"}"), "headers.Host"},
    {"Content-Length header", DOC(",\"headers\":{\"Content-Length\":\"1\"}"),
     "headers.Content-Length"},
    {"Content-Type header", DOC(",\"headers\":{\"content-type\":\"text/plain\"}"),
     "headers.content-type"},
    {"Transfer-Encoding header", DOC(",\"headers\":{\"Transfer-Encoding\":\"chunked\"}"),
     "headers.Transfer-Encoding"},
    {"User-Agent header", DOC(",\"headers\":{\"User-Agent\":\"x\"}"), "headers.User-Agent"},
    {"the scheme's default header",
     "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\","
     "\"secrets\":[\"k\"],\"headers\":{\"x-signature\":\"x\"}}",
     "headers.x-signature"},
    {"the configured signature header",
     "{" HEAD EVENTS ",\"signature\":\"timestamped\","
     "\"secrets\":[\"k\"],\"signature_header\":\"X-My-Sig\","
     "\"headers\":{\"x-my-sig\":\"x\"}}",
     "headers.x-my-sig"},
    {"duplicate header", DOC(",\"headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}"), "headers.x-a"},
    {"max_attempts 0", DOC(",\"max_attempts\":0"), "max_attempts"},
    {"max_attempts 101", DOC(",\"max_attempts\":101"), "max_attempts"},
    {"max_attempts fraction", DOC(",\"max_attempts\":1.5"), "max_attempts"},
    {"max_attempts string", DOC(",\"max_attempts\":\"5\""), "max_attempts"},
    {"max_attempts huge", DOC(",\"max_attempts\":1e300"), "max_attempts"},
    {"max_attempts hugely negative", DOC(",\"max_attempts\":-1e300"), "max_attempts"},
    {"timeout_ms 99", DOC(",\"timeout_ms\":99"), "timeout_ms"},
    {"timeout_ms 300001", DOC(",\"timeout_ms\":300001"), "timeout_ms"},
    {"timeout_ms null", DOC(",\"timeout_ms\":null"), "timeout_ms"},
    {"max_in_flight 0", DOC(",\"max_in_flight\":0"), "max_in_flight"},
    {"max_in_flight 10001", DOC(",\"max_in_flight\":10001"), "max_in_flight"},
    {"rate_limit_per_s -1", DOC(",\"rate_limit_per_s\":-1"), "rate_limit_per_s"},
    {"rate_limit_per_s 1000001", DOC(",\"rate_limit_per_s\":1000001"), "rate_limit_per_s"},
    {"numeric created_at", DOC(",\"created_at\":1727807403"), "created_at"},
    {"numeric updated_at", DOC(",\"updated_at\":{}"), "updated_at"},
};

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(bad_cases); i++)
        expect_refused(bad_cases[i].doc, strlen(bad_cases[i].doc), bad_cases[i].field,
                       bad_cases[i].name);
}

/* ---- lengths and counts at and past their limits ------------------------- */

/* Appends n copies of the pattern into b. */
static void append_repeat(struct buf *b, const char *pattern, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf_appends(b, pattern), 0);
}

static void test_limits(void **state)
{
    struct buf b;
    struct sub *sub;
    (void)state;
    buf_init(&b, 1 << 20);

    for (size_t n = SUBS_ID_MAX; n <= SUBS_ID_MAX + 1; n++) {
        buf_reset(&b);
        buf_appends(&b, "{\"id\":\"");
        append_repeat(&b, "i", n);
        buf_appends(&b,
                    "\",\"tenant\":\"o\",\"url\":\"https://e.com\",\"events\":[\"x\"]" SECRETS "}");
        if (n == SUBS_ID_MAX) {
            sub = parse_ok(b.data);
            assert_int_equal(strlen(sub->id), SUBS_ID_MAX);
            subs_unref(sub);
        } else {
            expect_refused(b.data, b.len, "id", "id of 129");
        }
    }

    for (size_t n = 256; n <= 257; n++) {
        buf_reset(&b);
        buf_appends(&b, "{\"id\":\"s\",\"tenant\":\"");
        append_repeat(&b, "t", n);
        buf_appends(&b, "\",\"url\":\"https://e.com\",\"events\":[\"x\"]" SECRETS "}");
        if (n == 256)
            subs_unref(parse_ok(b.data));
        else
            expect_refused(b.data, b.len, "tenant", "tenant of 257");
    }

    /* A URL of exactly SUBS_URL_MAX characters, then one more. */
    for (size_t n = SUBS_URL_MAX; n <= SUBS_URL_MAX + 1; n++) {
        static const char prefix[] = "https://example.com/";
        buf_reset(&b);
        buf_appends(&b, "{\"id\":\"s\",\"tenant\":\"o\",\"url\":\""
                        "https://example.com/");
        append_repeat(&b, "p", n - (sizeof(prefix) - 1));
        buf_appends(&b, "\",\"events\":[\"x\"]" SECRETS "}");
        if (n == SUBS_URL_MAX) {
            sub = parse_ok(b.data);
            assert_int_equal(strlen(sub->url), SUBS_URL_MAX);
            subs_unref(sub);
        } else {
            expect_refused(b.data, b.len, "url", "url of 2049");
        }
    }

    for (size_t n = SUBS_MAX_EVENTS; n <= SUBS_MAX_EVENTS + 1; n++) {
        buf_reset(&b);
        buf_appends(&b, "{" HEAD ",\"events\":[");
        for (size_t i = 0; i < n; i++)
            buf_appendf(&b, "%s\"type.%zu\"", i ? "," : "", i);
        buf_appends(&b, "]" SECRETS "}");
        if (n == SUBS_MAX_EVENTS) {
            sub = parse_ok(b.data);
            assert_int_equal(sub->events.n, SUBS_MAX_EVENTS);
            assert_string_equal(sub->events.v[255], "type.255");
            subs_unref(sub);
        } else {
            expect_refused(b.data, b.len, "events", "257 events");
        }
    }

    /* An event pattern of 256 characters, then 257. */
    for (size_t n = 256; n <= 257; n++) {
        buf_reset(&b);
        buf_appends(&b, "{" HEAD ",\"events\":[\"");
        append_repeat(&b, "e", n - 2);
        buf_appends(&b, ".*\"]" SECRETS "}");
        if (n == 256)
            subs_unref(parse_ok(b.data));
        else
            expect_refused(b.data, b.len, "events[0]", "pattern of 257");
    }

    for (size_t n = SUBS_MAX_SECRETS; n <= SUBS_MAX_SECRETS + 1; n++) {
        buf_reset(&b);
        buf_appends(&b, "{" HEAD EVENTS ",\"secrets\":[");
        for (size_t i = 0; i < n; i++)
            buf_appendf(&b, "%s\"" SECRET "\"", i ? "," : "");
        buf_appends(&b, "]}");
        if (n == SUBS_MAX_SECRETS) {
            sub = parse_ok(b.data);
            assert_int_equal(sub->nkeys, SUBS_MAX_SECRETS);
            subs_unref(sub);
        } else {
            expect_refused(b.data, b.len, "secrets", "11 secrets");
        }
    }

    for (size_t n = SUBS_MAX_HEADERS; n <= SUBS_MAX_HEADERS + 1; n++) {
        buf_reset(&b);
        buf_appends(&b, DOC(",\"headers\":{"));
        b.len--; /* drop the closing brace of DOC */
        for (size_t i = 0; i < n; i++)
            buf_appendf(&b, "%s\"X-H%zu\":\"v%zu\"", i ? "," : "", i, i);
        buf_appends(&b, "}}");
        if (n == SUBS_MAX_HEADERS) {
            sub = parse_ok(b.data);
            assert_int_equal(sub->nheaders, SUBS_MAX_HEADERS);
            assert_string_equal(sub->headers[31].key, "X-H31");
            assert_string_equal(sub->headers[31].value, "v31");
            subs_unref(sub);
        } else {
            expect_refused(b.data, b.len, "headers", "33 headers");
        }
    }

    /* Header names: 128 characters pass, 129 do not. */
    for (size_t n = 128; n <= 129; n++) {
        char field[160];
        buf_reset(&b);
        buf_appends(&b, DOC(",\"headers\":{\""));
        b.len--;
        append_repeat(&b, "h", n);
        buf_appends(&b, "\":\"v\"}}");
        if (n == 128) {
            subs_unref(parse_ok(b.data));
        } else {
            /* The field names at most 128 characters of the header. */
            memcpy(field, "headers.", 8);
            memset(field + 8, 'h', 128);
            field[136] = '\0';
            expect_refused(b.data, b.len, field, "header name of 129");
        }
    }

    /* Header values: 4096 bytes pass, 4097 do not. */
    for (size_t n = 4096; n <= 4097; n++) {
        buf_reset(&b);
        buf_appends(&b, DOC(",\"headers\":{\"X-Big\":\""));
        b.len--;
        append_repeat(&b, "v", n);
        buf_appends(&b, "\"}}");
        if (n == 4096)
            subs_unref(parse_ok(b.data));
        else
            expect_refused(b.data, b.len, "headers.X-Big", "header value of 4097");
    }

    /* name, description and disabled_reason: 1024 pass, 1025 do not. */
    {
        static const char *const fields[] = {"name", "description", "disabled_reason"};
        for (size_t f = 0; f < N(fields); f++) {
            for (size_t n = 1024; n <= 1025; n++) {
                buf_reset(&b);
                buf_appendf(&b, DOC(",\"%s\":\""), fields[f]);
                b.len--;
                append_repeat(&b, "n", n);
                buf_appends(&b, "\"}");
                if (n == 1024)
                    subs_unref(parse_ok(b.data));
                else
                    expect_refused(b.data, b.len, fields[f], fields[f]);
            }
        }
    }

    /*
     * Signature header names: what the signer can send (63 characters) is
     * accepted; one more is refused here rather than failing every delivery.
     */
    for (size_t n = 63; n <= 64; n++) {
        buf_reset(&b);
        buf_appends(&b, "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\",\"secrets\":[\"k\"],"
                        "\"signature_header\":\"");
        append_repeat(&b, "S", n);
        buf_appends(&b, "\"}");
        if (n == 63) {
            sub = parse_ok(b.data);
            assert_int_equal(strlen(sub->signature_header), 63);
            subs_unref(sub);
        } else {
            expect_refused(b.data, b.len, "signature_header", "signature header of 64");
        }
    }
    buf_release(&b);
}

/* The signer accepts every subscription the parser accepts. */
static void test_accepted_subs_can_sign(void **state)
{
    static const char *const docs[] = {
        DOC(""),
        "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-hex\",\"secrets\":[\"k\"],"
        "\"signature_header\":\"X-Hub-Signature-256\"}",
        "{" HEAD EVENTS ",\"signature\":\"timestamped\",\"secrets\":[\"k\"],"
        "\"signature_header\":\"x~!#$%&'*+-.^_`|\"}",
        "{" HEAD EVENTS ",\"signature\":\"hmac-sha256-base64\",\"secrets\":[\"k\"]}",
    };
    (void)state;
    for (size_t i = 0; i < N(docs); i++) {
        struct sub *sub = parse_ok(docs[i]);
        struct sign_input in = {"evt_1", 1700000000, "{}", 2, NULL, 0};
        struct sign_headers sh;
        char why[256] = "";
        int rc = sign_request_check(sub->scheme, sub->signature_header, &in, why, sizeof(why));
        if (rc)
            fail_msg("doc %zu: sign_request_check: %s", i, why);
        assert_int_equal(
            sign_request(sub->scheme, sub->signature_header, sub->keys, sub->nkeys, &in, &sh), 0);
        assert_true(sh.n >= 1);
        sign_headers_release(&sh);
        subs_unref(sub);
    }
}

/* ---- matching ------------------------------------------------------------ */

static void test_pattern_matches(void **state)
{
    static const struct {
        const char *pattern, *type;
        bool match;
    } cases[] = {
        {"*", "post.created", true},
        {"*", "x", true},
        {"post.*", "post.created", true},
        {"post.*", "post.a.b", true},
        {"post.*", "post.", true},
        {"post.*", "post", false},
        {"post.*", "posts.x", false},
        {"post.*", "pos", false},
        {"post.*", "comment.created", false},
        {"post.*", "xpost.created", false},
        {"post.created", "post.created", true},
        {"post.created", "post.created.v2", false},
        {"post.created", "post.create", false},
        {"post.created", "Post.created", false},
        {"post.created", "post.*", false},
        {"a.b.*", "a.b.c", true},
        {"a.b.*", "a.bc", false},
        {"a.b.*", "a.c.d", false},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        if (subs_pattern_matches(cases[i].pattern, cases[i].type) != cases[i].match)
            fail_msg("pattern \"%s\" vs \"%s\": want %s", cases[i].pattern, cases[i].type,
                     cases[i].match ? "match" : "no match");
}

static void test_subs_matches(void **state)
{
    static const char active[] = "{" HEAD ",\"events\":[\"post.*\",\"user.deleted\"]" SECRETS "}";
    static const char disabled[] =
        "{" HEAD ",\"events\":[\"*\"],\"status\":\"disabled\"" SECRETS "}";
    static const struct {
        const char *type;
        bool match;
    } cases[] = {
        {"post.created", true},  {"post.x.y", true}, {"user.deleted", true},
        {"user.created", false}, {"post", false},    {"comment.created", false},
    };
    struct sub *a = parse_ok(active), *d = parse_ok(disabled);
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        if (subs_matches(a, cases[i].type) != cases[i].match)
            fail_msg("active sub vs \"%s\": want %s", cases[i].type,
                     cases[i].match ? "match" : "no match");
        /* A disabled subscription matches nothing, even with "*". */
        assert_false(subs_matches(d, cases[i].type));
    }
    subs_unref(a);
    subs_unref(d);
}

static void test_header_reserved(void **state)
{
    static const struct {
        const char *name, *sig;
        bool reserved;
    } cases[] = {
        {"Host", NULL, true},
        {"CONTENT-LENGTH", NULL, true},
        {"Webhook-Timestamp", NULL, true},
        {"proxy-authorization", NULL, true},
        {"Authorization", NULL, false},
        {"X-Signature", NULL, false},
        {"X-Signature", "x-signature", true},
        {"X-Other", "X-Signature", false},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        if (subs_header_reserved(cases[i].name, cases[i].sig) != cases[i].reserved)
            fail_msg("header \"%s\": want %s", cases[i].name,
                     cases[i].reserved ? "reserved" : "allowed");
}

static void test_refcount(void **state)
{
    struct sub *sub = parse_ok(DOC(""));
    (void)state;
    assert_ptr_equal(subs_ref(sub), sub);
    assert_int_equal(sub->refs, 2);
    subs_unref(sub);
    assert_int_equal(sub->refs, 1);
    assert_string_equal(sub->id, "sub_1");
    subs_unref(sub);
    subs_unref(NULL);
}

/* ---- auto-disable -------------------------------------------------------- */

static void test_disable_doc(void **state)
{
    static const char *const docs[] = {
        DOC(""),
        DOC(",\"status\":\"active\",\"name\":\"n\""),
        DOC(",\"status\":\"disabled\",\"disabled_reason\":\"old reason\""),
    };
    (void)state;
    for (size_t i = 0; i < N(docs); i++) {
        char *out = subs_disable_doc(docs[i], strlen(docs[i]), "endpoint returned 410 \"Gone\"");
        struct sub *sub;
        assert_non_null(out);
        sub = parse_ok(out);
        assert_false(sub->active);
        assert_string_equal(sub->disabled_reason, "endpoint returned 410 \"Gone\"");
        /* Everything else survives. */
        assert_string_equal(sub->id, "sub_1");
        assert_string_equal(sub->url, "https://example.com/hook");
        assert_int_equal(sub->nkeys, 1);
        /* Exactly one status member: a reader taking the first or the last agrees. */
        assert_non_null(strstr(out, "\"status\":\"disabled\""));
        assert_null(strstr(strstr(out, "\"status\"") + 1, "\"status\""));
        assert_null(strstr(out, "old reason"));
        subs_unref(sub);
        free(out);
    }
    assert_null(subs_disable_doc("{nope", 5, "r"));
    assert_null(subs_disable_doc("[1,2]", 5, "r"));
    assert_null(subs_disable_doc("\"s\"", 3, "r"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_minimal_document_defaults),
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_valid_edges),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_accepted_subs_can_sign),
        cmocka_unit_test(test_pattern_matches),
        cmocka_unit_test(test_subs_matches),
        cmocka_unit_test(test_header_reserved),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_disable_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
