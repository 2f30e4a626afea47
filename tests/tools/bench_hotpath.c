/*
 * bench_hotpath: CPU cost of the pure per-delivery functions, one by one.
 *
 *   bench_hotpath [ITERATIONS]      (default 200000)
 *
 * The end-to-end benchmark (bench/run) measures herald's CPU per delivery
 * as a whole, which moves with everything else on the machine. This tool
 * times the pure functions a delivery goes through -- envelope parsing,
 * signing, the attempt record -- in a tight loop on the process CPU clock,
 * so a change to one of them shows its effect in nanoseconds per call
 * within a few percent even on a busy machine. The inputs are the
 * benchmark's: a 1024-byte event, one standard-webhooks secret.
 *
 * Output: one line per function, "name  ns/call", and a JSON line.
 */
#include "herald/attempts.h"
#include "herald/buf.h"
#include "herald/event.h"
#include "herald/job.h"
#include "herald/sign.h"
#include "herald/subs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENT_BYTES 1024

static const char sub_doc[] =
    "{\"id\":\"p1-0\",\"tenant\":\"p1\",\"url\":\"http://127.0.0.1:8080/s0\","
    "\"events\":[\"bench.*\"],\"secrets\":[\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]}";

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char *make_event(size_t *len)
{
    static const char head[] = "{\"id\":\"evt_p1_000000000042\",\"type\":\"bench.event\","
                               "\"tenant\":\"p1\",\"timestamp\":\"2024-10-01T18:30:03Z\","
                               "\"data\":{\"created_us\":\"1727807403000000\",\"pad\":\"";
    static const char tail[] = "\"}}";
    char *ev = malloc(EVENT_BYTES + 1);
    size_t pad = EVENT_BYTES - (sizeof(head) - 1) - (sizeof(tail) - 1);
    if (!ev)
        exit(1);
    memcpy(ev, head, sizeof(head) - 1);
    memset(ev + sizeof(head) - 1, 'x', pad);
    memcpy(ev + EVENT_BYTES - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    ev[EVENT_BYTES] = '\0';
    *len = EVENT_BYTES;
    return ev;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    char field[64], why[256];
    struct sub *sub = NULL;
    struct event *ev = NULL;
    enum event_reject reject;
    struct origin origin = {0};
    struct attempt_source src = {"bench.p1", 3, 123456};
    struct job *job;
    size_t len;
    char *body = make_event(&len);
    double t0, parse_ns, sign_ns, attempt_ns;
    long sink = 0;

    if (n <= 0 ||
        subs_parse(sub_doc, sizeof(sub_doc) - 1, &sub, field, sizeof(field), why, sizeof(why))) {
        fprintf(stderr, "bench_hotpath: setup failed: %s %s\n", field, why);
        return 1;
    }

    t0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        if (event_parse(body, len, NULL, 0, 1 << 20, &ev, &reject, why, sizeof(why)))
            return 1;
        sink += (long)ev->body_len;
        event_unref(ev);
    }
    parse_ns = (cpu_ns() - t0) / (double)n;

    if (event_parse(body, len, NULL, 0, 1 << 20, &ev, &reject, why, sizeof(why)))
        return 1;
    t0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        struct sign_input in = {0};
        struct sign_headers sh;
        in.msg_id = ev->id;
        in.timestamp = 1727807403 + i;
        in.body = ev->body;
        in.body_len = ev->body_len;
        if (sign_request(sub->scheme, sub->signature_header, sub->keys, sub->nkeys, &in, &sh))
            return 1;
        sink += (long)sh.n;
        sign_headers_release(&sh);
    }
    sign_ns = (cpu_ns() - t0) / (double)n;

    job = job_new(ev, sub, &origin, 1, 1727807403000, 1024);
    if (!job)
        return 1;
    job->result.status = 204;
    job->latency_us = 812;
    job->sent_at_ms = 1727807403123;
    t0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        struct buf b;
        buf_init(&b, 64 * 1024);
        if (attempts_build(job, "delivered", 0, &src, &b))
            return 1;
        sink += (long)b.len;
        buf_release(&b);
    }
    attempt_ns = (cpu_ns() - t0) / (double)n;

    printf("event_parse     %8.0f ns/call\n", parse_ns);
    printf("sign_request    %8.0f ns/call\n", sign_ns);
    printf("attempts_build  %8.0f ns/call\n", attempt_ns);
    printf("{\"iterations\":%ld,\"event_parse_ns\":%.0f,\"sign_request_ns\":%.0f,"
           "\"attempts_build_ns\":%.0f,\"sink\":%ld}\n",
           n, parse_ns, sign_ns, attempt_ns, sink);
    job_free(job);
    event_unref(ev);
    subs_unref(sub);
    free(body);
    return 0;
}
