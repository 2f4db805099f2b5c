"""The acting tests reuse the drift tests' sandbox process fixture (module-scoped, dynamic ports)."""

from tests.drift.conftest import sandbox

__all__ = ["sandbox"]
