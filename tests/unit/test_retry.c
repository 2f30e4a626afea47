/*
 * Unit tests for retry.c, the whole delivery status policy: tier building
 * and topic names, the retry_decide() verdict for every kind of result
 * (2xx, 3xx/4xx/5xx, transport errors, 410, abort, refused, unsendable,
 * deferred), the schedule and its jitter bounds, exhaustion, Retry-After
 * lengthening the wait, and the Retry-After header parser.
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
#include "herald/retry.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)

/* design.md's default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; 20 % jitter. */
static const int64_t default_schedule[] = {5 * SEC,  5 * MIN,   30 * MIN, 2 * HOUR,
                                           5 * HOUR, 10 * HOUR, 10 * HOUR};

static void default_policy(struct retry_policy *p)
{
    assert_int_equal(retry_policy_init(p, default_schedule, N(default_schedule), 20), 0);
}

/* ---- policy and tiers ---------------------------------------------------- */

static void test_policy_init(void **state)
{
    static const int64_t messy[] = {5 * MIN, 5 * SEC, 5 * SEC, HOUR, 5 * MIN, 10 * SEC};
    static const int64_t want_tiers[] = {5 * SEC, 10 * SEC, 5 * MIN, HOUR};
    struct retry_policy p;
    (void)state;

    default_policy(&p);
    assert_int_equal(p.nschedule, 7);
    assert_int_equal(p.ntiers, 6);
    assert_int_equal(p.tiers[0], 5 * SEC);
    assert_int_equal(p.tiers[5], 10 * HOUR);
    assert_int_equal(p.jitter_pct, 20);

    /* Tiers are the distinct delays, ascending; the schedule keeps its order. */
    assert_int_equal(retry_policy_init(&p, messy, N(messy), 0), 0);
    assert_int_equal(p.nschedule, N(messy));
    assert_memory_equal(p.schedule, messy, sizeof(messy));
    assert_int_equal(p.ntiers, N(want_tiers));
    assert_memory_equal(p.tiers, want_tiers, sizeof(want_tiers));
}

static void test_policy_init_invalid(void **state)
{
    static const int64_t zero[] = {5 * SEC, 0};
    static const int64_t negative[] = {-5};
    int64_t many[RETRY_MAX_TIERS + 1];
    struct retry_policy p;
    (void)state;
    for (size_t i = 0; i < N(many); i++)
        many[i] = (int64_t)(i + 1) * SEC;
    assert_int_equal(retry_policy_init(&p, default_schedule, 0, 20), HERALD_EINVAL);
    assert_int_equal(retry_policy_init(&p, many, N(many), 20), HERALD_EINVAL);
    assert_int_equal(retry_policy_init(&p, many, RETRY_MAX_TIERS, 20), 0);
    assert_int_equal(p.ntiers, RETRY_MAX_TIERS);
    assert_int_equal(retry_policy_init(&p, default_schedule, 7, -1), HERALD_EINVAL);
    assert_int_equal(retry_policy_init(&p, default_schedule, 7, 101), HERALD_EINVAL);
    assert_int_equal(retry_policy_init(&p, default_schedule, 7, 100), 0);
    assert_int_equal(retry_policy_init(&p, zero, N(zero), 20), HERALD_EINVAL);
    assert_int_equal(retry_policy_init(&p, negative, N(negative), 20), HERALD_EINVAL);
}

