"""The graph's state: the protocol models themselves, validated once where they enter.

A value enters the state typed — the event from the webhook (already a DriftEvent), the report from
Argo CD (the Observer builds it), answers from A2A (the peer client validates them), the verdict from
the guardrail — and no later step parses it again. LangGraph's serializer writes each field's
model to the checkpoint and rebuilds it on resume (`checkpoint_serde` names exactly which types may
be rebuilt). `applied` and `timings_ms` are merged across steps; every other field is replaced.
"""

from __future__ import annotations

import operator
import typing
from enum import Enum
from typing import Annotated, Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel, ConfigDict, Field

from agents.drift.config import Mode
from protocol.models import (
    AppliedAction,
    Approval,
    DriftEvent,
    DriftReport,
    Evidence,
    LlmUsage,
    Recommendation,
    SignedRecommendation,
    SignedVerdict,
)
from protocol.signing import VerifiedRecommendation

__all__ = ["ApplyFailure", "DriftState", "Mode", "Unreachable", "Update", "checkpoint_serde"]


def _merge(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {**a, **b}


class Unreachable(BaseModel):
    """A specialist the drift concerned whose answer cannot be used: no answer, or one that did not verify."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str
    reason: str = Field(description="`timeout`, an error class name, or a VerifyFailure value")
    detail: str = ""


class ApplyFailure(BaseModel):
    """Carrying out the verdict failed: the ApplyError's kind and message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class DriftState(BaseModel):
    """One decision's thread (thread_id = event id)."""

    model_config = ConfigDict(extra="forbid")

    event: DriftEvent
    report: DriftReport | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    expected: list[str] = Field(default_factory=list, description="the specialists the drift concerned")
    answers: list[SignedRecommendation] = Field(
        default_factory=list, description="every specialist answer received (the guardrail re-checks each)")
    specialists: list[VerifiedRecommendation] = Field(
        default_factory=list, description="the answers that verified and were used once (the reasoner's input)")
    unreachable: list[Unreachable] = Field(default_factory=list)
    proposal: Recommendation | None = Field(default=None, description="the drift agent's own, unsigned")
    signed_proposal: SignedRecommendation | None = None
    second_opinion: Recommendation | None = None
    llm: LlmUsage | None = None
    verdict: SignedVerdict | None = None
    opa_input: dict[str, Any] | None = None
    opa_result: dict[str, Any] | None = None
    mode: Mode | None = Field(default=None, description="set with the verdict: how it is carried out")
    approval: Approval | None = None
    applied: Annotated[list[AppliedAction], operator.add] = Field(default_factory=list)
    backport_patch: str | None = None
    apply_error: ApplyFailure | None = None
    timings_ms: Annotated[dict[str, float], _merge] = Field(default_factory=dict)
    acted: bool = Field(default=False, description="`apply` ran: whatever it did is in `applied`")


class Update(BaseModel):
    """A step's result: the DriftState fields it sets (graph.py hands them to LangGraph as the node's update)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}


def _types_in(annotation: Any, found: set[type]) -> None:
    for arg in typing.get_args(annotation):
        _types_in(arg, found)
    if isinstance(annotation, type) and annotation not in found:
        if issubclass(annotation, Enum):
            found.add(annotation)
        elif issubclass(annotation, BaseModel):
            found.add(annotation)
            for f in annotation.model_fields.values():
                _types_in(f.annotation, found)


def checkpoint_serde() -> JsonPlusSerializer:
    """LangGraph's serializer, allowed to rebuild exactly the models and enums DriftState holds."""
    found: set[type] = set()
    _types_in(DriftState, found)
    return JsonPlusSerializer(allowed_msgpack_modules=sorted((t.__module__, t.__name__) for t in found))
