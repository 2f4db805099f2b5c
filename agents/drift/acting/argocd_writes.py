"""The only Argo CD write calls Driftwise makes: a sync (never pruning) and an Application merge patch.

Each sync carries `infos: [{name: driftwise-event, value: <event id>}]` so that, after a crash, the
outbox can ask Argo CD whether the sync for an event already happened (the operation keeps infos).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from agents.drift.acting.errors import ApplyError, NoAnswer
from protocol.models import ResourceRef

EVENT_INFO = "driftwise-event"


def sync_body(app: str, app_namespace: str, resources: list[ResourceRef], *, dry_run: bool, event_id: str) -> dict:
    """An ApplicationSyncRequest for exactly these resources; prune is always false."""
    return {
        "name": app,
        "appNamespace": app_namespace,
        "prune": False,
        "dryRun": dry_run,
        "resources": [
            {"group": r.group, "kind": r.kind, "name": r.name, "namespace": r.namespace or ""} for r in resources
        ],
        "infos": [{"name": EVENT_INFO, "value": event_id}],
        "syncOptions": {"items": ["RespectIgnoreDifferences=true"]},
    }


class ArgoCDWriter:
    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str | None, timeout_s: float) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout_s

    async def _send(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base}{path}"
        try:
            resp = await self._http.request(method, url, json=body, headers=self._headers, timeout=self._timeout)
        except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
            # sent (at least in part) and unanswered: Argo CD may carry it out, so the caller reconciles it
            raise NoAnswer("argocd_no_answer", f"Argo CD {method} {path}: no answer within {self._timeout}s: "
                           f"{type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise ApplyError("argocd_unreachable", f"Argo CD {method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message") or resp.text
            except ValueError:
                message = resp.text
            raise ApplyError("argocd_refused", f"Argo CD {method} {path}: HTTP {resp.status_code}: {message[:300]}")
        try:
            data = resp.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def sync(
        self, app: str, app_namespace: str, resources: list[ResourceRef], *, dry_run: bool, event_id: str
    ) -> dict[str, Any]:
        body = sync_body(app, app_namespace, resources, dry_run=dry_run, event_id=event_id)
        return await self._send("POST", f"/api/v1/applications/{app}/sync", body)

    async def merge_patch(self, app: str, app_namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        body = {"name": app, "appNamespace": app_namespace, "patch": json.dumps(patch), "patchType": "merge"}
        return await self._send("PATCH", f"/api/v1/applications/{app}", body)


def synced_for_event(application: dict[str, Any], event_id: str) -> bool:
    """Whether the Application's last operation was a (non-dry-run) sync Driftwise made for this event."""
    operation = ((application.get("status") or {}).get("operationState") or {}).get("operation") or {}
    sync = operation.get("sync") or {}
    infos = operation.get("info") or []  # Argo CD keeps the sync request's `infos` here
    dry_run = bool(sync.get("dryRun"))
    return not dry_run and any(
        isinstance(i, dict) and i.get("name") == EVENT_INFO and i.get("value") == event_id for i in infos
    )
