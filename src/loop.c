/*
 * epoll event loop with a binary min-heap of one-shot timers; see loop.h.
 *
 * File descriptor handlers live in a table indexed by fd (fds are small
 * integers). Timers are cancelled lazily: a cancelled id is looked up in the
 * heap and removed in O(log n) via its stored index.
 */
#include "herald/loop.h"
#include "herald/clock.h"
#include "herald/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct fd_slot {
    loop_fd_fn fn;
    void *arg;
    int mask;    /* the mask registered with epoll; 0 when not registered */
    bool parked; /* registered, but events are not delivered */
};

struct timer {
    uint64_t id;
    int64_t when;
    loop_timer_fn fn;
    void *arg;
};

struct loop {
    int epfd;
    struct fd_slot *fds;
    int nfds;
    struct timer *heap;
    size_t nheap, capheap;
    uint64_t next_id;
    int64_t now;
    bool stop;
    bool wake_soon;
    loop_hook_fn before_wait;
    void *before_wait_arg;
    uint64_t iterations;
};

struct loop *loop_new(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        loop_free(loop);
        return NULL;
    }
    loop->next_id = 1;
    loop->now = clock_mono_ms();
    return loop;
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    if (loop->epfd > 0)
        close(loop->epfd);
    free(loop->fds);
    free(loop->heap);
    free(loop);
}

int loop_watch(struct loop *loop, int fd, int mask, loop_fd_fn fn, void *arg)
{
    struct epoll_event ev = {0};
    int op;

    if (fd < 0)
        return HERALD_EINVAL;
    if (fd >= loop->nfds) {
        int n = loop->nfds ? loop->nfds : 64;
        struct fd_slot *fds;
        while (n <= fd)
            n *= 2;
        fds = realloc(loop->fds, (size_t)n * sizeof(*fds));
        if (!fds)
            return HERALD_ENOMEM;
        memset(fds + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof(*fds));
        loop->fds = fds;
        loop->nfds = n;
    }
    if (mask == 0) {
        loop_unwatch(loop, fd);
        return 0;
    }
    if (loop->fds[fd].mask == mask) {
        /* Same interest as registered (a parked fd coming back): no syscall. */
        loop->fds[fd].fn = fn;
        loop->fds[fd].arg = arg;
        loop->fds[fd].parked = false;
        return 0;
    }
    op = loop->fds[fd].mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    ev.events = (mask & LOOP_READ ? EPOLLIN : 0) | (mask & LOOP_WRITE ? EPOLLOUT : 0);
    ev.data.fd = fd;
    if (epoll_ctl(loop->epfd, op, fd, &ev) < 0) {
        /* The fd may have been closed and reused behind our back; retry as a new one. */
        if (op == EPOLL_CTL_MOD && errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else
            return HERALD_EIO;
        if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
            return HERALD_EIO;
    }
    loop->fds[fd].fn = fn;
    loop->fds[fd].arg = arg;
    loop->fds[fd].mask = mask;
    loop->fds[fd].parked = false;
    return 0;
}

void loop_unwatch(struct loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nfds || !loop->fds[fd].mask)
        return;
    /* EBADF/ENOENT are fine: a closed fd has already left the epoll set. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->fds[fd].mask = 0;
    loop->fds[fd].fn = NULL;
    loop->fds[fd].arg = NULL;
    loop->fds[fd].parked = false;
}

void loop_park(struct loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nfds || !loop->fds[fd].mask)
        return;
    loop->fds[fd].parked = true;
    loop->fds[fd].fn = NULL;
    loop->fds[fd].arg = NULL;
}

static void heap_swap(struct loop *loop, size_t a, size_t b)
{
    struct timer t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
}

static bool heap_less(const struct loop *loop, size_t a, size_t b)
{
    const struct timer *x = &loop->heap[a], *y = &loop->heap[b];
    return x->when < y->when || (x->when == y->when && x->id < y->id);
}

static void heap_up(struct loop *loop, size_t i)
{
    while (i > 0 && heap_less(loop, i, (i - 1) / 2)) {
        heap_swap(loop, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->nheap && heap_less(loop, l, m))
            m = l;
        if (r < loop->nheap && heap_less(loop, r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

static void heap_remove(struct loop *loop, size_t i)
{
    loop->nheap--;
    if (i == loop->nheap)
        return;
    loop->heap[i] = loop->heap[loop->nheap];
    heap_down(loop, i);
    heap_up(loop, i);
}

uint64_t loop_timer(struct loop *loop, int64_t delay_ms, loop_timer_fn fn, void *arg)
{
    struct timer *t;
    uint64_t id;
    if (loop->nheap == loop->capheap) {
        size_t n = loop->capheap ? loop->capheap * 2 : 64;
        struct timer *h = realloc(loop->heap, n * sizeof(*h));
        if (!h)
            return 0;
        loop->heap = h;
        loop->capheap = n;
    }
    t = &loop->heap[loop->nheap];
    id = t->id = loop->next_id++;
    t->when = clock_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->fn = fn;
    t->arg = arg;
    loop->nheap++;
    heap_up(loop, loop->nheap - 1);
    return id;
}

void loop_cancel(struct loop *loop, uint64_t id)
{
    /* Linear scan: few timers are live at once (one per paused partition, a handful else). */
    for (size_t i = 0; id && i < loop->nheap; i++) {
        if (loop->heap[i].id == id) {
            heap_remove(loop, i);
            return;
        }
    }
}

