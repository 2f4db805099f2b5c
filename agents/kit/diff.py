"""Drift as data: a JSON diff of Git's manifest against the live object, and who owns which path.

Paths are RFC 6901 JSON Pointers. Noise that every live object carries (managedFields,
resourceVersion, uid, generation, creationTimestamp, status, last-applied annotations) is not drift.
Secret values are replaced by REDACTED here, before any model holds them.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from protocol.models import REDACTED, FieldChange, FieldManager, ResourceDrift, ResourceRef

NOISE_PATHS = frozenset(
    {
        "/status",
        "/metadata/managedFields",
        "/metadata/resourceVersion",
        "/metadata/uid",
        "/metadata/generation",
        "/metadata/creationTimestamp",
        "/metadata/selfLink",
        "/metadata/deletionGracePeriodSeconds",
        "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    }
)
_SECRET_FIELDS = ("data", "stringData")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def is_secret(group: str, kind: str) -> bool:
    return kind == "Secret" and group in ("", "core", "v1")


def clean(obj: dict[str, Any] | None, *, secret: bool) -> dict[str, Any] | None:
    """A copy without noise; a Secret's values become REDACTED (its keys stay visible)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"):
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(_LAST_APPLIED, None)
            if not annotations:
                meta.pop("annotations")
    if secret:
        for field in _SECRET_FIELDS:
            values = out.get(field)
            if isinstance(values, dict):
                out[field] = {k: REDACTED for k in values}
    return out


def diff(target: Any, live: Any, path: str = "") -> list[FieldChange]:
    """Changes that turn `target` (Git) into `live` (cluster), leaf by leaf; arrays compare by index."""
    if path in NOISE_PATHS:
        return []
    if isinstance(target, dict) and isinstance(live, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(target) | set(live)):
            sub = f"{path}/{escape(str(key))}"
            if sub in NOISE_PATHS:
                continue
            if key not in live:
                changes.append(FieldChange(path=sub, op="remove", before=target[key], after=None))
            elif key not in target:
                if sub == "/metadata/namespace":
                    continue  # Argo CD fills the destination namespace in: not a change
                changes.append(FieldChange(path=sub, op="add", before=None, after=live[key]))
            else:
                changes.extend(diff(target[key], live[key], sub))
        return changes
    if isinstance(target, list) and isinstance(live, list):
        changes = []
        for i in range(max(len(target), len(live))):
            sub = f"{path}/{i}"
            if i >= len(live):
                changes.append(FieldChange(path=sub, op="remove", before=target[i], after=None))
            elif i >= len(target):
                changes.append(FieldChange(path=sub, op="add", before=None, after=live[i]))
            else:
                changes.extend(diff(target[i], live[i], sub))
        return changes
    if target == live:
        return []
    return [FieldChange(path=path, op="replace", before=target, after=live)]


def secret_changes(target: dict[str, Any] | None, live: dict[str, Any] | None) -> list[FieldChange]:
    """Changed Secret values, compared as Argo CD serves them (masked `+` runs differ when values do)."""
    changes: list[FieldChange] = []
    for field in _SECRET_FIELDS:
        t = (target or {}).get(field) or {}
        lv = (live or {}).get(field) or {}
        if not isinstance(t, dict) or not isinstance(lv, dict):
            continue
        for key in sorted(set(t) | set(lv)):
            if key in t and key in lv and t[key] == lv[key]:
                continue
            op = "replace" if key in t and key in lv else ("add" if key in lv else "remove")
            changes.append(
                FieldChange(
                    path=f"/{field}/{escape(key)}",
                    op=op,
                    before=REDACTED if key in t else None,
                    after=REDACTED if key in lv else None,
                    redacted=True,
                )
            )
    return changes


def resource_changes(target: dict[str, Any] | None, live: dict[str, Any] | None, *, secret: bool) -> list[FieldChange]:
    if target is None and live is None:
        return []
    if target is None:
        return [FieldChange(path="", op="add", after=None if secret else clean(live, secret=False))]
    if live is None:
        return [FieldChange(path="", op="remove", before=None if secret else clean(target, secret=False))]
    if not secret:
        return diff(target, live)
    rest_t = {k: v for k, v in target.items() if k not in _SECRET_FIELDS}
    rest_l = {k: v for k, v in live.items() if k not in _SECRET_FIELDS}
    # A Secret's last-applied annotation would carry its values: drop it from both sides first.
    return secret_changes(target, live) + diff(clean(rest_t, secret=True), clean(rest_l, secret=True))


