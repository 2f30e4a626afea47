/*
 * chaos_receiver: a fast webhook receiver for the chaos suite's throughput
 * scenario (tests/chaos/test_chaos_9_hanging.py), where the Python receiver
 * would be the bottleneck and hide what herald does.
 *
 *   chaos_receiver LOGFILE
 *
 * Listens on an ephemeral 127.0.0.1 port, printed as the first line on
 * stdout. One thread, one epoll set, HTTP/1.1 keep-alive. A request whose
 * path starts with /hang is never answered (the connection is held until the
 * client gives up); every other request is answered "204 No Content" as soon
 * as its body has arrived. Every request is logged to LOGFILE as one line,
 * "<wall-clock microseconds> <path> <webhook-id>", flushed every 100 ms and on
 * SIGTERM, which ends the receiver. Signatures are not checked here: the
 * other scenarios check them with an independent verifier.
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX   (1u << 20)
#define RESPONSE "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"

struct conn {
    int fd;
    char *in;
    size_t len;
    bool hung;
};

static FILE *log_file;

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void conn_close(int epfd, struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c);
}

/* The value of header `name` in the head [head, end), copied into out (empty if absent). */
static void header_value(const char *head, const char *end, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = head; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            size_t len;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            len = (size_t)(ve - v) < n - 1 ? (size_t)(ve - v) : n - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return;
        }
        p = eol + 1;
    }
}

/* Handles every complete request buffered on c; returns false when c must be closed. */
static bool serve(struct conn *c)
{
    for (;;) {
        char *hend = c->len ? memmem(c->in, c->len, "\r\n\r\n", 4) : NULL;
        char path[256], id[256], clen[32];
        const char *sp1, *sp2;
        size_t head, body, plen;
        if (!hend)
            return c->len < IN_MAX;
        head = (size_t)(hend - c->in) + 4;
        header_value(c->in, hend, "content-length", clen, sizeof(clen));
        body = (size_t)strtoul(clen, NULL, 10);
        if (body > IN_MAX)
            return false;
        if (c->len < head + body)
            return true;
        sp1 = memchr(c->in, ' ', head);
        sp2 = sp1 ? memchr(sp1 + 1, ' ', head - (size_t)(sp1 + 1 - c->in)) : NULL;
        plen = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
        if (plen >= sizeof(path))
            plen = sizeof(path) - 1;
        memcpy(path, sp1 ? sp1 + 1 : "", plen);
        path[plen] = '\0';
        header_value(c->in, hend, "webhook-id", id, sizeof(id));
        fprintf(log_file, "%lld %s %s\n", (long long)wall_us(), path[0] ? path : "-",
                id[0] ? id : "-");
        memmove(c->in, c->in + head + body, c->len - head - body);
        c->len -= head + body;
        if (strncmp(path, "/hang", 5) == 0) {
            c->hung = true; /* never answered; what follows on it is discarded */
            c->len = 0;
            return true;
        }
        if (write(c->fd, RESPONSE, sizeof(RESPONSE) - 1) != (ssize_t)(sizeof(RESPONSE) - 1))
            return false; /* a 37-byte answer fits a fresh socket buffer, or the peer is gone */
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    struct epoll_event ev, events[256];
    sigset_t mask;
    int lfd, epfd, sfd, one = 1;
    int64_t last_flush = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: chaos_receiver LOGFILE\n");
        return 2;
    }
    log_file = fopen(argv[1], "w");
    if (!log_file) {
        perror(argv[1]);
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sfd < 0 || lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(lfd, 1024) < 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
        perror("chaos_receiver");
        return 1;
    }
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &sfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

    for (;;) {
        int n = epoll_wait(epfd, events, 256, 100);
        int64_t now = wall_us();
        if (now - last_flush >= 100000) {
            fflush(log_file);
            last_flush = now;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].data.ptr == &sfd) {
                fclose(log_file);
                return 0;
            }
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    if (!c || !(c->in = malloc(IN_MAX))) {
                        free(c);
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(c->fd, c->in + c->len, IN_MAX - c->len);
                if (r > 0) {
                    c->len = c->hung ? 0 : c->len + (size_t)r;
                    if (!c->hung && !serve(c)) {
                        conn_close(epfd, c);
                        break;
                    }
                    continue;
                }
                if (r < 0 && errno == EAGAIN)
                    break;
                conn_close(epfd, c); /* EOF or error */
                break;
            }
        }
    }
}
