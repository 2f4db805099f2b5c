"""The sandbox's people endpoints: what an SRE does shows through Argo CD's and Kubernetes' APIs as it would
there, and none of it is a Driftwise write."""

from __future__ import annotations

import json

from tests.support.sandbox_clients import ARGO, KUBE, Clients

SCENARIO = "v01-payments-emergency-scale-up"
APP = "payments-api"
DEPLOYMENT = {"application": APP, "kind": "Deployment", "name": "payments-api", "namespace": "payments"}
KUBE_PATH = "/apis/apps/v1/namespaces/payments/deployments/payments-api"


async def _app(sb: Clients) -> dict:
    r = await sb.argocd.get(f"/api/v1/applications/{APP}", headers=ARGO)
    assert r.status_code == 200, r.text
    return r.json()


async def _item(sb: Clients) -> dict:
    (item,) = (await sb.argocd.get(f"/api/v1/applications/{APP}/managed-resources", headers=ARGO)).json()["items"]
    return item


async def _no_writes(sb: Clients) -> None:
    assert (await sb.argocd.get("/sandbox/writes")).json()["writes"] == []


async def test_a_sync_as_a_user_reverts_and_argocd_says_who(sb: Clients) -> None:
    await sb.activate(SCENARIO)
    await sb.argocd.post("/sandbox/clock", json={"advance_s": 600})
    r = await sb.argocd.post("/sandbox/people/sync", json={"application": APP, "user": "alice"})
    assert r.status_code == 200, r.text
    app = await _app(sb)
    assert app["status"]["sync"]["status"] == "Synced"
    op = app["status"]["operationState"]
    assert op["phase"] == "Succeeded" and op["finishedAt"] == "2026-11-20T16:40:00Z"
    assert op["operation"]["initiatedBy"] == {"username": "alice", "automated": False}
    (entry,) = app["status"]["history"]
    assert entry["initiatedBy"]["username"] == "alice" and entry["deployedAt"] == "2026-11-20T16:40:00Z"
    assert entry["revision"] == app["status"]["sync"]["revision"]
    live = (await sb.kubernetes.get(KUBE_PATH, headers=KUBE)).json()
    assert live["spec"]["replicas"] == json.loads((await _item(sb))["targetState"])["spec"]["replicas"]
    await _no_writes(sb)


async def test_driftwise_syncs_are_in_the_history_too(sb: Clients) -> None:
    await sb.activate(SCENARIO)
    r = await sb.argocd.post(f"/api/v1/applications/{APP}/sync", headers=ARGO, json={"prune": False})
    assert r.status_code == 200, r.text
    (entry,) = (await _app(sb))["status"]["history"]
    assert entry["initiatedBy"]["username"] == "driftwise"


async def test_a_commit_adopts_the_live_values_under_a_new_revision_with_its_author(sb: Clients) -> None:
    await sb.activate(SCENARIO)
    before = await _app(sb)
    r = await sb.argocd.post("/sandbox/people/commit", json={"application": APP, "author": "carol",
                                                             "message": "keep 12 replicas"})
    assert r.status_code == 200, r.text
    app = await _app(sb)
    revision = app["status"]["sync"]["revision"]
    assert revision != before["status"]["sync"]["revision"] and len(revision) == 40
    assert app["status"]["sync"]["status"] == "Synced"
    item = await _item(sb)
    assert json.loads(item["targetState"])["spec"]["replicas"] == 12 and item["modified"] is False
    meta = await sb.argocd.get(f"/api/v1/applications/{APP}/revisions/{revision}/metadata", headers=ARGO)
    assert meta.status_code == 200, meta.text
    assert meta.json() == {"author": "carol", "date": "2026-11-20T16:30:00Z", "message": "keep 12 replicas",
                           "tags": []}
    assert (await sb.argocd.get(f"/api/v1/applications/{APP}/revisions/{revision}/metadata")).status_code == 401
    await _no_writes(sb)


async def test_an_edit_back_sets_git_values_live_with_the_editor_as_field_manager(sb: Clients) -> None:
    await sb.activate(SCENARIO)
    r = await sb.argocd.post("/sandbox/people/edit", json={**DEPLOYMENT, "user": "bob",
                                                           "paths": ["/spec/replicas"]})
    assert r.status_code == 200, r.text
    live = (await sb.kubernetes.get(KUBE_PATH, headers=KUBE)).json()
    assert live["spec"]["replicas"] == 3
    last = live["metadata"]["managedFields"][-1]
    assert last["manager"] == "bob" and last["time"] == "2026-11-20T16:30:00Z"
    assert last["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert (await _app(sb))["status"]["sync"]["status"] == "Synced"
    await _no_writes(sb)


async def test_deleting_a_resource_or_the_application(sb: Clients) -> None:
    await sb.activate(SCENARIO)
    r = await sb.argocd.post("/sandbox/people/delete", json=DEPLOYMENT)
    assert r.status_code == 200, r.text
    items = (await sb.argocd.get(f"/api/v1/applications/{APP}/managed-resources", headers=ARGO)).json()["items"]
    assert items == []
    assert (await sb.kubernetes.get(KUBE_PATH, headers=KUBE)).status_code == 404
    r = await sb.argocd.post("/sandbox/people/delete", json={"application": APP})
    assert r.status_code == 200, r.text
    assert (await sb.argocd.get(f"/api/v1/applications/{APP}", headers=ARGO)).status_code == 404


async def test_bad_requests_name_the_problem(sb: Clients) -> None:
    await sb.activate(SCENARIO)
    cases = [
        ("/sandbox/people/sync", {"application": APP}, 400, "'user'"),
        ("/sandbox/people/sync", {"application": "nope", "user": "a"}, 404, "no application 'nope'"),
        ("/sandbox/people/edit", {**DEPLOYMENT, "user": "a", "paths": ["spec"]}, 400, "not a JSON Pointer"),
        ("/sandbox/people/edit", {**DEPLOYMENT, "name": "other", "user": "a"}, 404, "manages no Deployment"),
        ("/sandbox/people/delete", {"application": APP, "kind": "Deployment"}, 400, 'both "kind" and "name"'),
        ("/sandbox/people/commit", {"application": APP, "author": "c", "extra": 1}, 400, "'extra'"),
    ]
    for path, body, status, words in cases:
        r = await sb.argocd.post(path, json=body)
        assert r.status_code == status and words in r.json()["error"], (path, r.status_code, r.text)


async def test_several_scenarios_share_one_world_and_clock(sb: Clients) -> None:
    r = await sb.argocd.post("/sandbox/clones", json={"id": SCENARIO, "count": 1,
                                                      "also": ["v03-privileged-container"]})
    assert r.status_code == 200, r.text
    apps = sorted(a["app"] for a in r.json()["applications"])
    assert apps == ["invoice-worker", "invoice-worker-c0001", "payments-api", "payments-api-c0001"]
    r = await sb.argocd.post("/sandbox/clones", json={"id": SCENARIO, "also": "v03"})
    assert r.status_code == 400 and '"also"' in r.json()["error"]
