"""compose.yaml: valid against the Compose Specification, one image for every Driftwise process,
the commands of the contracts, health checks, and an environment that driftwise.settings accepts
and that points every process at its peers' services."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from driftwise.settings import MCP_SERVER_NAMES, load_settings
from tests.deploy.settings_env import settings_from

ROOT = Path(__file__).resolve().parents[2]
DRIFTWISE_SERVICES = {
    "drift-agent": ["agent", "drift", "--port", "8600"],
    "security": ["agent", "security", "--port", "8601"],
    "compliance": ["agent", "compliance", "--port", "8602"],
    "mcp-prometheus": ["mcp", "prometheus", "--transport", "http", "--port", "8611"],
    "mcp-grafana": ["mcp", "grafana", "--transport", "http", "--port", "8612"],
    "mcp-pagerduty": ["mcp", "pagerduty", "--transport", "http", "--port", "8613"],
    "mcp-kubernetes": ["mcp", "kubernetes", "--transport", "http", "--port", "8614"],
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with nothing set: the default (what `compose up` uses bare)."""
    return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests" / "ref" / "compose-spec.json").read_text())
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_schema_check_can_fail(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests" / "ref" / "compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["drift-agent"]["healthcheck"]["intervall"] = "1s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_every_process_is_a_service_of_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in [*DRIFTWISE_SERVICES, "sandbox", "keys"]}
    assert images == {"${DRIFTWISE_IMAGE:-driftwise:0.1.0}"}
    for name, command in DRIFTWISE_SERVICES.items():
        assert services[name]["command"] == command, name
    sandbox = services["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    assert sandbox["command"][:6] == ["sandbox", "/app/scenarios", "--host", "0.0.0.0", "--port", "8680"]
    assert "opa" in services and "prometheus" in services
    assert services["opa"]["image"].startswith("openpolicyagent/opa:")
    assert services["opa"]["command"][:2] == ["run", "--server"]
    assert any(v.endswith(":/policies:ro") and v.startswith("./policies") for v in services["opa"]["volumes"])


def test_health_checks_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name != "keys":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency]
            # A dependency in a profile may be absent: it must not be required.
            if services[dependency].get("profiles"):
                assert rule.get("required") is False, f"{name} requires profiled {dependency}"
    # The health check probes the port the command listens on.
    for name, command in DRIFTWISE_SERVICES.items():
        port = command[command.index("--port") + 1]
        assert port in " ".join(services[name]["healthcheck"]["test"]), name


def test_state_lives_on_a_named_volume(compose: dict[str, Any]) -> None:
    assert "driftwise-state" in compose["volumes"]
    for name in ("keys", "drift-agent", "security", "compliance"):
        assert "driftwise-state:/var/lib/driftwise" in compose["services"][name]["volumes"], name


@pytest.mark.parametrize("name", sorted(DRIFTWISE_SERVICES))
def test_environment_is_accepted_by_settings(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: interpolate(str(v)) for k, v in compose["services"][name]["environment"].items()}
    settings = settings_from(monkeypatch, env)
    assert settings.host == "0.0.0.0"
    assert str(settings.state_dir) == "/var/lib/driftwise"
    # Peers are reached by service name, on the port their own command listens on.
    services = compose["services"]
    for server in MCP_SERVER_NAMES:
        conf = getattr(settings.mcp, server).model_dump()
        assert conf["endpoint"] == f"http://mcp-{server}:{conf['port']}/mcp"
        assert services[f"mcp-{server}"]["command"][-1] == str(conf["port"])
    for peer in ("security", "compliance"):
        spec = settings.specialists[peer]
        assert spec.endpoint == f"http://{peer}:{spec.port}"
        assert spec.module == f"agents.{peer}"
        assert services[peer]["command"][-1] == str(spec.port)
    assert settings.argocd.url == "http://sandbox:8680"


def test_drift_agent_settings(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: interpolate(str(v)) for k, v in compose["services"]["drift-agent"]["environment"].items()}
    settings = settings_from(monkeypatch, env)
    assert settings.policy.opa_url == "http://opa:8181"
    assert settings.drift.mode == "shadow"
    assert settings.drift.sandbox_clock_url == "http://sandbox:8680/sandbox/clock"
    assert settings.llm.base_url is None
    assert settings.telemetry.otlp_endpoint is None
    # With real backends the clock is set to null: then "now" is the system clock.
    settings = settings_from(monkeypatch, {**env, "DRIFTWISE_DRIFT__SANDBOX_CLOCK_URL": "null"})
    assert settings.drift.sandbox_clock_url is None


def test_tokens_are_secrets_one_per_role_read_by_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No token is a variable with a development default: each is a secret file mounted at
    /run/secrets/<the setting's variable>, and settings read it from there."""
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            is_backend = key.split("__")[0] in ("DRIFTWISE_ARGOCD", "DRIFTWISE_KUBERNETES", "DRIFTWISE_GRAFANA",
                                                "DRIFTWISE_PAGERDUTY")  # the sandbox's own API tokens
            assert not key.endswith("_TOKEN") or is_backend, f"{name} sets {key}={value} as a variable"
    files = {name: entry["file"] for name, entry in compose["secrets"].items()}
    assert len(set(files.values())) == len(files)
    needs = {
        "drift-agent": {"DRIFTWISE_DRIFT__WEBHOOK_TOKEN", "DRIFTWISE_DRIFT__APPROVALS_TOKEN",
                        "DRIFTWISE_SPECIALISTS__SECURITY__TOKEN", "DRIFTWISE_SPECIALISTS__COMPLIANCE__TOKEN",
                        *(f"DRIFTWISE_MCP__{s.upper()}__TOKEN" for s in ("prometheus", "grafana", "pagerduty",
                                                                           "kubernetes"))},
        "security": {"DRIFTWISE_SPECIALISTS__SECURITY__TOKEN", "DRIFTWISE_SPECIALISTS__COMPLIANCE__TOKEN",
                     "DRIFTWISE_MCP__KUBERNETES__TOKEN"},
        "compliance": {"DRIFTWISE_SPECIALISTS__COMPLIANCE__TOKEN"},
        **{f"mcp-{s}": {f"DRIFTWISE_MCP__{s.upper()}__TOKEN"} for s in ("prometheus", "grafana", "pagerduty",
                                                                      "kubernetes")},
    }
    target_of: dict[str, str] = {}
    for name, wanted in needs.items():
        mounted = {m["target"]: m["source"] for m in compose["services"][name].get("secrets", [])}
        assert wanted <= set(mounted), f"{name} lacks {wanted - set(mounted)}"
        for target, source in mounted.items():
            assert target_of.setdefault(target, source) == source, f"{target} comes from two secrets"
    # What a container sees: the files in /run/secrets, read by the settings loader.
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    for target, source in target_of.items():
        (secrets / target).write_text(f"{source}-value\n")
    env = {k: interpolate(str(v)) for k, v in compose["services"]["drift-agent"]["environment"].items()}
    for key in list(os.environ):
        if key.startswith("DRIFTWISE_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(secrets_dir=secrets)
    assert settings.drift.approvals_token.get_secret_value() == "approvals-token-value"
    assert settings.specialists["compliance"].token.get_secret_value() == "compliance-token-value"
    assert settings.mcp.grafana.token.get_secret_value() == "mcp-grafana-token-value"
