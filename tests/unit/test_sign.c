/*
 * Unit tests for sign.c: every scheme pinned to published vectors (Standard
 * Webhooks, RFC 4231 HMAC-SHA256, RFC 8032 Ed25519), then the receiver's
 * check: rotation with several keys, tampering, timestamp tolerance in both
 * directions, malformed headers, unusable secrets and header overrides.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald/err.h"
#include "herald/sign.h"

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS     1614265330
#define SW_BODY   "{\"test\": 2432232314}"
#define SW_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* The Standard Webhooks Go library's asymmetric signing vector. */
#define ED_SECRET "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
#define ED_SIG                                                                                     \
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="

#define NOW 1700000000

/* ---- helpers ------------------------------------------------------------ */

static size_t unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;

    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void tohex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
    out[2 * n] = '\0';
}

static const char *hdr(const struct sign_headers *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->h[i].name, name) == 0)
            return h->h[i].value;
    }
    return NULL;
}

static struct sign_key key_of(enum sign_scheme scheme, const char *secret)
{
    struct sign_key key;
    char why[256];
    int rc = sign_key_decode(scheme, secret, &key, why, sizeof(why));

    if (rc)
        fail_msg("decoding a test secret failed: %s", why);
    return key;
}

static int sign_one(enum sign_scheme scheme, const char *header_name, const char *secret,
                    const char *id, int64_t ts, const char *body, struct sign_headers *out)
{
    struct sign_key key = key_of(scheme, secret);
    struct sign_input in = {.msg_id = id, .timestamp = ts, .body = body, .body_len = strlen(body)};
    int rc = sign_request(scheme, header_name, &key, 1, &in, out);

    sign_key_release(&key);
    return rc;
}

/* Verifies a request built from out, whose headers are those herald sent. */
static int verify_headers(enum sign_scheme scheme, const char *header_name, const char *secret,
                          const struct sign_headers *out, const char *body, int64_t now,
                          int64_t tolerance, char *why, size_t whylen)
{
    const char *names[SIGN_MAX_HEADERS], *values[SIGN_MAX_HEADERS];

    for (size_t i = 0; i < out->n; i++) {
        names[i] = out->h[i].name;
        values[i] = out->h[i].value;
    }
    return sign_verify(scheme, header_name, secret, names, values, out->n, body, strlen(body), now,
                       tolerance, why, whylen);
}

/* ---- names -------------------------------------------------------------- */

static void test_scheme_names(void **state)
{
    static const struct {
        const char *name;
        bool takes_header;
    } cases[] = {
        {"standard-webhooks", false},
        {"standard-webhooks-ed25519", false},
        {"hmac-sha256-hex", true},
        {"hmac-sha256-base64", true},
        {"timestamped", true},
        {"message-field", true},
        {"none", false},
    };
    enum sign_scheme scheme;
    (void)state;

    assert_int_equal(sizeof(cases) / sizeof(cases[0]), SIGN_SCHEME_COUNT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(sign_scheme_parse(cases[i].name, &scheme), 0);
        assert_string_equal(sign_scheme_name(scheme), cases[i].name);
        assert_int_equal(sign_scheme_takes_header(scheme), cases[i].takes_header);
        if (cases[i].takes_header)
            assert_string_equal(sign_default_header(scheme), "X-Signature");
        else
            assert_null(sign_default_header(scheme));
    }
    assert_int_equal(sign_scheme_parse("Standard-Webhooks", &scheme), HERALD_EINVAL);
    assert_int_equal(sign_scheme_parse("", &scheme), HERALD_EINVAL);
    assert_int_equal(sign_scheme_parse(NULL, &scheme), HERALD_EINVAL);
    assert_string_equal(sign_scheme_name(SIGN_SCHEME_COUNT), "unknown");
}

/* ---- published vectors -------------------------------------------------- */

static void test_standard_webhooks_vector(void **state)
{
    struct sign_headers out;
    (void)state;

    assert_int_equal(sign_one(SIGN_STANDARD_WEBHOOKS, NULL, SW_SECRET, SW_ID, SW_TS, SW_BODY, &out),
                     0);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.h[0].name, "webhook-id");
    assert_string_equal(out.h[0].value, SW_ID);
    assert_string_equal(out.h[1].name, "webhook-timestamp");
    assert_string_equal(out.h[1].value, "1614265330");
    assert_string_equal(out.h[2].name, "webhook-signature");
    assert_string_equal(out.h[2].value, SW_SIG);
    sign_headers_release(&out);
}

static void test_ed25519_standard_vector(void **state)
{
    struct sign_headers out;
    char why[256];
    (void)state;

    assert_int_equal(
        sign_one(SIGN_STANDARD_WEBHOOKS_ED25519, NULL, ED_SECRET, SW_ID, SW_TS, SW_BODY, &out), 0);
    assert_int_equal(out.n, 3);
    assert_string_equal(hdr(&out, "webhook-signature"), ED_SIG);
    assert_int_equal(verify_headers(SIGN_STANDARD_WEBHOOKS_ED25519, NULL, ED_SECRET, &out, SW_BODY,
                                    SW_TS, 300, why, sizeof(why)),
                     0);
    sign_headers_release(&out);
}

