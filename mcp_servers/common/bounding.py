"""Keep answers small enough for an LLM reader: downsample series, trim lists, and say so.

Each helper returns what it kept plus a note ("" when nothing was cut), so a tool sets its
result's `truncated`/`note` from the notes it collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Limits(BaseModel):
    """Upper bounds on what one tool answer may hold."""

    model_config = ConfigDict(extra="forbid")

    max_points: int = Field(default=120, ge=2, description="samples per series")
    max_series: int = Field(default=50, ge=1)
    max_items: int = Field(default=50, ge=1, description="events, annotations, incidents, grants...")


def trim(items: Sequence[T], limit: int, what: str) -> tuple[list[T], str]:
    """The first `limit` items (callers order them most relevant first) and a note if any were cut."""
    if len(items) <= limit:
        return list(items), ""
    return list(items[:limit]), f"{what}: kept {limit} of {len(items)}"


def downsample(points: Sequence[T], limit: int) -> list[T]:
    """At most `limit` points, evenly spaced, always keeping the first and the last."""
    n = len(points)
    if n <= limit:
        return list(points)
    step = (n - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


class Notes:
    """Collects what a tool cut, for the result's `truncated` and `note`."""

    def __init__(self) -> None:
        self._notes: list[str] = []
        self.truncated = False

    def cut(self, note: str) -> None:
        if note:
            self.add(note)
            self.truncated = True

    def add(self, note: str) -> None:
        """A remark that is not a cut (e.g. a missing value); said once however often it applies."""
        if note and note not in self._notes:
            self._notes.append(note)

    @property
    def text(self) -> str:
        return "; ".join(self._notes)
