/*
 * Event envelope parsing; see event.h. The rules here are the ones
 * schemas/event.schema.json states, so a producer that validates against the
 * schema never has an event dead-lettered by herald.
 */
#include "herald/event.h"
#include "herald/err.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const reject_names[] = {
#define XX(id, name) name,
    EVENT_REJECT_MAP(XX)
#undef XX
};

const char *event_reject_name(enum event_reject r)
{
    if ((unsigned)r >= sizeof(reject_names) / sizeof(reject_names[0]))
        return "unknown";
    return reject_names[r];
}

int event_check_ident(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c <= 0x20 || c >= 0x7f)
            return HERALD_EINVAL;
    }
    return n == 0 || n > max ? HERALD_EINVAL : 0;
}

static int days_from_civil(int y, int m, int d, int64_t *days)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian date to days since 1970-01-01. */
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = era * 146097 + doe - 719468;
    return 0;
}

/* Reads exactly n ASCII digits at *p: sscanf's %d would also take signs and blanks. */
static int take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return HERALD_EINVAL;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

int event_parse_time(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;
    int64_t days, frac_ms = 0, off_s = 0;
    const char *p = s;

    if (take_digits(&p, 4, &y) || *p++ != '-' || take_digits(&p, 2, &mo) || *p++ != '-' ||
        take_digits(&p, 2, &d))
        return HERALD_EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return HERALD_EINVAL;
    p++;
    if (take_digits(&p, 2, &h) || *p++ != ':' || take_digits(&p, 2, &mi) || *p++ != ':' ||
        take_digits(&p, 2, &sec))
        return HERALD_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return HERALD_EINVAL;
    if (mo == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
        return HERALD_EINVAL;
    if (*p == '.') {
        int digits = 0;
        p++;
        if (!isdigit((unsigned char)*p))
            return HERALD_EINVAL;
        for (; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, sign = *p++ == '+' ? 1 : -1;
        if (take_digits(&p, 2, &oh) || *p++ != ':' || take_digits(&p, 2, &om) || oh > 23 || om > 59)
            return HERALD_EINVAL;
        off_s = (oh * 3600 + om * 60) * sign;
    } else {
        return HERALD_EINVAL;
    }
    if (*p)
        return HERALD_EINVAL;
    days_from_civil(y, mo, d, &days);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec)) - off_s) * 1000 + frac_ms;
    return 0;
}

