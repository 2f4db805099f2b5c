"""Clients the project did not write, against the sandbox process: kubectl, kubernetes-mcp-server, argocd-mcp and
mcp-grafana. Each result is compared with the scenario's truth, and the sandbox's call log shows every endpoint
each client called, none answered 404.

Each test prints one line of the report (client, version, calls made, results); `pytest -s` shows them.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters

from driftwise.sandbox.kube_openapi import KUBERNETES_VERSION
from driftwise.sandbox.scenario import Scenario, load_paths
from tests.support.binaries import require_client
from tests.support.processes import SCENARIOS, driftwise, free_port_block, wait_until
from tests.support.sandbox_clients import CRD_SCENARIOS

pytestmark = pytest.mark.slow
V01 = "v01-payments-emergency-scale-up"
# Grafana 11 has no Kubernetes-style dashboard API; mcp-grafana probes for it and falls back on this 404
GRAFANA_PROBE = "/apis/dashboard.grafana.app"


@pytest.fixture(scope="module")
def base() -> Iterator[int]:
    port = free_port_block(5)
    with driftwise("sandbox", str(SCENARIOS), str(CRD_SCENARIOS), "--port", str(port), "--prometheus", "builtin",
                   name="sandbox", ready_url=f"http://127.0.0.1:{port}/sandbox/healthz"):
        yield port


@pytest.fixture(scope="module")
def truth() -> Scenario:
    return next(s for s in load_paths([SCENARIOS]) if s.id == V01)


@pytest.fixture
def v01(base: int) -> int:
    r = httpx.post(f"http://127.0.0.1:{base}/sandbox/scenarios/activate", json={"id": V01}, timeout=10)
    assert r.status_code == 200, r.text
    httpx.delete(f"http://127.0.0.1:{base}/sandbox/calls", timeout=5)
    return base


def _calls(base: int, backend: str) -> list[dict[str, Any]]:
    return httpx.get(f"http://127.0.0.1:{base}/sandbox/calls", params={"backend": backend}, timeout=5).json()["calls"]


def _report(client: str, version: str, calls: list[dict[str, Any]], results: str) -> None:
    endpoints = sorted({f"{c['method']} {c['path']} {c['status']}" for c in calls})
    print(f"\nFIDELITY | {client} | {version} | {len(calls)} calls: {'; '.join(endpoints)} | {results}")


def _deployments(truth: Scenario) -> dict[tuple[str, str], dict[str, Any]]:
    """Every Deployment the scenario's cluster holds (managed ones as they are live), by (namespace, name)."""
    objects = [o for o in truth.kubernetes.objects if o["kind"] == "Deployment"]
    objects += [r.live for r in truth.argocd.resources if r.kind == "Deployment"]
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}


def _ready(obj: dict[str, Any]) -> str:
    return f"{(obj.get('status') or {}).get('readyReplicas', 0)}/{obj['spec']['replicas']}"


