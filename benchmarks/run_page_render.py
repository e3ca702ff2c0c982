"""Server time to render a benchmark run's page and its progress JSON, for a run of many clips.

Claim (issue 7): the run page renders in under 200 ms of server time for 10 000 clips,
because progress is aggregated in SQL. Side by side, in the same run: the same counts done
the naive way (iterating the clips in Python), to show what the aggregation saves.

    python benchmarks/run_page_render.py [--clips 10000] [--repeats 20]

Uses a throw-away SQLite database under a temporary folder (migrated here), so it never
touches the site's database. Prints median and p95 milliseconds and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]
BUDGET_MS = 200.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000, help="clips in the run (default 10000)")
    parser.add_argument("--repeats", type=int, default=20, help="timed requests per page (default 20)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hafm-run-page-")
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ["HAFM_MEDIA_DIR"] = f"{workdir}/media"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run = build_run(args.clips)

    from django.test import Client
    from django.urls import reverse

    client = Client()
    pages = {"run page": reverse("evalsite:run_detail", args=[run.id]),
             "progress JSON": reverse("evalsite:run_progress", args=[run.id])}
    print(f"run of {args.clips} clips ({len(SYSTEMS)} systems), SQLite, {args.repeats} requests each")
    results = {}
    for name, url in pages.items():
        response = client.get(url)  # warm-up (templates compiled, connection opened)
        assert response.status_code == 200, response.status_code
        results[name] = timed(lambda url=url: client.get(url), args.repeats)
    results["naive counts (Python loop)"] = timed(lambda: naive_counts(run), max(3, args.repeats // 4))
    for name, times in results.items():
        print(f"{name:28s} median {statistics.median(times):8.1f} ms   p95 {percentile(times, 95):8.1f} ms")
    page = statistics.median(results["run page"])
    naive = statistics.median(results["naive counts (Python loop)"])
    print(f"run page / budget {BUDGET_MS:.0f} ms: {page / BUDGET_MS:.3f}  "
          f"({'within' if page < BUDGET_MS else 'OVER'} budget)")
    print(f"naive counting alone / run page: {naive / page:.1f}x")
    return 0 if page < BUDGET_MS else 1


def build_run(n_clips: int):
    """A done-ish run: excerpts, clips in mixed states (some failed with reasons), one statement each."""
    from django.utils import timezone

    from evalsite.models import BenchmarkRun, Checkpoint, Dataset, Excerpt, GeneratedClip
    from evalsite.services.benchmarks import plan_clips

    n_excerpts = n_clips // len(SYSTEMS)
    dataset = Dataset.objects.create(kind="synthetic", source="synthetic:bench", manifest_path="-",
                                     manifest_hash="bench")
    Excerpt.objects.bulk_create([
        Excerpt(dataset=dataset, key=f"e{i:06d}", track=f"t{i:06d}", split="test", start_s=0, duration_s=10,
                vocal_path="-", accompaniment_path="-", content_hash=str(i)) for i in range(n_excerpts)],
        batch_size=500)
    checkpoint = Checkpoint.objects.create(name="bench", path="-", content_hash="bench")
    run = BenchmarkRun.objects.create(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS,
                                      n_excerpts=n_excerpts, seed=0, embedder="logmel", parameters_hash="bench",
                                      code_version="bench", status="running", started=timezone.now())
    excerpts = list(Excerpt.objects.filter(dataset=dataset).values_list("id", "key", "track"))
    plan_clips(run, excerpts)
    ids = list(GeneratedClip.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    done, failed = ids[: int(0.7 * len(ids))], ids[int(0.7 * len(ids)): int(0.72 * len(ids))]
    GeneratedClip.objects.filter(id__in=done).update(status="done", accompaniment_path="x.wav", seconds=1.5,
                                                              finished=timezone.now())
    GeneratedClip.objects.filter(id__in=failed).update(status="failed", error="InvalidAudioError: silent vocal",
                                                       finished=timezone.now())
    return run


def naive_counts(run) -> dict:
    from evalsite.models import GeneratedClip

    counts: dict = {}
    for clip in GeneratedClip.objects.filter(run=run):
        counts[(clip.system, clip.status)] = counts.get((clip.system, clip.status), 0) + 1
    return counts


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


if __name__ == "__main__":
    sys.exit(main())
