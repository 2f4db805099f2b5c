"""A shadow week, end to end: people act on a few dozen decided drifts, the clock moves, and every outcome
the drift agent records (and its agreement) is what the people here did.

Sandbox, four MCP servers, both specialists and a drift agent in shadow mode (its `regulated` project in
advisory, so that people answer those escalations) as separate processes. Ten visible scenarios, each
with three clones, are one world on one clock. The test decides them all, then plays the SREs through
the sandbox's people endpoints (sync as a named user, commit the live values, edit back, delete) and the
approvals API, moving the sandbox clock from +10 min to +2 h, +25 h and +34 h. Each decision's outcome,
read back from GET /v1/decisions/{id}, must name what was done, by whom, how long after the decision,
and the agreement the README's table gives it; each one is in the audit chain once, and the chain verifies.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agents.drift.audit import AuditLog, AuditVerification
from protocol.models import Action, Agreement, AuditRecord, Decision, DecisionList, OutcomeKind
from protocol.report import AgreementReport
from tests.support.acting_stack import AUTH, Stack, post
from tests.support.binaries import IN_CI
from tests.support.cli import driftwise_cmd
from tests.support.e2e import DriftProc
from tests.support.processes import ROOT, SCENARIOS, wait_until

pytestmark = pytest.mark.slow

WAIT_S = 40.0  # bound on each wait (a few dozen decisions on a loaded 2-core runner)
CLONES = 3
SCENARIO_IDS = [
    "v01-payments-emergency-scale-up", "v06-hpa-owned-replicas",  # allow
    "v02-configmap-environment-tuning",  # defer
    "v03-privileged-container", "v07-unexplained-scale-down",  # enforce
    "v08-secret-value-changed",  # escalate (shadow)
    "v10-pci-change-freeze",  # escalate (its project in advisory: a human answers)
]
WINDOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
"""The scenarios' project allows syncs on Sundays from 02:00 UTC: the window a defer waits for."""
SOON, LATER, NEXT_DAY, WINDOW_PASSED = (timedelta(minutes=10), timedelta(hours=2), timedelta(hours=25),
                                        timedelta(hours=34))

A, K, G = Action, OutcomeKind, Agreement


@dataclass(frozen=True)
class Act:
    """What the people do to one application's drift, and what the drift agent must then record."""

    when: timedelta | None  # None: nobody touches it
    do: str  # sync | commit | edit | delete-resource | delete-app | approve | reject | edit-again | nothing
    who: str
    outcome: OutcomeKind
    agreement: Agreement


def _plan(action: Action) -> list[Act]:
    """The four applications (the scenario and its three clones) of each decided action, in order."""
    return {
        A.ALLOW: [Act(SOON, "sync", "alice", K.REVERTED, G.POSSIBLY_UNSAFE),
                  Act(LATER, "edit", "bob", K.REVERTED, G.DISAGREES),
                  Act(LATER, "commit", "carol", K.ADOPTED, G.AGREES),
                  Act(None, "nothing", "", K.PERSISTED, G.AGREES)],
        A.ENFORCE: [Act(SOON, "sync", "alice", K.REVERTED, G.AGREES),
                    Act(LATER, "commit", "carol", K.ADOPTED, G.DISAGREES),
                    Act(LATER, "delete-resource", "", K.GONE, G.NOT_JUDGED),
                    Act(None, "nothing", "", K.PERSISTED, G.DISAGREES)],
        A.DEFER: [Act(SOON, "sync", "alice", K.REVERTED, G.AGREES),
                  Act(LATER, "commit", "carol", K.ADOPTED, G.DISAGREES),
                  Act(LATER, "edit-again", "", K.SUPERSEDED, G.NOT_JUDGED),
                  Act(None, "nothing", "", K.PERSISTED, G.DISAGREES)],
    }[action]