class _Lines:
    """A running process's stdout, line by line, each read bounded by a deadline (select on the raw pipe: a
    buffered reader could hold a line select never reports)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._pending = b""

    def next(self, deadline: float) -> str:
        with selectors.DefaultSelector() as sel:
            sel.register(self._fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                if time.monotonic() >= deadline or not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    pytest.fail(f"no line from kubectl before the deadline (have {self._pending!r})")
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    pytest.fail(f"kubectl closed its output (have {self._pending!r})")
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()


def test_kubectl_version_explain_get_and_watch(v01: int, truth: Scenario, tmp_path: Path) -> None:
    kubectl = require_client("kubectl")
    server = ["--server", f"http://127.0.0.1:{v01 + 1}", "--cache-dir", str(tmp_path / "cache")]

    def run(*args: str) -> str:
        out = subprocess.run([kubectl, *server, *args], capture_output=True, text=True, timeout=30, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    version = json.loads(run("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == f"v{KUBERNETES_VERSION}"
    # explain reads /openapi/v3; the truth is the schema set the sandbox publishes from
    defs = json.loads(resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local/_definitions.json").read_text())["$defs"]
    described = defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["description"]
    explained = run("explain", "deployment.spec.replicas")
    assert "FIELD: replicas <integer>" in explained
    assert " ".join(described.split()) in " ".join(explained.split())
    # server-side printing: kubectl shows the API server's columns
    rows = [line.split() for line in run("get", "deploy", "-A").splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    expected = _deployments(truth)
    assert {(r[0], r[1]): r[2] for r in rows[1:]} == {k: _ready(o) for k, o in expected.items()}
    # a watch: the list, then the change /sandbox/live makes, then the stream ends at the request's bound
    (ns, name), live = next(iter(expected.items()))
    watch = subprocess.Popen([kubectl, *server, "get", "deploy", name, "-n", ns, "-w", "--request-timeout=5s"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    lines = _Lines(watch)
    try:
        deadline = time.monotonic() + 20
        assert lines.next(deadline).split()[:2] == ["NAME", "READY"]
        assert lines.next(deadline).split()[:2] == [name, _ready(live)]
        # kubectl reads the object, then opens the watch: change it only once the watch is open
        wait_until(lambda: any("watch=true" in c["query"] for c in _calls(v01, "kubernetes")), 20, "kubectl's watch")
        replicas = live["spec"]["replicas"] + 8
        r = httpx.post(f"http://127.0.0.1:{v01}/sandbox/live", timeout=5, json={
            "application": truth.argocd.application["metadata"]["name"], "kind": "Deployment", "name": name,
            "namespace": ns, "patch": {"spec": {"replicas": replicas}}})
        assert r.status_code == 200, r.text
        ready = f"{(live.get('status') or {}).get('readyReplicas', 0)}/{replicas}"
        assert lines.next(deadline).split()[:2] == [name, ready]
        watch.wait(timeout=20)  # the server ends the stream at client-go's `timeout`: kubectl exits by itself
    finally:
        watch.kill()
        watch.communicate()
    calls = _calls(v01, "kubernetes")
    assert calls and not [c for c in calls if c["status"] == 404]
    assert any(c["path"] == "/version" for c in calls) and any(c["path"].startswith("/openapi/v3/") for c in calls)
    assert any("watch=true" in c["query"] for c in calls)
    _report("kubectl", version["clientVersion"]["gitVersion"], calls,
            "version, explain deployment.spec.replicas, get deploy -A and get -w match the scenario")


def _package_version(command: str) -> str | None:
    """An npm client's installed version (argocd-mcp tells MCP clients 0.0.0)."""
    for folder in Path(command).resolve().parents:
        if folder.parent.name == "node_modules" and (folder / "package.json").exists():
            return str(json.loads((folder / "package.json").read_text()).get("version"))
    return None


async def _mcp(command: str, args: list[str], env: dict[str, str],
               calls: list[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, str]]:
    """Call each tool over stdio; the server's version and each call's text (a failed call fails the test)."""
    params = StdioServerParameters(command=command, args=args, env={**os.environ, **env})
    out: dict[str, str] = {}
    async with Client(params) as client:
        version = _package_version(command) or (client.server_info.version if client.server_info else "?")
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            text = "\n".join(getattr(c, "text", "") for c in result.content)
            assert not result.is_error, f"{name}: {text[:500]}"
            out[name] = text
    return version, out


async def test_kubernetes_mcp_server(v01: int, truth: Scenario, tmp_path: Path) -> None:
    server = require_client("kubernetes-mcp-server")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
        "clusters": [{"name": "sandbox", "cluster": {"server": f"http://127.0.0.1:{v01 + 1}"}}],
        "users": [{"name": "driftwise", "user": {"token": "sandbox-kube-token"}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "driftwise"}}]}))
    (ns, name), live = next(iter(_deployments(truth).items()))
    event = next(o for o in truth.kubernetes.objects if o["kind"] == "Event")
    version, out = await _mcp(server, ["--kubeconfig", str(kubeconfig), "--read-only"], {}, [
        ("namespaces_list", {}),
        ("resources_list", {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns}),
        ("resources_get", {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns, "name": name}),
        ("events_list", {"namespace": ns}),
    ])
    namespaces = {o["metadata"]["name"] for o in truth.kubernetes.objects if o["kind"] == "Namespace"}
    assert namespaces and all(re.search(rf"\bNamespace\s+{n}\s+Active\b", out["namespaces_list"]) for n in namespaces)
    # a Table: the Deployment's printed columns, not only its name
    header, row = out["resources_list"].splitlines()[:2]
    assert header.split()[:8] == ["NAMESPACE", "APIVERSION", "KIND", "NAME", "READY", "UP-TO-DATE", "AVAILABLE",
                                  "AGE"]
    assert row.split()[:5] == [ns, "apps/v1", "Deployment", name, _ready(live)]
    assert re.search(rf"^\s*replicas: {live['spec']['replicas']}$", out["resources_get"], re.M)
    assert event["message"] in out["events_list"]
    calls = _calls(v01, "kubernetes")
    assert calls and not [c for c in calls if c["status"] == 404]
    _report("kubernetes-mcp-server", version, calls, "namespaces, a Table of Deployments, one Deployment and the "
            "events match the scenario")


