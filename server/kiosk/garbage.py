"""The bulky-garbage guide: an item's name → its category, fee and how to book.

Residents type what they have in whatever script they use (蛍光灯, けいこうとう, ｿﾌｧｰ, Sofa) and
sometimes mistype it. Names are normalised (NFKC for width, katakana → hiragana with ``jaconv``,
long-vowel marks and punctuation dropped), then matched exactly (the item's own name or reading:
``name``; one of its known aliases: ``alias``), by containment ("2人掛けのソファ" ends with ソファ:
``contains``), within a small edit distance (``typo``), by a unique start (``prefix``), and
finally by character bigrams for suggestions.

Only ``name`` and ``alias`` are sure. Any other match is a guess: the answer says so ("近い名前で
調べました: いす" / "Closest match: chair") and offers the close candidates to pick from, because a
compound whose last word is a known item is often a different thing with a different fee
(マッサージチェア ends with チェア, but a massage chair is not a ¥400 chair). An item the guide
does not know is said plainly, with the city's page to look it up.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jaconv

from .catalog import Catalog
from .datafile import DataError, PathT, Text, open_data
from .links import LinkError, check_url

__all__ = [
    "GarbageGuide",
    "Category",
    "GarbageItem",
    "load_garbage",
    "normalise",
    "edit_distance",
    "DataError",
    "QueryError",
    "SURE",
]

MAX_QUERY = 60
#: matches that are the item itself; every other kind is answered as a guess, with candidates
SURE = frozenset({"name", "alias"})
#: how many close items a guess offers to pick from (the guessed one first)
CANDIDATES = 3
_DROP = re.compile(r"[\sー\-‐―・･,，、。.．'\"「」()（）\[\]［］!！?？~〜]+")


class QueryError(ValueError):
    """The query is empty or too long; the message says what was expected."""


def normalise(text: str) -> str:
    """A matching key: width folded, lower case, katakana as hiragana, no marks or spaces."""
    s = unicodedata.normalize("NFKC", text).lower()
    s = jaconv.kata2hira(s).replace("ゔ", "ぶ")
    return _DROP.sub("", s)


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance; stops early once every path exceeds ``limit``."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if limit is not None and min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def _bigrams(s: str) -> set[str]:
    return {s[i : i + 2] for i in range(len(s) - 1)} if len(s) > 1 else {s}


def _dice(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    return 2 * len(x & y) / (len(x) + len(y)) if x and y else 0.0


def _common(a: str, b: str) -> int:
    """The length of the longest run of characters ``a`` and ``b`` share (チェア in both
    マッサージチェア and パーソナルチェア)."""
    best = 0
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ca == cb else 0)
        best = max(best, max(cur))
        prev = cur
    return best


def _typo_budget(n: int) -> int:
    return 1 if n <= 4 else 2 if n <= 9 else 3


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: Text
    how: Text
    bookable: bool
    fee_note: Text


@dataclass(frozen=True, slots=True)
class GarbageItem:
    name: Text
    kana: str
    aliases: tuple[str, ...]
    category: str
    fee: int | None
    note: Text | None

    def name_keys(self) -> set[str]:
        """The item's own names (ja, en) and its reading, normalised."""
        ks = {normalise(self.name.ja), normalise(self.name.en), normalise(self.kana)}
        return {k for k in ks if k}

    def match_keys(self) -> set[str]:
        ks = self.name_keys()
        ks.update(normalise(a) for a in self.aliases)
        return {k for k in ks if k}


