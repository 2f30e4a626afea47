/*
 * Idempotent Kafka producer with a loop-driven delivery report queue; see
 * producer.h.
 */
#include "herald/producer.h"
#include "herald/clock.h"
#include "herald/err.h"
#include "herald/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKLOG_DROP_AT 100000

struct pending_rec {
    struct pending_rec *next;
    char *topic;
    char *key;
    size_t key_len;
    void *value;
    size_t len;
    rd_kafka_headers_t *headers;
    void *opaque;
};

struct producer {
    struct loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    int pipefd[2];
    producer_ack_fn ack;
    void *arg;
    struct pending_rec *bhead, *btail;
    size_t backlog;
    size_t in_kafka;
    bool fatal;
    struct producer_stats stats;
    uint64_t kick_timer;
    int64_t last_fail_log;
    uint64_t fails_unreported;
};

bool producer_err_too_large(rd_kafka_resp_err_t err)
{
    /* librdkafka reports a local size refusal with the broker's code too. */
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

void producer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum log_level l = level <= 3   ? LOG_LEVEL_ERROR
                       : level == 4 ? LOG_LEVEL_WARN
                       : level <= 6 ? LOG_LEVEL_INFO
                                    : LOG_LEVEL_DEBUG;
    (void)rk;
    LOG_AT(l, "kafka", "%s: %s", fac, buf);
}