/* RFC 4231 test cases 1-4, 6 and 7 (5 is a truncated output). */
static void test_rfc4231_through_hex(void **state)
{
    static const struct {
        const char *name;
        const char *key; /* hex, or "aa*131" spelled out below */
        size_t key_repeat;
        const char *data_hex;
        const char *data_text;
        const char *mac;
    } cases[] = {
        {"case 1", "0b", 20, NULL, "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"case 2", "4a656665", 1, NULL, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"case 3", "aa", 20,
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddd",
         NULL, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"case 4", "0102030405060708090a0b0c0d0e0f10111213141516171819", 1,
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcd",
         NULL, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"case 6", "aa", 131, NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {"case 7", "aa", 131, NULL,
         "This is a test using a larger than block-size key and a larger than block-size data. "
         "The key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char unit[32], keybytes[200], data[200];
        size_t unit_len = unhex(cases[i].key, unit, sizeof(unit)), klen = 0, dlen;
        struct sign_key key = {0};
        struct sign_input in = {.msg_id = "x", .timestamp = 0};
        struct sign_headers out;

        for (size_t r = 0; r < cases[i].key_repeat; r++) {
            memcpy(keybytes + klen, unit, unit_len);
            klen += unit_len;
        }
        if (cases[i].data_hex) {
            dlen = unhex(cases[i].data_hex, data, sizeof(data));
        } else {
            dlen = strlen(cases[i].data_text);
            memcpy(data, cases[i].data_text, dlen);
        }
        /* Raw key bytes, as RFC 4231 gives them; secrets are text. */
        key.bytes = malloc(klen);
        assert_non_null(key.bytes);
        memcpy(key.bytes, keybytes, klen);
        key.len = klen;
        in.body = (const char *)data;
        in.body_len = dlen;
        assert_int_equal(sign_request(SIGN_HMAC_SHA256_HEX, NULL, &key, 1, &in, &out), 0);
        assert_int_equal(out.n, 1);
        assert_string_equal(out.h[0].name, "X-Signature");
        if (strcmp(out.h[0].value, cases[i].mac) != 0)
            fail_msg("RFC 4231 %s: got %s", cases[i].name, out.h[0].value);
        sign_headers_release(&out);
        sign_key_release(&key);
        assert_null(key.bytes);
        assert_int_equal(key.len, 0);
    }
}

/* RFC 8032 section 7.1, TEST 1 to 3: seed, public key, message, signature. */
static void test_rfc8032_ed25519(void **state)
{
    static const struct {
        const char *seed, *pub_b64, *msg, *sig;
    } cases[] = {
        {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
         "701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "whpk_PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
         "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
        {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "whpk_/FHNjmIYoaONpH7QAjDwWAgW7RO6MwOsXeuRFUiQgCU=", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7"
         "60984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char seed[32], msg[8], sig[SIGN_ED25519_SIG_LEN];
        char sighex[2 * SIGN_ED25519_SIG_LEN + 1], pub[SIGN_PUBLIC_KEY_MAX];
        struct sign_key key = {0};
        size_t mlen;

        assert_int_equal(unhex(cases[i].seed, seed, sizeof(seed)), 32);
        mlen = unhex(cases[i].msg, msg, sizeof(msg));
        key.bytes = malloc(32);
        assert_non_null(key.bytes);
        memcpy(key.bytes, seed, 32);
        key.len = 32;
        assert_int_equal(sign_ed25519(&key, msg, mlen, sig), 0);
        tohex(sig, sizeof(sig), sighex);
        assert_string_equal(sighex, cases[i].sig);
        assert_int_equal(sign_public_key(&key, pub, sizeof(pub)), 0);
        assert_string_equal(pub, cases[i].pub_b64);
        assert_int_equal(sign_public_key(&key, pub, 20), HERALD_ETOOBIG);
        sign_key_release(&key);
    }
}

/* The plain schemes, pinned to RFC 4231 case 2 (key "Jefe"). */
static void test_plain_scheme_values(void **state)
{
    static const char body[] = "what do ya want for nothing?";
    static const char msg_body[] = "{\"message\": \"what do ya want for nothing?\"}";
    static const struct {
        enum sign_scheme scheme;
        const char *secret, *body;
        int64_t ts;
        const char *value;
    } cases[] = {
        {SIGN_HMAC_SHA256_HEX, "Jefe", body, 0,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {SIGN_HMAC_SHA256_BASE64, "Jefe", body, 0, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="},
        {SIGN_MESSAGE_FIELD, "Jefe", msg_body, 0, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="},
        {SIGN_TIMESTAMPED, "Jefe", body, NOW,
         "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"},
        /* A whsec_ secret is the base64 key here too. */
        {SIGN_HMAC_SHA256_HEX, SW_SECRET, SW_BODY, 0,
         "e2cb4f5251572539d458bfb8a7adb533b08801e6a794467e06f771debbb0818b"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sign_headers out;
        char why[256];

        assert_int_equal(sign_one(cases[i].scheme, NULL, cases[i].secret, "id", cases[i].ts,
                                  cases[i].body, &out),
                         0);
        assert_int_equal(out.n, 1);
        assert_string_equal(out.h[0].name, "X-Signature");
        assert_string_equal(out.h[0].value, cases[i].value);
        assert_int_equal(verify_headers(cases[i].scheme, NULL, cases[i].secret, &out, cases[i].body,
                                        NOW, 300, why, sizeof(why)),
                         0);
        sign_headers_release(&out);
    }
}

static void test_message_field_given_or_parsed(void **state)
{
    static const char body[] =
        "{\"message\":\"{\\\"id\\\":\\\"evt_1\\\",\\\"n\\\":\\\"\\u00e9\\\"}\"}";
    static const char message[] = "{\"id\":\"evt_1\",\"n\":\"\xc3\xa9\"}";
    struct sign_key key = key_of(SIGN_MESSAGE_FIELD, "s3cret");
    struct sign_input in = {
        .msg_id = "evt_1", .timestamp = NOW, .body = body, .body_len = strlen(body)};
    struct sign_headers parsed, given;
    char why[256];
    (void)state;

    assert_int_equal(sign_request(SIGN_MESSAGE_FIELD, "X-Capmo-Signature", &key, 1, &in, &parsed),
                     0);
    in.message = message;
    in.message_len = strlen(message);
    assert_int_equal(sign_request(SIGN_MESSAGE_FIELD, "X-Capmo-Signature", &key, 1, &in, &given),
                     0);
    assert_string_equal(parsed.h[0].name, "X-Capmo-Signature");
    assert_string_equal(parsed.h[0].value, given.h[0].value);
    assert_int_equal(verify_headers(SIGN_MESSAGE_FIELD, "x-capmo-signature", "s3cret", &given, body,
                                    NOW, 300, why, sizeof(why)),
                     0);
    /* A body that is not {"message": "<string>"} cannot be signed or verified. */
    in.message = NULL;
    in.body = "{\"message\": 5}";
    in.body_len = strlen(in.body);
    assert_int_equal(sign_request_check(SIGN_MESSAGE_FIELD, NULL, &in, why, sizeof(why)),
                     HERALD_EINVAL);
    assert_non_null(strstr(why, "\"message\""));
    sign_headers_release(&parsed);
    assert_int_equal(sign_request(SIGN_MESSAGE_FIELD, NULL, &key, 1, &in, &parsed), HERALD_EINVAL);
    assert_int_equal(parsed.n, 0);
    assert_int_equal(verify_headers(SIGN_MESSAGE_FIELD, "X-Capmo-Signature", "s3cret", &given,
                                    "{\"message\":\"x\"} trailing", NOW, 300, why, sizeof(why)),
                     HERALD_EREFUSED);
    sign_headers_release(&parsed);
    sign_headers_release(&given);
    sign_key_release(&key);
}

/* ---- rotation ----------------------------------------------------------- */

static void test_multi_key(void **state)
{
    static const struct {
        enum sign_scheme scheme;
        const char *a, *b, *other;
        const char *sig_header;
        const char *sep; /* between the two signatures */
    } cases[] = {
        {SIGN_STANDARD_WEBHOOKS, SW_SECRET, "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24h",
         "whsec_dGhpcmQgc2VjcmV0IG5ldmVyIHVzZWQgaGVyZSE=", "webhook-signature", " v1,"},
        {SIGN_STANDARD_WEBHOOKS_ED25519, ED_SECRET,
         "whsk_TM0Imyj/ltqdtsNG7BFOD1uKMZ81q6Yk2oz27U+4pvs=",
         "whsk_xaqN9D+fg3vtt0QvMdy3sWbThTUHbwlLhc46LgtEWPc=", "webhook-signature", " v1a,"},
        {SIGN_HMAC_SHA256_HEX, "old", "new", "other", "X-Signature", ","},
        {SIGN_HMAC_SHA256_BASE64, "old", "new", "other", "X-Signature", ","},
        {SIGN_TIMESTAMPED, "old", "new", "other", "X-Signature", ",v1="},
        {SIGN_MESSAGE_FIELD, "old", "new", "other", "X-Signature", ","},
    };
    static const char body[] = "{\"message\":\"rotate\"}";
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sign_key keys[2] = {key_of(cases[i].scheme, cases[i].a),
                                   key_of(cases[i].scheme, cases[i].b)};
        struct sign_input in = {
            .msg_id = "msg_rot", .timestamp = NOW, .body = body, .body_len = strlen(body)};
        struct sign_headers both, one_a, one_b;
        const char *v, *vb;
        char why[256], expect[512];

        assert_int_equal(sign_request(cases[i].scheme, NULL, keys, 2, &in, &both), 0);
        assert_int_equal(sign_request(cases[i].scheme, NULL, &keys[0], 1, &in, &one_a), 0);
        assert_int_equal(sign_request(cases[i].scheme, NULL, &keys[1], 1, &in, &one_b), 0);
        v = hdr(&both, cases[i].sig_header);
        assert_non_null(v);
        /* One header: a's value, the separator, then b's bare signature. */
        vb = hdr(&one_b, cases[i].sig_header);
        if (cases[i].scheme == SIGN_TIMESTAMPED)
            vb = strstr(vb, ",v1=") + 4;
        else if (cases[i].scheme == SIGN_STANDARD_WEBHOOKS ||
                 cases[i].scheme == SIGN_STANDARD_WEBHOOKS_ED25519)
            vb = strchr(vb, ',') + 1;
        snprintf(expect, sizeof(expect), "%s%s%s", hdr(&one_a, cases[i].sig_header), cases[i].sep,
                 vb);
        assert_string_equal(v, expect);
        assert_int_equal(verify_headers(cases[i].scheme, NULL, cases[i].a, &both, body, NOW, 300,
                                        why, sizeof(why)),
                         0);
        assert_int_equal(verify_headers(cases[i].scheme, NULL, cases[i].b, &both, body, NOW, 300,
                                        why, sizeof(why)),
                         0);
        assert_int_equal(verify_headers(cases[i].scheme, NULL, cases[i].other, &both, body, NOW,
                                        300, why, sizeof(why)),
                         HERALD_EREFUSED);
        assert_non_null(strstr(why, "matches"));
        /* Only b's signature: a receiver still on a alone must refuse. */
        assert_int_equal(verify_headers(cases[i].scheme, NULL, cases[i].a, &one_b, body, NOW, 300,
                                        why, sizeof(why)),
                         HERALD_EREFUSED);
        sign_headers_release(&both);
        sign_headers_release(&one_a);
        sign_headers_release(&one_b);
        sign_key_release(&keys[0]);
        sign_key_release(&keys[1]);
    }
}

static void test_no_keys(void **state)
{
    struct sign_input in = {.msg_id = "evt_1", .timestamp = NOW, .body = "{}", .body_len = 2};
    struct sign_headers out;
    (void)state;

    /* Unsigned, but receivers still de-duplicate on webhook-id. */
    assert_int_equal(sign_request(SIGN_STANDARD_WEBHOOKS, NULL, NULL, 0, &in, &out), 0);
    assert_int_equal(out.n, 2);
    assert_string_equal(hdr(&out, "webhook-id"), "evt_1");
    assert_string_equal(hdr(&out, "webhook-timestamp"), "1700000000");
    sign_headers_release(&out);
    assert_int_equal(sign_request(SIGN_HMAC_SHA256_HEX, NULL, NULL, 0, &in, &out), 0);
    assert_int_equal(out.n, 0);
    assert_int_equal(sign_request(SIGN_NONE, NULL, NULL, 0, &in, &out), 0);
    assert_int_equal(out.n, 0);
    sign_headers_release(&out);
}

/* ---- receiver: tampering, tolerance, malformed input --------------------- */

struct req {
    const char *names[6];
    const char *values[6];
    size_t n;
};

static int verify_req(enum sign_scheme scheme, const char *secret, const struct req *r,
                      const char *body, int64_t now, char *why, size_t whylen)
{
    return sign_verify(scheme, NULL, secret, r->names, r->values, r->n, body, strlen(body), now,
                       300, why, whylen);
}

static void test_tampering(void **state)
{
    static const struct {
        const char *what;
        enum sign_scheme scheme;
        const char *secret;
        struct req r;
        const char *body;
        int64_t now;
        int rc;
    } cases[] = {
        {"vector",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", SW_SIG},
          3},
         SW_BODY,
         SW_TS,
         0},
        {"header names in any case",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"Webhook-Id", "WEBHOOK-TIMESTAMP", "Webhook-Signature"},
          {SW_ID, "1614265330", SW_SIG},
          3},
         SW_BODY,
         SW_TS,
         0},
        {"body",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", SW_SIG},
          3},
         "{\"test\": 2432232315}",
         SW_TS,
         HERALD_EREFUSED},
        {"timestamp",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265331", SW_SIG},
          3},
         SW_BODY,
         SW_TS,
         HERALD_EREFUSED},
        {"id",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {"msg_p5jXN8AQM9LWM0D4loKWxJel", "1614265330", SW_SIG},
          3},
         SW_BODY,
         SW_TS,
         HERALD_EREFUSED},
        {"one good among bad and unknown versions",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330",
           "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc " SW_SIG " v1a,xyz"},
          3},
         SW_BODY,
         SW_TS,
         0},
        {"signature split over two header lines",
         SIGN_STANDARD_WEBHOOKS,
         SW_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature", "webhook-signature"},
          {SW_ID, "1614265330", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", SW_SIG},
          4},
         SW_BODY,
         SW_TS,
         0},
        {"v1 is not v1a",
         SIGN_STANDARD_WEBHOOKS_ED25519,
         ED_SECRET,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330",
           "v1,tQ9V2XOqn7jL/"
           "DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="},
          3},
         SW_BODY,
         SW_TS,
         HERALD_EREFUSED},
        {"ed25519 vector with the public key",
         SIGN_STANDARD_WEBHOOKS_ED25519,
         "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=",
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", ED_SIG},
          3},
         SW_BODY,
         SW_TS,
         0},
        {"ed25519 body",
         SIGN_STANDARD_WEBHOOKS_ED25519,
         "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=",
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", ED_SIG},
          3},
         "{\"test\": 2432232314} ",
         SW_TS,
         HERALD_EREFUSED},
        {"ed25519 other public key",
         SIGN_STANDARD_WEBHOOKS_ED25519,
         "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", ED_SIG},
          3},
         SW_BODY,
         SW_TS,
         HERALD_EREFUSED},
        {"hex in upper case",
         SIGN_HMAC_SHA256_HEX,
         "Jefe",
         {{"x-signature"}, {"5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"}, 1},
         "what do ya want for nothing?",
         NOW,
         0},
        {"hex body",
         SIGN_HMAC_SHA256_HEX,
         "Jefe",
         {{"X-Signature"}, {"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"}, 1},
         "what do ya want for nothing!",
         NOW,
         HERALD_EREFUSED},
        {"hex list with spaces",
         SIGN_HMAC_SHA256_HEX,
         "Jefe",
         {{"X-Signature"},
          {"00, 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
          1},
         "what do ya want for nothing?",
         NOW,
         0},
        {"base64 truncated",
         SIGN_HMAC_SHA256_BASE64,
         "Jefe",
         {{"X-Signature"}, {"W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOE"}, 1},
         "what do ya want for nothing?",
         NOW,
         HERALD_EREFUSED},
        {"base64 unpadded",
         SIGN_HMAC_SHA256_BASE64,
         "Jefe",
         {{"X-Signature"}, {"W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM"}, 1},
         "what do ya want for nothing?",
         NOW,
         0},
        {"timestamped t",
         SIGN_TIMESTAMPED,
         "Jefe",
         {{"X-Signature"},
          {"t=1700000001,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"},
          1},
         "what do ya want for nothing?",
         NOW,
         HERALD_EREFUSED},
        {"timestamped spaced and reordered",
         SIGN_TIMESTAMPED,
         "Jefe",
         {{"X-Signature"},
          {"v0=zz, v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e , "
           "t=1700000000"},
          1},
         "what do ya want for nothing?",
         NOW,
         0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[256] = "";
        int rc = verify_req(cases[i].scheme, cases[i].secret, &cases[i].r, cases[i].body,
                            cases[i].now, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("%s: got %d (%s), want %d", cases[i].what, rc, why, cases[i].rc);
        if (rc)
            assert_true(why[0] != '\0');
    }
}

static void test_tolerance(void **state)
{
    static const struct {
        enum sign_scheme scheme;
        const char *secret;
    } schemes[] = {
        {SIGN_STANDARD_WEBHOOKS, SW_SECRET},
        {SIGN_STANDARD_WEBHOOKS_ED25519, ED_SECRET},
        {SIGN_TIMESTAMPED, "k"},
    };
    static const struct {
        int64_t skew; /* now - timestamp */
        int64_t tolerance;
        int rc;
        const char *word;
    } cases[] = {
        {0, 300, 0, NULL},
        {300, 300, 0, NULL},
        {-300, 300, 0, NULL},
        {301, 300, HERALD_EREFUSED, "past"},
        {-301, 300, HERALD_EREFUSED, "future"},
        {86400, 300, HERALD_EREFUSED, "past"},
        {86400, -1, 0, NULL}, /* a negative tolerance skips the check */
        {1, 0, HERALD_EREFUSED, "past"},
    };
    (void)state;

    for (size_t s = 0; s < sizeof(schemes) / sizeof(schemes[0]); s++) {
        struct sign_headers out;

        assert_int_equal(
            sign_one(schemes[s].scheme, NULL, schemes[s].secret, "msg_t", NOW, "{}", &out), 0);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char why[256] = "";
            int rc = verify_headers(schemes[s].scheme, NULL, schemes[s].secret, &out, "{}",
                                    NOW + cases[i].skew, cases[i].tolerance, why, sizeof(why));
            if (rc != cases[i].rc)
                fail_msg("%s skew %lld: got %d (%s)", sign_scheme_name(schemes[s].scheme),
                         (long long)cases[i].skew, rc, why);
            if (cases[i].word)
                assert_non_null(strstr(why, cases[i].word));
        }
        sign_headers_release(&out);
    }
}

