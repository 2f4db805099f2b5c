"""Tests do not read the caller's DRIFTWISE_* environment: settings come from what the test says."""

from __future__ import annotations

import os

import pytest

KEPT = frozenset({"DRIFTWISE_CI"})
"""Read by the test suite itself (fail instead of skip), never by Driftwise's settings."""


def clear_driftwise_environment(mp: pytest.MonkeyPatch) -> None:
    """Remove every DRIFTWISE_* variable but the suite's own for as long as `mp` is in force."""
    for key in list(os.environ):
        if key.startswith("DRIFTWISE_") and key not in KEPT:
            mp.delenv(key)
