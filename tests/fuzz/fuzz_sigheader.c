/*
 * libFuzzer target for the signature-header parsers (sign_verify in sign.c):
 * the webhook-id / webhook-timestamp / webhook-signature triple of the
 * Standard Webhooks schemes, "t=...,v1=..." of timestamped, and the bare
 * comma/space lists of the other HMAC schemes.
 *
 * Input: byte 0 picks the scheme, byte 1 holds flags (a custom header name,
 * repeated headers, no timestamp tolerance), and the rest is split at the
 * first three newlines into header values and the body. The secrets are
 * fixed and valid, so the only answers are "valid" and "refused". Checked:
 *   - sign_verify returns 0 or HERALD_EREFUSED, with a reason when refused;
 *   - whatever it accepts stops verifying when one byte of the body changes
 *     (the signature binds the body) or, for Standard Webhooks, when the
 *     webhook-id changes;
 *   - round trip: what sign_request() produces for the fuzzed body verifies,
 *     and stops verifying once the body is changed.
 */
#include "herald/err.h"
#include "herald/sign.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define NOW         1700000000
#define WHSEC       "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define WHSK        "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
#define PLAIN       "fuzz-secret"
#define MAX_HEADERS 8

static char whpk[SIGN_PUBLIC_KEY_MAX];

static const char *secret_for(enum sign_scheme scheme, bool verifying)
{
    switch (scheme) {
    case SIGN_STANDARD_WEBHOOKS:
        return WHSEC;
    case SIGN_STANDARD_WEBHOOKS_ED25519:
        return verifying ? whpk : WHSK;
    default:
        return PLAIN;
    }
}

static void init_once(void)
{
    struct sign_key key;
    char why[128];
    if (whpk[0])
        return;
    CHECK(sign_key_decode(SIGN_STANDARD_WEBHOOKS_ED25519, WHSK, &key, why, sizeof(why)) == 0);
    CHECK(sign_public_key(&key, whpk, sizeof(whpk)) == 0);
    sign_key_release(&key);
}

struct req {
    const char *names[MAX_HEADERS];
    const char *values[MAX_HEADERS];
    size_t n;
};

static void add(struct req *r, const char *name, const char *value)
{
    if (value && r->n < MAX_HEADERS) {
        r->names[r->n] = name;
        r->values[r->n] = value;
        r->n++;
    }
}

static int verify(enum sign_scheme scheme, const char *hname, const struct req *r, const char *body,
                  size_t len, int64_t tolerance)
{
    char why[256];
    int rc;

    memset(why, 'x', sizeof(why));
    rc = sign_verify(scheme, hname, secret_for(scheme, true), r->names, r->values, r->n, body, len,
                     NOW, tolerance, why, sizeof(why));
    CHECK(rc == 0 || rc == HERALD_EREFUSED || rc == HERALD_ENOMEM);
    CHECK(memchr(why, '\0', sizeof(why)) != NULL);
    CHECK(rc == 0 || why[0] != '\0');
    return rc;
}

/* A copy of body with one bit of one byte flipped (or a byte added to an empty body). */
static char *changed(const char *body, size_t len, size_t *outlen)
{
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    memcpy(c, body, len);
    if (len == 0) {
        c[0] = 'x';
        *outlen = 1;
    } else {
        c[len / 2] ^= 1;
        *outlen = len;
    }
    return c;
}

/* Wraps arbitrary bytes as {"message":"..."} for message-field (NULs dropped). */
static char *message_body(const char *s, size_t len, size_t *outlen)
{
    char *b = malloc(len * 6 + 16);
    size_t o = 0;
    if (!b)
        return NULL;
    o += (size_t)sprintf(b, "{\"message\":\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            continue;
        if (c < 0x20 || c == '"' || c == '\\')
            o += (size_t)sprintf(b + o, "\\u%04x", c);
        else
            b[o++] = (char)c;
    }
    o += (size_t)sprintf(b + o, "\"}");
    *outlen = o;
    return b;
}

