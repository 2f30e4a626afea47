#!/usr/bin/python3
"""Every signature scheme and payload mode, end to end (issue 4).

One event reaches one subscription per scheme and each request verifies with
tests/integration/verifiers.py (written from the schemes' documents, never by
calling herald) under its own scheme, while a wrong key does not. Key
rotation: with two secrets on a subscription, a receiver holding only the old
or only the new one accepts. Payload modes: raw is the produced bytes, odd
whitespace and key order included; compact is JavaScript's
JSON.stringify(JSON.parse(raw)); data is the data member's bytes; message is
{"message": raw}. A data-mode subscription given an event without data is
dead-lettered as payload_unrenderable without a retry, and `herald subs put`
refuses a secret or option that does not fit the scheme, naming the field.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verifiers  # noqa: E402
from harness import (TEST_SECRET, Env, event, herald, put_sub, subscription,  # noqa: E402
                     wait_until)

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

OTHER_WHSEC = "whsec_" + base64.b64encode(b"another secret of 32 bytes here!").decode()
ROTATED_WHSEC = "whsec_" + base64.b64encode(b"the rotated-in secret, 32 bytes.").decode()


def ed25519_pair():
    """A fresh (whsk_ seed, whpk_ public key) pair, derived here, not by herald."""
    k = Ed25519PrivateKey.generate()
    seed = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                           serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "whsk_" + base64.b64encode(seed).decode(), "whpk_" + base64.b64encode(pub).decode()


def find_node():
    if os.access("/usr/bin/node", os.X_OK):
        return "/usr/bin/node"
    return shutil.which("node")


# A raw event with leading and trailing blanks, tabs, spaces around every
# token, escapes, raw UTF-8, integer-like keys and numbers JSON.stringify
# rewrites. Kafka values through kcat are one line, so no newlines.
RAW_EVENT = (' \t{ "type" : "post.created",\t"tenant":"org_p" ,  "data" : { "z" : 1 , "10" : '
             '"ten", "2":"two", "a" : [ 1.50 , 2e3 , -0.0 , 1E-7 , "caf\\u00e9 \\/ \u00e9" ] , '
             '"n" : null , "t" : true } , "id" : "evt_modes" , "x" : 10000000000000000000000 }  ')
# JSON.stringify(JSON.parse(RAW_EVENT)), checked against node when node exists.
RAW_EVENT_COMPACT = ('{"type":"post.created","tenant":"org_p","data":{"2":"two","10":"ten","z":1,'
                     '"a":[1.5,2000,0,1e-7,"caf\u00e9 / \u00e9"],"n":null,"t":true},'
                     '"id":"evt_modes","x":1e+22}')
# The data member's bytes exactly as they appear in RAW_EVENT.
RAW_EVENT_DATA = ('{ "z" : 1 , "10" : "ten", "2":"two", "a" : [ 1.50 , 2e3 , -0.0 , 1E-7 , '
                  '"caf\\u00e9 \\/ \u00e9" ] , "n" : null , "t" : true }')
BARE_EVENT = '{"id":"evt_bare","type":"post.bare","tenant":"org_p"}'


class SchemesTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self._testMethodName)

    def tearDown(self):
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if _ is self)
        self.env.close(failed)

    def settle(self, w, what):
        wait_until(lambda: w.metric("herald_jobs_pending") == 0, 30, what)

    def by_path(self, arrivals):
        out = {}
        for a in arrivals:
            out.setdefault(a["path"], []).append(a)
        return out

    def test_one_event_every_scheme_verifies(self):
        env, rx = self.env, self.env.receiver
        whsk, whpk = ed25519_pair()
        _, wrong_whpk = ed25519_pair()
        # herald derives the same public key a receiver is handed.
        out = herald("sign", "--scheme", "standard-webhooks-ed25519", "--secret", whsk,
                     "--public-key").stdout
        self.assertIn(whpk, out)

        # path: (scheme, subscription secrets, subscription fields, receiver keys,
        #        receiver header, a wrong key)
        cases = {
            "/sw": ("standard-webhooks", [TEST_SECRET], {}, [TEST_SECRET], None, OTHER_WHSEC),
            "/ed": ("standard-webhooks-ed25519", [whsk], {}, [whpk], None, wrong_whpk),
            "/hex": ("hmac-sha256-hex", ["plain hex secret"],
                     {"signature_header": "X-Hub-Signature-256"}, ["plain hex secret"],
                     "X-Hub-Signature-256", "plain hex secreT"),
            "/b64": ("hmac-sha256-base64", ["b64-secret"], {}, ["b64-secret"], None,
                     "b64-secret "),
            "/ts": ("timestamped", ["campsite-secret"],
                    {"signature_header": "X-Campsite-Signature"}, ["campsite-secret"],
                    "X-Campsite-Signature", "campsite"),
            "/msg": ("message-field", ["capmo-secret"],
                     {"signature_header": "X-Capmo-Signature", "payload": "message"},
                     ["capmo-secret"], "X-Capmo-Signature", "capmo-secret2"),
            "/none": ("none", [], {}, [], None, None),
        }
        for path, (scheme, secrets, fields, rkeys, header, _) in cases.items():
            put_sub(env.redis.url, subscription("s" + path.replace("/", "_"), "org_s",
                                                rx.url(path), ["post.created"],
                                                signature=scheme, secrets=secrets, **fields))
            rx.expect(path, scheme, rkeys, header)
        # A subscription of another type and one of another tenant stay silent.
        put_sub(env.redis.url, subscription("s_other_type", "org_s", rx.url("/other"),
                                            ["post.deleted"]))
        put_sub(env.redis.url, subscription("s_other_tenant", "org_t", rx.url("/tenant"), ["*"]))
        w = env.worker()
        w.wait_ready()
        ev = event("evt_schemes", "post.created", "org_s", post={"id": "pst_1", "title": "é"})
        raw = json.dumps(ev, separators=(",", ":")).encode()  # as harness.produce writes it
        env.produce_events([ev])
        wait_until(lambda: {a["path"] for a in rx.snapshot()} >= set(cases), 60,
                   "one delivery per scheme")
        self.settle(w, "jobs to settle")
        got = self.by_path(rx.snapshot())
        self.assertEqual(set(got), set(cases), "only the matching subscriptions get requests")
        for path, (scheme, secrets, fields, rkeys, header, wrong) in cases.items():
            self.assertEqual(len(got[path]), 1, "%s: exactly one request" % path)
            a = got[path][0]
            self.assertEqual(a["status"], 204)
            self.assertTrue(a["verified"], "%s (%s): %s" % (path, scheme, a["reason"]))
            self.assertEqual(a["id"], "evt_schemes", "%s: webhook-id on every scheme" % path)
            self.assertEqual(a["method"], "POST")
            if path == "/msg":
                self.assertEqual(json.loads(a["body"]), {"message": raw.decode()})
            else:
                self.assertEqual(a["body"], raw, "%s: the body is the event as produced" % path)
            if wrong is not None:
                ok, why = verifiers.verify(scheme, [wrong], a["headers"], a["body"],
                                           header_name=header)
                self.assertFalse(ok, "%s: a wrong key must not verify" % path)
                # A body changed by one byte must not verify either (for message-field, the
                # signed message string).
                tampered = a["body"] + b" "
                if scheme == "message-field":
                    tampered = json.dumps({"message": raw.decode() + " "}).encode()
                ok, _ = verifiers.verify(scheme, rkeys, a["headers"], tampered,
                                         header_name=header)
                self.assertFalse(ok, "%s: a tampered body must not verify" % path)
        h = {p: got[p][0]["headers"] for p in cases}
        b64sig = r"[A-Za-z0-9+/]{43}="
        self.assertRegex(h["/sw"]["webhook-signature"], r"^v1,%s$" % b64sig)
        self.assertRegex(h["/ed"]["webhook-signature"], r"^v1a,[A-Za-z0-9+/]{86}==$")
        self.assertRegex(h["/hex"]["x-hub-signature-256"], r"^[0-9a-f]{64}$")
        self.assertRegex(h["/b64"]["x-signature"], r"^%s$" % b64sig)
        self.assertRegex(h["/ts"]["x-campsite-signature"], r"^t=\d+,v1=[0-9a-f]{64}$")
        self.assertRegex(h["/msg"]["x-capmo-signature"], r"^%s$" % b64sig)
        # The custom header replaces the default one; none sends no signature at all.
        for p in ("/hex", "/ts", "/msg"):
            self.assertNotIn("x-signature", h[p])
        for p in ("/hex", "/b64", "/ts", "/msg", "/none"):
            self.assertNotIn("webhook-signature", h[p])
        self.assertFalse({k for k in h["/none"] if "signature" in k or k == "webhook-timestamp"},
                         "the none scheme signs nothing")
        self.assertEqual(w.metric("herald_events_consumed_total"), 1)
        self.assertEqual(w.metric("herald_deliveries_total", {"outcome": "delivered"}),
                         len(cases))
        self.assertEqual(w.stop(), 0)

    def test_rotation_both_secrets_verify_alone(self):
        env, rx = self.env, self.env.receiver
        old_sk, old_pk = ed25519_pair()
        new_sk, new_pk = ed25519_pair()
        _, stranger_pk = ed25519_pair()
        # path: scheme, [old, new] as the subscription holds them, the same as the receiver
        # holds them, a key neither, header, extra fields
        cases = {
            "/sw": ("standard-webhooks", [TEST_SECRET, ROTATED_WHSEC],
                    [TEST_SECRET, ROTATED_WHSEC], OTHER_WHSEC, None, {}),
            "/ed": ("standard-webhooks-ed25519", [old_sk, new_sk], [old_pk, new_pk],
                    stranger_pk, None, {}),
            "/hex": ("hmac-sha256-hex", ["old-hex", "new-hex"], ["old-hex", "new-hex"],
                     "mid-hex", None, {}),
            "/b64": ("hmac-sha256-base64", ["old-b64", TEST_SECRET], ["old-b64", TEST_SECRET],
                     "new-b64", "X-Sig", {"signature_header": "X-Sig"}),
            "/ts": ("timestamped", ["old-ts", "new-ts"], ["old-ts", "new-ts"], "ts",
                    "X-Campsite-Signature", {"signature_header": "X-Campsite-Signature"}),
            "/msg": ("message-field", ["old-msg", "new-msg"], ["old-msg", "new-msg"], "msg",
                     "X-Capmo-Signature",
                     {"signature_header": "X-Capmo-Signature", "payload": "message"}),
        }
        for path, (scheme, secrets, rkeys, _, header, fields) in cases.items():
            put_sub(env.redis.url, subscription("r" + path.replace("/", "_"), "org_r",
                                                rx.url(path), ["*"], signature=scheme,
                                                secrets=secrets, **fields))
            rx.expect(path, scheme, rkeys, header)
        w = env.worker()
        w.wait_ready()
        env.produce_events([event("evt_rot", "key.rotated", "org_r")])
        wait_until(lambda: {a["path"] for a in rx.snapshot()} >= set(cases), 60,
                   "one delivery per rotated subscription")
        self.settle(w, "jobs to settle")
        got = self.by_path(rx.snapshot())
        for path, (scheme, secrets, rkeys, stranger, header, _) in cases.items():
            self.assertEqual(len(got[path]), 1, path)
            a = got[path][0]
            self.assertTrue(a["verified"], "%s: %s" % (path, a["reason"]))
            for label, key in (("old", rkeys[0]), ("new", rkeys[1])):
                ok, why = verifiers.verify(scheme, [key], a["headers"], a["body"],
                                           header_name=header)
                self.assertTrue(ok, "%s: a receiver with only the %s key: %s" % (path, label,
                                                                                  why))
            ok, _ = verifiers.verify(scheme, [stranger], a["headers"], a["body"],
                                     header_name=header)
            self.assertFalse(ok, "%s: a key the subscription does not hold" % path)
        h = {p: got[p][0]["headers"] for p in cases}
        # One signature per secret, in the documented list form.
        self.assertEqual(len(h["/sw"]["webhook-signature"].split(" ")), 2)
        self.assertTrue(all(s.startswith("v1,") for s in h["/sw"]["webhook-signature"].split()))
        self.assertTrue(all(s.startswith("v1a,") for s in h["/ed"]["webhook-signature"].split()))
        self.assertEqual(len(h["/ed"]["webhook-signature"].split(" ")), 2)
        self.assertRegex(h["/hex"]["x-signature"], r"^[0-9a-f]{64},[0-9a-f]{64}$")
        self.assertEqual(len(h["/b64"]["x-sig"].split(",")), 2)
        self.assertRegex(h["/ts"]["x-campsite-signature"],
                         r"^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$")
        self.assertEqual(len(h["/msg"]["x-capmo-signature"].split(",")), 2)
        self.assertEqual(w.stop(), 0)

    def test_payload_modes_end_to_end(self):
        env, rx = self.env, self.env.receiver
        modes = ("raw", "compact", "data", "message")
        for mode in modes:
            put_sub(env.redis.url, subscription("p_" + mode, "org_p", rx.url("/" + mode),
                                                ["post.*"], payload=mode))
            rx.expect("/" + mode)
        node = find_node()
        if node:
            js = ("const r=require('fs').readFileSync(0,'utf8');"
                  "process.stdout.write(JSON.stringify([JSON.stringify(JSON.parse(r)),"
                  "JSON.stringify({message:r})]))")
            p = subprocess.run([node, "-e", js], input=RAW_EVENT.encode(), capture_output=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            want_compact, want_message = json.loads(p.stdout)
            # The fallback constant must agree with the oracle, or it proves nothing.
            self.assertEqual(want_compact, RAW_EVENT_COMPACT)
        else:
            sys.stderr.write("node not found: comparing compact with a precomputed string\n")
            want_compact = RAW_EVENT_COMPACT
            want_message = json.dumps({"message": RAW_EVENT}, separators=(",", ":"),
                                      ensure_ascii=False)
        w = env.worker()
        w.wait_ready()
        env.produce([("org_p", RAW_EVENT), ("org_p", BARE_EVENT)])
        wait_until(lambda: {(a["path"], a["id"]) for a in rx.snapshot()} >=
                   {("/" + m, "evt_modes") for m in modes} |
                   {("/" + m, "evt_bare") for m in ("raw", "compact", "message")}, 60,
                   "every payload mode delivered")
        dlq = wait_until(lambda: env.dlq() or None, 30, "the unrenderable dead letter")
        self.settle(w, "jobs to settle")
        got = {(a["path"], a["id"]): a for a in rx.snapshot()}
        self.assertEqual(len(rx.snapshot()), 7, sorted(got))
        for a in rx.snapshot():
            self.assertTrue(a["verified"], "%s %s: %s" % (a["path"], a["id"], a["reason"]))
        raw = RAW_EVENT.encode()
        self.assertEqual(got[("/raw", "evt_modes")]["body"], raw,
                         "raw mode sends the value byte for byte")
        self.assertEqual(got[("/compact", "evt_modes")]["body"], want_compact.encode())
        self.assertEqual(got[("/data", "evt_modes")]["body"], RAW_EVENT_DATA.encode())
        msg = got[("/message", "evt_modes")]["body"]
        self.assertEqual(msg, want_message.encode())
        self.assertEqual(json.loads(msg)["message"], RAW_EVENT)
        self.assertEqual(list(json.loads(msg)), ["message"])
        self.assertEqual(got[("/raw", "evt_bare")]["body"], BARE_EVENT.encode())
        self.assertEqual(got[("/compact", "evt_bare")]["body"], BARE_EVENT.encode())
        self.assertEqual(json.loads(got[("/message", "evt_bare")]["body"]),
                         {"message": BARE_EVENT})
        # No data member: dead-lettered for that subscription only, at once, never retried.
        self.assertNotIn(("/data", "evt_bare"), got)
        self.assertEqual(len(dlq), 1, dlq)
        d = dlq[0]
        self.assertEqual(d["headers"]["herald-reason"], "payload_unrenderable")
        self.assertEqual(d["headers"]["herald-subscription"], "p_data")
        self.assertEqual(d["headers"]["herald-event-id"], "evt_bare")
        self.assertEqual(d["headers"]["herald-attempt"], "1")
        self.assertEqual(d["payload"], BARE_EVENT)
        self.assertEqual(w.metric("herald_dead_letters_total",
                                  {"reason": "payload_unrenderable"}), 1)
        self.assertEqual(w.metric("herald_dead_letters_total"), 1)
        self.assertEqual(w.metric("herald_retries_enqueued_total"), 0)
        self.assertEqual(w.metric("herald_retry_jobs_consumed_total"), 0)
        self.assertEqual(w.stop(), 0)

    def test_subs_put_refuses_scheme_mismatches_naming_the_field(self):
        env = self.env
        whsk, whpk = ed25519_pair()
        base = {"tenant": "org_v", "url": "https://example.com/hook", "events": ["*"]}
        cases = [
            ({"signature": "standard-webhooks-ed25519", "secrets": [TEST_SECRET]}, "secrets[0]"),
            ({"signature": "standard-webhooks-ed25519", "secrets": [whsk, whpk]}, "secrets[1]"),
            ({"signature": "standard-webhooks", "secrets": ["plain secret"]}, "secrets[0]"),
            ({"signature": "standard-webhooks", "secrets": [whsk]}, "secrets[0]"),
            ({"signature": "standard-webhooks", "secrets": ["whsec_!!!"]}, "secrets[0]"),
            ({"signature": "hmac-sha256-hex", "secrets": ["ok", whsk]}, "secrets[1]"),
            ({"signature": "hmac-sha256-hex", "secrets": []}, "secrets"),
            ({"signature": "none", "secrets": ["x"]}, "secrets"),
            ({"signature": "standard-webhooks", "secrets": [TEST_SECRET],
              "signature_header": "X-Sig"}, "signature_header"),
            ({"signature": "standard-webhooks-ed25519", "secrets": [whsk],
              "signature_header": "X-Sig"}, "signature_header"),
            ({"signature": "message-field", "secrets": ["s"]}, "payload"),
            ({"signature": "message-field", "secrets": ["s"], "payload": "raw"}, "payload"),
            ({"signature": "timestamped", "secrets": ["s"],
              "signature_header": "webhook-id"}, "signature_header"),
            ({"signature": "hmac-sha512", "secrets": ["s"]}, "signature"),
        ]
        for i, (fields, field) in enumerate(cases):
            doc = dict(base, id="bad_%d" % i, **fields)
            r = herald("subs", "--redis", env.redis.url, "put", "-", input=json.dumps(doc),
                       check=False)
            self.assertEqual(r.returncode, 1, "%s: %s" % (fields, r.stderr))
            self.assertRegex(r.stderr, r'invalid subscription: field "%s": \S' % re.escape(field),
                             fields)
            for s in fields.get("secrets", []):
                if len(s) >= 8:
                    self.assertNotIn(s, r.stderr, "a refusal must not echo the secret")
            self.assertEqual(env.redis.cli("EXISTS", "herald:sub:bad_%d" % i), "0")
        # The same documents, fixed, are accepted: the refusals were about the mismatch.
        good = [
            {"signature": "standard-webhooks-ed25519", "secrets": [whsk]},
            {"signature": "hmac-sha256-hex", "secrets": ["plain secret", TEST_SECRET]},
            {"signature": "none"},
            {"signature": "timestamped", "secrets": ["s"],
             "signature_header": "X-Campsite-Signature"},
            {"signature": "message-field", "secrets": ["s"], "payload": "message",
             "signature_header": "X-Capmo-Signature"},
        ]
        for i, fields in enumerate(good):
            doc = dict(base, id="good_%d" % i, **fields)
            r = herald("subs", "--redis", env.redis.url, "put", "-", input=json.dumps(doc),
                       check=False)
            self.assertEqual(r.returncode, 0, "%s: %s" % (fields, r.stderr))
            self.assertEqual(env.redis.cli("EXISTS", "herald:sub:good_%d" % i), "1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
