#!/usr/bin/python3
"""Secrets never leak: not in logs (at debug level), metrics, attempt records,
retry or dead-letter records, nor in what the admin commands print.

A worker runs at log.level=debug (and librdkafka's conf and security debug
contexts) with a password-protected Redis, a kafka.sasl.password, and
subscriptions of every signing scheme: whsec_ secrets (two on one
subscription, as in a rotation), a whsk_ Ed25519 key, plain HMAC strings and
a bearer token in a custom header. Deliveries succeed, fail, retry and
dead-letter; invalid subscriptions whose secrets cannot be decoded are
written past `herald subs put` and skipped by the worker. Then everything
herald wrote or printed is scanned for every secret in raw form, for
whsec_/whsk_ keys as their base64 part and their decoded key bytes in hex
and base64 (standard and URL-safe, padded or not), and for plain secrets as
the hex and base64 of their bytes.

The scanner itself is checked first (each form is found when planted), and
`herald subs get --show-secrets` must show the secrets, so a scan that finds
nothing means nothing leaked rather than that nothing was looked at.
"""

import base64
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Env, consume_all, event, herald, put_sub, subscription,  # noqa: E402
                     wait_until)


def key_b64(n, seed):
    """Deterministic key bytes, so a failure names the same secret every run."""
    return base64.b64encode(bytes((seed * 31 + i * 7) % 256 for i in range(n))).decode()


WHSEC_A = "whsec_" + key_b64(32, 1)
WHSEC_B = "whsec_" + key_b64(24, 2)
WHSEC_PLAIN_SCHEME = "whsec_" + key_b64(40, 3)
WHSK = "whsk_" + key_b64(32, 4)
PLAIN_HEX = "hex-Secret-Q7f9ZkL2wP"
PLAIN_B64 = "b64-Secret-Vx3Jm8RtkQ"
PLAIN_TS = "ts-Secret-Hn4Wq1PzcN"
PLAIN_MSG = "msg-Secret-Ks8Dy5FbrT"
BEARER = "Bearer tok-Cu5Lh2Xn9Ve"
BAD_WHSEC = "whsec_!!not-base64-S3cretTail"
SHORT_WHSEC = "whsec_" + key_b64(8, 5)
PUT_REFUSED = "whsec_" + key_b64(10, 6)
REDIS_PASSWORD = "redis-Pa55word-Zq9Lm"
SASL_PASSWORD = "kafka-Sasl-Pa55-Xy7Tg"

SECRETS = [WHSEC_A, WHSEC_B, WHSEC_PLAIN_SCHEME, WHSK, PLAIN_HEX, PLAIN_B64, PLAIN_TS, PLAIN_MSG,
           BEARER, BAD_WHSEC, SHORT_WHSEC, PUT_REFUSED, REDIS_PASSWORD, SASL_PASSWORD]


def b64_forms(raw):
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return {std, std.rstrip("="), url, url.rstrip("=")}


def forms(secret):
    """Every spelling of a secret that must not appear, mapped to a label for messages."""
    out = {secret: "raw"}
    for prefix in ("whsec_", "whsk_"):
        if secret.startswith(prefix):
            body = secret[len(prefix):]
            out[body] = "base64 part"
            try:
                raw = base64.b64decode(body, validate=True)
            except ValueError:
                raw = body.encode()
            break
    else:
        raw = secret.encode()
    if len(raw) >= 8:
        out[raw.hex()] = "hex of key bytes"
        out[raw.hex().upper()] = "HEX of key bytes"
        for f in b64_forms(raw):
            out.setdefault(f, "base64 of key bytes")
    if secret.startswith("Bearer "):
        out[secret[len("Bearer "):]] = "token"
    return out


def find_leaks(text, where, secrets=SECRETS):
    leaks = []
    for secret in secrets:
        for form, label in forms(secret).items():
            if form and form in text:
                leaks.append("%s: %s of %r" % (where, label, secret))
    return leaks


class SecretsTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self._testMethodName, redis_password=REDIS_PASSWORD)

    def tearDown(self):
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if _ is self)
        self.env.close(failed)

    def test_the_scanner_finds_every_form(self):
        for secret in SECRETS:
            for form, label in forms(secret).items():
                self.assertTrue(find_leaks("xx %s yy" % form, "planted"),
                                "%s of %r is not detected" % (label, secret))
        self.assertEqual(find_leaks("nothing secret here", "clean"), [])

    def test_no_secret_in_logs_metrics_records_or_admin_output(self):
        env, rx = self.env, self.env.receiver

        def behaviour(path, wid, n):
            if path.endswith("/dead"):
                return 500, {}, b"no"
            if n == 1:
                return 503, {"Retry-After": "0"}, b"later"
            return 204, {}, b""

        rx.behaviour = behaviour
        subs = [
            subscription("s_sw", "org_s", rx.url("/sw"), ["*"], secrets=[WHSEC_A, WHSEC_B]),
            subscription("s_ed", "org_s", rx.url("/ed"), ["*"],
                         signature="standard-webhooks-ed25519", secrets=[WHSK]),
            subscription("s_hex", "org_s", rx.url("/hex"), ["*"], signature="hmac-sha256-hex",
                         secrets=[PLAIN_HEX, WHSEC_PLAIN_SCHEME],
                         headers={"Authorization": BEARER}),
            subscription("s_b64", "org_s", rx.url("/b64/dead"), ["*"],
                         signature="hmac-sha256-base64", secrets=[PLAIN_B64], max_attempts=2),
            subscription("s_ts", "org_s", rx.url("/ts"), ["*"], signature="timestamped",
                         signature_header="X-Hook-Signature", secrets=[PLAIN_TS]),
            subscription("s_msg", "org_s", rx.url("/msg/dead"), ["*"], signature="message-field",
                         payload="message", secrets=[PLAIN_MSG], max_attempts=2),
        ]
        for s in subs:
            put_sub(env.redis.url, s)
            rx.expect(s["url"].split("%d" % rx.port, 1)[1], s.get("signature", "standard-webhooks"),
                      s["secrets"], s.get("signature_header"))
        # `herald subs put` refuses an undecodable secret without echoing it.
        bad = subscription("s_refused", "org_s", rx.url("/x"), ["*"], secrets=[PUT_REFUSED])
        r = herald("subs", "--redis", env.redis.url, "put", "-", input=json.dumps(bad),
                   check=False)
        self.assertEqual(r.returncode, 1)
        outputs = {"subs put (refused)": r.stdout + r.stderr}
        # Written straight to Redis, past validation: the worker must skip them quietly.
        for i, secret in enumerate((BAD_WHSEC, SHORT_WHSEC)):
            doc = subscription("s_bad%d" % i, "org_s", rx.url("/bad"), ["*"], secrets=[secret])
            env.redis.cli("SET", "herald:sub:s_bad%d" % i, json.dumps(doc))
            env.redis.cli("SADD", "herald:tenant:org_s", "s_bad%d" % i)

        w = env.worker({"log.level": "debug", "kafka.debug": "conf,security,generic",
                        "kafka.sasl.username": "herald", "kafka.sasl.password": SASL_PASSWORD})
        w.wait_ready()
        env.produce_events([event("evt_s%d" % i, "x.y", "org_s") for i in range(3)])
        wait_until(lambda: {("/%s" % p, "evt_s%d" % i) for p in ("sw", "ed", "hex", "ts")
                            for i in range(3)} <= {(a["path"], a["id"]) for a in rx.snapshot()
                                                   if a["status"] == 204}, 60,
                   "the retried deliveries to succeed")
        wait_until(lambda: w.metric("herald_dead_letters_total",
                                    {"reason": "max_attempts_exhausted"}) == 6, 60,
                   "the failing deliveries to be dead-lettered")
        wait_until(lambda: (w.metric("herald_invalid_subscriptions_total") or 0) >= 2, 30,
                   "the undecodable secrets to be counted")
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 30, "jobs to settle")
        # Everything signed as expected, so the secrets were really in use.
        for a in rx.snapshot():
            if a["path"] != "/ed":
                self.assertTrue(a["verified"], a)

        outputs["/metrics"] = w.metrics()
        self.assertEqual(w.stop(), 0)
        log = w.log_text()
        outputs["worker log"] = log
        self.assertIn('"level":"debug"', log, "the worker really logged at debug level")
        self.assertIn('field \\"secrets[0]\\": secret after \\"whsec_\\" is not valid base64',
                      log, "the skipped subscription was logged (without its secret)")
        self.assertIn("sasl.password = [redacted]", log,
                      "librdkafka dumped its configuration, password included")

        bootstrap = env.broker.bootstrap
        topics = list_topics(bootstrap)
        self.assertIn("herald.attempts", topics)
        self.assertTrue([t for t in topics if t.startswith("herald.retry.")], topics)
        for topic in topics:
            if topic == "herald.attempts" or topic == "herald.dlq" or \
                    topic.startswith("herald.retry."):
                msgs = consume_all(bootstrap, topic)
                outputs["topic " + topic] = json.dumps(msgs)
        self.assertIn("s_sw", outputs["topic herald.attempts"])
        self.assertIn("max_attempts_exhausted", outputs["topic herald.dlq"])

        streams = env.redis.cli("--scan", "--pattern", "herald:attempts:*").split()
        self.assertGreaterEqual(len(streams), 6)
        for key in streams:
            outputs["redis " + key] = env.redis.cli("--raw", "XRANGE", key, "-", "+")

        cli = lambda *a: herald(*a, env={"HERALD_REDIS_URL": env.redis.url})  # noqa: E731
        for s in subs:
            outputs["subs get " + s["id"]] = cli("subs", "get", s["id"]).stdout
            outputs["attempts " + s["id"]] = cli("attempts", s["id"]).stdout
        outputs["subs list"] = cli("subs", "list", "--json").stdout
        conf = os.path.join(env.dir, "%s.conf" % w.name)
        r = herald("check-config", "--config", conf, check=False)
        outputs["check-config"] = r.stdout + r.stderr
        self.assertIn("kafka.sasl.password = ****", outputs["check-config"])

        # Positive control: the same command with --show-secrets does print them.
        shown = cli("subs", "get", "s_sw", "--show-secrets").stdout
        self.assertTrue(find_leaks(shown, "--show-secrets"))

        leaks = []
        for where, text in outputs.items():
            # `subs get/list` also redact credential-like custom headers (Authorization).
            leaks += find_leaks(text, where, SECRETS)
        self.assertEqual(leaks, [])


def list_topics(bootstrap):
    r = subprocess.run(["kcat", "-L", "-J", "-b", bootstrap], capture_output=True, text=True,
                       timeout=30)
    return [t["topic"] for t in json.loads(r.stdout)["topics"]]


if __name__ == "__main__":
    unittest.main(verbosity=2)
