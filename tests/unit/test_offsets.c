/*
 * Unit tests for offsets.c, the per-partition tracker behind at-least-once
 * commits: scripted sequences of track / done / committable (out-of-order
 * settlement, gaps, duplicates, refusals), growth and wrap-around of the
 * ring, and a seeded random model check against a plain sorted array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herald/err.h"
#include "herald/offsets.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- scripted sequences -------------------------------------------------- */

enum op { TRACK, DONE, COMMIT, PENDING, END };

struct step {
    enum op op;
    int64_t arg;  /* offset for TRACK / DONE */
    int64_t want; /* rc for TRACK / DONE, offset for COMMIT, count for PENDING */
};

struct script {
    const char *name;
    struct step steps[24];
};

#define T(o, rc)                                                                                   \
    {                                                                                              \
        TRACK, (o), (rc)                                                                           \
    }
#define D(o, rc)                                                                                   \
    {                                                                                              \
        DONE, (o), (rc)                                                                            \
    }
#define C(w)                                                                                       \
    {                                                                                              \
        COMMIT, 0, (w)                                                                             \
    }
#define P(w)                                                                                       \
    {                                                                                              \
        PENDING, 0, (w)                                                                            \
    }
#define E                                                                                          \
    {                                                                                              \
        END, 0, 0                                                                                  \
    }

static const struct script scripts[] = {
    {"nothing tracked", {C(-1), P(0), C(-1), E}},
    {"done before anything", {D(0, HERALD_ENOTFOUND), C(-1), E}},
    {"one offset", {T(0, 0), C(0), P(1), D(0, 0), P(0), C(1), C(1), E}},
    {"in order", {T(5, 0), T(6, 0), T(7, 0), D(5, 0), C(6), D(6, 0), C(7), D(7, 0), C(8), E}},
    {"out of order",
     {T(10, 0), T(11, 0), T(12, 0), D(12, 0), C(10), P(2), D(11, 0), C(10), P(1), D(10, 0), C(13),
      P(0), E}},
    {"gaps in offsets",
     {T(3, 0), T(9, 0), T(100, 0), D(9, 0), C(3), D(3, 0), C(100), D(100, 0), C(101), E}},
    {"gap offsets are not tracked", {T(3, 0), T(9, 0), D(5, HERALD_ENOTFOUND), C(3), E}},
    {"duplicate done",
     {T(1, 0), T(2, 0), D(2, 0), D(2, 0), P(1), C(1), D(1, 0), D(1, 0), P(0), C(3), E}},
    {"done after commit popped it", {T(1, 0), D(1, 0), C(2), D(1, HERALD_ENOTFOUND), P(0), E}},
    {"unknown offsets",
     {T(4, 0), D(3, HERALD_ENOTFOUND), D(5, HERALD_ENOTFOUND), D(-1, HERALD_ENOTFOUND), P(1), E}},
    {"non-increasing track",
     {T(5, 0), T(5, HERALD_EINVAL), T(4, HERALD_EINVAL), T(0, HERALD_EINVAL), T(6, 0), P(2), C(5),
      E}},
    {"negative offset", {T(-1, HERALD_EINVAL), C(-1), P(0), T(0, 0), C(0), E}},
    {"refused track changes nothing", {T(7, 0), D(7, 0), C(8), T(7, HERALD_EINVAL), C(8), P(0), E}},
    {"track after everything settled", {T(1, 0), D(1, 0), C(2), T(2, 0), C(2), D(2, 0), C(3), E}},
    {"committable after a gap", {T(1, 0), D(1, 0), C(2), T(50, 0), C(50), D(50, 0), C(51), E}},
};

static void run_script(const struct script *s)
{
    struct offsets o;
    offsets_init(&o);
    for (size_t i = 0; s->steps[i].op != END; i++) {
        const struct step *st = &s->steps[i];
        int64_t got = 0;
        switch (st->op) {
        case TRACK:
            got = offsets_track(&o, st->arg);
            break;
        case DONE:
            got = offsets_done(&o, st->arg);
            break;
        case COMMIT:
            got = offsets_committable(&o);
            break;
        case PENDING:
            got = (int64_t)offsets_pending(&o);
            break;
        case END:
            break;
        }
        if (got != st->want)
            fail_msg("script \"%s\" step %zu: got %lld, want %lld", s->name, i, (long long)got,
                     (long long)st->want);
    }
    offsets_release(&o);
}