static void test_malformed_headers(void **state)
{
    static const struct {
        const char *what;
        enum sign_scheme scheme;
        struct req r;
        const char *reason;
    } cases[] = {
        {"no id",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-timestamp", "webhook-signature"}, {"1614265330", SW_SIG}, 2},
         "missing header \"webhook-id\""},
        {"no timestamp",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-signature"}, {SW_ID, SW_SIG}, 2},
         "missing header \"webhook-timestamp\""},
        {"no signature",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp"}, {SW_ID, "1614265330"}, 2},
         "missing header \"webhook-signature\""},
        {"empty id",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"}, {"", "1614265330", SW_SIG}, 3},
         "\"webhook-id\" is empty"},
        {"two timestamps",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", "1614265330", SW_SIG},
          4},
         "appears 2 times"},
        {"timestamp not a number",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "16142653e0", SW_SIG},
          3},
         "not unix seconds"},
        {"timestamp in ms",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330000", SW_SIG},
          3},
         "in the future"},
        {"timestamp with leading zero",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "01614265330", SW_SIG},
          3},
         "not unix seconds"},
        {"negative timestamp",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"}, {SW_ID, "-1", SW_SIG}, 3},
         "not unix seconds"},
        {"empty v1",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", "v1,"},
          3},
         "matches"},
        {"only other versions",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", "v2,abc v1a,def"},
          3},
         "no \"v1,\" signature"},
        {"bare base64 without version",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
          3},
         "no \"v1,\" signature"},
        {"signature not base64",
         SIGN_STANDARD_WEBHOOKS,
         {{"webhook-id", "webhook-timestamp", "webhook-signature"},
          {SW_ID, "1614265330", "v1,g0hM9SsE*OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
          3},
         "matches"},
        {"timestamped without t",
         SIGN_TIMESTAMPED,
         {{"X-Signature"},
          {"v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"},
          1},
         "no \"t=\""},
        {"timestamped two t",
         SIGN_TIMESTAMPED,
         {{"X-Signature"}, {"t=1700000000,t=1700000000,v1=00"}, 1},
         "more than one \"t=\""},
        {"timestamped bad t",
         SIGN_TIMESTAMPED,
         {{"X-Signature"}, {"t=17e8,v1=00"}, 1},
         "not unix seconds"},
        {"timestamped without v1",
         SIGN_TIMESTAMPED,
         {{"X-Signature"}, {"t=1700000000,v0=00"}, 1},
         "no \"v1=\" signature"},
        {"timestamped twice",
         SIGN_TIMESTAMPED,
         {{"X-Signature", "x-signature"}, {"t=1700000000", "t=1700000000"}, 2},
         "appears 2 times"},
        {"hex missing",
         SIGN_HMAC_SHA256_HEX,
         {{"X-Other"}, {"00"}, 1},
         "missing header \"X-Signature\""},
        {"hex empty", SIGN_HMAC_SHA256_HEX, {{"X-Signature"}, {" , "}, 1}, "is empty"},
        {"hex odd", SIGN_HMAC_SHA256_HEX, {{"X-Signature"}, {"abc"}, 1}, "matches"},
        {"base64 missing",
         SIGN_HMAC_SHA256_BASE64,
         {{"webhook-signature"}, {SW_SIG}, 1},
         "missing header \"X-Signature\""},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *secret = cases[i].scheme == SIGN_STANDARD_WEBHOOKS ? SW_SECRET : "Jefe";
        char why[256] = "";
        int rc = verify_req(
            cases[i].scheme, secret, &cases[i].r,
            cases[i].scheme == SIGN_STANDARD_WEBHOOKS ? SW_BODY : "what do ya want for nothing?",
            cases[i].scheme == SIGN_STANDARD_WEBHOOKS ? SW_TS : NOW, why, sizeof(why));
        if (rc != HERALD_EREFUSED || !strstr(why, cases[i].reason))
            fail_msg("%s: got %d \"%s\", want the reason to hold \"%s\"", cases[i].what, rc, why,
                     cases[i].reason);
    }
}

