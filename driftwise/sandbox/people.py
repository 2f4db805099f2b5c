"""Sandbox-only endpoints that play the SRE: what people do to a drift after Driftwise decided it.

No auth, never recorded in /sandbox/writes (these are people's acts, not Driftwise's writes). The
contract (each answers the application as Argo CD then shows it, or 400/404 naming the problem):
- POST /sandbox/people/sync {"application", "user", "resources"?: [{"kind", "name", "namespace"?, "group"?}]}
  a sync from the UI or CLI as `user`: live becomes Git's target (all resources, or those named); the
  Application's operationState and history say `initiatedBy.username: user`, as Argo CD shows it.
  A sync window that refuses manual syncs refuses it (403), as Argo CD does.
- POST /sandbox/people/commit {"application", "author", "message"?, "resources"?: [{..., "paths"?: [pointers]}]}
  a commit to Git that adopts the live values (of every differing field, or of the paths named): the
  targets change, the application's revision moves to a new SHA, and
  GET /api/v1/applications/{name}/revisions/{revision}/metadata answers its author, date and message.
- POST /sandbox/people/edit {"application", "kind", "name", "namespace"?, "group"?, "user", "paths"?: [pointers]}
  `kubectl edit` of the live object back to Git's values (every differing field, or the paths named),
  with a managedFields entry of manager `user` at the sandbox's time.
- POST /sandbox/people/delete {"application", "kind"?, "name"?, "namespace"?, "group"?}
  with a resource: it leaves Git and the cluster; without: the Application is deleted with its resources.
- the clock: POST /sandbox/clock {"advance_s"} (driftwise.sandbox.control).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox import diffing
from driftwise.sandbox.argocd import argo_error
from driftwise.sandbox.errors import SandboxError, UnknownResource
from driftwise.sandbox.http import bearer, json_response
from driftwise.sandbox.operations import record_sync
from driftwise.sandbox.state import Sandbox, rfc3339
from driftwise.sandbox.world import AppState, ManagedState, World
from protocol.models import SyncWindow
from protocol.syncwindows import sync_allowed

Pointer = str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pick(_Body):
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None
    group: str | None = None
    paths: list[Pointer] | None = Field(default=None, description="JSON Pointers; null = every differing field")


class SyncBody(_Body):
    application: str = Field(min_length=1)
    user: str = Field(min_length=1, max_length=200)
    resources: list[Pick] | None = None


class CommitBody(_Body):
    application: str = Field(min_length=1)
    author: str = Field(min_length=1, max_length=200)
    message: str = "adopt the live values"
    resources: list[Pick] | None = None


class EditBody(Pick):
    application: str = Field(min_length=1)
    user: str = Field(min_length=1, max_length=200)


class DeleteBody(_Body):
    application: str = Field(min_length=1)
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    group: str | None = None


def _parts(pointer: Pointer) -> list[str]:
    if pointer and not pointer.startswith("/"):
        raise SandboxError(f"path {pointer!r} is not a JSON Pointer (it starts with /)")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


_MISSING = object()


def _get(obj: Any, pointer: Pointer) -> Any:
    for part in _parts(pointer):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return _MISSING
    return obj


def _put(obj: Any, pointer: Pointer, value: Any) -> None:
    """Set (or, with _MISSING, remove) the value at `pointer`, creating objects on the way."""
    parts = _parts(pointer)
    if not parts:
        raise SandboxError("a path must name a field, not the whole object")
    for part in parts[:-1]:
        obj = obj[int(part)] if isinstance(obj, list) else obj.setdefault(part, {})
    last = parts[-1]
    if isinstance(obj, list):
        if value is _MISSING:
            obj.pop(int(last))
        elif int(last) < len(obj):
            obj[int(last)] = copy.deepcopy(value)
        else:
            obj.append(copy.deepcopy(value))
    elif value is _MISSING:
        obj.pop(last, None)
    else:
        obj[last] = copy.deepcopy(value)


def _copy_fields(source: dict[str, Any], dest: dict[str, Any], paths: list[Pointer] | None) -> dict[str, Any]:
    """`dest` with `source`'s values at `paths` (all compared fields when None)."""
    if paths is None:
        patch = diffing.diff_patch(diffing.comparable(dest), diffing.comparable(source))
        return diffing.merge_patch(dest, patch)
    out = copy.deepcopy(dest)
    for pointer in paths:
        _put(out, pointer, _get(source, pointer))
    return out


def _fields_v1(paths: list[Pointer]) -> dict[str, Any]:
    """managedFields' FieldsV1 owning these paths (a list is owned whole, as a field)."""
    owned: dict[str, Any] = {}
    for pointer in paths:
        node = owned
        for part in _parts(pointer):
            if part.isdigit():
                break
            node = node.setdefault(f"f:{part}", {})
    return owned


def _changed_paths(before: Any, after: Any, prefix: str = "") -> list[Pointer]:
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[Pointer] = []
        for key in sorted(set(before) | set(after)):
            if before.get(key, _MISSING) != after.get(key, _MISSING):
                out += _changed_paths(before.get(key), after.get(key), f"{prefix}/{key}")
        return out
    return [prefix] if before != after else []


