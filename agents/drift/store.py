"""The durable event/decision store (agents.drift.database: SQLite state_dir/drift.sqlite, or PostgreSQL).

One row per drift event holds its Decision document. An event is persisted before the webhook
answers; `open` marks a decision still open (agents.drift.open_rule.is_open: deciding, awaiting a
human, deferred with its sync not run, allowed and not expired). A notification of the same
application and revision joins the open decision inside one transaction locked on the application
(BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so concurrent webhooks (this process,
another, another replica) agree on one. An event that joins a decision after its drift was
read (agents.drift.admission) leaves a row in `drift_joins`, and `get` answers with that decision.

The intent and the decision are one: every write of a decision that carries a verdict also writes its
outbox intent row (agents.drift.acting.store.INTENT_STEP; `requested` while the action may still be
carried out, `done`/`failed` once the decision ends) in the same SQL transaction, so a crash or an
error between the two cannot leave a verdict without its intent or an intent without its verdict.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agents.drift.acting.store import INTENT_STEP
from agents.drift.database import Database, Store, Tx
from agents.drift.errors import StoreError
from agents.drift.leases import Fence
from agents.drift.open_rule import UNDECIDED, is_open
from protocol.models import Action, Decision, DecisionState, DriftEvent, ProjectName

_INTENT_STATE = {DecisionState.DONE: "done", DecisionState.SUPERSEDED: "done",
                 DecisionState.UNKNOWN_APPLICATION: "done", DecisionState.EXPIRED: "done",
                 DecisionState.FAILED: "failed"}
"""The intent row's state once a decision ends; any other state (applying, awaiting a human) is `requested`."""


class Cursor(BaseModel):
    """Where a page of decisions ends: the next page starts after this (received_at, event_id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    received_at: AwareDatetime
    event_id: str = Field(min_length=1, max_length=100)


class DecisionFilter(BaseModel):
    """Which decisions, newest first: every filter optional, `before` the keyset cursor of the page."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    project: ProjectName | None = None
    action: Action | None = None
    mode: Literal["shadow", "advisory", "autonomous"] | None = None
    state: DecisionState | None = None
    before: Cursor | None = None
    limit: int = Field(default=50, ge=1, le=200)


class DecisionPage(BaseModel):
    decisions: list[Decision]
    more: bool = Field(description="a next page exists (its cursor is the last decision's)")


_STICKY = frozenset({DecisionState.SUPERSEDED, DecisionState.UNKNOWN_APPLICATION, DecisionState.EXPIRED})
"""Terminal states nothing after them undoes (a scheduler job recorded late keeps the state)."""


def intent_row(decision: Decision) -> tuple[str, dict[str, str]] | None:
    """(state, detail) of a decision's outbox intent row; None before the guardrail's verdict."""
    if decision.verdict is None:
        return None
    return _INTENT_STATE.get(decision.state, "requested"), {
        "action": decision.verdict.verdict.action.value, "decision_state": decision.state.value}


