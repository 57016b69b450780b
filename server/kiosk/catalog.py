"""The procedure catalog: what each kiosk explains and which channels it opens.

Loaded from ``worlds/<world>/catalog/catalog.yaml`` (schema in ``docs/kiosks.md``) and checked
strictly: every missing field, unknown field, duplicate id, unknown channel and link outside the
https allow-list is reported with its file and place, all at once. Every link is built and checked
at load, so serving a link is a dictionary look-up that cannot produce anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datafile import Checker, DataError, PathT, Text, open_data
from .links import (
    AllowList,
    LinkError,
    check_url,
    liff_url,
    line_account_url,
    line_chat_url,
    web_url,
)

__all__ = [
    "CHANNEL_IDS",
    "Catalog",
    "ChannelDef",
    "Channel",
    "Item",
    "load_catalog",
    "DataError",
]

# The city's priority order (seed channels.tsv; committee 2022-06-29, 取組3), then its own page.
CHANNEL_IDS = ("line", "graffer", "mynaportal", "tokyo-eapp", "city-page")
WEB_CHANNELS = CHANNEL_IDS[1:]
LINE_VIAS = ("chat", "account", "rich-menu", "liff")
KINDS = ("procedure", "helper", "link")
HELPERS = ("moving", "garbage")
SAMPLE_FIELDS = ("who", "bring", "counter", "hours", "fee", "pay_online", "channels")
ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, slots=True)
class ChannelDef:
    """One online-procedure service, as the city ranks it."""

    id: str
    priority: int
    label: Text
    how: Text
    devices: tuple[str, ...]
    identity: bool
    payment: bool
    base: str | None


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel of one item, with its link already built and checked."""

    id: str
    via: str
    url: str
    note: Text | None


@dataclass(frozen=True, slots=True)
class Item:
    """A catalog entry: a procedure, a helper or a plain link (wall thumbnail)."""

    id: str
    kind: str
    helper: str | None
    rank: int | None
    section: Text | None
    title: Text
    summary: Text
    who: Text | None
    bring: tuple[Text, ...]
    counter: Text | None
    hours: Text | None
    fee: Text | None
    pay_online: bool | None
    sample: tuple[str, ...]
    channels: tuple[Channel, ...]

    def channel(self, channel_id: str) -> Channel | None:
        for ch in self.channels:
            if ch.id == channel_id:
                return ch
        return None


