"""Which MCP tool calls a drift decision needs, chosen from the drift itself (kinds and changed paths).

The plan stays small: only the evidence the decision rubric can use. For a workload whose
capacity moved: its traffic now against the hours before the change, memory when memory moved,
the autoscalers that may own its replicas, its events and field managers; for every
non-secret drift: the open incidents of its service, and the annotations people wrote around
the change. A security-only or Secret-only drift needs no live evidence (it is reverted or
escalated whatever the metrics say). Evidence ids are stable: `<server>.<tool>:<namespace>/<name>`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agents.drift.reasoning.changes import classify
from agents.drift.reasoning.security import is_security_path
from agents.drift.reasoning.workloads import WORKLOAD_KINDS
from protocol.models import DriftReport, ResourceDrift

__all__ = ["PlannedCall", "baseline_window", "evidence_id", "plan_evidence", "service_names"]

LOOKBACK = timedelta(hours=6)
"""How far back incidents, memory and annotations are read (the metric backends keep at least this)."""
BASELINE = timedelta(hours=3)
BASELINE_GAP = timedelta(minutes=15)
"""The baseline ends this long before the change, so that a spike that prompted the change is not in it."""


class PlannedCall(BaseModel):
    """One MCP tool call of the plan; `id` becomes the Evidence id the reasoning cites."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    server: str
    tool: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


def evidence_id(server: str, tool: str, namespace: str | None, name: str) -> str:
    return f"{server}.{tool}:{namespace or '-'}/{name}"


def _ts(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def change_time(drift: ResourceDrift, now: datetime) -> datetime:
    """When the cluster's value was written (managedFields), else `now` (unknown)."""
    return min(drift.changed_at, now) if drift.changed_at else now


def baseline_window(changed_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The hours before the change, ending a little before it and within the lookback."""
    end = min(changed_at, now) - BASELINE_GAP
    start = max(end - BASELINE, now - LOOKBACK)
    if start >= end:
        start = end - timedelta(minutes=30)
    return start, end


def service_names(report: DriftReport, drift: ResourceDrift) -> list[str]:
    """The service (metrics label, PagerDuty service) a resource belongs to: its workload's name, else the app's."""
    if drift.ref.kind in WORKLOAD_KINDS:
        return list(dict.fromkeys([drift.ref.name, report.application]))
    return [report.application]


def plan_evidence(report: DriftReport, now: datetime) -> list[PlannedCall]:
    calls: dict[str, PlannedCall] = {}

    def add(server: str, tool: str, key_ns: str | None, key_name: str, **arguments: JsonValue) -> None:
        key = evidence_id(server, tool, key_ns, key_name)
        calls.setdefault(key, PlannedCall(id=key, server=server, tool=tool, arguments=arguments))

    earliest = now
    operational = False
    for drift in report.drifts:
        changes = classify(drift)
        ns = drift.ref.namespace or report.destination_namespace
        if ns and ns not in report.namespace_labels:
            add("kubernetes", "namespace", None, ns, name=ns)
        plain_config = [p for p in changes.config_paths if not is_security_path(p)]
        if drift.ref.kind == "Secret" or (not changes.deltas and not plain_config):
            continue  # security-only or Secret drift: decided without live evidence
        operational = True
        at = change_time(drift, now)
        earliest = min(earliest, at)
        for service in service_names(report, drift):
            add("pagerduty", "incidents", ns, service, service=service, since=_ts(now - LOOKBACK), until=_ts(now))
        if drift.ref.kind not in WORKLOAD_KINDS or not changes.deltas:
            continue
        name = drift.ref.name
        start, end = baseline_window(at, now)
        add("prometheus", "workload_traffic", ns, name, namespace=ns, service=name, at=_ts(now),
            baseline_start=_ts(start), baseline_end=_ts(end))
        add("kubernetes", "events_for", ns, name, kind=drift.ref.kind, name=name, namespace=ns,
            since=_ts(now - LOOKBACK))
        add("kubernetes", "field_managers", ns, name,
            api_version=f"{drift.ref.group}/{drift.ref.version}" if drift.ref.group else drift.ref.version,
            kind=drift.ref.kind, name=name, namespace=ns)
        if changes.replicas_changed:
            add("kubernetes", "autoscalers_for", ns, name, kind=drift.ref.kind, name=name, namespace=ns)
        if any(d.what == "memory" for d in changes.deltas):
            add("prometheus", "workload_memory", ns, name, namespace=ns, workload=name,
                start=_ts(now - LOOKBACK), end=_ts(now))
    if operational:
        start = min(earliest, now) - timedelta(hours=1)
        add("grafana", "annotations", None, report.application, start=_ts(start), end=_ts(now), limit=20)
    return list(calls.values())
