"""The harness's arithmetic and its warnings, on runs written the way `driftwise eval --json` writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftwise.llm_eval import (
    HarnessError,
    RunScenario,
    all_fell_back,
    deadline_problem,
    load_runs,
    markdown,
    summarize,
)


def _row(i: int, expected: str, model: str | None, rules: str, got: str, score: str, *, failure: str | None = None,
         name: str = "m1", unsafe: list[str] | None = None) -> dict[str, Any]:
    return {"id": f"s{i}", "expected": expected, "got": got, "score": score, "unsafe": unsafe or [],
            "acceptable": ["escalate"], "latency_ms": 1000.0 * i, "confidence": 0.9,
            "llm": {"model": name, "model_action": model, "rules_action": rules, "failure": failure,
                    "tokens_in": 100 * i, "tokens_out": 10}}


ROWS = [
    _row(1, "allow", "allow", "allow", "allow", "correct"),
    _row(2, "enforce", "allow", "enforce", "escalate", "safe", unsafe=["allow"]),  # alone: unsafe
    _row(3, "defer", None, "defer", "defer", "correct", failure="timeout"),  # alone: no answer, wrong
    _row(4, "escalate", "escalate", "escalate", "escalate", "correct"),
]


def test_totals_score_the_model_alone_against_the_labels() -> None:
    t = summarize([RunScenario.model_validate(r) for r in ROWS]).as_json()
    assert t["decisions"] == 4 and t["model_answered"] == 3
    assert t["model_alone_accuracy"] == 2 / 4 and t["model_alone_unsafe"] == 1
    assert t["agreement_with_rules"] == 2 / 3
    assert t["final_accuracy"] == 3 / 4 and t["final_unsafe"] == 0
    assert t["failures"] == {"timeout": 1}
    assert t["prompt_tokens_median"] == 250 and t["latency_ms_median"] == 2500


def test_every_decision_falling_back_is_said_with_the_setting_to_change() -> None:
    rows = [RunScenario.model_validate(_row(i, "allow", None, "allow", "allow", "correct", failure="timeout"))
            for i in range(3)]
    line = all_fell_back(rows)
    assert line is not None and "timeout: 3 of 3" in line and "llm.timeout_s" in line
    assert all_fell_back([RunScenario.model_validate(r) for r in ROWS]) is None


@pytest.mark.parametrize(("timeout", "deadline", "says"), [
    (20, 10, "is not above llm.timeout_s=20s"), (20, 30, "no room for the one repair call"), (20, 50, None)])
def test_a_deadline_the_model_cannot_fit_in_is_named(timeout: float, deadline: float, says: str | None) -> None:
    found = deadline_problem(timeout, deadline)
    assert (found is None) if says is None else (found is not None and says in found)


def test_markdown_has_a_table_per_model(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"reasoner": "llm", "llm_settings": {"model": "m1", "timeout_s": 240}, "scenarios": ROWS}))
    b.write_text(json.dumps({"reasoner": "llm", "scenarios": [
        _row(1, "allow", "enforce", "allow", "escalate", "safe", name="m2")]}))
    text = markdown(load_runs([a, b]))
    assert text.index("### m1") < text.index("### m2")
    assert "| s2#1 | enforce | enforce | allow (**unsafe**) | escalate (safe) |" in text
    assert "**m1**: model alone 50% correct, 1 unsafe (answered 3/4)" in text
    assert "**m2**: model alone 0% correct, 0 unsafe (answered 1/1); agreement with the rules 0%" in text


def test_a_file_that_is_not_a_run_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(HarnessError, match=r"x.json: not JSON"):
        load_runs([bad])
    bad.write_text(json.dumps({"reasoner": "llm", "scenarios": [{"id": "s1"}]}))
    with pytest.raises(HarnessError, match=r"scenarios.0.expected: Field required"):
        load_runs([bad])
