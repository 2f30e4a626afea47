/*
 * The worker: consume, match, dispatch, record, settle, commit; see worker.h.
 *
 * Settlement is the heart of at-least-once. Every consumed message becomes
 * an origin tracked in its partition's offset tracker; every job and every
 * record produced on its behalf holds the origin; the origin is settled when
 * the last of them is durable (2xx, or the broker acknowledged the retry or
 * dead-letter record). Only settled offsets are stored for commit, and an
 * origin from a partition assignment that has since been revoked (its epoch
 * no longer matches) is never stored at all.
 */
#include "herald/worker.h"
#include "herald/attempts.h"
#include "herald/autodisable.h"
#include "herald/cache.h"
#include "herald/clock.h"
#include "herald/consumer.h"
#include "herald/dispatch.h"
#include "herald/err.h"
#include "herald/event.h"
#include "herald/httpd.h"
#include "herald/job.h"
#include "herald/log.h"
#include "herald/loop.h"
#include "herald/map.h"
#include "herald/metrics.h"
#include "herald/netguard.h"
#include "herald/offsets.h"
#include "herald/producer.h"
#include "herald/redis.h"
#include "herald/retry.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* A retry record that comes due this close is sent now rather than waited for. */
#define DUE_SLACK_MS          5
#define SHUTDOWN_ACK_GRACE_MS 10000
/* How long the last commit may wait out someone else's rebalance. */
#define FINAL_COMMIT_MS 5000

struct topic_info {
    char *name;
    bool retry;
    int tier;
};

struct held {
    struct held *next;
    struct event *ev;
    struct origin *origin;
    char *sub_id;
    int attempt;
    int64_t first_at;
    int64_t due_at;
};

struct part {
    struct worker *w;
    int topic;
    int32_t partition;
    uint32_t epoch;
    struct offsets offs;
    int64_t stored;
    bool dirty;
    bool paused;                /* the state last requested from librdkafka */
    struct held *hhead, *htail; /* retry records consumed but not yet due */
    uint64_t due_timer;
};

struct waiter {
    struct waiter *next;
    struct event *ev;
    struct origin *origin;
    char *sub_id; /* NULL: a fresh event to fan out; else a retry for this subscription */
    int attempt;
    int64_t first_at;
};

struct tenant_wait {
    struct waiter *head, *tail;
};

struct rec {
    struct worker *w;
    const char *topic;
    char *key;
    size_t klen;
    char *value;
    size_t len;
    bool own_value;
    rd_kafka_headers_t *hdrs;
    struct job *job;       /* settled on ack, when set */
    struct origin *origin; /* released on ack when there is no job */
    int tier;              /* retry tier, or -1 for dead letters */
    enum metrics_dlq_reason dlq_reason;
    int tries;
    uint64_t timer;
};

struct worker {
    const struct config *cfg;
    struct loop *loop;
    struct retry_policy policy;
    struct netguard *guard;
    struct redis *redis, *redis_sub;
    struct cache *cache;
    struct producer *producer;
    struct consumer *consumer;
    struct dispatch *dispatch;
    struct attempts *attempts;
    struct autodisable *autodisable;
    struct httpd *httpd;
    struct health health;
    struct topic_info *topics;
    size_t ntopics;
    struct map parts;
    struct map waiting;
    uint32_t next_epoch;
    struct origin *pinned; /* never settled after an out-of-memory; freed at exit */
    size_t live_jobs;
    size_t live_recs;
    size_t nwaiters;
    size_t nheld;
    bool paused_bp;
    bool stopping;
    bool cancelled;
    int64_t deadline;
    int signal_fd;
    int exit_code;
    uint64_t rng;
    uint64_t housekeeping_timer;
};

static void origin_release(struct worker *w, struct origin *o);
static void check_backpressure(struct worker *w);
static void route_retry(struct worker *w, struct event *ev, struct origin *o, const char *sub_id,
                        int attempt, int64_t first_at);
static void send_rec(struct rec *rec);

/* --- small helpers ------------------------------------------------------------------ */

static double rnd01(struct worker *w)
{
    /* xorshift64*: jitter only needs to be spread, not unpredictable. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (double)((w->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void part_key(int topic, int32_t partition, char *out, size_t n)
{
    snprintf(out, n, "%d:%d", topic, partition);
}

static struct part *part_get(struct worker *w, int topic, int32_t partition)
{
    char key[32];
    part_key(topic, partition, key, sizeof(key));
    return map_get(&w->parts, key);
}

static int topic_index(struct worker *w, const char *name)
{
    struct topic_info *t;
    int tier;
    for (size_t i = 0; i < w->ntopics; i++)
        if (strcmp(w->topics[i].name, name) == 0)
            return (int)i;
    /* A topic matched by a regex subscription: learn it. */
    t = realloc(w->topics, (w->ntopics + 1) * sizeof(*t));
    if (!t)
        return -1;
    w->topics = t;
    tier = retry_tier_of_topic(&w->policy, w->cfg->retry_prefix, name);
    t[w->ntopics].name = strdup(name);
    t[w->ntopics].retry = tier >= 0;
    t[w->ntopics].tier = tier;
    if (!t[w->ntopics].name)
        return -1;
    return (int)w->ntopics++;
}

static int max_attempts_of(const struct worker *w, const struct sub *sub)
{
    return sub->max_attempts > 0 ? sub->max_attempts : (int)w->cfg->delivery_max_attempts;
}

static void hdr_add_str(rd_kafka_headers_t *h, const char *name, const char *v)
{
    rd_kafka_header_add(h, name, -1, v, -1);
}

static void hdr_add_int(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    rd_kafka_header_add(h, name, -1, tmp, -1);
}

static bool hdr_get(rd_kafka_headers_t *h, const char *name, char *out, size_t n)
{
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) || !v || len >= n)
        return false;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

static bool hdr_get_int(rd_kafka_headers_t *h, const char *name, int64_t *out)
{
    char tmp[32], *end;
    if (!hdr_get(h, name, tmp, sizeof(tmp)) || !tmp[0])
        return false;
    errno = 0;
    *out = strtoll(tmp, &end, 10);
    return !errno && !*end;
}

