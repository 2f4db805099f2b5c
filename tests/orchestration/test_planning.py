"""How the supervisor plans the system: ports, children's configuration, keys; and eval's scoring."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftwise.evaluation import (
    EvalError,
    Expect,
    ScenarioResult,
    accuracy_line,
    final_action,
    load_labelled,
    score,
)
from driftwise.settings import load_settings
from driftwise.supervisor import (
    MCP_SERVERS,
    ensure_keys,
    ensure_tokens,
    plan_system,
    ports_needed,
    prepare_settings,
    settings_env,
)
from protocol.models import (
    Action,
    ArgoNotification,
    Decision,
    DecisionState,
    DriftEvent,
    SignedVerdict,
    Verdict,
)
from protocol.signing import TrustStore
from tests.support.processes import ROOT, SCENARIOS

NOW = "2026-11-20T16:30:00Z"
# every test here plans from load_settings(): the caller's DRIFTWISE_* variables must not leak in
pytestmark = pytest.mark.usefixtures("isolated_env")


def test_relocated_ports_are_one_block_and_every_url_follows() -> None:
    settings = prepare_settings(load_settings(), port_base=20000, mode="autonomous", llm=False)
    ports = [20000 + i for i in range(5)]
    urls = [settings.argocd.url, settings.kubernetes.url, settings.prometheus.url, settings.grafana.url,
            settings.pagerduty.url]
    assert urls == [f"http://127.0.0.1:{p}" for p in ports]
    assert settings.drift.sandbox_clock_url == "http://127.0.0.1:20000/sandbox/clock"
    used = [settings.drift.port, *(s.port for s in settings.specialists.values()),
            *(getattr(settings.mcp, n).port for n in MCP_SERVERS)]
    assert sorted(used) == list(range(20005, 20000 + ports_needed(settings)))


def test_children_see_exactly_the_parents_settings(tmp_path: Path) -> None:
    parent, _ = ensure_tokens(prepare_settings(load_settings(), state_dir=tmp_path, port_base=21000,
                                               mode="shadow", llm=False))
    stale = {"DRIFTWISE_SPECIALISTS__SECURITY__PORT": "1", "DRIFTWISE_MCP__GRAFANA__PORT": "2", "DRIFTWISE_CI": "1"}
    env = settings_env(parent, {**os.environ, **stale})
    assert "DRIFTWISE_SPECIALISTS__SECURITY__PORT" not in env and env["DRIFTWISE_CI"] == "1"
    # A real child process reads them back through the same settings loader.
    code = "from driftwise.settings import load_settings; print(load_settings().model_dump_json())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == parent.model_dump(mode="json")
    # Secrets travel revealed to children (they need them) — compare one explicitly.
    assert json.dumps(parent.drift.webhook_token.get_secret_value()) in env["DRIFTWISE_DRIFT"]


def test_plan_has_every_process_with_its_readiness_check(tmp_path: Path) -> None:
    settings = prepare_settings(load_settings(), state_dir=tmp_path, port_base=22000)
    specs = {s.name: s for s in plan_system(settings, sandbox_paths=[SCENARIOS], config_file=Path("x.yaml"))}
    assert set(specs) == {"sandbox", "mcp-prometheus", "mcp-grafana", "mcp-pagerduty", "mcp-kubernetes",
                          "security", "compliance", "drift"}
    assert specs["sandbox"].ready_url == "http://127.0.0.1:22000/sandbox/healthz"
    assert specs["sandbox"].argv[3:6] == ["sandbox", str(SCENARIOS), "--host"]
    assert specs["drift"].ready_url == "http://127.0.0.1:22005/healthz"
    assert specs["mcp-grafana"].ready_url.endswith("/mcp")
    assert specs["drift"].argv[-2:] == ["--config", "x.yaml"]
    assert all(s.argv[1:3] == ["-m", "driftwise"] for s in specs.values())
    assert "sandbox" not in {s.name for s in plan_system(settings)}


def test_keys_are_generated_once_and_all_pinned(tmp_path: Path) -> None:
    settings = prepare_settings(load_settings(), state_dir=tmp_path)
    assert ensure_keys(settings) == ["drift", "security", "compliance"]
    first = TrustStore.load(settings.trust_store_path).agents()
    assert set(first) == {"drift", "security", "compliance"}
    assert ensure_keys(settings) == []
    assert TrustStore.load(settings.trust_store_path).agents() == first


def _decision(action: Action, requires_approval: bool, state: DecisionState) -> Decision:
    note = ArgoNotification(app="a", project="p")
    verdict = Verdict(event_id="e", action=action, requires_approval=requires_approval, allowed_actions=[action],
                      confidence=0.9, threshold=0.8, decided_at=NOW)
    return Decision(
        event=DriftEvent(event_id="e", idempotency_key="argocd/a", received_at=NOW, notification=note),
        state=state, verdict=SignedVerdict(jws="x", verdict=verdict), updated_at=NOW,
    )


def test_final_action_counts_a_verdict_needing_a_human_as_escalate() -> None:
    assert final_action(_decision(Action.ALLOW, False, DecisionState.DONE)) is Action.ALLOW
    assert final_action(_decision(Action.ENFORCE, True, DecisionState.AWAITING_APPROVAL)) is Action.ESCALATE
    failed = _decision(Action.ALLOW, False, DecisionState.FAILED).model_copy(update={"verdict": None})
    assert final_action(failed) is None


def test_scoring_follows_the_readme() -> None:
    expect = Expect(action=Action.ALLOW, acceptable=[Action.ESCALATE], unsafe=[Action.ENFORCE])
    assert score(expect, Action.ALLOW) == "correct"
    assert score(expect, Action.ESCALATE) == "safe"
    assert score(expect, Action.ENFORCE) == "unsafe"
    assert score(expect, Action.DEFER) == "wrong"
    assert score(expect, None) == "wrong"
    results = [ScenarioResult(id=str(i), title="", expected="allow", got="allow", score=s)
               for i, s in enumerate(["correct", "correct", "safe", "wrong", "unsafe"])]
    assert accuracy_line(results) == "accuracy: 2/5 correct, 1 safe, 1 wrong, 1 unsafe"


def test_labels_load_from_the_visible_set() -> None:
    scenarios = load_labelled(SCENARIOS)
    assert len(scenarios) == 12
    assert len({s.id for s in scenarios}) == 12


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("  action: allow\n", "  action: maybe\n", 1), "expect.action"),
    (lambda t: t.replace("expect:", "expected:", 1), "expect"),
    (lambda t: t + "\n  - [unclosed", "YAML"),
])
def test_malformed_labels_are_named(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    src = next(SCENARIOS.glob("v01-*.yaml"))
    shutil.copy(src, tmp_path / src.name)
    (tmp_path / src.name).write_text(edit(src.read_text()))
    with pytest.raises(EvalError) as info:
        load_labelled(tmp_path)
    assert src.name in str(info.value) and message in str(info.value)


def test_eval_cli_rejects_a_malformed_folder_with_one_line(tmp_path: Path) -> None:
    src = next(SCENARIOS.glob("v01-*.yaml"))
    (tmp_path / src.name).write_text(src.read_text().replace("  action: allow\n", "  action: maybe\n", 1))
    out = subprocess.run([sys.executable, "-m", "driftwise", "eval", str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode != 0
    assert "malformed scenario" in out.stderr and src.name in out.stderr and "expect.action" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    empty = subprocess.run([sys.executable, "-m", "driftwise", "eval", str(tmp_path / "none")],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert empty.returncode != 0 and "is not a folder" in empty.stderr
