"""`hafm benchmark run|status|cancel|resume|export|rerun`: benchmark runs from a shell.

This module lives in the Django project (it needs the database); `hafm_core.cli` finds it by
its dotted path, so `hafm_core` itself never imports Django. Work runs on Celery workers
(`celery -A evalsite worker`); `--wait` follows the run from the database with a progress
bar on stderr.

    hafm benchmark run --checkpoint CKPT --dataset musdb18:PATH|stems:PATH|sample|synthetic[:N]
                       --systems three-stage,two-stage,random,ground-truth --excerpts N --seed S
                       [--embedder vggish] [--clips-per-task 4] [--dtype float32] [--wait] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hafm_core import constants
from hafm_core.cli.args import check_output_dir, positive_float, positive_int, refuse_existing, seed

HELP = "launch, follow, cancel, resume, export and replay benchmark runs (Celery workers do the work)"
POLL_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="launch a run (or reuse the live run with the same parameters)")
    run.add_argument("--checkpoint", required=True, help="cascade folder (ar_semantic/, ar_coarse/, ar_fine/)")
    run.add_argument("--dataset", required=True, help="musdb18:PATH, stems:PATH, sample or synthetic[:N]")
    run.add_argument("--systems", default="three-stage,two-stage,random,ground-truth",
                     help="comma-separated (default three-stage,two-stage,random,ground-truth)")
    run.add_argument("--excerpts", type=positive_int, help="number of excerpts (default: all of the test split)")
    run.add_argument("--seed", type=seed, default=0, help="run seed; each excerpt's seed derives from it")
    run.add_argument("--embedder", default="vggish", help="FAD embedder: vggish, encodec, crepe or logmel")
    run.add_argument("--clips-per-task", type=positive_int, default=None,
                     help="clips of one system a worker generates in one batched call (default 4)")
    run.add_argument("--dtype", default=constants.DEFAULT_MODEL_DTYPE, choices=constants.MODEL_DTYPES,
                     help="precision of the cascade's weights for generation (default float32; part of the "
                          "run's identity: another dtype is another run)")
    _follow_options(run)
    for name, text in (("status", "progress of a run"), ("cancel", "cancel a live run"),
                       ("resume", "re-dispatch what a run is missing (after a crash or a cancel)")):
        action = sub.add_parser(name, help=text)
        action.add_argument("run", help="run id (or a unique prefix)")
        if name == "resume":
            _follow_options(action)
        else:
            action.add_argument("--json", action="store_true", help="print one JSON object")
    export = sub.add_parser("export", help="write run.json, systems.csv, clips.csv, reproducibility.json")
    export.add_argument("run", help="run id (or a unique prefix)")
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.add_argument("--overwrite", action="store_true", help="replace files of an earlier export in --out")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    rerun = sub.add_parser("rerun", help="replay a reproducibility record (checks the input hashes)")
    rerun.add_argument("record", help="reproducibility.json or the folder holding it")
    _follow_options(rerun)


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the run until it ends (progress on stderr)")
    parser.add_argument("--timeout", type=positive_float, default=None, help="seconds to wait at most with --wait")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _setup_django() -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    django.setup()


EXPORT_FILES = ("run.json", "systems.csv", "clips.csv", "reproducibility.json")
# What each action needs: the database always; the broker where tasks are sent.
NEEDS_BROKER = {"run", "rerun", "resume"}


def run(args: argparse.Namespace) -> int:
    """Check the output and the services first (one line naming the one that is down, exit 2),
    then act; a service lost in the middle is reported the same way."""
    if args.action == "export":  # before the database is touched
        check_output_dir(args.out)
        refuse_existing([args.out / name for name in EXPORT_FILES], args.overwrite,
                        f"hafm benchmark export --out {args.out}")
    _setup_django()
    from django.db import InterfaceError, OperationalError

    from evalsite.services.connectivity import (
        ServiceUnavailableError,
        database_url,
        redact,
        require_services,
    )

    require_services(database=True, broker=args.action in NEEDS_BROKER)
    try:
        return _act(args)
    except (OperationalError, InterfaceError) as error:
        raise ServiceUnavailableError(f"the database at {redact(database_url())} failed: "
                                      f"{type(error).__name__}: {' '.join(str(error).split())}") from error


def _act(args: argparse.Namespace) -> int:
    from evalsite.services import benchmark_export, benchmarks

    if args.action == "run":
        launch = benchmarks.launch_benchmark(
            checkpoint_path=args.checkpoint, dataset_spec=args.dataset, systems=args.systems.split(","),
            n_excerpts=args.excerpts, seed=args.seed, embedder=args.embedder, progress=not args.json,
            clips_per_task=args.clips_per_task or benchmarks.DEFAULT_CLIPS_PER_TASK, dtype=args.dtype)
        return _report_launch(launch.run, launch.reused, args, _sent(launch))
    if args.action == "rerun":
        launch = benchmark_export.rerun(args.record, progress=not args.json)
        return _report_launch(launch.run, launch.reused, args, _sent(launch))
    run_ = benchmarks.get_run(args.run)
    if args.action == "status":
        return _print_status(run_, args.json)
    if args.action == "cancel":
        run_ = benchmarks.cancel_run(run_)
        return _print_status(run_, args.json)
    if args.action == "resume":
        sent = benchmarks.resume_run(run_)
        if not args.json:
            print(f"run {run_.id}: {sent} task(s) sent for the missing work")
        return _report_launch(run_, False, args, {"tasks_sent": sent})
    if args.action == "export":
        paths = benchmark_export.export_run(run_, args.out)
        if args.json:
            print(json.dumps({"run": str(run_.id), "files": {k: str(v) for k, v in paths.items()}}))
        else:
            for name, path in paths.items():
                print(f"{name:16s} {path}")
        return 0
    raise AssertionError(args.action)


def _sent(launch) -> dict:
    return {} if launch.tasks_sent is None else {"tasks_sent": launch.tasks_sent}


def _report_launch(run_, reused: bool, args, extra: dict | None = None) -> int:
    from django.urls import reverse

    _refuse_undispatched(run_)
    if not args.json:
        verb = "reusing the existing run" if reused else "launched run"
        print(f"{verb} {run_.id} ({run_.n_excerpts} excerpts x {len(run_.systems)} systems)")
        print(f"  page: {reverse('evalsite:run_detail', args=[run_.id])}")
    if args.wait:
        run_ = wait_for(run_, args.timeout, show_progress=True)
    return _print_status(run_, args.json, {"reused": reused, **(extra or {})}, final=args.wait)


def _refuse_undispatched(run_) -> None:
    """A run whose tasks the broker did not take is never reported as dispatched: one line saying
    so and how to send them (exit 2)."""
    from evalsite.models import BenchmarkRun
    from evalsite.services.benchmarks import DispatchError

    run_.refresh_from_db()
    if run_.status == BenchmarkRun.Status.UNDISPATCHED:
        raise DispatchError(run_.error or f"run {run_.id} is undispatched; `hafm benchmark resume {run_.id}` "
                            "sends its tasks")


def wait_for(run_, timeout_s: float | None = None, show_progress: bool = True):
    """Poll the database until the run is no longer active; a tqdm bar on stderr counts clips."""
    from tqdm import tqdm

    from evalsite.selectors import run_progress

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    progress = run_progress(run_)
    bar = tqdm(total=progress.totals.total, unit="clip", file=sys.stderr, disable=not show_progress,
               desc="generating", mininterval=0.5)
    try:
        while True:
            run_.refresh_from_db()
            progress = run_progress(run_)
            totals = progress.totals
            bar.set_description(run_.phase)
            bar.n = totals.done + totals.failed
            bar.set_postfix(failed=totals.failed, measured=f"{len(progress.measured)}/{len(run_.systems)}")
            bar.refresh()
            _refuse_undispatched(run_)
            if not run_.is_active:
                return run_
            if deadline is not None and time.monotonic() > deadline:
                from hafm_core.errors import HafmError

                raise HafmError(f"run {run_.id} still {run_.status} ({run_.phase}) after {timeout_s:g} s; "
                                "is a Celery worker running on its queue? Follow it with "
                                f"`hafm benchmark status {run_.id}`")
            time.sleep(POLL_S)
    finally:
        bar.close()


def _print_status(run_, as_json: bool, extra: dict | None = None, final: bool = False) -> int:
    from evalsite.models import BenchmarkRun, SystemResult
    from evalsite.selectors import run_progress

    run_.refresh_from_db()
    progress = run_progress(run_)
    results = {r.system: r for r in SystemResult.objects.filter(run=run_)}
    data = {**progress.to_json(), **(extra or {}),
            "fad": {s: {"fad": r.fad, "low": r.fad_low, "high": r.fad_high, "error": r.error or None}
                    for s, r in results.items()},
            "comparisons": run_.results}
    if as_json:
        print(json.dumps(data))
    else:
        print(f"run {run_.id}: {run_.status} ({run_.phase})" + (f": {run_.error}" if run_.error else ""))
        for s in progress.systems:
            result = results.get(s.system)
            fad = ""
            if result is not None:
                fad = (f"  FAD {result.fad:.4f} [{result.fad_low:.4f}, {result.fad_high:.4f}]"
                       if result.fad is not None else f"  FAD: {result.error}")
            print(f"  {s.system:18s} {s.done:5d} done {s.failed:4d} failed {s.pending:5d} pending{fad}")
        improvement = run_.results.get("three_vs_two", {}).get("relative_improvement")
        if improvement:
            print(f"  three-stage vs two-stage: relative improvement {100 * improvement['estimate']:.1f}% "
                  f"[{100 * improvement['low']:.1f}%, {100 * improvement['high']:.1f}%] (paper: 18.6%)")
    if final and run_.status != BenchmarkRun.Status.DONE:
        return 1
    return 0
