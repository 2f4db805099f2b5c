"""One conformance suite for every store, run against both backends (SQLite and PostgreSQL), as LangGraph's
checkpoint conformance runs one suite against every checkpointer: same cases, same answers."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from agents.drift.acting.store import INTENT_STEP, ActingStore
from agents.drift.audit import AuditLog
from agents.drift.config import StateConfig
from agents.drift.database import Database, SchemaTooNew
from agents.drift.leases import Fence, LeaseStore
from agents.drift.migrations import LATEST
from agents.drift.outcome_store import OutcomeStore
from agents.drift.replay import ReplayStore
from agents.drift.retention import Retention
from agents.drift.state import open_state
from agents.drift.store import Cursor, DecisionFilter, EventStore
from protocol.errors import VerificationError
from protocol.models import Action, AppliedAction, ArgoNotification, DecisionState, DriftEvent, OutcomeKind
from protocol.signing import TokenClaims
from tests.console.decisions import every_page
from tests.drift.test_outcomes import decision as outcome_decision
from tests.drift.test_outcomes import outcome_of
from tests.stores.test_intent import _with_verdict
from tests.support.drift_core import event

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


def _event(app: str, revision: str = "abc") -> DriftEvent:
    base = event(app)
    n = ArgoNotification(app=app, project="prod", revision=revision)
    return base.model_copy(update={"notification": n, "idempotency_key": DriftEvent.key_for(n)})


# --- events and decisions -----------------------------------------------------------------------

async def test_an_event_joins_the_open_decision_of_its_revision(db: Database) -> None:
    store = EventStore(db)
    first, dup = await store.accept(_event("a"), NOW)
    again, dup2 = await store.accept(_event("a"), NOW)
    other, dup3 = await store.accept(_event("a", revision="def"), NOW)
    assert (dup, dup2, dup3) == (False, True, False)
    assert again.event.event_id == first.event.event_id and other.event.event_id != first.event.event_id
    assert [d.event.event_id for d in await store.for_application(first.event.idempotency_key)] == [
        other.event.event_id, first.event.event_id]  # newest first


async def test_concurrent_notifications_of_one_drift_make_one_decision(db: Database) -> None:
    store = EventStore(db)
    results = await asyncio.gather(*(store.accept(_event("burst"), NOW) for _ in range(20)))
    assert sum(not duplicate for _, duplicate in results) == 1
    assert len({d.event.event_id for d, _ in results}) == 1 and await store.count() == 1


async def test_a_join_leaves_the_joined_decision_answering(db: Database) -> None:
    store = EventStore(db)
    into, _ = await store.accept(_event("a"), NOW)
    late, _ = await store.accept(_event("a", revision="zzz"), NOW)
    assert await store.join(late.event.event_id, into.event.event_id, NOW)
    got = await store.get(late.event.event_id)
    assert got is not None and got.event.event_id == into.event.event_id
    assert not await store.join(late.event.event_id, into.event.event_id, NOW)  # once


async def test_supersede_only_from_the_state_it_was_read_in_and_it_sticks(db: Database) -> None:
    store = EventStore(db)
    old, _ = await store.accept(_event("a"), NOW)
    moved = old.model_copy(update={"state": DecisionState.DECIDING})
    await store.save(moved)
    assert await store.supersede(old, "new", NOW) is None  # read as received, it is deciding now
    ended = await store.supersede(moved, "new", NOW)
    assert ended is not None and ended.state == DecisionState.SUPERSEDED
    await store.save(moved.model_copy(update={"state": DecisionState.DONE}))  # a late writer
    kept = await store.get(old.event.event_id)
    assert kept is not None and kept.state == DecisionState.SUPERSEDED and kept.superseded_by == "new"


async def test_queries_over_decisions(db: Database) -> None:
    store = EventStore(db)
    a, _ = await store.accept(_event("a"), NOW)
    b, _ = await store.accept(_event("b"), NOW)
    await store.save(b.model_copy(update={"state": DecisionState.DONE}))
    assert {d.event.event_id for d in await store.undecided()} == {a.event.event_id}
    assert [d.event.event_id for d in await store.list(state="done")] == [b.event.event_id]
    assert [d.event.event_id for d in await store.list(application="a")] == [a.event.event_id]
    assert {d.event.event_id for d in await store.latest_per_application()} == {a.event.event_id, b.event.event_id}
    assert (await store.count(), await store.count_state("done"), await store.count_state("failed")) == (2, 1, 0)
    assert await store.get("no-such-event") is None


async def test_the_consoles_pages_and_queue(db: Database) -> None:
    store = EventStore(db)
    made = []
    for n in range(7):
        d, _ = await store.accept(_event(f"app-{n}").model_copy(update={
            "event_id": f"ev-{n}", "received_at": NOW + timedelta(seconds=n)}), NOW)
        state = DecisionState.AWAITING_APPROVAL if n % 2 else DecisionState.DONE
        await store.save(_with_verdict(d).model_copy(update={"state": state}))
        made.append((d.event.event_id, state))
    where = DecisionFilter(project="prod", state=DecisionState.AWAITING_APPROVAL, limit=2)
    pages = await every_page(store, where)
    awaiting = [e for e, state in made if state == DecisionState.AWAITING_APPROVAL]
    assert pages == [awaiting[::-1][:2], awaiting[::-1][2:]]
    assert (await store.page(DecisionFilter(project="staging"))).decisions == []
    assert [d.event.event_id for d in await store.awaiting()] == awaiting
    after_first = Cursor(received_at=NOW + timedelta(seconds=1), event_id="ev-1")  # keyset: the queue's next page
    assert [d.event.event_id for d in await store.awaiting(2, after_first)] == awaiting[1:3]


async def test_the_consoles_project_filter_uses_its_index(db: Database) -> None:
    """Migration 2's expression index is the one the query names (json_text), on either dialect."""
    project = db.json_text("document", "event", "notification", "project")
    query = (f"SELECT document FROM drift_decisions WHERE {project} = ? "
             "ORDER BY received_at DESC, event_id DESC LIMIT 51")
    async with db.transaction() as tx:
        if db.dialect == "sqlite":
            plan = await tx.rows(f"EXPLAIN QUERY PLAN {query}", ("prod",))
        else:  # an empty table is scanned whatever its indexes: take the scan away to see the index match
            await tx.execute("SET LOCAL enable_seqscan = off")
            plan = await tx.rows(f"EXPLAIN {query}", ("prod",))
    assert any("drift_decisions_project" in str(step) for step in plan), plan


