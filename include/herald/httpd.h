/*
 * The operations endpoint: /metrics, /healthz and /readyz on http.listen,
 * served by libmicrohttpd on its own thread so a busy delivery loop never
 * delays a probe, and a stuck loop is visible to one.
 *
 * The worker publishes its state into struct health with atomic stores;
 * the server only reads it.
 *
 *   /healthz  200 while the event loop has turned within the last 10 s
 *   /readyz   200 once the consumer has joined its group (with or without
 *             partitions: replicas beyond the partition count idle but are
 *             healthy), Redis is connected and the producer is usable;
 *             503 with the failing checks otherwise, and during shutdown
 */
#ifndef HERALD_HTTPD_H
#define HERALD_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct health {
    int64_t heartbeat_ms; /* monotonic time of the last loop turn */
    int joined;
    int redis_up;
    int producer_ok;
    int stopping;
};

struct httpd;

/* listen is "host:port" (port 0 picks a free one). */
int httpd_start(const char *listen, struct health *health, struct httpd **out, char *err,
                size_t errlen);
/* The port actually bound, for tests and logs. */
int httpd_port(const struct httpd *h);
void httpd_stop(struct httpd *h);

#endif
