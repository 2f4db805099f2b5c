"""Builtin PromQL evaluator versus a real Prometheus fed the same scenarios: equal results.

Every query Driftwise issues (the PrometheusQueries templates filled in per scenario), their
query_range forms, and *_over_time / by() / comparison variants are run against a sandbox process
in `--prometheus real` mode and against the builtin evaluator in-process, at several times.
Tolerance: relative 1e-9 (plus absolute 1e-9): both compute in float64 and differ only in summation order.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftwise.sandbox.app import build_apps
from driftwise.sandbox.scenario import load_paths
from driftwise.sandbox.state import Sandbox
from driftwise.settings import PrometheusQueries
from tests.support.binaries import require_binary
from tests.support.processes import SCENARIOS, driftwise, free_port_block

pytestmark = pytest.mark.slow
REL, ABS = 1e-9, 1e-9
SCENARIOS_LOADED = {s.id: s for s in load_paths([SCENARIOS])}
SCENARIO_IDS = [s.id for s in SCENARIOS_LOADED.values() if s.prometheus.series and "prometheus" not in s.down]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    require_binary("prometheus")
    require_binary("promtool")
    port = free_port_block(5)
    data: Path = tmp_path_factory.mktemp("prom")
    with driftwise("sandbox", str(SCENARIOS), "--port", str(port), "--prometheus", "real", "--data-dir", str(data),
                   name="sandbox-real", ready_url=f"http://127.0.0.1:{port}/sandbox/healthz", timeout=60):
        yield port


def _queries(scenario_id: str) -> list[str]:
    s = SCENARIOS_LOADED[scenario_id]
    q = PrometheusQueries()
    out: list[str] = []
    pairs = {(x.labels.get("namespace", ""), x.labels.get("service", "")) for x in s.prometheus.series}
    for ns, svc in sorted(pairs):
        if svc:
            for window in (q.rate_window, "1m", "15m"):
                out.append(q.request_rate.format(namespace=ns, service=svc, window=window))
                out.append(q.error_rate.format(namespace=ns, service=svc, window=window))
            sel = f'http_requests_total{{namespace="{ns}",service="{svc}"}}'
            out += [
                f"sum by (code) (rate({sel}[5m]))",
                f"sum without (code) (increase({sel}[1h]))",
                f"irate({sel}[5m])",
                f"avg_over_time({sel}[30m])",
                f"max_over_time({sel}[1h])",
                f'sum(rate({sel[:-1]},code=~"5.."}}[5m])) / sum(rate({sel}[5m]))',
                f"sum(rate({sel}[5m])) > 10",
                f"sum(rate({sel}[5m] offset 1h))",
                f"rate({sel}[5m]) * 60",
                f"count by (namespace) ({sel})",
            ]
        if ns:
            pods = [x.labels.get("pod", "") for x in s.prometheus.series if x.labels.get("pod")]
            if pods:
                regex = "|".join(sorted(set(pods)))
                out.append(q.memory_working_set.format(namespace=ns, pod_regex=regex))
                mem = f'container_memory_working_set_bytes{{namespace="{ns}"}}'
                out += [f"max_over_time({mem}[1h])", f"avg by (pod) ({mem})", f"min_over_time({mem}[6h])",
                        f"{mem} / 1024 / 1024", f"max({mem}) >= 0"]
    return out


def _same(a: dict, b: dict, where: str) -> None:
    assert a["status"] == b["status"] == "success", f"{where}: {a} vs {b}"
    da, db = a["data"], b["data"]
    assert da["resultType"] == db["resultType"], where

    def table(data: dict) -> dict:
        key = "values" if data["resultType"] == "matrix" else "value"
        if data["resultType"] == "scalar":
            return {(): [data["result"]]}
        return {tuple(sorted(r["metric"].items())): (r[key] if key == "values" else [r[key]]) for r in data["result"]}

    ta, tb = table(da), table(db)
    assert ta.keys() == tb.keys(), f"{where}: series differ {sorted(ta)} vs {sorted(tb)}"
    for k in ta:
        pa, pb = ta[k], tb[k]
        assert [p[0] for p in pa] == [p[0] for p in pb], f"{where} {k}: timestamps differ"
        for (t, va), (_, vb) in zip(pa, pb, strict=True):
            fa, fb = float(va), float(vb)
            ok = (math.isnan(fa) and math.isnan(fb)) or math.isclose(fa, fb, rel_tol=REL, abs_tol=ABS)
            assert ok, f"{where} {k} at {t}: builtin {va} vs real {vb}"


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
async def test_builtin_equals_real_prometheus(real: int, scenario_id: str) -> None:
    sandbox = Sandbox()
    sandbox.load([SCENARIOS])
    world = await sandbox.activate(scenario_id)
    app = build_apps(sandbox)["prometheus"]
    now = world.now.timestamp()
    queries = _queries(scenario_id)
    assert queries
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://builtin") as builtin, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{real + 2}", timeout=10) as prom:
        r = await prom.post(f"http://127.0.0.1:{real}/sandbox/scenarios/activate", json={"id": scenario_id})
        assert r.status_code == 200
        calls: list[tuple[str, dict[str, str], str]] = []
        for i, query in enumerate(queries):
            for offset in (0, -1500, -5 * 3600):
                params = {"query": query} if offset == 0 else {"query": query, "time": str(now + offset)}
                calls.append(("/api/v1/query", params, f"{query} @{offset}"))
            ranges = ((now - 3600, "60"), (now - 6 * 3600, "300")) if i < 2 else ((now - 3600, "60"),)
            for start, step in ranges:
                params = {"query": query, "start": str(start), "end": str(now), "step": step}
                calls.append(("/api/v1/query_range", params, f"range {query} from {start} step {step}"))
        expected = await asyncio.gather(*(prom.get(path, params=params) for path, params, _ in calls))
        for (path, params, where), b in zip(calls, expected, strict=True):
            a = await builtin.get(path, params=params)
            _same(a.json(), b.json(), where)


async def test_the_real_prometheus_answers_metadata_and_targets_itself(real: int) -> None:
    """The sandbox passes these through to the real Prometheus; backfilled blocks carry no scrape metadata and no
    targets, so its metadata is empty (the builtin evaluator reports each series' type) and its targets equal the
    builtin's."""
    scenario_id = SCENARIO_IDS[0]
    sandbox = Sandbox()
    sandbox.load([SCENARIOS])
    await sandbox.activate(scenario_id)
    app = build_apps(sandbox)["prometheus"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://builtin") as builtin, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{real + 2}", timeout=10) as prom:
        r = await prom.post(f"http://127.0.0.1:{real}/sandbox/scenarios/activate", json={"id": scenario_id})
        assert r.status_code == 200
        targets = (await prom.get("/api/v1/targets")).json()
        assert targets == (await builtin.get("/api/v1/targets")).json()
        metadata = await prom.get("/api/v1/metadata")
        assert metadata.status_code == 200 and metadata.json() == {"status": "success", "data": {}}
        built = (await builtin.get("/api/v1/metadata")).json()["data"]
        assert built == {s.labels["__name__"]: [{"type": s.type, "help": "", "unit": ""}]
                         for s in SCENARIOS_LOADED[scenario_id].prometheus.series}
        real_version = (await prom.get("/api/v1/status/buildinfo")).json()["data"]["version"]
        builtin_version = (await builtin.get("/api/v1/status/buildinfo")).json()["data"]["version"]
        assert real_version.split("+")[0] == builtin_version
