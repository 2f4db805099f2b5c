"""Local runs' bearer tokens: one per role, drawn on first run into <state_dir>/tokens/, like the keys.

A role whose token the settings leave unset (null) takes it from `tokens/<role>`; with `create`,
a missing file is generated (random, mode 0600). A file may hold several lines while a token
rotates: the first is sent, every line is accepted. Settings that name a token keep it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import SecretStr

from driftwise.settings import ConfigError, Settings
from protocol.tokens import Token

MCP_SERVERS = ("prometheus", "grafana", "pagerduty", "kubernetes")


def _read_or_make(path: Path, create: bool) -> Token | None:
    if path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not lines:
            raise ConfigError(f"token file {path} is empty: delete it to draw a new token, or write one in it")
        return [SecretStr(t) for t in lines] if len(lines) > 1 else SecretStr(lines[0])
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return SecretStr(token)


def local_tokens(settings: Settings, *, create: bool) -> tuple[Settings, list[str]]:
    """Settings with every unset role token filled from the state folder; the roles drawn now."""
    folder = settings.tokens_dir
    drawn: list[str] = []

    def fill(role: str, value: Token | None) -> Token | None:
        if value is not None:
            return value
        existed = (folder / role).is_file()
        token = _read_or_make(folder / role, create)
        if token is not None and not existed:
            drawn.append(role)
        return token

    drift = settings.drift.model_copy(update={
        "webhook_token": fill("webhook", settings.drift.webhook_token),
        "approvals_token": fill("approvals", settings.drift.approvals_token),
    })
    specialists = {name: spec.model_copy(update={"token": fill(f"specialist-{name}", spec.token)})
                   for name, spec in settings.specialists.items()}
    mcp = settings.mcp.model_copy(update={
        name: getattr(settings.mcp, name).model_copy(update={"token": fill(f"mcp-{name}",
                                                                            getattr(settings.mcp, name).token)})
        for name in MCP_SERVERS
    })
    # replicas a local run starts on one state folder sign console sessions with one key
    session = fill("console-session", settings.console.session_key)
    console = settings.console.model_copy(update={
        "session_key": session[0] if isinstance(session, list) else session})
    filled = settings.model_copy(update={"drift": drift, "specialists": specialists, "mcp": mcp,
                                         "console": console})
    try:  # model_copy skips validation: re-check the one-token-per-role rule over what the files gave
        filled.check_one_token_per_role()
    except ValueError as exc:
        raise ConfigError(f"{exc} (tokens in {folder})") from exc
    return filled, drawn
