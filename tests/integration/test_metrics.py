#!/usr/bin/python3
"""/metrics, /healthz and /readyz against what really happened (issue 6).

A run with a known mix (deliveries that succeed, a receiver path that fails
twice and then accepts, a poison message, unmatched events, a 410) is
scraped and every counter is compared with what the receiver saw and what
the retry, dead-letter and attempt topics hold: events consumed, deliveries
by outcome and status class, retries by tier, dead letters by reason, the
latency histogram (one sample per request the receiver answered), cache
hits and misses, in-flight back to 0, partitions assigned, consumer lag for
every assigned partition (librdkafka statistics every second) and its rise
while an event waits on a stopped Redis. /readyz is 503 naming "redis" while
Redis is down and 200 again after it comes back. The text itself must be
well-formed Prometheus exposition with no label carrying a URL, a tenant or
a secret. A second run opens a circuit breaker and checks its gauge.
"""

import os
import re
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TEST_SECRET, Env, consume_all, event, put_sub, subscription,  # noqa: E402
                     wait_until)

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|NaN|[+-]Inf)$")
# The label names herald may use: each takes its values from a small fixed set.
LABEL_NAMES = {"reason", "outcome", "status_class", "tier", "le", "topic", "partition"}


def parse_exposition(test, text):
    """Checks the Prometheus text format strictly; returns {(name, labels): value}
    with labels a sorted tuple of (name, value), and {family: type}."""
    test.assertTrue(text.endswith("\n"), "the exposition ends with a newline")
    helps, types, series, done = {}, {}, {}, set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        test.assertTrue(line, "%s: no blank lines" % where)
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.+)$" % NAME, line)
            test.assertTrue(m, "%s: a comment is # HELP or # TYPE" % where)
            kind, fam, rest = m.groups()
            table = helps if kind == "HELP" else types
            test.assertNotIn(fam, table, "%s: second # %s for %s" % (where, kind, fam))
            test.assertNotIn(fam, done, "%s: %s comes after its samples" % (where, fam))
            if kind == "TYPE":
                test.assertIn(rest, TYPES, where)
            else:
                test.assertTrue(rest.strip(), "%s: empty help" % where)
            table[fam] = rest
            continue
        m = SAMPLE.match(line)
        test.assertTrue(m, "%s: not `name{labels} value`" % where)
        name, labels, value = m.groups()
        test.assertTrue(VALUE.match(value), "%s: bad value" % where)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                fam = base
        test.assertIn(fam, helps, "%s: %s has no # HELP before it" % (where, fam))
        test.assertIn(fam, types, "%s: %s has no # TYPE before it" % (where, fam))
        if current != fam:
            test.assertNotIn(fam, done, "%s: the samples of %s are not together" % (where, fam))
            if current:
                done.add(current)
            current = fam
        pairs = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                        labels or "")))
        test.assertEqual(len(pairs), len({k for k, _ in pairs}), "%s: repeated label" % where)
        key = (name, pairs)
        test.assertNotIn(key, series, "%s: duplicate series" % where)
        series[key] = float(value)
    test.assertEqual(set(helps), set(types), "every # HELP has a # TYPE and back")
    for fam, typ in types.items():
        if typ == "counter":
            test.assertTrue(fam.endswith("_total"), "counter %s ends in _total" % fam)
    return series, types


def sample(series, name, **labels):
    want = tuple(sorted(labels.items()))
    return series.get((name, want))


def samples(series, name):
    """{labels dict as a tuple of values in label order: value} for one metric name."""
    return {labels: v for (n, labels), v in series.items() if n == name}


