"""Launch benchmark runs and steer them: register inputs, plan clips, dispatch, cancel, resume.

State lives in the database, never in a worker: a run's clips are planned as rows when it is
launched, a Celery task marks each clip done as it goes, and `resume_run` re-dispatches what
is still missing. A worker or web process that dies loses at most the work in flight.

    launch_benchmark(checkpoint path, dataset spec, systems, ...)
      -> register_checkpoint (validated, content hash)   -> Checkpoint
      -> register_dataset (hafm_core.data prepare, manifest)  -> Dataset + Excerpts
      -> launch_run: parameters hash (dtype included); a live run with the same hash is reused
           -> plan_clips: one row per (excerpt, system), a fixed number of queries
           -> dispatch (after commit): generate_clips tasks on the run's queue, each with up
              to `clips_per_task` clips of one system (generated in one batched call)

A run whose tasks the broker did not take is `undispatched` (with the reason in `error`), never
left looking queued: `resume_run`, or launching the same parameters again, sends them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from evalsite.models import BenchmarkRun, Checkpoint, Dataset, Excerpt, GeneratedClip
from evalsite.services.connectivity import ServiceUnavailableError, broker_url, redact
from hafm_core import constants
from hafm_core.errors import CheckpointError, DatasetError, HafmError
from hafm_core.provenance import code_version, sha256_bytes

log = logging.getLogger(__name__)

# Cascade stages each system needs from the checkpoint.
SYSTEM_STAGES = {
    "three-stage": ("semantic", "coarse", "fine"),
    "two-stage": ("semantic", "coarse"),
    "random": (),
    "ground-truth": (),
    "ground-truth-raw": (),
}
DEFAULT_SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth")
DEFAULT_EMBEDDER = "vggish"
# Clips of one system per generation task, generated in one batched call of the system: the
# cascade samples a batch of 4 in about the time of 2 single clips (tiny, CPU). A run parameter
# (recorded, not hashed: a clip's audio is the same whatever the batch). Keep a task well inside
# the broker's visibility timeout (300 s by default) at the model size the run uses.
DEFAULT_CLIPS_PER_TASK = 4
SYNTHETIC_DEFAULT_TRACKS = 4
# Sending tasks: give up within seconds when the broker does not answer (the run is then
# `undispatched`, and resume sends it later).
SEND_RETRIES = 2
SEND_TIMEOUT_S = 3.0
SEND_RETRY_POLICY = {"max_retries": SEND_RETRIES, "interval_start": 0, "interval_step": 1, "interval_max": 1}


class LaunchError(HafmError):
    """A benchmark cannot be launched or steered as asked; the message says why and what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    """`musdb18:PATH`, `stems:PATH`, `sample` or `synthetic[:N]`, parsed."""

    kind: str
    path: str = ""
    n_tracks: int = 0

    @property
    def text(self) -> str:
        if self.kind == Dataset.Kind.SYNTHETIC:
            return f"synthetic:{self.n_tracks}"
        return f"{self.kind}:{self.path}" if self.path else self.kind


def parse_dataset_spec(spec: str) -> DatasetSpec:
    kind, _, rest = spec.strip().partition(":")
    if kind in (Dataset.Kind.MUSDB18, Dataset.Kind.STEMS):
        if not rest:
            raise DatasetError(f"dataset {spec!r} names no folder; write {kind}:/path/to/folder")
        path = Path(rest).expanduser().resolve()
        if not path.exists():
            raise DatasetError(f"dataset folder {path} does not exist")
        return DatasetSpec(kind, str(path))
    if kind == Dataset.Kind.SAMPLE and not rest:
        return DatasetSpec(kind)
    if kind == Dataset.Kind.SYNTHETIC:
        try:
            n_tracks = int(rest) if rest else SYNTHETIC_DEFAULT_TRACKS
        except ValueError:
            n_tracks = 0
        if n_tracks < 2:
            raise DatasetError(f"dataset {spec!r}: synthetic:N needs a whole number N >= 2 of tracks")
        return DatasetSpec(kind, n_tracks=n_tracks)
    raise DatasetError(f"dataset {spec!r} is not one of musdb18:PATH, stems:PATH, sample, synthetic[:N]")


