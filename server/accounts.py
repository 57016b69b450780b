"""Staff accounts: names, roles and passwords hashed with scrypt, kept in the records Store.

An account is a value ``staff_accounts/NAME`` (``{"name", "role", "hash", "changed"}``); every
change (add, password, remove) also appends a line, without the hash, to the stream
``staff_accounts``, which is how the accounts are listed (the Store has no key listing) and how a
running server learns of a change made by ``emachi staff ...`` on the same Store: each process
keeps an :class:`AccountBook` in memory, so that checking a session on every staff request never
waits on the Store, and reads the stream's new lines every :data:`POLL_SECONDS`. A sign-in reads
the account from the Store itself, so an account added a moment ago signs in at once. Sign-outs
go in the same stream (the session's nonce and its expiry), so a session signed out in one
process ends in every process of a cluster within a poll.

Passwords: ``hashlib.scrypt`` with a random 16-byte salt, N=2^15, r=8, p=1 (32 MiB, about 0.1 s on
one core: OWASP's minimum is N=2^17 with r=8 at 128 MiB, lowered here for a 2-core city server
that may see a burst of sign-ins; the parameters are stored with each hash, so raising them later
keeps older hashes valid). Encoded as ``scrypt$N$r$p$salt$hash`` (base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from server.staff_roles import ROLES
from server.store import Append, Batch, Delete, Put, Store
from server.store.base import dumps

__all__ = [
    "DUMMY_HASH",
    "TOKEN_ACCOUNT",
    "check_role",
    "Account",
    "AccountBook",
    "AccountError",
    "SPACE",
    "STREAM",
    "POLL_SECONDS",
    "hash_password",
    "verify_password",
    "check_name",
    "check_password",
    "change_batch",
    "list_accounts",
    "load_account",
]

SPACE = "staff_accounts"
STREAM = "staff_accounts"
POLL_SECONDS = 2.0
#: the name the shared staff token acts as; no account may take it
TOKEN_ACCOUNT = "token"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAXMEM = 128 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


class AccountError(ValueError):
    """A name, role or password that cannot be taken; the text says what is expected."""


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` is the one ``encoded`` was made from (constant time in the key)."""
    try:
        kind, n, r, p, salt, key = encoded.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(key, validate=True)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


#: verified against when the name is unknown, so that a wrong name takes as long as a wrong password
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_name(name: str) -> str:
    """Raises AccountError unless ``name`` is 1-32 of ``A-Z a-z 0-9 . _ -`` (not ``token``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AccountError(
            f"account name: expected 1-32 letters, digits, '.', '_' or '-' (starting with a "
            f"letter or digit), got {name!r:.40}"
        )
    if name.lower() == TOKEN_ACCOUNT:
        raise AccountError("account name: 'token' is the shared staff token's; choose another")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role: expected one of {', '.join(ROLES)}, got {role!r:.20}")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(
            f"password: expected {MIN_PASSWORD}-{MAX_PASSWORD} characters, got {len(password)}"
        )
    return password


@dataclass(frozen=True, slots=True)
class Account:
    """One staff account as stored; :attr:`generation` changes with the password."""

    name: str
    role: str
    hash: str
    changed: float

    @property
    def generation(self) -> str:
        """A short digest of the password hash: a session carries it, so that a new password
        ends the sessions signed in with the old one."""
        return hashlib.sha256(self.hash.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "hash": self.hash, "changed": self.changed}

    @classmethod
    def from_json(cls, v: Any) -> Account | None:
        if not isinstance(v, dict):
            return None
        try:
            return cls(str(v["name"]), str(v["role"]), str(v["hash"]), float(v["changed"]))
        except (KeyError, TypeError, ValueError):
            return None


def change_batch(op: str, name: str, account: Account | None, extra: tuple[Any, ...] = ()) -> Batch:
    """One batch: the account's value set (or deleted) and its change line, plus ``extra`` ops
    (the audit record of the change), applied together."""
    ops: list[Any] = [
        Put(SPACE, name, dumps(account.to_json())) if account is not None else Delete(SPACE, name)
    ]
    line = {"op": op, "name": name, "at": time.time()}
    ops.append(Append(STREAM, secrets.token_hex(8), dumps(line)))
    return Batch(f"accounts-{secrets.token_hex(8)}", (*ops, *extra))


async def load_account(store: Store, name: str) -> Account | None:
    """The account ``name`` as the Store has it now (StoreAway when it does not answer)."""
    return Account.from_json(await store.get(SPACE, name))


async def _all_lines(store: Store, after: int = 0) -> list[Any]:
    out: list[Any] = []
    while True:
        page = await store.records(STREAM, after=after + len(out), limit=1000)
        out += [r.data for r in page]
        if len(page) < 1000:
            return out


async def list_accounts(store: Store) -> list[Account]:
    """Every account, by name."""
    names = sorted({d["name"] for d in await _all_lines(store) if d.get("op") != "signout"})
    found = [await load_account(store, n) for n in names]
    return [a for a in found if a is not None]


@dataclass(slots=True)
class AccountBook:
    """This process's copy of the accounts and of the sessions signed out, read from the Store.

    :meth:`refresh` reads the change lines appended since the last call; the caller polls it.
    """

    accounts: dict[str, Account] = field(default_factory=dict)
    #: nonce of a signed-out session -> when it would have expired
    revoked: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    #: the first refresh succeeded (until then a removed account's session cannot be told apart)
    ready: bool = False

    def get(self, name: str) -> Account | None:
        return self.accounts.get(name)

    def learn(self, account: Account) -> None:
        """Take an account just read from the Store (a sign-in)."""
        self.accounts[account.name] = account

    def is_revoked(self, nonce: str) -> bool:
        return nonce in self.revoked

    def revoke(self, nonce: str, until: float) -> dict[str, Any]:
        """Forget a session here at once; returns the line to append for the other processes."""
        self.revoked[nonce] = until
        return {"op": "signout", "nonce": nonce, "until": until}

    async def refresh(self, store: Store) -> int:
        """Read the new change lines and the accounts they name; returns how many lines.

        Raises:
            StoreAway: the Store did not answer (the book stays as it was).
        """
        lines = await _all_lines(store, self.seen)
        names: set[str] = set()
        for d in lines:
            if not isinstance(d, dict):
                continue
            if d.get("op") == "signout":
                nonce, until = d.get("nonce"), d.get("until")
                if isinstance(nonce, str) and isinstance(until, int | float):
                    self.revoked[nonce] = float(until)
            elif isinstance(d.get("name"), str):
                names.add(d["name"])
        fresh = {n: await load_account(store, n) for n in names}
        for n, a in fresh.items():
            if a is None:
                self.accounts.pop(n, None)
            else:
                self.accounts[n] = a
        now = time.time()
        self.revoked = {k: t for k, t in self.revoked.items() if t > now}
        self.seen += len(lines)
        self.ready = True
        return len(lines)
