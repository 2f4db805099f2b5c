"""End to end: sandbox, four MCP servers, both specialists and the drift agent as separate processes.

Per visible scenario: the final action equals expect.action, every signature verifies, the audit
chain verifies, and nothing was written to Argo CD. Then the failure modes, each ending in a
verdict within the deadline that says what happened. Latency (webhook -> final) is measured.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from protocol.models import Action, Decision, DecisionState
from protocol.signing import TrustStore, Verifier
from tests.support.e2e import (
    AGENT_TOKENS,
    APPROVALS,
    DEADLINE_S,
    PEER,
    PEER_ID,
    WEBHOOK_TOKEN,
    DriftProc,
    SandboxProc,
    make_keys,
    settings_doc,
    write_yaml,
)
from tests.support.processes import ROOT, SCENARIOS, Proc, driftwise, free_port, http_ok, wait_until

pytestmark = pytest.mark.slow

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))
LATENCIES: list[float] = []


@dataclass
class System:
    sandbox: SandboxProc
    drift: DriftProc
    drift_fakes: DriftProc
    drift_no_opa: DriftProc
    specialists: dict[str, Proc]
    specialist_cmd: dict[str, tuple[list[str], dict[str, str], int]]
    trust: TrustStore
    extra: list[Proc] = field(default_factory=list)


@pytest.fixture(scope="module")
def system(sandbox: SandboxProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root = tmp_path_factory.mktemp("e2e")
    keys = root / "main" / "keys"
    make_keys(keys)
    mcp_ports = {n: free_port() for n in ("prometheus", "grafana", "pagerduty", "kubernetes")}
    spec_ports = {n: free_port() for n in ("security", "compliance")}
    fake_ports = {n: free_port() for n in ("security", "compliance")}
    drift_ports = {n: free_port() for n in ("main", "fakes", "no_opa")}
    dead_port = free_port()
    configs = {
        "main": settings_doc(root / "main", sandbox.base, mcp_ports, spec_ports, drift_ports["main"]),
        "fakes": settings_doc(root / "fakes", sandbox.base, mcp_ports, fake_ports, drift_ports["fakes"]),
        "no_opa": settings_doc(root / "no_opa", sandbox.base, mcp_ports, spec_ports, drift_ports["no_opa"],
                            policy={"opa_url": f"http://127.0.0.1:{dead_port}", "timeout_s": 0.5},
                            drift={"mode": "advisory"}),
    }
    for name in ("fakes", "no_opa"):
        shutil.copytree(keys, root / name / "keys")
    files = {name: write_yaml(root / f"{name}.yaml", doc) for name, doc in configs.items()}
    main_cfg = ["--config", str(files["main"])]
    with ExitStack() as stack:
        started: list[tuple[Proc, str]] = []

        def start(*args: str, name: str, ready: str) -> Proc:
            proc = stack.enter_context(driftwise(*args, name=name))
            started.append((proc, ready))
            return proc

        for name, port in mcp_ports.items():
            start("mcp", name, "--transport", "http", "--port", str(port), *main_cfg, name=f"mcp-{name}",
                  ready=f"http://127.0.0.1:{port}/mcp")
        specialists = {
            name: start("agent", name, "--port", str(port), *main_cfg, name=name,
                        ready=f"http://127.0.0.1:{port}/healthz")
            for name, port in spec_ports.items()
        }
        for name, port in fake_ports.items():
            log = root / f"fake-{name}.log"
            out = log.open("wb")
            stack.callback(out.close)
            popen = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("fake_specialist.py")), "--agent", name,
                 "--mode", "forged" if name == "security" else "expired", "--port", str(port),
                 "--keys", str(keys), "--trust", str(keys / "trust.json"), "--token", AGENT_TOKENS[name]],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
            fake = Proc(popen, f"fake-{name}", log)
            stack.callback(fake.kill)
            started.append((fake, f"http://127.0.0.1:{port}/healthz"))
        drifts = {
            name: DriftProc(start("agent", "drift", "--port", str(port), "--config", str(files[name]),
                                  name=f"drift-{name}", ready=f"http://127.0.0.1:{port}/readyz"),
                            port, root / name)
            for name, port in drift_ports.items()
        }
        for proc, ready in started:
            wait_until(http_ok(ready), 60, f"{proc.name} ready", proc)
        system_extra: list[Proc] = []
        yield System(
            sandbox=sandbox, drift=drifts["main"], drift_fakes=drifts["fakes"], drift_no_opa=drifts["no_opa"],
            specialists=specialists,
            specialist_cmd={n: (["agent", n, "--port", str(p), *main_cfg], {}, p) for n, p in spec_ports.items()},
            trust=TrustStore.load(keys / "trust.json"), extra=system_extra,
        )
        for proc in system_extra:
            proc.kill()
        if LATENCIES:
            print(f"\nwebhook->final latency over {len(LATENCIES)} decisions: "
                  f"p50 {statistics.median(LATENCIES):.0f} ms, max {max(LATENCIES):.0f} ms")


def decide(drift: DriftProc, notification: dict, timeout: float = DEADLINE_S + 5) -> Decision:
    """Post the notification and wait (bounded by the deadline and a margin) for its final decision.

    The webhook -> final latency is collected and printed for the module; asserting on it belongs
    to the benchmarks (driftwise bench), not here."""
    started = time.monotonic()
    r = httpx.post(f"{drift.url}/v1/webhooks/argocd", json=notification,
                   headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, timeout=10)
    assert r.status_code == 202, r.text
    event_id = r.json()["event_id"]
    found: list[Decision] = []

    def final() -> bool:
        got = httpx.get(f"{drift.url}/v1/decisions/{event_id}", headers={"Authorization": f"Bearer {APPROVALS}"},
                        timeout=5)
        assert got.status_code == 200, got.text
        decision = Decision.model_validate(got.json())
        found[:] = [decision]
        return decision.final

    wait_until(final, timeout, f"decision {event_id} final", drift.proc)
    LATENCIES.append((time.monotonic() - started) * 1000)
    return found[0]


def verify_signatures(decision: Decision, trust: TrustStore) -> None:
    verifier = Verifier(trust=trust, audience="drift")
    event_id = decision.event.event_id
    assert decision.verdict is not None
    assert verifier.verify_verdict(decision.verdict.jws, event_id) == decision.verdict.verdict
    if decision.proposal is not None:
        assert verifier.verify_recommendation(decision.proposal.jws, event_id) == decision.proposal.recommendation


def audit_ok(drift: DriftProc, event_id: str, kinds: tuple[str, ...] = ("decision", "apply"), *,
             shadow: bool = True) -> None:
    from agents.drift.audit import AuditLog

    async def check() -> None:
        log = AuditLog(drift.state_dir / "drift.sqlite")
        await log.open()
        try:
            result = await log.verify()
            assert result.ok, result.problems
            records = await log.records(event_id)
            assert [r.kind for r in records] == list(kinds)
            if shadow and "apply" in kinds:  # shadow: what would have been done, nothing executed
                applied = records[kinds.index("apply")].payload["applied"]
                assert applied and not any(a["executed"] for a in applied), applied
            assert records[0].payload["verdict"]["verdict"]["event_id"] == event_id
        finally:
            await log.close()

    asyncio.run(check())


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_scenario_end_to_end(system: System, path: Path) -> None:
    scenario = yaml.safe_load(path.read_text())
    system.sandbox.activate(scenario["id"])
    httpx.delete(f"{system.sandbox.argocd}/sandbox/writes", timeout=5)
    decision = decide(system.drift, scenario["notification"])
    assert decision.verdict is not None
    verdict = decision.verdict.verdict
    reasons = "; ".join(f"{r.code}: {r.message}" for r in verdict.reasons)
    final_action = Action.ESCALATE if verdict.requires_approval else verdict.action
    assert final_action == Action(scenario["expect"]["action"]), f"{decision.error or ''} {reasons}"
    assert decision.mode == "shadow" and decision.state == DecisionState.DONE
    assert decision.applied and not any(a.executed for a in decision.applied)
    assert decision.report is not None and decision.report.drifts
    assert decision.error is None, decision.error
    verify_signatures(decision, system.trust)
    audit_ok(system.drift, decision.event.event_id)
    assert system.sandbox.writes() == []


def _reason_text(decision: Decision) -> str:
    assert decision.verdict is not None
    return " ".join(f"{r.code} {r.message}" for r in decision.verdict.verdict.reasons)


def test_backend_down_ends_in_escalation_naming_it(system: System) -> None:
    down = next(yaml.safe_load(p.read_text()) for p in SCENARIO_FILES if "down" in yaml.safe_load(p.read_text()))
    system.sandbox.activate(down["id"])
    decision = decide(system.drift, down["notification"])
    failed = [e for e in decision.evidence if e.error]
    assert failed and all(e.source in down["down"] for e in failed)
    assert any(name in (e.error or "") for e in failed for name in down["down"])
    assert decision.verdict is not None and decision.verdict.verdict.action == Action.ESCALATE


def test_forged_and_expired_recommendations_are_discarded(system: System) -> None:
    scenario = next(yaml.safe_load(p.read_text()) for p in SCENARIO_FILES
                    if yaml.safe_load(p.read_text())["expect"]["action"] == "enforce")
    system.sandbox.activate(scenario["id"])
    decision = decide(system.drift_fakes, scenario["notification"])
    assert decision.verdict is not None
    verdict = decision.verdict.verdict
    discarded = {d.agent: d.reason for d in verdict.discarded}
    assert discarded == {"security": "bad_signature", "compliance": "expired"}, verdict.discarded
    assert verdict.action != Action.ALLOW  # the pushovers' "allow 0.99" counted for nothing
    assert "bad_signature" in _reason_text(decision) and "expired" in _reason_text(decision)
    verify_signatures(decision, system.trust)
    audit_ok(system.drift_fakes, decision.event.event_id)


def test_opa_unreachable_fails_closed(system: System) -> None:
    scenario = next(yaml.safe_load(p.read_text()) for p in SCENARIO_FILES
                    if yaml.safe_load(p.read_text())["expect"]["action"] == "allow")
    system.sandbox.activate(scenario["id"])
    decision = decide(system.drift_no_opa, scenario["notification"])
    assert decision.verdict is not None
    verdict = decision.verdict.verdict
    assert verdict.action == Action.ESCALATE and verdict.requires_approval
    assert "opa." in _reason_text(decision)
    assert decision.state == DecisionState.AWAITING_APPROVAL
    # the approval request's status annotation is a write: it has its `apply` record
    audit_ok(system.drift_no_opa, decision.event.event_id, ("decision", "apply"), shadow=False)


def test_specialist_killed_is_named_and_decision_still_ends(system: System) -> None:
    scenario = next(yaml.safe_load(p.read_text()) for p in SCENARIO_FILES
                    if yaml.safe_load(p.read_text())["expect"]["action"] == "enforce")
    notification = system.sandbox.clone_notification(scenario["id"])
    system.specialists["security"].kill()
    try:
        decision = decide(system.drift, notification)
        assert decision.verdict is not None
        verdict = decision.verdict.verdict
        # the guardrail names the specialist that did not answer, and a human must decide without it
        missing = [r for r in verdict.reasons if r.code == "policy.specialist_missing"]
        assert len(missing) == 1 and "security" in missing[0].message, _reason_text(decision)
        assert "compliance" not in missing[0].message and verdict.requires_approval
        audit_ok(system.drift, decision.event.event_id)
    finally:
        args, _, port = system.specialist_cmd["security"]
        restarted = driftwise(*args, name="security-restarted", ready_url=f"http://127.0.0.1:{port}/healthz")
        system.extra.append(restarted.__enter__())  # killed by the module fixture
        system.specialists["security"] = system.extra[-1]


def test_a2a_face_answers_with_the_signed_verdict(system: System) -> None:
    from a2a.client import ClientCallContext, ClientConfig, ClientFactory
    from a2a.helpers import new_message
    from a2a.types import Part, Role, SendMessageRequest

    scenario = yaml.safe_load(SCENARIO_FILES[0].read_text())
    system.sandbox.activate(scenario["id"])

    async def ask() -> tuple[str, str]:
        async with httpx.AsyncClient(timeout=15) as http:
            from agents.kit.client import PeerClient

            card = await PeerClient(http).card(system.drift.url, 5)
            assert [s.id for s in card.skills] == ["analyze-drift"]
            client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
            message = new_message([Part(text=json.dumps(scenario["notification"]), media_type="application/json")],
                                  role=Role.ROLE_USER)
            context = ClientCallContext(service_parameters={"Authorization": f"Bearer {PEER}"})
            async for event in client.send_message(SendMessageRequest(message=message), context=context):
                if event.HasField("task"):
                    task = event.task
            parts = {p.media_type: p.text for a in task.artifacts for p in a.parts}
            return parts["application/jwt"], parts["application/json"]

    jws, verdict_json = asyncio.run(ask())
    verifier = Verifier(trust=system.trust, audience=PEER_ID)  # addressed to the peer its token names
    verdict = verifier.verify_verdict(jws, None)
    assert verdict.model_dump_json() == verdict_json
    assert verdict.action == Action(scenario["expect"]["action"])


def test_a2a_face_names_a_wrong_message_before_any_task(system: System) -> None:
    """The kit's checks, on the drift agent's face too: protocol errors first, then the payload's."""
    headers = {"Authorization": f"Bearer {PEER}", "A2A-Version": "1.0"}

    def send(parts: list[dict]) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": parts}}}
        return httpx.post(f"{system.drift.url}/", json=body, headers=headers, timeout=10).json()["error"]

    err = send([{"text": "app,project", "mediaType": "text/csv"}])
    assert err["code"] == -32005, err
    err = send([{"text": json.dumps({"app": "payments-api"}), "mediaType": "application/json"}])
    assert err["code"] == -32602 and "not a valid ArgoNotification" in err["message"], err
    assert "project" in err["message"], err


