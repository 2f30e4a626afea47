/*
 * Subscription parsing, validation and matching; see subs.h.
 *
 * Validation is strict because a subscription is written by one system (a
 * control plane or `herald subs put`) and read by many workers: a document
 * that would make a worker misbehave must be refused where it is written,
 * naming the field, rather than discovered on the delivery path.
 */
#include "herald/subs.h"
#include "herald/err.h"
#include "herald/event.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct verr {
    char *field;
    size_t fieldlen;
    char *why;
    size_t whylen;
};

static int refuse(struct verr *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct verr *e, const char *field, const char *fmt, ...)
{
    va_list ap;
    if (e->field && e->fieldlen)
        snprintf(e->field, e->fieldlen, "%s", field);
    if (e->why && e->whylen) {
        va_start(ap, fmt);
        vsnprintf(e->why, e->whylen, fmt, ap);
        va_end(ap);
    }
    return HERALD_EINVAL;
}

const char *subs_method_name(enum subs_method m)
{
    switch (m) {
    case SUBS_PUT:
        return "PUT";
    case SUBS_PATCH:
        return "PATCH";
    case SUBS_POST:
    default:
        return "POST";
    }
}

struct sub *subs_ref(struct sub *sub)
{
    sub->refs++;
    return sub;
}

void subs_unref(struct sub *sub)
{
    if (!sub || --sub->refs > 0)
        return;
    free(sub->id);
    free(sub->tenant);
    free(sub->url);
    free(sub->content_type);
    strlist_release(&sub->events);
    free(sub->disabled_reason);
    free(sub->signature_header);
    for (size_t i = 0; i < sub->nkeys; i++)
        sign_key_release(&sub->keys[i]);
    free(sub->keys);
    for (size_t i = 0; i < sub->nheaders; i++) {
        free(sub->headers[i].key);
        free(sub->headers[i].value);
    }
    free(sub->headers);
    free(sub);
}

bool subs_pattern_matches(const char *pattern, const char *type)
{
    size_t n = strlen(pattern);
    if (n == 1 && pattern[0] == '*')
        return true;
    if (n >= 2 && pattern[n - 1] == '*' && pattern[n - 2] == '.')
        return strncmp(pattern, type, n - 1) == 0;
    return strcmp(pattern, type) == 0;
}

bool subs_matches(const struct sub *sub, const char *type)
{
    if (!sub->active)
        return false;
    for (size_t i = 0; i < sub->events.n; i++)
        if (subs_pattern_matches(sub->events.v[i], type))
            return true;
    return false;
}

