/*
 * Prometheus metrics; see metrics.h. The lag snapshot is the only state
 * shared with a lock, because it is rebuilt wholesale from librdkafka's
 * statistics JSON every statistics interval.
 */
#include "herald/metrics.h"
#include "herald/err.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct metrics metrics;

static const char *const dlq_names[] = {
#define XX(id, name) name,
    METRICS_DLQ_REASON_MAP(XX)
#undef XX
};

static const char *const outcome_names[METRICS_OUTCOMES] = {"delivered", "retry", "dead_lettered",
                                                            "gone", "deferred"};
static const char *const class_names[METRICS_STATUS_CLASSES] = {"none", "1xx", "2xx",
                                                                "3xx",  "4xx", "5xx"};
/* Upper bounds in seconds of the latency histogram. */
static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static pthread_mutex_t lag_lock = PTHREAD_MUTEX_INITIALIZER;
static char *lag_text;
static char *tier_labels[RETRY_MAX_TIERS];
static size_t ntier_labels;

const char *metrics_dlq_reason_name(enum metrics_dlq_reason r)
{
    return (unsigned)r < METRICS_DLQ_COUNT ? dlq_names[r] : "unknown";
}

enum metrics_dlq_reason metrics_dlq_reason_of(const char *reason)
{
    for (size_t i = 0; reason && i < METRICS_DLQ_COUNT; i++)
        if (strcmp(dlq_names[i], reason) == 0)
            return (enum metrics_dlq_reason)i;
    return METRICS_DLQ_POISON;
}

void metrics_delivery(int outcome, long status, int64_t latency_us, bool sent)
{
    int cls = status >= 100 && status <= 599 ? (int)(status / 100) : 0;
    if (outcome < 0 || outcome >= METRICS_OUTCOMES)
        return;
    METRIC_INC(deliveries[outcome][cls]);
    if (!sent)
        return;
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        if ((double)latency_us <= latency_bounds[i] * 1e6) {
            METRIC_INC(latency_buckets[i]);
            break;
        }
    }
    METRIC_INC(latency_count);
    METRIC_ADD(latency_sum_us, (uint64_t)(latency_us > 0 ? latency_us : 0));
}

void metrics_set_tiers(const char *const *labels, size_t n)
{
    size_t count = 0;
    /*
     * Called once at start-up, when the HTTP thread may already be serving
     * /metrics: it reads only the first ntier_labels entries, so the count is
     * published after the labels it covers are written.
     */
    for (size_t i = 0, old = __atomic_exchange_n(&ntier_labels, 0, __ATOMIC_ACQ_REL); i < old; i++)
        free(tier_labels[i]);
    for (size_t i = 0; i < n && i < RETRY_MAX_TIERS; i++) {
        tier_labels[i] = strdup(labels[i]);
        if (!tier_labels[i])
            break;
        count++;
    }
    __atomic_store_n(&ntier_labels, count, __ATOMIC_RELEASE);
}

static double num_field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/*
 * Messages of one partition not yet committed, or -1 when unknown.
 * librdkafka's consumer_lag is -1 until the group has committed an offset
 * for the partition, which is exactly the case of a partition stuck on its
 * first messages; such a partition is counted from the log start, where
 * herald begins (auto.offset.reset=earliest), so its lag is not hidden.
 */
static double partition_lag(const cJSON *p)
{
    double lag = num_field(p, "consumer_lag");
    double end = num_field(p, "ls_offset"), committed, start;

    if (lag >= 0)
        return lag;
    if (end < 0)
        end = num_field(p, "hi_offset");
    if (end < 0)
        return -1; /* no fetch or offset query answered yet */
    committed = num_field(p, "committed_offset");
    if (committed >= 0)
        return committed <= end ? end - committed : 0;
    start = num_field(p, "lo_offset");
    return start >= 0 && start <= end ? end - start : end;
}

/* Builds herald_consumer_lag lines from librdkafka's statistics JSON. */
void metrics_set_lag(const char *stats_json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(stats_json, len), *topics;
    struct buf b;
    char *text;

    if (!root)
        return;
    buf_init(&b, 1 << 20);
    topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    for (cJSON *t = topics ? topics->child : NULL; t; t = t->next) {
        cJSON *parts = cJSON_GetObjectItemCaseSensitive(t, "partitions");
        for (cJSON *p = parts ? parts->child : NULL; p; p = p->next) {
            cJSON *pid = cJSON_GetObjectItemCaseSensitive(p, "partition");
            cJSON *state = cJSON_GetObjectItemCaseSensitive(p, "fetch_state");
            double lag;
            if (!cJSON_IsNumber(pid) || pid->valueint < 0)
                continue; /* -1 is librdkafka's internal "unassigned" partition */
            if (cJSON_IsString(state) && strcmp(state->valuestring, "none") == 0)
                continue; /* not assigned to this member */
            if ((lag = partition_lag(p)) < 0)
                continue;
            buf_appendf(&b, "herald_consumer_lag{topic=\"");
            buf_append_json_str(&b, t->string, strlen(t->string));
            buf_appendf(&b, "\",partition=\"%d\"} %.0f\n", pid->valueint, lag);
        }
    }
    cJSON_Delete(root);
    text = buf_detach(&b, NULL);
    pthread_mutex_lock(&lag_lock);
    free(lag_text);
    lag_text = text;
    pthread_mutex_unlock(&lag_lock);
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, const char *help, int64_t v)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
                (long long)v);
}

