"""Argo CD sync windows: which are active at a time, whether a sync is allowed, when the next allow opens.

Semantics follow Argo CD: no window -> syncs allowed; an allow window exists -> only inside an
active one; an active deny window wins (a manual sync passes a window with `manualSync: true`).
Windows match an application by `applications`, `namespaces` or `clusters` globs.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from protocol.models import SyncWindow

_DURATION = re.compile(r"(\d+)([hms])")


def parse_duration(text: str) -> timedelta:
    """Argo CD window durations: Go-style `4h`, `30m`, `1h30m`."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"sync window duration {text!r} is not like 4h or 1h30m")
    units = {"h": 3600, "m": 60, "s": 1}
    return timedelta(seconds=sum(int(n) * units[u] for n, u in parts))


def _zone(window: SyncWindow) -> ZoneInfo:
    try:
        return ZoneInfo(window.time_zone or "UTC")
    except ZoneInfoNotFoundError as exc:
        raise ValueError(f"sync window time zone {window.time_zone!r} is unknown") from exc


def matches(window: SyncWindow, app: str, namespace: str = "", cluster: str = "") -> bool:
    """Whether a window applies to this application (any of its selectors matches)."""
    return (
        any(fnmatchcase(app, p) for p in window.applications)
        or any(fnmatchcase(namespace, p) for p in window.namespaces if namespace)
        or any(fnmatchcase(cluster, p) for p in window.clusters if cluster)
    )


def is_active(window: SyncWindow, at: datetime) -> bool:
    """Whether `at` falls inside an occurrence of the window (start <= at < start + duration)."""
    local = at.astimezone(_zone(window))
    # The latest start at or before `at`: a window is active when it began less than `duration` ago.
    start = croniter(window.schedule, local + timedelta(seconds=1)).get_prev(datetime)
    return start <= local < start + parse_duration(window.duration)


def active_windows(
    windows: list[SyncWindow], at: datetime, app: str, namespace: str = "", cluster: str = ""
) -> list[SyncWindow]:
    return [w for w in windows if matches(w, app, namespace, cluster) and is_active(w, at)]


def sync_allowed(
    windows: list[SyncWindow], at: datetime, app: str, namespace: str = "", cluster: str = "",
    *, manual: bool = True,
) -> bool:
    """Whether Argo CD would accept a sync of `app` at `at` (Driftwise's syncs are manual syncs)."""
    relevant = [w for w in windows if matches(w, app, namespace, cluster)]
    active = [w for w in relevant if is_active(w, at)]
    denies = [w for w in active if w.kind == "deny"]
    if denies and not (manual and all(w.manual_sync for w in denies)):
        return False
    allows = [w for w in relevant if w.kind == "allow"]
    if not allows:
        return True
    if any(w.kind == "allow" for w in active):
        return True
    return manual and any(w.manual_sync for w in allows)


def in_freeze(windows: list[SyncWindow], at: datetime, app: str, namespace: str = "", cluster: str = "") -> bool:
    """A change freeze: an active deny window for this application."""
    return any(w.kind == "deny" for w in active_windows(windows, at, app, namespace, cluster))


def next_allow_start(
    windows: list[SyncWindow], after: datetime, app: str, namespace: str = "", cluster: str = "",
    *, horizon: timedelta = timedelta(days=62),
) -> datetime | None:
    """Start of the next allow window for `app` after `after` that no deny window blocks; None if none."""
    candidates: list[datetime] = []
    for w in windows:
        if w.kind != "allow" or not matches(w, app, namespace, cluster):
            continue
        it = croniter(w.schedule, after.astimezone(_zone(w)))
        for _ in range(200):
            start = it.get_next(datetime)
            if start - after > horizon:
                break
            if not in_freeze(windows, start, app, namespace, cluster):
                candidates.append(start)
                break
    return min(candidates) if candidates else None
