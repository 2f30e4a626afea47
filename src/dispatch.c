/*
 * HTTP delivery over libcurl multi; see dispatch.h.
 *
 * Structure: endpoints (one per subscription id) hold a FIFO of queued jobs;
 * those that may start a request now sit in a "ready" ring. pump() starts
 * requests round-robin from the ring while the global cap allows. A request
 * is a struct xfer (easy handle + header list) taken from a free pool, so
 * steady-state delivery does not allocate curl handles. Completed and
 * deferred jobs are handed back from one place, finish(), which runs from
 * loop callbacks only.
 */
#include "herald/dispatch.h"
#include "herald/clock.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/map.h"
#include "herald/payload.h"
#include "herald/sign.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum breaker { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct endpoint {
    struct dispatch *d;
    char *id;
    struct job *qhead, *qtail;
    size_t queued;
    size_t in_flight;
    size_t cap;
    int rate;
    double tokens;
    int64_t refill_ms;
    uint64_t rate_timer;
    enum breaker breaker;
    int failures;
    int64_t open_until;
    bool probing;
    bool in_ready;
    struct endpoint *rnext, *rprev;
    int64_t last_active;
    struct hdrblock *hdr;    /* for the newest snapshot seen; built on first use */
    struct xfer *free_xfers; /* configured for hdr: reused with no curl_easy_reset */
    size_t nfree;
    /* Completions per second, smoothed; decays while nothing completes. */
    double done_rate;
    uint32_t win_done;
    int64_t win_start;
};

/*
 * The header lines that are the same on every request to one subscription
 * snapshot (Content-Type, "Expect:", custom headers), built once. Requests
 * link their own signature lines in front of it; the block is reference
 * counted because requests in flight outlive the endpoint's current one. It
 * holds the snapshot, so a freed and reallocated subscription can never be
 * mistaken for it.
 */
struct hdrblock {
    int refs;
    struct sub *sub;
    struct curl_slist *list;
};

/* Per-request lines: the signature headers and, for some schemes, webhook-id. */
#define XFER_LINES (SIGN_MAX_HEADERS + 1)

struct xfer {
    struct xfer *next_free;
    struct xfer *anext, *aprev; /* the active list, for cancelling on shutdown */
    CURL *easy;
    struct curl_slist *headers;          /* lines[0..n) then block->list */
    struct curl_slist nodes[XFER_LINES]; /* owned here: no allocation per request */
    struct buf lines[XFER_LINES];        /* reused across requests */
    struct hdrblock *block;
    struct hdrblock *configured; /* the snapshot the easy handle's options were set for */
    bool reused;                 /* this request only re-sets body and headers */
    struct job *job;
    struct endpoint *ep;
    size_t received;
    size_t header_bytes; /* every response head of this request, 1xx and trailers included */
    bool cut_off;
    bool headers_over;
    bool refused;  /* the guard refused at least one address of this request */
    bool admitted; /* the guard let at least one address through */
    char refused_why[128];
    char errbuf[CURL_ERROR_SIZE]; /* curl's detail ("Recv failure: Connection reset by peer") */
};

struct dispatch {
    struct loop *loop;
    struct dispatch_opts opts;
    char *ca_bundle, *proxy, *user_agent;
    dispatch_done_fn done;
    void *arg;
    CURLM *multi;
    uint64_t curl_timer;
    struct map endpoints;
    struct endpoint *ready; /* ring head */
    struct xfer *free_xfers;
    struct xfer *active;
    size_t in_flight;
    size_t queued;
    size_t breakers_open;
    struct job *finished_head, *finished_tail;
    uint64_t finish_timer;
    uint64_t gc_timer;
    struct dispatch_stats stats;
    bool pumping;
};

#define ENDPOINT_QUEUE_MIN 256
/* A healthy endpoint may queue this many seconds of its own recent throughput. */
#define ENDPOINT_QUEUE_SECONDS 2
#define RATE_WINDOW_MS         250
#define ENDPOINT_IDLE_MS       (10 * 60 * 1000)
/*
 * Response header bytes read before a request is cut off. Real receivers
 * send a few KiB; a hostile one could stream headers forever, and libcurl's
 * own limit depends on the build, so herald bounds them itself.
 */
#define RESPONSE_HEADERS_MAX (64 * 1024)

