"""Per-call latency of an MCP tool call over streamable HTTP on a kept-open session, against the sandbox.

Starts the sandbox and one MCP server as processes on free loopback ports, then times N calls
through agents.kit.mcp_pool.McpPool (the client the agents use) and, for contrast, the cost of
opening a new session per call.

    python -m driftwise.benchmarks.mcp_latency [--server kubernetes] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from agents.kit.mcp_pool import McpEndpoint, McpPool
from driftwise.ports import free_port, free_port_block

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-mcp-token"
CALLS = {
    "kubernetes": ("namespace", {"name": "payments"}),
    "prometheus": ("workload_traffic", {"namespace": "payments", "service": "payments-api",
                                        "at": "2026-11-20T16:30:00Z", "baseline_start": "2026-11-20T12:00:00Z",
                                        "baseline_end": "2026-11-20T15:30:00Z"}),
    "grafana": ("annotations", {"start": "2026-11-20T15:30:00Z", "end": "2026-11-20T16:30:00Z"}),
    "pagerduty": ("incidents", {"service": "payments-api", "since": "2026-11-20T14:30:00Z",
                                "until": "2026-11-20T16:30:00Z"}),
}


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {timeout}s")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(server: str, url: str, calls: int) -> None:
    tool, args = CALLS[server]
    observed = datetime.now(UTC)
    endpoint = McpEndpoint(url=url, token=TOKEN)
    async with McpPool({server: endpoint}, call_timeout_s=5.0) as pool:
        for _ in range(20):  # warm-up: connections, caches, JIT-less Python paths
            await pool.call(server, tool, args, evidence_id="w", observed_at=observed)
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            evidence = await pool.call(server, tool, args, evidence_id="b", observed_at=observed)
            samples.append((time.perf_counter() - started) * 1000)
            if evidence.error:
                raise RuntimeError(evidence.error)
    opens = []
    for _ in range(max(10, calls // 20)):
        started = time.perf_counter()
        async with McpPool({server: endpoint}, call_timeout_s=5.0) as fresh:
            await fresh.call(server, tool, args, evidence_id="o", observed_at=observed)
        opens.append((time.perf_counter() - started) * 1000)
    print(f"{server}.{tool} over streamable HTTP, reused session, {calls} calls: "
          f"p50 {_pct(samples, 0.5):.2f} ms, p95 {_pct(samples, 0.95):.2f} ms, mean {statistics.mean(samples):.2f} ms")
    print(f"new session per call ({len(opens)} calls): p50 {_pct(opens, 0.5):.2f} ms, p95 {_pct(opens, 0.95):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=sorted(CALLS), default="kubernetes")
    parser.add_argument("--calls", type=int, default=300)
    options = parser.parse_args()
    base, port = free_port_block(5), free_port()
    server = options.server
    with tempfile.TemporaryDirectory() as state:
        env = {
            **os.environ, "DRIFTWISE_STATE_DIR": state, "DRIFTWISE_LOG_LEVEL": "warning",
            "DRIFTWISE_KUBERNETES__URL": f"http://127.0.0.1:{base + 1}",
            "DRIFTWISE_PROMETHEUS__URL": f"http://127.0.0.1:{base + 2}",
            "DRIFTWISE_GRAFANA__URL": f"http://127.0.0.1:{base + 3}",
            "DRIFTWISE_PAGERDUTY__URL": f"http://127.0.0.1:{base + 4}",
            f"DRIFTWISE_MCP__{server.upper()}__PORT": str(port),
            f"DRIFTWISE_MCP__{server.upper()}__TOKEN": TOKEN,
        }
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT, "env": env}
        sandbox = subprocess.Popen([sys.executable, "-m", "driftwise", "sandbox", str(ROOT / "scenarios"),
                                    "--port", str(base), "--prometheus", "builtin"], **quiet)  # type: ignore[call-overload]
        mcp = subprocess.Popen([sys.executable, "-m", "driftwise", "mcp", server], **quiet)  # type: ignore[call-overload]
        try:
            _wait(f"http://127.0.0.1:{base}/sandbox/healthz", sandbox)
            _wait(f"http://127.0.0.1:{port}/healthz", mcp)
            httpx.post(f"http://127.0.0.1:{base}/sandbox/scenarios/activate",
                       json={"id": "v01-payments-emergency-scale-up"}, timeout=10).raise_for_status()
            asyncio.run(_measure(server, f"http://127.0.0.1:{port}/mcp", options.calls))
        finally:
            for proc in (mcp, sandbox):
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
