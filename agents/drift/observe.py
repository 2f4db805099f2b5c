"""observe: what Argo CD says drifted, as a DriftReport stamped with Driftwise's clock.

The webhook is only a signal: the report is always rebuilt from the Argo CD API (application,
project sync windows, managed resources), plus the labels of the namespaces the drift touches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from agents.drift.argocd_client import AppProject, ArgoApplication, ArgoCDClient, ManagedResource
from agents.drift.errors import ObserveError
from agents.kit.diff import is_secret, resource_changes, resource_drift
from protocol.context import NamespaceInfo
from protocol.models import DriftEvent, DriftReport, Evidence, ResourceDrift, ResourceRef, SyncWindow

log = logging.getLogger(__name__)

Now = Callable[[], Awaitable[datetime]]
"""Driftwise's clock (agents.drift.clock.Clock.now)."""


class ToolCaller(Protocol):
    """The slice of agents.kit.bindings.BoundSources that gather uses: a need's arguments in, Evidence out."""

    async def fetch(
        self, args: Any, *, evidence_id: str, observed_at: datetime, timeout_s: float | None = None,
    ) -> Evidence: ...


def _key(group: str, kind: str, namespace: str | None, name: str) -> tuple[str, str, str, str]:
    return (group or "", kind, namespace or "", name)


def build_report(
    event: DriftEvent,
    app: ArgoApplication,
    project: AppProject | None,
    resources: list[ManagedResource],
    observed_at: datetime,
    namespace_labels: dict[str, dict[str, str]] | None = None,
) -> DriftReport:
    """The DriftReport for one application: one ResourceDrift per out-of-sync resource, Secrets redacted."""
    dest = app.destination
    dest_ns = str(dest.get("namespace") or "")
    status = {_key(r.group, r.kind, r.namespace or dest_ns, r.name): r for r in app.resources}
    drifts: list[ResourceDrift] = []
    for res in resources:
        ns = res.namespace or dest_ns or None
        key = _key(res.group, res.kind, ns, res.name)
        secret = is_secret(res.group, res.kind)
        target, live = res.target(), res.live()
        changes = resource_changes(target, live, secret=secret)
        known = status.get(key)
        if known is not None and known.status is not None:
            drifted = known.status == "OutOfSync"
        elif res.modified is not None:
            drifted = res.modified
        else:
            drifted = bool(changes)
        if not drifted:
            continue
        version = res.version or (known.version if known else "") or _version_of(live or target)
        ref = ResourceRef(group=res.group or "", version=version or "v1", kind=res.kind, namespace=ns, name=res.name)
        drifts.append(resource_drift(ref, target, live, changes, secret=secret))
    windows: list[SyncWindow] = []
    for w in project.sync_windows if project else []:
        try:
            windows.append(SyncWindow.model_validate(_window_fields(w)))
        except ValidationError as exc:
            raise ObserveError("argocd_invalid", f"sync window {w!r} of project {app.project}: {exc}") from exc
    src = app.source
    return DriftReport(
        event_id=event.event_id,
        application=app.metadata.name,
        app_namespace=app.metadata.namespace or event.notification.app_namespace,
        project=app.project,
        revision=app.revision or event.notification.revision,
        repo_url=str(src.get("repoURL") or ""),
        destination_server=str(dest.get("server") or ""),
        destination_namespace=dest_ns,
        sync_windows=windows,
        namespace_labels=namespace_labels or {},
        drifts=drifts,
        observed_at=observed_at,
    )


_WINDOW_FIELDS = {"kind", "schedule", "duration", "timeZone", "applications", "namespaces", "clusters", "manualSync"}


def _window_fields(w: dict[str, Any]) -> dict[str, Any]:
    # Argo CD adds fields over time (e.g. `andOperator`, `description`): keep the ones we model.
    out = {k: v for k, v in w.items() if k in _WINDOW_FIELDS and v is not None}
    out.setdefault("timeZone", "UTC")
    return out


def _version_of(obj: dict[str, Any] | None) -> str:
    api = str((obj or {}).get("apiVersion") or "")
    return api.rsplit("/", 1)[-1] if api else ""


def touched_namespaces(report: DriftReport) -> list[str]:
    names = {d.ref.namespace for d in report.drifts if d.ref.namespace}
    if report.destination_namespace:
        names.add(report.destination_namespace)
    return sorted(names)


class Observer:
    """The Argo CD side of a drift; the cluster's side (namespace labels included) is gather's, over MCP."""

    def __init__(self, argocd: ArgoCDClient) -> None:
        self._argocd = argocd

    async def observe(self, event: DriftEvent, clock: Now) -> DriftReport:
        """Read the application, its resources, its project (the one the notification names, checked
        against the application's own) and the clock at once: one round trip instead of three."""
        n = event.notification
        app_task = asyncio.create_task(self._argocd.application(n.app, n.app_namespace))
        res_task = asyncio.create_task(self._argocd.managed_resources(n.app, n.app_namespace))
        project_task = asyncio.create_task(self._argocd.project(n.project))
        now_task = asyncio.create_task(clock())
        tasks = (app_task, res_task, project_task, now_task)
        try:
            app = await app_task
            if app.project == n.project:
                project = await project_task
            else:  # the notification named another project: the application's own is the truth
                project_task.cancel()
                project = await self._argocd.project(app.project)
            resources = await res_task
            now = await now_task
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
                elif not t.cancelled():
                    t.exception()  # retrieved: a read we stopped caring about must not log as unhandled
        return build_report(event, app, project, resources, now)


def namespace_labels(evidence: list[Evidence]) -> dict[str, dict[str, str]]:
    """The labels of every namespace the evidence found (kubernetes.namespace calls)."""
    return {
        ev.value.name: dict(ev.value.labels)
        for ev in evidence
        if isinstance(ev.value, NamespaceInfo) and ev.value.found
    }
