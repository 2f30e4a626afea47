#!/usr/bin/env python3
"""herald's benchmark driver (bench/README.md). bench/run installs, builds and starts it.

It starts every peer itself on loopback: a private redis-server, `herald broker`
(librdkafka's mock Kafka cluster, in its own process), bench_receiver (a C
epoll receiver answering 204) and, per scenario, one `herald run` with its own
consumer group, events topic and retry topics. Events come from bench_producer
and carry their creation time, which the receiver subtracts from the arrival
time. Measured from outside the worker: deliveries from the receiver's
counters, CPU from /proc/<pid>/stat, memory from /proc/<pid>/status.

Scenarios (issue 8): P1 drain a backlog, P2 fan-out 10 and 100, P3 open-loop
latency at 10 % and 50 % of P1's rate, P4 memory per in-flight delivery, P5 idle
RSS, P6 one hung subscription among ten; plus the ceiling: wrk against the same
receiver with as many connections and the same bytes.
"""

import argparse
import datetime
import json
import mmap
import os
import platform
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TICK = os.sysconf("SC_CLK_TCK")
EVENT_BYTES = 1024
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))
RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"
RETRY_TIERS = ["5s", "5m", "30m", "2h", "5h", "10h"]

# bench_receiver's stats file: uint64 words (tests/tools/bench_receiver.c).
S_MAGIC, S_REQUESTS, S_ANSWERED, S_LAT_SAMPLES, S_CONNS_OPEN, S_CONNS_TOTAL = 0, 1, 2, 3, 4, 5
S_BYTES_IN, S_SLOW_ANSWERED, S_HANG_RECEIVED, S_OTHER_ANSWERED, S_SLOW_WAITING = 6, 7, 8, 9, 10
S_PATHS, NPATHS = 16, 1024
S_HIST = S_PATHS + NPATHS
HIST_SUB_BITS = 6
HIST_SUB = 1 << HIST_SUB_BITS
HIST_BUCKETS = HIST_SUB + 36 * HIST_SUB
S_WORDS = S_HIST + HIST_BUCKETS

TARGETS = {
    "p1_rate": 30000, "p1_cpu_us": 30, "p2_ratio": 0.9, "p3_p99_ms_10": 10.0,
    "p4_kb_per_inflight": 48, "p5_rss_mb": 16, "p6_ratio": 0.9,
}


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise RuntimeError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


def cpu_us(pid):
    """utime + stime of a whole process (every thread), in microseconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1e6 / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def mem_kb(pid):
    """VmRSS and VmHWM in kB."""
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in out:
                    out[k] = int(line.split()[1])
    except OSError:
        pass
    return out["VmRSS"], out["VmHWM"]


def machine_busy_us():
    """CPU time spent not idle by the whole machine, in microseconds (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) * 1e6 / TICK


# --- the peers ----------------------------------------------------------------------

class Proc:
    def __init__(self, name, args, workdir, stdout=None, env=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=stdout or self.log, stderr=self.log, env=env,
                                     text=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10, sig=signal.SIGTERM):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class RecvStats:
    def __init__(self, path):
        self.f = open(path, "r+b")
        self.m = mmap.mmap(self.f.fileno(), S_WORDS * 8)

    def words(self):
        return struct.unpack_from("<%dQ" % S_WORDS, self.m, 0)

    def hist(self):
        return struct.unpack_from("<%dQ" % HIST_BUCKETS, self.m, S_HIST * 8)


def bucket_value(i):
    """Middle of histogram bucket i, in microseconds (inverse of bench_receiver's)."""
    if i < HIST_SUB:
        return float(i)
    e = (i - HIST_SUB) // HIST_SUB + HIST_SUB_BITS
    sub = (i - HIST_SUB) % HIST_SUB
    lo = (HIST_SUB + sub) << (e - HIST_SUB_BITS)
    width = 1 << (e - HIST_SUB_BITS)
    return lo + width / 2.0


