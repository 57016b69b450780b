"""What the counters keep in the records Store, through the outbox, and read back for staff.

No personal data: per counter and hour the counts of tickets, served, no-shows, left and dropped
and the summed wait and service seconds (``counter-stats``: key ``(hour, counter, field)``); per
day and procedure the completions the webhook reported (``counter-funnel``); each ref the kiosk
issued (``counter-refs``: procedure, channel, hour, done), expiring after 30 days; each booking
(``counter-bookings/DAY``: slot, display name, code hash, then each state its reservation
reached), its stream dropped after its day.
Views and opens come from the kiosk counts (``server.kiosk.counts``) already kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from server.store import Outbox, OutboxFull, Store, answered_within

from .refs import TTL, RefInfo

__all__ = ["CounterRecords", "STATS", "FUNNEL", "REFS", "FIELDS", "StatRow", "FunnelRow"]

log = logging.getLogger("emachi.counters.records")

STATS = "counter-stats"
FUNNEL = "counter-funnel"
REFS = "counter-refs"
BOOKINGS = "counter-bookings"
FIELDS = ("tickets", "served", "no_shows", "left", "dropped", "wait_s", "service_s")
READ_TIMEOUT = 1.0
PAGE = 1000


@dataclass(frozen=True, slots=True)
class StatRow:
    hour: str  # YYYY-MM-DDTHH, the city's time
    counter: str
    field: str
    n: int


@dataclass(frozen=True, slots=True)
class FunnelRow:
    day: str
    procedure: str
    viewed: int
    opened: int
    completed: int


class CounterRecords:
    """Writes through ``outbox`` (never waiting) and reads ``store`` (bounded)."""

    def __init__(self, outbox: Outbox, store: Store, clock: Callable[[], datetime]) -> None:
        self.outbox = outbox
        self.store = store
        self.clock = clock
        self.dropped = 0

    def _take(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except OutboxFull:
            self.dropped += 1
            log.warning("counter record dropped: the records outbox is full")

    def stat(self, counter: str, field: str, amount: float) -> None:
        hour = self.clock().strftime("%Y-%m-%dT%H")
        n = max(0, round(amount))
        if n:
            self._take(lambda: self.outbox.add(STATS, (hour, counter, field), n))

    def completed(self, procedure: str) -> None:
        day = self.clock().date().isoformat()
        self._take(lambda: self.outbox.add(FUNNEL, (day, procedure, "completed"), 1))

    def ref(self, ref: str, info: RefInfo) -> None:
        self._take(lambda: self.outbox.put(REFS, ref, info.as_record(), ttl=TTL))

    def booking(self, day: str, slot_id: str, data: dict[str, object]) -> None:
        self._take(lambda: self.outbox.append(f"{BOOKINGS}/{day}", slot_id, data))

    def booking_state(self, counter: str, slot: str, state: str) -> None:
        """A reservation reached ``state`` (in_booth, done, no_show): appended to its day's
        stream after the booking, so the read back at start ends where it was (a code used stays
        used). One record per state, so writing it twice is harmless."""
        data = {"c": counter, "s": slot, "st": state}
        self._take(
            lambda: self.outbox.append(f"{BOOKINGS}/{slot[:10]}", f"{counter}/{slot}/{state}", data)
        )

    def drop_bookings(self, day: str) -> None:
        self._take(lambda: self.outbox.drop_stream(f"{BOOKINGS}/{day}"))

    async def read_ref(self, ref: str) -> RefInfo | None:
        """A ref as the Store has it (issued by another process, or before a restart).

        Raises:
            StoreAway: no answer in time.
        """
        async with answered_within(READ_TIMEOUT):
            rec = await self.store.get(REFS, ref)
        return RefInfo.from_record(rec)

    async def bookings(self, day: str) -> list[dict[str, object]]:
        """The records of a day's bookings stream in the order written: each booking, then the
        states its reservation reached (``{"c", "s", "st"}``).

        Raises:
            TimeoutError: the Store did not answer in time. StoreAway.
        """
        out: list[dict[str, object]] = []
        after = 0
        async with asyncio.timeout(READ_TIMEOUT):
            while True:
                recs = await self.store.records(f"{BOOKINGS}/{day}", after, PAGE)
                out.extend(r.data for r in recs if isinstance(r.data, dict))
                if len(recs) < PAGE:
                    return out
                after = recs[-1].seq

    async def stats(self, since_hour: str) -> list[StatRow]:
        """Every committed count from ``since_hour`` on.

        Raises:
            StoreAway: no answer in time.
        """
        async with answered_within(READ_TIMEOUT):
            counts = await self.store.counters(STATS, since_hour)
        return [StatRow(k[0], k[1], k[2], n) for k, n in sorted(counts.items()) if len(k) == 3]

    async def funnel(self, since_day: str, kiosk_procedure: dict[str, str]) -> list[FunnelRow]:
        """Per day and procedure: kiosk views and opens (the kiosk counts), completions.

        Raises:
            StoreAway: no answer in time.
        """
        async with answered_within(READ_TIMEOUT):
            kiosk = await self.store.counters("kiosk-counts", since_day)
            done = await self.store.counters(FUNNEL, since_day)
        rows: dict[tuple[str, str], list[int]] = {}
        for key, n in kiosk.items():
            if len(key) != 4 or key[2] not in ("view", "open"):
                continue
            proc = kiosk_procedure.get(key[1])
            if proc is None:
                continue
            r = rows.setdefault((key[0], proc), [0, 0, 0])
            r[0 if key[2] == "view" else 1] += n
        for key, n in done.items():
            if len(key) == 3:
                rows.setdefault((key[0], key[1]), [0, 0, 0])[2] += n
        return [FunnelRow(d, p, *v) for (d, p), v in sorted(rows.items())]