static void pump(struct dispatch *d);
static void check_done(struct dispatch *d);

/* --- completion hand-back ----------------------------------------------------- */

static void finish_timer(struct loop *loop, uint64_t id, void *arg)
{
    struct dispatch *d = arg;
    (void)loop;
    (void)id;
    d->finish_timer = 0;
    while (d->finished_head) {
        struct job *job = d->finished_head;
        d->finished_head = job->next;
        if (!d->finished_head)
            d->finished_tail = NULL;
        job->next = NULL;
        d->stats.completed++;
        d->done(job, d->arg);
    }
}

/* Queues a job for the done callback, which runs from a timer, never re-entrantly. */
static void finish(struct dispatch *d, struct job *job)
{
    job->next = NULL;
    if (d->finished_tail)
        d->finished_tail->next = job;
    else
        d->finished_head = job;
    d->finished_tail = job;
    if (!d->finish_timer)
        d->finish_timer = loop_timer(d->loop, 0, finish_timer, d);
}

static void defer_job(struct dispatch *d, struct endpoint *ep, struct job *job, int64_t wait_ms,
                      const char *why)
{
    job_reset_attempt(job);
    job->result.deferred = true;
    job->result.retry_after_ms = wait_ms;
    snprintf(job->error, sizeof(job->error), "%s", why);
    d->stats.deferred++;
    (void)ep;
    finish(d, job);
}

/* --- ready ring --------------------------------------------------------------- */

static void ready_add(struct dispatch *d, struct endpoint *ep)
{
    if (ep->in_ready)
        return;
    ep->in_ready = true;
    if (!d->ready) {
        ep->rnext = ep->rprev = ep;
        d->ready = ep;
    } else {
        ep->rprev = d->ready->rprev;
        ep->rnext = d->ready;
        d->ready->rprev->rnext = ep;
        d->ready->rprev = ep;
    }
}

static void ready_remove(struct dispatch *d, struct endpoint *ep)
{
    if (!ep->in_ready)
        return;
    ep->in_ready = false;
    if (ep->rnext == ep) {
        d->ready = NULL;
    } else {
        ep->rprev->rnext = ep->rnext;
        ep->rnext->rprev = ep->rprev;
        if (d->ready == ep)
            d->ready = ep->rnext;
    }
    ep->rnext = ep->rprev = NULL;
}

/* --- rate limit ---------------------------------------------------------------- */

static void refill(struct endpoint *ep, int64_t now)
{
    if (ep->rate <= 0)
        return;
    if (now > ep->refill_ms) {
        ep->tokens += (double)(now - ep->refill_ms) * ep->rate / 1000.0;
        if (ep->tokens > ep->rate)
            ep->tokens = ep->rate; /* burst of at most one second's worth */
        ep->refill_ms = now;
    }
}

static void rate_timer_fired(struct loop *loop, uint64_t id, void *arg)
{
    struct endpoint *ep = arg;
    (void)loop;
    (void)id;
    ep->rate_timer = 0;
    if (ep->queued)
        ready_add(ep->d, ep);
    pump(ep->d);
}

/* Whether ep may start one more request now; arms the rate timer when not. */
static bool can_start(struct dispatch *d, struct endpoint *ep, int64_t now)
{
    if (!ep->queued || ep->in_flight >= ep->cap)
        return false;
    if (ep->rate > 0) {
        refill(ep, now);
        if (ep->tokens < 1.0) {
            if (!ep->rate_timer) {
                int64_t wait = (int64_t)((1.0 - ep->tokens) * 1000.0 / ep->rate) + 1;
                ep->rate_timer = loop_timer(d->loop, wait, rate_timer_fired, ep);
            }
            return false;
        }
    }
    return true;
}

/* --- curl callbacks -------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    struct buf *b = &x->job->response;
    size_t room = b->max > b->len ? b->max - b->len : 0;

    if (room)
        buf_append(b, ptr, n < room ? n : room);
    x->received += n;
    if (x->received > x->ep->d->opts.response_max) {
        x->cut_off = true;
        return 0; /* stop reading an endless body: curl ends with CURLE_WRITE_ERROR */
    }
    return n;
}

