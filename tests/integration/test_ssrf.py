#!/usr/bin/python3
"""The SSRF guard and the protocol limits, end to end.

A canary listens on loopback (127.0.0.1, 127.0.0.2 and ::1, one port) and
records every connection it gets. Subscriptions aim at it through every
spelling of a loopback address (decimal, octal, hex and short IPv4 literals,
IPv4-mapped, NAT64, 6to4, Teredo and IPv4-compatible IPv6 forms, localhost,
*.localhost, names from /etc/hosts), and at every other range herald must
not reach (private, link-local, cloud metadata, CGNAT, multicast, broadcast,
reserved, benchmarking, documentation, unspecified). The canary must see
zero connections, and each of those deliveries must be refused after
exactly one attempt, recorded with the class of the address it hit and
dead-lettered as target_refused, while a control subscription to the one
allowed address is delivered by the same worker.

Also: a redirect from an allowed receiver to an allowed canary is not
followed (a 3xx is a failed attempt); the *_proxy environment variables are
ignored; delivery.https_only refuses plain http; TLS verification of the
peer and host name is always on and delivery.ca_bundle selects the trust
anchors; non-http(s) schemes, URL credentials, CR/LF in header values and
header names that would override herald's own cannot be stored, and a bad
document written straight into Redis is skipped by the worker.
"""

import base64
import http.server
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Env, event, free_port, herald, put_sub, subscription,  # noqa: E402
                     wait_until)

CANARY_HOSTS = ("127.0.0.1", "127.0.0.2", "::1")
PROXY_PASSWORD = "pr0xy-Pa55-c4n4ry"


