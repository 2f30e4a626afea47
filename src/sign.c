/*
 * Webhook signatures: decoding secrets, signing each request at send time,
 * and the receiver's check behind `herald verify` (design.md, "Signature
 * schemes"; the API is in sign.h).
 *
 * Everything here is a function of its arguments: no clock, no I/O and no
 * logging, so the unit test can pin every scheme to published vectors.
 * OpenSSL does the cryptography (EVP_MAC HMAC-SHA256, EVP_PKEY Ed25519) and
 * every comparison of a secret-derived value goes through CRYPTO_memcmp.
 *
 * Several keys give several signatures, so a receiver can rotate without
 * downtime; each scheme spells that list the way its public model does:
 *   standard-webhooks(-ed25519)  "v1,<b64> v1,<b64>"  (space, per the spec)
 *   timestamped                  "t=<t>,v1=<hex>,v1=<hex>"  (as Stripe)
 *   hex, base64, message-field   "<sig>,<sig>"  (comma, as Hookdeck Outpost)
 * The verifier accepts a comma or whitespace between bare signatures.
 */
#include "herald/sign.h"
#include "herald/buf.h"
#include "herald/err.h"

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAC_LEN          32
#define ED25519_KEY_LEN  32
#define WHSEC_MIN        24 /* the spec's 192 bits */
#define WHSEC_MAX        64 /* and its 512 */
#define PLAIN_SECRET_MAX 1024
#define MSG_ID_MAX       256 /* EVENT_ID_MAX: every id event.c accepts signs */
#define HEADER_VALUE_MAX (64 * 1024)
#define SIGNED_PARTS_MAX 5
#define HEADER_NAME_MAX  (sizeof(((struct sign_header *)0)->name) - 1)

struct span {
    const void *p;
    size_t len;
};

static const char *const scheme_names[] = {
#define XX(id, name) name,
    SIGN_SCHEME_MAP(XX)
#undef XX
};

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes a reason for the caller; why may be NULL when nobody asks. */
static void say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (!why || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int sign_scheme_parse(const char *name, enum sign_scheme *out)
{
    if (!name)
        return HERALD_EINVAL;
    for (size_t i = 0; i < SIGN_SCHEME_COUNT; i++) {
        if (strcmp(name, scheme_names[i]) == 0) {
            *out = (enum sign_scheme)i;
            return 0;
        }
    }
    return HERALD_EINVAL;
}

const char *sign_scheme_name(enum sign_scheme scheme)
{
    if ((unsigned)scheme >= SIGN_SCHEME_COUNT)
        return "unknown";
    return scheme_names[scheme];
}

bool sign_scheme_takes_header(enum sign_scheme scheme)
{
    switch (scheme) {
    case SIGN_HMAC_SHA256_HEX:
    case SIGN_HMAC_SHA256_BASE64:
    case SIGN_TIMESTAMPED:
    case SIGN_MESSAGE_FIELD:
        return true;
    default:
        return false;
    }
}

const char *sign_default_header(enum sign_scheme scheme)
{
    /*
     * One default for every single-header scheme: the value already says
     * which scheme it is (t=...,v1=... or a bare digest), and receivers that
     * copied a provider's name (X-Campsite-Signature, ...) set their own.
     */
    return sign_scheme_takes_header(scheme) ? "X-Signature" : NULL;
}

/* ---- encodings ---------------------------------------------------------- */

static size_t b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Standard alphabet, padded, no newlines; out holds b64_encoded_len(n) + 1. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict standard-alphabet base64 with optional padding. EVP_DecodeBlock is
 * not used: it skips whitespace silently and counts padding as zero bytes,
 * so a mangled secret would decode to a different key instead of failing.
 */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t pad = 0, n, need, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (pad < len && in[len - 1 - pad] == '=')
        pad++;
    if (pad > 2 || (pad && len % 4 != 0))
        return HERALD_EPARSE;
    n = len - pad;
    if (n % 4 == 1)
        return HERALD_EPARSE;
    need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return HERALD_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return HERALD_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *outlen = o;
    return 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly n bytes from 2n hex digits of either case. */
static int hex_decode(const char *in, size_t len, unsigned char *out, size_t n)
{
    if (len != 2 * n)
        return HERALD_EPARSE;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return HERALD_EPARSE;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* ---- primitives --------------------------------------------------------- */

/* The HMAC implementation, fetched once: a fetch takes a lock and a property query. */
static EVP_MAC *hmac_alg(void)
{
    static EVP_MAC *mac;
    if (!mac)
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    return mac;
}

/* A context keyed once; EVP_MAC_init(ctx, NULL, 0, NULL) later restarts it with the same key. */
static EVP_MAC_CTX *hmac_prepare(const unsigned char *k, size_t len)
{
    static char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = hmac_alg() ? EVP_MAC_CTX_new(hmac_alg()) : NULL;
    if (!ctx)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, k, len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}

static int hmac_sha256(EVP_MAC *mac, const struct sign_key *key, const struct span *parts,
                       size_t nparts, unsigned char out[MAC_LEN])
{
    if (key->hmac) {
        EVP_MAC_CTX *kctx = key->hmac;
        size_t outlen = 0;
        if (EVP_MAC_init(kctx, NULL, 0, NULL) != 1)
            goto fail;
        for (size_t i = 0; i < nparts; i++)
            if (parts[i].len && EVP_MAC_update(kctx, parts[i].p, parts[i].len) != 1)
                goto fail;
        if (EVP_MAC_final(kctx, out, &outlen, MAC_LEN) != 1 || outlen != MAC_LEN)
            goto fail;
        return 0;
    fail:
        ERR_clear_error();
        return HERALD_ECRYPTO;
    }
    {
        static char digest[] = "SHA256";
        EVP_MAC_CTX *ctx = NULL;
        OSSL_PARAM params[2];
        size_t outlen = 0;
        int rc = HERALD_ECRYPTO;

        /* EVP_MAC_init() reads a NULL key as "keep the previous one". */
        if (!key->bytes || key->len == 0)
            return HERALD_EINVAL;
        ctx = EVP_MAC_CTX_new(mac);
        if (!ctx)
            goto out;
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        if (EVP_MAC_init(ctx, key->bytes, key->len, params) != 1)
            goto out;
        for (size_t i = 0; i < nparts; i++) {
            if (parts[i].len && EVP_MAC_update(ctx, parts[i].p, parts[i].len) != 1)
                goto out;
        }
        if (EVP_MAC_final(ctx, out, &outlen, MAC_LEN) != 1 || outlen != MAC_LEN)
            goto out;
        rc = 0;
    out:
        EVP_MAC_CTX_free(ctx);
        if (rc)
            ERR_clear_error();
        return rc;
    }
}

static int ed25519_public(const unsigned char seed[ED25519_KEY_LEN],
                          unsigned char pub[ED25519_KEY_LEN])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, ED25519_KEY_LEN);
    size_t len = ED25519_KEY_LEN;
    int rc = HERALD_ECRYPTO;

    if (pkey && EVP_PKEY_get_raw_public_key(pkey, pub, &len) == 1 && len == ED25519_KEY_LEN)
        rc = 0;
    EVP_PKEY_free(pkey);
    if (rc)
        ERR_clear_error();
    return rc;
}

