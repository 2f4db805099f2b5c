"""The sandbox: scenario files served through the real HTTP APIs of Argo CD, Kubernetes, Prometheus,
Grafana and PagerDuty on loopback (ports base..base+4), plus sandbox-only endpoints under /sandbox/.

Modules: scenario (file format), world (served state), clone, series (samples), diffing (Argo CD
comparison and Secret masking), one module per backend API, prometheus_builtin (PromQL evaluator),
prometheus_real (a real Prometheus fed by promtool backfill), control (/sandbox/...), app (serving),
runner (the process).
"""

from driftwise.sandbox.errors import SandboxError, ScenarioError
from driftwise.sandbox.scenario import Scenario, load_paths
from driftwise.sandbox.state import Sandbox

__all__ = ["Sandbox", "SandboxError", "Scenario", "ScenarioError", "load_paths"]
