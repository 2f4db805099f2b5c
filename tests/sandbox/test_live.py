"""POST /sandbox/live: a test control that edits a managed resource's live object, never a recorded write."""

from __future__ import annotations

import json

from tests.support.sandbox_clients import ARGO, KUBE, Clients

APP = "payments-api"
DEPLOYMENT = {"application": APP, "kind": "Deployment", "name": "payments-api", "namespace": "payments"}
KUBE_PATH = "/apis/apps/v1/namespaces/payments/deployments/payments-api"


async def _managed(sb: Clients) -> dict:
    items = (await sb.argocd.get(f"/api/v1/applications/{APP}/managed-resources", headers=ARGO)).json()["items"]
    assert len(items) == 1
    return items[0]


async def test_live_patch_shows_in_argocd_and_kubernetes_and_is_not_a_write(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    before = (await sb.kubernetes.get(KUBE_PATH, headers=KUBE)).json()
    assert before["spec"]["replicas"] == 12

    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "patch": {
        "spec": {"replicas": 20}, "metadata": {"labels": {"edited-by": "someone"}}}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OutOfSync" and body["sync"] == "OutOfSync"
    assert body["live"]["spec"]["replicas"] == 20
    assert int(body["resourceVersion"]) > int(before["metadata"]["resourceVersion"])

    item = await _managed(sb)
    live = json.loads(item["liveState"])
    assert live["spec"]["replicas"] == 20 and live["metadata"]["labels"]["edited-by"] == "someone"
    assert json.loads(item["targetState"])["spec"]["replicas"] == 3 and item["modified"] is True
    assert item["resourceVersion"] == body["resourceVersion"]
    after = (await sb.kubernetes.get(KUBE_PATH, headers=KUBE)).json()
    assert after["spec"]["replicas"] == 20 and after["metadata"]["resourceVersion"] == body["resourceVersion"]
    # untouched fields survive a merge patch
    assert after["spec"]["template"] == before["spec"]["template"]
    writes = (await sb.argocd.get("/sandbox/writes")).json()["writes"]
    assert writes == []


async def test_live_patch_back_to_target_makes_the_application_synced(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    app = (await sb.argocd.get(f"/api/v1/applications/{APP}", headers=ARGO)).json()
    assert app["status"]["sync"]["status"] == "OutOfSync"
    target = json.loads((await _managed(sb))["targetState"])
    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "patch": {
        "spec": {"replicas": target["spec"]["replicas"]}}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "Synced" and r.json()["sync"] == "Synced"
    app = (await sb.argocd.get(f"/api/v1/applications/{APP}", headers=ARGO)).json()
    assert app["status"]["sync"]["status"] == "Synced"
    assert [e["status"] for e in app["status"]["resources"]] == ["Synced"]
    assert (await _managed(sb))["modified"] is False


async def test_namespace_is_optional_and_a_null_removes_a_field(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    body = {k: v for k, v in DEPLOYMENT.items() if k != "namespace"}
    r = await sb.argocd.post("/sandbox/live", json={**body, "patch": {"metadata": {"labels": {"tmp": "x"}}}})
    assert r.status_code == 200, r.text
    r = await sb.argocd.post("/sandbox/live", json={**body, "patch": {"metadata": {"labels": {"tmp": None}}}})
    assert r.status_code == 200, r.text
    assert "tmp" not in (r.json()["live"]["metadata"].get("labels") or {})


async def test_missing_things_are_404_naming_them(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    patch = {"spec": {"replicas": 1}}
    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "application": "nope", "patch": patch})
    assert r.status_code == 404 and "'nope'" in r.json()["error"] and APP in r.json()["error"]
    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "name": "other", "patch": patch})
    assert r.status_code == 404
    assert "Deployment payments/other" in r.json()["error"] and "payments/payments-api" in r.json()["error"]
    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "namespace": "elsewhere", "patch": patch})
    assert r.status_code == 404 and "elsewhere/payments-api" in r.json()["error"]
    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "kind": "StatefulSet", "patch": patch})
    assert r.status_code == 404 and "StatefulSet" in r.json()["error"]


async def test_no_active_scenario_is_404(sb: Clients) -> None:
    r = await sb.argocd.post("/sandbox/live", json={**DEPLOYMENT, "patch": {}})
    assert r.status_code == 404 and "no scenario is active" in r.json()["error"]


async def test_bad_bodies_and_patches_are_400_and_change_nothing(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    before = await _managed(sb)
    bad = [
        (b"not json", "not valid JSON"),
        (json.dumps([1]).encode(), "JSON object"),
        (json.dumps({**DEPLOYMENT}).encode(), '"patch"'),
        (json.dumps({**DEPLOYMENT, "patch": [{"op": "replace"}]}).encode(), '"patch"'),
        (json.dumps({**DEPLOYMENT, "patch": "spec"}).encode(), '"patch"'),
        (json.dumps({"kind": "Deployment", "name": "payments-api", "patch": {}}).encode(), '"application"'),
        (json.dumps({**DEPLOYMENT, "namespace": 3, "patch": {}}).encode(), '"namespace"'),
        (json.dumps({**DEPLOYMENT, "patch": {"metadata": {"name": "renamed"}}}).encode(), "metadata.name"),
        (json.dumps({**DEPLOYMENT, "patch": {"kind": "StatefulSet"}}).encode(), "kind"),
        (json.dumps({**DEPLOYMENT, "patch": {"metadata": None}}).encode(), "identity"),
    ]
    for raw, named in bad:
        r = await sb.argocd.post("/sandbox/live", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, (raw, r.text)
        assert named in r.json()["error"], (raw, r.json())
    assert await _managed(sb) == before
