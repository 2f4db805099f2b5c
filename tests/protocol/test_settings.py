"""The one settings mechanism: YAML file + DRIFTWISE_* env, one-line errors that name the setting."""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

import pytest

from driftwise import settings as settings_module
from driftwise.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What these tests load is what they set: none of the caller's DRIFTWISE_* variables, no /run/secrets."""
    for name in list(os.environ):
        if name.upper().startswith("DRIFTWISE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(settings_module, "SECRETS_DIR", tmp_path / "no-secrets")


def test_embedded_defaults_run_against_the_sandbox() -> None:
    s = load_settings()
    assert s.argocd.url == "http://127.0.0.1:8680" and s.drift.port == 8600
    assert set(s.specialists) == {"security", "compliance"}
    assert s.llm.base_url is None and s.policy.opa_url is None


def test_defaults_are_the_safe_ones() -> None:
    s = load_settings()
    assert s.drift.mode == "shadow"  # records only, until someone chooses to act
    # no token anyone could know: local runs draw them, deployments bring them from Secrets
    assert s.drift.webhook_token is None and s.drift.approvals_token is None and s.drift.peer_tokens == {}
    assert all(spec.token is None for spec in s.specialists.values())
    assert all(getattr(s.mcp, n).token is None for n in ("prometheus", "grafana", "pagerduty", "kubernetes"))
    assert s.argocd.verify_tls and s.argocd.ca_bundle is None


def test_one_token_per_role(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("drift:\n  approvals_token: same\n  peer_tokens: {sre-bot: [new, same]}\n")
    with pytest.raises(ConfigError, match=r"drift\.peer_tokens\.sre-bot has the same token as drift\.approvals_token"):
        load_settings(cfg)
    cfg.write_text("specialists:\n  security: {token: t}\n  compliance: {token: t}\n")
    with pytest.raises(ConfigError, match=r"specialists\.compliance\.token has the same token as specialists"):
        load_settings(cfg)
    cfg.write_text("drift:\n  peer_tokens: {sre-bot: p}\nspecialists:\n  security: {peer_tokens: {sre-bot: p}}\n")
    with pytest.raises(ConfigError, match=r"specialists\.security\.peer_tokens\.sre-bot has the same token as drift"):
        load_settings(cfg)


def test_a_specialists_peer_tokens_reach_its_kit_config_naming_each_peer(tmp_path: Path) -> None:
    from agents.kit.auth import OWN_AGENTS
    from agents.security import SPECIALIST
    from driftwise.cli.agents import kit_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("specialists:\n  security: {token: own, peer_tokens: {sre-bot: [new, old]}}\n")
    kit = kit_config(load_settings(cfg), "security", None, SPECIALIST)
    assert kit.tokens_by_principal == {OWN_AGENTS: ["own"], "sre-bot": ["new", "old"]}


def test_a_token_rotates_as_a_list_in_yaml_env_or_a_secret_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from protocol.tokens import accepted, current

    cfg = tmp_path / "c.yaml"
    cfg.write_text("drift:\n  approvals_token: [new-a, old-a]\n")
    monkeypatch.setenv("DRIFTWISE_DRIFT__WEBHOOK_TOKEN", '["new-w","old-w"]')
    monkeypatch.setenv("DRIFTWISE_MCP__GRAFANA__TOKEN", "only-g")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "DRIFTWISE_SPECIALISTS__SECURITY__TOKEN").write_text("new-s\nold-s\n")
    s = load_settings(cfg, secrets_dir=secrets)
    assert (current(s.drift.approvals_token), accepted(s.drift.approvals_token)) == ("new-a", ["new-a", "old-a"])
    assert accepted(s.drift.webhook_token) == ["new-w", "old-w"] and accepted(s.mcp.grafana.token) == ["only-g"]
    assert accepted(s.specialists["security"].token) == ["new-s", "old-s"]


def test_tls_settings_are_checked_where_they_enter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWISE_ARGOCD__CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"argocd.*missing\.pem is not a file"):
        load_settings()
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("DRIFTWISE_ARGOCD__CA_BUNDLE", str(bundle))
    monkeypatch.setenv("DRIFTWISE_ARGOCD__VERIFY_TLS", "false")
    with pytest.raises(ConfigError, match="verify_tls is false"):
        load_settings()


def _fields(module: Path) -> dict[str, str]:
    """`Class.field` -> field for every annotated field of every class in `module`."""
    found = {}
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                        and item.target.id != "model_config"):
                    found[f"{node.name}.{item.target.id}"] = item.target.id
    return found


@functools.cache
def _attributes_in(path: Path) -> frozenset[str]:
    return frozenset(node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute))


def _attributes_read(paths: list[Path]) -> set[str]:
    return set().union(*(_attributes_in(p) for p in paths))


SOURCE = [p for top in ("agents", "driftwise", "mcp_servers", "protocol") for p in (ROOT / top).rglob("*.py")]


