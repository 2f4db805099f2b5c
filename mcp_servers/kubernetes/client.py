"""A typed async client of the Kubernetes API server's REST API (read verbs only).

Resource paths come from API discovery (`GET /api/v1`, `GET /apis/{group}/{version}`), as kubectl
does; when discovery is unavailable the plural is derived from the kind the way Kubernetes names them.
A kind's schema comes from its CustomResourceDefinition, else from the OpenAPI v3 document the API
server publishes for its group version (readable by any authenticated user, where CRDs may not be).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mcp_servers.common.errors import BackendBadResponse, BackendRejected
from mcp_servers.common.http import get_json, parse

BACKEND = "kubernetes"
Obj = dict[str, Any]


class ResourceType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    group: str
    version: str
    plural: str
    namespaced: bool


class _ApiResource(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    kind: str
    namespaced: bool = True


class _ApiResourceList(BaseModel):
    model_config = ConfigDict(extra="ignore")
    resources: list[_ApiResource] = Field(default_factory=list)


class _ObjectList(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[Obj] = Field(default_factory=list)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _CrdValidation(_Loose):
    open_api_v3_schema: Obj = Field(alias="openAPIV3Schema")


class _CrdVersion(_Loose):
    name: str
    served: bool = True
    schema_: _CrdValidation | None = Field(default=None, alias="schema")


class _CrdNames(_Loose):
    kind: str


class _CrdSpec(_Loose):
    group: str
    names: _CrdNames
    versions: list[_CrdVersion] = Field(default_factory=list)


class _Crd(_Loose):
    spec: _CrdSpec


class _OpenApiPath(_Loose):
    server_relative_url: str = Field(alias="serverRelativeURL")


class _OpenApiDiscovery(_Loose):
    paths: dict[str, _OpenApiPath] = Field(default_factory=dict)


class _Components(_Loose):
    schemas: dict[str, Obj] = Field(default_factory=dict)


class _OpenApiDocument(_Loose):
    components: _Components = Field(default_factory=_Components)


class KindSchema(BaseModel):
    """A kind's schema as found (`root`, with the `components` its references point into), or why not."""

    model_config = ConfigDict(extra="forbid")
    root: Obj | None = None
    components: Obj = Field(default_factory=dict)
    source: str = ""
    misses: list[str] = Field(default_factory=list, description="each place looked in without finding it, and why")


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def pluralize(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy", "uy")):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def _base(group: str, version: str) -> str:
    return f"/api/{version}" if group == "" else f"/apis/{group}/{version}"


def _seg(value: str) -> str:
    return quote(value, safe="")


class KubernetesClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._discovered: dict[tuple[str, str], dict[str, _ApiResource] | None] = {}

    async def resource_type(self, api_version: str, kind: str, namespaced_hint: bool) -> ResourceType:
        group, version = split_api_version(api_version)
        key = (group, version)
        if key not in self._discovered:
            try:
                body = await get_json(self._http, BACKEND, _base(group, version), not_found_ok=True)
            except BackendRejected:  # discovery forbidden to us: derive the plural instead
                body = None
            listing = None if body is None else parse(BACKEND, _ApiResourceList, body, _base(group, version))
            self._discovered[key] = (
                None if listing is None else {r.kind: r for r in listing.resources if "/" not in r.name}
            )
        found = (self._discovered[key] or {}).get(kind)
        if found is not None:
            return ResourceType(group=group, version=version, plural=found.name, namespaced=found.namespaced)
        return ResourceType(group=group, version=version, plural=pluralize(kind), namespaced=namespaced_hint)

    def _path(self, rt: ResourceType, namespace: str | None, name: str | None = None) -> str:
        path = _base(rt.group, rt.version)
        if rt.namespaced and namespace:
            path += f"/namespaces/{_seg(namespace)}"
        path += f"/{rt.plural}"
        return path + (f"/{_seg(name)}" if name else "")

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> Obj | None:
        """The object, or None when the API answers 404."""
        rt = await self.resource_type(api_version, kind, namespace is not None)
        body = await get_json(self._http, BACKEND, self._path(rt, namespace, name), not_found_ok=True)
        if body is not None and not isinstance(body, dict):
            raise BackendBadResponse(BACKEND, f"{kind} {name} is not a JSON object")
        return body

    async def list(
        self, api_version: str, kind: str, namespace: str | None, *, field_selector: str | None = None
    ) -> list[Obj]:
        """Objects of a kind (in a namespace, or cluster-wide); an unknown resource type lists as empty."""
        rt = await self.resource_type(api_version, kind, namespace is not None)
        params = {"fieldSelector": field_selector} if field_selector else None
        path = self._path(rt, namespace)
        body = await get_json(self._http, BACKEND, path, params, not_found_ok=True)
        return [] if body is None else parse(BACKEND, _ObjectList, body, path).items

    async def kind_schema(self, api_version: str, kind: str) -> KindSchema:
        """The kind's OpenAPI v3 schema: its CRD's for that version, else the published OpenAPI document's."""
        group, version = split_api_version(api_version)
        misses: list[str] = []
        if group:  # a core kind has no CRD
            found = await self._crd_schema(group, version, api_version, kind, misses)
            if found is not None:
                return found
        return await self._published_schema(group, version, kind, misses)

    async def _crd_schema(self, group: str, version: str, api_version: str, kind: str,
                          misses: list[str]) -> KindSchema | None:
        rt = await self.resource_type(api_version, kind, True)
        name = f"{rt.plural}.{group}"
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{_seg(name)}"
        try:
            body = await get_json(self._http, BACKEND, path, not_found_ok=True)
        except BackendRejected as exc:  # reading CRDs needs a grant of its own; /openapi/v3 may still answer
            misses.append(f"CustomResourceDefinition {name} could not be read ({exc.cause})")
            return None
        if body is None:
            misses.append(f"no CustomResourceDefinition {name}")
            return None
        crd = parse(BACKEND, _Crd, body, path)
        if crd.spec.names.kind != kind or crd.spec.group != group:
            misses.append(f"CustomResourceDefinition {name} defines {crd.spec.names.kind} in {crd.spec.group}")
            return None
        served = next((v for v in crd.spec.versions if v.name == version and v.served), None)
        if served is None or served.schema_ is None:
            listed = ", ".join(v.name for v in crd.spec.versions if v.served) or "none"
            misses.append(f"CustomResourceDefinition {name} serves no schema for {version} (served: {listed})")
            return None
        return KindSchema(root=served.schema_.open_api_v3_schema, source=f"customresourcedefinitions/{name}")

    async def _published_schema(self, group: str, version: str, kind: str, misses: list[str]) -> KindSchema:
        key = f"apis/{group}/{version}" if group else f"api/{version}"
        try:
            body = await get_json(self._http, BACKEND, "/openapi/v3", not_found_ok=True)
        except BackendRejected as exc:
            return KindSchema(misses=[*misses, f"/openapi/v3 could not be read ({exc.cause})"])
        if body is None:
            return KindSchema(misses=[*misses, "the API server serves no /openapi/v3"])
        entry = parse(BACKEND, _OpenApiDiscovery, body, "/openapi/v3").paths.get(key)
        if entry is None:
            return KindSchema(misses=[*misses, f"/openapi/v3 lists no document for {key}"])
        url = entry.server_relative_url
        # The group version's own document on this server (the hash query aside); anything else is not followed.
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or parts.path != f"/openapi/v3/{key}":
            raise BackendBadResponse(BACKEND, f"/openapi/v3 gives {key} a URL off this server: {url[:100]!r}")
        doc = await get_json(self._http, BACKEND, url, not_found_ok=True)
        if doc is None:
            return KindSchema(misses=[*misses, f"the OpenAPI document for {key} is listed but not served"])
        schemas = parse(BACKEND, _OpenApiDocument, doc, f"/openapi/v3/{key}").components.schemas
        for name, schema in schemas.items():
            gvks = schema.get("x-kubernetes-group-version-kind")
            for gvk in gvks if isinstance(gvks, list) else []:
                if isinstance(gvk, dict) and (gvk.get("group") or "", gvk.get("version"), gvk.get("kind")) == (
                        group, version, kind):
                    return KindSchema(root=schema, components=schemas, source=f"openapi/v3/{key} {name}")
        return KindSchema(misses=[*misses, f"the OpenAPI document for {key} has no schema for {kind}"])
