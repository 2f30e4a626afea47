#!/usr/bin/python3
"""Receiver-side signature checks for every herald scheme, written from each
scheme's documented procedure and never by calling herald, so the test
receivers catch a herald that signs the wrong bytes.

    verify(scheme, secrets, headers, body, header_name=None, now=None,
           tolerance=300) -> (ok, reason)

headers maps lowercase header names to values; body is the exact bytes
received. A request is valid when any one of its signatures matches any one
of the secrets, which is how a receiver accepts both keys during a rotation.
Needs only the standard library, plus python3-cryptography for Ed25519.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time

DEFAULT_HEADER = "x-signature"
SCHEMES = (
    "standard-webhooks",
    "standard-webhooks-ed25519",
    "hmac-sha256-hex",
    "hmac-sha256-base64",
    "timestamped",
    "message-field",
    "none",
)


def _b64decode(text):
    """Strict standard base64; missing padding is tolerated."""
    text = text.strip()
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text, validate=True)


def hmac_key(secret):
    """The HMAC key of a secret: whsec_ is base64, anything else its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return _b64decode(secret[len("whsec_"):])
    return secret.encode("utf-8")


def _hmac(secret, data):
    return hmac.new(hmac_key(secret), data, hashlib.sha256).digest()


def ed25519_public_key(secret):
    """whpk_ holds the 32-byte public key; whsk_ the 32-byte seed."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if secret.startswith("whpk_"):
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64decode(secret[5:]))
    if secret.startswith("whsk_"):
        seed = _b64decode(secret[5:])[:32]
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raise ValueError("an Ed25519 key starts with whpk_ or whsk_")


def public_key_string(secret):
    """whsk_... -> whpk_..., what a sender hands its receivers."""
    from cryptography.hazmat.primitives import serialization

    raw = ed25519_public_key(secret).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "whpk_" + base64.b64encode(raw).decode()


def _check_time(ts, now, tolerance):
    if not ts.isdigit():
        return "timestamp %r is not unix seconds" % ts
    if tolerance is not None and tolerance >= 0:
        skew = int(now) - int(ts)
        if skew > tolerance:
            return "timestamp %s is %d s too old" % (ts, skew)
        if -skew > tolerance:
            return "timestamp %s is %d s in the future" % (ts, -skew)
    return None


def _split_list(value):
    """Bare signatures separated by commas (and tolerated whitespace)."""
    return [p for p in value.replace(",", " ").split() if p]


def _standard(secrets, headers, body, now, tolerance, asymmetric):
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", ts),
                        ("webhook-signature", sigs)):
        if not value:
            return False, "missing header %s" % name
    bad = _check_time(ts, now, tolerance)
    if bad:
        return False, bad
    signed = ("%s.%s." % (msg_id, ts)).encode() + body
    version = "v1a" if asymmetric else "v1"
    candidates = [s.split(",", 1)[1] for s in sigs.split(" ")
                  if s.startswith(version + ",")]
    if not candidates:
        return False, "no %s signature in webhook-signature" % version
    for secret in secrets:
        if asymmetric:
            key = ed25519_public_key(secret)
            for cand in candidates:
                try:
                    key.verify(_b64decode(cand), signed)
                    return True, "ok"
                except Exception:  # InvalidSignature, or junk that is not base64
                    continue
        else:
            expected = base64.b64encode(_hmac(secret, signed)).decode()
            for cand in candidates:
                if hmac.compare_digest(cand, expected):
                    return True, "ok"
    return False, "no signature matches"


def _timestamped(secrets, value, body, now, tolerance):
    ts = None
    v1 = []
    for item in value.split(","):
        key, _, val = item.strip().partition("=")
        if key == "t":
            if ts is not None:
                return False, "more than one t="
            ts = val
        elif key == "v1":
            v1.append(val)
    if ts is None:
        return False, "no t= in the signature header"
    bad = _check_time(ts, now, tolerance)
    if bad:
        return False, bad
    if not v1:
        return False, "no v1= in the signature header"
    signed = ts.encode() + b"." + body
    for secret in secrets:
        expected = _hmac(secret, signed).hex()
        if any(hmac.compare_digest(c.lower(), expected) for c in v1):
            return True, "ok"
    return False, "no signature matches"


def verify(scheme, secrets, headers, body, header_name=None, now=None, tolerance=300):
    """Returns (True, "ok") or (False, reason). See the module comment."""
    if isinstance(secrets, str):
        secrets = [secrets]
    headers = {k.lower(): v for k, v in headers.items()}
    if isinstance(body, str):
        body = body.encode("utf-8")
    if now is None:
        now = time.time()
    if scheme == "none":
        return True, "unsigned"
    if scheme == "standard-webhooks":
        return _standard(secrets, headers, body, now, tolerance, asymmetric=False)
    if scheme == "standard-webhooks-ed25519":
        return _standard(secrets, headers, body, now, tolerance, asymmetric=True)
    if scheme not in SCHEMES:
        return False, "unknown scheme %r" % scheme

    name = (header_name or DEFAULT_HEADER).lower()
    value = headers.get(name)
    if not value:
        return False, "missing header %s" % name
    if scheme == "timestamped":
        return _timestamped(secrets, value, body, now, tolerance)

    signed = body
    if scheme == "message-field":
        try:
            doc = json.loads(body)
            signed = doc["message"].encode("utf-8")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeError):
            return False, 'body is not a JSON object with a string "message"'
        if not isinstance(doc["message"], str):
            return False, '"message" is not a string'
    candidates = _split_list(value)
    for secret in secrets:
        mac = _hmac(secret, signed)
        if scheme == "hmac-sha256-hex":
            expected = mac.hex()
            if any(hmac.compare_digest(c.lower(), expected) for c in candidates):
                return True, "ok"
        else:
            for cand in candidates:
                try:
                    if hmac.compare_digest(_b64decode(cand), mac):
                        return True, "ok"
                except (binascii.Error, ValueError):
                    continue
    return False, "no signature matches"


def _self_test():
    # Standard Webhooks' published example.
    sw = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert verify("standard-webhooks", [secret], sw, body, now=1614265330) == (True, "ok")
    assert not verify("standard-webhooks", [secret], sw, body + b" ", now=1614265330)[0]
    assert not verify("standard-webhooks", [secret], sw, body, now=1614265330 + 301)[0]
    assert not verify("standard-webhooks", [secret], sw, body, now=1614265330 - 301)[0]
    rotated = dict(sw, **{"webhook-signature": "v1,AAAA " + sw["webhook-signature"]})
    assert verify("standard-webhooks", ["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", secret],
                  rotated, body, now=1614265330)[0]

    # The Standard Webhooks Go library's Ed25519 example.
    ed = dict(sw, **{"webhook-signature":
                     "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYG"
                     "b7KaaBRdM5WqyeFiL8Ag=="})
    whsk = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
    assert verify("standard-webhooks-ed25519", [whsk], ed, body, now=1614265330)[0]
    assert verify("standard-webhooks-ed25519", [public_key_string(whsk)], ed, body,
                  now=1614265330)[0]
    assert not verify("standard-webhooks-ed25519", [whsk], ed, body + b"x", now=1614265330)[0]

    # RFC 4231 test case 2, through the plain schemes.
    data = b"what do ya want for nothing?"
    mac_hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    mac_b64 = base64.b64encode(bytes.fromhex(mac_hex)).decode()
    assert verify("hmac-sha256-hex", ["Jefe"], {"x-signature": mac_hex}, data)[0]
    assert verify("hmac-sha256-hex", ["other", "Jefe"], {"x-signature": "00," + mac_hex}, data)[0]
    assert not verify("hmac-sha256-hex", ["Jefe"], {"x-signature": mac_hex}, data + b"!")[0]
    assert verify("hmac-sha256-base64", ["Jefe"], {"x-hub": mac_b64}, data, header_name="X-Hub")[0]
    msg_body = json.dumps({"message": data.decode()}).encode()
    assert verify("message-field", ["Jefe"], {"x-signature": mac_b64}, msg_body)[0]
    ts_mac = hmac.new(b"Jefe", b"1700000000." + data, hashlib.sha256).hexdigest()
    value = "t=1700000000,v1=%s" % ts_mac
    assert verify("timestamped", ["Jefe"], {"x-signature": value}, data, now=1700000000)[0]
    assert not verify("timestamped", ["Jefe"], {"x-signature": value}, data, now=1700000400)[0]
    assert not verify("timestamped", ["Jefe"], {"x-signature": value}, data, now=1699999600)[0]
    print("verifiers: self-test passed")


if __name__ == "__main__":
    _self_test()
