"""Benchmarks: results saved with the command that produced them (not tests)."""
