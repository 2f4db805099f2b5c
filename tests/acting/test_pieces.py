"""The acting pieces on their own: ignoreDifferences patches, Git back-port, the durable outbox and jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from agents.drift.acting.applier import Applier
from agents.drift.acting.argocd_writes import ArgoCDWriter, sync_body, synced_for_event
from agents.drift.acting.backport import backport_patch
from agents.drift.acting.errors import ApplyError, NoAnswer
from agents.drift.acting.ignore_differences import RESPECT, add_patch, entries_for, remove_patch
from agents.drift.acting.store import ActingStore
from protocol.models import Action, DriftReport, FieldChange, ResourceDrift, ResourcePaths, ResourceRef, Scope, Verdict

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
REF = ResourceRef(group="apps", kind="Deployment", namespace="payments", name="payments-api")


def _report() -> DriftReport:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "payments-api"},
              "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "r/a:1"}]}}}}
    drift = ResourceDrift(ref=REF, target=target, changes=[
        FieldChange(path="/spec/replicas", op="replace", before=3, after=12),
        FieldChange(path="/spec/template/spec/containers/0/image", op="replace", before="r/a:1", after="r/a:2"),
    ])
    secret = ResourceDrift(ref=ResourceRef(kind="Secret", namespace="payments", name="s"), target={"data": {}},
                           changes=[FieldChange(path="/data/token", op="replace", before="<redacted>",
                                                after="<redacted>", redacted=True)])
    return DriftReport(event_id="e1", application="payments-api", project="prod", drifts=[drift, secret],
                       observed_at=NOW, repo_url="https://git.example/payments.git")


def test_sync_body_never_prunes_and_names_exactly_the_resources() -> None:
    body = sync_body("app", "argocd", [REF], dry_run=True, event_id="e1")
    assert body["prune"] is False and body["dryRun"] is True
    assert body["resources"] == [{"group": "apps", "kind": "Deployment", "name": "payments-api",
                                  "namespace": "payments"}]
    assert {"name": "driftwise-event", "value": "e1"} in body["infos"]


def test_synced_for_event_reads_the_operation_infos() -> None:
    app = {"status": {"operationState": {"operation": {"sync": {}, "info": [{"name": "driftwise-event",
                                                                            "value": "e1"}]}}}}
    assert synced_for_event(app, "e1") and not synced_for_event(app, "e2")
    app["status"]["operationState"]["operation"]["sync"]["dryRun"] = True
    assert not synced_for_event(app, "e1")
    assert not synced_for_event({}, "e1")


def test_ignore_differences_add_and_remove_exactly_ours() -> None:
    scope = Scope(resources=[ResourcePaths(ref=REF, paths=["/spec/replicas"])])
    ours = entries_for(scope)
    assert ours == [{"group": "apps", "kind": "Deployment", "name": "payments-api", "namespace": "payments",
                     "jsonPointers": ["/spec/replicas"]}]
    theirs = {"group": "", "kind": "ConfigMap", "jsonPointers": ["/data/x"]}
    app = {"spec": {"ignoreDifferences": [theirs], "syncPolicy": {"automated": {"selfHeal": False}}}}
    patch = add_patch(app, ours)
    assert patch["spec"]["ignoreDifferences"] == [theirs, *ours]
    assert RESPECT in patch["spec"]["syncPolicy"]["syncOptions"]
    assert patch["spec"]["syncPolicy"]["automated"] == {"selfHeal": False}
    applied = {"spec": {**app["spec"], **patch["spec"]}}
    assert add_patch(applied, ours)["spec"]["ignoreDifferences"] == [theirs, *ours]  # idempotent
    assert "syncPolicy" not in add_patch(applied, ours)["spec"]
    assert remove_patch(applied, ours) == {"spec": {"ignoreDifferences": [theirs]}}


def test_backport_sets_git_to_the_cluster_values_and_never_writes_secrets() -> None:
    text = backport_patch(_report())
    lines = text.splitlines()
    assert "-  replicas: 3" in lines and "+  replicas: 12" in lines
    # the image changes in place: its line is replaced, the container list itself is context
    assert "-        image: r/a:1" in lines and "+        image: r/a:2" in lines
    assert "       - name: app" in lines
    assert "<redacted>" not in text
    assert "core/Secret/payments/s: change by hand" in text
    assert "https://git.example/payments.git" in text
    # the + side, read back, is the cluster's object on the drifted paths
    plus = [line[1:] for line in text.splitlines() if line.startswith(("+", " ")) and not line.startswith("+++")]
    doc = yaml.safe_load("".join(f"{line}\n" for line in plus if not line.startswith("#")))
    assert doc["spec"]["replicas"] == 12
    assert doc["spec"]["template"]["spec"]["containers"][0]["image"] == "r/a:2"


async def test_store_outbox_and_jobs_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "drift.sqlite"
    store = ActingStore(db)
    await store.open()
    await store.outbox_mark("e1", "app:sync", "requested", NOW)
    assert await store.schedule("e1", "deferred_sync", NOW + timedelta(hours=2), {"application": "a"})
    assert not await store.schedule("e1", "deferred_sync", NOW + timedelta(hours=3), {"application": "a"})
    await store.close()

    store = ActingStore(db)
    await store.open()
    assert await store.outbox_requested() == [("e1", "app:sync")]
    assert await store.due(NOW) == []
    later = NOW + timedelta(hours=2, seconds=1)
    [job] = await store.due(later)
    assert job.payload == {"application": "a"} and job.kind == "deferred_sync"
    await store.finish(job.id, ok=False, error="boom", retry=True)
    [again] = await store.due(later)
    assert again.attempts == 1
    await store.finish(again.id, ok=True)
    assert await store.due(later) == [] and await store.pending() == []
    await store.outbox_mark("e1", "app:sync", "done", later)
    assert await store.outbox_state("e1", "app:sync") == "done" and await store.outbox_requested() == []
    await store.close()


class _Writer(ArgoCDWriter):
    """Argo CD's write API as the applier sees it: records each call, answers as told (no network)."""

    def __init__(self, app: dict, fail_sync: ApplyError | None = None) -> None:
        # no super().__init__: both write calls are overridden, so no HTTP client is made (none left open)
        self.app, self.fail_sync = app, fail_sync
        self.sent: list[str] = []

    async def sync(self, app: str, app_namespace: str, resources: list[ResourceRef], *, dry_run: bool,
                   event_id: str) -> dict:
        self.sent.append("dry_run" if dry_run else "sync")
        if not dry_run and self.fail_sync is not None:
            raise self.fail_sync
        return self.app

    async def merge_patch(self, app: str, app_namespace: str, patch: dict) -> dict:
        self.sent.append("patch")
        self.app["metadata"]["annotations"].update(patch["metadata"]["annotations"])
        return self.app