async def test_one_outcome_per_decision_and_only_decisions_without_one_are_followed(db: Database) -> None:
    store, outcomes = EventStore(db), OutcomeStore(db)
    decided = []
    for applied in ([], [AppliedAction(kind="sync", mode="autonomous", executed=True, at=NOW)],
                    [AppliedAction(kind="sync", mode="advisory", executed=False, at=NOW)]):
        d = outcome_decision(Action.ENFORCE, applied=applied)
        await store.accept(d.event, NOW)
        await store.save(d)
        decided.append(d)
    undecided, _ = await store.accept(_event("undecided"), NOW)  # no verdict yet: nothing to follow
    followed = await outcomes.followed()
    # the one Driftwise synced itself is not followed: nothing people did is left to learn from
    assert [f.event.event_id for f in followed] == [decided[0].event.event_id, decided[2].event.event_id]
    first = outcome_of(decided[0], OutcomeKind.REVERTED)
    assert await outcomes.record("api", first) is True
    assert await outcomes.record("api", outcome_of(decided[0], OutcomeKind.PERSISTED)) is False
    assert await outcomes.get(decided[0].event.event_id) == first
    assert await outcomes.get(undecided.event.event_id) is None
    assert await outcomes.get_many([decided[0].event.event_id, decided[1].event.event_id]) == {
        decided[0].event.event_id: first}
    assert [f.event.event_id for f in await outcomes.followed()] == [decided[2].event.event_id]


# --- outbox and jobs ----------------------------------------------------------------------------

async def test_outbox_rows(db: Database) -> None:
    acting = ActingStore(db)
    await acting.outbox_mark("e1", "app:sync", "requested", NOW)
    await acting.outbox_mark("e1", "app:dry_run#1", "done", NOW, {"unconfirmed": True})
    assert await acting.outbox_state("e1", "app:sync") == "requested"
    assert await acting.outbox_requested() == [("e1", "app:sync")]
    await acting.outbox_mark("e1", "app:sync", "done", NOW, {"recovered": True})
    assert await acting.outbox_row("e1", "app:sync") == ("done", {"recovered": True})
    assert await acting.outbox_steps("e1", "app:dry_run#") == ["app:dry_run#1"]
    assert await acting.outbox_requested() == [] and await acting.outbox_state("e2", "app:sync") is None