def dataset_dir(spec: DatasetSpec) -> Path:
    """Where a spec is prepared: the media folder, one sub-folder per spec."""
    slug = sha256_bytes(spec.text.encode())[:16]
    return Path(settings.MEDIA_ROOT) / "datasets" / f"{spec.kind}-{slug}"


def _tracks(spec: DatasetSpec):
    from hafm_core.data import sources

    if spec.kind == Dataset.Kind.MUSDB18:
        return sources.musdb_tracks(spec.path)
    if spec.kind == Dataset.Kind.STEMS:
        return sources.stem_folder_tracks(spec.path)
    if spec.kind == Dataset.Kind.SAMPLE:
        return sources.sample_track(split="test")
    return sources.synthetic_tracks(spec.n_tracks)


def register_dataset(spec_text: str, progress: bool = False) -> Dataset:
    """Prepare the dataset (once per spec) and record it with its excerpts.

    Preparation is `hafm_core.data.prepare` (as `hafm data prepare`) into the media folder;
    a folder whose manifest exists is reused. The same manifest content is the same Dataset
    row. A folder without stems is the `DatasetError` of `hafm_core.data.sources`.
    """
    from hafm_core.cli.data import SAMPLE_EXCERPT_S
    from hafm_core.data.manifest import MANIFEST_NAME, read_manifest
    from hafm_core.data.prepare import PrepareConfig, prepare_dataset

    spec = parse_dataset_spec(spec_text)
    out_dir = dataset_dir(spec)
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        # The stempeg sample lasts 6.08 s: it is cut like `hafm data prepare --sample` does.
        config = PrepareConfig(excerpt_s=SAMPLE_EXCERPT_S) if spec.kind == Dataset.Kind.SAMPLE else PrepareConfig()
        prepare_dataset(_tracks(spec), out_dir, config, progress=progress)
    records = read_manifest(manifest_path)
    manifest_hash = sha256_bytes(manifest_path.read_bytes())
    with transaction.atomic():
        dataset, created = Dataset.objects.get_or_create(
            manifest_hash=manifest_hash,
            defaults={"kind": spec.kind, "source": spec.text, "manifest_path": str(manifest_path)},
        )
        if created:
            Excerpt.objects.bulk_create([
                Excerpt(dataset=dataset, key=r.excerpt_id, track=r.track, split=r.split, start_s=r.start_s,
                        duration_s=r.duration_s, vocal_path=str(r.vocal_file(out_dir)),
                        accompaniment_path=str(r.accompaniment_file(out_dir)), content_hash=r.content_sha256)
                for r in records])
    return dataset


def register_checkpoint(path: str | Path, stages: Sequence[str] = SYSTEM_STAGES["three-stage"],
                        name: str | None = None) -> Checkpoint:
    """Validate the cascade folder's `stages` (loads each once) and record it by content hash.

    A missing stage, a partial or corrupt file, or stages that do not fit together raise
    `CheckpointError` naming the stage and field; nothing is recorded then.
    """
    from hafm_core.checkpoint import cascade_hash, checkpoint_path, load_cascade

    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist (expected "
                              f"{root}/ar_semantic/ckpt_best.pt, ar_coarse/..., ar_fine/...)")
    present = tuple(s for s in SYSTEM_STAGES["three-stage"] if checkpoint_path(root, s).is_file())
    models = load_cascade(root, tuple(stages)) if stages else {}
    config = {stage: model.config.to_dict() for stage, model in models.items()}
    # The hash covers every stage file present, validated or not: a changed file is a new checkpoint.
    content_hash = cascade_hash(root, present) if present else sha256_bytes(f"empty:{root}".encode())
    checkpoint, _ = Checkpoint.objects.get_or_create(
        content_hash=content_hash,
        defaults={"name": name or root.name, "path": str(root), "stages": list(present), "config": config},
    )
    return checkpoint


