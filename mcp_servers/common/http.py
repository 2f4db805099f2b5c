"""The one HTTP path every backend client goes through: per-call timeout, auth header, and the
mapping of every transport/HTTP failure onto the error taxonomy, naming the backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from mcp_servers.common.errors import (
    BackendBadResponse,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
)
from protocol.tls import verify_context


class BackendConfig(BaseModel):
    """How to reach one backend's HTTP API (the CLI fills it from settings)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    token: SecretStr | None = None
    auth_scheme: str = Field(default="Bearer", description="Authorization scheme; PagerDuty uses 'Token token='")
    timeout_s: float = Field(default=2.0, gt=0)
    verify_tls: bool = True
    ca_bundle: Path | None = Field(default=None, description="PEM CAs of the backend's certificate; null = system")

    def headers(self) -> dict[str, str]:
        if self.token is None:
            return {}
        secret = self.token.get_secret_value()
        if self.auth_scheme.endswith("="):
            return {"Authorization": f"{self.auth_scheme}{secret}"}
        return {"Authorization": f"{self.auth_scheme} {secret}"}


def make_http_client(config: BackendConfig, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The process's one client for this backend; `transport` lets unit tests use httpx.MockTransport."""
    return httpx.AsyncClient(
        base_url=config.url.rstrip("/"),
        headers={"Accept": "application/json", **config.headers()},
        timeout=httpx.Timeout(config.timeout_s),
        verify=verify_context(config.verify_tls, config.ca_bundle),
        transport=transport,
        follow_redirects=False,
    )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _error_text(response: httpx.Response) -> str:
    """The backend's own error message when its body carries one (each API names it differently)."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # PagerDuty: {"error": {"message", "errors"}}
            error = error.get("message")
        message = error or body.get("message")  # Prometheus: error; Grafana, Kubernetes Status: message
        if isinstance(message, str) and message:
            kind = body.get("errorType") or body.get("reason")
            return _short(f"{kind}: {message}" if isinstance(kind, str) and kind else message)
    return _short(response.text)


async def get_json(
    http: httpx.AsyncClient, backend: str, path: str, params: Any = None, *, not_found_ok: bool = False
) -> Any:
    """GET `path` and return its JSON; None for a 404 when `not_found_ok`. Raises a BackendError subclass."""
    try:
        response = await http.get(path, params=params)
    except httpx.TimeoutException:
        raise BackendTimeout(backend, f"no answer from {http.base_url} within {http.timeout.read}s") from None
    except httpx.TransportError as exc:
        raise BackendUnavailable(backend, f"cannot reach {http.base_url}: {type(exc).__name__} {exc}") from None
    if response.status_code == 404 and not_found_ok:
        return None
    if response.status_code >= 500:
        raise BackendUnavailable(backend, f"HTTP {response.status_code} from {path}: {_error_text(response)}")
    if response.status_code >= 400:
        raise BackendRejected(backend, f"HTTP {response.status_code} from {path}: {_error_text(response)}")
    try:
        return response.json()
    except ValueError:
        raise BackendBadResponse(backend, f"{path} did not return JSON: {_short(response.text)}") from None


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(shape: Any) -> TypeAdapter[Any]:
    # Building a TypeAdapter builds its whole validator (about a millisecond); the shapes are a
    # handful of fixed types, so each is built once per process.
    try:
        adapter = _ADAPTERS.get(shape)
    except TypeError:  # an unhashable shape: build it every time
        return TypeAdapter(shape)
    if adapter is None:
        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    return adapter


def parse(backend: str, shape: Any, body: Any, what: str) -> Any:
    """Validate a backend's JSON against `shape` (a model or type); a mismatch names the backend and the field."""
    try:
        return _adapter(shape).validate_python(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise BackendBadResponse(backend, f"{what}: {first['msg']} at {where}") from None
