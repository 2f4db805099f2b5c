"""`driftwise scripted-llm`: a scripted OpenAI-compatible endpoint for trying the LLM reasoner offline."""

from __future__ import annotations

from pathlib import Path

import typer

from driftwise.cli import fail, setup_logging


def register(app: typer.Typer) -> None:
    @app.command("scripted-llm")
    def scripted_llm(
        script: str = typer.Option("rules-like", "--script", help=(
            "rules-like | hostile | invalid | slow | refuse | cut-off | cut-off-once | no-json-schema | "
            "json-mode-only | contrary")),
        host: str = typer.Option("127.0.0.1", "--host", help="listen address (loopback by default)"),
        port: int = typer.Option(8690, "--port", min=1, max=65535, help="listen port"),
        delay_s: float = typer.Option(30.0, "--delay", min=0, help="how long the `slow` script waits"),
        tokenizer: Path | None = typer.Option(None, "--tokenizer", help=(
            "count usage tokens with this tokenizer.json or GGUF vocabulary (needs the `tokens` extra)")),
        log_level: str = typer.Option("info", "--log-level"),
    ) -> None:
        """Serve POST /v1/chat/completions with a fixed script; point llm.base_url at http://HOST:PORT/v1."""
        import uvicorn

        from driftwise.scripted_llm import SCRIPTS, ScriptState, create_app, load_token_counter

        if script not in SCRIPTS:
            fail(f"unknown script {script!r}: use one of {', '.join(SCRIPTS)}", 2)
        count = None
        if tokenizer is not None:
            if not tokenizer.is_file():
                fail(f"--tokenizer {tokenizer}: no such file (a tokenizer.json or a .gguf)", 2)
            try:
                count = load_token_counter(tokenizer)
            except (ValueError, OSError) as exc:
                fail(f"--tokenizer {tokenizer}: {exc}", 2)
        setup_logging(log_level, "scripted-llm")
        app_ = create_app(ScriptState(script=script, delay_s=delay_s, count_tokens=count))
        uvicorn.run(app_, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=1)
