"""Benchmarks: run with ``make bench`` (``python -m bench``); results go into bench/README.md."""