/* ---- secrets ------------------------------------------------------------ */

static void test_bad_secrets(void **state)
{
    static const struct {
        enum sign_scheme scheme;
        const char *secret;
        const char *reason;
    } cases[] = {
        {SIGN_STANDARD_WEBHOOKS, "", "empty"},
        {SIGN_STANDARD_WEBHOOKS, NULL, "empty"},
        {SIGN_STANDARD_WEBHOOKS, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with \"whsec_\""},
        {SIGN_STANDARD_WEBHOOKS, "whsec_", "nothing after"},
        {SIGN_STANDARD_WEBHOOKS, "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw", "not valid base64"},
        {SIGN_STANDARD_WEBHOOKS, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", "not valid base64"},
        {SIGN_STANDARD_WEBHOOKS, "whsec_c2hvcnQ=", "decodes to 5 bytes"},
        {SIGN_STANDARD_WEBHOOKS,
         "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
         "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
         "decodes to 75 bytes, not 24 to 64"},
        {SIGN_STANDARD_WEBHOOKS_ED25519,
         "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=", "public key"},
        {SIGN_STANDARD_WEBHOOKS_ED25519, SW_SECRET, "must start with \"whsk_\""},
        {SIGN_STANDARD_WEBHOOKS_ED25519, "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
         "decodes to 24 bytes"},
        /* 64 bytes whose second half is not the first half's public key. */
        {SIGN_STANDARD_WEBHOOKS_ED25519,
         "whsk_"
         "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTllURVNUU0lHTklOR0tFWURPTk9UVVNFVEhJU0ZPUkFOWQ==",
         "not a 32-byte Ed25519 seed"},
        {SIGN_HMAC_SHA256_HEX, ED_SECRET, "Ed25519 key"},
        {SIGN_HMAC_SHA256_BASE64, "whsec_!!!!", "not valid base64"},
        {SIGN_TIMESTAMPED, "", "empty"},
        {SIGN_NONE, "anything", "takes no secret"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static unsigned char junk[4];
        struct sign_key key = {junk, sizeof(junk), NULL};
        char why[256] = "";
        int rc = sign_key_decode(cases[i].scheme, cases[i].secret, &key, why, sizeof(why));

        if (rc != HERALD_EINVAL || !strstr(why, cases[i].reason))
            fail_msg("secret #%zu: got %d \"%s\", want \"%s\"", i, rc, why, cases[i].reason);
        assert_null(key.bytes);
        assert_int_equal(key.len, 0);
        /* The reason never repeats the secret. */
        if (cases[i].secret && strlen(cases[i].secret) > 8)
            assert_null(strstr(why, cases[i].secret + 6));
        /* Verify refuses the same secrets the same way, except a public key there is fine. */
        if (cases[i].scheme != SIGN_NONE &&
            !(cases[i].scheme == SIGN_STANDARD_WEBHOOKS_ED25519 && cases[i].secret &&
              strncmp(cases[i].secret, "whpk_", 5) == 0)) {
            const char *n = "X-Signature", *v = "00";
            assert_int_equal(sign_verify(cases[i].scheme, NULL, cases[i].secret, &n, &v, 1, "", 0,
                                         NOW, 300, why, sizeof(why)),
                             HERALD_EINVAL);
        }
    }
}

static void test_good_secrets(void **state)
{
    static const struct {
        enum sign_scheme scheme;
        const char *secret;
        size_t len;
    } cases[] = {
        {SIGN_STANDARD_WEBHOOKS, SW_SECRET, 24},
        {SIGN_STANDARD_WEBHOOKS_ED25519, ED_SECRET, 32},
        /* seed || public key, as libsodium stores it */
        {SIGN_STANDARD_WEBHOOKS_ED25519,
         "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/"
         "tPJZAc6DuFy89qmIyWvAhpo9wdRGg==",
         32},
        {SIGN_HMAC_SHA256_HEX, "Jefe", 4},
        {SIGN_HMAC_SHA256_HEX, SW_SECRET, 24},
        {SIGN_MESSAGE_FIELD, "s p a c e s", 11},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sign_key key;
        char why[256];

        assert_int_equal(sign_key_decode(cases[i].scheme, cases[i].secret, &key, why, sizeof(why)),
                         0);
        assert_int_equal(key.len, cases[i].len);
        sign_key_release(&key);
        sign_key_release(&key); /* idempotent */
        assert_null(key.bytes);
    }
    sign_key_release(NULL);
}

/* ---- sender-side checks ------------------------------------------------- */

static void test_header_override(void **state)
{
    static const struct {
        const char *name;
        int rc;
    } cases[] = {
        {"X-Hub-Signature-256", 0},
        {"X-Campsite-Signature", 0},
        {"Bad Name", HERALD_EINVAL},
        {"", HERALD_EINVAL},
        {"X-Sig:", HERALD_EINVAL},
        {"X-Sig\r\nInjected: 1", HERALD_EINVAL},
        {"Content-Length", HERALD_EINVAL},
        {"host", HERALD_EINVAL},
        {"X-123456789012345678901234567890123456789012345678901234567890123", HERALD_EINVAL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sign_headers out;
        char why[256] = "";
        int rc = sign_one(SIGN_HMAC_SHA256_HEX, cases[i].name, "k", "id", NOW, "{}", &out);

        if (rc != cases[i].rc)
            fail_msg("header \"%s\": got %d", cases[i].name, rc);
        assert_int_equal(
            sign_request_check(SIGN_HMAC_SHA256_HEX, cases[i].name, NULL, why, sizeof(why)),
            cases[i].rc);
        if (rc == 0) {
            assert_int_equal(out.n, 1);
            assert_string_equal(out.h[0].name, cases[i].name);
            /* The receiver looks for the same name, in any case. */
            assert_int_equal(verify_headers(SIGN_HMAC_SHA256_HEX, "x-hub-signature-256", "k", &out,
                                            "{}", NOW, 300, why, sizeof(why)),
                             i == 0 ? 0 : HERALD_EREFUSED);
            assert_int_equal(verify_headers(SIGN_HMAC_SHA256_HEX, NULL, "k", &out, "{}", NOW, 300,
                                            why, sizeof(why)),
                             HERALD_EREFUSED);
            assert_non_null(strstr(why, "missing header \"X-Signature\""));
        } else {
            assert_int_equal(out.n, 0);
            assert_non_null(strstr(why, "header name"));
        }
        sign_headers_release(&out);
    }
    /* Schemes with fixed names ignore an override. */
    {
        struct sign_headers out;
        assert_int_equal(
            sign_one(SIGN_STANDARD_WEBHOOKS, "X-Whatever", SW_SECRET, SW_ID, SW_TS, SW_BODY, &out),
            0);
        assert_string_equal(hdr(&out, "webhook-signature"), SW_SIG);
        sign_headers_release(&out);
    }
}

static void test_request_checks(void **state)
{
    static const struct {
        enum sign_scheme scheme;
        const char *id;
        int64_t ts;
        int rc;
        const char *reason;
    } cases[] = {
        {SIGN_STANDARD_WEBHOOKS, "evt_2Qa-b_c~9", NOW, 0, NULL},
        {SIGN_STANDARD_WEBHOOKS, "", NOW, HERALD_EINVAL, "empty"},
        {SIGN_STANDARD_WEBHOOKS, NULL, NOW, HERALD_EINVAL, "empty"},
        {SIGN_STANDARD_WEBHOOKS, "order.created.1", NOW, 0, NULL},
        {SIGN_STANDARD_WEBHOOKS, "evt_\x7f", NOW, HERALD_EINVAL, "0x7f"},
        {SIGN_STANDARD_WEBHOOKS, "evt_\xc3\xa9", NOW, HERALD_EINVAL, "0xc3"},
        {SIGN_STANDARD_WEBHOOKS_ED25519, "evt\r\nX: y", NOW, HERALD_EINVAL, "0x0d"},
        {SIGN_STANDARD_WEBHOOKS, "evt 1", NOW, HERALD_EINVAL, "0x20"},
        {SIGN_STANDARD_WEBHOOKS, "evt_1", -1, HERALD_EINVAL, "negative"},
        /* Only the Standard Webhooks schemes send or sign the id. */
        {SIGN_HMAC_SHA256_HEX, "evt 1", NOW, 0, NULL},
        {SIGN_TIMESTAMPED, NULL, NOW, 0, NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *secret = cases[i].scheme == SIGN_STANDARD_WEBHOOKS_ED25519 ? ED_SECRET
                             : cases[i].scheme == SIGN_STANDARD_WEBHOOKS       ? SW_SECRET
                                                                               : "k";
        struct sign_key key = key_of(cases[i].scheme, secret);
        struct sign_input in = {
            .msg_id = cases[i].id, .timestamp = cases[i].ts, .body = "{}", .body_len = 2};
        struct sign_headers out;
        char why[256] = "";

        assert_int_equal(sign_request_check(cases[i].scheme, NULL, &in, why, sizeof(why)),
                         cases[i].rc);
        if (cases[i].reason && !strstr(why, cases[i].reason))
            fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, why, cases[i].reason);
        assert_int_equal(sign_request(cases[i].scheme, NULL, &key, 1, &in, &out), cases[i].rc);
        if (cases[i].rc)
            assert_int_equal(out.n, 0);
        sign_headers_release(&out);
        sign_key_release(&key);
    }
}

/* Ids as long as event.c allows (256) sign; one more does not. */
static void test_id_length(void **state)
{
    char id[258];
    struct sign_input in = {.msg_id = id, .timestamp = NOW, .body = "", .body_len = 0};
    char why[256];
    (void)state;

    memset(id, 'a', 256);
    id[256] = '\0';
    assert_int_equal(sign_request_check(SIGN_STANDARD_WEBHOOKS, NULL, &in, why, sizeof(why)), 0);
    id[256] = 'a';
    id[257] = '\0';
    assert_int_equal(sign_request_check(SIGN_STANDARD_WEBHOOKS, NULL, &in, why, sizeof(why)),
                     HERALD_EINVAL);
    assert_non_null(strstr(why, "longer than 256"));
}

static void test_binary_body(void **state)
{
    static const char body[] = {'{', '\0', '\xff', '\n', '}'};
    struct sign_key key = key_of(SIGN_STANDARD_WEBHOOKS, SW_SECRET);
    struct sign_input in = {
        .msg_id = "msg_bin", .timestamp = NOW, .body = body, .body_len = sizeof(body)};
    struct sign_headers out;
    const char *names[3], *values[3];
    char why[256];
    (void)state;

    assert_int_equal(sign_request(SIGN_STANDARD_WEBHOOKS, NULL, &key, 1, &in, &out), 0);
    for (size_t i = 0; i < out.n; i++) {
        names[i] = out.h[i].name;
        values[i] = out.h[i].value;
    }
    assert_int_equal(sign_verify(SIGN_STANDARD_WEBHOOKS, NULL, SW_SECRET, names, values, out.n,
                                 body, sizeof(body), NOW, 300, why, sizeof(why)),
                     0);
    /* The bytes after the NUL are signed too. */
    assert_int_equal(sign_verify(SIGN_STANDARD_WEBHOOKS, NULL, SW_SECRET, names, values, out.n,
                                 body, 2, NOW, 300, why, sizeof(why)),
                     HERALD_EREFUSED);
    sign_headers_release(&out);
    sign_key_release(&key);
}

static void test_verify_none(void **state)
{
    char why[64];
    (void)state;

    assert_int_equal(
        sign_verify(SIGN_NONE, NULL, NULL, NULL, NULL, 0, "", 0, NOW, 300, why, sizeof(why)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheme_names),
        cmocka_unit_test(test_standard_webhooks_vector),
        cmocka_unit_test(test_ed25519_standard_vector),
        cmocka_unit_test(test_rfc4231_through_hex),
        cmocka_unit_test(test_rfc8032_ed25519),
        cmocka_unit_test(test_plain_scheme_values),
        cmocka_unit_test(test_message_field_given_or_parsed),
        cmocka_unit_test(test_multi_key),
        cmocka_unit_test(test_no_keys),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_bad_secrets),
        cmocka_unit_test(test_good_secrets),
        cmocka_unit_test(test_header_override),
        cmocka_unit_test(test_request_checks),
        cmocka_unit_test(test_id_length),
        cmocka_unit_test(test_binary_body),
        cmocka_unit_test(test_verify_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
