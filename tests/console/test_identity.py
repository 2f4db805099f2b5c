"""Identities behind an authenticating proxy, in process (the drift agent's real app over httpx's ASGI transport,
with the request's source address set per case), and once through a real uvicorn on loopback.

Headers are believed only from console.proxy.trusted_cidrs; from anywhere else, or with no proxy configured,
a request carrying one is refused with a page (console) or JSON (API) saying so, and nothing acts. Behind a
proxy the console's own sign-in is off. Who may answer a project (console.approvers) is shown on the page
and refused on POST; the API records how it knows who answered and never takes that from the caller.
"""

from __future__ import annotations

import asyncio
import html
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from agents.drift.app import create_app, server_config
from agents.drift.config import ApproverRule, ConsoleConfig, ProxyConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from protocol.models import Action, Decision
from tests.console.decisions import decision
from tests.console.test_console import APPROVALS, Console, config, open_console, put

PROXY = "10.0.0.7"
ALICE = {"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com",
         "X-Forwarded-Groups": "sre-prod, oncall"}
BEHIND_PROXY = ConsoleConfig(proxy=ProxyConfig(trusted=["10.0.0.0/24"]),
                             approvers={"prod": ApproverRule(users=["Bo@Example.com"], groups=["sre-prod"])})
PAGE = "/console/decisions/ev-000001"
API = "/v1/decisions/ev-000001/approve"
AUTH = {"Authorization": f"Bearer {APPROVALS}"}


async def behind(tmp_path: Path, peer: str, console: ConsoleConfig = BEHIND_PROXY) -> AsyncIterator[Console]:
    async for running in open_console(tmp_path, peer=peer, console=console):
        await put(running.store, decision(1))
        yield running


@pytest.fixture
async def via_proxy(tmp_path: Path) -> AsyncIterator[Console]:
    async for running in behind(tmp_path, PROXY):
        yield running


async def csrf(c: Console, headers: dict[str, str]) -> str:
    page = await c.client.get(PAGE, headers=headers)
    assert page.status_code == 200, page.text
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


async def test_the_proxys_identity_signs_in_and_is_what_the_answer_records(via_proxy: Console) -> None:
    queue = await via_proxy.client.get("/console/", headers=ALICE)
    assert queue.status_code == 200
    assert "Signed in as alice (alice@example.com) through the authenticating proxy" in queue.text
    assert 'action="/console/logout"' not in queue.text  # the proxy signs people out, not the console
    r = await via_proxy.client.post(PAGE + "/approve", headers=ALICE, data={
        "csrf_token": await csrf(via_proxy, ALICE), "action": "defer", "approver": "someone-else"})
    assert r.status_code == 303, r.text
    ((event_id, approval),) = via_proxy.answers
    assert event_id == "ev-000001" and approval.approver == "alice" and approval.action == Action.DEFER
    assert approval.identity is not None
    assert approval.identity.model_dump() == {"user": "alice", "email": "alice@example.com",
                                              "groups": ["sre-prod", "oncall"], "via": "proxy", "peer": PROXY}


async def test_behind_a_proxy_the_consoles_own_sign_in_is_off(via_proxy: Console) -> None:
    assert (await via_proxy.client.get("/console/login?next=/console/decisions", headers=ALICE)
            ).headers["location"] == "/console/decisions"
    r = await via_proxy.client.post("/console/login", data={"approver": "ana", "token": APPROVALS})
    assert r.status_code == 403 and "own sign-in is off" in r.text
    no_user = await via_proxy.client.get("/console/")  # from the proxy, but without the user
    assert no_user.status_code == 401 and "sent no X-Forwarded-User" in no_user.text
    only_groups = await via_proxy.client.get("/console/", headers={"X-Forwarded-Groups": "sre-prod"})
    assert only_groups.status_code == 400 and "sent no X-Forwarded-User" in only_groups.text
    twice = await via_proxy.client.get("/console/", headers=[("X-Forwarded-User", "alice"),
                                                             ("X-Forwarded-User", "mallory")])
    assert twice.status_code == 400 and "2 times" in twice.text


