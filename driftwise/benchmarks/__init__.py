"""Benchmarks that print their numbers; run with `python -m driftwise.benchmarks.<name>`."""
