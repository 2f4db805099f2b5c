"""Opening the drift agent's whole state from its configuration: the stores and the LangGraph checkpointer.

`state.dsn` unset: the embedded SQLite files in `state_dir` (drift.sqlite for the stores, each on its own
connection; drift-graph.sqlite for AsyncSqliteSaver), as `up` and `demo` have always run.
`state.dsn = postgresql://…`: one psycopg pool for every store and for AsyncPostgresSaver, migrated (and
the saver set up) under one advisory lock at start-up. `state_dir` keeps only what is local to a process
(keys, generated tokens, the audit checkpoint file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver

from agents.drift.acting.store import ActingStore
from agents.drift.audit import AuditLog
from agents.drift.config import StateConfig
from agents.drift.database import Database, Store
from agents.drift.leases import Fence, LeaseStore
from agents.drift.outcome_store import OutcomeStore
from agents.drift.replay import ReplayStore
from agents.drift.store import EventStore

S = TypeVar("S", bound=Store)


@dataclass(frozen=True)
class Stores:
    events: EventStore
    audit: AuditLog
    acting: ActingStore
    replay: ReplayStore
    outcomes: OutcomeStore
    checkpoints: BaseCheckpointSaver
    leases: LeaseStore
    backend: str
    """Where the state is, for logs: the SQLite file, or the DSN without its password."""


@asynccontextmanager
async def open_state(state: StateConfig, db_path: Path, checkpoint_path: Path, *, fence: Fence | None = None
                     ) -> AsyncIterator[Stores]:
    """Every store open (and migrated), closed in reverse order on exit; with a replica's `fence`, the writes of
    a decision's document and outbox check its lease (agents.drift.leases)."""
    from agents.drift.steps import checkpoint_serde

    async with AsyncExitStack() as stack:
        source: Path | Database
        if state.dsn is None:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            from agents.drift.sqlite import connect

            source, backend = db_path, str(db_path)
            checkpoints = await connect(checkpoint_path, autocommit=False)  # the saver runs its own commits
            stack.push_async_callback(checkpoints.close)
            saver: BaseCheckpointSaver = AsyncSqliteSaver(checkpoints, serde=checkpoint_serde())
        else:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

            from agents.drift.postgres import PostgresDatabase

            db = await PostgresDatabase.open(state.dsn.get_secret_value(), max_size=state.pool_size,
                                             timeout_s=state.connect_timeout_s)
            stack.push_async_callback(db.close)
            postgres_saver = AsyncPostgresSaver(db.pool, serde=checkpoint_serde())
            await db.migrate(then=postgres_saver.setup)
            source, backend, saver = db, db.where, postgres_saver
        events = await _opened(stack, EventStore(source, fence))
        audit = await _opened(stack, AuditLog(source))
        acting = await _opened(stack, ActingStore(source, fence))
        replay = await _opened(stack, ReplayStore(source))
        outcomes = await _opened(stack, OutcomeStore(source))
        leases = await _opened(stack, LeaseStore(source))
        yield Stores(events, audit, acting, replay, outcomes, saver, leases, backend)


async def _opened(stack: AsyncExitStack, store: S) -> S:
    await store.open()
    stack.push_async_callback(store.close)
    return store