@dataclass(frozen=True, slots=True)
class GarbageGuide:
    categories: dict[str, Category]
    items: tuple[GarbageItem, ...]
    sample_note: Text
    page: str
    booking: tuple[dict[str, Any], ...]  # channels of the booking item, links built
    index: dict[str, tuple[int, ...]]  # normalised key → item indexes
    names: frozenset[str] = frozenset()  # the keys that are an item's own name or reading

    def lookup(self, query: str) -> dict[str, Any]:
        """The HELPER_ANSWER map for an item name.

        Raises:
            QueryError: an empty query, or one over :data:`MAX_QUERY` characters.
        """
        if not isinstance(query, str) or not query.strip():
            raise QueryError("the name of the item to throw away")
        if len(query) > MAX_QUERY:
            raise QueryError(f"an item name of at most {MAX_QUERY} characters")
        q = normalise(query)
        found, how = self._match(q)
        base: dict[str, Any] = {
            "query": query.strip(),
            "sample_note": self.sample_note.as_map(),
            "page": self.page,
        }
        if found is None:
            sugg = self._suggest(q)
            return base | {
                "found": False,
                "match": None,
                "suggestions": [self.items[i].name.as_map() for i in sugg],
                "message": {
                    "ja": f"「{query.strip()}」はこのガイドにありません。市のホームページの品目一覧で調べてください。",
                    "en": f"“{query.strip()}” is not in this guide. Look it up in the item list on the city's website.",
                },
            }
        it = self.items[found]
        sure = how in SURE
        cat = self.categories[it.category]
        if it.fee is not None:
            fee = {"yen": it.fee, "ja": f"{it.fee:,}円", "en": f"¥{it.fee:,}"}
        else:
            fee = {"yen": None, **cat.fee_note.as_map()}
        guess: dict[str, Any] = {}
        if not sure:
            guess = {
                "guess": {
                    "ja": f"近い名前で調べました: {it.name.ja}（「{query.strip()}」そのものは"
                    "このガイドにありません。違うときは下の候補から選ぶか、市のページで調べてください）",
                    "en": f"Closest match: {it.name.en} (“{query.strip()}” itself is not in this "
                    "guide; if that is not it, pick another below or look it up on the city's page)",
                },
            }
        return base | {
            "found": True,
            "match": how,
            "sure": sure,
            **guess,
            "item": {
                "name": it.name.as_map(),
                "category": {"id": cat.id, "name": cat.name.as_map()},
                "fee": fee,
                "how": cat.how.as_map(),
                "note": it.note.as_map() if it.note else None,
                "bookable": cat.bookable,
            },
            "booking": list(self.booking) if cat.bookable else [],
            "suggestions": []
            if sure
            else [self.items[i].name.as_map() for i in self._candidates(q, found)],
        }

    def _match(self, q: str) -> tuple[int | None, str | None]:
        if not q:
            return None, None
        if q in self.index:
            return self.index[q][0], "name" if q in self.names else "alias"
        # The query ends with a known name ("2人掛けのソファ", "古い自転車"): a Japanese compound's
        # head is its last word, so "テレビ台" is a stand, not a television, and is not matched.
        inside = [k for k in self.index if len(k) >= 2 and q.endswith(k)]
        if inside:
            return self.index[max(inside, key=len)][0], "contains"
        # A small typo: the nearest key within a budget that grows with the length.
        best: tuple[int, int, str] | None = None
        for k in self.index:
            budget = _typo_budget(max(len(k), len(q)))
            if abs(len(k) - len(q)) > budget:
                continue
            d = edit_distance(q, k, budget)
            if d <= budget and (best is None or (d, -len(k)) < (best[0], best[1])):
                best = (d, -len(k), k)
        if best is not None and len(q) >= 2:
            return self.index[best[2]][0], "typo"
        # The start of a longer name (シーリング → シーリングライト), when only one item fits.
        if len(q) >= 3:
            starts = {i for k, ids in self.index.items() if k.startswith(q) for i in ids}
            if len(starts) == 1:
                return starts.pop(), "prefix"
        return None, None

    def _candidates(self, q: str, found: int) -> list[int]:
        """The guessed item, then the items closest to ``q``: up to :data:`CANDIDATES`."""
        scored: dict[int, float] = {}
        for k, ids in self.index.items():
            run = _common(q, k)
            s = max(_dice(q, k), run / max(len(q), len(k)) if run >= 2 else 0.0)
            if s >= 0.3:
                for i in ids:
                    scored[i] = max(scored.get(i, 0.0), s)
        scored.pop(found, None)
        rest = [i for i, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))]
        return [found, *rest][:CANDIDATES]

    def _suggest(self, q: str, limit: int = 3) -> list[int]:
        if not q:
            return []
        scored: dict[int, float] = {}
        for k, ids in self.index.items():
            s = _dice(q, k)
            if s >= 0.4:
                for i in ids:
                    scored[i] = max(scored.get(i, 0.0), s)
        return [i for i, _ in sorted(scored.items(), key=lambda kv: -kv[1])[:limit]]


