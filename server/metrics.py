"""Process metrics for Prometheus at ``/metrics``, through ``prometheus_client``.

Histograms (tick duration, input → snapshot latency) so that a dashboard can add them up across
the processes of a cluster and take quantiles over any window; counters for what the server
wrote, dropped and closed. The hot paths (once per tick, once per message) only add to plain
numbers and numpy bucket counts: the per-app :class:`~prometheus_client.CollectorRegistry` reads
them through one collector when ``/metrics`` is scraped, so a scrape costs a few dozen lines of
text and the tick pays nothing for the library.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from server.protocol.codes import CloseCode

__all__ = ["Metrics", "Buckets", "TICK_BUCKETS", "LATENCY_BUCKETS", "GAUGE_HELP"]

#: tick durations: a tick is a few ms in a small hall, tens at a thousand avatars, 50 ms is the
#: whole period at 20 Hz; fine steps around 10-25 ms so a quantile is known to about a millisecond
TICK_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.010, 0.012, 0.014, 0.016,
    0.018, 0.020, 0.022, 0.025, 0.030, 0.035, 0.040, 0.050, 0.060, 0.075, 0.100, 0.150,
    0.250, 0.500, 1.0,
)  # fmt: skip
#: input → snapshot: at most one tick period plus the tick's own time when all is well
LATENCY_BUCKETS = (
    0.001, 0.002, 0.005, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.050, 0.060,
    0.070, 0.080, 0.100, 0.125, 0.150, 0.200, 0.300, 0.500, 1.0, 2.0, 5.0,
)  # fmt: skip

#: what the gauges passed to :meth:`Metrics.render` (and ``Metrics.extra``) are
GAUGE_HELP = {
    "emachi_instances": "Instances of the world open in this process.",
    "emachi_avatars": "Avatars in every instance of this process.",
    "emachi_watchers": "Watch-only viewers (briefing pages) connected to this process.",
    "emachi_snapshot_shed": "Snapshots every N ticks in the instance that sheds most: over "
    "--shed-above of a core the process sends fewer snapshots and keeps its tick rate (1 = none "
    "shed).",
    "emachi_process_cpu": "CPU this process used over the last second, as a fraction of one core.",
    "emachi_sessions_detached": "Avatars kept for their resume window after their socket went away.",
    "emachi_tick_seconds_max": "Longest tick of any instance over the last 1200 ticks.",
    "emachi_cluster_people": "Avatars in every instance of every live process of the cluster.",
    "emachi_cluster_watchers": "Watch-only viewers of every live process of the cluster.",
    "emachi_cluster_processes": "Live processes of the cluster.",
    "emachi_cluster_redis_up": "1 when this process's bus and directory reach Redis, else 0.",
    "emachi_cluster_bus_dropped": "Bus messages this process could not publish (Redis away).",
}


class Buckets:
    """A cumulative-on-read histogram kept as numpy counts per bucket; observes one or many."""

    __slots__ = ("bounds", "_bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self._bounds = [float(b) for b in bounds]  # bisect on a list beats numpy for one value
        self.counts = np.zeros(len(bounds) + 1, dtype=np.int64)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.total += value

    def observe_many(self, values: np.ndarray) -> None:
        """Add every value of ``values`` (seconds) with two numpy calls, whatever their number."""
        if values.size == 0:
            return
        idx = np.searchsorted(self.bounds, values, side="left")
        self.counts += np.bincount(idx, minlength=self.counts.size)
        self.total += float(values.sum())

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def family(self, name: str, help_: str) -> HistogramMetricFamily:
        cum = np.cumsum(self.counts)
        buckets = [
            (_le(b), float(c)) for b, c in zip(self.bounds.tolist(), cum[:-1].tolist(), strict=True)
        ]
        buckets.append(("+Inf", float(cum[-1])))
        return HistogramMetricFamily(name, help_, buckets=buckets, sum_value=self.total)


def _le(bound: float) -> str:
    return f"{bound:.6g}"


class Metrics:
    """The numbers of one application (tests build many apps in one process, each its own)."""

    def __init__(self, window: int = 1200) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.tick_seconds = Buckets(TICK_BUCKETS)
        self.input_to_snapshot = Buckets(LATENCY_BUCKETS)
        self.ticks: collections.deque[float] = collections.deque(maxlen=window)
        self.frames_sent = 0
        self.bytes_sent = 0
        self.frames_dropped = 0
        self.connections_total = 0
        self.closes: collections.Counter[int] = collections.Counter()
        self.messages_in = 0
        #: gauges that features keep up to date (e.g. the cluster's), name -> value
        self.extra: dict[str, float] = {}
        #: gauges read when /metrics is scraped: callables returning name -> value
        self.sources: list[Callable[[], dict[str, float]]] = []
        self._gauges: dict[str, float] = {}
        self.registry.register(_Collector(self))

    def feature_gauges(self) -> dict[str, float]:
        """The features' gauges: those kept up to date in ``extra`` and those read now."""
        out = dict(self.extra)
        for source in self.sources:
            out.update(source())
        return out

    @property
    def tick_count(self) -> int:
        return self.tick_seconds.count

    def observe_tick(self, seconds: float) -> None:
        """One tick of one instance took ``seconds`` (step, hooks and every snapshot written)."""
        self.tick_seconds.observe(seconds)
        self.ticks.append(seconds)

    def observe_input_latency(self, seconds: np.ndarray) -> None:
        """Snapshots were written that carry inputs which arrived ``seconds`` ago (one per viewer)."""
        self.input_to_snapshot.observe_many(seconds)

    def sent(self, frames: int, nbytes: int, dropped: int = 0) -> None:
        """A tick wrote ``frames`` snapshots of ``nbytes`` and skipped ``dropped`` (peer behind)."""
        self.frames_sent += frames
        self.bytes_sent += nbytes
        self.frames_dropped += dropped

    def closed(self, code: int) -> None:
        """The server closed a connection with ``code``."""
        self.closes[int(code)] += 1

    def render(self, gauges: dict[str, float]) -> str:
        """The Prometheus text of every metric, with ``gauges`` (name -> value) read now."""
        self._gauges = gauges
        try:
            return generate_latest(self.registry).decode("utf-8")
        finally:
            self._gauges = {}