static bool header_is(const char *line, size_t n, const char *name, const char **value,
                      size_t *vlen)
{
    size_t nl = strlen(name);
    const char *v, *end = line + n;
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    v = line + nl + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    const char *v;
    size_t vlen;

    x->header_bytes += n;
    if (x->header_bytes > RESPONSE_HEADERS_MAX) {
        x->headers_over = true;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response head (e.g. after 100 Continue): forget the previous one's headers. */
        x->job->result.retry_after_ms = -1;
        x->job->result.aborted = false;
    } else if (header_is(line, n, "retry-after", &v, &vlen) && vlen < 64) {
        char tmp[64];
        int64_t delay;
        memcpy(tmp, v, vlen);
        tmp[vlen] = '\0';
        if (retry_parse_after(tmp, clock_wall_ms(), &delay) == 0)
            x->job->result.retry_after_ms = delay;
    } else if (header_is(line, n, "webhook-delivery", &v, &vlen)) {
        if (vlen == 13 && strncasecmp(v, "abort-message", 13) == 0)
            x->job->result.aborted = true;
    }
    return n;
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct xfer *x = clientp;
    enum netguard_class cls = NETGUARD_OTHER;
    (void)purpose;
    if (!netguard_allows(x->ep->d->opts.guard, &addr->addr, addr->addrlen, &cls)) {
        x->refused = true;
        snprintf(x->refused_why, sizeof(x->refused_why),
                 "refused to connect to a %s address (delivery.allow_cidrs)",
                 netguard_class_name(cls));
        return CURL_SOCKET_BAD;
    }
    x->admitted = true;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* Every curl socket closes here, so a parked registration never outlives its fd. */
static int on_close_socket(void *clientp, curl_socket_t fd)
{
    struct dispatch *d = clientp;
    loop_unwatch(d->loop, fd);
    return close(fd);
}

static void on_sock_event(struct loop *loop, int fd, int events, void *arg)
{
    struct dispatch *d = arg;
    int running, mask = 0;
    (void)loop;
    if (events & LOOP_READ)
        mask |= CURL_CSELECT_IN;
    if (events & LOOP_WRITE)
        mask |= CURL_CSELECT_OUT;
    curl_multi_socket_action(d->multi, fd, mask, &running);
    check_done(d);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct dispatch *d = userp;
    (void)easy;
    (void)socketp;
    switch (what) {
    case CURL_POLL_IN:
        loop_watch(d->loop, s, LOOP_READ, on_sock_event, d);
        break;
    case CURL_POLL_OUT:
        loop_watch(d->loop, s, LOOP_WRITE, on_sock_event, d);
        break;
    case CURL_POLL_INOUT:
        loop_watch(d->loop, s, LOOP_READ | LOOP_WRITE, on_sock_event, d);
        break;
    case CURL_POLL_REMOVE:
        /*
         * curl removes a keep-alive connection's socket when a transfer ends and
         * adds it again for the next one: park it rather than pay two epoll_ctl
         * calls per request.
         */
        loop_park(d->loop, s);
        break;
    default:
        break;
    }
    return 0;
}

static void on_curl_timeout(struct loop *loop, uint64_t id, void *arg)
{
    struct dispatch *d = arg;
    int running;
    (void)loop;
    (void)id;
    d->curl_timer = 0;
    curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(d);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct dispatch *d = userp;
    (void)multi;
    if (d->curl_timer) {
        loop_cancel(d->loop, d->curl_timer);
        d->curl_timer = 0;
    }
    if (timeout_ms >= 0)
        d->curl_timer = loop_timer(d->loop, timeout_ms, on_curl_timeout, d);
    return 0;
}

/* --- endpoints ------------------------------------------------------------------- */

static void rate_roll(struct endpoint *ep, int64_t now)
{
    int64_t span = now - ep->win_start;
    if (span < RATE_WINDOW_MS)
        return;
    ep->done_rate = 0.5 * ep->done_rate + 0.5 * ((double)ep->win_done * 1000.0 / (double)span);
    ep->win_done = 0;
    ep->win_start = now;
}

static void hdrblock_release(struct hdrblock *hb)
{
    if (!hb || --hb->refs > 0)
        return;
    curl_slist_free_all(hb->list);
    subs_unref(hb->sub);
    free(hb);
}

static int append_line(struct curl_slist **list, const char *name, const char *value)
{
    char line[8192];
    struct curl_slist *n;
    int len = value ? snprintf(line, sizeof(line), "%s: %s", name, value)
                    : snprintf(line, sizeof(line), "%s:", name);
    if (len < 0 || (size_t)len >= sizeof(line))
        return HERALD_ETOOBIG;
    n = curl_slist_append(*list, line);
    if (!n)
        return HERALD_ENOMEM;
    *list = n;
    return 0;
}

/* The constant lines of sub's requests; NULL on no memory. */
static struct hdrblock *hdrblock_for(struct endpoint *ep, struct sub *sub)
{
    struct hdrblock *hb = ep->hdr;
    int rc;
    if (hb && hb->sub == sub)
        return hb;
    /* A new snapshot: the slots configured for the old one go back to the shared pool. */
    while (ep->free_xfers) {
        struct xfer *x = ep->free_xfers;
        ep->free_xfers = x->next_free;
        x->next_free = ep->d->free_xfers;
        ep->d->free_xfers = x;
    }
    ep->nfree = 0;
    hdrblock_release(hb);
    ep->hdr = NULL;
    hb = calloc(1, sizeof(*hb));
    if (!hb)
        return NULL;
    hb->refs = 1;
    hb->sub = subs_ref(sub);
    rc = append_line(&hb->list, "Content-Type", sub->content_type);
    /* "Expect:" with no value stops curl's 100-continue round trip on larger bodies. */
    if (!rc)
        rc = append_line(&hb->list, "Expect", NULL);
    for (size_t i = 0; !rc && i < sub->nheaders; i++)
        rc = append_line(&hb->list, sub->headers[i].key, sub->headers[i].value);
    if (rc) {
        hdrblock_release(hb);
        return NULL;
    }
    ep->hdr = hb;
    return hb;
}

static struct endpoint *endpoint_for(struct dispatch *d, const struct sub *sub)
{
    struct endpoint *ep = map_get(&d->endpoints, sub->id);
    if (!ep) {
        ep = calloc(1, sizeof(*ep));
        if (!ep || !(ep->id = strdup(sub->id)) || map_put(&d->endpoints, sub->id, ep, NULL)) {
            if (ep)
                free(ep->id);
            free(ep);
            return NULL;
        }
        ep->d = d;
        ep->refill_ms = loop_now(d->loop);
        ep->win_start = loop_now(d->loop);
        ep->done_rate = -1;
    }
    /* The newest snapshot of the subscription sets the limits. */
    ep->cap = sub->max_in_flight > 0 ? (size_t)sub->max_in_flight : d->opts.endpoint_in_flight;
    if (ep->cap > d->opts.max_in_flight)
        ep->cap = d->opts.max_in_flight;
    {
        int rate = sub->rate_limit > 0 ? sub->rate_limit : d->opts.rate_limit;
        if (rate != ep->rate) {
            ep->rate = rate;
            ep->tokens = rate > 0 ? 1.0 : 0.0;
        }
    }
    ep->last_active = loop_now(d->loop);
    /*
     * Until measured, assume 10 ms per request at the endpoint's concurrency,
     * so a first burst is queued, not shed; a hung endpoint's estimate halves
     * every RATE_WINDOW_MS and its queue bound falls back to qmax within ~2 s.
     */
    if (ep->done_rate < 0)
        ep->done_rate = (double)ep->cap * 100.0;
    return ep;
}

static void endpoint_free(void *p)
{
    struct endpoint *ep = p;
    if (!ep)
        return;
    if (ep->rate_timer)
        loop_cancel(ep->d->loop, ep->rate_timer);
    while (ep->free_xfers) {
        struct xfer *x = ep->free_xfers;
        ep->free_xfers = x->next_free;
        x->next_free = ep->d->free_xfers;
        ep->d->free_xfers = x;
    }
    hdrblock_release(ep->hdr);
    free(ep->id);
    free(ep);
}

static void breaker_record(struct dispatch *d, struct endpoint *ep, bool ok)
{
    int64_t now = loop_now(d->loop);
    if (ok) {
        if (ep->breaker != BREAKER_CLOSED) {
            log_info("dispatch", "circuit breaker of subscription \"%s\" closed", ep->id);
            d->breakers_open--;
        }
        ep->breaker = BREAKER_CLOSED;
        ep->failures = 0;
        ep->probing = false;
        return;
    }
    ep->failures++;
    if (ep->breaker == BREAKER_HALF_OPEN ||
        (ep->breaker == BREAKER_CLOSED && ep->failures >= d->opts.breaker_failures)) {
        if (ep->breaker == BREAKER_CLOSED) {
            d->breakers_open++;
            d->stats.breaker_opened++;
            log_warn("dispatch",
                     "circuit breaker of subscription \"%s\" opened after %d consecutive "
                     "failures",
                     ep->id, ep->failures);
        }
        ep->breaker = BREAKER_OPEN;
        ep->open_until = now + d->opts.breaker_cooldown_ms;
        ep->probing = false;
    }
}

/* --- starting a request ---------------------------------------------------------- */

/*
 * A request slot for ep. One that last served the same subscription snapshot
 * keeps its options, so only the body and header list are set again; any
 * other is reset and configured from scratch.
 */
static struct xfer *xfer_get(struct dispatch *d, struct endpoint *ep)
{
    struct xfer *x = ep->free_xfers;
    if (x && x->configured == ep->hdr && ep->hdr) {
        ep->free_xfers = x->next_free;
        ep->nfree--;
        x->reused = true;
        return x;
    }
    x = d->free_xfers;
    if (x) {
        d->free_xfers = x->next_free;
        hdrblock_release(x->configured);
        x->configured = NULL;
        curl_easy_reset(x->easy);
        x->reused = false;
        return x;
    }
    x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return NULL;
    }
    for (size_t i = 0; i < XFER_LINES; i++)
        buf_init(&x->lines[i], 16384);
    return x;
}