def fetch(w, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (w.http_port, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


class MetricsTest(unittest.TestCase):
    def tearDown(self):
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if _ is self)
        self.env.close(failed)

    def scrape(self, w):
        return parse_exposition(self, w.metrics())

    def assert_no_leaks(self, text, forbidden):
        series, _ = parse_exposition(self, text)
        for (name, labels) in series:
            for k, v in labels:
                self.assertIn(k, LABEL_NAMES, "%s: unexpected label %s" % (name, k))
                self.assertNotRegex(v, r"://|/|@|127\.0\.0\.1", "%s{%s}: a URL" % (name, k))
                for f in forbidden:
                    self.assertNotIn(f, v, "%s{%s=%r} carries %r" % (name, k, v, f))
        for f in forbidden:
            self.assertNotIn(f, text, "the metrics text mentions %r" % f)

    def test_counters_match_what_the_receiver_saw(self):
        def behaviour(path, wid, n):
            if path == "/flaky" and n <= 2:
                return 500, {}, b"not yet"
            if path == "/gone":
                return 410, {}, b"gone"
            return 204, {}, b""

        self.env = env = Env(self._testMethodName, behaviour=behaviour)
        rx = env.receiver
        # Every answer takes 0.3 s, so in-flight requests are visible and every latency
        # sample falls between 0.25 s and (on any sane machine) 10 s.
        rx.delay = 0.3
        put_sub(env.redis.url, subscription("s_ok", "org_m", rx.url("/ok"), ["order.*"]))
        put_sub(env.redis.url, subscription("s_flaky", "org_m", rx.url("/flaky"),
                                            ["order.created"]))
        put_sub(env.redis.url, subscription("s_gone", "org_m", rx.url("/gone"),
                                            ["order.cancelled"]))
        w = env.worker({"kafka.statistics.interval.ms": "1000"})
        w.wait_ready()
        self.assertEqual(fetch(w, "/healthz")[0], 200)
        self.assertEqual(fetch(w, "/readyz"), (200, "ready\n"))
        self.assertEqual(fetch(w, "/nope")[0], 404)
        series, _ = self.scrape(w)
        # 4 partitions each of herald.events and the three retry tiers.
        self.assertEqual(sample(series, "herald_partitions_assigned"), 16)
        self.assertEqual(sample(series, "herald_events_consumed_total"), 0)

        env.produce_events([
            event("evt_m1", "order.created", "org_m"),    # /ok; /flaky 500, 500, 204
            event("evt_m2", "order.created", "org_m"),    # the same
            event("evt_m3", "order.created", "org_m"),    # the same
            event("evt_m4", "order.updated", "org_m"),    # /ok
            event("evt_m5", "order.cancelled", "org_m"),  # /ok; /gone 410
            event("evt_m6", "user.signed_up", "org_m"),   # nobody: unmatched
            event("evt_m7", "order.created", "org_none"),  # a tenant without subscriptions
        ])
        env.produce([("org_m", "this is not json")])
        peak = [0]

        def all_answered():
            peak[0] = max(peak[0], w.metric("herald_deliveries_in_flight") or 0)
            return (len(rx.snapshot()) >= 15 and w.metric("herald_jobs_pending") == 0 and
                    w.metric("herald_dead_letters_total") == 2)

        wait_until(all_answered, 90, "15 requests answered and every job settled")
        wait_until(lambda: w.metric("herald_deliveries_in_flight") == 0, 10, "in-flight 0")
        self.assertGreater(peak[0], 0, "in-flight was seen above 0 during the run")

        got = rx.snapshot()
        self.assertEqual(len(got), 15)
        self.assertTrue(all(a["verified"] for a in got))
        by = {}
        for a in got:
            by.setdefault((a["path"], a["status"]), []).append(a["id"])
        self.assertEqual({k: len(v) for k, v in by.items()},
                         {("/ok", 204): 5, ("/flaky", 500): 6, ("/flaky", 204): 3,
                          ("/gone", 410): 1})

        text = w.metrics()
        series, types = parse_exposition(self, text)
        self.assertEqual(sample(series, "herald_events_consumed_total"), 8)
        self.assertEqual(sample(series, "herald_retry_jobs_consumed_total"), 6)
        self.assertEqual(sample(series, "herald_events_unmatched_total"), 2)
        rejected = samples(series, "herald_events_rejected_total")
        self.assertEqual(rejected.pop((("reason", "not_json"),)), 1)
        self.assertEqual(set(rejected.values()), {0})

        # Deliveries: every (outcome, status class) series, exactly.
        want = {("delivered", "2xx"): 8, ("retry", "5xx"): 6, ("gone", "4xx"): 1}
        outcomes = ("delivered", "retry", "dead_lettered", "gone", "deferred")
        classes = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
        deliveries = samples(series, "herald_deliveries_total")
        self.assertEqual(len(deliveries), len(outcomes) * len(classes))
        for o in outcomes:
            for c in classes:
                self.assertEqual(sample(series, "herald_deliveries_total", outcome=o,
                                        status_class=c), want.get((o, c), 0), (o, c))
        # What the receiver answered, class by class, is what herald counted.
        seen = {}
        for a in got:
            seen["%dxx" % (a["status"] // 100)] = seen.get("%dxx" % (a["status"] // 100), 0) + 1
        for c in classes:
            counted = sum(sample(series, "herald_deliveries_total", outcome=o, status_class=c)
                          for o in outcomes if o != "deferred")
            self.assertEqual(counted, seen.get(c, 0), c)

        # Latency: one sample per request the receiver saw, each at least the 0.3 s delay.
        self.assertEqual(types["herald_delivery_duration_seconds"], "histogram")
        count = sample(series, "herald_delivery_duration_seconds_count")
        self.assertEqual(count, len(got))
        buckets = sorted(((float(dict(lb)["le"]), v) for lb, v in
                          samples(series, "herald_delivery_duration_seconds_bucket").items()))
        self.assertEqual(buckets[-1], (float("inf"), count))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets),
                         "buckets are cumulative")
        self.assertEqual(dict(buckets)[0.25], 0, "no answer took less than the 0.3 s delay")
        self.assertEqual(dict(buckets)[10.0], count)
        total = sample(series, "herald_delivery_duration_seconds_sum")
        self.assertGreaterEqual(total, 0.3 * count)
        self.assertLess(total, 10 * count)

        # Retries by tier and dead letters by reason, against the topics themselves.
        self.assertEqual(samples(series, "herald_retries_enqueued_total"),
                         {(("tier", "200ms"),): 3, (("tier", "400ms"),): 3,
                          (("tier", "800ms"),): 0})
        boot = env.broker.bootstrap
        self.assertEqual(len(consume_all(boot, "herald.retry.200ms")), 3)
        self.assertEqual(len(consume_all(boot, "herald.retry.400ms")), 3)
        dead = samples(series, "herald_dead_letters_total")
        self.assertEqual(dead.pop((("reason", "poison_event"),)), 1)
        self.assertEqual(dead.pop((("reason", "endpoint_gone"),)), 1)
        self.assertEqual(set(dead.values()), {0})
        self.assertEqual(sorted(m["headers"]["herald-reason"] for m in env.dlq()),
                         ["endpoint_gone", "not_json"])
        self.assertEqual(len(consume_all(boot, "herald.attempts")), len(got),
                         "one attempt record per request")
        self.assertEqual(sample(series, "herald_subscriptions_disabled_total"), 1)

        # The cache: every event and retry job is exactly one hit or one miss; the two
        # cold tenants miss at least once each; nothing failed.
        hits = sample(series, "herald_cache_hits_total")
        misses = sample(series, "herald_cache_misses_total")
        self.assertEqual(hits + misses, 7 + 6)
        self.assertGreaterEqual(misses, 2)
        self.assertGreaterEqual(hits, 1)
        self.assertEqual(sample(series, "herald_cache_lookup_failures_total"), 0)

        for g, v in (("herald_deliveries_in_flight", 0), ("herald_jobs_pending", 0),
                     ("herald_breakers_open", 0), ("herald_partitions_assigned", 16),
                     ("herald_consumption_paused", 0), ("herald_redis_up", 1),
                     ("herald_producer_healthy", 1)):
            self.assertEqual(types[g], "gauge", g)
            self.assertEqual(sample(series, g), v, g)

        forbidden = ["org_m", "org_none", "org_late", "s_ok", "s_flaky", "s_gone", "evt_m",
                     TEST_SECRET, TEST_SECRET[len("whsec_"):], rx.url("/"), "not json"]
        self.assert_no_leaks(text, forbidden)

        # Consumer lag: every assigned partition has a series once statistics arrive, and
        # all of them reach 0 once the offsets are committed.
        assigned = {(t, str(p)) for t in ("herald.events", "herald.retry.200ms",
                                          "herald.retry.400ms", "herald.retry.800ms")
                    for p in range(4)}

        def lag():
            s, _ = self.scrape(w)
            return {(dict(lb)["topic"], dict(lb)["partition"]): val
                    for lb, val in samples(s, "herald_consumer_lag").items()}

        last_lag = {}

        def lags_settled():
            last_lag.clear()
            last_lag.update(lag())
            return set(last_lag) == assigned and set(last_lag.values()) == {0}

        def wait_lags_settled(what):
            try:
                wait_until(lags_settled, 30, what)
            except AssertionError as e:
                raise AssertionError("%s; the last lag series: %s" % (e, last_lag)) from None

        wait_lags_settled("a lag of 0 for every assigned partition")

        # Redis goes away: not ready (naming redis), still healthy; an event of a cold
        # tenant waits unsettled, which the lag of its partition shows.
        env.redis.stop()
        wait_until(lambda: fetch(w, "/readyz")[0] == 503, 20, "/readyz 503 without Redis")
        status, body = fetch(w, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("redis", body)
        self.assertNotIn("consumer-group", body)
        self.assertEqual(fetch(w, "/healthz")[0], 200)
        wait_until(lambda: w.metric("herald_redis_up") == 0, 10, "herald_redis_up 0")
        env.produce_events([event("evt_late", "order.created", "org_late")])
        wait_until(lambda: w.metric("herald_events_consumed_total") == 9, 30, "evt_late consumed")
        wait_until(lambda: sum(v for (t, _), v in lag().items() if t == "herald.events") == 1,
                   30, "a lag of 1 on herald.events while evt_late waits for Redis")
        self.assertGreater(w.metric("herald_cache_lookup_failures_total"), 0)

        env.redis.start()
        wait_until(lambda: fetch(w, "/readyz") == (200, "ready\n"), 30, "/readyz 200 again")
        # The restarted Redis is empty: evt_late is unmatched, settled and committed.
        wait_until(lambda: w.metric("herald_events_unmatched_total") == 3, 30, "evt_late settled")
        wait_lags_settled("every lag back to 0")
        self.assertEqual(len(rx.snapshot()), 15)
        self.assert_no_leaks(w.metrics(), forbidden)
        self.assertEqual(w.stop(), 0)

    def test_breaker_open_gauge_and_deferrals(self):
        self.env = env = Env(self._testMethodName, behaviour=lambda p, wid, n: (500, {}, b""))
        rx = env.receiver
        put_sub(env.redis.url, subscription("s_down", "org_b", rx.url("/down"), ["*"],
                                            max_attempts=20))
        w = env.worker({"breaker.failures": "2", "breaker.cooldown": "60s"})
        w.wait_ready()
        self.assertEqual(w.metric("herald_breakers_open"), 0)
        env.produce_events([event("evt_b1", "t", "org_b")])
        # Two failed attempts open the breaker; later attempts are deferred, not sent.
        wait_until(lambda: w.metric("herald_breakers_open") == 1, 30, "the breaker to open")
        wait_until(lambda: (w.metric("herald_deliveries_total", {"outcome": "deferred"}) or 0)
                   >= 2, 30, "two deferrals")
        series, _ = self.scrape(w)
        self.assertEqual(len(rx.snapshot()), 2)
        self.assertEqual(sample(series, "herald_deliveries_total", outcome="retry",
                                status_class="5xx"), 2)
        self.assertGreaterEqual(sample(series, "herald_deliveries_total", outcome="deferred",
                                       status_class="none"), 2)
        # A deferral is no request: no latency sample for it.
        self.assertEqual(sample(series, "herald_delivery_duration_seconds_count"), 2)
        self.assertEqual(len(consume_all(env.broker.bootstrap, "herald.attempts")), 2)
        self.assertEqual(sample(series, "herald_breakers_open"), 1)
        self.assertEqual(w.stop(), 0)

    def test_request_never_sent_is_not_a_latency_sample(self):
        """A job dead-lettered before any request is made (here payload_unrenderable)
        is counted as a dead-lettered outcome with no status, but not as a request."""
        self.env = env = Env(self._testMethodName)
        rx = env.receiver
        put_sub(env.redis.url, subscription("s_data", "org_u", rx.url("/data"), ["*"],
                                            payload="data"))
        put_sub(env.redis.url, subscription("s_raw", "org_u", rx.url("/raw"), ["*"]))
        w = env.worker()
        w.wait_ready()
        env.produce([("org_u", '{"id":"evt_u1","type":"t","tenant":"org_u"}')])
        wait_until(lambda: w.metric("herald_dead_letters_total",
                                    {"reason": "payload_unrenderable"}) == 1, 30,
                   "the unrenderable dead letter")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 30, "jobs to settle")
        series, _ = self.scrape(w)
        self.assertEqual([a["path"] for a in rx.snapshot()], ["/raw"])
        self.assertEqual(sample(series, "herald_deliveries_total", outcome="delivered",
                                status_class="2xx"), 1)
        self.assertEqual(sample(series, "herald_deliveries_total", outcome="dead_lettered",
                                status_class="none"), 1)
        # A job that sent no request is not a latency sample.
        count = sample(series, "herald_delivery_duration_seconds_count")
        self.assertEqual(count, len(rx.snapshot()))
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
