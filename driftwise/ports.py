"""Picking free loopback ports for the processes Driftwise starts (the supervisor, the sandbox's Prometheus,
tests): below the kernel's ephemeral range, checked by binding."""

from __future__ import annotations

import random
import socket
from pathlib import Path


class PortsError(RuntimeError):
    """No free block of ports was found."""


_LISTEN_FLOOR = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _listener_ports() -> range | None:
    """Where to pick listening ports: below the kernel's ephemeral range. Every outgoing connection takes
    its local port from that range, so a port picked there (bind to 0) can be a client's a moment later,
    and the server that was to listen on it fails with "address already in use". None: no such range
    known (not Linux), pick with bind to 0."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(_LISTEN_FLOOR, low) if low - _LISTEN_FLOOR >= 1000 else None


def _candidate_base(host: str, n: int, ports: range | None) -> int:
    if ports is not None:
        return random.randrange(ports.start, ports.stop - n)
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def free_port_block(n: int, host: str = "127.0.0.1") -> int:
    """A base port whose next n-1 ports are free too (checked by binding, then released), below the
    ephemeral range where the machine has one."""
    ports = _listener_ports()
    for _ in range(200):
        base = _candidate_base(host, n, ports)
        if base + n >= 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for i in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind((host, base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise PortsError(f"no block of {n} free ports found on {host}")


def free_port(host: str = "127.0.0.1") -> int:
    """One free port to listen on (see free_port_block)."""
    return free_port_block(1, host)