static void active_unlink(struct dispatch *d, struct xfer *x)
{
    if (x->aprev)
        x->aprev->anext = x->anext;
    else if (d->active == x)
        d->active = x->anext;
    if (x->anext)
        x->anext->aprev = x->aprev;
    x->anext = x->aprev = NULL;
}

static void xfer_put(struct dispatch *d, struct xfer *x)
{
    struct endpoint *ep = x->ep;
    hdrblock_release(x->block);
    x->block = NULL;
    x->headers = NULL;
    x->job = NULL;
    x->ep = NULL;
    x->received = 0;
    x->header_bytes = 0;
    x->cut_off = false;
    x->headers_over = false;
    x->refused = false;
    x->admitted = false;
    x->refused_why[0] = '\0';
    if (ep && x->configured && x->configured == ep->hdr && ep->nfree < ep->cap) {
        x->next_free = ep->free_xfers;
        ep->free_xfers = x;
        ep->nfree++;
        return;
    }
    x->next_free = d->free_xfers;
    d->free_xfers = x;
}

/* Renders the body once per job for non-raw payload modes. */
static int render_body(struct job *job)
{
    struct buf b;
    int rc;
    if (job->sub->payload == PAYLOAD_RAW || job->body)
        return 0;
    buf_init(&b, job->ev->body_len * 6 + 64);
    rc = payload_render(job->sub->payload, job->ev->body, job->ev->body_len, &b);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    job->body = buf_detach(&b, &job->body_len);
    return job->body ? 0 : HERALD_ENOMEM;
}

