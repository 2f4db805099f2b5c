"""Shared fixtures of the drift agent's tests: a sandbox process on dynamic ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.processes import SCENARIOS, Proc, driftwise, free_port_block

ARGO_TOKEN = "sandbox-argocd-token"


@dataclass
class SandboxProc:
    proc: Proc
    base: int

    @property
    def argocd(self) -> str:
        return f"http://127.0.0.1:{self.base}"

    def activate(self, scenario_id: str) -> dict:
        r = httpx.post(f"{self.argocd}/sandbox/scenarios/activate", json={"id": scenario_id}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def writes(self) -> list[dict]:
        r = httpx.get(f"{self.argocd}/sandbox/writes", timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["writes"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProc]:
    base = free_port_block(5)
    with driftwise(
        "sandbox", str(SCENARIOS), "--port", str(base), "--prometheus", "builtin",
        name="sandbox", ready_url=f"http://127.0.0.1:{base}/sandbox/healthz", timeout=30,
    ) as proc:
        yield SandboxProc(proc, base)
