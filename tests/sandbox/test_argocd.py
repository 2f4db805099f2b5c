"""The Argo CD API: reads, auth, Secret masking, sync rules, PATCH, recorded writes."""

from __future__ import annotations

import json

from tests.support.sandbox_clients import ARGO, Clients


async def test_auth_is_required_like_argocd(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    for headers, message in (({}, "no session information"), ({"Authorization": "Bearer nope"}, "invalid session")):
        r = await sb.argocd.get("/api/v1/applications/payments-api", headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert body["code"] == 16 and message in body["error"] and body["message"] == body["error"]


async def test_application_project_and_managed_resources(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    app = (await sb.argocd.get("/api/v1/applications/payments-api", headers=ARGO)).json()
    assert app["status"]["sync"]["status"] == "OutOfSync"
    proj = (await sb.argocd.get(f"/api/v1/projects/{app['spec']['project']}", headers=ARGO)).json()
    assert proj["kind"] == "AppProject" and proj["spec"]["syncWindows"]
    items = (await sb.argocd.get("/api/v1/applications/payments-api/managed-resources", headers=ARGO)).json()["items"]
    assert len(items) == 1
    item = items[0]
    assert {item[k] for k in ("group", "kind", "namespace", "name", "version")} == {
        "apps", "Deployment", "payments", "payments-api", "v1"}
    target, live = json.loads(item["targetState"]), json.loads(item["liveState"])
    assert target["spec"]["replicas"] == 3 and live["spec"]["replicas"] == 12
    assert json.loads(item["predictedLiveState"])["spec"]["replicas"] == 3
    assert json.loads(item["diff"])["spec"]["replicas"] == 3
    r = await sb.argocd.get("/api/v1/applications/nope", headers=ARGO)
    assert r.status_code == 404 and r.json()["code"] == 5


async def test_secret_values_are_masked_as_argocd_masks_them(sb: Clients) -> None:
    await sb.activate("v08-secret-value-changed")
    app = next(iter(sb.sandbox.world.apps.values()))
    raw = {r.kind: r for r in app.resources}["Secret"]
    items = (await sb.argocd.get(f"/api/v1/applications/{app.name}/managed-resources", headers=ARGO)).json()["items"]
    secret = next(i for i in items if i["kind"] == "Secret")
    target, live = json.loads(secret["targetState"]), json.loads(secret["liveState"])
    for key in raw.target["data"]:
        assert set(target["data"][key]) == {"+"}
        if raw.target["data"][key] == raw.live["data"].get(key):
            assert target["data"][key] == live["data"][key] == "+" * 8
        else:
            assert len(target["data"][key]) == 8 and len(live["data"][key]) == 12
    assert any(raw.target["data"][k] != raw.live["data"].get(k) for k in raw.target["data"])
    text = secret["targetState"] + secret["liveState"] + secret["diff"] + secret["normalizedLiveState"]
    assert not any(v in text for v in list(raw.target["data"].values()) + list(raw.live["data"].values()))


async def test_sync_prune_refused_and_recorded(sb: Clients) -> None:
    await sb.activate("v07-unexplained-scale-down")
    app = next(iter(sb.sandbox.world.apps))
    r = await sb.argocd.post(f"/api/v1/applications/{app}/sync", json={"prune": True}, headers=ARGO)
    assert r.status_code == 403 and "prune" in r.json()["error"]
    writes = (await sb.argocd.get("/sandbox/writes")).json()["writes"]
    assert writes[-1]["accepted"] is False and writes[-1]["status"] == 403 and writes[-1]["application"] == app
    assert writes[-1]["body"] == {"prune": True}


async def test_sync_in_a_deny_window_is_refused(sb: Clients) -> None:
    await sb.activate("v10-pci-change-freeze")
    app = next(iter(sb.sandbox.world.apps))
    r = await sb.argocd.post(f"/api/v1/applications/{app}/sync", json={"prune": False}, headers=ARGO)
    assert r.status_code == 403 and r.json() == {"error": "cannot sync: blocked by sync window", "code": 7,
                                                 "message": "cannot sync: blocked by sync window"}
    still = (await sb.argocd.get(f"/api/v1/applications/{app}", headers=ARGO)).json()
    assert still["status"]["sync"]["status"] == "OutOfSync"


async def test_accepted_sync_makes_live_equal_target(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    dry = await sb.argocd.post("/api/v1/applications/payments-api/sync", json={"dryRun": True}, headers=ARGO)
    assert dry.status_code == 200 and dry.json()["status"]["sync"]["status"] == "OutOfSync"
    body = {"prune": False, "resources": [{"group": "apps", "kind": "Deployment", "name": "payments-api",
                                           "namespace": "payments"}], "syncOptions": {"items": []}}
    r = await sb.argocd.post("/api/v1/applications/payments-api/sync", json=body, headers=ARGO)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["sync"]["status"] == "Synced"
    deploy = (await sb.kubernetes.get("/apis/apps/v1/namespaces/payments/deployments/payments-api",
                                      headers={"Authorization": "Bearer sandbox-kube-token"})).json()
    assert deploy["spec"]["replicas"] == 3 and deploy["metadata"]["uid"] == "uid-payments-payments-api"
    writes = (await sb.argocd.get("/sandbox/writes")).json()["writes"]
    assert [(w["method"], w["accepted"], w["body"].get("dryRun")) for w in writes] == [
        ("POST", True, True), ("POST", True, None)]
    assert (await sb.argocd.delete("/sandbox/writes")).json() == {"writes": []}


async def test_patch_ignore_differences_makes_resource_synced(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    patch = {"spec": {"ignoreDifferences": [{"group": "apps", "kind": "Deployment", "name": "payments-api",
                                             "jsonPointers": ["/spec/replicas"]}]}}
    r = await sb.argocd.patch("/api/v1/applications/payments-api", headers=ARGO,
                              json={"name": "payments-api", "patch": json.dumps(patch), "patchType": "merge"})
    assert r.status_code == 200, r.text
    app = r.json()
    assert app["spec"]["ignoreDifferences"] and app["status"]["sync"]["status"] == "Synced"
    bad = await sb.argocd.patch("/api/v1/applications/payments-api", headers=ARGO,
                                json={"name": "payments-api", "patch": "{", "patchType": "merge"})
    assert bad.status_code == 400
    jp = [{"op": "add", "path": "/metadata/annotations", "value": {"driftwise.io/allowed": "true"}}]
    r = await sb.argocd.patch("/api/v1/applications/payments-api", headers=ARGO,
                              json={"name": "payments-api", "patch": json.dumps(jp), "patchType": "json"})
    assert r.json()["metadata"]["annotations"] == {"driftwise.io/allowed": "true"}
    writes = (await sb.argocd.get("/sandbox/writes")).json()["writes"]
    assert [(w["method"], w["accepted"]) for w in writes] == [("PATCH", True), ("PATCH", False), ("PATCH", True)]