@pytest.mark.parametrize(("peer", "console", "why"), [
    ("192.0.2.5", BEHIND_PROXY, "believed only from 10.0.0.0/24 (console.proxy.trusted_cidrs)"),
    ("127.0.0.1", ConsoleConfig(), "believed from nobody: console.proxy.trusted_cidrs is empty"),
], ids=["not-the-proxy", "no-proxy-configured"])
async def test_an_identity_header_from_anywhere_else_is_refused_and_nothing_acts(
        tmp_path: Path, peer: str, console: ConsoleConfig, why: str) -> None:
    async for c in behind(tmp_path, peer, console):
        for method, path in (("GET", "/console/"), ("GET", "/console/queue"), ("GET", "/console/decisions"),
                             ("GET", PAGE), ("GET", "/console/login"), ("POST", "/console/login"),
                             ("POST", PAGE + "/approve"), ("POST", "/console/logout")):
            r = await c.client.request(method, path, headers={"X-Forwarded-Email": "alice@example.com"})
            text = html.unescape(r.text)
            assert r.status_code == 403, (path, r.status_code)
            assert f"carries X-Forwarded-Email but comes from {peer}" in text and why in text, path
        for method, path in (("GET", "/v1/decisions"), ("GET", "/v1/decisions/ev-000001"), ("POST", API)):
            r = await c.client.request(method, path, headers={**AUTH, **ALICE}, json={"approver": "alice"}
                                       if method == "POST" else None)
            assert r.status_code == 403 and why in r.json()["error"], (path, r.text)
        assert c.answers == []


async def test_behind_a_proxy_a_direct_request_is_sent_to_the_proxy(tmp_path: Path) -> None:
    async for c in behind(tmp_path, "192.0.2.5"):
        r = await c.client.get("/console/")
        assert r.status_code == 403 and "open the console at its public address" in r.text
        # the API keeps its approvals token (the CLI): the name it states is recorded as stated with it
        api = await c.client.post(API, headers=AUTH, json={"approver": "bo@example.com", "action": "enforce"})
        assert api.status_code == 200, api.text
        ((_, approval),) = c.answers
        assert approval.identity is not None and approval.identity.via == "approvals_token"
        assert approval.identity.peer == "192.0.2.5" and approval.identity.groups == []


async def test_the_api_never_takes_the_identity_from_the_caller(tmp_path: Path) -> None:
    async for c in behind(tmp_path, PROXY):
        forged = {"approver": "alice", "identity": {"user": "alice", "groups": ["sre-prod"], "via": "proxy"}}
        r = await c.client.post(API, headers=AUTH, json=forged)
        assert r.status_code == 422 and r.json()["field"] == "identity" and c.answers == []
        # through the proxy, the API's answer is the proxy's user, whatever name the body gives
        r = await c.client.post(API, headers={**AUTH, **ALICE}, json={"approver": "mallory"})
        assert r.status_code == 200, r.text
        ((_, approval),) = c.answers
        assert approval.approver == "alice" and approval.identity is not None and approval.identity.via == "proxy"


async def test_a_projects_approvers_are_the_only_ones_offered_the_answer(via_proxy: Console) -> None:
    mallory = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "dev"}
    page = await via_proxy.client.get(PAGE, headers=mallory)
    text = html.unescape(page.text)
    assert page.status_code == 200 and 'id="approve-form"' not in text and 'id="not-yours"' in text
    assert "mallory may not answer decisions of project prod: console.approvers.prod allows only users " \
           "Bo@Example.com and groups sre-prod" in text
    token = await csrf(via_proxy, ALICE)  # this browser's session's token: the refusal is not the CSRF check
    for kind in ("approve", "reject"):
        r = await via_proxy.client.post(f"{PAGE}/{kind}", headers=mallory, data={"csrf_token": token,
                                                                                "reason": "no"})
        assert r.status_code == 403 and "may not answer decisions of project prod" in html.unescape(r.text)
    assert via_proxy.answers == []
    bo = {"X-Forwarded-User": "bo", "X-Forwarded-Email": "bo@example.com"}  # by e-mail, case-insensitively
    assert 'id="approve-form"' in (await via_proxy.client.get(PAGE, headers=bo)).text
    assert 'id="approve-form"' in (await via_proxy.client.get(PAGE, headers=ALICE)).text  # by group


async def test_behind_a_real_uvicorn_the_peer_is_the_tcp_one_not_x_forwarded_for(tmp_path: Path) -> None:
    """A sidecar proxy connects from loopback and adds X-Forwarded-For (the person's address); the trust check
    must see the proxy's address. uvicorn's default (proxy_headers) would replace it with the forwarded one."""
    cfg = config(tmp_path, console=ConsoleConfig(proxy=ProxyConfig(trusted=["127.0.0.1/32"])))
    async with EventStore(cfg.db_path) as store:
        async def accepted(_: Decision) -> None:
            return None

        server = uvicorn.Server(server_config(create_app(cfg, store, DriftMetrics(), accepted), cfg))
        with socket.socket() as listening:
            # listening before uvicorn serves: a connection waits in the backlog, so nothing polls for readiness
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            serving = asyncio.create_task(server.serve(sockets=[listening]))
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listening.getsockname()[1]}",
                                             trust_env=False, timeout=10) as http:
                    r = await http.get("/console/", headers={**ALICE, "X-Forwarded-For": "203.0.113.9"})
                assert r.status_code == 200 and "Signed in as alice" in r.text, r.text
            finally:
                server.should_exit = True
                await asyncio.wait_for(serving, 10)