async def test_jobs_once_due_on_the_clock_retried_and_cancelled(db: Database) -> None:
    acting = ActingStore(db)
    assert await acting.schedule("e1", "deferred_sync", NOW + timedelta(hours=1), {"application": "a"})
    assert not await acting.schedule("e1", "deferred_sync", NOW, {"application": "a"})  # once per (event, kind)
    # an offset other than UTC still compares as a time
    assert await acting.schedule("e2", "expire_allowance",
                                 (NOW - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=5))), {})
    due = await acting.due(NOW)
    assert [(j.event_id, j.kind) for j in due] == [("e2", "expire_allowance")]
    await acting.finish(due[0].id, ok=False, error="boom", retry=True)
    again = await acting.due(NOW)
    assert [j.attempts for j in again] == [1]
    await acting.finish(again[0].id, ok=True)
    assert await acting.due(NOW) == []
    assert await acting.cancel("e1", "deferred_sync", "superseded") and not await acting.cancel(
        "e1", "deferred_sync", "again")
    assert await acting.pending() == []


# --- audit --------------------------------------------------------------------------------------

async def test_concurrent_appends_make_one_chain(db: Database) -> None:
    audit = AuditLog(db)
    await asyncio.gather(*(audit.append(f"e{i % 5}", "decision", {"n": i}) for i in range(40)))
    records = await audit.records()
    assert [r.seq for r in records] == list(range(1, 41))
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(records))
    assert (await audit.verify()).ok and await audit.head() == (40, records[-1].hash)
    assert [r.seq for r in await audit.records("e0")] == [r.seq for r in records if r.event_id == "e0"]
    assert [r.seq async for r in audit.stream()] == list(range(1, 41))


@pytest.mark.parametrize("statement", [
    "UPDATE audit SET payload = '{}' WHERE seq = 1",
    "DELETE FROM audit WHERE seq = 2",
    "UPDATE audit_head SET seq = 1 WHERE id = 1",
    "DELETE FROM audit_head",
])
async def test_the_audit_is_append_only(db: Database, statement: str) -> None:
    audit = AuditLog(db)
    for i in range(3):
        await audit.append("e1", "apply", {"n": i})
    with pytest.raises(Exception, match=r"append-only|only moves forward"):
        await db.execute(statement)
    assert (await audit.verify()).ok and len(await audit.records()) == 3


# --- replay cache -------------------------------------------------------------------------------

def _claims(jti: str, event_id: str = "e1", expires_in: float = 300) -> TokenClaims:
    return TokenClaims(jti=jti, event_id=event_id, issuer="security", key_id="k1", audience=["drift"],
                       expires_at=time.time() + expires_in)


async def test_a_token_is_used_once_for_one_event(db: Database) -> None:
    replay = ReplayStore(db)
    await replay.consume(_claims("j1"), "task-1")
    await replay.consume(_claims("j1"), "task-1")  # the same step replayed after a crash
    with pytest.raises(VerificationError, match="earlier use"):
        await replay.consume(_claims("j1"), "task-2")
    with pytest.raises(VerificationError, match="another event"):
        await replay.consume(_claims("j1", event_id="e2"), "task-1")
    await replay.consume(_claims("old", expires_in=-3600), "task-3")
    assert await replay.forget_expired() == 1


# --- migrations ---------------------------------------------------------------------------------

async def test_migrations_apply_once(db: Database) -> None:
    assert await db.migrate() == 0  # the fixture migrated it
    assert await db.row("SELECT max(version), count(*) FROM schema_migrations") == (LATEST, LATEST)


async def test_a_newer_schema_stops_with_one_line(db: Database) -> None:
    await db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                     (LATEST + 7, "from the future", NOW.isoformat()))
    with pytest.raises(SchemaTooNew) as stopped:
        await db.migrate()
    message = str(stopped.value)
    assert "\n" not in message and f"schema version {LATEST + 7}" in message and f"knows ({LATEST})" in message


async def test_replicas_starting_together_migrate_once(state_config: StateConfig, tmp_path: Path) -> None:
    # several rounds on new files: switching a new SQLite file to WAL raced in about 1 open in 80
    async def start(round_: Path, i: int) -> int:
        async with open_state(state_config, round_ / "drift.sqlite", round_ / f"graph-{i}.sqlite") as s:
            row = await s.events.db.row("SELECT count(*) FROM schema_migrations")
            return int(row[0]) if row else 0

    for n in range(10):
        round_ = tmp_path / f"round-{n}"
        assert await asyncio.gather(*(start(round_, i) for i in range(8))) == [LATEST] * 8


# --- retention, checkpoints included ------------------------------------------------------------