bool subs_header_reserved(const char *name, const char *signature_header)
{
    static const char *const reserved[] = {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "content-type",
        "te",
        "trailer",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "expect",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "user-agent",
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return signature_header && strcasecmp(name, signature_header) == 0;
}

/* RFC 9110 token characters, for header names. */
static bool is_token(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

/* Header values: visible ASCII, spaces and tabs, and UTF-8 bytes; no CR, LF, NUL. */
static bool is_header_value(const char *s)
{
    if (strlen(s) > 4096)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool is_sub_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SUBS_ID_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_-.:", *s))
            return false;
    return true;
}

static int check_url(const char *url, struct verr *e)
{
    CURLU *u;
    char *scheme = NULL, *user = NULL, *host = NULL;
    int rc = 0;

    if (strlen(url) > SUBS_URL_MAX)
        return refuse(e, "url", "longer than %d characters", SUBS_URL_MAX);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return refuse(e, "url", "contains a space or control character");
    u = curl_url();
    if (!u)
        return HERALD_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rc = refuse(e, "url", "not a valid absolute URL");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = refuse(e, "url", "the scheme must be http or https");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        rc = refuse(e, "url", "credentials in the URL are not allowed; use headers");
        goto done;
    }
    /* curl reads "https:///x" and "http:/x" as host "x": insist on "//" and an authority. */
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host ||
        strncmp(url + strlen(scheme), "://", 3) != 0 || strchr("/?#", url[strlen(scheme) + 3])) {
        rc = refuse(e, "url", "the URL has no host");
        goto done;
    }
done:
    curl_free(scheme);
    curl_free(user);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int check_pattern(const char *p)
{
    size_t n = strlen(p);
    if (n == 1 && p[0] == '*')
        return 0;
    if (event_check_ident(p, EVENT_TYPE_MAX))
        return HERALD_EINVAL;
    /* A '*' may only appear as the final ".*" of a prefix pattern. */
    for (size_t i = 0; i < n; i++)
        if (p[i] == '*' && !(i == n - 1 && i >= 2 && p[i - 1] == '.'))
            return HERALD_EINVAL;
    return 0;
}

static int dup_str(char **dst, const char *s)
{
    *dst = strdup(s);
    return *dst ? 0 : HERALD_ENOMEM;
}

/* Reads an optional integer member within [min, max]; absent leaves *out untouched. */
static int get_int(const cJSON *root, const char *name, int64_t min, int64_t max, int64_t *out,
                   struct verr *e)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, name);
    double d;
    if (!m)
        return 0;
    if (!cJSON_IsNumber(m))
        return refuse(e, name, "must be an integer");
    d = m->valuedouble;
    /* Range first: converting an out-of-range double to int64_t is undefined. */
    if (d < (double)min || d > (double)max || d != (double)(int64_t)d)
        return refuse(e, name, "must be an integer from %lld to %lld", (long long)min,
                      (long long)max);
    *out = (int64_t)d;
    return 0;
}

static const char *const known_fields[] = {
    "id",
    "tenant",
    "name",
    "description",
    "metadata",
    "url",
    "method",
    "content_type",
    "events",
    "status",
    "disabled_reason",
    "secrets",
    "signature",
    "signature_header",
    "payload",
    "headers",
    "max_attempts",
    "timeout_ms",
    "max_in_flight",
    "rate_limit_per_s",
    "created_at",
    "updated_at",
};

