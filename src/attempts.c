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
        size_t n = utf8_seq(p + i, len - i);
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

static int append_kv_str(struct buf *b, const char *key, const char *v, bool comma)
{
    int rc = buf_appendf(b, "%s\"%s\":\"", comma ? "," : "", key);
    if (!rc)
        rc = attempts_append_text(b, v, strlen(v));
    if (!rc)
        rc = buf_appendc(b, '"');
    return rc;
}

static void iso_time(int64_t ms, char *out, size_t n)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int attempts_build(const struct job *job, const char *outcome, int64_t next_attempt_ms,
                   const struct attempt_source *src, struct buf *out)
{
    char when[80]; /* room for any int fields, so -Wformat-truncation stays quiet */
    int rc = 0;

    rc |= buf_appendc(out, '{');
    rc |= append_kv_str(out, "event_id", job->ev->id, false);
    rc |= append_kv_str(out, "event_type", job->ev->type, true);
    rc |= append_kv_str(out, "tenant", job->ev->tenant, true);
    rc |= append_kv_str(out, "subscription_id", job->sub->id, true);
    rc |= append_kv_str(out, "webhook_id", job->ev->id, true);
    rc |= buf_appendf(out, ",\"attempt\":%d", job->attempt);
    rc |= append_kv_str(out, "url", job->sub->url, true);
    rc |= append_kv_str(out, "method", subs_method_name(job->sub->method), true);
    rc |= buf_appendf(out, ",\"status\":%ld", job->result.status);
    rc |= append_kv_str(out, "outcome", outcome, true);
    if (job->decision.reason)
        rc |= append_kv_str(out, "reason", job->decision.reason, true);
    rc |= append_kv_str(out, "error", job->error, true);
    rc |= buf_appendf(out, ",\"latency_ms\":%.3f", (double)job->latency_us / 1000.0);
    iso_time(job->sent_at_ms, when, sizeof(when));
    rc |= append_kv_str(out, "sent_at", when, true);
    if (next_attempt_ms > 0) {
        iso_time(next_attempt_ms, when, sizeof(when));
        rc |= append_kv_str(out, "next_attempt_at", when, true);
    }
    rc |= buf_appends(out, ",\"response_body\":\"");
    rc |= attempts_append_text(out, job->response.data ? job->response.data : "",
                               job->response.len);
    rc |= buf_appendc(out, '"');
    rc |= buf_appendf(out, ",\"response_body_truncated\":%s",
                      job->response.len >= job->response.max && job->response.max ? "true"
                                                                                   : "false");
    if (src && src->topic) {
        rc |= buf_appends(out, ",\"request\":{");
        rc |= append_kv_str(out, "topic", src->topic, false);
        rc |= buf_appendf(out, ",\"partition\":%d,\"offset\":%lld,\"bytes\":%zu}", src->partition,
                          (long long)src->offset, job->body ? job->body_len : job->ev->body_len);
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
            const char *full[8] = {argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
                                   "record", b.data};
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
