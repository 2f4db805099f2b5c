"""Argo CD's REST API (the grpc-gateway JSON of argocd-server) over the sandbox world."""

from __future__ import annotations

import copy
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox import argocd_tree, diffing, error_bodies
from driftwise.sandbox.http import backend, bearer, json_response
from driftwise.sandbox.operations import record_sync
from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import AppState, World
from protocol.models import SyncWindow
from protocol.syncwindows import sync_allowed

DRIFTWISE_USER = "driftwise"
"""The Argo CD account the sandbox's token belongs to: a sync through the API is initiated by it."""


def argo_error(status: int, message: str) -> Response:
    return json_response(error_bodies.argocd(status, message), status)


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def _app_or_404(world: World, name: str) -> AppState | Response:
    app = world.apps.get(name)
    if app is None:
        return argo_error(404, f'applications.argoproj.io "{name}" not found')
    return app


def _windows(project: dict[str, Any]) -> list[SyncWindow]:
    return [SyncWindow.model_validate(w) for w in (project.get("spec") or {}).get("syncWindows") or []]


def routes(sandbox: Sandbox) -> list[Route]:
    def authorized(request: Request) -> bool:
        token = bearer(request) or request.cookies.get("argocd.token")
        return token == sandbox.tokens.argocd

    def unauthorized(request: Request) -> Response:
        has = bearer(request) or request.cookies.get("argocd.token")
        return argo_error(401, "invalid session: token signature is invalid" if has else "no session information")

    api = backend(sandbox, "argocd", authorized=authorized, unauthorized=unauthorized,
                  no_world=lambda: argo_error(404, "no scenario is active in the sandbox"))

    @api
    async def get_application(request: Request, world: World) -> Response:
        app = _app_or_404(world, request.path_params["name"])
        return app if isinstance(app, Response) else json_response(app.application)

    @api
    async def list_applications(request: Request, world: World) -> Response:
        names = request.query_params.getlist("name")
        project = request.query_params.getlist("projects") or request.query_params.getlist("project")
        search = request.query_params.get("search", "")
        items = [a.application for a in world.apps.values()
                 if (not names or a.name in names) and (not project or a.project in project) and search in a.name]
        return json_response({"metadata": {}, "items": items})

    @api
    async def managed_resources(request: Request, world: World) -> Response:
        app = _app_or_404(world, request.path_params["name"])
        if isinstance(app, Response):
            return app
        q = request.query_params
        items = []
        for r in app.resources:
            if (q.get("kind") and q["kind"] != r.kind) or (q.get("name") and q["name"] != r.name) or (
                q.get("namespace") and q["namespace"] != r.namespace) or (
                "group" in q and q["group"] != r.group):
                continue
            predicted = diffing.merge_patch(r.live, diffing.comparable(r.target))
            target, live, normalized, predicted = diffing.mask_secrets(r.target, r.live, r.live, predicted)
            items.append({
                "group": r.group, "version": r.version, "kind": r.kind, "namespace": r.namespace, "name": r.name,
                "targetState": _dump(target), "liveState": _dump(live),
                "normalizedLiveState": _dump(normalized), "predictedLiveState": _dump(predicted),
                "diff": _dump(diffing.diff_patch(diffing.comparable(live or {}), diffing.comparable(target or {}))),
                "hook": False, "modified": app.resource_differs(r),
                "resourceVersion": (r.live.get("metadata") or {}).get("resourceVersion", ""),
            })
        return json_response({"items": items})

    @api
    async def get_project(request: Request, world: World) -> Response:
        project = world.projects.get(request.path_params["name"])
        if project is None:
            return argo_error(404, f'appprojects.argoproj.io "{request.path_params["name"]}" not found')
        return json_response(project)

    @api
    async def resource_tree(request: Request, world: World) -> Response:
        app = _app_or_404(world, request.path_params["name"])
        return app if isinstance(app, Response) else json_response(argocd_tree.resource_tree(world, app))

    @api
    async def events(request: Request, world: World) -> Response:
        app = _app_or_404(world, request.path_params["name"])
        if isinstance(app, Response):
            return app
        q = request.query_params
        return json_response(argocd_tree.events(world, app, q.get("resourceName"), q.get("resourceNamespace"),
                                                q.get("resourceUID")))

    @api
    async def resource(request: Request, world: World) -> Response:
        app = _app_or_404(world, request.path_params["name"])
        if isinstance(app, Response):
            return app
        q = request.query_params
        if not q.get("resourceName") or not q.get("kind"):
            return argo_error(400, "resourceName and kind are required (with namespace, group and version)")
        found = argocd_tree.tree_object(world, app, q.get("group", ""), q["kind"], q.get("namespace", ""),
                                        q["resourceName"])
        if found is None:
            return argo_error(404, f"{q['kind']} {q.get('namespace', '')}/{q['resourceName']} not found as part of "
                                   f"application {app.name}")
        return json_response({"manifest": _dump(world.masked_object(found))})

    @api
    async def resource_actions(request: Request, world: World) -> Response:
        app = _app_or_404(world, request.path_params["name"])
        # the sandbox runs no resource actions (they are writes): it offers none
        return app if isinstance(app, Response) else json_response({"actions": []})

    @api
    async def list_clusters(request: Request, world: World) -> Response:
        q = request.query_params
        return json_response(argocd_tree.clusters(world, _now(sandbox), q.get("server"), q.get("name")))

    async def version(request: Request) -> Response:
        # argocd-server answers its version without a session, as the CLI's `argocd version` relies on
        return json_response(argocd_tree.ARGOCD_VERSION)

    @api
    async def sync(request: Request, world: World) -> Response:
        name = request.path_params["name"]
        body, bad = await _json_body(request)
        record = _recorder(sandbox, request, name, body)
        if bad:
            return record(argo_error(400, bad))
        app = _app_or_404(world, name)
        if isinstance(app, Response):
            return record(app)
        if body.get("prune"):
            return record(argo_error(403, "sandbox: a sync with prune=true is refused (nothing may be pruned)"))
        project = world.projects.get(app.project) or {}
        dest = (app.application.get("spec") or {}).get("destination") or {}
        try:
            allowed = sync_allowed(_windows(project), sandbox.clock.now(), app.name, dest.get("namespace", ""),
                                   dest.get("server", ""), manual=True)
        except ValueError as exc:
            return record(argo_error(500, f"project {app.project} sync windows: {exc}"))
        if not allowed:
            return record(argo_error(403, "cannot sync: blocked by sync window"))
        resources = body.get("resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            return record(argo_error(400, "resources must be a list of {group, kind, name, namespace}"))
        unknown = [r for r in resources if not any(m.kind == r.get("kind") and m.name == r.get("name")
                                                   for m in app.resources)]
        if unknown:
            return record(argo_error(400, f"resource {unknown[0].get('kind')}/{unknown[0].get('name')} "
                                          "is not managed by this application"))
        if not body.get("dryRun"):
            world.sync(app, resources)
            record_sync(app, DRIFTWISE_USER, body, _now(sandbox))
        return record(json_response(app.application))

    @api
    async def patch(request: Request, world: World) -> Response:
        name = request.path_params["name"]
        body, bad = await _json_body(request)
        record = _recorder(sandbox, request, name, body)
        if bad:
            return record(argo_error(400, bad))
        app = _app_or_404(world, name)
        if isinstance(app, Response):
            return record(app)
        patch_type = body.get("patchType") or "merge"
        try:
            patch = json.loads(body.get("patch") or "")
        except (TypeError, ValueError):
            return record(argo_error(400, "patch must be a JSON document in a string"))
        try:
            if patch_type == "merge":
                updated = diffing.merge_patch(app.application, patch)
            elif patch_type == "json":
                updated = apply_json_patch(app.application, patch)
            else:
                return record(argo_error(400, f"Patch type '{patch_type}' is not supported"))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return record(argo_error(400, f"error applying patch: {exc}"))
        if (updated.get("metadata") or {}).get("name") != name:
            return record(argo_error(400, "a patch may not rename the application"))
        app.application.clear()
        app.application.update(updated)
        app.application["metadata"]["resourceVersion"] = world.next_resource_version()
        app.refresh_status()
        return record(json_response(app.application))

    return [
        Route("/api/v1/applications", list_applications, methods=["GET"]),
        Route("/api/v1/applications/{name}", get_application, methods=["GET"]),
        Route("/api/v1/applications/{name}", patch, methods=["PATCH"]),
        Route("/api/v1/applications/{name}/managed-resources", managed_resources, methods=["GET"]),
        Route("/api/v1/applications/{name}/sync", sync, methods=["POST"]),
        Route("/api/v1/applications/{name}/resource-tree", resource_tree, methods=["GET"]),
        Route("/api/v1/applications/{name}/events", events, methods=["GET"]),
        Route("/api/v1/applications/{name}/resource", resource, methods=["GET"]),
        Route("/api/v1/applications/{name}/resource/actions", resource_actions, methods=["GET"]),
        Route("/api/v1/clusters", list_clusters, methods=["GET"]),
        Route("/api/version", version, methods=["GET"]),
        Route("/api/v1/projects/{name}", get_project, methods=["GET"]),
    ]


def _now(sandbox: Sandbox) -> str:
    from driftwise.sandbox.state import rfc3339

    return rfc3339(sandbox.clock.now())


async def _json_body(request: Request) -> tuple[dict[str, Any], str | None]:
    raw = await request.body()
    if not raw.strip():
        return {}, None
    try:
        body = json.loads(raw)
    except ValueError:
        return {"raw": raw.decode(errors="replace")[:2000]}, "request body is not valid JSON"
    if not isinstance(body, dict):
        return {"raw": body}, "request body must be a JSON object"
    return body, None


def _recorder(sandbox: Sandbox, request: Request, app: str, body: Any) -> Any:
    def record(response: Response) -> Response:
        sandbox.record(request.method, request.url.path, app, body, response.status_code < 400,
                       response.status_code)
        return response

    return record


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, test, copy, move) on a copy of `doc`."""
    if not isinstance(ops, list):
        raise ValueError("a json patch is a list of operations")
    doc = copy.deepcopy(doc)

    def parts(pointer: str) -> list[str]:
        if pointer and not pointer.startswith("/"):
            raise ValueError(f"path {pointer!r} is not a JSON Pointer")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]

    def parent(path: str) -> tuple[Any, str]:
        ps = parts(path)
        if not ps:
            raise ValueError("the whole document cannot be replaced")
        node = doc
        for p in ps[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node, ps[-1]

    def get(path: str) -> Any:
        node = doc
        for p in parts(path):
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node

    def put(path: str, value: Any, insert: bool) -> None:
        node, key = parent(path)
        if isinstance(node, list):
            if key == "-":
                node.append(value)
            elif insert:
                node.insert(int(key), value)
            else:
                node[int(key)] = value
        else:
            if not insert and key not in node:
                raise KeyError(key)
            node[key] = value

    def remove(path: str) -> Any:
        node, key = parent(path)
        return node.pop(int(key)) if isinstance(node, list) else node.pop(key)

    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            put(path, copy.deepcopy(op["value"]), True)
        elif kind == "replace":
            put(path, copy.deepcopy(op["value"]), False)
        elif kind == "remove":
            remove(path)
        elif kind == "test":
            if get(path) != op.get("value"):
                raise ValueError(f"test failed at {path}")
        elif kind == "copy":
            put(path, copy.deepcopy(get(op["from"])), True)
        elif kind == "move":
            put(path, remove(op["from"]), True)
        else:
            raise ValueError(f"unknown op {kind!r}")
    return doc
