"""Tests that need a real backend binary fail (not skip) when DRIFTWISE_CI=1."""

from __future__ import annotations

import os
import shutil

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
