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
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.agents.scenario_reports import report_for
from tests.support.acting_stack import Stack
from tests.support.binaries import IN_CI
from tests.support.e2e import PEER, PEER_ID, SPECIALIST_PEER_TOKENS, DriftProc
from tests.support.processes import ROOT, SCENARIOS

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
    stack: Stack
    drift: DriftProc
    config: Path
    files: Path

    def url(self, agent: str) -> str:
        return self.drift.url if agent == "drift" else f"http://127.0.0.1:{self.stack.spec_ports[agent]}"

    def token(self, agent: str) -> str:
        return PEER if agent == "drift" else SPECIALIST_PEER_TOKENS[agent]

    def jwks(self, agent: str) -> Path:
        """The agent's public keys as `driftwise keys generate` wrote them: what a peer pins out of band."""
        return self.stack.root / "main" / "keys" / f"{agent}.jwks.json"

    def request(self, agent: str) -> Path:
        return self.files / ("notification.json" if agent == "drift" else "analysis-request.json")


@pytest.fixture(scope="module")
def peers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    scenario = yaml.safe_load(SECURITY_SCENARIO.read_text())
    stack.sandbox.activate(scenario["id"])
    files = tmp_path_factory.mktemp("peer-files")
    (files / "notification.json").write_text(json.dumps(scenario["notification"]))
    report = report_for(SECURITY_SCENARIO, "evt-peer-1")
    (files / "analysis-request.json").write_text(json.dumps(
        {"event_id": report.event_id, "requester": PEER_ID, "report": report.model_dump(mode="json")}))
    config, port = stack.config("peers", "shadow")
    yield Peers(stack, stack.start_drift("peers", config, port), config, files)


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


@pytest.mark.parametrize("agent", ["drift", "security"])
def test_driftwise_ask_prints_the_verified_answer(peers: Peers, agent: str) -> None:
    import sys

    seen = _run([sys.executable, "-m", "driftwise", "ask", agent, "--file", str(peers.request(agent)),
                 "--as", PEER_ID, "--config", str(peers.config)], "driftwise ask")
    assert seen["agent"] == agent and seen["claims"]["audience"] == [PEER_ID]
    assert seen["claims"]["message_id"] and seen["claims"]["task_id"]
    assert ("verdict" if agent == "drift" else "recommendation") in seen
