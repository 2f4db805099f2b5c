"""The one settings mechanism: YAML file + DRIFTWISE_* env, one-line errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwise.settings import ConfigError, load_settings


def test_embedded_defaults_run_against_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.argocd.url == "http://127.0.0.1:8680" and s.drift.port == 8600
    assert set(s.specialists) == {"security", "compliance"}
    assert s.llm.base_url is None and s.policy.opa_url is None


def test_yaml_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "driftwise.yaml"
    cfg.write_text("drift:\n  mode: shadow\n  confidence_threshold: 0.9\nprometheus:\n  timeout_s: 5\n")
    s = load_settings(cfg)
    assert s.drift.mode == "shadow" and s.drift.confidence_threshold == 0.9 and s.prometheus.timeout_s == 5
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
