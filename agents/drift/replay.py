"""The drift agent's persisted replay cache: each specialist token is used once, for one event, ever.

`delegate` consumes the `jti` of every answer it accepts, in the drift agent's state database (shared by
replicas on PostgreSQL), so a restart forgets nothing. The guardrail re-checks signatures, binding and
expiry without this cache (verifying is pure; see protocol.signing.Verifier).

Idempotent per graph task: a row records (jti, event, consumer), the consumer being LangGraph's task
id of the `delegate` run that accepted it. A task id is derived from the checkpoint it runs from, so
the same node replayed after a crash (resumed from that checkpoint) carries the same id and may use
its own token again; any other use — the same token twice, another token reusing the `jti`, another
event — is refused as `replayed`. Rows outlive their token's expiry by the verifier's leeway, then go:
a token past its `exp` can no longer verify, so forgetting its `jti` lets nothing in.
"""

from __future__ import annotations

import time

from agents.drift.database import Store
from agents.drift.errors import StoreError
from protocol.errors import VerificationError, VerifyFailure
from protocol.signing import TokenClaims

FORGET_AFTER_S = 60.0
"""How long past its `exp` a used `jti` is kept (beyond any verifier's leeway)."""
_FORGET_EVERY = 256
"""Expired rows are swept once per this many uses: the table stays bounded by the tokens of ~10 minutes."""


class ReplayStore(Store):
    WHAT = "the replay cache"
    ERROR = StoreError

    _uses = 0

    async def consume(self, claims: TokenClaims, consumer: str) -> None:
        """Record `claims.jti` as used by `consumer` for `claims.event_id`; raise VerificationError(REPLAYED)
        when it was used before by anyone else or for another event."""
        now = time.time()
        self._uses += 1
        if self._uses % _FORGET_EVERY == 0:
            await self.forget_expired(now)
        # one statement, its own transaction: nothing to lose to a concurrent writer between check and add
        added = await self.execute(
            "INSERT INTO used_tokens (jti, event_id, issuer, consumer, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (jti) DO NOTHING",
            (claims.jti, claims.event_id, claims.issuer, consumer, claims.expires_at, now),
        )
        if added == 1:
            return
        row = await self.row("SELECT event_id, consumer FROM used_tokens WHERE jti = ?", (claims.jti,))
        if row is not None and (row[0], row[1]) == (claims.event_id, consumer):
            return  # the same step replayed after a crash: its own acceptance
        where = "another event" if row is not None and row[0] != claims.event_id else "an earlier use"
        raise VerificationError(VerifyFailure.REPLAYED,
                                f"jti {claims.jti!r} from {claims.issuer!r} was already used ({where})")

    async def forget_expired(self, now: float | None = None) -> int:
        """Drop the `jti`s of tokens long expired; returns how many."""
        cutoff = (time.time() if now is None else now) - FORGET_AFTER_S
        return await self.execute("DELETE FROM used_tokens WHERE expires_at < ?", (cutoff,))
