/*
 * `herald resend` and `herald replay`; see replay.h.
 */
#include "herald/replay.h"
#include "herald/admin.h"
#include "herald/clock.h"
#include "herald/err.h"
#include "herald/event.h"
#include "herald/producer.h"
#include "herald/retry.h"
#include "herald/subs.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KAFKA_WAIT_MS 15000

struct queue_ctx {
    rd_kafka_t *producer;
    const char *tier_topic;
    struct sub *sub;
    int failed;
    int queued;
};

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct queue_ctx *q = opaque;
    (void)rk;
    if (rkm->err) {
        q->failed++;
        fprintf(stderr, "herald: record to \"%s\" failed: %s\n", rd_kafka_topic_name(rkm->rkt),
                rd_kafka_err2str(rkm->err));
    }
}

static rd_kafka_t *new_client(const struct config *cfg, rd_kafka_type_t type, void *opaque)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    rd_kafka_t *rk;

    if (producer_apply_kafka_conf(cfg, conf, err, sizeof(err))) {
        fprintf(stderr, "herald: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(conf, "group.id", NULL, err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
        rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err));
        rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    } else {
        /* Reads by assignment only: no group membership, nothing committed. */
        rd_kafka_conf_set(conf, "group.id", "herald-replay", err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    }
    rd_kafka_conf_set_opaque(conf, opaque);
    rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "herald: cannot create a Kafka client: %s\n", err);
        return NULL;
    }
    return rk;
}

/* Loads and validates the subscription; it must exist and be active. */
static struct sub *load_sub(struct admin_ctx *a, const char *sub_id)
{
    redisReply *r = admin_command(a, "GET herald:sub:%s", sub_id);
    struct sub *sub = NULL;
    char field[64], why[256];

    if (!r)
        return NULL;
    if (r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "herald: no subscription \"%s\"\n", sub_id);
    } else if (subs_parse(r->str, r->len, &sub, field, sizeof(field), why, sizeof(why))) {
        fprintf(stderr, "herald: subscription \"%s\" is invalid: field \"%s\": %s\n", sub_id, field,
                why);
    } else if (!sub->active) {
        fprintf(stderr, "herald: subscription \"%s\" is disabled; enable it before redelivering\n",
                sub_id);
        subs_unref(sub);
        sub = NULL;
    }
    freeReplyObject(r);
    return sub;
}

/* Queues one event for the subscription: a retry record due now, attempt 1. */
static int queue_event(struct queue_ctx *q, const rd_kafka_message_t *src, const char *event_id,
                       const char *why)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(12);
    struct retry_record r = {0};
    rd_kafka_vu_t vu[5];
    rd_kafka_error_t *error;
    int64_t now = clock_wall_ms();

    r.event_id = event_id;
    r.sub_id = q->sub->id;
    r.tenant = q->sub->tenant;
    r.attempt = 1;
    r.first_at_ms = now;
    r.due_at_ms = now;
    r.manual = why;
    r.src_topic = rd_kafka_topic_name(src->rkt);
    r.src_partition = src->partition;
    r.src_offset = src->offset;
    retry_record_headers(&r, h);
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = q->tier_topic;
    vu[1].vtype = RD_KAFKA_VTYPE_KEY;
    vu[1].u.mem.ptr = q->sub->id;
    vu[1].u.mem.size = strlen(q->sub->id);
    vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[2].u.mem.ptr = src->payload;
    vu[2].u.mem.size = src->len;
    vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[3].u.i = RD_KAFKA_MSG_F_COPY;
    vu[4].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[4].u.headers = h;
    while ((error = rd_kafka_produceva(q->producer, vu, 5)) &&
           rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_error_destroy(error);
        rd_kafka_poll(q->producer, 100);
    }
    if (error) {
        fprintf(stderr, "herald: cannot queue event \"%s\": %s\n", event_id,
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_headers_destroy(h);
        return 1;
    }
    q->queued++;
    rd_kafka_poll(q->producer, 0);
    return 0;
}