static void why_set(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (!why || !whylen)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

struct event *event_ref(struct event *ev)
{
    ev->refs++;
    return ev;
}

void event_unref(struct event *ev)
{
    if (!ev || --ev->refs > 0)
        return;
    free(ev->id);
    free(ev->type);
    free(ev->tenant);
    free(ev->body);
    free(ev);
}

int event_new(const char *id, const char *type, const char *tenant, const char *body,
              size_t body_len, struct event **out)
{
    struct event *ev = calloc(1, sizeof(*ev));
    *out = NULL;
    if (!ev)
        return HERALD_ENOMEM;
    ev->refs = 1;
    ev->id = strdup(id);
    ev->type = strdup(type);
    ev->tenant = strdup(tenant);
    ev->body = malloc(body_len + 1);
    if (!ev->id || !ev->type || !ev->tenant || !ev->body) {
        event_unref(ev);
        return HERALD_ENOMEM;
    }
    memcpy(ev->body, body, body_len);
    ev->body[body_len] = '\0';
    ev->body_len = body_len;
    *out = ev;
    return 0;
}

/*
 * cJSON decodes "\u0000" into a NUL and hands out C strings, so "evt\u0000a"
 * and "evt\u0000b" would both read as "evt": two events sharing one
 * webhook-id. This slow path runs only when the raw bytes contain an escaped
 * NUL at all, and reports whether it sits inside the string value of the
 * top-level member `name`. The input is known to be valid JSON here.
 */
static size_t skip_ws(const char *p, size_t i, size_t len)
{
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* Index just past the string starting at p[i] == '"'. */
static size_t skip_string(const char *p, size_t i, size_t len)
{
    for (i++; i < len && p[i] != '"'; i++)
        if (p[i] == '\\')
            i++;
    return i + 1;
}

static size_t skip_value(const char *p, size_t i, size_t len)
{
    int depth = 0;
    if (i < len && p[i] == '"')
        return skip_string(p, i, len);
    for (; i < len; i++) {
        if (p[i] == '"') {
            i = skip_string(p, i, len) - 1;
        } else if (p[i] == '{' || p[i] == '[') {
            depth++;
        } else if (p[i] == '}' || p[i] == ']') {
            if (depth-- == 0)
                return i;
            if (depth == 0)
                return i + 1;
        } else if (depth == 0 &&
                   (p[i] == ',' || p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r')) {
            return i;
        }
    }
    return i;
}

static bool nul_in_member(const char *p, size_t len, const char *const *names, size_t nnames)
{
    size_t i = skip_ws(p, 0, len);
    if (i >= len || p[i] != '{')
        return false;
    for (i = skip_ws(p, i + 1, len); i < len && p[i] == '"';) {
        size_t kend = skip_string(p, i, len), vstart, vend;
        bool wanted = false;
        /* Keys are compared raw: an escaped key spelling is not one of ours. */
        for (size_t n = 0; n < nnames; n++)
            wanted = wanted || (kend - i - 2 == strlen(names[n]) &&
                                memcmp(p + i + 1, names[n], kend - i - 2) == 0);
        vstart = skip_ws(p, skip_ws(p, kend, len) + 1, len);
        vend = skip_value(p, vstart, len);
        if (wanted && vstart < len && p[vstart] == '"' &&
            memmem(p + vstart, vend - vstart, "\\u0000", 6))
            return true;
        i = skip_ws(p, vend, len);
        if (i < len && p[i] == ',')
            i = skip_ws(p, i + 1, len);
    }
    return false;
}

/* Returns the string member name of obj, or NULL; *present tells absent from non-string. */
static const char *member_str(const cJSON *obj, const char *name, int *present)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    *present = m != NULL && !cJSON_IsNull(m);
    return m && cJSON_IsString(m) ? m->valuestring : NULL;
}

int event_parse(const char *value, size_t len, const char *key, size_t key_len, size_t max_bytes,
                struct event **out, enum event_reject *reject, char *why, size_t whylen)
{
    cJSON *root = NULL;
    const char *id, *type, *tenant, *ts;
    char tenant_buf[EVENT_TENANT_MAX + 1];
    int present, rc = HERALD_EPARSE;
    int64_t created = 0;

    *out = NULL;
    *reject = EVENT_REJECT_NONE;
    if (!value || len == 0) {
        *reject = EVENT_REJECT_EMPTY;
        why_set(why, whylen, "the message value is empty");
        return HERALD_EPARSE;
    }
    if (len > max_bytes) {
        *reject = EVENT_REJECT_TOO_LARGE;
        why_set(why, whylen, "the event is %zu bytes, over the limit of %zu", len, max_bytes);
        return HERALD_ETOOBIG;
    }
    {
        /* One parse; cJSON stops after the first value, so trailing bytes are checked here. */
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts(value, len, &end, 0);
        if (!root) {
            *reject = EVENT_REJECT_NOT_JSON;
            why_set(why, whylen, "the message value is not valid JSON");
            goto out;
        }
        while ((size_t)(end - value) < len && isspace((unsigned char)*end))
            end++;
        if ((size_t)(end - value) != len) {
            *reject = EVENT_REJECT_NOT_JSON;
            why_set(why, whylen, "unexpected bytes after the JSON value at offset %zu",
                    (size_t)(end - value));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        *reject = EVENT_REJECT_NOT_OBJECT;
        why_set(why, whylen, "the event is not a JSON object");
        goto out;
    }
    if (memmem(value, len, "\\u0000", 6)) {
        static const char *const idents[] = {"id", "type", "tenant"};
        if (nul_in_member(value, len, idents, 3)) {
            *reject = EVENT_REJECT_BAD_ID;
            why_set(why, whylen, "\"id\", \"type\" and \"tenant\" may not contain NUL");
            goto out;
        }
    }
    id = member_str(root, "id", &present);
    if (!present) {
        *reject = EVENT_REJECT_NO_ID;
        why_set(why, whylen, "the event has no \"id\"");
        goto out;
    }
    if (!id || event_check_ident(id, EVENT_ID_MAX)) {
        *reject = EVENT_REJECT_BAD_ID;
        why_set(why, whylen, "\"id\" must be a string of 1 to %d visible ASCII characters",
                EVENT_ID_MAX);
        goto out;
    }
    type = member_str(root, "type", &present);
    if (!present) {
        *reject = EVENT_REJECT_NO_TYPE;
        why_set(why, whylen, "the event has no \"type\"");
        goto out;
    }
    if (!type || event_check_ident(type, EVENT_TYPE_MAX)) {
        *reject = EVENT_REJECT_BAD_TYPE;
        why_set(why, whylen, "\"type\" must be a string of 1 to %d visible ASCII characters",
                EVENT_TYPE_MAX);
        goto out;
    }
    tenant = member_str(root, "tenant", &present);
    if (present && (!tenant || event_check_ident(tenant, EVENT_TENANT_MAX))) {
        *reject = EVENT_REJECT_BAD_TENANT;
        why_set(why, whylen, "\"tenant\" must be a string of 1 to %d visible ASCII characters",
                EVENT_TENANT_MAX);
        goto out;
    }
    if (!present) {
        if (!key || key_len == 0) {
            *reject = EVENT_REJECT_NO_TENANT;
            why_set(why, whylen, "the event has no \"tenant\" and the message has no key");
            goto out;
        }
        if (key_len > EVENT_TENANT_MAX || memchr(key, '\0', key_len)) {
            *reject = EVENT_REJECT_BAD_TENANT;
            why_set(why, whylen, "the message key is not a valid tenant");
            goto out;
        }
        memcpy(tenant_buf, key, key_len);
        tenant_buf[key_len] = '\0';
        if (event_check_ident(tenant_buf, EVENT_TENANT_MAX)) {
            *reject = EVENT_REJECT_BAD_TENANT;
            why_set(why, whylen, "the message key is not a valid tenant");
            goto out;
        }
        tenant = tenant_buf;
    }
    ts = member_str(root, "timestamp", &present);
    if (present && (!ts || event_parse_time(ts, &created))) {
        *reject = EVENT_REJECT_BAD_TIMESTAMP;
        why_set(why, whylen, "\"timestamp\" must be an RFC 3339 date-time string");
        goto out;
    }
    rc = event_new(id, type, tenant, value, len, out);
    if (rc == 0)
        (*out)->created_ms = created;
out:
    cJSON_Delete(root);
    return rc;
}
