"""How every client of a backend verifies its TLS certificate, from that backend's two settings."""

from __future__ import annotations

import ssl
from pathlib import Path


def verify_context(verify_tls: bool, ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """httpx's `verify`: the system CAs, only the CAs of `ca_bundle`, or (verify_tls false) no check at all."""
    if not verify_tls:
        return False
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_bundle {ca_bundle} is not a readable PEM file of CA certificates: {exc}") from exc
