/*
 * Kafka consumer-group member; see consumer.h.
 */
#include "herald/consumer.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/producer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_BATCH 1000

struct consumer {
    struct loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipefd[2];
    struct consumer_cbs cbs;
    void *arg;
    size_t assigned;
    bool closed;
    bool joined;
    uint64_t repoll_timer;
};

static void repoll(struct loop *loop, uint64_t id, void *arg);

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_info("consumer", "assigned %d partition(s)", parts->cnt);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, parts);
        if (!error && !rerr) {
            c->assigned = cooperative ? c->assigned + (size_t)parts->cnt : (size_t)parts->cnt;
            c->joined = true;
            if (c->cbs.assigned)
                c->cbs.assigned(c->arg, parts);
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        log_info("consumer", "%s %d partition(s)", lost ? "lost" : "revoked", parts->cnt);
        if (c->cbs.revoked)
            c->cbs.revoked(c->arg, parts, lost);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, NULL);
        c->assigned =
            cooperative && c->assigned >= (size_t)parts->cnt ? c->assigned - (size_t)parts->cnt : 0;
    } else {
        log_error("consumer", "rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        c->assigned = 0;
    }
    if (error) {
        log_error("consumer", "incremental rebalance failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr) {
        log_error("consumer", "rebalance failed: %s", rd_kafka_err2str(rerr));
    }
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct consumer *c = opaque;
    (void)rk;
    if (c->cbs.stats)
        c->cbs.stats(c->arg, json, len);
    return 0; /* librdkafka frees json */
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        log_warn("consumer", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    else
        log_error("consumer", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

void consumer_poll(struct consumer *c)
{
    for (int i = 0; i < POLL_BATCH; i++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
        if (!rkm)
            return;
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("consumer", "consume error on \"%s\" [%d]: %s",
                         rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-", rkm->partition,
                         rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        c->cbs.message(c->arg, rkm);
    }
    /*
     * More may be queued, and librdkafka writes to the pipe only when the
     * queue goes from empty to non-empty, so it will not signal again: come
     * back on the next turn of the loop (a timer, so other I/O goes first).
     */
    if (!c->repoll_timer)
        c->repoll_timer = loop_timer(c->loop, 0, repoll, c);
}

static void repoll(struct loop *loop, uint64_t id, void *arg)
{
    struct consumer *c = arg;
    (void)loop;
    (void)id;
    c->repoll_timer = 0;
    consumer_poll(c);
}

static void on_wake(struct loop *loop, int fd, int events, void *arg)
{
    struct consumer *c = arg;
    char drain[64];
    (void)loop;
    (void)events;
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    consumer_poll(c);
}

int consumer_new(struct loop *loop, const struct config *cfg, const struct strlist *topics,
                 const struct consumer_cbs *cbs, void *arg, struct consumer **out, char *err,
                 size_t errlen)
{
    struct consumer *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t kerr;
    char why[512];
    int rc = HERALD_EKAFKA;
    static const char *const defaults[][2] = {
        {"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "false"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.partition.eof", "false"},
        {"client.id", "herald"},
        {"statistics.interval.ms", "15000"},
        /* Bounded prefetch: paused partitions drop it, and memory stays small. */
        {"queued.max.messages.kbytes", "16384"},
        {"fetch.wait.max.ms", "100"},
        /*
         * librdkafka backs reconnects off up to 10 s (+50 % jitter), so after
         * an outage consumption would resume up to 15 s after the brokers do.
         */
        {"reconnect.backoff.max.ms", "2000"},
    };

    *out = NULL;
    if (!c)
        return HERALD_ENOMEM;
    c->loop = loop;
    c->cbs = *cbs;
    c->arg = arg;
    c->pipefd[0] = c->pipefd[1] = -1;
    conf = rd_kafka_conf_new();
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], why, sizeof(why))) {
            snprintf(err, errlen, "consumer default \"%s\": %s", defaults[i][0], why);
            goto fail;
        }
    }
    if ((rc = producer_apply_kafka_conf(cfg, conf, err, errlen)))
        goto fail;
    rc = HERALD_EKAFKA;
    /* At-least-once depends on these two; a passthrough may not turn them around. */
    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", why, sizeof(why));
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_log_cb(conf, producer_log_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!c->rk) {
        snprintf(err, errlen, "cannot create the Kafka consumer: %s", why);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(c->rk);
    if (pipe2(c->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        rc = HERALD_EIO;
        goto fail;
    }
    c->q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_queue_io_event_enable(c->q, c->pipefd[1], "1", 1);
    if ((rc = loop_watch(loop, c->pipefd[0], LOOP_READ, on_wake, c)))
        goto fail;
    rc = HERALD_EKAFKA;
    subs = rd_kafka_topic_partition_list_new((int)topics->n);
    for (size_t i = 0; i < topics->n; i++)
        rd_kafka_topic_partition_list_add(subs, topics->v[i], RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (kerr) {
        snprintf(err, errlen, "cannot subscribe: %s", rd_kafka_err2str(kerr));
        goto fail;
    }
    /* Messages may already be queued before the pipe was attached. */
    c->repoll_timer = loop_timer(loop, 0, repoll, c);
    *out = c;
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    c->closed = true;
    consumer_free(c);
    return rc;
}

void consumer_close(struct consumer *c)
{
    rd_kafka_resp_err_t err;
    if (!c || c->closed || !c->rk)
        return;
    c->closed = true;
    /* Serves the final revocation (whose callback commits what is settled). */
    err = rd_kafka_consumer_close(c->rk);
    if (err)
        log_warn("consumer", "close: %s", rd_kafka_err2str(err));
}

void consumer_free(struct consumer *c)
{
    if (!c)
        return;
    consumer_close(c);
    if (c->repoll_timer)
        loop_cancel(c->loop, c->repoll_timer);
    if (c->pipefd[0] >= 0)
        loop_unwatch(c->loop, c->pipefd[0]);
    if (c->q) {
        rd_kafka_queue_io_event_enable(c->q, -1, NULL, 0);
        rd_kafka_queue_destroy(c->q);
    }
    if (c->rk)
        rd_kafka_destroy(c->rk);
    for (int i = 0; i < 2; i++)
        if (c->pipefd[i] >= 0)
            close(c->pipefd[i]);
    free(c);
}

int consumer_pause(struct consumer *c, const char *topic, int32_t partition, bool pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_add(l, topic, partition);
    err = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (!err)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    return err ? HERALD_EKAFKA : 0;
}

int consumer_store(struct consumer *c, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    err = rd_kafka_offsets_store(c->rk, l);
    if (!err)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
        log_debug("consumer", "cannot store offset %lld of \"%s\" [%d]: %s", (long long)offset,
                  topic, partition, rd_kafka_err2str(err));
    return err ? HERALD_EKAFKA : 0;
}

int consumer_commit(struct consumer *c, const rd_kafka_topic_partition_list_t *offsets)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, offsets, 0);
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0;
    log_warn("consumer", "commit failed: %s", rd_kafka_err2str(err));
    switch (err) {
    /* The group is moving or its coordinator is: the same commit may work shortly. */
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
        return HERALD_ESTATE;
    default:
        return HERALD_EKAFKA;
    }
}

void consumer_serve(struct consumer *c, int timeout_ms)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!rkm)
        return;
    if (rkm->err)
        rd_kafka_message_destroy(rkm);
    else
        c->cbs.message(c->arg, rkm);
}

size_t consumer_assigned(const struct consumer *c)
{
    return c->assigned;
}

bool consumer_in_group(const struct consumer *c)
{
    return c->joined;
}

rd_kafka_t *consumer_handle(struct consumer *c)
{
    return c->rk;
}