def _escalation_plan(advisory: bool) -> list[Act]:
    if advisory:
        return [Act(SOON, "approve", "dana", K.APPROVED, G.ESCALATION),
                Act(SOON, "reject", "erin", K.REJECTED, G.ESCALATION),
                Act(None, "nothing", "", K.PERSISTED, G.ESCALATION),
                Act(None, "nothing", "", K.PERSISTED, G.ESCALATION)]
    return [Act(SOON, "sync", "alice", K.REVERTED, G.ESCALATION),
            Act(LATER, "delete-app", "", K.GONE, G.ESCALATION),
            Act(None, "nothing", "", K.PERSISTED, G.ESCALATION),
            Act(None, "nothing", "", K.PERSISTED, G.ESCALATION)]


@dataclass
class App:
    name: str
    scenario: str
    expected: Action
    act: Act
    event_id: str = ""
    decision: Decision | None = None
    acted_at: datetime | None = None


@pytest.fixture(scope="module")
def drift(stack: Stack) -> DriftProc:
    # a clone's project is the scenario's with the clone's suffix
    advisory = {"regulated"} | {f"regulated-c{i:04d}" for i in range(1, CLONES + 1)}
    # a deadline that a burst of decisions on a loaded 2-core runner does not reach: timing is not the point here
    return stack.drift("week", "shadow", reread_interval_s=0.3, decision_deadline_s=60.0,
                       project_modes=dict.fromkeys(advisory, "advisory"))


def _expected(scenario_id: str) -> tuple[str, Action]:
    doc = yaml.safe_load((SCENARIOS / f"{scenario_id}.yaml").read_text())
    return doc["argocd"]["application"]["metadata"]["name"], Action(doc["expect"]["action"])


