"""Writes of the benchmark site. Views, commands, the CLI and Celery tasks call these.

- `benchmarks`: register datasets and checkpoints, launch, plan, dispatch, cancel, resume runs.
- `benchmark_work`: what the Celery tasks do: generate clips, measure systems, compare them.
- `benchmark_export`: a run as JSON + CSV with its reproducibility record, and replaying it.
"""
