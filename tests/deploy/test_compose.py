"""compose.yaml: valid against the Compose Specification, one image for every Driftwise process,
the commands of the contracts, health checks, and an environment that driftwise.settings accepts
and that points every process at its peers' services."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from driftwise.settings import MCP_SERVER_NAMES, load_settings
from tests.deploy.settings_env import settings_from
from tests.support.binaries import require_binary

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
            # A dependency in a profile may be absent: it must not be required, unless the dependent runs
            # only in that profile too.
            profiles = set(services[dependency].get("profiles", []))
            if profiles and not set(service.get("profiles", [])) <= profiles:
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


# --- profile `replicas`: two drift agents on one PostgreSQL -------------------------------------------


def test_replicas_profile_runs_two_drift_agents_on_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres, replica, single = services["postgres"], services["drift-agent-replica"], services["drift-agent"]
    assert postgres["profiles"] == replica["profiles"] == ["replicas"]
    assert re.fullmatch(r"postgres:\d+\.\d+-bookworm", postgres["image"]), "pin the official image by version"
    assert replica["deploy"]["replicas"] == 2
    assert replica["command"] == single["command"] == DRIFTWISE_SERVICES["drift-agent"]
    assert replica["image"] == single["image"]
    assert replica["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert {k: v for k, v in replica["depends_on"].items() if k != "postgres"} == single["depends_on"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # ready only while the state database answers
    assert replica["healthcheck"] == single["healthcheck"]
    assert "/readyz" in " ".join(single["healthcheck"]["test"])
    # nothing of the state is local: the state folder is a tmpfs, only the keys come from the volume
    assert "/var/lib/driftwise" in replica["tmpfs"]
    (keys,) = replica["volumes"]
    assert keys == {"type": "volume", "source": "driftwise-state", "target": "/var/lib/driftwise/keys",
                    "read_only": True, "volume": {"subpath": "keys"}}
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    # one host port per replica
    (published,) = replica["ports"]
    first, last = (int(p) for p in published.split(":")[1].split("-"))
    assert last - first + 1 == replica["deploy"]["replicas"]
    assert published.startswith("127.0.0.1:")


def test_replicas_read_the_dsn_of_the_postgres_service(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    services = compose["services"]
    postgres, replica = services["postgres"], services["drift-agent-replica"]
    single_secrets = {m["target"]: m["source"] for m in services["drift-agent"]["secrets"]}
    mounted = {m["target"]: m["source"] for m in replica["secrets"]}
    assert mounted == {**single_secrets, "DRIFTWISE_STATE__DSN": "state-dsn",
                       "DRIFTWISE_CONSOLE__SESSION_KEY": "console-session-key"}
    assert "DRIFTWISE_STATE__DSN" not in single_secrets  # the SQLite one stays on SQLite
    assert postgres["secrets"] == ["postgres-password"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    # what a replica sees: the DSN generate.sh writes (tests/deploy/test_kubernetes.py runs it) as a secret file
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    for target, source in mounted.items():
        (secrets / target).write_text(f"{source}-value\n")
    user, database = postgres["environment"]["POSTGRES_USER"], postgres["environment"]["POSTGRES_DB"]
    (secrets / "DRIFTWISE_STATE__DSN").write_text(f"postgresql://{user}:pw@postgres:5432/{database}\n")
    (secrets / "DRIFTWISE_CONSOLE__SESSION_KEY").write_text("k" * 64 + "\n")  # as long as generate.sh draws
    for key in list(os.environ):
        if key.startswith("DRIFTWISE_"):
            monkeypatch.delenv(key)
    for key, value in replica["environment"].items():
        monkeypatch.setenv(key, interpolate(str(value)))
    settings = load_settings(secrets_dir=secrets)
    assert settings.state.dsn is not None
    assert settings.state.dsn.get_secret_value() == f"postgresql://{user}:pw@postgres:5432/{database}"
    assert settings.drift.approvals_token.get_secret_value() == "approvals-token-value"
    from driftwise.cli.drift_agent import drift_config

    shared = drift_config(settings).console.session_key  # replicas on one DSN start only with a shared key
    assert shared is not None and shared.get_secret_value() == "k" * 64
    env = {k: v for k, v in replica["environment"].items() if k != "DRIFTWISE_DRIFT__AUDIT_LOG_URL"}
    assert env == services["drift-agent"]["environment"]


def test_compose_prometheus_scrapes_every_drift_agent(compose: dict[str, Any]) -> None:
    config = ROOT / "deploy" / "compose" / "prometheus.yml"
    proc = subprocess.run([require_binary("promtool"), "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = yaml.safe_load(config.read_text())["scrape_configs"]
    (job,) = [j for j in jobs if j["job_name"] == "driftwise-drift-agent"]
    (discovery,) = job["dns_sd_configs"]
    drift_agents = {name for name, service in compose["services"].items()
                    if service.get("command") == DRIFTWISE_SERVICES["drift-agent"]}
    assert set(discovery["names"]) == drift_agents == {"drift-agent", "drift-agent-replica"}
    assert discovery["port"] == 8600
