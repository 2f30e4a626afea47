"""The chaos ledger: produce N events with unique ids, record every arrival,
and judge the run the way Jepsen-style checkers do, from the outside.

    producer   Feeder writes the events (kcat, idempotent, acks=all) in
               batches while faults are injected, so faults land mid-run.
    recorder   ChaosReceiver logs every HTTP arrival: path (subscription),
               webhook-id, the n-th arrival of that pair, the status it
               answered, whether the signature verified (verifiers.py, an
               implementation independent of herald), and when.
    checker    check() builds the ledger. An expected delivery (subscription,
               event id) is settled when it was answered 2xx at least once or
               sits in the dead-letter topic. lost = expected deliveries with
               neither, and lost = 0 is the pass criterion; duplicates (2xx
               arrivals beyond the first), dead letters, repeated dead
               letters, invalid signatures and the most attempts one delivery
               took are counted and bounded by each scenario.
    offsets    committed() reads the group's committed offsets without joining
               it (tests/tools/chaos_offsets.c), so a scenario can check that
               nothing is committed past an unsettled event and that
               everything is committed at the end.
    memory     RssSampler follows VmRSS/VmHWM of every worker process.

Each scenario prints one line `lost=... duplicates=... dlq=... peak_rss_kb=...`
and, when HERALD_CHAOS_RESULTS names a file, appends its result there as JSON.
"""

import collections
import json
import os
import random
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
import verifiers  # noqa: E402
from harness import (TEST_SECRET, Env, consume_all, event, put_sub, subscription,  # noqa: E402,F401
                     wait_until)

BUILD_DIR = os.environ.get("HERALD_BUILD_DIR") or os.path.join(
    os.path.dirname(os.environ.get("HERALD_BIN", "")), "")
GROUP = "herald-test"  # harness.Worker's group.id


def tool(name):
    path = os.path.join(BUILD_DIR, "tests", name)
    if not os.path.exists(path):
        raise AssertionError("test tool %s not built (HERALD_BUILD_DIR=%r)" % (name, BUILD_DIR))
    return path


# --- recorder ----------------------------------------------------------------------

class ChaosReceiver(harness.Receiver):
    """The harness receiver, recording compactly and counting concurrency.

    decide(path, webhook_id, n) -> (status, delay_seconds); a status of None
    means hang: hold the request (until `delay` or until the receiver stops)
    and never answer. Arrivals are dicts: path, id, n, status, verified, at.
    """

    def __init__(self, decide=None):
        self.decide = decide or (lambda path, wid, n: (204, 0.0))
        self.active = 0
        self.peak_active = 0
        self.active_by_path = collections.Counter()
        self.peak_by_path = collections.Counter()
        self.released = threading.Event()
        super().__init__()

    def _handle(self, handler, body):
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path, wid = handler.path, headers.get("webhook-id")
        ok, _ = verifiers.verify("standard-webhooks", [TEST_SECRET], headers, body)
        with self.lock:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            self.active_by_path[path] += 1
            self.peak_by_path[path] = max(self.peak_by_path[path], self.active_by_path[path])
            n = self.counts.get((path, wid), 0) + 1
            self.counts[(path, wid)] = n
            status, delay = self.decide(path, wid, n)
            self.arrivals.append({"path": path, "id": wid, "n": n, "status": status or 0,
                                  "verified": ok, "at": time.time()})
        try:
            if delay:
                self.released.wait(delay)
            if status is None:
                handler.close_connection = True
                return
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except OSError:
            pass  # the client gave up (timeout, or a killed worker)
        finally:
            with self.lock:
                self.active -= 1
                self.active_by_path[path] -= 1

    def stop(self):
        self.released.set()
        super().stop()


def chaos_env(name, decide=None, partitions=4):
    """An Env whose receiver is a ChaosReceiver."""
    env = Env(name, partitions=partitions)
    env.receiver.stop()
    env.receiver = ChaosReceiver(decide)
    env.stack.callback(env.receiver.stop)
    return env


# --- producer ------------------------------------------------------------------------

