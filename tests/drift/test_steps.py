"""Each step alone, with typed inputs: what it sets is DriftState's, and what it does with its input."""

from __future__ import annotations

import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agents.drift.evidence_plan import PlannedCall
from agents.drift.runner import VerdictPut
from agents.drift.steps import Apply, DriftState, Gather, GraphDeps, Sign, Update
from agents.drift.steps.common import StepOrderError
from protocol.context import QueryResult
from protocol.models import Approval, DriftReport, Evidence, SignedVerdict, Verdict
from protocol.needs import BACKEND, TOOL, MemoryArgs, NamespaceArgs, Need
from protocol.signing import Signer, TrustStore, Verifier, generate_key
from tests.support.drift_core import NOW, FakeObserver, FakeReasoner, FixedClock, PassGuardrail, drift_config, event


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def test_every_step_update_names_fields_of_the_state() -> None:
    # agents.drift.steps imports every step module; the runner adds its own (VerdictPut)
    updates = _all_subclasses(Update)
    assert {u.__name__ for u in updates} >= {"Observed", "Gathered", "Delegated", "Reasoned", "Signed", "Guarded",
                                             "ApprovalRequested", "Approved", "Applied", VerdictPut.__name__}
    for update in updates:
        extra = set(update.model_fields) - set(DriftState.model_fields)
        assert not extra, f"{update.__name__} sets {extra}, which DriftState does not hold"
        for name, field in update.model_fields.items():
            held = DriftState.model_fields[name].annotation  # pydantic keeps reducers in metadata, not here
            assert field.annotation == held or field.annotation in typing.get_args(held), (update.__name__, name)


class Tools:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def fetch(self, args: Any, *, evidence_id: str, observed_at: datetime, timeout_s: float) -> Evidence:
        self.calls.append((BACKEND[args.need], TOOL[args.need]))
        if args.need == Need.NAMESPACE:
            raise ConnectionError("refused")
        return Evidence(id=evidence_id, source=BACKEND[args.need], tool=TOOL[args.need], arguments=args.arguments(),
                        observed_at=observed_at, value=QueryResult(query="up", result_type="vector"))


class UnusedReplay:
    async def consume(self, claims: Any, consumer: str) -> None:
        raise AssertionError("only delegate uses tokens (tests/drift/test_replay.py)")


def _deps(tmp_path: Path, **overrides: Any) -> GraphDeps:
    key = generate_key("drift")
    trust = TrustStore()
    trust.add("drift", key)
    base: dict[str, Any] = dict(
        config=drift_config(tmp_path), clock=FixedClock(None, None), observer=FakeObserver(),  # type: ignore[arg-type]
        tools=None, plan=lambda r, n: [], peers=None, wants=lambda k, p, r: False, reasoner=FakeReasoner(),
        signer=Signer("drift", key), verifier=Verifier(trust, "drift"), replay=UnusedReplay(),
        guardrail=PassGuardrail())
    return GraphDeps(**{**base, **overrides})


def _state(**fields: Any) -> DriftState:
    ev = event()
    report = DriftReport(event_id=ev.event_id, application="payments-api", project="prod", observed_at=NOW)
    return DriftState(event=ev, report=report, **fields)


async def test_gather_turns_a_failed_call_into_evidence_of_the_failure(tmp_path: Path) -> None:
    tools = Tools()
    plan = [PlannedCall(id="rate", args=MemoryArgs(namespace="ns", workload="w", start=NOW, end=NOW)),
            PlannedCall(id="hpa", args=NamespaceArgs(name="ns"))]
    out = await Gather(_deps(tmp_path, tools=tools, plan=lambda r, n: plan))(_state())
    assert sorted(tools.calls) == [("kubernetes", "namespace"), ("prometheus", "workload_memory")]
    by_id = {e.id: e for e in out.evidence}
    assert by_id["rate"].error is None
    assert by_id["hpa"].error == "ConnectionError: refused" and by_id["hpa"].observed_at == NOW


async def test_apply_of_a_rejected_verdict_applies_nothing_and_says_who(tmp_path: Path) -> None:
    class NeverCalled:
        async def apply(self, **kw: Any) -> Any:
            raise AssertionError("a rejected verdict must not be carried out")

    deps = _deps(tmp_path, applier=NeverCalled())
    state = _state(approval=Approval(decision="reject", approver="sre@example.com", comment="not now"), mode="advisory")
    verdict = Verdict(event_id=state.event.event_id, action="enforce", requires_approval=True,
                      allowed_actions=["enforce"], confidence=0.9, threshold=0.8, decided_at=NOW)
    state = state.model_copy(update={"verdict": SignedVerdict(jws="x.y.z", verdict=verdict)})
    out = await Apply(deps)(state)
    [nothing] = out.applied
    assert (nothing.kind, nothing.executed, nothing.detail["rejected_by"]) == ("none", False, "sre@example.com")
    assert out.apply_error is None and out.acted


async def test_a_step_before_its_input_is_a_named_order_error(tmp_path: Path) -> None:
    with pytest.raises(StepOrderError, match="reason has not run"):
        await Sign(_deps(tmp_path))(_state())
