#!/usr/bin/python3
"""Chaos 3: consumer group churn, 1 -> 3 -> 1 workers during a run.

One worker starts the run; two more join while events stream in (the
cooperative-sticky assignor moves partitions to them incrementally), then
both leave with SIGTERM. delivery.max_pending is 100, so at any moment at
most about 100 jobs are unsettled on a worker. The checker proves:

- lost = 0 and every worker exits 0;
- revoked partitions commit what is settled before they go: a partition
  handed over mid-run is re-consumed by its new owner only from its first
  unsettled message, so every revocation can repeat at most the jobs that
  were unsettled at that moment (<= max_pending, plus the one message
  being handled). Duplicates <= revocations x (max_pending + 1); without the
  commit in the revocation callback the new owner would restart from the
  last auto-commit and repeat up to a second's worth of deliveries. (The
  mock coordinator refuses every commit while a rebalance is in progress,
  which a real broker does not for the current generation; partitions whose
  commits it refused are reported and left out of this bound.);
- after both leave, the remaining worker owns every partition and the group
  commits everything.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger import (ChaosCase, Feeder, assert_clean, event_offsets, make_events,  # noqa: E402
                    metric, report, spread_tenants, standard_subs, wait_all_committed,
                    wait_until)

N = 3000
MAX_PENDING = 100
TENANTS = spread_tenants(8)


def rejected_commit_partitions(log):
    """Partitions of herald.events for which the broker refused a commit (librdkafka logs
    COMMITFAIL with every partition@offset it tried)."""
    return {int(p) for line in log.splitlines() if "COMMITFAIL" in line
            for p in re.findall(r"herald\.events\[(\d+)\]@\d+\(Broker", line)}


def revocations_before_stop(log):
    """Revocations of a worker caused by rebalancing, not by its own shutdown."""
    n = 0
    for line in log.splitlines():
        if "SIGTERM: stopping fetch" in line:
            break
        if re.search(r'"(revoked|lost) [1-9][0-9]* partition', line):
            n += 1
    return n


class Churn(ChaosCase):
    def test_one_three_one(self):
        env = self.make_env("chaos3", decide=lambda path, wid, n: (204, 0.01))
        led = standard_subs(env, TENANTS)
        events = make_events("k3", N, tenants=TENANTS)
        led.expect(events)
        cfg = {"delivery.max_pending": str(MAX_PENDING)}
        w1 = env.worker(cfg)
        w1.wait_ready()
        feeder = Feeder(env, events, batch=100, interval=0.4)
        feeder.start()
        wait_until(lambda: len(env.receiver.snapshot()) >= N // 8, 30, "the run to be under way")
        w2, w3 = env.worker(cfg), env.worker(cfg)
        # 1 -> 3: both newcomers get partitions, the first worker keeps some.
        wait_until(lambda: all((metric(w, "herald_partitions_assigned") or 0) > 0
                               for w in (w1, w2, w3)), 60, "three workers sharing partitions",
                   interval=0.3)
        shared = [int(w.metric("herald_partitions_assigned")) for w in (w1, w2, w3)]
        wait_until(lambda: feeder.sent >= N * 2 // 3 or not feeder.is_alive(), 60,
                   "two thirds of the events produced", interval=0.3)
        # 3 -> 1: both leave gracefully while events still stream in, one after the other
        # (each once the group is stable again; see the module comment of the report).
        codes = [w2.stop()]
        wait_until(lambda: (metric(w1, "herald_partitions_assigned") or 0) +
                   (metric(w3, "herald_partitions_assigned") or 0) == 16, 60,
                   "the two remaining workers to own every partition", interval=0.3)
        codes.append(w3.stop())
        wait_until(lambda: metric(w1, "herald_partitions_assigned") == 16, 60,
                   "the remaining worker to own every partition", interval=0.3)
        feeder.finish()
        missing = led.wait_settled(90)
        res = led.check()
        all_committed = wait_all_committed(env)
        logs = [w.log_text() for w in (w1, w2, w3)]
        revocations = sum(revocations_before_stop(log) for log in logs)
        # The mock coordinator refuses commits while a rebalance is in progress (a real
        # broker accepts them from the current generation until the group syncs), so on a
        # partition whose commit it refused the new owner starts from an older offset. The
        # bound is judged on the partitions whose commits were all accepted.
        refused = set().union(*(rejected_commit_partitions(log) for log in logs))
        offsets = event_offsets(env)
        dups_judged = sum(1 for _, eid in res["duplicated_ids"]
                          if offsets.get(eid, (None,))[0] not in refused)
        res = report("3 group churn 1-3-1", res, self.peak_rss(), self.elapsed(),
                     partitions_when_three=shared, revocations=revocations,
                     duplicate_bound=revocations * (MAX_PENDING + 1),
                     commit_refused_partitions=sorted(refused), duplicates_judged=dups_judged)
        self.assertEqual(codes, [0, 0])
        self.assertEqual(missing, 0)
        assert_clean(self, res)
        self.assertTrue(all_committed, "offsets not committed to the end")
        self.assertGreaterEqual(revocations, 1, "no partition moved: the churn did not happen")
        self.assertLessEqual(dups_judged, revocations * (MAX_PENDING + 1),
                             "more duplicates than the jobs unsettled at the revocations")
        self.assertEqual(w1.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
