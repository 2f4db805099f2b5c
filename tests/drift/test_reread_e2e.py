"""Drift that stays, end to end: a changed live drift of an application still OutOfSync is a new event.

Sandbox, four MCP servers, both specialists and a shadow-mode drift agent as separate processes, with
a short `drift.reread_interval_s`. A scenario's notification is decided; then the live object is
edited through the sandbox's POST /sandbox/live (as someone editing the cluster again, no new Argo CD
notification) and the agent, on its own, decides a new event whose report shows the new value. An
unchanged drift is left alone over several re-reads, counted by the agent's driftwise_rereads counter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.drift.reread import REREAD_EVENT
from protocol.models import Decision
from tests.support.acting_stack import AUTH, Stack, post
from tests.support.e2e import DriftProc
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

SCENARIO = "v01-payments-emergency-scale-up"
INTERVAL_S = 0.5
REREADS = 3  # re-reads of an unchanged drift that must not start an event
WAIT_S = 20.0  # bound on every wait (a decision plus a few intervals, with room for a loaded CI runner)


@pytest.fixture(scope="module")
def drift(stack: Stack) -> Iterator[DriftProc]:
    yield stack.drift("reread", "shadow", reread_interval_s=INTERVAL_S)


def decisions(drift: DriftProc, application: str) -> list[Decision]:
    r = httpx.get(f"{drift.url}/v1/decisions", params={"application": application}, headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    found = [Decision.model_validate(d) for d in r.json()["decisions"]]
    return sorted(found, key=lambda d: d.event.received_at)


def rereads(drift: DriftProc, outcome: str) -> float:
    text = httpx.get(f"{drift.url}/metrics", timeout=5).text
    family = next((f for f in text_string_to_metric_families(text) if f.name == "driftwise_rereads"), None)
    assert family is not None, "the drift agent's /metrics has no driftwise_rereads counter"
    return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels.get("outcome") == outcome)


def live_of(stack: Stack, application: str) -> tuple[dict, dict]:
    """The drifted managed resource of the application: its Argo CD item and its live object."""
    r = httpx.get(f"{stack.sandbox.argocd}/api/v1/applications/{application}/managed-resources",
                  headers={"Authorization": "Bearer sandbox-argocd-token"}, timeout=5)
    assert r.status_code == 200, r.text
    item = next(i for i in r.json()["items"] if i["modified"])
    return item, json.loads(item["liveState"])


def edit_live(stack: Stack, item: dict, patch: dict) -> None:
    r = httpx.post(f"{stack.sandbox.argocd}/sandbox/live", timeout=5, json={
        "application": item["application"], "kind": item["kind"], "name": item["name"],
        "namespace": item["namespace"], "patch": patch})
    assert r.status_code == 200, r.text
    assert r.json()["sync"] == "OutOfSync"


def replicas_after(decision: Decision) -> list[object]:
    assert decision.report is not None, decision.error
    return [c.after for d in decision.report.drifts for c in d.changes if c.path == "/spec/replicas"]


def wait_final(drift: DriftProc, application: str, count: int) -> list[Decision]:
    found: list[Decision] = []

    def done() -> bool:
        found[:] = decisions(drift, application)
        return len(found) >= count and all(d.final for d in found)

    wait_until(done, WAIT_S, f"{count} final decision(s) of {application}", drift.proc)
    return found


def assert_left_alone(drift: DriftProc, application: str, count: int) -> None:
    """Over REREADS further re-reads of the unchanged drift, no event starts (bounded by the counter, not a sleep)."""
    start = rereads(drift, "unchanged")
    wait_until(lambda: rereads(drift, "unchanged") >= start + REREADS, WAIT_S,
               f"{REREADS} re-reads of the unchanged drift of {application} (driftwise_rereads_total"
               "{outcome=\"unchanged\"}; is the Rereader given the agent's metrics?)", drift.proc)
    assert len(decisions(drift, application)) == count
    assert rereads(drift, "changed") == count - 1


def test_a_changed_drift_is_decided_again_and_an_unchanged_one_is_not(stack: Stack, drift: DriftProc) -> None:
    activated = stack.sandbox.activate(SCENARIO)
    (entry,) = activated["applications"]
    application = entry["app"]
    item, live = live_of(stack, application)
    item = {**item, "application": application}
    first_value = live["spec"]["replicas"]

    post(drift, entry["notification"])
    (first,) = wait_final(drift, application, 1)
    assert replicas_after(first) == [first_value]
    assert_left_alone(drift, application, 1)

    # someone scales the live object again: Argo CD sends nothing new (the app never left OutOfSync)
    edit_live(stack, item, {"spec": {"replicas": first_value + 8}})
    first_again, second = wait_final(drift, application, 2)
    assert first_again.event.event_id == first.event.event_id
    assert second.event.notification.event == REREAD_EVENT and second.event.notification.app == application
    assert replicas_after(second) == [first_value + 8]
    assert second.verdict is not None and second.mode == "shadow"
    assert_left_alone(drift, application, 2)

    # and again: each further change is compared with the newest decision, not the first one
    edit_live(stack, item, {"spec": {"replicas": first_value + 13}})
    *_, third = wait_final(drift, application, 3)
    assert third.event.event_id not in {first.event.event_id, second.event.event_id}
    assert replicas_after(third) == [first_value + 13]
    assert_left_alone(drift, application, 3)
    assert stack.sandbox.writes() == []  # shadow: Driftwise wrote nothing to Argo CD