static int parse_doc(const cJSON *root, struct sub *sub, struct verr *e)
{
    const cJSON *m;
    int64_t v;
    int rc;

    if (!cJSON_IsObject(root))
        return refuse(e, "(document)", "a subscription is a JSON object");
    for (const cJSON *it = root->child; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof(known_fields) / sizeof(known_fields[0]); i++)
            known = known || strcmp(it->string, known_fields[i]) == 0;
        if (!known)
            return *it->string ? refuse(e, it->string, "unknown field")
                               : refuse(e, "(document)", "a member has an empty name");
        /*
         * cJSON keeps every copy of a repeated member and herald reads the
         * first, while other parsers keep the last: a control plane could
         * check one "url" and herald deliver to another, and disabling would
         * rewrite only one "status". Every member is a known field, so this
         * loop is short.
         */
        for (const cJSON *prev = root->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, it->string) == 0)
                return refuse(e, it->string, "appears more than once");
    }

    m = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!cJSON_IsString(m) || !is_sub_id(m->valuestring))
        return refuse(e, "id", "required: 1 to %d of letters, digits, '_', '-', '.', ':'",
                      SUBS_ID_MAX);
    if ((rc = dup_str(&sub->id, m->valuestring)))
        return rc;

    m = cJSON_GetObjectItemCaseSensitive(root, "tenant");
    if (!cJSON_IsString(m) || event_check_ident(m->valuestring, EVENT_TENANT_MAX))
        return refuse(e, "tenant", "required: 1 to %d visible ASCII characters", EVENT_TENANT_MAX);
    if ((rc = dup_str(&sub->tenant, m->valuestring)))
        return rc;

    for (size_t i = 0; i < 2; i++) {
        const char *name = i ? "description" : "name";
        m = cJSON_GetObjectItemCaseSensitive(root, name);
        if (m && (!cJSON_IsString(m) || strlen(m->valuestring) > 1024))
            return refuse(e, name, "must be a string of at most 1024 characters");
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (m && !cJSON_IsObject(m))
        return refuse(e, "metadata", "must be an object");

    m = cJSON_GetObjectItemCaseSensitive(root, "url");
    if (!cJSON_IsString(m))
        return refuse(e, "url", "required: an http or https URL");
    if ((rc = check_url(m->valuestring, e)))
        return rc;
    if ((rc = dup_str(&sub->url, m->valuestring)))
        return rc;

    sub->method = SUBS_POST;
    m = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (m) {
        if (!cJSON_IsString(m))
            return refuse(e, "method", "must be POST, PUT or PATCH");
        if (!strcmp(m->valuestring, "POST"))
            sub->method = SUBS_POST;
        else if (!strcmp(m->valuestring, "PUT"))
            sub->method = SUBS_PUT;
        else if (!strcmp(m->valuestring, "PATCH"))
            sub->method = SUBS_PATCH;
        else
            return refuse(e, "method", "must be POST, PUT or PATCH");
    }

    m = cJSON_GetObjectItemCaseSensitive(root, "content_type");
    if (m && (!cJSON_IsString(m) || !*m->valuestring || strlen(m->valuestring) > 256 ||
              !is_header_value(m->valuestring)))
        return refuse(e, "content_type", "must be a media type without control characters");
    if ((rc = dup_str(&sub->content_type, m ? m->valuestring : "application/json")))
        return rc;

    m = cJSON_GetObjectItemCaseSensitive(root, "events");
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) < 1 || cJSON_GetArraySize(m) > SUBS_MAX_EVENTS)
        return refuse(e, "events", "required: an array of 1 to %d event types", SUBS_MAX_EVENTS);
    sub->events.v = calloc((size_t)cJSON_GetArraySize(m), sizeof(char *));
    if (!sub->events.v)
        return HERALD_ENOMEM;
    {
        int i = 0;
        for (const cJSON *it = m->child; it; it = it->next, i++) {
            char f[32];
            snprintf(f, sizeof(f), "events[%d]", i);
            if (!cJSON_IsString(it) || check_pattern(it->valuestring))
                return refuse(e, f,
                              "must be an event type, a prefix such as \"post.*\", or "
                              "\"*\"");
            if ((rc = dup_str(&sub->events.v[sub->events.n], it->valuestring)))
                return rc;
            sub->events.n++;
        }
    }

    sub->active = true;
    m = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (m) {
        if (cJSON_IsString(m) && !strcmp(m->valuestring, "active"))
            sub->active = true;
        else if (cJSON_IsString(m) && !strcmp(m->valuestring, "disabled"))
            sub->active = false;
        else
            return refuse(e, "status", "must be \"active\" or \"disabled\"");
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "disabled_reason");
    if (m) {
        if (!cJSON_IsString(m) || strlen(m->valuestring) > 1024)
            return refuse(e, "disabled_reason", "must be a string of at most 1024 characters");
        if ((rc = dup_str(&sub->disabled_reason, m->valuestring)))
            return rc;
    }

    sub->scheme = SIGN_STANDARD_WEBHOOKS;
    m = cJSON_GetObjectItemCaseSensitive(root, "signature");
    if (m && (!cJSON_IsString(m) || sign_scheme_parse(m->valuestring, &sub->scheme)))
        return refuse(e, "signature", "unknown signature scheme");

    m = cJSON_GetObjectItemCaseSensitive(root, "signature_header");
    if (m) {
        if (!sign_scheme_takes_header(sub->scheme))
            return refuse(e, "signature_header", "the \"%s\" scheme has fixed header names",
                          sign_scheme_name(sub->scheme));
        if (!cJSON_IsString(m) || !is_token(m->valuestring))
            return refuse(e, "signature_header", "must be a valid header name");
        if (subs_header_reserved(m->valuestring, NULL))
            return refuse(e, "signature_header", "\"%s\" is a header herald sets itself",
                          m->valuestring);
        {
            /* What the signer would refuse at send time (a name too long) is refused here. */
            char reason[160] = "";
            if (sign_request_check(sub->scheme, m->valuestring, NULL, reason, sizeof(reason)))
                return refuse(e, "signature_header", "%s", reason);
        }
        if ((rc = dup_str(&sub->signature_header, m->valuestring)))
            return rc;
    }

    m = cJSON_GetObjectItemCaseSensitive(root, "secrets");
    if (m && (!cJSON_IsArray(m) || cJSON_GetArraySize(m) > SUBS_MAX_SECRETS))
        return refuse(e, "secrets", "must be an array of at most %d secrets", SUBS_MAX_SECRETS);
    if (sub->scheme != SIGN_NONE && cJSON_GetArraySize(m) < 1)
        return refuse(e, "secrets", "the \"%s\" scheme needs at least one secret",
                      sign_scheme_name(sub->scheme));
    if (sub->scheme == SIGN_NONE && cJSON_GetArraySize(m) > 0)
        return refuse(e, "secrets", "the \"none\" scheme takes no secrets");
    if (m && cJSON_GetArraySize(m) > 0) {
        int i = 0;
        sub->keys = calloc((size_t)cJSON_GetArraySize(m), sizeof(*sub->keys));
        if (!sub->keys)
            return HERALD_ENOMEM;
        for (const cJSON *it = m->child; it; it = it->next, i++) {
            char f[32], reason[160] = "";
            snprintf(f, sizeof(f), "secrets[%d]", i);
            if (!cJSON_IsString(it))
                return refuse(e, f, "must be a string");
            rc = sign_key_decode(sub->scheme, it->valuestring, &sub->keys[sub->nkeys], reason,
                                 sizeof(reason));
            if (rc == HERALD_ENOMEM)
                return rc;
            if (rc)
                return refuse(e, f, "%s", reason[0] ? reason : "not a valid secret");
            sub->nkeys++;
        }
    }

    sub->payload = PAYLOAD_RAW;
    m = cJSON_GetObjectItemCaseSensitive(root, "payload");
    if (m && (!cJSON_IsString(m) || payload_mode_parse(m->valuestring, &sub->payload)))
        return refuse(e, "payload", "must be raw, compact, data or message");
    if (sub->scheme == SIGN_MESSAGE_FIELD && sub->payload != PAYLOAD_MESSAGE)
        return refuse(e, "payload",
                      "the \"message-field\" scheme signs the message field: "
                      "payload must be \"message\"");

    m = cJSON_GetObjectItemCaseSensitive(root, "headers");
    if (m) {
        int n = cJSON_GetArraySize(m);
        if (!cJSON_IsObject(m) || n > SUBS_MAX_HEADERS)
            return refuse(e, "headers", "must be an object of at most %d headers",
                          SUBS_MAX_HEADERS);
        sub->headers = calloc((size_t)n + 1, sizeof(*sub->headers));
        if (!sub->headers)
            return HERALD_ENOMEM;
        for (const cJSON *it = m->child; it; it = it->next) {
            char f[160];
            snprintf(f, sizeof(f), "headers.%.128s", it->string);
            if (!is_token(it->string))
                return refuse(e, f, "not a valid header name");
            if (subs_header_reserved(it->string, sub->signature_header
                                                     ? sub->signature_header
                                                     : sign_default_header(sub->scheme)))
                return refuse(e, f, "herald sets this header itself");
            if (!cJSON_IsString(it) || !is_header_value(it->valuestring))
                return refuse(e, f, "must be a string without CR, LF or NUL");
            /* Every key below nheaders was set by dup_str; the analyzer cannot see it. */
            for (size_t j = 0; j < sub->nheaders; j++)
                if (sub->headers[j].key && strcasecmp(sub->headers[j].key, it->string) == 0)
                    return refuse(e, f, "duplicate header");
            if ((rc = dup_str(&sub->headers[sub->nheaders].key, it->string)))
                return rc;
            if ((rc = dup_str(&sub->headers[sub->nheaders].value, it->valuestring))) {
                free(sub->headers[sub->nheaders].key);
                return rc;
            }
            sub->nheaders++;
        }
    }

    v = 0;
    if ((rc = get_int(root, "max_attempts", 1, 100, &v, e)))
        return rc;
    sub->max_attempts = (int)v;
    v = 0;
    if ((rc = get_int(root, "timeout_ms", 100, 300000, &v, e)))
        return rc;
    sub->timeout_ms = v;
    v = 0;
    if ((rc = get_int(root, "max_in_flight", 1, 10000, &v, e)))
        return rc;
    sub->max_in_flight = (int)v;
    v = 0;
    if ((rc = get_int(root, "rate_limit_per_s", 0, 1000000, &v, e)))
        return rc;
    sub->rate_limit = (int)v;
    for (size_t i = 0; i < 2; i++) {
        const char *name = i ? "updated_at" : "created_at";
        m = cJSON_GetObjectItemCaseSensitive(root, name);
        if (m && !cJSON_IsString(m))
            return refuse(e, name, "must be a date-time string");
    }
    return 0;
}

