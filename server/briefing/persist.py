"""Where a briefing's live state is kept between two runs of the server.

A briefing's timeline (state, offset, rate, anchor), its questions and its attendance so far are
written to ``DATA_DIR/briefings/live/<id>.json`` after every staff action, every question and at
the SIGTERM drain, so that a restarted server resumes the briefing where it was (or, when it
cannot, ends it as interrupted and writes the minutes). What is written is
:meth:`server.briefing.service.LiveBriefing.snapshot`; this module only keeps the bytes.

It is deliberately one small class with two methods (:meth:`LiveStateFile.save`,
:meth:`LiveStateFile.load_all`): the records ``Store`` of the shell
(``server/store``, one interface over SQLite and Redis, being built on another branch) is where
this belongs once it lands, as one record per briefing under a ``briefing-live`` kind; the
service would then take that Store instead of this file and nothing else would change. In a
cluster each process keeps its own file until then (the timeline itself is already the same on
every process, being a pure function of the published staff actions).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["LiveStateFile", "LIVE_FORMAT"]

LIVE_FORMAT = "emachi-briefing-live/1"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

log = logging.getLogger("emachi.briefing")


class LiveStateFile:
    """One JSON file per briefing in ``folder``, each replaced atomically (write, fsync, rename)
    so a crash mid-write leaves the previous state, never half of one."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, briefing_id: str) -> Path:
        if not _ID.match(briefing_id):
            raise ValueError(f"briefing id: expected [a-z0-9][a-z0-9_-]*, got {briefing_id!r}")
        return self.folder / f"{briefing_id}.json"

    def save(self, briefing_id: str, state: dict[str, Any]) -> None:
        """Replace the saved state of a briefing. An I/O error is logged, never raised: a full
        disk must not stop the briefing itself."""
        try:
            path = self.path(briefing_id)
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            body = json.dumps({"format": LIVE_FORMAT, **state}, ensure_ascii=False).encode()
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (OSError, ValueError) as e:
            log.warning(
                "briefing state not saved", extra={"briefing": briefing_id, "error": str(e)}
            )

    def load_all(self) -> dict[str, dict[str, Any]]:
        """Every saved state by briefing id; a file that cannot be read is logged and skipped
        (the briefing then starts as rendered)."""
        out: dict[str, dict[str, Any]] = {}
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return out
        for path in paths:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(doc, dict) or doc.get("format") != LIVE_FORMAT:
                    raise ValueError(f"format: expected {LIVE_FORMAT}")
                if doc.get("id") != path.stem:
                    raise ValueError(f"id: expected {path.stem!r}, got {doc.get('id')!r}")
            except (OSError, ValueError) as e:
                log.warning("briefing state unreadable", extra={"path": str(path), "error": str(e)})
                continue
            out[path.stem] = doc
        return out
