"""Benchmarks: the long runs and the speed and load figures, each against a baseline."""