/*
 * True when the document holds a NUL, raw or as the escape "\u0000". cJSON
 * decodes either into a NUL that silently ends the C string, so a header
 * value, URL, identifier or secret would be cut short without notice (a plain
 * HMAC secret "abc\u0000def" would sign with "abc").
 */
static bool has_nul(const char *json, size_t len)
{
    if (memchr(json, '\0', len))
        return true;
    for (size_t i = 0; i + 1 < len; i++) {
        if (json[i] != '\\')
            continue;
        if (json[i + 1] == 'u' && i + 5 < len && memcmp(json + i + 2, "0000", 4) == 0)
            return true;
        i++; /* the escaped character, which may itself be a backslash */
    }
    return false;
}

/* The decoded keys live on in the sub (cleansed by sign_key_release); the text copies go. */
static void cleanse_secrets(cJSON *root)
{
    for (cJSON *m = root->child; m; m = m->next) {
        if (!m->string || strcmp(m->string, "secrets") != 0)
            continue;
        for (cJSON *it = m->child; it; it = it->next)
            if (cJSON_IsString(it) && it->valuestring)
                OPENSSL_cleanse(it->valuestring, strlen(it->valuestring));
    }
}

int subs_parse(const char *json, size_t len, struct sub **out, char *field, size_t fieldlen,
               char *why, size_t whylen)
{
    struct verr e = {field, fieldlen, why, whylen};
    struct sub *sub;
    cJSON *root;
    int rc;

    *out = NULL;
    if (field && fieldlen)
        field[0] = '\0';
    if (has_nul(json, len))
        return refuse(&e, "(document)",
                      "contains a NUL character (\\u0000), which no field "
                      "may hold");
    {
        /* cJSON stops after the first value: refuse what follows, as event_parse() does. */
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
        while (root && (size_t)(end - json) < len && isspace((unsigned char)*end))
            end++;
        if (root && (size_t)(end - json) != len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (!root)
        return refuse(&e, "(document)", "not valid JSON");
    sub = calloc(1, sizeof(*sub));
    if (!sub) {
        cJSON_Delete(root);
        return HERALD_ENOMEM;
    }
    sub->refs = 1;
    rc = parse_doc(root, sub, &e);
    if (cJSON_IsObject(root))
        cleanse_secrets(root);
    cJSON_Delete(root);
    if (rc) {
        subs_unref(sub);
        return rc;
    }
    *out = sub;
    return 0;
}

char *subs_disable_doc(const char *json, size_t len, const char *reason)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    char *out = NULL;
    if (!cJSON_IsObject(root))
        goto done;
    cJSON_DeleteItemFromObjectCaseSensitive(root, "status");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "disabled_reason");
    if (!cJSON_AddStringToObject(root, "status", "disabled") ||
        !cJSON_AddStringToObject(root, "disabled_reason", reason))
        goto done;
    out = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return out;
}
