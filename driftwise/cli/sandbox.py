"""`driftwise sandbox`: serve scenario files through the real APIs of the five backends."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from driftwise.cli import ConfigOption, fail, serve_forever, settings_or_exit, setup_logging


def register(app: typer.Typer) -> None:
    @app.command()
    def sandbox(
        paths: list[Path] = typer.Argument(..., help="scenario files or folders"),
        host: str = typer.Option("127.0.0.1", help="address to listen on"),
        port: int = typer.Option(None, help="base port: Argo CD; +1 Kubernetes, +2 Prometheus, +3 Grafana, "
                                            "+4 PagerDuty (default 8680)"),
        prometheus: str = typer.Option("auto", help="auto | real | builtin: auto uses /usr/bin/prometheus "
                                                    "when installed"),
        activate: str = typer.Option(None, help="scenario id to serve at start (default: the first loaded)"),
        prometheus_binary: str = typer.Option("prometheus", help="real Prometheus executable"),
        promtool_binary: str = typer.Option("promtool", help="promtool executable (backfills the TSDB)"),
        data_dir: Path = typer.Option(None, help="real Prometheus data cache (default <state_dir>/sandbox-prometheus)"),
        argocd_token: str = typer.Option(None, help="bearer token the Argo CD API accepts"),
        kube_token: str = typer.Option(None, help="bearer token the Kubernetes API accepts"),
        grafana_token: str = typer.Option(None, help="bearer token the Grafana API accepts"),
        pagerduty_token: str = typer.Option(None, help="PagerDuty API token (Token token=...)"),
        kube_anonymous: bool = typer.Option(True, help="Kubernetes API: serve reads to requests without "
                                                       "credentials (kubectl sends no token over http)"),
        config: Path = ConfigOption,
    ) -> None:
        """Serve scenario worlds as Argo CD, Kubernetes, Prometheus, Grafana and PagerDuty APIs on loopback."""
        from driftwise.sandbox.errors import SandboxError
        from driftwise.sandbox.runner import SandboxConfig, run
        from driftwise.settings import SANDBOX_PORT

        settings = settings_or_exit(config)
        setup_logging(settings.log_level, "sandbox")
        if prometheus not in ("auto", "real", "builtin"):
            fail(f"--prometheus {prometheus!r} is not one of auto, real, builtin")
        mode = prometheus
        if mode == "auto":
            mode = "real" if shutil.which(prometheus_binary) and shutil.which(promtool_binary) else "builtin"
        if mode == "real" and not (shutil.which(prometheus_binary) and shutil.which(promtool_binary)):
            fail(f"--prometheus real needs {prometheus_binary} and {promtool_binary} on PATH "
                 "(apt-get install prometheus) or use --prometheus builtin")

        def secret(value: str | None, configured: object, default: str) -> str:
            if value:
                return value
            return configured.get_secret_value() if configured is not None else default  # type: ignore[attr-defined]

        cfg = SandboxConfig(
            paths=paths, host=host, port=port or SANDBOX_PORT, prometheus=mode, activate=activate,
            prometheus_binary=shutil.which(prometheus_binary) or prometheus_binary,
            promtool_binary=shutil.which(promtool_binary) or promtool_binary,
            data_dir=data_dir or settings.state_dir / "sandbox-prometheus",
            argocd_token=secret(argocd_token, settings.argocd.token, "sandbox-argocd-token"),
            kube_token=secret(kube_token, settings.kubernetes.token, "sandbox-kube-token"),
            grafana_token=secret(grafana_token, settings.grafana.token, "sandbox-grafana-token"),
            pagerduty_token=secret(pagerduty_token, settings.pagerduty.token, "sandbox-pagerduty-token"),
            log_level=settings.log_level, kube_anonymous=kube_anonymous,
        )
        try:
            serve_forever(run(cfg))
        except SandboxError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            pass
