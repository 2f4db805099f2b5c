"""Outcomes, piece by piece: the agreement table (and README's copy of it), what one read of Argo CD shows
(agents.drift.outcomes.seen), and the outcomes the store keeps (its cases, one outcome per decision and the
followed decisions, are in tests/stores/test_conformance.py, on both backends).

Argo CD cannot run here: its Application and managed-resources answers are built in the API's JSON shape."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.drift.agreement import TABLE, agreement, markdown
from agents.drift.argocd_client import ArgoApplication, ManagedResource
from agents.drift.outcomes import Horizon, horizon_for, seen
from protocol.models import (
    Action,
    Agreement,
    AppliedAction,
    ArgoNotification,
    Decision,
    DecisionState,
    DriftEvent,
    Outcome,
    OutcomeKind,
    Scope,
    SignedVerdict,
    SyncWindow,
    Verdict,
)
from tests.support.processes import ROOT
from tests.support.reread_fakes import drift_report

T0 = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_every_action_has_a_cell_for_every_outcome_and_readme_shows_the_same_table() -> None:
    assert set(TABLE) == set(Action)
    assert all(set(row) == set(OutcomeKind) for row in TABLE.values())
    assert markdown() in (ROOT / "README.md").read_text(), "README's agreement table differs from agreement.TABLE"


@pytest.mark.parametrize(("action", "outcome", "after", "expected"), [
    (Action.ALLOW, OutcomeKind.REVERTED, timedelta(minutes=59), Agreement.POSSIBLY_UNSAFE),
    (Action.ALLOW, OutcomeKind.REVERTED, HOUR, Agreement.POSSIBLY_UNSAFE),
    (Action.ALLOW, OutcomeKind.REVERTED, HOUR + timedelta(seconds=1), Agreement.DISAGREES),
    (Action.ALLOW, OutcomeKind.ADOPTED, timedelta(minutes=5), Agreement.AGREES),
    (Action.ALLOW, OutcomeKind.PERSISTED, 24 * HOUR, Agreement.AGREES),
    (Action.ENFORCE, OutcomeKind.REVERTED, timedelta(minutes=5), Agreement.AGREES),
    (Action.ENFORCE, OutcomeKind.ADOPTED, timedelta(minutes=5), Agreement.DISAGREES),
    (Action.ENFORCE, OutcomeKind.PERSISTED, 24 * HOUR, Agreement.DISAGREES),
    (Action.DEFER, OutcomeKind.ADOPTED, timedelta(minutes=5), Agreement.DISAGREES),
    (Action.ESCALATE, OutcomeKind.REVERTED, timedelta(minutes=5), Agreement.ESCALATION),
    (Action.ESCALATE, OutcomeKind.APPROVED, timedelta(minutes=5), Agreement.ESCALATION),
    (Action.ENFORCE, OutcomeKind.GONE, timedelta(minutes=5), Agreement.NOT_JUDGED),
    (Action.ALLOW, OutcomeKind.SUPERSEDED, timedelta(minutes=5), Agreement.NOT_JUDGED),
    (Action.ENFORCE, OutcomeKind.REJECTED, timedelta(minutes=5), Agreement.DISAGREES),
])
def test_agreement_of_each_outcome(action: Action, outcome: OutcomeKind, after: timedelta,
                                   expected: Agreement) -> None:
    assert agreement(action, outcome, after) == expected


def test_a_defer_agrees_with_a_revert_by_its_window_and_an_approval_with_the_action_chosen() -> None:
    assert agreement(Action.DEFER, OutcomeKind.REVERTED, 30 * HOUR, by_window=True) == Agreement.AGREES
    assert agreement(Action.DEFER, OutcomeKind.REVERTED, 30 * HOUR, by_window=False) == Agreement.DISAGREES
    # a revert within the hour but after a window that was that close: the weaker action, undone at once
    assert agreement(Action.DEFER, OutcomeKind.REVERTED, HOUR / 2, by_window=False) == Agreement.POSSIBLY_UNSAFE
    assert agreement(Action.ALLOW, OutcomeKind.APPROVED, HOUR, chosen=Action.ALLOW) == Agreement.AGREES
    assert agreement(Action.ALLOW, OutcomeKind.APPROVED, HOUR, chosen=Action.ENFORCE) == Agreement.DISAGREES


# --- one read of Argo CD --------------------------------------------------------------------------


def decision(action: Action, *, until: datetime | None = None, applied: list[AppliedAction] | None = None,
             windows: list[SyncWindow] | None = None) -> Decision:
    n = ArgoNotification(app="api", project="prod", revision="abc")
    event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n), received_at=T0,
                       notification=n)
    report = drift_report(event.event_id, 8).model_copy(update={"sync_windows": windows or []})
    scope = Scope(resources=[{"ref": report.drifts[0].ref, "paths": ["/spec/replicas"]}], until=until)
    verdict = Verdict(event_id=event.event_id, action=action, requires_approval=action == Action.ESCALATE,
                      allowed_actions=[action], confidence=0.9, threshold=0.8, decided_at=T0, scope=scope)
    return Decision(event=event, state=DecisionState.DONE, mode="shadow", report=report,
                    verdict=SignedVerdict(jws="x.y.z", verdict=verdict), applied=applied or [], updated_at=T0)


def application(revision: str = "abc", status: dict[str, Any] | None = None) -> ArgoApplication:
    return ArgoApplication.model_validate({
        "metadata": {"name": "api", "namespace": "argocd"},
        "spec": {"project": "prod", "destination": {"namespace": "shop"}},
        "status": {"sync": {"status": "OutOfSync", "revision": revision}, **(status or {})},
    })


def resources(target: int, live: int, managed_fields: list[dict[str, Any]] | None = None) -> list[ManagedResource]:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}
    live_obj = {**obj, "metadata": {**obj["metadata"], "managedFields": managed_fields or []},
                "spec": {"replicas": live}}
    return [ManagedResource.model_validate({"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "api",
                                            "targetState": json.dumps({**obj, "spec": {"replicas": target}}),
                                            "liveState": json.dumps(live_obj)})]


HORIZON = Horizon(T0 + 24 * HOUR)


def test_a_drift_still_there_is_followed_until_the_horizon_then_persisted() -> None:
    d = decision(Action.ENFORCE)
    assert seen(d, application(), resources(3, 8), T0 + 23 * HOUR, HORIZON) is None
    found = seen(d, application(), resources(3, 8), T0 + 25 * HOUR, HORIZON)
    assert found is not None and (found.kind, found.at) == (OutcomeKind.PERSISTED, HORIZON.at)


def test_a_sync_someone_ran_is_a_revert_by_them_at_its_finish() -> None:
    finished = T0 + timedelta(minutes=7)
    op = {"operationState": {"phase": "Succeeded", "finishedAt": finished.isoformat().replace("+00:00", "Z"),
                             "operation": {"sync": {}, "initiatedBy": {"username": "alice"}}}}
    found = seen(decision(Action.ALLOW), application(status=op), resources(3, 3), T0 + HOUR, HORIZON)
    assert found is not None and (found.kind, found.by, found.at) == (OutcomeKind.REVERTED, "alice", finished)


def test_driftwise_own_sync_names_no_one_and_an_edit_back_names_its_field_manager() -> None:
    ours = {"operationState": {"phase": "Succeeded", "finishedAt": "2026-11-20T16:35:00Z", "operation": {
        "sync": {}, "initiatedBy": {"username": "driftwise"}, "info": [{"name": "driftwise-event", "value": "e"}]}}}
    edited = T0 + timedelta(minutes=20)
    fields = [{"manager": "kubectl-edit", "operation": "Update", "time": edited.isoformat(),
               "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    found = seen(decision(Action.ENFORCE), application(status=ours), resources(3, 3, fields), T0 + HOUR, HORIZON)
    assert found is not None and (found.kind, found.by, found.at) == (OutcomeKind.REVERTED, "kubectl-edit", edited)


def test_git_taking_the_live_value_is_adopted_and_a_missing_resource_or_app_is_gone() -> None:
    found = seen(decision(Action.ALLOW), application(revision="def"), resources(8, 8), T0 + HOUR, HORIZON)
    assert found is not None and found.kind == OutcomeKind.ADOPTED
    gone = seen(decision(Action.ALLOW), application(), [], T0 + HOUR, HORIZON)
    assert gone is not None and gone.kind == OutcomeKind.GONE
    assert seen(decision(Action.ALLOW), None, [], T0 + HOUR, HORIZON).kind == OutcomeKind.GONE  # type: ignore[union-attr]


def test_a_changed_drift_is_not_settled_before_the_horizon() -> None:
    assert seen(decision(Action.ENFORCE), application(), resources(3, 12), T0 + HOUR, HORIZON) is None


def test_horizons_allow_its_expiry_defer_its_window_else_the_setting() -> None:
    day = 24 * HOUR
    assert horizon_for(decision(Action.ALLOW, until=T0 + 6 * HOUR), day, day).at == T0 + 6 * HOUR
    assert horizon_for(decision(Action.ENFORCE), day, day).at == T0 + day
    sunday = SyncWindow(kind="allow", schedule="0 2 * * 0", duration="4h", applications=["*"])
    h = horizon_for(decision(Action.DEFER, windows=[sunday]), day, day)
    window = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    assert (h.window, h.at) == (window, window)


# --- the store ------------------------------------------------------------------------------------


def outcome_of(d: Decision, kind: OutcomeKind) -> Outcome:
    return Outcome(event_id=d.event.event_id, kind=kind, action=Action.ENFORCE, mode="shadow",
                   agreement=Agreement.AGREES, decided_at=T0, at=T0 + HOUR, after_s=3600)


# --- the agreement report (issue 19) --------------------------------------------------------------


def decided(action: Action, kind: OutcomeKind | None, agreement_: Agreement, *, project: str = "prod",
            mode: str = "shadow", at: datetime = T0 + HOUR) -> Decision:
    d = decision(action).model_copy(update={"mode": mode})
    assert d.report is not None
    d = d.model_copy(update={"report": d.report.model_copy(update={"project": project})})
    if kind is None:
        return d
    return d.model_copy(update={"outcome": Outcome(
        event_id=d.event.event_id, kind=kind, action=action, mode=mode, agreement=agreement_, decided_at=T0, at=at,
        after_s=(at - T0).total_seconds(), by="alice")})


def test_the_report_counts_agreement_per_action_and_project_and_lists_unsafe_disagreements_first() -> None:
    from agents.drift.report import PromotionRule, build_report

    decisions = ([decided(Action.ENFORCE, OutcomeKind.REVERTED, Agreement.AGREES)] * 3
                 + [decided(Action.ENFORCE, OutcomeKind.ADOPTED, Agreement.DISAGREES, at=T0 + 2 * HOUR),
                    decided(Action.ALLOW, OutcomeKind.REVERTED, Agreement.POSSIBLY_UNSAFE, at=T0 + HOUR / 6),
                    decided(Action.ESCALATE, OutcomeKind.PERSISTED, Agreement.ESCALATION),
                    decided(Action.ALLOW, None, Agreement.AGREES, project="staging")])
    report = build_report(decisions, T0 + 48 * HOUR, since=timedelta(days=7), project=None,
                          mode_for=lambda p: "shadow", rule=PromotionRule(min_decisions=3))
    enforce = report.per_action["enforce"]
    assert (enforce.decided, enforce.judged, enforce.agrees, enforce.disagrees, enforce.ratio) == (4, 4, 3, 1, 0.75)
    assert report.per_action["escalate"].escalations == 1 and report.per_action["escalate"].judged == 0
    assert report.confusion["allow"] == {"pending": 1, "reverted": 1}
    assert report.outcomes == {"adopted": 1, "pending": 1, "persisted": 1, "reverted": 4}
    assert [d.agreement for d in report.disagreements] == [Agreement.POSSIBLY_UNSAFE, Agreement.DISAGREES]
    assert report.escalation_rate == round(1 / 7, 4)
    assert report.time_to_outcome_p50_s["reverted"] == 3600
    prod, staging = report.readiness
    assert not prod.ready and prod.next_mode == "advisory" and prod.judged == 5
    assert prod.line.startswith("project prod: stay in shadow; before advisory: agreement 60%, at least 95% wanted; "
                                "1 possibly unsafe disagreement(s) in the last 14 days")
    assert not staging.ready and "3 more judged drifts in shadow mode" in staging.line


def test_a_project_is_ready_when_the_rule_holds_and_bad_requests_say_what_to_do() -> None:
    from agents.drift.report import PromotionRule, ReportError, build_report, parse_since

    good = [decided(Action.ENFORCE, OutcomeKind.REVERTED, Agreement.AGREES, mode="advisory")] * 4
    old_unsafe = decided(Action.ALLOW, OutcomeKind.REVERTED, Agreement.POSSIBLY_UNSAFE, mode="advisory",
                         at=T0 + HOUR / 6)
    rule = PromotionRule(min_decisions=4, min_agreement=0.75, quiet_days=1)
    (ready,) = build_report([*good, old_unsafe], T0 + 72 * HOUR, since=None, project="prod",
                            mode_for=lambda p: "advisory", rule=rule).readiness
    assert ready.ready and ready.line.startswith("project prod: ready for autonomous (5 judged drifts in advisory, "
                                                 "80% agreement")
    with pytest.raises(ReportError, match=r"no decision of project 'nope' .*projects with decisions: prod"):
        build_report(good, T0 + HOUR, since=None, project="nope", mode_for=lambda p: "shadow", rule=rule)
    with pytest.raises(ReportError, match="no decision in this period"):
        build_report(good, T0 + 30 * 24 * HOUR, since=timedelta(days=7), project=None, mode_for=lambda p: "shadow",
                     rule=rule)
    assert parse_since("36h") == timedelta(hours=36)
    for bad in ("7", "0d", "7w", "-1d", "", chr(0x661) + "d"):  # an Arabic-Indic digit: isdigit() but not ASCII
        with pytest.raises(ReportError, match="whole number and a unit"):
            parse_since(bad)
    with pytest.raises(ReportError, match="at most 3660 days back"):
        parse_since("9" * 30 + "d")
