"""Reasoners: turn a drift report, evidence and specialists' recommendations into the drift agent's Recommendation."""
