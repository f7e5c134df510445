"""``make bench``: Hookline's ingest against a bare aiohttp baseline, plus end-to-end events/s.

Run with ``.venv/bin/python -m bench``. Knobs (environment): ``BENCH_DURATION`` (seconds
of each wrk run, default 10) and ``BENCH_E2E_EVENTS`` (events sent end to end, default
5000). Results are printed and written to ``bench/results/latest.json``. A benchmark
reports; it never fails the build because a target is not met.
"""
