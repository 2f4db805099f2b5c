"""Load driftwise settings exactly as a container would: a YAML file plus DRIFTWISE_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from driftwise.settings import Settings, load_settings


def settings_from(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], config: Path | None = None) -> Settings:
    for name in list(os.environ):
        if name.upper().startswith("DRIFTWISE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("DRIFTWISE_") and name != "DRIFTWISE_CONFIG":
            monkeypatch.setenv(name, value)
    return load_settings(config)