async def test_retention_prunes_what_is_closed_and_old_and_never_the_audit(state_config: StateConfig,
                                                                           tmp_path: Path) -> None:
    async with open_state(state_config, tmp_path / "drift.sqlite", tmp_path / "graph.sqlite") as s:
        old = NOW - timedelta(days=100)
        closed, _ = await s.events.accept(_event("closed"), old)
        await s.events.save(_with_verdict(closed).model_copy(update={"state": DecisionState.DONE, "updated_at": old}))
        waiting, _ = await s.events.accept(_event("waiting"), old)
        await s.events.save(_with_verdict(waiting).model_copy(update={
            "state": DecisionState.AWAITING_APPROVAL, "updated_at": old}))
        recent, _ = await s.events.accept(_event("recent"), NOW)
        await s.events.save(_with_verdict(recent).model_copy(update={"state": DecisionState.DONE}))
        for decision in (closed, waiting, recent):
            config = {"configurable": {"thread_id": decision.event.event_id, "checkpoint_ns": ""}}
            await s.checkpoints.aput(config, empty_checkpoint(), {}, {})
            await s.audit.append(decision.event.event_id, "decision", {"n": 1})
        for decision in (closed, recent):
            assert await s.outcomes.record(decision.event.notification.app, outcome_of(decision, OutcomeKind.REVERTED))
        await s.acting.outbox_mark(closed.event.event_id, "closed:sync", "done", old)
        await s.acting.outbox_mark(closed.event.event_id, "closed:annotate:x", "requested", old)
        await s.acting.schedule(closed.event.event_id, "expire_allowance", old, {})
        await s.acting.schedule(waiting.event.event_id, "deferred_sync", old, {})
        [done_job] = [j for j in await s.acting.pending() if j.event_id == closed.event.event_id]
        await s.acting.finish(done_job.id, ok=True)

        pruned = await Retention(s, timedelta(days=90)).prune(NOW)

        assert (pruned.decisions, pruned.threads, pruned.outcomes) == (1, 1, 1)
        assert await s.outcomes.get(closed.event.event_id) is None
        assert await s.outcomes.get(recent.event.event_id) is not None
        assert await s.events.get(closed.event.event_id) is None
        assert await s.events.get(waiting.event.event_id) is not None
        assert await s.events.get(recent.event.event_id) is not None
        alive = {d.event.event_id: await s.checkpoints.aget_tuple(
            {"configurable": {"thread_id": d.event.event_id, "checkpoint_ns": ""}}) is not None
            for d in (closed, waiting, recent)}
        assert alive == {closed.event.event_id: False, waiting.event.event_id: True, recent.event.event_id: True}
        # outbox rows of the pruned decision go, except a write still unresolved; a pending job stays
        assert await s.acting.outbox_row(closed.event.event_id, "closed:sync") is None
        assert await s.acting.outbox_row(closed.event.event_id, INTENT_STEP) is None
        assert await s.acting.outbox_state(closed.event.event_id, "closed:annotate:x") == "requested"
        assert await s.acting.outbox_row(waiting.event.event_id, INTENT_STEP) is not None
        assert [j.event_id for j in await s.acting.pending()] == [waiting.event.event_id]
        assert len(await s.audit.records()) == 3 and (await s.audit.verify()).ok


# --- each backend's own edges -------------------------------------------------------------------

async def test_a_sqlite_file_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "drift.sqlite"
    async with EventStore(path) as store:
        kept, _ = await store.accept(_event("a"), NOW)
        await store.db.execute("DROP TABLE schema_migrations")  # as main's files were: tables, no versions
    async with EventStore(path) as reopened:
        assert await reopened.get(kept.event.event_id) is not None
        assert await reopened.db.row("SELECT max(version) FROM schema_migrations") == (LATEST,)


async def test_an_unreachable_postgresql_is_one_clear_error_without_the_password() -> None:
    from agents.drift.database import StoreUnavailable
    from agents.drift.postgres import PostgresDatabase
    from driftwise.supervisor import free_port_block

    dsn = f"postgresql://driftwise:s3cret@127.0.0.1:{free_port_block(1)}/driftwise"
    with pytest.raises(StoreUnavailable) as failed:
        await PostgresDatabase.open(dsn, timeout_s=0.5)
    assert "cannot reach the state database" in str(failed.value) and "s3cret" not in str(failed.value)


# --- leases and job claims (agents.drift.leases) ------------------------------------------------

