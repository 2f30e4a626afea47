#!/usr/bin/python3
"""Chaos 2: SIGTERM under load.

Events stream in for four tenants while a fifth subscription ("/slow")
holds the first request of each of its events without answering, so there
are requests in flight that cannot finish by themselves. Mid-run the worker
gets SIGTERM. It must stop fetching, let the answerable requests finish,
hand the held ones to the retry tiers when shutdown.timeout (4 s) runs out,
commit, and exit 0 within the drain deadline. A fresh worker then finishes
the run. The checker proves:

- lost = 0 (the held deliveries arrive after the restart, from the retry tier);
- no duplicates: nothing answered 2xx before the shutdown is delivered again;
- the exit came within shutdown.timeout plus a small allowance for leaving the
  group, and the deadline hand-off really happened.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, Feeder, assert_clean, make_events, put_sub,  # noqa: E402
                    report, spread_tenants, standard_subs, subscription, wait_all_committed)

N = 3000
N_SLOW = 40
SHUTDOWN_S = 4
TENANTS = spread_tenants(4)


def decide(path, wid, n):
    if path == "/slow" and n == 1:
        return None, 120.0  # hold the request, never answer it
    return 204, 0.02  # answerable requests take a moment, so some are in flight at SIGTERM


class SigtermUnderLoad(ChaosCase):
    def test_sigterm_drains_hands_off_and_exits_in_time(self):
        env = self.make_env("chaos2", decide=decide)
        led = standard_subs(env, TENANTS)
        put_sub(env.redis.url, subscription("sub-slow", "ts", env.receiver.url("/slow"), ["*"],
                                            timeout_ms=60000))
        led.routes["ts"] = [("/slow", "sub-slow")]
        led.sub_path["sub-slow"] = "/slow"
        events = make_events("k2", N, tenants=TENANTS)
        slow = make_events("k2s", N_SLOW, tenants=["ts"])
        led.expect(events + slow)
        cfg = {"shutdown.timeout": "%ds" % SHUTDOWN_S}
        w = env.worker(cfg)
        w.wait_ready()
        env.produce_events(slow)
        feeder = Feeder(env, events, batch=150, interval=0.2)
        feeder.start()
        # Under load: the slow requests are held and the stream is flowing.
        wait_until_count = time.monotonic() + 30
        while time.monotonic() < wait_until_count:
            snap = env.receiver.snapshot()
            if sum(a["path"] == "/slow" for a in snap) >= N_SLOW // 2 and \
                    sum(a["path"] != "/slow" for a in snap) >= N // 5:
                break
            time.sleep(0.1)
        pending_at_term = w.metric("herald_jobs_pending")
        in_flight_at_term = w.metric("herald_deliveries_in_flight")
        t_term = time.monotonic()
        code = w.stop(timeout=SHUTDOWN_S + 30)
        exit_s = time.monotonic() - t_term
        t_exit = time.time()
        log = w.log_text()
        before = {(a["path"], a["id"]) for a in env.receiver.snapshot()
                  if a["status"] == 204 and a["at"] <= t_exit}

        w2 = env.worker(cfg)
        feeder.finish()
        w2.wait_ready()
        missing = led.wait_settled(90)
        res = led.check()
        all_committed = wait_all_committed(env)
        again = {(a["path"], a["id"]) for a in env.receiver.snapshot()
                 if a["status"] == 204 and a["at"] > t_exit} & before
        res = report("2 SIGTERM under load", res, self.peak_rss(), self.elapsed(),
                     exit_seconds=round(exit_s, 1), exit_code=code,
                     pending_at_sigterm=int(pending_at_term or 0),
                     in_flight_at_sigterm=int(in_flight_at_term or 0),
                     redelivered_after_restart=len(again))
        self.assertEqual(code, 0)
        self.assertLessEqual(exit_s, SHUTDOWN_S + 3, "exit took longer than the drain deadline")
        self.assertIn("shutdown deadline reached: handing", log)
        self.assertEqual(missing, 0)
        assert_clean(self, res)
        self.assertTrue(all_committed, "offsets not committed to the end")
        self.assertEqual(sorted(again), [], "delivered before SIGTERM and again after restart")
        self.assertEqual(res["duplicates"], 0)
        self.assertEqual(w2.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
