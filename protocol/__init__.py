"""Driftwise's shared contracts: models, signing, trust store, sync windows. Imports nothing else of ours."""

from protocol.models import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION"]
