"""Benchmarks and training scripts (``python bench/NAME.py``); never part of the tests."""
