"""The staff log: what each account did, appended to a hash chain nobody can quietly rewrite.

``audit(app, actor, action, target, **data)`` is synchronous and never waits: it seals a record
and hands it to the records outbox (``app[OUTBOX]``). A record is JSON::

    {"v": 1, "lane": "p-3fa2c1d0", "n": 7, "prev": "<sha256 of the record before>",
     "at": 1717830000123, "actor": "yuki", "action": "briefing.start", "target": "2022-06-29",
     "data": {...}, "hash": "<sha256 of all the fields above, canonical JSON>"}

It holds who, what, on what and when: never chat text, questions or voice (``data`` takes short
scalars only, and names like ``text`` or ``voice`` are refused).

How the chain stays one chain in a cluster. Several processes append to the same Store, and a
process cannot read "the last record" and append after it atomically through the outbox (that
would wait on the Store). So each writer is a *lane*: a process (one lane per run) or one
``emachi staff`` command. Within a lane the records are numbered (``n`` = 1, 2, ...) and each
carries the hash of the one before it in the lane; the outbox applies a process's batches in
order, so a lane's records lie in the Store's Append order too. A lane's first record carries
instead the hash of the newest record of any lane the writer could read when it began (the
``audit/head`` value, kept with every record in the same batch), or ``""`` when the log was
empty: lanes are linked to one another, so a whole run that is removed breaks the link of the
next one. With one process (the embedded default) this is one straight chain across restarts.
A record written before the link is read (the Store away at start) waits in memory.

``emachi audit verify`` (:func:`verify`) reads the whole stream in the Store's order and names the
first record that was changed (its hash does not match its content, or the next record's
``prev`` does not match it), removed (a gap in its lane's numbers, a link to a hash that is not in
the log, or a lane's head value, ``audit/lane:ID``, past the lane's last record) or reordered (a
number that comes after a later one, a record moved to another row). What no hash chain can catch
on its own is someone who rewrites every record after a point *and* the heads: for that, keep the
head hash that ``verify`` prints somewhere else and check it later with ``--expect HASH``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from server.keys import AUDIT, HEALTH, OUTBOX, STORE
from server.store import Append, Outbox, Put, Store, StoreAway
from server.store.base import dumps
from server.tasks import stop_task

__all__ = [
    "audit",
    "setup",
    "AuditLog",
    "Lane",
    "Problem",
    "Verifier",
    "verify",
    "seal",
    "record_hash",
    "lane_ops",
    "read_head",
    "STREAM",
    "SPACE",
]

log = logging.getLogger("emachi.audit")

STREAM = "audit"
SPACE = "audit"
#: records that may wait in memory for the link at start (the Store away)
PENDING_LIMIT = 10_000
#: the newest records the console keeps in memory
KEEP = 1000
MAX_TEXT = 200
#: what a record never holds: what people said
_FORBIDDEN = frozenset({"text", "chat", "message", "body", "voice", "audio", "transcript"})
_FIELDS = ("v", "lane", "n", "prev", "at", "actor", "action", "target", "data")


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of a record's fields other than ``hash``, as canonical JSON."""
    return hashlib.sha256(_canonical({k: record.get(k) for k in _FIELDS})).hexdigest()


def _check_text(what: str, value: object, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"audit {what}: expected text of at most {limit} characters")
    return value


def check_data(data: dict[str, object]) -> dict[str, object]:
    """``data`` as a record may hold it: short scalars (or short lists of them), no speech.

    Raises:
        ValueError: a key that names speech, or a value that is not a short scalar.
    """
    out: dict[str, object] = {}
    for k, v in data.items():
        if k.lower() in _FORBIDDEN:
            raise ValueError(f"audit data: {k!r} is what people said; the log never holds it")
        items = v if isinstance(v, list | tuple) else [v]
        if isinstance(v, list | tuple) and len(v) > 50:
            raise ValueError(f"audit data {k!r}: at most 50 items")
        for x in items:
            if isinstance(x, str):
                _check_text(f"data {k!r}", x)
            elif x is not None and not isinstance(x, int | float | bool):
                raise ValueError(f"audit data {k!r}: expected text, numbers, true/false or null")
        out[k] = list(v) if isinstance(v, list | tuple) else v
    return out


