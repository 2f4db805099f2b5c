"""Test helper: a DriftReport from a scenario file's argocd.resources (target vs live), like the drift agent makes.

The changes and redaction are the drift agent's own (agents/kit/diff.py), so the specialists are
tested on the shapes they get in production; only the Argo CD and Kubernetes reads are skipped.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml

from agents.kit.diff import clean, is_secret, resource_changes
from protocol.models import DriftReport, ResourceDrift, ResourceRef, SyncWindow


def report_for(path: Path, event_id: str = "evt-1") -> DriftReport:
    scenario = yaml.safe_load(path.read_text())
    app = scenario["argocd"]["application"]
    project = scenario["argocd"]["project"]
    drifts = []
    for res in scenario["argocd"]["resources"]:
        secret = is_secret(res.get("group", ""), res["kind"])
        drifts.append(ResourceDrift(
            ref=ResourceRef(group=res.get("group", ""), version=res.get("version", "v1"), kind=res["kind"],
                            namespace=res.get("namespace"), name=res["name"]),
            changes=resource_changes(res["target"], res["live"], secret=secret),
            target=clean(res["target"], secret=secret), live=clean(res["live"], secret=secret),
        ))
    labels = {
        o["metadata"]["name"]: o["metadata"].get("labels", {})
        for o in (scenario.get("kubernetes") or {}).get("objects", []) if o["kind"] == "Namespace"
    }
    return DriftReport(
        event_id=event_id, application=app["metadata"]["name"], project=app["spec"]["project"],
        repo_url=app["spec"]["source"]["repoURL"], destination_server=app["spec"]["destination"]["server"],
        destination_namespace=app["spec"]["destination"]["namespace"],
        sync_windows=[SyncWindow.model_validate(w) for w in project["spec"].get("syncWindows", [])],
        namespace_labels=labels, drifts=drifts,
        observed_at=datetime.fromisoformat(scenario["now"].replace("Z", "+00:00")),
    )