static void test_tier_topics(void **state)
{
    static const char *const want[] = {"herald.retry.5s", "herald.retry.5m", "herald.retry.30m",
                                       "herald.retry.2h", "herald.retry.5h", "herald.retry.10h"};
    static const int64_t odd[] = {250, 90 * SEC, 36 * HOUR, 2 * 24 * HOUR};
    static const char *const want_odd[] = {"r.250ms", "r.90s", "r.36h", "r.2d"};
    struct retry_policy p;
    char topic[128];
    (void)state;

    default_policy(&p);
    for (size_t i = 0; i < N(want); i++) {
        retry_tier_topic(&p, "herald.retry.", i, topic, sizeof(topic));
        assert_string_equal(topic, want[i]);
        assert_int_equal(retry_tier_of_topic(&p, "herald.retry.", want[i]), (int)i);
    }
    /* An index past the last tier names the last tier. */
    retry_tier_topic(&p, "herald.retry.", 99, topic, sizeof(topic));
    assert_string_equal(topic, "herald.retry.10h");
    assert_int_equal(retry_tier_of_topic(&p, "herald.retry.", "herald.retry.7s"), -1);
    assert_int_equal(retry_tier_of_topic(&p, "herald.retry.", "herald.retry."), -1);
    assert_int_equal(retry_tier_of_topic(&p, "herald.retry.", "herald.events"), -1);
    assert_int_equal(retry_tier_of_topic(&p, "other.", "herald.retry.5s"), -1);
    assert_int_equal(retry_tier_of_topic(&p, "other.", "other.5s"), 0);

    assert_int_equal(retry_policy_init(&p, odd, N(odd), 0), 0);
    for (size_t i = 0; i < N(want_odd); i++) {
        retry_tier_topic(&p, "r.", i, topic, sizeof(topic));
        assert_string_equal(topic, want_odd[i]);
        assert_int_equal(retry_tier_of_topic(&p, "r.", want_odd[i]), (int)i);
    }
}

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(retry_verdict_name(RETRY_DELIVERED), "delivered");
    assert_string_equal(retry_verdict_name(RETRY_RETRY), "retry");
    assert_string_equal(retry_verdict_name(RETRY_GIVE_UP), "dead_lettered");
    assert_string_equal(retry_verdict_name(RETRY_GONE), "gone");
    assert_string_equal(retry_verdict_name((enum retry_verdict)42), "unknown");
}

/* ---- retry_decide -------------------------------------------------------- */

/* Result builders: status only, transport error, or a flag. */
#define ST(s)                                                                                      \
    {                                                                                              \
        (s), 0, false, false, false, false, -1                                                     \
    }
#define TE(e)                                                                                      \
    {                                                                                              \
        0, (e), false, false, false, false, -1                                                     \
    }

struct decide_case {
    const char *name;
    struct attempt_result r;
    int attempt, max_attempts;
    enum retry_verdict verdict;
    int next_attempt;
    const char *reason; /* GIVE_UP / GONE */
    size_t tier;        /* RETRY */
    int64_t base;       /* RETRY: the delay before jitter */
};

static const struct decide_case decide_cases[] = {
    {"200", ST(200), 1, 8, RETRY_DELIVERED, 1, NULL, 0, 0},
    {"204", ST(204), 3, 8, RETRY_DELIVERED, 3, NULL, 0, 0},
    {"299", ST(299), 8, 8, RETRY_DELIVERED, 8, NULL, 0, 0},
    {"2xx on the last attempt", ST(201), 8, 8, RETRY_DELIVERED, 8, NULL, 0, 0},
    {"100", ST(100), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"199", ST(199), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"300", ST(300), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"301 (redirects are not followed)", ST(301), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"400", ST(400), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"401", ST(401), 2, 8, RETRY_RETRY, 3, NULL, 1, 5 * MIN},
    {"404", ST(404), 3, 8, RETRY_RETRY, 4, NULL, 2, 30 * MIN},
    {"429", ST(429), 4, 8, RETRY_RETRY, 5, NULL, 3, 2 * HOUR},
    {"500", ST(500), 5, 8, RETRY_RETRY, 6, NULL, 4, 5 * HOUR},
    {"502", ST(502), 6, 8, RETRY_RETRY, 7, NULL, 5, 10 * HOUR},
    {"503", ST(503), 7, 8, RETRY_RETRY, 8, NULL, 5, 10 * HOUR},
    {"599", ST(599), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"timeout (curl 28)", TE(28), 1, 8, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"connection refused (curl 7)", TE(7), 2, 8, RETRY_RETRY, 3, NULL, 1, 5 * MIN},
    {"DNS failure (curl 6)", TE(6), 1, 3, RETRY_RETRY, 2, NULL, 0, 5 * SEC},
    {"exhausted on 500", ST(500), 8, 8, RETRY_GIVE_UP, 9, "max_attempts_exhausted", 0, 0},
    {"exhausted on a transport error", TE(28), 3, 3, RETRY_GIVE_UP, 4, "max_attempts_exhausted", 0,
     0},
    {"single attempt allowed", ST(503), 1, 1, RETRY_GIVE_UP, 2, "max_attempts_exhausted", 0, 0},
    {"beyond the schedule repeats the last delay", ST(500), 12, 20, RETRY_RETRY, 13, NULL, 5,
     10 * HOUR},
    {"far beyond the schedule", ST(500), 99, 100, RETRY_RETRY, 100, NULL, 5, 10 * HOUR},
    {"410 gone", ST(410), 1, 8, RETRY_GONE, 1, "endpoint_gone", 0, 0},
    {"410 on the last attempt", ST(410), 8, 8, RETRY_GONE, 8, "endpoint_gone", 0, 0},
    {"aborted",
     {500, 0, false, false, true, false, -1},
     1,
     8,
     RETRY_GIVE_UP,
     1,
     "aborted_by_receiver",
     0,
     0},
    {"aborted without a status",
     {0, 0, false, false, true, false, -1},
     2,
     8,
     RETRY_GIVE_UP,
     2,
     "aborted_by_receiver",
     0,
     0},
    {"refused target",
     {0, 0, true, false, false, false, -1},
     1,
     8,
     RETRY_GIVE_UP,
     1,
     "target_refused",
     0,
     0},
    {"refused beats a deferral",
     {0, 0, true, false, false, true, -1},
     1,
     8,
     RETRY_GIVE_UP,
     1,
     "target_refused",
     0,
     0},
    {"unsendable",
     {0, 0, false, true, false, false, -1},
     1,
     8,
     RETRY_GIVE_UP,
     1,
     "payload_unrenderable",
     0,
     0},
    {"deferred keeps its attempt",
     {0, 0, false, false, false, true, -1},
     3,
     8,
     RETRY_RETRY,
     3,
     NULL,
     1,
     5 * MIN},
    {"deferred first attempt",
     {0, 0, false, false, false, true, -1},
     1,
     8,
     RETRY_RETRY,
     1,
     NULL,
     0,
     5 * SEC},
    {"deferred on the last attempt is not exhausted",
     {0, 0, false, false, false, true, -1},
     8,
     8,
     RETRY_RETRY,
     8,
     NULL,
     5,
     10 * HOUR},
    {"deferred with a stale 200 is no delivery",
     {200, 0, false, false, false, true, -1},
     2,
     8,
     RETRY_RETRY,
     2,
     NULL,
     0,
     5 * SEC},
    {"deferred with a stale 410 is no gone",
     {410, 0, false, false, false, true, -1},
     2,
     8,
     RETRY_RETRY,
     2,
     NULL,
     0,
     5 * SEC},
};