/* Adds one per-request line "name: value" in front of the constant block. */
static int add_line(struct xfer *x, size_t *n, const char *name, const char *value)
{
    struct buf *b = &x->lines[*n];
    int rc;
    if (*n >= XFER_LINES)
        return HERALD_ETOOBIG;
    buf_reset(b);
    rc = buf_appendf(b, "%s: %s", name, value);
    if (rc)
        return rc;
    x->nodes[*n].data = b->data;
    (*n)++;
    return 0;
}

static int build_headers(struct dispatch *d, struct xfer *x)
{
    struct job *job = x->job;
    struct sub *sub = job->sub;
    struct sign_headers sh = {0};
    struct sign_input in = {0};
    size_t n = 0;
    int rc;

    (void)d;
    x->block = hdrblock_for(x->ep, sub);
    if (!x->block)
        return HERALD_ENOMEM;
    x->block->refs++;
    in.msg_id = job->ev->id;
    in.timestamp = job->sent_at_ms / 1000;
    in.body = job_body(job, &in.body_len);
    if (sub->payload == PAYLOAD_MESSAGE) {
        in.message = job->ev->body;
        in.message_len = job->ev->body_len;
    }
    rc = sign_request(sub->scheme, sub->signature_header, sub->keys, sub->nkeys, &in, &sh);
    for (size_t i = 0; rc == 0 && i < sh.n; i++)
        rc = add_line(x, &n, sh.h[i].name, sh.h[i].value);
    sign_headers_release(&sh);
    /* Every scheme carries the idempotency key so receivers can de-duplicate. */
    if (!rc && sub->scheme != SIGN_STANDARD_WEBHOOKS &&
        sub->scheme != SIGN_STANDARD_WEBHOOKS_ED25519)
        rc = add_line(x, &n, "webhook-id", job->ev->id);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        x->nodes[i].next = i + 1 < n ? &x->nodes[i + 1] : x->block->list;
    x->headers = n ? &x->nodes[0] : x->block->list;
    return 0;
}

