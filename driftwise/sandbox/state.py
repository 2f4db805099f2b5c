"""The sandbox's shared state: loaded scenarios, the active world, the clock, recorded writes, faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftwise.sandbox.calls import CallLog
from driftwise.sandbox.clone import clone_scenario
from driftwise.sandbox.errors import SandboxError, UnknownScenario
from driftwise.sandbox.faults import Faults
from driftwise.sandbox.scenario import Scenario, load_paths
from driftwise.sandbox.world import World

WorldListener = Callable[[World], Awaitable[None]]


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Tokens:
    argocd: str = "sandbox-argocd-token"
    kubernetes: str = "sandbox-kube-token"
    grafana: str = "sandbox-grafana-token"
    pagerduty: str = "sandbox-pagerduty-token"
    kube_anonymous: bool = True


class Clock:
    """The scenario's `now`, movable only through the sandbox endpoints."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise SandboxError("now must carry a time zone (RFC 3339, e.g. 2026-11-20T16:30:00Z)")
        self._now = now

    def advance(self, seconds: float) -> None:
        self._now = self._now + timedelta(seconds=seconds)


@dataclass
class Write:
    seq: int
    at: str
    method: str
    path: str
    application: str | None
    body: Any
    accepted: bool
    status: int

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Sandbox:
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    active: str | None = None
    world: World | None = None
    clock: Clock = field(default_factory=Clock)
    writes: list[Write] = field(default_factory=list)
    tokens: Tokens = field(default_factory=Tokens)
    listeners: list[WorldListener] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    write_seq: int = 0
    faults: Faults = field(default_factory=Faults)
    calls: CallLog = field(default_factory=CallLog)

    def load(self, paths: list[Path]) -> list[Scenario]:
        loaded = load_paths(paths)
        for s in loaded:
            self.scenarios[s.id] = s
        return loaded

    def listing(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "scenarios": [
                {"id": s.id, "title": s.title, "now": rfc3339(s.now), "applications": [s.application]}
                for s in self.scenarios.values()
            ],
        }

    def _get(self, scenario_id: str) -> Scenario:
        try:
            return self.scenarios[scenario_id]
        except KeyError:
            known = ", ".join(sorted(self.scenarios)) or "none loaded"
            raise UnknownScenario(f"no scenario {scenario_id!r} (loaded: {known})") from None

    async def activate(self, scenario_id: str, clones: int = 0, *, also: list[str] | None = None) -> World:
        """Make the scenario (with `clones` clones) the world; `also` adds more scenarios, each with as many
        clones, to the same world (their applications side by side on the first one's clock)."""
        chosen = [self._get(scenario_id)] + [self._get(i) for i in also or [] if i != scenario_id]
        base = chosen[0]
        members = [m for s in chosen for m in [s] + [clone_scenario(s, i) for i in range(1, clones + 1)]]
        world = await asyncio.to_thread(World.build, members)
        async with self.lock:
            if self.world is not None:
                self.world.changes.close()  # watches of the old world end: it is another cluster now
            self.world = world
            self.active = scenario_id
            self.clock.set(base.now)
            for listener in self.listeners:
                await listener(world)
        return world

    def close_streams(self) -> None:
        """End every open watch stream, so that stopping the servers need not wait for them."""
        if self.world is not None:
            self.world.changes.close()

    def record(self, method: str, path: str, application: str | None, body: Any, accepted: bool,
               status: int) -> Write:
        self.write_seq += 1
        write = Write(self.write_seq, rfc3339(self.clock.now()), method, path, application, body,
                      accepted, status)
        self.writes.append(write)
        return write

    @staticmethod
    def world_applications(world: World) -> list[dict[str, Any]]:
        return [
            {"app": app.name, "namespace": app.destination_namespace, "notification": app.notification}
            for app in world.apps.values()
        ]
