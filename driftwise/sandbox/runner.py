"""Run the sandbox as a process: load scenarios, start the backends, serve until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from driftwise.sandbox.app import build_apps, serve
from driftwise.sandbox.errors import SandboxError
from driftwise.sandbox.prometheus import BuiltinBackend, PrometheusBackend
from driftwise.sandbox.state import Sandbox, Tokens

log = logging.getLogger(__name__)


@dataclass
class SandboxConfig:
    paths: list[Path]
    host: str = "127.0.0.1"
    port: int = 8680
    prometheus: Literal["real", "builtin"] = "builtin"
    activate: str | None = None
    prometheus_binary: str = "prometheus"
    promtool_binary: str = "promtool"
    data_dir: Path = Path(".driftwise/sandbox-prometheus")
    argocd_token: str = "sandbox-argocd-token"
    kube_token: str = "sandbox-kube-token"
    grafana_token: str = "sandbox-grafana-token"
    pagerduty_token: str = "sandbox-pagerduty-token"
    log_level: str = "info"
    kube_anonymous: bool = True


async def run(cfg: SandboxConfig) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sandbox = Sandbox(tokens=Tokens(cfg.argocd_token, cfg.kube_token, cfg.grafana_token, cfg.pagerduty_token,
                                    cfg.kube_anonymous))
    loaded = sandbox.load(cfg.paths)
    if not loaded:
        raise SandboxError(f"no scenario files found in {', '.join(map(str, cfg.paths))}")
    prom: PrometheusBackend
    real = None
    if cfg.prometheus == "real":
        from driftwise.sandbox.prometheus_real import RealPrometheus

        real = RealPrometheus(cfg.prometheus_binary, cfg.promtool_binary, cfg.data_dir, cfg.host)
        sandbox.listeners.append(real.switch)
        prom = real
    else:
        prom = BuiltinBackend()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        first = cfg.activate or loaded[0].id
        await sandbox.activate(first)
        if real is not None:
            real.prepare_in_background(list(sandbox.scenarios.values()))
        served = await serve(build_apps(sandbox, prom), cfg.host, cfg.port, log_level="warning")
        log.info("sandbox serving %d scenarios (active %s) on %s:%d-%d, prometheus %s", len(sandbox.scenarios),
                 sandbox.active, cfg.host, cfg.port, cfg.port + 4, cfg.prometheus)
        try:
            await stop.wait()
        finally:
            sandbox.close_streams()
            await served.stop()
    finally:
        if real is not None:
            await real.close()
