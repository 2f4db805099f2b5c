"""The security and compliance agents as real processes, called with a2a-sdk's own client."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.helpers import new_message
from a2a.types import Part, Role, SendMessageRequest, TaskState
from a2a.utils.constants import TransportProtocol
from a2a.utils.signing import InvalidSignaturesError
from joserfc.jwk import OKPKey

from agents.kit.card import card_verifier
from agents.kit.client import PeerClient
from agents.kit.errors import PeerAuthError, PeerTimeout, PeerUnreachable
from protocol.models import Action, AnalysisRequest, Recommendation
from protocol.signing import Verifier
from tests.agents.scenario_reports import report_for
from tests.support.agents import TOKENS, Env, dead_port, start_agent, write_config
from tests.support.processes import SCENARIOS, free_port

pytestmark = pytest.mark.slow

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))
SECURITY_FLAGS = {
    "v03-privileged-container": Action.ENFORCE,
    "v04-rbac-wildcard": Action.ENFORCE,
    "v05-untrusted-image": Action.ENFORCE,
    "v08-secret-value-changed": Action.ESCALATE,
    "v09-prompt-injection": Action.ENFORCE,
}
COMPLIANCE_FLAGS = {"v10-pci-change-freeze": Action.ESCALATE}


def request_for(path: Path, event_id: str | None = None) -> AnalysisRequest:
    event_id = event_id or f"evt-{path.stem}-{time.monotonic_ns()}"
    return AnalysisRequest(event_id=event_id, requester="drift", report=report_for(path, event_id))


async def ask(env: Env, agent: str, request: AnalysisRequest, timeout_s: float = 5.0) -> Recommendation:
    """Ask through the kit's PeerClient (a2a-sdk client underneath) and verify the JWS like the drift agent."""
    async with httpx.AsyncClient() as http:
        signed = await PeerClient(http).analyze(env.url(agent), request, TOKENS[agent], timeout_s)
    rec = Verifier(trust=env.trust, audience=request.requester).verify_recommendation(signed.jws, request.event_id)
    assert rec == signed.recommendation, "the readable recommendation must equal the signed one"
    assert rec.agent == agent
    return rec


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
async def test_security_flags_exactly_the_security_scenarios(agents_env: Env, security_agent, path: Path) -> None:
    rec = await ask(agents_env, "security", request_for(path))
    expected = SECURITY_FLAGS.get(path.stem)
    if expected is None:
        assert rec.kind == "abstain", rec.reasoning
        assert rec.findings == []
    else:
        assert rec.kind == "recommendation" and rec.action == expected, rec.reasoning
        assert rec.domain.value == "security"
        assert rec.findings and all(f.resource is not None and f.path for f in rec.findings)
        for f in rec.findings:  # the reasoning names the exact fields it relied on
            assert f.path in rec.reasoning
        if expected == Action.ENFORCE:
            assert any(f.severity.value in ("high", "critical") for f in rec.findings)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
async def test_compliance_flags_only_the_regulated_freeze(agents_env: Env, compliance_agent, path: Path) -> None:
    rec = await ask(agents_env, "compliance", request_for(path))
    expected = COMPLIANCE_FLAGS.get(path.stem)
    if expected is None:
        assert rec.kind == "abstain", rec.reasoning
    else:
        assert rec.action == expected and rec.confidence >= 0.9
        assert "driftwise.io/compliance=pci" in rec.reasoning and "deny" in rec.reasoning
        assert "Compliant path" in rec.reasoning
        assert any(f.rule_id == "compliance.change-freeze" for f in rec.findings)


async def test_compliance_judges_time_from_observed_at(agents_env: Env, compliance_agent) -> None:
    request = request_for(SCENARIOS / "v10-pci-change-freeze.yaml")
    # Same drift, observed a month later: the deny window (168h from Nov 18) is over.
    later = request.report.model_copy(update={"observed_at": request.report.observed_at.replace(month=12)})
    rec = await ask(agents_env, "compliance", request.model_copy(update={"report": later}))
    assert rec.kind == "abstain" and "no deny sync window is active" in rec.reasoning


