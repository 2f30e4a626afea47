/*
 * Delivery jobs: one event to one subscription, one attempt at a time.
 *
 * A job is created by the worker when an event matches a subscription (or
 * when a retry record comes due), travels through the dispatcher, and ends
 * when its outcome is durable: delivered, or its retry / dead-letter record
 * acknowledged. Only then is its origin settled, and only when every job of
 * an origin is settled may the origin's offset be committed.
 *
 * Ownership: a job holds one reference on its event and one on its
 * subscription snapshot; job_free() drops them and frees the response buffer.
 */
#ifndef HERALD_JOB_H
#define HERALD_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "herald/buf.h"
#include "herald/event.h"
#include "herald/retry.h"
#include "herald/subs.h"

/* Where a job came from: one consumed Kafka message, settled when pending hits 0. */
struct origin {
    int32_t partition;
    int topic; /* index into the worker's topic table */
    int64_t offset;
    uint32_t epoch; /* the partition's assignment epoch when the message was consumed */
    int pending;    /* jobs and records not yet durable */
    bool pinned;    /* kept unsettled for good after an out-of-memory */
    struct origin *next_pinned;
};

struct job {
    struct job *next; /* endpoint queue linkage (dispatcher-owned while queued) */
    struct event *ev;
    struct sub *sub;
    struct origin *origin;
    int attempt;         /* 1-based number of the attempt being made */
    int64_t first_at_ms; /* wall time of attempt 1 */

    /* Filled by the dispatcher for the attempt just made. */
    struct attempt_result result;
    int64_t sent_at_ms; /* wall */
    int64_t latency_us;
    struct buf response; /* first attempts.body_max bytes of the response body */
    char error[256];     /* transport error text, or empty */
    char *body;          /* rendered payload when not raw (owned), else NULL */
    size_t body_len;
    char *message; /* message-field: the string that is signed (owned) */
    size_t message_len;

    /* Set by the worker for the record that follows the attempt. */
    struct retry_decision decision;
    int produce_tries;
};

/* New job for attempt `attempt`; takes new references on ev and sub. */
struct job *job_new(struct event *ev, struct sub *sub, struct origin *origin, int attempt,
                    int64_t first_at_ms, size_t body_max);
void job_free(struct job *job);
/* Clears the per-attempt fields before the job is sent again. */
void job_reset_attempt(struct job *job);

/* The bytes to send: the rendered body, or the event exactly as consumed. */
static inline const char *job_body(const struct job *job, size_t *len)
{
    if (job->body) {
        *len = job->body_len;
        return job->body;
    }
    *len = job->ev->body_len;
    return job->ev->body;
}

#endif