void loop_set_before_wait(struct loop *loop, loop_hook_fn fn, void *arg)
{
    loop->before_wait = fn;
    loop->before_wait_arg = arg;
}

void loop_wake_soon(struct loop *loop)
{
    loop->wake_soon = true;
}

void loop_stop(struct loop *loop)
{
    loop->stop = true;
}

int64_t loop_now(const struct loop *loop)
{
    return loop->now;
}

uint64_t loop_iterations(const struct loop *loop)
{
    return __atomic_load_n(&loop->iterations, __ATOMIC_RELAXED);
}

static void run_timers(struct loop *loop)
{
    /* Only timers due now run; ones they add for "now" wait for the next turn. */
    int64_t now = clock_mono_ms();
    uint64_t limit = loop->next_id;
    while (loop->nheap && loop->heap[0].when <= now && loop->heap[0].id < limit) {
        struct timer t = loop->heap[0];
        heap_remove(loop, 0);
        t.fn(loop, t.id, t.arg);
    }
}

int loop_run(struct loop *loop)
{
    struct epoll_event events[256];

    loop->stop = false;
    while (!loop->stop) {
        int timeout = 1000, n;
        loop->wake_soon = false;
        if (loop->before_wait)
            loop->before_wait(loop, loop->before_wait_arg);
        if (loop->stop)
            break;
        if (loop->nheap) {
            int64_t d = loop->heap[0].when - clock_mono_ms();
            timeout = d <= 0 ? 0 : d < 1000 ? (int)d : 1000;
        }
        if (loop->wake_soon)
            timeout = 0;
        n = epoll_wait(loop->epfd, events, 256, timeout);
        loop->now = clock_mono_ms();
        __atomic_add_fetch(&loop->iterations, 1, __ATOMIC_RELAXED);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd, mask = 0;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                mask |= LOOP_READ;
            if (events[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                mask |= LOOP_WRITE;
            if (fd < loop->nfds && loop->fds[fd].parked) {
                /* Activity on an idle parked socket (closed by its peer): stop watching. */
                loop_unwatch(loop, fd);
                continue;
            }
            /* A handler earlier in this batch may have unwatched this fd. */
            if (fd < loop->nfds && loop->fds[fd].fn) {
                mask &= loop->fds[fd].mask | (events[i].events & (EPOLLHUP | EPOLLERR) ? 3 : 0);
                if (mask)
                    loop->fds[fd].fn(loop, fd, mask, loop->fds[fd].arg);
            }
        }
        run_timers(loop);
    }
    return 0;
}