/* --- pausing ------------------------------------------------------------------------ */

static void part_apply_pause(struct worker *w, struct part *p)
{
    bool want = w->paused_bp || w->stopping || p->hhead != NULL;
    if (want == p->paused)
        return;
    if (consumer_pause(w->consumer, w->topics[p->topic].name, p->partition, want) == 0)
        p->paused = want;
}

static void apply_pause_all(struct worker *w)
{
    struct map_iter it;
    struct map_entry *me;
    map_iter_init(&it, &w->parts);
    while ((me = map_iter_next(&it)))
        part_apply_pause(w, me->value);
}

/* --- settlement ------------------------------------------------------------------- */

static void origin_settled(struct worker *w, struct origin *o)
{
    struct part *p = part_get(w, o->topic, o->partition);
    /* A partition revoked (and maybe re-assigned) since: its new owner redoes the work. */
    if (p && p->epoch == o->epoch && offsets_done(&p->offs, o->offset) == 0)
        p->dirty = true;
    free(o);
}

static void origin_release(struct worker *w, struct origin *o)
{
    if (--o->pending == 0)
        origin_settled(w, o);
}

/*
 * When herald cannot even record that it owes work (out of memory), the
 * origin keeps a reference that is never released: its offset is never
 * committed, so the message is consumed again after a restart. Losing the
 * work by settling the origin anyway is not an option.
 */
static void origin_pin(struct worker *w, struct origin *o, const char *what)
{
    /* The extra reference is never released; the worker frees pinned origins at exit. */
    o->pending++;
    if (!o->pinned) {
        o->pinned = true;
        o->next_pinned = w->pinned;
        w->pinned = o;
    }
    log_error("worker", "out of memory %s; offset %lld stays uncommitted until a restart", what,
              (long long)o->offset);
}

static void job_settle(struct worker *w, struct job *job)
{
    struct origin *o = job->origin;
    job_free(job);
    w->live_jobs--;
    origin_release(w, o);
}

/* --- records: retry, dead letter ------------------------------------------------- */

static void rec_free(struct rec *rec)
{
    if (rec->own_value)
        free(rec->value);
    free(rec->key);
    if (rec->hdrs)
        rd_kafka_headers_destroy(rec->hdrs);
    free(rec);
}

static void rec_retry_timer(struct loop *loop, uint64_t id, void *arg)
{
    struct rec *rec = arg;
    (void)loop;
    (void)id;
    rec->timer = 0;
    send_rec(rec);
}

static void rec_failed(struct rec *rec)
{
    int64_t backoff = 250LL << (rec->tries < 5 ? rec->tries : 5);
    METRIC_INC(produce_retries);
    rec->timer = loop_timer(rec->w->loop, backoff, rec_retry_timer, rec);
}

/*
 * A record Kafka will never accept (too large for the producer or the broker)
 * cannot be retried into existence. It becomes a dead letter without the body:
 * the headers name the source topic, partition and offset where the original
 * bytes still are, so nothing is lost and the partition is not blocked.
 */
static void rec_omit_body(struct rec *rec)
{
    struct worker *w = rec->w;
    char size[32];
    log_error("worker",
              "a %zu-byte record for \"%s\" is too large for Kafka; dead-lettering "
              "it without its body",
              rec->len, rec->topic);
    if (rec->tier >= 0) {
        rec->tier = -1;
        rec->topic = w->cfg->dlq_topic;
        rd_kafka_header_add(rec->hdrs, RETRY_H_REASON, -1, "record_too_large", -1);
    }
    rec->dlq_reason = METRICS_DLQ_TOO_LARGE;
    snprintf(size, sizeof(size), "%zu", rec->len);
    rd_kafka_header_add(rec->hdrs, RETRY_H_BODY_OMITTED, -1, size, -1);
    if (rec->own_value)
        free(rec->value);
    rec->value = NULL;
    rec->own_value = false;
    rec->len = 0;
}

static void send_rec(struct rec *rec)
{
    rd_kafka_headers_t *h = rd_kafka_headers_copy(rec->hdrs);
    int rc;
    rec->tries++;
    rc = producer_send(rec->w->producer, rec->topic, rec->key, rec->klen, rec->value, rec->len,
                       false, h, rec, false);
    if (rc == HERALD_ETOOBIG && rec->len > 0) {
        rec_omit_body(rec);
        send_rec(rec);
    } else if (rc) {
        log_warn("worker", "cannot produce to \"%s\": %s; retrying", rec->topic,
                 herald_strerror(rc));
        rec_failed(rec);
    }
}

static void on_ack(void *opaque, rd_kafka_resp_err_t err, void *arg)
{
    struct rec *rec = opaque;
    struct worker *w = arg;
    if (err && producer_err_too_large(err) && rec->len > 0) {
        rec_omit_body(rec);
        send_rec(rec);
        return;
    }
    if (err) {
        /* Not durable: the job stays unsettled and the record is sent again. */
        rec_failed(rec);
        return;
    }
    if (rec->tier >= 0)
        METRIC_INC(retries_enqueued[rec->tier]);
    else
        METRIC_INC(dead_letters[rec->dlq_reason]);
    w->live_recs--;
    if (rec->job)
        job_settle(w, rec->job);
    else if (rec->origin)
        origin_release(w, rec->origin);
    rec_free(rec);
}

static struct rec *rec_new(struct worker *w, const char *topic, const char *key, size_t klen)
{
    struct rec *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return NULL;
    rec->w = w;
    rec->topic = topic;
    rec->tier = -1;
    rec->hdrs = rd_kafka_headers_new(12);
    rec->key = malloc(klen ? klen : 1);
    if (!rec->hdrs || !rec->key) {
        rec_free(rec);
        return NULL;
    }
    memcpy(rec->key, key, klen);
    rec->klen = klen;
    return rec;
}

