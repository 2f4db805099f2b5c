"""The drift agent's tests' own fixtures: the runner harness and the re-read tests' event store (the sandbox
process and the stack of processes come from tests/support/process_fixtures.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.drift.audit import AuditLog
from agents.drift.config import ConsoleConfig
from agents.drift.graph import compile_graph
from agents.drift.leases import LeaseKeeper
from agents.drift.metrics import DriftMetrics
from agents.drift.replay import ReplayStore
from agents.drift.runner import DecisionRunner
from agents.drift.steps import GraphDeps, checkpoint_serde
from agents.drift.store import EventStore
from agents.drift.wiring import verifier_for
from protocol.signing import Signer, TrustStore, generate_key
from tests.support.drift_core import FakeObserver, FakeReasoner, FixedClock, PassGuardrail, drift_config
from tests.support.reread_fakes import decided_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """One done decision of application `api` (replicas 3 -> 8)."""
    async with decided_store(tmp_path / "drift.sqlite") as s:
        yield s


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[tuple[Any, ...]]:
    """(make a runner, event store, audit, trust store, checkpointer, config) on one SQLite state in tmp_path:
    runners made by `make` share it as replicas share one database."""
    key = generate_key("drift")
    trust = TrustStore()
    trust.add("drift", key)
    config = drift_config(tmp_path)
    signer = Signer("drift", key)
    async with (EventStore(config.db_path) as store, AuditLog(config.db_path) as audit,
                ReplayStore(config.db_path) as replay, httpx.AsyncClient() as http,
                AsyncSqliteSaver.from_conn_string(str(config.checkpoint_path)) as saver):
        saver.serde = checkpoint_serde()
        clock = FixedClock(http, None)

        def make(observer: Any = None, reasoner: Any = None, deadline_s: float | None = None,
                 leases: LeaseKeeper | None = None, console: ConsoleConfig | None = None) -> DecisionRunner:
            cfg = config if deadline_s is None else config.model_copy(update={"decision_deadline_s": deadline_s})
            cfg = cfg if console is None else cfg.model_copy(update={"console": console})
            deps = GraphDeps(
                config=cfg, clock=clock, observer=observer or FakeObserver(), tools=None, plan=lambda r, n: [],
                peers=None,  # type: ignore[arg-type]  # no specialist is configured: never asked
                wants=lambda k, p, r: False, reasoner=reasoner or FakeReasoner(), signer=signer,
                verifier=verifier_for(cfg, trust), replay=replay, guardrail=PassGuardrail(),
            )
            return DecisionRunner(cfg, compile_graph(deps, saver), store, audit, signer, clock, DriftMetrics(),
                                  leases=leases)

        yield make, store, audit, trust, saver, config
