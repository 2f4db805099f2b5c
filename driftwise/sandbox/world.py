"""The world the backends serve: one scenario (or a scenario and its clones) as mutable state."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftwise.sandbox import diffing
from driftwise.sandbox.kinds import split_api_version, type_for
from driftwise.sandbox.scenario import Scenario
from driftwise.sandbox.series import Samples, generate

Obj = dict[str, Any]


@dataclass
class ManagedState:
    group: str
    version: str
    kind: str
    name: str
    namespace: str
    target: Obj
    live: Obj


@dataclass
class AppState:
    scenario_id: str
    application: Obj
    project: str
    notification: Obj
    resources: list[ManagedState]

    @property
    def name(self) -> str:
        return self.application["metadata"]["name"]

    @property
    def destination_namespace(self) -> str:
        return ((self.application.get("spec") or {}).get("destination") or {}).get("namespace", "")

    def ignore_rules(self) -> list[Obj]:
        return list((self.application.get("spec") or {}).get("ignoreDifferences") or [])

    def resource_differs(self, r: ManagedState) -> bool:
        ignored = diffing.ignore_rules_for(self.ignore_rules(), r.group, r.kind, r.name, r.namespace)
        return diffing.differs(r.target, r.live, ignored)

    def refresh_status(self) -> None:
        """Recompute status.sync and status.resources from target versus live, as Argo CD's refresh does."""
        status = self.application.setdefault("status", {})
        listed = status.setdefault("resources", [])
        out_of_sync = False
        for r in self.resources:
            state = "OutOfSync" if self.resource_differs(r) else "Synced"
            out_of_sync |= state == "OutOfSync"
            entry = next(
                (e for e in listed if e.get("kind") == r.kind and e.get("name") == r.name
                 and (e.get("namespace") or "") == r.namespace and (e.get("group") or "") == r.group),
                None,
            )
            if entry is None:
                entry = {"group": r.group, "version": r.version, "kind": r.kind, "namespace": r.namespace,
                         "name": r.name, "health": {"status": "Healthy"}}
                listed.append(entry)
            entry["status"] = state
        if not any(e.get("status") == "OutOfSync" for e in listed if not self._is_managed(e)):
            status.setdefault("sync", {})["status"] = "OutOfSync" if out_of_sync else "Synced"

    def _is_managed(self, entry: Obj) -> bool:
        return any(r.kind == entry.get("kind") and r.name == entry.get("name") for r in self.resources)


def kube_key(api_version: str, kind: str, namespace: str, name: str) -> tuple[str, str, str, str]:
    group, _ = split_api_version(api_version)
    return (group, kind, namespace, name)


@dataclass
class World:
    """Everything the five backends answer from. Scenario objects are copied, never shared."""

    now: datetime
    scenario_ids: list[str]
    down: set[str]
    apps: dict[str, AppState] = field(default_factory=dict)
    projects: dict[str, Obj] = field(default_factory=dict)
    objects: dict[tuple[str, str, str, str], Obj] = field(default_factory=dict)
    series: list[Samples] = field(default_factory=list)
    raw_series: list[tuple[str, Any]] = field(default_factory=list)
    pd_services: list[Obj] = field(default_factory=list)
    pd_incidents: list[Obj] = field(default_factory=list)
    annotations: list[Obj] = field(default_factory=list)
    dashboards: list[Obj] = field(default_factory=list)
    datasources: list[Obj] = field(default_factory=list)
    resource_version: int = 100000

    @classmethod
    def build(cls, scenarios: list[Scenario]) -> World:
        base = scenarios[0]
        world = cls(now=base.now, scenario_ids=[s.id for s in scenarios], down=set(base.down))
        now_ms = int(base.now.timestamp() * 1000)
        for s in scenarios:
            s = s.model_copy(deep=True)
            project = s.argocd.project["metadata"]["name"]
            world.projects[project] = s.argocd.project
            resources: list[ManagedState] = []
            for r in s.argocd.resources:
                ns = r.namespace or (r.live.get("metadata") or {}).get("namespace", "")
                resources.append(ManagedState(r.group, r.version, r.kind, r.name, ns, r.target, r.live))
                api_version = r.live.get("apiVersion") or (f"{r.group}/{r.version}" if r.group else r.version)
                r.live.setdefault("apiVersion", api_version)
                if ns:
                    r.live.setdefault("metadata", {}).setdefault("namespace", ns)
            app = AppState(s.id, s.argocd.application, (s.argocd.application.get("spec") or {}).get("project",
                           project), s.notification, resources)
            world.apps[app.name] = app
            for obj in s.kubernetes.objects:
                meta = obj.get("metadata") or {}
                world.objects[kube_key(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
            for r in resources:  # the live side of managed resources is what the cluster holds
                meta = r.live.get("metadata") or {}
                world.objects[kube_key(r.live["apiVersion"], r.kind, meta.get("namespace", ""), r.name)] = r.live
            for series in s.prometheus.series:
                world.series.append(generate(series, now_ms))
            world.pd_services.extend(s.pagerduty.services)
            world.pd_incidents.extend(s.pagerduty.incidents)
            world.annotations.extend(s.grafana.annotations)
            world.dashboards.extend(s.grafana.dashboards)
            world.datasources.extend(s.grafana.datasources)
        for app in world.apps.values():
            app.refresh_status()
        return world

    def next_resource_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def sync(self, app: AppState, selected: list[Obj] | None) -> list[ManagedState]:
        """Make live equal target for the selected resources (all when none are named)."""
        chosen = [
            r for r in app.resources
            if not selected or any(
                (s.get("kind") == r.kind and s.get("name") == r.name
                 and (s.get("group") or "") == r.group
                 and (not s.get("namespace") or s.get("namespace") == r.namespace))
                for s in selected
            )
        ]
        for r in chosen:
            new = diffing.apply_target(r.target, r.live, self.next_resource_version())
            new.setdefault("apiVersion", r.live.get("apiVersion"))
            if r.namespace:
                new.setdefault("metadata", {}).setdefault("namespace", r.namespace)
            r.live.clear()
            r.live.update(new)  # same dict the Kubernetes API serves
        app.refresh_status()
        return chosen

    def object_type(self, obj: Obj) -> Any:
        group, version = split_api_version(obj["apiVersion"])
        return type_for(group, version, obj["kind"], bool((obj.get("metadata") or {}).get("namespace")))

    def masked_object(self, obj: Obj) -> Obj:
        return diffing.mask_secrets(obj)[0] or copy.deepcopy(obj)
