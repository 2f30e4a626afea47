/*
 * Unit tests for attempts.c: the attempt record built for one job (valid
 * JSON, every field with its value, optional members present only when they
 * apply, no secret or signature header value anywhere in it), and the text
 * sanitizer that turns any response bytes into a valid JSON string body
 * (invalid UTF-8 becomes U+FFFD, control characters are escaped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "herald/attempts.h"
#include "herald/buf.h"
#include "herald/err.h"
#include "herald/event.h"
#include "herald/job.h"
#include "herald/subs.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(x) x, sizeof(x) - 1

#define SECRET_B64 "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET     "whsec_" SECRET_B64

/* Strict UTF-8 check, written independently of attempts.c's decoder. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* ---- fixtures ------------------------------------------------------------ */

struct fixture {
    struct event *ev;
    struct sub *sub;
    struct job *job;
};

static const char event_json[] =
    "{\"id\":\"evt_\\\"q\\\\\",\"type\":\"post.created\",\"tenant\":\"org_1\",\"data\":{}}";

static int setup(void **state)
{
    static const char sub_json[] =
        "{\"id\":\"sub_1\",\"tenant\":\"org_1\",\"url\":\"https://hooks.example.com/in?a=1\","
        "\"method\":\"PATCH\",\"events\":[\"post.*\"],\"secrets\":[\"" SECRET "\"],"
        "\"headers\":{\"Authorization\":\"Bearer top-secret-token\"}}";
    struct fixture *f = calloc(1, sizeof(*f));
    enum event_reject reject;
    char field[64], why[128];
    if (!f)
        return -1;
    if (event_parse(event_json, sizeof(event_json) - 1, NULL, 0, 1 << 20, &f->ev, &reject, NULL,
                    0) ||
        subs_parse(sub_json, sizeof(sub_json) - 1, &f->sub, field, sizeof(field), why, sizeof(why)))
        return -1;
    f->job = job_new(f->ev, f->sub, NULL, 3, 1727807000000, 16);
    if (!f->job)
        return -1;
    /* The job holds its own references now. */
    event_unref(f->ev);
    subs_unref(f->sub);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    job_free(f->job);
    free(f);
    return 0;
}

static cJSON *build(const struct job *job, const char *outcome, int64_t next_ms,
                    const struct attempt_source *src, struct buf *b)
{
    cJSON *root;
    buf_init(b, 1 << 20);
    assert_int_equal(attempts_build(job, outcome, next_ms, src, b), 0);
    assert_true(valid_utf8((const unsigned char *)b->data, b->len));
    root = cJSON_ParseWithLength(b->data, b->len);
    if (!root)
        fail_msg("record is not JSON: %s", b->data);
    return root;
}

static void expect_str(const cJSON *root, const char *name, const char *want)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!cJSON_IsString(m))
        fail_msg("member \"%s\" missing or not a string", name);
    if (strcmp(m->valuestring, want) != 0)
        fail_msg("member \"%s\": \"%s\", want \"%s\"", name, m->valuestring, want);
}

static void expect_num(const cJSON *root, const char *name, double want)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!cJSON_IsNumber(m))
        fail_msg("member \"%s\" missing or not a number", name);
    if (m->valuedouble != want)
        fail_msg("member \"%s\": %f, want %f", name, m->valuedouble, want);
}

/* ---- attempts_build ------------------------------------------------------ */

static void test_build_retry_record(void **state)
{
    struct fixture *f = *state;
    struct job *job = f->job;
    struct attempt_source src = {"herald.events", 7, 123456789012LL};
    const cJSON *req;
    cJSON *root;
    struct buf b;

    job->result.status = 503;
    job->latency_us = 12345;
    job->sent_at_ms = 1727807403123;
    snprintf(job->error, sizeof(job->error), "HTTP 503");
    assert_int_equal(buf_appends(&job->response, "busy, try later"), 0);
    root = build(job, "retry", 1727807703000, &src, &b);

    expect_str(root, "event_id", "evt_\"q\\");
    expect_str(root, "webhook_id", "evt_\"q\\");
    expect_str(root, "event_type", "post.created");
    expect_str(root, "tenant", "org_1");
    expect_str(root, "subscription_id", "sub_1");
    expect_num(root, "attempt", 3);
    expect_str(root, "url", "https://hooks.example.com/in?a=1");
    expect_str(root, "method", "PATCH");
    expect_num(root, "status", 503);
    expect_str(root, "outcome", "retry");
    expect_str(root, "error", "HTTP 503");
    expect_num(root, "latency_ms", 12.345);
    expect_str(root, "sent_at", "2024-10-01T18:30:03.123Z");
    expect_str(root, "next_attempt_at", "2024-10-01T18:35:03.000Z");
    expect_str(root, "response_body", "busy, try later");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "response_body_truncated")));
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "reason"));
    req = cJSON_GetObjectItemCaseSensitive(root, "request");
    assert_true(cJSON_IsObject(req));
    expect_str(req, "topic", "herald.events");
    expect_num(req, "partition", 7);
    expect_num(req, "offset", 123456789012.0);
    expect_num(req, "bytes", (double)(sizeof(event_json) - 1));
    assert_int_equal(cJSON_GetArraySize(root), 17);

    /* Neither a secret (encoded or not) nor a custom header value is in the record. */
    assert_null(strstr(b.data, "whsec_"));
    assert_null(strstr(b.data, SECRET_B64));
    assert_null(strstr(b.data, "top-secret-token"));
    assert_null(strstr(b.data, "Authorization"));
    cJSON_Delete(root);
    buf_release(&b);
}

