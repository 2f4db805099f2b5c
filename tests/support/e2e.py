"""Pieces of the end-to-end tests that start Driftwise's processes one by one: the sandbox process, a
drift agent's settings document, its keys, and the tokens they share (tests/drift, tests/acting)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from protocol.signing import TrustStore
from tests.support.processes import ROOT, SCENARIOS, Proc, driftwise, free_port_block

ARGO_TOKEN = "sandbox-argocd-token"
WEBHOOK_TOKEN = "e2e-webhook-token"
APPROVALS = "e2e-approvals-token"
AGENT_TOKENS = {"security": "e2e-security-token", "compliance": "e2e-compliance-token"}  # a token per role
PEER = "e2e-peer-token"  # a peer asking the drift agent's A2A face (never the approvals token)
PEER_ID = "e2e-peer"
SPECIALIST_PEER_TOKENS = {name: f"e2e-peer-{name}-token" for name in AGENT_TOKENS}
"""The same peer's token on each specialist (a token per role: its own on every agent)."""
DEADLINE_S = 6.0


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

    def clone_notification(self, scenario_id: str) -> dict:
        """The notification of the scenario's clone (its own application): a test that re-posts a scenario
        another test already decided would join that decision (one open decision per drift)."""
        r = httpx.post(f"{self.argocd}/sandbox/clones", json={"id": scenario_id, "count": 1}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["applications"][-1]["notification"]

    def writes(self) -> list[dict]:
        r = httpx.get(f"{self.argocd}/sandbox/writes", timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["writes"]


@contextmanager
def sandbox_process() -> Iterator[SandboxProc]:
    """The sandbox serving the visible scenarios as its own process, on a free block of ports."""
    base = free_port_block(5)
    with driftwise(
        "sandbox", str(SCENARIOS), "--port", str(base), "--prometheus", "builtin",
        name="sandbox", ready_url=f"http://127.0.0.1:{base}/sandbox/healthz", timeout=30,
    ) as proc:
        yield SandboxProc(proc, base)


@dataclass
class DriftProc:
    proc: Proc
    port: int
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def settings_doc(state: Path, sandbox_base: int, mcp_ports: dict[str, int], spec_ports: dict[str, int],
              drift_port: int, **extra: object) -> dict:
    doc: dict = {
        "host": "127.0.0.1",
        "state_dir": str(state),
        "log_level": "warning",
        "argocd": {"url": f"http://127.0.0.1:{sandbox_base}"},
        "kubernetes": {"url": f"http://127.0.0.1:{sandbox_base + 1}"},
        "prometheus": {"url": f"http://127.0.0.1:{sandbox_base + 2}"},
        "grafana": {"url": f"http://127.0.0.1:{sandbox_base + 3}"},
        "pagerduty": {"url": f"http://127.0.0.1:{sandbox_base + 4}"},
        "mcp": {name: {"port": port, "token": f"e2e-mcp-{name}-token"} for name, port in mcp_ports.items()},
        "specialists": {
            name: {"module": f"agents.{name}", "port": port, "token": AGENT_TOKENS[name],
                   "peer_tokens": {PEER_ID: SPECIALIST_PEER_TOKENS[name]}}
            for name, port in spec_ports.items()
        },
        "drift": {
            "port": drift_port,
            "webhook_token": WEBHOOK_TOKEN,
            "approvals_token": APPROVALS,
            "peer_tokens": {PEER_ID: PEER},
            "decision_deadline_s": DEADLINE_S,
            "delegate_timeout_s": 3.0,
            "sandbox_clock_url": f"http://127.0.0.1:{sandbox_base}/sandbox/clock",
            # shadow: every decision runs the whole graph (apply included) and writes nothing
            "mode": "shadow",
        },
    }
    for key, value in extra.items():
        doc.setdefault(key, {}).update(value)  # type: ignore[union-attr]
    return doc


def write_yaml(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def make_keys(keys: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-m", "driftwise", "keys", "generate", "--agent", agent, "--out", str(keys),
                          "--trust", str(keys / f"trust-{agent}.json")], cwd=ROOT, stdout=subprocess.DEVNULL)
        for agent in ("drift", "security", "compliance")
    ]
    for p in procs:
        assert p.wait(60) == 0
    # Each generate wrote its own trust file (no write race); merge them into the one trust store.
    trust = TrustStore()
    for agent in ("drift", "security", "compliance"):
        part = TrustStore.load(keys / f"trust-{agent}.json")
        for kid in part.agents().get(agent, []):
            entry = part.lookup(kid)
            assert entry is not None
            trust.add(agent, entry[1])
    trust.save(keys / "trust.json")