int producer_apply_kafka_conf(const struct config *cfg, rd_kafka_conf_t *conf, char *err,
                              size_t errlen)
{
    for (size_t i = 0; i < cfg->nkafka; i++) {
        char why[512];
        /* group.id and consumer-only settings are harmless on a producer, but noisy. */
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "invalid value for \"kafka.%s\": %s", cfg->kafka[i].key, why);
            return HERALD_EINVAL;
        }
    }
    return 0;
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct producer *p = opaque;
    (void)rk;
    p->in_kafka--;
    if (rkm->err) {
        int64_t now = clock_mono_ms();
        p->stats.failed++;
        /* One line per failure would flood the log during an outage: one per 5 s. */
        if (now - p->last_fail_log >= 5000) {
            log_warn("producer",
                     "record to \"%s\" failed: %s (%llu more failures since the "
                     "last report)",
                     rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err),
                     (unsigned long long)p->fails_unreported);
            p->last_fail_log = now;
            p->fails_unreported = 0;
        } else {
            p->fails_unreported++;
        }
    } else {
        p->stats.acked++;
    }
    if (rkm->_private)
        p->ack(rkm->_private, rkm->err, p->arg);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct producer *p = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        p->fatal = true;
        log_error("producer", "fatal producer error %s: %s", rd_kafka_err2name(ferr), fatal);
        return;
    }
    /* Transient: librdkafka retries by itself; records time out into failed reports. */
    log_warn("producer", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void kick_fired(struct loop *loop, uint64_t id, void *arg)
{
    struct producer *p = arg;
    (void)loop;
    (void)id;
    p->kick_timer = 0;
    producer_poll(p);
}

/*
 * Runs producer_poll after delay_ms. The pipe only signals delivery reports
 * (and only when the queue goes from empty to non-empty), so a backlog needs
 * its own wake-up: with nothing in flight no report would ever come.
 */
static void kick(struct producer *p, int64_t delay_ms)
{
    if (!p->kick_timer)
        p->kick_timer = loop_timer(p->loop, delay_ms, kick_fired, p);
}

static void on_wake(struct loop *loop, int fd, int events, void *arg)
{
    struct producer *p = arg;
    char drain[64];
    (void)loop;
    (void)events;
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    producer_poll(p);
}

int producer_new(struct loop *loop, const struct config *cfg, producer_ack_fn ack, void *arg,
                 struct producer **out, char *err, size_t errlen)
{
    struct producer *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = NULL;
    char why[512];
    int rc = HERALD_EKAFKA;

    *out = NULL;
    if (!p)
        return HERALD_ENOMEM;
    p->loop = loop;
    p->ack = ack;
    p->arg = arg;
    p->pipefd[0] = p->pipefd[1] = -1;
    conf = rd_kafka_conf_new();
    /* Defaults first so the kafka.* passthrough can override any of them. */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", why, sizeof(why)) ||
        rd_kafka_conf_set(conf, "acks", "all", why, sizeof(why)) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", why, sizeof(why)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", why, sizeof(why)) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "120000", why, sizeof(why)) ||
        /* As the consumer: back off reconnects 2 s at most, not librdkafka's 10 s. */
        rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "2000", why, sizeof(why)) ||
        rd_kafka_conf_set(conf, "client.id", "herald-producer", why, sizeof(why))) {
        snprintf(err, errlen, "producer defaults: %s", why);
        goto fail;
    }
    if ((rc = producer_apply_kafka_conf(cfg, conf, err, errlen)))
        goto fail;
    /* group.id is for the consumer; remove the warning it causes on a producer. */
    rd_kafka_conf_set(conf, "group.id", NULL, why, sizeof(why));
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, producer_log_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!p->rk) {
        snprintf(err, errlen, "cannot create the Kafka producer: %s", why);
        rc = HERALD_EKAFKA;
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    if (pipe2(p->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        rc = HERALD_EIO;
        goto fail;
    }
    p->mainq = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(p->mainq, p->pipefd[1], "1", 1);
    if ((rc = loop_watch(loop, p->pipefd[0], LOOP_READ, on_wake, p)))
        goto fail;
    *out = p;
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    producer_free(p);
    return rc;
}

void producer_free(struct producer *p)
{
    if (!p)
        return;
    while (p->bhead) {
        struct pending_rec *r = p->bhead;
        p->bhead = r->next;
        free(r->topic);
        free(r->key);
        free(r->value);
        if (r->headers)
            rd_kafka_headers_destroy(r->headers);
        free(r);
    }
    if (p->kick_timer)
        loop_cancel(p->loop, p->kick_timer);
    if (p->pipefd[0] >= 0)
        loop_unwatch(p->loop, p->pipefd[0]);
    if (p->mainq) {
        rd_kafka_queue_io_event_enable(p->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(p->mainq);
    }
    if (p->rk)
        rd_kafka_destroy(p->rk);
    for (int i = 0; i < 2; i++)
        if (p->pipefd[i] >= 0)
            close(p->pipefd[i]);
    free(p);
}

/* Tries to hand one record to librdkafka; HERALD_EFULL means try again later. */
/*
 * Tries to hand one record to librdkafka: 0, HERALD_EFULL (try again later),
 * HERALD_ETOOBIG (never fits: the caller must change the record), or
 * HERALD_EKAFKA. *errp gets librdkafka's code.
 */
static int try_produce(struct producer *p, const char *topic, const char *key, size_t key_len,
                       void *value, size_t len, rd_kafka_headers_t *headers, void *opaque,
                       bool free_value, rd_kafka_resp_err_t *errp)
{
    /* rd_kafka_produceva, not the RD_KAFKA_V_* macros: those are GNU statement expressions. */
    rd_kafka_vu_t vu[6];
    rd_kafka_error_t *error;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = topic;
    vu[1].vtype = RD_KAFKA_VTYPE_KEY;
    vu[1].u.mem.ptr = (void *)key;
    vu[1].u.mem.size = key_len;
    vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[2].u.mem.ptr = value;
    vu[2].u.mem.size = len;
    vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[3].u.i = free_value ? RD_KAFKA_MSG_F_FREE : RD_KAFKA_MSG_F_COPY;
    vu[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[4].u.ptr = opaque;
    vu[5].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[5].u.headers = headers;
    error = rd_kafka_produceva(p->rk, vu, headers ? 6 : 5);
    if (error) {
        err = rd_kafka_error_code(error);
        rd_kafka_error_destroy(error);
    }
    *errp = err;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return HERALD_EFULL;
    if (producer_err_too_large(err))
        return HERALD_ETOOBIG;
    if (err) {
        log_error("producer", "cannot produce to \"%s\": %s", topic, rd_kafka_err2str(err));
        return HERALD_EKAFKA;
    }
    p->in_kafka++;
    p->stats.sent++;
    return 0;
}

static int backlog_push(struct producer *p, const char *topic, const char *key, size_t key_len,
                        void *value, size_t len, bool free_value, rd_kafka_headers_t *headers,
                        void *opaque)
{
    struct pending_rec *r = calloc(1, sizeof(*r));
    if (!r)
        return HERALD_ENOMEM;
    r->topic = strdup(topic);
    r->key = key_len ? malloc(key_len) : NULL;
    r->value = free_value ? value : malloc(len ? len : 1);
    if (!r->topic || (key_len && !r->key) || !r->value) {
        free(r->topic);
        free(r->key);
        if (!free_value)
            free(r->value);
        free(r);
        return HERALD_ENOMEM;
    }
    if (key_len)
        memcpy(r->key, key, key_len);
    if (!free_value && len)
        memcpy(r->value, value, len);
    r->key_len = key_len;
    r->len = len;
    r->headers = headers;
    r->opaque = opaque;
    if (p->btail)
        p->btail->next = r;
    else
        p->bhead = r;
    p->btail = r;
    p->backlog++;
    if (p->backlog > p->stats.backlog_peak)
        p->stats.backlog_peak = p->backlog;
    return 0;
}

int producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                  void *value, size_t len, bool free_value, rd_kafka_headers_t *headers,
                  void *opaque, bool droppable)
{
    int rc;
    if (p->fatal) {
        if (headers)
            rd_kafka_headers_destroy(headers);
        if (free_value)
            free(value);
        return HERALD_EKAFKA;
    }
    if (!p->bhead) {
        rd_kafka_resp_err_t err;
        rc = try_produce(p, topic, key, key_len, value, len, headers, opaque, free_value, &err);
        if (rc == 0)
            return 0; /* librdkafka owns headers and (with F_FREE) value now */
        if (rc == HERALD_ETOOBIG) {
            /* Retrying cannot help: the caller has to make the record smaller. */
            if (headers)
                rd_kafka_headers_destroy(headers);
            if (free_value)
                free(value);
            return rc;
        }
        if (rc != HERALD_EFULL && droppable)
            goto drop;
    }
    if (droppable && p->backlog >= BACKLOG_DROP_AT)
        goto drop;
    rc = backlog_push(p, topic, key, key_len, value, len, free_value, headers, opaque);
    if (rc == 0) {
        kick(p, 0);
        return 0;
    }
    if (droppable)
        goto drop;
    /* Out of memory for a record that must not be lost: the caller retries it. */
    if (headers)
        rd_kafka_headers_destroy(headers);
    if (free_value)
        free(value);
    return rc;
drop:
    p->stats.dropped++;
    if (headers)
        rd_kafka_headers_destroy(headers);
    if (free_value)
        free(value);
    return HERALD_EFULL;
}

void producer_poll(struct producer *p)
{
    /* Delivery reports first: they free room in librdkafka's queue. */
    while (rd_kafka_poll(p->rk, 0) > 0)
        ;
    while (p->bhead) {
        struct pending_rec *r = p->bhead;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int rc = try_produce(p, r->topic, r->key, r->key_len, r->value, r->len, r->headers,
                             r->opaque, true, &err);
        if (rc == HERALD_EFULL) {
            kick(p, 10); /* librdkafka's queue is full: give it a moment, do not spin */
            break;
        }
        p->bhead = r->next;
        if (!p->bhead)
            p->btail = NULL;
        p->backlog--;
        if (rc) {
            /* A record librdkafka refuses outright gets a failed ack so the owner retries. */
            if (r->headers)
                rd_kafka_headers_destroy(r->headers);
            free(r->value);
            if (r->opaque)
                p->ack(r->opaque, err ? err : RD_KAFKA_RESP_ERR__FAIL, p->arg);
        }
        free(r->topic);
        free(r->key);
        free(r);
    }
}

int producer_flush(struct producer *p, int timeout_ms)
{
    int64_t waited = 0;
    while ((p->backlog || p->in_kafka) && waited < timeout_ms) {
        producer_poll(p);
        rd_kafka_flush(p->rk, 50);
        producer_poll(p);
        waited += 50;
    }
    return (int)(p->backlog + p->in_kafka);
}

size_t producer_outstanding(const struct producer *p)
{
    return p->backlog + p->in_kafka;
}

bool producer_healthy(const struct producer *p)
{
    return !p->fatal;
}

void producer_stats(const struct producer *p, struct producer_stats *out)
{
    *out = p->stats;
}

rd_kafka_t *producer_handle(struct producer *p)
{
    return p->rk;
}
