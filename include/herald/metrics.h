/*
 * Prometheus metrics.
 *
 * The worker thread updates plain counters with relaxed atomic adds; the
 * HTTP thread renders them. Every label value comes from a fixed, small set
 * (outcomes, status classes, reject and dead-letter reasons, retry tiers,
 * topic partitions), never from input such as URLs or tenant ids, so the
 * series count is bounded and nothing secret can leak into a label.
 */
#ifndef HERALD_METRICS_H
#define HERALD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/buf.h"
#include "herald/event.h"
#include "herald/retry.h"

#define METRICS_STATUS_CLASSES  6 /* none, 1xx..5xx */
#define METRICS_LATENCY_BUCKETS 14
#define METRICS_DLQ_REASON_MAP(XX)                                                                 \
    XX(POISON, "poison_event")                                                                     \
    XX(EXHAUSTED, "max_attempts_exhausted")                                                        \
    XX(REFUSED, "target_refused")                                                                  \
    XX(UNRENDERABLE, "payload_unrenderable")                                                       \
    XX(GONE, "endpoint_gone")                                                                      \
    XX(ABORTED, "aborted_by_receiver")                                                             \
    XX(SUB_DELETED, "subscription_deleted")                                                        \
    XX(SUB_DISABLED, "subscription_disabled")                                                      \
    XX(BAD_RETRY, "invalid_retry_record")                                                          \
    XX(TOO_LARGE, "record_too_large")

enum metrics_dlq_reason {
#define XX(id, name) METRICS_DLQ_##id,
    METRICS_DLQ_REASON_MAP(XX)
#undef XX
        METRICS_DLQ_COUNT
};

#define METRICS_OUTCOMES 5 /* delivered, retry, dead_lettered, gone, deferred */

struct metrics {
    uint64_t events_consumed;
    uint64_t retries_consumed;
    uint64_t events_rejected[EVENT_REJECT_COUNT];
    uint64_t events_unmatched;
    uint64_t deliveries[METRICS_OUTCOMES][METRICS_STATUS_CLASSES];
    uint64_t latency_buckets[METRICS_LATENCY_BUCKETS];
    uint64_t latency_count;
    uint64_t latency_sum_us;
    uint64_t retries_enqueued[RETRY_MAX_TIERS];
    uint64_t dead_letters[METRICS_DLQ_COUNT];
    uint64_t cache_hits, cache_misses, cache_lookup_failures, invalid_subscriptions;
    uint64_t attempt_records_dropped;
    uint64_t produce_retries;
    uint64_t subscriptions_disabled;

    /* Gauges, set by the worker each loop turn. */
    int64_t in_flight;
    int64_t jobs_pending;
    int64_t breakers_open;
    int64_t partitions_assigned;
    int64_t paused;
    int64_t redis_up;
    int64_t producer_healthy;
};

extern struct metrics metrics;

#define METRIC_ADD(field, n) __atomic_add_fetch(&metrics.field, (n), __ATOMIC_RELAXED)
#define METRIC_INC(field)    METRIC_ADD(field, 1)
#define METRIC_SET(field, v) __atomic_store_n(&metrics.field, (v), __ATOMIC_RELAXED)

const char *metrics_dlq_reason_name(enum metrics_dlq_reason r);
enum metrics_dlq_reason metrics_dlq_reason_of(const char *reason);

/* Counts one finished attempt (or deferral); sent: a request went out, so it has a latency. */
void metrics_delivery(int outcome, long status, int64_t latency_us, bool sent);

/* Tier labels used in herald_retries_enqueued_total; set once at start-up. */
void metrics_set_tiers(const char *const *labels, size_t n);

/* Replaces the per-partition consumer lag snapshot (from librdkafka statistics). */
void metrics_set_lag(const char *stats_json, size_t len);

/* Renders everything in the Prometheus text exposition format. */
int metrics_render(struct buf *out);

#endif