def seal(
    lane: str,
    n: int,
    prev: str,
    actor: str,
    action: str,
    target: str = "",
    data: dict[str, object] | None = None,
    at: int | None = None,
) -> dict[str, Any]:
    """A complete record (with its ``hash``)."""
    record: dict[str, Any] = {
        "v": 1,
        "lane": lane,
        "n": n,
        "prev": prev,
        "at": int(time.time() * 1000) if at is None else at,
        "actor": _check_text("actor", actor, 64),
        "action": _check_text("action", action, 64),
        "target": _check_text("target", target),
        "data": check_data(data or {}),
    }
    record["hash"] = record_hash(record)
    return record


def record_id(record: dict[str, Any]) -> str:
    return f"{record['lane']}:{record['n']}"


def lane_ops(record: dict[str, Any]) -> tuple[Append, Put, Put]:
    """What one record writes: the record, its lane's head and the log's head (one batch)."""
    head = dumps({"lane": record["lane"], "n": record["n"], "hash": record["hash"]})
    return (
        Append(STREAM, record_id(record), dumps(record)),
        Put(SPACE, f"lane:{record['lane']}", head),
        Put(SPACE, "head", head),
    )


async def read_head(store: Store) -> str:
    """The hash a new lane links to: the newest record's as ``audit/head`` says, or ``""``.

    Raises:
        StoreAway: no answer.
    """
    head = await store.get(SPACE, "head")
    return str(head["hash"]) if isinstance(head, dict) and "hash" in head else ""


@dataclass(slots=True)
class Lane:
    """One writer's place in the chain: its id, its last number and hash (None until linked)."""

    id: str
    n: int = 0
    last: str | None = None

    @classmethod
    def new(cls, kind: str = "p") -> Lane:
        return cls(f"{kind}-{secrets.token_hex(4)}")

    def next(self, actor: str, action: str, target: str, data: dict[str, object]) -> dict[str, Any]:
        """Seal the lane's next record and move on to it.

        Raises:
            ValueError: bad fields (see :func:`seal`); the lane does not move.
        """
        assert self.last is not None, "a lane is linked before it writes"
        record = seal(self.id, self.n + 1, self.last, actor, action, target, data)
        self.n, self.last = record["n"], record["hash"]
        return record


class AuditLog:
    """This process's lane, written through the records outbox; the console's view of the log."""

    def __init__(self, outbox: Outbox, store: Store) -> None:
        self.outbox = outbox
        self.store = store
        self.lane = Lane.new()
        self.pending: list[tuple[str, str, str, dict[str, object]]] = []
        self.dropped = 0
        self.tail = Tail()

    @property
    def linked(self) -> bool:
        return self.lane.last is not None

    def write(self, actor: str, action: str, target: str, data: dict[str, object]) -> None:
        """Append one record (synchronous). Bad fields raise ValueError before anything is kept."""
        check_data(data)
        _check_text("actor", actor, 64), _check_text("action", action, 64)
        _check_text("target", target)
        if not self.linked:
            if len(self.pending) >= PENDING_LIMIT:
                self._drop(action)
                return
            self.pending.append((actor, action, target, data))
            return
        self._emit(actor, action, target, data)

    def _drop(self, action: str) -> None:
        self.dropped += 1
        log.error("audit record not kept: the records outbox is full", extra={"action": action})

    def _emit(self, actor: str, action: str, target: str, data: dict[str, object]) -> None:
        # three operations; checked first, so that either all of them are taken or none
        if self.outbox.waiting + 3 > self.outbox.limit:
            self._drop(action)
            return
        record = self.lane.next(actor, action, target, data)
        append, lane_head, head = lane_ops(record)
        self.outbox.append(append.stream, append.id, record)
        self.outbox.put(SPACE, lane_head.key, json.loads(lane_head.value))
        self.outbox.put(SPACE, head.key, json.loads(head.value))

    async def link(self) -> None:
        """Read the log's head and start the lane after it; write what waited. Retries while
        the Store is away (this runs as a task from the start)."""
        delay = 0.1
        while True:
            try:
                prev = await read_head(self.store)
                break
            except StoreAway:
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)
        self.lane.last = prev
        waiting, self.pending = self.pending, []
        for item in waiting:
            self._emit(*item)

    def health(self) -> dict[str, Any]:
        return {
            "lane": self.lane.id,
            "linked": self.linked,
            "written": self.lane.n,
            "dropped": self.dropped,
        }


