"""`driftwise ask AGENT --file request.json`: ask an agent as a peer does and print its verified answer.

AGENT is `drift`, a configured specialist, or an agent's base URL. The request is the JSON the
agent's card links a schema for (an ArgoNotification for the drift agent, an AnalysisRequest for a
specialist). Everything is verified before anything is printed (driftwise.asking).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from driftwise.settings import Settings


def register(app: typer.Typer) -> None:
    from driftwise.cli import ConfigOption

    @app.command("ask")
    def ask_cmd(
        agent: str = typer.Argument(..., help="drift, a configured specialist, or an agent's base URL"),
        file: Path = typer.Option(..., "--file", "-f", help="the request JSON (the schema the card links)"),
        peer: str | None = typer.Option(
            None, "--as", help="your peer id: the one your token names, and the answer's audience "
                               "(default for a specialist: ask as Driftwise's own agents, with its role token)"),
        token_file: Path | None = typer.Option(
            None, "--token-file", help="file holding your bearer token (default: the token settings hold for --as)"),
        trust: Path | None = typer.Option(None, "--trust", help="trust store pinning the agents' keys "
                                                                "(default: from settings)"),
        timeout: float = typer.Option(15.0, "--timeout", min=0.1, help="seconds to wait for the answer"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Ask AGENT with the request in FILE; print the answer once its card, signature and binding verify."""
        import asyncio

        import httpx

        from driftwise.asking import AskError, ask
        from driftwise.cli import fail, settings_or_exit
        from driftwise.settings import ConfigError
        from driftwise.tokens import local_tokens
        from protocol.errors import KeyStoreError
        from protocol.signing import TrustStore

        try:
            text = file.read_text()
            settings = local_tokens(settings_or_exit(config), create=False)[0]
            url, token, audience = _whom(settings, agent, peer, token_file, text)
            store = TrustStore.load(trust or settings.trust_store_path)
        except (ConfigError, KeyStoreError, OSError) as exc:
            fail(f"configuration error: {exc}", 2)
            return

        async def run() -> str:
            async with httpx.AsyncClient(timeout=timeout) as http:
                answer = await ask(http, url, text, token, audience, store, timeout)
            return answer.model_dump_json(indent=2, exclude_none=True)

        try:
            typer.echo(asyncio.run(run()))
        except AskError as exc:
            fail(str(exc))


def _whom(
    settings: Settings, agent: str, peer: str | None, token_file: Path | None, text: str,
) -> tuple[str, str, str]:
    """The agent's URL, the token to send and the audience the answer must carry; ConfigError says what is missing."""
    import json

    from driftwise.settings import ConfigError
    from protocol.tokens import current

    if agent == "drift":
        url, named = f"http://{settings.host}:{settings.drift.port}", settings.drift.peer_tokens
        setting = "drift.peer_tokens"
    elif agent in settings.specialists:
        spec = settings.specialists[agent]
        url, named, setting = spec.url(settings.host), spec.peer_tokens, f"specialists.{agent}.peer_tokens"
    elif agent.startswith(("http://", "https://")):
        url, named, setting = agent.rstrip("/"), {}, None
    else:
        raise ConfigError(f"unknown agent {agent!r}: give drift, one of {', '.join(sorted(settings.specialists))}, "
                          "or an agent's base URL")
    if token_file is not None:
        lines = token_file.read_text().split()
        if not lines or peer is None:
            raise ConfigError(f"--token-file {token_file} needs --as PEER (the peer id that token names) and a token")
        return url, lines[0], peer
    if peer is not None:
        token = current(named.get(peer))
        if token is None:
            raise ConfigError(f"no token for peer {peer!r}: set `{setting or 'the agent'}.{peer}` or pass --token-file")
        return url, token, peer
    if agent in settings.specialists and (own := current(settings.specialists[agent].token)):
        # Driftwise's own role token: the answer is addressed to the request's requester
        try:
            requester = json.loads(text).get("requester")
        except (ValueError, AttributeError):
            requester = None
        if not isinstance(requester, str) or not requester:
            raise ConfigError("the request names no `requester`: asking with the role token, the answer is "
                              "addressed to it")
        return url, own, requester
    raise ConfigError("say who asks: --as PEER (with a token in settings or --token-file)")
