"""QR codes as inline SVG, made on the server with segno, to carry a link from a PC to a phone."""

from __future__ import annotations

import io
import re
from functools import lru_cache

import segno

__all__ = ["qr_svg"]


@lru_cache(maxsize=256)
def qr_svg(url: str, *, scale: int = 4) -> str:
    """An SVG document (no XML declaration) drawing ``url`` as a QR code, error correction M.

    Cached: the set of links is fixed by the catalog, so each QR is drawn once.
    """
    buf = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        buf,
        kind="svg",
        scale=scale,
        border=4,
        xmldecl=False,
        svgns=True,
        title="QR code",
        dark="#000",
        light="#fff",
        svgclass="kiosk-qr",
        lineclass=None,
    )
    svg = buf.getvalue().decode("utf-8")
    # A viewBox lets the client size the code with CSS without clipping it.
    m = re.match(r'<svg [^>]*width="(\d+)" height="(\d+)"', svg)
    if m:
        svg = svg.replace("<svg ", f'<svg viewBox="0 0 {m[1]} {m[2]}" ', 1)
    return svg