static void test_build_final_record(void **state)
{
    struct fixture *f = *state;
    struct job *job = f->job;
    cJSON *root;
    struct buf b;

    job->result.status = 0;
    job->latency_us = 0;
    job->sent_at_ms = 0;
    snprintf(job->error, sizeof(job->error), "Connection refused \"x\"\n\x01");
    job->decision.reason = "max_attempts_exhausted";
    /* A rendered body is what was sent, so its size is reported. */
    job->body = strdup("{\"message\":\"x\"}");
    assert_non_null(job->body);
    job->body_len = strlen(job->body);
    {
        struct attempt_source src = {"herald.retry.5m", 0, 0};
        root = build(job, "dead_lettered", 0, &src, &b);
    }
    expect_str(root, "outcome", "dead_lettered");
    expect_str(root, "reason", "max_attempts_exhausted");
    expect_str(root, "error", "Connection refused \"x\"\n\x01");
    expect_num(root, "status", 0);
    expect_num(root, "latency_ms", 0);
    expect_str(root, "sent_at", "1970-01-01T00:00:00.000Z");
    expect_str(root, "response_body", "");
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "next_attempt_at"));
    expect_num(cJSON_GetObjectItemCaseSensitive(root, "request"), "bytes", 15);
    assert_non_null(strstr(b.data, "\\n\\u0001"));
    cJSON_Delete(root);
    buf_release(&b);

    /* Without a source there is no request member. */
    root = build(job, "dead_lettered", 0, NULL, &b);
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "request"));
    cJSON_Delete(root);
    buf_release(&b);
}

static void test_build_truncated_flag(void **state)
{
    static const struct {
        size_t len;
        bool truncated;
    } cases[] = {{0, false}, {15, false}, {16, true}};
    struct fixture *f = *state;
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct buf b;
        cJSON *root;
        char body[32];
        memset(body, 'r', sizeof(body));
        buf_reset(&f->job->response);
        assert_int_equal(buf_append(&f->job->response, body, cases[i].len), 0);
        root = build(f->job, "retry", 0, NULL, &b);
        assert_int_equal(
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "response_body_truncated")),
            cases[i].truncated);
        assert_int_equal(
            strlen(cJSON_GetObjectItemCaseSensitive(root, "response_body")->valuestring),
            cases[i].len);
        cJSON_Delete(root);
        buf_release(&b);
    }
    /* The response buffer stops at its max, so a longer body is cut and flagged. */
    assert_int_equal(buf_appends(&f->job->response, "x"), HERALD_ETOOBIG);
}

