"""OPA's own Go engine over the same Rego files: the reference that regopy's answers are checked against.

opa-golib-python-bindings embeds github.com/open-policy-agent/opa/v1/rego as a c-shared library. It is
test-only (tests/requirements-opa.txt: installed with --ignore-requires-python, pinned by hash), so it
lives here and never in agents/. `GoRegoEngine` answers like agents.drift.guardrail.RegoEngine,
`{"result": ..., "decision_id": ...}`, and raises the same PolicyError classes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agents.drift.guardrail import (
    DEFAULT_ENTRYPOINT,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicyUndefined,
    policy_files,
)
from agents.drift.guardrail.engine import entrypoint_query, rego_input_term
from tests.support.binaries import IN_CI


def require_opa_bindings() -> None:
    """Skip (fail in CI) when OPA's Go engine is not installed in this environment."""
    try:
        import opa_bindings  # noqa: F401
    except ImportError as exc:
        message = f"OPA's Go engine is not installed ({exc}): make test-tools (tests/requirements-opa.txt)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


class GoRegoEngine:
    """The policy folder's Rego modules in one OPA engine (with the `*_test.rego` ones when `tests`).

    The engine serializes evaluations itself; they run on one worker thread so that the event loop
    never blocks, as RegoEngine's do.
    """

    name = "opa-go"

    def __init__(self, policy_dir: Path, entrypoint: str = DEFAULT_ENTRYPOINT, *, tests: bool = False) -> None:
        from opa_bindings import OpaEngine, OpaError

        self.entrypoint = entrypoint
        self._path = entrypoint_query(entrypoint).removeprefix("data.")
        self._engine = OpaEngine()
        try:
            for path in policy_files(policy_dir, tests=tests):
                self._engine.add_policy(str(path.relative_to(policy_dir)), path.read_text())
        except OpaError as exc:
            self._engine.close()
            raise PolicyLoadError(f"policy in {policy_dir} does not compile under OPA: {exc}") from exc
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opa-go")

    def document(self, path: str, input: Any) -> Any:
        """The value of `data.<path>` (dotted) for `input`; PolicyUndefined / PolicyEvaluationError."""
        from opa_bindings import OpaError, OpaUndefinedError

        try:
            return self._engine.eval_document(path, input)
        except OpaUndefinedError as exc:
            raise PolicyUndefined(f"data.{path} is undefined for this input") from exc
        except OpaError as exc:
            raise PolicyEvaluationError(f"OPA evaluation failed: {exc}") from exc

    def query(self, query: str, input: Any = None) -> list[dict[str, Any]]:
        """The bindings of every solution of a Rego query (OPA's eval_query); PolicyEvaluationError."""
        from opa_bindings import OpaError

        try:
            return self._engine.eval_query(query, input)
        except OpaError as exc:
            raise PolicyEvaluationError(f"OPA evaluation failed: {exc}") from exc

    def evaluate_sync(self, input: dict[str, Any]) -> dict[str, Any]:
        # The term regopy and the OPA REST client send, so that every engine reads the same input.
        term = json.loads(rego_input_term(input))
        return {"result": self.document(self._path, term), "decision_id": uuid.uuid4().hex}

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.evaluate_sync, input)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.close()