static void test_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(scripts); i++)
        run_script(&scripts[i]);
}

/* ---- growth and wrap-around ---------------------------------------------- */

static void test_growth(void **state)
{
    enum { COUNT = 10000 };
    struct offsets o;
    (void)state;
    offsets_init(&o);
    for (int64_t i = 0; i < COUNT; i++)
        assert_int_equal(offsets_track(&o, 1000 + 3 * i), 0);
    assert_int_equal(offsets_pending(&o), COUNT);
    /* Settle from the back: nothing is committable until the front settles. */
    for (int64_t i = COUNT - 1; i >= 1; i--) {
        assert_int_equal(offsets_done(&o, 1000 + 3 * i), 0);
        if (i % 1000 == 0)
            assert_int_equal(offsets_committable(&o), 1000);
    }
    assert_int_equal(offsets_pending(&o), 1);
    assert_int_equal(offsets_done(&o, 1000), 0);
    assert_int_equal(offsets_committable(&o), 1000 + 3 * (COUNT - 1) + 1);
    assert_int_equal(offsets_pending(&o), 0);
    offsets_release(&o);
    /* Released trackers start over. */
    assert_int_equal(offsets_committable(&o), -1);
}

/* A sliding window keeps the ring small while its head walks around it many times. */
static void test_wrap_around(void **state)
{
    enum { WINDOW = 50, TOTAL = 20000 };
    struct offsets o;
    size_t max_cap = 0;
    (void)state;
    offsets_init(&o);
    for (int64_t i = 0; i < TOTAL; i++) {
        assert_int_equal(offsets_track(&o, i), 0);
        if (i >= WINDOW) {
            /* Settle the oldest two out of order, then commit. */
            int64_t a = i - WINDOW;
            if (a % 2 == 0) {
                assert_int_equal(offsets_done(&o, a + 1), 0);
                assert_int_equal(offsets_committable(&o), a);
                assert_int_equal(offsets_done(&o, a), 0);
                assert_int_equal(offsets_committable(&o), a + 2);
            }
        }
        if (o.cap > max_cap)
            max_cap = o.cap;
    }
    /* The ring never grew past one doubling of the window: the head wrapped instead. */
    assert_true(max_cap <= 128);
    assert_int_equal(offsets_pending(&o), WINDOW);
    for (int64_t i = TOTAL - 1; i >= TOTAL - WINDOW; i--)
        assert_int_equal(offsets_done(&o, i), 0);
    assert_int_equal(offsets_committable(&o), TOTAL);
    offsets_release(&o);
}

/* Growth while the ring has wrapped: the copy must keep consumption order. */
static void test_grow_while_wrapped(void **state)
{
    struct offsets o;
    (void)state;
    offsets_init(&o);
    for (int64_t i = 0; i < 64; i++)
        assert_int_equal(offsets_track(&o, i), 0);
    for (int64_t i = 0; i < 40; i++)
        assert_int_equal(offsets_done(&o, i), 0);
    assert_int_equal(offsets_committable(&o), 40);
    /* 24 live entries from slot 40; 40 more wrap to slots 0..39, then one more grows. */
    for (int64_t i = 64; i < 105; i++)
        assert_int_equal(offsets_track(&o, i), 0);
    assert_true(o.cap >= 128);
    for (int64_t i = 40; i < 105; i++) {
        assert_int_equal(offsets_committable(&o), i);
        assert_int_equal(offsets_done(&o, i), 0);
    }
    assert_int_equal(offsets_committable(&o), 105);
    assert_int_equal(offsets_done(&o, 39), HERALD_ENOTFOUND);
    offsets_release(&o);
}

/* ---- random model check -------------------------------------------------- */

