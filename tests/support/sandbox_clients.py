"""An in-process sandbox for tests: every backend app behind an httpx ASGI client (no ports, fast)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from tests.support.processes import ROOT, SCENARIOS

ARGO = {"Authorization": "Bearer sandbox-argocd-token"}
KUBE = {"Authorization": "Bearer sandbox-kube-token"}
GRAFANA = {"Authorization": "Bearer sandbox-grafana-token"}
PD = {"Authorization": "Token token=sandbox-pagerduty-token"}
CRD_SCENARIOS = ROOT / "tests" / "sandbox" / "fixtures" / "crds"
"""Scenarios of custom resources with the CRDs the cluster serves (test fixtures, not a labelled set)."""


@dataclass
class Clients:
    sandbox: Sandbox
    argocd: httpx.AsyncClient
    kubernetes: httpx.AsyncClient
    prometheus: httpx.AsyncClient
    grafana: httpx.AsyncClient
    pagerduty: httpx.AsyncClient

    async def activate(self, scenario_id: str) -> dict:
        r = await self.argocd.post("/sandbox/scenarios/activate", json={"id": scenario_id})
        assert r.status_code == 200, r.text
        return r.json()


@asynccontextmanager
async def in_process_sandbox() -> AsyncIterator[Clients]:
    """The visible scenarios and the CRD fixtures loaded; every client closed on exit."""
    sandbox = Sandbox()
    sandbox.load([SCENARIOS, CRD_SCENARIOS])
    apps = build_apps(sandbox)
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
        for name, app in apps.items()
    }
    try:
        yield Clients(sandbox, **clients)
    finally:
        for c in clients.values():
            await c.aclose()
