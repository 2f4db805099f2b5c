"""The endpoints real clients call, in the real APIs' shapes (in process): Kubernetes version, OpenAPI, Table
and watch; Argo CD resource tree, events, clusters, version; Grafana settings and dashboards; Prometheus
metadata and targets; PagerDuty /users/me; each API's own error body."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import pytest

from driftwise.sandbox.kube_openapi import KUBERNETES_VERSION
from driftwise.sandbox.kube_table import human_duration
from driftwise.sandbox.scenario import load_paths
from tests.sandbox.test_process import _pd_spec, _validator
from tests.support.processes import SCENARIOS
from tests.support.sandbox_clients import ARGO, GRAFANA, KUBE, PD, Clients

TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
         "application/json")  # what kubectl get sends
V01 = "v01-payments-emergency-scale-up"


def _scenario(scenario_id: str) -> Any:
    return next(s for s in load_paths([SCENARIOS]) if s.id == scenario_id)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for k, v in node.items() if k != "$ref"))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _types(node: Any) -> list[Any]:
    if isinstance(node, dict):
        own = [node["type"]] if "type" in node and not isinstance(node.get("type"), dict) else []
        return own + [t for k, v in node.items() if k != "properties" for t in _types(v)] + [
            t for v in (node.get("properties") or {}).values() for t in _types(v)]
    if isinstance(node, list):
        return [t for v in node for t in _types(v)]
    return []


async def test_version_and_openapi_documents_are_the_api_servers(sb: Clients) -> None:
    await sb.activate("c01-istio-authorizationpolicy-opened")
    version = (await sb.kubernetes.get("/version")).json()
    assert version["gitVersion"] == f"v{KUBERNETES_VERSION}" and version["major"] == "1"
    paths = (await sb.kubernetes.get("/openapi/v3", headers=KUBE)).json()["paths"]
    # the built-in group versions and the scenario's CRD group, each with a content-hashed URL
    assert {"api/v1", "apis/apps/v1", "apis/security.istio.io/v1"} <= set(paths)
    for key in ("api/v1", "apis/apps/v1"):
        url = paths[key]["serverRelativeURL"]
        r = await sb.kubernetes.get(url, headers=KUBE)
        assert r.status_code == 200 and r.headers["etag"].strip('"') == url.split("hash=")[1]
        doc = r.json()
        schemas = doc["components"]["schemas"]
        # every reference resolves inside the document, and JSON Schema's nullable unions are gone
        assert {ref.removeprefix("#/components/schemas/") for ref in _refs(doc)} <= set(schemas)
        assert not [t for t in _types(doc) if isinstance(t, list) or t == "null"]
    apps = (await sb.kubernetes.get(paths["apis/apps/v1"]["serverRelativeURL"], headers=KUBE)).json()
    replicas = apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    assert replicas["type"] == "integer" and replicas["description"].startswith("Number of desired pods.")
    assert "/apis/apps/v1/namespaces/{namespace}/deployments" in apps["paths"]
    v2 = (await sb.kubernetes.get("/openapi/v2", headers=KUBE)).json()
    assert v2["swagger"] == "2.0" and "io.k8s.api.apps.v1.Deployment" in v2["definitions"]
    assert "io.istio.security.v1.AuthorizationPolicy" in v2["definitions"]  # the CRD's schema too
    assert {ref.removeprefix("#/definitions/") for ref in _refs(v2)} <= set(v2["definitions"])
    missing = await sb.kubernetes.get("/openapi/v3/apis/nope.example.com/v1", headers=KUBE)
    assert missing.status_code == 404 and missing.json()["kind"] == "Status"


async def test_table_output_matches_the_scenario(sb: Clients) -> None:
    await sb.activate(V01)
    truth = _scenario(V01)
    live = next(r.live for r in truth.argocd.resources if r.kind == "Deployment")
    r = await sb.kubernetes.get("/apis/apps/v1/deployments", headers={**KUBE, "Accept": TABLE})
    tbl = r.json()
    assert tbl["kind"] == "Table" and tbl["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in tbl["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    [row] = tbl["rows"]
    ready = f"{(live.get('status') or {}).get('readyReplicas', 0)}/{live['spec']['replicas']}"
    assert row["cells"][:2] == [live["metadata"]["name"], ready]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == live["metadata"]["namespace"]
    full = (await sb.kubernetes.get("/apis/apps/v1/deployments", params={"includeObject": "Object"},
                                    headers={**KUBE, "Accept": TABLE})).json()
    assert full["rows"][0]["object"]["spec"]["replicas"] == live["spec"]["replicas"]
    one = (await sb.kubernetes.get(f"/apis/apps/v1/namespaces/{live['metadata']['namespace']}/deployments/"
                                   f"{live['metadata']['name']}",
                                   headers={**KUBE, "Accept": "application/json;as=Table;v=v1beta1;g=meta.k8s.io"}))
    assert one.json()["apiVersion"] == "meta.k8s.io/v1beta1" and len(one.json()["rows"]) == 1
    plain = (await sb.kubernetes.get("/apis/apps/v1/deployments", headers={**KUBE, "Accept": "application/json"}))
    assert plain.json()["kind"] == "DeploymentList"
    bad = await sb.kubernetes.get("/apis/apps/v1/deployments", params={"includeObject": "All"},
                                  headers={**KUBE, "Accept": TABLE})
    assert bad.status_code == 400 and "includeObject" in bad.json()["message"]


@pytest.mark.parametrize(("seconds", "shown"), [
    (-5, "<invalid>"), (59, "59s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
    (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (30 * 86400, "30d"), (800 * 86400, "2y70d"),
    (9 * 365 * 86400, "9y"),
])
def test_ages_read_as_kubectl_shows_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


async def _subscribed(sb: Clients, count: int) -> None:
    """Bounded wait until the watch request has subscribed to the world's changes (it runs in this loop)."""
    with anyio.fail_after(10):
        while len(sb.sandbox.world.changes._subscribers) < count:  # type: ignore[union-attr]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def _events(body: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines() if line]