class _Collector(Collector):
    """Reads a :class:`Metrics` when the registry is scraped."""

    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield m.tick_seconds.family(
            "emachi_tick_seconds",
            "Time one instance tick takes: inputs applied, everyone moved, hooks run and every "
            "snapshot of the tick written (seconds).",
        )
        yield m.input_to_snapshot.family(
            "emachi_input_to_snapshot_seconds",
            "From the arrival of a client's input to the first snapshot written to that client "
            "that carries its sequence number, measured on the server (seconds; the oldest input "
            "a snapshot carries).",
        )
        yield _gauge("emachi_tick_seconds_max", max(m.ticks, default=0.0))
        yield _counter("emachi_frames_sent", "Snapshot frames written to clients.", m.frames_sent)
        yield _counter(
            "emachi_snapshot_bytes", "Snapshot payload bytes written to clients.", m.bytes_sent
        )
        yield _counter(
            "emachi_frames_dropped",
            "Snapshot frames due but not written: the client's send buffer was over its limit "
            "(it skips to a newer state) or its connection was closing.",
            m.frames_dropped,
        )
        yield _counter("emachi_connections", "WebSocket connections accepted.", m.connections_total)
        yield _counter(
            "emachi_messages_in", "Messages received from clients (all kinds).", m.messages_in
        )
        closes = CounterMetricFamily(
            "emachi_closes",
            "Connections closed by the server, by WebSocket close code and its name.",
            labels=["code", "reason"],
        )
        for code, n in sorted(m.closes.items()):
            closes.add_metric([str(code), _name(code)], float(n))
        yield closes
        for name, value in sorted({**m._gauges, **m.feature_gauges()}.items()):
            yield _gauge(name, value)


def _counter(name: str, help_: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_, value=float(value))


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        name, GAUGE_HELP.get(name, name.replace("_", " ") + "."), value=float(value)
    )


def _name(code: int) -> str:
    try:
        return CloseCode(code).name.lower()
    except ValueError:
        return str(code)