class EventStore(Store):
    """With a `fence` (a replica's, agents.drift.leases) every `save` refuses, in its own transaction, to write
    a decision another live replica leases (LeaseLost)."""

    WHAT = "the event store"
    ERROR = StoreError

    def __init__(self, source: Path | Database, fence: Fence | None = None) -> None:
        super().__init__(source)
        self.fence = fence

    async def accept(self, event: DriftEvent, now: datetime, *, join: bool = True) -> tuple[Decision, bool]:
        """Persist a new event as a `received` decision or, with `join`, join the open decision of the same
        application and revision. Returns (decision, duplicate)."""
        decision = Decision(event=event, state=DecisionState.RECEIVED, updated_at=now)
        async with self.transaction(lock=event.idempotency_key) as tx:
            if join:
                existing = await _one(tx, (
                    "SELECT document FROM drift_decisions WHERE idempotency_key = ? AND open = 1 "
                    f"AND {self.db.json_text('document', 'event', 'notification', 'revision')} = ? "
                    "ORDER BY received_at DESC LIMIT 1"),
                    (event.idempotency_key, event.notification.revision),
                )
                if existing is not None:
                    return existing, True
            await tx.execute(
                "INSERT INTO drift_decisions VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    event.event_id,
                    event.idempotency_key,
                    event.notification.app,
                    decision.state.value,
                    event.received_at.isoformat(),
                    now.isoformat(),
                    decision.model_dump_json(),
                ),
            )
        return decision, False

    async def save(self, decision: Decision) -> None:
        """Write a decision's current document and its intent row, in one transaction; whether it is still
        open follows from it (open_rule)."""
        async with self.transaction(lock=decision.event.idempotency_key) as tx:
            if self.fence is not None:
                await self.fence.check(tx, self.db, decision.event.event_id)
            current = await _one(tx, "SELECT document FROM drift_decisions WHERE event_id = ?",
                                 (decision.event.event_id,))
            if current is not None and current.state in _STICKY and decision.state != current.state:
                decision = decision.model_copy(update={"state": current.state,
                                                       "superseded_by": current.superseded_by})
            await tx.execute(
                "UPDATE drift_decisions SET state = ?, open = ?, updated_at = ?, document = ? WHERE event_id = ?",
                (
                    decision.state.value,
                    1 if is_open(decision) else 0,
                    decision.updated_at.isoformat(),
                    decision.model_dump_json(),
                    decision.event.event_id,
                ),
            )
            await _write_intent(tx, decision)

    async def supersede(self, old: Decision, successor: str, now: datetime) -> Decision | None:
        """End `old` as superseded by `successor`, only if its state is still the one it was read in
        (an approval or a run that moved it meanwhile wins); the superseded decision, or None."""
        ended = old.model_copy(update={"state": DecisionState.SUPERSEDED, "superseded_by": successor,
                                       "updated_at": now})
        return await self.transition(ended, old.state)

    async def transition(self, decision: Decision, expected: DecisionState) -> Decision | None:
        """Write `decision` (and its intent row) only if its row is still in state `expected`, in one statement:
        the one check every way out of a state passes through (an approval, the expiry of the wait, a
        supersede), so that of two racing, exactly one moves the decision; `decision`, or None if it lost."""
        async with self.transaction(lock=decision.event.idempotency_key) as tx:
            changed = await tx.execute(
                "UPDATE drift_decisions SET state = ?, open = ?, updated_at = ?, document = ? "
                "WHERE event_id = ? AND state = ?",
                (decision.state.value, 1 if is_open(decision) else 0, decision.updated_at.isoformat(),
                 decision.model_dump_json(), decision.event.event_id, expected.value),
            )
            if changed == 1:
                await _write_intent(tx, decision)
        return decision if changed == 1 else None

    async def join(self, event_id: str, into: str, now: datetime) -> bool:
        """The event `event_id` (still `received`) is the decision `into`: its own row goes, a join row stays."""
        async with self.transaction() as tx:
            gone = await tx.execute("DELETE FROM drift_decisions WHERE event_id = ? AND state = ?",
                                    (event_id, DecisionState.RECEIVED.value))
            if gone == 1:
                await tx.execute("INSERT INTO drift_joins VALUES (?, ?, ?)", (event_id, into, now.isoformat()))
        return gone == 1

    async def prune(self, before: datetime) -> list[str]:
        """Retention: delete closed decisions last written before `before` (and the joins into them); their
        event ids (their threads' checkpoints go too). Open decisions are kept, however old."""
        async with self.transaction() as tx:
            gone = [r[0] for r in await tx.rows(
                "DELETE FROM drift_decisions WHERE open = 0 AND updated_at < ? RETURNING event_id",
                (before.isoformat(),))]
            await tx.execute("DELETE FROM drift_joins WHERE at < ? AND joined NOT IN "
                             "(SELECT event_id FROM drift_decisions)", (before.isoformat(),))
        return gone

    async def for_application(self, idempotency_key: str, limit: int = 50) -> list[Decision]:
        """An application's decisions, newest first."""
        rows = await self.rows(
            "SELECT document FROM drift_decisions WHERE idempotency_key = ? ORDER BY received_at DESC LIMIT ?",
            (idempotency_key, limit),
        )
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def get(self, event_id: str) -> Decision | None:
        """The decision of an event: its own, or the one it joined."""
        found = await self._one("SELECT document FROM drift_decisions WHERE event_id = ?", (event_id,))
        if found is not None:
            return found
        return await self._one(
            "SELECT d.document FROM drift_joins j JOIN drift_decisions d ON d.event_id = j.joined "
            "WHERE j.event_id = ?", (event_id,))

    async def list(
        self, application: str | None = None, state: str | None = None, limit: int = 500
    ) -> list[Decision]:
        sql = "SELECT document FROM drift_decisions WHERE 1=1"
        args: list[object] = []
        if application:
            sql += " AND application = ?"
            args.append(application)
        if state:
            sql += " AND state = ?"
            args.append(state)
        sql += " ORDER BY received_at DESC LIMIT ?"
        args.append(limit)
        rows = await self.rows(sql, args)
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def undecided(self) -> list[Decision]:
        """Events persisted but not decided (crash recovery resumes them)."""
        states = sorted(s.value for s in UNDECIDED)
        rows = await self.rows(
            f"SELECT document FROM drift_decisions WHERE state IN ({', '.join('?' * len(states))}) "
            "ORDER BY received_at", states,
        )
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def latest_per_application(self) -> list[Decision]:
        """The newest decision of every application Driftwise has seen (the governed ones)."""
        rows = await self.rows(
            "SELECT d.document FROM drift_decisions d JOIN (SELECT idempotency_key, max(received_at) AS at "
            "FROM drift_decisions GROUP BY idempotency_key) m "
            "ON d.idempotency_key = m.idempotency_key AND d.received_at = m.at"
        )
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def page(self, where: DecisionFilter) -> DecisionPage:
        """Decisions newest first, filtered and paged in SQL (keyset on received_at, event_id), so a page
        costs the same with thousands of rows as with ten; one row more than asked says a next page exists."""
        sql = "SELECT document FROM drift_decisions WHERE 1=1"
        args: list[object] = []
        for expr, value in ((self.db.json_text("document", "event", "notification", "project"), where.project),
                            (self.db.json_text("document", "verdict", "verdict", "action"), where.action),
                            (self.db.json_text("document", "mode"), where.mode), ("state", where.state)):
            if value is not None:
                sql += f" AND {expr} = ?"
                args.append(str(value))
        if where.before is not None:
            sql += " AND (received_at, event_id) < (?, ?)"
            args += [where.before.received_at.isoformat(), where.before.event_id]
        sql += " ORDER BY received_at DESC, event_id DESC LIMIT ?"
        args.append(where.limit + 1)
        found = [Decision.model_validate_json(r[0]) for r in await self.rows(sql, args)]
        return DecisionPage(decisions=found[:where.limit], more=len(found) > where.limit)

    async def awaiting(self, limit: int = 200, after: Cursor | None = None) -> list[Decision]:
        """The decisions waiting for a human, oldest first (the console's queue), from just after `after`
        (keyset on the state index: a later page costs what the first does)."""
        sql = "SELECT document FROM drift_decisions WHERE state = ?"
        args: list[object] = [DecisionState.AWAITING_APPROVAL.value]
        if after is not None:
            sql += " AND (received_at, event_id) > (?, ?)"
            args += [after.received_at.isoformat(), after.event_id]
        rows = await self.rows(sql + " ORDER BY received_at, event_id LIMIT ?", [*args, limit])
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def awaiting_without(self, job_kind: str) -> list[Decision]:
        """Decisions waiting for a human that have no job of this kind (they began waiting before it existed)."""
        rows = await self.rows(
            "SELECT d.document FROM drift_decisions d WHERE d.state = ? AND NOT EXISTS "
            "(SELECT 1 FROM jobs j WHERE j.event_id = d.event_id AND j.kind = ?) ORDER BY d.received_at",
            (DecisionState.AWAITING_APPROVAL.value, job_kind))
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def count_state(self, state: str) -> int:
        row = await self.row("SELECT count(*) FROM drift_decisions WHERE state = ?", (state,))
        return int(row[0]) if row else 0

    async def oldest_received(self, state: str) -> datetime | None:
        """When the event of the oldest decision in `state` was received (None: no decision is in it)."""
        row = await self.row("SELECT min(received_at) FROM drift_decisions WHERE state = ?", (state,))
        return datetime.fromisoformat(row[0]) if row and row[0] is not None else None

    async def count(self) -> int:
        row = await self.row("SELECT count(*) FROM drift_decisions")
        return int(row[0]) if row else 0

    async def _one(self, sql: str, args: tuple[object, ...]) -> Decision | None:
        return await _one(self.db, sql, args)


async def _one(db: Tx, sql: str, args: tuple[object, ...]) -> Decision | None:
    row = await db.row(sql, args)
    return Decision.model_validate_json(row[0]) if row else None


async def _write_intent(tx: Tx, decision: Decision) -> None:
    """Inside the caller's transaction: the decision's intent row, as its state says (nothing before a verdict)."""
    row = intent_row(decision)
    if row is None:
        return
    state, detail = row
    await tx.execute(
        "INSERT INTO outbox (event_id, step, state, detail, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (event_id, step) DO UPDATE SET state=excluded.state, detail=excluded.detail, "
        "updated_at=excluded.updated_at",
        (decision.event.event_id, INTENT_STEP, state, json.dumps(detail), decision.updated_at.isoformat()),
    )
