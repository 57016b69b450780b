"""Process metrics, rendered in the Prometheus text format at ``/metrics``."""

from __future__ import annotations

import collections

import numpy as np

from server.protocol.codes import CloseCode

__all__ = ["Metrics"]


class Metrics:
    """Counters and a window of recent tick durations (quantiles over the last minute at 20 Hz)."""

    def __init__(self, window: int = 1200) -> None:
        self.ticks: collections.deque[float] = collections.deque(maxlen=window)
        self.tick_count = 0
        self.frames_sent = 0
        self.bytes_sent = 0
        self.connections_total = 0
        self.closes: collections.Counter[int] = collections.Counter()
        self.messages_in = 0
        self.extra: dict[str, float] = {}

    def observe_tick(self, seconds: float) -> None:
        self.ticks.append(seconds)
        self.tick_count += 1

    def sent(self, frames: int, nbytes: int) -> None:
        self.frames_sent += frames
        self.bytes_sent += nbytes

    def closed(self, code: int) -> None:
        self.closes[int(code)] += 1

    def render(self, gauges: dict[str, float]) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value:.9g}")

        if self.ticks:
            arr = np.fromiter(self.ticks, dtype=np.float64)
            q50, q90, q99 = np.quantile(arr, [0.5, 0.9, 0.99])
            tmax = float(arr.max())
        else:
            q50 = q90 = q99 = tmax = 0.0
        metric(
            "emachi_tick_seconds",
            "summary",
            "Duration of instance ticks over the last window.",
            [
                ('{quantile="0.5"}', q50),
                ('{quantile="0.9"}', q90),
                ('{quantile="0.99"}', q99),
                ("_count", self.tick_count),
            ],
        )
        metric("emachi_tick_seconds_max", "gauge", "Longest tick in the window.", [("", tmax)])
        metric("emachi_frames_sent_total", "counter", "Snapshot frames written.", [("", self.frames_sent)])
        metric("emachi_snapshot_bytes_total", "counter", "Snapshot payload bytes written.", [("", self.bytes_sent)])
        metric("emachi_connections_total", "counter", "WebSocket connections accepted.", [("", self.connections_total)])
        metric("emachi_messages_in_total", "counter", "Messages received from clients.", [("", self.messages_in)])
        metric(
            "emachi_closes_total",
            "counter",
            "Connections closed by the server, by close code.",
            [(f'{{code="{c}",reason="{_name(c)}"}}', n) for c, n in sorted(self.closes.items())],
        )
        for name, value in sorted(gauges.items()):
            metric(name, "gauge", name.replace("_", " "), [("", value)])
        return "\n".join(lines) + "\n"


def _name(code: int) -> str:
    try:
        return CloseCode(code).name.lower()
    except ValueError:
        return str(code)
