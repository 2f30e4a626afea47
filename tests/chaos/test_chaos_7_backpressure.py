#!/usr/bin/python3
"""Chaos 7: backpressure. A receiver that answers every request after 200 ms,
and a large backlog waiting in Kafka before the worker starts.

delivery.max_in_flight is 32 (and so is the per-endpoint cap: with a window
of only 200 unsettled jobs, one partition's batch, here one tenant's, can fill
it) and delivery.max_pending 200, so the worker can deliver about 160 requests
a second and must hold the rest of the backlog in Kafka, not in memory. The scenario passes when:

- lost = 0 and no duplicates (nothing failed, nothing restarted);
- requests in flight never exceed the cap, seen from both sides: the
  receiver's own count of concurrent requests, and herald's gauge;
- jobs in memory stay bounded (consumption pauses), and RSS stays flat: the
  late part of the run uses no more memory than the early part plus slack;
- no involuntary rebalance: the worker is assigned its partitions once and
  never loses them, although max.poll.interval.ms is only 10 s and the
  partitions sit paused for most of the run;
- the pace is the cap's: the backlog drains at no less than 2/3 of
  max_in_flight / 200 ms.

A second run keeps the defaults (max_pending 20000, so consumption never
pauses) and a receiver that answers at once: a backlog of 3000 events on one
partition must drain without stalling. (librdkafka signals its queue only
when it goes from empty to non-empty; a worker that polled one batch of 1000
and waited for the next signal stopped for good after the first batch.)
"""

import os
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, assert_clean, make_events, report, spread_tenants,  # noqa: E402
                    standard_subs)

N = 2000
CAP = 32
MAX_PENDING = 200
DELAY = 0.2
TENANTS = spread_tenants(4)


class Backpressure(ChaosCase):
    def test_slow_receiver_large_backlog(self):
        env = self.make_env("chaos7", decide=lambda path, wid, n: (204, DELAY))
        led = standard_subs(env, TENANTS)
        events = make_events("k7", N, tenants=TENANTS)
        led.expect(events)
        env.produce_events(events)  # the whole backlog is waiting before the worker starts
        w = env.worker({"delivery.max_in_flight": str(CAP),
                        "delivery.max_in_flight_per_endpoint": str(CAP),
                        "delivery.max_pending": str(MAX_PENDING),
                        "kafka.max.poll.interval.ms": "10000"})
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.wait(0.5):
                try:
                    samples.append({k: w.metric("herald_" + k) for k in (
                        "deliveries_in_flight", "jobs_pending", "partitions_assigned",
                        "consumption_paused")})
                except OSError:
                    pass

        w.wait_ready()
        t_ready = time.monotonic()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        missing = led.wait_settled(N / (CAP / DELAY) * 4 + 30)
        took = time.monotonic() - t_ready
        stop.set()
        sampler.join(5)
        res = led.check()

        rss = [kb for _, kb in self.rss.samples if kb]
        third = max(1, len(rss) // 3)
        early = statistics.median(rss[:third])
        late_max = max(rss[third:]) if len(rss) > third else early
        log = w.log_text()
        assigned_lines = log.count("assigned 16 partition(s)")
        peak_inflight = max((s["deliveries_in_flight"] or 0) for s in samples)
        peak_pending = max((s["jobs_pending"] or 0) for s in samples)
        res = report("7 backpressure", res, self.peak_rss(), self.elapsed(),
                     deliver_seconds=round(took, 1),
                     receiver_peak_concurrency=env.receiver.peak_active,
                     herald_peak_in_flight=int(peak_inflight), peak_jobs_pending=int(peak_pending),
                     rss_early_kb=int(early), rss_late_max_kb=int(late_max),
                     paused_seen=any(s["consumption_paused"] for s in samples))
        self.assertEqual(missing, 0)
        assert_clean(self, res)
        self.assertEqual(res["duplicates"], 0)
        self.assertLessEqual(env.receiver.peak_active, CAP, "concurrent requests over the cap")
        self.assertLessEqual(peak_inflight, CAP)
        self.assertLessEqual(peak_pending, MAX_PENDING, "more jobs in memory than max_pending")
        # The cap, not a stall, sets the pace: at least 2/3 of CAP / DELAY requests a second.
        self.assertLess(took, N / (CAP / DELAY) * 1.5, "the backlog drained too slowly")
        self.assertTrue(res["paused_seen"], "consumption never paused for backpressure")
        self.assertLess(late_max - early, 16 * 1024, "RSS grew during the run")
        self.assertEqual(assigned_lines, 1, "the partitions were assigned more than once")
        self.assertNotIn("revoked", log)
        self.assertNotIn("lost ", log)
        self.assertTrue(all(s["partitions_assigned"] == 16 for s in samples))
        self.assertEqual(w.stop(), 0)

    def test_backlog_drains_without_stalling(self):
        env = self.make_env("chaos7b")
        led = standard_subs(env, TENANTS[:1])
        events = make_events("k7b", 3000, tenants=TENANTS[:1])
        led.expect(events)
        env.produce_events(events)
        w = env.worker()
        w.wait_ready()
        t0 = time.monotonic()
        missing = led.wait_settled(60)
        took = time.monotonic() - t0
        res = report("7b backlog without backpressure", led.check(), self.peak_rss(),
                     self.elapsed(), deliver_seconds=round(took, 1))
        self.assertEqual(missing, 0, "the backlog stalled")
        assert_clean(self, res)
        self.assertEqual(res["duplicates"], 0)
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
