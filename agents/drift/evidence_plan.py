"""Which MCP tool calls a drift decision needs, chosen from the drift itself (kinds and changed paths).

The plan stays small: only the evidence the decision rubric can use. For a workload whose
capacity moved (or an autoscaler whose bounds moved: it stands for the workload it scales): its
traffic now against the hours before the change, memory when memory moved, the autoscalers that
may own its replicas, its events and field managers; for every other non-secret drift that
widens nothing (configuration, metadata, an image from a registry Git already uses): the open
incidents of its service, and the annotations people wrote around the change. A drift that
widens privilege or exposure, or a Secret's, needs no live evidence (it is reverted or escalated
whatever the metrics say). Always: the labels of every namespace the drift touches (a regulated
or frozen namespace changes the answer), and for a drifted resource of a kind outside the built-in
API groups (a custom resource), what its schema says about the drifted paths: the CRD authors'
descriptions tell a reader what the fields mean. Evidence ids are stable:
`<server>.<tool>:<namespace>/<name>` (`<kind>/<name>` for the schema, a kind per resource).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agents.drift.reasoning.changes import classify
from agents.drift.reasoning.security import trusted_registries, widening_findings
from agents.kit.knowledge import default_packs, is_builtin
from agents.kit.workloads import WORKLOAD_KINDS, workload_of
from protocol.models import DriftReport, ResourceDrift
from protocol.needs import (
    BACKEND,
    TOOL,
    AnnotationsArgs,
    AutoscalersArgs,
    EventsArgs,
    FieldDescriptionsArgs,
    FieldManagersArgs,
    IncidentsArgs,
    MemoryArgs,
    NamespaceArgs,
    NeedArgs,
    TrafficArgs,
)

__all__ = ["BUILTIN_GROUPS", "PlannedCall", "baseline_window", "evidence_id", "plan_evidence", "service_names",
           "workload"]

LOOKBACK = timedelta(hours=6)
"""How far back incidents, memory and annotations are read (the metric backends keep at least this)."""
BASELINE = timedelta(hours=3)
BASELINE_GAP = timedelta(minutes=15)
"""The baseline ends this long before the change, so that a spike that prompted the change is not in it."""
BUILTIN_GROUPS = frozenset({
    "", "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
    "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
})
"""The API groups the Kubernetes API server itself serves. Listed, not matched by suffix: gateway.networking.k8s.io
and snapshot.storage.k8s.io are CRDs."""
MAX_SCHEMA_PATHS = 50
"""Drifted paths asked about per resource (the Kubernetes MCP server's answer is bounded the same way)."""


class PlannedCall(BaseModel):
    """One evidence need of the plan, with its typed arguments; `id` becomes the Evidence id the reasoning cites.

    Which MCP server and tool answer it is the bindings' business (agents/kit/bindings.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    args: NeedArgs

    @property
    def server(self) -> str:
        """The backend the evidence comes from (its Evidence `source`)."""
        return BACKEND[self.args.need]

    @property
    def tool(self) -> str:
        """The need's name as a tool (its Evidence `tool`)."""
        return TOOL[self.args.need]

    @property
    def arguments(self) -> dict[str, JsonValue]:
        return self.args.arguments()


def evidence_id(server: str, tool: str, namespace: str | None, name: str) -> str:
    return f"{server}.{tool}:{namespace or '-'}/{name}"


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


def workload(drift: ResourceDrift) -> tuple[str, str] | None:
    """(kind, name) of the workload a drifted resource runs or scales (see workloads.workload_of).

    A custom kind whose pack gives it a pod template or capacity (a database cluster, a serverless
    service) is a workload too: its name is the service its metrics and incidents carry."""
    found = workload_of(drift.ref.kind, drift.ref.name, drift.target, drift.live)
    if found is None and not is_builtin(drift.ref.group):
        pack = default_packs().lookup(drift.ref.group, drift.ref.kind)
        if pack is not None and (pack[1].pod_templates or pack[1].capacity):
            return drift.ref.kind, drift.ref.name
    return found


def service_names(report: DriftReport, drift: ResourceDrift) -> list[str]:
    """The service (metrics label, PagerDuty service) a resource belongs to: its workload's name, else the app's."""
    owner = workload(drift)
    if owner is not None:
        return list(dict.fromkeys([owner[1], report.application]))
    return [report.application]


def plan_evidence(report: DriftReport, now: datetime) -> list[PlannedCall]:
    calls: dict[str, PlannedCall] = {}

    def add(args: BaseModel, key_ns: str | None, key_name: str) -> None:
        need = args.need  # type: ignore[attr-defined]
        key = evidence_id(BACKEND[need], TOOL[need], key_ns, key_name)
        calls.setdefault(key, PlannedCall(id=key, args=args))

    earliest = now
    operational = False
    trusted = trusted_registries(report.drifts)
    # every namespace the drift touches, and the destination's: their labels say regulated or frozen
    touched = [*(d.ref.namespace or report.destination_namespace for d in report.drifts), report.destination_namespace]
    for ns in dict.fromkeys(touched):
        if ns and ns not in report.namespace_labels:
            add(NamespaceArgs(name=ns), None, ns)
    for drift in report.drifts:
        ref = drift.ref
        ns = ref.namespace or report.destination_namespace  # each resource's evidence from its own namespace
        if ref.group not in BUILTIN_GROUPS and drift.changes:
            add(FieldDescriptionsArgs(api_version=f"{ref.group}/{ref.version}", kind=ref.kind,
                                      paths=list(dict.fromkeys(c.path for c in drift.changes))[:MAX_SCHEMA_PATHS]),
                ref.namespace, f"{ref.kind}/{ref.name}")
        changes = classify(drift)
        if drift.ref.kind == "Secret" or (not changes.deltas and not changes.config_paths):
            continue  # a Secret's drift is escalated whatever the metrics say
        if widening_findings(drift, trusted):
            continue  # widened privilege or exposure is reverted whatever the metrics say
        operational = True
        at = change_time(drift, now)
        earliest = min(earliest, at)
        for service in service_names(report, drift):
            add(IncidentsArgs(service=service, since=now - LOOKBACK, until=now), ns, service)
        owner = workload(drift)
        if owner is None or not changes.deltas:
            continue
        start, end = baseline_window(at, now)
        add(TrafficArgs(namespace=ns, service=owner[1], at=now, baseline_start=start, baseline_end=end), ns, owner[1])
        if drift.ref.kind not in WORKLOAD_KINDS:
            continue  # an autoscaler's bounds: the scaled workload's traffic is what judges them
        name = drift.ref.name
        add(EventsArgs(kind=drift.ref.kind, name=name, namespace=ns, since=now - LOOKBACK), ns, name)
        add(FieldManagersArgs(
            api_version=f"{drift.ref.group}/{drift.ref.version}" if drift.ref.group else drift.ref.version,
            kind=drift.ref.kind, name=name, namespace=ns), ns, name)
        if changes.replicas_changed:
            add(AutoscalersArgs(kind=drift.ref.kind, name=name, namespace=ns), ns, name)
        if any(d.what == "memory" for d in changes.deltas):
            add(MemoryArgs(namespace=ns, workload=name, start=now - LOOKBACK, end=now), ns, name)
    if operational:
        start = min(earliest, now) - timedelta(hours=1)
        add(AnnotationsArgs(start=start, end=now, limit=20), None, report.application)
    return list(calls.values())
