"""What kind of change each drifted resource carries: capacity up or down, a Secret value, or plain configuration.

Directions come from comparing Git's and the cluster's values (replicas, resource quantities,
autoscaler bounds, disruption budgets, probes, how pods are spread over nodes and zones, how many
may be down during a rollout), so that any workload and any magnitude is read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.kit.knowledge import Meaning, Packs, PathMeaning, default_packs, is_builtin, meanings
from agents.kit.workloads import (
    WORKLOAD_KINDS,
    container_map,
    dig,
    pod_spec,
    pod_spec_pointer,
    quantity,
    replicas,
)
from protocol.models import ResourceDrift


@dataclass(frozen=True)
class Delta:
    """One capacity-relevant field that moved: where, from what to what, and which way."""

    path: str
    before: Any
    after: Any
    up: bool
    what: str  # "replicas" | "cpu" | "memory" | "autoscaler" | "disruption" | "probe" | "spreading" | "rollout"
    # | another resource name

    def describe(self) -> str:
        return f"{self.path} {self.before} -> {self.after}"


@dataclass
class ResourceChanges:
    """The classified drift of one resource (a custom resource's paths classified by the knowledge packs)."""

    drift: ResourceDrift
    secret_values: list[str] = field(default_factory=list)
    deltas: list[Delta] = field(default_factory=list)
    config_paths: list[str] = field(default_factory=list)
    weakened: list[PathMeaning] = field(default_factory=list)
    """security controls a pack names, weakened (rule 1)"""
    unclassified: list[PathMeaning] = field(default_factory=list)
    """changed paths whose meaning no pack establishes (rule 7: never benign)"""

    @property
    def up(self) -> list[Delta]:
        return [d for d in self.deltas if d.up]

    @property
    def down(self) -> list[Delta]:
        return [d for d in self.deltas if not d.up]

    @property
    def is_workload(self) -> bool:
        return self.drift.ref.kind in WORKLOAD_KINDS

    @property
    def replicas_changed(self) -> bool:
        return any(d.what == "replicas" for d in self.deltas)

    @property
    def memory_raised(self) -> bool:
        return any(d.what == "memory" and d.up for d in self.deltas)


def classify(drift: ResourceDrift, packs: Packs | None = None) -> ResourceChanges:
    """What each changed path of `drift` is; a custom resource's paths mean what `packs` say (default: shipped)."""
    if not is_builtin(drift.ref.group):
        return _classify_custom(drift, packs or default_packs())
    out = ResourceChanges(drift=drift)
    target, live = drift.target or {}, drift.live or {}
    if drift.ref.kind == "Secret":
        out.secret_values = [c.path for c in drift.changes
                             if c.redacted or c.path.startswith(("/data", "/stringData"))]
    out.deltas = (_replica_deltas(target, live) + _resource_deltas(target, live) + _probe_deltas(target, live)
                  + _spreading_deltas(target, live) + _rollout_deltas(drift.ref.kind, target, live))
    if drift.ref.kind == "HorizontalPodAutoscaler":
        out.deltas += _bound_deltas(target, live)
    if drift.ref.kind == "PodDisruptionBudget":
        out.deltas += _pdb_deltas(target, live)
    covered = {d.path for d in out.deltas}
    out.config_paths = [
        c.path for c in drift.changes
        if c.path not in out.secret_values and not any(_within(c.path, p) or _within(p, c.path) for p in covered)
    ]
    return out


def _classify_custom(drift: ResourceDrift, packs: Packs) -> ResourceChanges:
    out = ResourceChanges(drift=drift)
    target, live = drift.target or {}, drift.live or {}
    found = meanings(drift, packs)
    template_paths = [m.path for m in found if m.meaning == Meaning.POD_TEMPLATE]
    if template_paths:
        # Inside a pod template the core workloads' reading applies: resources, probes, spreading.
        pod = _resource_deltas(target, live) + _probe_deltas(target, live) + _spreading_deltas(target, live)
        out.deltas += [d for d in pod if any(_within(p, d.path) or _within(d.path, p) for p in template_paths)]
    for m in found:
        if m.meaning == Meaning.CAPACITY:
            b, a = quantity(m.before), quantity(m.after)  # MISSING is no quantity
            if b is None or a is None:
                out.unclassified.append(PathMeaning(m.path, Meaning.UNCLASSIFIED, m.pack, m.at, m.before, m.after,
                                                    detail=f"capacity field {m.at} is not a number on both sides"))
            elif a != b and not any(d.path == m.at for d in out.deltas):
                out.deltas.append(Delta(m.at, m.before, m.after, (a > b) != m.inverse, m.what))
        elif m.meaning == Meaning.WEAKENED:
            out.weakened.append(m)
        elif m.meaning == Meaning.UNCLASSIFIED:
            out.unclassified.append(m)
    covered = {d.path for d in out.deltas}
    out.config_paths = [
        m.path for m in found
        if m.meaning in (Meaning.BENIGN, Meaning.STRENGTHENED, Meaning.POD_TEMPLATE)
        and not any(_within(m.path, p) or _within(p, m.path) for p in covered)
    ]
    return out


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _replica_deltas(target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    before, after = replicas(target), replicas(live)
    if before is None or after is None or before == after:
        return []
    return [Delta("/spec/replicas", before, after, after > before, "replicas")]


def _resource_deltas(target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    t_spec, l_spec = pod_spec(target), pod_spec(live)
    if t_spec is None or l_spec is None:
        return []
    base = pod_spec_pointer(live)
    out: list[Delta] = []
    t_map = container_map(t_spec)
    for key, (i, c) in container_map(l_spec).items():
        if key not in t_map:
            continue
        tc = t_map[key][1]
        for section in ("requests", "limits"):
            t_res = dig(tc, "resources", section) or {}
            l_res = dig(c, "resources", section) or {}
            for name in sorted(set(t_res) | set(l_res)):
                b, a = quantity(t_res.get(name)), quantity(l_res.get(name))
                if b == a:
                    continue
                path = f"{base}/{key[0]}/{i}/resources/{section}/{name}"
                if b is not None and a is not None:
                    out.append(Delta(path, t_res.get(name), l_res.get(name), a > b, name))
                elif section == "limits":
                    # A limit removed lifts the ceiling (more headroom); a limit added caps it.
                    out.append(Delta(path, t_res.get(name), l_res.get(name), a is None, name))
                else:
                    out.append(Delta(path, t_res.get(name), l_res.get(name), a is not None, name))
    return out


def _probe_deltas(target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    t_spec, l_spec = pod_spec(target), pod_spec(live)
    if t_spec is None or l_spec is None:
        return []
    base = pod_spec_pointer(live)
    out: list[Delta] = []
    l_map = container_map(l_spec)
    for key, (i, tc) in container_map(t_spec).items():
        lc = l_map.get(key, (i, {}))[1]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in tc and probe not in lc:
                out.append(Delta(f"{base}/{key[0]}/{i}/{probe}", "set", None, False, "probe"))
    return out


def _bound_deltas(target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    out: list[Delta] = []
    for name in ("minReplicas", "maxReplicas"):
        b, a = dig(target, "spec", name), dig(live, "spec", name)
        if isinstance(b, int) and isinstance(a, int) and a != b:
            out.append(Delta(f"/spec/{name}", b, a, a > b, "autoscaler"))
    return out


def _pdb_deltas(target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    out: list[Delta] = []
    for name, more_is_safer in (("minAvailable", True), ("maxUnavailable", False)):
        b, a = dig(target, "spec", name), dig(live, "spec", name)
        if b == a:
            continue
        bq, aq = _pdb_number(b), _pdb_number(a)
        if bq is None and aq is None:
            continue
        more = (aq is not None) if aq is None or bq is None else aq > bq
        up = more == more_is_safer
        out.append(Delta(f"/spec/{name}", b, a, up, "disruption"))
    return out


def _pdb_number(value: Any) -> float | None:
    if isinstance(value, str) and value.endswith("%"):
        return quantity(value[:-1])
    return quantity(value)


# --- spreading: how far one node's or zone's failure reaches -----------------------------------------

_HARD, _SOFT = "requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"


def _anti_affinity_terms(spec: dict[str, Any]) -> tuple[int, int]:
    """(required, preferred) pod anti-affinity terms: both keep replicas apart, required ones for sure."""
    anti = dig(spec, "affinity", "podAntiAffinity") or {}
    hard, soft = anti.get(_HARD), anti.get(_SOFT)
    return (len(hard) if isinstance(hard, list) else 0), (len(soft) if isinstance(soft, list) else 0)


def _spread_strength(spec: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """Per topology key: (2 when hard else 1, -maxSkew) — bigger is a tighter spread."""
    out: dict[str, tuple[int, float]] = {}
    for c in spec.get("topologySpreadConstraints") or []:
        if not isinstance(c, dict):
            continue
        key = str(c.get("topologyKey") or "")
        hard = 2 if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule" else 1
        skew = quantity(c.get("maxSkew")) or 1.0
        out[key] = max(out.get(key, (0, float("-inf"))), (hard, -skew))
    return out


def _spreading_deltas(target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    t_spec, l_spec = pod_spec(target), pod_spec(live)
    if t_spec is None or l_spec is None:
        return []
    base = pod_spec_pointer(live)
    out: list[Delta] = []
    (tb_hard, tb_soft), (la_hard, la_soft) = _anti_affinity_terms(t_spec), _anti_affinity_terms(l_spec)
    b, a = 2 * tb_hard + tb_soft, 2 * la_hard + la_soft
    if a != b:
        out.append(Delta(f"{base}/affinity/podAntiAffinity", f"{tb_hard} required/{tb_soft} preferred term(s)",
                         f"{la_hard} required/{la_soft} preferred term(s)", a > b, "spreading"))
    t_spread, l_spread = _spread_strength(t_spec), _spread_strength(l_spec)
    weaker = [k for k, v in t_spread.items() if l_spread.get(k, (0, float("-inf"))) < v]
    stronger = [k for k, v in l_spread.items() if t_spread.get(k, (0, float("-inf"))) < v]
    if weaker or stronger:
        out.append(Delta(f"{base}/topologySpreadConstraints",
                         sorted(t_spread) or None, sorted(l_spread) or None, not weaker, "spreading"))
    return out


# --- rollouts: how many replicas may be down at once ----------------------------------------------

_STRATEGY: dict[str, tuple[str, Any]] = {
    "Deployment": ("strategy", "25%"), "StatefulSet": ("updateStrategy", 1), "DaemonSet": ("updateStrategy", 1),
}
"""Where each kind keeps its rollout strategy, and Kubernetes' default maxUnavailable."""


def _unavailable(value: Any, replicas_: int) -> float | None:
    if isinstance(value, str) and value.endswith("%"):
        pct = quantity(value[:-1])
        return None if pct is None else int(pct * replicas_ / 100)  # Kubernetes rounds maxUnavailable down
    return quantity(value)


def _rollout_deltas(kind: str, target: dict[str, Any], live: dict[str, Any]) -> list[Delta]:
    if kind not in _STRATEGY:
        return []
    field_, default = _STRATEGY[kind]
    t_strat, l_strat = dig(target, "spec", field_) or {}, dig(live, "spec", field_) or {}
    if t_strat == l_strat:
        return []
    t_type = t_strat.get("type") or ("RollingUpdate" if kind == "Deployment" else None)
    l_type = l_strat.get("type") or ("RollingUpdate" if kind == "Deployment" else None)
    if kind == "Deployment" and t_type != l_type:
        # Recreate takes every replica down before the new ones start.
        return [Delta(f"/spec/{field_}/type", t_type, l_type, l_type != "Recreate", "rollout")]
    t_val = dig(t_strat, "rollingUpdate", "maxUnavailable")
    l_val = dig(l_strat, "rollingUpdate", "maxUnavailable")
    if t_val == l_val:
        return []
    n = replicas(live) or replicas(target) or 100
    b = _unavailable(default if t_val is None else t_val, n)
    a = _unavailable(default if l_val is None else l_val, n)
    if a is None or b is None or a == b:
        return []
    return [Delta(f"/spec/{field_}/rollingUpdate/maxUnavailable", t_val, l_val, a < b, "rollout")]
