"""How Argo CD records a sync on the Application: `status.operationState` and a `status.history` entry.

Both name who started it (`initiatedBy.username`, `automated`), as argocd-server does for a sync
requested through its API; Driftwise's syncs and a person's (driftwise.sandbox.people) go through here.
"""

from __future__ import annotations

from typing import Any

from driftwise.sandbox.world import AppState

MAX_HISTORY = 10
"""Argo CD's default revisionHistoryLimit."""


def record_sync(app: AppState, username: str, request: dict[str, Any], at: str) -> None:
    status = app.application.setdefault("status", {})
    initiated = {"username": username, "automated": False}
    revision = (status.get("sync") or {}).get("revision", "")
    source = (app.application.get("spec") or {}).get("source") or {}
    status["operationState"] = {
        "phase": "Succeeded", "message": "successfully synced (all tasks run)",
        "startedAt": at, "finishedAt": at,
        # as Argo CD: the request's `infos` become the operation's `info`, beside the sync itself
        "operation": {"sync": {k: v for k, v in request.items() if k not in ("name", "appNamespace", "infos")},
                      "info": request.get("infos") or [], "initiatedBy": initiated},
        "syncResult": {"revision": revision, "source": source},
    }
    history = status.setdefault("history", [])
    history.append({"id": (history[-1].get("id", 0) + 1) if history else 0, "revision": revision,
                    "deployStartedAt": at, "deployedAt": at, "source": source, "initiatedBy": initiated})
    del history[:-MAX_HISTORY]