def percentiles(h0, h1, ps):
    d = [b - a for a, b in zip(h0, h1)]
    n = sum(d)
    out = {}
    for p in ps:
        if n == 0:
            out[p] = None
            continue
        rank = p / 100.0 * n
        acc = 0
        for i, c in enumerate(d):
            acc += c
            if acc >= rank:
                out[p] = bucket_value(i) / 1000.0  # ms
                break
    return out, n


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.build_dir
        self.herald_bin = os.path.join(self.bin, "herald")
        self.recv_bin = os.path.join(self.bin, "tests", "bench_receiver")
        self.prod_bin = os.path.join(self.bin, "tests", "bench_producer")
        self.dir = tempfile.mkdtemp(prefix="herald-bench-")
        self.procs = []
        self.results = {"scenarios": {}}
        self.quick = args.quick
        self.machine = machine()

    def dur(self, full, quick):
        return quick if self.quick else full

    # -- set-up --

    def start_peers(self):
        scen = ["p1", "p2_10", "p2_100", "p3", "p4", "p6"]
        topics = ["herald.dlq", "herald.attempts"]
        for s in scen:
            topics.append("bench.%s" % s)
            topics += ["bench.%s.retry.%s" % (s, t) for t in RETRY_TIERS]
        self.redis_port = free_port()
        rdir = os.path.join(self.dir, "redis")
        os.makedirs(rdir)
        self.redis = Proc("redis", ["redis-server", "--port", str(self.redis_port), "--bind",
                                    "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", rdir],
                          self.dir)
        self.procs.append(self.redis)
        self.redis_url = "redis://127.0.0.1:%d/0" % self.redis_port
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(self.redis_port), "PING"],
                                          capture_output=True, text=True).stdout.strip() == "PONG",
                   10, "redis-server")
        self.broker = Proc("broker", [self.herald_bin, "broker", "--partitions", str(PARTITIONS),
                                      "--topics", ",".join(topics)], self.dir,
                           stdout=subprocess.PIPE)
        self.procs.append(self.broker)
        self.bootstrap = self.broker.proc.stdout.readline().strip()
        if not self.bootstrap:
            raise RuntimeError("herald broker printed no bootstrap servers")
        self.stats_path = os.path.join(self.dir, "receiver.stats")
        self.receiver = Proc("receiver", [self.recv_bin, "--stats", self.stats_path,
                                          "--delay-ms", "2000"], self.dir, stdout=subprocess.PIPE)
        self.procs.append(self.receiver)
        self.recv_port = int(self.receiver.proc.stdout.readline().strip())
        self.stats = RecvStats(self.stats_path)
        log("peers up: redis :%d, broker %s, receiver :%d, work dir %s" %
            (self.redis_port, self.bootstrap, self.recv_port, self.dir))

    def put_subs(self, docs):
        for doc in docs:
            r = subprocess.run([self.herald_bin, "subs", "--redis", self.redis_url, "put", "-"],
                               input=json.dumps(doc), capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise RuntimeError("herald subs put failed: %s" % r.stderr)

    def sub(self, sid, tenant, path, **extra):
        doc = {"id": sid, "tenant": tenant, "url": "http://127.0.0.1:%d%s" % (self.recv_port, path),
               "events": ["bench.*"], "secrets": [SECRET]}
        doc.update(extra)
        return doc

    def start_herald(self, scen, extra=None):
        port = free_port()
        cfg = {
            "kafka.bootstrap.servers": self.bootstrap,
            "kafka.group.id": "bench-%s" % scen,
            # The mock coordinator is slow to settle a group; a short session keeps joins quick.
            "kafka.session.timeout.ms": "6000",
            "topics.events": "bench.%s" % scen,
            "topics.retry_prefix": "bench.%s.retry." % scen,
            "topics.dlq": "herald.dlq",
            "topics.attempts": "herald.attempts",
            "retry.schedule": RETRY_SCHEDULE,
            "redis.url": self.redis_url,
            "delivery.allow_cidrs": "127.0.0.0/8",
            "http.listen": "127.0.0.1:%d" % port,
            # Only shortens the benchmark's own tear-down; no effect while measuring.
            "shutdown.timeout": "3s",
        }
        cfg.update(extra or {})
        path = os.path.join(self.dir, "herald-%s.conf" % scen)
        with open(path, "w") as f:
            for k, v in cfg.items():
                f.write("%s = %s\n" % (k, v))
        h = Proc("herald-%s" % scen, [self.herald_bin, "run", "--config", path], self.dir)
        h.http = port
        self.procs.append(h)
        expect = PARTITIONS * (1 + len(RETRY_TIERS))
        t0 = time.monotonic()
        wait_until(lambda: (not h.alive() and (_ for _ in ()).throw(
            RuntimeError("herald exited; see %s" % h.log_path))) or
            (self.http(h, "/readyz")[0] == 200 and
             (self.metric(h, "herald_partitions_assigned") or 0) >= expect),
            90, "herald %s to join and get %d partitions" % (scen, expect), interval=0.2)
        log("herald %s ready in %.1fs (pid %d)" % (scen, time.monotonic() - t0, h.pid))
        return h

    def http(self, h, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (h.http, path), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError:
            return None, ""

    def metric(self, h, name, labels=None):
        status, text = self.http(h, "/metrics")
        if status != 200:
            return None
        total, found = 0.0, False
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{", 1)[0] != name:
                continue
            if labels and not all('%s="%s"' % kv in series for kv in labels.items()):
                continue
            total += float(value)
            found = True
        return total if found else None

    def producer(self, scen, tenant, extra):
        args = [self.prod_bin, "-b", self.bootstrap, "-t", "bench.%s" % scen, "--partitions",
                str(PARTITIONS), "--size", str(EVENT_BYTES), "--tenant", tenant, "--id-prefix",
                scen] + [str(a) for a in extra]
        p = Proc("producer-%s" % scen, args, self.dir, stdout=subprocess.PIPE)
        self.procs.append(p)
        return p

    def finish_producer(self, p):
        out, _ = p.proc.communicate(timeout=60)
        p.log.close()
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": out}

    # -- sampling --

    def sample(self, herald, producer=None):
        w = self.stats.words()
        s = {"t": time.monotonic(), "w": w, "hcpu": cpu_us(herald.pid),
             "rss": mem_kb(herald.pid), "busy": machine_busy_us(),
             "others": {p.name: cpu_us(p.pid) for p in (self.broker, self.redis, self.receiver)}}
        if producer:
            s["others"]["producer"] = cpu_us(producer.pid)
        return s

    def run_window(self, herald, producer, warm, measure, paths, extra_sample=None):
        """Samples through warm-up and measurement; returns figures for the measured part."""
        samples = []
        t_start = time.monotonic()
        conns_max = 0
        marked = False
        while True:
            s = self.sample(herald, producer)
            if extra_sample:
                s.update(extra_sample())
            # Retry records written in the window: read at its two ends only (a scrape costs CPU).
            if not marked and s["t"] - t_start >= warm:
                s["retries"] = self.metric(herald, "herald_retries_enqueued_total")
                marked = True
            elif s["t"] - t_start >= warm + measure:
                s["retries"] = self.metric(herald, "herald_retries_enqueued_total")
            samples.append(s)
            conns_max = max(conns_max, s["w"][S_CONNS_OPEN]) if s["t"] - t_start >= warm else \
                conns_max
            if s["t"] - t_start >= warm + measure:
                break
            if not herald.alive():
                raise RuntimeError("herald exited; see %s" % herald.log_path)
            time.sleep(0.5)
        first = next(s for s in samples if s["t"] - t_start >= warm)
        last = samples[-1]
        f = self.figures(first, last, paths, conns_max)
        f["retries_in_window"] = (last.get("retries") or 0) - (first.get("retries") or 0)
        return f

    def figures(self, a, b, paths, conns_max=0):
        dt = b["t"] - a["t"]
        delivered = sum(b["w"][S_PATHS + i] - a["w"][S_PATHS + i] for i in paths)
        hcpu = b["hcpu"] - a["hcpu"]
        busy = b["busy"] - a["busy"]
        others = {k: b["others"][k] - a["others"].get(k, 0) for k in b["others"]}
        ours = hcpu + sum(others.values())
        f = {
            "seconds": round(dt, 2),
            "deliveries": delivered,
            "rate": delivered / dt if dt else 0,
            "herald_cpu_us_per_delivery": hcpu / delivered if delivered else None,
            "herald_cpu_cores": hcpu / dt / 1e6 if dt else 0,
            "others_cpu_us_per_delivery": {k: round(v / delivered, 2) if delivered else None
                                           for k, v in others.items()},
            "machine_busy_cores": busy / dt / 1e6 if dt else 0,
            "foreign_cpu_cores": max(0.0, (busy - ours) / dt / 1e6) if dt else 0,
            "rss_kb": b["rss"][0],
            "hwm_kb": b["rss"][1],
            "connections": conns_max,
        }
        return f

    # -- scenarios --

    def p1(self):
        log("P1: drain a backlog, one subscription per event, %d-byte events" % EVENT_BYTES)
        self.put_subs([self.sub("p1-0", "p1", "/s0")])
        h = self.start_herald("p1")
        warm, measure = self.dur(5, 3), self.dur(20, 8)
        prod = self.producer("p1", "p1", ["--window", self.args.window, "--stats", self.stats_path,
                                          "--duration", warm + measure + 1, "--linger-ms", 5])
        if self.args.profile:
            self.start_profile(h, warm, measure)
        f = self.run_window(h, prod, warm, measure, [0])
        f["producer"] = self.finish_producer(prod)
        self.finish_profile()
        f["herald_deliveries_total"] = self.metric(h, "herald_deliveries_total")
        f["retries_enqueued"] = self.metric(h, "herald_retries_enqueued_total")
        h.stop()
        self.results["scenarios"]["p1"] = f
        log("P1: %.0f deliveries/s, %.1f us herald CPU per delivery, peak RSS %.1f MB, %d conns" %
            (f["rate"], f["herald_cpu_us_per_delivery"] or 0, f["hwm_kb"] / 1024,
             f["connections"]))

    def p2(self, fan):
        scen = "p2_%d" % fan
        log("P2: fan-out, one event to %d subscriptions" % fan)
        tenant = "p2f%d" % fan
        self.put_subs([self.sub("%s-%d" % (tenant, i), tenant, "/s%d" % i) for i in range(fan)])
        h = self.start_herald(scen)
        warm, measure = self.dur(5, 3), self.dur(15, 6)
        prod = self.producer(scen, tenant, ["--window", self.args.window, "--fanout", fan,
                                            "--stats", self.stats_path, "--duration",
                                            warm + measure + 1, "--linger-ms", 5])
        f = self.run_window(h, prod, warm, measure, list(range(fan)))
        f["producer"] = self.finish_producer(prod)
        f["retries_enqueued"] = self.metric(h, "herald_retries_enqueued_total")
        h.stop()
        self.results["scenarios"][scen] = f
        log("%s: %.0f deliveries/s, %.1f us herald CPU per delivery, %d conns" %
            (scen, f["rate"], f["herald_cpu_us_per_delivery"] or 0, f["connections"]))

    def p3_p5(self):
        p1_rate = self.results["scenarios"].get("p1", {}).get("rate") or self.args.p1_rate
        log("P5: idle RSS with partitions assigned")
        self.put_subs([self.sub("p3-0", "p3", "/s0")])
        # herald broker (librdkafka's mock) holds an empty fetch for the whole max wait even when
        # data arrives meanwhile; a real broker answers as soon as there is data. Without this the
        # latency measured would be the mock's 0-100 ms wait, not herald's (README.md).
        h = self.start_herald("p3", {"kafka.fetch.wait.max.ms": str(self.args.fetch_wait_ms)})
        time.sleep(self.dur(5, 2))
        rss, hwm = mem_kb(h.pid)
        self.results["scenarios"]["p5"] = {
            "rss_kb": rss, "hwm_kb": hwm,
            "partitions": self.metric(h, "herald_partitions_assigned")}
        log("P5: idle RSS %.1f MB (%d partitions)" % (rss / 1024, PARTITIONS * 7))
        for pct in (10, 50):
            rate = max(1, int(p1_rate * pct / 100))
            log("P3: open loop at %d%% of P1 = %d events/s" % (pct, rate))
            warm, measure = self.dur(3, 2), self.dur(15, 6)
            prod = self.producer("p3", "p3", ["--rate", rate, "--duration", warm + measure,
                                              "--linger-ms", 1])
            time.sleep(warm)
            a = self.sample(h, prod)
            h0 = self.stats.hist()
            time.sleep(measure)
            b = self.sample(h, prod)
            h1 = self.stats.hist()
            f = self.figures(a, b, [0])
            pct_ms, n = percentiles(h0, h1, [50, 99, 99.9])
            f.update({"offered_rate": rate, "p50_ms": pct_ms[50], "p99_ms": pct_ms[99],
                      "p999_ms": pct_ms[99.9], "latency_samples": n})
            f["producer"] = self.finish_producer(prod)
            time.sleep(1)
            self.results["scenarios"]["p3_%d" % pct] = f
            log("P3 %d%%: %.0f/s delivered, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, "
                "%.1f us CPU/delivery" % (pct, f["rate"], f["p50_ms"] or -1, f["p99_ms"] or -1,
                                          f["p999_ms"] or -1,
                                          f["herald_cpu_us_per_delivery"] or 0))
        h.stop()

    def p4(self):
        log("P4: memory per in-flight delivery, receiver answers after 2 s")
        self.put_subs([self.sub("p4-0", "p4", "/slow0", max_in_flight=10000)])
        h = self.start_herald("p4", {"delivery.max_in_flight": "12000"})
        base_rss = mem_kb(h.pid)[0]
        levels = [1000, 2500, 5000, 7500, 10000]
        step = self.dur(6, 4)
        ramp = ",".join("%g:%g" % (lvl / 2.0, step) for lvl in levels)
        prod = self.producer("p4", "p4", ["--ramp", ramp, "--linger-ms", 5])
        t0 = time.monotonic()
        points = []
        for i, lvl in enumerate(levels):
            # Sample the last part of each step, once the 2 s pipeline is full.
            end = t0 + (i + 1) * step
            time.sleep(max(0, end - 1.2 - time.monotonic()))
            infl, rss = [], []
            while time.monotonic() < end - 0.1:
                infl.append(self.metric(h, "herald_deliveries_in_flight") or 0)
                rss.append(mem_kb(h.pid)[0])
                time.sleep(0.25)
            points.append({"target": lvl, "in_flight": sum(infl) / len(infl),
                           "rss_kb": sum(rss) / len(rss),
                           "receiver_waiting": self.stats.words()[S_SLOW_WAITING]})
            log("P4: target %d in flight: herald reports %.0f, receiver holds %d, RSS %.1f MB" %
                (lvl, points[-1]["in_flight"], points[-1]["receiver_waiting"],
                 points[-1]["rss_kb"] / 1024))
        prod_out = self.finish_producer(prod)
        hwm = mem_kb(h.pid)[1]
        h.stop(timeout=15)
        xs = [p["in_flight"] for p in points]
        ys = [p["rss_kb"] for p in points]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else None
        self.results["scenarios"]["p4"] = {
            "points": points, "base_rss_kb": base_rss, "hwm_kb": hwm, "producer": prod_out,
            "kb_per_in_flight": slope,
            "kb_per_in_flight_endpoints": (ys[-1] - ys[0]) / (xs[-1] - xs[0])
            if xs[-1] != xs[0] else None}
        log("P4: %.1f KB per in-flight delivery (slope over %d points)" % (slope or -1, n))

    def p6(self):
        """Ten subscriptions; then one starts hanging. The nine's rate after, over before."""
        log("P6: ten subscriptions, then one hangs; throughput of the other nine")
        tenant = "p6"
        docs = [self.sub("p6-%d" % i, tenant, "/s%d" % i) for i in range(10)]
        self.put_subs(docs)
        h = self.start_herald("p6")
        warm, measure = self.dur(5, 3), self.dur(15, 6)
        settle, measure_b = self.dur(3, 2), self.dur(20, 8)
        total = warm + measure + settle + measure_b + 1
        # Only the nine that stay healthy steer the producer, so its backlog means the same
        # number of events before and after the tenth hangs.
        prod = self.producer("p6", tenant, ["--window", self.args.window, "--fanout", 9,
                                            "--count-paths", 9, "--stats", self.stats_path,
                                            "--duration", total, "--linger-ms", 5])
        before = self.run_window(h, prod, warm, measure, list(range(9)))
        # The tenth endpoint now hangs: requests are read and never answered.
        self.put_subs([self.sub("p6-9", tenant, "/hang9")])
        after = self.run_window(h, prod, settle, measure_b, list(range(9)))
        f = {"before": before, "after": after,
             "ratio": after["rate"] / before["rate"] if before["rate"] else None}
        f["producer"] = self.finish_producer(prod)
        f["hung_requests"] = self.stats.words()[S_HANG_RECEIVED]
        f["breakers_open"] = self.metric(h, "herald_breakers_open")
        h.stop(timeout=15)
        base = self.results["scenarios"].get("p2_10", {}).get("rate")
        f["ratio_to_p2_10"] = after["rate"] / (0.9 * base) if base else None
        self.results["scenarios"]["p6"] = f
        log("P6: the nine get %.0f deliveries/s while the tenth hangs, %.0f/s before: %.0f%%" %
            (after["rate"], before["rate"], 100 * (f["ratio"] or 0)))

    # -- the ceiling --

    def wrk_script(self):
        """A request with the bytes herald sends: the same body, the same header names and sizes."""
        body = ('{"id":"evt_wrk_000000000000","type":"bench.event","tenant":"wrk",'
                '"timestamp":"2024-10-01T18:30:03Z","data":{"created_us":"0000000000000000",'
                '"pad":"')
        body += "x" * (EVENT_BYTES - len(body) - 3) + '"}}'
        assert len(body) == EVENT_BYTES
        path = os.path.join(self.dir, "post.lua")
        with open(path, "w") as f:
            f.write('wrk.method = "POST"\n')
            f.write("wrk.body = %s\n" % json.dumps(body))
            hdrs = {"Content-Type": "application/json", "User-Agent": "herald/0.1.0",
                    "Accept": "*/*", "webhook-id": "evt_wrk_000000000000",
                    "webhook-timestamp": "1727807403",
                    "webhook-signature": "v1," + "A" * 43 + "="}
            for k, v in hdrs.items():
                f.write('wrk.headers["%s"] = "%s"\n' % (k, v))
        return path

    def wrk(self, port, conns, seconds, path="/wrk"):
        """wrk's requests/s and its own CPU µs per request (the leanest client's cost here)."""
        script = self.wrk_script()
        p = subprocess.Popen(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "-s", script,
                              "http://127.0.0.1:%d%s" % (port, path)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = p.stdout.read()
        p.stdout.close()
        # wait4 rather than wait: it returns the child's own rusage.
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        m = re.search(r"Requests/sec:\s*([\d.]+)", out)
        if not m:
            log("wrk failed: %s" % out)
            return None, None
        rate = float(m.group(1))
        cpu = None
        used = ru.ru_utime + ru.ru_stime
        if rate:
            cpu = used * 1e6 / (rate * seconds)
        return rate, cpu

    def ceilings(self):
        secs = self.dur(10, 4)
        done = {}
        for scen in ("p1", "p2_10", "p2_100"):
            f = self.results["scenarios"].get(scen)
            if not f:
                continue
            conns = max(1, f["connections"])
            if conns not in done:
                log("ceiling: wrk -t1 -c%d -d%ds against the receiver" % (conns, secs))
                done[conns] = self.wrk(self.recv_port, conns, secs)
                log("ceiling: %s req/s, wrk's own CPU %s µs per request" %
                    (fmt(done[conns][0]), fmt(done[conns][1], "%.1f")))
            f["ceiling_rate"], f["ceiling_wrk_cpu_us"] = done[conns]
            f["ceiling_ratio"] = f["rate"] / done[conns][0] if done[conns][0] else None
        self.results["ceilings"] = {str(k): {"rate": v[0], "wrk_cpu_us_per_request": v[1]}
                                    for k, v in done.items()}

    def nginx_check(self):
        """The same wrk against nginx (one worker, return 204): shows the receiver is as fast."""
        if not shutil.which("nginx"):
            log("nginx not installed; skipping the receiver comparison")
            return
        port = free_port()
        ndir = os.path.join(self.dir, "nginx")
        os.makedirs(os.path.join(ndir, "logs"), exist_ok=True)
        conf = os.path.join(ndir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/logs/error.log;\n"
                    "events { worker_connections 16384; }\n"
                    "http { access_log off; client_body_buffer_size 16k;\n"
                    "  keepalive_requests 1000000;\n"
                    "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
                    "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
                    "  server { listen 127.0.0.1:%d; location / { return 204; } } }\n" %
                    ((ndir,) * 7 + (port,)))
        n = Proc("nginx", ["nginx", "-c", conf, "-p", ndir, "-g", "daemon off;"], self.dir)
        self.procs.append(n)
        try:
            wait_until(lambda: self._connectable(port), 10, "nginx")
            conns = max(1, self.results["scenarios"].get("p1", {}).get("connections") or 64)
            secs = self.dur(5, 3)
            ng = self.wrk(port, conns, secs)[0]
            rc = self.wrk(self.recv_port, conns, secs)[0]
            self.results["receiver_check"] = {"connections": conns, "nginx_rate": ng,
                                              "bench_receiver_rate": rc}
            log("receiver check at %d conns: nginx %.0f req/s, bench_receiver %.0f req/s" %
                (conns, ng or 0, rc or 0))
        finally:
            n.stop()

    @staticmethod
    def _connectable(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    # -- profile (optional) --

    def start_profile(self, h, warm, measure):
        self.perf_data = os.path.join(self.dir, "perf.data")
        self.perf = subprocess.Popen(
            ["bash", "-c", "sleep %d; exec perf record -F 999 -p %d -o %s -- sleep %d" %
             (warm, h.pid, self.perf_data, measure - 1)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish_profile(self):
        if not getattr(self, "perf", None):
            return
        self.perf.wait(60)
        out = os.path.join(self.args.out_dir, "profile.txt")
        with open(out, "w") as f:
            subprocess.run(["perf", "report", "-i", self.perf_data, "--no-children", "--stdio",
                            "--percent-limit", "0.5", "--sort", "dso,symbol", "-g", "none"],
                           stdout=f, stderr=subprocess.DEVNULL)
        log("profile of P1 written to %s" % out)
        self.perf = None

    # -- the whole run --

    def run(self):
        t0 = time.monotonic()
        try:
            self.start_peers()
            only = set(self.args.only.split(",")) if self.args.only else None
            steps = [("p1", self.p1), ("p2_10", lambda: self.p2(10)),
                     ("p2_100", lambda: self.p2(100)), ("p3", self.p3_p5), ("p4", self.p4),
                     ("p6", self.p6), ("ceiling", self.ceilings), ("nginx", self.nginx_check)]
            for name, fn in steps:
                if only is None or name in only:
                    fn()
        finally:
            for p in reversed(self.procs):
                try:
                    p.stop(timeout=10)
                except Exception:  # noqa: BLE001 - tear-down goes on
                    pass
        self.results["seconds"] = round(time.monotonic() - t0, 1)
        return self.results


# --- reporting ------------------------------------------------------------------------

def git_commit(repo):
    r = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                       text=True)
    commit = r.stdout.strip() or "unknown"
    d = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no",
                        "--", "src", "include"], capture_output=True, text=True)
    return commit + ("+dirty" if d.stdout.strip() else "")


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cpu": model, "cores": os.cpu_count(), "mem_mb": mem, "kernel": platform.release(),
            "loadavg_at_start": load}


def fmt(v, spec="%.0f"):
    return spec % v if isinstance(v, (int, float)) and not isinstance(v, bool) else "n/a"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def table(res):
    s = res["scenarios"]
    p1, p2a, p2b = s.get("p1", {}), s.get("p2_10", {}), s.get("p2_100", {})
    p3a, p3b, p4, p5, p6 = (s.get("p3_10", {}), s.get("p3_50", {}), s.get("p4", {}),
                            s.get("p5", {}), s.get("p6", {}))
    t = TARGETS
    rows = []

    def row(name, measured, target, ok):
        rows.append("| %s | %s | %s | %s |" % (name, measured, target, verdict(ok)))

    r1 = p1.get("rate")
    c1 = p1.get("herald_cpu_us_per_delivery")
    row("P1 drain, deliveries/s", fmt(r1), "≥ %d" % t["p1_rate"],
        None if r1 is None else r1 >= t["p1_rate"])
    row("P1 herald CPU per delivery", fmt(c1, "%.1f µs"), "≤ %d µs" % t["p1_cpu_us"],
        None if c1 is None else c1 <= t["p1_cpu_us"])
    row("P1 peak RSS (VmHWM)", fmt(p1.get("hwm_kb") and p1["hwm_kb"] / 1024, "%.1f MB"), "", None)
    row("P1 ceiling: wrk, same conns and bytes", "%s req/s (%s conns, wrk %s µs CPU each); "
        "herald = %s" % (fmt(p1.get("ceiling_rate")), p1.get("connections", "?"),
                         fmt(p1.get("ceiling_wrk_cpu_us"), "%.1f"),
                         fmt(p1.get("ceiling_ratio") and 100 * p1["ceiling_ratio"], "%.0f %%")),
        "", None)
    for name, f in (("P2 fan-out 10", p2a), ("P2 fan-out 100", p2b)):
        r = f.get("rate")
        ratio = r / r1 if r and r1 else None
        row(name + ", deliveries/s", "%s (%s of P1; %s µs CPU each)" %
            (fmt(r), fmt(ratio, "%.2f×"), fmt(f.get("herald_cpu_us_per_delivery"), "%.1f")),
            "≥ 0.9 × P1", None if ratio is None else ratio >= t["p2_ratio"])
        row(name + " ceiling", "%s req/s (%s conns, wrk %s µs CPU each); herald = %s" %
            (fmt(f.get("ceiling_rate")), f.get("connections", "?"),
             fmt(f.get("ceiling_wrk_cpu_us"), "%.1f"),
             fmt(f.get("ceiling_ratio") and 100 * f["ceiling_ratio"], "%.0f %%")), "", None)
    for pct, f in ((10, p3a), (50, p3b)):
        p99 = f.get("p99_ms")
        row("P3 latency at %d%% of P1 (%s ev/s): p50 / p99 / p99.9" % (pct, fmt(f.get(
            "offered_rate"))), "%s / %s / %s ms" % (fmt(f.get("p50_ms"), "%.2f"),
                                                    fmt(p99, "%.2f"),
                                                    fmt(f.get("p999_ms"), "%.2f")),
            "p99 ≤ %g ms" % t["p3_p99_ms_10"] if pct == 10 else "",
            (None if p99 is None else p99 <= t["p3_p99_ms_10"]) if pct == 10 else None)
    k = p4.get("kb_per_in_flight")
    pts = p4.get("points") or []
    row("P4 memory per in-flight delivery (1k→10k)", "%s KB (RSS %s MB at %s in flight)" %
        (fmt(k, "%.1f"), fmt(pts and pts[-1]["rss_kb"] / 1024, "%.0f"),
         fmt(pts and pts[-1]["in_flight"])), "≤ %d KB" % t["p4_kb_per_inflight"],
        None if k is None else k <= t["p4_kb_per_inflight"])
    rss5 = p5.get("rss_kb")
    row("P5 idle RSS, %s partitions assigned" % fmt(p5.get("partitions")),
        fmt(rss5 and rss5 / 1024, "%.1f MB"), "≤ %d MB" % t["p5_rss_mb"],
        None if rss5 is None else rss5 / 1024 <= t["p5_rss_mb"])
    r6 = p6.get("ratio")
    row("P6 one of ten hangs: the nine's deliveries/s", "%s while it hangs, %s before: %s" %
        (fmt(p6.get("after", {}).get("rate")), fmt(p6.get("before", {}).get("rate")),
         fmt(r6 and 100 * r6, "%.0f %%")), "≥ 90 %",
        None if r6 is None else r6 >= t["p6_ratio"])
    return "\n".join(["| figure | measured | target | |", "|---|---|---|---|"] + rows)


def context_table(res):
    s = res["scenarios"]
    rows = ["| window | deliveries/s | herald µs/delivery | broker | redis | receiver | producer | "
            "retry records | machine busy (cores) | not ours (cores) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    flat = dict(s)
    if "p6" in s:
        flat["p6 before"] = s["p6"].get("before")
        flat["p6 hanging"] = s["p6"].get("after")
    for name in ("p1", "p2_10", "p2_100", "p3_10", "p3_50", "p6 before", "p6 hanging"):
        f = flat.get(name)
        if not f:
            continue
        o = f.get("others_cpu_us_per_delivery", {})
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f |" % (
            name, fmt(f.get("rate")), fmt(f.get("herald_cpu_us_per_delivery"), "%.1f"),
            fmt(o.get("broker"), "%.1f"),
            fmt(o.get("redis"), "%.1f"), fmt(o.get("receiver"), "%.1f"),
            fmt(o.get("producer"), "%.1f"), fmt(f.get("retries_in_window")),
            f.get("machine_busy_cores", 0),
            f.get("foreign_cpu_cores", 0)))
    return "\n".join(rows)


def write_report(res, out_dir, note):
    md_path = os.path.join(out_dir, "RESULTS.md")
    keep = ""
    if os.path.exists(md_path):
        with open(md_path) as f:
            old = f.read()
        m = re.search(r"<!-- analysis:begin -->.*?<!-- analysis:end -->", old, re.S)
        if m:
            keep = m.group(0)
    if not keep:
        keep = ("<!-- analysis:begin -->\n## What limits the missed targets\n\n"
                "(written by hand; bench/run keeps this section when it rewrites the file)\n"
                "<!-- analysis:end -->")
    m = res["machine"]
    rc = res.get("receiver_check") or {}
    lines = [
        "# herald benchmark results",
        "",
        "Produced by `bench/run` (see [README.md](README.md)); do not edit the table by hand.",
        "",
        "- date: %s" % res["date"],
        "- commit: `%s`" % res["commit"],
        "- machine: %s, %d cores, %d MB RAM, Linux %s; load average at start %s" % (
            m["cpu"], m["cores"], m["mem_mb"], m["kernel"], " ".join(m["loadavg_at_start"])),
        "- broker (`herald broker`), redis-server, bench_receiver, bench_producer and herald "
        "share the machine; %d partitions per topic, %d-byte events, standard-webhooks signing, "
        "attempt records to Kafka and Redis as in production" % (PARTITIONS, EVENT_BYTES),
        "- run took %.0f s" % res.get("seconds", 0),
    ]
    if note:
        lines.append("- **%s**" % note)
    lines += ["", table(res), "",
              "CPU per delivery of every process in the measured windows (µs), and how busy the "
              "machine was; \"not ours\" is CPU used by processes outside the benchmark:", "",
              context_table(res), ""]
    if rc:
        lines += ["Receiver check (wrk, %d connections, same request): nginx 1 worker `return 204` "
                  "%s req/s, bench_receiver %s req/s." % (rc["connections"],
                                                          fmt(rc.get("nginx_rate")),
                                                          fmt(rc.get("bench_receiver_rate"))), ""]
    p4 = res["scenarios"].get("p4", {})
    if p4.get("points"):
        lines += ["P4 ramp (receiver answers after 2 s):", "",
                  "| target in flight | herald in flight | herald RSS (MB) |", "|---|---|---|"]
        for p in p4["points"]:
            lines.append("| %d | %.0f | %.1f |" % (p["target"], p["in_flight"],
                                                   p["rss_kb"] / 1024))
        lines.append("")
    lines += [keep, ""]
    with open(md_path, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
        f.write("\n")
    # The README quotes the headline figures.
    readme = os.path.join(out_dir, "README.md")
    if os.path.exists(readme):
        s = res["scenarios"]
        p1 = s.get("p1", {})
        head = ("<!-- headline:begin -->\nLatest run (%s, commit `%s`%s): P1 %s deliveries/s at "
                "%s µs of herald CPU each (%s of the wrk ceiling), fan-out 100 %s deliveries/s, "
                "p99 %s ms at 10 %% load, %s KB per in-flight delivery, idle RSS %s MB, "
                "%s of throughput kept with a hung endpoint. Full table: "
                "[RESULTS.md](RESULTS.md).\n<!-- headline:end -->") % (
            res["date"][:10], res["commit"], "; " + note if note else "", fmt(p1.get("rate")),
            fmt(p1.get("herald_cpu_us_per_delivery"), "%.1f"),
            fmt(p1.get("ceiling_ratio") and 100 * p1["ceiling_ratio"], "%.0f %%"),
            fmt(s.get("p2_100", {}).get("rate")), fmt(s.get("p3_10", {}).get("p99_ms"), "%.2f"),
            fmt(s.get("p4", {}).get("kb_per_in_flight"), "%.1f"),
            fmt(s.get("p5", {}).get("rss_kb") and s["p5"]["rss_kb"] / 1024, "%.1f"),
            fmt(s.get("p6", {}).get("ratio") and 100 * s["p6"]["ratio"], "%.0f %%"))
        with open(readme) as f:
            text = f.read()
        text = re.sub(r"<!-- headline:begin -->.*?<!-- headline:end -->", lambda _: head, text,
                      flags=re.S)
        with open(readme, "w") as f:
            f.write(text)
    return md_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--out-dir", required=True, help="where RESULTS.md and results.json go")
    ap.add_argument("--quick", action="store_true", help="short windows, for trying the bench")
    ap.add_argument("--profile", action="store_true", help="perf record herald during P1")
    ap.add_argument("--window", type=int, default=12000,
                    help="deliveries kept outstanding in the closed-loop scenarios")
    ap.add_argument("--fetch-wait-ms", type=int, default=2,
                    help="kafka.fetch.wait.max.ms for herald (the mock broker does not cut it short)")
    ap.add_argument("--note", default="", help="a line added to RESULTS.md (e.g. machine state)")
    ap.add_argument("--only", default="", help="comma-separated steps: p1,p2_10,p2_100,p3,p4,"
                    "p6,ceiling,nginx (P3 needs P1's rate, else --p1-rate)")
    ap.add_argument("--p1-rate", type=float, default=0, help="P1's rate when P1 is not run")
    ap.add_argument("--no-report", action="store_true", help="print JSON only")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    b = Bench(args)
    res = b.run()
    res["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["commit"] = git_commit(args.repo)
    res["machine"] = b.machine
    res["quick"] = args.quick
    res["window"] = args.window
    res["partitions"] = PARTITIONS
    res["event_bytes"] = EVENT_BYTES
    if args.no_report:
        print(json.dumps(res, indent=2))
    else:
        path = write_report(res, args.out_dir, args.note)
        log("wrote %s" % path)
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