@dataclass(frozen=True, slots=True)
class Catalog:
    """All items by id, the channel definitions in priority order, and the allow-list."""

    path: Path
    items: dict[str, Item]
    channel_defs: dict[str, ChannelDef]
    allow: AllowList
    place: Text
    sample_note: Text
    city_page: str
    extra: dict[str, Any] = field(default_factory=dict)

    def item(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    def panel(self, item_id: str) -> dict[str, Any]:
        """The KIOSK_PANEL map of one item (both languages: the client shows ja first).

        Raises:
            KeyError: no such item.
        """
        it = self.items[item_id]

        def t(x: Text | None) -> dict[str, str] | None:
            return x.as_map() if x is not None else None

        chans = []
        for ch in it.channels:
            d = self.channel_defs[ch.id]
            chans.append(
                {
                    "id": ch.id,
                    "via": ch.via,
                    "label": d.label.as_map(),
                    "how": (ch.note or d.how).as_map(),
                    "identity": d.identity,
                    "payment": d.payment,
                    "devices": list(d.devices),
                }
            )
        return {
            "id": it.id,
            "kind": it.kind,
            "helper": it.helper,
            "section": t(it.section),
            "title": it.title.as_map(),
            "summary": it.summary.as_map(),
            "who": t(it.who),
            "bring": [b.as_map() for b in it.bring],
            "counter": t(it.counter),
            "hours": t(it.hours),
            "place": self.place.as_map(),
            "fee": t(it.fee),
            "pay_online": it.pay_online,
            "channels": chans,
            "sample": list(it.sample),
            "sample_note": self.sample_note.as_map() if it.sample else None,
        }


def load_catalog(path: Path, allow_path: Path | None = None) -> Catalog:
    """Load and check ``catalog.yaml`` (and ``allowlist.txt`` beside it unless given).

    Raises:
        DataError: every problem, one line each: ``FILE:LINE: PLACE: expected …``.
    """
    allow = AllowList.load(allow_path or path.with_name("allowlist.txt"))
    c, root = open_data(path, ["version", "defaults", "line", "channels", "items"])

    defaults = c.table(root, "defaults", ())
    c.unknown(defaults, ("defaults",), ["hours", "place", "sample_note", "city_page"])
    d_hours = c.text_of(defaults, "hours", ("defaults",))
    d_place = c.text_of(defaults, "place", ("defaults",))
    d_note = c.text_of(defaults, "sample_note", ("defaults",))
    city_page = _url(c, defaults, "city_page", ("defaults",), allow)

    line = c.table(root, "line", ())
    c.unknown(line, ("line",), ["account", "liff_id"])
    account = c.string(line, "account", ("line",))
    liff_id = c.string(line, "liff_id", ("line",))
    for key, value, fn in (
        ("account", account, line_account_url),
        ("liff_id", liff_id, lambda v: liff_url(v, "/")),
    ):
        if value:
            try:
                check_url(fn(value), allow)
            except LinkError as exc:
                c.add(("line", key), str(exc))

    defs = _channel_defs(c, c.array(root, "channels", ()), allow)
    items: dict[str, Item] = {}
    first_seen: dict[str, int] = {}
    for i, raw in enumerate(c.array(root, "items", ())):
        it = _item(c, raw, ("items", i), defs, allow, account, liff_id, d_hours)
        if it is None:
            continue
        if it.id in items:
            c.bad(
                ("items", i, "id"), f"an id used once (also items[{first_seen[it.id]}].id)", it.id
            )
            continue
        items[it.id] = it
        first_seen[it.id] = i
    c.raise_if_any()
    return Catalog(
        path=path,
        items=items,
        channel_defs=defs,
        allow=allow,
        place=d_place,
        sample_note=d_note,
        city_page=city_page,
    )


def _url(c: Checker, m: Mapping[str, Any], key: str, path: PathT, allow: AllowList) -> str:
    url = c.string(m, key, path)
    if url:
        try:
            check_url(url, allow)
        except LinkError as exc:
            c.add((*path, key), str(exc))
    return url


def _channel_defs(c: Checker, seq: list[Any], allow: AllowList) -> dict[str, ChannelDef]:
    out: dict[str, ChannelDef] = {}
    for i, r in enumerate(seq):
        p: PathT = ("channels", i)
        m = c.mapping(r, p)
        c.unknown(
            m, p, ["id", "priority", "label", "how", "devices", "identity", "payment", "base"]
        )
        cid = c.string(m, "id", p)
        if cid and cid not in CHANNEL_IDS:
            c.bad((*p, "id"), f"a channel id among {', '.join(CHANNEL_IDS)}", cid)
            continue
        if cid in out:
            c.bad((*p, "id"), "each channel once", cid)
            continue
        base = None
        if cid in WEB_CHANNELS:
            base = _url(c, m, "base", p, allow)
        elif "base" in m:
            c.add((*p, "base"), "no base for LINE (its links come from line.account)")
        devices = tuple(str(d) for d in c.array(m, "devices", p))
        for j, dv in enumerate(devices):
            if dv not in ("phone", "pc"):
                c.bad((*p, "devices", j), "phone or pc", dv)
        out[cid] = ChannelDef(
            id=cid,
            priority=c.integer(m, "priority", p, minimum=1),
            label=c.text_of(m, "label", p),
            how=c.text_of(m, "how", p),
            devices=devices,
            identity=c.boolean(m, "identity", p),
            payment=c.boolean(m, "payment", p),
            base=base,
        )
    order = [cid for cid in CHANNEL_IDS if cid in out]
    if list(out) != order:
        c.add(("channels",), f"channels in the city's priority order {', '.join(CHANNEL_IDS)}")
    for cid in CHANNEL_IDS:
        if cid not in out and seq:
            c.add(("channels",), f"a definition of channel {c.describe(cid)}", "none")
    return out


def _item(
    c: Checker,
    raw: Any,
    p: PathT,
    defs: dict[str, ChannelDef],
    allow: AllowList,
    account: str,
    liff_id: str,
    d_hours: Text,
) -> Item | None:
    m = c.mapping(raw, p)
    if not m:
        return None
    kind = c.string(m, "kind", p)
    common = ["id", "kind", "title", "summary", "channels"]
    proc = ["section", "who", "bring", "counter", "fee", "pay_online"]
    optional = ["sample", "rank", "hours"]
    if kind == "procedure":
        c.unknown(m, p, common + proc + optional)
    elif kind == "helper":
        c.unknown(m, p, [*common, "helper", *optional, *proc])
    elif kind == "link":
        c.unknown(m, p, [*common, "sample"])
    elif kind:
        c.bad((*p, "kind"), f"one of {', '.join(KINDS)}", kind)
    iid = c.string(m, "id", p)
    if iid and not set(iid) <= ID_CHARS:
        c.bad((*p, "id"), "an id of lower-case letters, digits and '-'", iid)
    helper = None
    if kind == "helper":
        helper = c.string(m, "helper", p)
        if helper and helper not in HELPERS:
            c.bad((*p, "helper"), f"one of {', '.join(HELPERS)}", helper)
    has = kind == "procedure"
    sample = tuple(str(s) for s in c.array(m, "sample", p, required=False))
    for j, s in enumerate(sample):
        if s not in SAMPLE_FIELDS:
            c.bad((*p, "sample", j), f"a field name among {', '.join(SAMPLE_FIELDS)}", s)
    pay_online: bool | None = None
    if "pay_online" in m or has:
        pay_online = c.boolean(m, "pay_online", p)
    channels = _item_channels(c, m, p, defs, allow, account, liff_id)
    return Item(
        id=iid,
        kind=kind,
        helper=helper,
        rank=c.integer(m, "rank", p, required=False, minimum=1) if "rank" in m else None,
        section=c.text_of(m, "section", p) if ("section" in m or has) else None,
        title=c.text_of(m, "title", p),
        summary=c.text_of(m, "summary", p),
        who=c.text_of(m, "who", p) if ("who" in m or has) else None,
        bring=c.texts_of(m, "bring", p, required=has),
        counter=c.text_of(m, "counter", p) if ("counter" in m or has) else None,
        hours=(c.text_of(m, "hours", p) if "hours" in m else d_hours) if kind != "link" else None,
        fee=c.text_of(m, "fee", p) if ("fee" in m or has) else None,
        pay_online=pay_online,
        sample=sample,
        channels=channels,
    )


def _item_channels(
    c: Checker,
    item: Mapping[str, Any],
    ip: PathT,
    defs: dict[str, ChannelDef],
    allow: AllowList,
    account: str,
    liff_id: str,
) -> tuple[Channel, ...]:
    out: list[Channel] = []
    p: PathT = (*ip, "channels")
    seq = c.array(item, "channels", ip)
    if not seq and isinstance(item.get("channels"), list):
        c.add(p, "at least one channel", "none")
    for j, r in enumerate(seq):
        q: PathT = (*p, j)
        m = c.mapping(r, q)
        if not m:
            continue
        cid = c.string(m, "channel", q)
        if not cid:
            continue
        if cid not in CHANNEL_IDS:
            c.bad((*q, "channel"), f"a channel among {', '.join(CHANNEL_IDS)}", cid)
            continue
        if cid not in defs:
            c.bad((*q, "channel"), "a channel defined under channels:", cid)
            continue
        if any(ch.id == cid for ch in out):
            c.bad((*q, "channel"), "each channel once per item", cid)
            continue
        note = c.text_of(m, "note", q) if "note" in m else None
        try:
            if cid == "line":
                c.unknown(m, q, ["channel", "via", "text", "path", "note"])
                via = c.string(m, "via", q)
                if via == "chat":
                    url = line_chat_url(account, c.string(m, "text", q))
                elif via in ("account", "rich-menu"):
                    url = line_account_url(account)
                elif via == "liff":
                    url = liff_url(liff_id, c.string(m, "path", q, required=False, default="/"))
                else:
                    if via:
                        c.bad((*q, "via"), f"one of {', '.join(LINE_VIAS)}", via)
                    continue
            else:
                c.unknown(m, q, ["channel", "path", "url", "note"])
                via = "web"
                if ("path" in m) == ("url" in m):
                    c.add(q, "exactly one of 'path' (under the channel's base) or 'url'")
                    continue
                if "url" in m:
                    url = c.string(m, "url", q)
                    where: PathT = (*q, "url")
                else:
                    base = defs[cid].base
                    if not base:
                        continue
                    url = web_url(base, c.string(m, "path", q))
                    where = (*q, "path")
                try:
                    check_url(url, allow)
                except LinkError as exc:
                    c.add(where, str(exc))
                    continue
            check_url(url, allow)
        except LinkError as exc:
            c.add(q, str(exc))
            continue
        out.append(Channel(id=cid, via=via, url=url, note=note))
    # Shown in the city's priority order whatever order the file lists them in.
    out.sort(key=lambda ch: (defs[ch.id].priority, CHANNEL_IDS.index(ch.id)))
    return tuple(out)
