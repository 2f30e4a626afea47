/*
 * Attempt records; see attempts.h.
 */
#include "herald/attempts.h"
#include "herald/err.h"
#include "herald/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct attempts {
    struct producer *p;
    struct redis *r;
    char *topic;
    int64_t history;
    struct attempts_stats stats;
};

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not text. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int attempts_append_text(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        size_t run = i, n;
        /* Printable ASCII other than '"' and '\\' goes out as is, a run at a time. */
        while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            rc = buf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        n = utf8_seq(p + i, len - i);
        if (n == 0) {
            rc = buf_appends(out, "\xef\xbf\xbd");
            i++;
        } else if (n == 1) {
            rc = buf_append_json_str(out, s + i, 1);
            i++;
        } else {
            rc = buf_append(out, s + i, n);
            i += n;
        }
    }
    return rc;
}

/* ,"key": with the key's length known at compile time. */
#define APPEND_KEY(b, comma, key)                                                                  \
    buf_append((b), (comma) ? ",\"" key "\":" : "\"" key "\":",                                    \
               (comma) ? sizeof(key) + 3 : sizeof(key) + 2)

static int append_kv_str_n(struct buf *b, int rc0, const char *keyq, size_t keylen, const char *v)
{
    int rc = rc0 | buf_append(b, keyq, keylen);
    rc |= buf_appendc(b, '"');
    rc |= attempts_append_text(b, v, strlen(v));
    rc |= buf_appendc(b, '"');
    return rc;
}

#define KV_STR(b, comma, key, v)                                                                   \
    append_kv_str_n((b), 0, (comma) ? ",\"" key "\":" : "\"" key "\":",                            \
                    (comma) ? sizeof(key) + 3 : sizeof(key) + 2, (v))

static int append_int(struct buf *b, int64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* ISO 8601 UTC with milliseconds; the date and time of day are formatted once per second. */
static int append_iso_time(struct buf *b, int64_t ms)
{
    static int64_t cached_sec = INT64_MIN;
    static char prefix[64];
    char tail[6];
    int64_t sec = ms / 1000;
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = sec;
    }
    tail[0] = '.';
    tail[1] = (char)('0' + frac / 100);
    tail[2] = (char)('0' + frac / 10 % 10);
    tail[3] = (char)('0' + frac % 10);
    tail[4] = 'Z';
    return buf_appendc(b, '"') | buf_appends(b, prefix) | buf_append(b, tail, 5) |
           buf_appendc(b, '"');
}

int attempts_build(const struct job *job, const char *outcome, int64_t next_attempt_ms,
                   const struct attempt_source *src, struct buf *out)
{
    int64_t lat = job->latency_us > 0 ? job->latency_us : 0;
    char frac[4];
    int rc = 0;

    /* Most records are well under 1 KiB: one allocation instead of a doubling chain. */
    rc |= buf_reserve(out, 1024 + job->response.len * 2);
    rc |= buf_appendc(out, '{');
    rc |= KV_STR(out, false, "event_id", job->ev->id);
    rc |= KV_STR(out, true, "event_type", job->ev->type);
    rc |= KV_STR(out, true, "tenant", job->ev->tenant);
    rc |= KV_STR(out, true, "subscription_id", job->sub->id);
    rc |= KV_STR(out, true, "webhook_id", job->ev->id);
    rc |= APPEND_KEY(out, true, "attempt");
    rc |= append_int(out, job->attempt);
    rc |= KV_STR(out, true, "url", job->sub->url);
    rc |= KV_STR(out, true, "method", subs_method_name(job->sub->method));
    rc |= APPEND_KEY(out, true, "status");
    rc |= append_int(out, job->result.status);
    rc |= KV_STR(out, true, "outcome", outcome);
    if (job->decision.reason)
        rc |= KV_STR(out, true, "reason", job->decision.reason);
    rc |= KV_STR(out, true, "error", job->error);
    rc |= APPEND_KEY(out, true, "latency_ms");
    rc |= append_int(out, lat / 1000);
    frac[0] = '.';
    frac[1] = (char)('0' + lat % 1000 / 100);
    frac[2] = (char)('0' + lat % 100 / 10);
    frac[3] = (char)('0' + lat % 10);
    rc |= buf_append(out, frac, 4);
    rc |= APPEND_KEY(out, true, "sent_at");
    rc |= append_iso_time(out, job->sent_at_ms);
    if (next_attempt_ms > 0) {
        rc |= APPEND_KEY(out, true, "next_attempt_at");
        rc |= append_iso_time(out, next_attempt_ms);
    }
    rc |= buf_appends(out, ",\"response_body\":\"");
    rc |=
        attempts_append_text(out, job->response.data ? job->response.data : "", job->response.len);
    rc |= buf_appendc(out, '"');
    rc |= buf_appends(out, job->response.len >= job->response.max && job->response.max
                               ? ",\"response_body_truncated\":true"
                               : ",\"response_body_truncated\":false");
    if (src && src->topic) {
        rc |= buf_appends(out, ",\"request\":{");
        rc |= KV_STR(out, false, "topic", src->topic);
        rc |= APPEND_KEY(out, true, "partition");
        rc |= append_int(out, src->partition);
        rc |= APPEND_KEY(out, true, "offset");
        rc |= append_int(out, src->offset);
        rc |= APPEND_KEY(out, true, "bytes");
        rc |= append_int(out, (int64_t)(job->body ? job->body_len : job->ev->body_len));
        rc |= buf_appendc(out, '}');
    }
    rc |= buf_appendc(out, '}');
    /* Any failure above is ENOMEM or ETOOBIG; both mean the record is not whole. */
    return rc ? HERALD_ETOOBIG : 0;
}

