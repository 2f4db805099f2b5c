"""What became of a decided drift, judged from one read of Argo CD after the decision (pure functions).

For each drifted path of the decision's report, the application's managed resources now say:

| now                                             | the path is        |
| ----------------------------------------------- | ------------------ |
| the resource (or the application) is not there  | gone               |
| still drifted, with the same Git and live value | unchanged          |
| drifted, with another value on either side      | changed            |
| no longer drifted, Git's value as decided       | reverted           |
| no longer drifted, Git now holds the live value | adopted            |

A Secret's values are masked by Argo CD on both sides: a Secret path no longer drifted is adopted when
the revision moved, else reverted. The drift's outcome: gone if any resource is gone; reverted or
adopted once every path is settled (reverted if any path was); persisted at the horizon while some
path is still drifted (a changed drift waits for the decision that supersedes it, which the re-read
starts). Who did it: Argo CD's operation state of a sync after the decision (`initiatedBy`), else the
field manager that wrote the path back, else the commit's author (the tracker asks Argo CD). A sync
Driftwise itself made (its event id in the operation's `info`) is not someone else's revert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from agents.drift.acting.argocd_writes import EVENT_INFO
from agents.drift.argocd_client import ArgoApplication, ManagedResource
from agents.drift.open_rule import taken_action
from agents.kit.diff import field_managers, is_secret, owners, parse_time, resource_changes
from protocol.models import Action, Decision, FieldChange, OutcomeKind, ResourceRef
from protocol.syncwindows import next_allow_start


class PathState(StrEnum):
    GONE = "gone"
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    REVERTED = "reverted"
    ADOPTED = "adopted"


@dataclass(frozen=True)
class Seen:
    """An outcome as one read shows it, before it is judged against the decision."""

    kind: OutcomeKind
    at: datetime
    by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Horizon:
    """How long a decision's drift is followed, and (defer) the window it was deferred to."""

    at: datetime
    window: datetime | None = None


_MISSING = object()


def _pointer(obj: Any, path: str) -> Any:
    node = obj
    for part in path.split("/")[1:] if path else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _same(value: Any, expected: Any) -> bool:
    return (expected is None and value is _MISSING) or json.dumps(value, sort_keys=True, default=str) == json.dumps(
        expected, sort_keys=True, default=str)


def _key(ref: ResourceRef) -> tuple[str, str, str, str]:
    return (ref.group or "", ref.kind, ref.namespace or "", ref.name)


def path_states(decision: Decision, resources: list[ManagedResource], dest_ns: str,
                revision_moved: bool) -> dict[tuple[tuple[str, str, str, str], str], PathState]:
    """The state of every drifted (resource, path) of the decision, from the managed resources now."""
    assert decision.report is not None
    current = {(r.group or "", r.kind, r.namespace or dest_ns, r.name): r for r in resources}
    states: dict[tuple[tuple[str, str, str, str], str], PathState] = {}
    for drift in decision.report.drifts:
        key = _key(drift.ref)
        res = current.get(key)
        target, live = (res.target(), res.live()) if res is not None else (None, None)
        secret = is_secret(drift.ref.group, drift.ref.kind)
        if res is None or live is None:
            states.update({(key, c.path): PathState.GONE for c in drift.changes})
            continue
        now_changes = {c.path: c for c in resource_changes(target, live, secret=secret)}
        for change in drift.changes:
            states[(key, change.path)] = _path_state(change, now_changes.get(change.path), target, secret,
                                                     revision_moved)
        if set(now_changes) - {c.path for c in drift.changes}:
            states[(key, "(new paths)")] = PathState.CHANGED
    return states


def _path_state(decided: FieldChange, now: FieldChange | None, target: dict[str, Any] | None, secret: bool,
                revision_moved: bool) -> PathState:
    if now is not None:
        same = (now.op, now.before, now.after) == (decided.op, decided.before, decided.after)
        return PathState.UNCHANGED if same else PathState.CHANGED
    if secret:
        return PathState.ADOPTED if revision_moved else PathState.REVERTED
    in_git = _pointer(target, decided.path)
    if _same(in_git, decided.after) and not _same(in_git, decided.before):
        return PathState.ADOPTED
    if _same(in_git, decided.before):
        return PathState.REVERTED
    return PathState.ADOPTED if revision_moved else PathState.CHANGED


def horizon_for(decision: Decision, default: timedelta, allow_ttl: timedelta) -> Horizon:
    """allow: until its allowance expires; defer: the later of the default and the window it waits for;
    otherwise the default horizon after the decision."""
    assert decision.verdict is not None
    verdict = decision.verdict.verdict
    decided = verdict.decided_at
    action = verdict.action
    if action == Action.ALLOW:
        until = verdict.scope.until if verdict.scope is not None else None
        return Horizon(until or decided + allow_ttl)
    if action == Action.DEFER and decision.report is not None:
        r = decision.report
        window = next_allow_start(r.sync_windows, decided, r.application, r.destination_namespace)
        return Horizon(max(decided + default, window) if window else decided + default, window)
    return Horizon(decided + default)


