"""Validation of every protocol model: good inputs accepted, bad inputs rejected with a named field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from protocol.context import TrafficReport
from protocol.models import (
    SCHEMA_VERSION,
    Action,
    AnalysisRequest,
    Approval,
    ArgoNotification,
    AuditRecord,
    Decision,
    DecisionState,
    DriftEvent,
    DriftReport,
    Evidence,
    FieldChange,
    Finding,
    Recommendation,
    ResourceDrift,
    ResourceRef,
    Scope,
    SignedRecommendation,
    SyncWindow,
    Verdict,
)

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _rec(**overrides: object) -> dict:
    base = {
        "event_id": "e1", "agent": "security", "domain": "security", "action": "enforce",
        "confidence": 0.9, "reasoning": "privileged: true at /spec/template/spec/containers/0/securityContext",
        "created_at": NOW.isoformat(),
    }
    return {**base, **overrides}


def _error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_scenario_notification_is_a_valid_argo_notification(path: Path) -> None:
    body = yaml.safe_load(path.read_text())["notification"]
    n = ArgoNotification.model_validate(body)
    assert n.app == body["app"]
    assert n.model_dump(by_alias=True) == body


def test_notification_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(ValidationError) as exc:
        ArgoNotification.model_validate({"app": "a", "project": "p", "surprise": 1})
    assert "surprise" in _error_fields(exc.value)
    with pytest.raises(ValidationError) as exc:
        ArgoNotification.model_validate({"app": "a"})
    assert "project" in _error_fields(exc.value)
    with pytest.raises(ValidationError):
        ArgoNotification.model_validate({"app": "Not A Name!", "project": "p"})


def test_drift_event_key_and_version() -> None:
    n = ArgoNotification(app="payments-api", project="prod")
    ev = DriftEvent(event_id="e1", idempotency_key=DriftEvent.key_for(n), received_at=NOW, notification=n)
    assert ev.schema_version == SCHEMA_VERSION
    assert ev.idempotency_key == "argocd/payments-api"
    with pytest.raises(ValidationError):
        DriftEvent.model_validate({**ev.model_dump(mode="json"), "schema_version": "2"})
    with pytest.raises(ValidationError):
        DriftEvent(event_id="e1", idempotency_key="k", received_at=datetime(2026, 1, 1), notification=n)


def test_resource_drift_and_report() -> None:
    ref = ResourceRef(group="apps", kind="Deployment", namespace="payments", name="payments-api")
    assert ref.key == "apps/Deployment/payments/payments-api"
    assert ResourceRef(kind="ConfigMap", name="c").key == "core/ConfigMap/-/c"
    drift = ResourceDrift(ref=ref, changes=[FieldChange(path="/spec/replicas", op="replace", before=3, after=12)])
    report = DriftReport(event_id="e1", application="payments-api", project="prod", drifts=[drift], observed_at=NOW)
    assert DriftReport.model_validate_json(report.model_dump_json()) == report
    with pytest.raises(ValidationError):
        FieldChange(path="spec/replicas", op="replace")
    with pytest.raises(ValidationError):
        FieldChange(path="/spec/replicas", op="delete")


def test_sync_window_uses_argo_field_names() -> None:
    w = SyncWindow.model_validate(
        {"kind": "deny", "schedule": "0 0 * * *", "duration": "1h", "timeZone": "Europe/Berlin", "manualSync": True}
    )
    assert w.time_zone == "Europe/Berlin" and w.manual_sync
    with pytest.raises(ValidationError):
        SyncWindow.model_validate({"kind": "maybe", "schedule": "* * * * *", "duration": "1h"})


def test_evidence_holds_value_xor_error() -> None:
    traffic = TrafficReport(
        namespace="payments", service="payments-api", at=NOW, baseline_start=NOW, baseline_end=NOW,
        request_rate=400.0, baseline_request_rate=40.0, error_ratio=0.003,
    )
    ok = Evidence(id="t", source="prometheus", tool="workload_traffic", value=traffic, observed_at=NOW)
    assert ok.ok and Evidence.model_validate_json(ok.model_dump_json()).value == traffic
    failed = Evidence(id="t", source="prometheus", tool="workload_traffic", error="prometheus: 503", observed_at=NOW)
    assert not failed.ok
    with pytest.raises(ValidationError, match="exactly one"):
        Evidence(id="t", source="prometheus", tool="q", observed_at=NOW)
    with pytest.raises(ValidationError, match="exactly one"):
        Evidence(id="t", source="prometheus", tool="q", value=traffic, error="x", observed_at=NOW)
    with pytest.raises(ValidationError):
        Evidence.model_validate({**ok.model_dump(mode="json"), "value": {"kind": "nonsense"}})


def test_recommendation_actions_and_abstention() -> None:
    rec = Recommendation.model_validate(_rec())
    assert rec.action is Action.ENFORCE
    assert {a.value for a in Action} == {"allow", "defer", "enforce", "escalate"}
    abstain = Recommendation.model_validate(_rec(kind="abstain", action=None, confidence=0.95))
    assert abstain.action is None
    with pytest.raises(ValidationError, match="abstention carries no action"):
        Recommendation.model_validate(_rec(kind="abstain"))
    with pytest.raises(ValidationError, match="needs an action"):
        Recommendation.model_validate(_rec(action=None))
    with pytest.raises(ValidationError):
        Recommendation.model_validate(_rec(action="delete"))
    with pytest.raises(ValidationError):
        Recommendation.model_validate(_rec(confidence=1.2))
    with pytest.raises(ValidationError):
        Recommendation.model_validate(_rec(extra_field=True))


def test_scope_and_findings() -> None:
    ref = ResourceRef(group="apps", kind="Deployment", namespace="ns", name="w")
    scope = Scope.model_validate({"resources": [{"ref": ref.model_dump(), "paths": ["/spec/replicas"]}], "until": NOW})
    rec = Recommendation.model_validate(
        _rec(action="allow", domain="operational", scope=scope.model_dump(mode="json"),
             findings=[Finding(rule_id="op.scale", domain="operational", kind="note", severity="low", resource=ref,
                               message="m").model_dump()])
    )
    assert rec.scope == scope
    with pytest.raises(ValidationError):
        Scope.model_validate({"resources": []})
    with pytest.raises(ValidationError):
        Finding.model_validate({"rule_id": "x", "domain": "security", "kind": "widened", "severity": "apocalyptic",
                                "message": "m"})


def test_analysis_request_binds_event() -> None:
    report = DriftReport(event_id="e1", application="a", project="p", observed_at=NOW)
    AnalysisRequest(event_id="e1", requester="drift", report=report)
    with pytest.raises(ValidationError, match="differs"):
        AnalysisRequest(event_id="e2", requester="drift", report=report)


def test_verdict_escalation_always_needs_a_human() -> None:
    fields = {"event_id": "e1", "allowed_actions": ["escalate"], "confidence": 0.5, "threshold": 0.8, "decided_at": NOW}
    with pytest.raises(ValidationError, match="always needs a human"):
        Verdict(action=Action.ESCALATE, requires_approval=False, **fields)
    v = Verdict(action=Action.ESCALATE, requires_approval=True, **fields)
    assert Verdict.model_validate_json(v.model_dump_json()) == v


def test_decision_state_finality_and_round_trip() -> None:
    assert DecisionState.AWAITING_APPROVAL.final and DecisionState.DONE.final
    assert not DecisionState.DECIDING.final and not DecisionState.RECEIVED.final
    n = ArgoNotification(app="a", project="p")
    ev = DriftEvent(event_id="e1", idempotency_key="argocd/a", received_at=NOW, notification=n)
    signed = SignedRecommendation(jws="a.b.c", recommendation=Recommendation.model_validate(_rec()))
    d = Decision(event=ev, state=DecisionState.DONE, recommendations=[signed], updated_at=NOW)
    assert Decision.model_validate_json(d.model_dump_json()) == d
    with pytest.raises(ValidationError):
        Decision.model_validate({**d.model_dump(mode="json"), "state": "pondering"})


def test_approval_and_audit_record() -> None:
    Approval(decision="approve", action=Action.ENFORCE, approver="alice")
    with pytest.raises(ValidationError):
        Approval(decision="approve", approver="")
    rec = {"seq": 1, "event_id": "e1", "kind": "decision", "at": NOW, "payload": {}, "prev_hash": "0" * 64,
           "hash": "a" * 64}
    AuditRecord.model_validate(rec)
    with pytest.raises(ValidationError):
        AuditRecord.model_validate({**rec, "hash": "not-a-hash"})
    with pytest.raises(ValidationError):
        AuditRecord.model_validate({**rec, "seq": 0})
