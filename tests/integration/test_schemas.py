#!/usr/bin/env python3
"""The JSON Schemas in schemas/ against herald's own validators.

schemas/subscription.schema.json and schemas/event.schema.json promise to
state the rules that src/subs.c and src/event.c enforce, so that a control
plane or a producer validating with any JSON Schema 2020-12 validator gets
the verdict herald would give. This test runs a table of documents (valid
and invalid, each with the field or reject reason herald must name) and a
few sweeps (URLs, event patterns, secret lengths, timestamps) through both
python3-jsonschema and tests/validate_tool, and fails on any disagreement.

The few rules a schema cannot express are listed in KNOWN_GAPS with the
direction of the difference, so they stay deliberate.

Needs python3-jsonschema (Debian package; scripts/setup installs it): run
with /usr/bin/python3. The tool is $HERALD_VALIDATE_TOOL or
$HERALD_BUILD_DIR/tests/validate_tool.
"""
import concurrent.futures
import json
import os
import subprocess
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("test_schemas: FAIL: the Python module jsonschema is missing. Install the Debian "
             "package python3-jsonschema (scripts/setup does) and run with /usr/bin/python3.")

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSK = "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="
KEY = "org_key"  # the Kafka message key every event is checked with
DROP = object()  # in an override: remove the member


def find_tool():
    tool = os.environ.get("HERALD_VALIDATE_TOOL")
    if not tool and os.environ.get("HERALD_BUILD_DIR"):
        tool = os.path.join(os.environ["HERALD_BUILD_DIR"], "tests", "validate_tool")
    if not tool or not os.access(tool, os.X_OK):
        sys.exit("test_schemas: FAIL: validate_tool not found (set HERALD_BUILD_DIR or "
                 "HERALD_VALIDATE_TOOL; it is built from tests/tools/validate_tool.c)")
    return tool


def load_validator(name):
    with open(os.path.join(SOURCE_DIR, "schemas", name), encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=jsonschema.FormatChecker())


def reject_constant(name):
    raise ValueError("not JSON: " + name)


def schema_verdict(validator, text):
    """True when text is one JSON document the schema accepts."""
    try:
        doc = json.loads(text, parse_constant=reject_constant)
    except ValueError:
        return False
    return validator.is_valid(doc)


def c_verdict(tool, kind, text):
    """(ok, detail): detail is the field (sub) or reject reason (event) herald names."""
    args = [tool, kind] + (["--key", KEY] if kind == "event" else [])
    p = subprocess.run(args, input=text.encode("utf-8", "surrogatepass"), capture_output=True,
                       timeout=30)
    out = p.stdout.decode("utf-8", "replace").strip()
    if p.returncode == 0 and out == "ok":
        return True, None
    if p.returncode == 1 and out.startswith("invalid "):
        field, _ = json.JSONDecoder().raw_decode(out, len("invalid "))
        return False, field
    if p.returncode == 1 and out.startswith("reject "):
        return False, out.split(" ", 2)[1]
    raise RuntimeError("validate_tool %s: exit %d: %r %r" % (kind, p.returncode, out, p.stderr))


# ---- documents ------------------------------------------------------------------------

BASE_SUB = {"id": "sub_1", "tenant": "org_1", "url": "https://example.com/hook",
            "events": ["post.created"], "secrets": [SECRET]}


def sub(**over):
    doc = dict(BASE_SUB)
    for k, v in over.items():
        if v is DROP:
            doc.pop(k, None)
        else:
            doc[k] = v
    return json.dumps(doc, ensure_ascii=False)


def hmac(**over):
    return sub(**{"signature": "hmac-sha256-hex", "secrets": ["plain key"], **over})


