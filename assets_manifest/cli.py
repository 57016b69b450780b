"""Command-line entry points for ``emachi assets build`` and ``emachi assets check``.

The lead's CLI calls :func:`build_main` / :func:`check_main` with the arguments after
``emachi assets build`` / ``emachi assets check``; each returns the process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .build import BuildError, build_manifest, check

__all__ = ["build_main", "check_main", "world_dirs"]


def world_dirs(worlds_root: Path, names: Sequence[str] = ()) -> list[Path]:
    """The world directories to work on: the named ones, or every folder with a world.toml."""
    if names:
        return [worlds_root / n for n in names]
    return sorted(p.parent for p in worlds_root.glob("*/world.toml"))


def _parser(prog: str, what: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=what)
    p.add_argument("worlds", nargs="*", help="world names (default: every world)")
    p.add_argument("--worlds-dir", type=Path, default=Path("worlds"), help="default: ./worlds")
    return p


def build_main(argv: Sequence[str] | None = None) -> int:
    """Write ``worlds/<world>/assets/manifest.json`` for each world; print problems. Exit 0/1."""
    p = _parser("emachi assets build", "hash each world's assets and write its manifest")
    args = p.parse_args(argv)
    status = 0
    for w in world_dirs(args.worlds_dir, args.worlds):
        assets = w / "assets"
        if not assets.is_dir():
            print(f"{w}: no assets/ folder, nothing to build")
            continue
        try:
            entries = build_manifest(assets)
        except BuildError as e:
            for line in e.problems:
                print(line)
            status = 1
            continue
        total = sum(e.size for e in entries)
        print(f"{assets / 'manifest.json'}: {len(entries)} assets, {total} bytes")
    return status


def check_main(argv: Sequence[str] | None = None) -> int:
    """Verify every asset file against its hash and every world reference; one line per problem."""
    p = _parser("emachi assets check", "verify asset hashes and world references")
    p.add_argument(
        "--store",
        type=Path,
        action="append",
        default=None,
        help="extra runtime store to verify (default: ./var/assets if present)",
    )
    args = p.parse_args(argv)
    stores = args.store if args.store is not None else [Path("var/assets")]
    problems = check(world_dirs(args.worlds_dir, args.worlds), stores)
    for line in problems:
        print(line)
    if not problems:
        print("assets ok")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(check_main())
