/*
 * Attempt records: one JSON document per delivery attempt, to the attempts
 * topic (the durable log) and to a capped Redis stream per subscription
 * (herald:attempts:{sub_id}, the recent history `herald attempts` reads).
 *
 * A record carries ids, the URL, the status, latency, a truncated response
 * body, the error and the outcome. The request body is not copied: the
 * record references the consumed message (topic, partition, offset) and the
 * event id, which is enough to find it again. Secrets and signature header
 * values never appear in a record.
 *
 * attempts_build() is pure; attempts_publish() hands the record to the
 * producer (droppable under backpressure: the record is history, not the
 * delivery) and to Redis (best effort, bounded by the connection's cap).
 */
#ifndef HERALD_ATTEMPTS_H
#define HERALD_ATTEMPTS_H

#include <stdint.h>

#include "herald/buf.h"
#include "herald/job.h"
#include "herald/producer.h"
#include "herald/redis.h"

struct attempt_source {
    const char *topic;
    int32_t partition;
    int64_t offset;
};

/* Appends the JSON record of job's last attempt and its outcome to out. */
int attempts_build(const struct job *job, const char *outcome, int64_t next_attempt_ms,
                   const struct attempt_source *src, struct buf *out);

/* Appends s as a JSON string body, replacing invalid UTF-8 with U+FFFD. */
int attempts_append_text(struct buf *out, const char *s, size_t len);

struct attempts_stats {
    uint64_t published, redis_failed;
};

struct attempts;

int attempts_new(struct producer *p, struct redis *r, const char *topic, int64_t history,
                 struct attempts **out);
void attempts_free(struct attempts *a);
void attempts_publish(struct attempts *a, const struct job *job, const char *outcome,
                      int64_t next_attempt_ms, const struct attempt_source *src);
void attempts_stats(const struct attempts *a, struct attempts_stats *out);

#endif
