"""Staff accounts without a server: the password KDF, the role × action table, session cookies
and their CSRF tokens."""

from __future__ import annotations

import pytest

from server import staff_roles
from server.accounts import (
    Account,
    AccountBook,
    AccountError,
    check_name,
    check_password,
    hash_password,
    verify_password,
)
from server.staff import SESSION_SECONDS, csrf_token, new_session, read_session

# small parameters where only the format is under test: the real ones cost 32 MiB and ~0.1 s
FAST = {"n": 2**10, "r": 8, "p": 1}


def test_a_password_verifies_and_a_wrong_one_does_not() -> None:
    encoded = hash_password("correct horse battery")  # the real parameters, once
    kind, n, r, p, salt, key = encoded.split("$")
    assert (kind, n, r, p) == ("scrypt", str(2**15), "8", "1")
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)
    assert not verify_password("", encoded)


def test_each_hash_has_its_own_salt_and_keeps_its_parameters() -> None:
    a, b = hash_password("same password", **FAST), hash_password("same password", **FAST)
    assert a != b, "a random salt: the same password never gives the same hash"
    assert verify_password("same password", a) and verify_password("same password", b)
    assert a.split("$")[1] == str(2**10), "the parameters travel with the hash"


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt$1024$8$1$not base64!$AAAA",
        "bcrypt$1024$8$1$AAAA$AAAA",
        "scrypt$1024$8",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",  # N not a power of two
    ],
)
def test_a_broken_hash_never_verifies(encoded: str) -> None:
    assert not verify_password("anything at all", encoded)


def test_a_tampered_hash_does_not_verify() -> None:
    encoded = hash_password("correct horse battery", **FAST)
    head, key = encoded.rsplit("$", 1)
    flipped = ("B" if key[0] == "A" else "A") + key[1:]
    assert not verify_password("correct horse battery", f"{head}${flipped}")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("yuki", True),
        ("y.tanaka-2", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("", False),
        ("token", False),
        ("Token", False),
        (".hidden", False),
        ("ゆき", False),
        ("a b", False),
        ("a~b", False),
    ],
)
def test_account_names(name: str, ok: bool) -> None:
    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(AccountError, match="account name"):
            check_name(name)


def test_a_short_password_is_refused_with_what_is_expected() -> None:
    with pytest.raises(AccountError, match="10-1024 characters"):
        check_password("short")


# -- the permission table --------------------------------------------------------------------------

#: role × action: what each role may do (the table a reviewer reads against server/staff_roles.py)
TABLE = {
    #             host   staff  admin
    "console":   (True,  True,  True),
    "briefings": (False, True,  True),
    "events":    (True,  True,  True),
    "invites":   (True,  True,  True),
    "moderation": (True, True,  True),
    "kiosks":    (False, True,  True),
    "counters":  (False, True,  True),
    "audit":     (False, True,  True),
    "accounts":  (False, False, True),
}  # fmt: skip


@pytest.mark.parametrize("action", list(TABLE))
@pytest.mark.parametrize("role", staff_roles.ROLES)
def test_the_role_action_table(role: str, action: str) -> None:
    expected = TABLE[action][staff_roles.ROLES.index(role)]
    assert staff_roles.may(role, action) is expected


def test_the_table_has_every_action_and_no_other() -> None:
    assert set(staff_roles.ACTIONS) == set(TABLE)
    with pytest.raises(KeyError, match="no staff action 'brefings'"):
        staff_roles.roles_for("brefings")
    assert not staff_roles.may("guest", "console"), "an unknown role may do nothing"


# -- sessions --------------------------------------------------------------------------------------


def test_a_session_names_its_account_and_expires() -> None:
    value = new_session("tok", "yuki", "gen1", now=1000.0)
    s = read_session("tok", value, now=1000.0 + SESSION_SECONDS - 1)
    assert s is not None and (s.name, s.generation) == ("yuki", "gen1")
    assert read_session("tok", value, now=1000.0 + SESSION_SECONDS) is None, "expired"
    assert read_session("other token", value, now=1001.0) is None, "another server's key"
    name, gen, exp, nonce, sig = value.split("~")
    forged = "~".join(["admin", gen, exp, nonce, sig])
    assert read_session("tok", forged, now=1001.0) is None, "the name is signed"
    longer = "~".join([name, gen, str(int(exp) + 99999), nonce, sig])
    assert read_session("tok", longer, now=1001.0) is None, "the expiry is signed"


def test_the_csrf_token_is_bound_to_its_session() -> None:
    a, b = new_session("tok", "yuki", "g"), new_session("tok", "yuki", "g")
    assert csrf_token("tok", a) == csrf_token("tok", a)
    assert csrf_token("tok", a) != csrf_token("tok", b)
    assert csrf_token("tok", a) != csrf_token("other", a)


def test_a_new_password_is_a_new_generation() -> None:
    old = Account("yuki", "staff", hash_password("first password", **FAST), 0.0)
    new = Account("yuki", "staff", hash_password("first password", **FAST), 1.0)
    assert old.generation != new.generation
    book = AccountBook()
    book.learn(old)
    assert book.get("yuki") == old
    book.revoke("nonce-1", until=9e9)
    assert book.is_revoked("nonce-1") and not book.is_revoked("nonce-2")
