#!/usr/bin/python3
"""Chaos 4: every broker down for 30 s, then up again.

The embedded broker's mock cluster takes all its brokers down (connections
refused) in the middle of a run, while deliveries are in flight and retry
records are being written: every event goes to two subscriptions per tenant,
one of which fails the first attempt of every third event, so records are
being written to a retry tier all along. After 30 s the brokers come back
and a second batch is produced. The scenario passes when:

- the worker never crashes and its event loop keeps turning (/healthz 200)
  during the outage, and it exits 0 at the end;
- consumption resumes within 10 s of the brokers' return (the worker's
  consumed-events counter moves again), and the second batch is delivered;
- lost = 0 over both batches; duplicates are counted (an outage may repeat a
  delivery, never lose one) and everything is committed at the end.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, assert_clean, make_events, report, spread_tenants,  # noqa: E402
                    standard_subs, wait_all_committed, wait_until)

N = 1200
DOWN_S = 30
RESUME_S = 10
TENANTS = spread_tenants(4)


def decide(path, wid, n):
    # The second subscription of each tenant fails the first attempt of every third event,
    # so retry records are being written when the brokers go away (and, spread out like
    # that, the failures never add up to the circuit breaker's 10 in a row).
    if path.endswith("/1") and n == 1 and int(wid[-5:]) % 3 == 0:
        return 500, 0.0
    return 204, 0.0


class BrokersDown(ChaosCase):
    def test_all_brokers_down_30s(self):
        env = self.make_env("chaos4", decide=decide)
        led = standard_subs(env, TENANTS, per_tenant=2)
        first = make_events("k4a", N, tenants=TENANTS)
        second = make_events("k4b", N // 2, tenants=TENANTS)
        led.expect(first + second)
        w = env.worker()
        w.wait_ready()
        env.produce_events(first)
        wait_until(lambda: len(env.receiver.snapshot()) >= N // 2, 60, "the run to be under way")
        env.broker.control("down all")
        t_down = time.monotonic()
        health = []
        while time.monotonic() - t_down < DOWN_S:
            health.append(w.http_status("/healthz"))
            self.assertTrue(w.alive(), "the worker died while the brokers were down")
            time.sleep(1.0)  # the outage lasts DOWN_S seconds by design
        consumed = w.metric("herald_events_consumed_total")
        env.broker.control("up all")
        t_up = time.time()
        # Consumption resumes when the worker consumes again (re-consuming what was not
        # committed before the outage counts: that is the work it must do first).
        wait_until(lambda: w.metric("herald_events_consumed_total") > consumed, 60,
                   "consumption to resume", interval=0.1)
        resume_s = time.time() - t_up
        env.produce_events(second)
        second_ids = {e["id"] for e in second}
        wait_until(lambda: any(a["id"] in second_ids for a in env.receiver.snapshot()), 60,
                   "the first delivery of the second batch", interval=0.1)
        second_s = min(a["at"] for a in env.receiver.snapshot() if a["id"] in second_ids) - t_up
        missing = led.wait_settled(120)
        res = led.check()
        all_committed = wait_all_committed(env)
        res = report("4 brokers down 30s", res, self.peak_rss(), self.elapsed(),
                     resume_seconds=round(resume_s, 1),
                     second_batch_first_delivery_seconds=round(second_s, 1),
                     healthz_during_outage=sorted(set(health)))
        self.assertTrue(w.alive())
        self.assertEqual(set(health), {200}, "the event loop stalled during the outage")
        self.assertLessEqual(resume_s, RESUME_S, "consumption resumed too late")
        self.assertEqual(missing, 0)
        assert_clean(self, res)
        self.assertTrue(all_committed, "offsets not committed to the end")
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
