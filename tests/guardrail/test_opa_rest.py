"""The OPA REST mode against a loopback OPA server (OPA's REST API over OPA's own Go engine, the same policy
files): its verdicts are regopy's in process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from agents.drift.guardrail import Guardrail, OpaRestEngine, RegoEngine, default_policy_dir
from protocol.models import Action
from tests.guardrail.opa_go import require_opa_bindings
from tests.guardrail.opa_server import create_app
from tests.guardrail.support import NOW, Keys, rec, report
from tests.support.processes import free_port, wait_until


@pytest.fixture(scope="module")
def opa_url() -> Iterator[str]:
    require_opa_bindings()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(default_policy_dir()), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "OPA server started")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


async def _evaluate(keys: Keys, engine: OpaRestEngine | RegoEngine, specialists: list | None = None):
    return await Guardrail(keys.verifier(), engine).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.93, with_scope=True)),
        specialists=specialists or [], expected_specialists=[], now=NOW,
    )


async def test_rest_mode_gives_the_same_verdict_as_in_process(keys: Keys, engine: RegoEngine, opa_url: str) -> None:
    async with httpx.AsyncClient() as http:
        rest = OpaRestEngine(opa_url, "driftwise/guardrail/verdict", http, timeout_s=2.0)
        for specialists in ([], [keys.sign(rec("security", Action.ENFORCE, 0.96))]):
            remote = await _evaluate(keys, rest, specialists)
            local = await _evaluate(keys, engine, [s.model_copy() for s in specialists])
            assert remote.opa_result and remote.opa_result["decision_id"]
            assert remote.verdict.action == local.verdict.action
            assert remote.verdict.model_dump(exclude={"discarded"}) == local.verdict.model_dump(exclude={"discarded"})


@pytest.mark.parametrize(("path", "code"), [
    ("driftwise/guardrail/no_such_rule", "opa.undefined"),
    ("test/broken", "opa.unavailable"),
    ("test/slow", "opa.unavailable"),
])
async def test_rest_failures_fail_closed(keys: Keys, opa_url: str, path: str, code: str) -> None:
    async with httpx.AsyncClient() as http:
        out = await _evaluate(keys, OpaRestEngine(opa_url, path, http, timeout_s=0.3))
    assert out.verdict.action == Action.ESCALATE and out.verdict.requires_approval
    assert out.verdict.reasons[0].code == code and out.opa_result is None


async def test_unreachable_opa_fails_closed(keys: Keys) -> None:
    async with httpx.AsyncClient() as http:
        out = await _evaluate(keys, OpaRestEngine(f"http://127.0.0.1:{free_port()}", "driftwise/guardrail/verdict",
                                                  http, timeout_s=1.0))
    assert out.verdict.action == Action.ESCALATE
    assert out.verdict.reasons[0].code == "opa.unavailable"
