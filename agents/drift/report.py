"""The agreement report: decisions (with their outcomes) counted against what people did, per action, project,
rubric rule, specialist and day, and whether each project is ready for its next mode (agents.drift.answers
judges the answers behind each decision). Pure: the caller reads the decisions and fills their outcomes.

Promotion (shadow -> advisory -> autonomous) by a rule the operator sets (drift.promotion_*): at least
`min_decisions` judged drifts decided in the project's current mode (escalations are not counted),
agreement at least `min_agreement`, and no `possibly_unsafe` disagreement in the last `quiet_days`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from agents.drift.answers import outcome_count, per_finding, per_rule, per_specialist, second_opinions
from protocol.models import Agreement, Decision
from protocol.report import AgreementCount, AgreementReport, DayCount, Disagreement, Mode, Readiness

NEXT: dict[str, Mode | None] = {"shadow": "advisory", "advisory": "autonomous", "autonomous": None}
PENDING = "pending"
MAX_SINCE_DAYS = 3660


class ReportError(ValueError):
    """The report cannot be made as asked (unknown project, empty period): the message says why and what to do."""


@dataclass(frozen=True)
class PromotionRule:
    min_decisions: int = 50
    min_agreement: float = 0.95
    quiet_days: float = 14.0


def _project(d: Decision) -> str:
    return d.report.project if d.report is not None else d.event.notification.project


def _daily(decisions: list[Decision]) -> list[DayCount]:
    """Agreement over time: the decisions of each day (UTC) they were decided, every day of the span listed."""
    by_day: dict[date, list[Decision]] = {}
    for d in decisions:
        assert d.verdict is not None
        by_day.setdefault(d.verdict.verdict.decided_at.astimezone(UTC).date(), []).append(d)
    first, last = min(by_day), max(by_day)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    counts = {day: outcome_count(by_day.get(day, [])) for day in days}
    return [DayCount(day=day, decided=c.decided, judged=c.judged, agrees=c.agrees, possibly_unsafe=c.possibly_unsafe,
                     ratio=c.ratio) for day, c in counts.items()]


def _readiness(project: str, decisions: list[Decision], mode: Mode, now: datetime, rule: PromotionRule
               ) -> Readiness:
    in_mode = [d for d in decisions if d.mode == mode]
    count = outcome_count(in_mode)
    recent = now - timedelta(days=rule.quiet_days)
    unsafe = [d.event.event_id for d in decisions if d.outcome is not None
              and d.outcome.agreement == Agreement.POSSIBLY_UNSAFE and d.outcome.at >= recent]
    nxt = NEXT[mode]
    missing: list[str] = []
    if nxt is not None:
        if count.judged < rule.min_decisions:
            missing.append(f"{rule.min_decisions - count.judged} more judged drifts in {mode} mode "
                           f"({count.judged} of {rule.min_decisions}; escalations do not count)")
        if count.ratio is None or count.ratio < rule.min_agreement:
            shown = "none judged" if count.ratio is None else f"{count.ratio:.0%}"
            missing.append(f"agreement {shown}, at least {rule.min_agreement:.0%} wanted")
        if unsafe:
            missing.append(f"{len(unsafe)} possibly unsafe disagreement(s) in the last {rule.quiet_days:g} days "
                           f"(first: {unsafe[0]})")
    ready = nxt is not None and not missing
    if nxt is None:
        line = f"project {project}: autonomous already; nothing to promote"
    elif ready:
        line = (f"project {project}: ready for {nxt} ({count.judged} judged drifts in {mode}, "
                f"{count.ratio:.0%} agreement, no possibly unsafe disagreement in {rule.quiet_days:g} days): "
                f"set drift.project_modes.{project}: {nxt}")
    else:
        line = f"project {project}: stay in {mode}; before {nxt}: " + "; ".join(missing)
    return Readiness(project=project, mode=mode, next_mode=nxt, ready=ready, judged=count.judged, ratio=count.ratio,
                     possibly_unsafe_recent=unsafe, missing=missing, line=line)


def build_report(decisions: list[Decision], now: datetime, *, since: timedelta | None, project: str | None,
                 mode_for: Callable[[str], Mode], rule: PromotionRule) -> AgreementReport:
    """The report over the decided decisions (verdict given) of the period and project asked for."""
    decided = [d for d in decisions if d.verdict is not None]
    start = now - since if since is not None else None
    if start is not None:
        decided = [d for d in decided if d.verdict is not None and d.verdict.verdict.decided_at >= start]
    if project is not None:
        known = sorted({_project(d) for d in decided})
        decided = [d for d in decided if _project(d) == project]
        if not decided:
            raise ReportError(f"no decision of project {project!r} in this period "
                              f"(projects with decisions: {', '.join(known) or 'none'}); check --project or --since")
    if not decided:
        raise ReportError("no decision in this period; widen --since (e.g. --since 30d)")
    by_project: dict[str, list[Decision]] = {}
    decisions_count: dict[str, Counter[str]] = {}
    confusion: dict[str, Counter[str]] = {}
    after: dict[str, list[float]] = {}
    disagreements: list[tuple[bool, datetime, Disagreement]] = []
    for d in decided:
        assert d.verdict is not None
        action = d.verdict.verdict.action.value
        by_project.setdefault(_project(d), []).append(d)
        decisions_count.setdefault(action, Counter())[d.mode] += 1
        outcome = d.outcome.kind.value if d.outcome is not None else PENDING
        confusion.setdefault(action, Counter())[outcome] += 1
        if d.outcome is None:
            continue
        after.setdefault(outcome, []).append(d.outcome.after_s)
        if d.outcome.agreement in (Agreement.DISAGREES, Agreement.POSSIBLY_UNSAFE):
            reasoning = d.proposal.recommendation.reasoning if d.proposal is not None else ""
            disagreements.append((d.outcome.agreement == Agreement.POSSIBLY_UNSAFE, d.outcome.at, Disagreement(
                event_id=d.event.event_id, application=d.event.notification.app, project=_project(d),
                action=d.verdict.verdict.action, outcome=d.outcome.kind, agreement=d.outcome.agreement,
                after_s=d.outcome.after_s, by=d.outcome.by, reasoning=reasoning)))
    disagreements.sort(key=lambda t: (not t[0], -t[1].timestamp()))
    outcomes = Counter(d.outcome.kind.value if d.outcome is not None else PENDING for d in decided)
    escalations = sum(1 for d in decided if d.verdict is not None and d.verdict.verdict.action.value == "escalate")
    return AgreementReport(
        since=start, until=now, project=project,
        decisions={a: dict(c) for a, c in sorted(decisions_count.items())},
        outcomes=dict(sorted(outcomes.items())),
        per_action=_per_action(decided),
        per_project={p: outcome_count(ds) for p, ds in sorted(by_project.items())},
        confusion={a: dict(sorted(c.items())) for a, c in sorted(confusion.items())},
        time_to_outcome_p50_s={k: statistics.median(v) for k, v in sorted(after.items())},
        escalation_rate=round(escalations / len(decided), 4),
        disagreements=[t[2] for t in disagreements],
        readiness=[_readiness(p, ds, mode_for(p), now, rule) for p, ds in sorted(by_project.items())],
        per_project_action={p: _per_action(ds) for p, ds in sorted(by_project.items())},
        per_rule=per_rule(decided), per_finding=per_finding(decided), per_specialist=per_specialist(decided),
        second_opinions=second_opinions(decided), daily=_daily(decided),
    )


def _per_action(decisions: list[Decision]) -> dict[str, AgreementCount]:
    groups: dict[str, list[Decision]] = {}
    for d in decisions:
        assert d.verdict is not None
        groups.setdefault(d.verdict.verdict.action.value, []).append(d)
    return {a: outcome_count(ds) for a, ds in sorted(groups.items())}


def parse_since(text: str) -> timedelta:
    """`7d`, `36h`, `90m`: the period a report covers, counted back from now."""
    units = {"d": 86_400, "h": 3_600, "m": 60}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isascii() or not number.isdigit() or int(number) == 0:
        raise ReportError(f"--since {text[:40]!r}: give a whole number and a unit, d, h or m (e.g. 7d, 36h)")
    seconds = int(number) * units[unit]
    if seconds > MAX_SINCE_DAYS * 86_400:
        raise ReportError(f"--since {text[:40]!r}: at most {MAX_SINCE_DAYS} days back")
    return timedelta(seconds=seconds)
