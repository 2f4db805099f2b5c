"""The kit's error taxonomy (one table, like httpx draws its own).

KitError
 ├── KitConfigError          a key, trust store or setting the kit needs is missing or wrong
 │    └── PackError          a knowledge pack (agents/kit/packs) is missing or malformed (agents.kit.knowledge)
 ├── InvalidMessage          an incoming A2A message does not hold the JSON model its skill takes
 │    └── InvalidAnalysisRequest   ... a specialist's: an AnalysisRequest
 └── PeerError               calling another agent failed; the message names the peer and the cause
      ├── PeerUnreachable    connection refused / DNS / network
      ├── PeerTimeout        no answer within the timeout
      ├── PeerAuthError      the peer refused our credentials (401/403)
      └── PeerProtocolError  the peer answered, but not with a completed task holding a signed recommendation
"""

from __future__ import annotations


class KitError(Exception):
    """Base of every error raised by agents.kit."""


class KitConfigError(KitError):
    """Something the kit needs to start is missing; the message says how to fix it."""


class InvalidMessage(KitError):
    """The A2A message does not hold the model its skill takes; the message says which field and why."""


class InvalidAnalysisRequest(InvalidMessage):
    """The A2A message is not a valid AnalysisRequest; the message says which field and why."""


class PeerError(KitError):
    """Calling a peer agent failed."""

    def __init__(self, peer: str, detail: str) -> None:
        super().__init__(f"peer {peer}: {detail}")
        self.peer = peer
        self.detail = detail


class PeerUnreachable(PeerError):
    pass


class PeerTimeout(PeerError):
    pass


class PeerAuthError(PeerError):
    pass


class PeerProtocolError(PeerError):
    pass
