"""Kubernetes, Prometheus (builtin), Grafana and PagerDuty APIs, clock, down backends and clones."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.sandbox_clients import ARGO, GRAFANA, KUBE, PD, Clients


async def test_kubernetes_discovery_get_list_and_errors(sb: Clients) -> None:
    await sb.activate("v06-hpa-owned-replicas")
    api = (await sb.kubernetes.get("/api", headers=KUBE)).json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    groups = {g["name"] for g in (await sb.kubernetes.get("/apis", headers=KUBE)).json()["groups"]}
    assert {"apps", "autoscaling", "rbac.authorization.k8s.io"} <= groups
    apps_v1 = (await sb.kubernetes.get("/apis/apps/v1", headers=KUBE)).json()
    assert any(r["name"] == "deployments" and r["namespaced"] for r in apps_v1["resources"])
    hpas = (await sb.kubernetes.get("/apis/autoscaling/v2/horizontalpodautoscalers", headers=KUBE)).json()
    assert hpas["kind"] == "HorizontalPodAutoscalerList" and len(hpas["items"]) == 1
    hpa = hpas["items"][0]
    ns, target = hpa["metadata"]["namespace"], hpa["spec"]["scaleTargetRef"]["name"]
    one = await sb.kubernetes.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{target}", headers=KUBE)
    assert one.status_code == 200 and one.json()["kind"] == "Deployment"
    namespace = (await sb.kubernetes.get(f"/api/v1/namespaces/{ns}", headers=KUBE)).json()
    sel = ",".join(f"{k}={v}" for k, v in namespace["metadata"]["labels"].items())
    listed = (await sb.kubernetes.get("/api/v1/namespaces", params={"labelSelector": sel}, headers=KUBE)).json()
    assert [n["metadata"]["name"] for n in listed["items"]] == [ns]
    none = (await sb.kubernetes.get("/api/v1/namespaces", params={"labelSelector": "x notin (a),y"},
                                    headers=KUBE)).json()
    assert none["items"] == []
    by_name = (await sb.kubernetes.get("/api/v1/namespaces", params={"fieldSelector": f"metadata.name={ns}"},
                                       headers=KUBE)).json()
    assert len(by_name["items"]) == 1
    missing = await sb.kubernetes.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nope", headers=KUBE)
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    assert missing.json()["message"] == 'deployments.apps "nope" not found'
    write = await sb.kubernetes.delete(f"/apis/apps/v1/namespaces/{ns}/deployments/{target}", headers=KUBE)
    assert write.status_code == 403 and write.json()["reason"] == "Forbidden"
    bad = await sb.kubernetes.get("/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["kind"] == "Status" and bad.json()["reason"] == "Unauthorized"


async def test_kubernetes_events_by_involved_object(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    r = await sb.kubernetes.get("/api/v1/namespaces/payments/events", headers=KUBE, params={
        "fieldSelector": "involvedObject.name=payments-api,involvedObject.kind=Deployment"})
    assert [e["reason"] for e in r.json()["items"]] == ["ScalingReplicaSet"]
    r = await sb.kubernetes.get("/api/v1/events", headers=KUBE, params={"fieldSelector": "involvedObject.kind=Pod"})
    assert r.json()["items"] == []


async def test_kubernetes_never_serves_secret_values(sb: Clients) -> None:
    await sb.activate("v08-secret-value-changed")
    raw = next(r for app in sb.sandbox.world.apps.values() for r in app.resources if r.kind == "Secret")
    r = await sb.kubernetes.get(f"/api/v1/namespaces/{raw.namespace}/secrets/{raw.name}", headers=KUBE)
    assert r.status_code == 200
    assert all(set(v) == {"+"} for v in r.json()["data"].values())
    assert r.json()["data"].keys() == raw.live["data"].keys()


async def test_prometheus_builtin_queries(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    q = 'sum(rate(http_requests_total{namespace="payments",service="payments-api"}[5m]))'
    now = (await sb.prometheus.get("/api/v1/query", params={"query": q})).json()
    assert now["status"] == "success" and now["data"]["resultType"] == "vector"
    ts, value = now["data"]["result"][0]["value"]
    assert ts == datetime(2026, 11, 20, 16, 30, tzinfo=UTC).timestamp()
    assert 395 < float(value) < 402  # 399 + 1.14 per second at the end, a little less over the window
    before = (await sb.prometheus.get("/api/v1/query", params={"query": q, "time": "2026-11-20T14:00:00Z"})).json()
    assert abs(float(before["data"]["result"][0]["value"][1]) - 40.05) < 0.01
    rng = (await sb.prometheus.get("/api/v1/query_range", params={
        "query": q, "start": "2026-11-20T15:30:00Z", "end": "2026-11-20T16:30:00Z", "step": "60s"})).json()
    assert rng["data"]["resultType"] == "matrix" and len(rng["data"]["result"][0]["values"]) == 61
    bad = await sb.prometheus.get("/api/v1/query", params={"query": "sum(rate(x[5m]"})
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
    unsupported = await sb.prometheus.get("/api/v1/query", params={"query": "histogram_quantile(0.9, x)"})
    assert unsupported.json() == {"status": "error", "errorType": "bad_data",
                                  "error": "function 'histogram_quantile' is not supported by the sandbox's "
                                           "builtin Prometheus"}
    series = (await sb.prometheus.get("/api/v1/series", params={"match[]": "http_requests_total"})).json()
    assert {s["code"] for s in series["data"]} == {"200", "500"}
    values = (await sb.prometheus.get("/api/v1/label/namespace/values")).json()
    assert values["data"] == ["payments"]
    assert "service" in (await sb.prometheus.get("/api/v1/labels")).json()["data"]
    assert (await sb.prometheus.get("/-/ready")).status_code == 200


async def test_down_backend_answers_503(sb: Clients) -> None:
    await sb.activate("v12-metrics-backend-down")
    assert (await sb.prometheus.get("/api/v1/query", params={"query": "up"})).status_code == 503
    assert (await sb.prometheus.get("/-/ready")).status_code == 503
    assert (await sb.kubernetes.get("/api/v1/namespaces", headers=KUBE)).status_code == 200


async def test_grafana_annotations_and_search(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    assert (await sb.grafana.get("/api/health")).json()["database"] == "ok"
    assert (await sb.grafana.get("/api/annotations")).status_code == 401
    now_ms = int(datetime(2026, 11, 20, 16, 30, tzinfo=UTC).timestamp() * 1000)
    params = {"from": now_ms - 3_600_000, "to": now_ms, "tags": ["scaling", "payments-api"], "limit": 10}
    anns = (await sb.grafana.get("/api/annotations", params=params, headers=GRAFANA)).json()
    assert [a["id"] for a in anns] == [9001]
    params["tags"] = ["scaling", "other"]
    assert (await sb.grafana.get("/api/annotations", params=params, headers=GRAFANA)).json() == []
    earlier = {"from": now_ms - 7_200_000, "to": now_ms - 3_600_000}
    assert (await sb.grafana.get("/api/annotations", params=earlier, headers=GRAFANA)).json() == []
    dash = (await sb.grafana.get("/api/search", headers=GRAFANA)).json()
    assert dash[0]["uid"] == "ops-overview" and dash[0]["type"] == "dash-db"
    assert (await sb.grafana.get("/api/datasources", headers=GRAFANA)).json()[0]["type"] == "prometheus"


async def test_pagerduty_filters_and_pagination(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    r = await sb.pagerduty.get("/incidents")
    assert r.status_code == 401 and r.json()["error"]["code"] == 2006
    all_ = (await sb.pagerduty.get("/incidents", params={"total": "true"}, headers=PD)).json()
    assert all_["total"] == 1 and all_["more"] is False
    svc = all_["incidents"][0]["service"]["id"]
    got = (await sb.pagerduty.get("/incidents", headers=PD, params={
        "statuses[]": ["triggered", "acknowledged"], "service_ids[]": [svc], "urgencies[]": ["high"],
        "since": "2026-11-20T15:30:00Z", "until": "2026-11-20T16:30:00Z"})).json()
    assert len(got["incidents"]) == 1
    later = (await sb.pagerduty.get("/incidents", headers=PD, params={"since": "2026-11-20T16:10:00Z"})).json()
    assert later["incidents"] == []
    resolved = (await sb.pagerduty.get("/incidents", headers=PD, params={"statuses[]": "resolved"})).json()
    assert resolved["incidents"] == []
    bad = await sb.pagerduty.get("/incidents", headers=PD, params={"statuses[]": "open"})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "Invalid Input Provided"
    one = await sb.pagerduty.get(f"/incidents/{all_['incidents'][0]['id']}", headers=PD)
    assert one.json()["incident"]["id"] == all_["incidents"][0]["id"]
    assert (await sb.pagerduty.get("/incidents/NOPE", headers=PD)).status_code == 404
    services = (await sb.pagerduty.get("/services", params={"query": "payments"}, headers=PD)).json()
    assert [s["id"] for s in services["services"]] == [svc]
    page = (await sb.pagerduty.get("/services", params={"limit": 1, "offset": 1}, headers=PD)).json()
    assert page["services"] == [] and page["offset"] == 1


async def test_clock_can_be_set_and_advanced(sb: Clients) -> None:
    info = await sb.activate("v01-payments-emergency-scale-up")
    assert info["now"] == "2026-11-20T16:30:00Z"
    assert (await sb.argocd.get("/sandbox/clock")).json() == {"now": "2026-11-20T16:30:00Z"}
    assert (await sb.argocd.post("/sandbox/clock", json={"advance_s": 90})).json()["now"] == "2026-11-20T16:31:30Z"
    r = await sb.argocd.post("/sandbox/clock", json={"now": "2026-11-22T02:30:00Z"})
    assert r.json()["now"] == "2026-11-22T02:30:00Z"
    assert (await sb.argocd.post("/sandbox/clock", json={"now": "yesterday"})).status_code == 400


async def test_clones_serve_disjoint_data(sb: Clients) -> None:
    r = await sb.argocd.post("/sandbox/clones", json={"id": "v01-payments-emergency-scale-up", "count": 3})
    apps = r.json()["applications"]
    assert len(apps) == 4 and len({a["app"] for a in apps}) == 4 and len({a["namespace"] for a in apps}) == 4
    for a in apps:
        assert a["notification"]["app"] == a["app"]
        app = (await sb.argocd.get(f"/api/v1/applications/{a['app']}", headers=ARGO)).json()
        assert app["spec"]["destination"]["namespace"] == a["namespace"]
        q = f'sum by (namespace) (rate(http_requests_total{{namespace="{a["namespace"]}"}}[5m]))'
        res = (await sb.prometheus.get("/api/v1/query", params={"query": q})).json()["data"]["result"]
        assert [x["metric"]["namespace"] for x in res] == [a["namespace"]]
        deps = (await sb.kubernetes.get(f"/apis/apps/v1/namespaces/{a['namespace']}/deployments",
                                        headers=KUBE)).json()["items"]
        assert [d["metadata"]["namespace"] for d in deps] == [a["namespace"]]
    everywhere = (await sb.kubernetes.get("/apis/apps/v1/deployments", headers=KUBE)).json()["items"]
    assert sorted(d["metadata"]["namespace"] for d in everywhere) == sorted(a["namespace"] for a in apps)
    namespaces = [n["metadata"]["name"] for n in
                  (await sb.kubernetes.get("/api/v1/namespaces", headers=KUBE)).json()["items"]]
    assert len(namespaces) == len(set(namespaces)) and {a["namespace"] for a in apps} <= set(namespaces)
    incidents = (await sb.pagerduty.get("/incidents", headers=PD, params={"limit": 100})).json()["incidents"]
    assert len({i["id"] for i in incidents}) == 4
    listing = (await sb.argocd.get("/sandbox/scenarios")).json()
    assert listing["active"] == "v01-payments-emergency-scale-up" and len(listing["scenarios"]) >= 12
    assert (await sb.argocd.post("/sandbox/scenarios/activate", json={"id": "nope"})).status_code == 404
