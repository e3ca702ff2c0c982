"""`manage.py run_demo`: the main job end to end on demo data, one progress line per phase.

Called by `make demo` after `migrate`, with a Celery worker already running on the embedded
broker. Phases: tiny weights -> data (stempeg sample + synthetic tracks) -> tokens -> a brief
tiny-cascade training -> a benchmark of the four systems through Celery -> a listening study
-> the URL of the comparison page. Each phase reuses what an earlier demo left in `var/`.

While the cascade's training command or `hafm_core.systems` is not installed, the benchmark
phase is replaced by a FAD job through the same worker (real against synthetic accompaniment
sets), and the phases that need them say they were skipped and why.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hafm_core.errors import HafmError

DEMO_SEED = 0
SYNTHETIC_SPEC = "synthetic:20"  # 20 tracks of 12 s: 16 for training, 4 held out (test split)
DEMO_EXCERPTS = 4
TRAIN_STEPS = 40
SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth")
WAIT_TIMEOUT_S = 1800


class Command(BaseCommand):
    help = "Run the demo job end to end (make demo): data, tokens, tiny training, benchmark, study"

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1:8000", help="where the site will be served")

    def handle(self, *args, **options):
        self.started = time.monotonic()
        self.demo_dir = Path(settings.VAR_DIR) / "demo"
        self.demo_dir.mkdir(parents=True, exist_ok=True)
        try:
            weights = self.phase("weights", self.weights)
            dataset = self.phase("data", self.data)
            tokens = self.phase("tokens", lambda: self.tokens(dataset, weights))
            checkpoint = self.phase("training", lambda: self.training(tokens))
            if checkpoint is not None and _available("hafm_core.systems"):
                run = self.phase("benchmark", lambda: self.benchmark(checkpoint))
                self.phase("study", lambda: self.study(run))
                path = f"/runs/{run.id}/compare"
            else:
                self.line("benchmark", "skipped: the cascade's systems (hafm_core.systems) or training command "
                          "are not installed yet; measuring FAD through the worker instead")
                result = self.phase("FAD", lambda: self.fad_through_worker(dataset))
                path = "/fad/" if result is not None else "/"
        except HafmError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"==> demo ready in {time.monotonic() - self.started:.0f} s: "
                          f"open http://{options['host']}{path}")

    def phase(self, name: str, work):
        self.line(name, "...")
        start = time.monotonic()
        value = work()
        self.line(name, f"done in {time.monotonic() - start:.1f} s")
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

        sample = register_dataset("sample", progress=True)
        self.line("data", f"stempeg sample: {sample.excerpts.count()} excerpt(s)")
        dataset = register_dataset(SYNTHETIC_SPEC, progress=True)
        by_split = {s: dataset.excerpts.filter(split=s).count() for s in ("train", "validation", "test")}
        self.line("data", f"{SYNTHETIC_SPEC}: excerpts by split {by_split}")
        return dataset

    def tokens(self, dataset, weights: Path) -> Path | None:
        if not _available("hafm_core.cli.tokenize"):
            self.line("tokens", "skipped: `hafm tokenize` is not installed")
            return None
        out = self.demo_dir / "tokens"
        if (out / "tokens.jsonl").is_file():
            self.line("tokens", f"found in {out}")
            return out
        _cli(["tokenize", dataset.manifest_path, "--out", str(out), "--weights", str(weights)])
        return out

    def training(self, tokens: Path | None) -> Path | None:
        if tokens is None or not _available("hafm_core.cli.train"):
            self.line("training", "skipped: `hafm train` is not installed yet")
            return None
        out = self.demo_dir / "checkpoint"
        for stage in ("semantic", "coarse", "fine"):
            if (out / f"ar_{stage}" / "ckpt_best.pt").is_file():
                self.line("training", f"{stage}: found")
                continue
            _cli(["train", "--stage", stage, "--tokens", str(tokens), "--preset", "tiny", "--out", str(out),
                  "--steps", str(TRAIN_STEPS)])
        return out

    def benchmark(self, checkpoint: Path):
        from evalsite.cli_benchmark import wait_for
        from evalsite.services.benchmarks import launch_benchmark

        launch = launch_benchmark(checkpoint_path=str(checkpoint), dataset_spec=SYNTHETIC_SPEC, systems=SYSTEMS,
                                  n_excerpts=DEMO_EXCERPTS, seed=DEMO_SEED, embedder="logmel")
        run = launch.run
        self.line("benchmark", f"run {run.id} ({'reused' if launch.reused else 'launched'}): "
                  f"{run.n_excerpts} excerpts x {len(run.systems)} systems on queue {run.queue!r}")
        run = wait_for(run, WAIT_TIMEOUT_S, show_progress=True)
        if run.status != "done":
            raise CommandError(f"benchmark run {run.id} ended {run.status}: {run.error or 'see the run page'}")
        return run

    def study(self, run) -> None:
        if not _available("listening.services"):
            self.line("study", "skipped: the listening app's create_study is not installed")
            return
        from evalsite.services.benchmark_studies import create_study_from_run

        study = create_study_from_run(run, name=f"Demo study of run {str(run.id)[:8]}")
        self.line("study", f"listening study {study.name!r} ({study.items.count()} items)")

    def fad_through_worker(self, dataset):
        """FAD of held-out real accompaniments against the training ones, computed by the worker."""
        from evalsite.fad_client import run_and_wait

        folders = {}
        for name, split in (("background", "train"), ("eval", "test")):
            folder = self.demo_dir / "fad" / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for excerpt in dataset.excerpts.filter(split=split):
                shutil.copyfile(excerpt.accompaniment_path, folder / f"{excerpt.key.replace('/', '_')}.wav")
            folders[name] = str(folder)
        report = run_and_wait(folders["background"], folders["eval"], "logmel", None, with_ci=True,
                              with_fad_inf=False, seed=DEMO_SEED, shard_files=4, timeout_s=WAIT_TIMEOUT_S,
                              progress_bar=_progress_bar)
        self.line("FAD", f"FAD {report['fad']:.3f} (logmel) between {report['n_background']} and "
                  f"{report['n_eval']} accompaniments, computed by the Celery worker")
        from evalsite.models import FadResult

        return FadResult.objects.order_by("-created").first()


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _cli(argv: list[str]) -> None:
    from hafm_core.cli import main

    code = main(argv)
    if code != 0:
        raise CommandError(f"`hafm {' '.join(argv)}` exited with {code}")


def _progress_bar(total: int, what: str):
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc=what, file=sys.stderr, mininterval=0.5)