async def test_privileged_drift_in_regulated_scope_folds_the_compliance_answer(agents_env: Env, security_agent) -> None:
    request = request_for(SCENARIOS / "v03-privileged-container.yaml")
    labels = {"billing": {"driftwise.io/compliance": "pci"}}
    request = request.model_copy(update={"report": request.report.model_copy(update={"namespace_labels": labels})})
    rec = await ask(agents_env, "security", request)
    assert rec.action == Action.ENFORCE
    assert "compliance agent says abstain" in rec.reasoning


async def test_unreachable_mcp_lowers_confidence_and_says_why(agents_env: Env, security_agent) -> None:
    # The test settings point the kubernetes MCP server at a port nobody listens on.
    rec = await ask(agents_env, "security", request_for(SCENARIOS / "v03-privileged-container.yaml"))
    assert rec.action == Action.ENFORCE
    assert rec.confidence < 0.95
    assert "Degraded" in rec.reasoning and "mcp kubernetes.rbac_for" in rec.reasoning


async def test_card_is_signed_and_verifies_with_the_published_jwks(agents_env: Env, security_agent) -> None:
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(agents_env.url("security") + "/.well-known/jwks.json")).json()
        keys = {k["kid"]: OKPKey.import_key(k) for k in jwks["keys"]}
        assert set(keys) == set(agents_env.trust.agents()["security"]), "JWKS must hold the pinned key"
        card = await A2ACardResolver(http, agents_env.url("security")).get_agent_card(
            signature_verifier=card_verifier(keys),
        )
        assert card.name == "security" and card.signatures
        assert card.skills[0].examples
        assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "bearer"
        bindings = {i.protocol_binding for i in card.supported_interfaces}
        assert bindings == {TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON}
        # A card tampered with after signing no longer verifies.
        card.description = "tampered"
        with pytest.raises(InvalidSignaturesError, match="No valid signature"):
            card_verifier(keys)(card)


