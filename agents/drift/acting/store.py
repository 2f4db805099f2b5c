"""Durable state of acting: the outbox of Argo CD writes and the jobs that run later on Driftwise's clock.

Both live beside the decisions (drift.sqlite, or the PostgreSQL of state.dsn), so they survive restarts:
- outbox(event_id, step): a write is marked `requested` (committed) before it is sent and `done`
  after; a `requested` row found on start-up is resolved against what Argo CD reports, never blindly
  re-sent — that is what makes applying exactly once across a crash. One row per decision, step
  `verdict` (INTENT_STEP), is the intent itself: the event store writes it in the same transaction as
  the decision's state (agents.drift.store.intent_row), so neither exists without the other.
- jobs: deferred syncs (due at the next allow window) and allowance expiries (due at `until`), both the
  applier's (ACTING_JOBS); a decision waiting for a human's messages and the expiry of its wait
  (agents.drift.notify, agents.drift.approval_wait).; each claimed by one
  replica at a time (`due`: SKIP LOCKED on PostgreSQL) so that each runs once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from agents.drift.database import Database, Store
from agents.drift.errors import StoreError
from agents.drift.leases import Fence

JobKind = Literal["deferred_sync", "expire_allowance", "notify_approval", "remind_approval", "expire_approval"]
ACTING_JOBS: tuple[JobKind, ...] = ("deferred_sync", "expire_allowance")

INTENT_STEP = "verdict"
"""The outbox step of a decision's intent: `requested` from the guardrail's verdict until the decision ends."""

LOCAL_OWNER = "local"
"""The claimer of a process that names no replica (tests, one embedded process)."""
DEFAULT_CLAIM_S = 60.0


@dataclass(frozen=True)
class Job:
    id: int
    event_id: str
    kind: JobKind
    due_at: datetime
    payload: dict[str, Any]
    attempts: int


_MARK = ("INSERT INTO outbox (event_id, step, state, detail, updated_at) VALUES (?, ?, ?, ?, ?) "
         "ON CONFLICT (event_id, step) DO UPDATE SET state=excluded.state, detail=excluded.detail, "
         "updated_at=excluded.updated_at")


def _job(r: tuple[Any, ...]) -> Job:
    return Job(r[0], r[1], r[2], datetime.fromisoformat(r[3]), json.loads(r[4]), r[5])


class ActingStore(Store):
    # every write is one statement, its own transaction (no deferred read-then-write transaction to fail
    # with "database is locked" under contention)
    WHAT = "the acting state"
    ERROR = StoreError

    def __init__(self, source: Path | Database, fence: Fence | None = None) -> None:
        super().__init__(source)
        self.fence = fence
        """A replica's (agents.drift.leases): an outbox mark, made before each Argo CD write, refuses in its
        own transaction to mark for a decision another live replica leases, so that write is never sent."""

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
        args = (event_id, step, state, json.dumps(detail or {}), at.isoformat())
        if self.fence is None:
            await self.execute(_MARK, args)
            return
        async with self.transaction() as tx:
            await self.fence.check(tx, self.db, event_id)
            await tx.execute(_MARK, args)

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

    async def due(self, now: datetime, owner: str | None = None, claim_s: float = DEFAULT_CLAIM_S,
                  limit: int = 50, kinds: tuple[JobKind, ...] = ACTING_JOBS) -> list[Job]:
        """Claim the pending jobs due on Driftwise's clock `now` that nobody holds, for `owner`, for `claim_s`
        seconds of the database's clock: each runs once across replicas. On PostgreSQL the candidates are
        read `FOR UPDATE SKIP LOCKED`, so replicas ticking together take disjoint jobs without waiting on one
        another; on SQLite the transaction is the file's one writer. A claim is released by `finish`; one
        whose claimer died runs out and the job is claimed again. Without an `owner` nothing is claimed (the
        notifier's and the approval wait's jobs, made once by their own conditional writes)."""
        db = self.db
        free = f"(c.job_id IS NULL OR c.until < {db.epoch_now()})"
        columns = "j.id, j.event_id, j.kind, j.due_at, j.payload, j.attempts"
        async with self.transaction() as tx:
            rows = await tx.rows(f"SELECT {columns} FROM jobs j LEFT JOIN job_claims c ON c.job_id = j.id "
                                 f"WHERE j.state='pending' AND {free} "
                                 f"AND j.kind IN ({', '.join('?' * len(kinds))}) ORDER BY j.due_at LIMIT ?",
                                 (*kinds, limit * 4))
            # compare as datetimes: ISO strings of different offsets do not sort as times
            due = [j.id for j in map(_job, rows) if j.due_at <= now][:limit]
            if owner is None:
                return [j for j in map(_job, rows) if j.id in due]
            if not due:
                return []
            # lock only what is claimed: a replica ticking meanwhile skips these and takes the others
            rows = await tx.rows(
                f"SELECT {columns} FROM jobs j LEFT JOIN job_claims c ON c.job_id = j.id "
                f"WHERE j.id IN ({', '.join('?' * len(due))}) AND j.state='pending' AND {free} "
                f"ORDER BY j.due_at{db.skip_locked('j')}", due)
            claimed: list[Job] = []
            for job in map(_job, rows):
                # the claim is the conditional write itself: a replica whose statement began before another's
                # claim committed still saw the job free (READ COMMITTED; the claim is not a write to `jobs`, so
                # its row lock is no guard), but the upsert judges the latest committed claim and writes nothing
                # while that one runs
                if await tx.execute(
                        f"INSERT INTO job_claims (job_id, owner, until) VALUES (?, ?, {db.epoch_now()} + ?) "
                        "ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, until = excluded.until "
                        f"WHERE job_claims.until < {db.epoch_now()}",
                        (job.id, owner, claim_s)):
                    claimed.append(job)
        return claimed

    async def pending(self) -> list[Job]:
        rows = await self.rows(
            "SELECT id, event_id, kind, due_at, payload, attempts FROM jobs WHERE state='pending' ORDER BY due_at")
        return [_job(r) for r in rows]

    async def finish(self, job_id: int, *, ok: bool, error: str | None = None, retry: bool = False) -> None:
        state = "pending" if retry else ("done" if ok else "failed")
        async with self.transaction() as tx:
            await tx.execute("UPDATE jobs SET state=?, attempts=attempts+1, last_error=? WHERE id=?",
                             (state, error, job_id))
            await tx.execute("DELETE FROM job_claims WHERE job_id = ?", (job_id,))

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
