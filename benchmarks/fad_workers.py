"""Benchmark: the same FAD job on two Celery worker processes against one, one thread each.

Each run gets a fresh embedding cache; the time is from dispatch to the stored result (worker
start-up excluded). Workers are real `celery worker --pool solo` processes with
OMP_NUM_THREADS=1, on the broker of `--broker` (default: the embedded SQLite broker in a
temporary folder; pass redis://127.0.0.1:6379/14 for Redis).

    .venv/bin/python benchmarks/fad_workers.py                      # crepe, 24 files of 4 s per side
    .venv/bin/python benchmarks/fad_workers.py --files 48 --seconds 10 --embedder vggish
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "HAFM_DEVICE": "cpu"}


def write_sets(root: Path, files: int, seconds: float) -> tuple[Path, Path]:
    from hafm_core.audio import write_audio
    from hafm_core.synth import synthesize_multitrack

    for side, offset in (("background", 0), ("eval", 1000)):
        for i in range(files):
            track = synthesize_multitrack(offset + i, seconds, 16_000)
            write_audio(root / side / f"song{i:03d}.wav", 0.5 * track.accompaniment, 16_000)
    return root / "background", root / "eval"


def start_workers(n: int, env: dict, log_dir: Path) -> list[subprocess.Popen]:
    workers = []
    for i in range(n):
        log = log_dir / f"worker-{n}-{i}.log"
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "--pool", "solo", "--concurrency", "1",
             "--queues", env["HAFM_CELERY_QUEUE"], "--hostname", f"bench{n}-{i}@%h", "--without-gossip",
             "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True))
    for i, _ in enumerate(workers):
        log = log_dir / f"worker-{n}-{i}.log"
        deadline = time.monotonic() + 120
        while "ready." not in log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
    return workers


def stop(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        process.wait(timeout=60)


def timed_job(n_workers: int, background: Path, evaluation: Path, args, tmp: Path) -> tuple[float, float]:
    from evalsite.models import FadResult
    from evalsite.services import fad as fad_services

    env = {**os.environ, **THREAD_ENV, "HAFM_CACHE_DIR": str(tmp / f"cache-{n_workers}")}
    workers = start_workers(n_workers, env, tmp)
    try:
        start = time.perf_counter()
        result = fad_services.start_fad(str(background), str(evaluation), args.embedder, shard_files=args.shard_files)
        while FadResult.objects.get(id=result.id).status in FadResult.ACTIVE:
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
    finally:
        stop(workers)
    result.refresh_from_db()
    if result.status != FadResult.Status.DONE:
        raise SystemExit(f"job failed: {result.error}")
    return elapsed, result.fad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24, help="files per side")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--embedder", default="crepe")
    parser.add_argument("--shard-files", type=int, default=4)
    parser.add_argument("--broker", help="broker URL (default: SQLite in the temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update({
            "HAFM_VAR_DIR": str(tmp), "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "CELERY_BROKER_URL": args.broker or f"sqla+sqlite:///{tmp}/broker.sqlite3",
            "HAFM_CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}", "DJANGO_SETTINGS_MODULE": "evalsite.settings",
        })
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        background, evaluation = write_sets(tmp, args.files, args.seconds)
        one, fad_one = timed_job(1, background, evaluation, args, tmp)
        two, fad_two = timed_job(2, background, evaluation, args, tmp)
        print(f"{args.embedder}: {2 * args.files} files of {args.seconds:g} s in shards of {args.shard_files}, "
              f"broker {os.environ['CELERY_BROKER_URL'].split(':')[0]}, {os.cpu_count()} CPUs")
        print(f"1 worker : {one:8.2f} s  FAD {fad_one:.6f}")
        print(f"2 workers: {two:8.2f} s  FAD {fad_two:.6f}")
        print(f"speed-up : {one / two:8.2f}x")


if __name__ == "__main__":
    main()
