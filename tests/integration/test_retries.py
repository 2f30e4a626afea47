#!/usr/bin/python3
"""Retries, dead letters, attempt history, resend and replay, end to end.

A scripted receiver fails or answers specially per path; the schedule is
compressed (200ms, 400ms, 800ms) so a whole retry life fits in seconds.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Env, consume_all, event, herald, put_sub, subscription,  # noqa: E402
                     wait_until)


def behaviour(path, wid, n):
    """What the scripted receiver answers to the n-th delivery of wid to path."""
    if path.startswith("/fail2"):
        return (500, {}, b"not yet") if n <= 2 else (204, {}, b"")
    if path == "/always":
        return 503, {}, b"down for good"
    if path == "/gone":
        return 410, {}, b""
    if path == "/abort":
        return 500, {"webhook-delivery": "abort-message"}, b"stop"
    if path == "/after":
        return (429, {"Retry-After": "2"}, b"") if n == 1 else (204, {}, b"")
    if path == "/redirect":
        return 302, {"Location": "http://127.0.0.1:1/elsewhere"}, b""
    if path == "/flaky":
        return (503, {}, b"") if FLAKY["down"] else (200, {}, b"ok")
    return 204, {}, b""


FLAKY = {"down": True}


class RetryTest(unittest.TestCase):
    def setUp(self):
        FLAKY["down"] = True
        self.env = Env(self._testMethodName, behaviour=behaviour)

    def tearDown(self):
        failed = any(e for t, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if t is self)
        self.env.close(failed)

    def arrivals(self, path):
        return [a for a in self.env.receiver.snapshot() if a["path"] == path]

    def test_fail_then_succeed_keeps_webhook_id_and_refreshes_timestamp(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/fail2"), ["*"]))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1"), event("e2", "x.y", "t1")])
        wait_until(lambda: rx.delivered_ids("/fail2") == {"e1", "e2"}, 60, "both delivered")
        for eid in ("e1", "e2"):
            got = [a for a in self.arrivals("/fail2") if a["id"] == eid]
            self.assertEqual([a["status"] for a in got], [500, 500, 204])
            self.assertEqual({a["headers"]["webhook-id"] for a in got}, {eid})
            self.assertTrue(all(a["verified"] for a in got))
            self.assertEqual(len({a["body"] for a in got}), 1, "same body every attempt")
            # Delays follow the schedule (200ms then 400ms, +-20%), so attempts are spread out.
            gaps = [got[i + 1]["at"] - got[i]["at"] for i in range(2)]
            self.assertGreaterEqual(gaps[0], 0.15)
            self.assertGreaterEqual(gaps[1], 0.3)
        # Attempt history in Redis: three records per event, newest first, via the CLI.
        out = herald("attempts", "s", "--redis", env.redis.url, "--json", "--limit", "10").stdout
        recs = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(recs), 6)
        e1 = sorted((r for r in recs if r["event_id"] == "e1"), key=lambda r: r["attempt"])
        self.assertEqual([(r["attempt"], r["status"], r["outcome"]) for r in e1],
                         [(1, 500, "retry"), (2, 500, "retry"), (3, 204, "delivered")])
        self.assertEqual(e1[0]["response_body"], "not yet")
        self.assertIn("next_attempt_at", e1[0])
        failed = herald("attempts", "s", "--redis", env.redis.url, "--failed").stdout
        self.assertEqual(len(failed.strip().splitlines()), 1 + 4, failed)  # header + 4 failures
        # The attempts topic has the same six records.
        topic = consume_all(env.broker.bootstrap, "herald.attempts")
        self.assertEqual(sorted((json.loads(m["payload"])["event_id"],
                                 json.loads(m["payload"])["attempt"]) for m in topic),
                         sorted([(e, n) for e in ("e1", "e2") for n in (1, 2, 3)]))
        self.assertEqual(w.stop(), 0)

    def test_always_failing_dead_letters_after_exactly_max_attempts(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/always"), ["*"], max_attempts=4))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1")])
        dlq = wait_until(lambda: env.dlq(), 60, "a dead letter")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 20, "jobs to settle")
        self.assertEqual(len(self.arrivals("/always")), 4)
        self.assertEqual(len(dlq), 1)
        h = dlq[0]["headers"]
        self.assertEqual(h["herald-reason"], "max_attempts_exhausted")
        self.assertEqual(h["herald-attempt"], "4")
        self.assertEqual(h["herald-last-status"], "503")
        self.assertEqual(h["herald-subscription"], "s")
        self.assertEqual(json.loads(dlq[0]["payload"])["id"], "e1")
        self.assertEqual(w.metric("herald_dead_letters_total",
                                  {"reason": "max_attempts_exhausted"}), 1)
        self.assertEqual(w.metric("herald_retries_enqueued_total"), 3)
        self.assertEqual(w.stop(), 0)

    def test_retry_after_is_honoured(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/after"), ["*"]))
        # Tiers long enough to hold a 2 s Retry-After: 200ms, 1s, 3s.
        w = env.worker({"retry.schedule": "200ms,1s,3s"})
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1")])
        wait_until(lambda: rx.delivered_ids("/after") == {"e1"}, 60, "delivery after 429")
        got = self.arrivals("/after")
        self.assertEqual([a["status"] for a in got], [429, 204])
        self.assertGreaterEqual(got[1]["at"] - got[0]["at"], 2.0,
                                "the second attempt came before Retry-After")
        self.assertEqual(w.stop(), 0)

    def test_410_disables_the_subscription(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/gone"), ["*"]))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1")])
        wait_until(lambda: env.dlq(), 60, "a dead letter")
        self.assertEqual(env.dlq()[0]["headers"]["herald-reason"], "endpoint_gone")
        doc = wait_until(lambda: (lambda d: d if d.get("status") == "disabled" else None)(
            json.loads(env.redis.cli("GET", "herald:sub:s"))), 20, "the subscription disabled")
        self.assertIn("410", doc["disabled_reason"])
        env.produce_events([event("e2", "x.y", "t1")])
        wait_until(lambda: w.metric("herald_events_consumed_total") == 2, 30, "e2 consumed")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 20, "jobs to settle")
        self.assertEqual([a["id"] for a in self.arrivals("/gone")], ["e1"])
        self.assertEqual(w.stop(), 0)

    def test_abort_header_stops_retries(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/abort"), ["*"]))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1")])
        dlq = wait_until(lambda: env.dlq(), 60, "a dead letter")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 20, "jobs to settle")
        self.assertEqual(dlq[0]["headers"]["herald-reason"], "aborted_by_receiver")
        self.assertEqual(len(self.arrivals("/abort")), 1)
        self.assertEqual(w.stop(), 0)

    def test_redirect_is_a_failure_not_followed(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/redirect"), ["*"],
                                            max_attempts=2))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1")])
        dlq = wait_until(lambda: env.dlq(), 60, "a dead letter")
        self.assertEqual(dlq[0]["headers"]["herald-last-status"], "302")
        self.assertEqual(len(self.arrivals("/redirect")), 2)
        self.assertEqual(w.stop(), 0)

    def test_breaker_opens_and_closes(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/flaky"), ["*"],
                                            max_attempts=50))
        w = env.worker({"breaker.failures": "3", "breaker.cooldown": "1s",
                        "retry.schedule": "300ms"})
        w.wait_ready()
        env.produce_events([event("e%02d" % i, "x.y", "t1") for i in range(20)])
        wait_until(lambda: w.metric("herald_breakers_open") == 1, 30, "the breaker to open")
        # While open, jobs are deferred without an attempt.
        wait_until(lambda: (w.metric("herald_deliveries_total", {"outcome": "deferred"}) or 0) > 0,
                   30, "deferred jobs")
        attempts_while_open = len(self.arrivals("/flaky"))
        self.assertLess(attempts_while_open, 20 * 3, "the breaker did not shed load")
        FLAKY["down"] = False
        wait_until(lambda: rx.delivered_ids("/flaky") == {"e%02d" % i for i in range(20)}, 60,
                   "every event after recovery")
        wait_until(lambda: w.metric("herald_breakers_open") == 0, 30, "the breaker to close")
        self.assertEqual(env.dlq(), [])
        self.assertEqual(w.stop(), 0)

    def test_resend_and_replay_deliver_again_with_the_original_id(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/ok"), ["post.*"]))
        w = env.worker()
        w.wait_ready()
        t0 = time.time()
        env.produce_events([event("old", "post.created", "t1")])
        wait_until(lambda: rx.delivered_ids("/ok") == {"old"}, 30, "old delivered")
        # The window starts after "old" was delivered, so after it was produced; the
        # short pause keeps the boundary clear of the millisecond clock.
        time.sleep(0.05)
        t1 = time.time()
        time.sleep(0.05)
        env.produce_events([event("r1", "post.created", "t1"), event("r2", "post.updated", "t1"),
                            event("r3", "comment.created", "t1"),
                            event("r4", "post.created", "other_tenant")])
        wait_until(lambda: rx.delivered_ids("/ok") == {"old", "r1", "r2"}, 30, "r1, r2 delivered")
        # resend one event now, by event id.
        # Operator commands read the workers' config: bootstrap servers, retry tiers, Redis.
        out = herald("resend", "--config", w.config_path, "--sub", "s", "--event", "old").stdout
        self.assertIn('queued event "old"', out)
        wait_until(lambda: [a["id"] for a in self.arrivals("/ok")].count("old") == 2, 30,
                   "old delivered again")
        again = [a for a in self.arrivals("/ok") if a["id"] == "old"]
        self.assertEqual(again[0]["body"], again[1]["body"])
        self.assertNotEqual(again[0]["headers"]["webhook-timestamp"] + "x",
                            again[1]["headers"]["webhook-timestamp"])
        self.assertTrue(again[1]["verified"])
        # replay since t1: exactly the matching events of the tenant, again.
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t1)) + ".%03dZ" % (
            int(t1 * 1000) % 1000)
        dry = herald("replay", "--config", w.config_path, "--sub", "s", "--since", since,
                     "--dry-run")
        self.assertIn("would queue 2 of 4 event(s)", dry.stdout)
        out = herald("replay", "--config", w.config_path, "--sub", "s", "--since", since).stdout
        self.assertIn("queued 2 of 4 event(s)", out)
        wait_until(lambda: sorted(a["id"] for a in self.arrivals("/ok")) ==
                   ["old", "old", "r1", "r1", "r2", "r2"], 30, "r1 and r2 replayed")
        self.assertLess(t0, t1)
        # Unknown subscription and bad input are refused.
        r = herald("resend", "--redis", env.redis.url, "--sub", "nope", "--event", "old",
                   check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('no subscription "nope"', r.stderr)
        r = herald("replay", "--sub", "s", "--since", "yesterday-ish", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(w.stop(), 0)

    def test_kill9_while_jobs_wait_in_retry_tiers_loses_none(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/fail2-slow"), ["*"]))
        w = env.worker({"retry.schedule": "3s,3s"})
        w.wait_ready()
        ids = {"k%02d" % i for i in range(30)}
        env.produce_events([event(i, "x.y", "t1") for i in sorted(ids)])
        # Every event fails once and waits 3 s in the tier; kill while they wait.
        wait_until(lambda: {a["id"] for a in self.arrivals("/fail2-slow")} == ids, 30,
                   "every first attempt")
        wait_until(lambda: (w.metric("herald_retries_enqueued_total") or 0) >= 30, 30,
                   "all retry records written")
        w.kill9()
        self.assertEqual(rx.delivered_ids("/fail2-slow"), set())
        w.start()
        wait_until(lambda: rx.delivered_ids("/fail2-slow") == ids, 90,
                   "every event after the restart")
        self.assertEqual(env.dlq(), [])
        self.assertEqual(w.stop(), 0)

    def test_auto_disable_after_failing_window(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s", "t1", rx.url("/always"), ["*"],
                                            max_attempts=100))
        w = env.worker({"subscription.disable_after": "2s", "retry.schedule": "300ms"})
        w.wait_ready()
        env.produce_events([event("e1", "x.y", "t1")])
        doc = wait_until(lambda: (lambda d: d if d.get("status") == "disabled" else None)(
            json.loads(env.redis.cli("GET", "herald:sub:s"))), 30, "auto-disable")
        self.assertIn("failing continuously", doc["disabled_reason"])
        dlq = wait_until(lambda: env.dlq(), 30, "the job dead-lettered once disabled")
        self.assertEqual(dlq[0]["headers"]["herald-reason"], "subscription_disabled")
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