async def test_calls_need_the_bearer_token_but_discovery_is_public(agents_env: Env, security_agent) -> None:
    base = agents_env.url("security")
    async with httpx.AsyncClient() as http:
        for path in ("/.well-known/agent-card.json", "/.well-known/jwks.json", "/healthz"):
            assert (await http.get(base + path)).status_code == 200
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}
        assert (await http.post(base + "/", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.post(base + "/", json=body, headers=wrong)).status_code == 401
        assert (await http.post(base + "/v1/message:send", json={}, headers=wrong)).status_code == 401
        with pytest.raises(PeerAuthError):
            await PeerClient(http).analyze(base, request_for(SCENARIO_FILES[0]), "wrong-token", 5.0)


async def test_invalid_request_gets_an_a2a_error_naming_the_problem(agents_env: Env, security_agent) -> None:
    base = agents_env.url("security")
    headers = {"Authorization": f"Bearer {TOKENS['security']}", "A2A-Version": "1.0"}
    good = request_for(SCENARIO_FILES[0]).model_dump(mode="json")
    del good["report"]["observed_at"]
    message = {"messageId": "m1", "role": "ROLE_USER",
               "parts": [{"text": json.dumps(good), "mediaType": "application/json"}]}
    async with httpx.AsyncClient() as http:
        resp = await http.post(base + "/", headers=headers, json={
            "jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": {"message": message}})
        err = resp.json()["error"]
        assert err["code"] == -32602 and "report.observed_at" in err["message"]
        resp = await http.post(base + "/v1/message:send", headers=headers, json={"message": {
            **message, "parts": [{"text": "not json", "mediaType": "application/json"}]}})
        assert resp.status_code == 400 and "not JSON" in resp.text


async def test_protocol_errors_come_before_payload_errors(agents_env: Env, security_agent) -> None:
    """A2A 1.0 §3.1.1/§3.4.2 (found by the A2A TCK): an undeclared media type or an unknown task is named as such."""
    base = agents_env.url("security")
    headers = {"Authorization": f"Bearer {TOKENS['security']}", "A2A-Version": "1.0"}
    good = request_for(SCENARIO_FILES[0]).model_dump_json()
    async with httpx.AsyncClient() as http:
        async def send(message: dict) -> dict:
            resp = await http.post(base + "/", headers=headers, json={
                "jsonrpc": "2.0", "id": 9, "method": "SendMessage", "params": {"message": message}})
            return resp.json()["error"]

        err = await send({"messageId": "m2", "role": "ROLE_USER",
                          "parts": [{"text": "hello", "mediaType": "text/csv"}]})
        assert err["code"] == -32005, err
        err = await send({"messageId": "m3", "role": "ROLE_USER", "taskId": "no-such-task",
                          "parts": [{"text": good, "mediaType": "application/json"}]})
        assert err["code"] == -32001 and "no-such-task" in err["message"], err


async def test_answers_a2a_sdk_client_over_both_bindings_streaming_too(agents_env: Env, security_agent) -> None:
    request = request_for(SCENARIOS / "v04-rbac-wildcard.yaml")
    for binding, streaming in ((TransportProtocol.JSONRPC, True), (TransportProtocol.HTTP_JSON, False)):
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKENS['security']}"}) as http:
            client = await create_client(agents_env.url("security"), ClientConfig(
                httpx_client=http, streaming=streaming, supported_protocol_bindings=[binding]))
            msg = new_message([Part(text=request.model_dump_json(), media_type="application/json")],
                              role=Role.ROLE_USER)
            final = None
            async for event in client.send_message(SendMessageRequest(message=msg)):
                if event.HasField("task"):
                    final = event.task
                elif event.HasField("status_update"):
                    final_state = event.status_update.status.state
                    assert final_state != TaskState.TASK_STATE_FAILED
            assert final is not None
            if not streaming:
                assert final.status.state == TaskState.TASK_STATE_COMPLETED
                media = [p.media_type for a in final.artifacts for p in a.parts]
                assert media == ["application/jwt", "application/json"]


async def test_peer_failures_are_typed_and_bounded(black_hole: int) -> None:
    request = request_for(SCENARIO_FILES[0])
    async with httpx.AsyncClient() as http:
        with pytest.raises(PeerUnreachable):
            await PeerClient(http).analyze(f"http://127.0.0.1:{dead_port()}", request, "t", 2.0)
        started = time.monotonic()
        with pytest.raises(PeerTimeout):
            await PeerClient(http).analyze(f"http://127.0.0.1:{black_hole}", request, "t", 0.5)
        assert time.monotonic() - started < 2.0


async def test_unreachable_compliance_answers_within_deadline_with_lowered_confidence(
    agents_env: Env, tmp_path: Path, black_hole: int,
) -> None:
    """A security agent whose compliance peer hangs: it still answers in time, says why, and is less sure."""
    port = free_port()
    config = write_config(tmp_path / "settings.yaml", {
        "security": {"module": "agents.security", "port": port, "token": TOKENS["security"]},
        "compliance": {"module": "agents.compliance", "port": black_hole, "token": TOKENS["compliance"]},
    }, delegate_timeout_s=2.0, mcp_kubernetes_port=dead_port())
    env = Env(state=agents_env.state, config=config, ports={"security": port}, trust=agents_env.trust)
    request = request_for(SCENARIOS / "v03-privileged-container.yaml")
    labels = {"billing": {"driftwise.io/compliance": "pci"}}
    request = request.model_copy(update={"report": request.report.model_copy(update={"namespace_labels": labels})})
    for _ in start_agent(env, "security"):
        started = time.monotonic()
        rec = await ask(env, "security", request)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"answered after {elapsed:.2f}s, deadline is 1.5s"
    assert rec.action == Action.ENFORCE
    assert rec.confidence <= 0.95 - 0.3
    assert "compliance: no answer" in rec.reasoning and "could not be consulted" in rec.reasoning
