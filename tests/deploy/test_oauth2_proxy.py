"""deploy/oauth2-proxy: deploy/ plus oauth2-proxy as the drift agent's sidecar. It builds, every object
validates against the Kubernetes schema, and the pieces agree: the proxy forwards the console only, over
loopback, which is the one address the drift agent believes identity headers from; the Service and the
NetworkPolicy open the proxy's port; the drift agent's settings load with it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.kustomize import DEPLOY, kustomize
from tests.deploy.kustomize import of_kind as _of
from tests.deploy.settings_env import settings_from
from tests.deploy.test_kubernetes import _pod, _validate


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    return kustomize(DEPLOY / "oauth2-proxy")


def _args(container: dict[str, Any]) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in container["args"])


def test_every_object_validates(built: list[dict[str, Any]]) -> None:
    for doc in built:
        _validate(doc)
    assert "driftwise-drift-agent-console" in _of(built, "NetworkPolicy")


def test_the_proxy_forwards_the_console_over_loopback_which_alone_is_trusted(
        built: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = _pod(_of(built, "Deployment")["driftwise-drift-agent"])
    containers = {c["name"]: c for c in pod["containers"]}
    proxy, agent = containers["oauth2-proxy"], containers["drift-agent"]
    args = _args(proxy)
    upstream = urlsplit(args["upstream"])
    assert upstream.path == "/console/" and upstream.port == agent["ports"][0]["containerPort"]
    assert args["pass-user-headers"] == "true"
    (configmap,) = [d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(
        "driftwise-settings")]
    config = tmp_path / "settings.yaml"
    config.write_text(configmap["data"]["settings.yaml"])
    env = {e["name"]: e.get("value", f"secret-{e['name'].lower()}") for e in agent["env"]}
    env["DRIFTWISE_DRIFT__PEER_TOKENS"] = "{}"
    env["DRIFTWISE_STATE__DSN"] = "postgresql://driftwise:secret-pw@db.example:5432/driftwise"  # a URL in the Secret
    settings = settings_from(monkeypatch, env, config)
    trusted = [ipaddress.ip_network(c) for c in settings.console.proxy.trusted_cidrs]
    assert trusted == [ipaddress.ip_network("127.0.0.1/32")]
    assert ipaddress.ip_address(upstream.hostname) in trusted[0]  # the sidecar's address is the trusted one
    assert settings.console.public_url is not None and settings.console.public_url.startswith("https://")
    assert urlsplit(args["redirect-url"]).netloc == urlsplit(settings.console.public_url).netloc
    # the Ingress reaches the proxy's port: the Service and the added NetworkPolicy open it
    listen = int(args["http-address"].rsplit(":", 1)[1])
    assert proxy["ports"][0]["containerPort"] == listen
    service = _of(built, "Service")["driftwise-drift-agent"]
    assert {"name": "console", "port": listen, "targetPort": "console", "protocol": "TCP"} in service["spec"]["ports"]
    policy = _of(built, "NetworkPolicy")["driftwise-drift-agent-console"]
    assert policy["spec"]["podSelector"] == _of(built, "Deployment")["driftwise-drift-agent"]["spec"]["selector"]
    assert {"protocol": "TCP", "port": listen} in policy["spec"]["ingress"][0]["ports"]
