/*
 * Unit tests for loop.c, the worker's one wait point: one-shot timers fire
 * in due order (ties in creation order), cancelling works before and from
 * inside callbacks, a watched pipe becoming readable calls its handler,
 * unwatching stops that, loop_stop ends the run, and loop_wake_soon keeps
 * the loop spinning without waiting. Every run has a guard timer, so a
 * broken loop fails the test instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "herald/clock.h"
#include "herald/err.h"
#include "herald/loop.h"

#define N(a)     (sizeof(a) / sizeof((a)[0]))
#define GUARD_MS 5000

struct rec {
    int order[16];
    int n;
    bool guard_fired;
    uint64_t cancel_id; /* for the timer that cancels another */
    uint64_t iter[4];
};

static struct rec rec;

static void on_guard(struct loop *loop, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    rec.guard_fired = true;
    loop_stop(loop);
}

/* Runs the loop with a guard timer and returns the elapsed milliseconds. */
static int64_t run(struct loop *loop)
{
    int64_t t0 = clock_mono_ms();
    uint64_t guard = loop_timer(loop, GUARD_MS, on_guard, NULL);
    assert_int_not_equal(guard, 0);
    assert_int_equal(loop_run(loop), 0);
    loop_cancel(loop, guard);
    if (rec.guard_fired)
        fail_msg("the loop ran into its %d ms guard", GUARD_MS);
    return clock_mono_ms() - t0;
}

static void on_record(struct loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    rec.order[rec.n++] = (int)(intptr_t)arg;
}

static void on_record_stop(struct loop *loop, uint64_t id, void *arg)
{
    on_record(loop, id, arg);
    loop_stop(loop);
}

static int setup(void **state)
{
    memset(&rec, 0, sizeof(rec));
    *state = loop_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    loop_free(*state);
    return 0;
}

static void test_timers_in_order(void **state)
{
    static const struct {
        int64_t delay;
        int tag;
    } timers[] = {{30, 30}, {10, 10}, {20, 20}, {0, 0}, {20, 21}, {-5, 1}};
    static const int want[] = {0, 1, 10, 20, 21, 30};
    struct loop *loop = *state;
    uint64_t last = 0;
    int64_t elapsed;
    for (size_t i = 0; i < N(timers); i++) {
        uint64_t id =
            loop_timer(loop, timers[i].delay, timers[i].tag == 30 ? on_record_stop : on_record,
                       (void *)(intptr_t)timers[i].tag);
        /* Ids are non-zero and unique. */
        assert_true(id > last);
        last = id;
    }
    elapsed = run(loop);
    assert_int_equal(rec.n, N(want));
    for (size_t i = 0; i < N(want); i++)
        if (rec.order[i] != want[i])
            fail_msg("timer %zu fired as tag %d, want %d", i, rec.order[i], want[i]);
    assert_true(elapsed >= 30);
}

static void on_cancel_other(struct loop *loop, uint64_t id, void *arg)
{
    on_record(loop, id, arg);
    loop_cancel(loop, rec.cancel_id);
}

static void test_cancel(void **state)
{
    struct loop *loop = *state;
    uint64_t a, b, c;
    a = loop_timer(loop, 10, on_record, (void *)1);
    b = loop_timer(loop, 15, on_record, (void *)2);
    c = loop_timer(loop, 20, on_cancel_other, (void *)3);
    rec.cancel_id = loop_timer(loop, 25, on_record, (void *)4); /* cancelled by c */
    loop_timer(loop, 40, on_record_stop, (void *)5);
    loop_cancel(loop, b);
    loop_cancel(loop, b); /* twice: a no-op */
    loop_cancel(loop, 0);
    loop_cancel(loop, 999999);
    run(loop);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.order[0], 1);
    assert_int_equal(rec.order[1], 3);
    assert_int_equal(rec.order[2], 5);
    /* Cancelling timers that already fired is a no-op. */
    loop_cancel(loop, a);
    loop_cancel(loop, c);
}

static void on_iter(struct loop *loop, uint64_t id, void *arg)
{
    int k = (int)(intptr_t)arg;
    (void)id;
    rec.iter[k] = loop_iterations(loop);
    if (k == 0)
        loop_timer(loop, 0, on_iter, (void *)1);
    else
        loop_stop(loop);
}

/* A timer added for "now" by a timer callback waits for the next turn of the loop. */
static void test_timer_from_timer(void **state)
{
    struct loop *loop = *state;
    loop_timer(loop, 0, on_iter, (void *)0);
    run(loop);
    assert_true(rec.iter[1] > rec.iter[0]);
}

struct pipe_ctx {
    int fds[2];
    int reads;
    char got;
    bool writable;
};

