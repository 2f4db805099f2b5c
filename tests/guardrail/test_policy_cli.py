"""`driftwise policy test`: the repo's Rego tests pass, and a failing Rego test is reported (exit 1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT


def _policy(*args: str) -> subprocess.CompletedProcess[str]:
    # a subprocess: a regopy crash must fail this test, not kill the test session
    return subprocess.run([sys.executable, "-m", "driftwise", "policy", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.slow
def test_repo_rego_tests_pass() -> None:
    done = _policy("test", "-v", str(ROOT / "policies"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("PASS: ")
    assert "test_security_enforce_is_binding" in done.stdout


@pytest.mark.slow
def test_a_failing_rego_test_is_reported(tmp_path: Path) -> None:
    for f in (ROOT / "policies").glob("*.rego"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "broken_test.rego").write_text(
        "package driftwise.broken_test\n\nimport data.driftwise.guardrail\nimport rego.v1\n\n"
        'input_allow_is_forbidden := {"event_id": "e", "proposal": null, "facts": {}}\n\n'
        'test_allow_is_forbidden if {\n\tguardrail.verdict.action == "allow"\n}\n\n'
        "test_trivially_true if {\n\ttrue\n}\n"
    )
    done = _policy("test", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL broken_test.rego: data.driftwise.broken_test.test_allow_is_forbidden" in done.stdout
    assert "test_trivially_true" not in done.stdout  # passes, so only in the count
    assert done.stdout.strip().splitlines()[-1].startswith("FAIL: ")


def test_missing_policy_dir_is_a_one_line_error(tmp_path: Path) -> None:
    done = _policy("test", str(tmp_path / "nope"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "does not exist" in done.stderr