static void round_trip(enum sign_scheme scheme, const char *hname, const char *fbody, size_t flen)
{
    struct sign_key key;
    struct sign_input in = {0};
    struct sign_headers sh;
    struct req r = {{0}, {0}, 0};
    char why[128], *body = NULL, *other;
    size_t len, olen;

    if (scheme == SIGN_NONE)
        return;
    CHECK(sign_key_decode(scheme, secret_for(scheme, false), &key, why, sizeof(why)) == 0);
    if (scheme == SIGN_MESSAGE_FIELD) {
        body = message_body(fbody, flen, &len);
        if (!body) {
            sign_key_release(&key);
            return;
        }
    }
    in.msg_id = "msg_fuzz";
    in.timestamp = NOW;
    in.body = body ? body : fbody;
    in.body_len = body ? len : flen;
    CHECK(sign_request(scheme, hname, &key, 1, &in, &sh) == 0);
    for (size_t i = 0; i < sh.n; i++)
        add(&r, sh.h[i].name, sh.h[i].value);
    if (scheme == SIGN_STANDARD_WEBHOOKS || scheme == SIGN_STANDARD_WEBHOOKS_ED25519) {
        CHECK(sh.n == 3);
    } else {
        CHECK(sh.n == 1);
    }
    CHECK(verify(scheme, hname, &r, in.body, in.body_len, 300) == 0);
    if (scheme != SIGN_MESSAGE_FIELD && (other = changed(in.body, in.body_len, &olen))) {
        CHECK(verify(scheme, hname, &r, other, olen, 300) == HERALD_EREFUSED);
        free(other);
    }
    sign_headers_release(&sh);
    sign_key_release(&key);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum sign_scheme scheme;
    const char *hname, *parts[3] = {NULL, NULL, NULL};
    struct req r = {{0}, {0}, 0};
    char *text, *p, *body, *other;
    size_t blen, olen;
    unsigned flags;
    int64_t tolerance;
    bool standard;
    int rc;

    init_once();
    if (size < 2)
        return 0;
    scheme = (enum sign_scheme)(data[0] % SIGN_SCHEME_COUNT);
    flags = data[1];
    standard = scheme == SIGN_STANDARD_WEBHOOKS || scheme == SIGN_STANDARD_WEBHOOKS_ED25519;
    hname = (flags & 1) && sign_scheme_takes_header(scheme) ? "X-Hook-Signature" : NULL;
    tolerance = (flags & 2) ? -1 : 300;

    text = malloc(size - 1);
    if (!text)
        return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';
    /* Up to three newline-terminated header values, then the body. */
    p = text;
    for (int i = 0; i < 3; i++) {
        char *nl = memchr(p, '\n', (size_t)(text + size - 2 - p));
        if (!nl)
            break;
        *nl = '\0';
        parts[i] = p;
        p = nl + 1;
    }
    body = p;
    blen = (size_t)(text + size - 2 - p);

    if (standard) {
        add(&r, "webhook-id", parts[0]);
        add(&r, (flags & 4) ? "Webhook-Timestamp" : "webhook-timestamp", parts[1]);
        add(&r, "webhook-signature", parts[2]);
        if (flags & 8)
            add(&r, "webhook-signature", parts[0]);
    } else {
        const char *name = hname ? hname : "X-Signature";
        add(&r, (flags & 4) ? "x-signature" : name, parts[0]);
        if (flags & 8)
            add(&r, name, parts[1]);
        add(&r, "X-Other", parts[2]);
    }

    rc = verify(scheme, hname, &r, body, blen, tolerance);
    if (rc == 0 && scheme != SIGN_NONE && scheme != SIGN_MESSAGE_FIELD) {
        /* Accepted: the same headers must not cover a different body ... */
        if ((other = changed(body, blen, &olen))) {
            CHECK(verify(scheme, hname, &r, other, olen, tolerance) == HERALD_EREFUSED);
            free(other);
        }
        /* ... nor, for Standard Webhooks, a different message id. */
        if (standard && parts[0]) {
            struct req r2 = r;
            char id2[300];
            snprintf(id2, sizeof(id2), "%.250sX", parts[0]);
            for (size_t i = 0; i < r2.n; i++)
                if (r2.values[i] == parts[0])
                    r2.values[i] = id2;
            CHECK(verify(scheme, hname, &r2, body, blen, tolerance) == HERALD_EREFUSED);
        }
    }

    round_trip(scheme, hname, body, blen);
    free(text);
    return 0;
}