int sign_ed25519(const struct sign_key *key, const void *msg, size_t len,
                 unsigned char sig[SIGN_ED25519_SIG_LEN])
{
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    size_t siglen = SIGN_ED25519_SIG_LEN;
    int rc = HERALD_ECRYPTO;

    if (!key->bytes || key->len != ED25519_KEY_LEN)
        return HERALD_EINVAL;
    pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key->bytes, key->len);
    md = EVP_MD_CTX_new();
    /* Ed25519 is one-shot in OpenSSL: a NULL message pointer is not allowed. */
    if (pkey && md && EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) == 1 &&
        EVP_DigestSign(md, sig, &siglen, len ? msg : (const void *)"", len) == 1 &&
        siglen == SIGN_ED25519_SIG_LEN)
        rc = 0;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    if (rc)
        ERR_clear_error();
    return rc;
}

static bool ed25519_check(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const void *msg,
                          size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
              EVP_DigestVerify(md, sig, siglen, len ? msg : (const void *)"", len) == 1;

    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

int sign_public_key(const struct sign_key *key, char *out, size_t outlen)
{
    unsigned char pub[ED25519_KEY_LEN];
    int rc;

    if (!key->bytes || key->len != ED25519_KEY_LEN)
        return HERALD_EINVAL;
    if (outlen < 5 + b64_encoded_len(ED25519_KEY_LEN) + 1)
        return HERALD_ETOOBIG;
    rc = ed25519_public(key->bytes, pub);
    if (rc)
        return rc;
    memcpy(out, "whpk_", 5);
    b64_encode(pub, sizeof(pub), out + 5);
    return 0;
}

/* ---- keys --------------------------------------------------------------- */

/* Decodes the base64 after prefix into key, between min and max bytes. */
static int decode_b64_secret(const char *b64, const char *prefix, size_t min, size_t max,
                             struct sign_key *key, char *why, size_t whylen)
{
    size_t inlen = strlen(b64), cap = inlen / 4 * 3 + 3, n = 0;
    unsigned char *p;

    if (inlen == 0) {
        say(why, whylen, "secret has nothing after \"%s\"", prefix);
        return HERALD_EINVAL;
    }
    p = malloc(cap);
    if (!p)
        return HERALD_ENOMEM;
    if (b64_decode(b64, inlen, p, cap, &n) != 0) {
        say(why, whylen, "secret after \"%s\" is not valid base64", prefix);
        goto fail;
    }
    if (n < min || n > max) {
        say(why, whylen, "secret after \"%s\" decodes to %zu bytes, not %zu to %zu", prefix, n, min,
            max);
        goto fail;
    }
    key->bytes = p;
    key->len = n;
    return 0;
fail:
    OPENSSL_cleanse(p, cap);
    free(p);
    return HERALD_EINVAL;
}

static int decode_ed25519_secret(const char *secret, struct sign_key *key, char *why, size_t whylen)
{
    unsigned char pub[ED25519_KEY_LEN];
    int rc;

    if (has_prefix(secret, "whpk_")) {
        say(why, whylen, "secret is a \"whpk_\" public key; signing needs the \"whsk_\" key");
        return HERALD_EINVAL;
    }
    if (!has_prefix(secret, "whsk_")) {
        say(why, whylen, "secret for \"standard-webhooks-ed25519\" must start with \"whsk_\"");
        return HERALD_EINVAL;
    }
    rc = decode_b64_secret(secret + 5, "whsk_", ED25519_KEY_LEN, 2 * ED25519_KEY_LEN, key, why,
                           whylen);
    if (rc)
        return rc;
    if (key->len == ED25519_KEY_LEN)
        return 0;
    /*
     * libsodium and NaCl serialise a secret key as seed || public key. Take
     * it, but only when the halves agree, so a stray 64-byte blob is refused
     * rather than silently signing with half of it.
     */
    if (key->len == 2 * ED25519_KEY_LEN && ed25519_public(key->bytes, pub) == 0 &&
        CRYPTO_memcmp(pub, key->bytes + ED25519_KEY_LEN, ED25519_KEY_LEN) == 0) {
        OPENSSL_cleanse(key->bytes + ED25519_KEY_LEN, ED25519_KEY_LEN);
        key->len = ED25519_KEY_LEN;
        return 0;
    }
    say(why, whylen,
        "secret after \"whsk_\" decodes to %zu bytes, not a 32-byte Ed25519 seed "
        "(or a 64-byte seed and its public key)",
        key->len);
    sign_key_release(key);
    return HERALD_EINVAL;
}

static int key_decode(enum sign_scheme scheme, const char *secret, struct sign_key *key, char *why,
                      size_t whylen);

int sign_key_decode(enum sign_scheme scheme, const char *secret, struct sign_key *key, char *why,
                    size_t whylen)
{
    int rc = key_decode(scheme, secret, key, why, whylen);
    if (rc == 0 && scheme != SIGN_STANDARD_WEBHOOKS_ED25519 && key->bytes && key->len)
        key->hmac = hmac_prepare(key->bytes, key->len); /* NULL: the slow path still signs */
    return rc;
}

static int key_decode(enum sign_scheme scheme, const char *secret, struct sign_key *key, char *why,
                      size_t whylen)
{
    size_t len;

    key->bytes = NULL;
    key->len = 0;
    key->hmac = NULL;
    say(why, whylen, "%s", "");
    if ((unsigned)scheme >= SIGN_SCHEME_COUNT) {
        say(why, whylen, "unknown signature scheme %d", (int)scheme);
        return HERALD_EINVAL;
    }
    if (!secret || !*secret) {
        say(why, whylen, "secret is empty");
        return HERALD_EINVAL;
    }
    switch (scheme) {
    case SIGN_NONE:
        say(why, whylen, "scheme \"none\" takes no secret");
        return HERALD_EINVAL;
    case SIGN_STANDARD_WEBHOOKS:
        if (!has_prefix(secret, "whsec_")) {
            say(why, whylen, "secret for \"standard-webhooks\" must start with \"whsec_\"");
            return HERALD_EINVAL;
        }
        return decode_b64_secret(secret + 6, "whsec_", WHSEC_MIN, WHSEC_MAX, key, why, whylen);
    case SIGN_STANDARD_WEBHOOKS_ED25519:
        return decode_ed25519_secret(secret, key, why, whylen);
    default:
        break;
    }
    /* The plain HMAC schemes. */
    if (has_prefix(secret, "whsec_"))
        return decode_b64_secret(secret + 6, "whsec_", WHSEC_MIN, WHSEC_MAX, key, why, whylen);
    if (has_prefix(secret, "whsk_") || has_prefix(secret, "whpk_")) {
        say(why, whylen, "secret is an Ed25519 key; \"%s\" needs an HMAC secret",
            sign_scheme_name(scheme));
        return HERALD_EINVAL;
    }
    len = strlen(secret);
    if (len > PLAIN_SECRET_MAX) {
        say(why, whylen, "secret is longer than %d bytes", PLAIN_SECRET_MAX);
        return HERALD_EINVAL;
    }
    key->bytes = malloc(len);
    if (!key->bytes)
        return HERALD_ENOMEM;
    memcpy(key->bytes, secret, len);
    key->len = len;
    return 0;
}

void sign_key_release(struct sign_key *key)
{
    if (!key)
        return;
    if (key->bytes) {
        OPENSSL_cleanse(key->bytes, key->len);
        free(key->bytes);
    }
    key->bytes = NULL;
    key->len = 0;
    EVP_MAC_CTX_free(key->hmac);
    key->hmac = NULL;
}

/* ---- what is signed ----------------------------------------------------- */

/*
 * The bytes a scheme signs, as spans so the body is never copied for HMAC:
 * {id}.{timestamp}.{body}, {timestamp}.{body}, or the body alone (for
 * message-field the caller passes the message string as body).
 */
static size_t signed_content(enum sign_scheme scheme, const char *id, const char *ts,
                             const void *body, size_t body_len, struct span sp[SIGNED_PARTS_MAX])
{
    bool standard = scheme == SIGN_STANDARD_WEBHOOKS || scheme == SIGN_STANDARD_WEBHOOKS_ED25519;
    size_t n = 0;

    /* Callers of the other schemes pass NULL for what their scheme does not sign. */
    if (standard) {
        sp[n++] = (struct span){id, id ? strlen(id) : 0};
        sp[n++] = (struct span){".", 1};
    }
    if (standard || scheme == SIGN_TIMESTAMPED) {
        sp[n++] = (struct span){ts, ts ? strlen(ts) : 0};
        sp[n++] = (struct span){".", 1};
    }
    sp[n++] = (struct span){body, body_len};
    return n;
}

/* Ed25519 signs one contiguous message, so there the spans are joined. */
static int join_spans(const struct span *sp, size_t n, struct buf *out)
{
    size_t total = 0;
    int rc;

    for (size_t i = 0; i < n; i++)
        total += sp[i].len;
    buf_init(out, total);
    rc = buf_reserve(out, total);
    for (size_t i = 0; i < n && !rc; i++)
        rc = buf_append(out, sp[i].p, sp[i].len);
    return rc;
}

/*
 * The message-field scheme signs the decoded "message" string. cJSON hands
 * back a C string, so a message holding \u0000 would be cut there; herald's
 * own message bodies escape event JSON, which cannot contain a raw NUL.
 */
static int message_from_body(const char *body, size_t len, char **out, size_t *outlen)
{
    const char *end = NULL;
    cJSON *root;
    const cJSON *m;
    int rc = HERALD_EINVAL;

    *out = NULL;
    *outlen = 0;
    if (!body || len == 0)
        return HERALD_EINVAL;
    /*
     * cJSON's require_null_terminated wants a NUL inside the given length,
     * so trailing bytes after the JSON value are checked here instead.
     */
    root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root)
        return HERALD_EINVAL;
    while (end && end < body + len && *end && strchr(" \t\r\n", *end))
        end++;
    m = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (end == body + len && cJSON_IsObject(root) && cJSON_IsString(m) && m->valuestring) {
        *outlen = strlen(m->valuestring);
        *out = malloc(*outlen + 1);
        rc = *out ? 0 : HERALD_ENOMEM;
        if (*out)
            memcpy(*out, m->valuestring, *outlen + 1);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- checks shared by sender and receiver -------------------------------- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int check_header_name(const char *name, char *why, size_t whylen)
{
    static const char *const framing[] = {"host", "content-length", "content-type",
                                          "transfer-encoding", "connection"};
    size_t len = strlen(name);

    if (len == 0 || len > HEADER_NAME_MAX) {
        say(why, whylen, "header name \"%.80s\" must be 1 to %zu characters", name,
            HEADER_NAME_MAX);
        return HERALD_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar(name[i])) {
            say(why, whylen, "header name \"%.80s\" is not an HTTP token (byte %zu)", name, i);
            return HERALD_EINVAL;
        }
    }
    for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++) {
        if (strcasecmp(name, framing[i]) == 0) {
            say(why, whylen, "header name \"%s\" is reserved for HTTP framing", name);
            return HERALD_EINVAL;
        }
    }
    return 0;
}

