"""The audit log: hash chain, append-only, and tampering (edit, delete, reorder) detected."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agents.drift.audit import GENESIS, AuditLog, record_hash
from tests.support.processes import ROOT


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


@pytest.mark.slow
def test_cli_show_and_verify(tmp_path: Path) -> None:
    db = tmp_path / "drift.sqlite"
    asyncio.run(_filled(db, 3))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "driftwise", "audit", *args, "--db", str(db)],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)

    ok = cli("verify")
    assert ok.returncode == 0 and '"checked": 3' in ok.stdout, ok.stderr
    shown = cli("show", "--event", "evt-1")
    assert shown.returncode == 0 and len(shown.stdout.strip().splitlines()) == 1 and "allow" in shown.stdout
    raw = _raw(db)
    raw.execute("UPDATE audit SET payload = '{\"i\":0}' WHERE seq = 1")
    raw.commit()
    raw.close()
    broken = cli("verify")
    assert broken.returncode == 1 and "seq 1 (event evt-0)" in broken.stderr and "Traceback" not in broken.stderr
    missing = subprocess.run([sys.executable, "-m", "driftwise", "audit", "verify", "--db", str(tmp_path / "x")],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
