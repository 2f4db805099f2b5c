"""Test helper: a DriftReport from a scenario file's argocd.resources (target vs live), like the drift agent makes.

Changed paths are computed leaf by leaf (RFC 6901 pointers); Secret values are redacted before
anything else sees them. The production report is built by agents/drift/observe.py; this helper
only has to be faithful enough to exercise the specialists.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from protocol.models import REDACTED, DriftReport, FieldChange, ResourceDrift, ResourceRef, SyncWindow

_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def _escape(seg: str) -> str:
    return seg.replace("~", "~0").replace("/", "~1")


def diff(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in list(before) + [k for k in after if k not in before]:
            p = f"{path}/{_escape(str(key))}"
            if key not in after:
                out.append(FieldChange(path=p, op="remove", before=before[key]))
            elif key not in before:
                out.append(FieldChange(path=p, op="add", after=after[key]))
            else:
                out += diff(before[key], after[key], p)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [c for i, (b, a) in enumerate(zip(before, after, strict=True)) for c in diff(b, a, f"{path}/{i}")]
    return [] if before == after else [FieldChange(path=path, op="replace", before=before, after=after)]


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    obj = dict(obj)
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    obj["metadata"] = meta
    obj.pop("status", None)
    return obj


def _redact(obj: dict[str, Any]) -> dict[str, Any]:
    obj = dict(obj)
    for key in ("data", "stringData"):
        if isinstance(obj.get(key), dict):
            obj[key] = {k: REDACTED for k in obj[key]}
    return obj


def report_for(path: Path, event_id: str = "evt-1") -> DriftReport:
    scenario = yaml.safe_load(path.read_text())
    app = scenario["argocd"]["application"]
    project = scenario["argocd"]["project"]
    drifts = []
    for res in scenario["argocd"]["resources"]:
        target, live = _clean(res["target"]), _clean(res["live"])
        changes = diff(target, live)
        if res["kind"] == "Secret":
            changes = [
                c.model_copy(update={"before": REDACTED, "after": REDACTED, "redacted": True})
                if c.path.startswith(("/data", "/stringData")) else c
                for c in changes
            ]
            target, live = _redact(target), _redact(live)
        drifts.append(ResourceDrift(
            ref=ResourceRef(group=res.get("group", ""), version=res.get("version", "v1"), kind=res["kind"],
                            namespace=res.get("namespace"), name=res["name"]),
            changes=changes, target=target, live=live,
        ))
    labels = {
        o["metadata"]["name"]: o["metadata"].get("labels", {})
        for o in (scenario.get("kubernetes") or {}).get("objects", []) if o["kind"] == "Namespace"
    }
    return DriftReport(
        event_id=event_id, application=app["metadata"]["name"], project=app["spec"]["project"],
        repo_url=app["spec"]["source"]["repoURL"], destination_server=app["spec"]["destination"]["server"],
        destination_namespace=app["spec"]["destination"]["namespace"],
        sync_windows=[SyncWindow.model_validate(w) for w in project["spec"].get("syncWindows", [])],
        namespace_labels=labels, drifts=drifts,
        observed_at=datetime.fromisoformat(scenario["now"].replace("Z", "+00:00")),
    )