def test_long_poll_answers_with_the_verdict_then_the_final_decision(system: System) -> None:
    scenario = yaml.safe_load((SCENARIOS / "v01-payments-emergency-scale-up.yaml").read_text())
    system.sandbox.activate(scenario["id"])
    auth = {"Authorization": f"Bearer {APPROVALS}"}
    r = httpx.post(f"{system.drift.url}/v1/webhooks/argocd", json=scenario["notification"],
                   headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, timeout=10)
    assert r.status_code == 202, r.text
    url = f"{system.drift.url}/v1/decisions/{r.json()['event_id']}"
    # one request each, held by the drift agent until the decision has got that far
    wait = {"wait": DEADLINE_S + 5}
    at_verdict = Decision.model_validate(
        httpx.get(url, params={**wait, "until": "verdict"}, headers=auth, timeout=DEADLINE_S + 10).json())
    assert at_verdict.verdict is not None and "webhook_to_verdict" in at_verdict.timings_ms
    verify_signatures(at_verdict, system.trust)
    final = Decision.model_validate(
        httpx.get(url, params=wait, headers=auth, timeout=DEADLINE_S + 10).json())
    assert final.final and final.verdict == at_verdict.verdict
    assert final.timings_ms["webhook_to_verdict"] <= final.timings_ms["webhook_to_final"]
    for params, named in (({"wait": "soon"}, "wait='soon'"), ({"wait": "0"}, "wait='0'"),
                          ({"wait": "61"}, "at most 60"), ({"wait": "1", "until": "done"}, "until=verdict")):
        bad = httpx.get(url, params=params, headers=auth, timeout=5)
        assert bad.status_code == 400 and named in bad.text, (params, bad.text)
    missing = httpx.get(f"{system.drift.url}/v1/decisions/no-such-event", params={"wait": "0.2"}, headers=auth,
                        timeout=5)
    assert missing.status_code == 404
