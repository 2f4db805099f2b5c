"""Listening ports are picked where no outgoing connection can take them first."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from driftwise import ports

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@pytest.mark.skipif(not RANGE.exists(), reason="no ephemeral port range to stay below (not Linux)")
def test_a_block_is_below_the_ephemeral_range_and_free() -> None:
    low = int(RANGE.read_text().split()[0])
    for _ in range(20):
        base = ports.free_port_block(13)
        assert base >= ports._LISTEN_FLOOR and base + 13 <= low
        with socket.socket() as s:  # free: a listener can bind it
            s.bind(("127.0.0.1", base + 12))


@pytest.mark.skipif(not RANGE.exists(), reason="no ephemeral port range to stay below (not Linux)")
def test_a_block_with_a_taken_port_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports.free_port()))
        held.listen()
        taken = held.getsockname()[1]
        picks = iter([taken - 1, taken - 5])  # the first candidate block covers the taken port
        monkeypatch.setattr(ports.random, "randrange", lambda *_: next(picks))
        assert ports.free_port_block(3) == taken - 5
