"""The moving-house checklist: a few answers → the procedures to do, what to bring, where.

Pure and data-driven (``moving.yaml``): each step has a ``when`` table of conditions on the
answers; the checklist is every step whose conditions all hold, in file order, with what to bring
and the counters gathered without repeats, and the steps that can be done online now.

A checklist can be carried to a phone: :meth:`MovingGuide.share_query` writes the answers and the
ticked steps as a short query string (question and step ids only, nothing a resident typed, no
personal data), :meth:`MovingGuide.parse_share` reads one back and refuses anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .catalog import CHANNEL_IDS, Catalog
from .datafile import Checker, DataError, PathT, Text, open_data
from .links import LinkError, check_url

__all__ = [
    "MovingGuide",
    "Question",
    "Step",
    "load_moving",
    "AnswerError",
    "DataError",
    "SHARE_PATH",
]

#: the phone's page for a shared checklist (``/moving?direction=out&who=alone&nhi=1&done=…``)
SHARE_PATH = "/moving"


class AnswerError(ValueError):
    """The answers are incomplete or not among the options; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: Text
    options: tuple[tuple[str, Text], ...]  # empty: a yes/no question

    @property
    def yes_no(self) -> bool:
        return not self.options


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    when: dict[str, frozenset[Any]]
    title: Text
    what: Text
    deadline: Text
    bring: tuple[Text, ...]
    counter: Text
    online_channel: str | None
    online_url: str | None
    online_note: Text | None

    def applies(self, answers: Mapping[str, Any]) -> bool:
        return all(answers.get(q) in allowed for q, allowed in self.when.items())


