"""What the console's pages show, built from a Decision: typed rows the templates only print.

Every value here may be attacker-controlled (drifted values, annotations, incident titles): the
templates escape everything (Jinja2 autoescape), and nothing here builds markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from protocol.models import (
    Action,
    Decision,
    DiscardedRecommendation,
    Evidence,
    FieldChange,
    ResourceRef,
    SyncWindow,
    VerdictReason,
)

_VALUE_CHARS = 600
"""A drifted or evidence value is cut to this many characters on a page (the API keeps it whole)."""

WHY_LABELS: dict[str, str] = {
    "policy.threshold": "low confidence",
    "policy.second_opinion_disagrees": "the rules and the model disagree",
}
_NOT_A_WHY = frozenset({"policy.proposal"})
"""Reason codes that say what the guardrail kept, not why a human is needed."""


def show(value: object, limit: int = _VALUE_CHARS) -> str:
    """A JSON value as compact text, cut to `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def ref_label(ref: ResourceRef) -> str:
    kind = f"{ref.group}/{ref.kind}" if ref.group else ref.kind
    return f"{kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{kind} {ref.name}"


def waited(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours < 48 else f"{hours // 24}d {hours % 24}h"


def safe_link(url: str) -> str | None:
    """Only an http(s) URL becomes a link: a `javascript:` or `data:` one stays text."""
    return url if urlsplit(url).scheme in {"http", "https"} else None


def why_human(decision: Decision) -> list[str]:
    """Why this decision waits for a human, in the approver's words (one label per kind of reason)."""
    labels: list[str] = ["advisory mode: every action waits for a human"] if decision.mode == "advisory" else []
    verdict = decision.verdict.verdict if decision.verdict else None
    proposal = decision.proposal.recommendation if decision.proposal else None
    if proposal is not None and proposal.action == Action.ESCALATE:
        labels.append("the drift agent escalated")
    for reason in verdict.reasons if verdict else []:
        if reason.code in _NOT_A_WHY:
            continue
        label = WHY_LABELS.get(reason.code) or (
            f"policy: {reason.code.removeprefix('policy.').replace('_', ' ')}" if reason.code.startswith("policy.")
            else reason.code.replace("_", " "))
        if label not in labels:
            labels.append(label)
    if verdict is not None and verdict.confidence < verdict.threshold and "low confidence" not in labels:
        labels.append("low confidence")
    return labels or ["awaiting a human"]


def drift_line(decision: Decision) -> str:
    """The drift in one line: the first resource's first changed path, and how much more."""
    drifts = decision.report.drifts if decision.report else []
    if not drifts or not drifts[0].changes:
        return "drift not read yet" if decision.report is None else "no changed path"
    first = drifts[0]
    change = first.changes[0]
    more_paths = sum(len(d.changes) for d in drifts) - 1
    text = f"{ref_label(first.ref)} {change.path}: {_before_after(change)}"
    return text + (f" (+{more_paths} more)" if more_paths else "")


def _before_after(change: FieldChange) -> str:
    if change.redacted:
        return "value changed (redacted)"
    return f"{show(change.before, 60)} → {show(change.after, 60)}"


@dataclass(frozen=True)
class QueueItem:
    event_id: str
    project: str
    application: str
    drift: str
    action: str
    confidence: str
    why: list[str]
    waited: str


def queue_item(decision: Decision, now: datetime) -> QueueItem:
    verdict = decision.verdict.verdict if decision.verdict else None
    n = decision.event.notification
    return QueueItem(
        event_id=decision.event.event_id, project=n.project, application=n.app, drift=drift_line(decision),
        action=verdict.action.value if verdict else "—",
        confidence=f"{verdict.confidence:.2f}" if verdict else "—",
        why=why_human(decision), waited=waited(decision.event.received_at, now))


@dataclass(frozen=True)
class Row:
    """One decision in the recent list."""

    event_id: str
    received_at: str
    project: str
    application: str
    mode: str
    state: str
    action: str
    approver: str


def row(decision: Decision) -> Row:
    verdict = decision.verdict.verdict if decision.verdict else None
    n = decision.event.notification
    return Row(event_id=decision.event.event_id, received_at=decision.event.received_at.isoformat(timespec="seconds"),
               project=n.project, application=n.app, mode=decision.mode, state=decision.state.value,
               action=verdict.action.value if verdict else "—",
               approver=decision.approval.approver if decision.approval else "")


@dataclass(frozen=True)
class ChangeRow:
    path: str
    op: str
    before: str
    after: str
    redacted: bool


@dataclass(frozen=True)
class ResourceView:
    label: str
    changes: list[ChangeRow]
    changed_by: list[str]
    changed_at: str


@dataclass(frozen=True)
class EvidenceView:
    id: str
    source: str
    tool: str
    observed_at: str
    value: str
    error: str | None
    cited_by: list[str]


@dataclass(frozen=True)
class AgentView:
    agent: str
    role: str
    action: str
    confidence: str
    reasoning: str
    signature: str
    verified: bool
    findings: list[str]


@dataclass(frozen=True)
class DecisionView:
    event_id: str
    project: str
    application: str
    revision: str
    state: str
    mode: str
    received_at: str
    argocd_link: str | None
    argocd_url: str
    resources: list[ResourceView]
    evidence: list[EvidenceView]
    agents: list[AgentView]
    proposed: str
    final: str
    requires_approval: bool
    allowed_actions: list[str]
    confidence: str
    reasons: list[VerdictReason]
    why: list[str]
    reasoning: str
    windows: list[SyncWindow]
    backport_patch: str | None
    approval: str | None
    awaiting: bool
    superseded_by: str | None
    error: str | None


def _evidence(e: Evidence, cited_by: list[str]) -> EvidenceView:
    return EvidenceView(id=e.id, source=e.source, tool=e.tool, observed_at=e.observed_at.isoformat(timespec="seconds"),
                        value=show(e.value.model_dump(mode="json") if e.value is not None else None),
                        error=e.error, cited_by=cited_by)


def _discarded(thrown: DiscardedRecommendation) -> str:
    return f"discarded by the guardrail: {thrown.reason}" + (f" ({thrown.detail})" if thrown.detail else "")


def decision_view(decision: Decision) -> DecisionView:
    n = decision.event.notification
    report = decision.report
    verdict = decision.verdict.verdict if decision.verdict else None
    proposal = decision.proposal.recommendation if decision.proposal else None
    discarded = {d.agent: d for d in verdict.discarded} if verdict else {}
    agents: list[AgentView] = []
    for signed, role in [*((a, "specialist") for a in decision.recommendations),
                         *([(decision.proposal, "proposal (this drift agent)")] if decision.proposal else [])]:
        rec = signed.recommendation
        thrown = discarded.get(rec.agent) if role == "specialist" else None
        agents.append(AgentView(
            agent=rec.agent, role=role, action=rec.action.value if rec.action else rec.kind,
            confidence=f"{rec.confidence:.2f}", reasoning=rec.reasoning,
            signature=_discarded(thrown) if thrown else (
                "signed (EdDSA); verified by the guardrail" if verdict else "signed; not yet verified"),
            verified=thrown is None and verdict is not None,
            findings=[f"{f.severity.value} {f.domain.value}/{f.kind.value}: {f.message}" for f in rec.findings]))
    for agent, thrown in discarded.items():
        if not any(a.agent == agent for a in agents):
            agents.append(AgentView(agent=agent, role="specialist", action="—", confidence="—", reasoning="",
                                    signature=_discarded(thrown),
                                    verified=False, findings=[]))
    cited: dict[str, list[str]] = {}
    for signed in [*decision.recommendations, *([decision.proposal] if decision.proposal else [])]:
        for ref in signed.recommendation.evidence_refs:
            cited.setdefault(ref, []).append(signed.recommendation.agent)
    evidence = [_evidence(e, cited.get(e.id, [])) for e in decision.evidence]
    final = verdict.action.value if verdict else "—"
    return DecisionView(
        event_id=decision.event.event_id, project=n.project, application=n.app, revision=n.revision,
        state=decision.state.value, mode=decision.mode,
        received_at=decision.event.received_at.isoformat(timespec="seconds"),
        argocd_link=safe_link(n.argocd_url) if n.argocd_url else None, argocd_url=n.argocd_url,
        resources=[ResourceView(label=ref_label(d.ref),
                                changes=[ChangeRow(path=c.path, op=c.op, before=show(c.before), after=show(c.after),
                                                   redacted=c.redacted) for c in d.changes],
                                changed_by=d.changed_by,
                                changed_at=d.changed_at.isoformat(timespec="seconds") if d.changed_at else "")
                   for d in (report.drifts if report else [])],
        evidence=sorted(evidence, key=lambda e: not e.cited_by),  # what an agent cited first
        agents=agents,
        proposed=(proposal.action.value if proposal and proposal.action else "—"), final=final,
        requires_approval=bool(verdict and verdict.requires_approval),
        allowed_actions=[a.value for a in verdict.allowed_actions] if verdict else [],
        confidence=f"{verdict.confidence:.2f} (threshold {verdict.threshold:.2f})" if verdict else "—",
        reasons=verdict.reasons if verdict else [], why=why_human(decision),
        reasoning=proposal.reasoning if proposal else "",
        windows=report.sync_windows if report else [],
        backport_patch=decision.backport_patch if final == Action.ALLOW.value else None,
        approval=(f"{decision.approval.decision}d by {decision.approval.approver}"
                  + (f" at {decision.approval.at.isoformat(timespec='seconds')}" if decision.approval.at else "")
                  + (f" ({decision.approval.action.value})" if decision.approval.action else "")
                  + (f": {decision.approval.comment}" if decision.approval.comment else ""))
                 if decision.approval else None,
        awaiting=decision.state.value == "awaiting_approval", superseded_by=decision.superseded_by,
        error=decision.error)
