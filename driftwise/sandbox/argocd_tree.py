"""What Argo CD derives from the cluster for one application: its resource tree, events, and cluster list.

The tree is the application's managed resources and, under each, the world's objects that name it (or
a descendant) in their ownerReferences, as Argo CD's cluster cache links them; each node's health is
the application's recorded health of that resource. Events are the cluster's Event objects about the
application, or about one of its resources.
"""

from __future__ import annotations

from typing import Any

from driftwise.sandbox.kinds import split_api_version
from driftwise.sandbox.kube_openapi import KUBERNETES_VERSION
from driftwise.sandbox.world import AppState, World

Obj = dict[str, Any]
IN_CLUSTER = "https://kubernetes.default.svc"
ARGOCD_VERSION = {
    "Version": "v3.2.0+sandbox", "BuildDate": "2026-01-01T00:00:00Z", "GitCommit": "driftwise-sandbox",
    "GitTreeState": "clean", "GoVersion": "go1.25.0", "Compiler": "gc", "Platform": "linux/amd64",
    "KustomizeVersion": "v5.7.0", "HelmVersion": "v3.18.4", "KubectlVersion": "v0.34.0", "JsonnetVersion": "v0.21.0",
}


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _ref(obj: Obj) -> Obj:
    group, version = split_api_version(str(obj.get("apiVersion", "")))
    meta = _meta(obj)
    return {"group": group, "version": version, "kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""), "uid": meta.get("uid", "")}


def _health(app: AppState, ref: Obj) -> Obj | None:
    for entry in (app.application.get("status") or {}).get("resources") or []:
        if (entry.get("kind"), entry.get("name"), entry.get("namespace") or "", entry.get("group") or "") == (
                ref["kind"], ref["name"], ref["namespace"], ref["group"]):
            return entry.get("health")
    return None


def _images(obj: Obj) -> list[str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    template = ((spec.get("template") or {}).get("spec") or {}) if isinstance(spec.get("template"), dict) else {}
    containers = template.get("containers") or spec.get("containers") or []
    return [str(c["image"]) for c in containers if isinstance(c, dict) and c.get("image")]


def _node(app: AppState, obj: Obj, parents: list[Obj]) -> Obj:
    ref = _ref(obj)
    meta = _meta(obj)
    node: Obj = {**ref, "resourceVersion": meta.get("resourceVersion", ""), "createdAt": meta.get("creationTimestamp")}
    if parents:
        node["parentRefs"] = [{k: p[k] for k in ("group", "kind", "namespace", "name", "uid")} for p in parents]
    if images := _images(obj):
        node["images"] = images
    if (health := _health(app, ref)) is not None:
        node["health"] = health
    return {k: v for k, v in node.items() if v not in (None, "")} | {"namespace": ref["namespace"]}


def resource_tree(world: World, app: AppState) -> Obj:
    """`GET /api/v1/applications/{name}/resource-tree`."""
    roots = [r.live for r in app.resources if r.live]
    nodes = [_node(app, obj, []) for obj in roots]
    by_owner: dict[str, list[Obj]] = {}
    for obj in world.objects.values():
        for owner in _meta(obj).get("ownerReferences") or []:
            if isinstance(owner, dict) and owner.get("uid"):
                by_owner.setdefault(str(owner["uid"]), []).append(obj)
    seen = {id(o) for o in roots}
    frontier = list(roots)
    while frontier:
        parent = frontier.pop(0)
        uid = _meta(parent).get("uid")
        for child in by_owner.get(str(uid), []) if uid else []:
            if id(child) in seen:
                continue
            seen.add(id(child))
            nodes.append(_node(app, child, [_ref(parent)]))
            frontier.append(child)
    return {"nodes": nodes, "orphanedNodes": [], "hosts": []}


def tree_object(world: World, app: AppState, group: str, kind: str, namespace: str, name: str) -> Obj | None:
    """The live object of a node of the application's tree, or None."""
    for node in resource_tree(world, app)["nodes"]:
        if (node["group"], node["kind"], node["namespace"], node["name"]) == (group, kind, namespace, name):
            return world.objects.get((group, kind, namespace, name))
    return None


def events(world: World, app: AppState, resource_name: str | None, resource_namespace: str | None,
           resource_uid: str | None) -> Obj:
    """`GET /api/v1/applications/{name}/events`: an EventList about the application, or about one resource."""
    items = []
    for obj in world.objects_of("", "Event"):
        inv = obj.get("involvedObject") or {}
        if resource_name:
            if inv.get("name") != resource_name or (resource_namespace and inv.get("namespace") != resource_namespace):
                continue
            if resource_uid and inv.get("uid") and inv.get("uid") != resource_uid:
                continue
        elif inv.get("kind") != "Application" or inv.get("name") != app.name:
            continue
        items.append(obj)
    items.sort(key=lambda e: str(e.get("lastTimestamp") or _meta(e).get("creationTimestamp") or ""))
    return {"metadata": {"resourceVersion": str(world.resource_version)}, "items": items}


def clusters(world: World, now: str, server: str | None, name: str | None) -> Obj:
    """`GET /api/v1/clusters`: the destination clusters the applications name (in-cluster when none does)."""
    found: dict[str, str] = {}
    for app in world.apps.values():
        dest = (app.application.get("spec") or {}).get("destination") or {}
        url = dest.get("server") or (IN_CLUSTER if dest.get("name") in (None, "", "in-cluster") else "")
        if url:
            found.setdefault(url, "in-cluster" if url == IN_CLUSTER else str(dest.get("name") or url))
    found = found or {IN_CLUSTER: "in-cluster"}
    minor = ".".join(KUBERNETES_VERSION.split(".")[:2])
    items = []
    for url, label in found.items():
        if (server and url != server) or (name and label != name):
            continue
        count = sum(1 for a in world.apps.values()
                    if ((a.application.get("spec") or {}).get("destination") or {}).get("server", IN_CLUSTER) == url)
        state = {"status": "Successful", "message": "", "attemptedAt": now}
        items.append({
            "server": url, "name": label, "config": {"tlsClientConfig": {"insecure": False}},
            "connectionState": state, "serverVersion": minor,
            "info": {"connectionState": state, "serverVersion": minor, "applicationsCount": count,
                     "cacheInfo": {"resourcesCount": len(world.objects), "apisCount": len(world.object_types()),
                                   "lastCacheSyncTime": now}},
        })
    return {"metadata": {}, "items": items}
