"""The Kubernetes API server's read side: version, discovery, OpenAPI v2/v3, get and list with label and field
selectors, server-side Table printing, and bounded watch streams.

A watch (`?watch=1`) answers newline-delimited WatchEvents: from resourceVersion "" or "0" first an ADDED
event per object, from a later resourceVersion the changes after it that the world's change feed still
holds, then every change as it happens (a sync through Argo CD, a /sandbox/live patch). It ends after the
request's `timeoutSeconds` (or client-go's `timeout`), at most MAX_WATCH_S, and when another world is
activated or the sandbox stops.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from driftwise.sandbox import error_bodies
from driftwise.sandbox.changes import Change
from driftwise.sandbox.http import backend, bearer, json_response
from driftwise.sandbox.kinds import KNOWN, ResourceType
from driftwise.sandbox.kube_openapi import BuiltinSchemas, v3_path, version_info
from driftwise.sandbox.kube_table import TableRequest, table, wants_table
from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import World

Obj = dict[str, Any]
_USER = "system:serviceaccount:driftwise:driftwise"
MAX_WATCH_S = 300.0
"""The longest a watch stream stays open; a request's timeoutSeconds may only shorten it."""
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def status_error(code: int, message: str, details: Obj | None = None) -> Response:
    return json_response(error_bodies.kubernetes(code, message, details), code)


def _types(world: World) -> list[ResourceType]:
    """Every resource type served: the well-known ones, those the world's CRDs define, then whatever it holds."""
    types = list(KNOWN)
    for t in [*world.crds.types(), *world.object_types()]:
        if not any(k.group == t.group and k.version == t.version and k.kind == t.kind for k in types):
            types.append(t)
    return types


def _resource_list(t_list: list[ResourceType], group_version: str) -> Obj:
    return {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": [
            {"name": t.plural, "singularName": t.singular or t.kind.lower(), "namespaced": t.namespaced,
             "kind": t.kind, "verbs": list(t.verbs), **({"shortNames": list(t.short_names)} if t.short_names else {}),
             **({"categories": list(t.categories)} if t.categories else {})}
            for t in t_list
        ],
    }


# --- selectors -------------------------------------------------------------------------------

_SET_REQ = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str) -> Any:
    """A Kubernetes label selector (=, ==, !=, in, notin, exists, !exists) as a predicate; ValueError if bad."""
    reqs = []
    for part in _split_selector(selector):
        m = _SET_REQ.match(part)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((key, op, values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            reqs.append((key.strip(), "!=", {value.strip()}))
        elif "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append((key.strip(), "=", {value.strip()}))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!exists", set()))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", part):
            reqs.append((part, "exists", set()))
        else:
            raise ValueError(f"unable to parse requirement: {part!r}")

    def match(labels: dict[str, str]) -> bool:
        for key, op, values in reqs:
            has, value = key in labels, labels.get(key)
            if (op in ("=", "in") and (not has or value not in values)) or (
                op in ("!=", "notin") and has and value in values) or (
                op == "exists" and not has) or (op == "!exists" and has):
                return False
        return True

    return match


def _field(obj: Obj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    return str(node).lower() if isinstance(node, bool) else str(node)


def field_matcher(selector: str) -> Any:
    reqs = []
    for part in _split_selector(selector):
        if "!=" in part:
            key, value = part.split("!=", 1)
            reqs.append((key.strip(), False, value.strip()))
        elif "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append((key.strip(), True, value.strip()))
        else:
            raise ValueError(f"invalid field selector: {part!r}")
    return lambda obj: all((_field(obj, k) == v) == eq for k, eq, v in reqs)


# --- watch -----------------------------------------------------------------------------------


def watch_bound(query: Any) -> float:
    """How long a watch may stay open: timeoutSeconds, else client-go's `timeout` (a Go duration), capped."""
    if query.get("timeoutSeconds"):
        try:
            requested = float(query["timeoutSeconds"])
        except ValueError:
            raise ValueError(f"timeoutSeconds: invalid value {query['timeoutSeconds']!r}: must be an integer") \
                from None
    elif query.get("timeout"):
        text = query["timeout"]
        parts = _GO_DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"timeout: invalid duration {text!r} (e.g. 30s, 1m0s)")
        requested = sum(float(n) * _GO_UNITS[u] for n, u in parts)
    else:
        requested = MAX_WATCH_S
    return max(0.0, min(requested, MAX_WATCH_S))


def _is_watch(query: Any) -> bool:
    return query.get("watch", "").lower() in ("1", "true")


# --- routes ----------------------------------------------------------------------------------