async def test_argocd_mcp(v01: int, truth: Scenario) -> None:
    server = require_client("argocd-mcp")
    app = truth.argocd.application["metadata"]["name"]
    app_ns = truth.argocd.application["metadata"]["namespace"]
    event = next(o for o in truth.kubernetes.objects if o["kind"] == "Event")
    inv = event["involvedObject"]
    version, out = await _mcp(server, ["stdio"], {
        "ARGOCD_BASE_URL": f"http://127.0.0.1:{v01}", "ARGOCD_API_TOKEN": "sandbox-argocd-token",
        "MCP_READ_ONLY": "true"}, [
        ("list_applications", {}), ("get_application", {"applicationName": app}),
        ("get_application_resource_tree", {"applicationName": app}),
        ("get_application_managed_resources", {"applicationName": app}),
        ("get_application_events", {"applicationName": app}),
        ("get_resource_events", {"applicationName": app, "applicationNamespace": app_ns, "resourceUID": "",
                                 "resourceNamespace": inv["namespace"], "resourceName": inv["name"]}),
        ("list_clusters", {}), ("get_resources", {"applicationName": app, "applicationNamespace": app_ns}),
        ("get_appproject", {"projectName": truth.argocd.project["metadata"]["name"]}),
    ])
    assert [a["metadata"]["name"] for a in json.loads(out["list_applications"])["items"]] == [app]
    assert json.loads(out["get_application"])["spec"] == truth.argocd.application["spec"]
    tree = json.loads(out["get_application_resource_tree"])["nodes"]
    assert {(n["kind"], n["name"]) for n in tree} == {(r.kind, r.name) for r in truth.argocd.resources}
    managed = json.loads(out["get_application_managed_resources"])["items"]
    assert {(m["kind"], m["name"]) for m in managed} == {(r.kind, r.name) for r in truth.argocd.resources}
    assert [e["message"] for e in json.loads(out["get_resource_events"])["items"]] == [event["message"]]
    clusters = json.loads(out["list_clusters"])["items"]
    assert [c["server"] for c in clusters] == [truth.argocd.application["spec"]["destination"]["server"]]
    manifests = [json.loads(m) for m in json.loads(out["get_resources"])]
    assert {(m["kind"], m["metadata"]["name"]) for m in manifests} == {(r.kind, r.name) for r in truth.argocd.resources}
    assert json.loads(out["get_appproject"])["spec"] == truth.argocd.project["spec"]
    calls = _calls(v01, "argocd")
    assert calls and not [c for c in calls if c["status"] == 404]
    _report("argocd-mcp", version, calls, "applications, application, resource tree, managed resources, events, "
            "clusters, manifests and project match the scenario")


async def test_mcp_grafana(v01: int, truth: Scenario) -> None:
    server = require_client("mcp-grafana")
    uid = truth.grafana.annotations[0]["dashboardUID"]
    version, out = await _mcp(server, ["--disable-write", "--usage-stats", "disabled"], {
        "GRAFANA_URL": f"http://127.0.0.1:{v01 + 3}", "GRAFANA_SERVICE_ACCOUNT_TOKEN": "sandbox-grafana-token"}, [
        ("search_dashboards", {"query": ""}), ("get_dashboard_by_uid", {"uid": uid}),
        ("get_dashboard_summary", {"uid": uid}), ("list_datasources", {}),
        ("get_datasource", {"uid": "prometheus"}), ("get_annotations", {"DashboardUID": uid}),
        ("get_annotation_tags", {}), ("check_datasources_health", {}),
    ])
    uids = {a["dashboardUID"] for a in truth.grafana.annotations if a.get("dashboardUID")}
    assert {d["uid"] for d in json.loads(out["search_dashboards"])["dashboards"]} == uids
    assert json.loads(out["get_dashboard_by_uid"])["dashboard"]["uid"] == uid
    texts = sorted(a["text"] for a in json.loads(out["get_annotations"])["Payload"])
    assert texts == sorted(a["text"] for a in truth.grafana.annotations if a.get("dashboardUID") == uid)
    assert {t["tag"] for t in json.loads(out["get_annotation_tags"])["Payload"]["result"]["tags"]} == {
        t for a in truth.grafana.annotations for t in a.get("tags") or []}
    assert json.loads(out["check_datasources_health"])["healthy"] == 1
    calls = _calls(v01, "grafana")
    assert calls and not [c for c in calls if c["status"] == 404 and c["path"] != GRAFANA_PROBE]
    _report("mcp-grafana", version, calls, "dashboards, dashboard by UID, datasources, annotations, tags and "
            f"datasource health match the scenario; the one 404 is Grafana 11's answer to the {GRAFANA_PROBE} probe")
