"""Pure helpers over Kubernetes objects: Secret redaction, size bounding, managedFields as JSON Pointers."""

from __future__ import annotations

import copy
import json
from typing import Any

from protocol.models import REDACTED

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def redact(obj: Obj) -> Obj:
    """A copy with every Secret value replaced by REDACTED (keys kept: which keys exist is not secret).

    The last-applied annotation of a Secret holds its values in clear, so it goes too.
    """
    out = copy.deepcopy(obj)
    if out.get("kind") == "Secret":
        for field in ("data", "stringData"):
            values = out.get(field)
            if isinstance(values, dict):
                out[field] = {key: REDACTED for key in values}
        annotations = (out.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = REDACTED
    if out.get("kind", "").endswith("List") and isinstance(out.get("items"), list):
        out["items"] = [redact(item) for item in out["items"] if isinstance(item, dict)]
    return out


def slim(obj: Obj) -> tuple[Obj, list[str]]:
    """Drop the bulky bookkeeping an LLM reader does not need; returns what was dropped."""
    out = copy.deepcopy(obj)
    dropped = []
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        if metadata.pop("managedFields", None) is not None:
            dropped.append("metadata.managedFields (see field_managers)")
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and annotations.pop(LAST_APPLIED, None) is not None:
            dropped.append(f"the {LAST_APPLIED} annotation")
    return out, dropped


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


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
