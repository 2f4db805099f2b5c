"""`driftwise audit`: show the drift agent's hash-chained audit records, verify the chain against its
signed checkpoints, and export it as JSON Lines."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from driftwise.cli import ConfigOption

DbOption = typer.Option(None, "--db", help="SQLite file (default: state.dsn's PostgreSQL if set, else "
                                           "<state_dir>/drift.sqlite); its folder is the state folder the other "
                                           "defaults are read from")


@dataclass(frozen=True)
class _Source:
    """Where the audit is: a SQLite file, or the PostgreSQL of state.dsn; and the state folder beside it."""

    state_dir: Path
    path: Path | None = None
    dsn: str | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Any]:
        from agents.drift.audit import AuditError, AuditLog
        from agents.drift.errors import StoreError

        if self.path is not None:
            async with AuditLog(self.path) as log:
                yield log
            return
        from agents.drift.postgres import PostgresDatabase

        assert self.dsn is not None
        try:
            db = await PostgresDatabase.open(self.dsn)
        except StoreError as exc:
            raise AuditError(str(exc)) from exc
        try:
            yield AuditLog(db)
        finally:
            await db.close()


def _source(config: Path | None, db: Path | None) -> _Source:
    from driftwise.cli import fail, settings_or_exit

    if db is None:
        settings = settings_or_exit(config)
        if settings.state.dsn is not None:
            return _Source(settings.state_dir, dsn=settings.state.dsn.get_secret_value())
        db = settings.state_dir / "drift.sqlite"
    if not db.is_file():
        fail(f"audit database {db} does not exist (pass --db, or run the drift agent first)", 2)
    return _Source(db.parent, path=db)


def _trust(path: Path) -> Any:
    """A trust store file, or the drift agent's JWKS (`drift.jwks.json`): its keys are then the drift agent's."""
    from driftwise.cli import fail
    from protocol.errors import KeyStoreError
    from protocol.signing import TrustStore

    if not path.is_file():
        fail(f"trust store {path} does not exist: pass --trust FILE (a trust store, or the drift agent's "
             "public JWKS) to check the signed checkpoints", 2)
    try:
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "keys" in doc and "agents" not in doc:
            store = TrustStore()
            store.add_jwks("drift", doc)
            return store
        return TrustStore.from_document(doc, origin=str(path))
    except (ValueError, KeyStoreError) as exc:
        fail(f"--trust {path}: not a trust store or a JWKS ({exc})", 2)


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The append-only, hash-chained audit log of the drift agent.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("show")
    def show(
        event: str | None = typer.Option(None, "--event", help="only the records of this drift event id"),
        db: Path | None = DbOption,
        as_json: bool = typer.Option(False, "--json", help="one full JSON record per line"),
        config: Path | None = ConfigOption,
    ) -> None:
        """List audit records, oldest first."""
        from agents.drift.audit import AuditError
        from driftwise.cli import fail

        async def records() -> list:
            async with _source(config, db).open() as log:
                return await log.records(event)

        try:
            rows = asyncio.run(records())
        except AuditError as exc:
            fail(str(exc))
        for record in rows:
            if as_json:
                typer.echo(record.model_dump_json())
                continue
            verdict = record.payload.get("verdict") if isinstance(record.payload, dict) else None
            verdict = verdict.get("verdict", verdict) if isinstance(verdict, dict) else None
            action = verdict.get("action", "") if isinstance(verdict, dict) else ""
            typer.echo(f"{record.seq:>6}  {record.at.isoformat()}  {record.kind:<8}  {record.event_id}  "
                       f"{action:<8}  {record.hash[:16]}")

    @audit.command("verify")
    def verify(
        db: Path | None = DbOption,
        checkpoints: Path | None = typer.Option(
            None, "--checkpoints", help="the signed checkpoints (default <state folder>/audit-checkpoints.jsonl; "
                                        "a copy from the HTTP log endpoint works too)"),
        trust: Path | None = typer.Option(
            None, "--trust", help="trust store or the drift agent's JWKS (default <state folder>/keys/trust.json)"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Re-check the whole hash chain and hold it to the latest signed checkpoint; exit 1 naming what broke."""
        from agents.drift.audit import AuditError
        from agents.drift.audit_anchor import CheckpointFile
        from agents.drift.config import AUDIT_CHECKPOINTS_FILE
        from driftwise.cli import fail

        source = _source(config, db)
        state = source.state_dir
        anchors = CheckpointFile(checkpoints or state / AUDIT_CHECKPOINTS_FILE)
        signed, problems = [], []
        if anchors.path.is_file():
            signed, problems = anchors.read(_trust(trust or state / "keys" / "trust.json"))
        elif checkpoints is not None:
            fail(f"--checkpoints {checkpoints} does not exist", 2)

        async def check():
            async with source.open() as log:
                return await log.verify(signed)

        try:
            result = asyncio.run(check())
        except AuditError as exc:
            fail(str(exc))
        problems = [*result.problems, *problems]
        if result.checked and not signed:
            problems.append(f"no signed checkpoint in {anchors.path}: nothing proves how long the chain was "
                            "(the drift agent writes one at start, every drift.audit_checkpoint_every records "
                            "and on shutdown; pass --checkpoints FILE)")
        if not problems:
            typer.echo(json.dumps({"ok": True, "checked": result.checked,
                                   "checkpoint_seq": max((c.seq for c in signed), default=None)}))
            return
        for problem in problems[1:]:
            typer.echo(problem, err=True)
        fail(f"audit chain broken: {problems[0]} ({result.checked} records checked)")

    @audit.command("export")
    def export(
        db: Path | None = DbOption,
        out: Path | None = typer.Option(None, "--out", help="write here (default: standard output)"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Write every record, oldest first, as JSON Lines (one AuditRecord per line) for a store you trust."""
        from agents.drift.audit import AuditError
        from driftwise.cli import fail

        async def dump(sink: Any) -> int:
            count = 0
            async with _source(config, db).open() as log:
                async for record in log.stream():
                    sink.write(record.model_dump_json() + "\n")
                    count += 1
            return count

        try:
            if out is None:
                count = asyncio.run(dump(sys.stdout))
            else:
                with out.open("w", encoding="utf-8") as handle:
                    count = asyncio.run(dump(handle))
        except AuditError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"--out {out}: {exc}")
        typer.echo(f"exported {count} audit records", err=True)
