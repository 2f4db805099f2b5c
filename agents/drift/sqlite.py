"""How the drift agent opens its SQLite files: one place for durability and contention settings.

WAL with synchronous=NORMAL: a commit survives any crash of the process (kill -9 included: it is in
the WAL, which the OS holds); only an OS crash or power loss can drop the newest commits, the
crash the outbox and the hash-chain head are built to survive. FULL would fsync every commit
(~4.5 ms on this kind of disk) on a decision's critical path. busy_timeout lets the event store,
audit log, acting store and checkpoints (separate connections) wait for each other's writes.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

BUSY_TIMEOUT_MS = 30_000


async def connect(path: Path, *, autocommit: bool = True) -> aiosqlite.Connection:
    """Open `path` (creating its folder); `autocommit` leaves transactions to explicit BEGINs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await (aiosqlite.connect(path, isolation_level=None) if autocommit else aiosqlite.connect(path))
    try:
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await db.close()
        raise
    return db