/* Dead-letters a consumed message that is not a deliverable event. */
static void dlq_raw(struct worker *w, const rd_kafka_message_t *rkm, struct origin *o,
                    const char *reason, const char *detail, enum metrics_dlq_reason mreason)
{
    struct rec *rec = rec_new(w, w->cfg->dlq_topic, rkm->key ? rkm->key : "", rkm->key_len);
    rd_kafka_headers_t *orig = NULL;
    if (!rec) {
        origin_pin(w, o, "dead-lettering");
        return;
    }
    /* Over event.max_bytes cannot fit a record either: the body stays at its source. */
    if (rkm->len > (size_t)w->cfg->event_max_bytes) {
        char size[32];
        snprintf(size, sizeof(size), "%zu", rkm->len);
        hdr_add_str(rec->hdrs, RETRY_H_BODY_OMITTED, size);
    } else {
        rec->value = malloc(rkm->len ? rkm->len : 1);
        if (!rec->value) {
            rec_free(rec);
            origin_pin(w, o, "dead-lettering");
            return;
        }
        if (rkm->len)
            memcpy(rec->value, rkm->payload, rkm->len);
        rec->len = rkm->len;
        rec->own_value = true;
    }
    rec->origin = o;
    rec->dlq_reason = mreason;
    /* Keep the producer's own headers, then add ours. */
    if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig) {
        const char *name;
        const void *val;
        size_t sz;
        for (size_t i = 0; rd_kafka_header_get_all(orig, i, &name, &val, &sz) == 0; i++)
            if (strncmp(name, "herald-", 7) != 0)
                rd_kafka_header_add(rec->hdrs, name, -1, val, (ssize_t)sz);
    }
    hdr_add_str(rec->hdrs, RETRY_H_REASON, reason);
    hdr_add_str(rec->hdrs, RETRY_H_DETAIL, detail);
    hdr_add_str(rec->hdrs, RETRY_H_SRC_TOPIC, rd_kafka_topic_name(rkm->rkt));
    hdr_add_int(rec->hdrs, RETRY_H_SRC_PARTITION, rkm->partition);
    hdr_add_int(rec->hdrs, RETRY_H_SRC_OFFSET, rkm->offset);
    o->pending++;
    w->live_recs++;
    log_warn("worker", "dead-lettering offset %lld of \"%s\" [%d]: %s: %s", (long long)rkm->offset,
             rd_kafka_topic_name(rkm->rkt), rkm->partition, reason, detail);
    send_rec(rec);
}

/* The headers of a job's retry or dead-letter record. */
static void job_headers(struct worker *w, const struct job *job, rd_kafka_headers_t *h, int attempt,
                        int64_t due_at, const char *reason)
{
    const struct origin *o = job->origin;
    struct retry_record r = {0};
    r.event_id = job->ev->id;
    r.sub_id = job->sub->id;
    r.tenant = job->ev->tenant;
    r.attempt = attempt;
    r.first_at_ms = job->first_at_ms;
    r.due_at_ms = due_at;
    r.last_status = job->result.status;
    r.last_error = job->error;
    r.reason = reason;
    r.src_topic = w->topics[o->topic].name;
    r.src_partition = o->partition;
    r.src_offset = o->offset;
    retry_record_headers(&r, h);
}

static void send_job_rec(struct worker *w, struct job *job, bool retry)
{
    char topic_buf[512];
    const char *topic = w->cfg->dlq_topic;
    struct rec *rec;

    if (retry) {
        /* Tier topic names live in the topic table, which outlives every record. */
        retry_tier_topic(&w->policy, w->cfg->retry_prefix, job->decision.tier, topic_buf,
                         sizeof(topic_buf));
        int idx = topic_index(w, topic_buf);
        topic = idx >= 0 ? w->topics[idx].name : NULL;
    }
    rec = topic ? rec_new(w, topic, job->sub->id, strlen(job->sub->id)) : NULL;
    if (!rec) {
        /* Leave the job unsettled: the message is consumed again after a restart. */
        log_error("worker", "out of memory writing a record for event \"%s\"; job kept unsettled",
                  job->ev->id);
        return;
    }
    rec->value = job->ev->body; /* lives as long as the job, which the record settles */
    rec->len = job->ev->body_len;
    rec->job = job;
    if (retry) {
        rec->tier = (int)job->decision.tier;
        job_headers(w, job, rec->hdrs, job->decision.next_attempt,
                    clock_wall_ms() + job->decision.delay_ms, NULL);
    } else {
        rec->dlq_reason = metrics_dlq_reason_of(job->decision.reason);
        job_headers(w, job, rec->hdrs, job->attempt, 0,
                    job->decision.reason ? job->decision.reason : "unknown");
    }
    w->live_recs++;
    send_rec(rec);
}

/* Dead-letters a retry job whose subscription is gone or disabled. */
static void dlq_orphan(struct worker *w, struct event *ev, struct origin *o, const char *sub_id,
                       int attempt, int64_t first_at, const char *reason)
{
    struct rec *rec = rec_new(w, w->cfg->dlq_topic, sub_id, strlen(sub_id));
    if (!rec || !(rec->value = malloc(ev->body_len + 1))) {
        if (rec)
            rec_free(rec);
        origin_pin(w, o, "dead-lettering");
        return;
    }
    memcpy(rec->value, ev->body, ev->body_len);
    rec->len = ev->body_len;
    rec->own_value = true;
    rec->origin = o;
    rec->dlq_reason = metrics_dlq_reason_of(reason);
    {
        struct retry_record r = {0};
        r.event_id = ev->id;
        r.sub_id = sub_id;
        r.tenant = ev->tenant;
        r.attempt = attempt - 1;
        r.first_at_ms = first_at;
        r.reason = reason;
        retry_record_headers(&r, rec->hdrs);
    }
    o->pending++;
    w->live_recs++;
    send_rec(rec);
}

/* --- job completion ---------------------------------------------------------------- */