def check_systems(systems: Sequence[str]) -> list[str]:
    systems = [s.strip() for s in systems if s.strip()]
    unknown = [s for s in systems if s not in SYSTEM_STAGES]
    if unknown or not systems:
        raise LaunchError(f"unknown system(s) {unknown or systems}; choose among {', '.join(SYSTEM_STAGES)}")
    if len(set(systems)) != len(systems):
        raise LaunchError(f"systems {systems} list one twice")
    return systems


def needed_stages(systems: Sequence[str]) -> tuple[str, ...]:
    wanted = {stage for system in systems for stage in SYSTEM_STAGES[system]}
    return tuple(s for s in SYSTEM_STAGES["three-stage"] if s in wanted)


def check_embedder(embedder: str) -> None:
    """Unknown embedder or missing weights: an error now rather than after generation."""
    from hafm_core.fad.embedders import resolve_protocol
    from hafm_core.weights import weights_path

    resolve_protocol(embedder)
    if embedder in ("vggish", "encodec"):
        weights_path(embedder)


@dataclass(frozen=True)
class Launch:
    run: BenchmarkRun
    reused: bool  # True when a live run with the same parameters already existed
    tasks_sent: int | None = None  # when this launch (re)dispatched an undispatched run


def sampling_parameters() -> dict:
    return {"temperature": constants.DEFAULT_TEMPERATURE, "top_k": constants.DEFAULT_TOP_K,
            "guidance_scale": constants.DEFAULT_GUIDANCE_SCALE}


def parameters_hash(checkpoint: Checkpoint, dataset: Dataset, systems: Sequence[str], n_excerpts: int,
                    seed: int, embedder: str, parameters: dict,
                    dtype: str = constants.DEFAULT_MODEL_DTYPE) -> str:
    """Everything that defines a run's results. The code version is recorded but not hashed:
    relaunching after a commit reuses the run instead of silently duplicating it.

    dtype: the cascade's precision changes its tokens, so it is part of the identity; the
    default (float32, what every run recorded before the parameter used) adds nothing, so
    those runs keep their hash and a relaunch still finds them.
    """
    identity = {"checkpoint": checkpoint.content_hash, "dataset": dataset.manifest_hash,
                "systems": sorted(systems), "n_excerpts": n_excerpts, "seed": seed,
                "embedder": embedder, "parameters": parameters}
    if dtype != constants.DEFAULT_MODEL_DTYPE:
        identity["dtype"] = dtype
    return sha256_bytes(json.dumps(identity, sort_keys=True).encode())


def choose_excerpts(dataset: Dataset, n_excerpts: int | None, seed: int) -> list[tuple[str, str, str]]:
    """(id, key, track) of the run's excerpts: the test split when there is one, seeded order,
    tracks taken round-robin so excerpts spread over songs. One query."""
    rows = list(Excerpt.objects.filter(dataset=dataset).order_by("key").values_list("id", "key", "track", "split"))
    test_rows = [r for r in rows if r[3] == "test"]
    rows = test_rows or rows
    if n_excerpts is not None and n_excerpts > len(rows):
        split = "test split of " if test_rows else ""
        raise LaunchError(f"the {split}dataset {dataset} has {len(rows)} excerpts; ask for at most "
                          f"{len(rows)} (--excerpts {len(rows)})")
    order = np.random.default_rng(seed).permutation(len(rows))
    seen: dict[str, int] = {}
    ranked = []
    for index in order:
        track = rows[index][2]
        ranked.append((seen.get(track, 0), len(ranked), rows[index]))
        seen[track] = seen.get(track, 0) + 1
    ranked.sort()
    chosen = [row[:3] for _, _, row in ranked]
    return chosen[:n_excerpts] if n_excerpts else chosen


def clip_seed(run_seed: int, excerpt_key: str) -> int:
    """Per-excerpt seed shared by every system: the comparison is paired."""
    return int(sha256_bytes(f"{run_seed}:{excerpt_key}".encode())[:15], 16)


