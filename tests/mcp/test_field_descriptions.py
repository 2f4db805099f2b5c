"""The field_descriptions tool in process: the /openapi/v3 fallback, bounding, bad input, and the schema walk."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from mcp import Client

from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from mcp_servers.common import BackendConfig, Limits
from mcp_servers.kubernetes import KubernetesServerConfig, build_server
from mcp_servers.kubernetes.schema import SchemaWalker, pointer_segments
from protocol.context import FieldDescriptions
from tests.support.sandbox_clients import CRD_SCENARIOS

ISTIO = {"api_version": "security.istio.io/v1", "kind": "AuthorizationPolicy"}
Rewrite = Callable[[httpx.Request], httpx.Response | None]


class _Filtered(httpx.AsyncBaseTransport):
    """The sandbox's Kubernetes API, with some answers replaced (an RBAC refusal, a rogue document)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rewrite: Rewrite) -> None:
        self._inner, self._rewrite = inner, rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._rewrite(request) or await self._inner.handle_async_request(request)


@pytest.fixture
async def kube() -> AsyncIterator[httpx.AsyncBaseTransport]:
    sandbox = Sandbox()
    sandbox.load([CRD_SCENARIOS])
    await sandbox.activate("c01-istio-authorizationpolicy-opened")
    yield httpx.ASGITransport(app=build_apps(sandbox)["kubernetes"])


def _server(transport: httpx.AsyncBaseTransport, **config: Any) -> Any:
    backend = BackendConfig(url="http://kubernetes", token="sandbox-kube-token")
    return build_server(KubernetesServerConfig(backend=backend, **config), transport=transport)


async def _describe(server: Any, paths: list[str], **kind: str) -> Any:
    async with Client(server) as client:
        return await client.call_tool("field_descriptions", {**(kind or ISTIO), "paths": paths})


def _forbid_crds(request: httpx.Request) -> httpx.Response | None:
    if "customresourcedefinitions" not in request.url.path:
        return None
    return httpx.Response(403, json={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                                     "reason": "Forbidden", "message": "customresourcedefinitions is forbidden"})


async def test_without_crd_access_the_published_openapi_document_answers(kube: httpx.AsyncBaseTransport) -> None:
    result = await _describe(_server(_Filtered(kube, _forbid_crds)), ["/spec/action", "/metadata/name", "/kind"])
    got = FieldDescriptions.model_validate(result.structured_content)
    assert got.schema_found
    assert got.source == "openapi/v3/apis/security.istio.io/v1 io.istio.security.v1.AuthorizationPolicy"
    action, name, kind = got.fields
    assert action.enum == ["ALLOW", "DENY", "AUDIT", "CUSTOM"]
    # metadata is a $ref to ObjectMeta in the document's components: followed, the document's own text returned
    assert (name.status, name.description) == ("described", "Name must be unique within a namespace.")
    assert kind.description.startswith("Kind is a string value representing the REST resource")


@pytest.mark.parametrize("url", ["http://elsewhere.example/openapi/v3/apis/security.istio.io/v1",
                                 "//elsewhere.example/openapi/v3/apis/security.istio.io/v1",
                                 "/openapi/v3/apis/security.istio.io/v1/../../../../api/v1/secrets"])
async def test_an_openapi_url_off_the_document_is_refused(kube: httpx.AsyncBaseTransport, url: str) -> None:
    def rogue(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/openapi/v3":
            return httpx.Response(200, json={"paths": {"apis/security.istio.io/v1": {"serverRelativeURL": url}}})
        return _forbid_crds(request)

    result = await _describe(_server(_Filtered(kube, rogue)), ["/spec/action"])
    assert result.is_error and "a URL off this server" in result.content[0].text  # type: ignore[union-attr]


async def test_answers_are_bounded_and_say_so(kube: httpx.AsyncBaseTransport) -> None:
    server = _server(kube, limits=Limits(max_items=2), max_description_chars=100, max_enum_values=2)
    result = await _describe(server, ["/spec/action", "/spec", "/spec/action", "/spec/selector", "/spec/rules"])
    got = FieldDescriptions.model_validate(result.structured_content)
    assert [f.path for f in got.fields] == ["/spec/action", "/spec"]  # duplicates folded, then cut
    assert got.truncated and "paths (in the order asked): kept 2 of 4" in got.note
    assert got.fields[0].enum == ["ALLOW", "DENY"] and "enums cut to 2 values" in got.note
    assert len(got.fields[1].description) == 100 + len("…[truncated]") and "descriptions cut to 100" in got.note


@pytest.mark.parametrize("paths", [[], ["spec/action"], ["/x" * 600]])
async def test_bad_paths_are_error_results(kube: httpx.AsyncBaseTransport, paths: list[str]) -> None:
    result = await _describe(_server(kube), paths)
    assert result.is_error


def test_pointer_segments_unescape_rfc6901() -> None:
    assert pointer_segments("") == []
    assert pointer_segments("/metadata/annotations/a~1b~0c") == ["metadata", "annotations", "a/b~c"]


def test_walk_follows_refs_maps_and_int_or_string_and_bounds_a_ref_loop() -> None:
    components = {
        "Port": {"description": "a port", "x-kubernetes-int-or-string": True},
        "Loop": {"$ref": "#/components/schemas/Loop"},
    }
    root = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "object", "description": "ports by name",
                  "additionalProperties": {"$ref": "#/components/schemas/Port"}},
        "weights": {"type": "object", "additionalProperties": {"type": "integer"}},
        "loop": {"$ref": "#/components/schemas/Loop"},
        "free": {"type": "object", "additionalProperties": True, "description": "anything"},
    }}}}
    walker = SchemaWalker(root, components)
    port = walker.describe("/spec/ports/http")
    assert (port.schema_path, port.type, port.description) == ("spec.ports[http]", "int-or-string", "a port")
    assert walker.describe("/spec/weights").type == "map[string]integer"
    assert walker.describe("/spec/weights/a").description == ""  # neither the value nor the map describes it
    assert walker.describe("/spec/loop/x").status == "not_in_schema"  # the loop ends, bounded
    free = walker.describe("/spec/free/a/b")
    assert (free.status, free.schema_path, free.description) == ("free_form", "spec.free", "anything")
    missing = walker.describe("/spec/ports/http/x")
    assert missing.status == "not_in_schema" and missing.schema_path == "spec.ports[http]"
    assert json.loads(missing.model_dump_json())["path"] == "/spec/ports/http/x"
