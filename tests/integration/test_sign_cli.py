#!/usr/bin/python3
"""`herald sign` and `herald verify` end to end: every scheme signed by the
binary and checked by the independent verifiers in verifiers.py, `herald
verify` on good and tampered requests, and the usage errors (exit 2).

Runs the binary named by HERALD_BIN (ctest sets it). Needs no servers.
"""

import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verifiers  # noqa: E402

HERALD = os.environ.get("HERALD_BIN", "")
TIMEOUT = 60

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_SECRET_2 = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24h"
SW_OTHER = "whsec_dGhpcmQgc2VjcmV0IG5ldmVyIHVzZWQgaGVyZSE="
ED_SECRET = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
ED_SECRET_2 = "whsk_TM0Imyj/ltqdtsNG7BFOD1uKMZ81q6Yk2oz27U+4pvs="
ED_OTHER = "whsk_xaqN9D+fg3vtt0QvMdy3sWbThTUHbwlLhc46LgtEWPc="

# scheme -> (secret, second secret, a secret that signed nothing)
SECRETS = {
    "standard-webhooks": (SW_SECRET, SW_SECRET_2, SW_OTHER),
    "standard-webhooks-ed25519": (ED_SECRET, ED_SECRET_2, ED_OTHER),
    "hmac-sha256-hex": ("old-secret", "new-secret", "other"),
    "hmac-sha256-base64": ("old-secret", SW_SECRET, "other"),
    "timestamped": ("old-secret", "new-secret", "other"),
    "message-field": ("old-secret", "new-secret", "other"),
}

EVENT = b'{"id":"evt_1","type":"post.created","data":{"post":{"id":"p_1","t":"\\u00e9 \\"q\\""}}}'
MESSAGE_BODY = b'{"message":"{\\"id\\":\\"evt_1\\",\\"type\\":\\"post.created\\"}"}'


def run(args, body=b""):
    return subprocess.run([HERALD] + args, input=body, capture_output=True, timeout=TIMEOUT)


def parse_headers(stdout):
    headers = {}
    for line in stdout.decode().splitlines():
        name, sep, value = line.partition(": ")
        assert sep, "not a header line: %r" % line
        headers[name.lower()] = value
    return headers


def body_for(scheme):
    return MESSAGE_BODY if scheme == "message-field" else EVENT


def tampered(body):
    """One changed byte inside what every scheme signs (message-field signs
    only the "message" string, so whitespace around the JSON would not count)."""
    return body.replace(b"evt_1", b"evt_2")


def sign(scheme, secrets, body, extra=()):
    args = ["sign", "--scheme", scheme]
    for s in secrets:
        args += ["--secret", s]
    proc = run(args + list(extra), body)
    assert proc.returncode == 0, (scheme, proc.returncode, proc.stderr.decode())
    return parse_headers(proc.stdout), proc


def header_args(headers):
    args = []
    for name, value in headers.items():
        args += ["--header", "%s: %s" % (name, value)]
    return args


