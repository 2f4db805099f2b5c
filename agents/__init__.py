"""Driftwise agents: the kit specialists are built from, the specialists, and the drift agent."""
