"""The sandbox: scenario files served through the real HTTP APIs of Argo CD, Kubernetes, Prometheus,
Grafana and PagerDuty on loopback (ports base..base+4), plus sandbox-only endpoints under /sandbox/.

Modules: scenario (file format), world (served state), changes (its change feed, for watches), clone, series
(samples), diffing (Argo CD comparison and Secret masking), one module per backend API, with kube_openapi
(published schemas), kube_table (server-side printing), crds and argocd_tree (resource tree, events,
clusters) beside theirs, prometheus_builtin (PromQL evaluator), prometheus_real (a real Prometheus fed by
promtool backfill), control (/sandbox/...), calls (what each backend answered), faults, app (serving), runner
(the process). Each backend answers a path it does not serve in its own API's error shape.
"""

from driftwise.sandbox.errors import SandboxError, ScenarioError
from driftwise.sandbox.scenario import Scenario, load_paths
from driftwise.sandbox.state import Sandbox

__all__ = ["Sandbox", "SandboxError", "Scenario", "ScenarioError", "load_paths"]
