"""Bearer tokens per role, with rotation: one token, or a list whose first is sent and all are accepted.

Rotating a role's token: set `[new, old]` on the servers of that role, then `new` on its clients,
then drop `old` (it is refused from then on). Settings, the drift agent, the kit and the MCP
servers all carry a role's tokens in this one shape.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr


def _lines(value: Any) -> Any:
    # A secret file (Compose, Kubernetes) holds one token per line: several lines are a rotation.
    if isinstance(value, str) and "\n" in value.strip():
        return [line.strip() for line in value.splitlines() if line.strip()]
    return value


Token = Annotated[SecretStr | list[SecretStr], BeforeValidator(_lines)]
"""YAML `token: [new, old]`, env `DRIFTWISE_..._TOKEN='["new","old"]'`, or a secret file with one token
per line; a plain string is one token."""


def token_ring(value: Token | None) -> list[SecretStr]:
    """Every accepted token of a role, the one to send first; [] when the role has none."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def accepted(value: Token | None) -> list[str]:
    """The revealed tokens a server of this role accepts."""
    return [t.get_secret_value() for t in token_ring(value) if t.get_secret_value()]


def current(value: Token | None) -> str | None:
    """The revealed token a client of this role sends (the newest while rotating)."""
    tokens = accepted(value)
    return tokens[0] if tokens else None
