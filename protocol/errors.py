"""The protocol package's error taxonomy.

ProtocolError
 ├── KeyStoreError            a key or trust store file is missing or malformed
 └── VerificationError        a signed token does not verify; `.reason` names why (VerifyFailure)
"""

from __future__ import annotations

from enum import StrEnum


class ProtocolError(Exception):
    """Base of every error raised by protocol/."""


class KeyStoreError(ProtocolError):
    """A key file or trust store cannot be read or does not hold what it should."""


class VerifyFailure(StrEnum):
    """Why a signed recommendation or verdict was rejected; each has its own test."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    WRONG_SIGNER = "wrong_signer"
    EXPIRED = "expired"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    """`exp` lies further ahead than the verifier's maximum token lifetime."""
    WRONG_AUDIENCE = "wrong_audience"
    EVENT_MISMATCH = "event_mismatch"
    REQUEST_MISMATCH = "request_mismatch"
    """The token answers another A2A message or task than the one it came back for."""
    REPLAYED = "replayed"
    INVALID_PAYLOAD = "invalid_payload"


class VerificationError(ProtocolError):
    def __init__(self, reason: VerifyFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
