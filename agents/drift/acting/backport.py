"""The Git back-port of an allowed drift: the manifest change that would make Git agree with the cluster.

For each drifted resource, the Git manifest (target) with the drifted paths set to the cluster's
values, shown as a unified diff a human can apply to the repository. Redacted values are never
written: such a path is listed as needing a manual change instead.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

from protocol.models import DriftReport, FieldChange, ResourceDrift


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _apply(doc: Any, change: FieldChange) -> None:
    tokens = [_unescape(t) for t in change.path.split("/")[1:]]
    if not tokens:
        return
    parent = doc
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent.setdefault(token, {})
    last = tokens[-1]
    if isinstance(parent, list):
        index = int(last) if last != "-" else len(parent)
        if change.op == "remove":
            del parent[index]
        elif index == len(parent):
            parent.append(change.after)
        else:
            parent[index] = change.after
    elif change.op == "remove":
        parent.pop(last, None)
    else:
        parent[last] = change.after


def resource_patch(drift: ResourceDrift) -> tuple[str, list[str]]:
    """(unified diff, paths left for a human) for one resource."""
    if drift.target is None:
        return "", [c.path for c in drift.changes]
    before = copy.deepcopy(drift.target)
    after = copy.deepcopy(drift.target)
    manual = []
    for change in drift.changes:
        if change.redacted:
            manual.append(change.path)
            continue
        try:
            _apply(after, change)
        except (KeyError, IndexError, ValueError, TypeError):
            manual.append(change.path)
    ref = drift.ref
    name = f"{ref.kind.lower()}-{ref.namespace + '-' if ref.namespace else ''}{ref.name}.yaml"
    diff = difflib.unified_diff(
        yaml.safe_dump(before, sort_keys=False).splitlines(keepends=True),
        yaml.safe_dump(after, sort_keys=False).splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    return "".join(diff), manual


def backport_patch(report: DriftReport) -> str:
    """One text holding every resource's diff, prefixed by where it goes and what needs a human."""
    parts = [f"# Back-port of the drift Driftwise allowed in {report.application} (event {report.event_id}).",
             f"# Apply to {report.repo_url or 'the application repository'} so that Git matches the cluster."]
    for drift in report.drifts:
        diff, manual = resource_patch(drift)
        if diff:
            parts.append(diff.rstrip("\n"))
        if manual:
            parts.append(f"# {drift.ref.key}: change by hand (value redacted or path absent in Git): "
                         + ", ".join(manual))
    return "\n".join(parts) + "\n"
