"""Acting on verdicts against the sandbox, every process separate: exactly the Argo CD calls each mode makes.

shadow: none. autonomous enforce: one dry run, one sync (prune false), the status annotation.
defer: the sync fires when the sandbox clock reaches the allow window. allow: a narrow
ignoreDifferences, removed at expiry. advisory: an approval resumes the thread after the drift agent
was restarted. Faults (kill -9 at every step, a burst, slow and failing backends) are tests/faults' cases.
One trace per decision across processes, collected by an OTLP/HTTP stand-in on loopback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest
import yaml

from protocol.models import Action, Decision, DecisionState
from tests.support.acting_stack import AUTH, Stack, post
from tests.support.e2e import DriftProc
from tests.support.processes import ROOT, SCENARIOS, wait_until
from tests.support.waiting import poll_until
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.slow

SCENARIO = {yaml.safe_load(p.read_text())["expect"]["action"]: yaml.safe_load(p.read_text())
            for p in sorted(SCENARIOS.glob("*.yaml"), reverse=True)}  # the first of each action wins


@pytest.fixture(scope="module")
def agents(stack: Stack) -> dict[str, DriftProc]:
    return {"shadow": stack.drift("shadow", "shadow"), "autonomous": stack.drift("autonomous", "autonomous")}


# --- helpers ---------------------------------------------------------------------------------------


def get(drift: DriftProc, event_id: str) -> Decision:
    r = httpx.get(f"{drift.url}/v1/decisions/{event_id}", headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    return Decision.model_validate(r.json())


def decide(stack: Stack, drift: DriftProc, notification: dict, timeout: float = 20) -> Decision:
    started = time.monotonic()
    event_id = post(drift, notification)
    found: list[Decision] = []

    def final() -> bool:
        found[:] = [get(drift, event_id)]
        return found[0].final

    wait_until(final, timeout, f"decision {event_id} final", drift.proc)
    stack.latencies.append((time.monotonic() - started) * 1000)
    return found[0]


def fresh(stack: Stack, action: str) -> dict:
    scenario = SCENARIO[action]
    stack.sandbox.activate(scenario["id"])
    assert httpx.delete(f"{stack.sandbox.argocd}/sandbox/writes", timeout=5).status_code < 300
    return scenario


def syncs(writes: list[dict], *, dry_run: bool) -> list[dict]:
    return [w for w in writes if w["path"].endswith("/sync") and bool(w["body"].get("dryRun")) == dry_run]


def patches(writes: list[dict]) -> list[dict]:
    return [{"write": w, "patch": json.loads(w["body"]["patch"])} for w in writes if w["method"] == "PATCH"]


def status_of(patch: dict) -> dict | None:
    raw = ((patch.get("metadata") or {}).get("annotations") or {}).get("driftwise.io/status", "absent")
    return None if raw is None else (json.loads(raw) if raw != "absent" else {"absent": True})


def audit_kinds(drift: DriftProc, event_id: str | None = None) -> list[tuple[str, str]]:
    from agents.drift.audit import AuditLog

    async def read() -> list[tuple[str, str]]:
        log = AuditLog(drift.state_dir / "drift.sqlite")
        await log.open()
        try:
            result = await log.verify()
            assert result.ok, result.problems
            return [(r.event_id, r.kind) for r in await log.records(event_id)]
        finally:
            await log.close()

    return asyncio.run(read())


def set_clock(stack: Stack, now: str) -> None:
    r = httpx.post(f"{stack.sandbox.argocd}/sandbox/clock", json={"now": now}, timeout=5)
    assert r.status_code == 200, r.text


def drifted_refs(decision: Decision) -> list[dict]:
    assert decision.report is not None
    return sorted(({"group": d.ref.group, "kind": d.ref.kind, "name": d.ref.name, "namespace": d.ref.namespace or ""}
                   for d in decision.report.drifts), key=json.dumps)


# --- per mode --------------------------------------------------------------------------------------


def test_shadow_records_what_it_would_do_and_writes_nothing(stack: Stack, agents: dict[str, DriftProc]) -> None:
    scenario = fresh(stack, "enforce")
    decision = decide(stack, agents["shadow"], scenario["notification"])
    assert decision.state == DecisionState.DONE and decision.mode == "shadow"
    would = [a for a in decision.applied if a.detail.get("would") == "enforce"]
    assert would and not any(a.executed for a in decision.applied)
    assert stack.sandbox.writes() == []
    assert [k for _, k in audit_kinds(agents["shadow"], decision.event.event_id)] == ["decision", "apply"]


def test_autonomous_enforce_is_one_dry_run_one_sync_and_the_annotation(stack: Stack, agents) -> None:
    scenario = fresh(stack, "enforce")
    decision = decide(stack, agents["autonomous"], scenario["notification"])
    assert decision.verdict is not None and decision.verdict.verdict.action == Action.ENFORCE
    assert decision.state == DecisionState.DONE, decision.error
    writes = stack.sandbox.writes()
    dry, real = syncs(writes, dry_run=True), syncs(writes, dry_run=False)
    assert len(dry) == 1 and len(real) == 1 and len(writes) == 3, writes
    assert dry[0]["seq"] < real[0]["seq"] and all(w["accepted"] for w in writes)
    event_id = decision.event.event_id
    for w in (*dry, *real):
        assert w["body"]["prune"] is False
        assert sorted(w["body"]["resources"], key=json.dumps) == drifted_refs(decision)
        assert {"name": "driftwise-event", "value": event_id} in w["body"]["infos"]
    (annotation,) = patches(writes)
    assert status_of(annotation["patch"]) == {"state": "enforced", "event": event_id}
    assert [k for _, k in audit_kinds(agents["autonomous"], event_id)] == ["decision", "apply"]
    # the application is back in sync: Argo CD reports the sync made for this event
    app = httpx.get(f"{stack.sandbox.argocd}/api/v1/applications/{scenario['notification']['app']}",
                    headers={"Authorization": "Bearer sandbox-argocd-token"}, timeout=5).json()
    from agents.drift.acting.argocd_writes import synced_for_event

    assert synced_for_event(app, event_id)

    # one trace for the decision, across the drift agent, MCP servers, specialists; every node and hop
    def whole() -> bool:
        # spans arrive in per-process batches; the trace is whole once every node and hop is in and
        # nothing still points at a parent not yet exported (drift.decision ends, and ships, last)
        spans = stack.collector.trace_of(event_id)
        names = {(s["service"], s["name"]) for s in spans}
        services = {svc for svc, _ in names}
        ids = {s["span"] for s in spans}
        return (sum(s["parent"] not in ids for s in spans) == 1
                and {"driftwise-drift", "driftwise-security"} <= services
                and any(svc.startswith("mcp-") for svc in services)
                and {f"drift.{n}" for n in ("observe", "gather", "delegate", "reason", "sign", "guardrail",
                                            "apply")} <= {n for _, n in names}
                and "opa.evaluate" in {n for _, n in names})

    wait_until(whole, 15, "the decision's spans from every process")
    spans = stack.collector.trace_of(event_id)
    assert len({s["trace"] for s in spans}) == 1
    by_id = {s["span"]: s for s in spans}
    root = [s for s in spans if s["parent"] not in by_id]
    assert len(root) == 1 and root[0]["service"] == "driftwise-drift", root  # the webhook's server span
    # the MCP and A2A server spans are children of the drift agent's client side, not new roots
    assert all(by_id[s["parent"]] for s in spans if s["service"] != "driftwise-drift")
    assert any(s["service"] == "driftwise-drift" and "POST" in s["name"] for s in spans)  # Argo CD / A2A hops


def test_defer_runs_the_sync_when_the_window_opens(stack: Stack, agents) -> None:
    scenario = fresh(stack, "defer")
    drift = agents["autonomous"]
    decision = decide(stack, drift, scenario["notification"])
    assert decision.verdict is not None and decision.verdict.verdict.action == Action.DEFER
    event_id = decision.event.event_id
    writes = stack.sandbox.writes()
    assert syncs(writes, dry_run=False) == [] and syncs(writes, dry_run=True) == []
    (annotation,) = patches(writes)
    status = status_of(annotation["patch"])
    assert status is not None and status["state"] == "deferred" and status["event"] == event_id
    assert status["until"].endswith("Z")
    window = datetime.fromisoformat(status["until"].replace("Z", "+00:00"))
    assert window > datetime.fromisoformat(scenario["now"].replace("Z", "+00:00"))
    set_clock(stack, status["until"])
    wait_until(lambda: len(syncs(stack.sandbox.writes(), dry_run=False)) == 1, 10, "the deferred sync",
               drift.proc)
    wait_until(lambda: len(patches(stack.sandbox.writes())) == 2, 5, "the annotation removed", drift.proc)
    writes = stack.sandbox.writes()
    (real,) = syncs(writes, dry_run=False)
    assert real["accepted"] and real["at"] == status["until"] and real["body"]["prune"] is False
    assert len(syncs(writes, dry_run=True)) == 1
    assert status_of(patches(writes)[-1]["patch"]) is None
    wait_until(lambda: ("apply" in [k for _, k in audit_kinds(drift, event_id)][2:]), 5, "the sync audited")
    assert any(a.kind == "sync" and a.executed for a in get(drift, event_id).applied)


def test_allow_adds_a_narrow_ignore_differences_removed_at_expiry(stack: Stack, agents) -> None:
    scenario = fresh(stack, "allow")
    drift = agents["autonomous"]
    decision = decide(stack, drift, scenario["notification"])
    assert decision.verdict is not None and decision.verdict.verdict.action == Action.ALLOW
    assert decision.backport_patch and "+++ b/" in decision.backport_patch
    event_id = decision.event.event_id
    writes = stack.sandbox.writes()
    assert syncs(writes, dry_run=False) == [] and syncs(writes, dry_run=True) == []
    added, annotation = patches(writes)
    entries = added["patch"]["spec"]["ignoreDifferences"]
    assert decision.report is not None
    expected = {(d.ref.kind, d.ref.name, p) for d in decision.report.drifts for p in {c.path for c in d.changes}}
    assert {(e["kind"], e["name"], p) for e in entries for p in e["jsonPointers"]} == expected
    status = status_of(annotation["patch"])
    assert status is not None and status["state"] == "allowed" and status["until"].endswith("Z")
    set_clock(stack, status["until"])
    wait_until(lambda: len(patches(stack.sandbox.writes())) == 3, 10, "the allowance removed", drift.proc)
    removal = patches(stack.sandbox.writes())[-1]["patch"]
    assert not any(e in removal["spec"]["ignoreDifferences"] for e in entries)
    assert status_of(removal) is None
    wait_until(lambda: "expiry" in [k for _, k in audit_kinds(drift, event_id)], 5, "the expiry audited")


def test_advisory_approval_resumes_after_a_restart(stack: Stack, agents) -> None:
    scenario = fresh(stack, "enforce")
    path, port = stack.config("advisory", "advisory")
    drift = stack.start_drift("advisory", path, port)
    decision = decide(stack, drift, scenario["notification"])
    event_id = decision.event.event_id
    assert decision.state == DecisionState.AWAITING_APPROVAL
    (annotation,) = patches(stack.sandbox.writes())
    assert status_of(annotation["patch"]) == {"state": "awaiting_approval", "event": event_id}
    assert syncs(stack.sandbox.writes(), dry_run=False) == []

    drift.proc.kill(signal.SIGKILL)
    drift = stack.start_drift("advisory", path, port)
    cli = [sys.executable, "-m", "driftwise", "approvals"]
    listed = subprocess.run([*cli, "list", "--config", str(path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0 and event_id in listed.stdout, listed.stderr
    url = f"{drift.url}/v1/decisions/{event_id}/approve"
    assert httpx.post(url, json={"approver": "x"}, headers={"Authorization": "Bearer wrong"},
                      timeout=5).status_code == 401
    assert decision.verdict is not None
    allowed = [a.value for a in decision.verdict.verdict.allowed_actions]
    refused = [a.value for a in Action if a.value not in allowed]
    if refused:
        r = httpx.post(url, json={"action": refused[0], "approver": "ana"}, headers=AUTH, timeout=5)
        assert r.status_code == 409 and r.json()["allowed_actions"] == allowed, r.text
    assert "enforce" in allowed
    approved = subprocess.run([*cli, "approve", event_id, "--action", "enforce", "--approver", "ana",
                               "--comment", "revert it", "--config", str(path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert approved.returncode == 0 and "state=done" in approved.stdout, approved.stdout + approved.stderr
    after = get(drift, event_id)
    assert after.approval is not None and after.approval.approver == "ana"
    writes = stack.sandbox.writes()
    assert len(syncs(writes, dry_run=True)) == 1 and len(syncs(writes, dry_run=False)) == 1
    assert status_of(patches(writes)[-1]["patch"]) == {"state": "enforced", "event": event_id}
    # one `apply` for the approval request's annotation, one for what the approval carried out
    assert [k for _, k in audit_kinds(drift, event_id)] == ["decision", "apply", "approval", "apply"]
    again = httpx.post(url, json={"action": "enforce", "approver": "ana"}, headers=AUTH, timeout=5)
    assert again.status_code == 409, again.text
    drift.proc.kill()




async def test_an_approval_nobody_answers_is_messaged_reminded_and_expires(stack: Stack) -> None:
    """The drift agent as deployed (its own process, its scheduler and notifier loops): the message reaches a
    Slack-style receiver, the reminder comes at half the wait on the sandbox clock, the decision then ends
    `expired` with nothing written to Argo CD, and the drift, still there, is decided again and messaged."""
    scenario = fresh(stack, "enforce")
    async with Receiver().serve() as rx, httpx.AsyncClient(timeout=5) as http:
        path, port = stack.config("expiring", "advisory", approval_timeout_h=2.0)
        doc = yaml.safe_load(path.read_text())
        doc.update(notify={"webhook_url": rx.url, "backoff_s": 0.05}, console={"public_url": "https://dw.example"})
        path.write_text(yaml.safe_dump(doc))
        drift = await asyncio.to_thread(stack.start_drift, "expiring", path, port)
        try:
            decision = await asyncio.to_thread(decide, stack, drift, scenario["notification"])
            assert decision.state == DecisionState.AWAITING_APPROVAL
            event_id = decision.event.event_id
            [first] = await rx.received(1, 20)
            assert f"https://dw.example/console/decisions/{event_id}" in first["text"]
            assert first["blocks"][-1]["elements"][0]["url"] == f"https://dw.example/console/decisions/{event_id}"

            for _ in range(2):  # half the wait, then the rest of it
                r = await http.post(f"{stack.sandbox.argocd}/sandbox/clock", json={"advance_s": 3600})
                assert r.status_code == 200, r.text
                if len(rx.bodies) == 1:
                    assert (await rx.received(2, 20))[1]["text"].startswith("Reminder: ")

            expired = await poll_until(lambda: asyncio.to_thread(get, drift, event_id),
                                       lambda d: d.state == DecisionState.EXPIRED, 20, "the decision expired")
            assert expired.expired_at is not None and expired.approval is None
            assert "expiry" in [k for _, k in await asyncio.to_thread(audit_kinds, drift, event_id)]
            # nothing done: of Argo CD's writes, this decision's are its approval request's annotation alone
            mine = [w for w in stack.sandbox.writes() if event_id in json.dumps(w)]
            assert [status_of(w["patch"]) for w in patches(mine)] == [{"state": "awaiting_approval",
                                                                        "event": event_id}] and len(mine) == 1
            again = await rx.received(3, 30)  # the drift persists: decided anew, waiting, messaged
            assert event_id not in again[2]["text"] and again[2]["text"].startswith("Driftwise needs a human")
            r = await http.post(f"{drift.url}/v1/decisions/{event_id}/approve", json={"approver": "late"},
                                headers=AUTH)
            assert r.status_code == 409 and "is expired" in r.json()["error"]
        finally:
            await asyncio.to_thread(drift.proc.kill)
