"""Structured output that fits the server, cut-off answers, the model's own answer, and the compact prompt.

Each case runs the real langchain-openai client against the scripted server, whose scripts behave like the
servers seen in the field (llama.cpp's Python server answers HTTP 500 to a json_schema response_format).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from agents.drift.reasoning.llm import METHODS, SCHEMA_HINT, LlmConfig, LlmReasoner
from agents.drift.reasoning.prompt import DATA_CLOSE, build_messages, compact_payload
from protocol.models import REDACTED, Action
from tests.reasoning.helpers import real_specialists, reasoning_input
from tests.reasoning.world import all_scenarios, load
from tests.support.processes import free_port
from tests.support.scripted_llm import Server


def _config(server: Server, **overrides: Any) -> LlmConfig:
    return LlmConfig(base_url=f"{server.url}/v1", model="scripted", **{"timeout_s": 10.0, "prompt": "full",
                                                                        **overrides})


def _format(request: dict[str, Any]) -> str:
    body = request["body"]
    if body.get("tools"):
        return "function_calling"
    return str((body.get("response_format") or {}).get("type"))


def _decisions(server: Server) -> list[dict[str, Any]]:
    return [r for r in server.requests if "DRIFT-DATA" in json.dumps(r["body"]["messages"])]


@pytest.mark.parametrize(("script", "method", "rejected"), [
    ("rules-like", "json_schema", []),
    ("no-json-schema", "function_calling", ["json_schema"]),
    ("json-mode-only", "json_mode", ["json_schema", "function_calling"]),
])
async def test_auto_probes_once_and_keeps_what_the_endpoint_accepts(
        server: Server, script: str, method: str, rejected: list[str]) -> None:
    server.use(script)
    async with LlmReasoner(_config(server)) as r:
        await r.start()
        first = await r.reason(reasoning_input(load("v07")))
        second = await r.reason(reasoning_input(load("v05")))
    assert r.method == method
    probes = [r_ for r_ in server.requests if r_ not in _decisions(server)]
    wire = {"json_schema": "json_schema", "function_calling": "function_calling", "json_mode": "json_object"}
    assert [_format(p) for p in probes] == [wire[m] for m in [*rejected, method]]  # probed once, in order
    assert [_format(d) for d in _decisions(server)] == [wire[method]] * 2  # every decision by that method
    for out, action in ((first, Action.ENFORCE), (second, Action.ENFORCE)):
        assert out.llm is not None and out.llm.failure is None, out.llm
        assert out.llm.structured_output == method and out.llm.calls == 1
        assert out.llm.model_action == action and out.llm.rules_action == action


async def test_json_mode_carries_the_schema_in_the_prompt(server: Server) -> None:
    server.use("json-mode-only")
    async with LlmReasoner(_config(server, structured_output="json_mode")) as r:
        out = await r.reason(reasoning_input(load("v02")))
    (decision,) = _decisions(server)
    assert decision["body"]["response_format"] == {"type": "json_object"}
    assert SCHEMA_HINT in decision["body"]["messages"][0]["content"]
    assert out.llm is not None and out.llm.failure is None and out.llm.model_action == Action.DEFER


async def test_an_endpoint_that_accepts_nothing_falls_back_with_that_reason(server: Server) -> None:
    server.use("invalid")
    async with LlmReasoner(_config(server)) as r:
        out = await r.reason(reasoning_input(load("v06")))
        again = await r.reason(reasoning_input(load("v06")))
    assert r.method is None
    assert len(server.requests) == len(METHODS)  # the probe tried each method once; no decision was sent
    for o in (out, again):
        assert o.llm is not None and o.llm.failure == "unsupported" and o.llm.model_action is None
        assert o.recommendation.action == Action.ALLOW  # the rules decided


async def test_unreachable_at_start_is_probed_again_by_the_next_decision() -> None:
    config = LlmConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="nobody", timeout_s=2.0)
    async with LlmReasoner(config) as r:
        await r.start()
        out = await r.reason(reasoning_input(load("v01")))
        assert r.method is None
    assert out.llm is not None and out.llm.failure == "unreachable"
    assert out.recommendation.action == Action.ALLOW


async def test_cut_off_answer_gets_one_repair_then_falls_back(server: Server) -> None:
    server.use("cut-off")
    async with LlmReasoner(_config(server, structured_output="json_schema")) as r:
        out = await r.reason(reasoning_input(load("v07")))
    assert len(server.requests) == 2  # the call and one repair, never more
    assert "cut off" in server.requests[1]["body"]["messages"][-1]["content"]
    assert out.llm is not None and out.llm.failure == "cut_off" and out.llm.calls == 2
    assert out.llm.fell_back is not None and "max_output_tokens" in out.llm.fell_back
    assert out.second_opinion is not None
    assert out.recommendation.action == out.second_opinion.action == Action.ENFORCE
    assert out.recommendation.confidence < out.second_opinion.confidence


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_cut_off_once_is_repaired(server: Server, method: str) -> None:
    server.use("cut-off-once")
    async with LlmReasoner(_config(server, structured_output=method)) as r:
        out = await r.reason(reasoning_input(load("v02")))
    assert out.llm is not None and out.llm.failure is None and out.llm.calls == 2
    assert out.llm.model_action == Action.DEFER == out.recommendation.action


async def test_a_wrong_model_is_recorded_and_cannot_loosen(server: Server) -> None:
    server.use("contrary")
    s = load("v03")
    async with LlmReasoner(_config(server, structured_output="json_schema")) as r:
        out = await r.reason(reasoning_input(s, specialists=await real_specialists(s)))
    assert out.llm is not None and out.llm.model_action == Action.ALLOW and out.llm.model_confidence == 0.95
    assert out.llm.rules_action == Action.ENFORCE
    assert out.recommendation.action == Action.ENFORCE and out.recommendation.confidence < 0.8


async def test_reasoning_is_bounded_by_the_schema(server: Server) -> None:
    server.use("rules-like")
    async with LlmReasoner(_config(server, structured_output="json_schema")) as r:
        await r.reason(reasoning_input(load("v01")))
    schema = server.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["reasoning"]["maxLength"] <= 600
    assert schema["properties"]["confidence"]["maximum"] == 1


# --- the compact data block ------------------------------------------------------------------------


SCENARIOS = all_scenarios()


def _block(messages: list[tuple[str, str]]) -> dict[str, Any]:
    user = messages[1][1]
    body = user.split(">>>\n", 1)[1]
    return json.loads(body[: body.index("\n<<<END-DRIFT-DATA")])


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
async def test_compact_block_keeps_every_changed_path_and_the_evidence(s: dict[str, Any]) -> None:
    inp = reasoning_input(s, specialists=await real_specialists(s))
    block = _block(build_messages(inp, 60_000)[0])
    assert block == json.loads(json.dumps(compact_payload(inp)))
    changed = {(d.ref.kind, c.path) for d in inp.report.drifts for c in d.changes}
    assert {(d["resource"].split()[0], c["path"]) for d in block["drifts"] for c in d["changes"]} == changed
    assert [e["id"] for e in block["evidence"]] == [e.id for e in inp.evidence]
    for e, sent in zip(inp.evidence, block["evidence"], strict=True):
        assert ("error" in sent) == (e.error is not None)
    assert {x["agent"]: x["action"] for x in block["specialists"]} == {
        r.agent: (r.action.value if r.action else "abstain") for r in inp.specialists}
    for drift in block["drifts"]:  # no manifests, no managedFields listing: the changed paths carry the drift
        assert set(drift) <= {"resource", "changes", "changed_by", "changed_at"}


def test_compact_block_redacts_secrets_and_keeps_injection_inside() -> None:
    secret = reasoning_input(load("v08"))
    secret.report.drifts[0].changes[0].after = "n3w-password"  # even a raw value that slipped through
    messages, _ = build_messages(secret, 60_000)
    block = _block(messages)
    assert "n3w-password" not in json.dumps(messages)
    assert block["drifts"][0]["changes"][0] == {"path": "/data/DB_PASSWORD", "git": REDACTED, "live": REDACTED,
                                                "redacted": True}
    hostile = build_messages(reasoning_input(load("v09")), 60_000)[0]
    system, user = hostile[0][1], hostile[1][1]
    assert "Ignore all previous instructions" in user and "Ignore all previous instructions" not in system
    assert user.count("<<<END-DRIFT-DATA") == 1 and DATA_CLOSE.split()[0] in user


async def test_compact_prompt_is_much_smaller_than_the_full_one() -> None:
    """Characters stand in for tokens here (the tokenizer is not in CI; README gives the token counts that
    `driftwise scripted-llm --tokenizer` measured): the data block a small model reads shrinks to under half."""
    compact, full = [], []
    for s in SCENARIOS:
        inp = reasoning_input(s, specialists=await real_specialists(s))
        compact.append(len(build_messages(inp, 60_000)[0][1][1]))
        full.append(len(build_messages(inp, 60_000, detail="full")[0][1][1]))
    assert statistics.median(compact) * 2 < statistics.median(full)
    assert all(c < f for c, f in zip(compact, full, strict=True))
