/*
 * Async Redis connection with deadlines and reconnects; see redis.h.
 *
 * hiredis replies arrive in command order on one connection, so the
 * deadline only needs the send time of the oldest outstanding command:
 * every command is wrapped in a struct pending kept in a FIFO.
 */
#include "herald/redis.h"
#include "herald/clock.h"
#include "herald/err.h"
#include "herald/log.h"

#include <hiredis/async.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending {
    struct pending *next;
    struct redis *r;
    redis_reply_fn fn;
    void *arg;
    int64_t sent_ms;
    bool internal; /* AUTH/SELECT/SUBSCRIBE: no user callback */
};

struct redis {
    struct loop *loop;
    struct redis_url url;
    int64_t timeout_ms;
    size_t max_pending;
    redisAsyncContext *ac;
    int fd;
    int mask;
    bool connected;
    bool up_reported;
    int64_t connect_started;
    int64_t backoff_ms;
    uint64_t reconnect_timer;
    uint64_t watchdog_timer;
    struct pending *head, *tail;
    size_t npending;
    char *channel;
    redis_message_fn on_message;
    void *message_arg;
    redis_state_fn on_state;
    void *state_arg;
    bool freeing;
};

static void connect_now(struct redis *r);

int redis_url_parse(const char *url, struct redis_url *out)
{
    const char *p, *at, *hostend, *slash;
    char port[16];

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "redis://", 8) != 0)
        return HERALD_EINVAL;
    p = url + 8;
    slash = strchr(p, '/');
    at = memrchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        /* redis://:password@host and redis://user:password@host (user ignored: no ACLs) */
        if (colon) {
            size_t n = (size_t)(at - colon - 1);
            if (n >= sizeof(out->password))
                return HERALD_EINVAL;
            memcpy(out->password, colon + 1, n);
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    {
        const char *colon = memrchr(p, ':', (size_t)(hostend - p));
        size_t hlen = (size_t)((colon ? colon : hostend) - p);
        if (hlen == 0 || hlen >= sizeof(out->host))
            return HERALD_EINVAL;
        memcpy(out->host, p, hlen);
        if (colon) {
            size_t plen = (size_t)(hostend - colon - 1);
            char *end;
            long v;
            if (plen == 0 || plen >= sizeof(port))
                return HERALD_EINVAL;
            memcpy(port, colon + 1, plen);
            port[plen] = '\0';
            v = strtol(port, &end, 10);
            if (*end || v < 1 || v > 65535)
                return HERALD_EINVAL;
            out->port = (int)v;
        }
    }
    if (slash && slash[1]) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (*end || v < 0 || v > 1000)
            return HERALD_EINVAL;
        out->db = (int)v;
    }
    return 0;
}

static void report_state(struct redis *r, bool up)
{
    if (r->up_reported == up)
        return;
    r->up_reported = up;
    if (up)
        log_info("redis", "connected to %s:%d", r->url.host, r->url.port);
    else
        log_warn("redis", "connection to %s:%d lost", r->url.host, r->url.port);
    if (r->on_state)
        r->on_state(r, up, r->state_arg);
}

/* --- hiredis event hooks: map interest changes onto the loop ------------------ */

static void on_fd(struct loop *loop, int fd, int events, void *arg)
{
    struct redis *r = arg;
    (void)loop;
    (void)fd;
    /* Read first: a reply may complete a callback that frees the context. */
    if ((events & LOOP_READ) && r->ac)
        redisAsyncHandleRead(r->ac);
    if ((events & LOOP_WRITE) && r->ac)
        redisAsyncHandleWrite(r->ac);
}

static void set_mask(struct redis *r, int mask)
{
    if (r->fd < 0 || mask == r->mask)
        return;
    r->mask = mask;
    if (mask)
        loop_watch(r->loop, r->fd, mask, on_fd, r);
    else
        loop_unwatch(r->loop, r->fd);
}

static void ev_add_read(void *p)
{
    struct redis *r = p;
    set_mask(r, r->mask | LOOP_READ);
}
static void ev_del_read(void *p)
{
    struct redis *r = p;
    set_mask(r, r->mask & ~LOOP_READ);
}
static void ev_add_write(void *p)
{
    struct redis *r = p;
    set_mask(r, r->mask | LOOP_WRITE);
}
static void ev_del_write(void *p)
{
    struct redis *r = p;
    set_mask(r, r->mask & ~LOOP_WRITE);
}
static void ev_cleanup(void *p)
{
    struct redis *r = p;
    set_mask(r, 0);
    r->fd = -1;
}

