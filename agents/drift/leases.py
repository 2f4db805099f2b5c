"""Leases: how N drift-agent replicas on one database share decisions without a leader.

A decision is worked on (admitted, decided, acted on, resumed with a human's answer) only by the replica
holding its lease: a row (event_id, owner = the replica id, expires_at on the database's clock). The
lease is taken before the work starts, renewed every ttl/3 while the work runs, and released when it
stops (final, or waiting for a human: nothing runs then, and an approval on any replica takes the lease
and resumes the thread from its shared checkpoint). A replica that dies (kill -9, a lost node) renews
nothing; once its leases expire, any replica's periodic take-over finds the undecided decisions without
a live lease and resumes them from their checkpoints (the crash recovery of one process is the same
path: its own leases, under the same replica id, are its to take back at once).

Invariants (each held by a test: tests/stores for the SQL, tests/replicas for the processes):
- a decision is worked on by at most one live replica at a time: `acquire` is one conditional upsert
  (free, expired, or already ours), so two replicas racing for it get one `True`;
- a lease lost means the worker stops before its next write: every write of a decision's document
  (EventStore.save) and of its outbox (ActingStore.outbox_mark, marked before each Argo CD write) checks,
  in the same transaction, that no other replica holds a live lease on it (`Fence`), and raises
  `LeaseLost` otherwise; a renewal that finds a lease gone cancels the local work at once;
- every Argo CD write is recorded exactly once: the outbox row is fenced, so a replica that lost its
  lease never marks (and so never sends) a write; the one that took over resumes from the checkpoint
  and completes the record from the outbox and Argo CD's state, as after a single process's crash;
- each job runs once: jobs are claimed (agents.drift.acting.store.ActingStore.due: FOR UPDATE SKIP
  LOCKED on PostgreSQL) with a claim that runs out, so a job whose claimer died is claimed again.

Expiry is judged on the database's clock (`Database.epoch_now`), so replicas whose own clocks disagree
still agree on which leases have run out. A replica id must be unique per live process (the drift
agent's `drift.replica_id`, by default the host name: a pod's name on Kubernetes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agents.drift.database import Database, Store, Tx
from agents.drift.errors import LeaseLost, StoreError
from agents.drift.open_rule import UNDECIDED
from protocol.models import Decision

log = logging.getLogger(__name__)


class Fence:
    """The check every fenced write makes inside its own transaction: no other replica holds a live lease."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    async def check(self, tx: Tx, db: Database, event_id: str) -> None:
        # FOR SHARE on PostgreSQL: a take-over's upsert of the same row waits for this write to commit (and
        # this check, started after it, sees the new owner); SQLite's one writer serialises them already
        share = " FOR SHARE" if db.dialect == "postgres" else ""
        row = await tx.row(f"SELECT owner, expires_at >= {db.epoch_now()} FROM leases WHERE event_id = ?{share}",
                           (event_id,))
        if row is not None and row[0] != self.owner and row[1]:
            raise LeaseLost(f"decision {event_id} is leased by replica {row[0]}, not {self.owner}: "
                            "this replica stops working on it")


class LeaseStore(Store):
    WHAT = "the lease table"
    ERROR = StoreError

    async def acquire(self, event_id: str, owner: str, ttl_s: float) -> bool:
        """Take the lease if it is free, expired or already `owner`'s (then renewed); False when another
        replica holds it live."""
        now = self.db.epoch_now()
        taken = await self.execute(
            f"INSERT INTO leases (event_id, owner, expires_at) VALUES (?, ?, {now} + ?) "
            "ON CONFLICT (event_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
            f"WHERE leases.owner = excluded.owner OR leases.expires_at < {now}",
            (event_id, owner, ttl_s))
        return taken == 1

    async def renew(self, owner: str, event_ids: list[str], ttl_s: float) -> set[str]:
        """Extend `owner`'s live leases among `event_ids`; the ids still held (a missing one was lost)."""
        if not event_ids:
            return set()
        now = self.db.epoch_now()
        rows = await self.rows(
            f"UPDATE leases SET expires_at = {now} + ? WHERE owner = ? AND expires_at >= {now} "
            f"AND event_id IN ({', '.join('?' * len(event_ids))}) RETURNING event_id", (ttl_s, owner, *event_ids))
        return {r[0] for r in rows}

    async def release(self, event_id: str, owner: str) -> None:
        await self.execute("DELETE FROM leases WHERE event_id = ? AND owner = ?", (event_id, owner))

    async def held(self, owner: str) -> int:
        row = await self.row(f"SELECT count(*) FROM leases WHERE owner = ? AND expires_at >= {self.db.epoch_now()}",
                             (owner,))
        return int(row[0]) if row else 0

    async def unowned(self, owner: str, limit: int = 1000) -> list[tuple[Decision, bool]]:
        """Undecided decisions (the states a crash leaves) that no live replica but `owner` leases: free to
        take over; each with whether its lease is `owner`'s own (from before a restart under the same replica
        id), those first."""
        states = sorted(s.value for s in UNDECIDED)
        rows = await self.rows(
            "SELECT d.document, l.owner FROM drift_decisions d LEFT JOIN leases l ON l.event_id = d.event_id "
            f"WHERE d.state IN ({', '.join('?' * len(states))}) "
            f"AND (l.event_id IS NULL OR l.owner = ? OR l.expires_at < {self.db.epoch_now()}) "
            "ORDER BY d.received_at LIMIT ?", (*states, owner, limit))
        found = [(Decision.model_validate_json(r[0]), r[1] == owner) for r in rows]
        return sorted(found, key=lambda pair: not pair[1])