static void on_job_done(struct job *job, void *arg)
{
    struct worker *w = arg;
    struct retry_decision d;
    struct attempt_source src;
    /* Deferred: no attempt at all. Sent: a request actually went out (a latency sample). */
    bool attempted = !job->result.deferred;
    bool sent = attempted && !job->result.unsendable && !job->result.refused;
    int outcome;

    d = retry_decide(&w->policy, &job->result, job->attempt, max_attempts_of(w, job->sub),
                     rnd01(w));
    job->decision = d;
    outcome = attempted ? (int)d.verdict : 4;
    metrics_delivery(outcome, job->result.status, job->latency_us, sent);
    if (attempted) {
        src.topic = w->topics[job->origin->topic].name;
        src.partition = job->origin->partition;
        src.offset = job->origin->offset;
        attempts_publish(w->attempts, job, retry_verdict_name(d.verdict),
                         d.verdict == RETRY_RETRY ? clock_wall_ms() + d.delay_ms : 0, &src);
        autodisable_report(w->autodisable, job->sub, d.verdict == RETRY_DELIVERED);
        log_debug("worker", "event \"%s\" to subscription \"%s\" attempt %d: status %ld %s%s%s",
                  job->ev->id, job->sub->id, job->attempt, job->result.status,
                  retry_verdict_name(d.verdict), job->error[0] ? ": " : "", job->error);
    }
    switch (d.verdict) {
    case RETRY_DELIVERED:
        job_settle(w, job);
        break;
    case RETRY_RETRY:
        send_job_rec(w, job, true);
        break;
    case RETRY_GONE:
        autodisable_disable(w->autodisable, job->sub, "endpoint answered 410 Gone");
        send_job_rec(w, job, false);
        break;
    case RETRY_GIVE_UP:
        log_info("worker",
                 "event \"%s\" to subscription \"%s\" dead-lettered after attempt %d: "
                 "%s",
                 job->ev->id, job->sub->id, job->attempt, d.reason);
        send_job_rec(w, job, false);
        break;
    }
}

/* --- routing: fan-out and retries ---------------------------------------------------- */

static void submit(struct worker *w, struct event *ev, struct sub *sub, struct origin *o,
                   int attempt, int64_t first_at)
{
    struct job *job = job_new(ev, sub, o, attempt, first_at, (size_t)w->cfg->attempts_body_max);
    if (!job) {
        origin_pin(w, o, "creating a job");
        return;
    }
    o->pending++;
    w->live_jobs++;
    dispatch_submit(w->dispatch, job);
}

static void fan_out(struct worker *w, struct event *ev, struct origin *o,
                    const struct cache_entry *e)
{
    size_t matched = 0;
    int64_t now = clock_wall_ms();
    o->pending++; /* hold the origin while jobs are created */
    for (size_t i = 0; i < e->n; i++) {
        if (subs_matches(e->subs[i], ev->type)) {
            submit(w, ev, e->subs[i], o, 1, now);
            matched++;
        }
    }
    if (!matched)
        METRIC_INC(events_unmatched);
    origin_release(w, o);
}

static void deliver_retry(struct worker *w, struct event *ev, struct origin *o,
                          const struct cache_entry *e, const char *sub_id, int attempt,
                          int64_t first_at)
{
    struct sub *sub = cache_find(e, sub_id);
    if (!sub)
        dlq_orphan(w, ev, o, sub_id, attempt, first_at, "subscription_deleted");
    else if (!sub->active)
        dlq_orphan(w, ev, o, sub_id, attempt, first_at, "subscription_disabled");
    else
        submit(w, ev, sub, o, attempt, first_at);
}

static void wait_for_tenant(struct worker *w, struct event *ev, struct origin *o,
                            const char *sub_id, int attempt, int64_t first_at)
{
    struct tenant_wait *tw = map_get(&w->waiting, ev->tenant);
    struct waiter *wt = calloc(1, sizeof(*wt));
    if (!tw) {
        tw = calloc(1, sizeof(*tw));
        if (tw && map_put(&w->waiting, ev->tenant, tw, NULL)) {
            free(tw);
            tw = NULL;
        }
    }
    if (!wt || !tw || (sub_id && !(wt->sub_id = strdup(sub_id)))) {
        free(wt);
        origin_pin(w, o, "queueing an event for its tenant");
        return;
    }
    wt->ev = event_ref(ev);
    wt->origin = o;
    wt->attempt = attempt;
    wt->first_at = first_at;
    o->pending++;
    if (tw->tail)
        tw->tail->next = wt;
    else
        tw->head = wt;
    tw->tail = wt;
    w->nwaiters++;
}

static void on_cache_ready(void *arg, const char *tenant, const struct cache_entry *e)
{
    struct worker *w = arg;
    struct tenant_wait *tw;
    struct waiter *wt;

    if (!e) {
        METRIC_INC(cache_lookup_failures);
        return; /* waiters stay unsettled; the cache retries the lookup */
    }
    tw = map_del(&w->waiting, tenant);
    if (!tw)
        return;
    wt = tw->head;
    free(tw);
    while (wt) {
        struct waiter *next = wt->next;
        if (wt->sub_id)
            deliver_retry(w, wt->ev, wt->origin, e, wt->sub_id, wt->attempt, wt->first_at);
        else
            fan_out(w, wt->ev, wt->origin, e);
        origin_release(w, wt->origin);
        event_unref(wt->ev);
        free(wt->sub_id);
        free(wt);
        w->nwaiters--;
        wt = next;
    }
}

static void route_event(struct worker *w, struct event *ev, struct origin *o)
{
    const struct cache_entry *e = cache_get(w->cache, ev->tenant);
    if (e) {
        METRIC_INC(cache_hits);
        fan_out(w, ev, o, e);
    } else {
        METRIC_INC(cache_misses);
        wait_for_tenant(w, ev, o, NULL, 1, 0);
    }
}

static void route_retry(struct worker *w, struct event *ev, struct origin *o, const char *sub_id,
                        int attempt, int64_t first_at)
{
    const struct cache_entry *e = cache_get(w->cache, ev->tenant);
    if (e) {
        METRIC_INC(cache_hits);
        deliver_retry(w, ev, o, e, sub_id, attempt, first_at);
    } else {
        METRIC_INC(cache_misses);
        wait_for_tenant(w, ev, o, sub_id, attempt, first_at);
    }
}