# (name, document text, None when valid or the field herald must name)
SUB_CASES = [
    ("minimal", sub(), None),
    ("every field", sub(name="n", description="d", metadata={"a": [1]}, method="PUT",
                        content_type="application/json; charset=utf-8",
                        events=["a.b", "a.*", "*"], status="disabled", disabled_reason="410",
                        secrets=[SECRET, SECRET], signature="standard-webhooks", payload="compact",
                        headers={"Authorization": "Bearer x", "X-Tab": "a\tb"}, max_attempts=100,
                        timeout_ms=100, max_in_flight=10000, rate_limit_per_s=0,
                        created_at="2024-10-01T00:00:00Z", updated_at="whenever"), None),
    ("hmac with a header", hmac(signature_header="X-Hub-Signature-256"), None),
    ("timestamped", sub(signature="timestamped", secrets=["k1", SECRET],
                        signature_header="X-Campsite-Signature"), None),
    ("message-field", sub(signature="message-field", secrets=["k"], payload="message"), None),
    ("ed25519", sub(signature="standard-webhooks-ed25519", secrets=[WHSK]), None),
    ("none without secrets", sub(signature="none", secrets=DROP), None),
    ("none with an empty list", sub(signature="none", secrets=[]), None),
    ("X-Signature is custom under standard-webhooks", sub(headers={"X-Signature": "x"}), None),
    ("integral float", sub(max_attempts=5.0), None),
    ("IPv6 URL", sub(url="http://[::1]:8080/x"), None),
    ("upper-case scheme", sub(url="HTTPS://EXAMPLE.COM/"), None),
    ("'@' in the path", sub(url="https://e.com/a@b"), None),
    ("not JSON", '{"id":', "(document)"),
    ("trailing garbage", sub() + " x", "(document)"),
    ("array", "[" + sub() + "]", "(document)"),
    ("unknown field", sub(colour="red"), "colour"),
    ("missing id", sub(id=DROP), "id"),
    ("id with a slash", sub(id="a/b"), "id"),
    ("id of 129", sub(id="i" * 129), "id"),
    ("missing tenant", sub(tenant=DROP), "tenant"),
    ("tenant with a space", sub(tenant="org 1"), "tenant"),
    ("numeric name", sub(name=1), "name"),
    ("array metadata", sub(metadata=[]), "metadata"),
    ("missing url", sub(url=DROP), "url"),
    ("ftp url", sub(url="ftp://e.com/x"), "url"),
    ("url with userinfo", sub(url="https://user:pw@e.com/"), "url"),
    ("url with a user", sub(url="https://user@e.com/"), "url"),
    ("url without host", sub(url="https:///path"), "url"),
    ("url with one slash", sub(url="http:/e.com"), "url"),
    ("url with a space", sub(url="https://e.com/a b"), "url"),
    ("url with a bad port", sub(url="https://e.com:65536/"), "url"),
    ("url of 2049", sub(url="https://e.com/" + "p" * (2049 - 14)), "url"),
    ("url of 2048", sub(url="https://e.com/" + "p" * (2048 - 14)), None),
    ("GET", sub(method="GET"), "method"),
    ("empty content type", sub(content_type=""), "content_type"),
    ("content type with LF", sub(content_type="a\nb"), "content_type"),
    ("missing events", sub(events=DROP), "events"),
    ("no events", sub(events=[]), "events"),
    ("bad second event", sub(events=["a", "b c"]), "events[1]"),
    ("star without a dot", sub(events=["post*"]), "events[0]"),
    ("paused", sub(status="paused"), "status"),
    ("unknown scheme", sub(signature="hmac-sha512"), "signature"),
    ("header under standard-webhooks", sub(signature_header="X-Sig"), "signature_header"),
    ("header under none", sub(signature="none", secrets=DROP, signature_header="X-Sig"),
     "signature_header"),
    ("reserved signature header", hmac(signature_header="Content-Type"), "signature_header"),
    ("signature header of 64", hmac(signature_header="S" * 64), "signature_header"),
    ("missing secrets", sub(secrets=DROP), "secrets"),
    ("empty secrets", sub(secrets=[]), "secrets"),
    ("11 secrets", sub(secrets=[SECRET] * 11), "secrets"),
    ("none with a secret", sub(signature="none", secrets=["k"]), "secrets"),
    ("second secret bad", sub(secrets=[SECRET, "whsec_!!"]), "secrets[1]"),
    ("plain secret under standard-webhooks", sub(secrets=["plain"]), "secrets[0]"),
    ("whsk_ under hmac", hmac(secrets=[WHSK]), "secrets[0]"),
    ("short whsec_ under hmac", hmac(secrets=["whsec_dGVzdA=="]), "secrets[0]"),
    ("empty plain secret", hmac(secrets=[""]), "secrets[0]"),
    ("plain secret of 1025", hmac(secrets=["s" * 1025]), "secrets[0]"),
    ("plain secret of 1024", hmac(secrets=["s" * 1024]), None),
    ("whsec_ under ed25519", sub(signature="standard-webhooks-ed25519"), "secrets[0]"),
    ("message-field with raw", sub(signature="message-field", secrets=["k"]), "payload"),
    ("unknown payload", sub(payload="xml"), "payload"),
    ("numeric header value", sub(headers={"X-Foo": 5}), "headers.X-Foo"),
    ("CR LF in a header", sub(headers={"X-Foo": "a\r\nEvil: 1"}), "headers.X-Foo"),
    ("header value of 4097", sub(headers={"X-Foo": "v" * 4097}), "headers.X-Foo"),
    ("header name with a space", sub(headers={"X Foo": "1"}), "headers.X Foo"),
    ("Host header", sub(headers={"Host": "x"}), "headers.Host"),
    ("webhook-signature header", sub(headers={"webhook-signature": "x"}),
     "headers.webhook-signature"),
    ("Content-Length header", sub(headers={"CONTENT-LENGTH": "1"}), "headers.CONTENT-LENGTH"),
    ("default signature header", hmac(headers={"x-signature": "1"}), "headers.x-signature"),
    ("33 headers", sub(headers={"X-H%d" % i: "v" for i in range(33)}), "headers"),
    ("max_attempts 0", sub(max_attempts=0), "max_attempts"),
    ("max_attempts 1.5", sub(max_attempts=1.5), "max_attempts"),
    ("max_attempts string", sub(max_attempts="5"), "max_attempts"),
    ("timeout_ms 300001", sub(timeout_ms=300001), "timeout_ms"),
    ("max_in_flight 0", sub(max_in_flight=0), "max_in_flight"),
    ("rate_limit_per_s -1", sub(rate_limit_per_s=-1), "rate_limit_per_s"),
    ("numeric created_at", sub(created_at=5), "created_at"),
]