/*
 * The id goes into a header, so it must be visible ASCII; the same rule as
 * event_check_ident(), so an event that parsed can always be signed. The
 * spec suggests also refusing '.', to keep {id}.{timestamp}.{body}
 * unambiguous, but herald's ids come from trusted producers, the timestamp
 * is herald's own digits, and refusing here would fail deliveries that can
 * never succeed; event.c is the place to tighten ids if that is wanted.
 */
static int check_msg_id(const char *id, char *why, size_t whylen)
{
    size_t len;

    if (!id || !*id) {
        say(why, whylen, "webhook-id is empty");
        return HERALD_EINVAL;
    }
    len = strlen(id);
    if (len > MSG_ID_MAX) {
        say(why, whylen, "webhook-id is longer than %d bytes", MSG_ID_MAX);
        return HERALD_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f) {
            say(why, whylen,
                "webhook-id has byte 0x%02x at offset %zu; only visible ASCII is allowed", c, i);
            return HERALD_EINVAL;
        }
    }
    return 0;
}

static int check_request(enum sign_scheme scheme, const char *header_name,
                         const struct sign_input *in, bool parse_message, char *why, size_t whylen)
{
    int rc;

    if ((unsigned)scheme >= SIGN_SCHEME_COUNT) {
        say(why, whylen, "unknown signature scheme %d", (int)scheme);
        return HERALD_EINVAL;
    }
    if (header_name && sign_scheme_takes_header(scheme)) {
        rc = check_header_name(header_name, why, whylen);
        if (rc)
            return rc;
    }
    if (!in || scheme == SIGN_NONE)
        return 0;
    if (in->timestamp < 0) {
        say(why, whylen, "timestamp %" PRId64 " is negative", in->timestamp);
        return HERALD_EINVAL;
    }
    if (!in->body && in->body_len) {
        say(why, whylen, "body is NULL but has a length");
        return HERALD_EINVAL;
    }
    if (scheme == SIGN_STANDARD_WEBHOOKS || scheme == SIGN_STANDARD_WEBHOOKS_ED25519)
        return check_msg_id(in->msg_id, why, whylen);
    if (scheme == SIGN_MESSAGE_FIELD && !in->message && parse_message) {
        char *msg;
        size_t len;
        rc = message_from_body(in->body, in->body_len, &msg, &len);
        free(msg);
        if (rc == HERALD_EINVAL)
            say(why, whylen, "body is not a JSON object with a string \"message\" member");
        return rc;
    }
    return 0;
}

