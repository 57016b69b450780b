"""The completion webhook: signature, replay window, body, and a ref counted once."""

from __future__ import annotations

import json

import pytest

from server.counters.refs import Refs
from server.counters.webhook import WINDOW, WebhookRefused, parse_body, sign, verify

SECRET = b"s3cret"
NOW = 1_750_000_000
BODY = json.dumps({"ref": "r" * 22, "completed_at": NOW}).encode()
GOOD = sign(SECRET, NOW, BODY)

VERIFY = [
    # (header, body, now, refused code or None)
    (GOOD, BODY, NOW, None),
    (GOOD, BODY, NOW + WINDOW, None),  # at the edge of the window
    (GOOD, BODY, NOW - WINDOW, None),  # a clock a little ahead of ours
    (GOOD, BODY, NOW + WINDOW + 1, "replayed"),  # too old: replayed
    (GOOD, BODY, NOW - WINDOW - 1, "replayed"),
    (GOOD, BODY + b" ", NOW, "forged"),  # the body changed
    (sign(b"other", NOW, BODY), BODY, NOW, "forged"),  # another secret
    (f"t={NOW + 1},v1={GOOD.split('v1=')[1]}", BODY, NOW, "forged"),  # the time changed
    (None, BODY, NOW, "unsigned"),
    ("", BODY, NOW, "unsigned"),
    ("v1=abc", BODY, NOW, "unsigned"),
    ("t=soon,v1=abc", BODY, NOW, "unsigned"),
    (f"t={NOW}", BODY, NOW, "unsigned"),
    ("t=\u00b2,v1=abc", BODY, NOW, "unsigned"),  # a digit to str.isdigit, not to int()
]


@pytest.mark.parametrize(("header", "body", "now", "code"), VERIFY)
def test_verify(header: str | None, body: bytes, now: float, code: str | None) -> None:
    if code is None:
        verify(SECRET, header, body, now)
        return
    with pytest.raises(WebhookRefused) as caught:
        verify(SECRET, header, body, now)
    assert (caught.value.status, caught.value.code) == (401, code)


def test_the_signature_is_hmac_sha256_of_t_dot_body() -> None:
    import hashlib
    import hmac

    mac = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert f"t={NOW},v1={mac}" == GOOD


BODIES = [
    (b'{"ref": "abcdefgh12", "completed_at": 5}', ("abcdefgh12", 5.0)),
    (b"not json", "bad_body"),
    (b"[]", "bad_body"),
    (b'{"ref": "short", "completed_at": 5}', "bad_body"),
    (b'{"ref": 12345678, "completed_at": 5}', "bad_body"),
    (b'{"ref": "abcdefgh12"}', "bad_body"),
    (b'{"ref": "abcdefgh12", "completed_at": "today"}', "bad_body"),
    (b'{"ref": "abcdefgh12", "completed_at": true}', "bad_body"),
    (b"{" + b" " * 5000 + b"}", "bad_body"),
    (b"[" * 1024 + b"]" * 1024, "bad_body"),  # nested past the JSON decoder's recursion limit
]


@pytest.mark.parametrize(("body", "expected"), BODIES)
def test_parse_body(body: bytes, expected: object) -> None:
    if isinstance(expected, tuple):
        assert parse_body(body) == expected
        return
    with pytest.raises(WebhookRefused) as caught:
        parse_body(body)
    assert caught.value.code == expected


def test_a_ref_completes_once_however_often_it_is_sent() -> None:
    refs = Refs(ttl=100.0)
    ref = refs.issue("juminhyo", "graffer", "2025-06-02T10", now=0.0)
    outcomes = [refs.complete(ref, now=1.0)[0] for _ in range(5)]
    assert outcomes == ["done", "already", "already", "already", "already"]
    assert refs.complete("never-issued-ref", now=1.0) == ("unknown", None)


def test_a_ref_expires() -> None:
    refs = Refs(ttl=100.0)
    ref = refs.issue("juminhyo", "graffer", "2025-06-02T10", now=0.0)
    assert refs.complete(ref, now=101.0)[0] == "unknown"


def test_refs_are_opaque_and_unguessable() -> None:
    refs = Refs()
    made = {refs.issue("juminhyo", "line", "h", now=0.0) for _ in range(1000)}
    assert len(made) == 1000
    assert all(len(r) >= 20 and "juminhyo" not in r for r in made)


def test_a_ref_from_the_store_keeps_its_done_mark() -> None:
    refs = Refs()
    ref = refs.issue("koseki", "graffer", "h", now=0.0)
    info = refs.known[ref]
    info.done = True
    other = Refs()
    back = type(info).from_record(info.as_record())
    assert back is not None
    other.learn(ref, back)
    assert other.complete(ref, now=1.0)[0] == "already"
