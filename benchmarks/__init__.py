"""Benchmarks of jinit: each script writes JSON to benchmarks/results/ and prints a table."""
