"""Assemble the five backend apps and serve them, one uvicorn server per port, in one event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from driftwise.sandbox import argocd, control, grafana, kubernetes, pagerduty, people, prometheus
from driftwise.sandbox.calls import CallLogMiddleware
from driftwise.sandbox.faults import FaultMiddleware
from driftwise.sandbox.prometheus import BuiltinBackend, PrometheusBackend
from driftwise.sandbox.state import Sandbox

log = logging.getLogger(__name__)

PORT_OFFSETS = {"argocd": 0, "kubernetes": 1, "prometheus": 2, "grafana": 3, "pagerduty": 4}


def _missing(status: int) -> str:
    return "Not Found" if status == 404 else "Method Not Allowed"


# What each real API answers for a path or method it does not serve: its own error body.
_NO_ROUTE: dict[str, Callable[[int, str], Response]] = {
    "kubernetes": lambda status, what: kubernetes.status_error(
        status, "the server could not find the requested resource" if status == 404 else
        f"the server does not allow this method on the requested resource ({what})"),
    "argocd": lambda status, what: argocd.argo_error(status, _missing(status)),
    "grafana": lambda status, what: grafana.grafana_error(status, _missing(status)),
    "pagerduty": lambda status, what: pagerduty.pd_error(status, 2100, _missing(status), [what]),
    # Prometheus's router answers in Go's plain text
    "prometheus": lambda status, what: Response("404 page not found\n" if status == 404 else
                                                "Method Not Allowed\n", status_code=status,
                                                media_type="text/plain; charset=utf-8"),
}


def _error_handler(backend: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _NO_ROUTE[backend](status, f"no route {request.method} {request.url.path}")

    return handle


def build_apps(sandbox: Sandbox, prom: PrometheusBackend | None = None) -> dict[str, Starlette]:
    prom = prom or BuiltinBackend()
    routes = {
        "argocd": control.routes(sandbox) + people.routes(sandbox) + argocd.routes(sandbox),
        "kubernetes": kubernetes.routes(sandbox),
        "prometheus": prometheus.routes(sandbox, prom),
        "grafana": grafana.routes(sandbox),
        "pagerduty": pagerduty.routes(sandbox),
    }
    # every backend answers through the faults a test put in force (POST /sandbox/faults); the call log
    # sees what the client saw, faults included
    return {
        name: Starlette(routes=table, exception_handlers={404: _error_handler(name), 405: _error_handler(name)},
                        middleware=[Middleware(CallLogMiddleware, log=sandbox.calls, backend=name),
                                    Middleware(FaultMiddleware, sandbox=sandbox, backend=name)])
        for name, table in routes.items()
    }


@dataclass
class Served:
    servers: list[uvicorn.Server]
    tasks: list[asyncio.Task[None]]

    async def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def serve(apps: dict[str, Starlette], host: str, base_port: int, log_level: str = "warning",
                on_started: Callable[[], Awaitable[None]] | None = None) -> Served:
    """Start every app on its port; returns once all listen (raises if one cannot bind)."""
    servers, tasks = [], []
    for name, app in apps.items():
        config = uvicorn.Config(app, host=host, port=base_port + PORT_OFFSETS[name], log_level=log_level,
                                access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve(), name=f"sandbox-{name}"))
    served = Served(servers, tasks)
    while not all(s.started for s in servers):
        done = [t for t in tasks if t.done()]
        if done:
            await served.stop()
            raise OSError(f"a sandbox backend could not start on {host} ports {base_port}-{base_port + 4} "
                          "(port in use? pass another --port)")
        await asyncio.sleep(0.01)
    gc.freeze()  # what start-up built lives for the whole process: keep it out of every full GC pass
    if on_started:
        await on_started()
    return served
