"""Benchmarks, run by hand (see bench/README.md); never imported by the tests."""
