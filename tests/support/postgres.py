"""A private PostgreSQL cluster for the tests: initdb in a temp folder, pg_ctl on a free loopback port.

initdb refuses to run as root, so as root the cluster is made and run by the `postgres` user
(`runuser -u postgres --`), in a folder that user owns. Without PostgreSQL the tests that need it skip,
except in CI (DRIFTWISE_CI=1), where they fail: `.ci/run` installs Debian's `postgresql`.
Each test gets a database of its own (`fresh_dsn`), made from the cluster's template in a few ms; a test
that stops the server makes a `PgServer` of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftwise.supervisor import free_port_block
from tests.support.binaries import IN_CI

PG_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60


def _bin_dir() -> Path | None:
    """Debian keeps the server binaries under /usr/lib/postgresql/<major>/bin (the newest wins); else PATH."""
    if PG_ROOT.is_dir():
        found = sorted((p / "bin" for p in PG_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
                       key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
        if found:
            return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class PgCluster:
    host: str
    port: int
    admin_dsn: str

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PgServer:
    """A cluster made by initdb (or copied from a primary as its standby) in a folder of its own, on a
    free loopback port; stopped and started again by whoever owns it."""

    bin_dir: Path
    base: Path
    port: int

    @classmethod
    def made(cls) -> PgServer:
        bin_dir = _bin_dir()
        if bin_dir is None:
            message = "PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does this)"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        # the postgres user must reach the folder: as root, /tmp rather than a TMPDIR it may not traverse
        base = Path(tempfile.mkdtemp(prefix="driftwise-pg-", dir="/tmp" if os.geteuid() == 0 else None))
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        return cls(bin_dir, base, free_port_block(1))

    @classmethod
    def initialised(cls) -> PgServer:
        server = cls.made()
        server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
                    "--no-instructions")
        return server

    def standby(self) -> PgServer:
        """A streaming standby of this (running) cluster: it answers reads and is in recovery."""
        server = PgServer.made()
        server._run("pg_basebackup", "-D", str(server.data), "-R", "-h", "127.0.0.1", "-p", str(self.port),
                    "-U", "postgres", "-X", "stream", "--no-sync")
        return server

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def cluster(self) -> PgCluster:
        return PgCluster("127.0.0.1", self.port, f"postgresql://postgres@127.0.0.1:{self.port}/postgres")

    def start(self) -> None:
        # a throwaway cluster: no fsync, sockets in its own folder, loopback TCP only
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "-t",
                  str(START_TIMEOUT_S), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run(_as_postgres([str(self.bin_dir / tool), *args]), check=check, capture_output=True,
                       timeout=START_TIMEOUT_S + 10)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    server = PgServer.initialised()
    server.start()
    try:
        yield server.cluster
    finally:
        server.stop()
        server.remove()


async def fresh_dsn(cluster: PgCluster) -> str:
    """A new, empty database on the cluster, for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(cluster.admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.dsn(name)
