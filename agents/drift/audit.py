"""The drift agent's audit log: append-only, hash-chained records (SQLite or PostgreSQL; modelled on OPA decision logs).

Each record's hash is sha256(prev_hash + canonical JSON of its body), the body being everything
but the hash; the first record chains from 64 zeros. A one-row head table holds the last seq and
hash, written in the same transaction, so that removing the newest records is detected too.
Triggers (agents.drift.migrations) refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL) on the records, and
any head update that does not advance by one; appends are serialised by a transaction (BEGIN IMMEDIATE, or
an advisory lock shared by every replica). `verify()` still re-checks the whole chain, since anyone
with the file can drop a trigger.
Someone who can write the file can also cut the newest records and roll the head back with them,
or empty both tables: an AuditAnchor (audit_anchor.py) signs the head at least every N records
and on close, outside this database, and `verify(checkpoints)` holds the chain to them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agents.drift.database import Database, Store, Tx, batched
from agents.drift.leases import Fence
from protocol.models import SCHEMA_VERSION, AuditCheckpoint, AuditRecord

if TYPE_CHECKING:
    from agents.drift.audit_anchor import AuditAnchor

GENESIS = "0" * 64
TABLE = "audit"

Kind = Literal["decision", "approval", "apply", "expiry", "supersede", "outcome"]


class AuditError(Exception):
    """The audit log cannot be opened or written, or a payload is not JSON."""


class AuditVerification(BaseModel):
    ok: bool
    checked: int
    problems: list[str] = Field(default_factory=list, description="the first broken record comes first")


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 kept; NaN and non-JSON values refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def _body(seq: int, event_id: str, kind: str, at: str, schema_version: str, payload: dict[str, Any]) -> dict:
    return {"schema_version": schema_version, "seq": seq, "event_id": event_id, "kind": kind, "at": at,
            "payload": payload}


class AuditLog(Store):
    """`async with AuditLog(path) as audit: await audit.append(event_id, "decision", payload)`.

    An OS crash can drop the newest appends, but the head row goes with them: the chain still verifies."""

    WHAT = "the audit log"
    ERROR = AuditError
    _anchor: AuditAnchor | None = None

    def __init__(self, source: Path | Database, fence: Fence | None = None) -> None:
        super().__init__(source)
        self.fence = fence
        """A replica's (agents.drift.leases): an append for a decision another live replica leases is refused
        in the append's own transaction (LeaseLost), so a replica that lost a lease adds nothing to the chain."""

    async def head(self) -> tuple[int, str]:
        """The head row: the last record's seq and hash ((0, GENESIS) for an empty chain)."""
        return await _head(self.db)

    async def anchor_with(self, anchor: AuditAnchor) -> None:
        """From now on checkpoint through `anchor`; a head the anchor has not signed yet is signed now
        (the last run may have stopped between checkpoints)."""
        self._anchor = anchor
        seq, digest = await self.head()
        await anchor.checkpoint(seq, digest)

    async def close(self) -> None:
        anchor, self._anchor = self._anchor, None
        if anchor is not None and self._db is not None:
            try:
                await anchor.checkpoint(*await self.head())
            finally:
                await anchor.close()
        await super().close()

    async def append(
        self, event_id: str, kind: Kind, payload: dict[str, Any], *, at: datetime | None = None,
        once: str | None = None,
    ) -> AuditRecord | None:
        """Append one record, chained to the last; serialised across processes by an IMMEDIATE transaction (an
        advisory lock on PostgreSQL). With `once` (a step name, kept in the payload as `step`), only if the event
        has no record of this kind and step yet, checked in the same transaction: None when it had one."""
        if once is not None:
            payload = {**payload, "step": once}
        try:
            payload_json = canonical(payload)
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit payload for event {event_id} is not JSON: {exc}") from exc
        stamp = (at or datetime.now(UTC)).isoformat()
        async with self.transaction(lock=TABLE) as tx:
            if self.fence is not None:
                await self.fence.check(tx, self.db, event_id)
            step = self.db.json_text("payload", "step")
            if once is not None and await tx.row(
                    f"SELECT 1 FROM {TABLE} WHERE event_id = ? AND kind = ? AND {step} = ?", (event_id, kind, once)):
                return None
            record = await _append(tx, event_id, kind, stamp, payload_json)
        if self._anchor is not None:
            await self._anchor.after_append(record.seq, record.hash)
        return record

    async def stream(self) -> AsyncIterator[AuditRecord]:
        """Every record, oldest first, without holding the whole chain in memory (export)."""
        async for r in batched(self.db, f"SELECT {_COLUMNS} FROM {TABLE} WHERE seq > ? ORDER BY seq LIMIT ?", (), 0):
            yield _record(r)

    async def records(self, event_id: str | None = None) -> list[AuditRecord]:
        query = f"SELECT {_COLUMNS} FROM {TABLE}"
        args: tuple[Any, ...] = ()
        if event_id is not None:
            query += " WHERE event_id = ?"
            args = (event_id,)
        return [_record(r) for r in await self.rows(query + " ORDER BY seq", args)]

    async def verify(self, checkpoints: Sequence[AuditCheckpoint] = ()) -> AuditVerification:
        """Re-check every record's hash and link, the seq run, the head, and each signed checkpoint;
        problems name records by seq."""
        problems: list[str] = []
        hashes: dict[int, str] = {}
        prev, expected_seq, checked = GENESIS, 1, 0
        sql = f"SELECT {_COLUMNS} FROM {TABLE} WHERE seq > ? ORDER BY seq LIMIT ?"
        async for seq, event_id, kind, at, version, payload, prev_hash, digest in batched(self.db, sql, (), 0):
            checked += 1
            where = f"record seq {seq} (event {event_id})"
            if seq != expected_seq:
                problems.append(f"{where}: expected seq {expected_seq} here (a record was removed or moved)")
            if prev_hash != prev:
                problems.append(f"{where}: prev_hash does not link to the record before it")
            try:
                body = _body(seq, event_id, kind, at, version, json.loads(payload))
                AuditRecord(seq=seq, event_id=event_id, kind=kind, at=at, schema_version=version,
                            payload=json.loads(payload), prev_hash=prev_hash, hash=digest)
            except (ValueError, ValidationError) as exc:
                problems.append(f"{where}: not a valid audit record: {str(exc).splitlines()[0]}")
            else:
                if record_hash(prev_hash, body) != digest:
                    problems.append(f"{where}: hash mismatch (the record was edited)")
            prev, expected_seq = digest, seq + 1
            hashes[seq] = digest
        head = await self.row(f"SELECT seq, hash FROM {TABLE}_head WHERE id = 1")
        if head is None and checked:
            problems.append("the audit head is missing")
        elif head is not None and (head[0] != expected_seq - 1 or head[1] != prev):
            problems.append(
                f"the audit head names record seq {head[0]} but the chain ends at seq {expected_seq - 1}"
                " (records were removed from the end)"
            )
        problems.extend(_against_checkpoints(hashes, checked, checkpoints))
        return AuditVerification(ok=not problems, checked=checked, problems=problems)


