"""The console in process (the drift agent's real app over httpx's ASGI transport, a real SQLite store):
login and session cookie, CSRF on every POST, the CSP, escaping of hostile text, SQL-side paging."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agents.drift.app import create_app
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.console.web import CSP
from agents.drift.metrics import DriftMetrics
from agents.drift.store import DecisionFilter, EventStore
from protocol.models import Action, Approval, Decision, DecisionState
from tests.console.decisions import T0, decision, every_page

APPROVALS = "console-approvals-token"
STATIC = Path(__file__).parents[2] / "agents" / "drift" / "console" / "static"
CORPUS = [
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "javascript:window.__pwned=1",
    "</textarea><svg onload=window.__pwned=1>",
    "{{ 7*7 }}{% raw %}",
    '<div hx-get="/console/logout" hx-trigger="load">',
    "\u202eevil\u202c",
]


class Console:
    def __init__(self, client: httpx.AsyncClient, store: EventStore, answers: list[tuple[str, Approval]]) -> None:
        self.client = client
        self.store = store
        self.answers = answers

    async def csrf(self, path: str = "/console/login") -> str:
        page = await self.client.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    async def login(self, approver: str = "ana", token: str = APPROVALS) -> httpx.Response:
        return await self.client.post("/console/login", data={
            "csrf_token": await self.csrf(), "approver": approver, "token": token, "next": "/console/"})


def config(tmp_path: Path, **over: object) -> DriftConfig:
    return DriftConfig(state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
                       argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr(APPROVALS),
                       webhook_token=SecretStr("hook"), **over)


async def open_console(tmp_path: Path, base_url: str = "http://127.0.0.1", peer: str = "127.0.0.1",
                       **over: object) -> AsyncIterator[Console]:
    cfg = config(tmp_path, **over)
    store = EventStore(cfg.db_path)
    await store.open()
    answers: list[tuple[str, Approval]] = []

    async def resume(event_id: str, approval: Approval) -> Decision:
        answers.append((event_id, approval))
        found = await store.get(event_id)
        assert found is not None
        return found

    async def accepted(_: Decision) -> None:
        return None

    app = create_app(cfg, store, DriftMetrics(), accepted, resume=resume)
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))  # `peer`: the address requests come from
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield Console(client, store, answers)
    await store.close()


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    async for running in open_console(tmp_path):
        yield running


async def put(store: EventStore, d: Decision) -> None:
    await store.accept(d.event, d.updated_at, join=False)
    await store.save(d)


async def test_no_session_goes_to_the_login_and_the_api_wants_its_token(console: Console) -> None:
    for path in ("/console/", "/console/decisions", "/console/decisions/ev-1"):
        r = await console.client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next="), (path, r.headers)
    fragment = await console.client.get("/console/queue", headers={"HX-Request": "true"})
    assert fragment.headers["hx-redirect"].startswith("/console/login")
    assert (await console.client.get("/v1/decisions")).status_code == 401
    assert (await console.client.post("/v1/decisions/ev-1/approve", json={"approver": "x"})).status_code == 401


async def test_login_sets_a_strict_httponly_session_cookie_and_logout_ends_it(console: Console) -> None:
    refused = await console.login(token="wrong")
    assert refused.status_code == 401 and "not the approvals token" in refused.text
    assert "driftwise_console" not in refused.headers.get("set-cookie", "") or "approver" not in refused.text
    r = await console.login()
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http here; see the https test
    assert APPROVALS not in r.headers["set-cookie"]
    queue = await console.client.get("/console/")
    assert queue.status_code == 200 and "Signed in as ana" in queue.text
    out = await console.client.post("/console/logout", data={"csrf_token": await console.csrf("/console/")})
    assert out.status_code == 303
    assert (await console.client.get("/console/")).status_code == 303


async def test_the_cookie_is_secure_when_the_agent_is_served_over_https(tmp_path: Path) -> None:
    async for c in open_console(tmp_path, "https://127.0.0.1", public_url="https://drift.example.internal"):
        r = await c.login()
        assert r.status_code == 303 and "; secure" in r.headers["set-cookie"].lower()


@pytest.mark.parametrize("field", ["approver", "token"])
async def test_a_login_missing_a_field_names_it(console: Console, field: str) -> None:
    data = {"csrf_token": await console.csrf(), "approver": "ana", "token": APPROVALS, field: ""}
    r = await console.client.post("/console/login", data=data)
    assert r.status_code == 400 and f"Fill in {field}" in r.text


async def test_the_login_goes_back_only_to_a_console_page(console: Console) -> None:
    for target, expected in (("/console/decisions?state=done", "/console/decisions?state=done"),
                             ("https://evil.example/", "/console/"), ("//evil.example/console/", "/console/"),
                             ("/console//evil.example", "/console/")):
        r = await console.client.post("/console/login", data={"csrf_token": await console.csrf(), "approver": "ana",
                                                              "token": APPROVALS, "next": target})
        assert r.headers["location"] == expected, target


async def test_every_post_without_the_csrf_token_is_refused_and_nothing_acts(console: Console) -> None:
    await put(console.store, decision(1))
    no_token = await console.client.post("/console/login", data={"approver": "ana", "token": APPROVALS})
    assert no_token.status_code == 403
    assert (await console.login()).status_code == 303
    for path, data in (("/console/decisions/ev-000001/approve", {"action": "enforce"}),
                       ("/console/decisions/ev-000001/reject", {"reason": "no"}),
                       ("/console/logout", {})):
        for sent in ({}, {"csrf_token": "forged"}):
            r = await console.client.post(path, data={**data, **sent})
            assert r.status_code == 403 and "CSRF" in r.text, (path, sent)
    json_body = await console.client.post("/console/decisions/ev-000001/approve", json={"csrf_token": "x"})
    assert json_body.status_code == 415
    assert console.answers == []
    assert (await console.client.get("/console/")).status_code == 200  # still signed in: the logout was refused


async def test_reject_needs_a_reason_and_approve_records_the_session_approver(console: Console) -> None:
    await put(console.store, decision(1))
    await console.login("Ana <on-call>")
    page = "/console/decisions/ev-000001"
    r = await console.client.post(page + "/reject", data={"csrf_token": await console.csrf(page), "reason": "  "})
    assert r.status_code == 422 and "Give a reason to reject" in r.text and console.answers == []
    r = await console.client.post(page + "/approve", data={"csrf_token": await console.csrf(page),
                                                           "action": "defer", "reason": "after the spike",
                                                           "approver": "someone-else"})
    assert r.status_code == 303 and r.headers["location"] == page + "?answered=approve"
    ((event_id, approval),) = console.answers
    assert event_id == "ev-000001" and approval.approver == "Ana <on-call>" and approval.action == Action.DEFER
    assert approval.comment == "after the spike" and approval.decision == "approve"


async def test_a_decision_answered_elsewhere_says_so_and_does_not_act(console: Console) -> None:
    answered = decision(1, state=DecisionState.DONE).model_copy(update={"approval": Approval(
        decision="approve", action=Action.ENFORCE, approver="bo (CLI)")})
    await put(console.store, answered)
    await console.login()
    page = "/console/decisions/ev-000001"
    r = await console.client.post(page + "/approve", data={"csrf_token": await console.csrf(page)})
    assert r.status_code == 409 and "already answered elsewhere by bo (CLI)" in html.unescape(r.text)
    assert console.answers == []


async def test_every_console_response_carries_the_strict_csp(console: Console) -> None:
    await put(console.store, decision(1))
    await console.login()
    for path in ("/console/login", "/console/", "/console/queue", "/console/decisions",
                 "/console/decisions/ev-000001", "/console/static/htmx.min.js", "/console/decisions/nope"):
        r = await console.client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self';" in CSP and "unsafe" not in CSP and "default-src 'none'" in CSP


async def test_hostile_text_is_escaped_on_every_page(console: Console) -> None:
    for n, text in enumerate(CORPUS, start=1):
        await put(console.store, decision(n, text=text, state=DecisionState.AWAITING_APPROVAL))
    await console.login()
    pages = ["/console/", "/console/queue", "/console/decisions"] + [
        f"/console/decisions/ev-{n:06d}" for n in range(1, len(CORPUS) + 1)]
    for path in pages:
        body = (await console.client.get(path)).text
        for text in CORPUS:
            if set(text) & set("<>\""):  # markup: it may appear only escaped
                assert text not in body, (path, text)
        assert "<script>window" not in body and "<img src=x" not in body and "<svg" not in body
        assert 'hx-get="/console/logout"' not in body
    detail = (await console.client.get("/console/decisions/ev-000001")).text
    assert html.escape(CORPUS[0], quote=False) in detail  # shown, as text
    assert "{{ 7*7 }}{% raw %}" in html.unescape((await console.client.get("/console/decisions/ev-000005")).text)


async def test_the_queue_is_oldest_first_and_says_why_a_human_is_needed(console: Console) -> None:
    for n in (3, 1, 2):
        await put(console.store, decision(n, app=f"app-{n}"))
    await put(console.store, decision(4, app="app-4", state=DecisionState.DONE))
    await console.login()
    body = (await console.client.get("/console/queue")).text
    assert re.findall(r'data-event="(ev-\d+)"', body) == ["ev-000001", "ev-000002", "ev-000003"]
    assert "low confidence" in body and "3 decisions awaiting approval" in body
    assert "Deployment payments/app-1 /spec/replicas: 3 → 12 (+1 more)" in html.unescape(body)


async def test_the_queue_pages_oldest_first_by_keyset_and_the_poll_keeps_the_page(console: Console) -> None:
    for n in range(1, 121):
        await put(console.store, decision(n, state=DecisionState.AWAITING_APPROVAL if n % 4 else DecisionState.DONE))
    await console.login()
    seen: list[list[str]] = []
    path: str | None = "/console/"
    while path is not None:
        page = await console.client.get(path)
        assert page.status_code == 200 and "90 decisions awaiting approval" in page.text
        seen.append(re.findall(r'data-event="(ev-\d+)"', page.text))
        polled = re.search(r'hx-get="([^"]+)"', page.text)
        assert polled is not None  # the live part re-reads this page, not the first
        fragment = await console.client.get(html.unescape(polled.group(1)), headers={"HX-Request": "true"})
        assert re.findall(r'data-event="(ev-\d+)"', fragment.text) == seen[-1]
        later = re.search(r'href="([^"]+)" id="later"', page.text)
        path = html.unescape(later.group(1)) if later else None
    assert [len(p) for p in seen] == [50, 40]
    assert [e for p in seen for e in p] == [f"ev-{n:06d}" for n in range(1, 121) if n % 4]
    bad = await console.client.get("/console/", params={"after_at": "yesterday", "after_id": "ev-000001"})
    assert bad.status_code == 400 and "after_at" in bad.text


async def test_the_decision_page_shows_the_drift_evidence_agents_clamps_windows_and_patch(console: Console) -> None:
    await put(console.store, decision(1, action=Action.ALLOW, backport_patch="--- a/x\n+++ b/x\n+replicas: 12"))
    await console.login()
    body = html.unescape((await console.client.get("/console/decisions/ev-000001")).text)
    for shown in ("/spec/replicas", ">3<", ">12<", "pagerduty", "open_incidents", "policy.threshold",
                  "discarded by the guardrail: signature", "verified by the guardrail", "0 22 * * *",
                  'id="backport-patch"', "+replicas: 12", 'data-copy-target="backport-patch"', "Approve", "Reject"):
        assert shown in body, shown


async def test_recent_decisions_page_in_sql_with_filters_over_thousands(console: Console) -> None:
    base = decision(0).model_dump(mode="json")
    made: list[dict] = []  # documents as the store holds them, varied in the filtered fields
    for n in range(3000):
        doc = json.loads(json.dumps(base))
        doc["event"]["event_id"] = f"ev-{n:06d}"
        doc["event"]["received_at"] = (T0 + timedelta(seconds=n)).isoformat()
        doc["event"]["notification"].update(app=f"app-{n % 40}", project=("prod", "staging", "dev")[n % 3])
        doc["verdict"]["verdict"]["action"] = ("enforce", "allow", "defer", "escalate")[n % 4]
        doc["mode"] = ("advisory", "autonomous")[n % 2]
        doc["state"] = ("done", "awaiting_approval")[n % 5 == 0]
        made.append(doc)
    async with console.store.transaction() as tx:
        for doc in made:
            await tx.execute(
                "INSERT INTO drift_decisions VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                (doc["event"]["event_id"], "k", doc["event"]["notification"]["app"], doc["state"],
                 doc["event"]["received_at"], doc["updated_at"], json.dumps(doc)))
    where = DecisionFilter(project="staging", action=Action.ALLOW, mode="autonomous", limit=37)
    expected = [d["event"]["event_id"] for d in reversed(made) if d["event"]["notification"]["project"] == "staging"
                and d["verdict"]["verdict"]["action"] == "allow" and d["mode"] == "autonomous"]
    pages = await every_page(console.store, where)
    assert [e for page in pages for e in page] == expected and len(expected) == 250 and len(pages) == 7
    plan = await console.store.rows(
        "EXPLAIN QUERY PLAN SELECT document FROM drift_decisions WHERE "
        "json_extract(document, '$.event.notification.project') = ? ORDER BY received_at DESC, event_id DESC "
        "LIMIT 51", ("prod",))
    assert any("drift_decisions_project" in str(step) for step in plan), plan
    await console.login()
    r = await console.client.get("/console/decisions", params={"state": "awaiting_approval", "project": "dev"})
    assert r.status_code == 200 and r.text.count("<tr><td>2026-") == 50 and 'id="older"' in r.text
    older = re.search(r'href="([^"]+)" id="older"', r.text)
    assert older is not None
    nxt = await console.client.get(html.unescape(older.group(1)))
    assert nxt.status_code == 200 and "Newest" in nxt.text
    assert (await console.client.get("/console/decisions", params={"action": "delete"})).status_code == 400
    bad_cursor = await console.client.get("/console/decisions", params={"before_at": "yesterday"})
    assert bad_cursor.status_code == 400 and "before_at" in bad_cursor.text


def test_the_served_htmx_is_the_pinned_npm_file_with_its_licence() -> None:
    vendor = json.loads((STATIC / "vendor.json").read_text())
    for name, entry in vendor.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == entry["sha256"], name
        assert (STATIC / entry["license_file"]).read_text().startswith("Zero-Clause BSD")
        assert entry["npm"] == "htmx.org" and entry["version"] == "2.0.11"
