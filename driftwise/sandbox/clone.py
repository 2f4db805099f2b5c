"""Clone a scenario under another application name and other namespaces, so clones never share data.

Every identifier a backend is queried by (application, namespaces, cluster-scoped object names,
PagerDuty service ids and names, incident ids, metric `service` labels) is renamed consistently in
every string of the scenario, as a whole token, so links between objects survive the rename.
"""

from __future__ import annotations

import re
from typing import Any

from driftwise.sandbox.crds import is_crd
from driftwise.sandbox.kinds import is_namespaced, split_api_version
from driftwise.sandbox.scenario import Scenario

_SKIP_KEYS = {"apiVersion", "kind", "expect"}


def clone_suffix(index: int) -> str:
    return f"-c{index:04d}"


def _tokens(s: Scenario) -> set[str]:
    names = {s.application}
    app = s.argocd.application
    dest = ((app.get("spec") or {}).get("destination") or {}).get("namespace")
    if dest:
        names.add(dest)
    for r in s.argocd.resources:
        if r.namespace:
            names.add(r.namespace)
        for obj in (r.target, r.live):
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                names.add(ns)
    for obj in s.kubernetes.objects:
        meta = obj.get("metadata") or {}
        if meta.get("namespace"):
            names.add(meta["namespace"])
        group, _ = split_api_version(obj["apiVersion"])
        # a CRD's name is its kind's (<plural>.<group>): part of the API every clone shares, never renamed
        if not is_namespaced(group, obj["kind"], bool(meta.get("namespace"))) and not is_crd(obj):
            names.add(meta["name"])
    for series in s.prometheus.series:
        for key in ("namespace", "service"):
            if series.labels.get(key):
                names.add(series.labels[key])
    for svc in s.pagerduty.services:
        names.update(str(svc[k]) for k in ("id", "name") if svc.get(k))
    for inc in s.pagerduty.incidents:
        if inc.get("id"):
            names.add(str(inc["id"]))
    return {n for n in names if n}


def _rename_fn(tokens: set[str], suffix: str, ids: set[str]) -> Any:
    ordered = sorted(tokens, key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z0-9_-])(" + "|".join(map(re.escape, ordered)) + r")(?![A-Za-z0-9_])")
    id_suffix = suffix.replace("-", "").upper()

    def sub(m: re.Match[str]) -> str:
        token = m.group(1)
        return token + (id_suffix if token in ids else suffix)

    def rename(value: Any, key: str | None = None) -> Any:
        if key in _SKIP_KEYS:
            return value
        if isinstance(value, str):
            return pattern.sub(sub, value)
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return {k: rename(v, k) for k, v in value.items()}
        return value

    return rename


def clone_scenario(s: Scenario, index: int) -> Scenario:
    """The scenario under suffix -cNNNN: distinct app, namespaces, services, incidents, annotations."""
    suffix = clone_suffix(index)
    ids = {str(x["id"]) for x in s.pagerduty.services + s.pagerduty.incidents if x.get("id")}
    rename = _rename_fn(_tokens(s), suffix, ids)
    data = s.model_dump(mode="json")
    expect = data.pop("expect", None)
    data = rename(data)
    data["id"] = s.id + suffix
    data["expect"] = expect
    project = s.argocd.project["metadata"]["name"]
    data["argocd"]["project"]["metadata"]["name"] = project + suffix
    data["argocd"]["application"].setdefault("spec", {})["project"] = project + suffix
    data["notification"]["project"] = project + suffix
    for ann in data["grafana"]["annotations"]:
        if isinstance(ann.get("id"), int):
            ann["id"] = ann["id"] + index * 1_000_000
    # The application's own namespace (where Argo CD keeps Applications) is not the workload's.
    app_ns = (s.argocd.application.get("metadata") or {}).get("namespace")
    if app_ns:
        data["argocd"]["application"]["metadata"]["namespace"] = app_ns
        data["argocd"]["project"]["metadata"]["namespace"] = app_ns
    if "appNamespace" in s.notification:
        data["notification"]["appNamespace"] = s.notification["appNamespace"]
    return Scenario.model_validate(data)