async def _applier(tmp_path: Path, writer: _Writer, reconcile_s: float = 0.0) -> tuple[Applier, ActingStore]:
    store = ActingStore(tmp_path / "drift.sqlite")
    await store.open()

    async def get_app(name: str, namespace: str) -> dict:
        return writer.app

    return Applier(writer, get_app, store, timedelta(hours=1), reconcile_s=reconcile_s), store


def _enforce(report: DriftReport) -> dict:
    verdict = Verdict(event_id="e1", action=Action.ENFORCE, requires_approval=False, allowed_actions=[Action.ENFORCE],
                      confidence=0.9, threshold=0.8, decided_at=NOW)
    return {"mode": "autonomous", "action": Action.ENFORCE, "report": report, "verdict": verdict, "now": NOW}


async def test_a_failed_sync_keeps_the_dry_run_it_made(tmp_path: Path) -> None:
    writer = _Writer({"metadata": {"annotations": {}}}, ApplyError("argocd_refused", "HTTP 503"))
    applier, store = await _applier(tmp_path, writer)
    with pytest.raises(ApplyError) as failed:
        await applier.apply(**_enforce(_report()))
    assert writer.sent == ["dry_run", "sync"] and [a.kind for a in failed.value.done] == ["dry_run_sync"]
    await store.close()


async def test_an_unconfirmed_dry_run_is_recorded_once_and_made_again_once(tmp_path: Path) -> None:
    writer = _Writer({"metadata": {"annotations": {}}})
    applier, store = await _applier(tmp_path, writer)
    await store.outbox_mark("e1", "payments-api:dry_run", "requested", NOW)  # a crash before its answer
    await applier.recover(NOW)
    done, _ = await applier.apply(**_enforce(_report()))
    assert writer.sent == ["dry_run", "sync", "patch"]
    assert [a.kind for a in done] == ["dry_run_sync", "dry_run_sync", "sync", "annotate"]
    # replayed (a crash after apply, before its checkpoint): nothing sent, the same four recorded
    again, _ = await applier.apply(**_enforce(_report()))
    assert writer.sent == ["dry_run", "sync", "patch"] and [a.kind for a in again] == [a.kind for a in done]
    await store.close()


async def test_a_sync_without_an_answer_is_reconciled_from_argocd(tmp_path: Path) -> None:
    app = {"metadata": {"annotations": {}}, "status": {"operationState": {"operation": {
        "sync": {}, "info": [{"name": "driftwise-event", "value": "e1"}]}}}}
    writer = _Writer(app, NoAnswer("argocd_no_answer", "no answer"))
    applier, store = await _applier(tmp_path, writer)
    done, _ = await applier.apply(**_enforce(_report()))
    assert [a.kind for a in done] == ["dry_run_sync", "sync", "annotate"] and done[1].detail["reconciled"]
    assert await store.outbox_state("e1", "payments-api:sync") == "done"
    await store.close()