static void on_readable(struct loop *loop, int fd, int events, void *arg)
{
    struct pipe_ctx *p = arg;
    assert_true(events & LOOP_READ);
    assert_int_equal(read(fd, &p->got, 1), 1);
    p->reads++;
    loop_stop(loop);
}

static void on_write_byte(struct loop *loop, uint64_t id, void *arg)
{
    struct pipe_ctx *p = arg;
    (void)loop;
    (void)id;
    assert_int_equal(write(p->fds[1], "x", 1), 1);
}

static void on_stop(struct loop *loop, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    loop_stop(loop);
}

static void test_pipe_readable(void **state)
{
    struct loop *loop = *state;
    struct pipe_ctx p = {{-1, -1}, 0, 0, false};
    int64_t elapsed;
    assert_int_equal(pipe(p.fds), 0);
    assert_int_equal(loop_watch(loop, p.fds[0], LOOP_READ, on_readable, &p), 0);
    loop_timer(loop, 20, on_write_byte, &p);
    elapsed = run(loop);
    assert_int_equal(p.reads, 1);
    assert_int_equal(p.got, 'x');
    /* Woken by the fd, not by the 1 s maximum wait. */
    assert_true(elapsed >= 20 && elapsed < 900);

    /* Unwatched: a byte in the pipe no longer calls the handler. */
    loop_unwatch(loop, p.fds[0]);
    loop_unwatch(loop, p.fds[0]); /* twice: a no-op */
    assert_int_equal(write(p.fds[1], "y", 1), 1);
    loop_timer(loop, 30, on_stop, NULL);
    run(loop);
    assert_int_equal(p.reads, 1);

    /* Watching again sees the byte still waiting. */
    assert_int_equal(loop_watch(loop, p.fds[0], LOOP_READ, on_readable, &p), 0);
    run(loop);
    assert_int_equal(p.reads, 2);
    assert_int_equal(p.got, 'y');
    loop_unwatch(loop, p.fds[0]);
    close(p.fds[0]);
    close(p.fds[1]);
}

static void on_writable(struct loop *loop, int fd, int events, void *arg)
{
    struct pipe_ctx *p = arg;
    (void)fd;
    p->writable = (events & LOOP_WRITE) != 0;
    loop_stop(loop);
}

/* A high fd number grows the handler table; a write watch fires on an empty pipe. */
static void test_high_fd_writable(void **state)
{
    struct loop *loop = *state;
    struct pipe_ctx p = {{-1, -1}, 0, 0, false};
    int high;
    assert_int_equal(pipe(p.fds), 0);
    high = fcntl(p.fds[1], F_DUPFD, 300);
    assert_true(high >= 300);
    assert_int_equal(loop_watch(loop, high, LOOP_WRITE, on_writable, &p), 0);
    run(loop);
    assert_true(p.writable);
    loop_unwatch(loop, high);
    assert_int_equal(loop_watch(loop, -1, LOOP_READ, on_readable, &p), HERALD_EINVAL);
    close(high);
    close(p.fds[0]);
    close(p.fds[1]);
}

static int spins;

static void before_wait_spin(struct loop *loop, void *arg)
{
    (void)arg;
    if (++spins >= 200)
        loop_stop(loop);
    else
        loop_wake_soon(loop);
}

static void test_wake_soon(void **state)
{
    struct loop *loop = *state;
    uint64_t it0 = loop_iterations(loop);
    int64_t now0 = loop_now(loop), elapsed;
    spins = 0;
    loop_set_before_wait(loop, before_wait_spin, NULL);
    /* Without wake_soon each of the 200 turns would wait up to a second. */
    elapsed = run(loop);
    assert_int_equal(spins, 200);
    assert_true(elapsed < 1000);
    assert_int_equal(loop_iterations(loop) - it0, 199);
    assert_true(loop_now(loop) >= now0);
    loop_set_before_wait(loop, NULL, NULL);
}

static void before_wait_stop(struct loop *loop, void *arg)
{
    (void)arg;
    spins++;
    loop_stop(loop);
}

/* loop_stop from the hook ends the run before any wait; a later run starts afresh. */
static void test_stop(void **state)
{
    struct loop *loop = *state;
    spins = 0;
    loop_set_before_wait(loop, before_wait_stop, NULL);
    assert_true(run(loop) < 500);
    assert_int_equal(spins, 1);
    assert_true(run(loop) < 500);
    assert_int_equal(spins, 2);
    loop_set_before_wait(loop, NULL, NULL);
    loop_timer(loop, 5, on_record_stop, (void *)7);
    run(loop);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.order[0], 7);
}

static void test_free_null(void **state)
{
    (void)state;
    loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timers_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_from_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipe_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_fd_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_soon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
