/*
 * Retry policy: what happens after an attempt, and when the next one is due.
 *
 * A delivery outcome is data, not an error. retry_decide() is the one pure
 * function that turns an attempt's result into a verdict (delivered, retry
 * after a delay in a given tier, give up, or endpoint gone), so the whole
 * status policy is covered by a table-driven test.
 *
 * Tiers: every distinct delay of retry.schedule is one tier with its own
 * topic (topics.retry_prefix + the delay's label, e.g. herald.retry.5m).
 * Because a tier has one fixed delay, its partitions are ordered by due time
 * and the retry consumer only ever waits for the head of a partition.
 */
#ifndef HERALD_RETRY_H
#define HERALD_RETRY_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETRY_MAX_TIERS 32

struct retry_policy {
    int64_t schedule[RETRY_MAX_TIERS]; /* delay before attempt 2, 3, ... */
    size_t nschedule;
    int64_t tiers[RETRY_MAX_TIERS]; /* distinct delays, ascending */
    size_t ntiers;
    int jitter_pct;
};

/* Builds a policy from the configured schedule; HERALD_EINVAL if empty or too long. */
int retry_policy_init(struct retry_policy *p, const int64_t *schedule, size_t n, int jitter_pct);

/* Tier topic name: prefix + label of tiers[tier]. */
void retry_tier_topic(const struct retry_policy *p, const char *prefix, size_t tier, char *out,
                      size_t outlen);
/* Index of the tier whose topic is name, or -1. */
int retry_tier_of_topic(const struct retry_policy *p, const char *prefix, const char *name);

/* What one attempt produced, as the dispatcher saw it. */
struct attempt_result {
    long status;            /* HTTP status, 0 when no response */
    int transport_error;    /* 0, or the libcurl error code */
    bool refused;           /* the SSRF guard or https_only refused the target */
    bool unsendable;        /* the payload cannot be rendered for this subscription */
    bool aborted;           /* the receiver answered "webhook-delivery: abort-message" */
    bool deferred;          /* not attempted: breaker open, or shed by backpressure */
    int64_t retry_after_ms; /* parsed Retry-After, -1 when absent or unusable */
};

#define RETRY_VERDICT_MAP(XX)                                                                      \
    XX(DELIVERED, "delivered")                                                                     \
    XX(RETRY, "retry")                                                                             \
    XX(GIVE_UP, "dead_lettered")                                                                   \
    XX(GONE, "gone")

enum retry_verdict {
#define XX(id, name) RETRY_##id,
    RETRY_VERDICT_MAP(XX)
#undef XX
};

const char *retry_verdict_name(enum retry_verdict v);

struct retry_decision {
    enum retry_verdict verdict;
    size_t tier;        /* RETRY: the tier topic to wait in */
    int64_t delay_ms;   /* RETRY: from now until the next attempt is due */
    int next_attempt;   /* RETRY: the attempt number the job will carry */
    const char *reason; /* GIVE_UP / GONE: machine-readable reason */
};

/*
 * Decides what follows attempt number `attempt` (1-based) of a job allowed
 * max_attempts attempts. rnd is a uniform random number in [0, 1) for the
 * jitter, passed in so the function stays pure.
 *
 * 2xx delivers. 410 Gone gives up and disables the endpoint. An abort
 * request or a refused target gives up at once. Anything else retries while
 * attempts remain; Retry-After (already filtered to 429/503 by the caller)
 * lengthens the wait to the first tier at least that long. A deferred job
 * (no attempt was made) keeps its attempt number.
 */
struct retry_decision retry_decide(const struct retry_policy *p, const struct attempt_result *r,
                                   int attempt, int max_attempts, double rnd);

/*
 * Parses a Retry-After value: delay-seconds or an HTTP-date (relative to
 * now_ms, wall clock). Returns 0 with *delay_ms >= 0, or HERALD_EINVAL.
 */
int retry_parse_after(const char *value, int64_t now_ms, int64_t *delay_ms);

/*
 * Retry and dead-letter records: the Kafka value is the event exactly as
 * consumed; the job's state travels in these headers, so the topics stay
 * readable with any Kafka tool.
 */
#define RETRY_H_EVENT_ID      "herald-event-id"
#define RETRY_H_SUB           "herald-subscription"
#define RETRY_H_TENANT        "herald-tenant"
#define RETRY_H_ATTEMPT       "herald-attempt"
#define RETRY_H_FIRST_AT      "herald-first-attempt-at"
#define RETRY_H_DUE_AT        "herald-due-at"
#define RETRY_H_LAST_STATUS   "herald-last-status"
#define RETRY_H_LAST_ERROR    "herald-last-error"
#define RETRY_H_REASON        "herald-reason"
#define RETRY_H_DETAIL        "herald-detail"
#define RETRY_H_SRC_TOPIC     "herald-source-topic"
#define RETRY_H_SRC_PARTITION "herald-source-partition"
#define RETRY_H_SRC_OFFSET    "herald-source-offset"
#define RETRY_H_MANUAL        "herald-manual"
/* Dead letters too large for Kafka carry no body; this says how large it was. */
#define RETRY_H_BODY_OMITTED "herald-body-omitted"

struct retry_record {
    const char *event_id;
    const char *sub_id;
    const char *tenant;
    int attempt;         /* the attempt number the record carries */
    int64_t first_at_ms; /* wall time of attempt 1 */
    int64_t due_at_ms;   /* wall time the next attempt is due; 0 for dead letters */
    long last_status;
    const char *last_error; /* may be NULL */
    const char *reason;     /* dead letters only, else NULL */
    const char *manual;     /* "resend" / "replay" for operator-made records, else NULL */
    const char *src_topic;
    int32_t src_partition;
    int64_t src_offset;
};

/* Appends the record's headers to h (which the caller owns). */
void retry_record_headers(const struct retry_record *r, rd_kafka_headers_t *h);

#endif
