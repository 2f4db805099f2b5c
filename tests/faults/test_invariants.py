"""The fault suite's checker can fail: each invariant it judges, broken on purpose in hand-made records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from protocol.models import AppliedAction, ArgoNotification, AuditRecord, Decision, DecisionState, DriftEvent
from tests.support.fault_system import SandboxWrite
from tests.support.invariants import judge

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
APP = "invoice-worker-c0001"
EVENT = "e-1"
SYNC = f"/api/v1/applications/{APP}/sync"


def _decision(state: DecisionState = DecisionState.DONE, kinds: tuple[str, ...] = ("dry_run_sync", "sync", "annotate"),
              error: str | None = None) -> Decision:
    notification = ArgoNotification(app=APP, project="prod")
    event = DriftEvent(event_id=EVENT, idempotency_key=DriftEvent.key_for(notification), received_at=NOW,
                       notification=notification)
    return Decision(event=event, state=state, updated_at=NOW, error=error,
                    applied=[_action(k) for k in kinds])


def _action(kind: str, executed: bool = True) -> AppliedAction:
    return AppliedAction(kind=kind, mode="autonomous", executed=executed, at=NOW)  # type: ignore[arg-type]


def _write(seq: int, kind: str, event: str = EVENT, accepted: bool = True) -> SandboxWrite:
    body: dict[str, Any]
    if kind == "annotate":
        value = json.dumps({"state": "enforced", "event": event})
        body = {"patch": json.dumps({"metadata": {"annotations": {"driftwise.io/status": value}}})}
        method, path = "PATCH", f"/api/v1/applications/{APP}"
    else:
        body = {"dryRun": kind == "dry_run", "infos": [{"name": "driftwise-event", "value": event}]}
        method, path = "POST", SYNC
    return SandboxWrite(seq=seq, at="2026-11-20T16:30:00Z", method=method, path=path, application=APP, body=body,
                        accepted=accepted, status=200 if accepted else 503)


def _record(seq: int, kind: str, applied: list[AppliedAction] | None = None) -> AuditRecord:
    payload: dict[str, Any] = {"applied": [a.model_dump(mode="json") for a in applied or []]}
    return AuditRecord(seq=seq, event_id=EVENT, kind=kind, at=NOW, payload=payload,  # type: ignore[arg-type]
                       prev_hash="0" * 64, hash=f"{seq:064x}")


WRITES = [_write(1, "dry_run"), _write(2, "sync"), _write(3, "annotate")]


def _records(decision: Decision) -> list[AuditRecord]:
    return [_record(1, "decision"), _record(2, "apply", decision.applied)]


def _judged(decision: Decision, writes: list[SandboxWrite] = WRITES, records: list[AuditRecord] | None = None):
    return judge("case", {EVENT: APP}, {EVENT: decision}, writes,
                 _records(decision) if records is None else records)


def test_consistent_records_hold() -> None:
    outcome = _judged(_decision())
    assert (outcome.lost, outcome.terminal_twice, outcome.mismatches, outcome.audit_mismatches) == ([], [], [], [])


def test_a_sync_argo_cd_ran_that_the_decision_does_not_record() -> None:
    outcome = _judged(_decision(kinds=("annotate",)))
    (mismatch,) = [m for m in outcome.mismatches if "Argo CD carried out" in m]
    assert "'sync': 1" in mismatch and "records {'annotate': 1}" in mismatch


def test_a_recorded_sync_argo_cd_never_got() -> None:
    outcome = _judged(_decision(), writes=[_write(1, "dry_run"), _write(3, "annotate")])
    assert len(outcome.mismatches) == 1 and "'sync': 1" in outcome.mismatches[0].split("records")[1]


def test_a_skipped_sync_is_no_write() -> None:
    decision = _decision(kinds=("dry_run_sync", "annotate"))
    decision.applied.append(_action("sync", executed=False))
    (mismatch,) = _judged(decision).mismatches  # Argo CD ran a sync the decision lists as not executed
    assert "records {'dry_run': 1, 'annotate': 1}" in mismatch


def test_two_decision_records_are_terminal_twice() -> None:
    decision = _decision()
    outcome = _judged(decision, records=[_record(1, "decision"), _record(2, "decision"),
                                         _record(3, "apply", decision.applied)])
    assert len(outcome.terminal_twice) == 1 and not outcome.mismatches and not outcome.audit_mismatches


def test_writes_without_their_apply_record() -> None:
    outcome = _judged(_decision(), records=[_record(1, "decision")])
    assert not outcome.mismatches and len(outcome.audit_mismatches) == 1
    assert "apply records list {}" in outcome.audit_mismatches[0]


def test_an_unsettled_event_is_lost() -> None:
    outcome = _judged(_decision(state=DecisionState.DECIDING, kinds=()), writes=[], records=[])
    assert outcome.lost == [EVENT] and not outcome.mismatches


def test_a_write_naming_an_event_of_no_decision() -> None:
    outcome = _judged(_decision(), writes=[*WRITES, _write(4, "sync", event="e-other")])
    assert len(outcome.mismatches) == 1 and "e-other" in outcome.mismatches[0]


def test_a_refused_write_needs_an_error_in_the_decision() -> None:
    decision = _decision(kinds=("dry_run_sync",))
    writes = [_write(1, "dry_run"), _write(2, "sync", accepted=False)]
    assert len(_judged(decision, writes=writes).mismatches) == 1
    failed = _decision(state=DecisionState.FAILED, kinds=("dry_run_sync",), error="apply: HTTP 503")
    assert _judged(failed, writes=writes).mismatches == []
