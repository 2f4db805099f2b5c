"""The audit log: hash chain, append-only, and tampering (edit, delete, reorder) detected."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agents.drift.audit import GENESIS, AuditLog, record_hash
from agents.drift.audit_anchor import AuditAnchor, CheckpointFile, FileSink
from protocol.signing import Signer, TrustStore, generate_key, write_key_pair


async def _filled(path: Path, n: int = 4) -> None:
    async with AuditLog(path) as log:
        for i in range(n):
            await log.append(f"evt-{i % 2}", "decision", {"i": i, "verdict": {"verdict": {"action": "allow"}},
                                                            "text": "é \"quoted\""})


def _raw(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; DROP TRIGGER audit_head_forward;")
    return db


async def test_append_chains_records(tmp_path: Path) -> None:
    db = tmp_path / "drift.sqlite"
    async with AuditLog(db) as log:
        first = await log.append("evt-1", "decision", {"verdict": {"action": "enforce"}})
        second = await log.append("evt-2", "approval", {"approver": "ana"})
        assert (first.seq, first.prev_hash, second.prev_hash) == (1, GENESIS, first.hash)
        body = {"schema_version": "1", "seq": 2, "event_id": "evt-2", "kind": "approval",
                "at": second.at.isoformat(), "payload": {"approver": "ana"}}
        assert second.hash == record_hash(first.hash, body)
        assert [r.seq for r in await log.records("evt-2")] == [2]
        assert await log.records() == [first, second]
        assert (await log.verify()).ok
    async with AuditLog(db) as log:  # reopened: the chain continues
        third = await log.append("evt-1", "apply", {})
        assert third.prev_hash == second.hash and (await log.verify()).checked == 3


async def test_updates_and_deletes_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    await _filled(db)
    raw = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE audit SET payload = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM audit WHERE seq = 4")


async def test_non_json_payload_is_refused(tmp_path: Path) -> None:
    from agents.drift.audit import AuditError

    async with AuditLog(tmp_path / "a.sqlite") as log:
        with pytest.raises(AuditError, match="not JSON"):
            await log.append("e", "decision", {"x": object()})


@pytest.mark.parametrize(("tamper", "first_broken"), [
    ("UPDATE audit SET payload = replace(payload, '\"i\":1', '\"i\":9') WHERE seq = 2", "seq 2"),
    ("DELETE FROM audit WHERE seq = 2", "seq 3"),
    ("DELETE FROM audit WHERE seq = 4", "head"),
    ("UPDATE audit SET seq = seq + 10 WHERE seq IN (2, 3); UPDATE audit SET seq = 3 WHERE seq = 12;"
     "UPDATE audit SET seq = 2 WHERE seq = 13", "seq 2"),
    ("UPDATE audit SET event_id = 'evt-x' WHERE seq = 1", "seq 1"),
], ids=["edit-payload", "delete-middle", "delete-last", "reorder", "edit-event"])
async def test_tampering_is_detected(tmp_path: Path, tamper: str, first_broken: str) -> None:
    db = tmp_path / "a.sqlite"
    await _filled(db)
    raw = _raw(db)
    raw.executescript(tamper)
    raw.commit()
    raw.close()
    async with AuditLog(db) as log:
        result = await log.verify()
    assert not result.ok and first_broken in result.problems[0], result.problems


# --- the signed, anchored head ---------------------------------------------------------------


def _state(tmp_path: Path) -> tuple[Path, Signer]:
    """A state folder as the drift agent keeps it: drift.sqlite, keys/ with the trust store, checkpoints."""
    key = generate_key("drift")
    write_key_pair(key, "drift", tmp_path / "keys")
    trust = TrustStore()
    trust.add("drift", key)
    trust.save(tmp_path / "keys" / "trust.json")
    return tmp_path / "drift.sqlite", Signer("drift", key)


async def _anchored(db: Path, signer: Signer, n: int, every: int = 3) -> None:
    checkpoints = CheckpointFile(db.parent / "audit-checkpoints.jsonl")
    async with AuditLog(db) as log:
        await log.anchor_with(AuditAnchor(signer, [FileSink(checkpoints.path)], every, checkpoints.last_seq()))
        for i in range(n):
            await log.append(f"evt-{i % 2}", "decision", {"i": i, "verdict": {"verdict": {"action": "allow"}}})


def _cli(*args: str) -> tuple[int, str]:
    """The real `driftwise` command, in process (typer's runner): exit code and everything it printed."""
    from typer.testing import CliRunner

    from driftwise.cli import app

    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


async def test_checkpoints_every_n_records_at_start_and_on_close(tmp_path: Path) -> None:
    db, signer = _state(tmp_path)
    await _anchored(db, signer, 7, every=3)
    signed, problems = CheckpointFile(tmp_path / "audit-checkpoints.jsonl").read(
        TrustStore.load(tmp_path / "keys" / "trust.json"))
    # 3 and 6 on the way, then the head (7) on close
    assert problems == [] and [c.seq for c in signed] == [3, 6, 7]
    async with AuditLog(db) as log:
        records = await log.records()
        assert signed[-1].head == records[-1].hash
        assert (await log.verify(signed)).ok
    await _anchored(db, signer, 0)  # reopened with nothing new: the head is already anchored
    assert [c.seq for c in CheckpointFile(tmp_path / "audit-checkpoints.jsonl").read(
        TrustStore.load(tmp_path / "keys" / "trust.json"))[0]] == [3, 6, 7]


TAMPERING = {
    "edit-payload": ("UPDATE audit SET payload = replace(payload, '\"i\":1', '\"i\":9') WHERE seq = 2", "seq 2"),
    "delete-middle": ("DELETE FROM audit WHERE seq = 2", "seq 3"),
    "reorder": ("UPDATE audit SET seq = seq + 10 WHERE seq IN (2, 3); UPDATE audit SET seq = 3 WHERE seq = 12;"
                "UPDATE audit SET seq = 2 WHERE seq = 13", "seq 2"),
    "truncate-newest-head-rolled-back": (
        "DELETE FROM audit WHERE seq > 3; DELETE FROM audit_head;"
        "INSERT INTO audit_head (id, seq, hash) SELECT 1, seq, hash FROM audit WHERE seq = 3",
        "records seq 4..5 are missing"),
    "delete-every-row": ("DELETE FROM audit; DELETE FROM audit_head", "every record was deleted"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_audit_verify_names_every_kind_of_tampering(tmp_path: Path, case: str) -> None:
    db, signer = _state(tmp_path)
    asyncio.run(_anchored(db, signer, 5))
    code, out = _cli("audit", "verify", "--db", str(db))
    assert code == 0 and '"checked": 5' in out and '"checkpoint_seq": 5' in out, out
    raw = _raw(db)
    raw.execute("DROP TRIGGER audit_head_no_delete")
    raw.executescript(TAMPERING[case][0])
    raw.commit()
    raw.close()
    code, out = _cli("audit", "verify", "--db", str(db))
    assert code == 1 and "audit chain broken" in out and TAMPERING[case][1] in out, out


def test_a_forged_or_missing_checkpoint_is_named(tmp_path: Path) -> None:
    db, signer = _state(tmp_path)
    asyncio.run(_anchored(db, signer, 4))
    path = tmp_path / "audit-checkpoints.jsonl"
    lines = path.read_text().splitlines()
    # the readable copy says less than what was signed: the signed claim wins, and the edit is named
    path.write_text("\n".join([*lines[:-1], lines[-1].replace('"seq":4', '"seq":2')]) + "\n")
    code, out = _cli("audit", "verify", "--db", str(db))
    assert code == 1 and "differs from what was signed" in out, out
    # a checkpoint signed by a key the trust store does not pin proves nothing
    stranger = Signer("drift", generate_key("drift"))
    path.write_text("\n".join(lines) + "\n")
    asyncio.run(_anchored(db, stranger, 3))
    code, out = _cli("audit", "verify", "--db", str(db))
    assert code == 1 and "signature does not verify" in out, out
    # the whole file gone, records still there: nothing proves the chain's length
    path.unlink()
    code, out = _cli("audit", "verify", "--db", str(db))
    assert code == 1 and "no signed checkpoint" in out, out


def test_verify_accepts_the_agents_jwks_and_export_writes_the_chain(tmp_path: Path) -> None:
    import json

    db, signer = _state(tmp_path)
    asyncio.run(_anchored(db, signer, 4))
    code, out = _cli("audit", "verify", "--db", str(db), "--trust", str(tmp_path / "keys" / "drift.jwks.json"))
    assert code == 0, out
    out_file = tmp_path / "chain.jsonl"
    code, out = _cli("audit", "export", "--db", str(db), "--out", str(out_file))
    assert code == 0 and "exported 4 audit records" in out, out
    exported = [json.loads(line) for line in out_file.read_text().splitlines()]

    async def stored() -> list[dict]:
        async with AuditLog(db) as log:
            return [r.model_dump(mode="json") for r in await log.records()]

    assert exported == asyncio.run(stored())
    assert [r["prev_hash"] for r in exported[1:]] == [r["hash"] for r in exported[:-1]]


async def test_checkpoints_ship_to_an_http_log_endpoint(tmp_path: Path) -> None:
    """Like OPA's decision logs: a JSON array per POST, with the bearer token; the receiver verifies each."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from agents.drift.audit_anchor import HttpSink
    from protocol.models import SignedCheckpoint
    from protocol.signing import verify_checkpoint

    received: list[tuple[str | None, list]] = []

    async def logs(request: Request) -> Response:
        received.append((request.headers.get("authorization"), await request.json()))
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/logs", logs, methods=["POST"])])
    db, signer = _state(tmp_path)
    trust = TrustStore.load(tmp_path / "keys" / "trust.json")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), base_url="http://log") as http:
        sinks = [FileSink(tmp_path / "audit-checkpoints.jsonl"), HttpSink(http, "http://log/logs", "log-token", 2.0)]
        async with AuditLog(db) as log:
            await log.anchor_with(AuditAnchor(signer, sinks, 2))
            for i in range(5):
                await log.append("evt", "decision", {"i": i})
            head = (await log.head())[0]
    assert [auth for auth, _ in received] == ["Bearer log-token"] * 3
    shipped = [SignedCheckpoint.model_validate(item) for _, batch in received for item in batch]
    assert [verify_checkpoint(trust, s.jws, "drift").seq for s in shipped] == [2, 4, head]
    # a log endpoint that refuses is logged; the file still holds every checkpoint and appends go on
    refusing = httpx.MockTransport(lambda _: httpx.Response(503))
    async with httpx.AsyncClient(transport=refusing) as down, AuditLog(db) as log:
        await log.anchor_with(AuditAnchor(signer, [FileSink(tmp_path / "audit-checkpoints.jsonl"),
                                                   HttpSink(down, "http://log/logs", None, 2.0)], 1, 5))
        await log.append("evt", "decision", {"i": 5})
    assert CheckpointFile(tmp_path / "audit-checkpoints.jsonl").last_seq() == 6


def test_cli_show_and_a_missing_database(tmp_path: Path) -> None:
    db, signer = _state(tmp_path)
    asyncio.run(_anchored(db, signer, 3))
    code, out = _cli("audit", "show", "--event", "evt-1", "--db", str(db))
    assert code == 0 and len(out.strip().splitlines()) == 1 and "allow" in out, out
    code, out = _cli("audit", "verify", "--db", str(tmp_path / "x"))
    assert code == 2 and "does not exist" in out
