#!/usr/bin/python3
"""Chaos 10: events near and over the size limits never block a partition.

Kafka refuses records over message.max.bytes (1,000,000 bytes on librdkafka's
producer by default, headers included), and a retry or dead-letter record that
can never be produced would keep its job unsettled for ever, blocking the
offset of its partition. herald therefore keeps event.max_bytes (512 KiB by
default) at least 64 KiB under the producer's limit, and dead-letters any
event over it without the body (the record names where the original bytes
are). Three events show it:

- "near": just under event.max_bytes, its first attempt fails, so its retry
  record (the event plus headers) must fit and it is delivered on attempt 2;
- "big-1m" (1,020,000 bytes) and "big-poison" (1,100,000 bytes): over the
  limit, dead-lettered once each as too_large, with an empty value and a
  herald-body-omitted header giving the original size.

Everything produced after them is delivered and every partition is committed
to its end: nothing waits behind the big records.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, assert_clean, event, make_events, report,  # noqa: E402
                    spread_tenants, standard_subs, wait_all_committed)

TENANTS = spread_tenants(4)
MAX_BYTES = 512 * 1024


def decide(path, wid, n):
    return (500 if wid == "near" and n == 1 else 204), 0.0


def sized(event_id, tenant, size):
    """An event whose compact JSON is exactly size bytes."""
    e = event(event_id, "x.y", tenant, pad="")
    e["data"]["pad"] = "x" * (size - len(json.dumps(e, separators=(",", ":"))))
    assert len(json.dumps(e, separators=(",", ":"))) == size
    return e


class Oversized(ChaosCase):
    def test_oversized_events_do_not_block_partitions(self):
        env = self.make_env("chaos10", decide=decide)
        led = standard_subs(env, TENANTS)
        near = sized("near", TENANTS[0], MAX_BYTES - 64)
        big = [sized("big-1m", TENANTS[0], 1020000), sized("big-poison", TENANTS[1], 1100000)]
        lines = "".join("%s\x01%s\n" % (e["tenant"], json.dumps(e, separators=(",", ":")))
                        for e in [near] + big)
        r = subprocess.run(["kcat", "-P", "-b", env.broker.bootstrap, "-t", "herald.events",
                            "-K", "\\x01", "-X", "message.max.bytes=4000000"],
                           input=lines, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        after = make_events("k10", 40, tenants=TENANTS)
        led.expect([near] + after)
        env.produce_events(after)
        w = env.worker()
        w.wait_ready()
        missing = led.wait_settled(45)
        all_committed = wait_all_committed(env, timeout=20)
        res = report("10 oversized records", led.check(), self.peak_rss(), self.elapsed(),
                     all_committed=all_committed,
                     produce_retries=w.metric("herald_produce_retries_total"))
        self.assertEqual(missing, 0)
        self.assertTrue(all_committed, "a partition is blocked behind an oversized record")
        assert_clean(self, res, allow_dlq=True)
        # "near" took two attempts, its retry record fitting under the producer's limit.
        near_arrivals = [a for a in env.receiver.snapshot() if a["id"] == "near"]
        self.assertEqual([a["status"] for a in near_arrivals][:2], [500, 204])
        # The two big events: one dead letter each, too_large, body omitted, source named.
        dead = [m for m in env.dlq() if m["headers"].get("herald-reason") == "too_large"]
        self.assertEqual(len(dead), 2, [m["headers"] for m in env.dlq()])
        sizes = sorted(int(m["headers"]["herald-body-omitted"]) for m in dead)
        self.assertEqual(sizes, [1020000, 1100000])
        for m in dead:
            self.assertIn(m["payload"], (None, ""))
            self.assertEqual(m["headers"]["herald-source-topic"], "herald.events")
            self.assertIn("herald-source-offset", m["headers"])
        self.assertEqual(w.metric("herald_produce_retries_total"), 0)
        self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
