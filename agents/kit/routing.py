"""Which drifts a specialist wants: a pure function over the DriftReport, from its settings' kinds/paths globs.

Globs are shell-style (`fnmatch`): `*` matches any run of characters, `/` included, so
`/spec/template/*` covers everything below the pod template and `*` alone covers every path.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from protocol.models import DriftReport, ResourceDrift

__all__ = ["wants", "wants_drift"]


def _any(value: str, globs: Iterable[str]) -> bool:
    return any(fnmatchcase(value, g) for g in globs)


def wants_drift(kinds: Iterable[str], paths: Iterable[str], drift: ResourceDrift) -> bool:
    """One drifted resource is wanted when its kind matches and at least one changed path matches."""
    kinds, paths = list(kinds), list(paths)
    if not _any(drift.ref.kind, kinds):
        return False
    if not drift.changes:
        # A drift with no itemised change (the whole object differs) is wanted by a match-all path list.
        return "*" in paths
    return any(_any(change.path, paths) for change in drift.changes)


def wants(settings_kinds: Iterable[str], settings_paths: Iterable[str], report: DriftReport) -> bool:
    """Whether a specialist configured with these kinds/paths globs should be asked about `report`."""
    kinds, paths = list(settings_kinds), list(settings_paths)
    return any(wants_drift(kinds, paths, d) for d in report.drifts)