int attempts_new(struct producer *p, struct redis *r, const char *topic, int64_t history,
                 struct attempts **out)
{
    struct attempts *a = calloc(1, sizeof(*a));
    *out = NULL;
    if (!a || !(a->topic = strdup(topic))) {
        free(a);
        return HERALD_ENOMEM;
    }
    a->p = p;
    a->r = r;
    a->history = history;
    *out = a;
    return 0;
}

void attempts_free(struct attempts *a)
{
    if (!a)
        return;
    free(a->topic);
    free(a);
}

static void on_xadd(struct redis *r, redisReply *reply, void *arg)
{
    struct attempts *a = arg;
    (void)r;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        a->stats.redis_failed++;
}

void attempts_publish(struct attempts *a, const struct job *job, const char *outcome,
                      int64_t next_attempt_ms, const struct attempt_source *src)
{
    struct buf b;
    char *json;
    size_t len;

    buf_init(&b, 64 * 1024);
    if (attempts_build(job, outcome, next_attempt_ms, src, &b)) {
        buf_release(&b);
        log_warn("attempts", "cannot build the attempt record of event \"%s\"", job->ev->id);
        return;
    }
    if (a->r && a->history > 0) {
        char key[200], maxlen[32];
        const char *argv[7];
        size_t lens[7];
        snprintf(key, sizeof(key), "herald:attempts:%s", job->sub->id);
        snprintf(maxlen, sizeof(maxlen), "%lld", (long long)a->history);
        argv[0] = "XADD";
        argv[1] = key;
        argv[2] = "MAXLEN";
        argv[3] = "~";
        argv[4] = maxlen;
        argv[5] = "*";
        for (int i = 0; i < 6; i++)
            lens[i] = strlen(argv[i]);
        {
            /* XADD key MAXLEN ~ N * record <json> */
            const char *full[8] = {argv[0], argv[1], argv[2],  argv[3],
                                   argv[4], argv[5], "record", b.data};
            size_t flens[8] = {lens[0], lens[1], lens[2], lens[3], lens[4], lens[5], 6, b.len};
            if (redis_commandv(a->r, on_xadd, a, 8, full, flens))
                a->stats.redis_failed++;
        }
    }
    json = buf_detach(&b, &len);
    if (!json)
        return;
    /* Keyed by subscription so one endpoint's history stays in order in one partition. */
    if (producer_send(a->p, a->topic, job->sub->id, strlen(job->sub->id), json, len, true, NULL,
                      NULL, true) == 0)
        a->stats.published++;
}

void attempts_stats(const struct attempts *a, struct attempts_stats *out)
{
    *out = a->stats;
}
