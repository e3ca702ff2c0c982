"""`manage.py run_demo`: the main job end to end on demo data, one progress line per phase.

Called by `make demo` after `migrate`, with a Celery worker already running on the embedded
broker (SQLite database, `sqla+sqlite` broker, solo pool). Phases:

    weights    tiny seeded HuBERT, EnCodec and k-means (no download)
    data       the stempeg sample and seeded synthetic tracks: 10 s excerpts (the benchmark's),
               and the same tracks cut into short excerpts for training
    tokens     semantic (HuBERT + k-means) and acoustic (EnCodec) tokens of the training excerpts
    training   the tiny cascade, all three stages, a few dozen steps each on the train split
    benchmark  three-stage, two-stage, random and ground-truth through the Celery worker
    measure    FAD (logmel) with its CI and fit metrics per system, the paired comparison
    study      a listening study from the run (listening's create_study)

then the URL of the comparison page. Each phase reuses what an earlier demo left in `var/`.
`--size smoke` is the same job made as small as it gets (the test of this command).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hafm_core.errors import HafmError

DEMO_SEED = 0
SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth")
EMBEDDER = "logmel"  # needs no weights; VGGish (the paper's) needs its weights on disk
POLL_S = 0.5


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is. Synthetic tracks last 12 s and give one 10 s excerpt each; 20% of
    the tracks are the test split the benchmark draws its excerpts from.

    Training uses the same tracks cut into `train_excerpt_s` excerpts (the split is per track,
    so no test track is trained on): attention cost grows with the square of the sequence, and
    a fine-stage step on 10 s excerpts takes seconds on two CPU cores. Generation still works
    on the 10 s excerpts (the systems generate in windows of any length).
    """

    synthetic_tracks: int
    excerpts: int
    train_excerpt_s: float
    train_excerpts_per_track: int
    train_steps: int
    batch_size: int
    stall_s: float  # the worker has made no progress (clip, fit, phase) for this long: give up


SIZES = {
    "demo": DemoSize(synthetic_tracks=20, excerpts=4, train_excerpt_s=2.0, train_excerpts_per_track=3,
                     train_steps=30, batch_size=4, stall_s=600),
    "smoke": DemoSize(synthetic_tracks=10, excerpts=2, train_excerpt_s=2.0, train_excerpts_per_track=1,
                      train_steps=2, batch_size=2, stall_s=600),
}


