"""Turn a scenario series (points relative to now) into the samples Prometheus would hold.

Samples every 15 s over the six hours before `now`; gauges interpolate the points linearly
(constant before the first and after the last point); counters start at 0 six hours before
`now` and accumulate the integral of their per-second rate, which is exact for piecewise-linear rates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from driftwise.sandbox.scenario import SERIES_SPAN_S, STEP_S, Series


@dataclass(frozen=True)
class Samples:
    labels: dict[str, str]
    kind: str
    times_ms: list[int]
    values: list[float]


def _value_at(points: list[tuple[float, float]], t: float) -> float:
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def _integral(points: list[tuple[float, float]], a: float, b: float) -> float:
    """Integral of the piecewise-linear rate over [a, b]."""
    knots = sorted({a, b, *(t for t, _ in points if a < t < b)})
    total = 0.0
    for t0, t1 in itertools.pairwise(knots):
        total += (t1 - t0) * (_value_at(points, t0) + _value_at(points, t1)) / 2
    return total


def sample_times_ms(now_ms: int) -> list[int]:
    return [now_ms - (SERIES_SPAN_S - k * STEP_S) * 1000 for k in range(SERIES_SPAN_S // STEP_S + 1)]


def generate(series: Series, now_ms: int) -> Samples:
    points = [(float(t), float(v)) for t, v in series.points]
    times = sample_times_ms(now_ms)
    rel = [(t - now_ms) / 1000 for t in times]
    if series.type == "gauge":
        values = [_value_at(points, r) for r in rel]
    else:
        values, acc = [], 0.0
        prev = rel[0]
        for r in rel:
            acc += _integral(points, prev, r)
            values.append(acc)
            prev = r
    return Samples(dict(series.labels), series.type, times, values)