/* --- pending command FIFO ----------------------------------------------------- */

static struct pending *pending_push(struct redis *r, redis_reply_fn fn, void *arg, bool internal)
{
    struct pending *pd = calloc(1, sizeof(*pd));
    if (!pd)
        return NULL;
    pd->r = r;
    pd->fn = fn;
    pd->arg = arg;
    pd->internal = internal;
    pd->sent_ms = clock_mono_ms();
    if (r->tail)
        r->tail->next = pd;
    else
        r->head = pd;
    r->tail = pd;
    r->npending++;
    return pd;
}

static void pending_unlink(struct redis *r, struct pending *pd)
{
    struct pending **pp = &r->head, *prev = NULL;
    while (*pp && *pp != pd) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = pd->next;
    if (r->tail == pd)
        r->tail = prev;
    r->npending--;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct pending *pd = privdata;
    struct redis *r = pd->r;
    (void)ac;
    pending_unlink(r, pd);
    if (pd->internal) {
        redisReply *rep = reply;
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_error("redis", "setup command failed: %s", rep->str);
    } else if (pd->fn) {
        pd->fn(r, reply, pd->arg);
    }
    free(pd);
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct redis *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(rep->element[0]->str, "message") == 0 &&
        rep->element[2]->type == REDIS_REPLY_STRING) {
        r->on_message(r, rep->element[2]->str, rep->element[2]->len, r->message_arg);
    } else if (strcmp(rep->element[0]->str, "subscribe") == 0) {
        log_info("redis", "subscribed to \"%s\"", r->channel);
        /* Anything published while we were away is lost: the owner resynchronises. */
        r->on_message(r, NULL, 0, r->message_arg);
    }
}

/* --- connection lifecycle ------------------------------------------------------ */

static void reconnect_timer(struct loop *loop, uint64_t id, void *arg)
{
    struct redis *r = arg;
    (void)loop;
    (void)id;
    r->reconnect_timer = 0;
    connect_now(r);
}