BASE_EVENT = {"id": "evt_1", "type": "post.created", "tenant": "org_1",
              "timestamp": "2024-10-01T18:30:03Z", "data": {"x": 1}}


def event(**over):
    doc = dict(BASE_EVENT)
    for k, v in over.items():
        if v is DROP:
            doc.pop(k, None)
        else:
            doc[k] = v
    return json.dumps(doc)


# (name, document text, None when valid or the reject reason herald must give)
EVENT_CASES = [
    ("full", event(), None),
    ("minimal (key is the tenant)", '{"id":"e","type":"t"}', None),
    ("null tenant", event(tenant=None), None),
    ("null timestamp", event(timestamp=None), None),
    ("any data", event(data=[1, "x", None]), None),
    ("extra members", event(source="billing"), None),
    ("id of 256", event(id="i" * 256), None),
    ("offset", event(timestamp="2024-10-01T20:30:03+02:00"), None),
    ("fraction", event(timestamp="2024-10-01T18:30:03.123456Z"), None),
    ("lower case and a space", event(timestamp="2024-10-01 18:30:03z"), None),
    ("leap day", event(timestamp="2024-02-29T00:00:00Z"), None),
    ("leap second", event(timestamp="2016-12-31T23:59:60Z"), None),
    ("not JSON", "{", "not_json"),
    ("trailing garbage", event() + "x", "not_json"),
    ("array", "[]", "not_an_object"),
    ("string", '"e"', "not_an_object"),
    ("missing id", event(id=DROP), "missing_id"),
    ("null id", event(id=None), "missing_id"),
    ("numeric id", event(id=5), "invalid_id"),
    ("empty id", event(id=""), "invalid_id"),
    ("id with a space", event(id="a b"), "invalid_id"),
    ("id of 257", event(id="i" * 257), "invalid_id"),
    ("id not ASCII", event(id="caf\u00e9"), "invalid_id"),
    ("missing type", event(type=DROP), "missing_type"),
    ("type with a tab", event(type="a\tb"), "invalid_type"),
    ("numeric tenant", event(tenant=7), "invalid_tenant"),
    ("empty tenant", event(tenant=""), "invalid_tenant"),
    ("numeric timestamp", event(timestamp=1727807403), "invalid_timestamp"),
    ("month 13", event(timestamp="2024-13-01T00:00:00Z"), "invalid_timestamp"),
    ("Feb 30", event(timestamp="2024-02-30T00:00:00Z"), "invalid_timestamp"),
    ("Feb 29 of 2023", event(timestamp="2023-02-29T00:00:00Z"), "invalid_timestamp"),
    ("no offset", event(timestamp="2024-10-01T18:30:03"), "invalid_timestamp"),
    ("offset without colon", event(timestamp="2024-10-01T18:30:03+0200"), "invalid_timestamp"),
    ("hour 24", event(timestamp="2024-10-01T24:00:00Z"), "invalid_timestamp"),
    ("date only", event(timestamp="2024-10-01"), "invalid_timestamp"),
    ("signed field", event(timestamp="2024-10-01T-1:00:00Z"), "invalid_timestamp"),
]