async def test_watch_streams_live_changes_and_ends_at_its_bound(sb: Clients) -> None:
    await sb.activate(V01)
    ns, name = "payments", "payments-api"
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    # the in-process transport hands the body over when the stream ends: its bound ends it
    watch = asyncio.create_task(sb.kubernetes.get(path, params={"watch": "1", "timeoutSeconds": "2"}, headers=KUBE))
    await _subscribed(sb, 1)
    r = await sb.argocd.post("/sandbox/live", json={"application": name, "kind": "Deployment", "name": name,
                                                    "patch": {"spec": {"replicas": 20}}})
    assert r.status_code == 200, r.text
    changed_rv = r.json()["resourceVersion"]
    with anyio.fail_after(10):
        body = (await watch).text
    events = _events(body)
    assert [(e["type"], e["object"]["spec"]["replicas"]) for e in events] == [("ADDED", 12), ("MODIFIED", 20)]
    assert events[1]["object"]["metadata"]["resourceVersion"] == changed_rv
    # from a resourceVersion: only what changed after it, from the feed's history; as Table rows when asked
    since = await sb.kubernetes.get(path, params={"watch": "true", "resourceVersion": str(int(changed_rv) - 1),
                                                  "timeoutSeconds": "0"}, headers={**KUBE, "Accept": TABLE})
    [event] = _events(since.text)
    assert event["type"] == "MODIFIED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][1] == "0/20"
    bad = await sb.kubernetes.get(path, params={"watch": "1", "timeout": "soon"}, headers=KUBE)
    assert bad.status_code == 400 and bad.json()["kind"] == "Status"


async def test_a_sync_is_a_watch_event_and_activation_ends_open_watches(sb: Clients) -> None:
    await sb.activate(V01)
    path = "/apis/apps/v1/deployments"
    watch = asyncio.create_task(sb.kubernetes.get(path, params={"watch": "1", "resourceVersion": "100000"},
                                                  headers=KUBE))
    await _subscribed(sb, 1)
    synced = await sb.argocd.post("/api/v1/applications/payments-api/sync", json={}, headers=ARGO)
    assert synced.status_code == 200
    target = next(r.target for r in _scenario(V01).argocd.resources if r.kind == "Deployment")
    await sb.activate("v02-configmap-environment-tuning")  # another cluster: the open watch ends now, not in 300 s
    with anyio.fail_after(10):
        events = _events((await watch).text)
    assert [(e["type"], e["object"]["spec"]["replicas"]) for e in events] == [
        ("MODIFIED", target["spec"]["replicas"])]


