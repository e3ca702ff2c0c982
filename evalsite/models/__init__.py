"""Benchmark records. One module per kind of record; each is imported here."""

from evalsite.models.benchmarks import (
    BenchmarkRun,
    Checkpoint,
    Dataset,
    Excerpt,
    GeneratedClip,
    SystemResult,
)

__all__ = ["BenchmarkRun", "Checkpoint", "Dataset", "Excerpt", "GeneratedClip", "SystemResult"]

from evalsite.models.fad import FadResult, FadShard  # noqa: E402

__all__ += ["FadResult", "FadShard"]