static void check_decision(const char *name, const struct retry_decision *d,
                           const struct decide_case *c, double rnd, int jitter_pct)
{
    if (d->verdict != c->verdict)
        fail_msg("case \"%s\" rnd %.3f: verdict %s, want %s", name, rnd,
                 retry_verdict_name(d->verdict), retry_verdict_name(c->verdict));
    if (d->next_attempt != c->next_attempt)
        fail_msg("case \"%s\": next_attempt %d, want %d", name, d->next_attempt, c->next_attempt);
    if (c->verdict == RETRY_GIVE_UP || c->verdict == RETRY_GONE) {
        if (!d->reason || strcmp(d->reason, c->reason) != 0)
            fail_msg("case \"%s\": reason %s, want %s", name, d->reason ? d->reason : "(null)",
                     c->reason);
    } else if (c->verdict == RETRY_RETRY) {
        int64_t spread = c->base * jitter_pct / 100;
        if (d->reason)
            fail_msg("case \"%s\": a retry has no reason, got %s", name, d->reason);
        if (d->tier != c->tier)
            fail_msg("case \"%s\": tier %zu, want %zu", name, d->tier, c->tier);
        if (d->delay_ms < c->base - spread || d->delay_ms > c->base + spread)
            fail_msg("case \"%s\" rnd %.3f: delay %lld outside %lld +- %lld", name, rnd,
                     (long long)d->delay_ms, (long long)c->base, (long long)spread);
        /* The jitter is exact at its ends and the middle. */
        if (rnd == 0.0 && d->delay_ms != c->base - spread)
            fail_msg("case \"%s\": delay %lld at rnd 0, want %lld", name, (long long)d->delay_ms,
                     (long long)(c->base - spread));
        if (rnd == 0.5 && d->delay_ms != c->base)
            fail_msg("case \"%s\": delay %lld at rnd 0.5, want %lld", name, (long long)d->delay_ms,
                     (long long)c->base);
        if (rnd > 0.99 && d->delay_ms < c->base + spread - spread / 100 - 1)
            fail_msg("case \"%s\": delay %lld at rnd %.3f, want about %lld", name,
                     (long long)d->delay_ms, rnd, (long long)(c->base + spread));
    } else if (d->reason) {
        fail_msg("case \"%s\": delivered with a reason %s", name, d->reason);
    }
}

