"""Ogg Opus narration, for browsers that decode it: about a sixteenth of the WAV's size.

libsndfile (through soundfile) starts each Ogg stream with a random serial number, so the same
audio would give different bytes every time; :func:`fix_serial` rewrites every page with one
fixed serial (and its checksum), which makes the encoding deterministic, as content addressing
needs. Without soundfile (or without Opus in its libsndfile) :func:`encode_opus` returns None and
the narration is served as WAV only.
"""

from __future__ import annotations

import io
import logging
import struct

import numpy as np

__all__ = ["OPUS_RATES", "encode_opus", "fix_serial", "ogg_crc"]

log = logging.getLogger("emachi.briefing.ogg")

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
SERIAL = 0x656D6163  # "emac"
_CRC_TABLE = []
for _i in range(256):
    _r = _i << 24
    for _ in range(8):
        _r = ((_r << 1) ^ 0x04C11DB7) if _r & 0x80000000 else (_r << 1)
    _CRC_TABLE.append(_r & 0xFFFFFFFF)


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04c11db7, no reflection, initial 0)."""
    crc = 0
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) & 0xFF) ^ b]
    return crc


def fix_serial(data: bytes, serial: int = SERIAL) -> bytes:
    """Every page of a single-stream Ogg file with ``serial``, checksums recomputed.

    Raises ValueError when ``data`` is not a sequence of Ogg pages.
    """
    out = bytearray()
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or len(data) - pos < 27:
            raise ValueError(f"not an Ogg page at byte {pos}")
        nseg = data[pos + 26]
        seg_table = data[pos + 27 : pos + 27 + nseg]
        size = 27 + nseg + sum(seg_table)
        page = bytearray(data[pos : pos + size])
        struct.pack_into("<I", page, 14, serial)
        struct.pack_into("<I", page, 22, 0)
        struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
        out += page
        pos += size
    return bytes(out)


def encode_opus(samples: np.ndarray, rate: int) -> bytes | None:
    """Mono float samples as Ogg Opus, deterministic; None when it cannot be made here."""
    if rate not in OPUS_RATES:
        return None
    try:
        import soundfile
    except ImportError:
        return None
    if "OPUS" not in soundfile.available_subtypes("OGG"):
        return None
    buf = io.BytesIO()
    soundfile.write(buf, np.asarray(samples, dtype=np.float32), rate, format="OGG", subtype="OPUS")
    return fix_serial(buf.getvalue())
