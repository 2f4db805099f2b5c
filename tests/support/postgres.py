"""A private PostgreSQL cluster for the tests: initdb in a temp folder, pg_ctl on a free loopback port.

initdb refuses to run as root, so as root the cluster is made and run by the `postgres` user
(`runuser -u postgres --`), in a folder that user owns. Without PostgreSQL the tests that need it skip,
except in CI (DRIFTWISE_CI=1), where they fail: `.ci/run` installs Debian's `postgresql`.
Each test gets a database of its own (`fresh_dsn`), made from the cluster's template in a few ms.
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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
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
    data, port = base / "data", free_port_block(1)
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "-E", "UTF8", "--no-sync", "--no-instructions"]),
                   check=True, capture_output=True, timeout=START_TIMEOUT_S)
    # a throwaway cluster: no fsync, sockets in its own folder, loopback TCP only
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off " \
              "-c full_page_writes=off -c max_connections=200"
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"),
                                 "-w", "-t", str(START_TIMEOUT_S), "start"]),
                   check=True, capture_output=True, timeout=START_TIMEOUT_S + 10)
    try:
        yield PgCluster("127.0.0.1", port, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=START_TIMEOUT_S)
        shutil.rmtree(base, ignore_errors=True)


async def fresh_dsn(cluster: PgCluster) -> str:
    """A new, empty database on the cluster, for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(cluster.admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.dsn(name)