def spread_tenants(n, partitions=4):
    """n tenant names whose keys land evenly on the partitions (librdkafka's default
    partitioner is CRC-32 of the key, the same as zlib's)."""
    import zlib
    out, per = [], collections.Counter()
    i = 0
    while len(out) < n:
        name = "t%d" % i
        p = zlib.crc32(name.encode()) % partitions
        if per[p] < (n + partitions - 1) // partitions:
            per[p] += 1
            out.append(name)
        i += 1
    return out


def make_events(prefix, n, tenants=("t0",), types=("chaos.event",)):
    return [event("%s-%05d" % (prefix, i), types[i % len(types)], tenants[i % len(tenants)], i=i)
            for i in range(n)]


class Feeder(threading.Thread):
    """Produces events in batches of `batch` every `interval` seconds, in the background."""

    def __init__(self, env, events, batch=100, interval=0.1):
        super().__init__(daemon=True)
        self.env, self.events, self.batch, self.interval = env, events, batch, interval
        self.sent = 0
        self.error = None

    def run(self):
        try:
            for i in range(0, len(self.events), self.batch):
                self.env.produce_events(self.events[i:i + self.batch])
                self.sent = min(len(self.events), i + self.batch)
                time.sleep(self.interval)  # pacing, so faults land mid-run
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout=120):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the feeder did not finish in %ds" % timeout)
        if self.error:
            raise self.error


# --- memory ---------------------------------------------------------------------------

def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS and VmHWM (kB) of every live worker of env every `interval` s."""

    def __init__(self, env, interval=0.25):
        super().__init__(daemon=True)
        self.env, self.interval = env, interval
        self.samples = []  # (monotonic time, total VmRSS of live workers)
        self.peak_kb = 0   # the largest VmHWM of any one worker process
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(self.interval):
            self.sample()

    def sample(self):
        total = 0
        for w in list(self.env.workers):
            if w.proc is None or w.proc.poll() is not None:
                continue
            st = proc_status(w.proc.pid)
            total += st.get("VmRSS", 0)
            self.peak_kb = max(self.peak_kb, st.get("VmHWM", 0))
        self.samples.append((time.monotonic(), total))

    def stop(self):
        self.sample()
        self.stopping.set()
        self.join(5)
        return self.peak_kb


def metric(w, name, labels=None):
    """A worker's metric, or None while its HTTP endpoint is not (or no longer) answering."""
    try:
        return w.metric(name, labels)
    except OSError:
        return None


# --- offsets --------------------------------------------------------------------------

def committed(env, topic="herald.events", partitions=4, timeout_ms=10000):
    """{partition: (committed, low, high)}; committed is -1 when nothing is committed."""
    r = subprocess.run([tool("chaos_offsets"), env.broker.bootstrap, GROUP, topic,
                        str(partitions), str(timeout_ms)],
                       capture_output=True, text=True, timeout=timeout_ms / 1000 + 30)
    if r.returncode != 0:
        raise AssertionError("chaos_offsets failed: %s" % r.stderr.strip())
    out = {}
    for line in r.stdout.split("\n"):
        if line.strip():
            p, c, lo, hi = (int(x) for x in line.split())
            out[p] = (c, lo, hi)
    return out


def event_offsets(env, topic="herald.events"):
    """{event id: (partition, offset)} of every event in the topic."""
    out = {}
    for m in consume_all(env.broker.bootstrap, topic, timeout=15):
        try:
            out[json.loads(m["payload"])["id"]] = (m["partition"], m["offset"])
        except (ValueError, KeyError, TypeError):
            pass
    return out


def wait_all_committed(env, partitions=4, timeout=60):
    """Waits until the group's committed offset of every partition is its high watermark
    (an empty partition counts as committed); returns whether it happened in time."""
    def done():
        offs = committed(env, partitions=partitions)
        return all(c == hi or (c < 0 and lo == hi) for c, lo, hi in offs.values())
    try:
        wait_until(done, timeout, "every event to be committed", interval=1.0)
        return True
    except AssertionError:
        print("[chaos] not everything committed: %r" % committed(env, partitions=partitions))
        return False


# --- checker --------------------------------------------------------------------------