def driftwise_reverted(decision: Decision) -> bool:
    """Driftwise's own sync of this decision ran: what follows is no one else's doing, nothing to learn."""
    return any(a.kind == "sync" and a.executed for a in decision.applied)


def _operation_after(app: ArgoApplication, since: datetime) -> tuple[str, datetime] | None:
    """The user and finish time of a sync someone other than Driftwise ran after `since`, from the
    Application's operationState, else its newest history entry."""
    op_state = app.status.get("operationState") or {}
    operation = op_state.get("operation") or {}
    infos = operation.get("info") or []
    ours = any(isinstance(i, dict) and i.get("name") == EVENT_INFO for i in infos)
    finished = parse_time(op_state.get("finishedAt"))
    dry_run = bool((operation.get("sync") or {}).get("dryRun"))
    user = ((operation.get("initiatedBy") or {}).get("username")) or ""
    if finished is not None and finished >= since and not ours and not dry_run and op_state.get("phase") == "Succeeded":
        return (user or "(automated)", finished)
    history = [h for h in app.status.get("history") or [] if isinstance(h, dict)]
    if history:
        last = history[-1]
        deployed = parse_time(last.get("deployedAt"))
        who = (last.get("initiatedBy") or {}).get("username") or ""
        if deployed is not None and deployed >= since and who and who != "driftwise":
            return (who, deployed)
    return None


def _editor_after(resources: list[ManagedResource], decision: Decision, since: datetime
                  ) -> tuple[str, datetime] | None:
    """The field manager that wrote a drifted path back after `since` (kubectl edit, a controller)."""
    assert decision.report is not None
    wanted = {_key(d.ref): d for d in decision.report.drifts}
    found: list[tuple[datetime, str]] = []
    for res in resources:
        drift = wanted.get((res.group or "", res.kind, res.namespace or decision.report.destination_namespace,
                            res.name))
        if drift is None:
            continue
        managers = [m for m in field_managers(res.live()) if m.time is not None and m.time >= since]
        for change in drift.changes:
            found += [(m.time, m.manager) for m in owners(change.path, managers) if m.time is not None]
        found += [(m.time, m.manager) for m in managers if m.time is not None]
    if not found:
        return None
    at, who = max(found)
    return who, at


def seen(decision: Decision, app: ArgoApplication | None, resources: list[ManagedResource], now: datetime,
         horizon: Horizon) -> Seen | None:
    """The outcome one read of Argo CD shows (`app` None: the application is gone), or None while the
    drift is still being followed."""
    assert decision.report is not None and decision.verdict is not None
    decided = decision.verdict.verdict.decided_at
    if app is None:
        return Seen(OutcomeKind.GONE, now, reason=f"application {decision.report.application} no longer exists")
    moved = bool(app.revision) and app.revision != decision.report.revision
    states = path_states(decision, resources, decision.report.destination_namespace, moved)
    values = set(states.values())
    if PathState.GONE in values:
        gone = sorted({f"{k[1]} {k[3]}" for (k, _), s in states.items() if s == PathState.GONE})
        return Seen(OutcomeKind.GONE, now, reason=f"{', '.join(gone)} no longer exist(s)")
    if values and values <= {PathState.REVERTED, PathState.ADOPTED}:
        if PathState.REVERTED in values:
            if (synced := _operation_after(app, decided)) is not None:
                return Seen(OutcomeKind.REVERTED, synced[1], synced[0], "synced to Git (Argo CD operation state)")
            if (edited := _editor_after(resources, decision, decided)) is not None:
                return Seen(OutcomeKind.REVERTED, edited[1], edited[0], "edited back to Git's values "
                                                                        "(field manager)")
            return Seen(OutcomeKind.REVERTED, now, reason="the drifted fields hold Git's values again")
        return Seen(OutcomeKind.ADOPTED, now, reason=f"Git at revision {app.revision} holds the live values")
    if now >= horizon.at:
        return Seen(OutcomeKind.PERSISTED, horizon.at, reason="the drift was still there at the horizon")
    return None


def by_window(decision: Decision, at: datetime, horizon: Horizon) -> bool:
    """A revert of a deferred drift came at or before the window it was deferred to (no window: at once)."""
    if taken_action(decision) != Action.DEFER and (decision.verdict is None
                                                  or decision.verdict.verdict.action != Action.DEFER):
        return True
    return horizon.window is None or at <= horizon.window
