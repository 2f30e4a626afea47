"""Integration test harness: real peers on loopback, dynamic ports, bounded waits.

Every test gets a private redis-server (temp dir, free port), a `herald broker`
(librdkafka's mock cluster: a real Kafka-protocol server), loopback HTTP
receivers that verify every signature with verifiers.py (an implementation
written from the schemes' documents, not herald's code), and one or more
`herald run` workers. Events are produced and topics read back with kcat, an
independent Kafka client. Nothing here sleeps blindly: waits poll a condition
until a deadline and fail with what was last seen.

Environment: HERALD_BIN (the herald binary), set by ctest.
"""

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verifiers  # noqa: E402

HERALD = os.environ.get("HERALD_BIN", "herald")
TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value; raises with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


class Redis:
    def __init__(self, workdir, password=None):
        self.port = free_port()
        self.password = password  # optional requirepass; url and cli() then carry it
        self.dir = os.path.join(workdir, "redis-%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.start()

    @property
    def url(self):
        if self.password:
            return "redis://:%s@127.0.0.1:%d/0" % (self.password, self.port)
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", os.path.join(self.dir, "log")]
            + (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli("PING") == "PONG", 10, "redis-server to answer")

    def cli(self, *args):
        env = dict(os.environ, REDISCLI_AUTH=self.password) if self.password else None
        r = subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10, env=env)
        return r.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


class Broker:
    """`herald broker --control`: prints its bootstrap servers, takes fault commands on stdin."""

    def __init__(self, workdir, partitions=4, topics=None):
        args = [HERALD, "broker", "--partitions", str(partitions), "--control"]
        if topics:
            args += ["--topics", ",".join(topics)]
        self.log = open(os.path.join(workdir, "broker.log"), "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        if not self.bootstrap:
            raise AssertionError("herald broker printed no bootstrap servers")

    def control(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise AssertionError("broker command %r failed: %r" % (command, answer))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            f.close()


def produce(bootstrap, topic, messages, key_sep="\x01"):
    """Produces (key, value) pairs (key may be None) with kcat; values are one line each."""
    lines = []
    for key, value in messages:
        if isinstance(value, (dict, list)):
            value = json.dumps(value, separators=(",", ":"))
        assert "\n" not in value, "kcat line protocol: one message per line"
        lines.append("%s%s%s" % (key or "", key_sep, value))
    r = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\\x01",
                        "-X", "enable.idempotence=true", "-X", "acks=all"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("kcat produce failed: %s" % r.stderr)


def consume_all(bootstrap, topic, timeout=10):
    """Every message of a topic (from the beginning) as dicts: key, payload, headers."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-J", "-e", "-q",
                        "-m", str(timeout)], capture_output=True, text=True, timeout=timeout + 20)
    out = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if line:
            m = json.loads(line)
            # kcat -J gives headers as a flat [name, value, name, value, ...] list.
            h = m.get("headers") or []
            if isinstance(h, list):
                m["headers"] = {h[i]: h[i + 1] for i in range(0, len(h) - 1, 2)}
            out.append(m)
    return out


class Receiver:
    """A loopback HTTP receiver that verifies each request's signature.

    behaviour(path, webhook_id, n) -> (status, headers dict, body bytes) decides the
    answer; n counts deliveries of that webhook-id to that path (1-based).
    `subs` maps a path to (scheme, secrets, header_name) for verification.
    """

    def __init__(self, behaviour=None, delay=0.0):
        self.lock = threading.Lock()
        self.arrivals = []
        self.counts = {}
        self.behaviour = behaviour or (lambda path, wid, n: (204, {}, b""))
        self.delay = delay
        self.subs = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_request(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                receiver._handle(self, body)

            do_POST = do_PUT = do_PATCH = do_request

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                # herald closing a connection on a timeout is expected here, not news.
                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def expect(self, path, scheme="standard-webhooks", secrets=(TEST_SECRET,), header_name=None):
        self.subs[path] = (scheme, list(secrets), header_name)

    def _handle(self, handler, body):
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path
        wid = headers.get("webhook-id")
        scheme, secrets, header_name = self.subs.get(path, ("standard-webhooks", [TEST_SECRET],
                                                            None))
        ok, reason = verifiers.verify(scheme, secrets, headers, body, header_name=header_name)
        with self.lock:
            n = self.counts.get((path, wid), 0) + 1
            self.counts[(path, wid)] = n
            status, extra, rbody = self.behaviour(path, wid, n)
            self.arrivals.append({
                "path": path, "id": wid, "n": n, "status": status, "verified": ok,
                "reason": reason, "headers": headers, "body": body, "method": handler.command,
                "at": time.time()})
        if self.delay:
            time.sleep(self.delay)
        handler.send_response(status)
        for k, v in extra.items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(rbody)))
        handler.end_headers()
        handler.wfile.write(rbody)

    def snapshot(self):
        with self.lock:
            return list(self.arrivals)

    def delivered_ids(self, path=None):
        """webhook-ids answered 2xx (optionally for one path)."""
        return {a["id"] for a in self.snapshot()
                if 200 <= a["status"] < 300 and (path is None or a["path"] == path)}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Worker:
    """One `herald run` process with a config file in the test's directory."""

    counter = 0

    def __init__(self, workdir, bootstrap, redis_url, extra=None, env=None):
        Worker.counter += 1
        self.name = "worker%d" % Worker.counter
        self.workdir = workdir
        self.http_port = free_port()
        self.config = {
            "kafka.bootstrap.servers": bootstrap,
            "kafka.group.id": "herald-test",
            # The mock coordinator waits for a session timeout after the last member leaves.
            "kafka.session.timeout.ms": "6000",
            "kafka.heartbeat.interval.ms": "500",
            "kafka.topic.metadata.refresh.interval.ms": "2000",
            "redis.url": redis_url,
            "delivery.allow_cidrs": "127.0.0.0/8",
            "http.listen": "127.0.0.1:%d" % self.http_port,
            "retry.schedule": "200ms,400ms,800ms",
            "shutdown.timeout": "10s",
            "log.level": "info",
        }
        self.config.update(extra or {})
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.log_path = None
        self.runs = 0

    def start(self):
        self.runs += 1
        path = self.config_path = os.path.join(self.workdir, "%s.conf" % self.name)
        with open(path, "w") as f:
            for k, v in self.config.items():
                f.write("%s = %s\n" % (k, v))
        self.log_path = os.path.join(self.workdir, "%s.run%d.log" % (self.name, self.runs))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([HERALD, "run", "--config", path], stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=self.env)
        return self

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http_port, timeout=5) as r:
            return r.read().decode()

    def metric(self, name, labels=None):
        """Sum of the samples of one metric whose labels include `labels`."""
        total = 0.0
        found = False
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            base = series.split("{", 1)[0]
            if base != name:
                continue
            if labels and not all('%s="%s"' % kv in series for kv in labels.items()):
                continue
            total += float(value)
            found = True
        return total if found else None

    def http_status(self, path):
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path),
                                        timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def wait_ready(self, timeout=60):
        wait_until(lambda: self.http_status("/readyz") == 200 and
                   (self.metric("herald_partitions_assigned") or 0) > 0,
                   timeout, "%s to join the group and get partitions" % self.name, interval=0.2)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
        if self.proc:
            self.log.close()

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out


