"""The minutes as files with stable links, for staff: a list and each file in its own format.

- ``GET /staff/minutes/``: every run's minutes in ``DATA_DIR/minutes``, newest first, with a link
  to each format; ``?format=json`` gives the same list as JSON (``?briefing=ID`` keeps one
  briefing's runs), which the console uses to link the run that just ended;
- ``GET /staff/minutes/{file}``: ``<briefing>-<start UTC>.md`` as ``text/markdown`` or ``.html``
  as ``text/html`` (UTF-8), a real address to keep, print or share with other staff, not a
  ``blob:`` page.

All behind the staff sign-in (:func:`server.staff.require_staff`). Times are in the city's zone
(``--time-zone``).
"""

from __future__ import annotations

import json

from aiohttp import web

from server.briefing.minutes import FILE_NAME, list_minutes, render_index
from server.keys import CONFIG
from server.staff import require_staff

__all__ = ["mount", "MINUTES_PATH"]

MINUTES_PATH = "/staff/minutes/"


def mount(app: web.Application) -> None:
    """Add the minutes routes to ``app`` (the briefing feature's setup calls it)."""
    app.router.add_get("/staff/minutes", _to_index)
    app.router.add_get(MINUTES_PATH, minutes_index)
    app.router.add_get(MINUTES_PATH + "{file}", minutes_file)


async def _to_index(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(MINUTES_PATH)


async def minutes_index(request: web.Request) -> web.Response:
    require_staff(request)
    config = request.app[CONFIG]
    tz = config.tz
    files = list_minutes(config.data_dir / "minutes")
    one = request.query.get("briefing")
    if one is not None:
        files = [f for f in files if f.briefing == one]
    if request.query.get("format") == "json":
        body = {"time_zone": tz.key, "minutes": [f.to_json(tz) for f in files]}
        return web.Response(
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    return web.Response(
        text=render_index(files, tz),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


async def minutes_file(request: web.Request) -> web.StreamResponse:
    require_staff(request)
    name = request.match_info["file"]
    m = FILE_NAME.match(name)
    if m is None:
        raise web.HTTPNotFound(
            text="no such minutes file: names are <briefing>-<start>.md or .html"
        )
    path = request.app[CONFIG].data_dir / "minutes" / name
    if not path.is_file():
        raise web.HTTPNotFound(text=f"no minutes file {name!r}")
    ctype = "text/html" if m["ext"] == "html" else "text/markdown"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": f"{ctype}; charset=utf-8",
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