int sign_request_check(enum sign_scheme scheme, const char *header_name,
                       const struct sign_input *in, char *why, size_t whylen)
{
    say(why, whylen, "%s", "");
    return check_request(scheme, header_name, in, true, why, whylen);
}

/* ---- sender ------------------------------------------------------------- */

static int add_header(struct sign_headers *out, const char *name, struct buf *val)
{
    char *v;

    if (out->n >= SIGN_MAX_HEADERS)
        return HERALD_EINVAL;
    v = buf_detach(val, NULL);
    if (!v)
        return HERALD_ENOMEM;
    snprintf(out->h[out->n].name, sizeof(out->h[out->n].name), "%s", name);
    out->h[out->n].value = v;
    out->n++;
    return 0;
}

static int add_header_str(struct sign_headers *out, const char *name, const char *value,
                          struct buf *val)
{
    int rc = buf_appends(val, value);
    return rc ? rc : add_header(out, name, val);
}

/* Appends one key's signature to the header value in the scheme's syntax. */
static int append_signature(enum sign_scheme scheme, EVP_MAC *mac, const struct sign_key *key,
                            const struct span *sp, size_t nsp, const struct buf *joined, bool first,
                            struct buf *val)
{
    unsigned char raw[SIGN_ED25519_SIG_LEN];
    char text[2 * SIGN_ED25519_SIG_LEN + 1];
    int rc;

