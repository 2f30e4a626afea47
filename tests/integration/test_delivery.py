#!/usr/bin/python3
"""End-to-end delivery: Kafka -> herald -> signed HTTP, against real peers.

Covers the foundation's promises: N events x M subscriptions arrive exactly as
matched (exact type, prefix.*, *; tenants isolated; disabled skipped), every
signature verifies with an independent verifier, a subscription change takes
effect without a restart, a poison message is dead-lettered while later events
on the same partition still flow, SIGTERM drains and commits, and kill -9 in
the middle of a run loses nothing.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Env, event, put_sub, subscription, wait_until  # noqa: E402


class DeliveryTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self._testMethodName)

    def tearDown(self):
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if _ is self)
        self.env.close(failed)

    def test_fan_out_matches_exactly_and_signatures_verify(self):
        env, rx = self.env, self.env.receiver
        subs = [
            subscription("s_exact", "org_a", rx.url("/exact"), ["post.created"]),
            subscription("s_prefix", "org_a", rx.url("/prefix"), ["post.*"]),
            subscription("s_all", "org_a", rx.url("/all"), ["*"]),
            subscription("s_other", "org_a", rx.url("/other"), ["comment.created"]),
            subscription("s_off", "org_a", rx.url("/off"), ["*"], status="disabled",
                         disabled_reason="test"),
            subscription("s_b", "org_b", rx.url("/b"), ["*"]),
            subscription("s_put", "org_a", rx.url("/put"), ["post.created"], method="PUT",
                         headers={"X-Team": "platform"}, content_type="application/vnd.x+json"),
        ]
        for s in subs:
            put_sub(env.redis.url, s)
        w = env.worker()
        w.wait_ready()
        types = ["post.created", "post.deleted", "comment.created", "user.signed_up"]
        events = [event("evt_%03d" % i, types[i % 4], "org_a", n=i) for i in range(40)]
        env.produce_events(events)
        expected = set()
        for e in events:
            t = e["type"]
            if t == "post.created":
                expected |= {("/exact", e["id"]), ("/put", e["id"])}
            if t.startswith("post."):
                expected.add(("/prefix", e["id"]))
            expected.add(("/all", e["id"]))
            if t == "comment.created":
                expected.add(("/other", e["id"]))
        wait_until(lambda: {(a["path"], a["id"]) for a in rx.snapshot()} >= expected, 60,
                   "%d deliveries" % len(expected))
        # Let any stray delivery arrive before checking nothing else came.
        wait_until(lambda: (w.metric("herald_jobs_pending") == 0), 20, "jobs to settle")
        got = rx.snapshot()
        self.assertEqual({(a["path"], a["id"]) for a in got}, expected)
        self.assertEqual(len(got), len(expected), "no duplicates without failures")
        for a in got:
            self.assertTrue(a["verified"], "signature of %s to %s: %s" % (a["id"], a["path"],
                                                                         a["reason"]))
            self.assertEqual(a["headers"]["webhook-id"], a["id"])
            original = next(e for e in events if e["id"] == a["id"])
            # The body is the Kafka value exactly as produced (compact JSON from the harness).
            import json
            self.assertEqual(a["body"], json.dumps(original, separators=(",", ":")).encode())
            if a["path"] == "/put":
                self.assertEqual(a["method"], "PUT")
                self.assertEqual(a["headers"]["x-team"], "platform")
                self.assertEqual(a["headers"]["content-type"], "application/vnd.x+json")
            else:
                self.assertEqual(a["method"], "POST")
                self.assertEqual(a["headers"]["content-type"], "application/json")
        self.assertFalse([a for a in got if a["path"] in ("/off", "/b")])
        self.assertEqual(w.metric("herald_events_consumed_total"), 40)
        self.assertEqual(w.metric("herald_deliveries_total", {"outcome": "delivered"}),
                         len(expected))
        self.assertEqual(w.stop(), 0)

    def test_subscription_change_takes_effect_without_restart(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s1", "org_a", rx.url("/v1"), ["post.created"]))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("e1", "post.created", "org_a")])
        wait_until(lambda: ("/v1", "e1") in {(a["path"], a["id"]) for a in rx.snapshot()}, 30,
                   "e1 at /v1")
        # Move the endpoint and widen its filter: the next event must follow the change.
        put_sub(env.redis.url, subscription("s1", "org_a", rx.url("/v2"), ["post.*"]))
        env.produce_events([event("e2", "post.updated", "org_a")])
        wait_until(lambda: ("/v2", "e2") in {(a["path"], a["id"]) for a in rx.snapshot()}, 30,
                   "e2 at /v2")
        # Disable it: no more deliveries; add a second one that does receive.
        put_sub(env.redis.url, subscription("s1", "org_a", rx.url("/v2"), ["post.*"],
                                            status="disabled"))
        put_sub(env.redis.url, subscription("s2", "org_a", rx.url("/s2"), ["post.*"]))
        env.produce_events([event("e3", "post.updated", "org_a")])
        wait_until(lambda: ("/s2", "e3") in {(a["path"], a["id"]) for a in rx.snapshot()}, 30,
                   "e3 at /s2")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 20, "jobs to settle")
        paths = [(a["path"], a["id"]) for a in rx.snapshot()]
        self.assertEqual(sorted(paths), sorted([("/v1", "e1"), ("/v2", "e2"), ("/s2", "e3")]))
        # Deleting removes it everywhere.
        from harness import herald
        herald("subs", "--redis", env.redis.url, "delete", "s2")
        env.produce_events([event("e4", "post.updated", "org_a"), event("e5", "x.y", "org_z")])
        wait_until(lambda: w.metric("herald_events_consumed_total") == 5, 30, "e4/e5 consumed")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 20, "jobs to settle")
        self.assertNotIn("e4", {a["id"] for a in rx.snapshot()})
        self.assertEqual(w.stop(), 0)

    def test_poison_is_dead_lettered_and_partition_keeps_flowing(self):
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("s1", "org_a", rx.url("/h"), ["*"]))
        w = env.worker({"event.max_bytes": "2KiB"})
        w.wait_ready()
        # Same key, so all land in one partition, poison first.
        big = '{"id":"big","type":"t","tenant":"org_a","data":"%s"}' % ("x" * 3000)
        env.produce([
            ("org_a", "this is not json"),
            ("org_a", '{"type":"post.created","tenant":"org_a"}'),
            ("org_a", '{"id":"no_type","tenant":"org_a"}'),
            ("org_a", '[1,2,3]'),
            ("org_a", '{"id":"bad id","type":"t"}'),
            ("org_a", '{"id":"x","type":"t","tenant":"org_a"} trailing'),
            ("org_a", big),
            ("", '{"id":"nokey","type":"t"}'),
            ("org_a", '{"id":"good_1","type":"post.created","tenant":"org_a"}'),
            ("org_a", '{"id":"good_2","type":"post.created"}'),
        ])
        wait_until(lambda: rx.delivered_ids() >= {"good_1", "good_2"}, 30, "good events")
        dlq = wait_until(lambda: [m for m in env.dlq()] if len(env.dlq()) >= 8 else None, 30,
                         "8 dead letters")
        reasons = sorted(m["headers"]["herald-reason"] for m in dlq)
        self.assertEqual(reasons, sorted(["not_json", "missing_id", "missing_type",
                                          "not_an_object", "invalid_id", "not_json", "too_large",
                                          "missing_tenant"]))
        # The dead letter keeps the original bytes and says where they came from.
        nj = next(m for m in dlq if m["payload"] == "this is not json")
        self.assertEqual(nj["headers"]["herald-source-topic"], "herald.events")
        self.assertIn("herald-source-offset", nj["headers"])
        self.assertTrue(nj["headers"]["herald-detail"])
        self.assertEqual(w.metric("herald_dead_letters_total", {"reason": "poison_event"}), 8)
        self.assertTrue(w.alive())
        self.assertEqual(w.stop(), 0)
        # Everything was settled: a restarted worker consumes nothing again.
        w2 = env.worker()
        w2.wait_ready()
        env.produce_events([event("after", "post.created", "org_a")])
        wait_until(lambda: "after" in rx.delivered_ids(), 30, "event after restart")
        self.assertEqual(w2.metric("herald_events_consumed_total"), 1)
        self.assertEqual(len(env.dlq()), 8)
        self.assertEqual(w2.stop(), 0)

    def test_sigterm_drains_in_flight_and_commits(self):
        env = self.env
        rx = env.receiver
        rx.delay = 0.5  # every answer takes half a second
        put_sub(env.redis.url, subscription("s1", "org_a", rx.url("/slow"), ["*"]))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("d%02d" % i, "t", "org_a") for i in range(20)])
        wait_until(lambda: len(rx.snapshot()) >= 1, 30, "first delivery to start")
        self.assertEqual(w.stop(), 0)
        got = rx.delivered_ids()
        # Drained: every event consumed before the signal was delivered, and the
        # restart redelivers only what was never consumed.
        rx.delay = 0
        w2 = env.worker()
        w2.wait_ready()
        wait_until(lambda: rx.delivered_ids() >= {"d%02d" % i for i in range(20)}, 60,
                   "all 20 events")
        redelivered = [a["id"] for a in rx.snapshot() if a["id"] in got]
        self.assertEqual(len(redelivered), len(got), "an event delivered before SIGTERM came "
                         "again after the restart: %s" % sorted(set(
                             i for i in redelivered if redelivered.count(i) > 1)))
        self.assertEqual(w2.stop(), 0)

    def test_kill9_mid_run_loses_nothing(self):
        env, rx = self.env, self.env.receiver
        rx.delay = 0.02
        put_sub(env.redis.url, subscription("s1", "org_a", rx.url("/k"), ["*"]))
        w = env.worker()
        w.wait_ready()
        ids = ["k%04d" % i for i in range(600)]
        env.produce_events([event(i, "t", "org_a") for i in ids])
        wait_until(lambda: len(rx.delivered_ids()) >= 100, 60, "100 deliveries before the kill")
        w.kill9()
        before = len(rx.delivered_ids())
        self.assertLess(before, len(ids), "the kill came too late to prove anything")
        w.start()
        wait_until(lambda: rx.delivered_ids() >= set(ids), 120, "every event after the restart")
        dups = len(rx.snapshot()) - len(ids)
        self.assertGreaterEqual(dups, 0)
        self.assertTrue(all(a["verified"] for a in rx.snapshot()))
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
