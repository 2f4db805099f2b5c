"""The whole system as real processes under the product's own supervisor, driven only from outside.

`fault_system()` starts the sandbox, the four MCP servers, both specialists and the drift agent
(autonomous mode) with `driftwise.supervisor` — the same planning as `driftwise up --sandbox` —
and clones one enforce scenario into a pool of distinct applications, so that every case decides
its own applications and no two cases mix their writes. Faults come from outside the drift agent
only: the sandbox's /sandbox/faults endpoints, `kill -9` of the drift agent (the supervisor starts
it again), SIGSTOP/SIGCONT of another process. The drift agent gets no test hooks.

The caller's DRIFTWISE_* environment is kept away from the settings and from the children.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from driftwise.settings import Settings
from driftwise.supervisor import (
    DRIFT,
    LineSink,
    LocalSystem,
    StartError,
    State,
    Supervisor,
    drift_replicas,
    ensure_keys,
    ensure_tokens,
    file_sink,
    free_port_block,
    plan_system,
    ports_needed,
    prepare_settings,
)
from protocol.models import AuditRecord, Decision
from tests.support.env import clear_driftwise_environment
from tests.support.processes import ROOT, SCENARIOS
from tests.support.waiting import poll_until

WEBHOOK = {"Authorization": "Bearer fault-webhook-token"}
API = {"Authorization": "Bearer fault-approvals-token"}
SYNC_ROUTE = "/api/v1/applications/{name}/sync"


class SandboxWrite(BaseModel):
    """One entry of GET /sandbox/writes (driftwise.sandbox.state.Write)."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: str
    method: str
    path: str
    application: str | None
    body: Any
    accepted: bool
    status: int


class FaultView(BaseModel):
    """One entry of GET /sandbox/faults (driftwise.sandbox.faults.Fault.as_json)."""

    model_config = ConfigDict(extra="allow")

    id: int
    matched: int
    applied: int
    held: int
    active: int
    expired: int
    released: bool


class Clone(BaseModel):
    """One application of the sandbox's clones (POST /sandbox/clones)."""

    app: str
    namespace: str
    notification: dict[str, Any]


