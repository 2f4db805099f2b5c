"""Typed reasoner inputs straight from a scenario file's data (no processes).

`report_for` builds the DriftReport the drift agent's observe step would (changed paths from a
small JSON diff, field managers from managedFields, Secret values redacted); `gather` answers an
evidence plan the way the MCP tools over the sandbox would, including a backend that is `down`.
This is a test double of observe + MCP, kept deliberately simple; the production builders live
elsewhere.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from agents.drift.evidence_plan import PlannedCall
from agents.kit.diff import field_managers, is_secret, resource_changes, resource_drift
from mcp_servers.kubernetes.schema import SchemaWalker
from protocol.context import (
    Annotation,
    Annotations,
    Autoscaler,
    Autoscalers,
    FieldDescriptions,
    FieldManagers,
    Incident,
    Incidents,
    KubeEvent,
    KubeEvents,
    ManagedField,
    MemoryReport,
    NamespaceInfo,
    PodMemory,
    TrafficReport,
)
from protocol.models import (
    Domain,
    DriftReport,
    Evidence,
    Finding,
    FindingKind,
    Recommendation,
    ResourceRef,
    Severity,
    SyncWindow,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
NOISE = {"managedFields", "uid", "resourceVersion", "creationTimestamp", "generation", "status"}


def load(name: str) -> dict[str, Any]:
    path = next(SCENARIOS.glob(f"{name}*.yaml"))
    return yaml.safe_load(path.read_text())


def all_scenarios() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(SCENARIOS.glob("*.yaml"))]


def now_of(s: dict[str, Any]) -> datetime:
    return _dt(s["now"])


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def report_for(s: dict[str, Any], event_id: str = "evt-test") -> DriftReport:
    app = s["argocd"]["application"]
    project = s["argocd"]["project"]
    dest_ns = app["spec"]["destination"].get("namespace", "")
    drifts = []
    for r in s["argocd"]["resources"]:
        target, live = r.get("target"), r.get("live")
        ns = r.get("namespace") or ((live or target or {}).get("metadata") or {}).get("namespace")
        ref = ResourceRef(group=r.get("group", ""), version=r.get("version", "v1"), kind=r["kind"],
                          namespace=ns, name=r["name"])
        secret = is_secret(r.get("group", ""), r["kind"])
        drifts.append(resource_drift(ref, target, live, resource_changes(target, live, secret=secret), secret=secret))
    labels = {
        o["metadata"]["name"]: dict(o["metadata"].get("labels") or {})
        for o in (s.get("kubernetes") or {}).get("objects") or [] if o["kind"] == "Namespace"
    }
    return DriftReport(
        event_id=event_id,
        application=app["metadata"]["name"],
        project=project["metadata"]["name"],
        revision=s["notification"].get("revision", ""),
        repo_url=app["spec"]["source"].get("repoURL", ""),
        destination_server=app["spec"]["destination"].get("server", ""),
        destination_namespace=dest_ns,
        sync_windows=[SyncWindow.model_validate(w) for w in project["spec"].get("syncWindows") or []],
        namespace_labels={ns: lab for ns, lab in labels.items() if ns in {d.ref.namespace for d in drifts} | {dest_ns}},
        drifts=drifts,
        observed_at=now_of(s),
    )


# --- the MCP tools, answered from the scenario ------------------------------------------------------


def _interp(points: list[list[float]], t: float) -> float:
    if t <= points[0][0]:
        return float(points[0][1])
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return float(v0 + (v1 - v0) * (t - t0) / (t1 - t0)) if t1 > t0 else float(v1)
    return float(points[-1][1])


def _mean(points: list[list[float]], start: float, end: float) -> float:
    samples = [start + i * 15.0 for i in range(int((end - start) // 15) + 1)] or [end]
    return sum(_interp(points, t) for t in samples) / len(samples)


def _series(s: dict[str, Any], name: str, **labels: str) -> list[dict[str, Any]]:
    return [x for x in (s.get("prometheus") or {}).get("series") or []
            if x["labels"].get("__name__") == name and all(x["labels"].get(k) == v for k, v in labels.items())]


def _objects(s: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in (s.get("kubernetes") or {}).get("objects") or [] if o["kind"] == kind]


def _call(s: dict[str, Any], call: PlannedCall) -> Any:
    now = now_of(s)
    a = call.arguments

    def rel(text: Any) -> float:
        return (_dt(str(text)) - now).total_seconds()

    if call.tool == "workload_traffic":
        series = _series(s, "http_requests_total", namespace=a["namespace"], service=a["service"])
        at, b0, b1 = rel(a["at"]), rel(a["baseline_start"]), rel(a["baseline_end"])
        if not series:
            rr = brr = er = ber = None
        else:
            rr = sum(_mean(x["points"], at - 300, at) for x in series)
            brr = sum(_mean(x["points"], b0, b1) for x in series)
            err = sum(_mean(x["points"], at - 300, at) for x in series if x["labels"].get("code", "").startswith("5"))
            berr = sum(_mean(x["points"], b0, b1) for x in series if x["labels"].get("code", "").startswith("5"))
            er, ber = (err / rr if rr else None), (berr / brr if brr else None)
        return TrafficReport(namespace=a["namespace"], service=a["service"], at=a["at"],
                             baseline_start=a["baseline_start"],
                             baseline_end=a["baseline_end"], request_rate=rr, baseline_request_rate=brr, error_ratio=er,
                             baseline_error_ratio=ber, rate_change=(rr / brr if rr is not None and brr else None))
    if call.tool == "workload_memory":
        pods = []
        for x in _series(s, "container_memory_working_set_bytes", namespace=a["namespace"]):
            if x["labels"].get("pod", "").startswith(a["workload"] + "-"):
                start, end = rel(a["start"]), rel(a["end"])
                vals = [_interp(x["points"], start + i * 15.0) for i in range(int((end - start) // 15) + 1)]
                pods.append(PodMemory(pod=x["labels"]["pod"], container=x["labels"].get("container", ""),
                                      max_bytes=max(vals), last_bytes=vals[-1]))
        return MemoryReport(namespace=a["namespace"], workload=a["workload"], start=a["start"], end=a["end"], pods=pods)
    if call.tool == "incidents":
        pd = s.get("pagerduty") or {}
        svc = next((x for x in pd.get("services") or [] if x["name"] == a["service"]), None)
        found = []
        if svc:
            for i in pd.get("incidents") or []:
                if i["service"]["id"] == svc["id"] and _dt(i["created_at"]) <= _dt(str(a["until"])):
                    found.append(Incident(id=i["id"], number=i.get("incident_number"), title=i["title"],
                                          status=i["status"], urgency=i.get("urgency", ""), service_id=svc["id"],
                                          service_name=svc["name"], created_at=i["created_at"]))
        return Incidents(service=a["service"], service_id=svc["id"] if svc else None, incidents=found)
    if call.tool == "annotations":
        out = []
        for x in (s.get("grafana") or {}).get("annotations") or []:
            t = datetime.fromtimestamp(x["time"] / 1000, UTC)
            if _dt(str(a["start"])) <= t <= _dt(str(a["end"])):
                out.append(Annotation(id=x["id"], time=t, dashboard_uid=x.get("dashboardUID"), login=x.get("login", ""),
                                      text=x["text"], tags=x.get("tags") or []))
        return Annotations(start=a["start"], end=a["end"], annotations=out)
    if call.tool == "events_for":
        out = []
        for e in _objects(s, "Event"):
            inv = e.get("involvedObject") or {}
            if inv.get("namespace") != a["namespace"]:
                continue
            mine = (inv.get("kind") == a["kind"] and inv.get("name") == a["name"]) or (
                inv.get("kind") == "Pod" and str(inv.get("name", "")).startswith(a["name"] + "-"))
            if mine:
                out.append(KubeEvent(reason=e["reason"], message=e.get("message", ""), type=e.get("type", ""),
                                     count=e.get("count", 1), involved_kind=inv.get("kind", ""),
                                     involved_name=inv.get("name", ""), first_seen=e.get("firstTimestamp"),
                                     last_seen=e.get("lastTimestamp"),
                                     source=(e.get("source") or {}).get("component", "")))
        return KubeEvents(events=out)
    if call.tool == "autoscalers_for":
        out = []
        for h in _objects(s, "HorizontalPodAutoscaler"):
            ref = h["spec"]["scaleTargetRef"]
            mine = ref["kind"] == a["kind"] and ref["name"] == a["name"]
            if h["metadata"].get("namespace") == a["namespace"] and mine:
                st = h.get("status") or {}
                out.append(Autoscaler(name=h["metadata"]["name"], min_replicas=h["spec"].get("minReplicas"),
                                      max_replicas=h["spec"].get("maxReplicas"),
                                      current_replicas=st.get("currentReplicas"),
                                      desired_replicas=st.get("desiredReplicas"),
                                      metrics=h["spec"].get("metrics") or []))
        return Autoscalers(autoscalers=out)
    if call.tool == "field_managers":
        for r in s["argocd"]["resources"]:
            if r["kind"] == a["kind"] and r["name"] == a["name"] and r.get("live"):
                return FieldManagers(found=True, managers=[
                    ManagedField(manager=m.manager, operation=m.operation, time=m.time, paths=m.paths)
                    for m in field_managers(r["live"])])
        return FieldManagers(found=False)
    if call.tool == "namespace":
        for o in _objects(s, "Namespace"):
            if o["metadata"]["name"] == a["name"]:
                return NamespaceInfo(name=a["name"], found=True, labels=o["metadata"].get("labels") or {},
                                     annotations=o["metadata"].get("annotations") or {})
        return NamespaceInfo(name=a["name"], found=False)
    if call.tool == "field_descriptions":
        return _field_descriptions(s, str(a["api_version"]), str(a["kind"]), [str(p) for p in a["paths"]])
    raise AssertionError(f"the plan asked for a tool the test world does not know: {call.server}.{call.tool}")


def _field_descriptions(s: dict[str, Any], api_version: str, kind: str, paths: list[str]) -> FieldDescriptions:
    """The schema walk the Kubernetes MCP server makes, over the scenario's CRD objects."""
    group, _, version = api_version.rpartition("/")
    for crd in _objects(s, "CustomResourceDefinition"):
        spec = crd.get("spec") or {}
        if spec.get("group") != group or (spec.get("names") or {}).get("kind") != kind:
            continue
        for v in spec.get("versions") or []:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            if v.get("name") == version and v.get("served") and schema:
                walker = SchemaWalker(schema)
                return FieldDescriptions(api_version=api_version, resource_kind=kind, schema_found=True,
                                         source=f"customresourcedefinitions/{crd['metadata']['name']}",
                                         fields=[walker.describe(p) for p in paths])
    return FieldDescriptions(api_version=api_version, resource_kind=kind, schema_found=False,
                             note=f"the scenario holds no CustomResourceDefinition for {kind} ({api_version})")


