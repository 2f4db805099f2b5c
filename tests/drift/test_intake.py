"""Intake: authentication, validation, size limit and de-duplication; nothing is stored on an error."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agents.drift.app import create_app
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from protocol.models import Decision, DecisionState

WEBHOOK = "/v1/webhooks/argocd"
TOKEN = "hook-token"
APPROVALS = "approvals-token"
BODY = {"app": "payments-api", "appNamespace": "argocd", "project": "prod", "revision": "5f2c1e9"}


def make_config(tmp_path: Path, **over: object) -> DriftConfig:
    base = dict(
        state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
        argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr(APPROVALS),
        webhook_token=SecretStr(TOKEN), webhook_basic_user="argocd", webhook_basic_password=SecretStr("pw"),
        max_body_bytes=2048,
    )
    base.update(over)
    return DriftConfig(**base)


@pytest.fixture
async def env(tmp_path: Path):
    config = make_config(tmp_path)
    store = EventStore(config.db_path)
    await store.open()
    accepted: list[Decision] = []

    async def on_accepted(d: Decision) -> None:
        accepted.append(d)

    app = create_app(config, store, DriftMetrics(), on_accepted)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as client:
        yield client, store, accepted
    await store.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_accepts_persists_and_answers_202_with_event_id(env) -> None:
    client, store, accepted = env
    r = await client.post(WEBHOOK, json=BODY, headers=bearer())
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["duplicate"] is False and body["state"] == "received"
    stored = await store.get(body["event_id"])
    assert stored is not None and stored.event.idempotency_key == "argocd/payments-api"
    assert stored.event.notification.project == "prod"
    assert [d.event.event_id for d in accepted] == [body["event_id"]]


async def test_basic_auth_is_accepted(env) -> None:
    client, store, _ = env
    basic = base64.b64encode(b"argocd:pw").decode()
    r = await client.post(WEBHOOK, json=BODY, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 202, r.text
    assert await store.count() == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + base64.b64encode(b"argocd:bad").decode()},
     {"Authorization": "Basic !!!"}, {"Authorization": TOKEN}],
    ids=["missing", "wrong-bearer", "wrong-basic", "garbage-basic", "no-scheme"],
)
async def test_bad_credentials_are_401_and_nothing_stored(env, headers: dict[str, str]) -> None:
    client, store, accepted = env
    r = await client.post(WEBHOOK, json=BODY, headers=headers)
    assert r.status_code == 401
    assert await store.count() == 0 and accepted == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"appNamespace": "argocd", "project": "prod"}, 422, "app"),
        ({**BODY, "app": "Not_A_Name"}, 422, "app"),
        ({**BODY, "unexpected": 1}, 422, "unexpected"),
        ({"app": "x"}, 422, "project"),
    ],
)
async def test_invalid_body_names_the_field_and_nothing_stored(env, body, status, field) -> None:
    client, store, accepted = env
    r = await client.post(WEBHOOK, json=body, headers=bearer())
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and field in r.json()["error"]
    assert await store.count() == 0 and accepted == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_non_json_or_non_object_is_400(env, raw: bytes) -> None:
    client, store, _ = env
    r = await client.post(WEBHOOK, content=raw, headers={**bearer(), "Content-Type": "application/json"})
    assert r.status_code == 400
    assert await store.count() == 0


async def test_oversized_body_is_413_and_nothing_stored(env) -> None:
    client, store, _ = env
    big = {**BODY, "argocdUrl": "x" * 4000}
    r = await client.post(WEBHOOK, json=big, headers=bearer())
    assert r.status_code == 413
    # Without a Content-Length (chunked), the stream is cut at the limit too.

    async def chunks():
        yield json.dumps(big).encode()

    r = await client.post(WEBHOOK, content=chunks(), headers=bearer())
    assert r.status_code == 413
    assert await store.count() == 0


async def test_same_application_while_open_joins_the_decision(env) -> None:
    client, store, accepted = env
    results = await asyncio.gather(*(client.post(WEBHOOK, json=BODY, headers=bearer()) for _ in range(5)))
    assert all(r.status_code == 202 for r in results)
    ids = {r.json()["event_id"] for r in results}
    assert len(ids) == 1
    assert sorted(r.json()["duplicate"] for r in results) == [False, True, True, True, True]
    assert await store.count() == 1 and len(accepted) == 1
    other = await client.post(WEBHOOK, json={**BODY, "app": "catalog"}, headers=bearer())
    assert other.json()["duplicate"] is False and other.json()["event_id"] not in ids


async def test_a_final_decision_no_longer_dedups(env) -> None:
    client, store, _ = env
    first = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()["event_id"]
    decision = await store.get(first)
    assert decision is not None
    await store.save(decision.model_copy(update={"state": DecisionState.AWAITING_APPROVAL}))
    second = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()
    assert second["duplicate"] is False and second["event_id"] != first


async def test_decisions_api_needs_the_approvals_token_and_filters(env) -> None:
    client, _, _ = env
    eid = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()["event_id"]
    await client.post(WEBHOOK, json={**BODY, "app": "catalog"}, headers=bearer())
    assert (await client.get("/v1/decisions")).status_code == 401
    assert (await client.get(f"/v1/decisions/{eid}", headers=bearer())).status_code == 401
    one = await client.get(f"/v1/decisions/{eid}", headers=bearer(APPROVALS))
    assert one.status_code == 200
    assert Decision.model_validate(one.json()).event.event_id == eid
    listed = await client.get("/v1/decisions", params={"application": "payments-api"}, headers=bearer(APPROVALS))
    assert [d["event"]["event_id"] for d in listed.json()["decisions"]] == [eid]
    by_state = await client.get("/v1/decisions", params={"state": "done"}, headers=bearer(APPROVALS))
    assert by_state.json()["decisions"] == []
    assert (await client.get("/v1/decisions", params={"state": "nope"}, headers=bearer(APPROVALS))).status_code == 400
    assert (await client.get("/v1/decisions/unknown", headers=bearer(APPROVALS))).status_code == 404


async def test_health_and_metrics_are_public(env) -> None:
    client, _, _ = env
    await client.post(WEBHOOK, json=BODY, headers=bearer())
    assert (await client.get("/healthz")).json()["ok"] is True
    text = (await client.get("/metrics")).text
    assert 'driftwise_webhooks_total{outcome="202"} 1.0' in text
