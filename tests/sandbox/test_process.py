"""The sandbox as a real process, driven by real clients: httpx, kubectl, PagerDuty's OpenAPI schema."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.processes import ROOT, SCENARIOS, driftwise, free_port_block
from tests.support.sandbox_clients import ARGO, CRD_SCENARIOS, PD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base() -> Iterator[int]:
    port = free_port_block(5)
    with driftwise("sandbox", str(SCENARIOS), str(CRD_SCENARIOS), "--port", str(port), "--prometheus", "builtin",
                   name="sandbox", ready_url=f"http://127.0.0.1:{port}/sandbox/healthz"):
        yield port


def _activate(base: int, scenario: str) -> None:
    r = httpx.post(f"http://127.0.0.1:{base}/sandbox/scenarios/activate", json={"id": scenario}, timeout=10)
    assert r.status_code == 200, r.text


def test_kubectl_lists_deployments_against_the_sandbox(base: int) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    _activate(base, "v01-payments-emergency-scale-up")
    server = f"http://127.0.0.1:{base + 1}"
    out = subprocess.run([kubectl, "--server", server, "--token", "sandbox-kube-token", "get", "deploy", "-A"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert "payments" in out.stdout and "payments-api" in out.stdout
    out = subprocess.run([kubectl, "--server", server, "get", "deploy", "payments-api", "-n", "payments",
                          "-o", "jsonpath={.spec.replicas}"], capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout == "12", out.stderr
    out = subprocess.run([kubectl, "--server", server, "get", "events", "-n", "payments",
                          "--field-selector", "involvedObject.name=payments-api", "-o", "name"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout.strip() == "event/payments-api.5dc", out.stderr
    out = subprocess.run([kubectl, "--server", server, "delete", "deploy", "payments-api", "-n", "payments"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode != 0 and "Forbidden" in out.stderr


def test_kubectl_gets_and_explains_custom_resources_offline(base: int, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    _activate(base, "c01-istio-authorizationpolicy-opened")
    server = ["--server", f"http://127.0.0.1:{base + 1}"]

    def run(*args: str, cache: str = "c01") -> subprocess.CompletedProcess[str]:
        # a discovery cache per scenario: kubectl keeps one for minutes, and each scenario is another cluster
        return subprocess.run([kubectl, *server, "--cache-dir", str(tmp_path / cache), *args], capture_output=True,
                              text=True, timeout=30, check=False)

    out = run("get", "authorizationpolicies.security.istio.io", "-A", "-o", "name")
    assert out.returncode == 0 and out.stdout.strip() == "authorizationpolicy.security.istio.io/payments-api-callers", \
        out.stderr
    out = run("get", "ap", "payments-api-callers", "-n", "payments", "-o",
              "jsonpath={.spec.rules[0].to[0].operation.methods}")
    assert out.stdout == '["POST","GET"]', out.stderr
    out = run("get", "crd", "-o", "name")
    assert out.stdout.strip() == "customresourcedefinition.apiextensions.k8s.io/authorizationpolicies.security.istio.io"
    # kubectl explain reads /openapi/v3 and the group version's document, as against a real cluster
    out = run("explain", "authorizationpolicies.spec.rules.from.source.principals")
    assert out.returncode == 0, out.stderr
    assert "FIELD: principals <[]string>" in out.stdout and "derived from the peer certificate" in out.stdout
    out = run("explain", "ap.spec.action")
    assert "ENUM:" in out.stdout and "CUSTOM" in out.stdout and "Valid Options: ALLOW, DENY" in out.stdout
    _activate(base, "c02-kyverno-clusterpolicy-audit")
    out = run("explain", "cpol.spec.validationFailureAction", cache="c02")
    assert out.returncode == 0 and "block the admission review request (enforce)" in " ".join(out.stdout.split()), \
        out.stderr


def _pd_spec() -> dict[str, Any]:
    """PagerDuty's OpenAPI document, loosened where real responses differ from it (documented nulls)."""
    spec = json.loads((ROOT / "tests/ref/pagerduty-openapiv3.json").read_text())

    def loosen(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: loosen(v) for k, v in node.items()}
            if "oneOf" in node:  # PagerDuty's reference/full alternatives overlap; any may match
                node["anyOf"] = node.pop("oneOf")
            if node.pop("nullable", False) and "type" in node:
                node["type"] = [node["type"], "null"]
            props = node.get("properties")
            if isinstance(props, dict):
                for name in ("resolved_at", "priority", "total"):
                    if name in props:
                        props[name] = {"anyOf": [props[name], {"type": "null"}]}
            return node
        if isinstance(node, list):
            return [loosen(v) for v in node]
        return node

    return loosen(copy.deepcopy(spec))


def _validator(spec: dict[str, Any], path: str) -> jsonschema.Validator:
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:pd", Resource.from_contents(spec, default_specification=DRAFT202012))
    rooted = json.loads(json.dumps(schema).replace('"#/components', '"urn:pd#/components'))
    return jsonschema.Draft202012Validator(rooted, registry=registry)


def test_pagerduty_responses_match_the_openapi_schema(base: int) -> None:
    spec = _pd_spec()
    url = f"http://127.0.0.1:{base + 4}"
    checked = 0
    for scenario in ("v01-payments-emergency-scale-up", "v07-unexplained-scale-down"):
        _activate(base, scenario)
        incidents = httpx.get(f"{url}/incidents", headers=PD, params={"total": "true"}, timeout=5).json()
        _validator(spec, "/incidents").validate(incidents)
        services = httpx.get(f"{url}/services", headers=PD, timeout=5).json()
        _validator(spec, "/services").validate(services)
        assert services["services"]
        for inc in incidents["incidents"]:
            one = httpx.get(f"{url}/incidents/{inc['id']}", headers=PD, timeout=5).json()
            _validator(spec, "/incidents/{id}").validate(one)
            checked += 1
        checked += 2
    assert checked >= 5
    broken = copy.deepcopy(incidents)
    broken["incidents"] = [{"id": 5, "status": "exploded"}]
    with pytest.raises(jsonschema.ValidationError):
        _validator(spec, "/incidents").validate(broken)


def test_httpx_round_trip_and_latency(base: int) -> None:
    _activate(base, "v01-payments-emergency-scale-up")
    q = 'sum(rate(http_requests_total{namespace="payments",service="payments-api"}[5m]))'
    with httpx.Client(timeout=5) as client:
        targets = [
            (f"http://127.0.0.1:{base}/api/v1/applications/payments-api/managed-resources", ARGO, None),
            (f"http://127.0.0.1:{base + 2}/api/v1/query", None, {"query": q}),
        ]
        for url, headers, params in targets:
            timings = []
            for _ in range(30):
                start = time.perf_counter()
                r = client.get(url, headers=headers, params=params)
                timings.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200
            timings.sort()
            p50 = timings[len(timings) // 2]
            print(f"latency p50 {p50:.2f} ms for {url}")
            assert p50 < 50
