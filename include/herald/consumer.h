/*
 * The Kafka consumer: one consumer-group member reading the events topics
 * and the retry tier topics.
 *
 * Offsets are stored by herald only (enable.auto.offset.store=false), and
 * only up to what is settled; librdkafka's periodic auto-commit then commits
 * what was stored, and herald commits synchronously on revocation and on
 * shutdown. Rebalancing is cooperative-sticky by default, so a member
 * joining or leaving moves only the partitions that must move.
 *
 * The consumer queue signals a pipe that joins the event loop; every wake-up
 * drains up to a batch of messages and asks the loop to come back at once if
 * more remain (librdkafka only signals on empty -> non-empty).
 */
#ifndef HERALD_CONSUMER_H
#define HERALD_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herald/config.h"
#include "herald/loop.h"

struct consumer_cbs {
    /* A message; the callee owns rkm and must rd_kafka_message_destroy() it. */
    void (*message)(void *arg, rd_kafka_message_t *rkm);
    /* Partitions added to this member. */
    void (*assigned)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    /*
     * Partitions leaving this member; lost is true when they were taken away
     * (session timeout) and offsets can no longer be committed for them.
     * Called before they are unassigned, so the callee may still commit.
     */
    void (*revoked)(void *arg, const rd_kafka_topic_partition_list_t *parts, bool lost);
    /* librdkafka statistics JSON (statistics.interval.ms), for lag metrics. */
    void (*stats)(void *arg, const char *json, size_t len);
};

struct consumer;

int consumer_new(struct loop *loop, const struct config *cfg, const struct strlist *topics,
                 const struct consumer_cbs *cbs, void *arg, struct consumer **out, char *err,
                 size_t errlen);
/* Leaves the group (revoking, and so committing, what is settled) and frees. */
void consumer_free(struct consumer *c);
void consumer_close(struct consumer *c);

/* Pauses or resumes one partition; a paused partition is re-fetched from its position. */
int consumer_pause(struct consumer *c, const char *topic, int32_t partition, bool pause);
/* Stores offset (the next to consume) for a partition; committed by auto-commit. */
int consumer_store(struct consumer *c, const char *topic, int32_t partition, int64_t offset);
/*
 * Commits the given offsets (or all stored ones when NULL) synchronously.
 * Returns 0, HERALD_ESTATE when the group is rebalancing or its coordinator is
 * moving (the same commit may succeed after serving the group a little), or
 * HERALD_EKAFKA.
 */
int consumer_commit(struct consumer *c, const rd_kafka_topic_partition_list_t *offsets);
/* Serves the consumer queue once, waiting up to timeout_ms (rebalance callbacks included). */
void consumer_serve(struct consumer *c, int timeout_ms);

/* Current assignment size; 0 while waiting for a rebalance. */
size_t consumer_assigned(const struct consumer *c);
bool consumer_in_group(const struct consumer *c);
rd_kafka_t *consumer_handle(struct consumer *c);
/* Serves the consumer queue now (normally driven by the loop). */
void consumer_poll(struct consumer *c);

#endif