@pytest.mark.parametrize(("module", "readers"), [
    # every setting is read somewhere outside the settings module
    ("driftwise/settings.py", [p for p in SOURCE if p != ROOT / "driftwise/settings.py"]),
    # and what the CLI maps into an agent's own config is read by that agent, not only by the mapping
    ("agents/drift/config.py", [p for p in SOURCE if p.is_relative_to(ROOT / "agents")]),
    ("agents/kit/config.py", [p for p in SOURCE if p.is_relative_to(ROOT / "agents")]),
    ("mcp_servers/common/http.py", [p for p in SOURCE if p.is_relative_to(ROOT / "mcp_servers")]),
])
def test_every_setting_is_read_somewhere(module: str, readers: list[Path]) -> None:
    """A static check: a field nobody reads is a setting without an effect (as argocd.verify_tls was)."""
    read = _attributes_read(readers)
    unread = sorted(qualified for qualified, name in _fields(ROOT / module).items() if name not in read)
    assert not unread, f"{module}: fields no code outside it reads (remove them or honour them): {unread}"


def test_the_static_check_can_fail(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("class A:\n    honoured: int\n    ignored: bool\n")
    reader = tmp_path / "r.py"
    reader.write_text("def f(a):\n    return a.honoured\n")
    read = _attributes_read([reader])
    assert [q for q, n in _fields(module).items() if n not in read] == ["A.ignored"]


def test_yaml_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "driftwise.yaml"
    cfg.write_text("drift:\n  mode: autonomous\n  confidence_threshold: 0.9\nprometheus:\n  timeout_s: 5\n")
    s = load_settings(cfg)
    assert s.drift.mode == "autonomous" and s.drift.confidence_threshold == 0.9 and s.prometheus.timeout_s == 5
    assert s.drift.port == 8600  # untouched fields keep their defaults
    monkeypatch.setenv("DRIFTWISE_DRIFT__MODE", "advisory")
    assert load_settings(cfg).drift.mode == "advisory"


def test_partial_env_updates_keep_the_rest_of_a_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWISE_MCP__PROMETHEUS__TOKEN", "t1")
    monkeypatch.setenv("DRIFTWISE_SPECIALISTS__SECURITY__TOKEN", "t2")
    monkeypatch.setenv("DRIFTWISE_SPECIALISTS__COST__MODULE", "agents.cost")
    monkeypatch.setenv("DRIFTWISE_SPECIALISTS__COST__PORT", "8603")
    monkeypatch.setenv("DRIFTWISE_LLM__BASE_URL", "null")
    s = load_settings()
    assert s.mcp.prometheus.port == 8611 and s.mcp.prometheus.token.get_secret_value() == "t1"
    assert s.specialists["security"].port == 8601 and s.specialists["security"].token.get_secret_value() == "t2"
    assert set(s.specialists) == {"security", "compliance", "cost"}
    assert s.llm.base_url is None


def test_errors_name_the_setting_and_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWISE_DRIFT__CONFIDENCE_THRESHOLD", "1.5")
    with pytest.raises(ConfigError, match=r"drift\.confidence_threshold.*DRIFTWISE_DRIFT__CONFIDENCE_THRESHOLD"):
        load_settings()
    monkeypatch.delenv("DRIFTWISE_DRIFT__CONFIDENCE_THRESHOLD")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("drift:\n  mood: happy\n")
    with pytest.raises(ConfigError, match=r"drift\.mood.*c\.yaml"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    cfg.write_text("drift: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(cfg)


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "c.yaml"
    cfg.write_text("drift:\n  mode: reckless\n")
    out = subprocess.run([sys.executable, "-m", "driftwise", "approvals", "list", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "drift.mode" in lines[0]


def test_the_prometheus_query_defaults_match_the_mcp_servers_own() -> None:
    """Settings keep their own copy of the workload PromQL (importing the MCP server costs every CLI ~0.5 s):
    the two sets of defaults must not drift apart."""
    from driftwise.settings import PrometheusQueries
    from mcp_servers.prometheus import WorkloadQueries

    assert PrometheusQueries().model_dump() == WorkloadQueries().model_dump()


def test_state_dsn_is_postgresql_or_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().state.dsn is None  # SQLite files in state_dir: up and demo need no server
    monkeypatch.setenv("DRIFTWISE_STATE__DSN", "mysql://db/driftwise")
    with pytest.raises(ConfigError, match=r"state\.dsn.*must be a postgresql:// URL"):
        load_settings()
    monkeypatch.setenv("DRIFTWISE_STATE__DSN", "postgresql://u:p@db:5432/driftwise")
    from driftwise.cli.drift_agent import drift_config

    tokens = {"drift": {"approvals_token": "a", "webhook_token": "w"},
              "specialists": {"security": {"token": "s"}, "compliance": {"token": "c"}}}
    with pytest.raises(ConfigError, match=r"console\.session_key.*replicas share one PostgreSQL"):
        drift_config(load_settings(**tokens))  # a session one replica signed would be refused by the others
    settings = load_settings(**tokens, console={"session_key": "k" * 40})
    state = drift_config(settings).state
    assert state.dsn is not None and state.dsn.get_secret_value() == "postgresql://u:p@db:5432/driftwise"
    assert state.retention_days == 90