class LeaseKeeper:
    """This replica's leases, counted (admission and the runner may hold one event's lease together), renewed
    by `renew()` (its own loop, every ttl/3, never queued behind a take-over), each lost one reported to
    whoever `watch`es it. Takes and releases of one event are serialised by that event's lock; a renewal takes
    none, so a slow database delays no renewal behind the takes of a take-over."""

    def __init__(self, store: LeaseStore, owner: str, ttl_s: float,
                 on_count: Callable[[int], None] | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease of 0 seconds is no lease: give drift.lease_ttl_s above 0")
        self.store = store
        self.owner = owner
        self.ttl_s = ttl_s
        self._counts: dict[str, int] = {}
        self._taken_at: dict[str, int] = {}
        self._generation = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._on_lost: dict[str, Callable[[], None]] = {}
        self._on_count = on_count

    @property
    def interval_s(self) -> float:
        """How often leases are renewed and orphans looked for: three renewals fit in one lease."""
        return self.ttl_s / 3

    @property
    def count(self) -> int:
        return len(self._counts)

    def holds(self, event_id: str) -> bool:
        return event_id in self._counts

    def _lock(self, event_id: str) -> asyncio.Lock:
        return self._locks.setdefault(event_id, asyncio.Lock())

    async def take(self, event_id: str) -> bool:
        async with self._lock(event_id):
            if event_id in self._counts:
                self._counts[event_id] += 1
                return True
            self._generation += 1
            generation = self._generation
            if not await self.store.acquire(event_id, self.owner, self.ttl_s):
                return False
            self._counts[event_id] = 1
            self._taken_at[event_id] = generation
            self._counted()
            return True

    async def release(self, event_id: str) -> None:
        lock = self._lock(event_id)
        async with lock:
            n = self._counts.get(event_id)
            if n is None:
                return
            if n > 1:
                self._counts[event_id] = n - 1
                return
            del self._counts[event_id]
            self._taken_at.pop(event_id, None)
            self._on_lost.pop(event_id, None)
            self._counted()
            await self.store.release(event_id, self.owner)
        if not lock.locked():
            self._locks.pop(event_id, None)

    def watch(self, event_id: str, on_lost: Callable[[], None]) -> None:
        """Call `on_lost` (cancel the work) if a renewal finds this lease gone."""
        self._on_lost[event_id] = on_lost

    async def renew(self) -> list[str]:
        """Renew every lease held; the ids lost (another replica took them after they ran out). A lease taken
        while the renewal ran is fresh, never counted lost by it."""
        self._generation += 1
        started = self._generation
        held = list(self._counts)
        kept = await self.store.renew(self.owner, held, self.ttl_s)
        lost = [e for e in held if e not in kept and self._taken_at.get(e, started) < started]
        for event_id in lost:
            self._counts.pop(event_id, None)
            self._taken_at.pop(event_id, None)
            log.warning("replica %s lost the lease of decision %s: stopping its work", self.owner, event_id)
            if (stop := self._on_lost.pop(event_id, None)) is not None:
                stop()
        self._counted()
        return lost

    def _counted(self) -> None:
        if self._on_count is not None:
            self._on_count(len(self._counts))


__all__ = ["Fence", "LeaseKeeper", "LeaseLost", "LeaseStore"]
