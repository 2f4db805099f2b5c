"""Reading Kubernetes manifests generically: pod templates of any workload kind, containers, quantities,
what a workload requests in all, and the labels of the namespaces a report touches.

Every helper takes the plain JSON a DriftReport carries (target = Git, live = cluster) and never
assumes a specific object name, so that a StatefulSet, a CronJob or a bare Pod read the same way.
The drift agent's rules and every specialist read manifests through this one module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from protocol.models import DriftReport, ResourceDrift

__all__ = [
    "CONTAINER_LISTS", "WORKLOAD_KINDS", "container_map", "containers", "dig", "images", "namespace_labels",
    "namespace_of", "pod_spec", "pod_spec_pointer", "quantity", "registry", "replicas", "requests",
    "total_requests", "workload_of",
]

WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob",
     "Pod", "Rollout", "DeploymentConfig"}
)
"""Kinds that run pods; their name is the workload name (= the Prometheus `service` and PagerDuty service)."""

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9,
    "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}


def quantity(value: Any) -> float | None:
    """A Kubernetes resource quantity ("250m", "1Gi", 2) as a float; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip())
    if m is None or m.group(2) not in _SUFFIX:
        return None
    try:
        return float(m.group(1)) * _SUFFIX[m.group(2)]
    except ValueError:
        return None


def dig(obj: Any, *keys: str | int) -> Any:
    """obj[k1][k2]... or None when any step is missing or of the wrong shape."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(obj, list) or key >= len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[key] if isinstance(key, int) else obj.get(key)
    return obj


def pod_spec(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pod spec inside any workload: spec (Pod), spec.template.spec, spec.jobTemplate.spec.template.spec."""
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    for candidate in (
        spec,
        dig(spec, "template", "spec"),
        dig(spec, "jobTemplate", "spec", "template", "spec"),
        dig(spec, "jobTargetRef", "template", "spec"),
    ):
        if isinstance(candidate, dict) and isinstance(candidate.get("containers"), list):
            return candidate
    return None


def pod_spec_pointer(obj: dict[str, Any] | None) -> str:
    """JSON Pointer of the pod spec in `obj` (for citing exact fields)."""
    if not isinstance(obj, dict):
        return ""
    spec = obj.get("spec")
    if isinstance(dig(spec, "jobTemplate", "spec", "template", "spec", "containers"), list):
        return "/spec/jobTemplate/spec/template/spec"
    if isinstance(dig(spec, "template", "spec", "containers"), list):
        return "/spec/template/spec"
    if isinstance(dig(spec, "jobTargetRef", "template", "spec", "containers"), list):
        return "/spec/jobTargetRef/template/spec"
    return "/spec"


CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def containers(spec: dict[str, Any] | None) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(list name, index, container) for every container of a pod spec."""
    if not isinstance(spec, dict):
        return
    for list_name in CONTAINER_LISTS:
        items = spec.get(list_name)
        if isinstance(items, list):
            for i, c in enumerate(items):
                if isinstance(c, dict):
                    yield list_name, i, c


def container_map(spec: dict[str, Any] | None) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    """Containers keyed by (list, name) so that target and live are compared container by container."""
    out: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for list_name, i, c in containers(spec):
        out[(list_name, str(c.get("name", i)))] = (i, c)
    return out


def images(obj: dict[str, Any] | None) -> list[str]:
    return [str(c["image"]) for _, _, c in containers(pod_spec(obj)) if isinstance(c.get("image"), str)]


def registry(image: str) -> str:
    """The registry host of an image reference (Docker's rules: no dot/colon/localhost -> docker.io)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def replicas(obj: dict[str, Any] | None) -> int | None:
    value = dig(obj, "spec", "replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


SCALER_TARGET_POINTERS = (("spec", "scaleTargetRef"), ("spec", "targetRef"))
"""Where an autoscaler names the workload it scales: HPA and KEDA ScaledObject (scaleTargetRef), VPA (targetRef)."""


def workload_of(kind: str, name: str, target: dict[str, Any] | None, live: dict[str, Any] | None
                ) -> tuple[str, str] | None:
    """(kind, name) of the workload whose pods a drifted resource runs or scales; None when it names none.

    A workload is itself; an autoscaler stands for the workload it scales, so that its bounds are
    judged against that workload's traffic and incidents (the metrics and PagerDuty name the workload).
    """
    if kind in WORKLOAD_KINDS:
        return kind, name
    for obj in (live, target):
        for pointer in SCALER_TARGET_POINTERS:
            ref = dig(obj, *pointer)
            if isinstance(ref, dict) and isinstance(ref.get("name"), str) and ref["name"]:
                return str(ref.get("kind") or "Deployment"), ref["name"]
    return None


def requests(obj: dict[str, Any] | None) -> dict[str, float]:
    """What one pod of a workload requests, per resource name ("cpu" in cores, "memory" in bytes, ...).

    The sum over the pod's `containers` (init and ephemeral containers do not run beside them); a
    quantity that does not parse is left out rather than guessed.
    """
    total: dict[str, float] = {}
    for list_name, _, c in containers(pod_spec(obj)):
        if list_name != "containers":
            continue
        wanted = dig(c, "resources", "requests")
        if not isinstance(wanted, dict):
            continue
        for resource, value in wanted.items():
            q = quantity(value)
            if q is not None:
                total[str(resource)] = total.get(str(resource), 0.0) + q
    return total


def total_requests(obj: dict[str, Any] | None) -> dict[str, float]:
    """requests(obj) x spec.replicas: what the whole workload asks the cluster for.

    A workload without `spec.replicas` (a DaemonSet, a Job, a bare Pod) counts as one pod, as
    Kubernetes defaults a Deployment's replicas to 1.
    """
    count = replicas(obj)
    n = 1 if count is None else count
    return {resource: q * n for resource, q in requests(obj).items()}


def namespace_of(report: DriftReport, drift: ResourceDrift) -> str:
    """The namespace a drifted resource lives in: its own, else the application's destination ("" for none)."""
    return drift.ref.namespace or report.destination_namespace


def namespace_labels(report: DriftReport, namespace: str) -> dict[str, str] | None:
    """The labels of `namespace` as the report carries them; None when the report does not know that namespace
    (unknown is not "unlabelled": a caller deciding on a label must say it could not read it)."""
    labels = report.namespace_labels.get(namespace)
    return None if labels is None else dict(labels)
