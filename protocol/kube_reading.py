"""Readings of Kubernetes objects as the API returns them, shared by every reader: Driftwise's own MCP server
(mcp_servers/kubernetes) and the adapters of community servers' answers (agents/kit/adapters.py).

One implementation, so that the same objects give the same typed evidence whichever server fetched them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from protocol.context import (
    Autoscaler,
    Autoscalers,
    FieldManagers,
    KubeEvent,
    ManagedField,
    NamespaceInfo,
    RbacGrant,
    RbacRule,
)

Obj = dict[str, Any]
_TIME = TypeAdapter(AwareDatetime)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
WORKLOAD_OWNED_KINDS = frozenset({"Pod", "ReplicaSet"})
"""A workload's own events say little; its pods' (OOMKilled, BackOff) and ReplicaSets' say more."""


def time_of(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return _TIME.validate_python(value)
    except ValidationError:
        return None


def str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def to_event(raw: Obj) -> KubeEvent:
    involved = raw.get("involvedObject") or raw.get("regarding") or {}
    source = raw.get("source") or {}
    created = (raw.get("metadata") or {}).get("creationTimestamp")
    return KubeEvent(
        reason=str(raw.get("reason") or ""), message=str(raw.get("message") or raw.get("note") or ""),
        type=str(raw.get("type") or ""), count=int(raw.get("count") or (raw.get("series") or {}).get("count") or 1),
        involved_kind=str(involved.get("kind") or ""), involved_name=str(involved.get("name") or ""),
        first_seen=time_of(raw.get("firstTimestamp") or raw.get("eventTime") or created),
        last_seen=time_of(raw.get("lastTimestamp") or raw.get("eventTime") or created),
        source=str(source.get("component") or raw.get("reportingController") or raw.get("reportingComponent") or ""),
    )


TERMINATION_REASONS = frozenset({"OOMKilled"})
"""Container terminations a pod's status keeps (lastState) that matter as much as an Event: Events expire
after an hour and are often not emitted for OOM kills, the pod status keeps the last one."""


def pod_terminations(pod: Obj) -> list[KubeEvent]:
    """One KubeEvent per container whose current or last termination is an OOM kill, from the pod's status."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    out = []
    status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            if not isinstance(cs, dict):
                continue
            for where in ("state", "lastState"):
                term = (cs.get(where) or {}).get("terminated") if isinstance(cs.get(where), dict) else None
                if not isinstance(term, dict) or term.get("reason") not in TERMINATION_REASONS:
                    continue
                restarts = int(cs.get("restartCount") or 0)
                out.append(KubeEvent(
                    reason=str(term["reason"]), type="Warning", count=max(restarts, 1),
                    message=f"container {cs.get('name')} {'last ' if where == 'lastState' else ''}terminated: "
                            f"{term['reason']} (exit code {term.get('exitCode')}), {restarts} restart(s)",
                    involved_kind="Pod", involved_name=name,
                    first_seen=time_of(term.get("startedAt")), last_seen=time_of(term.get("finishedAt")),
                    source="pod status",
                ))
                break
    return out


def owned_name(name: str, candidate: str) -> bool:
    """Pods and ReplicaSets a workload controller creates are named <workload>-<suffix>."""
    return candidate.startswith(name + "-")


def to_rules(role: Obj | None) -> list[RbacRule]:
    if not role:
        return []
    return [
        RbacRule(api_groups=strings(r.get("apiGroups")), resources=strings(r.get("resources")),
                 verbs=strings(r.get("verbs")), resource_names=strings(r.get("resourceNames")))
        for r in role.get("rules") or []
        if isinstance(r, dict)
    ]


def binds(binding: Obj, namespace: str, service_account: str) -> bool:
    """Whether a (Cluster)RoleBinding's subjects include the service account, directly or by its groups."""
    binding_ns = (binding.get("metadata") or {}).get("namespace")
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        subject_ns = subject.get("namespace") or binding_ns
        if kind == "ServiceAccount" and name == service_account and subject_ns == namespace:
            return True
        if kind == "Group" and name in ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"):
            return True
    return False

def namespace_info(name: str, raw: Obj | None) -> NamespaceInfo:
    if raw is None:
        return NamespaceInfo(name=name, found=False, note=f"namespace {name} not found")
    meta = raw.get("metadata") or {}
    annotations = str_map(meta.get("annotations"))
    annotations.pop(LAST_APPLIED, None)
    return NamespaceInfo(name=name, found=True, labels=str_map(meta.get("labels")), annotations=annotations)


def field_managers(raw: Obj | None, kind: str, name: str) -> FieldManagers:
    if raw is None:
        return FieldManagers(found=False, note=f"{kind} {name} not found")
    managers = []
    for entry in (raw.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, dict):
            continue
        paths = fields_to_pointers(entry.get("fieldsV1") or {}, raw)
        if entry.get("subresource"):
            paths = [f"/{entry['subresource']}{p}" if not p.startswith(f"/{entry['subresource']}") else p
                     for p in paths]
        managers.append(ManagedField(manager=str(entry.get("manager") or ""),
                                     operation=str(entry.get("operation") or ""),
                                     time=time_of(entry.get("time")), paths=paths))
    return FieldManagers(found=True, managers=managers, note="" if managers else "the object carries no managedFields")


def autoscalers_for(hpas: list[Obj], kind: str, name: str) -> Autoscalers:
    """The HorizontalPodAutoscalers among `hpas` whose scaleTargetRef is this workload."""
    found = []
    for hpa in hpas:
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind") != kind or target.get("name") != name:
            continue
        found.append(Autoscaler(
            name=str((hpa.get("metadata") or {}).get("name") or ""),
            kind=str(hpa.get("kind") or "HorizontalPodAutoscaler"),
            min_replicas=spec.get("minReplicas"), max_replicas=spec.get("maxReplicas"),
            current_replicas=status.get("currentReplicas"), desired_replicas=status.get("desiredReplicas"),
            metrics=[m for m in spec.get("metrics") or [] if isinstance(m, dict)],
        ))
    return Autoscalers(autoscalers=found)


def owned_kinds(kind: str) -> frozenset[str]:
    return WORKLOAD_OWNED_KINDS if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job") else frozenset()


def events_for(kind: str, name: str, events: list[KubeEvent], pods: list[Obj],
               since: datetime | None) -> list[KubeEvent]:
    """The events about an object (and, for a workload, its pods' and ReplicaSets', plus the OOM kills its
    pods' status still records), newest first."""
    owned = owned_kinds(kind)
    out = [e for pod in (pods if owned else []) if owned_name(name, str((pod.get("metadata") or {}).get("name") or ""))
           for e in pod_terminations(pod)
           if since is None or (e.last_seen is not None and e.last_seen >= since)]
    for event in events:
        direct = event.involved_kind == kind and event.involved_name == name
        if not (direct or (event.involved_kind in owned and owned_name(name, event.involved_name))):
            continue
        if since is not None and (event.last_seen is None or event.last_seen < since):
            continue
        out.append(event)
    out.sort(key=lambda e: -(e.last_seen.timestamp() if e.last_seen else 0.0))
    return out


def grant(binding_kind: str, binding: Obj, role_kind: str, role_name: str, role: Obj | None) -> RbacGrant:
    meta = binding.get("metadata") or {}
    return RbacGrant(binding_kind=binding_kind, binding_name=str(meta.get("name") or ""),
                     binding_namespace=meta.get("namespace"), role_kind=role_kind, role_name=role_name,
                     rules=to_rules(role))


def role_ref(binding: Obj, namespace: str) -> tuple[str, str, str | None]:
    """(kind, name, namespace) of the role a binding grants; a Role lives in the binding's namespace."""
    ref = binding.get("roleRef") or {}
    kind, name = str(ref.get("kind") or "Role"), str(ref.get("name") or "")
    return kind, name, namespace if kind == "Role" else None


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _key_index(items: Any, key: str) -> str:
    """The list index an associative-list key (`k:{"name":"app"}`) names in the live object, else the key text."""
    try:
        wanted = json.loads(key)
    except ValueError:
        return key
    if isinstance(items, list) and isinstance(wanted, dict):
        for index, item in enumerate(items):
            if isinstance(item, dict) and all(str(item.get(k)) == str(v) for k, v in wanted.items()):
                return str(index)
    return key


def _value_index(items: Any, raw: str) -> str:
    try:
        wanted = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(items, list) and wanted in items:
        return str(items.index(wanted))
    return raw


def _item(items: Any, index: str) -> Any:
    if isinstance(items, list) and index.isdigit() and int(index) < len(items):
        return items[int(index)]
    return None


def fields_to_pointers(fields: Any, live: Any = None, prefix: str = "") -> list[str]:
    """managedFields' FieldsV1 as the JSON Pointers of the leaves a manager owns.

    `{"f:spec": {"f:replicas": {}}}` -> ["/spec/replicas"]. Keyed list items (`k:{...}`) and set
    values (`v:...`) become the index they have in `live` when found there; `i:N` is index N; `.`
    (the item itself) is owned by the path that holds it.
    """
    if not isinstance(fields, dict):
        return []
    owned_children = {k: v for k, v in fields.items() if k != "."}
    if not owned_children:
        return [prefix] if prefix else []
    paths: list[str] = []
    if "." in fields and prefix:
        paths.append(prefix)
    for raw_key, child in owned_children.items():
        tag, _, name = raw_key.partition(":")
        if tag == "f":
            segment, child_live = name, live.get(name) if isinstance(live, dict) else None
        elif tag == "k":
            segment = _key_index(live, name)
            child_live = _item(live, segment)
        elif tag == "v":
            segment, child_live = _value_index(live, name), None
        elif tag == "i":
            segment, child_live = name, _item(live, name)
        else:
            segment, child_live = raw_key, None
        paths += fields_to_pointers(child, child_live, f"{prefix}/{_escape(segment)}")
    return paths