# Rules JSON Schema cannot state. "looser": the schema accepts what herald refuses.
KNOWN_GAPS = [
    ("sub", "header names differing in case", sub(headers={"X-A": "1", "x-a": "2"}), "looser"),
    ("sub", "a custom header named like signature_header",
     hmac(signature_header="X-My-Sig", headers={"x-my-sig": "1"}), "looser"),
    ("sub", "1024 characters of 2 bytes each", sub(name="\u00e9" * 1024), "looser"),
    ("sub", "a 64-byte whsk_ whose halves disagree",
     sub(signature="standard-webhooks-ed25519", secrets=["whsk_" + "A" * 86 + "=="]), "looser"),
]


def sweep_cases():
    """Generated documents: herald's verdict is the oracle, the schema must match it."""
    out = []
    urls = ["http://e.com", "https://e.com:0/", "https://e.com:/", "https://e.com:000080/x",
            "https://e.com:65535", "https://e.com:99999/", "https://e.com:8a/",
            "https://e.com:80:80/", "https://e|x.com/", "https://e<x.com/", "https://e%20x.com/",
            "https://e!x.com/", "https://e_x.com/", "https://[::1]/", "https://[zz]/",
            "https://[::1]x/", "https://[::1/", "https://", "https://?q", "https://#f",
            "https://e.com?q=1", "https://e.com#frag", "https://e.com/\\", "https://e.com/{}",
            "https://e.com/a\"b", "https://1.2.3/", "https://.", "http:e.com", "e.com",
            "//e.com/", "mailto:a@e.com", "https://e.com/\u00e9", "https://\u00e9.com/",
            "https://e.com/\x7f", "https://:pw@e.com/", "https://@e.com/", "HtTp://e.com/"]
    for u in urls:
        out.append(("sub", "url %r" % u, sub(url=u)))
    patterns = ["*", "a", "a.*", "a..*", ".*", "**", "a*", "*.a", "a.*.b", "a.*b", "*a", ".",
                "a.", "a b", "a\u00e9", "~!#", "e" * 254 + ".*", "e" * 255 + ".*", "e" * 256,
                "e" * 257, ""]
    for p in patterns:
        out.append(("sub", "event pattern %r" % p, sub(events=[p])))
    for n in range(26, 96):
        for pad in ("", "=", "=="):
            s = "whsec_" + "A" * n + pad
            out.append(("sub", "whsec_ of %d%s" % (n, pad), sub(secrets=[s])))
            out.append(("sub", "hmac whsec_ of %d%s" % (n, pad), hmac(secrets=[s])))
    for n in list(range(40, 48)) + list(range(84, 86)):
        for pad in ("", "=", "=="):
            out.append(("sub", "whsk_ of %d%s" % (n, pad),
                        sub(signature="standard-webhooks-ed25519",
                            secrets=["whsk_" + "A" * n + pad])))
    for name in ["X-Sig", "x", "a" * 63, "Te", "TE", "Expect", "Webhook-Id", "User-Agent",
                 "X-Signature", "Keep-Alive", "X_Sig", "X.Sig", "X:Sig", "X Sig", ""]:
        out.append(("sub", "signature_header %r" % name, hmac(signature_header=name)))
        out.append(("sub", "header name %r" % name, sub(headers={name: "v"})))
    for year in ("1900", "2000", "2023", "2024", "0000", "9999"):
        for month in ("00", "01", "02", "04", "12", "13"):
            for day in ("00", "01", "28", "29", "30", "31", "32"):
                ts = "%s-%s-%sT12:00:00Z" % (year, month, day)
                out.append(("event", "timestamp %s" % ts, event(timestamp=ts)))
    for t in ("23:59:59", "23:59:60", "23:59:61", "23:60:00", "24:00:00", "00:00:00", "9:00:00",
              "09:00", "09:00:00.", "09:00:00.5", "09:00:00,5"):
        for off in ("Z", "z", "+00:00", "-23:59", "+24:00", "+05:60", "+0500", "+05", ""):
            ts = "2024-10-01T%s%s" % (t, off)
            out.append(("event", "timestamp %s" % ts, event(timestamp=ts)))
    return out


