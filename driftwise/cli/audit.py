"""`driftwise audit`: show the drift agent's hash-chained audit records, and verify the chain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from driftwise.cli import ConfigOption


def _db_path(config: Path | None, db: Path | None) -> Path:
    from driftwise.cli import fail, settings_or_exit

    path = db or settings_or_exit(config).state_dir / "drift.sqlite"
    if not path.is_file():
        fail(f"audit database {path} does not exist (pass --db, or run the drift agent first)", 2)
    return path


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The append-only, hash-chained audit log of the drift agent.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("show")
    def show(
        event: str | None = typer.Option(None, "--event", help="only the records of this drift event id"),
        db: Path | None = typer.Option(None, "--db", help="SQLite file (default <state_dir>/drift.sqlite)"),
        as_json: bool = typer.Option(False, "--json", help="one full JSON record per line"),
        config: Path | None = ConfigOption,
    ) -> None:
        """List audit records, oldest first."""
        from agents.drift.audit import AuditError, AuditLog
        from driftwise.cli import fail

        async def records() -> list:
            async with AuditLog(_db_path(config, db)) as log:
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
        db: Path | None = typer.Option(None, "--db", help="SQLite file (default <state_dir>/drift.sqlite)"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Re-check the whole hash chain; exit 1 naming the first broken record."""
        from agents.drift.audit import AuditError, AuditLog
        from driftwise.cli import fail

        async def check():
            async with AuditLog(_db_path(config, db)) as log:
                return await log.verify()

        try:
            result = asyncio.run(check())
        except AuditError as exc:
            fail(str(exc))
        if result.ok:
            typer.echo(json.dumps({"ok": True, "checked": result.checked}))
            return
        for problem in result.problems[1:]:
            typer.echo(problem, err=True)
        fail(f"audit chain broken at {result.problems[0]} ({result.checked} records checked)")
