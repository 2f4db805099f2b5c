"""Server-side printing: the `meta.k8s.io` Table the API server returns for `Accept: application/json;as=Table`.

kubectl and client-go based tools (kubernetes-mcp-server) ask for it and print its columns; without it they
see only names. The columns of the common built-in kinds follow the API server's printers
(pkg/printers/internalversion); a CRD's come from its additionalPrinterColumns; any other kind gets the
API server's default, Name and Age. Age is measured on the sandbox clock, in the API server's format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Obj = dict[str, Any]
Cell = str | int | float | bool | None
_NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some resources "
             "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
             "intended for creation idempotence and configuration definition. Cannot be updated.")
_AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It is "
            "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
            "this value. It is represented in RFC3339 form and is in UTC.")


@dataclass(frozen=True)
class TableRequest:
    """What the Accept header and the query asked for: the Table's apiVersion and how much object each row carries."""

    api_version: str
    include_object: str  # "None" | "Metadata" | "Object"


def wants_table(accept: str, include_object: str | None) -> TableRequest | None:
    """The first acceptable media type, if it is a Table (v1 or v1beta1 of meta.k8s.io); None otherwise."""
    for media in accept.split(","):
        kind, *params = [p.strip() for p in media.split(";")]
        if kind not in ("application/json", "*/*"):
            continue
        values = dict(p.split("=", 1) for p in params if "=" in p)
        if values.get("as") != "Table":
            return None
        if values.get("g") == "meta.k8s.io" and values.get("v") in ("v1", "v1beta1"):
            return TableRequest(f"meta.k8s.io/{values['v']}", include_object or "Metadata")
    return None


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return f"{hours // 24 // 365}y{hours // 24 % 365}d"
    return f"{hours // 24 // 365}y"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _joined(items: list[Any]) -> str:
    return ",".join(str(i) for i in items if i not in (None, "")) or "<none>"


def _selector(sel: Any) -> str:
    labels = (sel or {}).get("matchLabels") if isinstance(sel, dict) and "matchLabels" in sel else sel
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _containers(obj: Obj) -> list[Obj]:
    return [c for c in _get(obj, "spec", "template", "spec", "containers") or [] if isinstance(c, dict)]


Column = tuple[str, str, int, Callable[[Obj], Cell]]  # name, type, priority, cell


def _images(obj: Obj) -> Cell:
    return _joined([c.get("image") for c in _containers(obj)])


def _container_names(obj: Obj) -> Cell:
    return _joined([c.get("name") for c in _containers(obj)])


def _pod_ready(obj: Obj) -> Cell:
    statuses = _get(obj, "status", "containerStatuses") or []
    total = len(_get(obj, "spec", "containers") or [])
    return f"{sum(1 for c in statuses if isinstance(c, dict) and c.get('ready'))}/{total}"


def _pod_status(obj: Obj) -> Cell:
    for c in _get(obj, "status", "containerStatuses") or []:
        waiting = _get(c, "state", "waiting", "reason")
        if waiting:
            return waiting
    return _get(obj, "status", "reason") or _get(obj, "status", "phase") or "Unknown"


def _ports(obj: Obj) -> Cell:
    ports = _get(obj, "spec", "ports") or []
    return ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
                    f"{p.get('protocol', 'TCP')}" for p in ports if isinstance(p, dict)) or "<none>"


def _hpa_targets(obj: Obj) -> Cell:
    out = []
    current = {(_get(m, "resource", "name")): m for m in _get(obj, "status", "currentMetrics") or []
               if isinstance(m, dict)}
    for m in _get(obj, "spec", "metrics") or []:
        name = _get(m, "resource", "name")
        target = _get(m, "resource", "target", "averageUtilization")
        if name is None or target is None:
            continue
        now = _get(current.get(name), "resource", "current", "averageUtilization")
        out.append(f"{name}: {'<unknown>' if now is None else str(now) + '%'}/{target}%")
    return ", ".join(out) or "<none>"


def _event_object(obj: Obj) -> Cell:
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"