static void setup_easy(struct dispatch *d, struct xfer *x)
{
    CURL *e = x->easy;
    struct job *job = x->job;
    struct sub *sub = job->sub;
    size_t len;
    const char *body = job_body(job, &len);
    int64_t timeout = sub->timeout_ms > 0 ? sub->timeout_ms : d->opts.timeout_ms;

    x->errbuf[0] = '\0';
    if (x->reused) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
        return;
    }
    /* The options below depend only on the subscription snapshot (x->configured). */
    x->configured = x->block;
    x->configured->refs++;
    curl_easy_setopt(e, CURLOPT_URL, sub->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* Bytes that are not an HTTP response are an error, not a body (the default since 7.66). */
    curl_easy_setopt(e, CURLOPT_HTTP09_ALLOWED, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(
        e, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(d->opts.connect_timeout_ms < timeout ? d->opts.connect_timeout_ms : timeout));
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (d->ca_bundle && *d->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, d->ca_bundle);
    /*
     * An empty proxy string disables proxies, including the *_proxy environment
     * variables; an empty no-proxy list makes a configured proxy carry every
     * request, whatever no_proxy says. Behind a proxy the SSRF guard sees the
     * proxy's address, so that proxy must enforce the egress policy itself.
     */
    curl_easy_setopt(e, CURLOPT_PROXY, d->proxy ? d->proxy : "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, d->user_agent);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, d);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    if (sub->method != SUBS_POST)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, subs_method_name(sub->method));
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
}

/* Starts one request for ep's head job; returns false when nothing could start. */
static bool start_one(struct dispatch *d, struct endpoint *ep)
{
    struct job *job = ep->qhead;
    struct xfer *x;
    int64_t now = loop_now(d->loop);
    int rc;

    ep->qhead = job->next;
    if (!ep->qhead)
        ep->qtail = NULL;
    job->next = NULL;
    ep->queued--;
    d->queued--;

    if (ep->breaker == BREAKER_OPEN && now >= ep->open_until)
        ep->breaker = BREAKER_HALF_OPEN;
    if (ep->breaker == BREAKER_OPEN || (ep->breaker == BREAKER_HALF_OPEN && ep->probing)) {
        int64_t wait = ep->open_until > now ? ep->open_until - now : 0;
        defer_job(d, ep, job, wait, "circuit breaker open");
        return true;
    }
    job_reset_attempt(job);
    job->sent_at_ms = clock_wall_ms();
    if (d->opts.https_only && strncasecmp(job->sub->url, "https://", 8) != 0) {
        job->result.refused = true;
        snprintf(job->error, sizeof(job->error), "refused: delivery.https_only is set");
        d->stats.refused++;
        finish(d, job);
        return true;
    }
    rc = render_body(job);
    if (rc == HERALD_EPARSE || rc == HERALD_ETOOBIG) {
        job->result.unsendable = true;
        snprintf(job->error, sizeof(job->error), "cannot render payload \"%s\": %s",
                 payload_mode_name(job->sub->payload), herald_strerror(rc));
        finish(d, job);
        return true;
    }
    x = rc || !hdrblock_for(ep, job->sub) ? NULL : xfer_get(d, ep);
    if (!x) {
        defer_job(d, ep, job, 0, "out of memory");
        return true;
    }
    x->job = job;
    x->ep = ep;
    if (build_headers(d, x)) {
        xfer_put(d, x);
        defer_job(d, ep, job, 0, "cannot build request headers");
        return true;
    }
    setup_easy(d, x);
    if (curl_multi_add_handle(d->multi, x->easy) != CURLM_OK) {
        xfer_put(d, x);
        defer_job(d, ep, job, 0, "cannot start request");
        return true;
    }
    x->aprev = NULL;
    x->anext = d->active;
    if (d->active)
        d->active->aprev = x;
    d->active = x;
    if (ep->breaker == BREAKER_HALF_OPEN)
        ep->probing = true;
    if (ep->rate > 0)
        ep->tokens -= 1.0;
    ep->in_flight++;
    d->in_flight++;
    d->stats.started++;
    return true;
}

static void pump(struct dispatch *d)
{
    int64_t now = loop_now(d->loop);
    if (d->pumping)
        return;
    d->pumping = true;
    while (d->ready && d->in_flight < d->opts.max_in_flight) {
        struct endpoint *ep = d->ready;
        if (!can_start(d, ep, now)) {
            ready_remove(d, ep);
            continue;
        }
        start_one(d, ep);
        /* Round-robin: the next endpoint goes first next time. */
        d->ready = ep->rnext;
        if (!can_start(d, ep, now))
            ready_remove(d, ep);
    }
    d->pumping = false;
}

static void check_done(struct dispatch *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        struct xfer *x = NULL;
        struct job *job;
        struct endpoint *ep;
        long status = 0;
        curl_off_t total_us = 0;
        CURLcode res;

        if (msg->msg != CURLMSG_DONE)
            continue;
        res = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME_T, &total_us);
        curl_multi_remove_handle(d->multi, msg->easy_handle);
        active_unlink(d, x);
        job = x->job;
        ep = x->ep;
        job->latency_us = (int64_t)total_us;
        job->result.status = status;
        if (res == CURLE_OK || (x->cut_off && status >= 200 && status <= 299)) {
            /* A 2xx whose body we stopped reading was still accepted by the receiver. */
            job->result.transport_error = 0;
        } else {
            job->result.transport_error = (int)res;
            if (x->cut_off)
                snprintf(job->error, sizeof(job->error), "response body over %zu bytes",
                         d->opts.response_max);
            else if (x->headers_over)
                snprintf(job->error, sizeof(job->error), "response headers over %d bytes",
                         RESPONSE_HEADERS_MAX);
            else
                snprintf(job->error, sizeof(job->error), "%s",
                         x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
            /*
             * Refused only when no address was let through: a name that also
             * resolves to an allowed address failed there like any other
             * connection, and is retried.
             */
            if (x->refused && !x->admitted && status == 0) {
                job->result.refused = true;
                snprintf(job->error, sizeof(job->error), "%s", x->refused_why);
                d->stats.refused++;
            }
        }
        if (status != 429 && status != 503)
            job->result.retry_after_ms = -1;
        xfer_put(d, x);
        ep->in_flight--;
        d->in_flight--;
        ep->last_active = loop_now(d->loop);
        ep->win_done++;
        rate_roll(ep, ep->last_active);
        breaker_record(d, ep, job->result.transport_error == 0 && status >= 200 && status <= 299);
        if (ep->queued)
            ready_add(d, ep);
        finish(d, job);
    }
    pump(d);
}

/* --- housekeeping ----------------------------------------------------------------- */

static void gc_timer(struct loop *loop, uint64_t id, void *arg)
{
    struct dispatch *d = arg;
    struct map_iter it;
    struct map_entry *me;
    int64_t now = loop_now(loop);
    (void)id;
    map_iter_init(&it, &d->endpoints);
    while ((me = map_iter_next(&it))) {
        struct endpoint *ep = me->value;
        if (!ep->queued && !ep->in_flight && !ep->in_ready && !ep->rate_timer &&
            ep->breaker == BREAKER_CLOSED && now - ep->last_active > ENDPOINT_IDLE_MS) {
            endpoint_free(ep);
            map_iter_del(&it);
        }
    }
    d->gc_timer = loop_timer(loop, 60000, gc_timer, d);
}

int dispatch_new(struct loop *loop, const struct dispatch_opts *opts, dispatch_done_fn done,
                 void *arg, struct dispatch **out)
{
    struct dispatch *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (!d)
        return HERALD_ENOMEM;
    d->loop = loop;
    d->opts = *opts;
    d->done = done;
    d->arg = arg;
    map_init(&d->endpoints);
    d->ca_bundle = opts->ca_bundle ? strdup(opts->ca_bundle) : NULL;
    d->proxy = opts->proxy && *opts->proxy ? strdup(opts->proxy) : NULL;
    d->user_agent = strdup(opts->user_agent ? opts->user_agent : "herald");
    d->multi = curl_multi_init();
    if (!d->multi || !d->user_agent || (opts->ca_bundle && !d->ca_bundle)) {
        dispatch_free(d);
        return HERALD_ENOMEM;
    }
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    /* Keep a warm connection per in-flight slot so keep-alive survives bursts. */
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)(opts->max_in_flight + 16));
    d->gc_timer = loop_timer(loop, 60000, gc_timer, d);
    *out = d;
    return 0;
}