int metrics_render(struct buf *b)
{
    uint64_t cum = 0;

    counter(b, "herald_events_consumed_total", "Events consumed from the events topics.",
            LOAD(metrics.events_consumed));
    counter(b, "herald_retry_jobs_consumed_total", "Retry jobs consumed from the retry tiers.",
            LOAD(metrics.retries_consumed));
    buf_appends(b, "# HELP herald_events_rejected_total Poison events dead-lettered, by reason.\n"
                   "# TYPE herald_events_rejected_total counter\n");
    for (int r = EVENT_REJECT_NONE + 1; r < EVENT_REJECT_COUNT; r++)
        buf_appendf(b, "herald_events_rejected_total{reason=\"%s\"} %llu\n",
                    event_reject_name((enum event_reject)r),
                    (unsigned long long)LOAD(metrics.events_rejected[r]));
    counter(b, "herald_events_unmatched_total", "Events no active subscription wanted.",
            LOAD(metrics.events_unmatched));
    buf_appends(b, "# HELP herald_deliveries_total Delivery attempts by outcome and HTTP status "
                   "class (deferred: no attempt, sent to retry).\n"
                   "# TYPE herald_deliveries_total counter\n");
    for (int o = 0; o < METRICS_OUTCOMES; o++)
        for (int c = 0; c < METRICS_STATUS_CLASSES; c++)
            buf_appendf(b, "herald_deliveries_total{outcome=\"%s\",status_class=\"%s\"} %llu\n",
                        outcome_names[o], class_names[c],
                        (unsigned long long)LOAD(metrics.deliveries[o][c]));
    buf_appends(b, "# HELP herald_delivery_duration_seconds Time from request start to "
                   "response end.\n# TYPE herald_delivery_duration_seconds histogram\n");
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        cum += LOAD(metrics.latency_buckets[i]);
        buf_appendf(b, "herald_delivery_duration_seconds_bucket{le=\"%g\"} %llu\n",
                    latency_bounds[i], (unsigned long long)cum);
    }
    buf_appendf(b, "herald_delivery_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)LOAD(metrics.latency_count));
    buf_appendf(b, "herald_delivery_duration_seconds_sum %.6f\n",
                (double)LOAD(metrics.latency_sum_us) / 1e6);
    buf_appendf(b, "herald_delivery_duration_seconds_count %llu\n",
                (unsigned long long)LOAD(metrics.latency_count));
    buf_appends(b, "# HELP herald_retries_enqueued_total Jobs written to a retry tier.\n"
                   "# TYPE herald_retries_enqueued_total counter\n");
    for (size_t i = 0, n = __atomic_load_n(&ntier_labels, __ATOMIC_ACQUIRE); i < n; i++)
        buf_appendf(b, "herald_retries_enqueued_total{tier=\"%s\"} %llu\n", tier_labels[i],
                    (unsigned long long)LOAD(metrics.retries_enqueued[i]));
    buf_appends(b, "# HELP herald_dead_letters_total Records written to the dead-letter topic, "
                   "by reason.\n# TYPE herald_dead_letters_total counter\n");
    for (int r = 0; r < METRICS_DLQ_COUNT; r++)
        buf_appendf(b, "herald_dead_letters_total{reason=\"%s\"} %llu\n", dlq_names[r],
                    (unsigned long long)LOAD(metrics.dead_letters[r]));
    counter(b, "herald_cache_hits_total",
            "Events and retry jobs whose tenant's subscriptions were served from memory.",
            LOAD(metrics.cache_hits));
    counter(b, "herald_cache_misses_total",
            "Events and retry jobs whose tenant was not in memory; the misses of one tenant "
            "share one Redis lookup.",
            LOAD(metrics.cache_misses));
    counter(b, "herald_cache_lookup_failures_total", "Redis lookups that failed or timed out.",
            LOAD(metrics.cache_lookup_failures));
    counter(b, "herald_invalid_subscriptions_total",
            "Subscription documents in Redis that failed validation and were skipped.",
            LOAD(metrics.invalid_subscriptions));
    counter(b, "herald_attempt_records_dropped_total",
            "Attempt records dropped under producer backpressure.",
            LOAD(metrics.attempt_records_dropped));
    counter(b, "herald_produce_retries_total",
            "Retry or dead-letter records produced again after a failed acknowledgement.",
            LOAD(metrics.produce_retries));
    counter(b, "herald_subscriptions_disabled_total",
            "Subscriptions disabled by herald (410 Gone, failing too long).",
            LOAD(metrics.subscriptions_disabled));
    gauge(b, "herald_deliveries_in_flight", "HTTP requests in flight.", LOAD(metrics.in_flight));
    gauge(b, "herald_jobs_pending", "Delivery jobs in memory and not yet settled.",
          LOAD(metrics.jobs_pending));
    gauge(b, "herald_breakers_open", "Subscriptions whose circuit breaker is open.",
          LOAD(metrics.breakers_open));
    gauge(b, "herald_partitions_assigned", "Partitions assigned to this worker.",
          LOAD(metrics.partitions_assigned));
    gauge(b, "herald_consumption_paused", "1 while consumption is paused for backpressure.",
          LOAD(metrics.paused));
    gauge(b, "herald_redis_up", "1 while the Redis connection is up.", LOAD(metrics.redis_up));
    gauge(b, "herald_producer_healthy", "0 after a fatal Kafka producer error.",
          LOAD(metrics.producer_healthy));
    buf_appends(b, "# HELP herald_consumer_lag Messages not yet committed, per assigned partition: "
                   "log end minus the committed offset, or minus the log start before the first "
                   "commit (librdkafka statistics).\n# TYPE herald_consumer_lag gauge\n");
    pthread_mutex_lock(&lag_lock);
    if (lag_text)
        buf_appends(b, lag_text);
    pthread_mutex_unlock(&lag_lock);
    return 0;
}