class Command(BaseCommand):
    help = "Run the demo job end to end (make demo): data, tokens, tiny training, benchmark, FAD, study"

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1:8000", help="where the site will be served")
        parser.add_argument("--size", default="demo", choices=sorted(SIZES), help="demo (make demo) or smoke")

    def handle(self, *args, **options):
        self.size = SIZES[options["size"]]
        self.size_name = options["size"]
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.demo_dir = Path(settings.VAR_DIR) / "demo"
        self.demo_dir.mkdir(parents=True, exist_ok=True)
        try:
            weights = self.phase("weights", self.weights)
            dataset, train_manifest = self.phase("data", self.data)
            tokens = self.phase("tokens", lambda: self.tokens(train_manifest, weights))
            checkpoint = self.phase("training", lambda: self.training(tokens))
            run = self.phase("benchmark", lambda: self.benchmark(checkpoint, dataset))
            run = self.phase("measure", lambda: self.measure(run))
            self.phase("study", lambda: self.study(run))
        except HafmError as error:
            raise CommandError(str(error)) from error
        self.run = run
        total = time.monotonic() - self.started
        timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.timings.items())
        self.stdout.write(f"==> demo ready in {total:.0f} s ({timings})")
        self.stdout.write(f"==> comparison page: http://{options['host']}/runs/{run.id}/compare")
        username, password = demo_staff_account()
        self.stdout.write(f"==> staff pages (launch form, studies, dashboards, admin): log in at "
                          f"http://{options['host']}/admin/ as {username} / {password}")

    def phase(self, name: str, work):
        self.line(name, "...")
        start = time.monotonic()
        value = work()
        self.timings[name] = time.monotonic() - start
        self.line(name, f"done in {self.timings[name]:.1f} s")
        return value

    def line(self, name: str, text: str) -> None:
        self.stdout.write(f"==> [{name}] {text}")
        self.stdout.flush()

    def weights(self) -> Path:
        from hafm_core.weights import weights_dir, weights_status

        root = weights_dir()
        if all(weights_status(key, root)["present"] for key in ("hubert", "encodec", "kmeans")):
            self.line("weights", f"found in {root}")
            return root
        from hafm_core.tokens.tiny import write_tiny_weights

        self.line("weights", f"writing tiny seeded HuBERT, EnCodec and k-means to {root} (HAFM_WEIGHTS_DIR)")
        return write_tiny_weights(root, seed=DEMO_SEED, kmeans=True)

    def data(self):
        from evalsite.services.benchmarks import register_dataset

        sample = register_dataset("sample", progress=False)
        self.line("data", f"stempeg sample (real MUSDB18 stems): {sample.excerpts.count()} excerpt(s)")
        spec = f"synthetic:{self.size.synthetic_tracks}"
        dataset = register_dataset(spec, progress=False)
        by_split = {s: dataset.excerpts.filter(split=s).count() for s in ("train", "validation", "test")}
        self.line("data", f"{spec}: {self.size.excerpts} of the test excerpts will be benchmarked; "
                  f"10 s excerpts by split {by_split}")
        return dataset, self.training_data()

    def training_data(self) -> Path:
        """The synthetic tracks cut into short excerpts, as `hafm data prepare` does."""
        from hafm_core.data.manifest import MANIFEST_NAME

        size = self.size
        out = self.demo_dir / (f"train-data-{size.synthetic_tracks}x{size.train_excerpts_per_track}-"
                               f"{size.train_excerpt_s:g}s")
        if not (out / MANIFEST_NAME).is_file():
            _cli(["data", "prepare", "--synthetic", str(size.synthetic_tracks), "--excerpt-s",
                  f"{size.train_excerpt_s:g}", "--max-per-track", str(size.train_excerpts_per_track),
                  "--out", str(out), "--json"], self.stdout)
        else:
            self.line("data", f"training excerpts found in {out}")
        return out / MANIFEST_NAME

    def tokens(self, manifest: Path, weights: Path) -> Path:
        out = manifest.parent / "tokens"
        # The token cache is content-keyed: a second demo finds every excerpt done.
        _cli(["tokenize", str(manifest), "--out", str(out), "--weights", str(weights), "--json"], self.stdout)
        return out

    def training(self, tokens: Path) -> Path:
        out = self.demo_dir / f"checkpoint-{self.size_name}"
        steps = str(self.size.train_steps)
        for stage in ("semantic", "coarse", "fine"):
            if (out / f"ar_{stage}" / "ckpt_best.pt").is_file():
                self.line("training", f"{stage}: found in {out}")
                continue
            start = time.monotonic()
            _cli(["train", "--stage", stage, "--tokens", str(tokens), "--preset", "tiny", "--out", str(out),
                  "--steps", steps, "--batch-size", str(self.size.batch_size), "--warmup", "5",
                  "--eval-every", steps, "--seed", str(DEMO_SEED), "--device", "cpu", "--json"], self.stdout)
            self.line("training", f"{stage}: {steps} steps in {time.monotonic() - start:.1f} s")
        return out

    def benchmark(self, checkpoint: Path, dataset):
        """Launch (or reuse) the run; wait while the worker generates every clip."""
        from evalsite.services.benchmarks import launch_benchmark

        launch = launch_benchmark(checkpoint_path=str(checkpoint), dataset_spec=dataset.source, systems=SYSTEMS,
                                  n_excerpts=self.size.excerpts, seed=DEMO_SEED, embedder=EMBEDDER)
        run = launch.run
        self.line("benchmark", f"run {run.id} ({'reused' if launch.reused else 'launched'}): "
                  f"{run.n_excerpts} excerpts x {len(run.systems)} systems on Celery queue {run.queue!r}")
        return self.wait(run, "benchmark", lambda r: r.phase != "generate")

    def measure(self, run):
        """Wait for FAD and fit per system and the paired comparison, then print them."""
        from evalsite.models import SystemResult

        run = self.wait(run, "measure", lambda r: False)
        if run.status != "done":
            raise CommandError(f"benchmark run {run.id} ended {run.status}: {run.error or 'see the run page'}")
        for result in sorted(SystemResult.objects.filter(run=run), key=lambda r: run.systems.index(r.system)):
            fit = (result.fit or {}).get("metrics", {}).get("fit_score", {})
            fit_text = f"fit {fit['mean']:.3f}" if fit.get("mean") is not None else "fit -"
            fad_text = (f"FAD {result.fad:.3f} [{result.fad_low:.3f}, {result.fad_high:.3f}]"
                        if result.fad is not None and result.fad_low is not None else f"FAD - ({result.error})")
            self.line("measure", f"{result.system:>13}: {fad_text}, {fit_text}")
        improvement = run.results.get("three_vs_two", {}).get("relative_improvement")
        if improvement:
            self.line("measure", f"three-stage vs two-stage: relative FAD improvement "
                      f"{100 * improvement['estimate']:.1f}% [{100 * improvement['low']:.1f}%, "
                      f"{100 * improvement['high']:.1f}%] (paper: 18.6%)")
        return run

    def wait(self, run, phase: str, done) -> object:
        """Poll until the run stops, or `done(run)`; a line whenever the counts change.

        Gives up only when nothing moves (no clip, fit or phase) for `stall_s`: a busy machine
        makes the worker slow, not stuck.
        """
        from evalsite.models import GeneratedClip
        from evalsite.selectors import run_progress

        last, last_change = None, time.monotonic()
        while True:
            run.refresh_from_db()
            progress = run_progress(run)
            totals = progress.totals
            fitted = GeneratedClip.objects.filter(run=run).exclude(fit={}).count()
            state = (run.status, run.phase, totals.done, totals.failed, fitted, len(progress.measured))
            if state != last:
                per_system = ", ".join(f"{s.system} {s.done + s.failed}/{s.total}" for s in progress.systems)
                failed = f", {totals.failed} failed" if totals.failed else ""
                self.line(phase, f"{run.phase}: {totals.done}/{totals.total} clips ({per_system}){failed}; "
                          f"measured {len(progress.measured)}/{len(run.systems)} systems")
                last, last_change = state, time.monotonic()
            if not run.is_active or done(run):
                return run
            if time.monotonic() - last_change > self.size.stall_s:
                raise CommandError(f"run {run.id} still {run.status} ({run.phase}) with no progress for "
                                   f"{self.size.stall_s:g} s: is a Celery worker consuming queue "
                                   f"{run.queue!r}? (make demo starts one; its log is var/celery-demo.log)")
            time.sleep(POLL_S)

    def study(self, run) -> None:
        from evalsite.services.benchmark_studies import create_study_from_run

        study = create_study_from_run(run, name=f"Demo study of run {str(run.id)[:8]}")
        self.line("study", f"listening study {study.name!r}: /listen/s/{study.public_id}/")


def demo_staff_account(username: str = "demo") -> tuple[str, str]:
    """A staff superuser for the local demo, with a fresh random password on every run."""
    import secrets

    from django.contrib.auth import get_user_model

    password = secrets.token_urlsafe(9)
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return username, password


def _cli(argv: list[str], stdout) -> None:
    """Run a `hafm` command in this process; its one-line JSON summary goes to the demo's output."""
    import contextlib
    import io

    from hafm_core.cli import main

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = main(argv)
    summary = captured.getvalue().strip()
    if summary:
        stdout.write(f"    hafm {argv[0]}: {summary[:400]}")
    if code != 0:
        raise CommandError(f"`hafm {' '.join(argv)}` exited with {code}")
