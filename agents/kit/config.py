"""The kit's own small configuration model: the CLI builds it from settings, library code never reads settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.kit.auth import OWN_AGENTS
from agents.kit.bindings import Binding
from protocol.needs import Need

PEER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""A peer's id as its token names it and its answers' `aud` carries it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PeerEndpoint(_Model):
    """Another agent this one may call: its base URL and the bearer token that agent accepts."""

    url: str
    token: str


class McpServerEndpoint(_Model):
    """An MCP server this agent may read context from: by URL (streamable HTTP), or run as a stdio child."""

    url: str = ""
    token: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    read_only_mode: bool = Field(default=False, description="declared to run in its read-only mode")
    open_timeout_s: float | None = Field(default=None, gt=0, description="opening its session may take this long")


class KitConfig(_Model):
    """Everything the kit needs to run one specialist process."""

    agent: str = Field(min_length=1, description="agent id: signs as this, card name, key file stem")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    public_url: str | None = Field(default=None, description="base URL peers use; default http://host:port")
    token: str | list[str] = Field(
        min_length=1, description="bearer token callers must present (while rotating: [new, old], both accepted)"
    )
    peer_tokens: dict[str, list[str]] = Field(
        default_factory=dict,
        description="peer id -> the bearer tokens that name it: its answers are addressed to that peer (aud)",
    )
    keys_dir: Path
    trust_store: Path
    deadline_s: float = Field(default=2.5, gt=0, description="analyze() must answer within this")
    peers: dict[str, PeerEndpoint] = Field(default_factory=dict)
    peer_timeout_s: float = Field(default=2.0, gt=0)
    mcp_servers: dict[str, McpServerEndpoint] = Field(default_factory=dict)
    bindings: dict[Need, Binding] = Field(
        default_factory=dict, description="need -> binding (agents/kit/bindings.py) of the needs this agent reads")
    mcp_timeout_s: float = Field(default=1.0, gt=0)
    otlp_endpoint: str | None = None
    service_namespace: str = "driftwise"
    log_level: str = "info"
    options: dict[str, Any] = Field(default_factory=dict, description="specialist-specific options")

    @field_validator("peer_tokens")
    @classmethod
    def _peer_ids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for peer, tokens in value.items():
            if not PEER_ID.fullmatch(peer):
                raise ValueError(f"peer id {peer!r} must match {PEER_ID.pattern} (it becomes the answers' aud)")
            if not [t for t in tokens if t]:
                raise ValueError(f"peer {peer!r} has no token")
        return value

    @property
    def accepted_tokens(self) -> list[str]:
        return [self.token] if isinstance(self.token, str) else list(self.token)

    @property
    def tokens_by_principal(self) -> dict[str, list[str]]:
        """Who each accepted token names: the role token is Driftwise's own agents' (OWN_AGENTS), a peer's its id."""
        return {OWN_AGENTS: self.accepted_tokens, **self.peer_tokens}

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def private_key_path(self) -> Path:
        return self.keys_dir / f"{self.agent}.private.jwk.json"