/* xorshift64*: the same sequence on every platform, unlike rand(). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* The reference: every tracked, not yet popped offset in order, with a settled flag. */
struct model {
    int64_t *off;
    unsigned char *done;
    size_t n, cap;
    int64_t next;
};

static void model_track(struct model *m, int64_t off)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->off = realloc(m->off, m->cap * sizeof(*m->off));
        m->done = realloc(m->done, m->cap);
        assert_non_null(m->off);
        assert_non_null(m->done);
    }
    m->off[m->n] = off;
    m->done[m->n] = 0;
    m->n++;
    m->next = off + 1;
}

static int model_done(struct model *m, int64_t off)
{
    /* The array is sorted, so a plain binary search finds the entry. */
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->off[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == m->n || m->off[lo] != off)
        return HERALD_ENOTFOUND;
    m->done[lo] = 1;
    return 0;
}

static int64_t model_commit(struct model *m)
{
    size_t k = 0;
    while (k < m->n && m->done[k])
        k++;
    memmove(m->off, m->off + k, (m->n - k) * sizeof(*m->off));
    memmove(m->done, m->done + k, m->n - k);
    m->n -= k;
    return m->n ? m->off[0] : m->next;
}

static size_t model_pending(const struct model *m)
{
    size_t p = 0;
    for (size_t i = 0; i < m->n; i++)
        p += !m->done[i];
    return p;
}

static void test_random_model(void **state)
{
    enum { STEPS = 100000 };
    struct offsets o;
    struct model m = {NULL, NULL, 0, 0, -1};
    int64_t last = -1;
    size_t max_backlog = 0;
    (void)state;
    offsets_init(&o);
    for (int step = 0; step < STEPS; step++) {
        uint64_t r = rng();
        unsigned what = (unsigned)(r % 100);
        /* Phases bias towards tracking or settling so the backlog both grows and drains. */
        unsigned t_track = (step / 5000) % 2 == 0 ? 45u : 15u, t_bad = t_track + 5;
        if (what < t_track) {
            int64_t off = last + 1 + (int64_t)((r >> 8) % 4); /* gaps of 0 to 3 */
            assert_int_equal(offsets_track(&o, off), 0);
            model_track(&m, off);
            last = off;
        } else if (what < t_bad) {
            /* A track that does not move forward is refused and changes nothing. */
            int64_t off = last < 0 ? -1 : last - (int64_t)((r >> 8) % 3);
            assert_int_equal(offsets_track(&o, off), HERALD_EINVAL);
        } else if (what < 90) {
            /* Settle something: usually a live entry, sometimes a popped or unknown offset. */
            int64_t off;
            int want;
            if (m.n && (r >> 8) % 8 != 0)
                off = m.off[(r >> 16) % m.n];
            else
                off = last + 1 - (int64_t)((r >> 16) % 20);
            want = model_done(&m, off);
            if (offsets_done(&o, off) != want)
                fail_msg("step %d: done(%lld) rc disagrees with the model (want %d)", step,
                         (long long)off, want);
        } else {
            int64_t want = model_commit(&m), got = offsets_committable(&o);
            if (got != want)
                fail_msg("step %d: committable %lld, model %lld", step, (long long)got,
                         (long long)want);
        }
        if (m.n > max_backlog)
            max_backlog = m.n;
        if (offsets_pending(&o) != model_pending(&m))
            fail_msg("step %d: pending %zu, model %zu", step, offsets_pending(&o),
                     model_pending(&m));
    }
    /* The walk must have exercised growth well past the initial 64 slots. */
    assert_true(max_backlog > 1000);
    /* Drain: settle everything left and the committable position is one past the last. */
    for (size_t i = 0; i < m.n; i++)
        assert_int_equal(offsets_done(&o, m.off[i]), 0);
    assert_int_equal(offsets_committable(&o), last + 1);
    assert_int_equal(offsets_pending(&o), 0);
    offsets_release(&o);
    free(m.off);
    free(m.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),      cmocka_unit_test(test_growth),
        cmocka_unit_test(test_wrap_around),  cmocka_unit_test(test_grow_while_wrapped),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