def plan_clips(run: BenchmarkRun, excerpts: Sequence[tuple]) -> int:
    """One pending clip per (excerpt, system) in ONE statement, whatever the number of clips.

    `bulk_create` splits into batches of 999 parameters on SQLite (76 clips per INSERT), so
    the query count would grow with the run; `executemany` of one prepared INSERT does not.
    """
    clips = [GeneratedClip(run=run, excerpt_id=excerpt_id, system=system, seed=clip_seed(run.seed, key))
             for excerpt_id, key, _ in excerpts for system in run.systems]
    fields = [f for f in GeneratedClip._meta.concrete_fields]
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(GeneratedClip._meta.db_table)} "
           f"({', '.join(quote(f.column) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))})")
    rows = [[f.get_db_prep_save(f.pre_save(clip, add=True), connection) for f in fields] for clip in clips]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(clips)


def launch_run(*, checkpoint: Checkpoint, dataset: Dataset, systems: Sequence[str], n_excerpts: int | None,
               seed: int, embedder: str, created_by=None, queue: str | None = None,
               dispatch: bool = True, clips_per_task: int = DEFAULT_CLIPS_PER_TASK,
               dtype: str = constants.DEFAULT_MODEL_DTYPE) -> Launch:
    """Create and plan a run, or return the live run with the same parameters.

    clips_per_task: clips of one system that a generation task makes in one batched call.
    dtype: precision of the cascade's weights when its clips are generated (`constants.MODEL_DTYPES`;
        all three run on CPU and GPU, as with `hafm generate --dtype`). Part of the run's identity.
    """
    systems = check_systems(systems)
    if isinstance(clips_per_task, bool) or not isinstance(clips_per_task, int) or clips_per_task < 1:
        raise LaunchError(f"clips per task {clips_per_task!r} is not valid: expected a whole number >= 1")
    if dtype not in constants.MODEL_DTYPES:
        raise LaunchError(f"dtype {dtype!r} is not one of {', '.join(constants.MODEL_DTYPES)}")
    missing = [s for s in needed_stages(systems) if s not in checkpoint.stages]
    if missing:
        raise CheckpointError(f"checkpoint {checkpoint.path} has no stage {missing[0]!r}, needed by "
                              f"{[s for s in systems if missing[0] in SYSTEM_STAGES[s]]}")
    check_embedder(embedder)
    excerpts = choose_excerpts(dataset, n_excerpts, seed)
    parameters = {"sampling": sampling_parameters(), "excerpts": [key for _, key, _ in excerpts],
                  "clips_per_task": clips_per_task, "dtype": dtype}
    digest = parameters_hash(checkpoint, dataset, systems, len(excerpts), seed, embedder,
                             parameters["sampling"], dtype)
    existing = live_run(digest)
    if existing is not None:
        return _reuse(existing, dispatch)
    try:
        with transaction.atomic():
            run = BenchmarkRun.objects.create(
                checkpoint=checkpoint, dataset=dataset, systems=list(systems), n_excerpts=len(excerpts),
                seed=seed, embedder=embedder, parameters=parameters, parameters_hash=digest,
                code_version=code_version(), created_by=created_by,
                queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
            )
            plan_clips(run, excerpts)
            if dispatch:
                # A broker that refuses the tasks leaves the run `undispatched`, not raised here.
                transaction.on_commit(lambda: dispatch_run(run.id, raise_error=False))
    except IntegrityError:
        # Another launch with the same parameters committed first: reuse it.
        existing = live_run(digest)
        if existing is None:
            raise
        return _reuse(existing, dispatch)
    run.refresh_from_db()
    return Launch(run, reused=False)


def _reuse(run: BenchmarkRun, dispatch: bool) -> Launch:
    """The live run with the same parameters; one whose tasks never reached the broker is
    dispatched now (never reused empty)."""
    if dispatch and run.status == BenchmarkRun.Status.UNDISPATCHED:
        sent = dispatch_run(run.id, raise_error=False)
        run.refresh_from_db()
        return Launch(run, reused=True, tasks_sent=sent)
    return Launch(run, reused=True)


