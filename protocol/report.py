"""The agreement report (`GET /v1/report`, `driftwise report`): decisions against what people did."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from protocol.models import Action, Agreement, OutcomeKind, StrictModel, Versioned

Mode = Literal["shadow", "advisory", "autonomous"]


class AgreementCount(StrictModel):
    """How the judged outcomes of some decisions agree (escalations and not-judged outcomes apart)."""

    decided: int = Field(ge=0, description="decisions, escalations included")
    judged: int = Field(ge=0, description="outcomes that agree or disagree")
    agrees: int = Field(ge=0)
    disagrees: int = Field(ge=0, description="possibly_unsafe included")
    possibly_unsafe: int = Field(ge=0)
    escalations: int = Field(ge=0)
    ratio: float | None = Field(default=None, description="agrees / judged; null with nothing judged")


class Disagreement(StrictModel):
    event_id: str
    application: str
    project: str
    action: Action
    outcome: OutcomeKind
    agreement: Agreement
    after_s: float
    by: str = ""
    reasoning: str = Field(description="the decision's own reasoning (the proposal's)")


class Readiness(StrictModel):
    """Whether a project is ready for its next mode, by the operator's promotion rule."""

    project: str
    mode: Mode
    next_mode: Mode | None = Field(description="null: already autonomous")
    ready: bool
    judged: int = Field(ge=0, description="judged drifts decided in the project's current mode")
    ratio: float | None
    possibly_unsafe_recent: list[str] = Field(default_factory=list, description="their event ids")
    missing: list[str] = Field(default_factory=list, description="what the rule still wants, one item each")
    line: str = Field(description="one line a person can act on")


RUBRIC_RULES: dict[str, str] = {
    "1": "privilege or exposure widened -> enforce",
    "2": "a Secret value changed -> escalate",
    "3": "regulated scope in a change freeze -> escalate",
    "4": "operational change live evidence justifies -> allow",
    "5": "capacity lowered, no evidence behind it -> enforce",
    "6": "benign configuration -> defer",
    "7": "the evidence cannot be had, or the meaning is unknown -> escalate",
}
"""The decision rubric's rules (shared/scenarios/README.md), by number, as the report names them."""


class AnswerCount(StrictModel):
    """One answerer's actions (a specialist's, the model's), each judged against the outcome of its decision
    by the same table as the decision itself, as if that action had been decided."""

    answered: int = Field(ge=0, description="decisions it gave an action for")
    abstained: int = Field(default=0, ge=0, description="decisions it answered 'nothing in my domain'")
    agreement: AgreementCount = Field(description="its actions judged against the outcomes")
    differed: int = Field(ge=0, description="answers other than the action decided")
    differed_judged: int = Field(ge=0, description="of those, judged both ways (its action and the decided one)")
    differed_right: int = Field(ge=0, description="of those judged, where its action agreed with the outcome")
    decided_right: int = Field(ge=0, description="of those judged, where the decided action agreed with it")


class SecondOpinions(StrictModel):
    """With an LLM configured: the model's own answer and the rules' answer, each against the outcome."""

    models: list[str] = Field(description="the models that answered")
    decisions: int = Field(ge=0, description="decisions that asked the model")
    failures: int = Field(ge=0, description="asks that fell back to the rules (timeouts, invalid answers...)")
    model: AnswerCount = Field(description="the model's answers; `differed` counts where it disagreed with the rules")
    rules: AgreementCount = Field(description="the rules' answers on the same decisions, against the outcomes")
    right_ratio: float | None = Field(description="where the model disagreed with the rules and both were judged: "
                                                  "how often the model was right")


class DayCount(StrictModel):
    """One day's decisions (by the day they were decided, UTC) and how their outcomes agree."""

    day: date
    decided: int = Field(ge=0)
    judged: int = Field(ge=0)
    agrees: int = Field(ge=0)
    possibly_unsafe: int = Field(ge=0)
    ratio: float | None


class AgreementReport(Versioned):
    since: AwareDatetime | None
    until: AwareDatetime
    project: str | None = None
    decisions: dict[str, dict[str, int]] = Field(description="action -> mode -> decisions")
    outcomes: dict[str, int] = Field(description="outcome -> decisions; `pending` while followed")
    per_action: dict[str, AgreementCount]
    per_project: dict[str, AgreementCount]
    confusion: dict[str, dict[str, int]] = Field(description="decided action -> outcome -> decisions")
    time_to_outcome_p50_s: dict[str, float] = Field(description="outcome -> median seconds after the decision")
    escalation_rate: float | None
    disagreements: list[Disagreement] = Field(description="possibly_unsafe first, then the rest, newest first")
    readiness: list[Readiness]
    per_project_action: dict[str, dict[str, AgreementCount]] = Field(
        default_factory=dict, description="project -> decided action -> agreement (the metrics' ratios)")
    per_rule: dict[str, AgreementCount] = Field(
        default_factory=dict, description="rubric rule (RUBRIC_RULES) -> agreement of the decisions it decided, "
                                          "from the typed findings of each decision's proposal")
    per_finding: dict[str, AgreementCount] = Field(
        default_factory=dict, description="finding rule_id -> agreement of the decisions whose proposal carried it")
    per_specialist: dict[str, AnswerCount] = Field(
        default_factory=dict, description="specialist agent -> its answers against the outcomes")
    second_opinions: SecondOpinions | None = Field(
        default=None, description="null: no decision of the period asked a model")
    daily: list[DayCount] = Field(default_factory=list, description="agreement over time, oldest day first")
