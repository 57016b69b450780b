"""The pure parts of server.web_security and server.metrics: origins, the token bucket, the CSP
hashes, numpy histograms and the bench's quantile reading of them."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.crowd import histogram_quantile, parse_metrics
from server.metrics import Buckets, Metrics
from server.web_security import RateLimiter, inline_script_hashes, normalize_origin


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://Hall.Example.JP/", "https://hall.example.jp"),
        ("https://hall.example.jp:443", "https://hall.example.jp"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://localhost:80", "http://localhost"),
        ("null", None),
        ("file:///etc/passwd", None),
        ("http://", None),
        ("http://h:99999", None),
    ],
)
def test_origins_are_normalised(text: str, origin: str | None) -> None:
    assert normalize_origin(text) == origin


def test_the_bucket_refills_and_refusals_take_nothing() -> None:
    lim = RateLimiter(per_minute=3)
    assert [lim.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.take("a", 0.0) == pytest.approx(20.0)
    for t in range(1, 20):
        assert lim.take("a", float(t)) > 0  # asking again and again does not push it back
    assert lim.take("a", 20.0) == 0.0
    assert lim.take("b", 20.0) == 0.0, "each address has its own bucket"


def test_full_buckets_are_pruned() -> None:
    lim = RateLimiter(per_minute=3, max_keys=10)
    for i in range(20):
        lim.take(str(i), float(i) * 60.0)
    assert len(lim.buckets) <= 11


def test_the_import_map_is_hashed() -> None:
    hashes = inline_script_hashes()
    assert hashes and all(h.startswith("'sha256-") for h in hashes)


def test_many_at_once_is_the_same_as_one_by_one() -> None:
    rng = np.random.default_rng(1)
    values = rng.exponential(0.02, 5000)
    values[:3] = [0.010, 0.0, 100.0]  # on a bound (le is inclusive), zero, past the last bound
    one, many = Buckets((0.005, 0.010, 0.020, 0.050)), Buckets((0.005, 0.010, 0.020, 0.050))
    for v in values:
        one.observe(float(v))
    many.observe_many(values)
    assert one.counts.tolist() == many.counts.tolist()
    assert one.total == pytest.approx(many.total)
    assert many.counts[1] >= 1 and many.counts[-1] >= 1


def test_the_bench_reads_quantiles_from_two_scrapes() -> None:
    m = Metrics()
    for _ in range(100):
        m.observe_tick(0.001)  # before the window
    first = parse_metrics(m.render({}))
    for i in range(1000):
        m.observe_tick(0.0105 + 0.001 * (i % 4))  # 10.5-13.5 ms
    last = parse_metrics(m.render({}))
    p50 = histogram_quantile(first, last, "emachi_tick_seconds", 0.5)
    p99 = histogram_quantile(first, last, "emachi_tick_seconds", 0.99)
    assert p50 is not None and 0.010 <= p50 <= 0.014
    assert p99 is not None and 0.012 <= p99 <= 0.014
    assert histogram_quantile(last, last, "emachi_tick_seconds", 0.5) is None
    fams = {f.name: f for f in text_string_to_metric_families(m.render({"emachi_avatars": 3.0}))}
    assert fams["emachi_tick_seconds"].type == "histogram"
    assert fams["emachi_avatars"].samples[0].value == 3.0


def test_each_app_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.sent(5, 500, 1)
    assert "emachi_frames_sent_total 5.0" in a.render({})
    assert "emachi_frames_sent_total 0.0" in b.render({})