def live_run(digest: str) -> BenchmarkRun | None:
    return (BenchmarkRun.objects.select_related("checkpoint", "dataset")
            .filter(parameters_hash=digest, status__in=BenchmarkRun.LIVE).first())


def launch_benchmark(*, checkpoint_path: str, dataset_spec: str, systems: Sequence[str],
                     n_excerpts: int | None, seed: int, embedder: str = DEFAULT_EMBEDDER,
                     created_by=None, queue: str | None = None, progress: bool = False,
                     clips_per_task: int = DEFAULT_CLIPS_PER_TASK,
                     dtype: str = constants.DEFAULT_MODEL_DTYPE) -> Launch:
    """Everything a user names on the command line or the form -> a planned, dispatched run."""
    systems = check_systems(systems)
    check_embedder(embedder)
    checkpoint = register_checkpoint(checkpoint_path, needed_stages(systems))
    dataset = register_dataset(dataset_spec, progress=progress)
    return launch_run(checkpoint=checkpoint, dataset=dataset, systems=systems, n_excerpts=n_excerpts,
                      seed=seed, embedder=embedder, created_by=created_by, queue=queue,
                      clips_per_task=clips_per_task, dtype=dtype)


def get_run(run_id) -> BenchmarkRun:
    """A run by its UUID (or a unique prefix of it, as printed by the CLI)."""
    text = str(run_id).strip().lower()
    runs = BenchmarkRun.objects.select_related("checkpoint", "dataset")
    try:
        return runs.get(id=text)
    except (BenchmarkRun.DoesNotExist, ValidationError):
        pass
    # A prefix: compare on the text form, in Python (run ids are few; this is the CLI's path).
    matches = [r for r in BenchmarkRun.objects.values_list("id", flat=True) if str(r).startswith(text)]
    if len(matches) != 1:
        raise LaunchError(f"no benchmark run {run_id!r}" if not matches else
                          f"run id prefix {run_id!r} matches {len(matches)} runs; give more characters")
    return runs.get(id=matches[0])


def dispatch_run(run_id, resend: bool = False, raise_error: bool = True) -> int:
    """Send the work still missing to the run's queue; returns the number of tasks sent.

    Pending clips -> `generate_clips` tasks of up to the run's `clips_per_task` clips of one
    system (runs recorded before that parameter: one clip each); everything generated -> the measure step
    (with `resend`, the current measure or compare step again, as after a lost worker).
    Safe to call twice: tasks skip clips already done (acks_late may redeliver anyway).
    A broker that does not take the tasks marks the run `undispatched` (see `send_for_run`).
    """
    from evalsite.services.benchmark_work import advance

    run = BenchmarkRun.objects.get(id=run_id)
    if not run.is_active:
        return 0
    pending = list(GeneratedClip.objects.filter(run=run, status=GeneratedClip.Status.PENDING)
                   .order_by("excerpt__key", "system").values_list("id", "system"))
    if not pending:
        return advance(run.id, resend=resend, raise_error=raise_error)
    by_system: dict[str, list[str]] = {}
    for clip_id, system in pending:
        by_system.setdefault(system, []).append(str(clip_id))
    size = int(run.parameters.get("clips_per_task", 1))
    batches = []
    for system in run.systems:
        ids = by_system.get(system, [])
        batches += [ids[i:i + size] for i in range(0, len(ids), size)]
    return send_for_run(run, "evalsite.benchmarks.generate_clips", [(str(run.id), batch) for batch in batches],
                        raise_error=raise_error)


class DispatchError(ServiceUnavailableError):
    """The broker did not take a run's tasks; the run waits `undispatched`."""


