"""Run `python -m driftwise ARGS` under cProfile and write the stats when it ends, SIGTERM included.

    python -m driftwise.benchmarks.profiled OUT.pstats agent drift --port 8600 ...

(uvicorn re-raises a captured SIGTERM after its graceful shutdown; `python -m cProfile` would die
of it without writing anything, so the handler here writes the stats first.)
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
from typing import Any


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    profile = cProfile.Profile()

    def dump(*_: Any) -> None:
        profile.disable()
        profile.dump_stats(out)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    sys.argv = ["driftwise", *args]
    profile.enable()
    try:
        runpy.run_module("driftwise", run_name="__main__", alter_sys=True)
    finally:
        dump()


if __name__ == "__main__":
    main()
