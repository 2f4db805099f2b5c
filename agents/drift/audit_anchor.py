"""The audit chain's head, signed and anchored outside the database it guards.

At least every N records, when the log opens past its last checkpoint, and on shutdown, the
drift agent signs `{seq, head hash, time}` (protocol AuditCheckpoint, a JWS with its own key)
and hands it to its sinks: an append-only JSON Lines file in the state folder (always), and
optionally an HTTP log endpoint that receives a JSON array of checkpoints per POST, the way OPA
ships decision logs. Whoever removes the newest records and rolls the head back, or empties the
table, cannot forge a checkpoint: `AuditLog.verify(checkpoints)` names what is missing.

Nothing here writes to Argo CD.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import ValidationError

from agents.drift.config import DriftConfig
from protocol.errors import VerificationError
from protocol.models import AuditCheckpoint, SignedCheckpoint
from protocol.signing import Signer, TrustStore, verify_checkpoint

log = logging.getLogger(__name__)


class CheckpointSink(Protocol):
    async def write(self, signed: SignedCheckpoint) -> None: ...

    async def close(self) -> None: ...


class FileSink:
    """Appends one SignedCheckpoint per line (O_APPEND, fsync'd) to a file beside, not inside, the database."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def write(self, signed: SignedCheckpoint) -> None:
        await asyncio.to_thread(self._append, (signed.model_dump_json() + "\n").encode())

    async def close(self) -> None:
        return None


class HttpSink:
    """POSTs `[SignedCheckpoint]` as JSON to a log endpoint; a failure is logged, the file still holds it.

    Sends run in the background so that a slow endpoint never delays a decision's audit record;
    `close()` waits (bounded) for those still in flight.
    """

    def __init__(self, http: httpx.AsyncClient, url: str, token: str | None, timeout_s: float,
                 on_failure: Callable[[], None] | None = None) -> None:
        self._on_failure = on_failure
        self._http = http
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout_s = timeout_s
        self._inflight: set[asyncio.Task[None]] = set()

    async def _send(self, signed: SignedCheckpoint) -> None:
        body = "[" + signed.model_dump_json() + "]"
        try:
            response = await self._http.post(self._url, content=body, timeout=self._timeout_s,
                                              headers={**self._headers, "Content-Type": "application/json"})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("audit checkpoint seq %d not accepted by %s: %s: %s (it is in the checkpoint file)",
                        signed.checkpoint.seq, self._url, type(exc).__name__, exc)
            if self._on_failure is not None:
                self._on_failure()

    async def write(self, signed: SignedCheckpoint) -> None:
        task = asyncio.create_task(self._send(signed), name=f"audit-checkpoint-{signed.checkpoint.seq}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def close(self) -> None:
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=self._timeout_s + 1.0)


class AuditAnchor:
    """Decides when to checkpoint and writes each signed checkpoint to every sink."""

    def __init__(self, signer: Signer, sinks: list[CheckpointSink], every: int, last_seq: int = 0) -> None:
        if every < 1:
            raise ValueError("a checkpoint every 0 records is no checkpoint: give 1 or more")
        self._signer = signer
        self._sinks = sinks
        self._every = every
        self._last_seq = last_seq
        self._lock = asyncio.Lock()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    async def after_append(self, seq: int, head: str) -> None:
        if seq - self._last_seq >= self._every:
            await self.checkpoint(seq, head)

    async def checkpoint(self, seq: int, head: str) -> None:
        """Sign and write the head, unless a checkpoint at or beyond it was written already."""
        async with self._lock:
            if seq <= self._last_seq:
                return
            signed = self._signer.sign_checkpoint(AuditCheckpoint(seq=seq, head=head, at=datetime.now(UTC)))
            for sink in self._sinks:
                await sink.write(signed)
            self._last_seq = seq

    async def close(self) -> None:
        for sink in self._sinks:
            await sink.close()


class CheckpointFile:
    """Reads a checkpoint file back and verifies each line against the trust store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, trust: TrustStore, signer: str = "drift") -> tuple[list[AuditCheckpoint], list[str]]:
        """The checkpoints whose signature verifies, and a problem per line that does not."""
        if not self.path.is_file():
            return [], []
        good: list[AuditCheckpoint] = []
        problems: list[str] = []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            where = f"checkpoint {self.path}:{number}"
            try:
                stored = SignedCheckpoint.model_validate_json(line)
                signed = verify_checkpoint(trust, stored.jws, signer)
            except ValidationError as exc:
                problems.append(f"{where}: not a signed checkpoint ({str(exc).splitlines()[0]})")
                continue
            except VerificationError as exc:
                problems.append(f"{where}: its signature does not verify ({exc})")
                continue
            if signed != stored.checkpoint:
                problems.append(f"{where}: the readable copy differs from what was signed (it was edited)")
            good.append(signed)
        return good, problems

    def last_seq(self) -> int:
        """The highest seq written so far, read without verifying (the agent's own file, at start-up)."""
        if not self.path.is_file():
            return 0
        best = 0
        for line in self.path.read_text().splitlines():
            try:
                best = max(best, SignedCheckpoint.model_validate_json(line).checkpoint.seq)
            except ValidationError:
                continue
        return best


def anchor_for(config: DriftConfig, signer: Signer, http: httpx.AsyncClient,
               on_sink_failure: Callable[[], None] | None = None) -> AuditAnchor:
    """The drift agent's anchor: the checkpoint file always, the HTTP log endpoint when configured.

    With PostgreSQL the file is each replica's own, on a disk that goes with its pod: only the HTTP log endpoint
    anchors the shared chain outside the database, so its absence is said once, at start-up."""
    sinks: list[CheckpointSink] = [FileSink(config.audit_checkpoints_path)]
    if config.audit.log_url:
        token = config.audit.log_token.get_secret_value() if config.audit.log_token else None
        sinks.append(HttpSink(http, config.audit.log_url, token, config.audit.timeout_s, on_sink_failure))
    elif config.state.dsn is not None:
        log.warning("the audit chain is in PostgreSQL but its signed checkpoints go only to %s, beside this replica: "
                    "set drift.audit_log_url to an HTTP log endpoint outside PostgreSQL to anchor it",
                    config.audit_checkpoints_path)
    return AuditAnchor(signer, sinks, config.audit.every, CheckpointFile(config.audit_checkpoints_path).last_seq())
