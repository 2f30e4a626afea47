#!/usr/bin/env python3
"""Differential test: herald's payload modes against node's JSON.

herald promises that the compact payload is byte-for-byte what JavaScript's
JSON.stringify(JSON.parse(body)) produces, that the message payload is
JSON.stringify({message: body}), and that the data payload parses to the
event's data member. This test generates a few thousand seeded random JSON
documents (numbers of every shape, escapes, surrogates, integer-like and
duplicate keys, random whitespace, deliberately broken variants), renders
them with tests/payload_tool and asks node for the expected answers.

Node is the oracle: without it the test prints a skip message and passes.
The tool is found at $HERALD_PAYLOAD_TOOL or $HERALD_BUILD_DIR/tests/payload_tool.
Set HERALD_PAYLOAD_SEED to replay another seed.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

SEED = int(os.environ.get("HERALD_PAYLOAD_SEED", "20241001"))
N_DOCS = 4000
N_BROKEN = 1500
N_DOUBLES = 12000

NODE_ORACLE = r"""
const fs = require('fs');
const cases = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const res = cases.map(c => {
  let v, ok = true;
  try { v = JSON.parse(c.doc); } catch (e) { ok = false; }
  const r = { compact: null, data: null, message: null, dataOk: false };
  if (!ok) return r;
  r.compact = JSON.stringify(v);
  r.message = JSON.stringify({ message: c.doc });
  if (v !== null && typeof v === 'object' && !Array.isArray(v) &&
      Object.prototype.hasOwnProperty.call(v, 'data')) {
    r.data = JSON.stringify(v.data);
    if (c.data !== null) {
      try { r.dataOk = JSON.stringify(JSON.parse(c.data)) === r.data; } catch (e) {}
    }
  }
  return r;
});
process.stdout.write(JSON.stringify(res));
"""


def find_node():
    if os.access("/usr/bin/node", os.X_OK):
        return "/usr/bin/node"
    return shutil.which("node")


def find_tool():
    tool = os.environ.get("HERALD_PAYLOAD_TOOL")
    if not tool:
        build = os.environ.get("HERALD_BUILD_DIR")
        if not build:
            here = os.path.dirname(os.path.abspath(__file__))
            build = os.path.join(here, "..", "..", "build")
        tool = os.path.join(build, "tests", "payload_tool")
    if not os.access(tool, os.X_OK):
        sys.exit(f"test_payload_node: payload tool '{tool}' not found; "
                 "build it or set HERALD_BUILD_DIR")
    return tool


class Gen:
    """Random JSON text, written token by token so that the spelling (escapes,
    number forms, whitespace, key order) varies, not just the values."""

    KEYS = ["a", "b", "c", "id", "type", "data", "x", "é", "\u2028", "__proto__",
            "constructor", "", "0", "1", "2", "10", "9", "00", "01", "-1", "1.0",
            "4294967294", "4294967295", "4294967296", "123456789012", "1e3", " 1"]

    def __init__(self, rng):
        self.r = rng

    def ws(self):
        if self.r.random() < 0.7:
            return ""
        return "".join(self.r.choice(" \t\n\r") for _ in range(self.r.randint(1, 3)))

    def hex4(self, cu):
        h = "%04x" % cu
        return "".join(c.upper() if self.r.random() < 0.3 else c for c in h)

    def char(self):
        r = self.r
        k = r.random()
        if k < 0.45:
            return r.choice("abcxyz019 _-/:.,{}[]'~\x7f")
        if k < 0.60:
            return "\\" + r.choice('"\\/bfnrt')
        if k < 0.75:  # any code unit, surrogates (paired or lone) included
            cu = r.choice([r.randint(0, 0x1f), r.randint(0x20, 0x7f), r.randint(0x80, 0xffff),
                           r.randint(0xd800, 0xdfff), 0x2028, 0x2029, 0x22, 0x5c, 0x2f])
            s = "\\u" + self.hex4(cu)
            if 0xd800 <= cu <= 0xdbff and r.random() < 0.6:
                s += "\\u" + self.hex4(r.randint(0xdc00, 0xdfff))
            return s
        if k < 0.9:  # raw non-ASCII, never a raw surrogate
            cp = r.choice([r.randint(0x80, 0x7ff), r.randint(0x800, 0xd7ff),
                           r.randint(0xe000, 0xffff), r.randint(0x10000, 0x10ffff),
                           0x2028, 0x2029, 0xfeff])
            return chr(cp)
        return r.choice(["é", "日本", "😀", "\u00a0"])

    def string(self):
        return '"' + "".join(self.char() for _ in range(self.r.randint(0, 8))) + '"'

    def key(self):
        r = self.r
        if r.random() < 0.7:
            k = r.choice(self.KEYS)
            # Sometimes spell a key with escapes so duplicates differ in bytes.
            if k and r.random() < 0.2:
                return '"' + "".join("\\u" + self.hex4(ord(c)) if ord(c) < 0x10000 else c
                                     for c in k) + '"'
            return json.dumps(k, ensure_ascii=r.random() < 0.5)
        return self.string()

    def digits(self, n, lead_nonzero=False):
        s = "".join(self.r.choice("0123456789") for _ in range(n))
        if lead_nonzero and s:
            s = self.r.choice("123456789") + s[1:]
        return s

    def number(self):
        r = self.r
        k = r.random()
        sign = "-" if r.random() < 0.3 else ""
        if k < 0.2:
            return sign + str(r.choice([0, 1, 7, 42, 100, 2**31, 2**32, 2**53 - 1, 2**53,
                                        2**53 + 1, 10**15, 10**16 + 1, 10**21, 10**21 - 1,
                                        r.randint(0, 10**6)]))
        if k < 0.55:
            n = r.choice([1, 1, 2, 3, 5, 15, 16, 17, 18, 21, 22, 25])
            ip = "0" if r.random() < 0.2 else self.digits(n, True)
            s = sign + ip
            if r.random() < 0.6:
                s += "." + self.digits(r.randint(1, 22))
            if r.random() < 0.5:
                s += r.choice("eE") + r.choice(["", "+", "-"])
                s += str(r.choice([0, 1, 5, 6, 7, 15, 20, 21, 22, 100, 300, 308, 309, 320,
                                   324, 330, 400, r.randint(0, 400)])).zfill(r.choice([1, 1, 3]))
            return s
        x = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
        if x != x or x in (float("inf"), float("-inf")):
            x = 1.5
        return self.float_text(x)

    def float_text(self, x):
        form = self.r.randint(0, 3)
        if form == 0:
            return repr(x)
        if form == 1:
            return "%.17g" % x
        if form == 2:
            return "%.*e" % (self.r.randint(0, 20), x)
        return "%.*f" % (self.r.randint(0, 8), x) if abs(x) < 1e30 else repr(x)

    def value(self, depth):
        r = self.r
        k = r.random() if depth < 6 else r.random() * 0.7
        if k < 0.15:
            return r.choice(["true", "false", "null"])
        if k < 0.40:
            return self.number()
        if k < 0.70:
            return self.string()
        if k < 0.85:
            items = [self.value(depth + 1) for _ in range(r.randint(0, 5))]
            return "[" + self.ws() + ",".join(self.ws() + v + self.ws() for v in items) + "]"
        n = r.choice([0, 1, 2, 3, 5, 8, 20, 40])
        members = [self.ws() + self.key() + self.ws() + ":" + self.ws() + self.value(depth + 1)
                   + self.ws() for _ in range(n)]
        return "{" + self.ws() + ",".join(members) + "}"

    def event(self):
        """An event envelope, so data mode has something to find."""
        r = self.r
        members = ['"id":' + json.dumps("evt_%d" % r.randint(0, 10**9)), '"type":"post.created"']
        for _ in range(r.randint(0, 3)):
            members.append(self.key() + ":" + self.value(2))
        for _ in range(r.choice([0, 1, 1, 1, 2])):
            members.insert(r.randint(0, len(members)),
                           r.choice(['"data"', '"d\\u0061ta"']) + self.ws() + ":" + self.ws()
                           + self.value(1))
        r.shuffle(members)
        return self.ws() + "{" + ",".join(self.ws() + m + self.ws() for m in members) + "}" \
            + self.ws()

    def broken(self, doc):
        r = self.r
        k = r.random()
        i = r.randint(0, len(doc))
        if k < 0.3 and doc:
            return doc[:i] + doc[i + 1:]
        if k < 0.6:
            return doc[:i] + r.choice([",", "]", "}", '"', "\\", "0", "-", ".", "e", "x", ":",
                                       "\x01", "\x1f", " ", "'", "NaN", "01", ",]"]) + doc[i:]
        if k < 0.8:
            return doc[:i]
        return r.choice(["[1,]", "{\"a\":1,}", "NaN", "Infinity", "-", "01", "1.", ".5", "+1",
                         "'x'", "\"\\x\"", "\"\\u12\"", "[1 2]", "{\"a\" 1}", "{a:1}", "tru",
                         "nul", "\"\t\"", "1 2", "[]]", "\ufeff{}", "{\"a\":1}x", "", " "])


def numbers(rng):
    """Single-number documents: every power of two and random doubles, each
    written several ways, where the shortest-digits search is hardest."""
    docs = []
    for e in range(-1074, 1024):
        x = 2.0 ** e
        docs += [repr(x), "%.17g" % x, "%.30e" % x]
    for _ in range(N_DOUBLES):
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if x != x or abs(x) == float("inf"):
            continue
        docs += [repr(x), "%.17g" % x, "%.*e" % (rng.randint(0, 16), x)]
    for i in range(1, 23):  # around the exponent-form switches at 1e21 and 1e-7
        docs += ["1e%d" % i, "1e-%d" % i, "123e%d" % i, "1.5e-%d" % i, "9" * i,
                 "0." + "0" * i + "1"]
    return docs


def run_tool(tool, mode, docs):
    data = b"".join(b"%d\n" % len(d) + d for d in docs)
    p = subprocess.run([tool, mode], input=data, stdout=subprocess.PIPE, timeout=240)
    if p.returncode != 0:
        sys.exit(f"test_payload_node: payload_tool {mode} exited with {p.returncode}")
    out, pos, res = p.stdout, 0, []
    while pos < len(out):
        nl = out.index(b"\n", pos)
        rc, n = (int(x) for x in out[pos:nl].split())
        res.append((rc, out[nl + 1:nl + 1 + n]))
        pos = nl + 1 + n
    if len(res) != len(docs):
        sys.exit(f"test_payload_node: {mode}: {len(res)} results for {len(docs)} documents")
    return res


def main():
    node = find_node()
    if not node:
        print("SKIP: node not found; the JSON differential test needs it as the oracle")
        return 0
    tool = find_tool()
    rng = random.Random(SEED)
    gen = Gen(rng)

    docs = [gen.event() if rng.random() < 0.5 else gen.ws() + gen.value(0) + gen.ws()
            for _ in range(N_DOCS)]
    docs += [gen.broken(rng.choice(docs)) for _ in range(N_BROKEN)]
    docs += ["[" * d + "]" * d for d in (100, 511, 512)]
    docs += numbers(rng)
    bdocs = [d.encode("utf-8") for d in docs]

    compact = run_tool(tool, "compact", bdocs)
    data = run_tool(tool, "data", bdocs)
    message = run_tool(tool, "message", bdocs)

    def text(res):
        rc, b = res
        if rc != 0:
            return None
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return "\x00invalid utf-8 from herald"

    cases = [{"doc": d, "data": text(data[i])} for i, d in enumerate(docs)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
        path = f.name
    try:
        p = subprocess.run([node, "-e", NODE_ORACLE, path], stdout=subprocess.PIPE, timeout=240)
    finally:
        os.unlink(path)
    if p.returncode != 0:
        sys.exit("test_payload_node: node oracle failed")
    expect = json.loads(p.stdout.decode("utf-8"))

    failures = []
    stats = {"valid": 0, "invalid": 0, "data": 0}

    def fail(i, what, want, got):
        failures.append(f"doc {i} {what}: input {docs[i][:200]!r}\n  want {want!r}\n  got  {got!r}")

    for i, ex in enumerate(expect):
        crc, cout = compact[i]
        if ex["compact"] is None:
            stats["invalid"] += 1
            if crc == 0:
                fail(i, "compact accepted what JSON.parse rejects", None, cout[:200])
            if message[i][0] == 0:
                fail(i, "message accepted invalid JSON", None, message[i][1][:200])
            if data[i][0] == 0:
                fail(i, "data accepted invalid JSON", None, data[i][1][:200])
            continue
        stats["valid"] += 1
        want = ex["compact"].encode("utf-8")
        if crc != 0 or cout != want:
            fail(i, "compact", want[:300], (crc, cout[:300]))
        mwant = ex["message"].encode("utf-8")
        if message[i][0] != 0 or message[i][1] != mwant:
            fail(i, "message", mwant[:300], (message[i][0], message[i][1][:300]))
        if ex["data"] is None:
            if data[i][0] == 0:
                fail(i, "data found a member JSON.parse does not have", None, data[i][1][:200])
        else:
            stats["data"] += 1
            if not ex["dataOk"]:
                fail(i, "data", ex["data"][:300], (data[i][0], data[i][1][:300]))

    print(f"test_payload_node: seed {SEED}: {len(docs)} documents, {stats['valid']} valid, "
          f"{stats['invalid']} rejected by both, {stats['data']} with data; "
          f"{len(failures)} mismatches")
    for f in failures[:20]:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
