"""TLS to the backends against a real TLS server on loopback (a self-signed certificate made here):
every client of Argo CD in the drift agent, and each MCP server's client of its backend, honours
`verify_tls` and `ca_bundle` — refuses an unknown CA by default, trusts the bundle, skips the check
only when told to."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.drift.acting.argocd_writes import ArgoCDWriter
from agents.drift.acting.errors import ApplyError
from agents.drift.argocd_client import ArgoCDClient, shared_client
from agents.drift.config import ArgoCDConfig
from agents.drift.errors import ObserveError
from mcp_servers.common import BackendConfig
from mcp_servers.common.errors import BackendUnavailable
from mcp_servers.common.http import get_json, make_http_client


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftwise-test-backend")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "backend.pem", folder / "backend.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def _application(request: Request) -> JSONResponse:
    return JSONResponse({"metadata": {"name": request.path_params["name"]}, "spec": {"project": "default"}})


async def _sync(request: Request) -> JSONResponse:
    return JSONResponse({"metadata": {"name": request.path_params["name"]}})


async def _query(_: Request) -> JSONResponse:
    return JSONResponse({"status": "success", "data": {"resultType": "vector", "result": []}})


BACKEND = Starlette(routes=[
    Route("/api/v1/applications/{name}", _application, methods=["GET"]),
    Route("/api/v1/applications/{name}/sync", _sync, methods=["POST"]),
    Route("/api/v1/query", _query, methods=["GET"]),
])


@pytest.fixture
async def tls_backend(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A real HTTPS server (uvicorn) on a loopback port; yields its URL and the CA bundle that signs it."""
    cert, key = _certificate(tmp_path)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before serving: a client's connect waits in the backlog, no race
    sock.listen()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(BACKEND, ssl_certfile=str(cert), ssl_keyfile=str(key),
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()


async def test_every_argocd_client_of_the_drift_agent_honours_its_tls_settings(tls_backend: tuple[str, Path]) -> None:
    url, bundle = tls_backend
    cases = [(ArgoCDConfig(url=url), False),                         # default: the system CAs do not know it
             (ArgoCDConfig(url=url, ca_bundle=bundle), True),        # the operator's CA bundle
             (ArgoCDConfig(url=url, verify_tls=False), True)]        # told not to check
    for config, reachable in cases:
        async with shared_client(config) as http:
            reader = ArgoCDClient(http, config.url, "t", 5.0)        # observe and re-read
            writer = ArgoCDWriter(http, config.url, "t", 5.0)        # acting
            if reachable:
                assert (await reader.application("payments")).metadata.name == "payments"
                assert await writer._send("POST", "/api/v1/applications/payments/sync", {}) == {
                    "metadata": {"name": "payments"}}
            else:
                with pytest.raises(ObserveError, match="CERTIFICATE_VERIFY_FAILED"):
                    await reader.application("payments")
                with pytest.raises(ApplyError, match="CERTIFICATE_VERIFY_FAILED"):
                    await writer._send("POST", "/api/v1/applications/payments/sync", {})


@pytest.mark.parametrize("backend", ["prometheus", "grafana", "pagerduty", "kubernetes"])
async def test_each_mcp_servers_backend_client_honours_its_tls_settings(
    tls_backend: tuple[str, Path], backend: str
) -> None:
    """The settings section of each backend reaches its MCP server's one client (driftwise mcp's mapping)."""
    from driftwise.cli.mcp import backend_config
    from driftwise.settings import load_settings

    url, bundle = tls_backend
    for section, reachable in ((dict(url=url), False), (dict(url=url, ca_bundle=bundle), True),
                               (dict(url=url, verify_tls=False), True)):
        settings = load_settings(**{backend: section})
        config: BackendConfig = backend_config(getattr(settings, backend))
        async with make_http_client(config) as http:
            if reachable:
                assert (await get_json(http, backend, "/api/v1/query"))["status"] == "success"
            else:
                with pytest.raises(BackendUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                    await get_json(http, backend, "/api/v1/query")
