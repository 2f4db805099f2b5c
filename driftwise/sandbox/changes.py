"""The world's change feed: every change to an object the Kubernetes API serves, for watch streams.

A change is recorded where the world changes (a sync through Argo CD's API, a /sandbox/live patch) with a
snapshot of the object at that resourceVersion. A bounded history lets a watch that starts from a
resourceVersion (kubectl lists, then watches from the list's version) replay what it missed; each
subscriber gets its own bounded queue, and a subscriber that falls behind is dropped, as the API server
drops a slow watcher. Closing the feed (a new world is activated, or the sandbox stops) ends every stream.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

Obj = dict[str, Any]
HISTORY = 1000
"""Changes kept for a watch that starts from an older resourceVersion."""
QUEUE = 1000
"""Changes one subscriber may have unread before it is dropped."""


@dataclass(frozen=True)
class Change:
    resource_version: int
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    object: Obj


class Subscription:
    """One watch stream's queue of changes; `None` in it means the feed ended the stream."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=QUEUE + 1)

    def push(self, item: Change | None) -> bool:
        if item is not None and self.queue.qsize() >= QUEUE:
            self.queue.put_nowait(None)  # fell behind: end this stream rather than grow without bound
            return False
        self.queue.put_nowait(item)
        return True

    def close(self) -> None:
        self._feed.unsubscribe(self)


class ChangeFeed:
    def __init__(self) -> None:
        self._history: deque[Change] = deque(maxlen=HISTORY)
        self._subscribers: set[Subscription] = set()
        self.closed = False

    def modified(self, obj: Obj) -> None:
        rv = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
        change = Change(rv, "MODIFIED", copy.deepcopy(obj))
        self._history.append(change)
        for sub in list(self._subscribers):
            if not sub.push(change):
                self._subscribers.discard(sub)

    def since(self, resource_version: int) -> list[Change]:
        return [c for c in self._history if c.resource_version > resource_version]

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        if self.closed:
            sub.push(None)
        else:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        """End every open stream (they see the connection close, as when an API server restarts)."""
        self.closed = True
        for sub in self._subscribers:
            sub.push(None)
        self._subscribers.clear()
