#!/usr/bin/python3
"""Chaos 8: a receiver that fails 30 % of requests at random.

Every request, first attempt or retry, is answered 500 with probability 0.3
(seeded, so a failing run can be replayed with HERALD_CHAOS_SEED). Every
subscription allows max_attempts = 4 on a compressed schedule (200 ms,
400 ms, 800 ms), so about 0.3^4 = 0.8 % of the events run out of attempts.
The checker proves:

- every event ends delivered or dead-lettered (lost = 0), and never both;
- no delivery took more than max_attempts attempts;
- a dead-lettered delivery is in the dead-letter topic exactly once, with
  reason max_attempts_exhausted, after exactly max_attempts failed attempts;
- nothing is delivered twice (no crash, no rebalance).
"""

import os
import random
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, Feeder, assert_clean, make_events, report,  # noqa: E402
                    spread_tenants, standard_subs, wait_all_committed)

N = 2000
MAX_ATTEMPTS = 4
FAIL_RATE = 0.3
TENANTS = spread_tenants(4)


class FlakyReceiver(ChaosCase):
    def test_thirty_percent_failures(self):
        rng = random.Random(self.seed)
        lock = threading.Lock()

        def decide(path, wid, n):
            with lock:
                return (500 if rng.random() < FAIL_RATE else 204), 0.0

        env = self.make_env("chaos8", decide=decide)
        led = standard_subs(env, TENANTS, max_attempts=MAX_ATTEMPTS)
        events = make_events("k8", N, tenants=TENANTS)
        led.expect(events)
        w = env.worker()
        w.wait_ready()
        feeder = Feeder(env, events, batch=200, interval=0.2)
        feeder.start()
        feeder.finish()
        missing = led.wait_settled(120, dlq_expected=True)
        res = led.check(max_attempts=MAX_ATTEMPTS)
        all_committed = wait_all_committed(env)

        tries = {}
        for a in env.receiver.snapshot():
            tries.setdefault((a["path"], a["id"]), []).append(a["status"])
        dlq = env.dlq()
        reasons = {m["headers"].get("herald-reason") for m in dlq}
        dead = {(led.sub_path[m["headers"]["herald-subscription"]],
                 m["headers"]["herald-event-id"]) for m in dlq}
        exhausted = {k for k, st in tries.items()
                     if len(st) == MAX_ATTEMPTS and all(s == 500 for s in st)}
        res = report("8 receiver failing 30%", res, self.peak_rss(), self.elapsed(),
                     expected_dlq=round(N * FAIL_RATE ** MAX_ATTEMPTS, 1),
                     over_max_attempts=res["over_max_attempts"],
                     max_attempts_seen=res["max_attempts_seen"])
        self.assertEqual(missing, 0)
        assert_clean(self, res, allow_dlq=True)
        self.assertTrue(all_committed, "offsets not committed to the end")
        self.assertEqual(res["over_max_attempts"], 0, "a delivery took more than max_attempts")
        self.assertEqual(res["dlq_repeats"], 0, "a delivery dead-lettered more than once")
        self.assertEqual(res["delivered_and_dlq"], 0, "delivered and dead-lettered")
        self.assertEqual(res["duplicates"], 0)
        self.assertEqual(dead, exhausted, "dead letters are exactly the exhausted deliveries")
        if dlq:
            self.assertEqual(reasons, {"max_attempts_exhausted"})
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