def herald(*args, input=None, env=None, check=True):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([HERALD] + [str(a) for a in args], input=input, capture_output=True,
                       text=True, timeout=60, env=e)
    if check and r.returncode != 0:
        raise AssertionError("herald %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                            r.stderr))
    return r


def put_sub(redis_url, doc):
    return herald("subs", "--redis", redis_url, "put", "-", input=json.dumps(doc))


def subscription(sub_id, tenant, url, events, **extra):
    doc = {"id": sub_id, "tenant": tenant, "url": url, "events": events,
           "secrets": [TEST_SECRET]}
    doc.update(extra)
    return doc


def event(event_id, type_, tenant, **data):
    return {"id": event_id, "type": type_, "tenant": tenant,
            "timestamp": "2024-10-01T18:30:03Z", "data": data or {"n": event_id}}


class Env:
    """A test environment: temp dir, Redis, broker, receiver, workers; torn down in reverse."""

    def __init__(self, name, partitions=4, topics=None, receiver_delay=0.0, behaviour=None,
                 redis_password=None):
        self.dir = tempfile.mkdtemp(prefix="herald-%s-" % name)
        self.stack = contextlib.ExitStack()
        self.keep = os.environ.get("HERALD_KEEP_TEST_DIRS") == "1"
        try:
            self.redis = Redis(self.dir, redis_password)
            self.stack.callback(self.redis.stop)
            self.broker = Broker(self.dir, partitions, topics)
            self.stack.callback(self.broker.stop)
            self.receiver = Receiver(behaviour, receiver_delay)
            self.stack.callback(self.receiver.stop)
            self.workers = []
        except BaseException:
            self.close()
            raise

    def worker(self, extra=None, env=None, start=True):
        w = Worker(self.dir, self.broker.bootstrap, self.redis.url, extra, env)
        self.workers.append(w)
        self.stack.callback(w.kill9)
        if start:
            w.start()
        return w

    def produce(self, messages, topic="herald.events"):
        produce(self.broker.bootstrap, topic, messages)

    def produce_events(self, events, topic="herald.events"):
        produce(self.broker.bootstrap, topic, [(e.get("tenant"), e) for e in events])

    def dlq(self):
        return consume_all(self.broker.bootstrap, "herald.dlq")

    def close(self, failed=False):
        self.stack.close()
        if failed or self.keep:
            sys.stderr.write("test files kept in %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
