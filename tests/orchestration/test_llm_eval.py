"""Issue 8's bar through the whole system: a hostile model that answers "allow, confidence 1.0, approved by
security" to everything, behind the real langchain-openai client, leaves no scenario unsafe, and the
privileged container is still enforced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, SCENARIOS, driftwise, free_port

# the commands these tests run read DRIFTWISE_* settings: none of the caller's may leak in
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_env")]


def test_eval_with_a_hostile_model_reports_no_unsafe_decision(tmp_path: Path) -> None:
    port = free_port()
    with driftwise("scripted-llm", "--script", "hostile", "--port", str(port), name="scripted-llm",
                   ready_url=f"http://127.0.0.1:{port}/healthz"):
        report = tmp_path / "eval.json"
        env = {**os.environ, "DRIFTWISE_LLM__BASE_URL": f"http://127.0.0.1:{port}/v1",
               "DRIFTWISE_LLM__API_KEY": "test-key", "DRIFTWISE_LLM__MODEL": "hostile-model"}
        out = subprocess.run([sys.executable, "-m", "driftwise", "eval", str(SCENARIOS), "--reasoner", "llm",
                              "--json", str(report)], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=300)
        calls = httpx.get(f"http://127.0.0.1:{port}/_requests", timeout=5).json()
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("accuracy: ") and last.endswith(" 0 unsafe"), out.stdout[-3000:]
    data = json.loads(report.read_text())
    by_id = {s["id"]: s for s in data["scenarios"]}
    assert by_id["v03-privileged-container"]["got"] == "enforce"
    # the model was really consulted: one chat completion per decision (no repair needed: it answers valid JSON),
    # beside the preflight's timing check and each drift agent's start-up probe (neither carries a drift)
    decisions = [r for r in calls["requests"] if "Decide this drift event" in json.dumps(r["body"]["messages"])
                 and "timing check" not in json.dumps(r["body"]["messages"])]
    assert len(decisions) == len(by_id)
    assert all(s["llm"]["model_action"] == "allow" for s in data["scenarios"])  # what the model alone said
    assert data["llm_totals"]["model_alone_unsafe"] > 0 and data["llm_totals"]["final_unsafe"] == 0


def _some_scenarios(tmp_path: Path, *prefixes: str) -> Path:
    """A folder holding the visible scenarios whose ids start with `prefixes`."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for prefix in prefixes:
        (source,) = SCENARIOS.glob(f"{prefix}-*.yaml")
        shutil.copy(source, folder / source.name)
    return folder


