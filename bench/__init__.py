"""Benchmarks: run with ``make bench`` (``python -m bench``); results go into README.md by hand."""
