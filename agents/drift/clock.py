"""Driftwise's "now": the sandbox clock when configured (evaluation), otherwise the system clock.

In production nothing a request carries can move this clock: only the configured URL can.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from agents.drift.errors import ObserveError


class Clock:
    def __init__(self, http: httpx.AsyncClient, sandbox_url: str | None, timeout_s: float = 2.0) -> None:
        self._http = http
        self._url = sandbox_url
        self._timeout = timeout_s

    @property
    def is_sandbox(self) -> bool:
        return self._url is not None

    async def now(self) -> datetime:
        if self._url is None:
            return datetime.now(UTC)
        try:
            resp = await self._http.get(self._url, timeout=self._timeout)
            resp.raise_for_status()
            now = datetime.fromisoformat(resp.json()["now"].replace("Z", "+00:00"))
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise ObserveError("clock", f"sandbox clock {self._url} unreadable: {exc}") from exc
        if now.tzinfo is None:
            raise ObserveError("clock", f"sandbox clock {self._url} returned a naive time")
        return now
