"""Check a world's kiosk data (catalog, helpers, allow-list, kiosks' procedures) without serving.

``python -m server.kiosk check worlds/machida-city-hall`` prints every problem, one line each
(``FILE:LINE: PLACE: expected …``), and exits 1; or prints a summary and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from server.errors import LoadError

from .counts import MemoryCountStore
from .service import KioskService, load_service

__all__ = ["check", "main"]


def check(world_path: Path) -> KioskService:
    """Load the world and its kiosk data as the server would.

    Raises:
        world.problems.WorldError: every problem of the world file.
        server.errors.LoadError: every problem of the kiosk data.
    """
    from world.loader import load_world

    world = load_world(world_path)
    return load_service(world_path, world.kiosks, MemoryCountStore())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m server.kiosk check WORLD_DIR", file=sys.stderr)
        return 2
    from world.problems import WorldError

    try:
        service = check(Path(args[1]))
    except (LoadError, WorldError) as exc:
        for p in exc.problems:
            print(str(p), file=sys.stderr)
        return 1
    cat = service.catalog
    links = sum(len(i.channels) for i in cat.items.values())
    print(f"{len(service.kiosks)} kiosks, {len(cat.items)} catalog items, {links} links on "
          f"{len(cat.allow.hosts)} allowed hosts, {len(service.moving.steps)} moving steps, "
          f"{len(service.garbage.items)} garbage items: ok")
    return 0
