"""The evaluation loop against a stub system (httpx MockTransport): activate, post, follow, score."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from driftwise.evaluation import (
    Endpoints,
    EvalError,
    SystemClient,
    SystemUnavailable,
    accuracy_line,
    evaluate,
    load_labelled,
)
from protocol.models import (
    Action,
    ArgoNotification,
    Decision,
    DecisionState,
    DriftEvent,
    SignedVerdict,
    Verdict,
)
from tests.support.processes import SCENARIOS

NOW = "2026-11-20T16:30:00Z"
ENDPOINTS = Endpoints(drift_url="http://drift", sandbox_url="http://sandbox", webhook_token="wh",
                      approvals_token="ap")


class StubSystem:
    """Decides every app with a fixed answer after two polls; can hold decisions open and dedup per app."""

    def __init__(self, answers: dict[str, tuple[Action, bool]], never_final: set[str] | None = None) -> None:
        self.answers = answers
        self.never_final = never_final or set()
        self.active: str | None = None
        self.events: dict[str, dict[str, Any]] = {}
        self.open_by_app: dict[str, str] = {}
        self.seen_bodies: list[dict[str, Any]] = []
        self.rejected: list[str] = []

    def decision(self, event_id: str) -> dict[str, Any]:
        ev = self.events[event_id]
        ev["polls"] += 1
        app = ev["note"]["app"]
        note = ArgoNotification.model_validate(ev["note"])
        state = DecisionState.DECIDING
        verdict = None
        if app not in self.never_final and ev["polls"] > 2:
            action, human = self.answers[app]
            state = DecisionState.AWAITING_APPROVAL if human else DecisionState.DONE
            if ev.get("rejected"):
                state = DecisionState.DONE
            verdict = SignedVerdict(jws="x", verdict=Verdict(
                event_id=event_id, action=action, requires_approval=human, allowed_actions=[action],
                confidence=0.9, threshold=0.8, decided_at=NOW))
        if state is DecisionState.DONE:
            self.open_by_app.pop(app, None)
        return Decision(event=DriftEvent(event_id=event_id, idempotency_key=app, received_at=NOW, notification=note),
                        state=state, verdict=verdict, updated_at=NOW).model_dump(mode="json")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "sandbox" and path == "/sandbox/scenarios/activate":
            self.active = json.loads(request.content)["id"]
            return httpx.Response(200, json={"id": self.active, "now": NOW, "applications": []})
        if path == "/v1/webhooks/argocd":
            assert request.headers["authorization"] == "Bearer wh"
            body = json.loads(request.content)
            self.seen_bodies.append(body)
            app = body["app"]
            if app in self.open_by_app:
                return httpx.Response(202, json={"event_id": self.open_by_app[app], "state": "x", "duplicate": True})
            event_id = f"e{len(self.events)}"
            self.events[event_id] = {"note": body, "polls": 0}
            self.open_by_app[app] = event_id
            return httpx.Response(202, json={"event_id": event_id, "state": "received", "duplicate": False})
        if path.startswith("/v1/decisions/"):
            assert request.headers["authorization"] == "Bearer ap"
            parts = path.split("/")
            if len(parts) == 5 and parts[4] == "reject":
                self.rejected.append(parts[3])
                self.events[parts[3]]["rejected"] = True
                self.open_by_app.pop(self.events[parts[3]]["note"]["app"], None)
                return httpx.Response(200, json={})
            return httpx.Response(200, json=self.decision(parts[3]))
        return httpx.Response(404)


async def test_scores_each_scenario_and_never_sends_the_labels() -> None:
    scenarios = load_labelled(SCENARIOS)[:4]
    answers = {s.notification.app: (s.expect.action, s.expect.action is Action.ESCALATE) for s in scenarios}
    first = scenarios[0].notification.app
    answers[first] = (Action.ENFORCE, True)  # needs a human -> counts as escalate
    stub = StubSystem(answers)
    async with httpx.AsyncClient(transport=httpx.MockTransport(stub)) as http:
        results = await evaluate(SystemClient(http, ENDPOINTS), scenarios, timeout_s=5)
    assert results[0].got == "escalate"
    assert [r.score for r in results[1:]] == ["correct"] * 3
    assert accuracy_line(results).startswith("accuracy: 3/4 correct")
    sent = json.dumps(stub.seen_bodies)
    assert "expect" not in sent and "acceptable" not in sent
    assert all(r.latency_ms is not None and r.confidence == 0.9 for r in results)


async def test_a_still_open_decision_of_the_same_app_is_closed_before_the_next_scenario() -> None:
    scenarios = load_labelled(SCENARIOS)[:2]
    same_app = scenarios[0].notification.model_copy(update={"app": "shared"})
    scenarios = [s.model_copy(update={"notification": same_app}) for s in scenarios]
    stub = StubSystem({"shared": (Action.ENFORCE, True)})
    async with httpx.AsyncClient(transport=httpx.MockTransport(stub)) as http:
        results = await evaluate(SystemClient(http, ENDPOINTS), scenarios, timeout_s=5)
    assert stub.rejected == ["e0"]
    assert [r.event_id for r in results] == ["e0", "e1"]


async def test_a_decision_that_never_ends_is_wrong_with_a_reason() -> None:
    scenarios = load_labelled(SCENARIOS)[:1]
    stub = StubSystem({}, never_final={scenarios[0].notification.app})
    async with httpx.AsyncClient(transport=httpx.MockTransport(stub)) as http:
        results = await evaluate(SystemClient(http, ENDPOINTS), scenarios, timeout_s=0.3)
    assert results[0].score == "wrong" and results[0].got == "none"
    assert "still deciding" in (results[0].error or "")


async def test_an_unreachable_system_stops_the_run() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(SystemUnavailable, match="does not answer"):
            await evaluate(SystemClient(http, ENDPOINTS), load_labelled(SCENARIOS)[:1], timeout_s=1)
    assert issubclass(SystemUnavailable, EvalError)
