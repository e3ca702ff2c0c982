"""Benchmark tasks: thin callers of `evalsite.services.benchmark_work`, ids in, ids out.

All are `acks_late`: a task taken by a worker that dies is redelivered (Redis, RabbitMQ),
and every step skips what is already done, so a redelivery or a `resume` never counts a
clip twice. An unexpected error is recorded on the clips or the run, then raised again so
Celery reports it too.
"""

from celery import shared_task

from evalsite.services import benchmark_work


@shared_task(name="evalsite.benchmarks.generate_clips", acks_late=True)
def generate_clips(run_id: str, clip_ids: list[str]) -> int:
    try:
        made = benchmark_work.generate_clips(run_id, clip_ids)
    except Exception as error:  # recorded with its reason, then re-raised: nothing hidden
        benchmark_work.fail_clips(run_id, clip_ids, f"{type(error).__name__}: {error}")
        benchmark_work.advance(run_id)
        raise
    benchmark_work.advance(run_id)
    return made


@shared_task(name="evalsite.benchmarks.measure_system", acks_late=True)
def measure_system(run_id: str, system: str) -> str | None:
    try:
        result = benchmark_work.measure_system(run_id, system)
    except Exception as error:  # recorded with its reason, then re-raised: nothing hidden
        benchmark_work.fail_run(run_id, f"measuring {system}: {type(error).__name__}: {error}")
        raise
    return str(result.id) if result else None


@shared_task(name="evalsite.benchmarks.compare_systems", acks_late=True)
def compare_systems(run_id: str) -> dict | None:
    try:
        return benchmark_work.compare_systems(run_id)
    except Exception as error:  # recorded with its reason, then re-raised: nothing hidden
        benchmark_work.fail_run(run_id, f"comparing systems: {type(error).__name__}: {error}")
        raise