def send_for_run(run: BenchmarkRun, name: str, argument_lists: Sequence[tuple], raise_error: bool = True) -> int:
    """Send a run's tasks; returns how many. When the broker does not take them the run becomes
    `undispatched` with the reason, and `DispatchError` is raised (or 0 returned)."""
    try:
        send_tasks(name, argument_lists, run.queue)
    except Exception as error:  # noqa: BLE001 - kombu/redis/amqp raise transport-specific errors
        message = (f"run {run.id} is planned but not dispatched: the broker at {redact(broker_url())} did not "
                   f"take its tasks ({type(error).__name__}: {' '.join(str(error).split())}); it waits as "
                   f"undispatched until `hafm benchmark resume {run.id}` sends them")
        BenchmarkRun.objects.filter(id=run.id, status__in=BenchmarkRun.ACTIVE).update(
            status=BenchmarkRun.Status.UNDISPATCHED, error=message[:4000])
        log.debug(message)  # recorded on the run; the caller reports it
        if raise_error:
            raise DispatchError(message) from error
        return 0
    # Sent: a run that was waiting for the broker is live again.
    BenchmarkRun.objects.filter(id=run.id, status=BenchmarkRun.Status.UNDISPATCHED).update(
        status=BenchmarkRun.Status.RUNNING if run.started else BenchmarkRun.Status.PENDING, error="")
    return len(argument_lists)


def send_tasks(name: str, argument_lists: Sequence[tuple], queue: str) -> None:
    """Send tasks by name over one broker connection (the broker the app is configured with now).

    Publishing gives up after a few seconds (a short retry policy), so a broker that is down
    is an error now rather than a command that hangs.
    """
    from evalsite.celery import app

    # By name: the sender need not have imported the task modules (a web process has not).
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=SEND_RETRIES, interval_start=0, interval_step=1,
                                 interval_max=1, timeout=SEND_TIMEOUT_S)
        for args in argument_lists:
            app.send_task(name, args=list(args), queue=queue, connection=broker, retry_policy=SEND_RETRY_POLICY)


def cancel_run(run: BenchmarkRun) -> BenchmarkRun:
    """Stop a live run: tasks still queued find it cancelled and do nothing. Clips done stay."""
    updated = BenchmarkRun.objects.filter(id=run.id, status__in=BenchmarkRun.ACTIVE).update(
        status=BenchmarkRun.Status.CANCELLED, finished=timezone.now())
    run.refresh_from_db()
    if not updated and run.status != BenchmarkRun.Status.CANCELLED:
        raise LaunchError(f"run {run.id} is {run.status}; only a pending or running run can be cancelled")
    return run


def resume_run(run: BenchmarkRun, retry_failed: bool = True) -> int:
    """Re-send whatever the run's current phase is missing; returns the number of tasks sent.

    Generation: the pending clips (failed ones too when `retry_failed`); measurement: the
    systems not measured yet; comparison: the compare step. Use it after a worker was killed
    (its task may be lost), a cancel, or a broker outage (`undispatched`). Clips and systems
    already done are kept and never redone. A cancelled or failed run becomes live again,
    unless another live run with the same parameters was launched meanwhile.
    """
    if run.status == BenchmarkRun.Status.DONE:
        raise LaunchError(f"run {run.id} is done; there is nothing to resume")
    try:
        with transaction.atomic():
            if retry_failed:
                GeneratedClip.objects.filter(run=run, status=GeneratedClip.Status.FAILED).update(
                    status=GeneratedClip.Status.PENDING, error="")
            has_pending = GeneratedClip.objects.filter(run=run, status=GeneratedClip.Status.PENDING).exists()
            phase = BenchmarkRun.Phase.GENERATE if has_pending else (
                run.phase if run.phase != BenchmarkRun.Phase.FINISHED else BenchmarkRun.Phase.MEASURE)
            status = BenchmarkRun.Status.RUNNING if run.started else BenchmarkRun.Status.PENDING
            # A fresh count of attempts: the user may have fixed what killed the worker.
            BenchmarkRun.objects.filter(id=run.id).update(status=status, phase=phase, error="", finished=None,
                                                          step_attempts={})
    except IntegrityError as error:
        other = live_run(run.parameters_hash)
        raise LaunchError(f"run {run.id} cannot be resumed: run {other.id if other else '?'} with the "
                          "same parameters is live; follow that one") from error
    run.refresh_from_db()
    return dispatch_run(run.id, resend=True)
