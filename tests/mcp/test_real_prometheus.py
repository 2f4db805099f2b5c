"""The Prometheus server against a real Prometheus (Debian's), which the sandbox backfills and fronts."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest

from agents.kit.mcp_pool import McpEndpoint, McpPool
from protocol.context import MemoryReport, TrafficReport
from tests.support.binaries import require_binary
from tests.support.mcp_stack import Stack, backend_env, start_servers
from tests.support.processes import SCENARIOS, driftwise, free_port_block

pytestmark = [pytest.mark.slow, pytest.mark.backend]
NOW = "2026-11-20T16:30:00Z"


@pytest.fixture(scope="module")
def real_stack() -> Iterator[Stack]:
    require_binary("prometheus")
    require_binary("promtool")
    base = free_port_block(5)
    with tempfile.TemporaryDirectory() as state, ExitStack() as processes:
        processes.enter_context(driftwise(
            "sandbox", str(SCENARIOS), "--port", str(base), "--prometheus", "real",
            "--data-dir", f"{state}/prometheus", name="sandbox-real-prometheus",
            env={"DRIFTWISE_STATE_DIR": state}, ready_url=f"http://127.0.0.1:{base}/sandbox/healthz", timeout=120,
        ))
        endpoints = start_servers(processes, backend_env(base, state), names=("prometheus",))
        yield Stack(sandbox_base=base, endpoints=endpoints)


@pytest.fixture
async def pool(real_stack: Stack) -> AsyncIterator[McpPool]:
    endpoints: dict[str, McpEndpoint] = real_stack.endpoints
    async with McpPool(endpoints, call_timeout_s=10.0) as pool:
        yield pool


async def test_real_prometheus_traffic_and_memory(real_stack: Stack, pool: McpPool) -> None:
    observed = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
    real_stack.activate("v01-payments-emergency-scale-up")
    traffic = await pool.call("prometheus", "workload_traffic", {
        "namespace": "payments", "service": "payments-api", "at": NOW,
        "baseline_start": "2026-11-20T12:00:00Z", "baseline_end": "2026-11-20T15:30:00Z",
    }, evidence_id="t", observed_at=observed)
    assert isinstance(traffic.value, TrafficReport), traffic.error
    assert traffic.value.rate_change is not None and 8 < traffic.value.rate_change < 12

    real_stack.activate("v11-oom-limit-raised")
    memory = await pool.call("prometheus", "workload_memory", {
        "namespace": "storefront", "workload": "recommender", "start": "2026-11-20T15:30:00Z", "end": NOW,
    }, evidence_id="m", observed_at=observed)
    assert isinstance(memory.value, MemoryReport), memory.error
    assert len(memory.value.pods) == 3 and all((p.max_bytes or 0) > 512 * 2**20 for p in memory.value.pods)

    real_stack.activate("v12-metrics-backend-down")
    down = await pool.call("prometheus", "query", {"promql": "up", "time": NOW}, evidence_id="d",
                           observed_at=observed)
    assert down.error is not None and "prometheus" in down.error
