"""Bearer tokens per role, with rotation: one token, or a list whose first is sent and all are accepted.

Rotating a role's token: set `[new, old]` on the servers of that role, then `new` on its clients,
then drop `old` (it is refused from then on). Settings, the drift agent, the kit and the MCP
servers all carry a role's tokens in this one shape.
"""

from __future__ import annotations

from pydantic import SecretStr

Token = SecretStr | list[SecretStr]
"""YAML `token: [new, old]`, env `DRIFTWISE_..._TOKEN='["new","old"]'`; a plain string is one token."""


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
