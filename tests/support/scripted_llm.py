"""The scripted OpenAI-compatible server (driftwise.scripted_llm) in a thread of the test process, on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

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
