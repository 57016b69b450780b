"""The feature packages mounted on the application, each a ``setup(app)`` (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

__all__ = ["SETUPS"]

SETUPS: list[Callable[[web.Application], None]] = []