@dataclass(frozen=True, slots=True)
class MovingGuide:
    questions: tuple[Question, ...]
    steps: tuple[Step, ...]
    sample_note: Text
    page: str
    channel_labels: dict[str, Text]

    def form(self) -> dict[str, Any]:
        """The questions as a map for the client to draw the form."""
        return {
            "questions": [
                {
                    "id": q.id,
                    "text": q.text.as_map(),
                    "type": "yes_no" if q.yes_no else "choice",
                    "options": [{"id": oid, "text": t.as_map()} for oid, t in q.options],
                }
                for q in self.questions
            ],
            "sample_note": self.sample_note.as_map(),
            "page": self.page,
        }

    def normalise(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """Check the answers: every choice given and valid; yes/no default to no.

        Raises:
            AnswerError: a missing or unknown answer, naming the question.
        """
        answers: dict[str, Any] = {}
        known = {q.id for q in self.questions}
        for k in query:
            if k not in known:
                raise AnswerError(f"answers to {', '.join(sorted(known))}; {k!r} is not a question")
        for q in self.questions:
            v = query.get(q.id)
            if q.yes_no:
                if v is None:
                    v = False
                if not isinstance(v, bool):
                    raise AnswerError(f"true or false for {q.id!r}, got {v!r}")
            else:
                ids = [oid for oid, _ in q.options]
                if v not in ids:
                    raise AnswerError(f"one of {', '.join(ids)} for {q.id!r}, got {v!r}")
            answers[q.id] = v
        return answers

    def share_query(self, answers: Mapping[str, Any], done: Iterable[str] = ()) -> str:
        """The query string that carries ``answers`` and the ticked steps ``done`` to a phone:
        choices by id, yes/no as ``1`` (a no is left out), ticks as step ids in checklist order.

        Raises:
            AnswerError: see :meth:`normalise`; a tick that is not a step of this checklist.
        """
        a = self.normalise(answers)
        steps = [s.id for s in self.steps if s.applies(a)]
        ticked = set(done)
        for sid in ticked:
            if sid not in steps:
                raise AnswerError(
                    f"ticks among the checklist's steps ({', '.join(steps)}); "
                    f"{str(sid)[:40]!r} is not one"
                )
        parts = []
        for q in self.questions:
            if q.yes_no:
                if a[q.id]:
                    parts.append((q.id, "1"))
            else:
                parts.append((q.id, str(a[q.id])))
        if ticked:
            parts.append(("done", ",".join(s for s in steps if s in ticked)))
        return urlencode(parts, safe=",")

    def parse_share(self, query: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
        """The answers and ticks of a :meth:`share_query` string (as a parsed mapping).

        Raises:
            AnswerError: an unknown key, a yes/no that is not ``1``/``0``, a missing or unknown
            choice, a tick that is not a step of the checklist.
        """
        raw: dict[str, Any] = {}
        yes_no = {q.id for q in self.questions if q.yes_no}
        for k, v in query.items():
            if k == "done":
                continue
            if k in yes_no:
                if v not in ("1", "0", "true", "false"):
                    raise AnswerError(f"1 or 0 for {k!r}, got {str(v)[:20]!r}")
                raw[k] = v in ("1", "true")
            else:
                raw[k] = v
        answers = self.normalise(raw)
        done = [d for d in query.get("done", "").split(",") if d]
        steps = {s.id for s in self.steps if s.applies(answers)}
        for d in done:
            if d not in steps:
                raise AnswerError(f"ticks among the checklist's steps; {d[:40]!r} is not one")
        return answers, list(dict.fromkeys(done))

    def checklist(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """The HELPER_ANSWER map for these answers.

        Raises:
            AnswerError: see :meth:`normalise`.
        """
        answers = self.normalise(query)
        steps = [s for s in self.steps if s.applies(answers)]
        bring: list[Text] = []
        counters: list[Text] = []
        for s in steps:
            for b in s.bring:
                if b not in bring:
                    bring.append(b)
            if s.counter not in counters:
                counters.append(s.counter)
        out_steps = []
        for s in steps:
            online = None
            if s.online_url and s.online_channel:
                online = {
                    "channel": s.online_channel,
                    "label": self.channel_labels[s.online_channel].as_map(),
                    "url": s.online_url,
                    "note": s.online_note.as_map() if s.online_note else None,
                }
            out_steps.append(
                {
                    "id": s.id,
                    "title": s.title.as_map(),
                    "what": s.what.as_map(),
                    "deadline": s.deadline.as_map(),
                    "bring": [b.as_map() for b in s.bring],
                    "counter": s.counter.as_map(),
                    "online": online,
                }
            )
        return {
            "answers": answers,
            "steps": out_steps,
            "bring": [b.as_map() for b in bring],
            "counters": [c.as_map() for c in counters],
            "online_now": [s["id"] for s in out_steps if s["online"]],
            "share": self.share_query(answers),
            "sample_note": self.sample_note.as_map(),
            "page": self.page,
        }


def load_moving(path: Path, catalog: Catalog) -> MovingGuide:
    """Load ``moving.yaml``; online links come from ``catalog`` or its allow-list.

    Raises:
        DataError: every problem, one line each, with its place.
    """
    c, root = open_data(path, ["version", "sample_note", "page", "questions", "steps"])
    note = c.text_of(root, "sample_note", ())
    page = c.string(root, "page", ())
    if page:
        try:
            check_url(page, catalog.allow)
        except LinkError as exc:
            c.add(("page",), str(exc))

    questions: list[Question] = []
    for i, raw in enumerate(c.array(root, "questions", ())):
        p: PathT = ("questions", i)
        m = c.mapping(raw, p)
        c.unknown(m, p, ["id", "text", "options"])
        qid = c.string(m, "id", p)
        opts: list[tuple[str, Text]] = []
        for j, o in enumerate(c.array(m, "options", p, required=False)):
            om = c.mapping(o, (*p, "options", j))
            c.unknown(om, (*p, "options", j), ["id", "text"])
            oid = c.string(om, "id", (*p, "options", j))
            if any(oid == x for x, _ in opts):
                c.bad((*p, "options", j, "id"), "an option id used once", oid)
            opts.append((oid, c.text_of(om, "text", (*p, "options", j))))
        if any(q.id == qid for q in questions):
            c.bad((*p, "id"), "a question id used once", qid)
        questions.append(Question(qid, c.text_of(m, "text", p), tuple(opts)))
    qmap = {q.id: q for q in questions}

    steps: list[Step] = []
    for i, raw in enumerate(c.array(root, "steps", ())):
        p = ("steps", i)
        m = c.mapping(raw, p)
        c.unknown(
            m,
            p,
            [
                "id",
                "when",
                "title",
                "what",
                "deadline",
                "bring",
                "counter",
                "online",
                "online_note",
            ],
        )
        sid = c.string(m, "id", p)
        if any(s.id == sid for s in steps):
            c.bad((*p, "id"), "a step id used once", sid)
        when: dict[str, frozenset[Any]] = {}
        for q, allowed in c.table(m, "when", p).items():
            wp: PathT = (*p, "when", str(q))
            if q not in qmap:
                c.bad(wp, f"a question among {', '.join(qmap)}", q)
                continue
            vals = c.seq(allowed, wp)
            valid = {True, False} if qmap[q].yes_no else {oid for oid, _ in qmap[q].options}
            for j, v in enumerate(vals):
                if v not in valid or (qmap[q].yes_no and not isinstance(v, bool)):
                    c.bad((*wp, j), f"one of {', '.join(map(str, sorted(valid, key=str)))}", v)
            when[str(q)] = frozenset(vals)
        ch_id, url = _online(c, m, p, catalog)
        steps.append(
            Step(
                id=sid,
                when=when,
                title=c.text_of(m, "title", p),
                what=c.text_of(m, "what", p),
                deadline=c.text_of(m, "deadline", p),
                bring=c.texts_of(m, "bring", p),
                counter=c.text_of(m, "counter", p),
                online_channel=ch_id,
                online_url=url,
                online_note=c.text_of(m, "online_note", p) if "online_note" in m else None,
            )
        )
    c.raise_if_any()
    labels = {cid: d.label for cid, d in catalog.channel_defs.items()}
    return MovingGuide(tuple(questions), tuple(steps), note, page, labels)


def _online(
    c: Checker, m: Mapping[str, Any], p: PathT, catalog: Catalog
) -> tuple[str | None, str | None]:
    if "online" not in m:
        return None, None
    op: PathT = (*p, "online")
    om = c.mapping(m["online"], op)
    c.unknown(om, op, ["channel", "item", "url"])
    ch = c.string(om, "channel", op)
    if ch not in CHANNEL_IDS:
        c.bad((*op, "channel"), f"a channel among {', '.join(CHANNEL_IDS)}", ch)
        return None, None
    if ("item" in om) == ("url" in om):
        c.add(op, "exactly one of 'item' (a catalog item offering the channel) or 'url'")
        return None, None
    if "item" in om:
        iid = c.string(om, "item", op)
        item = catalog.item(iid)
        chan = item.channel(ch) if item else None
        if chan is None:
            c.bad((*op, "item"), f"a catalog item with channel {c.describe(ch)}", iid)
            return None, None
        return ch, chan.url
    url = c.string(om, "url", op)
    try:
        check_url(url, catalog.allow)
    except LinkError as exc:
        c.add((*op, "url"), str(exc))
        return None, None
    return ch, url
