"""FAD on Celery workers: start a job, embed a shard (map), merge and compute (reduce).

    start_fad(...)      lists the files, writes one FadResult and its FadShards, sends one
                        `embed_shard` task per shard once the rows are committed
    run_shard(id)       map: embeds the shard's files (through the shared embedding cache) and
                        stores its mergeable statistics on the row, exactly once
    maybe_reduce(id)    every shard done -> send `reduce_fad` (several sends are harmless)
    reduce(id)          merge the done shards, compute FAD (and the CI from the cached
                        per-file embeddings), store it with its provenance

Every step is idempotent: a redelivered task (acks_late + a killed worker) finds the rows it
already wrote and adds nothing twice.
"""

from __future__ import annotations

import functools
import logging

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from evalsite.models import FadResult, FadShard
from hafm_core.errors import ConfigError, HafmError
from hafm_core.fad.cache import EmbeddingCache
from hafm_core.fad.compute import embed_files, report_from_stats, statistics_of
from hafm_core.fad.embedders import load_embedder, resolve_protocol
from hafm_core.fad.files import list_audio_files
from hafm_core.fad.stats import EmbeddingStats, merge_all

log = logging.getLogger(__name__)

SHARD_BATCH_FILES = 4  # files embedded together inside a shard (progress is reported per batch)


@functools.lru_cache(maxsize=2)
def _embedder(name: str, protocol: str):
    """One loaded model per worker process (a solo worker owns its GPU)."""
    return load_embedder(name, protocol)


