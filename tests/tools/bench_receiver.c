/*
 * bench_receiver: the webhook receiver of the benchmark (bench/README.md).
 *
 *   bench_receiver [--port N] [--stats FILE] [--delay-ms N] [--max-conns N]
 *
 * One thread, one epoll set, HTTP/1.1 keep-alive: every request is answered
 * "204 No Content" as soon as its body has arrived, so the receiver costs a
 * few microseconds per request and is never what limits herald. The port it
 * listens on (127.0.0.1, N or an ephemeral one) is printed as the first line
 * on stdout.
 *
 * Paths decide the behaviour, so one receiver serves every scenario:
 *   /s<N>      answered at once and counted per N (0..1023): a subscription
 *   /slow...   answered after --delay-ms (default 2000): the memory scenario
 *   /hang...   never answered: the hung endpoint of the isolation scenario
 *   anything   else (wrk's /wrk) answered at once, counted as "other"
 *
 * The event bodies the benchmark produces carry their creation time as
 * "created_us":"<wall-clock microseconds>"; for /s<N> requests the arrival
 * time minus that goes into a log-linear histogram. Counters and histogram
 * live in a shared memory-mapped file (--stats) laid out as uint64 words
 * (see the STAT_* indices), which the driver and the producer read while the
 * receiver runs: the receiver is the only writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STAT_MAGIC          0
#define STAT_REQUESTS       1
#define STAT_ANSWERED       2
#define STAT_LAT_SAMPLES    3
#define STAT_CONNS_OPEN     4
#define STAT_CONNS_TOTAL    5
#define STAT_BYTES_IN       6
#define STAT_SLOW_ANSWERED  7
#define STAT_HANG_RECEIVED  8
#define STAT_OTHER_ANSWERED 9
#define STAT_SLOW_WAITING   10
#define STAT_PATHS          16
#define NPATHS              1024
#define STAT_HIST           (STAT_PATHS + NPATHS)
#define HIST_SUB_BITS       6
#define HIST_SUB            (1 << HIST_SUB_BITS)
#define HIST_BUCKETS        (HIST_SUB + 36 * HIST_SUB)
#define STAT_WORDS          (STAT_HIST + HIST_BUCKETS)
#define STATS_MAGIC         0x4842524543563031ULL /* "HBRECV01" */

#define IN_MAX   (1u << 20)
#define HEAD_MAX (64u << 10)
#define RESPONSE "HTTP/1.1 204 No Content\r\nServer: bench\r\n\r\n"

enum kind { PATH_SUB, PATH_SLOW, PATH_HANG, PATH_OTHER };

struct conn {
    int fd;
    char *in;
    size_t len, cap;
    bool waiting; /* a delayed answer is queued: read no further request */
    bool hung;    /* a /hang request: never answer, discard what follows */
    bool closing;
    int64_t due_us;
    struct conn *dnext;
};

static uint64_t *stats;
static struct conn *delay_head, *delay_tail;
static int64_t delay_us = 2000000;
static int epfd;

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void stat_add(int i, uint64_t n)
{
    __atomic_store_n(&stats[i], stats[i] + n, __ATOMIC_RELAXED);
}

static void stat_set(int i, uint64_t v)
{
    __atomic_store_n(&stats[i], v, __ATOMIC_RELAXED);
}

