"""The numbers of issue 13's "Done when": a burst with kill -9 of the drift agent in the middle of it.

    .venv/bin/python -m tests.faults.burst [--events 250] [--kill-after 60] [--concurrency 32]

Starts the fault suite's system (tests.support.fault_system: every process under the supervisor,
autonomous mode, clones of one enforce scenario), posts `events` distinct notifications at
`concurrency`, kills the drift agent with SIGKILL once `kill-after` of them were answered 202 (the
supervisor restarts it; a notification refused meanwhile is sent again, as Argo CD's notifications
controller would), waits for every accepted event to settle and prints the invariant checker's
line — accepted, lost, terminal twice, record/write mismatches — and what the mismatches are.
Not a test: it reports, whatever it finds (exit status 1 when an invariant does not hold).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.support.fault_system import Clone, FaultSystem, fault_system
from tests.support.invariants import Outcome, check_invariants, write_kind


async def _post_until_accepted(system: FaultSystem, clone: Clone, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await system.post(clone)
        except (httpx.TransportError, AssertionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)  # the drift agent is restarting: send again, as a retrying sender would


async def burst(events: int, kill_after: int, concurrency: int) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="dw-burst-") as state:
        async with fault_system(Path(state), pool=events) as system:
            clones = system.take(events)
            gate = asyncio.Semaphore(concurrency)
            accepted: dict[str, str] = {}
            killed: list[asyncio.Task[None]] = []
            started = time.monotonic()

            async def one(clone: Clone) -> None:
                async with gate:
                    event_id = await _post_until_accepted(system, clone)
                accepted[event_id] = clone.app
                if len(accepted) == kill_after and not killed:
                    killed.append(asyncio.create_task(system.kill9_drift()))

            await asyncio.gather(*(one(c) for c in clones))
            await asyncio.gather(*killed)
            outcome = await check_invariants(system, f"burst of {events}, kill -9 after {kill_after} accepted",
                                             accepted, settle_s=300)
            elapsed = time.monotonic() - started
            syncs = Counter(w.application for w in await system.writes() if w.accepted and write_kind(w) == "sync")
            decisions = await system.decisions()
            # the headline: Argo CD synced it, the decision says a human must decide
            escalated = [e for e, app in accepted.items() if syncs[app] and (d := decisions.get(e)) is not None
                         and d.verdict is not None and (d.verdict.verdict.requires_approval
                                                        or d.verdict.verdict.action.value == "escalate")]
            print(f"wall {elapsed:.1f}s; applications synced: {len(syncs)}, synced twice: "
                  f"{sum(1 for n in syncs.values() if n > 1)}, synced while the decision says escalate: "
                  f"{len(escalated)}; drift agent restarts: {system.supervisor.children['drift'].restarts}")
            print(outcome.report())
            return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=250)
    parser.add_argument("--kill-after", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if not 0 < args.kill_after <= args.events:
        parser.error("--kill-after must be between 1 and --events")
    outcome = asyncio.run(burst(args.events, args.kill_after, args.concurrency))
    sys.exit(0 if outcome.holds else 1)


if __name__ == "__main__":
    main()
