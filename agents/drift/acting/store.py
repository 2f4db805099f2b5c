"""Durable state of acting: the outbox of Argo CD writes and the jobs that run later on Driftwise's clock.

Both live in the drift agent's SQLite file (drift.sqlite, beside the decisions), so they survive restarts:
- outbox(event_id, step): a write is marked `requested` (committed) before it is sent and `done`
  after; a `requested` row found on start-up is resolved against what Argo CD reports, never blindly
  re-sent — that is what makes applying exactly once across a crash. One row per decision, step
  `verdict` (INTENT_STEP), is the intent itself: the event store writes it in the same transaction as
  the decision's state (agents.drift.store.intent_row), so neither exists without the other.
- jobs: deferred syncs (due at the next allow window) and allowance expiries (due at `until`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agents.drift.errors import StoreError
from agents.drift.sqlite import SqliteFile

JobKind = Literal["deferred_sync", "expire_allowance"]

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    event_id TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('requested', 'done', 'failed')),
    detail TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (event_id, step)
);
"""
"""The outbox's table: also created by the event store, which writes each decision's intent row (INTENT_STEP)
in the transaction that writes the decision's state."""
INTENT_STEP = "verdict"
"""The outbox step of a decision's intent: `requested` from the guardrail's verdict until the decision ends."""

_SCHEMA = OUTBOX_SCHEMA + """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (event_id, kind)
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due_at);
"""


@dataclass(frozen=True)
class Job:
    id: int
    event_id: str
    kind: JobKind
    due_at: datetime
    payload: dict[str, Any]
    attempts: int


class ActingStore(SqliteFile):
    # autocommit: every write is one statement, its own transaction (no deferred read-then-write
    # transaction to fail with "database is locked" under contention)
    SCHEMA = _SCHEMA
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
        """The steps of an event starting with `prefix`, in the order they were first written."""
        rows = await self.rows("SELECT step FROM outbox WHERE event_id=? AND substr(step, 1, ?)=? ORDER BY rowid",
                               (event_id, len(prefix), prefix))
        return [r[0] for r in rows]

    async def outbox_mark(self, event_id: str, step: str, state: str, at: datetime, detail: dict | None = None) -> None:
        await self.db.execute(
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
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO jobs (event_id, kind, due_at, payload) VALUES (?, ?, ?, ?)",
            (event_id, kind, due_at.isoformat(), json.dumps(payload)),
        )
        return cur.rowcount == 1

    async def due(self, now: datetime, limit: int = 50) -> list[Job]:
        rows = await self.rows(
            "SELECT id, event_id, kind, due_at, payload, attempts FROM jobs WHERE state='pending' "
            "ORDER BY due_at LIMIT ?", (limit * 4,),
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
        await self.db.execute(
            "UPDATE jobs SET state=?, attempts=attempts+1, last_error=? WHERE id=?", (state, error, job_id)
        )

    async def cancel(self, event_id: str, kind: JobKind, reason: str) -> bool:
        """Cancel a pending job (a superseded decision's deferred sync); False when none was pending."""
        cur = await self.db.execute(
            "UPDATE jobs SET state='failed', last_error=? WHERE event_id=? AND kind=? AND state='pending'",
            (f"cancelled: {reason}", event_id, kind),
        )
        return cur.rowcount == 1
