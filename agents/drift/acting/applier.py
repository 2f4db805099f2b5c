"""Carrying out a verdict through the Argo CD API, per mode, exactly once.

shadow      record what would be done; never call a write endpoint.
advisory    every action waits for a human's approval, then is carried out.
autonomous  carried out at once unless the guardrail says a human must approve.

enforce  dry-run sync of exactly the drifted resources, then the sync (prune: false).
defer    the same, scheduled for the start of the project's next allow window.
allow    a narrow ignoreDifferences on exactly the drifted paths, removed at expiry; plus a Git back-port.
escalate an approval request (the graph interrupts and waits for a human).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agents.drift.acting.argocd_writes import ArgoCDWriter, synced_for_event
from agents.drift.acting.backport import backport_patch
from agents.drift.acting.errors import ApplyError, NoAnswer
from agents.drift.acting.ignore_differences import add_patch, entries_for, remove_patch, shows_allowance
from agents.drift.acting.store import DEFAULT_CLAIM_S, LOCAL_OWNER, ActingStore, Job
from protocol.models import Action, AppliedAction, DriftReport, ResourcePaths, ResourceRef, Scope, Verdict
from protocol.syncwindows import next_allow_start

log = logging.getLogger(__name__)

Mode = Literal["shadow", "advisory", "autonomous"]
STATUS_ANNOTATION = "driftwise.io/status"
LINK_ANNOTATION = "link.argocd.argoproj.io/driftwise"
"""Argo CD's UI shows every `link.argocd.argoproj.io/<name>` annotation as a link (`title|url`); a name of
our own leaves a team's `external-link` alone. Set and cleared with the status annotation."""
LINK_TITLE = "Driftwise decision"
# how often a sync whose answer never came is looked up in Argo CD, and for how long (DESIGN: the record is
# completed from Argo CD's own state; past the bound the outbox row stays `requested` for recover())
RECONCILE_POLL_S = 0.5
RECONCILE_S = 60.0
"""The default of drift.reconcile_s."""
GetApplication = Callable[[str, str], Awaitable[dict[str, Any]]]
"""Reads an Application as Argo CD returns it (name, app namespace) -> JSON object."""
DecisionUrl = Callable[[str], str | None]
"""The console page of an event's decision as people open it (ConsoleConfig.decision_url); None = no link."""


