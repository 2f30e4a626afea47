/*
 * Retry policy and status classification; see retry.h. Everything here is a
 * function of its inputs: no clocks, no randomness of its own, no I/O.
 */
#include "herald/retry.h"
#include "herald/config.h"
#include "herald/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const verdict_names[] = {
#define XX(id, name) name,
    RETRY_VERDICT_MAP(XX)
#undef XX
};

const char *retry_verdict_name(enum retry_verdict v)
{
    return (unsigned)v < sizeof(verdict_names) / sizeof(verdict_names[0]) ? verdict_names[v]
                                                                          : "unknown";
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int retry_policy_init(struct retry_policy *p, const int64_t *schedule, size_t n, int jitter_pct)
{
    memset(p, 0, sizeof(*p));
    if (n == 0 || n > RETRY_MAX_TIERS || jitter_pct < 0 || jitter_pct > 100)
        return HERALD_EINVAL;
    memcpy(p->schedule, schedule, n * sizeof(*schedule));
    p->nschedule = n;
    p->jitter_pct = jitter_pct;
    memcpy(p->tiers, schedule, n * sizeof(*schedule));
    qsort(p->tiers, n, sizeof(p->tiers[0]), cmp_i64);
    for (size_t i = 0; i < n; i++) {
        if (p->tiers[i] <= 0)
            return HERALD_EINVAL;
        if (p->ntiers == 0 || p->tiers[p->ntiers - 1] != p->tiers[i])
            p->tiers[p->ntiers++] = p->tiers[i];
    }
    return 0;
}

void retry_tier_topic(const struct retry_policy *p, const char *prefix, size_t tier, char *out,
                      size_t outlen)
{
    char label[32];
    config_format_duration(p->tiers[tier < p->ntiers ? tier : p->ntiers - 1], label, sizeof(label));
    snprintf(out, outlen, "%s%s", prefix, label);
}

int retry_tier_of_topic(const struct retry_policy *p, const char *prefix, const char *name)
{
    char topic[512];
    for (size_t i = 0; i < p->ntiers; i++) {
        retry_tier_topic(p, prefix, i, topic, sizeof(topic));
        if (strcmp(topic, name) == 0)
            return (int)i;
    }
    return -1;
}

/* The smallest tier at least `want` long, or the longest tier. */
static size_t tier_at_least(const struct retry_policy *p, int64_t want)
{
    for (size_t i = 0; i < p->ntiers; i++)
        if (p->tiers[i] >= want)
            return i;
    return p->ntiers - 1;
}

static size_t tier_of_delay(const struct retry_policy *p, int64_t delay)
{
    for (size_t i = 0; i < p->ntiers; i++)
        if (p->tiers[i] == delay)
            return i;
    return tier_at_least(p, delay);
}

struct retry_decision retry_decide(const struct retry_policy *p, const struct attempt_result *r,
                                   int attempt, int max_attempts, double rnd)
{
    struct retry_decision d = {RETRY_GIVE_UP, 0, 0, attempt, NULL};
    int64_t base, jittered;
    size_t idx;

    if (!r->deferred && r->status >= 200 && r->status <= 299) {
        d.verdict = RETRY_DELIVERED;
        return d;
    }
    if (r->refused) {
        d.reason = "target_refused";
        return d;
    }
    if (r->unsendable) {
        d.reason = "payload_unrenderable";
        return d;
    }
    if (!r->deferred && r->status == 410) {
        d.verdict = RETRY_GONE;
        d.reason = "endpoint_gone";
        return d;
    }
    if (r->aborted) {
        d.reason = "aborted_by_receiver";
        return d;
    }
    /* A deferred job made no attempt, so it keeps its number and its budget. */
    d.next_attempt = r->deferred ? attempt : attempt + 1;
    if (d.next_attempt > max_attempts) {
        d.reason = "max_attempts_exhausted";
        return d;
    }
    idx = (size_t)(d.next_attempt >= 2 ? d.next_attempt - 2 : 0);
    base = p->schedule[idx < p->nschedule ? idx : p->nschedule - 1];
    d.verdict = RETRY_RETRY;
    if (r->retry_after_ms > base) {
        /* Honour Retry-After by waiting in the first tier at least that long. */
        d.tier = tier_at_least(p, r->retry_after_ms);
        base = p->tiers[d.tier];
        jittered = base + (int64_t)((double)base * p->jitter_pct / 100.0 * rnd);
    } else {
        d.tier = tier_of_delay(p, base);
        jittered = base + (int64_t)((double)base * p->jitter_pct / 100.0 * (2.0 * rnd - 1.0));
        /* The downward jitter must not undercut a Retry-After inside its band. */
        if (jittered < r->retry_after_ms)
            jittered = r->retry_after_ms;
    }
    d.delay_ms = jittered > 0 ? jittered : 0;
    return d;
}

int retry_parse_after(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT", /* obsolete RFC 850 */
        "%a %b %d %H:%M:%S %Y",      /* obsolete asctime */
    };
    const char *p = value;
    struct tm tm;

    while (*p == ' ' || *p == '\t')
        p++;
    if (isdigit((unsigned char)*p)) {
        long long secs = 0;
        for (; isdigit((unsigned char)*p); p++) {
            secs = secs * 10 + (*p - '0');
            if (secs > 100000000LL)
                return HERALD_EINVAL; /* years away: not a delay anyone means */
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            return HERALD_EINVAL;
        *delay_ms = secs * 1000;
        return 0;
    }
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        const char *end;
        memset(&tm, 0, sizeof(tm));
        end = strptime(p, formats[i], &tm);
        if (end) {
            while (*end == ' ' || *end == '\t')
                end++;
            if (*end)
                continue;
            int64_t at = (int64_t)timegm(&tm) * 1000;
            *delay_ms = at > now_ms ? at - now_ms : 0;
            return 0;
        }
    }
    return HERALD_EINVAL;
}

static void hdr_int(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    rd_kafka_header_add(h, name, -1, tmp, -1);
}

void retry_record_headers(const struct retry_record *r, rd_kafka_headers_t *h)
{
    rd_kafka_header_add(h, RETRY_H_EVENT_ID, -1, r->event_id, -1);
    rd_kafka_header_add(h, RETRY_H_SUB, -1, r->sub_id, -1);
    rd_kafka_header_add(h, RETRY_H_TENANT, -1, r->tenant, -1);
    hdr_int(h, RETRY_H_ATTEMPT, r->attempt);
    hdr_int(h, RETRY_H_FIRST_AT, r->first_at_ms);
    if (r->due_at_ms)
        hdr_int(h, RETRY_H_DUE_AT, r->due_at_ms);
    hdr_int(h, RETRY_H_LAST_STATUS, r->last_status);
    if (r->last_error && r->last_error[0])
        rd_kafka_header_add(h, RETRY_H_LAST_ERROR, -1, r->last_error, -1);
    if (r->reason)
        rd_kafka_header_add(h, RETRY_H_REASON, -1, r->reason, -1);
    if (r->manual)
        rd_kafka_header_add(h, RETRY_H_MANUAL, -1, r->manual, -1);
    if (r->src_topic) {
        rd_kafka_header_add(h, RETRY_H_SRC_TOPIC, -1, r->src_topic, -1);
        hdr_int(h, RETRY_H_SRC_PARTITION, r->src_partition);
        hdr_int(h, RETRY_H_SRC_OFFSET, r->src_offset);
    }
}