/* --- retry records held until due ------------------------------------------------- */

static void held_free(struct held *h)
{
    event_unref(h->ev);
    free(h->sub_id);
    free(h);
}

static void due_timer_fired(struct loop *loop, uint64_t id, void *arg);

static void part_arm_due(struct worker *w, struct part *p)
{
    int64_t wait;
    if (p->due_timer) {
        loop_cancel(w->loop, p->due_timer);
        p->due_timer = 0;
    }
    if (!p->hhead)
        return;
    wait = p->hhead->due_at - clock_wall_ms();
    p->due_timer = loop_timer(w->loop, wait > 0 ? wait : 0, due_timer_fired, p);
}

static void release_due(struct worker *w, struct part *p)
{
    int64_t now = clock_wall_ms();
    while (p->hhead && p->hhead->due_at <= now + DUE_SLACK_MS && !w->stopping) {
        struct held *h = p->hhead;
        p->hhead = h->next;
        if (!p->hhead)
            p->htail = NULL;
        w->nheld--;
        route_retry(w, h->ev, h->origin, h->sub_id, h->attempt, h->first_at);
        origin_release(w, h->origin);
        held_free(h);
    }
    part_arm_due(w, p);
    part_apply_pause(w, p);
}

static void due_timer_fired(struct loop *loop, uint64_t id, void *arg)
{
    struct part *p = arg;
    (void)loop;
    (void)id;
    p->due_timer = 0;
    release_due(p->w, p);
}

/* --- consuming -------------------------------------------------------------------- */

static void handle_event(struct worker *w, rd_kafka_message_t *rkm, struct origin *o)
{
    struct event *ev = NULL;
    enum event_reject reject;
    char why[256];
    int rc;

    METRIC_INC(events_consumed);
    rc = event_parse(rkm->payload, rkm->len, rkm->key, rkm->key_len,
                     (size_t)w->cfg->event_max_bytes, &ev, &reject, why, sizeof(why));
    if (rc == HERALD_ENOMEM) {
        origin_pin(w, o, "parsing an event");
        return;
    }
    if (rc) {
        METRIC_INC(events_rejected[reject]);
        dlq_raw(w, rkm, o, event_reject_name(reject), why, METRICS_DLQ_POISON);
        return;
    }
    route_event(w, ev, o);
    event_unref(ev);
}

static void handle_retry(struct worker *w, rd_kafka_message_t *rkm, struct origin *o,
                         struct part *p)
{
    rd_kafka_headers_t *h = NULL;
    char sub_id[SUBS_ID_MAX + 1], tenant[EVENT_TENANT_MAX + 1], why[256];
    int64_t attempt, first_at, due_at;
    struct event *ev = NULL;
    enum event_reject reject;
    struct held *held;
    int rc;

    METRIC_INC(retries_consumed);
    rd_kafka_message_headers(rkm, &h);
    if (!hdr_get(h, RETRY_H_SUB, sub_id, sizeof(sub_id)) ||
        !hdr_get(h, RETRY_H_TENANT, tenant, sizeof(tenant)) ||
        !hdr_get_int(h, RETRY_H_ATTEMPT, &attempt) ||
        !hdr_get_int(h, RETRY_H_FIRST_AT, &first_at) || !hdr_get_int(h, RETRY_H_DUE_AT, &due_at) ||
        attempt < 1 || attempt > 1000) {
        dlq_raw(w, rkm, o, "invalid_retry_record", "missing or malformed herald-* headers",
                METRICS_DLQ_BAD_RETRY);
        return;
    }
    /* The tenant travels in a header: the record is keyed by subscription, not tenant. */
    rc = event_parse(rkm->payload, rkm->len, tenant, strlen(tenant), SIZE_MAX, &ev, &reject, why,
                     sizeof(why));
    if (rc == HERALD_ENOMEM) {
        origin_pin(w, o, "parsing a retry record");
        return;
    }
    if (rc) {
        dlq_raw(w, rkm, o, "invalid_retry_record", why, METRICS_DLQ_BAD_RETRY);
        return;
    }
    if (strcmp(ev->tenant, tenant) != 0) {
        /* The event names its own tenant; the header must agree. */
        free(ev->tenant);
        ev->tenant = strdup(tenant);
        if (!ev->tenant) {
            event_unref(ev);
            origin_pin(w, o, "parsing a retry record");
            return;
        }
    }
    if (due_at <= clock_wall_ms() + DUE_SLACK_MS && !p->hhead) {
        route_retry(w, ev, o, sub_id, (int)attempt, first_at);
        event_unref(ev);
        return;
    }
    /* Not due: hold it and pause the partition until it is (records behind it are later). */
    held = calloc(1, sizeof(*held));
    if (!held || !(held->sub_id = strdup(sub_id))) {
        free(held);
        event_unref(ev);
        origin_pin(w, o, "holding a retry record");
        return;
    }
    held->ev = ev;
    held->origin = o;
    held->attempt = (int)attempt;
    held->first_at = first_at;
    held->due_at = due_at;
    o->pending++;
    if (p->htail)
        p->htail->next = held;
    else
        p->hhead = held;
    p->htail = held;
    w->nheld++;
    part_apply_pause(w, p);
    if (!p->due_timer)
        part_arm_due(w, p);
}

static void on_message(void *arg, rd_kafka_message_t *rkm)
{
    struct worker *w = arg;
    int topic = topic_index(w, rd_kafka_topic_name(rkm->rkt));
    struct part *p = topic >= 0 ? part_get(w, topic, rkm->partition) : NULL;
    struct origin *o;

    /* Not ours any more, or stopping: not tracked, so never committed; redelivered later. */
    if (!p || w->stopping) {
        rd_kafka_message_destroy(rkm);
        return;
    }
    if (offsets_track(&p->offs, rkm->offset)) {
        rd_kafka_message_destroy(rkm); /* already tracked: a re-fetch after a pause */
        return;
    }
    o = calloc(1, sizeof(*o));
    if (!o) {
        /* Tracked but never settled: the offset cannot be committed past it. */
        log_error("worker", "out of memory; offset %lld left unsettled", (long long)rkm->offset);
        rd_kafka_message_destroy(rkm);
        return;
    }
    o->topic = topic;
    o->partition = rkm->partition;
    o->offset = rkm->offset;
    o->epoch = p->epoch;
    o->pending = 1; /* held by this function until routing is done */
    if (w->topics[topic].retry)
        handle_retry(w, rkm, o, p);
    else
        handle_event(w, rkm, o);
    origin_release(w, o);
    rd_kafka_message_destroy(rkm);
    /*
     * Check after every message, not once per poll batch: a batch is up to
     * 1000 messages, each fanning out to many jobs, far past the cap. Once
     * paused, librdkafka drops what it had fetched for these partitions.
     */
    check_backpressure(w);
}

