"""Result adapters: one tool answer (or several, by call name) -> the need's typed value (protocol/context.py).

Each adapter says which need it yields and which calls it reads; a binding names its adapter
(agents/kit/bindings.py). Community servers answer in their backend's own shapes (Prometheus'
`{resultType, result}`, Grafana's annotation list, PagerDuty's incidents, Kubernetes objects as
structured content or YAML text); the Kubernetes readings are protocol/kube_reading.py's, the same
code Driftwise's own server runs, so one object gives the same evidence through either server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from mcp_types import CallToolResult
from pydantic import BaseModel, TypeAdapter, ValidationError

from agents.kit.mcp_pool import McpCallError, structured, text_of
from protocol import kube_reading as kube
from protocol.context import (
    Annotation,
    Annotations,
    Autoscalers,
    FieldDescriptions,
    FieldManagers,
    Incident,
    Incidents,
    KubeEvent,
    KubeEvents,
    MemoryReport,
    NamespaceInfo,
    PodMemory,
    RbacReport,
    TrafficReport,
)
from protocol.needs import Need

__all__ = ["ADAPTERS", "Adapter", "AdapterError"]

Results = dict[str, CallToolResult]
MAX_ITEMS = 50
"""Events, annotations, incidents, grants kept (the bound of Driftwise's own servers)."""


class AdapterError(Exception):
    """A tool's answer that does not read as the need's value: the message says what was wrong."""


@dataclass(frozen=True)
class Adapter:
    need: Need | None
    """The need it yields; None: any (Driftwise's own tools, whose result says its kind)."""
    calls: frozenset[str]
    read: Callable[[Any, Results], BaseModel]


def _ok(result: CallToolResult, what: str) -> CallToolResult:
    if result.is_error:
        raise AdapterError(f"{what}: {text_of(result).strip()[:300] or 'the tool reported an error'}")
    return result


def _data(result: CallToolResult, what: str) -> Any:
    """The answer as data: its structured content, else its text read as JSON, else as YAML (comments skipped)."""
    _ok(result, what)
    if result.structured_content is not None:
        return result.structured_content
    text = text_of(result).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AdapterError(f"{what}: the answer is neither JSON nor YAML ({exc})") from None


# --- Driftwise's own servers --------------------------------------------------------------------------


def _driftwise(args: Any, results: Results) -> BaseModel:
    result = _ok(results["result"], args.need.value)
    try:
        value = structured(result, args.need.value)
    except McpCallError as exc:
        raise AdapterError(str(exc)) from None
    expected = _YIELDS[args.need]
    if not isinstance(value, expected):
        raise AdapterError(f"{args.need.value}: the tool answered a {type(value).__name__}, not a {expected.__name__}")
    return value  # type: ignore[no-any-return]


_YIELDS: dict[Need, type[BaseModel]] = {
    Need.TRAFFIC: TrafficReport, Need.MEMORY: MemoryReport, Need.INCIDENTS: Incidents,
    Need.ANNOTATIONS: Annotations, Need.AUTOSCALERS: Autoscalers, Need.EVENTS: KubeEvents,
    Need.FIELD_MANAGERS: FieldManagers, Need.NAMESPACE: NamespaceInfo, Need.RBAC: RbacReport,
    Need.FIELD_DESCRIPTIONS: FieldDescriptions,
}


# --- Prometheus HTTP API shapes (prometheus-mcp-server) -----------------------------------------------


def _prom_samples(result: CallToolResult, what: str) -> list[tuple[dict[str, str], list[float]]]:
    data = _data(result, what)
    if isinstance(data, dict) and "data" in data and "result" not in data:
        data = data["data"]
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise AdapterError(f"{what}: expected Prometheus' {{resultType, result}}, got {str(data)[:200]}")
    out = []
    for series in data["result"]:
        if not isinstance(series, dict):
            continue
        points = series.get("values") or ([series["value"]] if "value" in series else [])
        values = []
        for point in points:
            try:
                v = float(point[1])
            except (TypeError, ValueError, IndexError):
                continue
            if v == v:  # NaN is no sample
                values.append(v)
        out.append(({str(k): str(v) for k, v in (series.get("metric") or {}).items()}, values))
    return out


def _sum(series: list[tuple[dict[str, str], list[float]]]) -> float | None:
    values = [v for _, vs in series for v in vs]
    return sum(values) if values else None


def _mean(series: list[tuple[dict[str, str], list[float]]]) -> float | None:
    values = [v for _, vs in series for v in vs]
    return sum(values) / len(values) if values else None


def _ratio(errors: float | None, requests: float | None) -> float | None:
    if requests is None or requests <= 0:
        return None
    return min(max((errors or 0.0) / requests, 0.0), 1.0)


def _traffic(args: Any, results: Results) -> BaseModel:
    now_requests = _sum(_prom_samples(results["requests"], "requests"))
    now_errors = _sum(_prom_samples(results["errors"], "errors"))
    base_requests = _mean(_prom_samples(results["baseline_requests"], "baseline_requests"))
    base_errors = _mean(_prom_samples(results["baseline_errors"], "baseline_errors"))
    notes = []
    if now_requests is None:
        notes.append(f"no request series for {args.namespace}/{args.service} at {args.at.isoformat()}")
    if base_requests is None:
        notes.append("no request series in the baseline window")
    return TrafficReport(
        namespace=args.namespace, service=args.service, at=args.at, baseline_start=args.baseline_start,
        baseline_end=args.baseline_end, request_rate=now_requests, baseline_request_rate=base_requests,
        error_ratio=_ratio(now_errors, now_requests), baseline_error_ratio=_ratio(base_errors, base_requests),
        rate_change=now_requests / base_requests if now_requests is not None and base_requests else None,
        note="; ".join(notes),
    )


def _memory(args: Any, results: Results) -> BaseModel:
    pods = [PodMemory(pod=labels.get("pod", ""), container=labels.get("container", ""),
                      max_bytes=max(values) if values else None, last_bytes=values[-1] if values else None)
            for labels, values in _prom_samples(results["result"], "memory")]
    pods.sort(key=lambda p: -(p.max_bytes or 0.0))
    return MemoryReport(namespace=args.namespace, workload=args.workload, start=args.start, end=args.end,
                        pods=pods[:MAX_ITEMS], truncated=len(pods) > MAX_ITEMS,
                        note="" if pods else f"no working-set series for pods of {args.namespace}/{args.workload}")


# --- Grafana HTTP API shapes (mcp-grafana) ------------------------------------------------------------


def _ms(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC) if isinstance(value, int | float) and value else None


def _annotations(args: Any, results: Results) -> BaseModel:
    data = _data(results["result"], "annotations")
    if isinstance(data, dict):  # mcp-grafana answers the API client's {"Payload": [...]}
        data = data.get("Payload", data.get("payload", data.get("annotations")))
    if data is None:
        data = []
    if not isinstance(data, list):
        raise AdapterError(f"annotations: expected a list of Grafana annotations, got {str(data)[:200]}")
    found = []
    for raw in data:
        if not isinstance(raw, dict) or _ms(raw.get("time")) is None:
            continue
        found.append(Annotation(
            id=int(raw.get("id") or 0), time=_ms(raw["time"]), time_end=_ms(raw.get("timeEnd")),  # type: ignore[arg-type]
            dashboard_uid=raw.get("dashboardUID") or None, login=str(raw.get("login") or ""),
            text=str(raw.get("text") or ""), tags=[str(t) for t in raw.get("tags") or []],
        ))
    found.sort(key=lambda a: -a.time.timestamp())
    return Annotations(start=args.start, end=args.end, annotations=found[: args.limit],
                       truncated=len(found) > args.limit)


# --- PagerDuty REST shapes (pagerduty-mcp) ------------------------------------------------------------

_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _pd_list(result: CallToolResult, what: str) -> list[dict[str, Any]]:
    data = _data(result, what)
    if isinstance(data, dict):
        data = data.get("response", data.get(what, data.get("incidents", data.get("services"))))
    if not isinstance(data, list):
        raise AdapterError(f"{what}: expected a list, got {str(data)[:200]}")
    return [d for d in data if isinstance(d, dict)]


def _incident(raw: dict[str, Any]) -> Incident | None:
    service = raw.get("service") or {}
    priority = raw.get("priority") or {}
    try:
        return Incident(
            id=str(raw["id"]), number=raw.get("incident_number"), title=str(raw.get("title") or raw.get("summary")),
            status=str(raw.get("status") or ""), urgency=str(raw.get("urgency") or ""),
            priority=(priority.get("summary") or priority.get("name")) if isinstance(priority, dict) else None,
            service_id=str(service.get("id") or ""), service_name=str(service.get("summary") or ""),
            created_at=_TIME.validate_python(raw["created_at"]),
            resolved_at=_TIME.validate_python(raw["resolved_at"]) if raw.get("resolved_at") else None,
            html_url=str(raw.get("html_url") or ""),
        )
    except (KeyError, ValidationError):
        return None


def _incidents(args: Any, results: Results) -> BaseModel:
    services = _pd_list(results["services"], "services")
    match = next((s for s in services if args.service in (s.get("name"), s.get("id"))), None)
    if match is None:
        return Incidents(service=args.service, service_id=None, note=f"no PagerDuty service named {args.service!r}")
    sid = str(match.get("id"))
    by_id: dict[str, Incident] = {}
    # Incidents opened before `since` and still open matter as much as new ones.
    for raw in [*_pd_list(results["window"], "incidents"), *_pd_list(results["open"], "incidents")]:
        incident = _incident(raw)
        if incident is not None and incident.service_id == sid and incident.created_at <= args.until:
            by_id.setdefault(incident.id, incident)
    ordered = sorted(by_id.values(), key=lambda i: (i.status == "resolved", -i.created_at.timestamp()))
    return Incidents(service=args.service, service_id=sid, incidents=ordered[:MAX_ITEMS],
                     truncated=len(ordered) > MAX_ITEMS)


# --- Kubernetes objects (kubernetes-mcp-server) -------------------------------------------------------

_NOT_FOUND = re.compile(r"not found|NotFound", re.IGNORECASE)


def _object(result: CallToolResult, what: str) -> dict[str, Any] | None:
    """The object, or None when the server says it does not exist."""
    if result.is_error and _NOT_FOUND.search(text_of(result)):
        return None
    data = _data(result, what)
    if not isinstance(data, dict):
        raise AdapterError(f"{what}: expected a Kubernetes object, got {str(data)[:200]}")
    return data


def _items(result: CallToolResult, what: str) -> list[dict[str, Any]]:
    data = _data(result, what)
    if isinstance(data, dict):
        data = data.get("items")
    if data is None:
        return []
    if not isinstance(data, list):
        raise AdapterError(f"{what}: expected a list of objects, got {str(data)[:200]}")
    if data and not all(isinstance(i, dict) and ("metadata" in i or "apiVersion" in i) for i in data):
        raise AdapterError(f"{what}: the list holds no objects (a table?): run kubernetes-mcp-server with "
                           "--list-output yaml")
    return [i for i in data if isinstance(i, dict)]


def _namespace(args: Any, results: Results) -> BaseModel:
    return kube.namespace_info(args.name, _object(results["result"], "namespace"))


def _autoscalers(args: Any, results: Results) -> BaseModel:
    return kube.autoscalers_for(_items(results["hpas"], "autoscalers"), args.kind, args.name)


def _field_managers(args: Any, results: Results) -> BaseModel:
    raw = _object(results["result"], "field managers")
    if raw is not None and "managedFields" not in (raw.get("metadata") or {}):
        raise AdapterError("the object came back without metadata.managedFields (this server removes them): who "
                           "changed which field cannot be read from it")
    value: FieldManagers = kube.field_managers(raw, args.kind, args.name)
    return value


def _mcp_event(raw: dict[str, Any]) -> KubeEvent:
    """An event as kubernetes-mcp-server lists it (its own capitalised keys), or as the API returns it."""
    if "metadata" in raw:
        return kube.to_event(raw)
    involved = raw.get("InvolvedObject") or {}
    when = _kube_time(raw.get("Timestamp"))
    return KubeEvent(reason=str(raw.get("Reason") or ""), message=str(raw.get("Message") or ""),
                     type=str(raw.get("Type") or ""), involved_kind=str(involved.get("Kind") or ""),
                     involved_name=str(involved.get("Name") or ""), first_seen=when, last_seen=when)


def _kube_time(value: Any) -> datetime | None:
    """Go's time.String() form (`2026-11-20 15:50:00 +0000 UTC`), or RFC 3339."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = re.sub(r" [A-Z]{2,5}$", "", value.strip())
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f %z"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return kube.time_of(value)


def _events(args: Any, results: Results) -> BaseModel:
    data = _data(results["events"], "events")
    raw = data if isinstance(data, list) else (data or {}).get("items", []) if isinstance(data, dict) else []
    events = [_mcp_event(e) for e in raw if isinstance(e, dict)]
    pods = _items(results["pods"], "pods")
    found = kube.events_for(args.kind, args.name, events, pods, args.since)
    return KubeEvents(events=found[:MAX_ITEMS], truncated=len(found) > MAX_ITEMS)


def _rbac(args: Any, results: Results) -> BaseModel:
    roles = {("Role", kube.str_map(r.get("metadata")).get("name", "")): r for r in _items(results["roles"], "roles")}
    roles |= {("ClusterRole", kube.str_map(r.get("metadata")).get("name", "")): r
              for r in _items(results["cluster_roles"], "cluster roles")}
    bindings = [("RoleBinding", b) for b in _items(results["role_bindings"], "role bindings")]
    bindings += [("ClusterRoleBinding", b) for b in _items(results["cluster_role_bindings"], "cluster role bindings")]
    grants, notes = [], []
    for binding_kind, binding in bindings:
        if not kube.binds(binding, args.namespace, args.service_account):
            continue
        role_kind, role_name, _ = kube.role_ref(binding, args.namespace)
        role = roles.get((role_kind, role_name))
        if role is None:
            notes.append(f"{role_kind} {role_name} referenced by {binding_kind} does not exist")
        grants.append(kube.grant(binding_kind, binding, role_kind, role_name, role))
    if not grants:
        notes.append(f"no RoleBinding or ClusterRoleBinding grants anything to {args.namespace}/{args.service_account}")
    return RbacReport(namespace=args.namespace, service_account=args.service_account, grants=grants[:MAX_ITEMS],
                      truncated=len(grants) > MAX_ITEMS, note="; ".join(notes))


ADAPTERS: dict[str, Adapter] = {
    "driftwise": Adapter(None, frozenset({"result"}), _driftwise),
    "prometheus-api.traffic": Adapter(Need.TRAFFIC, frozenset({"requests", "errors", "baseline_requests",
                                                               "baseline_errors"}), _traffic),
    "prometheus-api.memory": Adapter(Need.MEMORY, frozenset({"result"}), _memory),
    "grafana-api.annotations": Adapter(Need.ANNOTATIONS, frozenset({"result"}), _annotations),
    "pagerduty-mcp.incidents": Adapter(Need.INCIDENTS, frozenset({"services", "window", "open"}), _incidents),
    "kubernetes-mcp-server.namespace": Adapter(Need.NAMESPACE, frozenset({"result"}), _namespace),
    "kubernetes-mcp-server.autoscalers": Adapter(Need.AUTOSCALERS, frozenset({"hpas"}), _autoscalers),
    "kubernetes-mcp-server.events": Adapter(Need.EVENTS, frozenset({"events", "pods"}), _events),
    "kubernetes-mcp-server.field_managers": Adapter(Need.FIELD_MANAGERS, frozenset({"result"}), _field_managers),
    "kubernetes-mcp-server.rbac": Adapter(Need.RBAC, frozenset({"role_bindings", "roles", "cluster_role_bindings",
                                                                "cluster_roles"}), _rbac),
}
"""Every adapter a binding may name."""
