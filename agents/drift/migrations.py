"""The drift agent's schema, as versioned migrations: one list for every store, in both dialects.

A database records the versions applied in `schema_migrations`; at start-up each missing one is applied in
order, in one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: under `pg_advisory_lock`, so replicas
starting together migrate once). A database whose newest version is above the last one here was written by
a newer Driftwise: the process stops with one line naming both versions (`SchemaTooNew`).

Rules for a new migration: append it (never edit an applied one), give both dialects, and keep SQLite's
statements safe to run on a file whose tables predate the migration table (IF NOT EXISTS), because the
first migration adopts files made before migrations existed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agents.drift.database import Dialect, SchemaTooNew, Tx


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgres


_DECISIONS = """
CREATE TABLE IF NOT EXISTS drift_decisions (
    event_id        TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    application     TEXT NOT NULL,
    state           TEXT NOT NULL,
    open            INTEGER NOT NULL,
    received_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    document        TEXT NOT NULL
)"""
_JOINS = """
CREATE TABLE IF NOT EXISTS drift_joins (
    event_id   TEXT PRIMARY KEY,
    joined     TEXT NOT NULL,
    at         TEXT NOT NULL
)"""
_OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    event_id TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('requested', 'done', 'failed')),
    detail TEXT NOT NULL DEFAULT '{{}}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (event_id, step)
)"""
_JOBS = """
CREATE TABLE IF NOT EXISTS jobs (
    id {id},
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (event_id, kind)
)"""
_AUDIT = """
CREATE TABLE IF NOT EXISTS audit (
    seq {seq} PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    schema_version TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)"""
_AUDIT_HEAD = """
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq {seq} NOT NULL,
    hash TEXT NOT NULL
)"""
_USED_TOKENS = """
CREATE TABLE IF NOT EXISTS used_tokens (
    jti        TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    consumer   TEXT NOT NULL,
    expires_at {real} NOT NULL,
    used_at    {real} NOT NULL
)"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS drift_decisions_open ON drift_decisions(idempotency_key, open)",
    "CREATE INDEX IF NOT EXISTS drift_decisions_app ON drift_decisions(application, received_at)",
    "CREATE INDEX IF NOT EXISTS drift_decisions_closed ON drift_decisions(open, updated_at)",
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due_at)",
    "CREATE INDEX IF NOT EXISTS audit_event ON audit(event_id)",
    "CREATE INDEX IF NOT EXISTS used_tokens_expiry ON used_tokens(expires_at)",
)

_SQLITE_AUDIT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head "
    "WHEN NEW.seq != OLD.seq + 1 BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
_POSTGRES_AUDIT_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE OR REPLACE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN IF NEW.seq != OLD.seq + 1 THEN RAISE EXCEPTION 'the audit head only moves forward'; END IF; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_head_forward()",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
)

_CONSOLE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS drift_decisions_received ON drift_decisions(received_at, event_id)",
    "CREATE INDEX IF NOT EXISTS drift_decisions_state ON drift_decisions(state, received_at)",
)


def _console_project_index(project: str) -> str:
    """The console's project filter: an expression index on the document, no new column."""
    return f"CREATE INDEX IF NOT EXISTS drift_decisions_project ON drift_decisions(({project}), received_at)"


_OUTCOMES = (
    """CREATE TABLE IF NOT EXISTS drift_outcomes (
    event_id    TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    kind        TEXT NOT NULL,
    agreement   TEXT NOT NULL,
    at          TEXT NOT NULL,
    document    TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS drift_outcomes_app ON drift_outcomes(application, at)",
)

_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    event_id   TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at {real} NOT NULL
)"""
_LEASE_INDEX = "CREATE INDEX IF NOT EXISTS leases_owner ON leases(owner, expires_at)"
# who runs a pending job now, and until when (the database's clock): a claim its claimer did not finish is free
# again. A table of its own, not columns of `jobs`: SQLite has no ADD COLUMN IF NOT EXISTS for adopted files
_JOB_CLAIMS = """
CREATE TABLE IF NOT EXISTS job_claims (
    job_id     BIGINT PRIMARY KEY,
    owner      TEXT NOT NULL,
    until      {real} NOT NULL
)"""

_TABLES = (_DECISIONS, _JOINS, _OUTBOX, _JOBS, _AUDIT, _AUDIT_HEAD, _USED_TOKENS)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        name="decisions, joins, outbox, jobs, audit chain, replay cache",
        sqlite=(
            # the one-open-decision-per-application index of before the revision rule
            "DROP INDEX IF EXISTS drift_decisions_open_key",
            *(t.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", seq="INTEGER", real="REAL") for t in _TABLES),
            *_INDEXES, *_SQLITE_AUDIT_TRIGGERS,
        ),
        postgres=(
            *(t.format(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", seq="BIGINT", real="DOUBLE PRECISION")
              for t in _TABLES),
            *_INDEXES, *_POSTGRES_AUDIT_TRIGGERS,
        ),
    ),
    Migration(
        version=2,
        name="the console's keyset paging and filters (EventStore.page, awaiting)",
        sqlite=(*_CONSOLE_INDEXES, _console_project_index("json_extract(document, '$.event.notification.project')")),
        # the expression as PostgresDatabase.json_text writes it, so the planner matches the query to the index
        postgres=(*_CONSOLE_INDEXES, _console_project_index("((document)::jsonb #>> '{event,notification,project}')")),
    ),
    Migration(
        version=3,
        name="outcomes (agents.drift.outcome_store)",
        sqlite=_OUTCOMES, postgres=_OUTCOMES,
    ),
    Migration(
        version=4,
        name="leases on decisions and claims on jobs, for replicas (agents.drift.leases)",
        sqlite=(_LEASES.format(real="REAL"), _LEASE_INDEX, _JOB_CLAIMS.format(real="REAL")),
        postgres=(_LEASES.format(real="DOUBLE PRECISION"), _LEASE_INDEX, _JOB_CLAIMS.format(real="DOUBLE PRECISION")),
    ),
)
LATEST = MIGRATIONS[-1].version


def check_known(found: int, where: str) -> None:
    """Stop on a schema newer than this code: it may mean what this code would misread."""
    if found > LATEST:
        raise SchemaTooNew(f"the state database {where} has schema version {found}, newer than this Driftwise "
                           f"knows ({LATEST}): run the Driftwise that migrated it, or a newer one")


_VERSION_TABLE: dict[Dialect, str] = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
              "applied_at TEXT NOT NULL)",
    "postgres": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
}
_RECORD: dict[Dialect, str] = {
    "sqlite": "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))",
    "postgres": "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
}


async def apply_pending(tx: Tx, dialect: Dialect, where: str, run: Callable[[str], Awaitable[object]]) -> int:
    """Inside the caller's transaction: make the version table, refuse a newer schema, apply each missing migration
    in order and record it; `run` executes one migration statement as written. Returns how many were applied."""
    await tx.execute(_VERSION_TABLE[dialect])
    found = await tx.row("SELECT max(version) FROM schema_migrations")
    current = int(found[0]) if found and found[0] is not None else 0
    check_known(current, where)
    pending = [m for m in MIGRATIONS if m.version > current]
    for m in pending:
        for statement in m.statements(dialect):
            await run(statement)
        await tx.execute(_RECORD[dialect], (m.version, m.name))
    return len(pending)