void dispatch_free(struct dispatch *d)
{
    if (!d)
        return;
    if (d->curl_timer)
        loop_cancel(d->loop, d->curl_timer);
    if (d->finish_timer)
        loop_cancel(d->loop, d->finish_timer);
    if (d->gc_timer)
        loop_cancel(d->loop, d->gc_timer);
    /* Endpoints first: they hand their idle request slots back to the shared pool. */
    map_release(&d->endpoints, endpoint_free);
    while (d->free_xfers) {
        struct xfer *x = d->free_xfers;
        d->free_xfers = x->next_free;
        curl_easy_cleanup(x->easy);
        hdrblock_release(x->configured);
        for (size_t i = 0; i < XFER_LINES; i++)
            buf_release(&x->lines[i]);
        free(x);
    }
    if (d->multi)
        curl_multi_cleanup(d->multi);
    free(d->ca_bundle);
    free(d->proxy);
    free(d->user_agent);
    free(d);
}

void dispatch_submit(struct dispatch *d, struct job *job)
{
    struct endpoint *ep = endpoint_for(d, job->sub);
    size_t qmax;

    job->next = NULL;
    if (!ep) {
        defer_job(d, NULL, job, 0, "out of memory");
        return;
    }
    /*
     * A bounded queue per endpoint: a slow endpoint sheds its excess to the
     * retry tiers instead of holding the worker's memory (and so everyone
     * else's progress) hostage.
     */
    qmax = ep->cap * 4 > ENDPOINT_QUEUE_MIN ? ep->cap * 4 : ENDPOINT_QUEUE_MIN;
    rate_roll(ep, loop_now(d->loop));
    if (ep->breaker == BREAKER_CLOSED && ep->done_rate * ENDPOINT_QUEUE_SECONDS > (double)qmax)
        qmax = (size_t)(ep->done_rate * ENDPOINT_QUEUE_SECONDS);
    if (ep->queued >= qmax) {
        defer_job(d, ep, job, 0, "endpoint queue full");
        return;
    }
    if (ep->qtail)
        ep->qtail->next = job;
    else
        ep->qhead = job;
    ep->qtail = job;
    ep->queued++;
    d->queued++;
    ready_add(d, ep);
    pump(d);
}