# --- managedFields --------------------------------------------------------------------------------


def _fields_paths(fields: dict[str, Any], obj: Any, prefix: str, out: list[str]) -> None:
    for key, sub in fields.items():
        if key == ".":
            out.append(prefix)
            continue
        child: Any = None
        if key.startswith("f:"):
            name = key[2:]
            path = f"{prefix}/{escape(name)}"
            child = obj.get(name) if isinstance(obj, dict) else None
        elif key.startswith(("k:", "v:")):
            try:
                wanted = json.loads(key[2:])
            except ValueError:
                continue
            index = _find(obj, wanted, by_keys=key.startswith("k:"))
            if index is None:
                continue
            path = f"{prefix}/{index}"
            child = obj[index]
        elif key.startswith("i:") and key[2:].isdigit():
            path = f"{prefix}/{key[2:]}"
            child = obj[int(key[2:])] if isinstance(obj, list) and int(key[2:]) < len(obj) else None
        else:
            continue
        if isinstance(sub, dict) and any(k != "." for k in sub):
            if "." in sub:
                out.append(path)
            _fields_paths({k: v for k, v in sub.items() if k != "."}, child, path, out)
        else:
            out.append(path)


def _find(items: Any, wanted: Any, *, by_keys: bool) -> int | None:
    if not isinstance(items, list):
        return None
    for i, item in enumerate(items):
        if by_keys and isinstance(item, dict) and isinstance(wanted, dict):
            if all(item.get(k) == v for k, v in wanted.items()):
                return i
        elif not by_keys and item == wanted:
            return i
    return None


def field_managers(live: dict[str, Any] | None) -> list[FieldManager]:
    """The live object's managedFields as (manager, operation, time, owned JSON Pointers)."""
    meta = (live or {}).get("metadata") or {}
    out: list[FieldManager] = []
    for entry in meta.get("managedFields") or []:
        if not isinstance(entry, dict) or not entry.get("manager"):
            continue
        paths: list[str] = []
        fields = entry.get("fieldsV1")
        if isinstance(fields, dict):
            _fields_paths(fields, live, "", paths)
        out.append(
            FieldManager(
                manager=str(entry["manager"]),
                operation=str(entry.get("operation") or ""),
                time=parse_time(entry.get("time")),
                paths=paths,
            )
        )
    return out


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as Kubernetes and Argo CD write it; None when absent, naive or not a time."""
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else None


def owners(change_path: str, managers: list[FieldManager]) -> list[FieldManager]:
    """The managers owning a changed path: the most specific owned path that covers it wins."""
    best: list[tuple[int, FieldManager]] = []
    for m in managers:
        score = -1
        for p in m.paths:
            if p == change_path or change_path.startswith(p + "/") or p == "":
                score = max(score, len(p))
            elif p.startswith(change_path + "/"):
                score = max(score, len(p))  # owns a field inside the changed subtree
        if score >= 0:
            best.append((score, m))
    if not best:
        return []
    top = max(s for s, _ in best)
    tied = [m for s, m in best if s == top]
    # Co-owners of one path: the latest writer is the one who changed it (the applier wrote Git's value).
    latest = max((m.time for m in tied if m.time is not None), default=None)
    return [m for m in tied if latest is None or m.time == latest]


def resource_drift(ref: ResourceRef, target: dict[str, Any] | None, live: dict[str, Any] | None,
                   changes: list[FieldChange], *, secret: bool) -> ResourceDrift:
    """One drifted resource: its changes, who wrote them and when (the live object's managedFields), and
    both sides cleaned (Secret values redacted)."""
    managers = field_managers(live)
    changed_by: list[str] = []
    for change in changes:
        for m in owners(change.path, managers):
            if m.manager not in changed_by:
                changed_by.append(m.manager)
    times = [m.time for m in managers if m.manager in changed_by and m.time is not None]
    return ResourceDrift(ref=ref, changes=changes, managers=managers, changed_by=changed_by,
                         changed_at=max(times) if times else None,
                         target=clean(target, secret=secret), live=clean(live, secret=secret))
