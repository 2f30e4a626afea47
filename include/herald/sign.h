/*
 * Webhook signatures: every scheme of design.md, as pure functions.
 *
 * A subscription names one scheme and a list of secrets. Each secret is
 * decoded once into a struct sign_key (when the subscription is loaded), and
 * every request is signed at send time with all of them, so a receiver that
 * holds either the old or the new key during a rotation verifies.
 *
 * Ownership: sign_key holds key bytes on the heap and sign_key_release()
 * cleanses them before freeing. struct sign_headers owns its values.
 */
#ifndef HERALD_SIGN_H
#define HERALD_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGN_SCHEME_MAP(XX)                                                                        \
    XX(STANDARD_WEBHOOKS, "standard-webhooks")                                                     \
    XX(STANDARD_WEBHOOKS_ED25519, "standard-webhooks-ed25519")                                     \
    XX(HMAC_SHA256_HEX, "hmac-sha256-hex")                                                         \
    XX(HMAC_SHA256_BASE64, "hmac-sha256-base64")                                                   \
    XX(TIMESTAMPED, "timestamped")                                                                 \
    XX(MESSAGE_FIELD, "message-field")                                                             \
    XX(NONE, "none")

enum sign_scheme {
#define XX(id, name) SIGN_##id,
    SIGN_SCHEME_MAP(XX)
#undef XX
        SIGN_SCHEME_COUNT
};

/* "standard-webhooks" -> SIGN_STANDARD_WEBHOOKS; 0 or HERALD_EINVAL. */
int sign_scheme_parse(const char *name, enum sign_scheme *out);
const char *sign_scheme_name(enum sign_scheme scheme);
/* True for schemes whose single signature header name is configurable. */
bool sign_scheme_takes_header(enum sign_scheme scheme);
/* Default header name for those schemes ("X-Signature", ...); NULL otherwise. */
const char *sign_default_header(enum sign_scheme scheme);

/* Decoded key material for one secret. */
struct sign_key {
    unsigned char *bytes; /* HMAC key, or the Ed25519 private key (seed) */
    size_t len;
    void *hmac; /* HMAC schemes: a keyed EVP_MAC_CTX, re-initialised per request */
};

/*
 * Decodes one configured secret for a scheme: "whsec_<base64>" for
 * standard-webhooks, "whsk_<base64>" for the Ed25519 variant, and for the
 * plain HMAC schemes the UTF-8 bytes of the secret as written (a "whsec_"
 * prefix is decoded like standard-webhooks). A "whsec_" key decodes to 24
 * to 64 bytes (the spec's 192 to 512 bits); "whsk_" holds the 32-byte seed
 * (a 64-byte seed||public key is accepted when the halves agree). On
 * failure returns HERALD_EINVAL and writes the reason (never the secret)
 * into why.
 */
int sign_key_decode(enum sign_scheme scheme, const char *secret, struct sign_key *key, char *why,
                    size_t whylen);
void sign_key_release(struct sign_key *key);

/* What one request's signature covers. */
struct sign_input {
    const char *msg_id; /* webhook-id: the event id */
    int64_t timestamp;  /* unix seconds, fresh for every attempt */
    const char *body;   /* the exact bytes sent */
    size_t body_len;
    const char *message; /* message-field: the "message" string's bytes */
    size_t message_len;
};

#define SIGN_MAX_HEADERS 3

struct sign_header {
    char name[64];
    char *value; /* heap, NUL-terminated */
};

struct sign_headers {
    struct sign_header h[SIGN_MAX_HEADERS];
    size_t n;
};

/*
 * Computes the headers herald sends for one request. header_name overrides
 * the scheme's default where the scheme takes one (NULL: default).
 * Every key signs; with no keys the Standard Webhooks schemes still send
 * webhook-id and webhook-timestamp and the other schemes send nothing.
 * For message-field, a NULL in->message means "take the "message" member
 * of the body". Returns 0, HERALD_ENOMEM, HERALD_ECRYPTO, or HERALD_EINVAL
 * for what sign_request_check() refuses. out is overwritten and must be
 * released with sign_headers_release() whatever the result.
 */
int sign_request(enum sign_scheme scheme, const char *header_name, const struct sign_key *keys,
                 size_t nkeys, const struct sign_input *in, struct sign_headers *out);
void sign_headers_release(struct sign_headers *out);

/*
 * Says why sign_request() would refuse: a header_name that is not an HTTP
 * token (or names a framing header), a webhook-id that is not 1 to 256
 * visible ASCII characters (event_check_ident's rule), a negative
 * timestamp, or a message-field body with no string "message" member. in
 * may be NULL to check only header_name (when a subscription is loaded).
 * 0 or HERALD_EINVAL with the reason in why.
 */
int sign_request_check(enum sign_scheme scheme, const char *header_name,
                       const struct sign_input *in, char *why, size_t whylen);

#define SIGN_ED25519_SIG_LEN 64
#define SIGN_PUBLIC_KEY_MAX  64 /* "whpk_" + base64 of 32 bytes + NUL */

/* Ed25519 over arbitrary bytes with a decoded "whsk_" key; for tests. */
int sign_ed25519(const struct sign_key *key, const void *msg, size_t len,
                 unsigned char sig[SIGN_ED25519_SIG_LEN]);
/* Writes "whpk_<base64>", the public half of a decoded "whsk_" key. */
int sign_public_key(const struct sign_key *key, char *out, size_t outlen);

/*
 * Receiver side, for `herald verify` and tests: checks the given request
 * headers (name/value pairs, names case-insensitive) against body with the
 * secret (for Ed25519 a "whpk_" public key or a "whsk_" secret key).
 * now/tolerance_s bound the timestamp of timestamped schemes in both
 * directions (a negative tolerance_s skips that check). Any one matching
 * signature is enough. Returns 0 when valid, HERALD_EREFUSED with the reason
 * in why when not, HERALD_EINVAL when the secret itself is unusable, or
 * HERALD_ENOMEM / HERALD_ECRYPTO.
 */
int sign_verify(enum sign_scheme scheme, const char *header_name, const char *secret,
                const char *const *names, const char *const *values, size_t nheaders,
                const char *body, size_t body_len, int64_t now, int64_t tolerance_s, char *why,
                size_t whylen);

#endif