    if (scheme == SIGN_STANDARD_WEBHOOKS_ED25519) {
        rc = sign_ed25519(key, joined->data, joined->len, raw);
        if (rc)
            return rc;
        b64_encode(raw, SIGN_ED25519_SIG_LEN, text);
        return buf_appendf(val, "%sv1a,%s", first ? "" : " ", text);
    }
    rc = hmac_sha256(mac, key, sp, nsp, raw);
    if (rc)
        return rc;
    switch (scheme) {
    case SIGN_STANDARD_WEBHOOKS:
        b64_encode(raw, MAC_LEN, text);
        return buf_appendf(val, "%sv1,%s", first ? "" : " ", text);
    case SIGN_TIMESTAMPED:
        hex_encode(raw, MAC_LEN, text);
        return buf_appendf(val, ",v1=%s", text);
    case SIGN_HMAC_SHA256_HEX:
        hex_encode(raw, MAC_LEN, text);
        return buf_appendf(val, "%s%s", first ? "" : ",", text);
    default:
        b64_encode(raw, MAC_LEN, text);
        return buf_appendf(val, "%s%s", first ? "" : ",", text);
    }
}

int sign_request(enum sign_scheme scheme, const char *header_name, const struct sign_key *keys,
                 size_t nkeys, const struct sign_input *in, struct sign_headers *out)
{
    struct span sp[SIGNED_PARTS_MAX];
    struct buf val, joined;
    EVP_MAC *mac = NULL;
    char *message = NULL;
    const char *signed_body;
    size_t nsp, signed_len, message_len = 0;
    const char *name;
    char ts[24];
    int rc;

    memset(out, 0, sizeof(*out));
    buf_init(&val, HEADER_VALUE_MAX);
    buf_init(&joined, 0);
    rc = check_request(scheme, header_name, in, false, NULL, 0);
    if (rc || scheme == SIGN_NONE)
        goto out;
    if (!in) {
        rc = HERALD_EINVAL;
        goto out;
    }
    snprintf(ts, sizeof(ts), "%" PRId64, in->timestamp);
    name = header_name ? header_name : sign_default_header(scheme);
    if (scheme == SIGN_STANDARD_WEBHOOKS || scheme == SIGN_STANDARD_WEBHOOKS_ED25519) {
        name = "webhook-signature";
        rc = add_header_str(out, "webhook-id", in->msg_id, &val);
        if (!rc)
            rc = add_header_str(out, "webhook-timestamp", ts, &val);
        if (rc)
            goto out;
    }
    if (nkeys == 0)
        goto out;

    signed_body = in->body;
    signed_len = in->body_len;
    if (scheme == SIGN_MESSAGE_FIELD) {
        if (in->message) {
            signed_body = in->message;
            signed_len = in->message_len;
        } else {
            rc = message_from_body(in->body, in->body_len, &message, &message_len);
            if (rc)
                goto out;
            signed_body = message;
            signed_len = message_len;
        }
    }
    nsp = signed_content(scheme, in->msg_id, ts, signed_body, signed_len, sp);
    if (scheme == SIGN_STANDARD_WEBHOOKS_ED25519) {
        rc = join_spans(sp, nsp, &joined);
    } else {
        mac = hmac_alg();
        rc = mac ? 0 : HERALD_ECRYPTO;
    }
    if (!rc && scheme == SIGN_TIMESTAMPED)
        rc = buf_appendf(&val, "t=%s", ts);
    for (size_t i = 0; i < nkeys && !rc; i++)
        rc = append_signature(scheme, mac, &keys[i], sp, nsp, &joined, i == 0, &val);
    if (!rc)
        rc = add_header(out, name, &val);
out:
    if (rc)
        ERR_clear_error();
    free(message);
    buf_release(&joined);
    buf_release(&val);
    if (rc)
        sign_headers_release(out);
    return rc;
}

