"""Readiness of a drift agent (GET /readyz): can this replica reach its state database now?

/healthz says the process answers (liveness: restart it if not); /readyz says it can do its work, which
needs the state database: a Kubernetes Service or a Compose health check sends webhooks, approvals and
long polls only to replicas that answer 200 here, and 503 names what is wrong.

The probe is one bounded round trip (`state.probe_timeout_s` for all of it, connecting included):
- PostgreSQL: `SELECT pg_is_in_recovery()` on a connection of its own. Through the stores' pool it would
  also fail while every pooled connection is busy, taking a loaded replica out of service when it is most
  needed; and a standby in recovery answers reads but refuses every write, so it counts as not ready.
- SQLite: `SELECT 1` on the stores' file (the file is local: this mostly proves the connection is open).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from agents.drift.config import StateConfig
from agents.drift.database import Database
from agents.drift.errors import StoreError

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
"""One round trip to the state database; raises StoreError (or the driver's error) naming the problem."""


class Readiness(BaseModel):
    """The body of GET /readyz (200 when ready, 503 when not)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ready: bool
    agent: str
    state: str = Field(description="where the state is: the SQLite file, or the DSN without its password")
    problem: str | None = Field(default=None, description="why the replica is not ready, and what to check")


def postgres_check(dsn: str, where: str, timeout_s: float) -> Check:
    async def check() -> None:
        # connect_timeout is whole seconds (libpq); the caller's asyncio timeout holds the finer bound
        async with await psycopg.AsyncConnection.connect(
                dsn, connect_timeout=max(1, math.ceil(timeout_s)), autocommit=True) as conn:
            cur = await conn.execute("SELECT pg_is_in_recovery()")
            row = await cur.fetchone()
        if row is not None and row[0]:
            raise StoreError(f"the state database {where} is a standby in recovery (read-only): "
                             "point state.dsn at the primary")

    return check


def database_check(db: Database) -> Check:
    async def check() -> None:
        await db.row("SELECT 1")

    return check


class StateProbe:
    """Answers whether the state database is reachable, within `timeout_s`; logs each change of answer."""

    def __init__(self, agent: str, where: str, check: Check, timeout_s: float) -> None:
        self._agent, self._where, self._check, self._timeout_s = agent, where, check, timeout_s
        self._last_problem: str | None = None

    async def __call__(self) -> Readiness:
        problem = await self._problem()
        if problem != self._last_problem:
            if problem is None:
                log.info("ready again: the state database %s answers", self._where)
            else:
                log.warning("not ready: %s", problem)
            self._last_problem = problem
        return Readiness(ready=problem is None, agent=self._agent, state=self._where, problem=problem)

    async def _problem(self) -> str | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._check()
        except TimeoutError:
            return (f"the state database {self._where} did not answer within state.probe_timeout_s="
                    f"{self._timeout_s:g}s: check that it runs and that this pod may reach it")
        except StoreError as exc:
            return str(exc)
        except (psycopg.Error, OSError) as exc:
            return f"cannot reach the state database {self._where}: {_one_line(exc)}"
        return None


def _one_line(exc: Any) -> str:
    """libpq's messages run over several lines (the attempt per address, a hint): one line for a probe body."""
    text = str(exc).strip() or type(exc).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def probe_for(agent: str, state: StateConfig, db: Database) -> StateProbe:
    """The probe of a drift agent's state: its own PostgreSQL connection per probe, or the SQLite file's."""
    check = database_check(db) if state.dsn is None else \
        postgres_check(state.dsn.get_secret_value(), db.where, state.probe_timeout_s)
    return StateProbe(agent, db.where, check, state.probe_timeout_s)


__all__ = ["Readiness", "StateProbe", "database_check", "postgres_check", "probe_for"]
