"""The policy's input document: verified recommendations plus the facts of the drift, as plain JSON.

Only facts go in, no free text: a recommendation's `reasoning` is left out (it may quote drifted
objects, which are data, and the policy must not read prose); the audit keeps it with the
signed recommendation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from protocol.models import DiscardedRecommendation, DriftReport, Recommendation
from protocol.syncwindows import in_freeze, sync_allowed


def recommendation_fact(rec: Recommendation) -> dict[str, Any]:
    return rec.model_dump(mode="json", exclude={"reasoning"})


def report_facts(report: DriftReport, now: datetime) -> dict[str, Any]:
    """What the policy may know about the drift: where, what kinds, which paths, and the windows now."""
    namespaces = sorted({d.ref.namespace for d in report.drifts if d.ref.namespace}
                        | ({report.destination_namespace} if report.destination_namespace else set()))
    facts: dict[str, Any] = {
        "application": report.application,
        "app_namespace": report.app_namespace,
        "project": report.project,
        "destination_namespace": report.destination_namespace,
        "destination_server": report.destination_server,
        "namespaces": namespaces,
        "namespace_labels": {ns: report.namespace_labels.get(ns, {}) for ns in
                             sorted(set(namespaces) | set(report.namespace_labels))},
        "kinds": sorted({d.ref.kind for d in report.drifts}),
        "changed_paths": sorted({c.path for d in report.drifts for c in d.changes}),
        "resources": [
            {
                "group": d.ref.group,
                "kind": d.ref.kind,
                "namespace": d.ref.namespace,
                "name": d.ref.name,
                "paths": [c.path for c in d.changes],
                "redacted": any(c.redacted for c in d.changes),
                "changed_by": d.changed_by,
            }
            for d in report.drifts
        ],
        "sync_windows": len(report.sync_windows),
    }
    try:
        args = (report.sync_windows, now, report.application, report.destination_namespace,
                report.destination_server)
        facts["sync_allowed_now"] = sync_allowed(*args, manual=True)
        facts["freeze_active"] = in_freeze(*args)
    except (ValueError, KeyError) as exc:  # a malformed window: the policy denies (fail closed)
        facts["sync_allowed_now"] = False
        facts["freeze_active"] = True
        facts["windows_error"] = str(exc)
    return facts


def build_input(
    *,
    report: DriftReport,
    proposal: Recommendation | None,
    accepted: list[Recommendation],
    discarded: list[tuple[str, DiscardedRecommendation]],
    expected_specialists: list[str],
    missing_specialists: list[str],
    threshold: float,
    now: datetime,
    second_opinion: Recommendation | None,
) -> dict[str, Any]:
    return {
        "event_id": report.event_id,
        "now": now.isoformat(),
        "threshold": threshold,
        "proposal": recommendation_fact(proposal) if proposal is not None else None,
        "specialists": [recommendation_fact(r) for r in accepted],
        "discarded": [{"role": role, **d.model_dump(mode="json")} for role, d in discarded],
        "expected_specialists": list(expected_specialists),
        "missing_specialists": list(missing_specialists),
        "second_opinion": recommendation_fact(second_opinion) if second_opinion is not None else None,
        "facts": report_facts(report, now),
    }
