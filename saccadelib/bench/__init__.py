"""Benchmarks: each writes its numbers with run metadata (commit, device, threads, wall time)."""
