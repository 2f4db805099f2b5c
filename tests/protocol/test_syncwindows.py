"""Sync window semantics as Argo CD applies them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from protocol.models import SyncWindow
from protocol.syncwindows import in_freeze, is_active, next_allow_start, parse_duration, sync_allowed

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # a Friday
SUNDAY_ALLOW = SyncWindow(kind="allow", schedule="0 2 * * 0", duration="4h", applications=["*"], manual_sync=True)
FREEZE = SyncWindow(kind="deny", schedule="30 16 18 11 *", duration="168h", applications=["*"])


def test_parse_duration() -> None:
    assert parse_duration("4h") == timedelta(hours=4)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("four hours")


def test_no_windows_allows_everything() -> None:
    assert sync_allowed([], NOW, "app")
    assert next_allow_start([], NOW, "app") is None


def test_allow_window_outside_hours() -> None:
    assert not is_active(SUNDAY_ALLOW, NOW)
    auto_only = SUNDAY_ALLOW.model_copy(update={"manual_sync": False})
    assert not sync_allowed([auto_only], NOW, "app")
    assert sync_allowed([SUNDAY_ALLOW], NOW, "app", manual=True)
    assert next_allow_start([SUNDAY_ALLOW], NOW, "app") == datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    inside = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert is_active(SUNDAY_ALLOW, inside) and sync_allowed([auto_only], inside, "app")


def test_deny_window_is_a_freeze_and_wins() -> None:
    windows = [SUNDAY_ALLOW, FREEZE]
    assert in_freeze(windows, NOW, "app")
    assert not sync_allowed(windows, NOW, "app")
    # the Sunday inside the freeze is skipped: the next usable allow start is the week after
    assert next_allow_start(windows, NOW, "app") == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    assert not in_freeze(windows, NOW + timedelta(days=8), "app")


def test_window_matching_by_application_and_namespace() -> None:
    w = FREEZE.model_copy(update={"applications": ["billing-*"]})
    assert in_freeze([w], NOW, "billing-api") and not in_freeze([w], NOW, "orders")
    ns = FREEZE.model_copy(update={"applications": [], "namespaces": ["cards"]})
    assert in_freeze([ns], NOW, "x", namespace="cards") and not in_freeze([ns], NOW, "x", namespace="web")


def test_time_zones() -> None:
    berlin = SyncWindow(kind="deny", schedule="0 17 * * *", duration="1h", time_zone="Europe/Berlin",
                        applications=["*"])
    assert is_active(berlin, NOW)  # 16:30 UTC is 17:30 in Berlin in November
    with pytest.raises(ValueError, match="time zone"):
        is_active(berlin.model_copy(update={"time_zone": "Mars/Olympus"}), NOW)