def gather(s: dict[str, Any], plan: list[PlannedCall]) -> list[Evidence]:
    down = set(s.get("down") or [])
    out = []
    for call in plan:
        common = {"id": call.id, "source": call.server, "tool": call.tool, "arguments": call.arguments,
                  "observed_at": now_of(s)}
        if call.server in down:
            out.append(Evidence(**common, error=f"{call.server}: backend answered HTTP 503 Service Unavailable"))
        else:
            out.append(Evidence(**common, value=_call(s, call)))
    return out


# --- specialists, as the security and compliance agents would answer -------------------------------------


def specialist(event_id: str, agent: str, domain: Domain, action: str | None, reasoning: str,
               at: datetime, findings: list[Finding] | None = None, confidence: float = 0.9) -> Recommendation:
    if action is None:
        return Recommendation(kind="abstain", event_id=event_id, agent=agent, domain=domain, confidence=confidence,
                              reasoning=reasoning, created_at=at)
    return Recommendation(event_id=event_id, agent=agent, domain=domain, action=action, confidence=confidence,
                          reasoning=reasoning, findings=findings or [], created_at=at)


def finding(rule: str, message: str, kind: FindingKind = FindingKind.WIDENED,
            domain: Domain = Domain.SECURITY) -> Finding:
    return Finding(rule_id=rule, domain=domain, kind=kind, severity=Severity.HIGH, message=message)


def shift(text: str, seconds: float) -> str:
    return (_dt(text) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
