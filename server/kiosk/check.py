"""Check every data file of a world folder without serving, with the loaders ``serve`` uses.

``emachi world check WORLD_DIR`` (and ``python -m server.kiosk check WORLD_DIR``) reads the world
file, the catalog with its allow-list, the helpers' data (``moving.yaml``, ``garbage.yaml``), the
world kiosks' procedures against the catalog, and the world's asset manifest when there is one;
it prints every problem, one line each (``FILE:LINE: PLACE: expected …``), and exits 1, or
prints a summary and exits 0. A world file that does not load does not stop the catalog and the
helpers from being checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

from assets_manifest.store import MANIFEST_NAME, ManifestError, read_manifest
from server.errors import LoadError

from .counts import MemoryCountStore
from .service import KioskService, load_service

__all__ = ["check", "problems", "summary", "main"]


def check(world_path: Path) -> KioskService:
    """Load the world and its kiosk data as the server would.

    Raises:
        world.problems.WorldError: every problem of the world file.
        server.errors.LoadError: every problem of the kiosk data.
    """
    from world.loader import load_world

    world = load_world(world_path)
    return load_service(world_path, world.kiosks, MemoryCountStore())


def problems(world_path: Path) -> tuple[list[str], KioskService | None]:
    """Every problem of the world folder at ``world_path`` (empty when ``serve`` would start).

    Returns:
        The problems, one line each, and the kiosk service when the kiosk data loaded.
    """
    from world.loader import load_world
    from world.problems import WorldError

    found: list[str] = []
    kiosks: list[object] = []
    try:
        kiosks = list(load_world(world_path).kiosks)
    except WorldError as exc:
        found += [str(p) for p in exc.problems]  # the kiosks' procedures cannot be checked then
    service = None
    try:
        service = load_service(world_path, kiosks, MemoryCountStore())  # type: ignore[arg-type]
    except LoadError as exc:
        found += list(exc.problems)
    base = world_path if world_path.is_dir() else world_path.parent
    try:
        read_manifest(base / "assets" / MANIFEST_NAME)
    except ManifestError as exc:
        found.append(str(exc))
    return found, service


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m server.kiosk check WORLD_DIR", file=sys.stderr)
        return 2
    found, service = problems(Path(args[1]))
    for p in found:
        print(p, file=sys.stderr)
    if found or service is None:
        return 1
    print(summary(service))
    return 0


def summary(service: KioskService) -> str:
    """One line on what the kiosk data holds."""
    cat = service.catalog
    links = sum(len(i.channels) for i in cat.items.values())
    return (
        f"{len(service.kiosks)} kiosks, {len(cat.items)} catalog items, {links} links on "
        f"{len(cat.allow.hosts)} allowed hosts, {len(service.moving.steps)} moving steps, "
        f"{len(service.garbage.items)} garbage items"
    ) + ": ok"
