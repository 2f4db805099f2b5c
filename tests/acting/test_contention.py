"""SQLite under a burst: reads and writes of many decisions on shared connections never fail `database is locked`.

The drift agent's stores share drift.sqlite over separate connections, each shared by every decision in
flight. A read left active on a connection while another coroutine writes on it used to fail at once
with `database is locked` (a stale snapshot cannot be upgraded; the busy timeout does not apply).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.drift.acting.store import ActingStore
from agents.drift.store import EventStore
from tests.support.drift_core import event

DECISIONS = 200
CONCURRENCY = 32


async def test_a_burst_of_outbox_jobs_and_decisions_is_never_locked(tmp_path: Path) -> None:
    db = tmp_path / "drift.sqlite"
    now = datetime.now(UTC)
    async with ActingStore(db) as acting, EventStore(db) as store:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                decision, _ = await store.accept(event(f"app-{i}"), now)
                await acting.outbox_mark(decision.event.event_id, "app:sync", "requested", now)
                assert await acting.outbox_state(decision.event.event_id, "app:sync") == "requested"
                await acting.schedule(decision.event.event_id, "expire_allowance", now + timedelta(hours=1), {})
                await store.save(decision)
                await acting.outbox_mark(decision.event.event_id, "app:sync", "done", now)

        async def scheduler() -> None:
            # the scheduler's reads, on the same connection as the decisions' writes, all the while
            while True:
                await acting.due(now + timedelta(hours=2))
                await store.undecided()
                await asyncio.sleep(0)

        ticking = asyncio.create_task(scheduler())
        try:
            async with asyncio.timeout(120):
                await asyncio.gather(*(one(i) for i in range(DECISIONS)))
        finally:
            ticking.cancel()
        assert len(await acting.pending()) == DECISIONS
        assert await acting.outbox_requested() == []
