"""Tests that need a real backend binary fail (not skip) when DRIFTWISE_CI=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("DRIFTWISE_CI") == "1"


def require_binary(name: str) -> str:
    """The path of a backend binary; in CI its absence is a failure, elsewhere a skip."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install -y prometheus; .ci/run does this)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


TOOLS = Path(__file__).resolve().parents[2] / ".tools"
_TOOL_DIRS = (TOOLS / "npm" / "node_modules" / ".bin", TOOLS / "py" / "bin", TOOLS / "bin")


def require_client(name: str) -> str:
    """A client the fidelity tests drive (PATH, then `make fidelity-clients`' .tools/); in CI its absence fails."""
    path = shutil.which(name) or next((str(d / name) for d in _TOOL_DIRS if (d / name).exists()), None)
    if path is None:
        message = f"{name} is not installed (make fidelity-clients; .ci/run does this)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