/* Waits for every queued record; 0 when all were acknowledged. */
static int finish_queue(struct queue_ctx *q)
{
    if (rd_kafka_flush(q->producer, KAFKA_WAIT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "herald: %d record(s) not acknowledged in time\n",
                rd_kafka_outq_len(q->producer));
        return 1;
    }
    return q->failed ? 1 : 0;
}

static int open_queue(struct queue_ctx *q, struct admin_ctx *a, struct sub *sub, char *topic,
                      size_t topiclen)
{
    struct retry_policy pol;
    memset(q, 0, sizeof(*q));
    if (retry_policy_init(&pol, a->cfg.retry_schedule_ms, a->cfg.retry_schedule_len, 0)) {
        fprintf(stderr, "herald: invalid value for \"retry.schedule\"\n");
        return 2;
    }
    retry_tier_topic(&pol, a->cfg.retry_prefix, 0, topic, topiclen);
    q->tier_topic = topic;
    q->sub = sub;
    q->producer = new_client(&a->cfg, RD_KAFKA_PRODUCER, q);
    return q->producer ? 0 : 1;
}

/* Reads one message by position. */
static rd_kafka_message_t *fetch_one(rd_kafka_t *rk, const char *topic, int32_t partition,
                                     int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t deadline = clock_mono_ms() + KAFKA_WAIT_MS;
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (clock_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (!m->err && m->offset == offset)
            return m;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "herald: reading \"%s\" [%d] at %lld: %s\n", topic, partition,
                    (long long)offset, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return NULL;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "herald: \"%s\" [%d] has no offset %lld (expired or not written)\n",
                    topic, partition, (long long)offset);
            rd_kafka_message_destroy(m);
            return NULL;
        }
        rd_kafka_message_destroy(m);
    }
    fprintf(stderr, "herald: timed out reading \"%s\" [%d] at %lld\n", topic, partition,
            (long long)offset);
    return NULL;
}

/* Finds the request reference of an attempt record: by stream id, or the latest of an event. */
static int find_attempt(struct admin_ctx *a, const char *sub_id, const char *stream_id,
                        const char *event_id, char *topic, size_t topiclen, int32_t *partition,
                        int64_t *offset)
{
    char start[64] = "+";
    for (;;) {
        redisReply *r =
            stream_id
                ? admin_command(a, "XRANGE herald:attempts:%s %s %s", sub_id, stream_id, stream_id)
                : admin_command(a, "XREVRANGE herald:attempts:%s %s - COUNT 500", sub_id, start);
        size_t n;
        if (!r)
            return 1;
        n = r->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *fields = r->element[i]->element[1];
            for (size_t j = 0; j + 1 < fields->elements; j += 2) {
                cJSON *o, *req;
                if (strcmp(fields->element[j]->str, "record") != 0)
                    continue;
                o = cJSON_Parse(fields->element[j + 1]->str);
                req = cJSON_GetObjectItemCaseSensitive(o, "request");
                const char *eid =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "event_id"));
                if (o && req && (!event_id || (eid && strcmp(eid, event_id) == 0))) {
                    const char *t =
                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "topic"));
                    snprintf(topic, topiclen, "%s", t ? t : "");
                    *partition = (int32_t)cJSON_GetNumberValue(
                        cJSON_GetObjectItemCaseSensitive(req, "partition"));
                    *offset = (int64_t)cJSON_GetNumberValue(
                        cJSON_GetObjectItemCaseSensitive(req, "offset"));
                    cJSON_Delete(o);
                    freeReplyObject(r);
                    return topic[0] ? 0 : 1;
                }
                cJSON_Delete(o);
            }
        }
        if (n > 0)
            snprintf(start, sizeof(start), "(%s", r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (stream_id || n < 500)
            break;
    }
    fprintf(stderr,
            "herald: no attempt record of %s \"%s\" for subscription \"%s\"; give "
            "--topic, --partition and --offset instead\n",
            stream_id ? "id" : "event", stream_id ? stream_id : event_id, sub_id);
    return 1;
}