def audit(app: web.Application, actor: str, action: str, target: str = "", **data: object) -> None:
    """Append what ``actor`` (an account name) did to the staff log; never waits.

    Args:
        actor: the account (``server.staff.Actor.name``), ``token`` for the shared token.
        action: a dotted name, e.g. ``briefing.start``, ``event.edit``, ``invite.revoke``.
        target: what it acted on (a briefing id, an event id, an avatar), if anything.
        data: short facts (numbers, short text): never chat text or voice.

    Raises:
        ValueError: a field too long, or data that is speech or not a short scalar.
        RuntimeError: the log is not mounted on ``app`` (``server.audit.setup``).
    """
    if AUDIT not in app:
        raise RuntimeError("the staff log is not mounted: server.audit.setup is in server.features")
    app[AUDIT].write(actor, action, target, dict(data))


def setup(app: web.Application) -> None:
    """Mount the staff log (after the records store, whose outbox it writes to)."""
    app[AUDIT] = log_ = AuditLog(app[OUTBOX], app[STORE])
    app[HEALTH]["audit"] = log_.health
    app.cleanup_ctx.append(_link_ctx)


async def _link_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(app[AUDIT].link(), name="audit link")
    yield
    await stop_task(task)


# -- verification ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """The first break in the chain: the record's position in the Store's order and why."""

    position: int
    record: str
    why: str

    def __str__(self) -> str:
        return f"record {self.position} ({self.record}): {self.why}"


def _describe(d: dict[str, Any]) -> str:
    at = d.get("at")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at / 1000))
        if isinstance(at, int)
        else "?"
    )
    return f"{d.get('lane')}#{d.get('n')}, {when}, {d.get('actor')} {d.get('action')}"


@dataclass(slots=True)
class Verifier:
    """Checks records fed in the Store's order; the first problem found stays in :attr:`problem`.

    ``later`` (every ``(lane, n)`` of the whole log, when known) lets a gap be told apart as a
    record moved later (reordered) rather than removed.
    """

    later: set[tuple[str, int]] | None = None
    count: int = 0
    problem: Problem | None = None
    head: str = ""
    #: lane -> (last n, its hash, its position, its description)
    lanes: dict[str, tuple[int, str, int, str]] = field(default_factory=dict)
    hashes: set[str] = field(default_factory=set)
    cold_only: bool = True  # every record so far is of a lane that began on an empty log
    cold_lanes: set[str] = field(default_factory=set)

    def feed(self, position: int, stored_id: str, d: Any) -> Problem | None:
        self.count += 1
        if self.problem is None:
            why = self._check(position, stored_id, d)
            if isinstance(why, Problem):
                self.problem = why
            elif why is not None:
                label = _describe(d) if isinstance(d, dict) else stored_id
                self.problem = Problem(position, label, why)
        return self.problem

    def _check(self, position: int, stored_id: str, d: Any) -> str | Problem | None:
        if not isinstance(d, dict) or not all(k in d for k in (*_FIELDS, "hash")):
            return "changed: not an audit record any more"
        lane, n, prev = d["lane"], d["n"], d["prev"]
        if not isinstance(lane, str) or not isinstance(n, int) or not isinstance(prev, str):
            return "changed: its lane, number or link is not of the right kind"
        if record_hash(d) != d["hash"]:
            return "changed: its content does not match its hash"
        if stored_id != f"{lane}:{n}":
            return f"reordered: it was stored as {stored_id}, its content is {lane}:{n}"
        seen = self.lanes.get(lane)
        if n == 1:
            if seen is not None:
                return f"reordered: lane {lane} had begun before it (at #{seen[0]})"
            if prev == "":
                if not self.cold_only:
                    return "removed: it says the log was empty before it, and it was not"
                self.cold_lanes.add(lane)
            elif prev not in self.hashes:
                return (
                    "removed or changed: the record it follows (hash "
                    f"{prev[:12]}…) is not in the log before it"
                )
        elif seen is None:
            if self.later is not None and (lane, 1) in self.later:
                return f"reordered: the records before it in lane {lane} come later"
            return f"removed: the records before it in lane {lane} (#1-#{n - 1}) are missing"
        elif n <= seen[0]:
            return f"reordered: lane {lane} was at #{seen[0]} already"
        elif n > seen[0] + 1:
            missing = seen[0] + 1
            if self.later is not None and (lane, missing) in self.later:
                return f"reordered: {lane}#{missing} should come before it and comes later"
            return f"removed: {lane}#{missing}-#{n - 1} are missing before it"
        elif prev != seen[1]:
            # the one before was rewritten with a fresh hash of its own: name that one
            return Problem(
                seen[2],
                seen[3],
                f"changed: the next record of its lane ({lane}#{n}) links to what it was before",
            )
        if lane not in self.cold_lanes:
            self.cold_only = False
        self.lanes[lane] = (n, d["hash"], position, _describe(d))
        self.hashes.add(d["hash"])
        self.head = d["hash"]
        return None

    def finish(self, heads: dict[str, Any]) -> Problem | None:
        """Check the lanes' head values (``lane id -> {"n", "hash"}``) against the log's end."""
        if self.problem is not None:
            return self.problem
        for lane, h in sorted(heads.items()):
            if not isinstance(h, dict):
                continue
            n, last, _, _ = self.lanes.get(lane, (0, "", 0, ""))
            if isinstance(h.get("n"), int) and h["n"] > n:
                self.problem = Problem(
                    self.count + 1,
                    f"{lane}#{n + 1}",
                    f"removed: lane {lane} ends at #{n}, its head says #{h['n']} was written",
                )
                break
            if h.get("n") == n and h.get("hash") != last:
                self.problem = Problem(
                    self.count, f"{lane}#{n}", "changed: it is not the record its head names"
                )
                break
        return self.problem


