"""Benchmarks: scripts that print figures (run them with ``.venv/bin/python bench/NAME.py``)."""