void sign_headers_release(struct sign_headers *out)
{
    if (!out)
        return;
    for (size_t i = 0; i < out->n; i++) {
        free(out->h[i].value);
        out->h[i].value = NULL;
    }
    out->n = 0;
}

/* ---- receiver ----------------------------------------------------------- */

struct verifier {
    enum sign_scheme scheme;
    const struct sign_key *key; /* HMAC schemes */
    EVP_MAC *mac;
    EVP_PKEY *pkey; /* Ed25519 */
    struct span sp[SIGNED_PARTS_MAX];
    size_t nsp;
    struct buf joined;
    unsigned char expect[MAC_LEN];
    size_t candidates;
};

struct headers {
    const char *const *names;
    const char *const *values;
    size_t n;
};

/* Finds the one header called name (case-insensitive); refuses repeats. */
static int header_one(const struct headers *hs, const char *name, const char **value, char *why,
                      size_t whylen)
{
    size_t seen = 0;

    *value = NULL;
    for (size_t i = 0; i < hs->n; i++) {
        if (strcasecmp(hs->names[i], name) == 0) {
            if (!*value)
                *value = hs->values[i];
            seen++;
        }
    }
    if (seen == 0) {
        say(why, whylen, "missing header \"%s\"", name);
        return HERALD_EREFUSED;
    }
    if (seen > 1) {
        say(why, whylen, "header \"%s\" appears %zu times", name, seen);
        return HERALD_EREFUSED;
    }
    return 0;
}

/* Canonical unix seconds, then the tolerance in both directions. */
static int check_timestamp(const char *ts, const char *hname, int64_t now, int64_t tolerance,
                           char *why, size_t whylen)
{
    size_t len = strlen(ts);
    int64_t t = 0;

    if (len == 0 || len > 18 || (len > 1 && ts[0] == '0') || strspn(ts, "0123456789") != len) {
        say(why, whylen, "header \"%s\" value \"%.40s\" is not unix seconds", hname, ts);
        return HERALD_EREFUSED;
    }
    for (size_t i = 0; i < len; i++)
        t = t * 10 + (ts[i] - '0');
    if (tolerance < 0)
        return 0;
    /* Unsigned differences: the true gap fits in 64 bits, a signed one may not. */
    if (now > t && (uint64_t)now - (uint64_t)t > (uint64_t)tolerance) {
        say(why, whylen,
            "timestamp %" PRId64 " is %" PRIu64 " s in the past, beyond the %" PRId64
            " s tolerance",
            t, (uint64_t)now - (uint64_t)t, tolerance);
        return HERALD_EREFUSED;
    }
    if (t > now && (uint64_t)t - (uint64_t)now > (uint64_t)tolerance) {
        say(why, whylen,
            "timestamp %" PRId64 " is %" PRIu64 " s in the future, beyond the %" PRId64
            " s tolerance",
            t, (uint64_t)t - (uint64_t)now, tolerance);
        return HERALD_EREFUSED;
    }
    return 0;
}

/* Computes what a matching signature must be, once per request. */
static int verifier_prepare(struct verifier *v)
{
    if (v->scheme == SIGN_STANDARD_WEBHOOKS_ED25519)
        return join_spans(v->sp, v->nsp, &v->joined);
    return hmac_sha256(v->mac, v->key, v->sp, v->nsp, v->expect);
}

/* Does one encoded signature (not NUL-terminated) match? */
static bool verifier_match(struct verifier *v, const char *sig, size_t len)
{
    unsigned char raw[SIGN_ED25519_SIG_LEN];
    size_t n = 0;

    v->candidates++;
    switch (v->scheme) {
    case SIGN_STANDARD_WEBHOOKS_ED25519:
        return b64_decode(sig, len, raw, sizeof(raw), &n) == 0 && n == SIGN_ED25519_SIG_LEN &&
               ed25519_check(v->pkey, raw, n, v->joined.data, v->joined.len);
    case SIGN_HMAC_SHA256_HEX:
    case SIGN_TIMESTAMPED:
        return hex_decode(sig, len, raw, MAC_LEN) == 0 &&
               CRYPTO_memcmp(raw, v->expect, MAC_LEN) == 0;
    default:
        return b64_decode(sig, len, raw, MAC_LEN, &n) == 0 && n == MAC_LEN &&
               CRYPTO_memcmp(raw, v->expect, MAC_LEN) == 0;
    }
}

