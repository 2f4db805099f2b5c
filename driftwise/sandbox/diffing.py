"""Target-versus-live comparison and Secret masking, as Argo CD applies them to managed resources."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

Obj = dict[str, Any]

# Fields the API server owns: never part of the desired state, so never drift.
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def comparable(obj: Obj) -> Obj:
    """The object as it is compared: without status and the metadata the API server writes."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_META:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(_LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations", None)
    return out


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []


def remove_pointer(obj: Any, pointer: str) -> None:
    parts = _pointer_parts(pointer)
    if not parts:
        return
    node = obj
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node.pop(int(last))


_JQ_SIMPLE = re.compile(r"^(\.[A-Za-z0-9_-]+|\.\[\d+\]|\[\d+\])+$")


def jq_to_pointer(expr: str) -> str | None:
    """The simple jq paths (`.spec.replicas`, `.spec.template.spec.containers[0].image`) as JSON Pointers."""
    expr = expr.strip()
    if not _JQ_SIMPLE.match(expr):
        return None
    parts = re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]", expr)
    return "".join("/" + (a or b) for a, b in parts)


def ignore_rules_for(rules: list[Obj], group: str, kind: str, name: str, namespace: str) -> list[str]:
    """JSON Pointers that spec.ignoreDifferences says to ignore for this resource."""
    pointers: list[str] = []
    for rule in rules:
        if (rule.get("group") or "") not in ("", "*", group) and rule.get("group") != group:
            continue
        if rule.get("kind") not in (kind, "*"):
            continue
        if rule.get("name") and rule["name"] != name:
            continue
        if rule.get("namespace") and rule["namespace"] != namespace:
            continue
        pointers.extend(rule.get("jsonPointers") or [])
        for expr in rule.get("jqPathExpressions") or []:
            p = jq_to_pointer(expr)
            if p is not None:
                pointers.append(p)
    return pointers


def differs(target: Obj, live: Obj, ignored: list[str] = ()) -> bool:  # type: ignore[assignment]
    t, lv = comparable(target), comparable(live)
    for pointer in ignored:
        remove_pointer(t, pointer)
        remove_pointer(lv, pointer)
    return t != lv


def merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def diff_patch(source: Any, dest: Any) -> Any:
    """The merge patch that turns `source` into `dest` (what a sync would change)."""
    if not (isinstance(source, dict) and isinstance(dest, dict)):
        return copy.deepcopy(dest)
    out: Obj = {}
    for key in source.keys() - dest.keys():
        out[key] = None
    for key, value in dest.items():
        if key not in source:
            out[key] = copy.deepcopy(value)
        elif source[key] != value:
            out[key] = diff_patch(source[key], value)
    return out


def apply_target(target: Obj, live: Obj, resource_version: str) -> Obj:
    """The live object after a sync: the target, keeping what the API server owns."""
    new = copy.deepcopy(target)
    meta = new.setdefault("metadata", {})
    old_meta = live.get("metadata") or {}
    for key in ("uid", "creationTimestamp", "managedFields", "generation"):
        if key in old_meta:
            meta[key] = copy.deepcopy(old_meta[key])
    meta["resourceVersion"] = resource_version
    if isinstance(meta.get("generation"), int):
        meta["generation"] += 1
    if "status" in live:
        new["status"] = copy.deepcopy(live["status"])
    return new


def is_secret(obj: Obj | None) -> bool:
    return bool(obj) and obj.get("kind") == "Secret" and obj.get("apiVersion", "v1") == "v1"


def _secret_data(obj: Obj) -> dict[str, Any]:
    data = dict(obj.get("data") or {})
    # Argo CD folds stringData into data before comparing.
    for k, v in (obj.get("stringData") or {}).items():
        data[k] = v
    return data


def mask_secrets(*objs: Obj | None) -> list[Obj | None]:
    """Argo CD's HideSecretData: every value becomes '+' runs, equal values equal runs, distinct ones longer.

    The first distinct value of a key gets 8 '+', each further distinct value 4 more, in the
    order of the objects given (target, live, ...), so a changed value shows as a changed length.
    """
    present = [o for o in objs if is_secret(o)]
    if not present:
        return [copy.deepcopy(o) for o in objs]
    out = [copy.deepcopy(o) if o is not None else None for o in objs]
    keys: set[str] = set()
    for o in present:
        keys.update(_secret_data(o))
    masked = {id(o): {} for o in present}
    for key in keys:
        replacement = "+" * 8
        seen: dict[str, str] = {}
        for o in present:
            data = _secret_data(o)
            if key not in data:
                continue
            val = json.dumps(data[key])
            if val not in seen:
                seen[val] = replacement
                replacement += "+" * 4
            masked[id(o)][key] = seen[val]
    for orig, copied in zip(objs, out, strict=True):
        if copied is None or not is_secret(orig):
            continue
        copied.pop("stringData", None)
        if masked[id(orig)]:
            copied["data"] = masked[id(orig)]
        annotations = (copied.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations[_LAST_APPLIED] = "++++++++"
    return out
