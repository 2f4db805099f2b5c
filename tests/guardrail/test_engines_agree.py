"""OPA's own Go engine and regopy give the same answer on every input: the Rego tests, their inputs, and
the property tests' generated cases (through the whole Guardrail, and raw policy inputs).

An answer is the verdict document, or "no usable verdict" (undefined or an evaluation error, on which
the guardrail fails closed to escalate); its numbers, in values and in messages, are compared to 15
significant digits, because regopy prints 16 and OPA up to 17. docs/rego-engines.md records where the
engines differed and how the policy was changed so that they agree.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from agents.drift.guardrail import PolicyError, RegoEngine, default_policy_dir
from agents.drift.guardrail.rego_tests import discover
from tests.guardrail.cases import guardrail_case, policy_input, run_case
from tests.guardrail.opa_go import GoRegoEngine, require_opa_bindings
from tests.guardrail.support import Keys

CASES = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def go_engine() -> Iterator[GoRegoEngine]:
    require_opa_bindings()
    engine = GoRegoEngine(default_policy_dir())
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def go_with_tests() -> Iterator[GoRegoEngine]:
    require_opa_bindings()
    engine = GoRegoEngine(default_policy_dir(), tests=True)
    yield engine
    engine.close()


Answer = tuple[str, Any]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def answer(engine: RegoEngine | GoRegoEngine, input: dict[str, Any]) -> Answer:
    try:
        return "verdict", engine.evaluate_sync(input)["result"]
    except PolicyError:
        return "no usable verdict", None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-15, abs_tol=1e-300)


def same(ours: Any, theirs: Any) -> bool:
    """Equal, but numbers (also those inside strings) only to 15 significant digits: regopy prints 16."""
    if isinstance(ours, bool) or isinstance(theirs, bool) or ours is None or theirs is None:
        return ours is theirs
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return _close(ours, theirs)
    if isinstance(ours, str) and isinstance(theirs, str):
        numbers = (_NUMBER.findall(ours), _NUMBER.findall(theirs))
        return (_NUMBER.split(ours) == _NUMBER.split(theirs) and len(numbers[0]) == len(numbers[1])
                and all(_close(float(a), float(b)) for a, b in zip(*numbers, strict=True)))
    if isinstance(ours, list | tuple) and isinstance(theirs, list | tuple):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs, strict=True))
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(same(ours[k], theirs[k]) for k in ours)
    return False


def _test_input(go_with_tests: GoRegoEngine, package: str, name: str, has_input: bool) -> dict[str, Any]:
    return go_with_tests.document(f"{package}.input_{name[5:]}", {}) if has_input else {}


def test_rego_tests_pass_under_opa(go_with_tests: GoRegoEngine) -> None:
    """Under regopy they pass by `driftwise policy test` (test_policy_cli.py), with the same input rules;
    OPA has `with input as` (on which regopy crashes)."""
    failed = []
    for _, package, name, has_input in discover(default_policy_dir()):
        given = f" with input as data.{package}.input_{name[5:]}" if has_input else ""
        if go_with_tests.query(f"x := data.{package}.{name}{given}") != [{"x": True}]:
            failed.append(name)
    assert len(discover(default_policy_dir())) >= 30 and failed == []


def test_rego_test_inputs_get_the_same_verdict(engine: RegoEngine, go_engine: GoRegoEngine,
                                              go_with_tests: GoRegoEngine) -> None:
    inputs = {name: _test_input(go_with_tests, package, name, True)
              for _, package, name, has_input in discover(default_policy_dir()) if has_input}
    differ = sorted(name for name, input in inputs.items() if not same(answer(engine, input), answer(go_engine, input)))
    assert len(inputs) >= 30 and differ == []


def _explain(input: dict[str, Any], ours: Answer, theirs: Answer) -> str:
    if ours[0] != theirs[0] or ours[1] is None or theirs[1] is None:
        return f"regopy: {ours[0]}, OPA: {theirs[0]}, for {input}"
    fields = {k: (ours[1].get(k), theirs[1].get(k)) for k in ours[1].keys() | theirs[1].keys()
              if not same(ours[1].get(k), theirs[1].get(k))}
    return f"(regopy, OPA) differ in {fields} for {input}"


class BothEngines:
    """A PolicyEngine that asks both and keeps every disagreement; the guardrail gets regopy's answer."""

    name = "regopy+opa"

    def __init__(self, regopy: RegoEngine, opa: GoRegoEngine) -> None:
        self._regopy, self._opa = regopy, opa
        self.disagreements: list[tuple[dict[str, Any], Answer, Answer]] = []

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        ours, theirs = await asyncio.gather(asyncio.to_thread(answer, self._regopy, input),
                                            asyncio.to_thread(answer, self._opa, input))
        if not same(ours, theirs):
            self.disagreements.append((input, ours, theirs))
        return await self._regopy.evaluate(input)


@CASES
@given(c=guardrail_case)
def test_the_guardrail_decides_the_same_under_both(keys: Keys, engine: RegoEngine, go_engine: GoRegoEngine,
                                                  c: dict[str, Any]) -> None:
    both = BothEngines(engine, go_engine)
    run_case(keys, both, c)
    assert both.disagreements == [], _explain(*both.disagreements[0])


@CASES
@given(doc=policy_input)
def test_raw_policy_inputs_get_the_same_answer(engine: RegoEngine, go_engine: GoRegoEngine,
                                               doc: dict[str, Any]) -> None:
    ours, theirs = answer(engine, doc), answer(go_engine, doc)
    assert same(ours, theirs), _explain(doc, ours, theirs)
