"""The kiosk service: what happens when a resident opens a kiosk, picks a channel, asks a helper.

No sockets here: the server's handlers pass in the avatar's position and get back maps to send or a
:class:`KioskRefusal` with a code and a reason. Links come only from the loaded catalog, so an
unknown kiosk or channel can never produce one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .catalog import Catalog, load_catalog
from .counts import CountStore, japan_day
from .datafile import DataError
from .garbage import GarbageGuide, QueryError, load_garbage
from .links import with_ref
from .moving import AnswerError, MovingGuide, load_moving
from .qr import qr_svg

__all__ = ["KioskService", "KioskRefusal", "KioskPlace", "REACH_MARGIN", "load_service"]

# Server positions trail what the client shows by a tick or two; this much slack keeps a resident
# who is visibly at the kiosk from being refused, and is still far from "across the hall".
REACH_MARGIN = 1.0


class KioskRefusal(Exception):  # noqa: N818 - a refusal, not an internal error
    """The request is refused; ``code`` and ``reason`` go to the client as ERROR."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class KioskPlace(Protocol):
    """What the service needs of a world kiosk (``world.model.Kiosk`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def floor_id(self) -> str: ...
    @property
    def x(self) -> float: ...
    @property
    def z(self) -> float: ...
    @property
    def radius(self) -> float: ...
    @property
    def kind(self) -> str: ...
    @property
    def procedure(self) -> str: ...


@dataclass(slots=True)
class KioskService:
    catalog: Catalog
    moving: MovingGuide
    garbage: GarbageGuide
    kiosks: dict[str, KioskPlace]
    store: CountStore
    today: Callable[[], str] = japan_day
    helper_kiosk: dict[str, str] = field(default_factory=dict)
    #: ``fn(procedure, channel) -> ref``: an opaque reference to put on each link handed out
    #: (``emachi_ref``), so that the procedure service can say it was completed (the counters
    #: feature sets it); None: links go out as the catalog has them
    link_ref: Callable[[str, str], str] | None = None

    def __post_init__(self) -> None:
        for k in self.kiosks.values():
            item = self.catalog.items[k.procedure]
            if item.helper and item.helper not in self.helper_kiosk:
                self.helper_kiosk[item.helper] = k.id

    # -- requests -------------------------------------------------------------------------------

    def open(self, kiosk_id: str, where: tuple[str, float, float] | None) -> dict[str, Any]:
        """The panel of ``kiosk_id`` for an avatar at ``where`` (floor id, x, z); counts a view.

        Raises:
            KioskRefusal: unknown kiosk, no avatar, or the avatar is not within reach.
        """
        k = self.kiosk(kiosk_id)
        self._reach(k, where)
        panel = self.panel(kiosk_id)
        self.store.add(self.today(), kiosk_id, "view")
        return panel

    def panel(self, kiosk_id: str) -> dict[str, Any]:
        """The panel map, with the helper's form for helper kiosks (no count, no reach check)."""
        k = self.kiosk(kiosk_id)
        panel = self.catalog.panel(k.procedure)
        panel["kiosk_id"] = k.id
        panel["kiosk_kind"] = k.kind
        if panel["helper"] == "moving":
            panel["form"] = self.moving.form()
        elif panel["helper"] == "garbage":
            panel["form"] = {
                "examples": [
                    {"ja": "蛍光灯", "en": "fluorescent tube"},
                    {"ja": "シーリングライト", "en": "ceiling light"},
                    {"ja": "ソファ", "en": "sofa"},
                ],
                "sample_note": self.garbage.sample_note.as_map(),
                "page": self.garbage.page,
            }
        return panel

    def choose(self, kiosk_id: str, channel: str, device: str) -> tuple[str, str | None]:
        """The link of ``channel`` at ``kiosk_id`` and, for LINE on a PC, its QR code; counts an open.

        Raises:
            KioskRefusal: unknown kiosk, or a channel this kiosk does not offer.
        """
        k = self.kiosk(kiosk_id)
        item = self.catalog.items[k.procedure]
        ch = item.channel(channel)
        if ch is None:
            offered = ", ".join(c.id for c in item.channels)
            raise KioskRefusal(
                "channel_unknown", f"kiosk {kiosk_id} offers {offered}; not {channel[:32]!r}"
            )
        url = self.link(k.procedure, ch.id, ch.url)
        qr = qr_svg(url) if (device == "pc" and ch.id == "line") else None
        self.store.add(self.today(), kiosk_id, "open", ch.id)
        return url, qr

    def link(self, procedure: str, channel: str, url: str) -> str:
        """A catalog link as it is handed out: with a fresh ``emachi_ref`` when refs are kept."""
        return url if self.link_ref is None else with_ref(url, self.link_ref(procedure, channel))

    def ask(self, helper: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """A helper's answer; counts an ask on the helper's kiosk.

        Raises:
            KioskRefusal: unknown helper or a query it cannot answer.
        """
        try:
            if helper == "moving":
                answer = self.moving.checklist(query)
            elif helper == "garbage":
                item = query.get("item")
                if not isinstance(item, str):
                    raise QueryError("{'item': the name of the thing to throw away}")
                answer = self.garbage.lookup(item)
            else:
                raise KioskRefusal(
                    "helper_unknown", f"helpers are moving and garbage; not {helper[:32]!r}"
                )
        except (AnswerError, QueryError) as exc:
            raise KioskRefusal("helper_query", f"expected {exc}") from None
        kiosk = self.helper_kiosk.get(helper)
        if kiosk is not None:
            self.store.add(self.today(), kiosk, "ask")
        return answer

    # -- checks ---------------------------------------------------------------------------------

    def kiosk(self, kiosk_id: str) -> KioskPlace:
        """The world kiosk ``kiosk_id``.

        Raises:
            KioskRefusal: there is no such kiosk.
        """
        k = self.kiosks.get(kiosk_id)
        if k is None:
            raise KioskRefusal("kiosk_unknown", f"there is no kiosk {kiosk_id[:64]!r} in this hall")
        return k

    def _reach(self, k: KioskPlace, where: tuple[str, float, float] | None) -> None:
        if where is None:
            raise KioskRefusal("kiosk_no_avatar", "walk up to a kiosk with an avatar to open it")
        floor, x, z = where
        d = math.hypot(x - k.x, z - k.z)
        if floor != k.floor_id or d > k.radius + REACH_MARGIN:
            where_s = "on another floor" if floor != k.floor_id else f"{d:.1f} m away"
            raise KioskRefusal(
                "kiosk_too_far",
                f"walk up to the kiosk to open it: you are {where_s}, it opens within "
                f"{k.radius:g} m",
            )


def catalog_dir(world_path: Path) -> Path:
    """``worlds/<world>/catalog`` for a world folder or its ``world.toml``."""
    base = world_path if world_path.is_dir() else world_path.parent
    return base / "catalog"


def load_service(world_path: Path, kiosks: Iterable[KioskPlace], store: CountStore) -> KioskService:
    """Load the catalog and helpers beside the world and check every world kiosk against them.

    Raises:
        DataError: every problem of the data files, or a world kiosk naming no catalog item.
    """
    d = catalog_dir(world_path)
    catalog = load_catalog(d / "catalog.yaml")
    problems: list[str] = []
    moving = garbage = None
    try:
        moving = load_moving(d / "moving.yaml", catalog)
    except DataError as exc:
        problems += exc.problems
    try:
        garbage = load_garbage(d / "garbage.yaml", catalog)
    except DataError as exc:
        problems += exc.problems
    by_id: dict[str, KioskPlace] = {}
    for k in kiosks:
        if k.procedure not in catalog.items:
            problems.append(
                f"{world_path}:kiosks.{k.id}.procedure: expected an item id of "
                f"{d / 'catalog.yaml'}, got {k.procedure!r}"
            )
            continue
        by_id[k.id] = k
    if problems or moving is None or garbage is None:
        raise DataError(problems)
    return KioskService(catalog=catalog, moving=moving, garbage=garbage, kiosks=by_id, store=store)
