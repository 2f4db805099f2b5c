"""GET /readyz: 200 while the drift agent reaches its state database, 503 naming the problem while it cannot.

Against real databases: SQLite, a PostgreSQL cluster (shared), a DSN to a closed port, a server that
accepts connections and never answers, a cluster of the test's own stopped mid-test and started again,
and a standby in recovery. The app is the drift agent's own (create_app) on its state opened as `serve`
opens it (agents.drift.state.open_state), in process through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agents.drift.app import READY_PATH, create_app
from agents.drift.config import StateConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.postgres import redacted
from agents.drift.readiness import StateProbe, postgres_check, probe_for
from agents.drift.state import open_state
from driftwise.supervisor import free_port_block
from protocol.models import Decision
from tests.support.drift_core import drift_config
from tests.support.postgres import PgCluster, PgServer, fresh_dsn

BOUND_S = 20.0
"""Every request of these tests ends well within this (a probe is bounded by state.probe_timeout_s)."""


async def _nothing(_: Decision) -> None:
    return None


@asynccontextmanager
async def drift_app(tmp_path: Path, state: StateConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The drift agent's HTTP app on its state, with a peer token set (so /readyz is shown to need none)."""
    config = drift_config(tmp_path, state=state, peer_tokens={"sre-bot": SecretStr("peer-token")})
    async with open_state(config.state, config.db_path, config.checkpoint_path) as stores:
        app = create_app(config, stores.events, DriftMetrics(), _nothing,
                         ready=probe_for(config.agent_id, config.state, stores.events.db))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as client:
            yield client


async def readyz(client: httpx.AsyncClient) -> tuple[int, dict]:
    async with asyncio.timeout(BOUND_S):
        response = await client.get(READY_PATH)
    return response.status_code, response.json()


def closed_port() -> int:
    """A loopback port nothing listens on (free_port_block checks it is free)."""
    return free_port_block(1)


async def test_ready_on_sqlite(tmp_path: Path) -> None:
    async with drift_app(tmp_path, StateConfig()) as client:
        status, body = await readyz(client)
    assert status == 200, body
    assert body == {"ready": True, "agent": "drift", "state": str(tmp_path / "drift.sqlite"), "problem": None}


async def test_ready_on_postgres(tmp_path: Path, pg_cluster: PgCluster) -> None:
    state = StateConfig(dsn=SecretStr(await fresh_dsn(pg_cluster)))
    async with drift_app(tmp_path, state) as client:
        status, body = await readyz(client)
    assert status == 200, body
    assert body["ready"] is True and body["state"].startswith(f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/")


def postgres_probe(dsn: str, timeout_s: float = 2.0) -> StateProbe:
    """The probe `probe_for` makes for a PostgreSQL state, on a DSN no pool needs to have opened."""
    where = redacted(dsn)
    return StateProbe("drift", where, postgres_check(dsn, where, timeout_s), timeout_s)


async def test_a_closed_port_is_503_naming_the_database_without_its_password() -> None:
    port = closed_port()
    probe = postgres_probe(f"postgresql://driftwise:s3cret-pw@127.0.0.1:{port}/driftwise")
    async with asyncio.timeout(BOUND_S):
        found = await probe()
    assert found.ready is False
    assert found.problem is not None
    assert found.problem.startswith(f"cannot reach the state database postgresql://driftwise:***@127.0.0.1:{port}/")
    assert "refused" in found.problem.lower() and "\n" not in found.problem
    assert "s3cret-pw" not in found.model_dump_json()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A loopback port that accepts TCP connections and never says anything (a hung or black-holed server)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_server_that_never_answers_is_503_within_the_probe_timeout(silent_server: int) -> None:
    dsn = f"postgresql://driftwise@127.0.0.1:{silent_server}/driftwise"
    async with asyncio.timeout(BOUND_S):  # a bound on the test; the probe's own bound is what is asserted
        found = await postgres_probe(dsn, timeout_s=0.3)()
    assert found.ready is False
    assert found.problem == (f"the state database {dsn} did not answer within state.probe_timeout_s=0.3s: "
                             "check that it runs and that this pod may reach it")


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PgServer]:
    """A PostgreSQL of this module's own, to stop and start (the shared cluster serves other tests); each
    test leaves it running."""
    server = PgServer.initialised()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove()


@pytest.mark.slow
async def test_not_ready_while_postgres_is_stopped_ready_again_once_it_is_back(
        tmp_path: Path, own_cluster: PgServer) -> None:
    state = StateConfig(dsn=SecretStr(await fresh_dsn(own_cluster.cluster)), probe_timeout_s=2.0)
    async with drift_app(tmp_path, state) as client:
        assert (await readyz(client))[0] == 200
        own_cluster.stop()
        status, body = await readyz(client)
        assert status == 503, body
        assert body["ready"] is False
        assert body["problem"].startswith(f"cannot reach the state database {body['state']}: ")
        assert str(own_cluster.port) in body["problem"]
        own_cluster.start()
        status, body = await readyz(client)
        assert status == 200, body
        assert body["problem"] is None


@pytest.mark.slow
async def test_a_standby_in_recovery_is_not_ready(own_cluster: PgServer) -> None:
    standby = own_cluster.standby()
    standby.start()
    try:
        dsn = standby.cluster.dsn("postgres")
        async with asyncio.timeout(BOUND_S):
            found = await postgres_probe(dsn)()
    finally:
        standby.stop()
        standby.remove()
    assert found.ready is False
    assert found.problem == (f"the state database {dsn} is a standby in recovery (read-only): "
                             "point state.dsn at the primary")
