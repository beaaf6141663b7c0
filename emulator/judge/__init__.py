"""Judging a run: the oracle and the result."""