def start_fad(background: str, evaluation: str, embedder: str, protocol: str | None = None, *,
              with_ci: bool = False, with_fad_inf: bool = False, seed: int = 0, shard_files: int = 16,
              queue: str | None = None, broker_url: str | None = None, send: bool = True) -> FadResult:
    """Create the job and (with `send`) send its shards. Bad folders raise before anything is written.

    With send=False the caller dispatches (`send_pending_shards`) and handles a broker that
    refuses the tasks; the job rows are committed either way, so it can be resumed.
    """
    from django.conf import settings

    if shard_files < 1:
        raise ConfigError(f"shard_files must be >= 1, got {shard_files}")
    protocol = resolve_protocol(embedder, protocol)
    sides = {FadShard.Side.BACKGROUND: list_audio_files(background, "background"),
             FadShard.Side.EVAL: list_audio_files(evaluation, "eval")}
    shards = [(side, i // shard_files, [str(p) for p in paths[i:i + shard_files]])
              for side, paths in sides.items() for i in range(0, len(paths), shard_files)]
    with transaction.atomic():
        result = FadResult.objects.create(
            background=str(background), eval=str(evaluation), embedder=embedder, protocol=protocol,
            with_ci=with_ci or with_fad_inf, with_fad_inf=with_fad_inf, seed=seed,
            queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE, n_shards=len(shards))
        FadShard.objects.bulk_create(FadShard(result=result, side=side, index=index, paths=paths)
                                     for side, index, paths in shards)
        if send:
            transaction.on_commit(lambda: send_pending_shards(result.id, broker_url))
    return result


UNDISPATCHED = "the broker did not take this job's tasks"


def mark_undispatched(result_id, reason: str) -> None:
    """Record on a still-active job that its tasks never reached the broker (resume re-sends them)."""
    FadResult.objects.filter(id=result_id, status__in=FadResult.ACTIVE).update(
        error=f"{UNDISPATCHED} ({reason})"[:4000])


def _send(task, args: list, queue: str, broker_url: str | None) -> None:
    from evalsite.celery import app

    if broker_url is None:
        task.apply_async(args=args, queue=queue)
        return
    with app.connection_for_write(broker_url) as connection:
        task.apply_async(args=args, queue=queue, connection=connection)


def send_pending_shards(result_id, broker_url: str | None = None) -> int:
    """Send a task for each shard not done yet (at start, or to resume a job whose tasks were lost)."""
    from evalsite.tasks.fad import embed_shard

    result = FadResult.objects.get(id=result_id)
    pending = list(result.shards.filter(status=FadShard.Status.PENDING).values_list("id", flat=True))
    if result.error.startswith(UNDISPATCHED):  # sending again; a refusal marks it again
        FadResult.objects.filter(id=result_id, error=result.error).update(error="")
    for shard_id in pending:
        _send(embed_shard, [shard_id], result.queue, broker_url)
    if not pending:
        maybe_reduce(result.id, broker_url)
    return len(pending)


def _count_progress(shard_id: int, n_files: int) -> None:
    FadShard.objects.filter(id=shard_id).update(files_done=F("files_done") + n_files)


def run_shard(shard_id: int) -> dict:
    """The map step. Returns the shard's mergeable statistics (JSON), stored on its row first."""
    shard = FadShard.objects.select_related("result").get(id=shard_id)
    result = shard.result
    if shard.status == FadShard.Status.DONE or result.status in (FadResult.Status.DONE, FadResult.Status.FAILED):
        maybe_reduce(result.id)
        return {"shard": shard_id, "skipped": True, "stats": shard.stats}
    FadShard.objects.filter(id=shard_id).update(attempts=F("attempts") + 1, files_done=0)
    FadResult.objects.filter(id=result.id, status=FadResult.Status.PENDING).update(status=FadResult.Status.RUNNING)
    try:
        embedder = _embedder(result.embedder, result.protocol)
        files = embed_files(shard.paths, embedder, EmbeddingCache(), SHARD_BATCH_FILES,
                            progress=functools.partial(_count_progress, shard_id))
        stats = statistics_of(files).to_json()
    except HafmError as error:
        fail(result.id, f"{shard.side} shard {shard.index}: {error}")
        return {"shard": shard_id, "error": str(error)}
    # Only a pending row takes the statistics: a concurrent duplicate delivery cannot add twice.
    FadShard.objects.filter(id=shard_id, status=FadShard.Status.PENDING).update(
        status=FadShard.Status.DONE, stats=stats, files=[f.record() for f in files],
        embedder_info=embedder.describe(), files_done=len(files), finished=timezone.now())
    maybe_reduce(result.id)
    return {"shard": shard_id, "side": shard.side, "index": shard.index, "stats": stats}


def maybe_reduce(result_id, broker_url: str | None = None) -> bool:
    """Send the reduce task when every shard is done and the job is still active."""
    from evalsite.tasks.fad import reduce_fad

    result = FadResult.objects.get(id=result_id)
    if result.status not in FadResult.ACTIVE:
        return False
    if result.shards.filter(status=FadShard.Status.DONE).count() < result.n_shards:
        return False
    FadResult.objects.filter(id=result_id, status=FadResult.Status.RUNNING).update(status=FadResult.Status.REDUCING)
    _send(reduce_fad, [str(result_id)], result.queue, broker_url)
    return True


def _songs(shards: list[FadShard], result: FadResult) -> list:
    """Per-file embeddings of the shards, read back from the embedding cache (for the CI).

    An entry missing or discarded as corrupt is embedded again, provided the file still has
    the content the shard measured (same cache key); otherwise the job must be run again.
    """
    cache = EmbeddingCache()
    songs = []
    for shard in shards:
        dim = EmbeddingStats.from_json(shard.stats).dim
        for record in shard.files:
            embeddings = cache.get(record["cache_key"], result.protocol, dim)
            if embeddings is None:
                (again,) = embed_files([record["path"]], _embedder(result.embedder, result.protocol), cache)
                if again.cache_key != record["cache_key"]:
                    raise HafmError(f"{record['path']} changed since its shard was embedded; run the job again")
                embeddings = again.embeddings
            songs.append(embeddings)
    return songs


def reduce(result_id) -> FadResult:
    """The reduce step: merge the done shards once and store the FAD with its provenance."""
    result = FadResult.objects.get(id=result_id)
    if result.status not in FadResult.ACTIVE:
        return result
    shards = list(result.shards.filter(status=FadShard.Status.DONE).order_by("side", "index"))
    if len(shards) < result.n_shards:
        return result
    infos = {tuple(sorted(s.embedder_info.items())) for s in shards}
    if len(infos) != 1:
        fail(result.id, "shards were embedded under different weights or code versions; run the job again")
        return FadResult.objects.get(id=result_id)
    by_side = {side: [s for s in shards if s.side == side] for side in FadShard.Side.values}
    try:
        stats = {side: merge_all([EmbeddingStats.from_json(s.stats) for s in group])
                 for side, group in by_side.items()}
        songs = ({side: _songs(group, result) for side, group in by_side.items()}
                 if result.with_ci else {})
        report = report_from_stats(
            stats[FadShard.Side.BACKGROUND], stats[FadShard.Side.EVAL], embedder_info=shards[0].embedder_info,
            n_background=sum(len(s.files) for s in by_side[FadShard.Side.BACKGROUND]),
            n_eval=sum(len(s.files) for s in by_side[FadShard.Side.EVAL]),
            background_path=result.background, eval_path=result.eval,
            background_songs=songs.get(FadShard.Side.BACKGROUND), eval_songs=songs.get(FadShard.Side.EVAL),
            with_fad_inf=result.with_fad_inf, seed=result.seed)
    except HafmError as error:
        fail(result.id, str(error))
        return FadResult.objects.get(id=result_id)
    FadResult.objects.filter(id=result.id, status__in=FadResult.ACTIVE).update(
        status=FadResult.Status.DONE, finished=timezone.now(), fad=report.fad,
        n_background=report.n_background, n_eval=report.n_eval,
        n_background_frames=report.n_background_frames, n_eval_frames=report.n_eval_frames,
        ci_low=report.ci.low if report.ci else None, ci_high=report.ci.high if report.ci else None,
        ci_method=report.ci.method if report.ci else "",
        fad_inf=report.fad_inf.value if report.fad_inf else None,
        fad_inf_slope=report.fad_inf.slope if report.fad_inf else None,
        fad_inf_r2=report.fad_inf.r_squared if report.fad_inf else None,
        weights_hash=report.weights_hash, embedder_code_hash=report.embedder_code_hash,
        code_version=report.code_version, report={**report.to_json(), "mode": "distributed",
                                                  "result_id": str(result.id)})
    return FadResult.objects.get(id=result_id)


def fail(result_id, message: str) -> None:
    log.warning("FAD job %s failed: %s", result_id, message)
    FadResult.objects.filter(id=result_id, status__in=FadResult.ACTIVE).update(
        status=FadResult.Status.FAILED, error=message[:4000], finished=timezone.now())


def progress(result_id) -> tuple[FadResult, int, int]:
    """(result, files embedded so far, files in the job): one query for the counts."""
    result = FadResult.objects.get(id=result_id)
    totals = result.shards.aggregate(done=Sum("files_done"))
    total_files = sum(len(paths) for paths in result.shards.values_list("paths", flat=True))
    return result, int(totals["done"] or 0), total_files
