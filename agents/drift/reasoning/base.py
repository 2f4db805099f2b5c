"""The interface every reasoner implements (rules, LLM); the graph's `reason` node calls one."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from protocol.models import DriftReport, Evidence, LlmUsage, Recommendation


class ReasoningInput(BaseModel):
    """Everything a reasoner may look at; specialists' recommendations are already signature-verified."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    agent: str = Field(description="the agent id the recommendation is made as (the drift agent's)")
    report: DriftReport
    evidence: list[Evidence]
    specialists: list[Recommendation]
    unreachable_specialists: list[str] = Field(default_factory=list, description="asked but no valid answer")
    now: datetime
    confidence_threshold: float = 0.80
    allow_ttl_h: float = 24.0


class ReasoningOutput(BaseModel):
    """A reasoner's answer; `second_opinion` is the deterministic one when a model decided (two keys)."""

    model_config = ConfigDict(extra="forbid")

    recommendation: Recommendation
    second_opinion: Recommendation | None = None
    llm: LlmUsage | None = None


class Reasoner(Protocol):
    name: str

    async def start(self) -> None:
        """Called once when the process starts (the LLM reasoner probes its endpoint)."""

    async def aclose(self) -> None:
        """Called once when the process stops."""

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput: ...