static void test_decide(void **state)
{
    static const double rnds[] = {0.0, 0.5, 0.999};
    struct retry_policy p;
    (void)state;
    default_policy(&p);
    for (size_t i = 0; i < N(decide_cases); i++) {
        const struct decide_case *c = &decide_cases[i];
        for (size_t k = 0; k < N(rnds); k++) {
            struct retry_decision d = retry_decide(&p, &c->r, c->attempt, c->max_attempts, rnds[k]);
            check_decision(c->name, &d, c, rnds[k], 20);
        }
    }
}

static void test_decide_no_jitter(void **state)
{
    static const int64_t sched[] = {SEC, 2 * SEC};
    struct retry_policy p;
    struct attempt_result r = ST(500);
    (void)state;
    assert_int_equal(retry_policy_init(&p, sched, N(sched), 0), 0);
    for (int attempt = 1; attempt <= 5; attempt++) {
        struct retry_decision d = retry_decide(&p, &r, attempt, 10, 0.999);
        assert_int_equal(d.verdict, RETRY_RETRY);
        assert_int_equal(d.next_attempt, attempt + 1);
        assert_int_equal(d.delay_ms, attempt == 1 ? SEC : 2 * SEC);
        assert_int_equal(d.tier, attempt == 1 ? 0 : 1);
    }
}

/* Retry-After (429/503): the wait is at least what the receiver asked for. */
static void test_decide_retry_after(void **state)
{
    static const struct {
        const char *name;
        long status;
        int attempt;
        int64_t after;
        size_t tier;
        int64_t base; /* the delay before the upward-only jitter */
    } cases[] = {
        {"longer than 5s picks the 5m tier", 429, 1, MIN, 1, 5 * MIN},
        {"just over 5s", 503, 1, 5 * SEC + 1, 1, 5 * MIN},
        {"exactly a tier", 429, 1, 30 * MIN, 2, 30 * MIN},
        {"between tiers rounds up", 503, 2, 31 * MIN, 3, 2 * HOUR},
        {"beyond every tier takes the longest", 429, 1, 24 * HOUR, 5, 10 * HOUR},
    };
    struct retry_policy p;
    (void)state;
    default_policy(&p);
    for (size_t i = 0; i < N(cases); i++) {
        struct attempt_result r = ST(cases[i].status);
        r.retry_after_ms = cases[i].after;
        for (int k = 0; k < 3; k++) {
            double rnd = k == 0 ? 0.0 : k == 1 ? 0.5 : 0.999;
            struct retry_decision d = retry_decide(&p, &r, cases[i].attempt, 8, rnd);
            int64_t hi = cases[i].base + cases[i].base / 5;
            if (d.verdict != RETRY_RETRY || d.tier != cases[i].tier)
                fail_msg("case \"%s\": verdict %s tier %zu, want retry tier %zu", cases[i].name,
                         retry_verdict_name(d.verdict), d.tier, cases[i].tier);
            assert_int_equal(d.next_attempt, cases[i].attempt + 1);
            /* The jitter only lengthens: never sooner than the tier. */
            if (d.delay_ms < cases[i].base || d.delay_ms > hi)
                fail_msg("case \"%s\" rnd %.3f: delay %lld outside [%lld, %lld]", cases[i].name,
                         rnd, (long long)d.delay_ms, (long long)cases[i].base, (long long)hi);
            if (k == 0)
                assert_int_equal(d.delay_ms, cases[i].base);
        }
    }
}

/* A Retry-After no longer than the scheduled delay keeps the tier and is still honoured. */
static void test_decide_retry_after_short(void **state)
{
    static const struct {
        int64_t after;
        int64_t min_delay; /* at rnd 0 */
    } cases[] = {
        {-1, 4 * SEC},      /* absent: the normal downward jitter */
        {0, 4 * SEC},       /* "Retry-After: 0" */
        {3 * SEC, 4 * SEC}, /* shorter than the jittered delay */
        {4500, 4500},       /* inside the jitter band: never sooner than asked */
        {5 * SEC, 5 * SEC}, /* exactly the scheduled delay */
    };
    struct retry_policy p;
    (void)state;
    default_policy(&p);
    for (size_t i = 0; i < N(cases); i++) {
        struct attempt_result r = ST(503);
        struct retry_decision d;
        r.retry_after_ms = cases[i].after;
        d = retry_decide(&p, &r, 1, 8, 0.0);
        assert_int_equal(d.verdict, RETRY_RETRY);
        assert_int_equal(d.tier, 0);
        if (d.delay_ms != cases[i].min_delay)
            fail_msg("Retry-After %lld: delay %lld at rnd 0, want %lld", (long long)cases[i].after,
                     (long long)d.delay_ms, (long long)cases[i].min_delay);
        d = retry_decide(&p, &r, 1, 8, 0.999);
        assert_true(d.delay_ms >= cases[i].min_delay && d.delay_ms <= 6 * SEC);
    }
}

