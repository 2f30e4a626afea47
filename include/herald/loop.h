/*
 * The event loop: one thread, one wait point.
 *
 * Every source of work on the data path is a file descriptor in one epoll
 * set (the Kafka queues' wake-up pipes, libcurl's sockets, the Redis
 * connections, a signalfd) or a timer in one min-heap, so the worker never
 * blocks on a single slow peer. Modelled on Redis's ae.c: callbacks per fd
 * and per timer, and a before-sleep hook for work that batches.
 *
 * Timers are one-shot; re-arm from the callback if needed. Cancelling an
 * already-fired or cancelled timer id is a no-op.
 */
#ifndef HERALD_LOOP_H
#define HERALD_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_READ  1
#define LOOP_WRITE 2

struct loop;

typedef void (*loop_fd_fn)(struct loop *loop, int fd, int events, void *arg);
typedef void (*loop_timer_fn)(struct loop *loop, uint64_t id, void *arg);
typedef void (*loop_hook_fn)(struct loop *loop, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Watches fd for mask (LOOP_READ|LOOP_WRITE); replaces an earlier watch. */
int loop_watch(struct loop *loop, int fd, int mask, loop_fd_fn fn, void *arg);
void loop_unwatch(struct loop *loop, int fd);
/*
 * Stops delivering events for fd but keeps it registered with the kernel, so
 * a later loop_watch with the same mask costs no syscall. For sockets that go
 * idle between uses (libcurl's keep-alive connections). An event on a parked
 * fd (the peer closed it) unregisters it for real; a parked fd that is closed
 * leaves the epoll set by itself.
 */
void loop_park(struct loop *loop, int fd);

/* Runs fn once after delay_ms; returns a non-zero id, or 0 on no memory. */
uint64_t loop_timer(struct loop *loop, int64_t delay_ms, loop_timer_fn fn, void *arg);
void loop_cancel(struct loop *loop, uint64_t id);

/* Called before every wait; may call loop_wake_soon to keep the loop spinning. */
void loop_set_before_wait(struct loop *loop, loop_hook_fn fn, void *arg);
/* Makes the next wait return at once (for work left over from a bounded batch). */
void loop_wake_soon(struct loop *loop);

/* Runs until loop_stop; returns 0. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* Monotonic time of the current iteration, in ms. */
int64_t loop_now(const struct loop *loop);

/* Iterations so far; /healthz reads it (atomically) to know the loop is alive. */
uint64_t loop_iterations(const struct loop *loop);

#endif