async def test_an_annotation_argocd_shows_is_not_sent_again(tmp_path: Path) -> None:
    value = '{"state":"enforced","event":"e1"}'
    writer = _Writer({"metadata": {"annotations": {"driftwise.io/status": value}}})
    applier, store = await _applier(tmp_path, writer)
    await store.outbox_mark("e1", "payments-api:annotate:enforced", "requested", NOW)
    await store.outbox_mark("e1", "payments-api:dry_run", "done", NOW)
    await store.outbox_mark("e1", "payments-api:sync", "done", NOW)
    done, _ = await applier.apply(**_enforce(_report()))
    assert writer.sent == [] and [a.kind for a in done] == ["dry_run_sync", "sync", "annotate"]
    assert all(a.executed for a in done)
    await store.close()


def _allow(report: DriftReport) -> dict:
    verdict = Verdict(event_id="e1", action=Action.ALLOW, requires_approval=False, allowed_actions=[Action.ALLOW],
                      confidence=0.9, threshold=0.8, decided_at=NOW)
    return {"mode": "autonomous", "action": Action.ALLOW, "report": report, "verdict": verdict, "now": NOW}


class _PatchingWriter(_Writer):
    """Argo CD's merge patch, applied to the Application (spec and annotations)."""

    async def merge_patch(self, app: str, app_namespace: str, patch: dict) -> dict:
        self.sent.append("patch")
        self.app.setdefault("spec", {}).update(patch.get("spec") or {})
        self.app["metadata"]["annotations"].update((patch.get("metadata") or {}).get("annotations") or {})
        return self.app


async def test_an_ignore_differences_patch_argocd_shows_is_not_sent_again(tmp_path: Path) -> None:
    writer = _PatchingWriter({"metadata": {"annotations": {}}, "spec": {}})
    applier, store = await _applier(tmp_path, writer)
    done, _ = await applier.apply(**_allow(_report()))
    assert writer.sent == ["patch", "patch"] and [a.kind for a in done] == ["ignore_differences", "annotate"]
    # a crash after the patch was sent, before its `done`: replayed, Argo CD shows it, nothing is sent again
    await store.outbox_mark("e1", "payments-api:ignore_differences", "requested", NOW)
    await store.outbox_mark("e1", "payments-api:annotate:allowed", "requested", NOW)
    again, _ = await applier.apply(**_allow(_report()))
    assert writer.sent == ["patch", "patch"] and [a.kind for a in again] == ["ignore_differences", "annotate"]
    assert await store.outbox_state("e1", "payments-api:ignore_differences") == "done"
    await store.close()


async def test_an_ignore_differences_patch_argocd_does_not_show_is_sent_again(tmp_path: Path) -> None:
    writer = _PatchingWriter({"metadata": {"annotations": {}}, "spec": {}})
    applier, store = await _applier(tmp_path, writer)
    await store.outbox_mark("e1", "payments-api:ignore_differences", "requested", NOW)  # crashed before sending
    await applier.apply(**_allow(_report()))
    assert writer.sent == ["patch", "patch"]
    await store.close()


@pytest.mark.parametrize(("reconcile_s", "reconciled"), [(0.0, False), (30.0, True)])
async def test_reconcile_s_bounds_the_lookup_of_an_unanswered_sync(tmp_path: Path, reconcile_s: float,
                                                                    reconciled: bool) -> None:
    shown = {"metadata": {"annotations": {}}, "status": {"operationState": {"operation": {
        "sync": {}, "info": [{"name": "driftwise-event", "value": "e1"}]}}}}
    writer = _Writer({"metadata": {"annotations": {}}}, NoAnswer("argocd_no_answer", "no answer"))
    store = ActingStore(tmp_path / "drift.sqlite")
    await store.open()
    reads = 0

    async def get_app(name: str, namespace: str) -> dict:
        nonlocal reads
        reads += 1  # Argo CD shows the operation from the second look-up on
        return shown if reads >= 2 else writer.app

    applier = Applier(writer, get_app, store, timedelta(hours=1), reconcile_s=reconcile_s)
    if reconciled:
        done, _ = await applier.apply(**_enforce(_report()))
        assert done[1].kind == "sync" and done[1].detail["reconciled"]
    else:
        with pytest.raises(NoAnswer):
            await applier.apply(**_enforce(_report()))
        assert await store.outbox_state("e1", "payments-api:sync") == "requested"
    await store.close()