def routes(sandbox: Sandbox) -> list[Route]:
    commits: dict[str, dict[str, Any]] = {}
    """revision -> its metadata, as GET .../revisions/{revision}/metadata answers it."""

    def world_or_error() -> World:
        if sandbox.world is None:
            raise UnknownResource("no scenario is active in the sandbox (activate one first)")
        return sandbox.world

    def app_of(world: World, name: str) -> AppState:
        app = world.apps.get(name)
        if app is None:
            raise UnknownResource(f"no application {name!r} in the active world "
                                  f"(applications: {', '.join(sorted(world.apps)) or 'none'})")
        return app

    Picked = list[tuple[ManagedState, list[Pointer] | None]]

    def picked(world: World, app: AppState, picks: list[Pick] | None) -> Picked:
        if picks is None:
            return [(r, None) for r in app.resources if app.resource_differs(r)]
        return [(world.managed(app.name, p.kind, p.name, p.namespace, p.group)[1], p.paths) for p in picks]

    def endpoint(model: type[_Body], act: Any) -> Any:
        async def handler(request: Request) -> Response:
            what = request.url.path.rsplit("/", 1)[-1]
            try:
                raw = json.loads(await request.body() or b"{}")
                body = model.model_validate(raw)
            except ValueError as exc:
                if isinstance(exc, ValidationError):
                    err = exc.errors()[0]
                    where = ".".join(str(p) for p in err["loc"]) or "body"
                    return json_response({"error": f"people/{what}: field {where!r}: {err['msg']}"}, 400)
                return json_response({"error": f"people/{what}: the body is not a JSON object"}, 400)
            try:
                async with sandbox.lock:
                    return await act(world_or_error(), body)
            except UnknownResource as exc:
                return json_response({"error": f"people/{what}: {exc}"}, 404)
            except (SandboxError, ValueError, IndexError, TypeError) as exc:
                return json_response({"error": f"people/{what}: {exc}"}, 400)

        return handler

    async def sync(world: World, body: SyncBody) -> Response:
        app = app_of(world, body.application)
        project = world.projects.get(app.project) or {}
        windows = [SyncWindow.model_validate(w) for w in (project.get("spec") or {}).get("syncWindows") or []]
        dest = (app.application.get("spec") or {}).get("destination") or {}
        if not sync_allowed(windows, sandbox.clock.now(), app.name, dest.get("namespace", ""),
                            dest.get("server", ""), manual=True):
            return argo_error(403, "cannot sync: blocked by sync window")
        selected = [{"kind": r.kind, "name": r.name, "namespace": r.namespace, "group": r.group}
                    for r, _ in picked(world, app, body.resources)] if body.resources else []
        world.sync(app, selected)
        record_sync(app, body.user, {"resources": selected} if selected else {}, rfc3339(sandbox.clock.now()))
        return json_response(app.application)

    async def commit(world: World, body: CommitBody) -> Response:
        app = app_of(world, body.application)
        chosen = picked(world, app, body.resources)
        if not chosen:
            raise SandboxError(f"application {app.name!r} has no differing resource to adopt")
        for resource, paths in chosen:
            new_target = _copy_fields(resource.live, resource.target, paths)
            resource.target.clear()
            resource.target.update(new_target)
        sync_status = app.application.setdefault("status", {}).setdefault("sync", {})
        old = str(sync_status.get("revision") or "")
        revision = hashlib.sha1(f"{old}\n{body.author}\n{body.message}\n{len(commits)}".encode()).hexdigest()
        sync_status["revision"] = revision
        commits[revision] = {"author": body.author, "date": rfc3339(sandbox.clock.now()), "message": body.message,
                             "tags": []}
        app.refresh_status()
        return json_response(app.application)

    async def edit(world: World, body: EditBody) -> Response:
        app, resource = world.managed(body.application, body.kind, body.name, body.namespace, body.group)
        new_live = _copy_fields(resource.target, resource.live, body.paths)
        edited = body.paths or _changed_paths(diffing.comparable(resource.live), diffing.comparable(new_live))
        meta = new_live.setdefault("metadata", {})
        meta["managedFields"] = [*(meta.get("managedFields") or []), {
            "manager": body.user, "operation": "Update", "apiVersion": resource.live.get("apiVersion", "v1"),
            "time": rfc3339(sandbox.clock.now()), "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(edited)}]
        world.patch_live(app, resource, diffing.diff_patch(resource.live, new_live))
        return json_response(app.application)

    async def delete(world: World, body: DeleteBody) -> Response:
        app = app_of(world, body.application)
        if body.kind is None and body.name is None:
            world.remove_application(app)
            return json_response({"deleted": app.name})
        if not body.kind or not body.name:
            raise SandboxError('send both "kind" and "name" to delete a resource, or neither to delete the application')
        _, resource = world.managed(app.name, body.kind, body.name, body.namespace, body.group)
        world.remove_resource(app, resource)
        return json_response(app.application)

    async def revision_metadata(request: Request) -> Response:
        # Argo CD's own API (bearer token like the rest of it): the metadata of a commit of the app's source
        if bearer(request) != sandbox.tokens.argocd:
            return argo_error(401, "no session information")
        found = commits.get(request.path_params["revision"])
        if found is None:
            return argo_error(404, f"revision {request.path_params['revision']} not found")
        return json_response(found)

    return [
        Route("/sandbox/people/sync", endpoint(SyncBody, sync), methods=["POST"]),
        Route("/sandbox/people/commit", endpoint(CommitBody, commit), methods=["POST"]),
        Route("/sandbox/people/edit", endpoint(EditBody, edit), methods=["POST"]),
        Route("/sandbox/people/delete", endpoint(DeleteBody, delete), methods=["POST"]),
        Route("/api/v1/applications/{name}/revisions/{revision}/metadata", revision_metadata, methods=["GET"]),
    ]