_COLUMNS = "seq, event_id, kind, at, schema_version, payload, prev_hash, hash"


def _record(r: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(seq=r[0], event_id=r[1], kind=r[2], at=r[3], schema_version=r[4], payload=json.loads(r[5]),
                       prev_hash=r[6], hash=r[7])


async def _head(db: Tx) -> tuple[int, str]:
    row = await db.row(f"SELECT seq, hash FROM {TABLE}_head WHERE id = 1")
    return (int(row[0]), row[1]) if row else (0, GENESIS)


async def _append(tx: Tx, event_id: str, kind: Kind, stamp: str, payload_json: str) -> AuditRecord:
    """Inside a transaction that holds the audit's lock: one record chained to the head, and the head moved."""
    seq, prev = await _head(tx)
    seq += 1
    clean = json.loads(payload_json)
    digest = record_hash(prev, _body(seq, event_id, kind, stamp, SCHEMA_VERSION, clean))
    await tx.execute(
        f"INSERT INTO {TABLE} (seq, event_id, kind, at, schema_version, payload, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, event_id, kind, stamp, SCHEMA_VERSION, payload_json, prev, digest),
    )
    if seq > 1:
        await tx.execute(f"UPDATE {TABLE}_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
    else:
        await tx.execute(f"INSERT INTO {TABLE}_head (id, seq, hash) VALUES (1, ?, ?)", (seq, digest))
    return AuditRecord(seq=seq, event_id=event_id, kind=kind, at=stamp, payload=clean, prev_hash=prev, hash=digest)


def _against_checkpoints(hashes: dict[int, str], checked: int, checkpoints: Sequence[AuditCheckpoint]) -> list[str]:
    """What the signed checkpoints say is missing or rewritten: the latest one decides truncation."""
    if not checkpoints:
        return []
    problems: list[str] = []
    latest = max(checkpoints, key=lambda c: (c.seq, c.at))
    last = max(hashes, default=0)
    signed_at = f"the checkpoint signed at {latest.at.isoformat()} names seq {latest.seq}"
    if checked == 0 and latest.seq > 0:
        problems.append(f"every record was deleted: {signed_at} (hash {latest.head[:16]}), the table is empty")
    elif latest.seq > last:
        problems.append(f"records seq {last + 1}..{latest.seq} are missing: {signed_at}, the chain ends at seq "
                        f"{last} (the newest records were removed and the head rolled back)")
    for checkpoint in sorted({(c.seq, c.head): c for c in checkpoints}.values(), key=lambda c: c.seq):
        found = hashes.get(checkpoint.seq)
        if checkpoint.seq and found is not None and found != checkpoint.head:
            problems.append(f"record seq {checkpoint.seq} is not the one signed at {checkpoint.at.isoformat()} "
                            "(the chain was rewritten from there on)")
            break
    return problems
