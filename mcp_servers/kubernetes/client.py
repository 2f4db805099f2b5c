"""A typed async client of the Kubernetes API server's REST API (read verbs only).

Resource paths come from API discovery (`GET /api/v1`, `GET /apis/{group}/{version}`), as kubectl
does; when discovery is unavailable the plural is derived from the kind the way Kubernetes names them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
