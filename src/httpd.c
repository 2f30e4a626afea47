/*
 * /metrics, /healthz, /readyz over libmicrohttpd; see httpd.h.
 */
#include "herald/httpd.h"
#include "herald/buf.h"
#include "herald/clock.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEARTBEAT_MAX_AGE_MS 10000

struct httpd {
    struct MHD_Daemon *daemon;
    struct health *health;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    char *body = strdup(text);
    if (!body)
        return MHD_NO;
    return reply(conn, status, "text/plain; charset=utf-8", body, strlen(body));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state)
{
    struct httpd *h = cls;
    struct health *hl = h->health;
    (void)version;
    (void)upload_data;
    (void)state;

    if (*upload_size) {
        *upload_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0) {
        struct buf b;
        char *body;
        size_t len;
        buf_init(&b, 8 << 20);
        metrics_render(&b);
        body = buf_detach(&b, &len);
        if (!body)
            return MHD_NO;
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
    }
    if (strcmp(url, "/healthz") == 0) {
        int64_t age = clock_mono_ms() - __atomic_load_n(&hl->heartbeat_ms, __ATOMIC_RELAXED);
        if (age > HEARTBEAT_MAX_AGE_MS)
            return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "event loop stalled\n");
        return reply_text(conn, MHD_HTTP_OK, "ok\n");
    }
    if (strcmp(url, "/readyz") == 0) {
        char text[256];
        int joined = __atomic_load_n(&hl->joined, __ATOMIC_RELAXED);
        int redis = __atomic_load_n(&hl->redis_up, __ATOMIC_RELAXED);
        int prod = __atomic_load_n(&hl->producer_ok, __ATOMIC_RELAXED);
        int stopping = __atomic_load_n(&hl->stopping, __ATOMIC_RELAXED);
        if (joined && redis && prod && !stopping)
            return reply_text(conn, MHD_HTTP_OK, "ready\n");
        snprintf(text, sizeof(text), "not ready:%s%s%s%s\n", joined ? "" : " consumer-group",
                 redis ? "" : " redis", prod ? "" : " producer", stopping ? " stopping" : "");
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text);
    }
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

int httpd_start(const char *listen, struct health *health, struct httpd **out, char *err,
                size_t errlen)
{
    struct httpd *h = calloc(1, sizeof(*h));
    struct sockaddr_in6 sa6 = {0};
    struct sockaddr_in sa4 = {0};
    const struct sockaddr *sa;
    const char *colon = strrchr(listen, ':');
    char host[128];
    size_t hlen;
    int port;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

    *out = NULL;
    if (!h)
        return HERALD_ENOMEM;
    h->health = health;
    if (!colon || (hlen = (size_t)(colon - listen)) >= sizeof(host)) {
        snprintf(err, errlen, "invalid value for \"http.listen\": expected host:port");
        free(h);
        return HERALD_EINVAL;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    port = atoi(colon + 1);
    /* [::1]:9464 and 0.0.0.0:9464 both work. */
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        memmove(host, host + 1, hlen - 1);
    }
    if (inet_pton(AF_INET, host, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, host, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "invalid value for \"http.listen\": \"%s\" is not an IP address",
                 host);
        free(h);
        return HERALD_EINVAL;
    }
    h->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                                 MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on \"%s\" (http.listen)", listen);
        free(h);
        return HERALD_EIO;
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    log_info("httpd", "serving /metrics, /healthz and /readyz on %s (port %d)", listen, h->port);
    *out = h;
    return 0;
}

int httpd_port(const struct httpd *h)
{
    return h->port;
}

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h);
}