/* ---- Retry-After parsing ------------------------------------------------- */

/* Wed, 21 Oct 2015 07:28:00 GMT */
#define NOW 1445412480000LL

struct after_case {
    const char *in;
    int64_t now;
    int rc;
    int64_t ms;
};

static const struct after_case after_cases[] = {
    {"0", NOW, 0, 0},
    {"1", NOW, 0, 1000},
    {"120", NOW, 0, 120000},
    {"  120", NOW, 0, 120000},
    {"120  ", NOW, 0, 120000},
    {"\t5\t", NOW, 0, 5000},
    {"007", NOW, 0, 7000},
    {"86400", NOW, 0, 86400000},
    {"100000000", NOW, 0, 100000000000LL},
    {"", NOW, HERALD_EINVAL, 0},
    {"   ", NOW, HERALD_EINVAL, 0},
    {"-5", NOW, HERALD_EINVAL, 0},
    {"+5", NOW, HERALD_EINVAL, 0},
    {"1.5", NOW, HERALD_EINVAL, 0},
    {"5s", NOW, HERALD_EINVAL, 0},
    {"5 5", NOW, HERALD_EINVAL, 0},
    {"0x10", NOW, HERALD_EINVAL, 0},
    {"soon", NOW, HERALD_EINVAL, 0},
    {"99999999999", NOW, HERALD_EINVAL, 0},
    {"99999999999999999999999999", NOW, HERALD_EINVAL, 0},
    /* IMF-fixdate */
    {"Wed, 21 Oct 2015 07:28:30 GMT", NOW, 0, 30000},
    {"Wed, 21 Oct 2015 07:28:00 GMT", NOW, 0, 0},
    {"Thu, 22 Oct 2015 07:28:00 GMT", NOW, 0, 86400000},
    {"  Wed, 21 Oct 2015 07:29:00 GMT  ", NOW, 0, 60000},
    {"Wed, 21 Oct 2015 07:27:59 GMT", NOW, 0, 0}, /* in the past: now */
    {"Mon, 01 Jan 1990 00:00:00 GMT", NOW, 0, 0},
    {"Wed, 21 Oct 2015 07:28:00 GMT", NOW - 500, 0, 500},
    {"Wed, 21 Oct 2015 07:28:30 GMT junk", NOW, HERALD_EINVAL, 0},
    {"Wed, 21 Oct 2015 07:28:30 PST", NOW, HERALD_EINVAL, 0},
    {"Wed, 21 Oct 2015 07:28:30", NOW, HERALD_EINVAL, 0},
    {"Wed, 21 Foo 2015 07:28:30 GMT", NOW, HERALD_EINVAL, 0},
    {"Wed, 32 Oct 2015 07:28:30 GMT", NOW, HERALD_EINVAL, 0},
    {"Wed, 21 Oct 2015 25:28:30 GMT", NOW, HERALD_EINVAL, 0},
    /* obsolete RFC 850 */
    {"Wednesday, 21-Oct-15 07:29:00 GMT", NOW, 0, 60000},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777000LL - 10000, 0, 10000},
    /* obsolete asctime, with its space-padded day */
    {"Wed Oct 21 07:30:00 2015", NOW, 0, 120000},
    {"Sun Nov  6 08:49:37 1994", 784111777000LL - 10000, 0, 10000},
    {"Sun Nov  6 08:49:37 1994", NOW, 0, 0},
};

static void test_parse_after(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(after_cases); i++) {
        const struct after_case *c = &after_cases[i];
        int64_t ms = -42;
        int rc = retry_parse_after(c->in, c->now, &ms);
        if (rc != c->rc)
            fail_msg("\"%s\": rc %d, want %d", c->in, rc, c->rc);
        if (rc == 0 && ms != c->ms)
            fail_msg("\"%s\": %lld ms, want %lld", c->in, (long long)ms, (long long)c->ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_init),
        cmocka_unit_test(test_policy_init_invalid),
        cmocka_unit_test(test_tier_topics),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_decide_no_jitter),
        cmocka_unit_test(test_decide_retry_after),
        cmocka_unit_test(test_decide_retry_after_short),
        cmocka_unit_test(test_parse_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