/* webhook-signature: space-separated "<version>,<base64>" entries. */
static bool match_standard_list(struct verifier *v, const char *list, const char *version)
{
    size_t vlen = strlen(version);

    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " \t");
        if (len > vlen && strncmp(p, version, vlen) == 0 && p[vlen] == ',' &&
            verifier_match(v, p + vlen + 1, len - vlen - 1))
            return true;
        p += len;
        p += strspn(p, " \t");
    }
    return false;
}

static int verify_standard(struct verifier *v, const struct headers *hs, const char *body,
                           size_t body_len, int64_t now, int64_t tolerance, char *why,
                           size_t whylen)
{
    const char *version = v->scheme == SIGN_STANDARD_WEBHOOKS ? "v1" : "v1a";
    const char *id, *ts;
    bool seen = false;
    int rc;

    rc = header_one(hs, "webhook-id", &id, why, whylen);
    if (!rc)
        rc = header_one(hs, "webhook-timestamp", &ts, why, whylen);
    if (rc)
        return rc;
    if (!*id) {
        say(why, whylen, "header \"webhook-id\" is empty");
        return HERALD_EREFUSED;
    }
    rc = check_timestamp(ts, "webhook-timestamp", now, tolerance, why, whylen);
    if (rc)
        return rc;
    v->nsp = signed_content(v->scheme, id, ts, body, body_len, v->sp);
    rc = verifier_prepare(v);
    if (rc)
        return rc;
    /* Every webhook-signature line counts, as if a proxy had split the list. */
    for (size_t i = 0; i < hs->n; i++) {
        if (strcasecmp(hs->names[i], "webhook-signature") != 0)
            continue;
        seen = true;
        if (match_standard_list(v, hs->values[i], version))
            return 0;
    }
    if (!seen)
        say(why, whylen, "missing header \"webhook-signature\"");
    else if (v->candidates == 0)
        say(why, whylen, "header \"webhook-signature\" carries no \"%s,\" signature", version);
    else
        say(why, whylen, "no \"%s\" signature in \"webhook-signature\" matches the %s", version,
            v->scheme == SIGN_STANDARD_WEBHOOKS ? "secret" : "public key");
    return HERALD_EREFUSED;
}

/* A bare list: signatures separated by commas and/or whitespace. */
static int verify_plain(struct verifier *v, const struct headers *hs, const char *hname,
                        const char *body, size_t body_len, char *why, size_t whylen)
{
    char *message = NULL;
    size_t message_len = 0;
    bool seen = false;
    int rc;

    if (v->scheme == SIGN_MESSAGE_FIELD) {
        rc = message_from_body(body, body_len, &message, &message_len);
        if (rc == HERALD_EINVAL) {
            say(why, whylen, "body is not a JSON object with a string \"message\" member");
            return HERALD_EREFUSED;
        }
        if (rc)
            return rc;
        body = message;
        body_len = message_len;
    }
    v->nsp = signed_content(v->scheme, NULL, NULL, body, body_len, v->sp);
    rc = verifier_prepare(v);
    free(message);
    if (rc)
        return rc;
    for (size_t i = 0; i < hs->n; i++) {
        if (strcasecmp(hs->names[i], hname) != 0)
            continue;
        seen = true;
        for (const char *p = hs->values[i] + strspn(hs->values[i], ", \t"); *p;) {
            size_t len = strcspn(p, ", \t");
            if (verifier_match(v, p, len))
                return 0;
            p += len;
            p += strspn(p, ", \t");
        }
    }
    if (!seen)
        say(why, whylen, "missing header \"%s\"", hname);
    else if (v->candidates == 0)
        say(why, whylen, "header \"%s\" is empty", hname);
    else
        say(why, whylen, "no signature in \"%s\" matches the secret", hname);
    return HERALD_EREFUSED;
}

