"""Retention: what the drift agent forgets, on a schedule (`state.retention_days`, default 90 days).

Pruned: closed decisions last written before the cutoff (and the joins into them), their LangGraph
threads' checkpoints (a closed decision's thread is finished: nothing resumes it), and then the outcomes and
outbox rows of decisions no longer kept and finished jobs. Kept however old: every open decision (awaiting a human,
an allowance not yet expired), a write still `requested`, a pending job — and the audit chain, which is
never pruned, only exported (`driftwise audit export`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from agents.drift.state import Stores

log = logging.getLogger(__name__)


class Pruned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    decisions: int
    threads: int
    outcomes: int
    acting_rows: int


class Retention:
    def __init__(self, stores: Stores, keep: timedelta) -> None:
        self._stores = stores
        self._keep = keep

    async def prune(self, now: datetime) -> Pruned:
        cutoff = now - self._keep
        gone = await self._stores.events.prune(cutoff)
        for event_id in gone:
            await self._stores.checkpoints.adelete_thread(event_id)
        outcomes = await self._stores.outcomes.prune()
        rows = await self._stores.acting.prune(cutoff)
        pruned = Pruned(decisions=len(gone), threads=len(gone), outcomes=outcomes, acting_rows=rows)
        if gone or rows:
            log.info("retention: pruned %d decision(s) and their threads, %d outbox/job row(s), older than %s",
                     len(gone), rows, cutoff.isoformat())
        return pruned