async def test_a_lease_has_one_live_owner_and_is_free_again_once_it_runs_out(db: Database) -> None:
    leases = LeaseStore(db)
    taken = await asyncio.gather(*(leases.acquire("e1", f"r{i}", 30) for i in range(6)))
    assert taken.count(True) == 1  # replicas racing for one decision: one wins
    owner = f"r{taken.index(True)}"
    assert await leases.acquire("e1", owner, 30)  # its own: renewed
    assert await leases.renew(owner, ["e1", "e2"], 30) == {"e1"}
    assert await leases.held(owner) == 1 and await leases.held("other") == 0
    assert await leases.acquire("e2", "other", -1)  # a lease that already ran out on the database's clock
    assert await leases.renew("other", ["e2"], 30) == set()  # ran out: lost, never silently renewed
    assert await leases.acquire("e2", owner, 30)
    await leases.release("e1", "other")  # not its lease: nothing happens
    assert not await leases.acquire("e1", "other", 30)
    await leases.release("e1", owner)
    assert await leases.acquire("e1", "other", 30)


async def test_undecided_decisions_without_a_live_lease_are_the_ones_to_take_over(db: Database) -> None:
    store, leases = EventStore(db), LeaseStore(db)
    for app in ("free", "mine", "theirs", "ran-out"):
        await store.accept(_event(app), NOW)
    done, _ = await store.accept(_event("done"), NOW)
    await store.save(done.model_copy(update={"state": DecisionState.FAILED}))
    ids = {d.event.notification.app: d.event.event_id for d in await store.undecided()}
    assert await leases.acquire(ids["mine"], "me", 30)
    assert await leases.acquire(ids["theirs"], "them", 30)
    assert await leases.acquire(ids["ran-out"], "them", -1)  # already run out on the database's clock
    found = [(d.event.notification.app, own) for d, own in await leases.unowned("me")]
    # mine: this replica's own, from before a restart, first
    assert found[0] == ("mine", True) and sorted(found[1:]) == [("free", False), ("ran-out", False)]


async def test_a_fenced_write_of_a_decision_another_replica_leases_is_refused(db: Database) -> None:
    from agents.drift.errors import LeaseLost

    mine, theirs = EventStore(db, Fence("me")), EventStore(db, Fence("them"))
    acting, audit = ActingStore(db, Fence("me")), AuditLog(db, Fence("me"))
    decision, _ = await mine.accept(_event("a"), NOW)
    event_id = decision.event.event_id
    leases = LeaseStore(db)
    assert await leases.acquire(event_id, "them", 30)
    deciding = decision.model_copy(update={"state": DecisionState.DECIDING})
    for write in (mine.save(deciding), acting.outbox_mark(event_id, "a:sync", "requested", NOW),
                  audit.append(event_id, "decision", {"n": 1})):
        with pytest.raises(LeaseLost, match="leased by replica them"):
            await write
    assert (await mine.get(event_id)).state == DecisionState.RECEIVED
    assert await acting.outbox_state(event_id, "a:sync") is None and await audit.records() == []
    await theirs.save(deciding)  # the holder writes
    await leases.release(event_id, "them")
    await mine.save(deciding)  # nobody holds it: the write goes through


async def test_a_keyed_audit_append_is_made_once_across_writers(db: Database) -> None:
    audit = AuditLog(db)
    made = await asyncio.gather(*(audit.append("e1", "decision", {"n": i}, once="decided") for i in range(5)))
    assert sum(r is not None for r in made) == 1
    assert [r.payload["step"] for r in await audit.records("e1")] == ["decided"]


async def test_a_due_job_is_claimed_by_one_replica_and_again_once_its_claim_runs_out(db: Database) -> None:
    first, second = ActingStore(db), ActingStore(db)
    for i in range(20):
        await first.schedule(f"e{i}", "deferred_sync", NOW - timedelta(minutes=1), {})
    claimed = await asyncio.gather(*(s.due(NOW, owner=f"r{i}", claim_s=30, limit=10)
                                     for i, s in enumerate([first, second, first, second])))
    ids = [j.id for jobs in claimed for j in jobs]
    assert len(ids) == len(set(ids)) and len(ids) >= 10  # no job twice (a locked one is skipped, not waited for)
    while again := await second.due(NOW, owner="r5", claim_s=30):  # the next ticks take what was skipped
        ids += [j.id for j in again]
    assert len(ids) == 20 and len(set(ids)) == 20  # every job once, whoever ticked first
    assert await first.due(NOW, owner="r9") == []  # all held
    await first.finish(ids[0], ok=False, error="boom", retry=True)
    assert [j.id for j in await second.due(NOW, owner="r9")] == [ids[0]]  # released by finish: claimable
    await asyncio.gather(*(first.schedule(f"late{i}", "expire_allowance", NOW, {}) for i in range(2)))
    short = await first.due(NOW, owner="dies", claim_s=-1)  # the claimer died and its claim ran out
    assert len(short) == 2
    assert {j.id for j in await second.due(NOW, owner="r9")} == {j.id for j in short}
