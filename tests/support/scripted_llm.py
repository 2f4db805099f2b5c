"""The scripted OpenAI-compatible server (driftwise.scripted_llm) in a thread of the test process, on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from agents.drift.reasoning.base import ReasoningInput, ReasoningOutput
from agents.drift.reasoning.llm import LlmConfig, LlmReasoner
from driftwise.scripted_llm import ScriptState, create_app
from tests.support.processes import free_port


class Server:
    def __init__(self, count_tokens: Callable[[str], int] | None = None) -> None:
        self.state = ScriptState(count_tokens=count_tokens)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(self.state), host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=1, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "scripted LLM server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def use(self, script: str, delay_s: float = 30.0) -> None:
        self.state.script = script
        self.state.delay_s = delay_s
        self.state.requests.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests


async def ask(server: Server, inp: ReasoningInput, **overrides: Any) -> ReasoningOutput:
    """One decision; by default the method is fixed (no probe) and the prompt full (`rules-like` reads the
    rules' whole input back from it)."""
    config = LlmConfig(base_url=f"{server.url}/v1", model="scripted", api_key="test-key",
                       **{"timeout_s": 10.0, "structured_output": "json_schema", "prompt": "full", **overrides})
    async with LlmReasoner(config) as r:
        return await r.reason(inp)
