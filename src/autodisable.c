/*
 * Subscription auto-disable; see autodisable.h.
 */
#include "herald/autodisable.h"
#include "herald/clock.h"
#include "herald/config.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/map.h"
#include "herald/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_INTERVAL_MAX_MS 60000

/* Returns failing_since, setting it to ARGV[1] first when the streak is new. */
static const char streak_script[] = "local v = redis.call('HGET', KEYS[1], 'failing_since')\n"
                                    "if not v then\n"
                                    "  redis.call('HSET', KEYS[1], 'failing_since', ARGV[1])\n"
                                    "  v = ARGV[1]\n"
                                    "end\n"
                                    "return v\n";

/* Rewrites the document only if nobody changed it since it was read. */
static const char disable_script[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                     "redis.call('SET', KEYS[1], ARGV[2])\n"
                                     "redis.call('PUBLISH', 'herald:changes', ARGV[3])\n"
                                     "return 1\n";

struct streak {
    bool failing;
    bool known_clear; /* Redis holds no streak for it, as far as this worker knows */
    bool disabling;
    int64_t checked_ms;
};

struct autodisable {
    struct loop *loop;
    struct redis *r;
    int64_t window_ms;
    int64_t check_ms;
    struct map streaks;
};

struct check_op {
    struct autodisable *ad;
    struct sub *sub;
};

struct disable_op {
    char *id;
    char *tenant;
    char *reason;
};

int autodisable_new(struct loop *loop, struct redis *r, int64_t window_ms, struct autodisable **out)
{
    struct autodisable *ad = calloc(1, sizeof(*ad));
    *out = NULL;
    if (!ad)
        return HERALD_ENOMEM;
    ad->loop = loop;
    ad->r = r;
    ad->window_ms = window_ms;
    ad->check_ms = window_ms / 4 < CHECK_INTERVAL_MAX_MS ? window_ms / 4 : CHECK_INTERVAL_MAX_MS;
    if (ad->check_ms < 100)
        ad->check_ms = 100;
    map_init(&ad->streaks);
    *out = ad;
    return 0;
}

void autodisable_free(struct autodisable *ad)
{
    if (!ad)
        return;
    map_release(&ad->streaks, free);
    free(ad);
}

static void disable_op_free(struct disable_op *op)
{
    free(op->id);
    free(op->tenant);
    free(op->reason);
    free(op);
}

static void on_disabled(struct redis *r, redisReply *reply, void *arg)
{
    struct disable_op *op = arg;
    (void)r;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        METRIC_INC(subscriptions_disabled);
        log_warn("autodisable", "disabled subscription \"%s\": %s", op->id, op->reason);
    } else {
        log_warn("autodisable",
                 "subscription \"%s\" not disabled: changed meanwhile or Redis unavailable",
                 op->id);
    }
    disable_op_free(op);
}

static void on_disable_get(struct redis *r, redisReply *reply, void *arg)
{
    struct disable_op *op = arg;
    char key[200], *doc;
    const char *argv[7];
    size_t lens[7];

    if (!reply || reply->type != REDIS_REPLY_STRING) {
        disable_op_free(op);
        return;
    }
    doc = subs_disable_doc(reply->str, reply->len, op->reason);
    if (!doc) {
        disable_op_free(op);
        return;
    }
    snprintf(key, sizeof(key), "herald:sub:%s", op->id);
    argv[0] = "EVAL";
    argv[1] = disable_script;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = reply->str;
    argv[5] = doc;
    argv[6] = op->tenant;
    for (int i = 0; i < 7; i++)
        lens[i] = i == 4 ? reply->len : strlen(argv[i]);
    if (redis_commandv(r, on_disabled, op, 7, argv, lens))
        disable_op_free(op);
    free(doc);
}

void autodisable_disable(struct autodisable *ad, const struct sub *sub, const char *reason)
{
    struct disable_op *op = calloc(1, sizeof(*op));
    char key[200];
    const char *argv[2];
    size_t lens[2];

    if (!op)
        return;
    op->id = strdup(sub->id);
    op->tenant = strdup(sub->tenant);
    op->reason = strdup(reason);
    if (!op->id || !op->tenant || !op->reason) {
        disable_op_free(op);
        return;
    }
    snprintf(key, sizeof(key), "herald:sub:%s", sub->id);
    argv[0] = "GET";
    argv[1] = key;
    lens[0] = 3;
    lens[1] = strlen(key);
    if (redis_commandv(ad->r, on_disable_get, op, 2, argv, lens))
        disable_op_free(op);
}

static void on_streak(struct redis *r, redisReply *reply, void *arg)
{
    struct check_op *op = arg;
    struct autodisable *ad = op->ad;
    struct streak *st = map_get(&ad->streaks, op->sub->id);
    (void)r;
    if (reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_INTEGER) && st &&
        st->failing && !st->disabling) {
        int64_t since = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10)
                                                          : (int64_t)reply->integer;
        int64_t now = clock_wall_ms();
        st->known_clear = false;
        if (since > 0 && now - since >= ad->window_ms) {
            char reason[160], when[32];
            config_format_duration(now - since >= 1000 ? (now - since) / 1000 * 1000 : now - since,
                                   when, sizeof(when));
            snprintf(reason, sizeof(reason), "failing continuously for %s", when);
            st->disabling = true;
            autodisable_disable(ad, op->sub, reason);
        }
    }
    subs_unref(op->sub);
    free(op);
}

static void on_cleared(struct redis *r, redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

void autodisable_report(struct autodisable *ad, const struct sub *sub, bool delivered)
{
    struct streak *st = map_get(&ad->streaks, sub->id);
    int64_t now = loop_now(ad->loop);
    char key[200];

    if (ad->window_ms <= 0)
        return;
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st || map_put(&ad->streaks, sub->id, st, NULL)) {
            free(st);
            return;
        }
    }
    snprintf(key, sizeof(key), "herald:health:%s", sub->id);
    if (delivered) {
        /* Clear once per recovery (and once after start-up, when the state is unknown). */
        if (st->failing || !st->known_clear) {
            const char *argv[3] = {"HDEL", key, "failing_since"};
            size_t lens[3] = {4, strlen(key), 13};
            if (redis_commandv(ad->r, on_cleared, NULL, 3, argv, lens) == 0)
                st->known_clear = true;
        }
        st->failing = false;
        st->disabling = false;
        return;
    }
    if (!st->failing) {
        st->failing = true;
        st->checked_ms = 0;
    }
    if (st->disabling || (st->checked_ms && now - st->checked_ms < ad->check_ms))
        return;
    st->checked_ms = now;
    {
        struct check_op *op = calloc(1, sizeof(*op));
        char since[32];
        const char *argv[5];
        size_t lens[5];
        if (!op)
            return;
        op->ad = ad;
        op->sub = subs_ref((struct sub *)sub);
        snprintf(since, sizeof(since), "%lld", (long long)clock_wall_ms());
        argv[0] = "EVAL";
        argv[1] = streak_script;
        argv[2] = "1";
        argv[3] = key;
        argv[4] = since;
        for (int i = 0; i < 5; i++)
            lens[i] = strlen(argv[i]);
        if (redis_commandv(ad->r, on_streak, op, 5, argv, lens)) {
            subs_unref(op->sub);
            free(op);
        }
    }
}
