"""Allowing a drift: a narrow `ignoreDifferences` on exactly the drifted paths of exactly those resources.

Argo CD overwrites ignored fields on sync unless `RespectIgnoreDifferences=true` is among the
sync options, so the allowance adds that option too. A merge patch replaces lists whole, so the
patch carries the full list: the current entries plus ours (or minus ours, on expiry).
"""

from __future__ import annotations

from typing import Any

from protocol.models import Scope

RESPECT = "RespectIgnoreDifferences=true"


def entries_for(scope: Scope) -> list[dict[str, Any]]:
    return [
        {
            "group": rp.ref.group,
            "kind": rp.ref.kind,
            "name": rp.ref.name,
            **({"namespace": rp.ref.namespace} if rp.ref.namespace else {}),
            "jsonPointers": sorted(set(rp.paths)),
        }
        for rp in scope.resources
    ]


def _spec(application: dict[str, Any]) -> dict[str, Any]:
    return application.get("spec") or {}


def add_patch(application: dict[str, Any], ours: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge patch adding our entries (once) and the sync option that makes Argo CD respect them."""
    current = list(_spec(application).get("ignoreDifferences") or [])
    merged = current + [e for e in ours if e not in current]
    sync_policy = dict(_spec(application).get("syncPolicy") or {})
    options = list(sync_policy.get("syncOptions") or [])
    patch: dict[str, Any] = {"spec": {"ignoreDifferences": merged}}
    if RESPECT not in options:
        patch["spec"]["syncPolicy"] = {**sync_policy, "syncOptions": [*options, RESPECT]}
    return patch


def shows_allowance(application: dict[str, Any], ours: list[dict[str, Any]]) -> bool:
    """Whether the Application already carries our entries and the option that makes Argo CD respect them."""
    current = _spec(application).get("ignoreDifferences") or []
    options = (_spec(application).get("syncPolicy") or {}).get("syncOptions") or []
    return all(e in current for e in ours) and RESPECT in options


def remove_patch(application: dict[str, Any], ours: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge patch removing exactly our entries, leaving anyone else's in place."""
    current = list(_spec(application).get("ignoreDifferences") or [])
    return {"spec": {"ignoreDifferences": [e for e in current if e not in ours]}}
