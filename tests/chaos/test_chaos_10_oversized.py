#!/usr/bin/python3
"""Chaos 10: events near and over the size limit (a known bug, expected to fail).

event.max_bytes defaults to 1 MiB, but librdkafka's producer refuses records
over message.max.bytes (1,000,000 bytes by default, headers included), and
the broker has its own limit. Two events show what follows:

- a 1,020,000-byte event, under event.max_bytes, whose first attempt fails:
  its retry record is refused ("Message size too large") and herald produces
  it again forever, so its partition never commits past it;
- a 1,100,000-byte event, over event.max_bytes, so a poison event: its
  dead-letter record carries the original bytes, is refused the same way,
  and blocks its partition forever, although a poison event must never block
  its partition.

The events behind them are delivered, but nothing is committed past the big
ones, so every restart delivers them again and the offset trackers grow.
Fixing it needs a decision (cap event.max_bytes by the producer's limit,
dead-letter oversized records without their body, or give up on a record
that can never be produced), so the test is marked as an expected failure;
when it starts passing, unittest reports the unexpected success and the
marker goes.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, event, make_events, report, spread_tenants,  # noqa: E402
                    standard_subs, wait_all_committed)

TENANTS = spread_tenants(4)


def decide(path, wid, n):
    return (500 if wid == "big-retry" and n == 1 else 204), 0.0


class Oversized(ChaosCase):
    @unittest.expectedFailure
    def test_oversized_records_do_not_block_partitions(self):
        env = self.make_env("chaos10", decide=decide)
        led = standard_subs(env, TENANTS)
        big = [event("big-retry", "x.y", TENANTS[0], pad="x" * 1020000),
               event("big-poison", "x.y", TENANTS[1], pad="x" * 1100000)]
        lines = "".join("%s\x01%s\n" % (e["tenant"], json.dumps(e, separators=(",", ":")))
                        for e in big)
        r = subprocess.run(["kcat", "-P", "-b", env.broker.bootstrap, "-t", "herald.events",
                            "-K", "\\x01", "-X", "message.max.bytes=4000000"],
                           input=lines, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        after = make_events("k10", 40, tenants=TENANTS)
        led.expect([big[0]] + after)
        env.produce_events(after)
        w = env.worker()
        w.wait_ready()
        missing = led.wait_settled(15)  # a retry takes 200 ms; far longer than the run needs
        all_committed = wait_all_committed(env, timeout=8)
        res = report("10 oversized records (expected failure)", led.check(), self.peak_rss(),
                     self.elapsed(), all_committed=all_committed,
                     produce_retries=w.metric("herald_produce_retries_total"))
        self.assertEqual(missing, 0)
        self.assertTrue(all_committed, "a partition is blocked behind an oversized record")
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
