"""Driftwise's command line, configuration, process supervisor, sandbox, evaluation and benchmarks."""
