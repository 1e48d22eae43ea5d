"""cmdcenter benchmarks: ``.venv/bin/python -m bench`` (see docs/benchmarks.md)."""
