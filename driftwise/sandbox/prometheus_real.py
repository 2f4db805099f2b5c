"""A real Prometheus behind the sandbox's Prometheus port, fed the world's samples by backfilling.

Per world (a scenario, or a scenario and its clones) the samples are written as OpenMetrics and
turned into TSDB blocks with `promtool tsdb create-blocks-from openmetrics` BEFORE Prometheus
starts; the block folder is cached under the data root by a hash of the world's series, so going
back to a world costs a restart only. Prometheus listens on a private loopback port; the sandbox
proxies to it and stamps instant queries without `time` with the sandbox clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shutil
import signal
import time
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response

from driftwise.ports import free_port
from driftwise.sandbox.errors import PrometheusUnavailable
from driftwise.sandbox.prometheus_builtin import format_value
from driftwise.sandbox.scenario import Scenario
from driftwise.sandbox.world import World

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 30.0
_CONFIG = "global:\n  scrape_interval: 1h\n"


def _die_with_parent() -> None:
    """Linux: Prometheus gets SIGTERM if the sandbox dies without stopping it (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def world_key(world: World) -> str:
    digest = hashlib.sha256()
    for s in world.series:
        digest.update(json.dumps([sorted(s.labels.items()), s.kind, s.times_ms[-1], s.values[::40]]).encode())
        digest.update(json.dumps(s.values).encode())
    return digest.hexdigest()[:20]


def openmetrics(world: World) -> str:
    lines: list[str] = []
    for s in sorted(world.series, key=lambda x: (x.labels["__name__"], sorted(x.labels.items()))):
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()) if k != "__name__")
        head = f"{s.labels['__name__']}{{{labels}}}" if labels else s.labels["__name__"]
        lines.extend(f"{head} {format_value(v)} {t / 1000:.3f}" for t, v in zip(s.times_ms, s.values, strict=True))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class RealPrometheus:
    def __init__(self, prometheus: str, promtool: str, data_root: Path, host: str = "127.0.0.1") -> None:
        self.prometheus = prometheus
        self.promtool = promtool
        self.data_root = data_root
        self.host = host
        self._proc: asyncio.subprocess.Process | None = None
        self._port: int | None = None
        self._key: str | None = None
        self._world: World | None = None
        self._build_locks: dict[str, asyncio.Lock] = {}
        self._switch_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=30.0)
        self._background: asyncio.Task[None] | None = None
        self.last_switch_s: float = 0.0

    # --- data ---------------------------------------------------------------------------

    async def blocks_for(self, world: World) -> Path:
        """The cached TSDB folder holding this world's samples, built with promtool when missing."""
        key = world_key(world)
        folder = self.data_root / key
        lock = self._build_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (folder / ".complete").exists():
                return folder
            self.data_root.mkdir(parents=True, exist_ok=True)
            staging = self.data_root / f".{key}.building"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            if world.series:
                source = staging / "samples.om"
                await asyncio.to_thread(source.write_text, openmetrics(world))
                proc = await asyncio.create_subprocess_exec(
                    self.promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(staging / "data"),
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                out, _ = await proc.communicate()
                if proc.returncode != 0:
                    raise PrometheusUnavailable(f"promtool could not backfill {source}: "
                                                f"{out.decode(errors='replace')[-500:]}")
                source.unlink()
            else:
                (staging / "data").mkdir()
            (staging / "prometheus.yml").write_text(_CONFIG)
            (staging / ".complete").write_text(key)
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
            return folder

    def prepare_in_background(self, scenarios: list[Scenario]) -> None:
        """Backfill every loaded scenario's blocks ahead of time, so a later switch is only a restart."""

        async def prepare() -> None:
            for s in scenarios:
                try:
                    await self.blocks_for(await asyncio.to_thread(World.build, [s]))
                except PrometheusUnavailable as exc:
                    log.warning("preparing Prometheus data for %s failed: %s", s.id, exc)

        self._background = asyncio.create_task(prepare(), name="prometheus-prepare")

    # --- process ------------------------------------------------------------------------

    async def switch(self, world: World) -> None:
        """Serve `world`: restart Prometheus on its blocks (a no-op when it already serves them)."""
        async with self._switch_lock:
            start = time.perf_counter()
            key = world_key(world)
            if key == self._key and self._proc is not None and self._proc.returncode is None:
                self._world = world
                return
            folder = await self.blocks_for(world)
            await self._stop()
            self._port = free_port(self.host)
            log_file = (folder / "prometheus.log").open("ab")
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    self.prometheus, f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={self.host}:{self._port}",
                    "--storage.tsdb.retention.time=100y", "--log.level=warn",
                    stdout=log_file, stderr=log_file, preexec_fn=_die_with_parent)
            finally:
                log_file.close()
            await self._wait_ready(folder)
            self._key = key
            self._world = world
            self.last_switch_s = time.perf_counter() - start
            log.info("prometheus serving world %s on port %d (switch took %.2fs)", key, self._port,
                     self.last_switch_s)

    async def _wait_ready(self, folder: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        delay = 0.02
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.returncode is not None:
                tail = (folder / "prometheus.log").read_text(errors="replace")[-800:]
                raise PrometheusUnavailable(f"prometheus exited while starting: {tail}")
            with contextlib.suppress(httpx.HTTPError):
                r = await self._http.get(f"http://{self.host}:{self._port}/-/ready", timeout=1.0)
                if r.status_code == 200:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        raise PrometheusUnavailable(f"prometheus not ready after {READY_TIMEOUT_S}s (log: {folder}/prometheus.log)")

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._background
        await self._stop()
        await self._http.aclose()

    # --- proxy --------------------------------------------------------------------------

    async def handle(self, request: Request, world: World, now_s: float) -> Response:
        # hashing a world's series costs O(series): only when the world object is not the one served
        served = world is self._world or self._key == world_key(world)
        if self._proc is None or self._proc.returncode is not None or not served:
            return Response("prometheus is not serving the active world\n", status_code=503)
        params = list(request.query_params.multi_items())
        body = await request.body() if request.method == "POST" else None
        if request.url.path.endswith("/api/v1/query"):
            form_has_time = body is not None and b"time=" in body
            if not any(k == "time" for k, _ in params) and not form_has_time:
                params.append(("time", f"{now_s:.3f}"))
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        try:
            upstream = await self._http.request(
                request.method, f"http://{self.host}:{self._port}{request.url.path}", params=params,
                content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Response(f"prometheus is unreachable: {exc}\n", status_code=503)
        return Response(upstream.content, status_code=upstream.status_code,
                        media_type=upstream.headers.get("content-type"))