_PRINTERS: dict[tuple[str, str], list[Column]] = {
    ("apps", "Deployment"): [
        ("Ready", "string", 0, lambda o: f"{_int(_get(o, 'status', 'readyReplicas'))}/"
                                         f"{_int(_get(o, 'spec', 'replicas'))}"),
        ("Up-to-date", "integer", 0, lambda o: _int(_get(o, "status", "updatedReplicas"))),
        ("Available", "integer", 0, lambda o: _int(_get(o, "status", "availableReplicas"))),
        ("Containers", "string", 1, _container_names), ("Images", "string", 1, _images),
        ("Selector", "string", 1, lambda o: _selector(_get(o, "spec", "selector"))),
    ],
    ("apps", "StatefulSet"): [
        ("Ready", "string", 0, lambda o: f"{_int(_get(o, 'status', 'readyReplicas'))}/"
                                         f"{_int(_get(o, 'spec', 'replicas'))}"),
        ("Containers", "string", 1, _container_names), ("Images", "string", 1, _images),
    ],
    ("apps", "ReplicaSet"): [
        ("Desired", "integer", 0, lambda o: _int(_get(o, "spec", "replicas"))),
        ("Current", "integer", 0, lambda o: _int(_get(o, "status", "replicas"))),
        ("Ready", "integer", 0, lambda o: _int(_get(o, "status", "readyReplicas"))),
        ("Containers", "string", 1, _container_names), ("Images", "string", 1, _images),
        ("Selector", "string", 1, lambda o: _selector(_get(o, "spec", "selector"))),
    ],
    ("apps", "DaemonSet"): [
        ("Desired", "integer", 0, lambda o: _int(_get(o, "status", "desiredNumberScheduled"))),
        ("Current", "integer", 0, lambda o: _int(_get(o, "status", "currentNumberScheduled"))),
        ("Ready", "integer", 0, lambda o: _int(_get(o, "status", "numberReady"))),
        ("Up-to-date", "integer", 0, lambda o: _int(_get(o, "status", "updatedNumberScheduled"))),
        ("Available", "integer", 0, lambda o: _int(_get(o, "status", "numberAvailable"))),
        ("Node Selector", "string", 0, lambda o: _selector(_get(o, "spec", "template", "spec", "nodeSelector"))),
        ("Containers", "string", 1, _container_names), ("Images", "string", 1, _images),
    ],
    ("", "Pod"): [
        ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, lambda o: str(sum(_int(c.get("restartCount"))
                                                    for c in _get(o, "status", "containerStatuses") or []))),
        ("IP", "string", 1, lambda o: _get(o, "status", "podIP") or "<none>"),
        ("Node", "string", 1, lambda o: _get(o, "spec", "nodeName") or "<none>"),
    ],
    ("", "Service"): [
        ("Type", "string", 0, lambda o: _get(o, "spec", "type") or "ClusterIP"),
        ("Cluster-IP", "string", 0, lambda o: _get(o, "spec", "clusterIP") or "<none>"),
        ("External-IP", "string", 0, lambda o: _joined([i.get("ip") or i.get("hostname") for i in
                                                        _get(o, "status", "loadBalancer", "ingress") or []])),
        ("Port(s)", "string", 0, _ports),
        ("Selector", "string", 1, lambda o: _selector(_get(o, "spec", "selector"))),
    ],
    ("", "ConfigMap"): [("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))],
    ("", "Secret"): [("Type", "string", 0, lambda o: o.get("type") or "Opaque"),
                     ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {}))],
    ("", "Namespace"): [("Status", "string", 0, lambda o: _get(o, "status", "phase") or "Active")],
    ("", "ServiceAccount"): [("Secrets", "integer", 0, lambda o: len(o.get("secrets") or []))],
    ("autoscaling", "HorizontalPodAutoscaler"): [
        ("Reference", "string", 0, lambda o: f"{_get(o, 'spec', 'scaleTargetRef', 'kind')}/"
                                             f"{_get(o, 'spec', 'scaleTargetRef', 'name')}"),
        ("Targets", "string", 0, _hpa_targets),
        ("MinPods", "string", 0, lambda o: str(_get(o, "spec", "minReplicas") or 1)),
        ("MaxPods", "integer", 0, lambda o: _int(_get(o, "spec", "maxReplicas"))),
        ("Replicas", "integer", 0, lambda o: _int(_get(o, "status", "currentReplicas"))),
    ],
    ("networking.k8s.io", "NetworkPolicy"): [
        ("Pod-Selector", "string", 0, lambda o: _selector(_get(o, "spec", "podSelector")))],
    ("policy", "PodDisruptionBudget"): [
        ("Min Available", "string", 0, lambda o: str(_get(o, "spec", "minAvailable") or "N/A")),
        ("Max Unavailable", "string", 0, lambda o: str(_get(o, "spec", "maxUnavailable") or "N/A")),
        ("Allowed Disruptions", "integer", 0, lambda o: _int(_get(o, "status", "disruptionsAllowed"))),
    ],
}