class SignTest(unittest.TestCase):
    def test_standard_webhooks_vector(self):
        proc = run(["sign", "--scheme", "standard-webhooks", "--secret", SW_SECRET,
                    "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"],
                   b'{"test": 2432232314}')
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.decode(),
                         "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\n"
                         "webhook-timestamp: 1614265330\n"
                         "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n")

    def test_every_scheme_one_and_two_secrets(self):
        for scheme, (first, second, other) in SECRETS.items():
            body = body_for(scheme)
            for secrets in ([first], [first, second]):
                with self.subTest(scheme=scheme, n=len(secrets)):
                    headers, _ = sign(scheme, secrets, body)
                    for s in secrets:
                        ok, why = verifiers.verify(scheme, [s], headers, body)
                        self.assertTrue(ok, "%s with %s: %s" % (scheme, s, why))
                    self.assertFalse(verifiers.verify(scheme, [other], headers, body)[0])
                    self.assertFalse(verifiers.verify(scheme, secrets, headers,
                                                      tampered(body))[0])

    def test_multi_signature_syntax(self):
        cases = {
            "standard-webhooks": ("webhook-signature", r"v1,\S+ v1,\S+"),
            "standard-webhooks-ed25519": ("webhook-signature", r"v1a,\S+ v1a,\S+"),
            "hmac-sha256-hex": ("x-signature", r"[0-9a-f]{64},[0-9a-f]{64}"),
            "hmac-sha256-base64": ("x-signature", r"[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}="),
            "timestamped": ("x-signature", r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}"),
            "message-field": ("x-signature", r"[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}="),
        }
        for scheme, (name, pattern) in cases.items():
            with self.subTest(scheme=scheme):
                headers, _ = sign(scheme, SECRETS[scheme][:2], body_for(scheme))
                self.assertRegex(headers[name], "^%s$" % pattern)

    def test_defaults_id_and_timestamp(self):
        before = int(time.time())
        a, _ = sign("standard-webhooks", [SW_SECRET], EVENT)
        b, _ = sign("standard-webhooks", [SW_SECRET], EVENT)
        after = int(time.time())
        self.assertRegex(a["webhook-id"], r"^msg_[0-9A-Za-z]{27}$")
        self.assertNotEqual(a["webhook-id"], b["webhook-id"])
        self.assertTrue(before <= int(a["webhook-timestamp"]) <= after)

    def test_header_override(self):
        headers, _ = sign("timestamped", ["k"], EVENT, ["--header", "X-Campsite-Signature"])
        self.assertEqual(list(headers), ["x-campsite-signature"])
        self.assertTrue(verifiers.verify("timestamped", ["k"], headers, EVENT,
                                         header_name="X-Campsite-Signature")[0])
        headers, _ = sign("message-field", ["k"], MESSAGE_BODY, ["--header", "X-Capmo-Signature"])
        self.assertTrue(verifiers.verify("message-field", ["k"], headers, MESSAGE_BODY,
                                         header_name="x-capmo-signature")[0])

    def test_none_prints_nothing(self):
        proc = run(["sign", "--scheme", "none"], EVENT)
        self.assertEqual((proc.returncode, proc.stdout), (0, b""))

    def test_binary_and_large_bodies(self):
        for body in (b"", b"\x00\xff\r\n\x00", os.urandom(1 << 20)):
            headers, _ = sign("hmac-sha256-hex", ["k"], body)
            self.assertTrue(verifiers.verify("hmac-sha256-hex", ["k"], headers, body)[0])
        proc = run(["sign", "--scheme", "hmac-sha256-hex", "--secret", "k"],
                   b"x" * (16 * 1024 * 1024 + 1))
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"larger than 16 MiB", proc.stderr)

    def test_public_key(self):
        proc = run(["sign", "--scheme", "standard-webhooks-ed25519", "--secret", ED_SECRET,
                    "--secret", ED_SECRET_2, "--public-key"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.decode().split(),
                         [verifiers.public_key_string(ED_SECRET),
                          verifiers.public_key_string(ED_SECRET_2)])

    def test_help(self):
        for cmd in ("sign", "verify"):
            proc = run([cmd, "--help"])
            self.assertEqual(proc.returncode, 0)
            self.assertIn(b"usage: herald " + cmd.encode(), proc.stdout)


class VerifyTest(unittest.TestCase):
    def verify(self, scheme, secret, headers, body, extra=()):
        return run(["verify", "--scheme", scheme, "--secret", secret] + header_args(headers)
                   + list(extra), body)

    def test_round_trip_every_scheme(self):
        for scheme, (first, second, other) in SECRETS.items():
            body = body_for(scheme)
            headers, _ = sign(scheme, [first, second], body)
            key = first
            if scheme == "standard-webhooks-ed25519":
                key = verifiers.public_key_string(second)  # a receiver holds only this
            with self.subTest(scheme=scheme):
                proc = self.verify(scheme, key, headers, body)
                self.assertEqual((proc.returncode, proc.stdout), (0, b"valid\n"), proc.stderr)
                proc = self.verify(scheme, other, headers, body)
                self.assertEqual(proc.returncode, 1)
                self.assertRegex(proc.stderr.decode(), r"^invalid: .*match")
                proc = self.verify(scheme, key, headers, tampered(body))
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertTrue(proc.stderr.startswith(b"invalid: "))

    def test_any_of_several_secrets(self):
        headers, _ = sign("hmac-sha256-hex", ["k2"], EVENT)
        proc = run(["verify", "--scheme", "hmac-sha256-hex", "--secret", "k1", "--secret", "k2"]
                   + header_args(headers), EVENT)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_tampered_id_and_timestamp(self):
        headers, _ = sign("standard-webhooks", [SW_SECRET], EVENT)
        for name, value in (("webhook-id", "msg_other"),
                            ("webhook-timestamp", str(int(headers["webhook-timestamp"]) - 1))):
            with self.subTest(header=name):
                proc = self.verify("standard-webhooks", SW_SECRET, dict(headers, **{name: value}),
                                   EVENT)
                self.assertEqual(proc.returncode, 1, proc.stderr)

    def test_tolerance_both_directions(self):
        for scheme in ("standard-webhooks", "timestamped"):
            secret = SECRETS[scheme][0]
            headers, _ = sign(scheme, [secret], EVENT, ["--timestamp", "1700000000"])
            cases = [
                (["--now", "1700000300"], 0, ""),
                (["--now", "1699999700"], 0, ""),
                (["--now", "1700000301"], 1, "past"),
                (["--now", "1699999699"], 1, "future"),
                (["--now", "1700001000", "--tolerance", "1000"], 0, ""),
                ([], 1, "past"),  # the real clock is years later
            ]
            for extra, code, word in cases:
                with self.subTest(scheme=scheme, extra=extra):
                    proc = self.verify(scheme, secret, headers, EVENT, extra)
                    self.assertEqual(proc.returncode, code, proc.stderr)
                    self.assertIn(word.encode(), proc.stderr)

    def test_header_names_any_case_and_pasted_values(self):
        headers, _ = sign("standard-webhooks", [SW_SECRET], EVENT)
        args = ["verify", "--secret", SW_SECRET]
        for name, value in headers.items():
            args += ["--header", "%s:  %s\r\n" % (name.upper(), value)]
        proc = run(args, EVENT)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_header_name_option(self):
        headers, _ = sign("hmac-sha256-base64", ["k"], EVENT, ["--header", "X-Hub"])
        proc = self.verify("hmac-sha256-base64", "k", headers, EVENT, ["--header-name", "x-hub"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = self.verify("hmac-sha256-base64", "k", headers, EVENT)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b'missing header "X-Signature"', proc.stderr)

    def test_malformed_headers(self):
        base = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA"}
        cases = [
            ({k: v for k, v in base.items() if k != "webhook-id"}, 'missing header "webhook-id"'),
            (dict(base, **{"webhook-timestamp": "soon"}), "not unix seconds"),
            (dict(base, **{"webhook-signature": "v2,AAAA"}), 'no "v1," signature'),
        ]
        for headers, reason in cases:
            with self.subTest(reason=reason):
                proc = self.verify("standard-webhooks", SW_SECRET, headers, EVENT)
                self.assertEqual(proc.returncode, 1)
                self.assertIn(reason.encode(), proc.stderr)


class UsageTest(unittest.TestCase):
    def expect_usage(self, args, needle, body=b""):
        proc = run(args, body)
        self.assertEqual(proc.returncode, 2, (args, proc.stdout, proc.stderr))
        self.assertIn(needle.encode(), proc.stderr, args)
        self.assertEqual(proc.stdout, b"")

    def test_sign_usage_errors(self):
        cases = [
            (["sign", "--scheme", "rot13", "--secret", "k"], 'unknown scheme "rot13"'),
            (["sign", "--scheme", "hmac-sha256-hex"], 'needs at least one "--secret"'),
            (["sign", "--secret", "not-whsec"], 'must start with "whsec_"'),
            (["sign", "--secret", "whsec_c2hvcnQ="], "decodes to 5 bytes"),
            (["sign", "--scheme", "standard-webhooks-ed25519", "--secret",
              verifiers.public_key_string(ED_SECRET)], "public key"),
            (["sign", "--secret", SW_SECRET, "--frobnicate"], 'unknown option "--frobnicate"'),
            (["sign", "--secret"], 'option "--secret" needs a value'),
            (["sign", "--secret", SW_SECRET, "--timestamp", "yesterday"],
             'timestamp "yesterday" is not unix seconds'),
            (["sign", "--secret", SW_SECRET, "--timestamp", "-5"], "not unix seconds"),
            (["sign", "--secret", SW_SECRET, "--header", "X-Sig"], "fixed header names"),
            (["sign", "--scheme", "hmac-sha256-hex", "--secret", "k", "--header", "Bad Name"],
             "not an HTTP token"),
            (["sign", "--secret", SW_SECRET, "--id", "evt 1"], "webhook-id has byte 0x20"),
            (["sign", "--secret", SW_SECRET, "stray"], 'unexpected argument "stray"'),
            (["sign", "--scheme", "hmac-sha256-hex", "--secret", "k", "--public-key"],
             '"--public-key" needs scheme'),
            (["sign", "--scheme", "none", "--secret", "k"], 'takes no secret'),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                self.expect_usage(args, needle, EVENT)
        self.expect_usage(["sign", "--scheme", "message-field", "--secret", "k"],
                          'string "message" member', b'{"msg": "x"}')

    def test_verify_usage_errors(self):
        hdr = ["--header", "X-Signature: 00"]
        cases = [
            (["verify", "--scheme", "hmac-sha256-hex"] + hdr, 'needs a "--secret"'),
            (["verify", "--scheme", "hmac-sha256-hex", "--secret", "k"], 'no "--header" given'),
            (["verify", "--scheme", "hmac-sha256-hex", "--secret", "k", "--header", "nocolon"],
             'header "nocolon" is not of the form "Name: value"'),
            (["verify", "--scheme", "hmac-sha256-hex", "--secret", "k", "--header", ": v"],
             "is not of the form"),
            (["verify", "--scheme", "hmac-sha256-hex", "--secret", "k", "--tolerance", "-5"]
             + hdr, 'tolerance "-5" is not a number of seconds'),
            (["verify", "--scheme", "hmac-sha256-hex", "--secret", "k", "--now", "now"] + hdr,
             'now "now" is not unix seconds'),
            (["verify", "--secret", "bad"] + hdr, 'must start with "whsec_"'),
            (["verify", "--scheme", "standard-webhooks-ed25519", "--secret", SW_SECRET] + hdr,
             '"whpk_" or "whsk_"'),
            (["verify", "--secret", SW_SECRET, "--header-name", "X-S"] + hdr,
             "fixed header names"),
            (["verify", "--scheme", "hmac-sha256-hex", "--secret", "k", "--header-name",
              "Content-Length"] + hdr, "reserved"),
            (["verify", "--scheme", "nope", "--secret", "k"] + hdr, 'unknown scheme "nope"'),
            (["verify", "--bogus"], 'unknown option "--bogus"'),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                self.expect_usage(args, needle, EVENT)


if __name__ == "__main__":
    if not HERALD or not os.access(HERALD, os.X_OK):
        sys.exit("test_sign_cli: set HERALD_BIN to the herald binary (got %r)" % HERALD)
    unittest.main(verbosity=2)
