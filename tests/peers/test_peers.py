"""Third-party peers in two languages ask every agent and verify everything it says (issue 24).

The peers are strangers' code: `js/peer.mjs` (the official JavaScript SDK @a2a-js/sdk, and `jose`) and
`python/peer.py` (a2a-sdk and PyJWT from a fresh virtualenv that holds nothing of Driftwise). Each
discovers an agent's card, verifies its signature with the JWKS the peer pinned beforehand, reads the
request schema the card links, sends an analysis request with its own token, and verifies the signed
answer: signer, `aud` = itself, the message and task it answers. `make peers` (and .ci/run) installs
them, pinned (tests/peers/js/package-lock.json, tests/peers/python/requirements.txt).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.agents.scenario_reports import report_for
from tests.support.binaries import IN_CI
from tests.support.e2e import (
    PEER,
    PEER_ID,
    SPECIALIST_PEER_TOKENS,
    DriftProc,
    SandboxProc,
    make_keys,
    settings_doc,
    write_yaml,
)
from tests.support.processes import ROOT, SCENARIOS, driftwise, free_port, http_ok, wait_until

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
NODE_MODULES = HERE / "js" / "node_modules"
PEER_PYTHON = HERE / "python" / ".venv" / "bin" / "python"
AGENTS = ("drift", "security", "compliance")
SECURITY_SCENARIO = SCENARIOS / "v03-privileged-container.yaml"


def _installed(path: Path) -> None:
    if not path.exists():
        message = f"{path} is missing: run `make peers` (.ci/run does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Peers:
    root: Path
    spec_ports: dict[str, int]
    drift: DriftProc
    config: Path
    files: Path

    def url(self, agent: str) -> str:
        return self.drift.url if agent == "drift" else f"http://127.0.0.1:{self.spec_ports[agent]}"

    def token(self, agent: str) -> str:
        return PEER if agent == "drift" else SPECIALIST_PEER_TOKENS[agent]

    def jwks(self, agent: str) -> Path:
        """The agent's public keys as `driftwise keys generate` wrote them: what a peer pins out of band."""
        return self.root / "keys" / f"{agent}.jwks.json"

    def request(self, agent: str) -> Path:
        return self.files / ("notification.json" if agent == "drift" else "analysis-request.json")


