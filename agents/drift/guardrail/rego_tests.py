"""A small Rego test runner (regopy has no `opa test`): every rule `test_*` of every `*_test.rego`.

A test passes when it evaluates to true. regopy crashes the process on `with input as ...` over
the guardrail policy, so a test's input is the rule `input_<name>` beside `test_<name>` (in the
same package) when there is one: the runner evaluates it and sets it as the input first. Rules
named `todo_test_*` are skipped, as in OPA.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agents.drift.guardrail.engine import policy_files, rego_input_term
from agents.drift.guardrail.errors import PolicyLoadError

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.M)
_TEST = re.compile(r"^(test_\w+)\b", re.M)
_INPUT = re.compile(r"^(input_\w+)\b", re.M)


@dataclass
class RegoTestResult:
    package: str
    name: str
    file: str
    passed: bool
    detail: str = ""
    ms: float = 0.0

    @property
    def id(self) -> str:
        return f"data.{self.package}.{self.name}"


def discover(policy_dir: Path) -> list[tuple[Path, str, str, bool]]:
    """(file, package, test name, has input rule) for every test rule, in file order."""
    found = []
    for path in policy_files(policy_dir, tests=True):
        if not path.name.endswith("_test.rego"):
            continue
        source = path.read_text()
        package = _PACKAGE.search(source)
        if package is None:
            raise PolicyLoadError(f"{path} has no package declaration")
        inputs = set(_INPUT.findall(source))
        for name in dict.fromkeys(_TEST.findall(source)):
            found.append((path, package.group(1), name, f"input_{name[5:]}" in inputs))
    return found


def _value(interpreter: object, query: str) -> tuple[bool, object, str]:
    """(defined, value, error) of `x := query`; only the output text is read (regopy crash edges)."""
    try:
        output = interpreter.query(f"x := {query}")  # type: ignore[attr-defined]
        text = str(output)
        ok = output.ok()
    except Exception as exc:  # regopy's errors are opaque: report them, keep running the others
        return False, None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not ok:
        return False, None, text.strip().splitlines()[0] if text.strip() else "evaluation error"
    if text == "undefined":
        return False, None, ""
    doc = json.loads(text)
    if isinstance(doc, list):
        doc = doc[0]
    return True, doc.get("bindings", {}).get("x"), ""


def run(policy_dir: Path) -> Iterator[RegoTestResult]:
    """Load every .rego of the folder (policies and tests) into one interpreter and run each test."""
    import regopy

    tests = discover(policy_dir)
    interpreter = regopy.Interpreter()
    try:
        for path in policy_files(policy_dir, tests=True):
            interpreter.add_module(str(path.relative_to(policy_dir)), path.read_text())
    except Exception as exc:
        raise PolicyLoadError(f"policies in {policy_dir} do not load: {str(exc).strip()[:300]}") from exc
    for path, package, name, has_input in tests:
        started = time.perf_counter()
        result = RegoTestResult(package=package, name=name, file=str(path.relative_to(policy_dir)), passed=False)
        interpreter.set_input_term("{}")
        if has_input:
            defined, value, error = _value(interpreter, f"data.{package}.input_{name[5:]}")
            if not defined:
                result.detail = f"input_{name[5:]} is undefined" + (f": {error}" if error else "")
                result.ms = (time.perf_counter() - started) * 1000
                yield result
                continue
            interpreter.set_input_term(rego_input_term(value))  # type: ignore[arg-type]
        defined, value, error = _value(interpreter, f"data.{package}.{name}")
        result.passed = defined and value is True
        if not result.passed:
            result.detail = error or ("undefined" if not defined else f"evaluated to {json.dumps(value)[:200]}")
        result.ms = (time.perf_counter() - started) * 1000
        yield result
