/*
 * The Kafka producer for herald's own records: retry jobs, dead letters and
 * attempt records.
 *
 * It is idempotent with acks=all (enable.idempotence=true), so a record
 * acknowledged here is durable and not duplicated by producer retries; the
 * worker settles a job only on that acknowledgement. Delivery reports are
 * served on the event loop (librdkafka signals its queue on a pipe).
 *
 * producer_send() never drops a record that is not marked droppable: when
 * librdkafka's local queue is full it keeps the record in a backlog and
 * retries on the next loop turn. Droppable records (attempt records) are
 * dropped and counted when the backlog is over its bound instead.
 */
#ifndef HERALD_PRODUCER_H
#define HERALD_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/config.h"
#include "herald/loop.h"

struct producer;

/* Runs on the loop for every record's final outcome: err is 0 once it is durable. */
typedef void (*producer_ack_fn)(void *opaque, rd_kafka_resp_err_t err, void *arg);

struct producer_stats {
    uint64_t sent, acked, failed, dropped, backlog_peak;
};

int producer_new(struct loop *loop, const struct config *cfg, producer_ack_fn ack, void *arg,
                 struct producer **out, char *err, size_t errlen);
void producer_free(struct producer *p);

/*
 * Produces one record. value is copied when free_value is false and freed
 * by the producer (free()) once delivered when it is true. headers
 * (may be NULL) are always taken over. opaque comes back in the ack.
 * Returns 0, or HERALD_EFULL for a droppable record that was dropped (no ack
 * follows), HERALD_ETOOBIG when the record can never be produced (too large;
 * no ack follows), or HERALD_EKAFKA after a fatal producer error (no ack
 * follows). A record refused later for its size is acked with an error for
 * which producer_err_too_large() is true.
 */
int producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                  void *value, size_t len, bool free_value, rd_kafka_headers_t *headers,
                  void *opaque, bool droppable);

/* Serves delivery reports and retries the backlog; the loop calls it via its pipe. */
void producer_poll(struct producer *p);

/* Waits up to timeout_ms for every outstanding record; returns how many remain. */
int producer_flush(struct producer *p, int timeout_ms);

/* Records sent and not yet acknowledged, including the backlog. */
size_t producer_outstanding(const struct producer *p);
/* False after a fatal error (the idempotent producer cannot continue). */
bool producer_healthy(const struct producer *p);
void producer_stats(const struct producer *p, struct producer_stats *out);
rd_kafka_t *producer_handle(struct producer *p);

/* Applies the kafka.* passthrough to conf; shared with the consumer. */
int producer_apply_kafka_conf(const struct config *cfg, rd_kafka_conf_t *conf, char *err,
                              size_t errlen);
/* True for errors that retrying cannot fix: the record is too large or malformed. */
bool producer_err_too_large(rd_kafka_resp_err_t err);
/* Routes librdkafka's logs into herald's JSON log. */
void producer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