static void test_build_invalid_utf8_response(void **state)
{
    struct fixture *f = *state;
    struct buf b;
    cJSON *root;
    buf_reset(&f->job->response);
    assert_int_equal(buf_append(&f->job->response, S("ok\xff\xc0\xaf\"\x01")), 0);
    root = build(f->job, "retry", 0, NULL, &b);
    expect_str(root, "response_body", "ok\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"\x01");
    cJSON_Delete(root);
    buf_release(&b);
}

static void test_build_too_big(void **state)
{
    struct fixture *f = *state;
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(attempts_build(f->job, "retry", 0, NULL, &b), HERALD_ETOOBIG);
    buf_release(&b);
}

/* ---- attempts_append_text ------------------------------------------------ */

#define FFFD "\xef\xbf\xbd"

struct text_case {
    const char *name;
    const char *in;
    size_t inlen;
    const char *out;
};

static const struct text_case text_cases[] = {
    {"empty", S(""), ""},
    {"ASCII", S("hello, world"), "hello, world"},
    {"quote and backslash", S("a\"b\\c"), "a\\\"b\\\\c"},
    {"short escapes", S("\n\t\r\b\f"), "\\n\\t\\r\\b\\f"},
    {"other controls", S("\x01\x1f"), "\\u0001\\u001f"},
    {"NUL byte", S("a\0b"), "a\\u0000b"},
    {"DEL is valid JSON", S("\x7f"), "\x7f"},
    {"slash is not escaped", S("a/b"), "a/b"},
    {"2-byte", S("caf\xc3\xa9"), "caf\xc3\xa9"},
    {"3-byte", S("\xe2\x82\xac"), "\xe2\x82\xac"},
    {"4-byte", S("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80"},
    {"largest code point", S("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf"},
    {"last before surrogates", S("\xed\x9f\xbf"), "\xed\x9f\xbf"},
    {"first after surrogates", S("\xee\x80\x80"), "\xee\x80\x80"},
    {"0xFF", S("\xff"), FFFD},
    {"0xFE",
     S("a\xfe"
       "b"),
     "a" FFFD "b"},
    {"lone continuation", S("\x80"), FFFD},
    {"overlong slash (2 bytes)", S("\xc0\xaf"), FFFD FFFD},
    {"overlong NUL (2 bytes)", S("\xc0\x80"), FFFD FFFD},
    {"overlong 2-byte max", S("\xc1\xbf"), FFFD FFFD},
    {"overlong slash (3 bytes)", S("\xe0\x80\xaf"), FFFD FFFD FFFD},
    {"overlong slash (4 bytes)", S("\xf0\x80\x80\xaf"), FFFD FFFD FFFD FFFD},
    {"high surrogate", S("\xed\xa0\x80"), FFFD FFFD FFFD},
    {"low surrogate", S("\xed\xbf\xbf"), FFFD FFFD FFFD},
    {"past U+10FFFF", S("\xf4\x90\x80\x80"), FFFD FFFD FFFD FFFD},
    {"5-byte form", S("\xf8\x88\x80\x80\x80"), FFFD FFFD FFFD FFFD FFFD},
    {"truncated 3-byte at the end", S("ab\xe2\x82"), "ab" FFFD FFFD},
    {"truncated 4-byte at the end", S("\xf0\x9f\x98"), FFFD FFFD FFFD},
    {"truncated sequence before ASCII", S("\xe2\x82x"), FFFD FFFD "x"},
    {"lead byte before a lead byte", S("\xc3\xc3\xa9"), FFFD "\xc3\xa9"},
    {"mixed", S("ok\xff\xe2\x82\xac\n"), "ok" FFFD "\xe2\x82\xac\\n"},
};

static void test_append_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(text_cases); i++) {
        const struct text_case *c = &text_cases[i];
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(attempts_append_text(&b, c->in, c->inlen), 0);
        if (b.len != strlen(c->out) || memcmp(b.data ? b.data : "", c->out, b.len) != 0)
            fail_msg("case \"%s\": got \"%s\"", c->name, b.data ? b.data : "");
        assert_true(valid_utf8((const unsigned char *)(b.data ? b.data : ""), b.len));
        buf_release(&b);
    }
}

/* Every byte value, alone and in pairs, yields valid UTF-8 that parses as a JSON string. */
static void test_append_text_exhaustive(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 1 << 20);
    for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
            unsigned char in[2] = {(unsigned char)x, (unsigned char)y};
            buf_reset(&b);
            assert_int_equal(buf_appendc(&b, '"'), 0);
            assert_int_equal(attempts_append_text(&b, (const char *)in, 2), 0);
            assert_int_equal(buf_appendc(&b, '"'), 0);
            if (!valid_utf8((const unsigned char *)b.data, b.len))
                fail_msg("bytes %02x %02x: invalid UTF-8 out", x, y);
            {
                cJSON *s = cJSON_ParseWithLength(b.data, b.len);
                if (!cJSON_IsString(s))
                    fail_msg("bytes %02x %02x: not a JSON string: %s", x, y, b.data);
                cJSON_Delete(s);
            }
        }
    }
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_retry_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_final_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_truncated_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_invalid_utf8_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_too_big, setup, teardown),
        cmocka_unit_test(test_append_text),
        cmocka_unit_test(test_append_text_exhaustive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