def _get(drift: DriftProc, event_id: str) -> Decision:
    r = httpx.get(f"{drift.url}/v1/decisions/{event_id}", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return Decision.model_validate(r.json())


def _argocd(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{stack.sandbox.argocd}{path}", json=body, timeout=10)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def _clock(stack: Stack, advance_s: float = 0.0) -> datetime:
    body = _argocd(stack, "/sandbox/clock", {"advance_s": advance_s})
    return datetime.fromisoformat(body["now"].replace("Z", "+00:00"))


def _first_change(decision: Decision) -> tuple[Any, Any]:
    assert decision.report is not None
    drift = decision.report.drifts[0]
    return drift, drift.changes[0]


def _people(stack: Stack, drift: DriftProc, app: App) -> None:
    """Do what `app.act` says, as people would."""
    assert app.decision is not None
    do, who = app.act.do, app.act.who
    if do == "sync":
        _argocd(stack, "/sandbox/people/sync", {"application": app.name, "user": who})
    elif do == "commit":
        _argocd(stack, "/sandbox/people/commit", {"application": app.name, "author": who,
                                                  "message": "keep what production runs"})
    elif do in ("edit", "delete-resource", "edit-again"):
        resource, change = _first_change(app.decision)
        ref = {"application": app.name, "kind": resource.ref.kind, "name": resource.ref.name,
               "namespace": resource.ref.namespace}
        if do == "edit":
            _argocd(stack, "/sandbox/people/edit", {**ref, "user": who})
        elif do == "delete-resource":
            _argocd(stack, "/sandbox/people/delete", ref)
        else:  # someone changes the drifted value again: another drift
            keys = change.path.strip("/").split("/")
            patch: Any = f"{change.after}-again"
            for key in reversed(keys):
                patch = {key: patch}
            _argocd(stack, "/sandbox/live", {**ref, "patch": patch})
    elif do == "delete-app":
        _argocd(stack, "/sandbox/people/delete", {"application": app.name})
    elif do in ("approve", "reject"):
        r = httpx.post(f"{drift.url}/v1/decisions/{app.event_id}/{do}", headers=AUTH, timeout=30,
                       json={"approver": who, "comment": f"{who}: change freeze, {do}d"})
        assert r.status_code == 200, r.text
    else:
        raise AssertionError(f"unknown act {do!r}")


def _wait_outcomes(drift: DriftProc, apps: list[App], what: str) -> None:
    pending = list(apps)

    def settled() -> bool:
        pending[:] = [a for a in pending if _get(drift, a.event_id).outcome is None]
        return not pending

    began = time.monotonic()
    wait_until(settled, WAIT_S, f"the outcomes of {what} (still none: {[a.name for a in pending][:5]})", drift.proc)
    print(f"{len(apps)} outcomes of {what} in {time.monotonic() - began:.1f} s")


async def _audit(db: Path) -> tuple[list[AuditRecord], AuditVerification]:
    """The drift agent's audit chain, read beside the running agent (SQLite WAL: readers never block it)."""
    async with AuditLog(db) as audit:
        return await audit.records(), await audit.verify()


def _check(app: App, found: Decision, horizon_at: datetime | None) -> None:
    assert app.decision is not None and app.decision.verdict is not None
    outcome = found.outcome
    assert outcome is not None, app.name
    verdict = app.decision.verdict.verdict
    label = f"{app.name} ({verdict.action.value}, {app.act.do})"
    assert (outcome.kind, outcome.agreement) == (app.act.outcome, app.act.agreement), f"{label}: {outcome}"
    assert outcome.action == verdict.action and outcome.decided_at == verdict.decided_at, label
    when = app.acted_at if app.act.when is not None else horizon_at
    assert when is not None, label
    assert outcome.at == when, f"{label}: at {outcome.at}, acted at {when}"
    assert outcome.after_s == (when - verdict.decided_at).total_seconds(), label
    if app.act.do in ("sync", "edit", "commit", "approve", "reject"):
        assert outcome.by == app.act.who, f"{label}: by {outcome.by!r}"
    if app.act.do in ("approve", "reject"):
        assert outcome.reason == f"{app.act.who}: change freeze, {app.act.do}d", label


def test_a_shadow_week_records_what_people_did_to_every_drift(stack: Stack, drift: DriftProc) -> None:
    base, *also = SCENARIO_IDS
    world = _argocd(stack, "/sandbox/clones", {"id": base, "count": CLONES, "also": also})
    bases = {name: (sid, action) for sid in SCENARIO_IDS for name, action in [_expected(sid)]}
    assert world["applications"], world
    apps: list[App] = []
    for entry in sorted(world["applications"], key=lambda e: e["app"]):
        name = entry["app"]
        sid, action = bases[name.rsplit("-c0", 1)[0] if "-c0" in name else name]
        apps.append(App(name, sid, action, Act(None, "nothing", "", K.PERSISTED, G.AGREES)))
    assert len(apps) == len(SCENARIO_IDS) * (CLONES + 1)
    notifications = {e["app"]: e["notification"] for e in world["applications"]}
    began = time.monotonic()
    for batch in range(0, len(apps), len(SCENARIO_IDS)):  # a day's drifts arrive a few at a time
        arriving = apps[batch:batch + len(SCENARIO_IDS)]
        for a in arriving:
            a.event_id = post(drift, notifications[a.name])

        def decided_all(arriving: list[App] = arriving) -> bool:
            for a in arriving:
                a.decision = _get(drift, a.event_id)
            return all(a.decision is not None and a.decision.final for a in arriving)

        wait_until(decided_all, WAIT_S, f"{len(arriving)} decisions", drift.proc)
    print(f"\n{len(apps)} decisions in {time.monotonic() - began:.1f} s")
    start = _clock(stack)
    # people act on what was decided: the acts of each decided action (and mode) go round its decisions
    groups: dict[tuple[Action, str], int] = {}
    for a in apps:
        assert a.decision is not None and a.decision.verdict is not None, a.name
        assert a.decision.outcome is None, f"{a.name}: an outcome before anyone did anything"
        verdict = a.decision.verdict.verdict
        if verdict.action != a.expected:  # a loaded runner can make a deadline escalate: still followed
            print(f"{a.name}: {verdict.action.value}, not {a.expected.value}: {[r.code for r in verdict.reasons]}")
        key = (verdict.action, a.decision.mode)
        index = groups[key] = groups.get(key, -1) + 1
        plan = (_escalation_plan(a.decision.mode == "advisory") if verdict.action == A.ESCALATE
                else _plan(verdict.action))
        a.act = plan[index % len(plan)]
    done = sum(a.decision is not None and a.decision.verdict is not None
               and a.decision.verdict.verdict.action == a.expected for a in apps)
    assert done >= len(apps) * 3 // 4, f"only {done} of {len(apps)} decisions as labelled"

    for step in (SOON, LATER):
        now = _clock(stack, (start + step - _clock(stack)).total_seconds())
        acting = [a for a in apps if a.act.when == step]
        for a in acting:
            a.acted_at = now
            _people(stack, drift, a)
        _wait_outcomes(drift, acting, f"what people did at +{step}")
    untouched = [a for a in apps if a.act.when is None]
    assert all(_get(drift, a.event_id).outcome is None for a in untouched), "persisted before the horizon"

    def decided(a: App) -> Action:
        assert a.decision is not None and a.decision.verdict is not None
        return a.decision.verdict.verdict.action

    _clock(stack, (start + NEXT_DAY - _clock(stack)).total_seconds())
    _wait_outcomes(drift, [a for a in untouched if decided(a) != A.DEFER], "the drifts left alone for a day")
    deferred = [a for a in untouched if decided(a) == A.DEFER]
    assert all(_get(drift, a.event_id).outcome is None for a in deferred), "a defer persisted before its window"
    _clock(stack, (start + WINDOW_PASSED - _clock(stack)).total_seconds())
    _wait_outcomes(drift, deferred, "the deferred drifts left alone past their window")

    outcomes: dict[str, Decision] = {}
    for a in apps:
        found = outcomes[a.event_id] = _get(drift, a.event_id)
        assert a.decision is not None and a.decision.verdict is not None
        verdict = a.decision.verdict.verdict
        horizon = None
        if a.act.when is None:
            horizon = (verdict.scope.until if verdict.action == A.ALLOW and verdict.scope is not None else
                       WINDOW if verdict.action == A.DEFER else verdict.decided_at + timedelta(hours=24))
        _check(a, found, horizon)

    # the changed drift was decided anew: its old decision names the new one
    for a in apps:
        if a.act.do == "edit-again":
            outcome = outcomes[a.event_id].outcome
            assert outcome is not None and outcome.superseded_by, a.name
            successor = _get(drift, outcome.superseded_by)
            assert successor.event.notification.app == a.name and successor.report is not None
    tally: dict[str, int] = {}
    for d in outcomes.values():
        assert d.outcome is not None
        tally[d.outcome.agreement.value] = tally.get(d.outcome.agreement.value, 0) + 1
    print(f"\nshadow week: {len(outcomes)} outcomes, agreement {dict(sorted(tally.items()))}")

    # the agreement report over the same state: its numbers are the ones counted here from what people did
    r = httpx.get(f"{drift.url}/v1/report", params={"since": "7d"}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    report = AgreementReport.model_validate(r.json())
    # every decision of the week: those above and the ones the re-read started for changed drifts
    listed = httpx.get(f"{drift.url}/v1/decisions", headers=AUTH, timeout=30)
    assert listed.status_code == 200, listed.text
    week = [d for d in DecisionList.model_validate(listed.json()).decisions if d.verdict is not None]
    assert set(outcomes) <= {d.event.event_id for d in week}
    assert sum(sum(m.values()) for m in report.decisions.values()) == len(week)
    for action in {a.value for a in Action} & set(report.per_action):
        mine = [d.outcome for d in week if d.outcome is not None and d.outcome.action.value == action]
        count = report.per_action[action]
        assert count.agrees == sum(o.agreement == G.AGREES for o in mine), action
        assert count.possibly_unsafe == sum(o.agreement == G.POSSIBLY_UNSAFE for o in mine), action
        assert count.disagrees == sum(o.agreement in (G.DISAGREES, G.POSSIBLY_UNSAFE) for o in mine), action
    assert report.disagreements and report.disagreements[0].agreement == G.POSSIBLY_UNSAFE
    text = httpx.get(f"{drift.url}/metrics", timeout=10).text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "driftwise_outcomes")
    by_agreement: Counter[str] = Counter()
    for sample in family.samples:
        if sample.name.endswith("_total"):
            by_agreement[sample.labels["agreement"]] += int(sample.value)
    assert by_agreement == Counter(d.outcome.agreement.value for d in week if d.outcome)
    cli = driftwise_cmd("report", "--project", "prod", "--since", "7d", "--url", drift.url,
                        "--config", str(stack.root / "week.yaml"), timeout=60)
    assert cli.returncode == 0, cli.stderr
    last = cli.stdout.strip().splitlines()[-1]
    assert last.startswith("project prod: stay in shadow; before advisory: "), cli.stdout
    print(cli.stdout)
    began = time.monotonic()
    _check_new_numbers(stack, drift, apps)
    print(f"issue 19's numbers, the state read and the page in {time.monotonic() - began:.1f} s")
    unknown = driftwise_cmd("report", "--project", "nope", "--url", drift.url,
                            "--config", str(stack.root / "week.yaml"), timeout=60)
    assert unknown.returncode != 0 and "no decision of project 'nope'" in unknown.stderr + unknown.stdout

    # every outcome is an audit record, once, carrying what the API shows; the chain verifies
    records, verification = asyncio.run(_audit(Path(drift.state_dir) / "drift.sqlite"))
    audited: dict[str, list[AuditRecord]] = {}
    for r in records:
        if r.kind == "outcome":
            audited.setdefault(r.event_id, []).append(r)
    for event_id, d in outcomes.items():
        assert d.outcome is not None
        assert [r.payload for r in audited.get(event_id, [])] == [d.outcome.model_dump(mode="json")], event_id
    assert verification.ok, verification.problems
    # shadow mode wrote nothing; advisory only asked for approval (its status annotation)
    advisory = {a.name for a in apps if a.decision is not None and a.decision.mode == "advisory"}
    writes = stack.sandbox.writes()
    assert all(w["method"] == "PATCH" and w["application"] in advisory for w in writes), writes


RULE_OF = {"v01-payments-emergency-scale-up": "4", "v06-hpa-owned-replicas": "4",
           "v02-configmap-environment-tuning": "6", "v03-privileged-container": "1",
           "v07-unexplained-scale-down": "5", "v08-secret-value-changed": "2", "v10-pci-change-freeze": "3"}
"""The rubric rule that decides each scenario (shared/scenarios/README.md), read from the scenario, not the code."""
REPORT_DIR = ROOT / "build" / "report"


def _report(drift: DriftProc) -> AgreementReport:
    r = httpx.get(f"{drift.url}/v1/report", params={"since": "7d"}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return AgreementReport.model_validate(r.json())


def _week(drift: DriftProc) -> list[Decision]:
    listed = httpx.get(f"{drift.url}/v1/decisions", headers=AUTH, timeout=30)
    assert listed.status_code == 200, listed.text
    return [d for d in DecisionList.model_validate(listed.json()).decisions if d.verdict is not None]


def _gauges(drift: DriftProc) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{drift.url}/metrics", timeout=10).text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "driftwise_agreement_ratio")
    return {(s.labels["project"], s.labels["action"]): s.value for s in family.samples}


def _check_new_numbers(stack: Stack, drift: DriftProc, apps: list[App]) -> None:
    """Issue 19's remainder on the week's state: per rubric rule, per specialist, per project and action (and its
    gauges), per day; the same report read from the state file beside the running agent; its HTML page."""
    # the report, the decisions and the gauges of one moment (an outcome still arriving moves all three)
    got: dict[str, Any] = {}

    def steady() -> bool:
        got["report"], got["week"], got["gauges"] = _report(drift), _week(drift), _gauges(drift)
        expected = {(p, a): c.ratio for p, acts in got["report"].per_project_action.items()
                    for a, c in acts.items() if c.judged}
        return got["gauges"] == expected and _report(drift) == got["report"]

    wait_until(steady, WAIT_S, "the agreement gauges to equal the report's per project and action", drift.proc)
    report, week = got["report"], got["week"]
    by_name = {a.name: a for a in apps}

    def rule(d: Decision) -> str | None:
        """The label's rule, for a decision decided as labelled (a re-decided drift is its application's)."""
        app = by_name[d.event.notification.app]
        assert d.verdict is not None
        return RULE_OF[app.scenario] if d.verdict.verdict.action == app.expected else None

    labelled = [d for d in week if rule(d) is not None]
    assert sum(c.decided for c in report.per_rule.values()) == len(week), "every decision under one rule"
    if len(labelled) == len(week):  # a loaded runner may escalate on a deadline: then its rule is not the label's
        for number in sorted({rule(d) for d in week}, key=str):
            mine = [d.outcome.agreement for d in week if rule(d) == number and d.outcome is not None]
            count = report.per_rule[str(number)]
            assert count.decided == sum(rule(d) == number for d in week), number
            assert count.agrees == mine.count(G.AGREES), number
            assert count.possibly_unsafe == mine.count(G.POSSIBLY_UNSAFE), number
            assert count.judged == sum(m in (G.AGREES, G.DISAGREES, G.POSSIBLY_UNSAFE) for m in mine), number
    else:
        print(f"{len(week) - len(labelled)} decisions not as labelled: per-rule counts checked in total only")
    for agent, answers in report.per_specialist.items():
        recs = [(d, r.recommendation) for d in week for r in d.recommendations if r.recommendation.agent == agent]
        assert (answers.answered, answers.abstained) == (sum(r.action is not None for _, r in recs),
                                                        sum(r.action is None for _, r in recs)), agent
        assert answers.differed == sum(r.action is not None and d.verdict is not None
                                       and r.action != d.verdict.verdict.action for d, r in recs), agent
    assert {"security", "compliance"} <= set(report.per_specialist)
    assert report.second_opinions is None  # the rules reasoner decided the week: no model was asked
    assert sum(day.decided for day in report.daily) == len(week)
    assert sum(day.judged for day in report.daily) == sum(c.judged for c in report.per_action.values())
    for name, per in report.per_project.items():
        assert sum(c.judged for c in report.per_project_action[name].values()) == per.judged, name

    # the same numbers read from the state file itself, read only, beside the running agent (WAL: it never waits)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    page, saved = REPORT_DIR / "shadow-week.html", REPORT_DIR / "shadow-week.json"
    db = Path(drift.state_dir) / "drift.sqlite"
    versions = _schema_versions(db)
    offline = driftwise_cmd("report", "--db", str(db), "--since", "3660d", "--html", str(page), "--json", str(saved),
                            "--config", str(stack.root / "week.yaml"), timeout=60)
    assert offline.returncode == 0, offline.stderr
    print(offline.stdout)
    read = AgreementReport.model_validate_json(saved.read_text())
    for field in ("per_action", "per_rule", "per_finding", "per_specialist", "per_project_action", "confusion",
                  "outcomes", "daily"):
        assert getattr(read, field) == getattr(report, field), field
    assert _schema_versions(db) == versions
    html = page.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 3 and "<script" not in html
    if shutil.which("chromium") or IN_CI:
        from tests.report.browser import look

        seen = look(page, REPORT_DIR / "shadow-week-charts.png")
        assert len(seen.requests) == 1 and seen.owned is None and len(seen.figures) == 3, seen


def _schema_versions(db: Path) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