async def _records(store: Store, after: int = 0) -> AsyncIterator[tuple[int, str, Any]]:
    while True:
        page = await store.records(STREAM, after=after, limit=1000)
        for r in page:
            yield r.seq, r.id, r.data
        if len(page) < 1000:
            return
        after += len(page)


async def verify(store: Store, expect: Iterable[str] = ()) -> tuple[Verifier, list[str]]:
    """Check the whole log of ``store``.

    Returns:
        The verifier (``count``, ``problem`` or None, ``head``) and the ``expect`` hashes that
        are not in the log.

    Raises:
        StoreAway: the Store did not answer.
    """
    later: set[tuple[str, int]] = set()
    async for _, _, d in _records(store):
        if isinstance(d, dict) and isinstance(d.get("lane"), str) and isinstance(d.get("n"), int):
            later.add((d["lane"], d["n"]))
    v = Verifier(later=later)
    async for pos, rid, d in _records(store):
        v.feed(pos, rid, d)
    heads: dict[str, Any] = {}
    lanes = {lane for lane, _ in later}
    top = await store.get(SPACE, "head")
    if isinstance(top, dict) and isinstance(top.get("lane"), str):
        lanes.add(top["lane"])
    for lane in sorted(lanes):
        heads[lane] = await store.get(SPACE, f"lane:{lane}")
    if (
        isinstance(top, dict)
        and isinstance(top.get("lane"), str)
        and heads.get(top["lane"]) is None
    ):
        heads[top["lane"]] = top
    v.finish(heads)
    missing = [h for h in expect if h not in v.hashes]
    return v, missing


@dataclass(slots=True)
class Tail:
    """The console's view: the newest records, read incrementally, checked as they come."""

    seen: int = 0
    records: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP))
    verifier: Verifier = field(default_factory=Verifier)

    async def read(self, store: Store) -> None:
        """Read what was appended since the last call.

        Raises:
            StoreAway: no answer (what was read before stays).
        """
        async for pos, rid, d in _records(store, self.seen):
            self.verifier.feed(pos, rid, d)
            self.records.append(
                {"position": pos, **d} if isinstance(d, dict) else {"position": pos}
            )
            self.seen = pos
