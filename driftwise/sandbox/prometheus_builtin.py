"""A small PromQL evaluator over the scenario's generated samples, with Prometheus 2.x semantics.

It covers what Driftwise asks Prometheus: selectors with matchers and offsets, rate / irate /
increase / delta, the *_over_time family, aggregations with by / without, arithmetic, comparison
and set operators with vector matching, and a few math functions. Anything else is rejected with
Prometheus's own `bad_data` error, never answered wrongly.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

from driftwise.sandbox.series import Samples

LOOKBACK_MS = 5 * 60 * 1000
Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs


class QueryError(Exception):
    """The query cannot be parsed or evaluated here; Prometheus answers these with bad_data."""


@dataclass
class Scalar:
    value: float


@dataclass
class String:
    value: str


@dataclass
class Vector:
    samples: list[tuple[Labels, float]]


@dataclass
class Matrix:
    series: list[tuple[Labels, list[tuple[int, float]]]]


Value = Scalar | String | Vector | Matrix


def _labels(d: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in d.items() if v != ""))


@functools.lru_cache(maxsize=8192)
def _drop_name(labels: Labels) -> Labels:
    # Called per sample per step of a range query on the same few label sets: memoised.
    return tuple(p for p in labels if p[0] != "__name__")


@dataclass
class _Stored:
    labels: Labels
    label_map: dict[str, str]
    times: list[int]
    values: list[float]


class Storage:
    """Samples of the active world, indexed by metric name; immutable once built."""

    MAX_CACHED_SELECTIONS = 4096

    def __init__(self, samples: list[Samples]) -> None:
        self.by_name: dict[str, list[_Stored]] = {}
        for s in samples:
            stored = _Stored(_labels(s.labels), dict(s.labels), list(s.times_ms), list(s.values))
            self.by_name.setdefault(s.labels["__name__"], []).append(stored)
        # A range query selects the same series at every step: the selection is computed once per
        # distinct matcher set (the samples never change under a Storage; a new world builds a new one).
        self._selected: dict[tuple[tuple[str, str, str], ...], list[_Stored]] = {}

    def all(self) -> list[_Stored]:
        return [s for group in self.by_name.values() for s in group]

    def select(self, matchers: list[tuple[str, str, str]]) -> list[_Stored]:
        key = tuple(matchers)
        found = self._selected.get(key)
        if found is None:
            names = [v for n, op, v in matchers if n == "__name__" and op == "="]
            pool = self.by_name.get(names[0], []) if names else self.all()
            found = [s for s in pool if all(_match(s.label_map.get(n, ""), op, v) for n, op, v in matchers)]
            if len(self._selected) >= self.MAX_CACHED_SELECTIONS:
                self._selected.clear()
            self._selected[key] = found
        return list(found)


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _regex(pattern: str) -> re.Pattern[str]:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        try:
            compiled = re.compile(pattern, re.DOTALL)
        except re.error as exc:
            raise QueryError(f"invalid regular expression {pattern!r}: {exc}") from None
        _REGEX_CACHE[pattern] = compiled
    return compiled


def _match(value: str, op: str, want: str) -> bool:
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    if op == "=~":
        return _regex(want).fullmatch(value) is not None
    return _regex(want).fullmatch(value) is None


_MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def _matchers(vs: Any) -> list[tuple[str, str, str]]:
    if vs.at is not None:
        raise QueryError("the @ modifier is not supported by the sandbox's builtin Prometheus")
    if vs.matchers.or_matchers:
        raise QueryError("'or' label matchers are not supported by the sandbox's builtin Prometheus")
    out = [(m.name, _MATCH_OPS[str(m.op)], m.value) for m in vs.matchers.matchers]
    if vs.name:
        out.append(("__name__", "=", vs.name))
    return out


def _ms(td: Any) -> int:
    return 0 if td is None else round(td.total_seconds() * 1000)


# --- range functions ----------------------------------------------------------------------


def _extrapolated(points: list[tuple[int, float]], start: int, end: int, range_s: float, counter: bool,
                  rate: bool) -> float | None:
    """Prometheus 2.x extrapolatedRate (rate, increase, delta)."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if counter:
        prev = 0.0
        for _, v in points:
            if v < prev:
                result += prev
            prev = v
    to_start = (first_t - start) / 1000
    to_end = (end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (len(points) - 1)
    if counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    return result / range_s if rate else result


def _instant_rate(points: list[tuple[int, float]], is_rate: bool) -> float | None:
    if len(points) < 2:
        return None
    (t0, v0), (t1, v1) = points[-2], points[-1]
    diff = v1 - v0
    if is_rate and v1 < v0:
        diff = v1
    if t1 == t0:
        return None
    return diff / ((t1 - t0) / 1000) if is_rate else diff


def _stddev(vs: list[float]) -> float:
    return statistics.pstdev(vs) if vs else math.nan


def _quantile(q: float, values: list[float]) -> float:
    if not values:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    vs = sorted(values)
    rank = q * (len(vs) - 1)
    lo = max(0, math.floor(rank))
    hi = min(len(vs) - 1, lo + 1)
    weight = rank - math.floor(rank)
    return vs[lo] * (1 - weight) + vs[hi] * weight


_OVER_TIME: dict[str, Callable[[list[float]], float]] = {
    "avg_over_time": lambda vs: sum(vs) / len(vs),
    "sum_over_time": sum,
    "min_over_time": min,
    "max_over_time": max,
    "count_over_time": lambda vs: float(len(vs)),
    "last_over_time": lambda vs: vs[-1],
    "present_over_time": lambda vs: 1.0,
    "stddev_over_time": _stddev,
    "stdvar_over_time": lambda vs: _stddev(vs) ** 2,
}

_MATH: dict[str, Callable[[float], float]] = {
    "abs": abs, "ceil": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "floor": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "sqrt": lambda v: math.sqrt(v) if v >= 0 else math.nan,
    "exp": math.exp, "ln": lambda v: math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "log2": lambda v: math.log2(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "log10": lambda v: math.log10(v) if v > 0 else (-math.inf if v == 0 else math.nan),
}


# --- binary operators ---------------------------------------------------------------------

_COMPARISON = {"==", "!=", ">", "<", ">=", "<="}


def _arith(op: str, a: float, b: float) -> float:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
            return a / b
        if op == "%":
            return math.fmod(a, b) if b != 0 else math.nan
        if op == "^":
            return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.nan
    raise QueryError(f"operator {op!r} is not supported by the sandbox's builtin Prometheus")


def _compare(op: str, a: float, b: float) -> bool:
    return {"==": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


class Evaluator:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def instant(self, query: str, ts_ms: int) -> Value:
        return self.eval(parse(query), ts_ms)

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Matrix:
        expr = parse(query)
        out: dict[Labels, list[tuple[int, float]]] = {}
        t = start_ms
        while t <= end_ms:
            value = self.eval(expr, t)
            if isinstance(value, Scalar):
                out.setdefault((), []).append((t, value.value))
            elif isinstance(value, Vector):
                for labels, v in value.samples:
                    out.setdefault(labels, []).append((t, v))
            else:
                raise QueryError(f"invalid expression type {_type_name(value)!r} for range query, "
                                 "must be Scalar or instant Vector")
            t += step_ms
        return Matrix(sorted(out.items()))

    # evaluation -----------------------------------------------------------------------

    def eval(self, e: Any, ts: int) -> Value:
        if isinstance(e, pp.NumberLiteral):
            return Scalar(float(e.val))
        if isinstance(e, pp.StringLiteral):
            return String(e.val)
        if isinstance(e, pp.ParenExpr):
            return self.eval(e.expr, ts)
        if isinstance(e, pp.UnaryExpr):
            value = self.eval(e.expr, ts)
            if isinstance(value, Scalar):
                return Scalar(-value.value)
            if isinstance(value, Vector):
                return Vector([(_drop_name(lb), -v) for lb, v in value.samples])
            raise QueryError("unary minus needs a scalar or an instant vector")
        if isinstance(e, pp.VectorSelector):
            return self._vector(e, ts)
        if isinstance(e, pp.MatrixSelector):
            return self._matrix(e, ts)
        if isinstance(e, pp.Call):
            return self._call(e, ts)
        if isinstance(e, pp.AggregateExpr):
            return self._aggregate(e, ts)
        if isinstance(e, pp.BinaryExpr):
            return self._binary(e, ts)
        raise QueryError(f"{type(e).__name__} expressions are not supported by the sandbox's builtin Prometheus")

    def _vector(self, vs: Any, ts: int) -> Vector:
        at = ts - _ms(vs.offset)
        out = []
        for s in self.storage.select(_matchers(vs)):
            i = bisect.bisect_right(s.times, at) - 1
            if i >= 0 and s.times[i] >= at - LOOKBACK_MS:
                out.append((s.labels, s.values[i]))
        return Vector(out)

    def _matrix(self, ms: Any, ts: int) -> Matrix:
        vs = ms.vector_selector
        end = ts - _ms(vs.offset)
        start = end - _ms(ms.range)
        out = []
        for s in self.storage.select(_matchers(vs)):
            lo = bisect.bisect_left(s.times, start)
            hi = bisect.bisect_right(s.times, end)
            if hi > lo:
                out.append((s.labels, list(zip(s.times[lo:hi], s.values[lo:hi], strict=True))))
        return Matrix(out)

    def _call(self, call: Any, ts: int) -> Value:
        name = call.func.name
        args = list(call.args)
        if name in ("rate", "increase", "delta", "irate", "idelta") or name in _OVER_TIME or name == \
                "quantile_over_time":
            q = None
            if name == "quantile_over_time":
                q = self._scalar_arg(args[0], ts)
                args = args[1:]
            if not isinstance(args[0], pp.MatrixSelector):
                raise QueryError(f"expected type range vector in call to function {name!r}; subqueries are "
                                 "not supported by the sandbox's builtin Prometheus")
            ms = args[0]
            matrix = self._matrix(ms, ts)
            end = ts - _ms(ms.vector_selector.offset)
            start = end - _ms(ms.range)
            out = []
            for labels, points in matrix.series:
                if name in ("rate", "increase", "delta"):
                    v = _extrapolated(points, start, end, ms.range.total_seconds(), name != "delta", name == "rate")
                elif name in ("irate", "idelta"):
                    v = _instant_rate(points, name == "irate")
                elif q is not None:
                    v = _quantile(q, [p[1] for p in points])
                else:
                    v = _OVER_TIME[name]([p[1] for p in points])
                if v is not None:
                    out.append((labels if name == "last_over_time" else _drop_name(labels), v))
            return Vector(out)
        if name in _MATH:
            vec = self._vector_arg(args[0], ts, name)
            return Vector([(_drop_name(lb), _MATH[name](v)) for lb, v in vec.samples])
        if name in ("clamp_min", "clamp_max", "clamp", "round"):
            vec = self._vector_arg(args[0], ts, name)
            nums = [self._scalar_arg(a, ts) for a in args[1:]]
            if name == "clamp_min":
                f = lambda v: max(v, nums[0])  # noqa: E731
            elif name == "clamp_max":
                f = lambda v: min(v, nums[0])  # noqa: E731
            elif name == "clamp":
                f = lambda v: max(min(v, nums[1]), nums[0])  # noqa: E731
            else:
                to = nums[0] if nums else 1.0
                f = lambda v: math.floor(v / to + 0.5) * to  # noqa: E731
            return Vector([(_drop_name(lb), f(v)) for lb, v in vec.samples])
        if name == "scalar":
            vec = self._vector_arg(args[0], ts, name)
            return Scalar(vec.samples[0][1] if len(vec.samples) == 1 else math.nan)
        if name == "vector":
            return Vector([((), self._scalar_arg(args[0], ts))])
        if name == "time":
            return Scalar(ts / 1000)
        if name == "timestamp":
            vec = self._vector_arg(args[0], ts, name)
            return Vector([(_drop_name(lb), ts / 1000) for lb, _ in vec.samples])
        if name == "absent":
            vec = self._vector_arg(args[0], ts, name)
            if vec.samples:
                return Vector([])
            labels = {}
            if isinstance(args[0], pp.VectorSelector):
                labels = {n: v for n, op, v in _matchers(args[0]) if op == "=" and n != "__name__"}
            return Vector([(_labels(labels), 1.0)])
        raise QueryError(f"function {name!r} is not supported by the sandbox's builtin Prometheus")

    def _vector_arg(self, e: Any, ts: int, fn: str) -> Vector:
        value = self.eval(e, ts)
        if not isinstance(value, Vector):
            raise QueryError(f"expected type instant vector in call to function {fn!r}, got {_type_name(value)}")
        return value

    def _scalar_arg(self, e: Any, ts: int) -> float:
        value = self.eval(e, ts)
        if not isinstance(value, Scalar):
            raise QueryError(f"expected type scalar, got {_type_name(value)}")
        return value.value

    def _aggregate(self, agg: Any, ts: int) -> Vector:
        op = str(agg.op)
        value = self.eval(agg.expr, ts)
        if not isinstance(value, Vector):
            raise QueryError(f"expected type instant vector in aggregation expression, got {_type_name(value)}")
        param = None
        if agg.param is not None:
            p = self.eval(agg.param, ts)
            if op == "count_values":
                raise QueryError("count_values is not supported by the sandbox's builtin Prometheus")
            if not isinstance(p, Scalar):
                raise QueryError(f"expected type scalar in aggregation parameter, got {_type_name(p)}")
            param = p.value
        modifier = agg.modifier
        grouping = list(modifier.labels) if modifier is not None else []
        without = modifier is not None and str(modifier.type).endswith("Without")

        def key(labels: Labels) -> Labels:
            if without:
                drop = set(grouping) | {"__name__"}
                return tuple(p for p in labels if p[0] not in drop)
            return tuple(p for p in labels if p[0] in grouping)

        groups: dict[Labels, list[tuple[Labels, float]]] = {}
        for labels, v in value.samples:
            groups.setdefault(key(labels), []).append((labels, v))
        out: list[tuple[Labels, float]] = []
        for k, members in groups.items():
            vs = [v for _, v in members]
            if op == "sum":
                out.append((k, math.fsum(vs)))
            elif op == "avg":
                out.append((k, math.fsum(vs) / len(vs)))
            elif op == "max":
                out.append((k, max(vs, key=lambda v: (not math.isnan(v), v))))
            elif op == "min":
                out.append((k, min(vs, key=lambda v: (math.isnan(v), v))))
            elif op == "count":
                out.append((k, float(len(vs))))
            elif op == "group":
                out.append((k, 1.0))
            elif op == "stddev":
                out.append((k, _stddev(vs)))
            elif op == "stdvar":
                out.append((k, _stddev(vs) ** 2))
            elif op == "quantile":
                out.append((k, _quantile(param if param is not None else math.nan, vs)))
            elif op in ("topk", "bottomk"):
                n = int(param or 0)
                ranked = sorted(members, key=lambda m: m[1], reverse=op == "topk")
                out.extend(ranked[:n])
            else:
                raise QueryError(f"aggregation {op!r} is not supported by the sandbox's builtin Prometheus")
        return Vector(out)

    def _binary(self, b: Any, ts: int) -> Value:
        op = str(b.op)
        mod = b.modifier
        return_bool = bool(mod and mod.return_bool)
        lhs, rhs = self.eval(b.lhs, ts), self.eval(b.rhs, ts)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            if op in _COMPARISON:
                return Scalar(1.0 if _compare(op, lhs.value, rhs.value) else 0.0)
            return Scalar(_arith(op, lhs.value, rhs.value))
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return self._vector_scalar(op, lhs, rhs.value, return_bool, scalar_left=False)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return self._vector_scalar(op, rhs, lhs.value, return_bool, scalar_left=True)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            return self._vector_vector(op, lhs, rhs, mod, return_bool)
        raise QueryError(f"binary operator {op!r} needs scalars or instant vectors")

    @staticmethod
    def _vector_scalar(op: str, vec: Vector, scalar: float, return_bool: bool, scalar_left: bool) -> Vector:
        out = []
        for labels, v in vec.samples:
            a, b = (scalar, v) if scalar_left else (v, scalar)
            if op in _COMPARISON:
                ok = _compare(op, a, b)
                if return_bool:
                    out.append((_drop_name(labels), 1.0 if ok else 0.0))
                elif ok:
                    out.append((labels, v))
            elif op in ("and", "or", "unless"):
                raise QueryError(f"set operator {op!r} not allowed in binary scalar expression")
            else:
                out.append((_drop_name(labels), _arith(op, a, b)))
        return Vector(out)

    @staticmethod
    def _vector_vector(op: str, lhs: Vector, rhs: Vector, mod: Any, return_bool: bool) -> Vector:
        matching = mod.matching if mod is not None else None
        on = matching is not None and str(matching.type).endswith("Include")
        names = set(matching.labels) if matching is not None else set()
        card = str(mod.card) if mod is not None else "VectorMatchCardinality.OneToOne"
        include = list(mod.group_labels) if mod is not None and mod.group_labels else []

        def sig(labels: Labels) -> Labels:
            if on:
                return tuple(p for p in labels if p[0] in names)
            return tuple(p for p in labels if p[0] not in names and p[0] != "__name__")

        if op in ("and", "or", "unless"):
            rsigs = {sig(lb) for lb, _ in rhs.samples}
            if op == "and":
                return Vector([(lb, v) for lb, v in lhs.samples if sig(lb) in rsigs])
            if op == "unless":
                return Vector([(lb, v) for lb, v in lhs.samples if sig(lb) not in rsigs])
            lsigs = {sig(lb) for lb, _ in lhs.samples}
            return Vector(list(lhs.samples) + [(lb, v) for lb, v in rhs.samples if sig(lb) not in lsigs])

        one_side, many_side, swapped = rhs, lhs, False
        if card.endswith("OneToMany"):
            one_side, many_side, swapped = lhs, rhs, True
        index: dict[Labels, tuple[Labels, float]] = {}
        for labels, v in one_side.samples:
            s = sig(labels)
            if s in index:
                raise QueryError("found duplicate series for the match group on the right hand-side of the "
                                 "operation; many-to-many matching not allowed: matching labels must be unique "
                                 "on one side")
            index[s] = (labels, v)
        out: list[tuple[Labels, float]] = []
        seen: set[Labels] = set()
        for labels, v in many_side.samples:
            match = index.get(sig(labels))
            if match is None:
                continue
            other_labels, other_v = match
            a, b = (other_v, v) if swapped else (v, other_v)
            result_labels = dict(labels)
            if op not in _COMPARISON or return_bool:
                result_labels.pop("__name__", None)
            if card.endswith("OneToOne"):
                if on:
                    result_labels = {k: val for k, val in result_labels.items() if k in names}
                else:
                    for n in names:
                        result_labels.pop(n, None)
            other_map = dict(other_labels)
            for n in include:
                if other_map.get(n):
                    result_labels[n] = other_map[n]
                else:
                    result_labels.pop(n, None)
            final = _labels(result_labels)
            if op in _COMPARISON:
                ok = _compare(op, a, b)
                if return_bool:
                    value = 1.0 if ok else 0.0
                elif ok:
                    value = v
                else:
                    continue
            else:
                value = _arith(op, a, b)
            if final in seen and card.endswith("OneToOne"):
                raise QueryError("multiple matches for labels: many-to-one matching must be explicit "
                                 "(group_left/group_right)")
            seen.add(final)
            out.append((final, value))
        return Vector(out)


def _type_name(value: Value) -> str:
    return {Scalar: "scalar", String: "string", Vector: "instant vector", Matrix: "range vector"}[type(value)]


def parse(query: str) -> Any:
    try:
        return pp.parse(query)
    except Exception as exc:  # the parser raises bare exceptions carrying the position and cause
        raise QueryError(f"1:1: parse error: {exc}") from None


# --- JSON shapes --------------------------------------------------------------------------


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    if "e" in text or "E" in text:
        text = format(v, "f") if abs(v) >= 1 else f"{v:.{max(0, -math.floor(math.log10(abs(v))) + 16)}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
    elif text.endswith(".0"):
        text = text[:-2]
    return text


def _ts(ms: int) -> float | int:
    return ms / 1000 if ms % 1000 else ms // 1000


def result_json(value: Value, ts_ms: int) -> dict[str, Any]:
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [_ts(ts_ms), format_value(value.value)]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [_ts(ts_ms), value.value]}
    if isinstance(value, Vector):
        return {"resultType": "vector", "result": [
            {"metric": dict(labels), "value": [_ts(ts_ms), format_value(v)]} for labels, v in value.samples]}
    return {"resultType": "matrix", "result": [
        {"metric": dict(labels), "values": [[_ts(t), format_value(v)] for t, v in points]}
        for labels, points in value.series]}