/* Log-linear bucket: exact below 64 us, then 64 buckets per power of two (< 1.6 % wide). */
static int hist_bucket(int64_t v)
{
    int e;
    if (v < HIST_SUB)
        return v < 0 ? 0 : (int)v;
    e = 63 - __builtin_clzll((unsigned long long)v);
    if (e - HIST_SUB_BITS >= 36)
        return HIST_BUCKETS - 1;
    return HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB +
           (int)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

static void conn_close(struct conn *c)
{
    if (c->waiting) {
        /* Unlinked lazily: the delay queue skips closing connections. */
        c->closing = true;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        return;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    stat_add(STAT_CONNS_OPEN, (uint64_t)-1);
    free(c->in);
    free(c);
}

static bool send_answer(struct conn *c)
{
    static const char resp[] = RESPONSE;
    ssize_t n = send(c->fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL);
    /* 40 bytes into an empty socket buffer: partial writes do not happen on loopback. */
    return n == (ssize_t)(sizeof(resp) - 1);
}

static enum kind classify(const char *path, size_t plen, int *index)
{
    if (plen >= 2 && path[1] == 's' && plen <= 6) {
        int v = 0;
        size_t i;
        for (i = 2; i < plen && path[i] >= '0' && path[i] <= '9'; i++)
            v = v * 10 + (path[i] - '0');
        if (i == plen && i > 2 && v < NPATHS) {
            *index = v;
            return PATH_SUB;
        }
    }
    if (plen >= 5 && memcmp(path, "/slow", 5) == 0)
        return PATH_SLOW;
    if (plen >= 5 && memcmp(path, "/hang", 5) == 0)
        return PATH_HANG;
    return PATH_OTHER;
}

static void record_latency(const char *body, size_t blen, int64_t now)
{
    static const char tag[] = "\"created_us\":\"";
    const char *p = memmem(body, blen, tag, sizeof(tag) - 1);
    int64_t created = 0;
    if (!p)
        return;
    p += sizeof(tag) - 1;
    while (p < body + blen && *p >= '0' && *p <= '9')
        created = created * 10 + (*p++ - '0');
    if (created <= 0)
        return;
    stat_add(STAT_HIST + hist_bucket(now - created), 1);
    stat_add(STAT_LAT_SAMPLES, 1);
}

/* Parses and serves complete requests in c->in; returns false when c must close. */
static bool serve(struct conn *c)
{
    size_t off = 0;
    bool ok = true;

    while (!c->waiting && off < c->len) {
        char *start = c->in + off, *end, *sp1, *sp2, *line;
        size_t avail = c->len - off, head, clen = 0;
        int index = 0;
        enum kind k;

        end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end) {
            if (avail > HEAD_MAX)
                ok = false;
            break;
        }
        head = (size_t)(end - start) + 4;
        /* Content-Length is the only header that matters here. */
        for (line = memchr(start, '\n', head); line && line < end;
             line = memchr(line, '\n', (size_t)(end - line))) {
            line++;
            if (strncasecmp(line, "content-length:", 15) == 0) {
                clen = strtoul(line + 15, NULL, 10);
                break;
            }
        }
        if (clen > IN_MAX) {
            ok = false;
            break;
        }
        if (avail < head + clen)
            break;
        sp1 = memchr(start, ' ', head);
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
        if (!sp2) {
            ok = false;
            break;
        }
        stat_add(STAT_REQUESTS, 1);
        k = classify(sp1 + 1, (size_t)(sp2 - sp1 - 1), &index);
        off += head + clen;
        if (c->hung)
            continue;
        switch (k) {
        case PATH_SUB:
            record_latency(start + head, clen, wall_us());
            if (!send_answer(c))
                return false;
            stat_add(STAT_PATHS + index, 1);
            stat_add(STAT_ANSWERED, 1);
            break;
        case PATH_SLOW:
            c->waiting = true;
            c->due_us = mono_us() + delay_us;
            c->dnext = NULL;
            if (delay_tail)
                delay_tail->dnext = c;
            else
                delay_head = c;
            delay_tail = c;
            stat_add(STAT_SLOW_WAITING, 1);
            break;
        case PATH_HANG:
            c->hung = true;
            stat_add(STAT_HANG_RECEIVED, 1);
            break;
        case PATH_OTHER:
            if (!send_answer(c))
                return false;
            stat_add(STAT_OTHER_ANSWERED, 1);
            stat_add(STAT_ANSWERED, 1);
            break;
        }
    }
    if (off) {
        memmove(c->in, c->in + off, c->len - off);
        c->len -= off;
    }
    return ok;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t n;
        if (c->cap - c->len < 4096) {
            size_t ncap = c->cap ? c->cap * 2 : 8192;
            char *p;
            if (ncap > IN_MAX + HEAD_MAX) {
                conn_close(c);
                return;
            }
            p = realloc(c->in, ncap);
            if (!p) {
                conn_close(c);
                return;
            }
            c->in = p;
            c->cap = ncap;
        }
        n = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        stat_add(STAT_BYTES_IN, (uint64_t)n);
        c->len += (size_t)n;
        if (c->hung) {
            c->len = 0; /* a hung endpoint reads and forgets */
            continue;
        }
        if ((size_t)n < c->cap - c->len)
            break;
    }
    if (!serve(c))
        conn_close(c);
}

static void run_delayed(void)
{
    int64_t now = mono_us();
    while (delay_head && delay_head->due_us <= now) {
        struct conn *c = delay_head;
        delay_head = c->dnext;
        if (!delay_head)
            delay_tail = NULL;
        c->waiting = false;
        stat_add(STAT_SLOW_WAITING, (uint64_t)-1);
        if (c->closing) {
            c->waiting = false;
            stat_add(STAT_CONNS_OPEN, (uint64_t)-1);
            free(c->in);
            free(c);
            continue;
        }
        if (!send_answer(c)) {
            conn_close(c);
            continue;
        }
        stat_add(STAT_SLOW_ANSWERED, 1);
        stat_add(STAT_ANSWERED, 1);
        if (!serve(c))
            conn_close(c);
    }
}

static void on_accept(int lfd)
{
    for (;;) {
        struct epoll_event ev = {0};
        struct conn *c;
        int one = 1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        stat_add(STAT_CONNS_OPEN, 1);
        stat_add(STAT_CONNS_TOTAL, 1);
    }
}

static uint64_t *map_stats(const char *path)
{
    size_t size = STAT_WORDS * sizeof(uint64_t);
    uint64_t *p;
    int fd;
    if (!path)
        return calloc(STAT_WORDS, sizeof(uint64_t));
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        perror(path);
        exit(1);
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {0};
    socklen_t salen = sizeof(sa);
    struct epoll_event ev = {0}, events[512];
    const char *stats_path = NULL;
    struct rlimit rl;
    int port = 0, lfd, one = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc)
            stats_path = argv[++i];
        else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc)
            delay_us = atoll(argv[++i]) * 1000;
        else {
            fprintf(stderr, "usage: bench_receiver [--port N] [--stats FILE] [--delay-ms N]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    stats = map_stats(stats_path);
    stat_set(STAT_MAGIC, STATS_MAGIC);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 65535) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0) {
        perror("bench_receiver: listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    printf("%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    for (;;) {
        int timeout = -1, n;
        if (delay_head) {
            int64_t d = delay_head->due_us - mono_us();
            timeout = d <= 0 ? 0 : (int)((d + 999) / 1000);
        }
        n = epoll_wait(epfd, events, 512, timeout);
        for (int i = 0; i < n; i++) {
            if (!events[i].data.ptr)
                on_accept(lfd);
            else
                on_readable(events[i].data.ptr);
        }
        run_delayed();
    }
}
