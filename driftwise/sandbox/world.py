"""The world the backends serve: one scenario (or a scenario and its clones) as mutable state."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftwise.sandbox import diffing
from driftwise.sandbox.changes import ChangeFeed
from driftwise.sandbox.crds import CrdIndex, is_crd
from driftwise.sandbox.errors import SandboxError, UnknownResource
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
    changes: ChangeFeed = field(default_factory=ChangeFeed, repr=False)
    # Objects are added only by `build` and never change identity afterwards (patch_live refuses it):
    # an index built on first use stays right, and keeps a lookup from scanning every clone's objects.
    _index: dict[tuple[str, str, str | None], list[Obj]] | None = field(default=None, init=False, repr=False)
    _types: list[Any] | None = field(default=None, init=False, repr=False)
    _crds: CrdIndex | None = field(default=None, init=False, repr=False)

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
            self.changes.modified(r.live)
        app.refresh_status()
        return chosen

    def managed(self, application: str, kind: str, name: str, namespace: str | None = None,
                group: str | None = None) -> tuple[AppState, ManagedState]:
        """The application and its managed resource so named; UnknownResource naming what is missing."""
        app = self.apps.get(application)
        if app is None:
            raise UnknownResource(f"no application {application!r} in the active world "
                                  f"(applications: {', '.join(sorted(self.apps)) or 'none'})")
        found = [r for r in app.resources
                 if r.kind == kind and r.name == name and (namespace is None or r.namespace == namespace)
                 and (group is None or r.group == group)]
        if not found:
            managed = ", ".join(f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}"
                                for r in app.resources) or "none"
            where = f"{namespace}/{name}" if namespace else name
            raise UnknownResource(f"application {application!r} manages no {kind} {where} (managed: {managed})")
        if len(found) > 1:
            raise SandboxError(f"application {application!r} manages several {kind} named {name!r}: "
                               "send namespace (and group) to pick one")
        return app, found[0]

    def patch_live(self, app: AppState, resource: ManagedState, patch: Obj) -> None:
        """Apply a JSON merge patch to the live object, as someone editing the cluster would; Argo CD refreshes.

        The live dict is the one the Kubernetes API serves, so it is updated in place.
        """
        updated = diffing.merge_patch(resource.live, patch)
        identity = [("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")]

        def at(obj: Any, path: tuple[str, ...]) -> Any:
            for key in path:
                obj = obj.get(key) if isinstance(obj, dict) else None
            return obj

        changed = [".".join(p) for p in identity if at(updated, p) != at(resource.live, p)]
        if changed:
            raise SandboxError(f"a live patch may not change the object's identity ({', '.join(changed)})")
        meta = updated["metadata"]
        meta["resourceVersion"] = self.next_resource_version()
        # The API server bumps generation when the spec changes, never for metadata or status alone.
        if isinstance(meta.get("generation"), int) and updated.get("spec") != resource.live.get("spec"):
            meta["generation"] += 1
        resource.live.clear()
        resource.live.update(updated)
        self.changes.modified(resource.live)
        app.refresh_status()

    def objects_of(self, group: str, kind: str, namespace: str | None = None) -> list[Obj]:
        """The objects of one kind (API group + kind), in one namespace or (None) in all."""
        if self._index is None:
            index: dict[tuple[str, str, str | None], list[Obj]] = {}
            for obj in self.objects.values():
                key = (self.object_type(obj).group, obj["kind"])
                index.setdefault((*key, None), []).append(obj)
                if ns := (obj.get("metadata") or {}).get("namespace"):
                    index.setdefault((*key, ns), []).append(obj)
            self._index = index
        return self._index.get((group, kind, namespace), [])

    def object_types(self) -> list[Any]:
        """The distinct resource types of the objects held, in first-seen order."""
        if self._types is None:
            seen: dict[tuple[str, str, str], Any] = {}
            for obj in self.objects.values():
                t = self.object_type(obj)
                seen.setdefault((t.group, t.version, t.kind), t)
            self._types = list(seen.values())
        return self._types

    @property
    def crds(self) -> CrdIndex:
        """The CustomResourceDefinitions the world holds: their kinds and OpenAPI documents (built on first use)."""
        if self._crds is None:
            self._crds = CrdIndex([o for o in self.objects.values() if is_crd(o)])
        return self._crds

    def object_type(self, obj: Obj) -> Any:
        group, version = split_api_version(obj["apiVersion"])
        return type_for(group, version, obj["kind"], bool((obj.get("metadata") or {}).get("namespace")))

    def masked_object(self, obj: Obj) -> Obj:
        return diffing.mask_secrets(obj)[0] or copy.deepcopy(obj)

    def remove_resource(self, app: AppState, resource: ManagedState) -> None:
        """The resource leaves Git and the cluster (removed from the repo and pruned): Argo CD no longer lists it."""
        app.resources.remove(resource)
        meta = resource.live.get("metadata") or {}
        self.objects.pop(kube_key(resource.live.get("apiVersion", resource.version), resource.kind,
                                  meta.get("namespace", ""), resource.name), None)
        listed = (app.application.get("status") or {}).get("resources") or []
        listed[:] = [e for e in listed if not (e.get("kind") == resource.kind and e.get("name") == resource.name
                                               and (e.get("namespace") or "") == resource.namespace)]
        self._index = self._types = None  # the one change of identity: lookups are rebuilt
        app.refresh_status()

    def remove_application(self, app: AppState) -> None:
        """The Application is deleted with its resources (a cascading delete): Argo CD answers 404 for it."""
        for resource in list(app.resources):
            self.remove_resource(app, resource)
        del self.apps[app.name]