static void resend_usage(FILE *out)
{
    fprintf(out,
            "usage: herald resend [--config FILE] [--redis URL] --sub SUB\n"
            "         (--event ID | --attempt STREAM_ID | --topic T --partition P --offset O)\n");
}

int replay_resend(int argc, char **argv, char **envp)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"redis", required_argument, NULL, 'r'},
                                         {"sub", required_argument, NULL, 's'},
                                         {"event", required_argument, NULL, 'e'},
                                         {"attempt", required_argument, NULL, 'a'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"partition", required_argument, NULL, 'p'},
                                         {"offset", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *redis_url = NULL, *sub_id = NULL, *event_id = NULL,
               *stream_id = NULL;
    char topic[256] = "", tier[512];
    int32_t partition = -1;
    int64_t offset = -1;
    struct admin_ctx a;
    struct sub *sub = NULL;
    struct queue_ctx q = {0};
    rd_kafka_t *consumer = NULL;
    rd_kafka_message_t *m = NULL;
    struct event *ev = NULL;
    enum event_reject reject;
    char why[256];
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, "c:r:s:e:a:t:p:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 's':
            sub_id = optarg;
            break;
        case 'e':
            event_id = optarg;
            break;
        case 'a':
            stream_id = optarg;
            break;
        case 't':
            snprintf(topic, sizeof(topic), "%s", optarg);
            break;
        case 'p':
            partition = (int32_t)strtol(optarg, NULL, 10);
            break;
        case 'o':
            offset = strtoll(optarg, NULL, 10);
            break;
        case 'h':
            resend_usage(stdout);
            return 0;
        default:
            resend_usage(stderr);
            return 2;
        }
    }
    if (!sub_id || optind != argc ||
        (!event_id && !stream_id && !(topic[0] && partition >= 0 && offset >= 0))) {
        resend_usage(stderr);
        return 2;
    }
    if ((rc = admin_ctx_init(&a, config_path, redis_url, envp)))
        return rc;
    rc = 1;
    if (admin_redis(&a) || !(sub = load_sub(&a, sub_id)))
        goto out;
    if (!topic[0] &&
        find_attempt(&a, sub_id, stream_id, event_id, topic, sizeof(topic), &partition, &offset))
        goto out;
    consumer = new_client(&a.cfg, RD_KAFKA_CONSUMER, NULL);
    if (!consumer || !(m = fetch_one(consumer, topic, partition, offset)))
        goto out;
    if (event_parse(m->payload, m->len, sub->tenant, strlen(sub->tenant), SIZE_MAX, &ev, &reject,
                    why, sizeof(why))) {
        fprintf(stderr, "herald: the message at \"%s\" [%d] %lld is not an event: %s\n", topic,
                partition, (long long)offset, why);
        goto out;
    }
    if (event_id && strcmp(ev->id, event_id) != 0) {
        fprintf(stderr, "herald: the message at \"%s\" [%d] %lld is event \"%s\", not \"%s\"\n",
                topic, partition, (long long)offset, ev->id, event_id);
        goto out;
    }
    if (open_queue(&q, &a, sub, tier, sizeof(tier)) || queue_event(&q, m, ev->id, "resend") ||
        finish_queue(&q))
        goto out;
    printf("queued event \"%s\" (webhook-id \"%s\") for subscription \"%s\" on \"%s\"\n", ev->id,
           ev->id, sub_id, tier);
    rc = 0;
out:
    event_unref(ev);
    if (m)
        rd_kafka_message_destroy(m);
    if (consumer) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    if (q.producer)
        rd_kafka_destroy(q.producer);
    subs_unref(sub);
    admin_ctx_release(&a);
    return rc;
}

/* RFC 3339, unix seconds, or "-<duration>" meaning that long ago. */
static int parse_when(const char *s, int64_t *ms)
{
    char *end;
    long long v;
    if (s[0] == '-' && config_parse_duration(s + 1, ms) == 0) {
        *ms = clock_wall_ms() - *ms;
        return 0;
    }
    if (event_parse_time(s, ms) == 0)
        return 0;
    v = strtoll(s, &end, 10);
    if (*s && !*end && v >= 0) {
        *ms = v * 1000;
        return 0;
    }
    return HERALD_EINVAL;
}

