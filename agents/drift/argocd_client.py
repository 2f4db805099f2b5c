"""A typed, read-only client for the parts of the Argo CD API the drift agent reads.

Only GETs live here: acting on verdicts (sync, PATCH) belongs to the apply step, not to observe.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.drift.config import ArgoCDConfig
from agents.drift.errors import ObserveError
from protocol.tls import verify_context

_M = TypeVar("_M", bound=BaseModel)


class _Loose(BaseModel):
    # Argo CD objects carry many fields we do not read; keep them, do not fail on them.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ObjectMeta(_Loose):
    name: str
    namespace: str | None = None


class AppResourceStatus(_Loose):
    group: str = ""
    version: str = ""
    kind: str
    namespace: str | None = None
    name: str
    status: str | None = None


class ArgoApplication(_Loose):
    metadata: ObjectMeta
    spec: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)

    @property
    def project(self) -> str:
        return str(self.spec.get("project") or "default")

    @property
    def source(self) -> dict[str, Any]:
        src = self.spec.get("source")
        if isinstance(src, dict):
            return src
        sources = self.spec.get("sources")
        return sources[0] if isinstance(sources, list) and sources and isinstance(sources[0], dict) else {}

    @property
    def destination(self) -> dict[str, Any]:
        dest = self.spec.get("destination")
        return dest if isinstance(dest, dict) else {}

    @property
    def resources(self) -> list[AppResourceStatus]:
        raw = self.status.get("resources") or []
        return [AppResourceStatus.model_validate(r) for r in raw if isinstance(r, dict)]

    @property
    def revision(self) -> str:
        sync = self.status.get("sync") or {}
        return str(sync.get("revision") or "")


class AppProject(_Loose):
    metadata: ObjectMeta
    spec: dict[str, Any] = Field(default_factory=dict)

    @property
    def sync_windows(self) -> list[dict[str, Any]]:
        return [w for w in self.spec.get("syncWindows") or [] if isinstance(w, dict)]


class ManagedResource(_Loose):
    """One item of `managed-resources`: target (Git) and live state as JSON strings, as Argo CD sends them."""

    group: str = ""
    version: str = ""
    kind: str
    namespace: str | None = None
    name: str
    target_state: str | None = Field(default=None, alias="targetState")
    live_state: str | None = Field(default=None, alias="liveState")
    modified: bool | None = None

    def target(self) -> dict[str, Any] | None:
        return _json_object(self.target_state)

    def live(self) -> dict[str, Any] | None:
        return _json_object(self.live_state)


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text or text == "null":
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def shared_client(config: ArgoCDConfig, timeout_s: float = 5.0) -> httpx.AsyncClient:
    """The drift agent's one httpx client. Argo CD's origin gets its own transport, verified its way
    (argocd.verify_tls, argocd.ca_bundle); every other origin the default way. Every client of Argo
    CD in the drift agent (observe, acting, re-read) goes through this client."""
    url = httpx.URL(config.url)
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    if url.scheme == "https":
        origin = f"https://{url.host}" + (f":{url.port}" if url.port else "")
        mounts[origin] = httpx.AsyncHTTPTransport(verify=verify_context(config.verify_tls, config.ca_bundle))
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), mounts=mounts)


class ArgoCDClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str | None, timeout_s: float) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout_s

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self._base}{path}"
        try:
            resp = await self._http.get(url, params=params, headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ObserveError("argocd_unreachable", f"Argo CD {url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 404:
            raise ObserveError("argocd_not_found", f"Argo CD {path}: not found")
        if resp.status_code in (401, 403):
            raise ObserveError("argocd_auth", f"Argo CD {path}: {resp.status_code} (check argocd.token)")
        if resp.status_code >= 400:
            raise ObserveError("argocd_error", f"Argo CD {path}: HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError as exc:
            raise ObserveError("argocd_invalid", f"Argo CD {path}: body is not JSON") from exc

    async def application(self, name: str, app_namespace: str | None = None) -> ArgoApplication:
        params = {"appNamespace": app_namespace} if app_namespace else None
        return _validate(ArgoApplication, await self._get(f"/api/v1/applications/{name}", params), "application")

    async def application_json(self, name: str, app_namespace: str | None = None) -> dict[str, Any]:
        """The Application exactly as Argo CD returns it (acting reads spec and operation state from it)."""
        params = {"appNamespace": app_namespace} if app_namespace else None
        body = await self._get(f"/api/v1/applications/{name}", params)
        if not isinstance(body, dict):
            raise ObserveError("argocd_invalid", f"Argo CD application {name} is not a JSON object")
        return body

    async def revision_metadata(self, name: str, revision: str, app_namespace: str | None = None
                                ) -> RevisionMetadata:
        """Who committed a revision of the application's source, and when (Argo CD reads it from Git)."""
        params = {"appNamespace": app_namespace} if app_namespace else None
        return _validate(RevisionMetadata, await self._get(f"/api/v1/applications/{name}/revisions/{revision}/metadata",
                                                           params), "revision metadata")

    async def project(self, name: str) -> AppProject:
        return _validate(AppProject, await self._get(f"/api/v1/projects/{name}"), "project")

    async def managed_resources(self, name: str, app_namespace: str | None = None) -> list[ManagedResource]:
        params = {"appNamespace": app_namespace} if app_namespace else None
        body = await self._get(f"/api/v1/applications/{name}/managed-resources", params)
        items = body.get("items") if isinstance(body, dict) else None
        try:
            return [ManagedResource.model_validate(i) for i in items or []]
        except (ValidationError, TypeError) as exc:
            raise ObserveError("argocd_invalid", f"Argo CD managed-resources of {name}: {exc}") from exc


class RevisionMetadata(_Loose):
    """`GET /api/v1/applications/{name}/revisions/{revision}/metadata`: the commit Argo CD shows."""

    author: str = ""
    date: str | None = None
    message: str = ""


def _validate(model: type[_M], body: Any, what: str) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        detail = exc.errors()[0]
        raise ObserveError("argocd_invalid", f"Argo CD {what} is not what the API documents: {detail}") from exc
