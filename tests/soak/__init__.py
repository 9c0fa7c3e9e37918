"""Soak runs against real broker processes, too long for the test suite: `python3 -m
tests.soak.kill9` and `python3 -m tests.soak.fuzz` (see the README's Development section)."""