static void on_assigned(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    struct worker *w = arg;
    for (int i = 0; i < parts->cnt; i++) {
        int topic = topic_index(w, parts->elems[i].topic);
        char key[32];
        struct part *p;
        if (topic < 0)
            continue;
        part_key(topic, parts->elems[i].partition, key, sizeof(key));
        if (map_get(&w->parts, key))
            continue;
        p = calloc(1, sizeof(*p));
        if (!p || map_put(&w->parts, key, p, NULL)) {
            free(p);
            log_error("worker", "out of memory tracking a partition");
            continue;
        }
        p->w = w;
        p->topic = topic;
        p->partition = parts->elems[i].partition;
        p->epoch = ++w->next_epoch;
        p->stored = -1;
        offsets_init(&p->offs);
        part_apply_pause(w, p);
    }
    METRIC_SET(partitions_assigned, (int64_t)w->parts.count);
}

static void part_free(struct worker *w, struct part *p)
{
    if (p->due_timer)
        loop_cancel(w->loop, p->due_timer);
    while (p->hhead) {
        struct held *h = p->hhead;
        p->hhead = h->next;
        w->nheld--;
        /* Its new owner consumes the record again; this origin is simply forgotten. */
        origin_release(w, h->origin);
        held_free(h);
    }
    offsets_release(&p->offs);
    free(p);
}

static void store_offsets(struct worker *w, bool all)
{
    struct map_iter it;
    struct map_entry *me;
    map_iter_init(&it, &w->parts);
    while ((me = map_iter_next(&it))) {
        struct part *p = me->value;
        int64_t c;
        if (!p->dirty && !all)
            continue;
        p->dirty = false;
        c = offsets_committable(&p->offs);
        if (c > p->stored &&
            consumer_store(w->consumer, w->topics[p->topic].name, p->partition, c) == 0)
            p->stored = c;
    }
}

static void on_revoked(void *arg, const rd_kafka_topic_partition_list_t *parts, bool lost)
{
    struct worker *w = arg;
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(parts->cnt);

    for (int i = 0; i < parts->cnt; i++) {
        int topic = topic_index(w, parts->elems[i].topic);
        char key[32];
        struct part *p;
        int64_t c;
        if (topic < 0)
            continue;
        part_key(topic, parts->elems[i].partition, key, sizeof(key));
        p = map_del(&w->parts, key);
        if (!p)
            continue;
        c = offsets_committable(&p->offs);
        if (!lost && c >= 0 && c > p->stored)
            rd_kafka_topic_partition_list_add(commit, parts->elems[i].topic,
                                              parts->elems[i].partition)
                ->offset = c;
        part_free(w, p);
    }
    /* Commit what is settled before the partitions go, so their next owner starts there. */
    if (commit->cnt > 0)
        consumer_commit(w->consumer, commit);
    rd_kafka_topic_partition_list_destroy(commit);
    METRIC_SET(partitions_assigned, (int64_t)w->parts.count);
}

static void on_stats(void *arg, const char *json, size_t len)
{
    (void)arg;
    metrics_set_lag(json, len);
}

/* --- loop hooks -------------------------------------------------------------------- */

static size_t pending_work(const struct worker *w)
{
    return w->live_jobs + w->nwaiters + w->nheld;
}

static void begin_stop(struct worker *w, const char *why)
{
    if (w->stopping)
        return;
    log_info("worker", "%s: stopping fetch, draining %zu job(s) (deadline %llds)", why,
             w->live_jobs, (long long)(w->cfg->shutdown_timeout_ms / 1000));
    w->stopping = true;
    __atomic_store_n(&w->health.stopping, 1, __ATOMIC_RELAXED);
    w->deadline = clock_mono_ms() + w->cfg->shutdown_timeout_ms;
    apply_pause_all(w);
}

/* Pauses consumption at delivery.max_pending and resumes it below half of that. */
static void check_backpressure(struct worker *w)
{
    size_t pending = pending_work(w);
    if (!w->paused_bp && pending >= (size_t)w->cfg->delivery_max_pending) {
        w->paused_bp = true;
        log_info("worker", "%zu jobs pending: pausing consumption", pending);
        apply_pause_all(w);
    } else if (w->paused_bp && pending < (size_t)w->cfg->delivery_max_pending / 2) {
        w->paused_bp = false;
        log_info("worker", "%zu jobs pending: resuming consumption", pending);
        apply_pause_all(w);
    }
}