def main():
    tool = find_tool()
    validators = {"sub": load_validator("subscription.schema.json"),
                  "event": load_validator("event.schema.json")}
    failures = []

    jobs = [("sub", n, t, want) for n, t, want in SUB_CASES]
    jobs += [("event", n, t, want) for n, t, want in EVENT_CASES]
    jobs += [(k, n, t, "oracle") for k, n, t in sweep_cases()]
    gaps = [(k, n, t, d) for k, n, t, d in KNOWN_GAPS]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        c_results = list(pool.map(lambda j: c_verdict(tool, j[0], j[2]), jobs))
        gap_results = list(pool.map(lambda g: c_verdict(tool, g[0], g[2]), gaps))

    for (kind, name, text, want), (c_ok, c_detail) in zip(jobs, c_results):
        s_ok = schema_verdict(validators[kind], text)
        label = "%s %s" % (kind, name)
        if want != "oracle":
            if c_ok != (want is None) or (want is not None and c_detail != want):
                failures.append("%s: herald says %s, the table says %s" %
                                (label, "ok" if c_ok else c_detail, want or "ok"))
                continue
        if s_ok != c_ok:
            failures.append("%s: the schema says %s, herald says %s" %
                            (label, "valid" if s_ok else "invalid",
                             "ok" if c_ok else "invalid (%s)" % c_detail))

    for (kind, name, text, direction), (c_ok, _) in zip(gaps, gap_results):
        s_ok = schema_verdict(validators[kind], text)
        if direction == "looser" and not (s_ok and not c_ok):
            failures.append("known gap %s %s: expected schema valid and herald invalid, got "
                            "schema %s and herald %s" % (kind, name, s_ok, c_ok))

    total = len(jobs) + len(gaps)
    if failures:
        for f in failures:
            print("FAIL: " + f)
        print("test_schemas: %d of %d checks failed" % (len(failures), total))
        return 1
    print("test_schemas: %d documents agree (%d table, %d generated, %d known gaps)" %
          (total, len(SUB_CASES) + len(EVENT_CASES), len(jobs) - len(SUB_CASES) -
           len(EVENT_CASES), len(gaps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