void dispatch_cancel_all(struct dispatch *d)
{
    struct map_iter it;
    struct map_entry *me;

    /* In-flight requests: detach them from the multi handle and hand the jobs back. */
    while (d->active) {
        struct xfer *x = d->active;
        struct job *job = x->job;
        struct endpoint *ep = x->ep;
        active_unlink(d, x);
        curl_multi_remove_handle(d->multi, x->easy);
        xfer_put(d, x);
        d->in_flight--;
        /* An active request always has both; the check keeps the analyzer's proof local. */
        if (ep)
            ep->in_flight--;
        if (job)
            defer_job(d, ep, job, 0, "shutting down");
    }
    map_iter_init(&it, &d->endpoints);
    while ((me = map_iter_next(&it))) {
        struct endpoint *ep = me->value;
        while (ep->qhead) {
            struct job *job = ep->qhead;
            ep->qhead = job->next;
            ep->queued--;
            d->queued--;
            defer_job(d, ep, job, 0, "shutting down");
        }
        ep->qtail = NULL;
        ready_remove(d, ep);
    }
}

size_t dispatch_in_flight(const struct dispatch *d)
{
    return d->in_flight;
}

size_t dispatch_queued(const struct dispatch *d)
{
    return d->queued;
}

size_t dispatch_breakers_open(const struct dispatch *d)
{
    return d->breakers_open;
}

void dispatch_stats(const struct dispatch *d, struct dispatch_stats *out)
{
    *out = d->stats;
}