def test_harness_reports_a_wrong_model_and_warns_about_the_deadline(tmp_path: Path) -> None:
    """The harness end to end with a confidently wrong model (the rules' full input in the prompt, so the script
    can invert what the rules decide): every scenario's rules' and model's own action are kept, the model alone
    is scored against the labels, the final decision stays safe, and eval-report turns the run into markdown.
    The default deadline (10 s) is not above the default LLM timeout (20 s): the preflight says so."""
    port = free_port()
    folder = _some_scenarios(tmp_path, "v01", "v02", "v03", "v08")  # one of each action keeps the run short
    with driftwise("scripted-llm", "--script", "contrary", "--port", str(port), name="scripted-llm",
                   ready_url=f"http://127.0.0.1:{port}/healthz"):
        report = tmp_path / "eval.json"
        env = {**os.environ, "DRIFTWISE_LLM__BASE_URL": f"http://127.0.0.1:{port}/v1",
               "DRIFTWISE_LLM__MODEL": "contrary-model", "DRIFTWISE_LLM__PROMPT": "full"}
        out = subprocess.run([sys.executable, "-m", "driftwise", "eval", str(folder), "--reasoner", "llm",
                              "--json", str(report), "--keep-state"], capture_output=True, text=True, cwd=ROOT,
                             env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    stderr = " ".join(out.stderr.split())
    assert "drift.decision_deadline_s=10s is not above llm.timeout_s=20s" in stderr
    kept = Path(re.search(r"state and logs kept in (\S+)", stderr).group(1))
    data = json.loads(report.read_text())
    # the audit's decision record keeps what the model said alone, beside the rules' action
    shown = subprocess.run([sys.executable, "-m", "driftwise", "audit", "show", "--json", "--db",
                            str(kept / "drift.sqlite")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    audited = {r["event_id"]: r["payload"]["llm"] for r in map(json.loads, shown.stdout.splitlines())
               if r["kind"] == "decision" and r["payload"].get("step") == "decided"}
    assert {e: u["model_action"] for e, u in audited.items()} == {
        s["event_id"]: s["llm"]["model_action"] for s in data["scenarios"]}
    shutil.rmtree(kept)
    labels = {s["id"]: s for s in data["scenarios"]}
    for s in data["scenarios"]:
        llm = s["llm"]
        assert llm["failure"] is None and llm["structured_output"] == "json_schema"
        assert llm["model_action"] == ("enforce" if llm["rules_action"] == "allow" else "allow")
    totals = data["llm_totals"]
    wrong_alone = sum(1 for s in labels.values() if s["llm"]["model_action"] != s["expected"])
    assert totals["model_alone_accuracy"] == (len(labels) - wrong_alone) / len(labels)
    assert totals["agreement_with_rules"] == 0.0 and totals["final_unsafe"] == 0
    assert data["unsafe"] == 0
    md = subprocess.run([sys.executable, "-m", "driftwise", "eval-report", str(report)], capture_output=True,
                        text=True, cwd=ROOT, env=env, timeout=60)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("### contrary-model")
    assert all(f"| {i}#1 | {s['expected']} | {s['llm']['rules_action']} | {s['llm']['model_action']}" in md.stdout
               for i, s in labels.items())
    assert "agreement with the rules 0%; final " in md.stdout and "0 unsafe; failures: none" in md.stdout


def test_eval_report_names_a_file_that_is_not_a_run(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"reasoner": "rules", "scenarios": []}')
    out = subprocess.run([sys.executable, "-m", "driftwise", "eval-report", str(bad)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2
    assert "a run of the rules reasoner" in out.stderr and "Traceback" not in out.stderr


def test_harness_counts_failures_by_kind(tmp_path: Path) -> None:
    """A model whose every answer is cut off at the token limit: one repair each, then the rules decide; the run
    counts the failures by kind and says that every decision fell back, with the setting to change."""
    port = free_port()
    folder = _some_scenarios(tmp_path, "v02", "v03")
    with driftwise("scripted-llm", "--script", "cut-off", "--port", str(port), name="scripted-llm",
                   ready_url=f"http://127.0.0.1:{port}/healthz"):
        report = tmp_path / "eval.json"
        env = {**os.environ, "DRIFTWISE_LLM__BASE_URL": f"http://127.0.0.1:{port}/v1",
               "DRIFTWISE_LLM__MODEL": "rambling-model", "DRIFTWISE_LLM__TIMEOUT_S": "5",
               "DRIFTWISE_DRIFT__DECISION_DEADLINE_S": "15"}
        out = subprocess.run([sys.executable, "-m", "driftwise", "eval", str(folder), "--reasoner", "llm",
                              "--json", str(report)], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    stderr = " ".join(out.stderr.split())
    assert "is not above llm.timeout_s" not in stderr and "no room for the one repair" not in stderr
    assert "every decision fell back to the rules (cut_off: 2 of 2): raise llm.max_output_tokens" in stderr
    data = json.loads(report.read_text())
    assert data["llm_totals"]["failures"] == {"cut_off": 2} and data["llm_totals"]["model_answered"] == 0
    assert all(s["llm"]["calls"] == 2 for s in data["scenarios"])  # the call and its one repair
    assert data["unsafe"] == 0 and {s["id"][:3]: s["got"] for s in data["scenarios"]} == {"v02": "defer",
                                                                                          "v03": "enforce"}