class Ledger:
    """The expected deliveries of one run and the judge of what happened to them.

    routes maps a tenant to its [(receiver path, subscription id)], every
    subscription taking every event type; expect() adds the (path, event id)
    pairs that must end delivered or dead-lettered.
    """

    def __init__(self, env, routes):
        self.env = env
        self.routes = routes
        self.sub_path = {sid: path for subs in routes.values() for path, sid in subs}
        self.expected = set()
        self.event_paths = {}
        self.last_missing = []

    def expect(self, events):
        for e in events:
            paths = [path for path, _ in self.routes[e["tenant"]]]
            self.event_paths[e["id"]] = paths
            self.expected.update((p, e["id"]) for p in paths)

    def dead_letters(self):
        out = collections.Counter()
        for m in self.env.dlq():
            h = m.get("headers") or {}
            try:
                eid = json.loads(m["payload"])["id"]
            except (ValueError, KeyError, TypeError):
                eid = None
            out[(self.sub_path.get(h.get("herald-subscription")), eid)] += 1
        return out

    def delivered(self):
        return {(a["path"], a["id"]) for a in self.env.receiver.snapshot()
                if 200 <= a["status"] < 300 and a["verified"]}

    def wait_settled(self, timeout, dlq_expected=False):
        """Waits until every expected delivery is delivered (or dead-lettered, when some are
        expected to be); returns the number still missing (0 on success)."""
        deadline = time.monotonic() + timeout
        last_dlq = 0.0
        dlq = collections.Counter()
        missing = self.expected
        while time.monotonic() < deadline:
            missing = self.expected - self.delivered()
            if missing and (dlq_expected or time.monotonic() > deadline - 10) and \
                    time.monotonic() - last_dlq > 2:
                dlq = self.dead_letters()
                last_dlq = time.monotonic()
            missing = {k for k in missing if not dlq.get(k)}
            if not missing:
                return 0
            time.sleep(0.2)
        self.last_missing = sorted(missing)
        print("[chaos] still missing after %ds: %r" % (timeout, self.last_missing[:20]), flush=True)
        return len(missing)

    def committed_ahead(self, offsets, committed_now, settled=None, at=None):
        """Events below their partition's committed offset that were not settled: every
        expected delivery of them answered 2xx (by wall time `at`), or listed in `settled`
        (a set of (path, event id) made durable otherwise, e.g. retry records). offsets is
        event_offsets(); committed_now is committed(). Must be empty: at-least-once."""
        first_ok = {}
        for a in self.env.receiver.snapshot():
            if 200 <= a["status"] < 300 and a["verified"]:
                first_ok.setdefault((a["path"], a["id"]), a["at"])
        out = []
        for eid, (part, off) in offsets.items():
            if eid not in self.event_paths:
                continue
            c = committed_now.get(part, (-1, 0, 0))[0]
            if off >= c:
                continue
            for p in self.event_paths[eid]:
                t = first_ok.get((p, eid))
                if (t is None or (at is not None and t > at)) and \
                        (settled is None or (p, eid) not in settled):
                    out.append((p, eid, part, off, c))
        return out

    def check(self, max_attempts=None):
        arrivals = self.env.receiver.snapshot()
        ok = collections.Counter()
        tries = collections.Counter()
        bad_sig = 0
        unexpected = set()
        for a in arrivals:
            key = (a["path"], a["id"])
            tries[key] += 1
            if not a["verified"]:
                bad_sig += 1
            if key not in self.expected:
                unexpected.add(key)
            if 200 <= a["status"] < 300 and a["verified"]:
                ok[key] += 1
        dlq = self.dead_letters()
        lost = sorted(k for k in self.expected if not ok[k] and not dlq[k])
        res = {
            "expected": len(self.expected),
            "delivered": sum(1 for k in self.expected if ok[k]),
            "lost": len(lost),
            "lost_sample": lost[:10],
            "duplicates": sum(n - 1 for n in ok.values() if n > 1),
            "duplicated_ids": sorted(k for k, n in ok.items() if n > 1),
            "dlq": sum(1 for k in self.expected if dlq[k]),
            "dlq_repeats": sum(n - 1 for n in dlq.values() if n > 1),
            "delivered_and_dlq": sum(1 for k in self.expected if ok[k] and dlq[k]),
            "bad_signatures": bad_sig,
            "unexpected": len(unexpected),
            "attempts": len(arrivals),
            "max_attempts_seen": max(tries.values()) if tries else 0,
        }
        if max_attempts is not None:
            res["over_max_attempts"] = sum(1 for n in tries.values() if n > max_attempts)
        return res


