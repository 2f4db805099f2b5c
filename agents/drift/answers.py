"""Every answer behind a decision, judged against what became of its drift: the rubric rule that decided it,
each specialist's answer, and (with an LLM configured) the model's second opinion beside the rules'.

An answer other than the decided action is judged by the one agreement table (agents.drift.agreement) as if
it had been decided: its cell for the outcome people produced, the approver's chosen action for an approval,
a defer's window from the decision's own report. The outcome was produced under the decided action (in
shadow mode nothing was done, so it is what people did): a counterfactual reading, said as such in the report.

The rubric rule is read from the typed findings of the decision's proposal (FindingKind names rules 1, 2, 3
and 7), first rule first as the rubric decides; a proposal with none of those is an operational change,
whose rule its action names (4 allow, 5 enforce, 6 defer; an escalation is rule 7: evidence missing or too
weak, or a sync window refusing the revert).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from agents.drift.agreement import agreement
from protocol.models import Action, Agreement, Decision, FindingKind
from protocol.report import AgreementCount, AnswerCount, SecondOpinions
from protocol.syncwindows import next_allow_start

_BY_KIND: tuple[tuple[FindingKind, str], ...] = (
    (FindingKind.WIDENED, "1"), (FindingKind.SECRET_VALUE, "2"), (FindingKind.FREEZE, "3"),
    (FindingKind.UNCLASSIFIED, "7"),
)
_OPERATIONAL = {Action.ALLOW: "4", Action.ENFORCE: "5", Action.DEFER: "6", Action.ESCALATE: "7"}


def tally(agreements: Iterable[Agreement | None], escalations: int = 0) -> AgreementCount:
    """Counts of some answers' agreements (None: no outcome yet); `escalations` among them, counted apart."""
    found = list(agreements)
    kinds = Counter(a for a in found if a is not None)
    agrees, unsafe = kinds[Agreement.AGREES], kinds[Agreement.POSSIBLY_UNSAFE]
    disagrees = kinds[Agreement.DISAGREES] + unsafe
    judged = agrees + disagrees
    return AgreementCount(decided=len(found), judged=judged, agrees=agrees, disagrees=disagrees,
                          possibly_unsafe=unsafe, escalations=escalations,
                          ratio=round(agrees / judged, 4) if judged else None)


def judged(action: Action, decision: Decision) -> Agreement | None:
    """How the decision's outcome agrees with `action` (None: no outcome yet)."""
    outcome = decision.outcome
    if outcome is None:
        return None
    if action == outcome.action:
        return outcome.agreement
    window = None
    if action == Action.DEFER and decision.report is not None:
        r = decision.report
        window = next_allow_start(r.sync_windows, outcome.decided_at, r.application, r.destination_namespace)
    chosen = decision.approval.action if decision.approval is not None else None
    return agreement(action, outcome.kind, timedelta(seconds=outcome.after_s),
                     by_window=window is None or outcome.at <= window, chosen=chosen)


def rubric_rule(decision: Decision) -> str | None:
    """The rubric rule (protocol.report.RUBRIC_RULES) that decided, from the proposal's typed findings."""
    if decision.proposal is None:
        return None
    proposal = decision.proposal.recommendation
    kinds = {f.kind for f in proposal.findings}
    for kind, rule in _BY_KIND:
        if kind in kinds:
            return rule
    return _OPERATIONAL[proposal.action] if proposal.action is not None else None


def _decided(d: Decision) -> Action:
    assert d.verdict is not None
    return d.verdict.verdict.action


def _escalations(d: Decision) -> int:
    return int(_decided(d) == Action.ESCALATE)


def per_rule(decisions: list[Decision]) -> dict[str, AgreementCount]:
    groups: dict[str, list[Decision]] = {}
    for d in decisions:
        if (rule := rubric_rule(d)) is not None:
            groups.setdefault(rule, []).append(d)
    return {rule: outcome_count(ds) for rule, ds in sorted(groups.items(), key=lambda kv: int(kv[0]))}


def per_finding(decisions: list[Decision]) -> dict[str, AgreementCount]:
    groups: dict[str, list[Decision]] = {}
    for d in decisions:
        if d.proposal is not None:
            for rule_id in dict.fromkeys(f.rule_id for f in d.proposal.recommendation.findings):
                groups.setdefault(rule_id, []).append(d)
    return {rule_id: outcome_count(ds) for rule_id, ds in sorted(groups.items())}


def outcome_count(decisions: list[Decision]) -> AgreementCount:
    """How the decisions' own outcomes agree with them (their escalations counted apart)."""
    return tally((d.outcome.agreement if d.outcome else None for d in decisions),
                 sum(_escalations(d) for d in decisions))


@dataclass
class _Answers:
    """One answerer's actions, accumulated decision by decision."""

    agreements: list[Agreement | None] = field(default_factory=list)
    escalations: int = 0
    abstained: int = 0
    differed: int = 0
    differed_judged: int = 0
    differed_right: int = 0
    decided_right: int = 0

    def add(self, action: Action, decision: Decision, against: Action) -> None:
        """`action` answered on `decision`; `against` is what it is compared with (the decided action, or the
        rules' answer for the model)."""
        mine = judged(action, decision)
        self.agreements.append(mine)
        self.escalations += action == Action.ESCALATE
        if action == against:
            return
        self.differed += 1
        other = judged(against, decision)
        judgeable = (Agreement.AGREES, Agreement.DISAGREES, Agreement.POSSIBLY_UNSAFE)
        if mine in judgeable and other in judgeable:
            self.differed_judged += 1
            self.differed_right += mine == Agreement.AGREES
            self.decided_right += other == Agreement.AGREES

    def count(self) -> AnswerCount:
        return AnswerCount(answered=len(self.agreements), abstained=self.abstained,
                           agreement=tally(self.agreements, self.escalations), differed=self.differed,
                           differed_judged=self.differed_judged, differed_right=self.differed_right,
                           decided_right=self.decided_right)


def per_specialist(decisions: list[Decision]) -> dict[str, AnswerCount]:
    """Each specialist's answers (the recommendations the decision received) against the outcomes."""
    answers: dict[str, _Answers] = {}
    for d in decisions:
        for signed in d.recommendations:
            rec = signed.recommendation
            mine = answers.setdefault(rec.agent, _Answers())
            if rec.action is None:
                mine.abstained += 1
            else:
                mine.add(rec.action, d, _decided(d))
    return {agent: a.count() for agent, a in sorted(answers.items())}


def second_opinions(decisions: list[Decision]) -> SecondOpinions | None:
    """The model's answers against the rules' where both answered; None when no decision asked a model."""
    asked = [d for d in decisions if d.llm is not None]
    if not asked:
        return None
    model, rules = _Answers(), _Answers()
    for d in asked:
        assert d.llm is not None
        if d.llm.model_action is not None and d.llm.rules_action is not None:
            model.add(d.llm.model_action, d, d.llm.rules_action)
            rules.add(d.llm.rules_action, d, d.llm.rules_action)
    count = model.count()
    return SecondOpinions(
        models=sorted({d.llm.model for d in asked if d.llm is not None}), decisions=len(asked),
        failures=sum(1 for d in asked if d.llm is not None and d.llm.failure is not None),
        model=count, rules=rules.count().agreement,
        right_ratio=round(count.differed_right / count.differed_judged, 4) if count.differed_judged else None)