def rfc3339z(at: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as the driftwise.io/status contract (deploy/argocd/README.md) requires."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def needs_approval(mode: Mode, verdict: Verdict) -> bool:
    """Whether the graph must wait for a human before applying (shadow never waits: it never acts)."""
    if mode == "shadow":
        return False
    return mode == "advisory" or verdict.requires_approval or verdict.action == Action.ESCALATE


def drift_scope(report: DriftReport) -> Scope | None:
    """Every drifted path of every drifted resource: what an allow or defer covers by default."""
    resources = [ResourcePaths(ref=d.ref, paths=[c.path for c in d.changes]) for d in report.drifts if d.changes]
    return Scope(resources=resources) if resources else None


class Applier:
    def __init__(
        self, writer: ArgoCDWriter, get_application: GetApplication, store: ActingStore, allow_ttl: timedelta,
        reconcile_s: float = RECONCILE_S, decision_url: DecisionUrl | None = None, claimer: str = LOCAL_OWNER,
        claim_s: float = DEFAULT_CLAIM_S,
    ) -> None:
        self._reconcile_s = reconcile_s
        self._decision_url = decision_url
        self._claimer = claimer
        self._claim_s = claim_s
        self._writer = writer
        self._get_app = get_application
        self._store = store
        self._allow_ttl = allow_ttl

    # --- entry points -------------------------------------------------------------------------

    async def apply(
        self, *, mode: Mode, action: Action, report: DriftReport, verdict: Verdict, now: datetime,
        approved_by: str | None = None,
    ) -> tuple[list[AppliedAction], str | None]:
        """Carry out `action` (the verdict's, or the one an approver chose); returns what was done and a back-port."""
        resources = [d.ref for d in report.drifts]
        scope = verdict.scope or drift_scope(report)
        backport = backport_patch(report) if action == Action.ALLOW else None
        if mode == "shadow":
            return [self._would(action, mode, now, report, scope)], backport
        detail = {"approved_by": approved_by} if approved_by else {}
        if action == Action.ENFORCE:
            done = await self._sync_exactly_once(report.event_id, "enforce", report.application, report.app_namespace,
                                                 resources, mode, now, detail)
            done.append(await self._annotate(report, mode, now, {"state": "enforced"}))
            return done, None
        if action == Action.DEFER:
            due = self._defer_until(report, now)
            await self._store.schedule(report.event_id, "deferred_sync", due, {
                "application": report.application, "app_namespace": report.app_namespace,
                "resources": [r.model_dump(mode="json") for r in resources], "mode": mode,
            })
            scheduled = AppliedAction(kind="schedule", mode=mode, executed=True, at=now,
                                      detail={"sync_at": rfc3339z(due), **detail})
            return [scheduled, await self._annotate(report, mode, now, {"state": "deferred", "until": rfc3339z(due)})
                    ], None
        if action == Action.ALLOW:
            if scope is None:
                raise ApplyError("nothing_to_allow", f"event {report.event_id}: the drift has no changed paths")
            until = scope.until or now + self._allow_ttl
            done = [await self._allow(report, scope, until, mode, now, detail)]
            done.append(await self._annotate(report, mode, now, {"state": "allowed", "until": rfc3339z(until)}))
            return done, backport
        # escalate: only reached when a human chose it; the approval itself is the record.
        return [AppliedAction(kind="none", mode=mode, executed=False, at=now,
                              detail={"reason": "escalated: a human keeps the decision", **detail})], None

    async def request_approval(self, report: DriftReport, verdict: Verdict, mode: Mode, now: datetime
                               ) -> list[AppliedAction]:
        request = AppliedAction(kind="approval_request", mode=mode, executed=True, at=now,
                                detail={"proposed": verdict.action.value,
                                        "allowed_actions": [a.value for a in verdict.allowed_actions]})
        return [request, await self._annotate(report, mode, now, {"state": "awaiting_approval"})]

    async def run_due(self, now: datetime) -> list[tuple[Job, AppliedAction]]:
        """Run deferred syncs and allowance expiries whose time has come on Driftwise's clock: one pair per
        write made (dry run, sync, the status annotation cleared), so each is recorded and audited once."""
        results: list[tuple[Job, AppliedAction]] = []
        for job in await self._store.due(now, self._claimer, self._claim_s):
            try:
                if job.kind == "deferred_sync":
                    refs = [ResourceRef.model_validate(r) for r in job.payload["resources"]]
                    mode = job.payload.get("mode", "autonomous")
                    acts = await self._sync_exactly_once(job.event_id, "deferred", job.payload["application"],
                                                         job.payload["app_namespace"], refs, mode, now, {})
                    cleared = await self._clear_status(job.payload["application"], job.payload["app_namespace"],
                                                       job.event_id, mode, now)
                    acts.extend([cleared] if cleared is not None else [])
                else:
                    acts = [await self._expire(job, now)]
            except ApplyError as exc:
                log.warning("job %s (%s of event %s) failed: %s", job.id, job.kind, job.event_id, exc)
                await self._store.finish(job.id, ok=False, error=str(exc), retry=job.attempts < 5)
                continue
            await self._store.finish(job.id, ok=True)
            results.extend((job, a) for a in acts)
        return results

    async def recover(self, now: datetime) -> int:
        """Resolve writes left `requested` by a crash: confirmed from Argo CD, never blindly re-sent."""
        resolved = 0
        for event_id, step in await self._store.outbox_requested():
            if not step.endswith(":sync"):
                # a dry run, patch or annotation that may or may not have happened is safe to leave to a retry
                await self._store.outbox_mark(event_id, step, "failed", now, {"reason": "interrupted"})
                continue
            detail_app = step.split(":")[0]
            try:
                app = await self._get_app(detail_app, "")
            except ApplyError:
                continue
            state = "done" if synced_for_event(app, event_id) else "failed"
            await self._store.outbox_mark(event_id, step, state, now, {"recovered": True})
            resolved += 1
        return resolved

    # --- steps --------------------------------------------------------------------------------

    async def _sync_exactly_once(
        self, event_id: str, reason: str, app: str, app_ns: str, resources: list[ResourceRef], mode: Mode,
        now: datetime, detail: dict[str, Any],
    ) -> list[AppliedAction]:
        """Dry run, then sync, each marked `requested` in the outbox before it is sent. Run again after a crash,
        a write the outbox (or Argo CD's `operation.info`) shows done is not sent again but recorded as this
        decision's (`from_outbox`): the record is completed, never the write repeated. A failure raises with
        the writes already made (`ApplyError.done`), which the decision keeps."""
        refs = [r.model_dump(mode="json") for r in resources]
        base = {"resources": refs, "reason": reason}
        dry_step, sync_step = f"{app}:dry_run", f"{app}:sync"
        sync_state = await self._store.outbox_state(event_id, sync_step)
        # a crash after sending: ask Argo CD before sending again
        if sync_state == "requested" and synced_for_event(await self._get_app(app, app_ns), event_id):
            await self._store.outbox_mark(event_id, sync_step, "done", now, {"recovered": True})
            sync_state = "done"
        # dry runs sent before a crash (or a lost answer): Argo CD keeps no trace of a dry run, so each one
        # intended and unconfirmed is recorded as sent, once (its own outbox row), and the dry run made again
        done = [AppliedAction(kind="dry_run_sync", mode=mode, executed=True, at=now,
                              detail={**base, "unconfirmed": True, "from_outbox": True})
                for _ in await self._store.outbox_steps(event_id, f"{dry_step}#")]
        dry = await self._store.outbox_row(event_id, dry_step)
        if dry is not None and dry[0] == "done":
            done.append(AppliedAction(kind="dry_run_sync", mode=mode, executed=True, at=now,
                                      detail={**base, "from_outbox": True}))
        elif sync_state != "done":
            if dry is not None and _maybe_sent(*dry):
                await self._store.outbox_mark(event_id, f"{dry_step}#{len(done) + 1}", "done", now,
                                              {"unconfirmed": True})
                done.append(AppliedAction(kind="dry_run_sync", mode=mode, executed=True, at=now,
                                          detail={**base, "unconfirmed": True}))
            await self._store.outbox_mark(event_id, dry_step, "requested", now)
            try:
                await self._writer.sync(app, app_ns, resources, dry_run=True, event_id=event_id)
            except ApplyError as exc:
                await self._store.outbox_mark(event_id, dry_step, "failed", now,
                                              {"error": str(exc), "no_answer": isinstance(exc, NoAnswer)})
                exc.done = done
                raise
            await self._store.outbox_mark(event_id, dry_step, "done", now)
            done.append(AppliedAction(kind="dry_run_sync", mode=mode, executed=True, at=now, detail=base))
        if sync_state == "done":
            done.append(AppliedAction(kind="sync", mode=mode, executed=True, at=now,
                                      detail={**base, "prune": False, "from_outbox": True, **detail}))
            return done
        await self._store.outbox_mark(event_id, sync_step, "requested", now)
        try:
            result = await self._writer.sync(app, app_ns, resources, dry_run=False, event_id=event_id)
        except NoAnswer as exc:
            # sent, unanswered: not failed. Argo CD's operation state says whether it was carried out; the
            # outbox row stays `requested` until it does (recover() completes it after a restart)
            result = await self._reconcile_sync(app, app_ns, event_id)
            if result is None:
                exc.done = done
                raise
            await self._store.outbox_mark(event_id, sync_step, "done", now, {"reconciled": True})
            done.append(AppliedAction(kind="sync", mode=mode, executed=True, at=now,
                                      detail={**base, "prune": False, "reconciled": str(exc), **detail}))
            return done
        except ApplyError as exc:
            await self._store.outbox_mark(event_id, sync_step, "failed", now, {"error": str(exc)})
            exc.done = done
            raise
        await self._store.outbox_mark(event_id, sync_step, "done", now)
        phase = ((result.get("status") or {}).get("operationState") or {}).get("phase")
        done.append(AppliedAction(kind="sync", mode=mode, executed=True, at=now,
                                  detail={**base, "prune": False, "phase": phase, **detail}))
        return done

    async def _reconcile_sync(self, app: str, app_ns: str, event_id: str) -> dict[str, Any] | None:
        """Ask Argo CD, bounded by `reconcile_s`, whether the sync for this event was carried out (its
        operation's `info` names the event); the Application once it shows it, None if it never did."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self._reconcile_s
        while True:
            try:
                application = await self._get_app(app, app_ns)
                if synced_for_event(application, event_id):
                    return application
            except ApplyError as exc:
                log.warning("reconciling the sync of %s (event %s): %s", app, event_id, exc)
            if loop.time() >= until:
                return None
            # Argo CD has no watch for one operation through this API: poll it, at a modest rate
            await asyncio.sleep(RECONCILE_POLL_S)

    async def _allow(self, report: DriftReport, scope: Scope, until: datetime, mode: Mode, now: datetime,
                     detail: dict[str, Any]) -> AppliedAction:
        ours = entries_for(scope)
        step = f"{report.application}:ignore_differences"
        row = await self._store.outbox_row(report.event_id, step)
        if row is None or row[0] != "done":
            app = await self._get_app(report.application, report.app_namespace)
            if row is not None and _maybe_sent(*row) and shows_allowance(app, ours):
                # sent before a crash and carried out (Argo CD shows it): recorded, not sent again
                await self._store.outbox_mark(report.event_id, step, "done", now, {"recovered": True})
            else:
                await self._store.outbox_mark(report.event_id, step, "requested", now)
                await self._writer.merge_patch(report.application, report.app_namespace, add_patch(app, ours))
                await self._store.outbox_mark(report.event_id, step, "done", now)
        await self._store.schedule(report.event_id, "expire_allowance", until, {
            "application": report.application, "app_namespace": report.app_namespace, "entries": ours,
            "mode": mode})
        return AppliedAction(kind="ignore_differences", mode=mode, executed=True, at=now,
                             detail={"entries": ours, "until": rfc3339z(until), **detail})

    async def _expire(self, job: Job, now: datetime) -> AppliedAction:
        app_name, app_ns = job.payload["application"], job.payload["app_namespace"]
        app = await self._get_app(app_name, app_ns)
        patch = remove_patch(app, job.payload["entries"])
        if _status_event(app) == job.event_id:
            # the allowance is over: so is the state the annotation shows (one PATCH for both)
            patch["metadata"] = {"annotations": _CLEARED}
        await self._writer.merge_patch(app_name, app_ns, patch)
        return AppliedAction(kind="remove_ignore_differences", mode=job.payload.get("mode", "autonomous"),
                             executed=True, at=now, detail={"entries": job.payload["entries"]})

    async def _clear_status(self, app_name: str, app_ns: str, event_id: str, mode: Mode, now: datetime
                            ) -> AppliedAction | None:
        """Remove the status annotation once its state is over, unless a later decision owns it now; the
        removal is a write, so it is returned to be recorded (None when nothing was written)."""
        try:
            app = await self._get_app(app_name, app_ns)
            if _status_event(app) != event_id:
                return None
            await self._writer.merge_patch(app_name, app_ns, {"metadata": {"annotations": _CLEARED}})
        except ApplyError as exc:
            log.warning("could not clear the status annotation of %s (event %s): %s", app_name, event_id, exc)
            return None
        return AppliedAction(kind="annotate", mode=mode, executed=True, at=now,
                             detail={"value": None, "cleared": True})

    async def _annotate(self, report: DriftReport, mode: Mode, now: datetime, status: dict[str, Any]
                        ) -> AppliedAction:
        """Show Driftwise's state in Argo CD's UI (deploy/argocd health check reads this annotation). Through
        the outbox like every write: after a crash, an annotation Argo CD already shows is not sent again."""
        value = json.dumps({**status, "event": report.event_id}, separators=(",", ":"))
        step = f"{report.application}:annotate:{status['state']}"
        row = await self._store.outbox_row(report.event_id, step)
        if row is not None and row[0] == "done":
            return AppliedAction(kind="annotate", mode=mode, executed=True, at=now,
                                 detail={"value": value, "from_outbox": True})
        annotations = {STATUS_ANNOTATION: value}
        url = self._decision_url(report.event_id) if self._decision_url is not None else None
        if url is not None:
            annotations[LINK_ANNOTATION] = f"{LINK_TITLE}|{url}"
        patch = {"metadata": {"annotations": annotations}}
        try:
            if row is not None and _maybe_sent(*row):
                current = await self._get_app(report.application, report.app_namespace)
                if _status_value(current) == value:  # observable: it was carried out before the crash
                    await self._store.outbox_mark(report.event_id, step, "done", now, {"recovered": True})
                    return AppliedAction(kind="annotate", mode=mode, executed=True, at=now,
                                         detail={"value": value, "from_outbox": True})
            await self._store.outbox_mark(report.event_id, step, "requested", now)
            await self._writer.merge_patch(report.application, report.app_namespace, patch)
        except ApplyError as exc:
            # the annotation is informational: its failure must not undo or block the action
            log.warning("could not annotate %s for event %s: %s", report.application, report.event_id, exc)
            await self._store.outbox_mark(report.event_id, step, "failed", now,
                                          {"error": str(exc), "no_answer": isinstance(exc, NoAnswer)})
            return AppliedAction(kind="annotate", mode=mode, executed=False, at=now, detail={"error": str(exc)})
        await self._store.outbox_mark(report.event_id, step, "done", now)
        return AppliedAction(kind="annotate", mode=mode, executed=True, at=now, detail={"value": value})

    @staticmethod
    def _defer_until(report: DriftReport, now: datetime) -> datetime:
        start = next_allow_start(report.sync_windows, now, report.application, report.destination_namespace)
        return start if start is not None else now

    @staticmethod
    def _would(action: Action, mode: Mode, now: datetime, report: DriftReport, scope: Scope | None
               ) -> AppliedAction:
        kind = {Action.ENFORCE: "sync", Action.DEFER: "schedule", Action.ALLOW: "ignore_differences",
                Action.ESCALATE: "approval_request"}[action]
        detail: dict[str, Any] = {"would": action.value, "resources": [d.ref.key for d in report.drifts]}
        if scope is not None:
            detail["scope"] = scope.model_dump(mode="json")
        return AppliedAction(kind=kind, mode=mode, executed=False, at=now, detail=detail)


_CLEARED = {STATUS_ANNOTATION: None, LINK_ANNOTATION: None}
"""A state that is over: its annotation and its link go together (a merge patch's null removes a key)."""


def _maybe_sent(state: str, detail: dict[str, Any]) -> bool:
    """An outbox row of a write intended and never confirmed: requested (a crash came before the answer),
    interrupted (recover() found it so) or unanswered. A refused write was not carried out."""
    return state == "requested" or bool(detail.get("reason") == "interrupted" or detail.get("no_answer"))


def _status_value(application: dict[str, Any]) -> str | None:
    raw = ((application.get("metadata") or {}).get("annotations") or {}).get(STATUS_ANNOTATION)
    return raw if isinstance(raw, str) else None


def _status_event(application: dict[str, Any]) -> str | None:
    """The event id the Application's driftwise.io/status annotation names, if any."""
    raw = _status_value(application)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value.get("event") if isinstance(value, dict) else None
