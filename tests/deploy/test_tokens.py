"""A token per role: local runs draw them into the state folder; a peer's token names the peer and
never approves; the approvals token never asks as a peer; one rotation of a token (old and new
accepted for an overlap, then the old refused), and one of a signing key."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.drift.a2a_face import build_card_for
from agents.drift.app import create_app
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from agents.kit.auth import BearerAuth
from driftwise.cli.drift_agent import drift_config
from driftwise.settings import ConfigError, Settings, load_settings
from driftwise.tokens import local_tokens
from protocol.signing import Signer, generate_key

ROLES = {"specialists": {"security": {"token": "sec"}, "compliance": {"token": "comp"}},
         "mcp": {n: {"token": f"mcp-{n}"} for n in ("prometheus", "grafana", "pagerduty", "kubernetes")}}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("DRIFTWISE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr("driftwise.settings.SECRETS_DIR", tmp_path / "no-secrets")


def _settings(tmp_path: Path, **drift: Any) -> Settings:
    return load_settings(state_dir=tmp_path, drift={"webhook_token": "hook", **drift}, **ROLES)


async def _noask(_: Any) -> None:
    return None


@pytest.fixture
async def drift_app(tmp_path: Path) -> AsyncIterator[Any]:
    """The drift agent's HTTP app, configured through the CLI's own mapping of settings, in process."""
    stores: list[EventStore] = []

    async def make(settings: Settings) -> httpx.AsyncClient:
        config = drift_config(settings)
        store = EventStore(config.db_path)
        await store.open()
        stores.append(store)

        async def accepted(_: Any) -> None:
            return None

        key = generate_key("drift")
        card = build_card_for("drift", "http://drift", key)
        app = create_app(config, store, DriftMetrics(), accepted, ask=_noask, card=card, signer=Signer("drift", key))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift")

    yield make
    for store in stores:
        await store.close()


def _a2a(token: str) -> dict[str, Any]:
    return {"url": "/", "headers": {"Authorization": f"Bearer {token}", "A2A-Version": "1.0"},
            "json": {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "none"}}}


async def test_a_peer_never_approves_and_the_approvals_token_never_asks_as_a_peer(drift_app: Any,
                                                                                 tmp_path: Path) -> None:
    client = await drift_app(_settings(tmp_path, approvals_token="ap", peer_tokens={"sre-bot": "peer-sre"}))
    async with client:
        decisions = "/v1/decisions"
        assert (await client.get(decisions, headers={"Authorization": "Bearer ap"})).status_code == 200
        assert (await client.get(decisions, headers={"Authorization": "Bearer peer-sre"})).status_code == 401
        approve = await client.post(f"{decisions}/e1/approve", json={}, headers={"Authorization": "Bearer peer-sre"})
        assert approve.status_code == 401
        assert (await client.post(**_a2a("ap"))).status_code == 401
        assert (await client.post(**_a2a("hook"))).status_code == 401
        answered = await client.post(**_a2a("peer-sre"))
        assert answered.status_code == 200 and "error" in answered.json()  # past auth: no such task


async def test_no_peers_configured_means_the_a2a_face_refuses_everyone(drift_app: Any, tmp_path: Path) -> None:
    client = await drift_app(_settings(tmp_path, approvals_token="ap"))
    async with client:
        assert (await client.post(**_a2a("ap"))).status_code == 401
        assert (await client.get("/.well-known/agent-card.json")).status_code == 200  # discovery stays public


def test_a_peers_token_names_the_peer() -> None:
    auth = BearerAuth(None, {"sre-bot": ["a", "a-old"], "ci": ["b"]})  # type: ignore[arg-type]

    def scope(token: str) -> dict[str, Any]:
        return {"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]}

    assert [auth.principal(scope(t)) for t in ("a", "a-old", "b", "c")] == ["sre-bot", "sre-bot", "ci", None]


async def test_one_rotation_of_the_approvals_token(drift_app: Any, tmp_path: Path) -> None:
    """Before: old. Overlap: [new, old] on the server, clients move to new. After: [new], old refused."""
    async def status(settings: Settings, token: str) -> int:
        async with await drift_app(settings) as client:
            return (await client.get("/v1/decisions", headers={"Authorization": f"Bearer {token}"})).status_code

    before = _settings(tmp_path, approvals_token="old")
    overlap = _settings(tmp_path, approvals_token=["new", "old"])
    after = _settings(tmp_path, approvals_token=["new"])
    assert [await status(before, "old"), await status(before, "new")] == [200, 401]
    assert [await status(overlap, "old"), await status(overlap, "new")] == [200, 200]
    assert [await status(after, "old"), await status(after, "new")] == [401, 200]
    # the drift agent's clients send the first token of a role: after the overlap, only the new one
    assert drift_config(overlap).specialists["security"].token.get_secret_value() == "sec"


def test_one_rotation_of_a_signing_key() -> None:
    """Trust old and new kid for the overlap, sign with the new key, then drop the old kid: its tokens fail."""
    from protocol.errors import VerificationError, VerifyFailure
    from protocol.models import Action, Recommendation
    from protocol.signing import Signer, TrustStore, Verifier

    old, new = generate_key("security"), generate_key("security")
    rec = Recommendation(agent="security", event_id="e1", domain="security", action=Action.ENFORCE, confidence=0.9,
                         reasoning="privileged container", created_at=datetime.now(UTC))
    trust = TrustStore()
    trust.add("security", old)
    from_old = Signer("security", old).sign_recommendation(rec, ["drift"]).jws
    trust.add("security", new)
    from_new = Signer("security", new).sign_recommendation(rec, ["drift"]).jws
    overlap = Verifier(trust, "drift")
    assert overlap.verify_recommendation(from_old, "e1") == overlap.verify_recommendation(from_new, "e1")
    after = TrustStore()
    after.add("security", new)
    with pytest.raises(VerificationError) as refused:
        Verifier(after, "drift").verify_recommendation(from_old, "e1")
    assert refused.value.reason is VerifyFailure.UNKNOWN_KEY
    assert Verifier(after, "drift").verify_recommendation(from_new, "e1").agent == "security"


def test_local_runs_draw_a_token_per_role_once(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, drift={"approvals_token": "mine"})
    filled, drawn = local_tokens(settings, create=True)
    assert sorted(drawn) == ["console-session", "mcp-grafana", "mcp-kubernetes", "mcp-pagerduty", "mcp-prometheus",
                             "specialist-compliance", "specialist-security", "webhook"]
    assert filled.drift.approvals_token.get_secret_value() == "mine"  # what the settings name is kept
    files = sorted((tmp_path / "tokens").iterdir())
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    values = {f.read_text().strip() for f in files}
    assert len(values) == len(files) == 8  # each role its own
    assert filled.console.session_key is not None  # replicas a local run starts share the console's sessions
    again, drawn_again = local_tokens(settings, create=True)
    assert drawn_again == [] and again.drift.webhook_token == filled.drift.webhook_token
    # a client command reads them without drawing; a rotation is a second line
    (tmp_path / "tokens" / "webhook").write_text("new-hook\nold-hook\n")
    read, _ = local_tokens(load_settings(state_dir=tmp_path), create=False)
    assert [t.get_secret_value() for t in read.drift.webhook_token] == ["new-hook", "old-hook"]
    assert read.drift.approvals_token is None  # never drawn (the settings named it then); create=False draws none
    (tmp_path / "tokens" / "approvals").write_text(filled.mcp.grafana.token.get_secret_value())
    with pytest.raises(ConfigError, match="same token"):
        local_tokens(load_settings(state_dir=tmp_path), create=True)


@pytest.mark.parametrize(("argv", "setting"), [
    (["agent", "security"], "specialists.security.token"),
    (["agent", "drift"], "drift.webhook_token"),
    (["mcp", "grafana"], "mcp.grafana.token"),
])
def test_a_process_without_its_token_stops_with_one_line_naming_the_setting(
    tmp_path: Path, argv: list[str], setting: str
) -> None:
    from typer.testing import CliRunner

    from driftwise.cli import app

    result = CliRunner().invoke(app, [*argv, "--config", str(_write_state(tmp_path))])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and setting in lines[0], result.output
    assert "DRIFTWISE_" + setting.upper().replace(".", "__") in lines[0]


def _write_state(tmp_path: Path) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}\n")
    return config