static void before_wait(struct loop *loop, void *arg)
{
    struct worker *w = arg;
    size_t pending = pending_work(w);
    int64_t now = clock_mono_ms();

    store_offsets(w, false);
    check_backpressure(w);
    METRIC_SET(in_flight, (int64_t)dispatch_in_flight(w->dispatch));
    METRIC_SET(jobs_pending, (int64_t)pending);
    METRIC_SET(breakers_open, (int64_t)dispatch_breakers_open(w->dispatch));
    METRIC_SET(paused, (int64_t)w->paused_bp);
    METRIC_SET(redis_up, (int64_t)redis_is_up(w->redis));
    METRIC_SET(producer_healthy, (int64_t)producer_healthy(w->producer));
    __atomic_store_n(&w->health.heartbeat_ms, now, __ATOMIC_RELAXED);
    __atomic_store_n(&w->health.joined, (int)consumer_in_group(w->consumer), __ATOMIC_RELAXED);
    __atomic_store_n(&w->health.redis_up, (int)redis_is_up(w->redis), __ATOMIC_RELAXED);
    __atomic_store_n(&w->health.producer_ok, (int)producer_healthy(w->producer), __ATOMIC_RELAXED);

    if (!producer_healthy(w->producer) && !w->stopping) {
        /* Nothing can be settled any more; offsets stay where they are. */
        log_error("worker", "the Kafka producer failed fatally; exiting so the pod restarts");
        w->exit_code = 1;
        loop_stop(loop);
        return;
    }
    if (!w->stopping)
        return;
    /* Held retries and events waiting for Redis are not waited for: they stay unsettled. */
    if (w->live_jobs == 0 && w->live_recs == 0) {
        loop_stop(loop);
        return;
    }
    if (!w->cancelled && now >= w->deadline) {
        log_warn("worker", "shutdown deadline reached: handing %zu in-flight job(s) to retry",
                 dispatch_in_flight(w->dispatch) + dispatch_queued(w->dispatch));
        w->cancelled = true;
        w->deadline = now + SHUTDOWN_ACK_GRACE_MS;
        dispatch_cancel_all(w->dispatch);
    } else if (w->cancelled && now >= w->deadline) {
        log_warn("worker",
                 "%zu record(s) not acknowledged in time; their offsets stay "
                 "uncommitted",
                 w->live_recs);
        loop_stop(loop);
    }
}

static void on_signal(struct loop *loop, int fd, int events, void *arg)
{
    struct worker *w = arg;
    struct signalfd_siginfo si;
    (void)loop;
    (void)events;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (w->stopping && si.ssi_signo == SIGINT) {
            log_warn("worker", "second interrupt: exiting without draining");
            w->exit_code = 1;
            loop_stop(w->loop);
            return;
        }
        begin_stop(w, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    }
}

static void on_change(struct redis *r, const char *msg, size_t len, void *arg)
{
    struct worker *w = arg;
    char tenant[EVENT_TENANT_MAX + 1];
    (void)r;
    if (!msg) {
        cache_invalidate(w->cache, "*"); /* (re)subscribed: changes may have been missed */
        return;
    }
    if (len == 0 || len > EVENT_TENANT_MAX)
        return;
    memcpy(tenant, msg, len);
    tenant[len] = '\0';
    log_debug("worker", "subscriptions of tenant \"%s\" changed", tenant);
    cache_invalidate(w->cache, tenant);
}

static void housekeeping(struct loop *loop, uint64_t id, void *arg)
{
    struct worker *w = arg;
    struct cache_stats cs;
    struct producer_stats ps;
    (void)id;
    cache_stats(w->cache, &cs);
    METRIC_SET(invalid_subscriptions, cs.invalid_docs);
    producer_stats(w->producer, &ps);
    METRIC_SET(attempt_records_dropped, ps.dropped);
    w->housekeeping_timer = loop_timer(loop, 1000, housekeeping, w);
}

/* --- set-up and tear-down ----------------------------------------------------------- */

static int build_topics(struct worker *w, struct strlist *subscribe)
{
    const struct config *cfg = w->cfg;
    char topic[512];
    const char *labels[RETRY_MAX_TIERS];
    char label_buf[RETRY_MAX_TIERS][32];
    size_t n = cfg->events_topics.n + w->policy.ntiers;

    subscribe->v = calloc(n, sizeof(char *));
    if (!subscribe->v)
        return HERALD_ENOMEM;
    for (size_t i = 0; i < cfg->events_topics.n; i++) {
        subscribe->v[subscribe->n] = strdup(cfg->events_topics.v[i]);
        if (!subscribe->v[subscribe->n++])
            return HERALD_ENOMEM;
        if (cfg->events_topics.v[i][0] != '^' && topic_index(w, cfg->events_topics.v[i]) < 0)
            return HERALD_ENOMEM;
    }
    for (size_t i = 0; i < w->policy.ntiers; i++) {
        retry_tier_topic(&w->policy, cfg->retry_prefix, i, topic, sizeof(topic));
        subscribe->v[subscribe->n] = strdup(topic);
        if (!subscribe->v[subscribe->n++] || topic_index(w, topic) < 0)
            return HERALD_ENOMEM;
        config_format_duration(w->policy.tiers[i], label_buf[i], sizeof(label_buf[i]));
        labels[i] = label_buf[i];
    }
    metrics_set_tiers(labels, w->policy.ntiers);
    return 0;
}

/*
 * The last commit before leaving. If another member's rebalance is under way,
 * the coordinator refuses it (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION):
 * keep serving the group and commit the same offsets again for a few seconds,
 * rather than leave settled work to be delivered again by the next owner.
 */
static void commit_final(struct worker *w)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)w->parts.count);
    struct map_iter it;
    struct map_entry *me;
    int64_t deadline = clock_mono_ms() + FINAL_COMMIT_MS;

    map_iter_init(&it, &w->parts);
    while ((me = map_iter_next(&it))) {
        struct part *p = me->value;
        int64_t c = offsets_committable(&p->offs);
        if (c >= 0)
            rd_kafka_topic_partition_list_add(l, w->topics[p->topic].name, p->partition)->offset =
                c;
    }
    while (l->cnt > 0 && consumer_commit(w->consumer, l) == HERALD_ESTATE &&
           clock_mono_ms() < deadline)
        consumer_serve(w->consumer, 250);
    rd_kafka_topic_partition_list_destroy(l);
}

static void waiting_free(void *p)
{
    struct tenant_wait *tw = p;
    while (tw && tw->head) {
        struct waiter *wt = tw->head;
        tw->head = wt->next;
        event_unref(wt->ev);
        free(wt->sub_id);
        free(wt->origin); /* unsettled by design: redelivered after restart */
        free(wt);
    }
    free(tw);
}

static void parts_free(struct worker *w)
{
    struct map_iter it;
    struct map_entry *me;
    map_iter_init(&it, &w->parts);
    while ((me = map_iter_next(&it))) {
        part_free(w, me->value);
        map_iter_del(&it);
    }
    map_release(&w->parts, NULL);
}

