"""Pure helpers over Kubernetes objects: Secret redaction and size bounding (readings: protocol/kube_reading.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

from protocol.kube_reading import LAST_APPLIED
from protocol.models import REDACTED

Obj = dict[str, Any]


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
