"""Helpers that start real servers and real processes for the tests and benchmarks."""
