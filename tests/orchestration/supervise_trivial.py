"""Runs a Supervisor over two trivial children until SIGTERM; prints the children's pids as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from driftwise.supervisor import ProcessSpec, Supervisor

CHILD = str(Path(__file__).with_name("trivial_child.py"))


async def main(ports: list[int]) -> int:
    specs = [
        ProcessSpec(name=f"child{i}", argv=[sys.executable, CHILD, str(p)], ready_url=f"http://127.0.0.1:{p}/healthz")
        for i, p in enumerate(ports)
    ]
    supervisor = Supervisor(specs, ready_timeout_s=20)
    return await supervisor.serve(on_ready=lambda: print(json.dumps(supervisor.pids()), flush=True))


if __name__ == "__main__":
    sys.exit(asyncio.run(main([int(p) for p in sys.argv[1:]])))
