"""/sandbox/faults: hold, delay or fail a backend route — bounded, visible, and the held request still runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.support.sandbox_clients import ARGO, Clients
from tests.support.waiting import poll_until

APP = "payments-api"
SYNC = "/api/v1/applications/{name}/sync"


async def _faults(sb: Clients) -> list[dict]:
    r = await sb.argocd.get("/sandbox/faults")
    assert r.status_code == 200, r.text
    return r.json()["faults"]


async def _until(sb: Clients, check: Callable[[list[dict]], bool], what: str) -> list[dict]:
    return await poll_until(lambda: _faults(sb), check, 5, what)


async def _sync(sb: Clients, dry_run: bool = False) -> httpx.Response:
    return await sb.argocd.post(f"/api/v1/applications/{APP}/sync", headers=ARGO,
                                json={"prune": False, "dryRun": dry_run,
                                      "infos": [{"name": "driftwise-event", "value": "e1"}]})


async def test_a_held_sync_waits_until_released_then_runs_and_is_recorded(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    r = await sb.argocd.post("/sandbox/faults", json={"method": "post", "path": SYNC, "action": "hold"})
    assert r.status_code == 201, r.text
    fault = r.json()
    assert fault["method"] == "POST" and fault["held"] == 0 and fault["seconds"] is None
    sync = asyncio.create_task(_sync(sb))
    await _until(sb, lambda fs: fs[0]["held"] == 1, "the sync held")
    assert (await sb.argocd.get("/sandbox/writes")).json()["writes"] == []  # not run while held
    # other routes of the same backend are not held
    assert (await sb.argocd.get(f"/api/v1/applications/{APP}", headers=ARGO)).status_code == 200
    released = await sb.argocd.post(f"/sandbox/faults/{fault['id']}/release")
    assert released.status_code == 200 and released.json()["released"] is True
    async with asyncio.timeout(5):
        answer = await sync
    assert answer.status_code == 200, answer.text
    (write,) = (await sb.argocd.get("/sandbox/writes")).json()["writes"]
    assert write["accepted"] and write["body"]["infos"] == [{"name": "driftwise-event", "value": "e1"}]
    (after,) = await _faults(sb)
    assert after["held"] == 0 and after["active"] == 0 and after["applied"] == 1 and after["expired"] == 0
    assert (await _sync(sb)).status_code == 200  # a released fault applies no more


async def test_a_hold_ends_at_its_maximum_and_counts_as_expired(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    await sb.argocd.post("/sandbox/faults", json={"method": "POST", "path": SYNC, "action": "hold", "seconds": 0.05})
    async with asyncio.timeout(5):
        answer = await _sync(sb)
    assert answer.status_code == 200
    (fault,) = await _faults(sb)
    assert fault["expired"] == 1 and fault["held"] == 0


async def test_fail_answers_the_5xx_records_a_refused_write_and_skip_lets_the_first_through(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    r = await sb.argocd.post("/sandbox/faults", json={"method": "POST", "path": f"/api/v1/applications/{APP}/sync",
                                                      "action": "fail", "status": 502, "skip": 1, "times": 1})
    assert r.status_code == 201, r.text
    assert (await _sync(sb, dry_run=True)).status_code == 200
    failed = await _sync(sb)
    assert failed.status_code == 502 and "sandbox fault" in failed.json()["message"]
    assert (await _sync(sb)).status_code == 200  # `times` used up
    writes = (await sb.argocd.get("/sandbox/writes")).json()["writes"]
    assert [(w["accepted"], w["status"], w["application"]) for w in writes] == [
        (True, 200, APP), (False, 502, APP), (True, 200, APP)]
    (fault,) = await _faults(sb)
    assert (fault["matched"], fault["applied"]) == (3, 1)


async def test_delay_runs_the_request_afterwards_on_any_backend(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    r = await sb.argocd.post("/sandbox/faults", json={"backend": "prometheus", "method": "GET",
                                                      "path": "/api/v1/query", "action": "delay", "seconds": 0.01})
    assert r.status_code == 201, r.text
    answer = await sb.prometheus.get("/api/v1/query", params={"query": "up"})
    assert answer.status_code == 200 and answer.json()["status"] == "success"
    (fault,) = await _faults(sb)
    assert fault["applied"] == 1 and fault["active"] == 0


async def test_delete_releases_what_is_held_and_clears(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    await sb.argocd.post("/sandbox/faults", json={"method": "POST", "path": SYNC, "action": "hold"})
    sync = asyncio.create_task(_sync(sb))
    await _until(sb, lambda fs: fs[0]["held"] == 1, "the sync held")
    assert (await sb.argocd.delete("/sandbox/faults")).json() == {"faults": []}
    async with asyncio.timeout(5):
        assert (await sync).status_code == 200
    one = (await sb.argocd.post("/sandbox/faults", json={"method": "POST", "path": SYNC, "action": "hold"})).json()
    gone = await sb.argocd.delete(f"/sandbox/faults/{one['id']}")
    assert gone.status_code == 200 and gone.json()["released"] is True and await _faults(sb) == []
    assert (await _sync(sb)).status_code == 200  # nothing holds it any more


async def test_bad_faults_are_refused_naming_the_problem(sb: Clients) -> None:
    cases = [
        ({"path": SYNC, "action": "hold"}, "method"),
        ({"method": "POST", "path": "api/v1/x", "action": "hold"}, "must start with /"),
        ({"method": "GET", "path": "/sandbox/writes", "action": "fail"}, "cannot be faulted"),
        ({"method": "POST", "path": SYNC, "action": "hold", "seconds": 10_000}, "at most 300"),
        ({"method": "POST", "path": SYNC, "action": "delay"}, 'needs "seconds"'),
        ({"method": "POST", "path": SYNC, "action": "delay", "seconds": 61}, "at most 60"),
        ({"method": "POST", "path": SYNC, "action": "fail", "status": 404}, "status"),
        ({"method": "POST", "path": SYNC, "action": "explode"}, "action"),
        ({"method": "POST", "path": SYNC, "action": "hold", "backend": "vault"}, "backend"),
    ]
    for body, named in cases:
        r = await sb.argocd.post("/sandbox/faults", json=body)
        assert r.status_code == 400 and named in r.json()["error"], (body, r.text)
    assert await _faults(sb) == []
    for method, path in (("GET", "/sandbox/faults/9"), ("POST", "/sandbox/faults/9/release"),
                         ("DELETE", "/sandbox/faults/x")):
        r = await sb.argocd.request(method, path)
        assert r.status_code == 404 and "no fault" in r.json()["error"], (method, path, r.text)
