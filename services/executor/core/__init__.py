"""The executor's pure core: filter evaluation and formatters (no I/O, time passed in)."""
