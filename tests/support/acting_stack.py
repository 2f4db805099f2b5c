"""The acting tests' stack of processes: MCP servers, specialists, an OTLP/HTTP stand-in, and drift agents
started per test in a given mode (tests/acting, and tests/drift's re-read end to end)."""

from __future__ import annotations

import shutil
import statistics
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.e2e import APPROVALS, WEBHOOK_TOKEN, DriftProc, SandboxProc, make_keys, settings_doc, write_yaml
from tests.support.processes import Proc, driftwise, free_port, http_ok, wait_until

AUTH = {"Authorization": f"Bearer {APPROVALS}"}


class OtlpCollector:
    """An OTLP/HTTP traces receiver stand-in: decodes each export into (trace id, service, span name, ...)."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                found = []
                for rs in request.resource_spans:
                    service = next((a.value.string_value for a in rs.resource.attributes
                                    if a.key == "service.name"), "")
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            attrs = {a.key: a.value.string_value for a in s.attributes}
                            found.append({"trace": s.trace_id.hex(), "span": s.span_id.hex(),
                                          "parent": s.parent_span_id.hex(), "service": service, "name": s.name,
                                          "attrs": attrs})
                with collector.lock:
                    collector.spans.extend(found)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # shutdown() only stops serving: the listening socket stays open

    def trace_of(self, event_id: str) -> list[dict]:
        with self.lock:
            ids = {s["trace"] for s in self.spans if s["attrs"].get("driftwise.event_id") == event_id
                   and s["name"] == "drift.decision"}
            return [s for s in self.spans if s["trace"] in ids]


class Stack:
    def __init__(self, sandbox: SandboxProc, root: Path, mcp_ports: dict, spec_ports: dict, collector: OtlpCollector,
                 exit_stack: ExitStack) -> None:
        self.sandbox = sandbox
        self.root = root
        self.mcp_ports = mcp_ports
        self.spec_ports = spec_ports
        self.collector = collector
        self._exit = exit_stack
        self.latencies: list[float] = []
        """webhook -> final of the single decisions the tests waited for, printed at the end."""

    def config(self, name: str, mode: str, *, linked: bool = False, **drift: object) -> tuple[Path, int]:
        """`linked`: its console.public_url is its own address, so Argo CD's annotation links its console."""
        port = free_port()
        if _scheduler_setting_exists():
            drift = {"scheduler_interval_s": 0.2, **drift}
        console = {"console": {"public_url": f"http://127.0.0.1:{port}"}} if linked else {}
        doc = settings_doc(self.root / name, self.sandbox.base, self.mcp_ports, self.spec_ports, port,
                        drift={"mode": mode, **drift},
                        telemetry={"otlp_endpoint": self.collector.url}, **console)
        if not (self.root / name / "keys").exists():
            shutil.copytree(self.root / "main" / "keys", self.root / name / "keys")
        return write_yaml(self.root / f"{name}.yaml", doc), port

    def drift(self, name: str, mode: str, *, linked: bool = False, **drift: object) -> DriftProc:
        path, port = self.config(name, mode, linked=linked, **drift)
        return self.start_drift(name, path, port)

    def start_drift(self, name: str, path: Path, port: int) -> DriftProc:
        proc = self._exit.enter_context(driftwise("agent", "drift", "--port", str(port), "--config", str(path),
                                                  name=f"drift-{name}", env=OTEL_ENV,
                                                  ready_url=f"http://127.0.0.1:{port}/healthz", timeout=60))
        return DriftProc(proc, port, self.root / name)


OTEL_ENV = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


def _scheduler_setting_exists() -> bool:
    from driftwise.settings import DriftAgentSettings

    return "scheduler_interval_s" in DriftAgentSettings.model_fields


@contextmanager
def start_stack(sandbox: SandboxProc, root: Path) -> Iterator[Stack]:
    """Keys, an OTLP stand-in, the four MCP servers and both specialists; drift agents are started per test."""
    make_keys(root / "main" / "keys")
    collector = OtlpCollector()
    mcp_ports = {n: free_port() for n in ("prometheus", "grafana", "pagerduty", "kubernetes")}
    spec_ports = {n: free_port() for n in ("security", "compliance")}
    main = write_yaml(root / "main.yaml", settings_doc(root / "main", sandbox.base, mcp_ports, spec_ports, free_port(),
                                                telemetry={"otlp_endpoint": collector.url}))
    with ExitStack() as exit_stack:
        exit_stack.callback(collector.close)
        started: list[tuple[Proc, str]] = []
        for name, port in mcp_ports.items():
            started.append((exit_stack.enter_context(driftwise(
                "mcp", name, "--transport", "http", "--port", str(port), "--config", str(main),
                name=f"mcp-{name}", env=OTEL_ENV)), f"http://127.0.0.1:{port}/mcp"))
        for name, port in spec_ports.items():
            started.append((exit_stack.enter_context(driftwise(
                "agent", name, "--port", str(port), "--config", str(main), name=name, env=OTEL_ENV)),
                f"http://127.0.0.1:{port}/healthz"))
        for proc, ready in started:
            wait_until(http_ok(ready), 60, f"{proc.name} ready", proc)
        running = Stack(sandbox, root, mcp_ports, spec_ports, collector, exit_stack)
        yield running
        if running.latencies:
            print(f"\nwebhook->final over {len(running.latencies)} single decisions: "
                  f"p50 {statistics.median(running.latencies):.0f} ms, max {max(running.latencies):.0f} ms")


def post(drift: DriftProc, notification: dict) -> str:
    r = httpx.post(f"{drift.url}/v1/webhooks/argocd", json=notification,
                   headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["event_id"]