class Canary:
    """Listeners on CANARY_HOSTS sharing one port; records every connection they accept.

    Each connection's request line is read (when one comes within a second)
    and answered 204, so a delivery that did get through would succeed and be
    visible both here and in herald's records.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = []  # (local address, request line)
        self.stopping = False
        for _ in range(50):
            port = free_port_all(CANARY_HOSTS)
            try:
                self.socks = [listen(h, port) for h in CANARY_HOSTS]
                break
            except OSError:
                continue
        else:
            raise AssertionError("no port free on all of %s" % (CANARY_HOSTS,))
        self.port = port
        self.threads = [threading.Thread(target=self._serve, args=(s,), daemon=True)
                        for s in self.socks]
        for t in self.threads:
            t.start()

    def _serve(self, sock):
        sock.settimeout(0.2)
        while not self.stopping:
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            local = conn.getsockname()[0]
            line = b""
            try:
                conn.settimeout(1.0)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                line = data.split(b"\r\n", 1)[0]
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            except OSError:
                pass
            finally:
                conn.close()
            with self.lock:
                self.hits.append((local, line.decode("latin-1")))

    def url(self, host, path="/"):
        return "http://%s:%d%s" % (host, self.port, path)

    def snapshot(self):
        with self.lock:
            return list(self.hits)

    def stop(self):
        self.stopping = True
        for s in self.socks:
            s.close()
        for t in self.threads:
            t.join(2)


def listen(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.listen(64)
    return s


def free_port_all(hosts):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((hosts[0], 0))
        return s.getsockname()[1]


class Sink:
    """A plain HTTP receiver on any loopback address; answers 204 and records the path."""

    def __init__(self, host, status=204, headers=None):
        self.lock = threading.Lock()
        self.arrivals = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                with sink.lock:
                    sink.arrivals.append((self.path, self.headers.get("webhook-id")))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # failed TLS handshakes are the point of some tests

        self.server = Server((host, 0), Handler)
        self.host = host
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def snapshot(self):
        with self.lock:
            return list(self.arrivals)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def attempts_of(env, sub_id):
    """The attempt records of one subscription from its Redis stream, oldest first."""
    out = env.redis.cli("--raw", "XRANGE", "herald:attempts:%s" % sub_id, "-", "+")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def loopback_names():
    """Host names the system resolver maps to a non-global address (from /etc/hosts)."""
    names = set()
    try:
        with open("/etc/hosts") as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 2:
                    try:
                        addr = ipaddress.ip_address(parts[0])
                    except ValueError:
                        continue
                    if addr.is_loopback:
                        names.update(p for p in parts[1:] if p not in ("localhost",))
    except OSError:
        pass
    host = socket.gethostname()
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, 80, proto=socket.IPPROTO_TCP)}
        if addrs and not any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addrs):
            names.add(host)
    except OSError:
        pass
    return sorted(n for n in names if all(c.isalnum() or c in "-." for c in n))


def teredo(server, client):
    """A Teredo address (RFC 4380) for a server and an (obfuscated) client IPv4 address."""
    s = int(ipaddress.IPv4Address(server))
    c = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    port = 80 ^ 0xFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (s << 64) | (port << 32) | c))


class SsrfTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self._testMethodName)
        self.canary = Canary()
        self.stops = [self.canary.stop]

    def tearDown(self):
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if _ is self)
        for stop in reversed(self.stops):
            stop()
        self.env.close(failed)

    def matrix(self):
        """(name, url, class herald must name) for every target that must be refused."""
        p = self.canary.port
        lo = [
            ("v4", "http://127.0.0.1:%d/" % p),
            ("v4_other", "http://127.0.0.2:%d/" % p),
            ("decimal", "http://2130706433:%d/" % p),
            ("octal", "http://0177.0.0.1:%d/" % p),
            ("hex_short", "http://0x7f.1:%d/" % p),
            ("short", "http://127.1:%d/" % p),
            ("hex_full", "http://0x7f000001:%d/" % p),
            ("v6", "http://[::1]:%d/" % p),
            ("mapped", "http://[::ffff:127.0.0.1]:%d/" % p),
            ("mapped_hex", "http://[::ffff:7f00:1]:%d/" % p),
            ("compatible", "http://[::127.0.0.1]:%d/" % p),
            ("nat64", "http://[64:ff9b::127.0.0.1]:%d/" % p),
            ("sixtofour", "http://[2002:7f00:1::1]:%d/" % p),
            ("teredo", "http://[%s]:%d/" % (teredo("127.0.0.1", "127.0.0.1"), p)),
            ("localhost", "http://localhost:%d/" % p),
            ("localhost_upper", "http://LOCALHOST:%d/" % p),
            ("sub_localhost", "http://canary.localhost:%d/" % p),
        ]
        for i, name in enumerate(loopback_names()):
            lo.append(("hosts%d" % i, "http://%s:%d/" % (name, p)))
        out = [(n, u, "loopback") for n, u in lo]
        out += [
            ("zero", "http://0.0.0.0:%d/" % p, "unspecified"),
            ("zero_short", "http://0:%d/" % p, "unspecified"),
            ("v6_zero", "http://[::]:%d/" % p, "unspecified"),
            ("rfc1918_10", "http://10.1.2.3:%d/" % p, "private"),
            ("rfc1918_172", "http://172.16.5.4:%d/" % p, "private"),
            ("rfc1918_192", "http://192.168.1.1:%d/" % p, "private"),
            ("ula", "http://[fd12:3456::1]:%d/" % p, "private"),
            ("mapped_private", "http://[::ffff:10.0.0.1]:%d/" % p, "private"),
            ("link_local", "http://169.254.1.1:%d/" % p, "link-local"),
            ("link_local6", "http://[fe80::1]:%d/" % p, "link-local"),
            ("link_local6_zone", "http://[fe80::1%%25lo]:%d/" % p, "link-local"),
            ("metadata", "http://169.254.169.254/latest/meta-data/", "cloud-metadata"),
            ("metadata_dec", "http://2852039166/latest/meta-data/", "cloud-metadata"),
            ("metadata6", "http://[fd00:ec2::254]/latest/meta-data/", "cloud-metadata"),
            ("metadata_nat64", "http://[64:ff9b::a9fe:a9fe]/", "cloud-metadata"),
            ("cgnat", "http://100.64.0.1:%d/" % p, "shared-address-space"),
            ("multicast", "http://224.0.0.1:%d/" % p, "multicast"),
            ("multicast6", "http://[ff02::1]:%d/" % p, "multicast"),
            ("broadcast", "http://255.255.255.255:%d/" % p, "broadcast"),
            ("reserved", "http://240.0.0.1:%d/" % p, "reserved"),
            ("benchmark", "http://198.18.0.1:%d/" % p, "benchmarking"),
            ("doc1", "http://192.0.2.1:%d/" % p, "documentation"),
            ("doc2", "http://198.51.100.7:%d/" % p, "documentation"),
            ("doc3", "http://203.0.113.9:%d/" % p, "documentation"),
            ("doc6", "http://[2001:db8::1]:%d/" % p, "documentation"),
        ]
        return out

    def test_refused_everywhere_except_the_allowed_range(self):
        env = self.env
        control = Sink("127.0.0.3")
        self.stops.append(control.stop)
        cases = self.matrix()
        for name, url, _ in cases:
            put_sub(env.redis.url, subscription("x_" + name, "org_ssrf", url, ["*"],
                                                max_attempts=3, timeout_ms=3000))
        put_sub(env.redis.url, subscription("control", "org_ssrf", control.url("/ok"), ["*"]))
        # Only the control receiver's single address is opened; the canary's are not.
        w = env.worker({"delivery.allow_cidrs": "127.0.0.3/32", "retry.schedule": "300ms",
                        "delivery.connect_timeout": "1s"})
        w.wait_ready()
        env.produce_events([event("evt_ssrf_1", "probe.sent", "org_ssrf"),
                            event("evt_ssrf_2", "probe.sent", "org_ssrf")])

        wait_until(lambda: {i for _, i in control.snapshot()} >= {"evt_ssrf_1", "evt_ssrf_2"},
                   60, "the control deliveries")
        want = {"x_" + n for n, _, _ in cases}
        wait_until(lambda: (w.metric("herald_deliveries_total") or 0) >= 2 * len(cases) + 2 and
                   w.metric("herald_jobs_pending") == 0, 90,
                   "an attempt at each of the %d targets, twice" % len(cases))

        self.assertEqual(self.canary.snapshot(), [], "the canary must never be reached")
        self.assertEqual(w.metric("herald_dead_letters_total", {"reason": "target_refused"}),
                         2 * len(cases))

        for name, url, cls in cases:
            recs = attempts_of(env, "x_" + name)
            self.assertEqual(len(recs), 2, "%s (%s): one attempt per event, got %r"
                             % (name, url, recs))
            for r in recs:
                self.assertEqual(r["attempt"], 1, url)
                self.assertEqual(r["outcome"], "dead_lettered", url)
                self.assertEqual(r["reason"], "target_refused", url)
                self.assertEqual(r["status"], 0, url)
                self.assertIn("refused to connect to a %s address" % cls, r["error"],
                              "%s (%s)" % (name, url))
        dead = [m for m in env.dlq() if m["headers"].get("herald-subscription") in want]
        self.assertEqual(len(dead), 2 * len(cases))
        for m in dead:
            self.assertEqual(m["headers"].get("herald-reason"), "target_refused", m["headers"])
            self.assertEqual(m["headers"].get("herald-attempt"), "1", m["headers"])
        # Nothing was ever handed to a retry tier.
        self.assertFalse(w.metric("herald_retries_enqueued_total"))
        ok = attempts_of(env, "control")
        self.assertEqual([r["outcome"] for r in ok], ["delivered", "delivered"])

    def test_redirects_and_proxy_environment_are_not_followed(self):
        env, rx = self.env, self.env.receiver
        target = self.canary.url("127.0.0.1", "/redirected")

        def behaviour(path, wid, n):
            if not path.startswith("/redir_"):
                return 204, {}, b""
            code = int(path.strip("/").split("_")[-1])
            return code, {"Location": target}, b""

        rx.behaviour = behaviour
        for code in (301, 302, 303, 307, 308):
            put_sub(env.redis.url, subscription("redir_%d" % code, "org_r",
                                                rx.url("/redir_%d" % code), ["*"],
                                                max_attempts=2))
        # localhost is ::1 (refused here) and 127.0.0.1 (allowed): the allowed address is used,
        # and when nothing listens there the failure is an ordinary one, retried.
        put_sub(env.redis.url, subscription("mixed_ok", "org_r",
                                            "http://localhost:%d/mixed" % rx.port, ["*"]))
        closed = free_port()
        put_sub(env.redis.url, subscription("mixed_down", "org_r",
                                            "http://localhost:%d/" % closed, ["*"],
                                            max_attempts=2))
        # Positive control: the canary is reachable when a subscription names it directly.
        put_sub(env.redis.url, subscription("direct", "org_r", self.canary.url("127.0.0.1",
                                                                               "/direct"), ["*"]))
        proxy = self.canary.url("127.0.0.1", "")
        w = env.worker({"delivery.allow_cidrs": "127.0.0.1/32"},
                       env={"http_proxy": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy,
                            "HTTPS_PROXY": proxy, "all_proxy": proxy, "ALL_PROXY": proxy,
                            "no_proxy": "", "NO_PROXY": ""})
        w.wait_ready()
        env.produce_events([event("evt_r1", "x.y", "org_r")])
        wait_until(lambda: w.metric("herald_dead_letters_total",
                                    {"reason": "max_attempts_exhausted"}) == 6, 60,
                   "the redirected deliveries to run out of attempts")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 30, "jobs to settle")

        hits = self.canary.snapshot()
        self.assertEqual([line for _, line in hits], ["POST /direct HTTP/1.1"],
                         "only the direct delivery reaches the canary, not through a proxy")
        for code in (301, 302, 303, 307, 308):
            recs = attempts_of(env, "redir_%d" % code)
            self.assertEqual([(r["status"], r["outcome"]) for r in recs],
                             [(code, "retry"), (code, "dead_lettered")], code)
            got = [a for a in rx.snapshot() if a["path"] == "/redir_%d" % code]
            self.assertEqual(len(got), 2, code)
        self.assertEqual([r["outcome"] for r in attempts_of(env, "direct")], ["delivered"])
        self.assertEqual([r["outcome"] for r in attempts_of(env, "mixed_ok")], ["delivered"])
        down = attempts_of(env, "mixed_down")
        self.assertEqual([(r["outcome"], r.get("reason")) for r in down],
                         [("retry", None), ("dead_lettered", "max_attempts_exhausted")], down)
        self.assertFalse(w.metric("herald_dead_letters_total", {"reason": "target_refused"}))

    def test_configured_proxy_carries_every_request(self):
        # delivery.proxy is the only way to a proxy, and then no_proxy cannot route around it
        # (an egress proxy that filters is often the SSRF control in front of herald).
        env, rx = self.env, self.env.receiver
        put_sub(env.redis.url, subscription("proxied", "org_p", rx.url("/via-proxy"), ["*"]))
        proxy = "http://herald:%s@127.0.0.1:%d" % (PROXY_PASSWORD, self.canary.port)
        w = env.worker({"delivery.allow_cidrs": "127.0.0.1/32", "delivery.proxy": proxy},
                       env={"no_proxy": "*", "NO_PROXY": "127.0.0.1,localhost"})
        w.wait_ready()
        env.produce_events([event("evt_p1", "x.y", "org_p")])
        wait_until(lambda: attempts_of(env, "proxied"), 60, "the proxied attempt")
        self.assertEqual(rx.snapshot(), [], "the request went through the proxy, not direct")
        self.assertEqual([line for _, line in self.canary.snapshot()],
                         ["POST %s HTTP/1.1" % rx.url("/via-proxy")])
        self.assertEqual(attempts_of(env, "proxied")[0]["outcome"], "delivered")
        # The start-up log names the proxy, without its password in any form.
        log = w.log_text()
        self.assertIn("delivery.proxy = http://herald:****@127.0.0.1:%d" % self.canary.port, log)
        basic = base64.b64encode(("herald:" + PROXY_PASSWORD).encode()).decode()
        for form in (PROXY_PASSWORD, basic):
            self.assertNotIn(form, log)

    def test_https_only_tls_verification_and_ca_bundle(self):
        env, rx = self.env, self.env.receiver
        pki = make_pki(env.dir)
        good = TlsSink(pki["good_cert"], pki["good_key"])
        wrong_name = TlsSink(pki["wrong_cert"], pki["wrong_key"])
        self_signed = TlsSink(pki["self_cert"], pki["self_key"])
        for s in (good, wrong_name, self_signed):
            self.stops.append(s.stop)
        put_sub(env.redis.url, subscription("plain", "org_t", rx.url("/plain"), ["*"]))
        put_sub(env.redis.url, subscription("tls_ok", "org_t", good.url("127.0.0.1", "/ok"),
                                            ["*"]))
        put_sub(env.redis.url, subscription("tls_ok_name", "org_t",
                                            good.url("localhost", "/ok-name"), ["*"]))
        put_sub(env.redis.url, subscription("tls_wrong_name", "org_t",
                                            wrong_name.url("127.0.0.1", "/"), ["*"],
                                            max_attempts=1))
        put_sub(env.redis.url, subscription("tls_untrusted", "org_t",
                                            self_signed.url("127.0.0.1", "/"), ["*"],
                                            max_attempts=1))
        w = env.worker({"delivery.https_only": "true", "delivery.ca_bundle": pki["ca_cert"]})
        w.wait_ready()
        env.produce_events([event("evt_t1", "x.y", "org_t")])
        wait_until(lambda: (w.metric("herald_dead_letters_total") or 0) >= 3, 60,
                   "three dead letters")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 30, "jobs to settle")

        self.assertEqual(rx.snapshot(), [], "https_only: nothing is sent over plain http")
        recs = attempts_of(env, "plain")
        self.assertEqual(len(recs), 1)
        self.assertEqual((recs[0]["reason"], recs[0]["status"]), ("target_refused", 0))
        self.assertIn("https_only", recs[0]["error"])

        self.assertEqual(sorted(p for p, _ in good.snapshot()), ["/ok", "/ok-name"])
        self.assertEqual([r["outcome"] for r in attempts_of(env, "tls_ok")], ["delivered"])
        self.assertEqual(wrong_name.snapshot(), [], "a certificate for another name is refused")
        self.assertEqual(self_signed.snapshot(), [], "an untrusted certificate is refused")
        for sub_id, err in (("tls_wrong_name", "subject name"),
                            ("tls_untrusted", "certificate problem")):
            recs = attempts_of(env, sub_id)
            self.assertEqual(len(recs), 1, sub_id)
            self.assertEqual(recs[0]["reason"], "max_attempts_exhausted", sub_id)
            self.assertIn(err, recs[0]["error"], sub_id)
        dead = {m["headers"].get("herald-subscription"): m["headers"].get("herald-reason")
                for m in env.dlq()}
        self.assertEqual(dead, {"plain": "target_refused",
                                "tls_wrong_name": "max_attempts_exhausted",
                                "tls_untrusted": "max_attempts_exhausted"})

    def test_unsafe_subscriptions_cannot_be_stored(self):
        env = self.env
        p = self.canary.port
        bad = [
            ("url", {"url": "ftp://127.0.0.1:%d/" % p}),
            ("url", {"url": "file:///etc/passwd"}),
            ("url", {"url": "gopher://127.0.0.1:%d/_POST" % p}),
            ("url", {"url": "dict://127.0.0.1:%d/" % p}),
            ("url", {"url": "ldap://127.0.0.1:%d/" % p}),
            ("url", {"url": "telnet://127.0.0.1:%d/" % p}),
            ("url", {"url": "smtp://127.0.0.1:%d/" % p}),
            ("url", {"url": "ws://127.0.0.1:%d/" % p}),
            ("url", {"url": "javascript:alert(1)"}),
            ("url", {"url": "//127.0.0.1:%d/" % p}),
            ("url", {"url": "http:/127.0.0.1:%d/" % p}),
            ("url", {"url": "http://user:pass@127.0.0.1:%d/" % p}),
            ("url", {"url": "http://user@127.0.0.1:%d/" % p}),
            ("url", {"url": "http://127.0.0.1:%d/\r\nX-Injected: 1" % p}),
            ("url", {"url": "http://127.0.0.1:%d/ x" % p}),
            ("headers.X-Evil", {"headers": {"X-Evil": "a\r\nX-Injected: 1"}}),
            ("headers.X-Evil", {"headers": {"X-Evil": "a\nb"}}),
            ("headers.X-Evil", {"headers": {"X-Evil": "a\rb"}}),
            # cJSON would decode \u0000 into a NUL that silently cuts the string short.
            ("(document)", {"headers": {"X-Evil": "a\u0000b"}}),
            ("(document)", {"signature": "hmac-sha256-hex", "secrets": ["abc\u0000def"]}),
            ("(document)", {"url": "http://127.0.0.1:%d/\u0000@169.254.169.254/" % p}),
            ("headers.X-Evil", {"headers": {"X-Evil": 5}}),
            ("headers.X Evil", {"headers": {"X Evil": "1"}}),
            ("headers.X-Evil:", {"headers": {"X-Evil:": "1"}}),
            ("headers.Host", {"headers": {"Host": "169.254.169.254"}}),
            ("headers.content-length", {"headers": {"content-length": "0"}}),
            ("headers.Transfer-Encoding", {"headers": {"Transfer-Encoding": "chunked"}}),
            ("headers.Connection", {"headers": {"Connection": "close"}}),
            ("headers.User-Agent", {"headers": {"User-Agent": "x"}}),
            ("headers.webhook-signature", {"headers": {"webhook-signature": "v1,x"}}),
            ("headers.Webhook-Id", {"headers": {"Webhook-Id": "x"}}),
            ("headers.webhook-timestamp", {"headers": {"webhook-timestamp": "1"}}),
            ("headers.X-Signature", {"signature": "hmac-sha256-hex", "secrets": ["s3cret"],
                                     "headers": {"X-Signature": "forged"}}),
            ("headers.x-hook-sig", {"signature": "timestamped", "secrets": ["s3cret"],
                                    "signature_header": "X-Hook-Sig",
                                    "headers": {"x-hook-sig": "forged"}}),
            ("signature_header", {"signature": "hmac-sha256-hex", "secrets": ["s3cret"],
                                  "signature_header": "Host"}),
            ("signature_header", {"signature": "hmac-sha256-hex", "secrets": ["s3cret"],
                                  "signature_header": "X-Sig\r\nX-Injected"}),
            ("content_type", {"content_type": "application/json\r\nX-Injected: 1"}),
        ]
        for field, extra in bad:
            doc = subscription("bad", "org_u", self.canary.url("127.0.0.1"), ["*"])
            doc.update(extra)
            r = herald("subs", "--redis", env.redis.url, "put", "-", input=json.dumps(doc),
                       check=False)
            self.assertEqual(r.returncode, 1, "%r was stored: %s" % (extra, r.stdout))
            self.assertIn('field "%s"' % field, r.stderr, extra)
        # A repeated member: other JSON parsers keep the last copy, cJSON the first, so a
        # control plane could check one URL while herald used another.
        raw = ('{"id":"bad","tenant":"org_u","url":"%s","url":"https://example.com/",'
               '"events":["*"],"signature":"none"}' % self.canary.url("127.0.0.1"))
        r = herald("subs", "--redis", env.redis.url, "put", "-", input=raw, check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('field "url"', r.stderr)
        self.assertEqual(env.redis.cli("EXISTS", "herald:sub:bad"), "0")

        # A control plane that bypasses `herald subs put` gets no further: the worker
        # validates what it reads, skips it and counts it.
        for i, url in enumerate(["file:///etc/passwd", "gopher://127.0.0.1:%d/_x" % p,
                                 "dict://127.0.0.1:%d/" % p, "ftp://127.0.0.1:%d/" % p]):
            doc = subscription("raw%d" % i, "org_u", url, ["*"])
            env.redis.cli("SET", "herald:sub:raw%d" % i, json.dumps(doc))
            env.redis.cli("SADD", "herald:tenant:org_u", "raw%d" % i)
        put_sub(env.redis.url, subscription("good", "org_u", env.receiver.url("/good"), ["*"]))
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("evt_u1", "x.y", "org_u")])
        wait_until(lambda: "evt_u1" in env.receiver.delivered_ids("/good"), 60,
                   "the valid subscription's delivery")
        wait_until(lambda: (w.metric("herald_invalid_subscriptions_total") or 0) >= 4, 30,
                   "the four raw documents to be counted as invalid")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 30, "jobs to settle")
        self.assertEqual(self.canary.snapshot(), [])
        self.assertEqual(w.metric("herald_deliveries_total") or 0, 1)


# --- TLS fixtures -----------------------------------------------------------------------------

def make_pki(workdir):
    """A CA, its leaves for 127.0.0.1/localhost and for another name, and a self-signed cert."""
    d = os.path.join(workdir, "pki")
    os.makedirs(d, exist_ok=True)
    f = {k: os.path.join(d, k + ".pem") for k in (
        "ca_cert", "ca_key", "good_cert", "good_key", "wrong_cert", "wrong_key", "self_cert",
        "self_key")}

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f["ca_key"], "-out", f["ca_cert"], "-days", "2", "-subj", "/CN=herald test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
         "keyUsage=critical,keyCertSign,cRLSign")
    for leaf, san in (("good", "IP:127.0.0.1,DNS:localhost"), ("wrong", "DNS:other.example")):
        csr = os.path.join(d, leaf + ".csr")
        ext = os.path.join(d, leaf + ".ext")
        with open(ext, "w") as fh:
            fh.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                     "extendedKeyUsage=serverAuth\n" % san)
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f[leaf + "_key"], "-out", csr, "-subj", "/CN=%s" % leaf)
        ossl("x509", "-req", "-in", csr, "-CA", f["ca_cert"], "-CAkey", f["ca_key"],
             "-CAcreateserial", "-out", f[leaf + "_cert"], "-days", "2", "-extfile", ext)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f["self_key"], "-out", f["self_cert"], "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    return f


class TlsSink(Sink):
    def __init__(self, cert, key):
        super().__init__("127.0.0.1")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        # Handshakes happen in the handler threads, so a failing one cannot stall the server.
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                             do_handshake_on_connect=False)

    def url(self, host, path):
        return "https://%s:%d%s" % (host, self.port, path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