static void schedule_reconnect(struct redis *r)
{
    if (r->freeing || r->reconnect_timer)
        return;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 100;
    if (r->backoff_ms > 2000)
        r->backoff_ms = 2000;
    r->reconnect_timer = loop_timer(r->loop, r->backoff_ms, reconnect_timer, r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    (void)status;
    if (!r || r->ac != ac)
        return;
    /* hiredis calls the cleanup hook next, which unwatches the fd. */
    r->ac = NULL;
    r->connected = false;
    report_state(r, false);
    schedule_reconnect(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (!r || r->ac != ac)
        return;
    if (status != REDIS_OK) {
        log_warn("redis", "cannot connect to %s:%d: %s", r->url.host, r->url.port,
                 ac->errstr[0] ? ac->errstr : "error");
        /* hiredis frees the context (and calls the cleanup hook) after a failed connect. */
        r->ac = NULL;
        report_state(r, false);
        schedule_reconnect(r);
        return;
    }
    r->connected = true;
    r->backoff_ms = 0;
    report_state(r, true);
}

/* Drops the connection now: pending callbacks run with NULL, then a reconnect is scheduled. */
static void drop(struct redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return;
    log_warn("redis", "dropping connection to %s:%d: %s", r->url.host, r->url.port, why);
    r->ac = NULL;
    r->connected = false;
    ac->data = NULL; /* our disconnect hook must ignore the callback redisAsyncFree makes */
    redisAsyncFree(ac);
    r->fd = -1;
    r->mask = 0;
    report_state(r, false);
    schedule_reconnect(r);
}

static void send_setup(struct redis *r)
{
    char db[16];
    if (r->url.password[0]) {
        struct pending *pd = pending_push(r, NULL, NULL, true);
        if (pd && redisAsyncCommand(r->ac, on_reply, pd, "AUTH %s", r->url.password) != REDIS_OK)
            pending_unlink(r, pd), free(pd);
    }
    if (r->url.db) {
        struct pending *pd = pending_push(r, NULL, NULL, true);
        snprintf(db, sizeof(db), "%d", r->url.db);
        if (pd && redisAsyncCommand(r->ac, on_reply, pd, "SELECT %s", db) != REDIS_OK)
            pending_unlink(r, pd), free(pd);
    }
    if (r->channel)
        redisAsyncCommand(r->ac, on_sub_message, r, "SUBSCRIBE %s", r->channel);
}

static void connect_now(struct redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->url.host, r->url.port);
    if (!ac) {
        schedule_reconnect(r);
        return;
    }
    if (ac->err) {
        log_warn("redis", "cannot connect to %s:%d: %s", r->url.host, r->url.port, ac->errstr);
        redisAsyncFree(ac);
        report_state(r, false);
        schedule_reconnect(r);
        return;
    }
    r->ac = ac;
    ac->data = r;
    r->fd = ac->c.fd;
    r->mask = 0;
    r->connect_started = clock_mono_ms();
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    redisEnableKeepAlive(&ac->c);
    /* hiredis needs a write event to learn that the non-blocking connect finished. */
    set_mask(r, LOOP_WRITE);
    send_setup(r);
}

static void watchdog(struct loop *loop, uint64_t id, void *arg)
{
    struct redis *r = arg;
    int64_t now = clock_mono_ms();
    (void)id;
    r->watchdog_timer = 0;
    if (r->ac && !r->connected && now - r->connect_started > r->timeout_ms)
        drop(r, "connect timed out");
    else if (r->ac && r->head && now - r->head->sent_ms > r->timeout_ms)
        drop(r, "reply timed out");
    r->watchdog_timer =
        loop_timer(loop, r->timeout_ms / 4 > 0 ? r->timeout_ms / 4 : 1, watchdog, r);
}

int redis_new(struct loop *loop, const char *url, int64_t timeout_ms, size_t max_pending,
              struct redis **out)
{
    struct redis *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return HERALD_ENOMEM;
    r->loop = loop;
    r->fd = -1;
    r->timeout_ms = timeout_ms;
    r->max_pending = max_pending;
    if (redis_url_parse(url, &r->url)) {
        free(r);
        return HERALD_EINVAL;
    }
    connect_now(r);
    r->watchdog_timer = loop_timer(loop, timeout_ms / 4 > 0 ? timeout_ms / 4 : 1, watchdog, r);
    *out = r;
    return 0;
}

void redis_free(struct redis *r)
{
    if (!r)
        return;
    r->freeing = true;
    if (r->reconnect_timer)
        loop_cancel(r->loop, r->reconnect_timer);
    if (r->watchdog_timer)
        loop_cancel(r->loop, r->watchdog_timer);
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* runs pending callbacks with NULL */
    }
    while (r->head) {
        struct pending *pd = r->head;
        r->head = pd->next;
        free(pd);
    }
    free(r->channel);
    OPENSSL_cleanse(r->url.password, sizeof(r->url.password));
    free(r);
}

void redis_on_state(struct redis *r, redis_state_fn fn, void *arg)
{
    r->on_state = fn;
    r->state_arg = arg;
}

int redis_subscribe(struct redis *r, const char *channel, redis_message_fn fn, void *arg)
{
    r->channel = strdup(channel);
    if (!r->channel)
        return HERALD_ENOMEM;
    r->on_message = fn;
    r->message_arg = arg;
    if (r->ac)
        redisAsyncCommand(r->ac, on_sub_message, r, "SUBSCRIBE %s", r->channel);
    return 0;
}

bool redis_is_up(const struct redis *r)
{
    return r && r->connected;
}

size_t redis_pending(const struct redis *r)
{
    return r->npending;
}

int redis_commandv(struct redis *r, redis_reply_fn fn, void *arg, int argc, const char **argv,
                   const size_t *lens)
{
    struct pending *pd;
    if (!r->ac || !r->connected)
        return HERALD_EREDIS;
    if (r->npending >= r->max_pending)
        return HERALD_EFULL;
    pd = pending_push(r, fn, arg, false);
    if (!pd)
        return HERALD_ENOMEM;
    if (redisAsyncCommandArgv(r->ac, on_reply, pd, argc, argv, lens) != REDIS_OK) {
        pending_unlink(r, pd);
        free(pd);
        return HERALD_EREDIS;
    }
    return 0;
}
