"""Benchmarks: each writes its numbers, with run metadata, under results/."""
