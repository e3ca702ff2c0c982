"""Server CPU time of a study dashboard over 100 000 judgments (claim: under 1 s, uncached).

Fills a throw-away SQLite database (migrated here, never the site's) with a synthetic study
through `analysis.synthetic_db.populate_study`, then times GET of the staff dashboard with
Django's test client (the whole request inside the server: query, statistics, charts,
template): cold (cache cleared before each request, the figure the claim is about) and warm
(the analysis cached until the next answer), as CPU seconds of this process (time.process_time,
less sensitive than wall time to other load on the machine; SQLite runs in-process, so its work
counts). Side by side: the old headline computation (three seeded cluster bootstraps,
`analysis.stats.bootstrap.cluster_bootstrap`) against the analytic two-way variance
(`analysis.stats.clustered.clustered_rates`) on the same judgments; the dashboard's read of
the judgments through each participant's trials (the join it used before `Trial.study`)
against the read through the (study, status, kind) index; and reading the judgments the naive
way, one model instance per trial (`listening.selectors.preferences_frame`).

    python benchmarks/analysis_dashboard.py [--judgments 100000] [--repeats 5]
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

BUDGET_S = 1.0


def timed(call, repeats: int, before=None) -> list[float]:
    """CPU seconds of this process per call."""
    times = []
    for _ in range(repeats):
        if before:
            before()
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--listeners", type=int, default=2_000)
    parser.add_argument("--excerpts", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hafm-analysis-dashboard-")
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ["HAFM_MEDIA_DIR"] = f"{workdir}/media"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from analysis import dashboards
    from analysis.stats.bootstrap import cluster_bootstrap
    from analysis.stats.clustered import clustered_rates
    from analysis.synthetic import SyntheticStudyConfig, synthetic_study
    from analysis.synthetic_db import populate_study
    from listening import selectors
    from listening.models import Trial

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    synthetic = synthetic_study(SyntheticStudyConfig(
        n_judgments=args.judgments, n_participants=args.listeners, n_excerpts=args.excerpts,
        n_rating_blocks=args.judgments // 20))
    study = populate_study("benchmark study", synthetic, catch_share=0.1)
    print(f"{args.judgments:,} judgments (+10% catch trials, {len(synthetic.ratings):,} ratings) from "
          f"{args.listeners:,} listeners written in {time.perf_counter() - start:.1f} s (SQLite)")

    get_user_model().objects.create_superuser("bench", "bench@example.org", "pw")
    client = Client()
    client.login(username="bench", password="pw")
    url = reverse("analysis:study", args=[study.public_id]) + "?catch=1&min_catch=0.5"
    assert client.get(url).status_code == 200  # warm-up: templates, connection, imports

    cold = timed(lambda: client.get(url), args.repeats, before=cache.clear)
    warm = timed(lambda: client.get(url), args.repeats)
    read = timed(lambda: dashboards.preferences_table(study), args.repeats)
    ratings = timed(lambda: dashboards.ratings_table(study), args.repeats)
    prefs = dashboards.preferences_table(study)
    prefs = prefs[~prefs["is_catch"]]
    n_boot = dashboards.DASHBOARD_OPTIONS.n_boot
    old = timed(lambda: cluster_bootstrap(prefs, n_boot=n_boot), args.repeats)
    new = timed(lambda: clustered_rates(prefs), args.repeats)
    fields = ("participant_id", "stimulus_left_id", "stimulus_right_id", "chosen", "kind", "catch_passed",
              "response_time_ms")
    answered = {"status": Trial.Status.ANSWERED, "kind__in": dashboards.PAIR_KINDS}
    by_participant = timed(lambda: dashboards._fetch(
        Trial.objects.filter(participant__study=study, **answered), *fields), args.repeats)
    by_study = timed(lambda: dashboards._fetch(Trial.objects.filter(study=study, **answered), *fields), args.repeats)
    naive = timed(lambda: selectors.preferences_frame(study), max(1, args.repeats // 2))
    median = statistics.median
    print("CPU seconds (median of repeats)")
    print(f"dashboard, cold (no cache)      {median(cold):.3f}  max {max(cold):.3f}")
    print(f"dashboard, warm (cached)        {median(warm):.3f}")
    print(f"  read judgments, values_list   {median(read):.3f}   read ratings {median(ratings):.3f}")
    print(f"  headline, old cluster bootstrap ({n_boot} x 3) {median(old):.3f}  new analytic two-way "
          f"{median(new):.3f}  (old / new = {median(old) / median(new):.1f}x)")
    print(f"  judgment rows through the participant join (before) {median(by_participant):.3f}  through the "
          f"study index {median(by_study):.3f}  (before / after = {median(by_participant) / median(by_study):.1f}x)")
    print(f"read judgments, ORM objects     {median(naive):.3f}  "
          f"({median(naive) / median(read):.0f}x the values_list read)")
    page = median(cold)
    print(f"cold dashboard CPU / budget {BUDGET_S:.0f} s: {page / BUDGET_S:.2f} "
          f"({'within' if page < BUDGET_S else 'OVER'} budget)")
    return 0 if page < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