async def test_argocd_tree_events_clusters_version(sb: Clients) -> None:
    await sb.activate(V01)
    truth = _scenario(V01)
    tree = (await sb.argocd.get("/api/v1/applications/payments-api/resource-tree", headers=ARGO)).json()
    assert {(n["kind"], n["namespace"], n["name"]) for n in tree["nodes"]} >= {
        (r.kind, r.namespace, r.name) for r in truth.argocd.resources}
    assert all(n["health"]["status"] for n in tree["nodes"] if "parentRefs" not in n)
    event = next(o for o in truth.kubernetes.objects if o["kind"] == "Event")
    inv = event["involvedObject"]
    found = (await sb.argocd.get("/api/v1/applications/payments-api/events", headers=ARGO,
                                 params={"resourceName": inv["name"], "resourceNamespace": inv["namespace"],
                                         "resourceUID": "any"})).json()
    assert [e["message"] for e in found["items"]] == [event["message"]]
    clusters = (await sb.argocd.get("/api/v1/clusters", headers=ARGO)).json()["items"]
    assert [c["server"] for c in clusters] == [truth.argocd.application["spec"]["destination"]["server"]]
    assert clusters[0]["connectionState"]["status"] == "Successful"
    version = await sb.argocd.get("/api/version")
    assert version.status_code == 200 and version.json()["Version"].startswith("v3.")
    manifest = (await sb.argocd.get("/api/v1/applications/payments-api/resource", headers=ARGO, params={
        "resourceName": "payments-api", "namespace": "payments", "kind": "Deployment", "group": "apps"})).json()
    assert json.loads(manifest["manifest"])["spec"]["replicas"] == 12
    searched = (await sb.argocd.get("/api/v1/applications", params={"search": "payments"}, headers=ARGO)).json()
    assert [a["metadata"]["name"] for a in searched["items"]] == ["payments-api"]
    missing = await sb.argocd.get("/api/v1/applications/nope/resource-tree", headers=ARGO)
    assert missing.status_code == 404 and missing.json()["code"] == 5


async def test_grafana_prometheus_pagerduty_endpoints(sb: Clients) -> None:
    await sb.activate(V01)
    truth = _scenario(V01)
    settings = (await sb.grafana.get("/api/frontend/settings", headers=GRAFANA)).json()
    assert settings["buildInfo"]["version"] and settings["defaultDatasource"] == "Prometheus"
    uid = truth.grafana.annotations[0]["dashboardUID"]
    dash = (await sb.grafana.get(f"/api/dashboards/uid/{uid}", headers=GRAFANA)).json()
    assert dash["dashboard"]["uid"] == uid and dash["meta"]["url"] == f"/d/{uid}"
    tags = (await sb.grafana.get("/api/annotations/tags", headers=GRAFANA)).json()["result"]["tags"]
    assert {t["tag"] for t in tags} == {t for a in truth.grafana.annotations for t in a.get("tags") or []}
    health = (await sb.grafana.get("/api/datasources/uid/prometheus/health", headers=GRAFANA)).json()
    assert health["status"] == "OK"
    assert (await sb.grafana.get("/api/dashboards/uid/nope", headers=GRAFANA)).json() == {
        "message": "Dashboard not found", "traceID": ""}
    meta = (await sb.prometheus.get("/api/v1/metadata")).json()["data"]
    assert meta == {s.labels["__name__"]: [{"type": s.type, "help": "", "unit": ""}]
                    for s in truth.prometheus.series}
    targets = (await sb.prometheus.get("/api/v1/targets")).json()
    assert targets == {"status": "success", "data": {"activeTargets": [], "droppedTargets": []}}
    me = (await sb.pagerduty.get("/users/me", headers=PD)).json()
    _validator(_pd_spec(), "/users/me").validate(me)
    assert (await sb.pagerduty.get("/users/me")).status_code == 401


async def test_each_api_answers_an_unknown_path_in_its_own_error_shape(sb: Clients) -> None:
    await sb.activate(V01)
    kube = (await sb.kubernetes.get("/apis/nope/v1/things/x/y/z", headers=KUBE)).json()
    assert kube["kind"] == "Status" and kube["reason"] == "NotFound" and kube["code"] == 404
    argo = (await sb.argocd.get("/api/v1/nothing/here", headers=ARGO)).json()
    assert set(argo) == {"error", "code", "message"} and argo["code"] == 5
    assert set((await sb.grafana.get("/api/nothing", headers=GRAFANA)).json()) == {"message", "traceID"}
    pd = (await sb.pagerduty.get("/nothing", headers=PD)).json()
    assert pd["error"]["code"] == 2100 and pd["error"]["message"] == "Not Found"
    prom = await sb.prometheus.get("/api/v1/nothing")
    assert prom.status_code == 404 and prom.text == "404 page not found\n"
    wrong_method = await sb.argocd.delete("/api/v1/applications", headers=ARGO)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 12


async def test_a_failed_request_fault_answers_in_the_backends_own_shape(sb: Clients) -> None:
    await sb.activate(V01)
    for backend in ("kubernetes", "grafana", "pagerduty", "prometheus"):
        r = await sb.argocd.post("/sandbox/faults", json={"backend": backend, "method": "GET", "path": "/x/{y}",
                                                          "action": "fail", "status": 503})
        assert r.status_code == 201, r.text
    kube = (await sb.kubernetes.get("/x/1")).json()
    assert kube["kind"] == "Status" and kube["reason"] == "ServiceUnavailable" and kube["code"] == 503
    assert set((await sb.grafana.get("/x/1")).json()) == {"message", "traceID"}
    assert (await sb.pagerduty.get("/x/1")).json()["error"]["code"] == 2000
    assert (await sb.prometheus.get("/x/1")).json()["errorType"] == "unavailable"
