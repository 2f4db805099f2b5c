"""Durable state of acting: the outbox of Argo CD writes and the jobs that run later on Driftwise's clock.

Both live beside the decisions (drift.sqlite, or the PostgreSQL of state.dsn), so they survive restarts:
- outbox(event_id, step): a write is marked `requested` (committed) before it is sent and `done`
  after; a `requested` row found on start-up is resolved against what Argo CD reports, never blindly
  re-sent — that is what makes applying exactly once across a crash. One row per decision, step
  `verdict` (INTENT_STEP), is the intent itself: the event store writes it in the same transaction as
  the decision's state (agents.drift.store.intent_row), so neither exists without the other.
- jobs: deferred syncs (due at the next allow window) and allowance expiries (due at `until`), both the
  applier's (ACTING_JOBS); a decision waiting for a human's messages and the expiry of its wait
  (agents.drift.notify, agents.drift.approval_wait).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agents.drift.database import Store
from agents.drift.errors import StoreError

JobKind = Literal["deferred_sync", "expire_allowance", "notify_approval", "remind_approval", "expire_approval"]
ACTING_JOBS: tuple[JobKind, ...] = ("deferred_sync", "expire_allowance")

INTENT_STEP = "verdict"
"""The outbox step of a decision's intent: `requested` from the guardrail's verdict until the decision ends."""

@dataclass(frozen=True)
class Job:
    id: int
    event_id: str
    kind: JobKind
    due_at: datetime
    payload: dict[str, Any]
    attempts: int


class ActingStore(Store):
    # every write is one statement, its own transaction (no deferred read-then-write transaction to fail
    # with "database is locked" under contention)
    WHAT = "the acting state"
    ERROR = StoreError

    # --- outbox -------------------------------------------------------------------------------

    async def outbox_state(self, event_id: str, step: str) -> str | None:
        row = await self.row("SELECT state FROM outbox WHERE event_id=? AND step=?", (event_id, step))
        return row[0] if row else None

    async def outbox_row(self, event_id: str, step: str) -> tuple[str, dict[str, Any]] | None:
        """(state, detail) of one write of the outbox, if it was ever intended."""
        row = await self.row("SELECT state, detail FROM outbox WHERE event_id=? AND step=?", (event_id, step))
        return (row[0], json.loads(row[1] or "{}")) if row else None

    async def outbox_steps(self, event_id: str, prefix: str) -> list[str]:
        """The steps of an event starting with `prefix`."""
        rows = await self.rows("SELECT step FROM outbox WHERE event_id=? AND substr(step, 1, ?)=? ORDER BY step",
                               (event_id, len(prefix), prefix))
        return [r[0] for r in rows]

    async def outbox_mark(self, event_id: str, step: str, state: str, at: datetime, detail: dict | None = None) -> None:
        await self.execute(
            "INSERT INTO outbox (event_id, step, state, detail, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id, step) DO UPDATE SET state=excluded.state, detail=excluded.detail, "
            "updated_at=excluded.updated_at",
            (event_id, step, state, json.dumps(detail or {}), at.isoformat()),
        )

    async def outbox_requested(self) -> list[tuple[str, str]]:
        """Argo CD writes left `requested` (a decision's intent row is the event store's, not a write)."""
        return [(r[0], r[1]) for r in await self.rows(
            "SELECT event_id, step FROM outbox WHERE state='requested' AND step != ?", (INTENT_STEP,))]

    # --- jobs ---------------------------------------------------------------------------------

    async def schedule(self, event_id: str, kind: JobKind, due_at: datetime, payload: dict[str, Any]) -> bool:
        """Add a job once per (event, kind); False when it already existed."""
        added = await self.execute(
            "INSERT INTO jobs (event_id, kind, due_at, payload) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (event_id, kind, due_at.isoformat(), json.dumps(payload)),
        )
        return added == 1

    async def due(self, now: datetime, limit: int = 50, kinds: tuple[JobKind, ...] = ACTING_JOBS) -> list[Job]:
        """Pending jobs of these kinds due by `now`: each kind has one runner (the applier's by default; the
        notifier's and the approval wait's), so that a slow one never holds up another's."""
        rows = await self.rows(
            "SELECT id, event_id, kind, due_at, payload, attempts FROM jobs WHERE state='pending' "
            f"AND kind IN ({', '.join('?' * len(kinds))}) ORDER BY due_at LIMIT ?", (*kinds, limit * 4),
        )
        # compare as datetimes: ISO strings of different offsets do not sort as times
        jobs = [Job(r[0], r[1], r[2], datetime.fromisoformat(r[3]), json.loads(r[4]), r[5]) for r in rows]
        return [j for j in jobs if j.due_at <= now][:limit]

    async def pending(self) -> list[Job]:
        rows = await self.rows(
            "SELECT id, event_id, kind, due_at, payload, attempts FROM jobs WHERE state='pending' ORDER BY due_at")
        return [Job(r[0], r[1], r[2], datetime.fromisoformat(r[3]), json.loads(r[4]), r[5]) for r in rows]

    async def finish(self, job_id: int, *, ok: bool, error: str | None = None, retry: bool = False) -> None:
        state = "pending" if retry else ("done" if ok else "failed")
        await self.execute(
            "UPDATE jobs SET state=?, attempts=attempts+1, last_error=? WHERE id=?", (state, error, job_id)
        )

    async def cancel(self, event_id: str, kind: JobKind, reason: str) -> bool:
        """Cancel a pending job (a superseded decision's deferred sync); False when none was pending."""
        cancelled = await self.execute(
            "UPDATE jobs SET state='failed', last_error=? WHERE event_id=? AND kind=? AND state='pending'",
            (f"cancelled: {reason}", event_id, kind),
        )
        return cancelled == 1

    async def prune(self, before: datetime) -> int:
        """Retention: outbox rows of decisions already pruned and finished jobs, last touched before `before`
        (an unresolved `requested` write and a pending job are kept, however old); how many rows went."""
        async with self.transaction() as tx:
            writes = await tx.execute(
                "DELETE FROM outbox WHERE state != 'requested' AND updated_at < ? "
                "AND event_id NOT IN (SELECT event_id FROM drift_decisions)", (before.isoformat(),))
            jobs = await tx.execute("DELETE FROM jobs WHERE state != 'pending' AND due_at < ?", (before.isoformat(),))
        return writes + jobs