def standard_subs(env, tenants, per_tenant=1, **fields):
    """Puts per_tenant subscriptions (every event type) for each tenant; returns a Ledger."""
    routes = {}
    for t in tenants:
        for j in range(per_tenant):
            sid, path = "sub-%s-%d" % (t, j), "/%s/%d" % (t, j)
            put_sub(env.redis.url, subscription(sid, t, env.receiver.url(path), ["*"], **fields))
            routes.setdefault(t, []).append((path, sid))
    return Ledger(env, routes)


def report(name, res, peak_rss_kb, elapsed, **extra):
    res = dict(res)
    res.update(extra)
    res["scenario"] = name
    res["peak_rss_kb"] = peak_rss_kb
    res["seconds"] = round(elapsed, 1)
    print("\n[chaos] %s: lost=%d duplicates=%d dlq=%d peak_rss_kb=%d time=%.1fs %s" % (
        name, res["lost"], res["duplicates"], res["dlq"], peak_rss_kb, elapsed,
        " ".join("%s=%s" % kv for kv in sorted(extra.items()))), flush=True)
    path = os.environ.get("HERALD_CHAOS_RESULTS")
    if path:
        slim = {k: v for k, v in res.items() if k not in ("duplicated_ids",)}
        with open(path, "a") as f:
            f.write(json.dumps(slim, default=str) + "\n")
    return res


def assert_clean(tc, res, allow_dlq=False):
    """The common pass criteria: nothing lost, every signature valid, nothing unexpected."""
    tc.assertEqual(res["lost"], 0, "lost deliveries, e.g. %r" % (res["lost_sample"],))
    tc.assertEqual(res["bad_signatures"], 0, "arrivals with an invalid signature")
    tc.assertEqual(res["unexpected"], 0, "arrivals nobody expected")
    if not allow_dlq:
        tc.assertEqual(res["dlq"], 0, "dead letters in a run where every endpoint recovers")


class ChaosCase(unittest.TestCase):
    """A scenario: one environment, an RSS sampler, the elapsed time, teardown that keeps
    the files of a failed run."""

    env = None

    def setUp(self):
        seed = os.environ.get("HERALD_CHAOS_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        print("\n[chaos] %s seed=%d" % (self.id(), self.seed), flush=True)
        self.t0 = time.monotonic()
        self.rss = None

    def make_env(self, name, decide=None, partitions=4):
        self.env = chaos_env(name, decide, partitions)
        self.rss = RssSampler(self.env)
        self.rss.start()
        return self.env

    def tearDown(self):
        result = self._outcome.result
        failed = any(t is self for t, _ in result.errors + result.failures)
        if self.rss:
            self.rss.stop()
        if self.env:
            if failed:
                # The evidence, kept with the failed run's files.
                try:
                    with open(os.path.join(self.env.dir, "arrivals.json"), "w") as f:
                        json.dump(self.env.receiver.snapshot(), f)
                    for w in self.env.workers:
                        if w.alive():
                            with open(os.path.join(self.env.dir, w.name + ".metrics"), "w") as f:
                                f.write(w.metrics())
                except (OSError, AttributeError):
                    pass
                for w in self.env.workers:
                    sys.stderr.write("--- %s (last lines)\n" % w.log_path)
                    try:
                        sys.stderr.write("".join(w.log_text().splitlines(True)[-15:]))
                    except OSError:
                        pass
            self.env.close(failed)

    def elapsed(self):
        return time.monotonic() - self.t0

    def peak_rss(self):
        self.rss.sample()
        return self.rss.peak_kb
