"""Bounded waiting for async tests: poll a condition under a deadline, fail naming what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll_until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float, what: str,
                     detail: Callable[[], str] | None = None) -> T:
    """Call `probe` until `done(result)`; return that result, or fail after `timeout_s` naming `what`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if done(last):
            return last
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)
    extra = f"\n{detail()}" if detail else ""
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what} (last seen: {str(last)[:1500]}){extra}")