@pytest.fixture(scope="module")
def peers(sandbox: SandboxProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """The sandbox, both specialists and the drift agent as their own processes. No MCP server runs: the
    peers test what the agents say and sign, and a missing context only lowers confidence."""
    root = tmp_path_factory.mktemp("peers")
    make_keys(root / "keys")
    scenario = yaml.safe_load(SECURITY_SCENARIO.read_text())
    sandbox.activate(scenario["id"])
    files = root / "files"
    files.mkdir()
    (files / "notification.json").write_text(json.dumps(scenario["notification"]))
    report = report_for(SECURITY_SCENARIO, "evt-peer-1")
    (files / "analysis-request.json").write_text(json.dumps(
        {"event_id": report.event_id, "requester": PEER_ID, "report": report.model_dump(mode="json")}))
    unused = {n: free_port() for n in ("prometheus", "grafana", "pagerduty", "kubernetes")}
    spec_ports = {n: free_port() for n in ("security", "compliance")}
    drift_port = free_port()
    config = write_yaml(root / "settings.yaml", settings_doc(root, sandbox.base, unused, spec_ports, drift_port))
    with ExitStack() as stack:
        procs = [(stack.enter_context(driftwise("agent", name, "--port", str(port), "--config", str(config),
                                                name=name)), f"http://127.0.0.1:{port}/healthz")
                 for name, port in spec_ports.items()]
        procs.append((stack.enter_context(driftwise("agent", "drift", "--port", str(drift_port), "--config",
                                                    str(config), name="drift")),
                      f"http://127.0.0.1:{drift_port}/healthz"))
        for proc, ready in procs:
            wait_until(http_ok(ready), 60, f"{proc.name} ready", proc)
        yield Peers(root, spec_ports, DriftProc(procs[-1][0], drift_port, root), config, files)


def _run(cmd: list[str], what: str) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, f"{what} failed:\n{done.stderr}\n{done.stdout}"
    return json.loads(done.stdout)


def _check(seen: dict, agent: str, card_kid: str, answer_kid: str) -> None:
    assert seen["agent"] == agent and seen["iss"] == agent
    assert seen["aud"] == [PEER_ID]  # addressed to the asker, named by its token
    assert seen["alg"] == "EdDSA"
    assert card_kid == answer_kid == seen["kid"]
    assert seen["kind"] == ("verdict" if agent == "drift" else "recommendation")
    assert seen["schema_title"] == ("ArgoNotification" if agent == "drift" else "AnalysisRequest")


def _pinned_kid(peers: Peers, agent: str) -> str:
    return json.loads(peers.jwks(agent).read_text())["keys"][0]["kid"]


@pytest.mark.parametrize("agent", AGENTS)
def test_a_javascript_peer_verifies_the_card_and_the_answer(peers: Peers, agent: str) -> None:
    _installed(NODE_MODULES / "@a2a-js" / "sdk")
    seen = _run(["node", str(HERE / "js" / "peer.mjs"), peers.url(agent), peers.token(agent), PEER_ID,
                 str(peers.request(agent)), str(peers.jwks(agent))], "the JS peer")
    kid = _pinned_kid(peers, agent)
    _check({**seen, "schema_title": seen["schemaTitle"]}, agent, seen["cardKid"], kid)
    assert seen["schemaId"] == f"{peers.url(agent)}/schemas/" + (
        "argo-notification.json" if agent == "drift" else "analysis-request.json")
    assert seen["cacheControl"] == "public, max-age=300"


@pytest.mark.parametrize("agent", AGENTS)
def test_a_python_peer_from_a_fresh_virtualenv_verifies_the_card_and_the_answer(peers: Peers, agent: str) -> None:
    _installed(PEER_PYTHON)
    seen = _run([str(PEER_PYTHON), str(HERE / "python" / "peer.py"), peers.url(agent), peers.token(agent),
                 PEER_ID, str(peers.request(agent)), str(peers.jwks(agent))], "the Python peer")
    _check(seen, agent, seen["card_kid"], _pinned_kid(peers, agent))
    assert seen["cache_control"] == "public, max-age=300"
    assert (seen["a2a_sdk"], seen["pyjwt"]) == ("1.3.0", "2.15.1")


def test_the_peer_python_holds_nothing_of_driftwise() -> None:
    _installed(PEER_PYTHON)
    done = subprocess.run([str(PEER_PYTHON), "-c", "import protocol"], capture_output=True, text=True, timeout=30,
                          cwd="/")
    assert done.returncode != 0 and "No module named 'protocol'" in done.stderr


def test_driftwise_ask_prints_the_verified_answer(peers: Peers) -> None:
    import sys

    seen = _run([sys.executable, "-m", "driftwise", "ask", "drift", "--file", str(peers.request("drift")),
                 "--as", PEER_ID, "--config", str(peers.config)], "driftwise ask")
    assert seen["agent"] == "drift" and seen["claims"]["audience"] == [PEER_ID]
    assert seen["claims"]["message_id"] and seen["claims"]["task_id"] and seen["verdict"]["action"]


async def test_asking_a_specialist_verifies_card_signature_audience_and_binding(peers: Peers) -> None:
    import httpx

    from driftwise.asking import AskError, ask
    from protocol.signing import TrustStore

    trust = TrustStore.load(peers.root / "keys" / "trust.json")
    text = peers.request("security").read_text()
    async with httpx.AsyncClient(timeout=15) as http:
        answer = await ask(http, peers.url("security"), text, peers.token("security"), PEER_ID, trust, 15)
        assert answer.agent == "security" and answer.recommendation is not None
        assert answer.claims.audience == [PEER_ID] and answer.claims.message_id and answer.claims.task_id
        # a peer's token asks only for itself: a request naming another requester is refused before any task
        other = json.dumps({**json.loads(text), "requester": "drift"})
        with pytest.raises(AskError, match="is not the peer your token names"):
            await ask(http, peers.url("security"), other, peers.token("security"), PEER_ID, trust, 15)
        # an answer is only good for the audience it names
        with pytest.raises(AskError, match="wrong_audience"):
            await ask(http, peers.url("security"), text, peers.token("security"), "someone-else", trust, 15)
        # a card signed by a key nobody pinned is refused
        with pytest.raises(AskError, match="not signed by a key the trust store pins"):
            await ask(http, peers.url("security"), text, peers.token("security"), PEER_ID, TrustStore(), 15)
