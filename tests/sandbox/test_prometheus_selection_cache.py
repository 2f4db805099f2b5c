"""The builtin Prometheus caches each selector's series per Storage: same answers, no shared mutable lists."""

from __future__ import annotations

from driftwise.sandbox.prometheus_builtin import Evaluator, Storage
from driftwise.sandbox.series import Samples


def _storage() -> Storage:
    times = [1_000_000 + i * 15_000 for i in range(40)]
    return Storage([
        Samples({"__name__": "http_requests_total", "namespace": ns, "service": "api", "code": code}, "counter",
                times, [float(i * (k + 1)) for i in range(40)])
        for k, (ns, code) in enumerate([("a", "200"), ("a", "500"), ("b", "200")])
    ])


def test_cached_selection_is_the_same_and_not_shared() -> None:
    storage = _storage()
    matchers = [("namespace", "=", "a"), ("__name__", "=", "http_requests_total")]
    first = storage.select(matchers)
    first.clear()  # a caller mutating its answer must not change the next one
    again = storage.select(matchers)
    assert sorted(s.label_map["code"] for s in again) == ["200", "500"]
    assert [s.label_map["code"] for s in storage.select([("code", "=~", "5..")])] == ["500"]


def test_range_query_equals_instant_queries_at_each_step() -> None:
    storage = _storage()
    query = 'sum by (namespace) (rate(http_requests_total{code!="500"}[2m]))'
    start, end, step = 1_200_000, 1_500_000, 60_000
    matrix = Evaluator(storage).range(query, start, end, step)
    for labels, points in matrix.series:
        for t, v in points:
            instant = Evaluator(storage).instant(query, t)
            assert dict(instant.samples)[labels] == v  # type: ignore[union-attr]