/* "t=<unix seconds>,v1=<hex>[,v1=<hex>...]"; other keys are ignored. */
static int verify_timestamped(struct verifier *v, const struct headers *hs, const char *hname,
                              const char *body, size_t body_len, int64_t now, int64_t tolerance,
                              char *why, size_t whylen)
{
    char ts[20] = "";
    const char *value, *p;
    bool have_t = false;
    int rc;

    rc = header_one(hs, hname, &value, why, whylen);
    if (rc)
        return rc;
    for (p = value; *p;) {
        size_t len;
        p += strspn(p, " \t");
        len = strcspn(p, ",");
        if (len >= 2 && strncmp(p, "t=", 2) == 0) {
            size_t tlen = len - 2;
            while (tlen && (p[2 + tlen - 1] == ' ' || p[2 + tlen - 1] == '\t'))
                tlen--;
            if (have_t || tlen >= sizeof(ts)) {
                say(why, whylen, "header \"%s\" has %s \"t=\"", hname,
                    have_t ? "more than one" : "an overlong");
                return HERALD_EREFUSED;
            }
            memcpy(ts, p + 2, tlen);
            ts[tlen] = '\0';
            have_t = true;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (!have_t) {
        say(why, whylen, "header \"%s\" has no \"t=\"; expected \"t=<unix seconds>,v1=<hex>\"",
            hname);
        return HERALD_EREFUSED;
    }
    rc = check_timestamp(ts, hname, now, tolerance, why, whylen);
    if (rc)
        return rc;
    v->nsp = signed_content(v->scheme, NULL, ts, body, body_len, v->sp);
    rc = verifier_prepare(v);
    if (rc)
        return rc;
    for (p = value; *p;) {
        size_t len, slen;
        p += strspn(p, " \t");
        len = strcspn(p, ",");
        slen = len;
        while (slen && (p[slen - 1] == ' ' || p[slen - 1] == '\t'))
            slen--;
        if (slen > 3 && strncmp(p, "v1=", 3) == 0 && verifier_match(v, p + 3, slen - 3))
            return 0;
        p += len;
        if (*p == ',')
            p++;
    }
    if (v->candidates == 0)
        say(why, whylen, "header \"%s\" carries no \"v1=\" signature", hname);
    else
        say(why, whylen, "no \"v1=\" signature in \"%s\" matches the secret", hname);
    return HERALD_EREFUSED;
}

/* The verification key: "whpk_" directly, or the public half of "whsk_". */
static int ed25519_verify_key(const char *secret, EVP_PKEY **pkey, char *why, size_t whylen)
{
    unsigned char pub[ED25519_KEY_LEN];
    struct sign_key key = {NULL, 0, NULL};
    size_t n = 0;
    int rc;

    *pkey = NULL;
    if (secret && has_prefix(secret, "whpk_")) {
        if (b64_decode(secret + 5, strlen(secret + 5), pub, sizeof(pub), &n) != 0 ||
            n != ED25519_KEY_LEN) {
            say(why, whylen, "public key after \"whpk_\" is not 32 bytes of base64");
            return HERALD_EINVAL;
        }
    } else {
        rc = sign_key_decode(SIGN_STANDARD_WEBHOOKS_ED25519, secret, &key, why, whylen);
        if (rc == HERALD_EINVAL && secret && !has_prefix(secret, "whsk_"))
            say(why, whylen,
                "key for \"standard-webhooks-ed25519\" must start with \"whpk_\" "
                "or \"whsk_\"");
        if (rc)
            return rc;
        rc = ed25519_public(key.bytes, pub);
        sign_key_release(&key);
        if (rc)
            return rc;
    }
    *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
    if (!*pkey) {
        ERR_clear_error();
        return HERALD_ECRYPTO;
    }
    return 0;
}

int sign_verify(enum sign_scheme scheme, const char *header_name, const char *secret,
                const char *const *names, const char *const *values, size_t nheaders,
                const char *body, size_t body_len, int64_t now, int64_t tolerance_s, char *why,
                size_t whylen)
{
    const struct headers hs = {names, values, nheaders};
    struct verifier v;
    struct sign_key key = {NULL, 0, NULL};
    const char *hname;
    int rc;

    say(why, whylen, "%s", "");
    memset(&v, 0, sizeof(v));
    v.scheme = scheme;
    buf_init(&v.joined, 0);
    rc = check_request(scheme, header_name, NULL, false, why, whylen);
    if (rc || scheme == SIGN_NONE)
        return rc;
    if (!body && body_len) {
        say(why, whylen, "body is NULL but has a length");
        return HERALD_EINVAL;
    }
    hname = header_name ? header_name : sign_default_header(scheme);
    if (scheme == SIGN_STANDARD_WEBHOOKS_ED25519) {
        rc = ed25519_verify_key(secret, &v.pkey, why, whylen);
    } else {
        rc = sign_key_decode(scheme, secret, &key, why, whylen);
        v.key = &key;
        if (!rc) {
            v.mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
            rc = v.mac ? 0 : HERALD_ECRYPTO;
        }
    }
    if (rc)
        goto out;
    switch (scheme) {
    case SIGN_STANDARD_WEBHOOKS:
    case SIGN_STANDARD_WEBHOOKS_ED25519:
        rc = verify_standard(&v, &hs, body, body_len, now, tolerance_s, why, whylen);
        break;
    case SIGN_TIMESTAMPED:
        rc = verify_timestamped(&v, &hs, hname, body, body_len, now, tolerance_s, why, whylen);
        break;
    default:
        rc = verify_plain(&v, &hs, hname, body, body_len, why, whylen);
        break;
    }
out:
    OPENSSL_cleanse(v.expect, sizeof(v.expect));
    buf_release(&v.joined);
    EVP_PKEY_free(v.pkey);
    EVP_MAC_free(v.mac);
    ERR_clear_error();
    sign_key_release(&key);
    return rc;
}