def routes(sandbox: Sandbox) -> list[Route]:
    def authorized(request: Request) -> bool:
        # kubectl never sends a bearer token over plain HTTP (kubernetes/kubectl#744), so requests without
        # credentials are the anonymous user, granted read like a cluster binding system:anonymous to view;
        # Tokens.kube_anonymous=False turns that off. A wrong token is always 401.
        if "authorization" not in request.headers:
            return sandbox.tokens.kube_anonymous
        return bearer(request) == sandbox.tokens.kubernetes

    api = backend(
        sandbox, "kubernetes",
        authorized=authorized,
        unauthorized=lambda r: status_error(401, "Unauthorized"),
        no_world=lambda: status_error(404, "no scenario is active in the sandbox"),
    )

    schemas = BuiltinSchemas()

    async def version(request: Request) -> Response:
        # readable without credentials on every cluster (system:public-info-viewer), and without a scenario
        world = sandbox.world
        if world is not None and "kubernetes" in world.down:
            return Response("kubernetes is unavailable (scenario marks it down)\n", status_code=503,
                            media_type="text/plain")
        return json_response(version_info())

    @api
    async def versions(request: Request, world: World) -> Response:
        return json_response({"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                              "serverAddress": request.url.netloc}]})

    @api
    async def groups(request: Request, world: World) -> Response:
        by_group: dict[str, list[str]] = {}
        for t in _types(world):
            if t.group and t.version not in by_group.setdefault(t.group, []):
                by_group[t.group].append(t.version)
        out = []
        for group, versions_ in by_group.items():
            vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions_]
            out.append({"name": group, "versions": vs, "preferredVersion": vs[0]})
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": out})

    @api
    async def group(request: Request, world: World) -> Response:
        name = request.path_params["group"]
        vs = []
        for t in _types(world):
            if t.group == name and not any(v["version"] == t.version for v in vs):
                vs.append({"groupVersion": f"{name}/{t.version}", "version": t.version})
        if not vs:
            return status_error(404, "the server could not find the requested resource")
        return json_response({"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": vs,
                              "preferredVersion": vs[0]})

    @api
    async def core_resources(request: Request, world: World) -> Response:
        return json_response(_resource_list([t for t in _types(world) if not t.group], "v1"))

    @api
    async def group_resources(request: Request, world: World) -> Response:
        g, v = request.path_params["group"], request.path_params["version"]
        ts = [t for t in _types(world) if t.group == g and t.version == v]
        if not ts:
            return status_error(404, "the server could not find the requested resource")
        return json_response(_resource_list(ts, f"{g}/{v}"))

    async def serve(request: Request, world: World, group: str, version: str) -> Response:
        p = request.path_params
        namespace, plural, name = p.get("namespace"), p["plural"], p.get("name")
        rtype = next((t for t in _types(world) if t.group == group and t.version == version and t.plural == plural),
                     None)
        gr = f"{plural}.{group}" if group else plural
        if rtype is None:
            return status_error(404, "the server could not find the requested resource")
        if request.method != "GET":
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(request.method,
                                                                                                 "update")
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            subject = f'{gr} "{name}"' if name else gr
            return status_error(403, f'{subject} is forbidden: User "{_USER}" cannot {verb} resource "{plural}" '
                                     f'in API group "{group}"{where}',
                                {"name": name or "", "group": group, "kind": plural})
        if namespace is not None and not rtype.namespaced:
            return status_error(404, "the server could not find the requested resource")
        candidates = world.objects_of(group, rtype.kind, namespace)
        q = request.query_params
        as_table = wants_table(request.headers.get("accept", ""), q.get("includeObject"))
        if as_table is not None and as_table.include_object not in ("None", "Metadata", "Object"):
            return status_error(400, f'includeObject: unsupported value "{as_table.include_object}": '
                                     'send None, Metadata or Object')
        rv = str(world.resource_version)
        if name is not None and not _is_watch(q):
            found = next((o for o in candidates if o["metadata"]["name"] == name), None)
            if found is None or (rtype.namespaced and namespace is None):
                return status_error(404, f'{gr} "{name}" not found', {"name": name, "group": group, "kind": plural})
            if as_table is not None:
                return json_response(render(world, rtype, [_served(world, found, rtype)], as_table, rv))
            return json_response(_served(world, found, rtype))
        try:
            lsel = label_matcher(q.get("labelSelector", ""))
            fsel = field_matcher(q.get("fieldSelector", "") if name is None
                                 else ",".join(filter(None, [q.get("fieldSelector"), f"metadata.name={name}"])))
            bound_s = watch_bound(q) if _is_watch(q) else 0.0
        except ValueError as exc:
            return status_error(400, str(exc))

        def selected(o: Obj) -> bool:
            meta = o.get("metadata") or {}
            return ((namespace is None or meta.get("namespace") == namespace) and lsel(meta.get("labels") or {})
                    and fsel(o))

        if _is_watch(q):
            return watch(world, rtype, q.get("resourceVersion", ""), candidates, selected, as_table, bound_s)
        items = [_served(world, o, rtype) for o in candidates if selected(o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if as_table is not None:
            return json_response(render(world, rtype, items, as_table, rv))
        for item in items:  # items of a List carry no apiVersion/kind of their own
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return json_response({"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version,
                              "metadata": {"resourceVersion": str(world.resource_version)}, "items": items})

    def render(world: World, rtype: ResourceType, items: list[Obj], request: TableRequest, rv: str) -> Obj:
        return table(rtype.group, rtype.kind, items, sandbox.clock.now(), request, rv,
                     world.crds.printer_columns(rtype.group, rtype.version, rtype.kind))

    def watch(world: World, rtype: ResourceType, since: str, current: list[Obj], selected: Any,
              as_table: TableRequest | None, bound_s: float) -> Response:
        try:
            start = int(since) if since else 0
        except ValueError:
            return status_error(400, f'resourceVersion: invalid value "{since}": must be an integer')
        # subscribe before reading the backlog, so no change falls between the two
        subscription = world.changes.subscribe()
        if start == 0:
            backlog = [Change(int(o["metadata"].get("resourceVersion") or 0), "ADDED", o) for o in current]
        else:
            backlog = world.changes.since(start)
        seen = {c.resource_version for c in backlog}

        def event(change: Change) -> bytes | None:
            obj = change.object
            if obj.get("kind") != rtype.kind or world.object_type(obj).group != rtype.group or not selected(obj):
                return None
            served = _served(world, obj, rtype)
            body: Obj = served if as_table is None else render(world, rtype, [served], as_table,
                                                                 str(change.resource_version))
            return json.dumps({"type": change.type, "object": body}, separators=(",", ":")).encode() + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            try:
                for change in backlog:
                    if (line := event(change)) is not None:
                        yield line
                async with asyncio.timeout(bound_s):
                    while (change := await subscription.queue.get()) is not None:
                        if change.resource_version in seen:
                            continue
                        if (line := event(change)) is not None:
                            yield line
            except TimeoutError:
                pass  # the bound: the stream ends as a watch past its timeoutSeconds does
            finally:
                subscription.close()

        return StreamingResponse(stream(), media_type="application/json",
                                 headers={"Cache-Control": "no-cache, private"})

    @api
    async def core(request: Request, world: World) -> Response:
        return await serve(request, world, "", "v1")

    @api
    async def grouped(request: Request, world: World) -> Response:
        return await serve(request, world, request.path_params["group"], request.path_params["version"])

    def served_group_versions(world: World) -> list[tuple[str, str]]:
        return list(dict.fromkeys((t.group, t.version) for t in _types(world)))

    @api
    async def openapi_discovery(request: Request, world: World) -> Response:
        paths = {}
        for g, v in served_group_versions(world):
            found = await asyncio.to_thread(schemas.document, g, v)
            if found is not None:
                paths[v3_path(g, v)] = {"serverRelativeURL": f"/openapi/v3/{v3_path(g, v)}?hash={found[1]}"}
        paths.update(world.crds.discovery()["paths"])
        return json_response({"paths": paths})

    async def openapi_for(world: World, g: str, v: str) -> Response:
        found = world.crds.document(g, v)
        if found is None and (g, v) in served_group_versions(world):
            found = await asyncio.to_thread(schemas.document, g, v)
        if found is None:
            return status_error(404, f"the server could not find the requested resource (no OpenAPI document for "
                                     f"{v3_path(g, v)})")
        doc, digest = found
        return json_response(doc, headers={"ETag": f'"{digest}"'})

    @api
    async def openapi_document(request: Request, world: World) -> Response:
        return await openapi_for(world, request.path_params["group"], request.path_params["version"])

    @api
    async def openapi_core(request: Request, world: World) -> Response:
        return await openapi_for(world, "", request.path_params["version"])

    @api
    async def openapi_v2(request: Request, world: World) -> Response:
        # JSON only: client-go's protobuf form of the v2 document is not served (kubectl uses v3 since 1.27)
        return json_response(await asyncio.to_thread(schemas.swagger, world.crds.documents()))

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/version", version), Route("/openapi/v2", openapi_v2),
        Route("/openapi/v3", openapi_discovery), Route("/openapi/v3/apis/{group}/{version}", openapi_document),
        Route("/openapi/v3/api/{version}", openapi_core),
        Route("/api", versions), Route("/apis", groups), Route("/api/v1", core_resources),
        Route("/apis/{group}", group), Route("/apis/{group}/{version}", group_resources),
        Route("/api/v1/namespaces/{namespace}/{plural}/{name}", core, methods=methods),
        Route("/api/v1/namespaces/{namespace}/{plural}", core, methods=methods),
        Route("/api/v1/{plural}/{name}", core, methods=methods),
        Route("/api/v1/{plural}", core, methods=methods),
        Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}", grouped, methods=methods),
        Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}", grouped, methods=methods),
        Route("/apis/{group}/{version}/{plural}/{name}", grouped, methods=methods),
        Route("/apis/{group}/{version}/{plural}", grouped, methods=methods),
    ]


def _served(world: World, obj: Obj, rtype: ResourceType) -> Obj:
    out = world.masked_object(obj)
    out["apiVersion"] = rtype.group_version
    out["kind"] = rtype.kind
    return out