static void replay_usage(FILE *out)
{
    fprintf(out, "usage: herald replay [--config FILE] [--redis URL] --sub SUB --since T "
                 "[--until T] [--topic T] [--dry-run]\n"
                 "  T: RFC 3339 (2024-10-01T18:30:00Z), unix seconds, or a duration ago (-2h)\n");
}

/* Replays one topic; adds to *scanned and *matched. */
static int replay_topic(struct admin_ctx *a, struct queue_ctx *q, const char *topic, int64_t since,
                        int64_t until, bool dry_run, long *scanned, long *matched)
{
    rd_kafka_t *rk = new_client(&a->cfg, RD_KAFKA_CONSUMER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *start = NULL, *stop = NULL;
    int64_t *ends = NULL;
    int done = 0, nparts, rc = 1;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t err;

    if (!rk)
        return 1;
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    err = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_WAIT_MS);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "herald: no metadata for topic \"%s\": %s\n", topic,
                rd_kafka_err2str(err ? err : md->topics[0].err));
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    start = rd_kafka_topic_partition_list_new(nparts);
    stop = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++) {
        rd_kafka_topic_partition_list_add(start, topic, md->topics[0].partitions[i].id)->offset =
            since;
        rd_kafka_topic_partition_list_add(stop, topic, md->topics[0].partitions[i].id)->offset =
            until;
    }
    /* Kafka's time index: the first offset whose timestamp is >= the time given. */
    if ((err = rd_kafka_offsets_for_times(rk, start, KAFKA_WAIT_MS)) ||
        (err = rd_kafka_offsets_for_times(rk, stop, KAFKA_WAIT_MS))) {
        fprintf(stderr, "herald: cannot look up offsets by time in \"%s\": %s\n", topic,
                rd_kafka_err2str(err));
        goto out;
    }
    ends = calloc((size_t)nparts, sizeof(*ends));
    if (!ends)
        goto out;
    for (int i = 0; i < nparts; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, start->elems[i].partition, &lo, &hi,
                                             KAFKA_WAIT_MS)) {
            fprintf(stderr, "herald: cannot read the end of \"%s\" [%d]\n", topic,
                    start->elems[i].partition);
            goto out;
        }
        /* -1 from the time index means "after the last message". */
        ends[i] = stop->elems[i].offset >= 0 ? stop->elems[i].offset : hi;
        if (start->elems[i].offset < 0 && hi > lo) {
            /*
             * Confirm with the last message before skipping the partition: a broker
             * without a time index (librdkafka's mock cluster) also answers -1. If
             * the last message is recent enough, scan from the start; every message
             * is filtered by its own timestamp below anyway.
             */
            rd_kafka_message_t *last = fetch_one(rk, topic, start->elems[i].partition, hi - 1);
            rd_kafka_timestamp_type_t tstype;
            int64_t ts = last ? rd_kafka_message_timestamp(last, &tstype) : -1;
            start->elems[i].offset = ts >= since ? lo : hi;
            if (last)
                rd_kafka_message_destroy(last);
        } else if (start->elems[i].offset < 0) {
            start->elems[i].offset = hi;
        }
        if (start->elems[i].offset >= ends[i])
            done++;
    }
    rd_kafka_assign(rk, start);
    while (done < nparts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, KAFKA_WAIT_MS);
        int idx = -1;
        if (!m) {
            fprintf(stderr, "herald: timed out reading \"%s\"\n", topic);
            goto out;
        }
        for (int i = 0; i < nparts; i++)
            if (start->elems[i].partition == m->partition)
                idx = i;
        if (idx < 0 || start->elems[idx].offset >= ends[idx]) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            start->elems[idx].offset = ends[idx];
            done++;
        } else if (m->err) {
            fprintf(stderr, "herald: reading \"%s\": %s\n", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        } else if (m->offset < ends[idx]) {
            struct event *ev = NULL;
            enum event_reject reject;
            rd_kafka_timestamp_type_t tstype;
            int64_t ts = rd_kafka_message_timestamp(m, &tstype);
            char why[128];
            /* Outside the window by its own timestamp: not part of the replay. */
            bool in_window = ts < 0 || (ts >= since && ts < until);
            if (in_window)
                (*scanned)++;
            if (in_window &&
                event_parse(m->payload, m->len, m->key, m->key_len, SIZE_MAX, &ev, &reject, why,
                            sizeof(why)) == 0 &&
                strcmp(ev->tenant, q->sub->tenant) == 0 && subs_matches(q->sub, ev->type)) {
                (*matched)++;
                if (dry_run)
                    printf("would queue event \"%s\" (%s) from \"%s\" [%d] %lld\n", ev->id,
                           ev->type, topic, m->partition, (long long)m->offset);
                else if (queue_event(q, m, ev->id, "replay")) {
                    event_unref(ev);
                    rd_kafka_message_destroy(m);
                    goto out;
                }
            }
            event_unref(ev);
            start->elems[idx].offset = m->offset + 1;
            if (start->elems[idx].offset >= ends[idx])
                done++;
        }
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    free(ends);
    if (start)
        rd_kafka_topic_partition_list_destroy(start);
    if (stop)
        rd_kafka_topic_partition_list_destroy(stop);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int replay_replay(int argc, char **argv, char **envp)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"redis", required_argument, NULL, 'r'},
                                         {"sub", required_argument, NULL, 's'},
                                         {"since", required_argument, NULL, 'S'},
                                         {"until", required_argument, NULL, 'U'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *redis_url = NULL, *sub_id = NULL, *since_s = NULL,
               *until_s = NULL, *topic = NULL;
    int64_t since, until;
    bool dry_run = false;
    struct admin_ctx a;
    struct sub *sub = NULL;
    struct queue_ctx q = {0};
    char tier[512];
    long scanned = 0, matched = 0;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, "c:r:s:S:U:t:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 's':
            sub_id = optarg;
            break;
        case 'S':
            since_s = optarg;
            break;
        case 'U':
            until_s = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'h':
            replay_usage(stdout);
            return 0;
        default:
            replay_usage(stderr);
            return 2;
        }
    }
    if (!sub_id || !since_s || optind != argc) {
        replay_usage(stderr);
        return 2;
    }
    if (parse_when(since_s, &since) || (until_s && parse_when(until_s, &until))) {
        fprintf(stderr, "herald: invalid time \"%s\"\n",
                parse_when(since_s, &since) ? since_s : until_s);
        return 2;
    }
    if (!until_s)
        until = clock_wall_ms();
    if (until <= since) {
        fprintf(stderr, "herald: --until must be later than --since\n");
        return 2;
    }
    if ((rc = admin_ctx_init(&a, config_path, redis_url, envp)))
        return rc;
    rc = 1;
    if (admin_redis(&a) || !(sub = load_sub(&a, sub_id)))
        goto out;
    if (open_queue(&q, &a, sub, tier, sizeof(tier)))
        goto out;
    if (topic) {
        if (replay_topic(&a, &q, topic, since, until, dry_run, &scanned, &matched))
            goto out;
    } else {
        for (size_t i = 0; i < a.cfg.events_topics.n; i++) {
            if (a.cfg.events_topics.v[i][0] == '^') {
                fprintf(stderr,
                        "herald: skipping the pattern \"%s\"; name its topics with "
                        "--topic\n",
                        a.cfg.events_topics.v[i]);
                continue;
            }
            if (replay_topic(&a, &q, a.cfg.events_topics.v[i], since, until, dry_run, &scanned,
                             &matched))
                goto out;
        }
    }
    if (finish_queue(&q))
        goto out;
    printf("%s %ld of %ld event(s) for subscription \"%s\"%s%s\n",
           dry_run ? "would queue" : "queued", matched, scanned, sub_id, dry_run ? "" : " on ",
           dry_run ? "" : tier);
    rc = 0;
out:
    if (q.producer)
        rd_kafka_destroy(q.producer);
    subs_unref(sub);
    admin_ctx_release(&a);
    return rc;
}
