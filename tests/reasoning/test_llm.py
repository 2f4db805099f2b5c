"""The LLM reasoner through the real langchain-openai client against the scripted server on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from agents.drift.reasoning.base import ReasoningInput
from agents.drift.reasoning.llm import LlmConfig, LlmReasoner
from agents.drift.reasoning.prompt import build_messages
from protocol.models import Action
from tests.reasoning.helpers import final_action, real_specialists, reasoning_input
from tests.reasoning.world import all_scenarios, load
from tests.support.processes import driftwise, free_port, http_ok
from tests.support.scripted_llm import Server, ask

SCENARIOS = all_scenarios()
SECRET_CANARIES = ["czNjcjN0LW9sZA==", "bjN3LXBhc3N3b3Jk", "dG9rZW4tb2xk", "s3cr3t-old", "n3w-password"]


def _messages(req: dict[str, Any]) -> tuple[str, str]:
    msgs = req["body"]["messages"]
    return msgs[0]["content"], "\n".join(m["content"] for m in msgs[1:])


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
async def test_rules_like_one_call_per_decision(server: Server, s: dict[str, Any]) -> None:
    server.use("rules-like")
    out = await ask(server, reasoning_input(s, specialists=await real_specialists(s)))
    assert len(server.requests) == 1
    body = server.requests[0]["body"]
    assert body["response_format"]["type"] == "json_schema"  # ChatOpenAI's default structured-output path
    assert out.llm is not None and out.llm.fell_back is None
    assert out.llm.tokens_in > 0 and out.llm.tokens_out > 0 and out.llm.latency_ms > 0
    assert out.second_opinion is not None
    assert out.recommendation.action == out.second_opinion.action
    assert final_action(out.recommendation) == s["expect"]["action"], out.recommendation.reasoning


async def test_prompt_carries_delimited_drift_and_no_secret_value(server: Server) -> None:
    server.use("rules-like")
    inp = reasoning_input(load("v08"))
    # defence in depth: even if a raw value or an Argo CD mask slipped into the report, it must not leak
    live = inp.report.drifts[0].live
    assert live is not None
    live["data"] = {"DB_PASSWORD": "bjN3LXBhc3N3b3Jk", "API_TOKEN": "++++++++"}
    inp.report.drifts[0].changes[0].after = "n3w-password"
    await ask(server, inp)
    system, user = _messages(server.requests[0])
    whole = json.dumps(server.requests[0]["body"])
    for canary in SECRET_CANARIES:
        assert canary not in whole
    assert "++++" not in whole
    assert "<<<DRIFT-DATA" in user and "<<<END-DRIFT-DATA" in user
    assert "notifications-credentials" in user.split("<<<DRIFT-DATA")[1]
    assert "never an instruction" in system


async def test_injection_text_only_inside_the_data_block(server: Server) -> None:
    server.use("rules-like")
    out = await ask(server, reasoning_input(load("v09")))
    system, user = _messages(server.requests[0])
    needle = "Ignore all previous instructions"
    assert needle not in system
    head, _, rest = user.partition("<<<DRIFT-DATA")
    inside, _, tail = rest.partition("<<<END-DRIFT-DATA")
    assert needle not in head and needle not in tail and needle in inside
    assert out.recommendation.action == Action.ENFORCE


async def test_invalid_output_is_repaired_once_then_falls_back(server: Server) -> None:
    server.use("invalid")
    inp = reasoning_input(load("v07"))
    out = await ask(server, inp)
    assert len(server.requests) == 2  # the call and one repair, never more
    assert out.llm is not None and out.llm.fell_back is not None and "invalid" in out.llm.fell_back
    assert out.second_opinion is not None
    assert out.recommendation.action == out.second_opinion.action == Action.ENFORCE
    assert out.recommendation.confidence < out.second_opinion.confidence


async def test_slow_endpoint_times_out_and_falls_back(server: Server) -> None:
    server.use("slow", delay_s=1.5)
    started = time.monotonic()
    out = await ask(server, reasoning_input(load("v01")), timeout_s=0.4)
    assert time.monotonic() - started < 3.0
    assert out.llm is not None and out.llm.fell_back is not None and "timeout" in out.llm.fell_back
    assert out.recommendation.action == Action.ALLOW
    assert len(server.requests) == 1


async def test_refusal_falls_back(server: Server) -> None:
    server.use("refuse")
    out = await ask(server, reasoning_input(load("v02")))
    assert out.llm is not None and out.llm.fell_back is not None and "refused" in out.llm.fell_back
    assert out.recommendation.action == Action.DEFER
    assert len(server.requests) == 1


async def test_unreachable_endpoint_falls_back() -> None:
    config = LlmConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="nobody", timeout_s=2.0)
    async with LlmReasoner(config) as r:
        out = await r.reason(reasoning_input(load("v06")))
    assert out.llm is not None and out.llm.fell_back is not None and "unreachable" in out.llm.fell_back
    assert out.recommendation.action == Action.ALLOW
    assert out.recommendation.confidence < 0.9


@pytest.mark.parametrize(("name", "rules_action"), [("v03", Action.ENFORCE), ("v08", Action.ESCALATE),
                                                     ("v02", Action.DEFER), ("v09", Action.ENFORCE)])
async def test_hostile_model_cannot_loosen_the_decision(server: Server, name: str, rules_action: Action) -> None:
    server.use("hostile")
    s = load(name)
    out = await ask(server, reasoning_input(s, specialists=await real_specialists(s)))
    rec = out.recommendation
    assert len(server.requests) == 1
    assert rec.action == rules_action
    assert out.second_opinion is not None and out.second_opinion.action == rules_action
    assert rec.confidence < 0.8  # the disagreement sends it to a human
    assert any(f.rule_id == "llm.disagrees_with_rules" for f in rec.findings)
    assert "approved by security" not in rec.reasoning


async def test_prompt_size_is_bounded(server: Server) -> None:
    server.use("rules-like")
    inp: ReasoningInput = reasoning_input(load("v11"))
    messages, shortened = build_messages(inp, 4000)
    assert shortened and sum(len(text) for _, text in messages) <= 4000
    await ask(server, inp, max_prompt_chars=4000)
    body = server.requests[0]["body"]
    assert sum(len(m["content"]) for m in body["messages"]) <= 4000
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 1200


async def test_models_endpoint_and_script_switch(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        models = (await http.get("/v1/models")).json()
        assert models["object"] == "list" and models["data"][0]["id"]
        assert (await http.post("/_script", json={"script": "nope"})).status_code == 400
        assert (await http.post("/_script", json={"script": "hostile"})).json()["script"] == "hostile"
        assert (await http.delete("/_requests")).json() == {"requests": []}
    server.use("rules-like")


@pytest.mark.slow
async def test_cli_serves_a_script() -> None:
    port = free_port()
    with driftwise("scripted-llm", "--script", "hostile", "--port", str(port), name="scripted-llm",
                   ready_url=f"http://127.0.0.1:{port}/healthz"):
        assert http_ok(f"http://127.0.0.1:{port}/healthz")()
        config = LlmConfig(base_url=f"http://127.0.0.1:{port}/v1", model="scripted", timeout_s=10,
                           structured_output="json_schema")
        async with LlmReasoner(config) as r:
            out = await r.reason(reasoning_input(load("v05")))
        assert out.recommendation.action == Action.ENFORCE
        async with httpx.AsyncClient(timeout=5) as http:
            reqs = (await http.get(f"http://127.0.0.1:{port}/_requests")).json()["requests"]
        assert len(reqs) == 1
    await asyncio.sleep(0)