def load_garbage(path: Path, catalog: Catalog) -> GarbageGuide:
    """Load ``garbage.yaml``; booking links come from the catalog item it names.

    Raises:
        DataError: every problem, one line each, with its place.
    """
    c, root = open_data(
        path, ["version", "sample_note", "page", "booking_item", "categories", "items"]
    )
    note = c.text_of(root, "sample_note", ())
    page = c.string(root, "page", ())
    if page:
        try:
            check_url(page, catalog.allow)
        except LinkError as exc:
            c.add(("page",), str(exc))
    booking_id = c.string(root, "booking_item", ())
    booking_item = catalog.item(booking_id) if booking_id else None
    if booking_id and booking_item is None:
        c.bad(("booking_item",), "an item id of the catalog", booking_id)

    cats: dict[str, Category] = {}
    for i, raw in enumerate(c.array(root, "categories", ())):
        p: PathT = ("categories", i)
        m = c.mapping(raw, p)
        c.unknown(m, p, ["id", "name", "how", "bookable", "fee_note"])
        cid = c.string(m, "id", p)
        if cid in cats:
            c.bad((*p, "id"), "a category id used once", cid)
        cats[cid] = Category(
            cid,
            c.text_of(m, "name", p),
            c.text_of(m, "how", p),
            c.boolean(m, "bookable", p),
            c.text_of(m, "fee_note", p),
        )

    items: list[GarbageItem] = []
    index: dict[str, list[int]] = {}
    names: set[str] = set()
    owner: dict[str, PathT] = {}
    for i, raw in enumerate(c.array(root, "items", ())):
        p = ("items", i)
        m = c.mapping(raw, p)
        c.unknown(m, p, ["name", "kana", "category", "fee", "aliases", "note"])
        kana = c.string(m, "kana", p)
        if kana and normalise(kana) != normalise(jaconv.kata2hira(kana)):
            c.bad((*p, "kana"), "a reading in kana", kana)
        aliases = tuple(str(a) for a in c.array(m, "aliases", p, required=False))
        cat = c.string(m, "category", p)
        if cat and cat not in cats:
            c.bad((*p, "category"), f"a category among {', '.join(cats)}", cat)
        fee: int | None = None
        if c.present(m, "fee", p, "a fee in yen (an integer >= 0) or null", True) and (
            m["fee"] is not None
        ):
            fee = c.integer(m, "fee", p, minimum=0)
        it = GarbageItem(
            name=c.text_of(m, "name", p),
            kana=kana,
            aliases=aliases,
            category=cat,
            fee=fee,
            note=c.text_of(m, "note", p) if "note" in m else None,
        )
        if cat in cats and cats[cat].bookable and fee is None:
            c.add((*p, "fee"), f"a fee in yen for a {cat} item", "null")
        names.update(it.name_keys())
        for k in it.match_keys():
            if k in owner and owner[k][1] != i:
                c.add(p, f"names no other item uses (also items[{owner[k][1]}])", c.describe(k))
            owner.setdefault(k, p)
            index.setdefault(k, [])
            if i not in index[k]:
                index[k].append(i)
        items.append(it)
    c.raise_if_any()

    booking: list[dict[str, Any]] = []
    if booking_item is not None:
        for ch in booking_item.channels:
            d = catalog.channel_defs[ch.id]
            booking.append(
                {"channel": ch.id, "label": d.label.as_map(), "url": ch.url, "via": ch.via}
            )
    return GarbageGuide(
        categories=cats,
        items=tuple(items),
        sample_note=note,
        page=page,
        booking=tuple(booking),
        index={k: tuple(v) for k, v in index.items()},
        names=frozenset(names),
    )