def _event_columns(now: datetime) -> list[Column]:
    def last_seen(o: Obj) -> Cell:
        at = o.get("lastTimestamp") or o.get("eventTime") or _get(o, "metadata", "creationTimestamp")
        return _age(at, now)

    return [("Last Seen", "string", 0, last_seen), ("Type", "string", 0, lambda o: o.get("type") or ""),
            ("Reason", "string", 0, lambda o: o.get("reason") or ""), ("Object", "string", 0, _event_object),
            ("Message", "string", 0, lambda o: o.get("message") or o.get("note") or ""),
            ("Count", "integer", 1, lambda o: _int(o.get("count")))]


def _age(stamp: Any, now: datetime) -> str:
    if not isinstance(stamp, str):
        return "<unknown>"
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((now - at).total_seconds())


def _crd_columns(printer_columns: list[Obj]) -> list[Column]:
    out: list[Column] = []
    for col in printer_columns:
        path = [p for p in str(col.get("jsonPath", "")).strip(".").split(".") if p]
        kind = str(col.get("type") or "string")
        out.append((str(col.get("name")), kind, int(col.get("priority") or 0),
                    lambda o, path=path: _cell(_get(o, *path))))
    return out


def _cell(value: Any) -> Cell:
    if isinstance(value, (dict, list)):
        return str(value)
    return value


def _row_object(obj: Obj, request: TableRequest) -> Obj | None:
    if request.include_object == "None":
        return None
    if request.include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": request.api_version, "metadata": obj.get("metadata") or {}}


def table(group: str, kind: str, objects: list[Obj], now: datetime, request: TableRequest,
          resource_version: str, printer_columns: list[Obj] | None = None) -> Obj:
    """The Table of `objects` (one kind), as the API server prints them."""
    if kind == "Event":
        extra = _event_columns(now)
        columns: list[Column] = extra
        with_name_and_age = False
    else:
        extra = _PRINTERS.get((group, kind)) or _crd_columns(printer_columns or [])
        with_name_and_age = True
    name_col: Column = ("Name", "string", 0, lambda o: _get(o, "metadata", "name") or "")
    age_col: Column = ("Age", "string", 0, lambda o: _age(_get(o, "metadata", "creationTimestamp"), now))
    if with_name_and_age:
        wide = [c for c in extra if c[2] > 0]
        columns = [name_col, *[c for c in extra if c[2] == 0], age_col, *wide]
    else:
        columns = [*extra, ("Name", "string", 1, name_col[3])]
    definitions = [{"name": name, "type": kind_, "format": "name" if name == "Name" else "",
                    "description": _NAME_DOC if name == "Name" else _AGE_DOC if name == "Age" else name,
                    "priority": priority} for name, kind_, priority, _ in columns]
    rows = []
    for obj in objects:
        row: Obj = {"cells": [cell(obj) for _, _, _, cell in columns]}
        if (embedded := _row_object(obj, request)) is not None:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": request.api_version, "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}