def enforce_scenario() -> dict[str, Any]:
    """The first visible scenario whose right answer is `enforce` (its decision writes to Argo CD)."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["expect"]["action"] == "enforce" and not doc.get("down"):
            return doc
    raise AssertionError(f"no enforce scenario in {SCENARIOS}")


@dataclass
class FaultSystem:
    supervisor: Supervisor
    settings: Settings
    http: httpx.AsyncClient
    log: Path
    pool: list[Clone] = field(default_factory=list)
    """Applications no case has used yet."""
    replicas: int = 1
    """Drift agents on one state (state.dsn), named by driftwise.supervisor.replica_name."""

    @property
    def sandbox(self) -> str:
        return self.settings.argocd.url

    @property
    def drift(self) -> str:
        return self.drift_url(0)

    def drift_url(self, replica: int) -> str:
        port = drift_replicas(self.settings, self.replicas)[replica].drift.port
        return f"http://{self.settings.host}:{port}"

    @property
    def db(self) -> Path:
        return self.settings.state_dir / "drift.sqlite"

    def take(self, n: int) -> list[Clone]:
        """n applications no earlier case decided."""
        assert len(self.pool) >= n, f"the application pool is used up ({len(self.pool)} left, {n} wanted)"
        taken, self.pool = self.pool[:n], self.pool[n:]
        return taken

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- the sandbox ----------------------------------------------------------------------------

    async def fault(self, **spec: Any) -> FaultView:
        r = await self.http.post(f"{self.sandbox}/sandbox/faults", json=spec)
        assert r.status_code == 201, r.text
        return FaultView.model_validate(r.json())

    async def faults(self) -> list[FaultView]:
        r = await self.http.get(f"{self.sandbox}/sandbox/faults")
        assert r.status_code == 200, r.text
        return [FaultView.model_validate(f) for f in r.json()["faults"]]

    async def until_held(self, fault: FaultView, timeout_s: float = 20) -> None:
        async def probe() -> FaultView | None:
            return next((f for f in await self.faults() if f.id == fault.id), None)

        await poll_until(probe, lambda f: f is not None and f.held >= 1, timeout_s,
                         f"a request held by sandbox fault {fault.id}", self.tail)

    async def release(self, fault: FaultView) -> None:
        r = await self.http.post(f"{self.sandbox}/sandbox/faults/{fault.id}/release")
        assert r.status_code == 200, r.text

    async def clear_faults(self) -> None:
        """Release everything held, wait (bounded) until no faulted request is still running, forget them."""
        for fault in await self.faults():
            await self.release(fault)
        await poll_until(self.faults, lambda fs: all(f.active == 0 for f in fs), 20,
                         "every faulted request to finish", self.tail)
        assert (await self.http.delete(f"{self.sandbox}/sandbox/faults")).status_code == 200

    async def writes(self) -> list[SandboxWrite]:
        r = await self.http.get(f"{self.sandbox}/sandbox/writes")
        assert r.status_code == 200, r.text
        return [SandboxWrite.model_validate(w) for w in r.json()["writes"]]

    # --- the drift agent ------------------------------------------------------------------------

    async def post(self, clone: Clone, replica: int = 0) -> str:
        r = await self.http.post(f"{self.drift_url(replica)}/v1/webhooks/argocd", json=clone.notification,
                                 headers=WEBHOOK)
        assert r.status_code == 202, r.text
        return str(r.json()["event_id"])

    async def decisions(self, replica: int = 0, event_ids: Sequence[str] = ()) -> dict[str, Decision]:
        """The newest decisions (the API lists 500 at most), and each of `event_ids` the list left out."""
        r = await self.http.get(f"{self.drift_url(replica)}/v1/decisions", headers=API, timeout=30)
        assert r.status_code == 200, r.text
        found = {d.event.event_id: d for d in map(Decision.model_validate, r.json()["decisions"])}
        gate = asyncio.Semaphore(16)

        async def one(event_id: str) -> None:
            async with gate:
                decision = await self.decision(event_id, replica=replica)
            if decision is not None:
                found[event_id] = decision

        await asyncio.gather(*(one(e) for e in event_ids if e not in found))
        return found

    async def decision(self, event_id: str, wait_s: float | None = None, replica: int = 0) -> Decision | None:
        """The decision as it stands; with `wait_s`, once final (the drift agent holds the request that long)."""
        params = {"wait": str(wait_s)} if wait_s else {}
        try:
            r = await self.http.get(f"{self.drift_url(replica)}/v1/decisions/{event_id}", headers=API, params=params,
                                    timeout=(wait_s or 0) + 10)
        except httpx.TransportError:
            return None  # between a kill and the restart
        return Decision.model_validate(r.json()) if r.status_code == 200 else None

    def pid(self, name: str) -> int:
        pid = self.supervisor.children[name].pid
        assert pid is not None, f"{name} has no process"
        return pid

    async def kill9_drift(self, release: FaultView | None = None) -> None:
        """kill -9 the drift agent, release `release` (the backend answers a client that is gone), and wait
        (bounded) until the supervisor has the drift agent ready again."""
        child = self.supervisor.children[DRIFT]
        restarts = child.restarts
        os.kill(self.pid(DRIFT), signal.SIGKILL)
        if release is not None:
            await self.release(release)

        async def probe() -> tuple[int, State]:
            return child.restarts, child.state

        await poll_until(probe, lambda s: s[0] > restarts and s[1] is State.READY, 60,
                         "the supervisor to restart the drift agent", self.tail)

    # --- the audit, through the command line --------------------------------------------------

    async def _cli(self, *args: str) -> tuple[int, str, str]:
        env = dict(os.environ)
        if self.settings.state.dsn is not None:  # the audit of the PostgreSQL the replicas share
            env.update(DRIFTWISE_STATE__DSN=self.settings.state.dsn.get_secret_value(),
                       DRIFTWISE_STATE_DIR=str(self.settings.state_dir))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "driftwise", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    async def audit(self) -> tuple[list[AuditRecord], bool, str]:
        """Every audit record (`driftwise audit show --json`) and whether `driftwise audit verify` passes."""
        where = () if self.settings.state.dsn is not None else ("--db", str(self.db))
        (code, out, err), (vcode, vout, verr) = await asyncio.gather(
            self._cli("audit", "show", "--json", *where), self._cli("audit", "verify", *where))
        assert code == 0, err
        records = [AuditRecord.model_validate_json(line) for line in out.splitlines() if line.strip()]
        return records, vcode == 0 and json.loads(vout or "{}").get("ok") is True, (vout + verr).strip()


async def _started(settings: Settings, sink: LineSink, replicas: int = 1, attempts: int = 3) -> LocalSystem:
    """Every process started on a free block of ports; a block another program took meanwhile (other test
    runs share the machine) is given up for a new one."""
    for attempt in range(attempts):
        moved = prepare_settings(settings, port_base=free_port_block(ports_needed(settings, replicas)))
        specs = plan_system(moved, sandbox_paths=[SCENARIOS], sandbox_args=["--prometheus", "builtin"],
                            replicas=replicas)
        # kill -9 is the point here: restart at once and as often as the cases kill
        supervisor = Supervisor(specs, sink=sink, ready_timeout_s=90, max_restarts=50, backoff_s=(0.1, 0.5))
        try:
            await supervisor.start()  # stops what it started when it fails
            return LocalSystem(supervisor, moved)
        except StartError as exc:
            if attempt + 1 == attempts or "address already in use" not in exc.output.lower():
                raise
    raise AssertionError("unreachable")


@asynccontextmanager
async def fault_system(state: Path, *, mode: Literal["autonomous", "advisory", "shadow"] = "autonomous",
                       deadline_s: float | None = None, pool: int = 260, dsn: str | None = None, replicas: int = 1,
                       also: tuple[str, ...] = (), drift: dict[str, Any] | None = None
                       ) -> AsyncIterator[FaultSystem]:
    """The system with `pool` cloned applications (and as many of each scenario id of `also`, in the same world);
    `deadline_s` None keeps the product's decision deadline; `replicas` drift agents on the PostgreSQL of `dsn`;
    `drift` more drift-agent settings."""
    with pytest.MonkeyPatch.context() as mp:
        clear_driftwise_environment(mp)
        drift: dict[str, Any] = {
            "mode": mode, "webhook_token": WEBHOOK["Authorization"].split()[1],
            "approvals_token": API["Authorization"].split()[1],
            # a re-read would open decisions no case asked for
            "reread_interval_s": 3600, "scheduler_interval_s": 0.2,
            # every audit record anchored by a signed checkpoint: `audit verify` holds at any moment a case
            # checks, kill -9 included (no shutdown checkpoint then)
            "audit_checkpoint_every": 1, **(drift or {})}
        argocd: dict[str, Any] = {}
        if deadline_s is not None:
            drift["decision_deadline_s"] = deadline_s
            argocd["timeout_s"] = deadline_s + 4  # Argo CD's own timeout beyond it: a held sync meets it first
        settings = Settings(state_dir=state, log_level="info", argocd=argocd, drift=drift,
                            state={"dsn": dsn} if dsn is not None else {})
        await asyncio.to_thread(ensure_keys, settings)
        settings, _ = await asyncio.to_thread(ensure_tokens, settings)  # a token per role, as `driftwise up`
        sink, close = file_sink(state / "system.log")
        try:
            running = await _started(settings, sink, replicas)
            try:
                async with httpx.AsyncClient(timeout=15, trust_env=False) as http:
                    system = FaultSystem(running.supervisor, running.settings, http, state / "system.log",
                                         replicas=replicas)
                    scenario = enforce_scenario()
                    r = await http.post(f"{system.sandbox}/sandbox/clones",
                                        json={"id": scenario["id"], "count": pool, "also": list(also)}, timeout=120)
                    assert r.status_code == 200, r.text
                    system.pool = [Clone.model_validate(a) for a in r.json()["applications"]]
                    yield system
            finally:
                await running.supervisor.stop()
        finally:
            close()
