"""Policy engines: the same Rego files evaluated in process (regopy) or by an OPA server over REST.

Both answer in the shape of OPA's REST API, `{"result": ..., "decision_id": ...}`, and raise a
PolicyError (never anything else) when there is no usable result, so that the guardrail can fail
closed on one exception type.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import sysconfig
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import httpx

from agents.drift.guardrail.errors import (
    PolicyError,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicyUnavailable,
    PolicyUndefined,
)

log = logging.getLogger(__name__)

DEFAULT_ENTRYPOINT = "driftwise/guardrail/verdict"
_ENTRYPOINT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


class PolicyEngine(Protocol):
    """Evaluates the guardrail policy for one input; returns `{"result": ..., "decision_id": ...}`."""

    name: str

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]: ...


def default_policy_dir() -> Path:
    """The shipped policies: <repo>/policies next to the agents/ package (a source checkout or an editable
    install), else <prefix>/share/driftwise/policies (where a wheel installs them)."""
    candidates = [Path(__file__).resolve().parents[3] / "policies",
                  *(Path(p) / "share" / "driftwise" / "policies"
                    for p in dict.fromkeys((sysconfig.get_path("data"), sys.prefix)))]
    for path in candidates:
        if path.is_dir():
            return path
    raise PolicyLoadError(f"no policies folder at {' or '.join(map(str, candidates))}: "
                          "set policy.policy_dir to the folder of Rego files")


def policy_files(policy_dir: Path, *, tests: bool = False) -> list[Path]:
    """The Rego modules of a folder (recursively), sorted; `*_test.rego` only when `tests`."""
    if not policy_dir.is_dir():
        raise PolicyLoadError(f"policy folder {policy_dir} does not exist: set policy.policy_dir to a folder of .rego")
    files = sorted(p for p in policy_dir.rglob("*.rego") if tests or not p.name.endswith("_test.rego"))
    if not files:
        raise PolicyLoadError(f"policy folder {policy_dir} holds no .rego files")
    return files


def entrypoint_query(entrypoint: str) -> str:
    """`driftwise/guardrail/verdict` -> `data.driftwise.guardrail.verdict` (the path is validated)."""
    path = entrypoint.strip("/")
    if not _ENTRYPOINT.match(path):
        raise PolicyLoadError(f"policy entrypoint {entrypoint!r} is not a path like driftwise/guardrail/verdict")
    return "data." + path.replace("/", ".")


_TINY = 1e-300
"""Below this a float is 0 to the policy (docs/rego-engines.md): regopy fails any comparison with a
subnormal number (|x| < 2.2e-308; it prints 16 digits, so the smallest normal ones become subnormal),
an evaluation error where OPA compares, and no confidence or threshold means anything down there."""


def _no_subnormals(value: Any) -> Any:
    """`value` with every float of magnitude below _TINY as 0.0."""
    if isinstance(value, float):
        return 0.0 if 0.0 < abs(value) < _TINY else value
    if isinstance(value, dict):
        return {k: _no_subnormals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_subnormals(v) for v in value]
    return value


def rego_input_term(input: dict[str, Any]) -> str:
    """The input as a JSON term, the same for every engine (regopy, an OPA server, OPA's Go engine in tests).

    regopy keeps strings given as a JSON term escaped internally, so its output stays valid JSON;
    strings given through `regopy.Input` come back unescaped and a quote breaks the output.
    """
    try:
        return json.dumps(_no_subnormals(input), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PolicyEvaluationError(f"the policy input is not JSON: {exc}") from exc


class RegoEngine:
    """The Rego files compiled once into a regopy bundle, queried per input (~0.1 ms).

    regopy is not thread-parallel: one interpreter, behind a lock, used only from one worker
    thread so that evaluation never blocks the event loop. Construct it at start-up: it compiles
    the policy (a few ms) and raises PolicyLoadError on a bad policy.
    """

    name = "rego"

    def __init__(self, policy_dir: Path, entrypoint: str = DEFAULT_ENTRYPOINT) -> None:
        self.policy_dir = policy_dir
        self.entrypoint = entrypoint
        self._query = f"result := {entrypoint_query(entrypoint)}"
        self._sources = [(str(p.relative_to(policy_dir)), p.read_text()) for p in policy_files(policy_dir)]
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rego")
        self._interpreter: Any = None
        self._bundle: Any = None
        self._executor.submit(self._build).result()

    def _build(self) -> None:
        import regopy

        try:
            interpreter = regopy.Interpreter()
            for name, source in self._sources:
                interpreter.add_module(name, source)
            bundle = interpreter.build(self._query)
        except Exception as exc:  # regopy's errors are opaque; any of them means "cannot compile"
            raise PolicyLoadError(f"policy in {self.policy_dir} does not compile: {_first_line(exc)}") from exc
        if not bundle.ok():
            raise PolicyLoadError(f"policy in {self.policy_dir} does not compile")
        self._interpreter, self._bundle = interpreter, bundle

    def evaluate_sync(self, input: dict[str, Any]) -> dict[str, Any]:
        """Evaluate on the calling thread (tests, CLI); the guardrail uses `evaluate`."""
        term = rego_input_term(input)
        with self._lock:
            try:
                self._interpreter.set_input_term(term)
                output = self._interpreter.query_bundle(self._bundle)
                text = str(output)
                ok = output.ok()
            except Exception as exc:  # opaque regopy failure, or its own JSON parse of a bad output
                raise PolicyEvaluationError(f"policy evaluation failed: {_first_line(exc)}") from exc
        # regopy crashes the process on .expressions() of an undefined result: only the text is read.
        if not ok:
            raise PolicyEvaluationError(f"policy evaluation failed: {_first_line(text)}")
        if text == "undefined":
            raise PolicyUndefined(f"{self.entrypoint} is undefined for this input")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyEvaluationError(f"policy output is not JSON: {exc}") from exc
        if isinstance(doc, list):
            doc = doc[0] if len(doc) == 1 else None
        if not isinstance(doc, dict) or "result" not in doc.get("bindings", {}):
            raise PolicyUndefined(f"{self.entrypoint} has no single value for this input")
        return {"result": doc["bindings"]["result"], "decision_id": uuid.uuid4().hex}

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.evaluate_sync, input)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class OpaRestEngine:
    """An OPA server: `POST {url}/v1/data/{path}` with `{"input": ...}`; the same Rego files, served."""

    name = "opa-rest"

    def __init__(self, url: str, path: str, http: httpx.AsyncClient, timeout_s: float) -> None:
        entrypoint_query(path)  # validates the path
        self.url = f"{url.rstrip('/')}/v1/data/{path.strip('/')}"
        self._http = http
        self._timeout_s = timeout_s

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        body = rego_input_term({"input": input})
        try:
            response = await self._http.post(
                self.url, content=body, headers={"Content-Type": "application/json"}, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            raise PolicyUnavailable(f"OPA at {self.url} is unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise PolicyUnavailable(f"OPA at {self.url} answered {response.status_code}: {response.text[:200]}")
        try:
            doc = response.json()
        except ValueError as exc:
            raise PolicyEvaluationError(f"OPA at {self.url} answered with a body that is not JSON") from exc
        if not isinstance(doc, dict):
            raise PolicyEvaluationError(f"OPA at {self.url} answered with a body that is not an object")
        if "result" not in doc:
            raise PolicyUndefined(f"OPA at {self.url}: the policy is undefined for this input")
        return {"result": doc["result"], "decision_id": doc.get("decision_id")}


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


__all__ = [
    "DEFAULT_ENTRYPOINT",
    "OpaRestEngine",
    "PolicyEngine",
    "PolicyError",
    "RegoEngine",
    "default_policy_dir",
    "entrypoint_query",
    "policy_files",
]
