"""The agreement report (`GET /v1/report`, `driftwise report`): decisions against what people did."""

from __future__ import annotations

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
