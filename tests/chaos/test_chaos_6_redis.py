#!/usr/bin/python3
"""Chaos 6: Redis killed and restarted, then Redis frozen (SIGSTOP) for 10 s.

Subscriptions live in Redis; the worker caches each tenant's after one
lookup. Tenants the worker has already looked up ("warm") and tenants it has
never seen ("cold") both receive events while Redis is away, so the cold
ones cannot be matched until it returns. delivery.max_pending is 300, well
below the number of events that pile up. The scenario passes when:

- no event is settled without a successful lookup: while Redis is away no
  cold event is delivered, dropped as unmatched, or committed (the committed
  offsets never pass an undelivered event), and herald_events_unmatched_total
  stays 0;
- warm tenants keep being delivered from the in-process cache while Redis
  is dead;
- memory stays bounded: jobs and waiting events stay under max_pending
  (consumption pauses) and RSS stays small;
- recovery within 5 s: the first waiting cold event is delivered within 5 s
  of Redis answering again, after the kill and after the freeze;
- lost = 0, no duplicates, everything committed at the end.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, assert_clean, event_offsets, committed, make_events,  # noqa: E402
                    metric, report, spread_tenants, standard_subs, wait_all_committed,
                    wait_until)

MAX_PENDING = 300
RECOVER_S = 5
PAUSE_S = 10
ALL = spread_tenants(12)
WARM, COLD1, COLD2 = ALL[0:4], ALL[4:8], ALL[8:12]


class RedisFaults(ChaosCase):
    def delivered(self, ids):
        return {a["id"] for a in self.env.receiver.snapshot()
                if a["status"] == 204 and a["id"] in ids}

    def test_redis_killed_and_frozen(self):
        env = self.make_env("chaos6")
        led = standard_subs(env, ALL)
        env.redis.cli("SAVE")  # so the restarted redis-server comes back with the subscriptions
        warm0 = make_events("k6w0", 400, tenants=WARM)
        cold1 = make_events("k6c1", 800, tenants=COLD1)
        warm1 = make_events("k6w1", 200, tenants=WARM)
        warm2 = make_events("k6w2", 200, tenants=WARM)
        cold2 = make_events("k6c2", 800, tenants=COLD2)
        warm3 = make_events("k6w3", 200, tenants=WARM)
        for batch in (warm0, cold1, warm1, warm2, cold2, warm3):
            led.expect(batch)
        w = env.worker({"delivery.max_pending": str(MAX_PENDING)})
        peak = {"jobs_pending": 0}
        stop = threading.Event()

        def sample():
            while not stop.wait(0.25):
                v = metric(w, "herald_jobs_pending")
                if v is not None:
                    peak["jobs_pending"] = max(peak["jobs_pending"], v)

        threading.Thread(target=sample, daemon=True).start()
        w.wait_ready()
        env.produce_events(warm0)
        wait_until(lambda: len(self.delivered({e["id"] for e in warm0})) == len(warm0), 60,
                   "the warm tenants' first events")

        # 1. Redis killed: cold events wait, warm ones flow from the cache.
        env.redis.kill()
        # Warm events first: behind max_pending waiting cold events, a partition pauses (the
        # memory bound), and what follows them on it waits too.
        env.produce_events(warm1)
        wait_until(lambda: len(self.delivered({e["id"] for e in warm1})) == len(warm1), 30,
                   "warm tenants delivered from the cache while Redis is dead")
        env.produce_events(cold1)
        wait_until(lambda: metric(w, "herald_consumption_paused") == 1, 30,
                   "consumption to pause with events waiting for Redis")
        time.sleep(2)  # a while longer with Redis dead (deliberate fault duration)
        offsets = event_offsets(env)
        ahead_killed = led.committed_ahead(offsets, committed(env))
        early_cold1 = self.delivered({e["id"] for e in cold1})
        unmatched_killed = w.metric("herald_events_unmatched_total")
        env.redis.start()
        t_back = time.time()
        cold1_ids = {e["id"] for e in cold1}
        wait_until(lambda: self.delivered(cold1_ids), 30, "the first cold event after restart",
                   interval=0.05)
        recover_kill = min(a["at"] for a in env.receiver.snapshot()
                           if a["id"] in cold1_ids) - t_back
        wait_until(lambda: len(self.delivered(cold1_ids)) == len(cold1), 60,
                   "every cold event after the restart")

        # 2. Redis frozen for 10 s. The restart made the worker drop its cache (it cannot
        # know what changed meanwhile), so warm the warm tenants up again first.
        env.produce_events(warm2)
        wait_until(lambda: len(self.delivered({e["id"] for e in warm2})) == len(warm2), 30,
                   "warm tenants again")
        env.redis.pause()
        t_pause = time.monotonic()
        try:
            env.produce_events(warm3)
            wait_until(lambda: len(self.delivered({e["id"] for e in warm3})) == len(warm3), 8,
                       "warm tenants delivered from the cache while Redis is frozen")
            env.produce_events(cold2)
            while time.monotonic() - t_pause < PAUSE_S:
                time.sleep(0.2)  # the freeze lasts PAUSE_S seconds by design
            offsets = event_offsets(env)
            ahead_frozen = led.committed_ahead(offsets, committed(env))
            early_cold2 = self.delivered({e["id"] for e in cold2})
            unmatched_frozen = w.metric("herald_events_unmatched_total")
        finally:
            env.redis.resume()
        t_back = time.time()
        cold2_ids = {e["id"] for e in cold2}
        wait_until(lambda: self.delivered(cold2_ids), 30, "the first cold event after the freeze",
                   interval=0.05)
        recover_freeze = min(a["at"] for a in env.receiver.snapshot()
                             if a["id"] in cold2_ids) - t_back
        missing = led.wait_settled(60)
        stop.set()
        res = led.check()
        all_committed = wait_all_committed(env)
        res = report("6 redis killed / frozen", res, self.peak_rss(), self.elapsed(),
                     recover_after_kill_s=round(recover_kill, 2),
                     recover_after_freeze_s=round(recover_freeze, 2),
                     peak_jobs_pending=int(peak["jobs_pending"]),
                     cold_delivered_while_away=len(early_cold1) + len(early_cold2),
                     committed_ahead=len(ahead_killed) + len(ahead_frozen))
        self.assertEqual(early_cold1, set(), "cold events delivered while Redis was dead")
        self.assertEqual(early_cold2, set(), "cold events delivered while Redis was frozen")
        self.assertEqual(ahead_killed + ahead_frozen, [], "offsets committed past waiting events")
        self.assertEqual((unmatched_killed, unmatched_frozen), (0, 0))
        self.assertEqual(w.metric("herald_events_unmatched_total"), 0)
        self.assertLessEqual(recover_kill, RECOVER_S)
        self.assertLessEqual(recover_freeze, RECOVER_S)
        self.assertLessEqual(peak["jobs_pending"], MAX_PENDING)
        self.assertEqual(missing, 0)
        assert_clean(self, res)
        self.assertEqual(res["duplicates"], 0)
        self.assertTrue(all_committed, "offsets not committed to the end")
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