int worker_run(const struct config *cfg)
{
    struct worker w;
    struct strlist subscribe = {0};
    struct consumer_cbs cbs = {on_message, on_assigned, on_revoked, on_stats};
    struct dispatch_opts dopts = {0};
    char err[512] = "";
    sigset_t mask;

    memset(&w, 0, sizeof(w));
    w.cfg = cfg;
    w.signal_fd = -1;
    w.exit_code = 1;
    w.rng = (uint64_t)clock_wall_ms() * 6364136223846793005ULL ^ (uint64_t)getpid();
    map_init(&w.parts);
    map_init(&w.waiting);

    /* Signals go to the signalfd only; block them before any library thread starts. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (retry_policy_init(&w.policy, cfg->retry_schedule_ms, cfg->retry_schedule_len,
                          (int)cfg->retry_jitter_pct)) {
        log_error("worker", "invalid value for \"retry.schedule\"");
        return 2;
    }
    if (netguard_new(cfg->delivery_allow_cidrs, &w.guard, err, sizeof(err))) {
        log_error("worker", "invalid value for \"delivery.allow_cidrs\": %s", err);
        return 2;
    }
    w.loop = loop_new();
    if (!w.loop)
        goto out;
    w.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w.signal_fd < 0 || loop_watch(w.loop, w.signal_fd, LOOP_READ, on_signal, &w))
        goto out;
    w.health.heartbeat_ms = clock_mono_ms();
    if (cfg->http_listen[0] &&
        httpd_start(cfg->http_listen, &w.health, &w.httpd, err, sizeof(err))) {
        log_error("worker", "%s", err);
        goto out;
    }
    if (redis_new(w.loop, cfg->redis_url, cfg->redis_timeout_ms, 100000, &w.redis) ||
        redis_new(w.loop, cfg->redis_url, cfg->redis_timeout_ms, 16, &w.redis_sub)) {
        log_error("worker", "invalid value for \"redis.url\"");
        w.exit_code = 2;
        goto out;
    }
    if (redis_subscribe(w.redis_sub, "herald:changes", on_change, &w))
        goto out;
    if (cache_new(w.loop, w.redis, cfg->cache_ttl_ms, (size_t)cfg->cache_max_tenants,
                  on_cache_ready, &w, &w.cache))
        goto out;
    if (producer_new(w.loop, cfg, on_ack, &w, &w.producer, err, sizeof(err))) {
        log_error("worker", "%s", err);
        goto out;
    }
    if (attempts_new(w.producer, w.redis, cfg->attempts_topic, cfg->attempts_history,
                     &w.attempts) ||
        autodisable_new(w.loop, w.redis, cfg->disable_after_ms, &w.autodisable))
        goto out;
    dopts.timeout_ms = cfg->delivery_timeout_ms;
    dopts.connect_timeout_ms = cfg->delivery_connect_timeout_ms;
    dopts.max_in_flight = (size_t)cfg->delivery_max_in_flight;
    dopts.endpoint_in_flight = (size_t)cfg->delivery_endpoint_in_flight;
    dopts.rate_limit = (int)cfg->delivery_rate_limit;
    dopts.response_max = (size_t)cfg->delivery_response_max;
    dopts.https_only = cfg->delivery_https_only;
    dopts.ca_bundle = cfg->delivery_ca_bundle;
    dopts.proxy = cfg->delivery_proxy;
    dopts.user_agent = cfg->delivery_user_agent;
    dopts.guard = w.guard;
    dopts.breaker_failures = (int)cfg->breaker_failures;
    dopts.breaker_cooldown_ms = cfg->breaker_cooldown_ms;
    if (dispatch_new(w.loop, &dopts, on_job_done, &w, &w.dispatch))
        goto out;
    if (build_topics(&w, &subscribe))
        goto out;
    if (consumer_new(w.loop, cfg, &subscribe, &cbs, &w, &w.consumer, err, sizeof(err))) {
        log_error("worker", "%s", err);
        goto out;
    }
    loop_set_before_wait(w.loop, before_wait, &w);
    w.housekeeping_timer = loop_timer(w.loop, 1000, housekeeping, &w);
    log_info("worker", "herald %s running: %zu event topic(s), %zu retry tier(s), group \"%s\"",
             HERALD_VERSION, cfg->events_topics.n, w.policy.ntiers,
             config_kafka_get(cfg, "group.id"));
    w.exit_code = 0;
    loop_run(w.loop);

    /* Commit what is settled, leave the group, and wait briefly for attempt records. */
    store_offsets(&w, true);
    commit_final(&w);
    consumer_close(w.consumer);
    if (w.live_jobs)
        dispatch_cancel_all(w.dispatch);
    producer_flush(w.producer, 5000);
    log_info("worker", "stopped (%zu job(s) left unsettled, to be redelivered)", w.live_jobs);
out:
    if (w.exit_code && err[0] == '\0' && !w.consumer)
        log_error("worker", "start-up failed");
    consumer_free(w.consumer);
    /* Jobs still held by the dispatcher are unsettled by design; free without settling. */
    dispatch_free(w.dispatch);
    /*
     * Redis first: freeing a connection runs its pending callbacks (with no
     * reply), and those point into the cache, attempts and autodisable.
     */
    redis_free(w.redis_sub);
    redis_free(w.redis);
    w.redis = w.redis_sub = NULL;
    attempts_free(w.attempts);
    autodisable_free(w.autodisable);
    producer_free(w.producer);
    cache_free(w.cache);
    map_release(&w.waiting, waiting_free);
    parts_free(&w);
    while (w.pinned) {
        struct origin *o = w.pinned;
        w.pinned = o->next_pinned;
        free(o);
    }
    httpd_stop(w.httpd);
    if (w.signal_fd >= 0)
        close(w.signal_fd);
    loop_free(w.loop);
    netguard_free(w.guard);
    strlist_release(&subscribe);
    for (size_t i = 0; i < w.ntopics; i++)
        free(w.topics[i].name);
    free(w.topics);
    return w.exit_code;
}
